//! What the app sees of the session: [`AuthState`] and the [`AuthEvent`]s subscribers get.

use holdfast_protocol::ErrorCode;
use holdfast_protocol::wire::User;

use crate::error::TransientCause;

/// Why the client is signed out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignOutReason {
    /// No session is stored for this server (never signed in, or signed out earlier).
    NoStoredSession,
    /// The stored session could not be decrypted; it was quarantined (kept aside, not
    /// deleted) and the user must sign in again.
    StoredSessionUnreadable,
    /// The user signed out.
    UserSignedOut,
    /// The server definitively rejected the session and device re-login was not possible.
    SessionRejected {
        /// The server's code.
        code: ErrorCode,
    },
    /// This device was revoked (from another device or by the server); its secrets were
    /// wiped.
    DeviceRevoked,
    /// The account no longer exists.
    AccountDeleted,
}

/// The session as the app sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthState {
    /// Reading the stored session (no network involved).
    Restoring,
    /// Signed in. `token_fresh` is false while the access token is expired and could not be
    /// refreshed yet (offline): the user stays signed in.
    SignedIn {
        /// The signed-in user, as last known.
        user: User,
        /// Whether the access token is currently valid.
        token_fresh: bool,
    },
    /// Signed out, and why.
    SignedOut {
        /// Why.
        reason: SignOutReason,
    },
    /// The stored session cannot be read now (locked keychain, unreadable file). Never
    /// reported as signed out: nothing was lost.
    Unavailable {
        /// What failed, without secrets.
        reason: String,
    },
}

impl AuthState {
    /// Whether a user is signed in (fresh token or not).
    pub fn is_signed_in(&self) -> bool {
        matches!(self, AuthState::SignedIn { .. })
    }
}

/// Something that happened, for subscribers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthEvent {
    /// The state changed.
    StateChanged(AuthState),
    /// The tokens were refreshed (by this process or another one sharing the store).
    Refreshed,
    /// A refresh failed for a transient reason; the session is kept and retried later.
    RefreshFailed {
        /// Why.
        cause: TransientCause,
    },
    /// The server reported refresh-token reuse: someone else used this session's token.
    ReuseDetected,
    /// The local clock differs from the server's by more than a minute.
    ClockSkew {
        /// Server time minus local time, ms.
        offset_ms: i64,
    },
    /// The device key could not be read; device re-login is unavailable until re-registration.
    DeviceKeyLost,
}
