//! A refresh's checks and rotation in one grouped write (see
//! [`crate::store::TokenStore::rotate_checked`]): one trip to the writer instead of a
//! session read, three standing reads and the rotation.

use super::Fail;
use super::accounts::{find_device, find_user_by_id};
use super::sessions::find_session;
use super::token_rows::{is_revoked, rotate};
use crate::store::{CheckedRefresh, RefreshVerdict, RotateOutcome, StandingRecord};
use rusqlite::Connection;

/// Checks the session, then the standing, then rotates, as the refresh route would ask
/// them one by one; on a connection already in a transaction.
pub(super) fn rotate_checked(conn: &Connection, check: &CheckedRefresh) -> Result<RefreshVerdict, Fail> {
    // A family without a session record passes: the rotation decides.
    if let Some(session) = find_session(conn, &check.family)? {
        if let Some(ending) = session.ended {
            return Ok(RefreshVerdict::SessionEnded(ending.reason));
        }
        if check
            .limits
            .expired(session.created_at_ms, session.last_used_at_ms, check.now_ms)
        {
            return Ok(RefreshVerdict::SessionExpired);
        }
    }
    // The same record the bearer routes read, in this transaction.
    let standing = StandingRecord {
        revoked: is_revoked(conn, &check.parent_jti, Some(&check.family))?,
        user: find_user_by_id(conn, &check.user_id)?,
        device: find_device(conn, &check.device_id)?,
    };
    if !standing.admits(&check.user_id) {
        return Ok(RefreshVerdict::Refused(Box::new(standing)));
    }
    let outcome = rotate(conn, &check.parent_jti, &check.child, &check.pair, check.now_ms)?;
    let child_revoked = match &outcome {
        RotateOutcome::AlreadyRotated { pair, .. } => is_revoked(conn, &pair.refresh_jti, None)?,
        _ => false,
    };
    Ok(RefreshVerdict::Rotation {
        outcome,
        child_revoked,
    })
}
