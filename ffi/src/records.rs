//! What crosses to the app as plain values: users, devices, sync credentials, the session
//! state and events, each converted from the core's (or the protocol's) type. Sessions and
//! why they end are in `sessions.rs`.

use holdfast_core::error::TransientCause;
use holdfast_core::session as core;
use holdfast_protocol::wire;

use crate::error::retry_after_secs;
use crate::sessions::SessionEndReason;

/// A user, as the server describes them.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct User {
    /// User id.
    pub id: String,
    /// Lower-cased email.
    pub email: String,
    /// Display name, if any.
    pub name: Option<String>,
    /// Whether the email was verified.
    pub email_verified: bool,
    /// Creation time, ms since the epoch.
    pub created_at_ms: i64,
    /// The application's data about the user (given at sign-up), as JSON text; `None` when
    /// there is none.
    #[uniffi(default = None)]
    pub metadata_json: Option<String>,
}

impl From<wire::User> for User {
    fn from(user: wire::User) -> User {
        User {
            id: user.id,
            email: user.email,
            name: user.name,
            email_verified: user.email_verified,
            created_at_ms: user.created_at,
            metadata_json: user.metadata.map(|metadata| metadata.to_string()),
        }
    }
}

/// One of the user's registered devices.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Device {
    /// Device id.
    pub id: String,
    /// Owner.
    pub user_id: String,
    /// The public key as a JWK JSON string, or `""` for a device without a key.
    pub public_key: String,
    /// Display name.
    pub name: String,
    /// Whether the device was revoked.
    pub revoked: bool,
    /// Registration time, ms since the epoch.
    pub created_at_ms: i64,
    /// Last time the server saw the device, ms since the epoch.
    pub last_seen_at_ms: i64,
}

impl From<wire::Device> for Device {
    fn from(device: wire::Device) -> Device {
        Device {
            id: device.id,
            user_id: device.user_id,
            public_key: device.public_key,
            name: device.name,
            revoked: device.revoked,
            created_at_ms: device.created_at,
            last_seen_at_ms: device.last_seen_at,
        }
    }
}

/// What a sync connection's handshake presents (PROTOCOL 5 and 6.1). Holds a bearer token
/// and a proof: it prints (`Debug`, `Display`, and in every binding `str`/`repr`/`toString`/
/// `description`) with both redacted, so it cannot end up in a log by accident.
#[derive(Clone, PartialEq, Eq, uniffi::Record)]
#[uniffi::export(Debug, Display)]
pub struct SyncCredentials {
    /// A fresh access token.
    pub access_token: String,
    /// This device's id.
    pub device_id: String,
    /// A device proof for `GET` on the sync URL, bound to `access_token`.
    pub proof: String,
}

impl std::fmt::Debug for SyncCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncCredentials")
            .field("device_id", &self.device_id)
            .field("access_token", &REDACTED)
            .field("proof", &REDACTED)
            .finish()
    }
}

impl std::fmt::Display for SyncCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

/// The headers of one request to the app's own backend (`request_headers`). Holds a token
/// and a proof: it prints with both redacted, in Rust and in every binding.
#[derive(Clone, PartialEq, Eq, uniffi::Record)]
#[uniffi::export(Debug, Display)]
pub struct RequestHeaders {
    /// The `Authorization` value: `DPoP <token>` or `Bearer <token>`.
    pub authorization: String,
    /// The `DPoP` value, when the token is bound to the device key.
    pub dpop: Option<String>,
}

impl std::fmt::Debug for RequestHeaders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestHeaders")
            .field("authorization", &REDACTED)
            .field("dpop", &self.dpop.as_ref().map(|_| REDACTED))
            .finish()
    }
}

impl std::fmt::Display for RequestHeaders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

impl From<core::RequestHeaders> for RequestHeaders {
    fn from(headers: core::RequestHeaders) -> RequestHeaders {
        RequestHeaders {
            authorization: headers.authorization.clone(),
            dpop: headers.dpop.clone(),
        }
    }
}

