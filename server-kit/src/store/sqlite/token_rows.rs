//! The rows of refresh rotation and revocation on SQLite, as plain functions on a
//! connection: what the token store, the session store and the one-trip refresh share.

use super::Fail;
use crate::store::rotation::{RotationState, rotation_refusal};
use crate::store::{ChildPair, RefreshRecord, RotateOutcome};
use rusqlite::{Connection, OptionalExtension, params};

const INSERT_REFRESH: &str =
    "INSERT INTO refresh_tokens (jti, family, user_id, device_id, issued_at, expires_at, jkt)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";

/// Everything rotation needs to decide, in one lookup. The last column is NULL when the
/// child row is missing (purged), which counts as not rotated.
const SELECT_ROTATION_STATE: &str = "SELECT
        EXISTS (SELECT 1 FROM revoked_families f WHERE f.family = r.family)
            OR EXISTS (SELECT 1 FROM revoked_tokens t WHERE t.jti = r.jti),
        r.rotated_at_ms, r.child_access_jti, r.child_refresh_jti, r.child_issued_at,
        r.child_access_expires_at, r.child_refresh_expires_at,
        (SELECT c.rotated_at_ms IS NOT NULL FROM refresh_tokens c WHERE c.jti = r.child_refresh_jti)
     FROM refresh_tokens r WHERE r.jti = ?1";

const MARK_ROTATED: &str = "UPDATE refresh_tokens SET rotated_at_ms = ?2, child_access_jti = ?3,
        child_refresh_jti = ?4, child_issued_at = ?5, child_access_expires_at = ?6,
        child_refresh_expires_at = ?7
     WHERE jti = ?1";

// Revocations keep the later expiry when repeated, so a shorter one cannot cut one short.
pub(super) const REVOKE_TOKEN: &str = "INSERT INTO revoked_tokens (jti, expires_at) VALUES (?1, ?2)
     ON CONFLICT (jti) DO UPDATE SET expires_at = max(expires_at, excluded.expires_at)";
pub(super) const REVOKE_FAMILY: &str = "INSERT INTO revoked_families (family, expires_at) VALUES (?1, ?2)
     ON CONFLICT (family) DO UPDATE SET expires_at = max(expires_at, excluded.expires_at)";

/// Rotation moves the session's last use, never back (concurrent refreshes of one session
/// can commit out of order).
const TOUCH_SESSION: &str = "UPDATE sessions SET last_used_at_ms = max(last_used_at_ms, ?2) WHERE id = ?1";

/// One query, as `/auth/me` and every bearer route ask it.
const IS_REVOKED: &str = "SELECT EXISTS (SELECT 1 FROM revoked_tokens WHERE jti = ?1)
     OR EXISTS (SELECT 1 FROM revoked_families WHERE family = ?2)";

/// Whether the token `jti`, or its `family`, is revoked.
pub(super) fn is_revoked(conn: &Connection, jti: &str, family: Option<&str>) -> Result<bool, Fail> {
    // A NULL family matches no row.
    Ok(conn
        .prepare_cached(IS_REVOKED)?
        .query_row(params![jti, family], |row| row.get(0))?)
}

/// Inserts a refresh token's row, not rotated.
pub(super) fn insert_refresh(conn: &Connection, record: &RefreshRecord) -> Result<(), Fail> {
    conn.prepare_cached(INSERT_REFRESH)?.execute(params![
        record.jti,
        record.family,
        record.user_id,
        record.device_id,
        record.issued_at,
        record.expires_at,
        record.jkt
    ])?;
    Ok(())
}

/// Rotates `parent_jti` into `child` (see [`TokenStore::rotate_refresh`]), on a connection
/// already in a transaction.
pub(super) fn rotate(
    conn: &Connection,
    parent_jti: &str,
    child: &RefreshRecord,
    pair: &ChildPair,
    now_ms: i64,
) -> Result<RotateOutcome, Fail> {
    let state: Option<RotationState> = conn
        .prepare_cached(SELECT_ROTATION_STATE)?
        .query_row([parent_jti], |row| {
            Ok((
                row.get(0)?,
                row.get(1)?,
                row.get(2)?,
                row.get(3)?,
                row.get(4)?,
                row.get(5)?,
                row.get(6)?,
                row.get(7)?,
            ))
        })
        .optional()?;
    let Some(state) = state else {
        return Ok(RotateOutcome::Unknown);
    };
    if let Some(outcome) = rotation_refusal(state)? {
        return Ok(outcome);
    }
    conn.prepare_cached(MARK_ROTATED)?.execute(params![
        parent_jti,
        now_ms,
        pair.access_jti,
        pair.refresh_jti,
        pair.issued_at,
        pair.access_expires_at,
        pair.refresh_expires_at
    ])?;
    insert_refresh(conn, child)?;
    conn.prepare_cached(TOUCH_SESSION)?
        .execute(params![child.family, now_ms])?;
    Ok(RotateOutcome::Rotated)
}
