//! Refresh rotation state and revocations on PostgreSQL.

use super::{Fail, PostgresStore, get};
use crate::store::rotation::{RotationState, rotation_refusal};
use crate::store::{
    CheckedRefresh, ChildPair, RefreshRecord, RefreshVerdict, RotateOutcome, StoreError, TokenStore,
};
use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

const INSERT_REFRESH: &str =
    "INSERT INTO refresh_tokens (jti, family, user_id, device_id, issued_at, expires_at, jkt)
     VALUES ($1, $2, $3, $4, $5, $6, $7)";

/// Locks the parent row: a concurrent rotation of the same token, from any instance, waits
/// here until this one commits or rolls back.
pub(super) const LOCK_PARENT: &str = "SELECT 1 FROM refresh_tokens WHERE jti = $1 FOR UPDATE";

/// Everything rotation needs to decide, read after the lock (READ COMMITTED: this statement
/// sees whatever the rotation that held the lock committed). The last column is NULL when
/// the child row is missing (purged), which counts as not rotated.
pub(super) const SELECT_ROTATION_STATE: &str = "SELECT
        EXISTS (SELECT 1 FROM revoked_families f WHERE f.family = r.family)
            OR EXISTS (SELECT 1 FROM revoked_tokens t WHERE t.jti = r.jti),
        r.rotated_at_ms, r.child_access_jti, r.child_refresh_jti, r.child_issued_at,
        r.child_access_expires_at, r.child_refresh_expires_at,
        (SELECT c.rotated_at_ms IS NOT NULL FROM refresh_tokens c WHERE c.jti = r.child_refresh_jti)
     FROM refresh_tokens r WHERE r.jti = $1";

const MARK_ROTATED: &str = "UPDATE refresh_tokens SET rotated_at_ms = $2, child_access_jti = $3,
        child_refresh_jti = $4, child_issued_at = $5, child_access_expires_at = $6,
        child_refresh_expires_at = $7
     WHERE jti = $1 AND rotated_at_ms IS NULL";

// Revocations keep the later expiry when repeated, so a shorter one cannot cut one short.
const REVOKE_TOKEN: &str = "INSERT INTO revoked_tokens (jti, expires_at) VALUES ($1, $2)
     ON CONFLICT (jti) DO UPDATE SET expires_at = GREATEST(revoked_tokens.expires_at, excluded.expires_at)";
pub(super) const REVOKE_FAMILY: &str = "INSERT INTO revoked_families (family, expires_at) VALUES ($1, $2)
     ON CONFLICT (family) DO UPDATE SET expires_at = GREATEST(revoked_families.expires_at, excluded.expires_at)";
/// Rotation moves the session's last use, never back (concurrent refreshes of one session
/// can commit out of order).
const TOUCH_SESSION: &str =
    "UPDATE sessions SET last_used_at_ms = GREATEST(last_used_at_ms, $2) WHERE id = $1";

/// One query, as `/auth/me` and every bearer route ask it.
pub(super) const IS_REVOKED: &str = "SELECT EXISTS (SELECT 1 FROM revoked_tokens WHERE jti = $1)
     OR EXISTS (SELECT 1 FROM revoked_families WHERE family = $2)";

/// Inserts a refresh token's row, not rotated, on `client` (a connection or a transaction).
pub(super) async fn insert_refresh<C: GenericClient + Sync>(
    client: &C,
    record: &RefreshRecord,
) -> Result<(), Fail> {
    let statement = client.prepare_cached(INSERT_REFRESH).await?;
    client
        .execute(
            &statement,
            &[
                &record.jti,
                &record.family,
                &record.user_id,
                &record.device_id,
                &record.issued_at,
                &record.expires_at,
                &record.jkt,
            ],
        )
        .await?;
    Ok(())
}

/// The rotation state columns of `row` (see [`RotationState`]).
pub(super) fn rotation_state(row: &Row) -> Result<RotationState, Fail> {
    Ok((
        get(row, 0)?,
        get(row, 1)?,
        get(row, 2)?,
        get(row, 3)?,
        get(row, 4)?,
        get(row, 5)?,
        get(row, 6)?,
        get(row, 7)?,
    ))
}

