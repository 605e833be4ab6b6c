//! Single-use challenges, rate-limit windows and blocks on PostgreSQL: short-lived rows.

use super::{Fail, PostgresStore, get};
use crate::store::{
    ChallengeStore, ConsumeOutcome, RateDecision, RateLimit, RateLimitStore, StoreError, slide_window,
};
use async_trait::async_trait;

const PUT_CHALLENGE: &str = "INSERT INTO challenges (challenge, device_id, expires_at_ms) VALUES ($1, $2, $3)
     ON CONFLICT (challenge) DO UPDATE SET device_id = excluded.device_id, expires_at_ms = excluded.expires_at_ms";

/// A window row to lock, created empty (and expired) when the key has none: a row that does
/// not exist cannot be locked, and two first hits must still be counted one after the other.
const ENSURE_WINDOW: &str = "INSERT INTO rate_limits (key, hits, expires_at_ms) VALUES ($1, '{}', 0)
     ON CONFLICT (key) DO NOTHING";
const LOCK_WINDOW: &str = "SELECT hits FROM rate_limits WHERE key = $1 FOR UPDATE";
const SAVE_WINDOW: &str = "UPDATE rate_limits SET hits = $2, expires_at_ms = $3 WHERE key = $1";

const BLOCK: &str = "INSERT INTO blocks (key, until_ms) VALUES ($1, $2)
     ON CONFLICT (key) DO UPDATE SET until_ms = GREATEST(blocks.until_ms, excluded.until_ms)";

impl PostgresStore {
    async fn consume(&self, challenge: &str, device_id: &str, now_ms: i64) -> Result<ConsumeOutcome, Fail> {
        let mut conn = self.conn().await?;
        let tx = conn.transaction().await?;
        let select = tx
            .prepare_cached("SELECT device_id, expires_at_ms FROM challenges WHERE challenge = $1 FOR UPDATE")
            .await?;
        let found = match tx.query_opt(&select, &[&challenge]).await? {
            Some(row) => Some((get::<String>(&row, 0)?, get::<i64>(&row, 1)?)),
            None => None,
        };
        let outcome = match found {
            None => return Ok(ConsumeOutcome::Invalid),
            Some((_, expires_at_ms)) if now_ms > expires_at_ms => ConsumeOutcome::Invalid,
            // Checked before consuming, so a verify naming the wrong device cannot burn it.
            Some((bound_to, _)) if bound_to != device_id => return Ok(ConsumeOutcome::WrongDevice),
            Some(_) => ConsumeOutcome::Consumed,
        };
        let delete = tx
            .prepare_cached("DELETE FROM challenges WHERE challenge = $1")
            .await?;
        tx.execute(&delete, &[&challenge]).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    async fn count_hit(&self, key: &str, limit: RateLimit, now_ms: i64) -> Result<RateDecision, Fail> {
        let mut conn = self.conn().await?;
        let tx = conn.transaction().await?;
        tx.execute(&tx.prepare_cached(ENSURE_WINDOW).await?, &[&key])
            .await?;
        let row = tx
            .query_one(&tx.prepare_cached(LOCK_WINDOW).await?, &[&key])
            .await?;
        let mut hits: Vec<i64> = get(&row, 0)?;
        let (decision, expires_at_ms) = slide_window(&mut hits, limit, now_ms);
        // A refused attempt changes nothing: dropping the transaction rolls back, the empty
        // row too when this hit created it.
        if let Some(expires_at_ms) = expires_at_ms {
            tx.execute(
                &tx.prepare_cached(SAVE_WINDOW).await?,
                &[&key, &hits, &expires_at_ms],
            )
            .await?;
            tx.commit().await?;
        }
        Ok(decision)
    }
}

#[async_trait]
impl ChallengeStore for PostgresStore {
    async fn put_challenge(
        &self,
        challenge: &str,
        device_id: &str,
        expires_at_ms: i64,
    ) -> Result<(), StoreError> {
        self.execute_one(PUT_CHALLENGE, &[&challenge, &device_id, &expires_at_ms])
            .await
            .map(drop)
            .map_err(|fail| fail.into_store("put_challenge"))
    }

    async fn consume_challenge(
        &self,
        challenge: &str,
        device_id: &str,
        now_ms: i64,
    ) -> Result<ConsumeOutcome, StoreError> {
        self.consume(challenge, device_id, now_ms)
            .await
            .map_err(|fail| fail.into_store("consume_challenge"))
    }

    async fn purge_expired_challenges(&self, now_ms: i64) -> Result<u64, StoreError> {
        self.execute_one("DELETE FROM challenges WHERE expires_at_ms < $1", &[&now_ms])
            .await
            .map_err(|fail| fail.into_store("purge_expired_challenges"))
    }
}

#[async_trait]
impl RateLimitStore for PostgresStore {
    async fn hit(&self, key: &str, limit: RateLimit, now_ms: i64) -> Result<RateDecision, StoreError> {
        self.count_hit(key, limit, now_ms)
            .await
            .map_err(|fail| fail.into_store("rate_limit_hit"))
    }

    async fn reset(&self, key: &str) -> Result<(), StoreError> {
        self.execute_one("DELETE FROM rate_limits WHERE key = $1", &[&key])
            .await
            .map(drop)
            .map_err(|fail| fail.into_store("rate_limit_reset"))
    }

    async fn block(&self, key: &str, until_ms: i64) -> Result<(), StoreError> {
        self.execute_one(BLOCK, &[&key, &until_ms])
            .await
            .map(drop)
            .map_err(|fail| fail.into_store("block"))
    }

    async fn blocked_until(&self, key: &str, now_ms: i64) -> Result<Option<i64>, StoreError> {
        async {
            let conn = self.conn().await?;
            let statement = conn
                .prepare_cached("SELECT until_ms FROM blocks WHERE key = $1 AND until_ms > $2")
                .await?;
            match conn.query_opt(&statement, &[&key, &now_ms]).await? {
                Some(row) => Ok(Some(get(&row, 0)?)),
                None => Ok(None),
            }
        }
        .await
        .map_err(|fail: Fail| fail.into_store("blocked_until"))
    }

    async fn purge_expired_limits(&self, now_ms: i64) -> Result<u64, StoreError> {
        async {
            let mut conn = self.conn().await?;
            let tx = conn.transaction().await?;
            let windows = tx
                .execute(
                    &tx.prepare_cached("DELETE FROM rate_limits WHERE expires_at_ms <= $1")
                        .await?,
                    &[&now_ms],
                )
                .await?;
            let blocks = tx
                .execute(
                    &tx.prepare_cached("DELETE FROM blocks WHERE until_ms <= $1")
                        .await?,
                    &[&now_ms],
                )
                .await?;
            tx.commit().await?;
            Ok(windows + blocks)
        }
        .await
        .map_err(|fail: Fail| fail.into_store("purge_expired_limits"))
    }
}
