//! The one error type of the client: each variant tells the app what to do, and none
//! carries a secret.

use holdfast_protocol::ErrorCode;

/// Why a transient failure happened (the session is kept; retry later).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransientCause {
    /// No connection could be made (no network, DNS, refused, reset).
    Network(String),
    /// The server did not answer in time.
    Timeout,
    /// The server answered 5xx.
    ServerError {
        /// HTTP status.
        status: u16,
    },
    /// The server is unavailable for now and said for how long (503 with `Retry-After`,
    /// PROTOCOL 6.3: e.g. its password hashing queue is full); the background refresh
    /// waits at least that long.
    Unavailable {
        /// `Retry-After`, seconds.
        retry_after_secs: u64,
    },
    /// The server asked to slow down (429).
    RateLimited {
        /// `Retry-After`, seconds, when given.
        retry_after_secs: Option<u64>,
    },
    /// Something between us and the server answered instead (a captive portal's or
    /// proxy's HTML page, a body that is not the protocol's JSON).
    NotTheServer {
        /// HTTP status of that answer.
        status: u16,
    },
}

impl std::fmt::Display for TransientCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TransientCause::Network(message) => write!(f, "network unavailable: {message}"),
            TransientCause::Timeout => f.write_str("the server did not answer in time"),
            TransientCause::ServerError { status } => write!(f, "the server failed (HTTP {status})"),
            TransientCause::Unavailable { retry_after_secs } => {
                write!(f, "the server is unavailable; retry in {retry_after_secs} s")
            }
            TransientCause::RateLimited {
                retry_after_secs: Some(secs),
            } => {
                write!(f, "rate limited; retry in {secs} s")
            }
            TransientCause::RateLimited {
                retry_after_secs: None,
            } => f.write_str("rate limited"),
            TransientCause::NotTheServer { status } => {
                write!(
                    f,
                    "an answer that is not from the auth server (HTTP {status}), e.g. a captive portal"
                )
            }
        }
    }
}

/// Everything that can go wrong, grouped by what the app should do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The input was refused before or by the server: fix it and try again.
    #[error("invalid input: {message}")]
    InvalidInput {
        /// What is wrong, safe to show.
        message: String,
    },
    /// Wrong email or password.
    #[error("invalid email or password")]
    InvalidCredentials,
    /// The server could not be reached or answered with a transient failure: the session is
    /// kept; retry later.
    #[error("temporarily unavailable: {cause}")]
    Transient {
        /// Why.
        cause: TransientCause,
    },
    /// The server definitively refused the session: the user must sign in again. When the
    /// refusal came from a refresh or a device re-login, the client is signed out by then
    /// and its state says why
    /// ([`SignOutReason`](crate::SignOutReason), e.g. the session was revoked elsewhere or
    /// the password changed, when the server said); a bearer call refused this way leaves
    /// that to the next refresh.
    #[error("signed out: {code}")]
    SignInRequired {
        /// The server's reason.
        code: ErrorCode,
    },
    /// The server refused the request for another definitive reason (e.g. `EMAIL_TAKEN`,
    /// `DEVICE_CONFLICT`, `FORBIDDEN`).
    #[error("refused by the server ({code}): {message}")]
    Refused {
        /// The server's code.
        code: ErrorCode,
        /// The server's message.
        message: String,
    },
    /// Not signed in.
    #[error("not signed in")]
    NotSignedIn,
    /// The session still owes its second factor (PROTOCOL 9): the password was right, and
    /// the user must now enter a code from their authenticator app
    /// ([`AuthClient::complete_sign_in_with_code`](crate::AuthClient::complete_sign_in_with_code))
    /// or a recovery code. Not a sign-out, and not a wrong password: the session is kept
    /// (the state is [`AuthState::SecondFactorRequired`](crate::AuthState::SecondFactorRequired)).
    #[error("a second factor is required to finish signing in")]
    SecondFactorRequired,
    /// The action is sensitive and the user last proved who they are too long ago: ask
    /// for a code, call [`AuthClient::step_up`](crate::AuthClient::step_up), and try again.
    /// The session is kept.
    #[error("confirm with a code from the authenticator app, then try again")]
    StepUpRequired,
    /// The one-time or recovery code is wrong, expired, or was already used (a code counts
    /// once). Let the user try again with a new code; nothing else changed.
    #[error("the code is wrong, expired or already used")]
    InvalidCode,
    /// The account already has a second factor: disable it before enrolling again.
    #[error("a second factor is already enabled for this account")]
    MfaAlreadyEnabled,
    /// Local storage or its key cannot be read now (e.g. a locked keychain): the session is
    /// not lost; try again when the device is unlocked.
    #[error("storage unavailable: {message}")]
    StorageUnavailable {
        /// What failed (no secrets).
        message: String,
    },
    /// The passphrase does not open the vault.
    #[error("wrong passphrase")]
    WrongPassphrase,
    /// The client is not configured for this server: the auth routes answer 404 without
    /// the protocol's error envelope (check the server URL and
    /// [`ClientConfig::route_prefix`](crate::ClientConfig::route_prefix)). The session is
    /// kept; retrying will not help until the configuration is fixed.
    #[error("configuration error: {message}")]
    Configuration {
        /// What is wrong, safe to show.
        message: String,
    },
    /// The server answered something the protocol does not allow.
    #[error("unexpected answer from the server: {message}")]
    Protocol {
        /// What was wrong.
        message: String,
    },
}