impl PostgresStore {
    async fn rotate(
        &self,
        parent_jti: &str,
        child: &RefreshRecord,
        pair: &ChildPair,
        now_ms: i64,
    ) -> Result<RotateOutcome, Fail> {
        let mut conn = self.conn().await?;
        let tx = conn.transaction().await?;
        let locked = tx
            .query_opt(&tx.prepare_cached(LOCK_PARENT).await?, &[&parent_jti])
            .await?;
        if locked.is_none() {
            return Ok(RotateOutcome::Unknown);
        }
        let state = tx
            .query_one(&tx.prepare_cached(SELECT_ROTATION_STATE).await?, &[&parent_jti])
            .await?;
        if let Some(outcome) = rotation_refusal(rotation_state(&state)?)? {
            return Ok(outcome);
        }
        let marked = tx
            .execute(
                &tx.prepare_cached(MARK_ROTATED).await?,
                &[
                    &parent_jti,
                    &now_ms,
                    &pair.access_jti,
                    &pair.refresh_jti,
                    &pair.issued_at,
                    &pair.access_expires_at,
                    &pair.refresh_expires_at,
                ],
            )
            .await?;
        // Cannot happen while the row is locked; refuse rather than insert a second child.
        if marked != 1 {
            return Err(StoreError::backend("rotate_refresh", "the parent changed while locked").into());
        }
        insert_refresh(&tx, child).await?;
        tx.execute(
            &tx.prepare_cached(TOUCH_SESSION).await?,
            &[&child.family, &now_ms],
        )
        .await?;
        tx.commit().await?;
        Ok(RotateOutcome::Rotated)
    }
}

#[async_trait]
impl TokenStore for PostgresStore {
    async fn insert_refresh(&self, record: RefreshRecord) -> Result<(), StoreError> {
        async { insert_refresh(&self.conn().await?, &record).await }
            .await
            .map_err(|fail: Fail| fail.into_store("insert_refresh"))
    }

    async fn rotate_refresh(
        &self,
        parent_jti: &str,
        child: RefreshRecord,
        pair: ChildPair,
        now_ms: i64,
    ) -> Result<RotateOutcome, StoreError> {
        self.rotate(parent_jti, &child, &pair, now_ms)
            .await
            .map_err(|fail| fail.into_store("rotate_refresh"))
    }

    async fn rotate_checked(&self, check: &CheckedRefresh) -> Result<Option<RefreshVerdict>, StoreError> {
        self.rotate_checked_at_once(check)
            .await
            .map(Some)
            .map_err(|fail| fail.into_store("rotate_checked"))
    }

    async fn revoke_token(&self, jti: &str, expires_at: i64) -> Result<(), StoreError> {
        self.execute_one(REVOKE_TOKEN, &[&jti, &expires_at])
            .await
            .map(drop)
            .map_err(|fail| fail.into_store("revoke_token"))
    }

    async fn revoke_family(&self, family: &str, expires_at: i64) -> Result<(), StoreError> {
        self.execute_one(REVOKE_FAMILY, &[&family, &expires_at])
            .await
            .map(drop)
            .map_err(|fail| fail.into_store("revoke_family"))
    }

    async fn is_revoked(&self, jti: &str, family: Option<&str>) -> Result<bool, StoreError> {
        async {
            let conn = self.conn().await?;
            let statement = conn.prepare_cached(IS_REVOKED).await?;
            // A NULL family matches no row.
            let row = conn.query_one(&statement, &[&jti, &family]).await?;
            get(&row, 0)
        }
        .await
        .map_err(|fail: Fail| fail.into_store("is_revoked"))
    }

    async fn purge_expired_tokens(&self, now: i64) -> Result<u64, StoreError> {
        async {
            let mut conn = self.conn().await?;
            let tx = conn.transaction().await?;
            let mut purged = 0;
            for sql in [
                "DELETE FROM refresh_tokens WHERE expires_at < $1",
                "DELETE FROM revoked_tokens WHERE expires_at < $1",
                "DELETE FROM revoked_families WHERE expires_at < $1",
            ] {
                purged += tx.execute(&tx.prepare_cached(sql).await?, &[&now]).await?;
            }
            tx.commit().await?;
            Ok(purged)
        }
        .await
        .map_err(|fail: Fail| fail.into_store("purge_expired_tokens"))
    }
}
