//! Refresh rotation state and revocations on SQLite.

use super::SqliteStore;
use super::token_rows::{REVOKE_FAMILY, REVOKE_TOKEN, insert_refresh, is_revoked, rotate};
use crate::store::{
    CheckedRefresh, ChildPair, RefreshRecord, RefreshVerdict, RotateOutcome, StoreError, TokenStore,
};
use async_trait::async_trait;
use rusqlite::{TransactionBehavior, params};

#[async_trait]
impl TokenStore for SqliteStore {
    async fn insert_refresh(&self, record: RefreshRecord) -> Result<(), StoreError> {
        self.write_grouped("insert_refresh", move |conn| insert_refresh(conn, &record))
            .await
    }

    async fn rotate_refresh(
        &self,
        parent_jti: &str,
        child: RefreshRecord,
        pair: ChildPair,
        now_ms: i64,
    ) -> Result<RotateOutcome, StoreError> {
        let parent_jti = parent_jti.to_owned();
        self.write_grouped("rotate_refresh", move |conn| {
            rotate(conn, &parent_jti, &child, &pair, now_ms)
        })
        .await
    }

    async fn rotate_checked(&self, check: &CheckedRefresh) -> Result<Option<RefreshVerdict>, StoreError> {
        let check = check.clone();
        self.write_grouped("rotate_checked", move |conn| {
            super::refresh::rotate_checked(conn, &check)
        })
        .await
        .map(Some)
    }

    async fn revoke_token(&self, jti: &str, expires_at: i64) -> Result<(), StoreError> {
        let jti = jti.to_owned();
        self.write_grouped("revoke_token", move |conn| {
            conn.prepare_cached(REVOKE_TOKEN)?
                .execute(params![jti, expires_at])?;
            Ok(())
        })
        .await
    }

    async fn revoke_family(&self, family: &str, expires_at: i64) -> Result<(), StoreError> {
        let family = family.to_owned();
        self.write_grouped("revoke_family", move |conn| {
            conn.prepare_cached(REVOKE_FAMILY)?
                .execute(params![family, expires_at])?;
            Ok(())
        })
        .await
    }

    async fn is_revoked(&self, jti: &str, family: Option<&str>) -> Result<bool, StoreError> {
        let (jti, family) = (jti.to_owned(), family.map(str::to_owned));
        self.read("is_revoked", move |conn| {
            is_revoked(conn, &jti, family.as_deref())
        })
        .await
    }

    async fn purge_expired_tokens(&self, now: i64) -> Result<u64, StoreError> {
        self.write("purge_expired_tokens", move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut purged = 0;
            for sql in [
                "DELETE FROM refresh_tokens WHERE expires_at < ?1",
                "DELETE FROM revoked_tokens WHERE expires_at < ?1",
                "DELETE FROM revoked_families WHERE expires_at < ?1",
            ] {
                purged += tx.prepare_cached(sql)?.execute([now])? as u64;
            }
            tx.commit()?;
            Ok(purged)
        })
        .await
    }
}