/// Why a sync server refused or closed this device's connection (`handle_sync_refusal`).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
#[uniffi::export(Display)]
pub enum SyncRefusal {
    /// The handshake was refused with an HTTP error: its status and the body's `code`.
    Http {
        /// The HTTP status.
        status: u16,
        /// The body's `code`, when there was one.
        code: Option<String>,
    },
    /// An open connection was closed with this WebSocket close code and reason (4001
    /// `DEVICE_REVOKED`, 4002 `TOKEN_REVOKED`, 4003 `USER_NOT_FOUND`, 4004 `TOKEN_EXPIRED`,
    /// 4401 with the refusal's code).
    Close {
        /// The close code.
        code: u16,
        /// The close reason, or empty.
        reason: String,
    },
}

impl std::fmt::Display for SyncRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

impl From<SyncRefusal> for core::SyncRefusal {
    fn from(refusal: SyncRefusal) -> core::SyncRefusal {
        match refusal {
            SyncRefusal::Http { status, code } => core::SyncRefusal::Http { status, code },
            SyncRefusal::Close { code, reason } => core::SyncRefusal::Close { code, reason },
        }
    }
}

/// What a secret prints as: written without quotes by `Debug`.
pub(crate) struct Redacted;

pub(crate) const REDACTED: Redacted = Redacted;

impl std::fmt::Debug for Redacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// `Display` for the plain enums as their `Debug` (`Refreshed`, `SignedOut { reason: .. }`),
/// exported so the bindings print variant names (Kotlin's `object` variants would otherwise
/// print `AuthEvent$Refreshed@1b6d3586`).
macro_rules! display_as_debug {
    ($($ty:ty),*) => {$(
        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                std::fmt::Debug::fmt(self, f)
            }
        }
    )*};
}

display_as_debug!(SignOutReason, AuthState, AuthEvent);

impl From<core::SyncCredentials> for SyncCredentials {
    fn from(credentials: core::SyncCredentials) -> SyncCredentials {
        SyncCredentials {
            access_token: credentials.access_token.clone(),
            device_id: credentials.device_id.clone(),
            proof: credentials.proof.clone(),
        }
    }
}

/// Why the client is signed out.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
#[uniffi::export(Display)]
pub enum SignOutReason {
    /// No session is stored for this server.
    NoStoredSession,
    /// The stored session could not be decrypted; it was kept aside, and the user must sign
    /// in again.
    StoredSessionUnreadable,
    /// The user signed out.
    UserSignedOut,
    /// The server definitively rejected the session.
    SessionRejected {
        /// The server's error code.
        code: String,
    },
    /// This device was revoked; its secrets were wiped, its key too.
    DeviceRevoked,
    /// The account no longer exists; its secrets were wiped, the device key too.
    AccountDeleted,
    /// The server ended this session and said why (revoked from another session, signed
    /// out everywhere, password changed or reset, session limit, expired); the session's
    /// secrets were wiped, the device key kept.
    SessionEnded {
        /// Why.
        reason: SessionEndReason,
    },
    /// An operator disabled the account; signing in is refused until it is enabled again.
    AccountDisabled,
}

impl From<core::SignOutReason> for SignOutReason {
    fn from(reason: core::SignOutReason) -> SignOutReason {
        match reason {
            core::SignOutReason::NoStoredSession => SignOutReason::NoStoredSession,
            core::SignOutReason::StoredSessionUnreadable => SignOutReason::StoredSessionUnreadable,
            core::SignOutReason::UserSignedOut => SignOutReason::UserSignedOut,
            core::SignOutReason::SessionRejected { code } => SignOutReason::SessionRejected {
                code: code.to_string(),
            },
            core::SignOutReason::DeviceRevoked => SignOutReason::DeviceRevoked,
            core::SignOutReason::AccountDeleted => SignOutReason::AccountDeleted,
            core::SignOutReason::SessionEnded { reason } => SignOutReason::SessionEnded {
                reason: reason.into(),
            },
            core::SignOutReason::AccountDisabled => SignOutReason::AccountDisabled,
        }
    }
}

