//! A refresh checked and rotated in one store call: what
//! [`super::TokenStore::rotate_checked`] takes and answers.

use holdfast_protocol::EndReason;

use super::{ChildPair, RefreshRecord, RotateOutcome, SessionLimits};

/// A refresh to check and rotate at once: the parent token's identity, its children and
/// the session limits to check its session against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedRefresh {
    /// The parent refresh token's `jti`.
    pub parent_jti: String,
    /// Its family (the session id).
    pub family: String,
    /// Its user (`sub`).
    pub user_id: String,
    /// Its device (`dev`).
    pub device_id: String,
    /// The child refresh token's record.
    pub child: RefreshRecord,
    /// The children to record on the parent.
    pub pair: ChildPair,
    /// Now, ms: the rotation time and the time the session limits are checked at.
    pub now_ms: i64,
    /// The server's session limits.
    pub limits: SessionLimits,
}

/// What [`super::TokenStore::rotate_checked`] found, in the order the checks run: the
/// session (by the family), then the standing of the token (revocation, user, device),
/// then the rotation. Only [`RefreshVerdict::Rotation`] with
/// [`RotateOutcome::Rotated`] changed anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshVerdict {
    /// The session ended, for this reason.
    SessionEnded(EndReason),
    /// The session is past its idle timeout or lifetime at `now_ms` but not yet recorded
    /// as ended (the caller ends it).
    SessionExpired,
    /// The token's standing failed ([`super::StandingRecord::admits`]): what was read,
    /// for the caller to say which refusal applies.
    Refused(Box<super::StandingRecord>),
    /// Every check passed and the rotation ran.
    Rotation {
        /// How it went, as [`super::TokenStore::rotate_refresh`] says.
        outcome: RotateOutcome,
        /// For [`RotateOutcome::AlreadyRotated`]: whether the recorded child refresh
        /// token is revoked by its `jti` (superseded); `false` otherwise.
        child_revoked: bool,
    },
}
