//! Single-use challenges, rate-limit windows and blocks on SQLite: short-lived rows.

use super::{Fail, SqliteStore};
use crate::store::{
    ChallengeStore, ConsumeOutcome, RateDecision, RateLimit, RateLimitStore, StoreError, slide_window,
};
use async_trait::async_trait;
use rusqlite::{OptionalExtension, TransactionBehavior, params};

const PUT_CHALLENGE: &str = "INSERT INTO challenges (challenge, device_id, expires_at_ms) VALUES (?1, ?2, ?3)
     ON CONFLICT (challenge) DO UPDATE SET device_id = excluded.device_id, expires_at_ms = excluded.expires_at_ms";

const SAVE_WINDOW: &str = "INSERT INTO rate_limits (key, hits, expires_at_ms) VALUES (?1, ?2, ?3)
     ON CONFLICT (key) DO UPDATE SET hits = excluded.hits, expires_at_ms = excluded.expires_at_ms";

const BLOCK: &str = "INSERT INTO blocks (key, until_ms) VALUES (?1, ?2)
     ON CONFLICT (key) DO UPDATE SET until_ms = max(until_ms, excluded.until_ms)";

#[async_trait]
impl ChallengeStore for SqliteStore {
    async fn put_challenge(
        &self,
        challenge: &str,
        device_id: &str,
        expires_at_ms: i64,
    ) -> Result<(), StoreError> {
        let (challenge, device_id) = (challenge.to_owned(), device_id.to_owned());
        self.write("put_challenge", move |conn| {
            conn.prepare_cached(PUT_CHALLENGE)?
                .execute(params![challenge, device_id, expires_at_ms])?;
            Ok(())
        })
        .await
    }

    async fn consume_challenge(
        &self,
        challenge: &str,
        device_id: &str,
        now_ms: i64,
    ) -> Result<ConsumeOutcome, StoreError> {
        let (challenge, device_id) = (challenge.to_owned(), device_id.to_owned());
        self.write("consume_challenge", move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let found: Option<(String, i64)> = tx
                .prepare_cached("SELECT device_id, expires_at_ms FROM challenges WHERE challenge = ?1")?
                .query_row([&challenge], |row| Ok((row.get(0)?, row.get(1)?)))
                .optional()?;
            let outcome = match found {
                None => return Ok(ConsumeOutcome::Invalid),
                Some((_, expires_at_ms)) if now_ms > expires_at_ms => ConsumeOutcome::Invalid,
                // Checked before consuming, so a verify naming the wrong device cannot burn it.
                Some((bound_to, _)) if bound_to != device_id => return Ok(ConsumeOutcome::WrongDevice),
                Some(_) => ConsumeOutcome::Consumed,
            };
            tx.prepare_cached("DELETE FROM challenges WHERE challenge = ?1")?
                .execute([&challenge])?;
            tx.commit()?;
            Ok(outcome)
        })
        .await
    }

    async fn purge_expired_challenges(&self, now_ms: i64) -> Result<u64, StoreError> {
        self.write("purge_expired_challenges", move |conn| {
            Ok(conn
                .prepare_cached("DELETE FROM challenges WHERE expires_at_ms < ?1")?
                .execute([now_ms])? as u64)
        })
        .await
    }
}

/// The `hits` column: timestamps (ms) as little-endian i64s back to back.
fn decode_hits(bytes: &[u8]) -> Result<Vec<i64>, Fail> {
    let chunks = bytes.chunks_exact(8);
    if !chunks.remainder().is_empty() {
        return Err(
            StoreError::Corrupt("a rate-limit window is not a whole number of timestamps".into()).into(),
        );
    }
    Ok(chunks
        .map(|chunk| i64::from_le_bytes(<[u8; 8]>::try_from(chunk).unwrap_or_default()))
        .collect())
}

fn encode_hits(hits: &[i64]) -> Vec<u8> {
    hits.iter().flat_map(|at| at.to_le_bytes()).collect()
}

#[async_trait]
impl RateLimitStore for SqliteStore {
    async fn hit(&self, key: &str, limit: RateLimit, now_ms: i64) -> Result<RateDecision, StoreError> {
        let key = key.to_owned();
        self.write("rate_limit_hit", move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let stored: Option<Vec<u8>> = tx
                .prepare_cached("SELECT hits FROM rate_limits WHERE key = ?1")?
                .query_row([&key], |row| row.get(0))
                .optional()?;
            let mut hits = decode_hits(stored.as_deref().unwrap_or_default())?;
            let (decision, expires_at_ms) = slide_window(&mut hits, limit, now_ms);
            // A refused attempt changes nothing, so there is nothing to write.
            if let Some(expires_at_ms) = expires_at_ms {
                tx.prepare_cached(SAVE_WINDOW)?
                    .execute(params![key, encode_hits(&hits), expires_at_ms])?;
                tx.commit()?;
            }
            Ok(decision)
        })
        .await
    }

    async fn reset(&self, key: &str) -> Result<(), StoreError> {
        let key = key.to_owned();
        self.write("rate_limit_reset", move |conn| {
            conn.prepare_cached("DELETE FROM rate_limits WHERE key = ?1")?
                .execute([key])?;
            Ok(())
        })
        .await
    }

    async fn block(&self, key: &str, until_ms: i64) -> Result<(), StoreError> {
        let key = key.to_owned();
        self.write("block", move |conn| {
            conn.prepare_cached(BLOCK)?.execute(params![key, until_ms])?;
            Ok(())
        })
        .await
    }

    async fn blocked_until(&self, key: &str, now_ms: i64) -> Result<Option<i64>, StoreError> {
        let key = key.to_owned();
        self.read("blocked_until", move |conn| {
            Ok(conn
                .prepare_cached("SELECT until_ms FROM blocks WHERE key = ?1 AND until_ms > ?2")?
                .query_row(params![key, now_ms], |row| row.get(0))
                .optional()?)
        })
        .await
    }

    async fn purge_expired_limits(&self, now_ms: i64) -> Result<u64, StoreError> {
        self.write("purge_expired_limits", move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let windows = tx
                .prepare_cached("DELETE FROM rate_limits WHERE expires_at_ms <= ?1")?
                .execute([now_ms])?;
            let blocks = tx
                .prepare_cached("DELETE FROM blocks WHERE until_ms <= ?1")?
                .execute([now_ms])?;
            tx.commit()?;
            Ok((windows + blocks) as u64)
        })
        .await
    }
}