/// The session as the app sees it.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
#[uniffi::export(Display)]
pub enum AuthState {
    /// Reading the stored session (no network involved).
    Restoring,
    /// Signed in; `token_fresh` is false while an expired token could not be refreshed yet
    /// (offline): the user stays signed in.
    SignedIn {
        /// The user, as last known.
        user: User,
        /// Whether the access token is currently valid.
        token_fresh: bool,
    },
    /// The password was right and the account has a second factor: ask for a code from
    /// the authenticator app (`complete_sign_in_with_code`) or a recovery code, not the
    /// password. Survives a restart; `access_token` fails with `SecondFactorRequired`
    /// until then.
    SecondFactorRequired {
        /// The user signing in.
        user: User,
    },
    /// Signed out, and why.
    SignedOut {
        /// Why.
        reason: SignOutReason,
    },
    /// The stored session cannot be read now (a locked keychain, an unreadable file):
    /// nothing was lost; initialize again later.
    Unavailable {
        /// What failed, without secrets.
        reason: String,
    },
}

impl From<core::AuthState> for AuthState {
    fn from(state: core::AuthState) -> AuthState {
        match state {
            core::AuthState::Restoring => AuthState::Restoring,
            core::AuthState::SignedIn { user, token_fresh } => AuthState::SignedIn {
                user: user.into(),
                token_fresh,
            },
            core::AuthState::SecondFactorRequired { user } => {
                AuthState::SecondFactorRequired { user: user.into() }
            }
            core::AuthState::SignedOut { reason } => AuthState::SignedOut {
                reason: reason.into(),
            },
            core::AuthState::Unavailable { reason } => AuthState::Unavailable { reason },
        }
    }
}

/// Something that happened, for an [`AuthEventListener`](crate::AuthEventListener).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
#[uniffi::export(Display)]
pub enum AuthEvent {
    /// The state changed.
    StateChanged {
        /// The new state.
        state: AuthState,
    },
    /// The tokens were refreshed (by this process or another one sharing the store).
    Refreshed,
    /// A refresh failed for a transient reason; the session is kept and retried later.
    RefreshFailed {
        /// Why, safe to log.
        message: String,
        /// The server's `Retry-After`, seconds, when it gave one.
        retry_after_secs: Option<u64>,
    },
    /// The server reported refresh-token reuse: someone else used this session's token.
    ReuseDetected,
    /// The local clock differs from the server's by more than a minute.
    ClockSkew {
        /// Server time minus local time, ms.
        offset_ms: i64,
    },
    /// The device key could not be read; device re-login is unavailable until the device
    /// is registered again.
    DeviceKeyLost,
}

impl From<&core::AuthEvent> for AuthEvent {
    fn from(event: &core::AuthEvent) -> AuthEvent {
        match event {
            core::AuthEvent::StateChanged(state) => AuthEvent::StateChanged {
                state: state.clone().into(),
            },
            core::AuthEvent::Refreshed => AuthEvent::Refreshed,
            core::AuthEvent::RefreshFailed { cause } => refresh_failed(cause),
            core::AuthEvent::ReuseDetected => AuthEvent::ReuseDetected,
            core::AuthEvent::ClockSkew { offset_ms } => AuthEvent::ClockSkew {
                offset_ms: *offset_ms,
            },
            core::AuthEvent::DeviceKeyLost => AuthEvent::DeviceKeyLost,
        }
    }
}

fn refresh_failed(cause: &TransientCause) -> AuthEvent {
    AuthEvent::RefreshFailed {
        message: cause.to_string(),
        retry_after_secs: retry_after_secs(cause),
    }
}

#[cfg(test)]
#[path = "records_tests.rs"]
mod tests;
