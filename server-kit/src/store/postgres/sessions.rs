//! Sessions on PostgreSQL.
//!
//! Whatever ends sessions first locks their rows in id order (`ORDER BY id FOR UPDATE`), so
//! two such changes on overlapping sessions, from any instance, wait for each other rather
//! than deadlock, and a row another change ended meanwhile is read again after its lock
//! and skipped (READ COMMITTED re-checks the WHERE clause). A sign-in under a session limit
//! counts the user's live sessions under a transaction-level advisory lock named after the
//! user, so two sign-ins cannot both count the same sessions and both stay.

use super::tokens::insert_refresh;
use super::{Fail, PostgresStore, get};
use crate::store::sessions::{read_aal, read_amr, read_ending, write_amr};
use crate::store::{
    EndedSession, NewSession, RefreshRecord, SessionLimits, SessionRecord, SessionScope, SessionStore,
    StoreError,
};
use crate::tokens::Assurance;
use async_trait::async_trait;
use deadpool_postgres::Transaction;
use holdfast_protocol::EndReason;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

pub(super) const SELECT_SESSION: &str =
    "SELECT id, user_id, device_id, created_at_ms, last_used_at_ms, ip_address,
        user_agent, aal, amr, auth_time, mfa_pending, ended_at_ms, end_reason
     FROM sessions WHERE id = $1";
const SELECT_LATEST_ON_DEVICE: &str = "SELECT id, user_id, device_id, created_at_ms, last_used_at_ms,
        ip_address, user_agent, aal, amr, auth_time, mfa_pending, ended_at_ms, end_reason
     FROM sessions WHERE device_id = $1 ORDER BY (ended_at_ms IS NULL) DESC, created_at_ms DESC, id COLLATE \"C\" DESC LIMIT 1";
/// Live: not ended, used since the idle bound ($2) and signed in since the lifetime bound
/// ($3), as [`SessionLimits::live_bounds`] gives them. Ids are COLLATE "C": bytewise.
const SELECT_LIVE_SESSIONS: &str = "SELECT id, user_id, device_id, created_at_ms, last_used_at_ms,
        ip_address, user_agent, aal, amr, auth_time, mfa_pending, ended_at_ms, end_reason
     FROM sessions
     WHERE user_id = $1 AND ended_at_ms IS NULL AND last_used_at_ms >= $2 AND created_at_ms >= $3
     ORDER BY created_at_ms DESC, id";
/// Serializes the sign-ins of one user (in this schema) that count its sessions.
const LOCK_USER_SIGN_INS: &str = "SELECT pg_advisory_xact_lock(hashtextextended(
        'holdfast-sessions:' || coalesce(current_schema(), '') || ':' || $1::TEXT, 0))";
const LOCK_LIVE_SESSIONS: &str = "SELECT id, user_id, last_used_at_ms, created_at_ms FROM sessions
     WHERE user_id = $1 AND ended_at_ms IS NULL AND last_used_at_ms >= $2 AND created_at_ms >= $3
     ORDER BY id FOR UPDATE";
/// Every [`SessionScope`] in one statement: $2 is `One`'s id, $3 `AllBut`'s, $4 `Device`'s.
const LOCK_IN_SCOPE: &str = "SELECT id, user_id FROM sessions
     WHERE user_id = $1 AND ended_at_ms IS NULL
       AND ($2::TEXT IS NULL OR id = $2) AND ($3::TEXT IS NULL OR id <> $3)
       AND ($4::TEXT IS NULL OR device_id = $4)
     ORDER BY id FOR UPDATE";
const LOCK_EXPIRED: &str = "SELECT id, user_id FROM sessions
     WHERE ended_at_ms IS NULL AND (last_used_at_ms < $1 OR created_at_ms < $2)
     ORDER BY id FOR UPDATE";
