//! The one error the app sees, converted from the core's [`AuthError`].
//!
//! Each variant says what to do; none carries a secret. The host's own trait
//! implementations return it too (e.g. `StorageUnavailable` from a `KeyProvider` whose
//! keychain is locked), and an exception they did not mean to throw becomes
//! `StorageUnavailable` through [`uniffi::UnexpectedUniFFICallbackError`].

use holdfast_core::AuthError;
use holdfast_core::error::TransientCause;

/// Everything that can go wrong, grouped by what the app should do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
#[uniffi::export(Display)]
pub enum HoldfastError {
    /// The input was refused (an empty server URL, a malformed email...): fix it and retry.
    #[error("invalid input: {message}")]
    InvalidInput {
        /// What is wrong, safe to show.
        message: String,
    },
    /// Wrong email or password: ask the user again.
    #[error("invalid email or password")]
    InvalidCredentials,
    /// No network, a timeout, a server error or rate limiting: the session is kept; retry
    /// later (after `retry_after_secs` when the server said).
    #[error("temporarily unavailable: {message}")]
    Transient {
        /// Why, safe to log.
        message: String,
        /// The server's `Retry-After`, seconds, when it gave one.
        retry_after_secs: Option<u64>,
    },
    /// The server definitively refused the session: show the sign-in screen.
    #[error("sign-in required ({code})")]
    SignInRequired {
        /// The server's error code, e.g. `REFRESH_REUSED`.
        code: String,
    },
    /// The server refused this request for another definitive reason (e.g. `EMAIL_TAKEN`):
    /// tell the user; retrying as is will not help.
    #[error("refused by the server ({code}): {message}")]
    Refused {
        /// The server's error code.
        code: String,
        /// The server's message.
        message: String,
    },
    /// No user is signed in: sign in first.
    #[error("not signed in")]
    NotSignedIn,
    /// The sign-in still owes its second factor: ask for a code from the authenticator
    /// app (`complete_sign_in_with_code`), not the password. The session is kept.
    #[error("a second factor is required to finish signing in")]
    SecondFactorRequired,
    /// A sensitive action needs the user to prove who they are again: ask for a code,
    /// call `step_up`, and try again. The session is kept.
    #[error("confirm with a code from the authenticator app, then try again")]
    StepUpRequired,
    /// The code is wrong, expired or already used: ask for a new one. Nothing changed.
    #[error("the code is wrong, expired or already used")]
    InvalidCode,
    /// The account already has a second factor: disable it before enrolling again.
    #[error("a second factor is already enabled for this account")]
    MfaAlreadyEnabled,
    /// Local storage or its key cannot be read now (a locked keychain, an unwritable
    /// folder): nothing is lost; retry when the device is unlocked or the path is fixed.
    #[error("storage unavailable: {message}")]
    StorageUnavailable {
        /// What failed, without secrets.
        message: String,
    },
    /// The passphrase does not open the vault: ask for it again.
    #[error("wrong passphrase")]
    WrongPassphrase,
    /// The app called the client the wrong way (e.g. before `initialize()`): fix the app.
    #[error("usage error: {message}")]
    Usage {
        /// What to do instead.
        message: String,
    },
    /// The client is set up wrong: nothing answers the auth routes where it looks (a
    /// wrong server URL or route prefix). Retrying will not help; fix the configuration.
    #[error("configuration error: {message}")]
    Configuration {
        /// What looks wrong.
        message: String,
    },
    /// The server answered something the protocol does not allow: report a bug.
    #[error("unexpected answer from the server: {message}")]
    Protocol {
        /// What was wrong.
        message: String,
    },
}

impl From<AuthError> for HoldfastError {
    fn from(error: AuthError) -> HoldfastError {
        match error {
            AuthError::InvalidInput { message } => HoldfastError::InvalidInput { message },
            AuthError::InvalidCredentials => HoldfastError::InvalidCredentials,
            AuthError::Transient { cause } => HoldfastError::Transient {
                message: cause.to_string(),
                retry_after_secs: retry_after_secs(&cause),
            },
            AuthError::SignInRequired { code } => HoldfastError::SignInRequired {
                code: code.to_string(),
            },
            AuthError::Refused { code, message } => HoldfastError::Refused {
                code: code.to_string(),
                message,
            },
            AuthError::NotSignedIn => HoldfastError::NotSignedIn,
            AuthError::SecondFactorRequired => HoldfastError::SecondFactorRequired,
            AuthError::StepUpRequired => HoldfastError::StepUpRequired,
            AuthError::InvalidCode => HoldfastError::InvalidCode,
            AuthError::MfaAlreadyEnabled => HoldfastError::MfaAlreadyEnabled,
            AuthError::StorageUnavailable { message } => HoldfastError::StorageUnavailable { message },
            AuthError::WrongPassphrase => HoldfastError::WrongPassphrase,
            AuthError::Protocol { message } => HoldfastError::Protocol { message },
            AuthError::Configuration { message } => HoldfastError::Configuration { message },
        }
    }
}

