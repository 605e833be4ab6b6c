//! Sessions on SQLite.
//!
//! Every change runs on the writer in one `BEGIN IMMEDIATE` transaction, so what a session
//! change decides from (which sessions are live, whether a family is revoked) cannot move
//! under it, here or in another process sharing the file.

use super::token_rows::{REVOKE_FAMILY, insert_refresh};
use super::{Fail, SqliteStore};
use crate::store::sessions::{read_aal, read_amr, read_ending, write_amr};
use crate::store::{
    EndedSession, NewSession, RefreshRecord, SessionLimits, SessionRecord, SessionScope, SessionStore,
    StoreError,
};
use crate::tokens::Assurance;
use async_trait::async_trait;
use holdfast_protocol::EndReason;
use rusqlite::{Connection, Row, TransactionBehavior, params};

const SELECT_SESSION: &str = "SELECT id, user_id, device_id, created_at_ms, last_used_at_ms, ip_address,
        user_agent, aal, amr, auth_time, mfa_pending, ended_at_ms, end_reason
     FROM sessions WHERE id = ?1";
const SELECT_LATEST_ON_DEVICE: &str = "SELECT id, user_id, device_id, created_at_ms, last_used_at_ms,
        ip_address, user_agent, aal, amr, auth_time, mfa_pending, ended_at_ms, end_reason
     FROM sessions WHERE device_id = ?1 ORDER BY (ended_at_ms IS NULL) DESC, created_at_ms DESC, id DESC LIMIT 1";
/// Live: not ended, used since the idle bound (?2) and signed in since the lifetime bound
/// (?3), as [`SessionLimits::live_bounds`] gives them. Ids compare bytewise (BINARY), as
/// Rust compares strings.
const SELECT_LIVE_SESSIONS: &str = "SELECT id, user_id, device_id, created_at_ms, last_used_at_ms,
        ip_address, user_agent, aal, amr, auth_time, mfa_pending, ended_at_ms, end_reason
     FROM sessions
     WHERE user_id = ?1 AND ended_at_ms IS NULL AND last_used_at_ms >= ?2 AND created_at_ms >= ?3
     ORDER BY created_at_ms DESC, id";
/// The user's live sessions, least recently used first: the order a sign-in past the
/// limit ends them in.
const SELECT_LEAST_RECENTLY_USED: &str = "SELECT id, user_id FROM sessions
     WHERE user_id = ?1 AND ended_at_ms IS NULL AND last_used_at_ms >= ?2 AND created_at_ms >= ?3
     ORDER BY last_used_at_ms, created_at_ms, id";
/// Every [`SessionScope`] in one statement: ?2 is `One`'s id, ?3 `AllBut`'s, ?4 `Device`'s.
const SELECT_IN_SCOPE: &str = "SELECT id, user_id FROM sessions
     WHERE user_id = ?1 AND ended_at_ms IS NULL
       AND (?2 IS NULL OR id = ?2) AND (?3 IS NULL OR id <> ?3) AND (?4 IS NULL OR device_id = ?4)
     ORDER BY id";
const SELECT_EXPIRED: &str = "SELECT id, user_id FROM sessions
     WHERE ended_at_ms IS NULL AND (last_used_at_ms < ?1 OR created_at_ms < ?2)
     ORDER BY id";
const END_SESSION: &str =
    "UPDATE sessions SET ended_at_ms = ?2, end_reason = ?3 WHERE id = ?1 AND ended_at_ms IS NULL";
