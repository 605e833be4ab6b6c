//! Single-use account tokens (password reset, email verification) on SQLite.

use super::{Fail, SqliteStore};
use crate::store::sessions::read_kind;
use crate::store::{OneTimeKind, OneTimeToken, OneTimeTokenStore, StoreError};
use async_trait::async_trait;
use rusqlite::{Row, TransactionBehavior, params};

const COUNT_LIVE_ONE_TIME: &str =
    "SELECT count(*) FROM one_time_tokens WHERE user_id = ?1 AND kind = ?2 AND expires_at_ms > ?3";
const INSERT_ONE_TIME: &str = "INSERT INTO one_time_tokens
        (hash, kind, user_id, email, created_at_ms, expires_at_ms)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
/// Deleted whether expired or not: an expired token is gone once presented.
const TAKE_ONE_TIME: &str = "DELETE FROM one_time_tokens WHERE hash = ?1 AND kind = ?2
     RETURNING hash, kind, user_id, email, created_at_ms, expires_at_ms";

fn one_time_from_row(row: &Row<'_>) -> Result<OneTimeToken, Fail> {
    let kind: String = row.get(1)?;
    Ok(OneTimeToken {
        hash: row.get(0)?,
        kind: read_kind(&kind)?,
        user_id: row.get(2)?,
        email: row.get(3)?,
        created_at_ms: row.get(4)?,
        expires_at_ms: row.get(5)?,
    })
}

#[async_trait]
impl OneTimeTokenStore for SqliteStore {
    async fn put_one_time_token(
        &self,
        token: OneTimeToken,
        max_live: u32,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        self.write("put_one_time_token", move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let live: i64 = tx
                .prepare_cached(COUNT_LIVE_ONE_TIME)?
                .query_row(params![token.user_id, token.kind.as_str(), now_ms], |row| {
                    row.get(0)
                })?;
            if live >= i64::from(max_live) {
                return Ok(false);
            }
            tx.prepare_cached(INSERT_ONE_TIME)?.execute(params![
                token.hash,
                token.kind.as_str(),
                token.user_id,
                token.email,
                token.created_at_ms,
                token.expires_at_ms
            ])?;
            tx.commit()?;
            Ok(true)
        })
        .await
    }

    async fn take_one_time_token(
        &self,
        kind: OneTimeKind,
        hash: &str,
        now_ms: i64,
    ) -> Result<Option<OneTimeToken>, StoreError> {
        let hash = hash.to_owned();
        self.write("take_one_time_token", move |conn| {
            // One statement: the row is gone for every later take once this one read it.
            let taken = conn
                .prepare_cached(TAKE_ONE_TIME)?
                .query_and_then(params![hash, kind.as_str()], one_time_from_row)?
                .next()
                .transpose()?;
            Ok(taken.filter(|token| token.expires_at_ms > now_ms))
        })
        .await
    }

    async fn discard_one_time_tokens(&self, user_id: &str, kind: OneTimeKind) -> Result<u64, StoreError> {
        let user_id = user_id.to_owned();
        self.write("discard_one_time_tokens", move |conn| {
            Ok(conn
                .prepare_cached("DELETE FROM one_time_tokens WHERE user_id = ?1 AND kind = ?2")?
                .execute(params![user_id, kind.as_str()])? as u64)
        })
        .await
    }

    async fn purge_expired_one_time_tokens(&self, now_ms: i64) -> Result<u64, StoreError> {
        self.write("purge_expired_one_time_tokens", move |conn| {
            Ok(conn
                .prepare_cached("DELETE FROM one_time_tokens WHERE expires_at_ms <= ?1")?
                .execute([now_ms])? as u64)
        })
        .await
    }
}