/// Ends the sessions of $1 (those not ended yet) and revokes their families, in one
/// statement; returns the ids it ended.
const END_SESSIONS: &str = "WITH ended AS (
        UPDATE sessions SET ended_at_ms = $2, end_reason = $3
        WHERE id = ANY($1) AND ended_at_ms IS NULL
        RETURNING id
     ), revoked AS (
        INSERT INTO revoked_families (family, expires_at) SELECT id, $4::BIGINT FROM ended ORDER BY id
        ON CONFLICT (family) DO UPDATE
            SET expires_at = GREATEST(revoked_families.expires_at, excluded.expires_at)
     )
     SELECT id FROM ended";
const INSERT_SESSION: &str = "INSERT INTO sessions
        (id, user_id, device_id, created_at_ms, last_used_at_ms, ip_address, user_agent, aal, amr,
         auth_time, mfa_pending)
     VALUES ($1, $2, $3, $4, $4, $5, $6, $7, $8, $9, $10)";
/// Records the assurance of a renewed session ($1, locked by the renewal).
const SET_ASSURANCE: &str =
    "UPDATE sessions SET aal = $2, amr = $3, auth_time = $4, mfa_pending = $5 WHERE id = $1";
/// Locks the session against a concurrent end while it is renewed.
const LOCK_RENEWABLE: &str =
    "SELECT 1 FROM sessions WHERE id = $1 AND user_id = $2 AND ended_at_ms IS NULL FOR UPDATE";
/// Locks the family's unrotated refresh tokens: a rotation of one of them (which locks its
/// row first) either committed before, and its child is revoked below, or waits and then
/// finds its parent revoked.
const LOCK_FAMILY_TOKENS: &str =
    "SELECT 1 FROM refresh_tokens WHERE family = $1 AND rotated_at_ms IS NULL ORDER BY jti FOR UPDATE";
const FAMILY_REVOKED: &str = "SELECT EXISTS (SELECT 1 FROM revoked_families WHERE family = $1)";
/// Every token of the family still unexpired at $2 (seconds), rotated or not.
const REVOKE_FAMILY_TOKENS: &str = "INSERT INTO revoked_tokens (jti, expires_at)
     SELECT jti, $3::BIGINT FROM refresh_tokens WHERE family = $1 AND expires_at >= $2 ORDER BY jti
     ON CONFLICT (jti) DO UPDATE SET expires_at = GREATEST(revoked_tokens.expires_at, excluded.expires_at)";

pub(super) fn session_from_row(row: &Row) -> Result<SessionRecord, Fail> {
    Ok(SessionRecord {
        id: get(row, 0)?,
        user_id: get(row, 1)?,
        device_id: get(row, 2)?,
        created_at_ms: get(row, 3)?,
        last_used_at_ms: get(row, 4)?,
        ip_address: get(row, 5)?,
        user_agent: get(row, 6)?,
        assurance: Assurance {
            aal: read_aal(i64::from(get::<i32>(row, 7)?))?,
            amr: read_amr(&get::<String>(row, 8)?),
            auth_time: get(row, 9)?,
            mfa_pending: get(row, 10)?,
        },
        ended: read_ending(get(row, 11)?, get(row, 12)?)?,
    })
}

/// The `(id, user_id)` rows a locking selection returns.
async fn lock_sessions(
    tx: &Transaction<'_>,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<EndedSession>, Fail> {
    tx.query(&tx.prepare_cached(sql).await?, params)
        .await?
        .iter()
        .map(|row| {
            Ok(EndedSession {
                id: get(row, 0)?,
                user_id: get(row, 1)?,
            })
        })
        .collect()
}

/// Ends `sessions` (locked by the caller's transaction; those not ended yet), revoking
/// their families until `revoke_until`. Returns them in their given order.
async fn end(
    tx: &Transaction<'_>,
    sessions: Vec<EndedSession>,
    reason: EndReason,
    now_ms: i64,
    revoke_until: i64,
) -> Result<Vec<EndedSession>, Fail> {
    if sessions.is_empty() {
        return Ok(sessions);
    }
    let ids: Vec<&str> = sessions.iter().map(|s| s.id.as_str()).collect();
    let ended = tx
        .query(
            &tx.prepare_cached(END_SESSIONS).await?,
            &[&ids, &now_ms, &reason.as_str(), &revoke_until],
        )
        .await?
        .iter()
        .map(|row| get::<String>(row, 0))
        .collect::<Result<std::collections::HashSet<_>, _>>()?;
    Ok(sessions.into_iter().filter(|s| ended.contains(&s.id)).collect())
}