impl From<uniffi::UnexpectedUniFFICallbackError> for HoldfastError {
    fn from(error: uniffi::UnexpectedUniFFICallbackError) -> HoldfastError {
        HoldfastError::StorageUnavailable {
            message: format!("the app's callback failed: {}", error.reason),
        }
    }
}

/// The server's `Retry-After`, when the failure was rate limiting.
pub(crate) fn retry_after_secs(cause: &TransientCause) -> Option<u64> {
    match cause {
        TransientCause::RateLimited { retry_after_secs } => *retry_after_secs,
        TransientCause::Unavailable { retry_after_secs } => Some(*retry_after_secs),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use holdfast_protocol::ErrorCode;

    #[test]
    fn every_core_error_keeps_what_the_app_should_do() {
        let cases = [
            (
                AuthError::InvalidInput {
                    message: "empty email".into(),
                },
                HoldfastError::InvalidInput {
                    message: "empty email".into(),
                },
            ),
            (AuthError::InvalidCredentials, HoldfastError::InvalidCredentials),
            (AuthError::NotSignedIn, HoldfastError::NotSignedIn),
            (
                AuthError::SecondFactorRequired,
                HoldfastError::SecondFactorRequired,
            ),
            (AuthError::StepUpRequired, HoldfastError::StepUpRequired),
            (AuthError::InvalidCode, HoldfastError::InvalidCode),
            (AuthError::MfaAlreadyEnabled, HoldfastError::MfaAlreadyEnabled),
            (AuthError::WrongPassphrase, HoldfastError::WrongPassphrase),
            (
                AuthError::StorageUnavailable {
                    message: "locked".into(),
                },
                HoldfastError::StorageUnavailable {
                    message: "locked".into(),
                },
            ),
            (
                AuthError::Protocol {
                    message: "not JSON".into(),
                },
                HoldfastError::Protocol {
                    message: "not JSON".into(),
                },
            ),
            (
                AuthError::Configuration {
                    message: "no auth routes at /auth".into(),
                },
                HoldfastError::Configuration {
                    message: "no auth routes at /auth".into(),
                },
            ),
        ];
        for (core, expected) in cases {
            assert_eq!(HoldfastError::from(core), expected);
        }
    }

    #[test]
    fn server_codes_cross_as_their_wire_names() {
        let signed_out = HoldfastError::from(AuthError::SignInRequired {
            code: ErrorCode::RefreshReused,
        });
        assert_eq!(
            signed_out,
            HoldfastError::SignInRequired {
                code: "REFRESH_REUSED".into()
            }
        );
        let refused = HoldfastError::from(AuthError::Refused {
            code: ErrorCode::EmailTaken,
            message: "taken".into(),
        });
        assert_eq!(
            refused,
            HoldfastError::Refused {
                code: "EMAIL_TAKEN".into(),
                message: "taken".into()
            }
        );
    }

    #[test]
    fn transient_failures_carry_the_servers_retry_after() {
        let limited = HoldfastError::from(AuthError::Transient {
            cause: TransientCause::RateLimited {
                retry_after_secs: Some(7),
            },
        });
        assert!(matches!(
            limited,
            HoldfastError::Transient {
                retry_after_secs: Some(7),
                ..
            }
        ));
        let offline = HoldfastError::from(AuthError::Transient {
            cause: TransientCause::Timeout,
        });
        assert_eq!(
            offline,
            HoldfastError::Transient {
                message: "the server did not answer in time".into(),
                retry_after_secs: None
            }
        );
    }

    #[test]
    fn an_unexpected_host_exception_is_storage_unavailable() {
        let error = HoldfastError::from(uniffi::UnexpectedUniFFICallbackError::new("KeyError: vault"));
        assert!(
            matches!(error, HoldfastError::StorageUnavailable { ref message } if message.contains("KeyError: vault"))
        );
    }
}
