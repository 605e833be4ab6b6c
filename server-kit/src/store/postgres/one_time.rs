//! Single-use account tokens (password reset, email verification) on PostgreSQL.
//!
//! A put counts the user's live tokens of its kind under a transaction-level advisory lock
//! named after them, so two requests cannot both count the same tokens and both insert.

use super::{Fail, PostgresStore, get};
use crate::store::sessions::read_kind;
use crate::store::{OneTimeKind, OneTimeToken, OneTimeTokenStore, StoreError};
use async_trait::async_trait;
use tokio_postgres::Row;

/// Serializes the puts of one user's tokens of one kind (in this schema).
const LOCK_ONE_TIME_PUTS: &str = "SELECT pg_advisory_xact_lock(hashtextextended(
        'holdfast-one-time:' || coalesce(current_schema(), '') || ':' || $1::TEXT || ':' || $2::TEXT, 0))";
const COUNT_LIVE_ONE_TIME: &str =
    "SELECT count(*) FROM one_time_tokens WHERE user_id = $1 AND kind = $2 AND expires_at_ms > $3";
const INSERT_ONE_TIME: &str = "INSERT INTO one_time_tokens
        (hash, kind, user_id, email, created_at_ms, expires_at_ms)
     VALUES ($1, $2, $3, $4, $5, $6)";
/// Deleted whether expired or not: an expired token is gone once presented. One statement:
/// a concurrent take of the same row waits, then finds it gone.
const TAKE_ONE_TIME: &str = "DELETE FROM one_time_tokens WHERE hash = $1 AND kind = $2
     RETURNING hash, kind, user_id, email, created_at_ms, expires_at_ms";

impl PostgresStore {
    async fn put_one_time(&self, token: &OneTimeToken, max_live: u32, now_ms: i64) -> Result<bool, Fail> {
        let mut conn = self.conn().await?;
        let tx = conn.transaction().await?;
        let kind = token.kind.as_str();
        tx.execute(
            &tx.prepare_cached(LOCK_ONE_TIME_PUTS).await?,
            &[&token.user_id, &kind],
        )
        .await?;
        let row = tx
            .query_one(
                &tx.prepare_cached(COUNT_LIVE_ONE_TIME).await?,
                &[&token.user_id, &kind, &now_ms],
            )
            .await?;
        if get::<i64>(&row, 0)? >= i64::from(max_live) {
            return Ok(false);
        }
        tx.execute(
            &tx.prepare_cached(INSERT_ONE_TIME).await?,
            &[
                &token.hash,
                &kind,
                &token.user_id,
                &token.email,
                &token.created_at_ms,
                &token.expires_at_ms,
            ],
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }
}

fn one_time_from_row(row: &Row) -> Result<OneTimeToken, Fail> {
    Ok(OneTimeToken {
        hash: get(row, 0)?,
        kind: read_kind(get(row, 1)?)?,
        user_id: get(row, 2)?,
        email: get(row, 3)?,
        created_at_ms: get(row, 4)?,
        expires_at_ms: get(row, 5)?,
    })
}

#[async_trait]
impl OneTimeTokenStore for PostgresStore {
    async fn put_one_time_token(
        &self,
        token: OneTimeToken,
        max_live: u32,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        self.put_one_time(&token, max_live, now_ms)
            .await
            .map_err(|fail| fail.into_store("put_one_time_token"))
    }

    async fn take_one_time_token(
        &self,
        kind: OneTimeKind,
        hash: &str,
        now_ms: i64,
    ) -> Result<Option<OneTimeToken>, StoreError> {
        async {
            let conn = self.conn().await?;
            let statement = conn.prepare_cached(TAKE_ONE_TIME).await?;
            let taken = conn
                .query_opt(&statement, &[&hash, &kind.as_str()])
                .await?
                .as_ref()
                .map(one_time_from_row)
                .transpose()?;
            Ok(taken.filter(|token| token.expires_at_ms > now_ms))
        }
        .await
        .map_err(|fail: Fail| fail.into_store("take_one_time_token"))
    }

    async fn discard_one_time_tokens(&self, user_id: &str, kind: OneTimeKind) -> Result<u64, StoreError> {
        self.execute_one(
            "DELETE FROM one_time_tokens WHERE user_id = $1 AND kind = $2",
            &[&user_id, &kind.as_str()],
        )
        .await
        .map_err(|fail| fail.into_store("discard_one_time_tokens"))
    }

    async fn purge_expired_one_time_tokens(&self, now_ms: i64) -> Result<u64, StoreError> {
        self.execute_one(
            "DELETE FROM one_time_tokens WHERE expires_at_ms <= $1",
            &[&now_ms],
        )
        .await
        .map_err(|fail| fail.into_store("purge_expired_one_time_tokens"))
    }
}