impl PostgresStore {
    async fn start(
        &self,
        session: &NewSession,
        first: &RefreshRecord,
        limits: SessionLimits,
        revoke_until: i64,
    ) -> Result<Vec<EndedSession>, Fail> {
        let mut conn = self.conn().await?;
        let tx = conn.transaction().await?;
        let mut evict = Vec::new();
        if let Some(max) = limits.max_per_user {
            tx.execute(&tx.prepare_cached(LOCK_USER_SIGN_INS).await?, &[&session.user_id])
                .await?;
            let (idle_bound, lifetime_bound) = limits.live_bounds(session.created_at_ms);
            let statement = tx.prepare_cached(LOCK_LIVE_SESSIONS).await?;
            let rows = tx
                .query(&statement, &[&session.user_id, &idle_bound, &lifetime_bound])
                .await?;
            // Least recently used first, as the other backends order them.
            let mut live = rows
                .iter()
                .map(|row| Ok((get::<i64>(row, 2)?, get::<i64>(row, 3)?, get::<String>(row, 0)?)))
                .collect::<Result<Vec<_>, Fail>>()?;
            live.sort();
            let excess = (live.len() + 1).saturating_sub(max as usize);
            evict = live
                .into_iter()
                .take(excess)
                .map(|(_, _, id)| EndedSession {
                    user_id: session.user_id.clone(),
                    id,
                })
                .collect();
        }
        insert_refresh(&tx, first).await?;
        let ended = end(
            &tx,
            evict,
            EndReason::SessionLimit,
            session.created_at_ms,
            revoke_until,
        )
        .await?;
        let assurance = &session.assurance;
        let (aal, amr) = (i32::from(assurance.aal), write_amr(&assurance.amr));
        tx.execute(
            &tx.prepare_cached(INSERT_SESSION).await?,
            &[
                &session.id,
                &session.user_id,
                &session.device_id,
                &session.created_at_ms,
                &session.ip_address,
                &session.user_agent,
                &aal,
                &amr,
                &assurance.auth_time,
                &assurance.mfa_pending,
            ],
        )
        .await?;
        tx.commit().await?;
        Ok(ended)
    }

    /// Ends what `select` (a locking selection) finds with `params`.
    async fn end_selected(
        &self,
        select: &str,
        params: &[&(dyn ToSql + Sync)],
        reason: EndReason,
        now_ms: i64,
        revoke_until: i64,
    ) -> Result<Vec<EndedSession>, Fail> {
        let mut conn = self.conn().await?;
        let tx = conn.transaction().await?;
        let chosen = lock_sessions(&tx, select, params).await?;
        let ended = end(&tx, chosen, reason, now_ms, revoke_until).await?;
        tx.commit().await?;
        Ok(ended)
    }

    async fn renew(
        &self,
        next: &RefreshRecord,
        assurance: &Assurance,
        revoke_until: i64,
    ) -> Result<bool, Fail> {
        let mut conn = self.conn().await?;
        let tx = conn.transaction().await?;
        let locked = tx
            .query_opt(
                &tx.prepare_cached(LOCK_RENEWABLE).await?,
                &[&next.family, &next.user_id],
            )
            .await?;
        if locked.is_none() {
            return Ok(false);
        }
        let revoked = tx
            .query_one(&tx.prepare_cached(FAMILY_REVOKED).await?, &[&next.family])
            .await?;
        if get::<bool>(&revoked, 0)? {
            return Ok(false);
        }
        tx.query(&tx.prepare_cached(LOCK_FAMILY_TOKENS).await?, &[&next.family])
            .await?;
        tx.execute(
            &tx.prepare_cached(REVOKE_FAMILY_TOKENS).await?,
            &[&next.family, &next.issued_at, &revoke_until],
        )
        .await?;
        insert_refresh(&tx, next).await?;
        let (aal, amr) = (i32::from(assurance.aal), write_amr(&assurance.amr));
        tx.execute(
            &tx.prepare_cached(SET_ASSURANCE).await?,
            &[
                &next.family,
                &aal,
                &amr,
                &assurance.auth_time,
                &assurance.mfa_pending,
            ],
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }
}

#[async_trait]
impl SessionStore for PostgresStore {
    async fn start_session(
        &self,
        session: NewSession,
        first: RefreshRecord,
        limits: SessionLimits,
        revoke_until: i64,
    ) -> Result<Vec<EndedSession>, StoreError> {
        self.start(&session, &first, limits, revoke_until)
            .await
            .map_err(|fail| fail.into_store("start_session"))
    }