const INSERT_SESSION: &str = "INSERT INTO sessions
        (id, user_id, device_id, created_at_ms, last_used_at_ms, ip_address, user_agent, aal, amr,
         auth_time, mfa_pending)
     VALUES (?1, ?2, ?3, ?4, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";
/// Records the assurance of a renewed session (?1).
const SET_ASSURANCE: &str =
    "UPDATE sessions SET aal = ?2, amr = ?3, auth_time = ?4, mfa_pending = ?5 WHERE id = ?1";
const RENEWABLE: &str = "SELECT
        EXISTS (SELECT 1 FROM sessions WHERE id = ?1 AND user_id = ?2 AND ended_at_ms IS NULL)
        AND NOT EXISTS (SELECT 1 FROM revoked_families WHERE family = ?1)";
/// Every token of the family still unexpired at ?2 (seconds), rotated or not. The WHERE
/// clause also keeps SQLite from reading `ON CONFLICT` as part of the SELECT.
const REVOKE_FAMILY_TOKENS: &str = "INSERT INTO revoked_tokens (jti, expires_at)
     SELECT jti, ?3 FROM refresh_tokens WHERE family = ?1 AND expires_at >= ?2
     ON CONFLICT (jti) DO UPDATE SET expires_at = max(expires_at, excluded.expires_at)";

fn session_from_row(row: &Row<'_>) -> Result<SessionRecord, Fail> {
    Ok(SessionRecord {
        id: row.get(0)?,
        user_id: row.get(1)?,
        device_id: row.get(2)?,
        created_at_ms: row.get(3)?,
        last_used_at_ms: row.get(4)?,
        ip_address: row.get(5)?,
        user_agent: row.get(6)?,
        assurance: Assurance {
            aal: read_aal(row.get(7)?)?,
            amr: read_amr(&row.get::<_, String>(8)?),
            auth_time: row.get(9)?,
            mfa_pending: row.get(10)?,
        },
        ended: read_ending(row.get(11)?, row.get(12)?)?,
    })
}

/// The session `id`, if recorded.
pub(super) fn find_session(conn: &Connection, id: &str) -> Result<Option<SessionRecord>, Fail> {
    conn.prepare_cached(SELECT_SESSION)?
        .query_and_then([id], session_from_row)?
        .next()
        .transpose()
}

/// The `(id, user_id)` rows of a selection.
fn select_sessions(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<EndedSession>, Fail> {
    Ok(conn
        .prepare_cached(sql)?
        .query_map(params, |row| {
            Ok(EndedSession {
                id: row.get(0)?,
                user_id: row.get(1)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?)
}

/// Ends `sessions` (those not ended yet), in their order, and revokes their families until
/// `revoke_until`; in the caller's transaction.
fn end(
    conn: &Connection,
    sessions: Vec<EndedSession>,
    reason: EndReason,
    now_ms: i64,
    revoke_until: i64,
) -> Result<Vec<EndedSession>, Fail> {
    let mut ended = Vec::with_capacity(sessions.len());
    for session in sessions {
        let changed =
            conn.prepare_cached(END_SESSION)?
                .execute(params![session.id, now_ms, reason.as_str()])?;
        if changed > 0 {
            conn.prepare_cached(REVOKE_FAMILY)?
                .execute(params![session.id, revoke_until])?;
            ended.push(session);
        }
    }
    Ok(ended)
}

/// Starts `session` with `first` (see [`SessionStore::start_session`]).
fn start(
    conn: &mut Connection,
    session: &NewSession,
    first: &RefreshRecord,
    limits: SessionLimits,
    revoke_until: i64,
) -> Result<Vec<EndedSession>, Fail> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut evict = Vec::new();
    if let Some(max) = limits.max_per_user {
        let (idle_bound, lifetime_bound) = limits.live_bounds(session.created_at_ms);
        let live = select_sessions(
            &tx,
            SELECT_LEAST_RECENTLY_USED,
            params![session.user_id, idle_bound, lifetime_bound],
        )?;
        let excess = (live.len() + 1).saturating_sub(max as usize);
        evict = live.into_iter().take(excess).collect();
    }
    insert_refresh(&tx, first)?;
    let ended = end(
        &tx,
        evict,
        EndReason::SessionLimit,
        session.created_at_ms,
        revoke_until,
    )?;
    tx.prepare_cached(INSERT_SESSION)?.execute(params![
        session.id,
        session.user_id,
        session.device_id,
        session.created_at_ms,
        session.ip_address,
        session.user_agent,
        session.assurance.aal,
        write_amr(&session.assurance.amr),
        session.assurance.auth_time,
        session.assurance.mfa_pending
    ])?;
    tx.commit()?;
    Ok(ended)
}

/// Renews the session of `next.family` (see [`SessionStore::renew_session`]).
fn renew(
    conn: &mut Connection,
    next: &RefreshRecord,
    assurance: &Assurance,
    revoke_until: i64,
) -> Result<bool, Fail> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let renewable: bool = tx
        .prepare_cached(RENEWABLE)?
        .query_row(params![next.family, next.user_id], |row| row.get(0))?;
    if !renewable {
        return Ok(false);
    }
    tx.prepare_cached(REVOKE_FAMILY_TOKENS)?
        .execute(params![next.family, next.issued_at, revoke_until])?;
    insert_refresh(&tx, next)?;
    tx.prepare_cached(SET_ASSURANCE)?.execute(params![
        next.family,
        assurance.aal,
        write_amr(&assurance.amr),
        assurance.auth_time,
        assurance.mfa_pending
    ])?;
    tx.commit()?;
    Ok(true)
}

#[async_trait]
impl SessionStore for SqliteStore {
    async fn start_session(
        &self,
        session: NewSession,
        first: RefreshRecord,
        limits: SessionLimits,
        revoke_until: i64,
    ) -> Result<Vec<EndedSession>, StoreError> {
        self.write("start_session", move |conn| {
            start(conn, &session, &first, limits, revoke_until)
        })
        .await
    }

    async fn find_session(&self, id: &str) -> Result<Option<SessionRecord>, StoreError> {
        let id = id.to_owned();
        self.read("find_session", move |conn| find_session(conn, &id))
            .await
    }

    async fn latest_session_on_device(&self, device_id: &str) -> Result<Option<SessionRecord>, StoreError> {
        let device_id = device_id.to_owned();
        self.read("latest_session_on_device", move |conn| {
            conn.prepare_cached(SELECT_LATEST_ON_DEVICE)?
                .query_and_then([device_id], session_from_row)?
                .next()
                .transpose()
        })
        .await
    }

    async fn list_sessions(
        &self,
        user_id: &str,
        limits: SessionLimits,
        now_ms: i64,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        let user_id = user_id.to_owned();
        let (idle_bound, lifetime_bound) = limits.live_bounds(now_ms);
        self.read("list_sessions", move |conn| {
            conn.prepare_cached(SELECT_LIVE_SESSIONS)?
                .query_and_then(params![user_id, idle_bound, lifetime_bound], session_from_row)?
                .collect()
        })
        .await
    }

    async fn end_sessions(
        &self,
        user_id: &str,
        scope: SessionScope<'_>,
        reason: EndReason,
        now_ms: i64,
        revoke_until: i64,
    ) -> Result<Vec<EndedSession>, StoreError> {
        let user_id = user_id.to_owned();
        let (one, all_but, device) = scope.as_filters();
        let (one, all_but, device) = (
            one.map(str::to_owned),
            all_but.map(str::to_owned),
            device.map(str::to_owned),
        );
        self.write("end_sessions", move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let chosen = select_sessions(&tx, SELECT_IN_SCOPE, params![user_id, one, all_but, device])?;
            let ended = end(&tx, chosen, reason, now_ms, revoke_until)?;
            tx.commit()?;
            Ok(ended)
        })
        .await
    }

    async fn end_expired_sessions(
        &self,
        limits: SessionLimits,
        now_ms: i64,
        revoke_until: i64,
    ) -> Result<Vec<EndedSession>, StoreError> {
        let (idle_bound, lifetime_bound) = limits.live_bounds(now_ms);
        self.write("end_expired_sessions", move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let expired = select_sessions(&tx, SELECT_EXPIRED, params![idle_bound, lifetime_bound])?;
            let ended = end(&tx, expired, EndReason::Expired, now_ms, revoke_until)?;
            tx.commit()?;
            Ok(ended)
        })
        .await
    }

    async fn renew_session(
        &self,
        next: RefreshRecord,
        assurance: &Assurance,
        revoke_until: i64,
    ) -> Result<bool, StoreError> {
        let assurance = assurance.clone();
        self.write("renew_session", move |conn| {
            renew(conn, &next, &assurance, revoke_until)
        })
        .await
    }

    async fn purge_sessions(&self, before_ms: i64) -> Result<u64, StoreError> {
        self.write("purge_sessions", move |conn| {
            Ok(conn
                .prepare_cached("DELETE FROM sessions WHERE coalesce(ended_at_ms, last_used_at_ms) < ?1")?
                .execute([before_ms])? as u64)
        })
        .await
    }
}
