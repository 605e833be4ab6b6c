//! A refresh's checks and rotation in one grouped write (see
//! [`crate::store::TokenStore::rotate_checked`]): one trip to the writer instead of a
//! session read, three standing reads and the rotation.

use super::Fail;
use super::accounts::{SELECT_USER_BY_ID, find_device, find_user_where};
use super::sessions::find_session;
use super::token_rows::{is_revoked, rotate};
use crate::store::{CheckedRefresh, RefreshVerdict, RotateOutcome};
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
    if let Some(refusal) = standing(conn, check)? {
        return Ok(refusal);
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

/// The bearer routes' standing checks, with the same precedence: a revoked token says the
/// more specific cause (no user, disabled, device revoked) when there is one.
fn standing(conn: &Connection, check: &CheckedRefresh) -> Result<Option<RefreshVerdict>, Fail> {
    let revoked = is_revoked(conn, &check.parent_jti, Some(&check.family))?;
    let Some(user) = find_user_where(conn, SELECT_USER_BY_ID, &check.user_id)? else {
        return Ok(Some(RefreshVerdict::UserNotFound));
    };
    if user.disabled_at_ms.is_some() {
        return Ok(Some(RefreshVerdict::AccountDisabled));
    }
    let device = find_device(conn, &check.device_id)?;
    if revoked {
        let device_revoked = device.is_some_and(|d| d.revoked && d.user_id == check.user_id);
        return Ok(Some(if device_revoked {
            RefreshVerdict::DeviceRevoked
        } else {
            RefreshVerdict::TokenRevoked
        }));
    }
    Ok(match device {
        Some(device) if device.user_id != check.user_id => Some(RefreshVerdict::DeviceMismatch),
        Some(device) if device.revoked => Some(RefreshVerdict::DeviceRevoked),
        _ => None,
    })
}