    async fn find_session(&self, id: &str) -> Result<Option<SessionRecord>, StoreError> {
        async {
            let conn = self.conn().await?;
            let statement = conn.prepare_cached(SELECT_SESSION).await?;
            conn.query_opt(&statement, &[&id])
                .await?
                .as_ref()
                .map(session_from_row)
                .transpose()
        }
        .await
        .map_err(|fail: Fail| fail.into_store("find_session"))
    }

    async fn latest_session_on_device(&self, device_id: &str) -> Result<Option<SessionRecord>, StoreError> {
        async {
            let conn = self.conn().await?;
            let statement = conn.prepare_cached(SELECT_LATEST_ON_DEVICE).await?;
            conn.query_opt(&statement, &[&device_id])
                .await?
                .as_ref()
                .map(session_from_row)
                .transpose()
        }
        .await
        .map_err(|fail: Fail| fail.into_store("latest_session_on_device"))
    }

    async fn list_sessions(
        &self,
        user_id: &str,
        limits: SessionLimits,
        now_ms: i64,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        let (idle_bound, lifetime_bound) = limits.live_bounds(now_ms);
        async {
            let conn = self.conn().await?;
            let statement = conn.prepare_cached(SELECT_LIVE_SESSIONS).await?;
            conn.query(&statement, &[&user_id, &idle_bound, &lifetime_bound])
                .await?
                .iter()
                .map(session_from_row)
                .collect::<Result<Vec<_>, _>>()
        }
        .await
        .map_err(|fail: Fail| fail.into_store("list_sessions"))
    }

    async fn end_sessions(
        &self,
        user_id: &str,
        scope: SessionScope<'_>,
        reason: EndReason,
        now_ms: i64,
        revoke_until: i64,
    ) -> Result<Vec<EndedSession>, StoreError> {
        let (one, all_but, device) = scope.as_filters();
        self.end_selected(
            LOCK_IN_SCOPE,
            &[&user_id, &one, &all_but, &device],
            reason,
            now_ms,
            revoke_until,
        )
        .await
        .map_err(|fail| fail.into_store("end_sessions"))
    }

    async fn end_expired_sessions(
        &self,
        limits: SessionLimits,
        now_ms: i64,
        revoke_until: i64,
    ) -> Result<Vec<EndedSession>, StoreError> {
        let (idle_bound, lifetime_bound) = limits.live_bounds(now_ms);
        self.end_selected(
            LOCK_EXPIRED,
            &[&idle_bound, &lifetime_bound],
            EndReason::Expired,
            now_ms,
            revoke_until,
        )
        .await
        .map_err(|fail| fail.into_store("end_expired_sessions"))
    }

    async fn renew_session(
        &self,
        next: RefreshRecord,
        assurance: &Assurance,
        revoke_until: i64,
    ) -> Result<bool, StoreError> {
        self.renew(&next, assurance, revoke_until)
            .await
            .map_err(|fail| fail.into_store("renew_session"))
    }

    async fn purge_sessions(&self, before_ms: i64) -> Result<u64, StoreError> {
        self.execute_one(
            "DELETE FROM sessions WHERE coalesce(ended_at_ms, last_used_at_ms) < $1",
            &[&before_ms],
        )
        .await
        .map_err(|fail| fail.into_store("purge_sessions"))
    }
}
