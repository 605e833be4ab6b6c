//! What the app sees of the session: [`AuthState`] and the [`AuthEvent`]s subscribers get.

use holdfast_protocol::wire::User;
use holdfast_protocol::{EndReason, ErrorCode};

use super::records::Tokens;
use crate::error::TransientCause;

/// Why the client is signed out: what the app tells its user.
///
/// A session the server ended says why (PROTOCOL 8): [`SignOutReason::SessionEnded`] with
/// the server's reason, or, for the reasons that are about more than the session, their
/// own variants ([`SignOutReason::DeviceRevoked`], [`SignOutReason::AccountDisabled`],
/// [`SignOutReason::AccountDeleted`]). [`SignOutReason::ended`] makes the one from the
/// other. [`SignOutReason::SessionRejected`] is left for a rejection that gave no reason (a
/// Kora server, a lost refresh token) when device re-login was not possible either.
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
    /// wiped, its key too.
    DeviceRevoked,
    /// The account no longer exists (deleted here, elsewhere or by the deployment); its
    /// secrets were wiped, the device key too (the server forgot the device with the
    /// account).
    AccountDeleted,
    /// The server ended this session, and said why: revoked from another session
    /// ([`EndReason::Revoked`], [`EndReason::RevokedByOtherSession`]), signed out
    /// everywhere (from another session, or here by
    /// [`AuthClient::sign_out_everywhere`](super::AuthClient::sign_out_everywhere)), the
    /// password changed elsewhere or reset, a newer sign-in past the session limit, idle or
    /// too old ([`EndReason::Expired`]). The session's secrets were wiped; the device key
    /// is kept (the next sign-in reuses this device's identity). Never one of the reasons
    /// with a variant of their own.
    SessionEnded {
        /// The server's reason; [`EndReason::message`] is a sentence to show.
        reason: EndReason,
    },
    /// An operator disabled the account: every session of it ended, and signing in is
    /// refused until the account is enabled again. The device key is kept.
    AccountDisabled,
}

impl SignOutReason {
    /// The sign-out a session ended for `reason` makes: the variant of its own for a device
    /// revocation, a disabled or a deleted account, [`SignOutReason::SessionEnded`]
    /// otherwise.
    pub fn ended(reason: EndReason) -> SignOutReason {
        match reason {
            EndReason::DeviceRevoked => SignOutReason::DeviceRevoked,
            EndReason::AccountDisabled => SignOutReason::AccountDisabled,
            EndReason::AccountDeleted => SignOutReason::AccountDeleted,
            other => SignOutReason::SessionEnded { reason: other },
        }
    }

    /// Whether this sign-out wipes the device key as well as the session: the device can
    /// no longer sign in (revoked), or the server forgot it with the account.
    pub(super) fn wipes_device(&self) -> bool {
        matches!(self, SignOutReason::DeviceRevoked | SignOutReason::AccountDeleted)
    }
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
    /// The password was right and the account has a second factor (PROTOCOL 9): the user
    /// must now enter a code from their authenticator app
    /// ([`AuthClient::complete_sign_in_with_code`](super::AuthClient::complete_sign_in_with_code))
    /// or one of their recovery codes
    /// ([`AuthClient::complete_sign_in_with_recovery_code`](super::AuthClient::complete_sign_in_with_recovery_code)).
    /// Show the code screen, not the sign-in screen: the password is not needed again.
    ///
    /// The session is kept like any other (it survives a restart, and its refresh stays in
    /// this state) but is good for nothing else until then:
    /// [`AuthClient::access_token`](super::AuthClient::access_token) fails with
    /// [`AuthError::SecondFactorRequired`](crate::AuthError::SecondFactorRequired).
    /// [`AuthClient::sign_out`](super::AuthClient::sign_out) abandons it.
    SecondFactorRequired {
        /// The user signing in, as the server sent it.
        user: User,
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
    /// Whether a user is signed in (fresh token or not). `false` while a sign-in waits for
    /// its second factor ([`AuthState::SecondFactorRequired`]).
    pub fn is_signed_in(&self) -> bool {
        matches!(self, AuthState::SignedIn { .. })
    }

    /// Whether a sign-in waits for its second factor: show the code screen.
    pub fn needs_second_factor(&self) -> bool {
        matches!(self, AuthState::SecondFactorRequired { .. })
    }

    /// Whether a session is kept, complete or waiting for its second factor.
    pub fn has_session(&self) -> bool {
        self.is_signed_in() || self.needs_second_factor()
    }

    /// The state of a session of `user` whose tokens are `tokens`: waiting for the second
    /// factor if the access token says so, signed in otherwise.
    pub(super) fn of_session(user: User, tokens: &Tokens, now_ms: i64) -> AuthState {
        if tokens.mfa_pending {
            AuthState::SecondFactorRequired { user }
        } else {
            AuthState::SignedIn {
                user,
                token_fresh: tokens.is_fresh(now_ms),
            }
        }
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
