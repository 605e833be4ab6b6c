//! What went wrong with one request, split by the one question the session asks: keep
//! the session (transient) or believe the server's "no" (rejected)?

use holdfast_protocol::{EndReason, ErrorCode};

use crate::error::{AuthError, TransientCause};

/// Why a request did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Keep the session: no connection, DNS, refused, reset, timeout, 5xx, 429, 408, a
    /// non-JSON body or a JSON body that is not the protocol's envelope (captive portal,
    /// proxy HTML page), a 404 without the protocol's error envelope, a redirect.
    Transient {
        /// Why.
        cause: TransientCause,
        /// The server's clock (`Date` header), when an answer carried one.
        server_time_ms: Option<i64>,
    },
    /// The server definitively refused: a 4xx with the protocol's error envelope.
    Rejected {
        /// HTTP status.
        status: u16,
        /// The machine code; `None` when the server sent none (Kora) or one this version
        /// does not know (a newer server). Classify by `status` then.
        code: Option<ErrorCode>,
        /// The server's message, safe to show.
        message: String,
        /// Why the session ended, when the server said (PROTOCOL 8: the `reason` member of
        /// a refused refresh or device re-login). `None` from a Kora server, which sends
        /// none, and for a reason this version does not know.
        reason: Option<EndReason>,
        /// The server's clock (`Date` header), when the answer carried one.
        server_time_ms: Option<i64>,
    },
    /// The auth routes are not where the client looks: a 404 that is not the protocol's
    /// error envelope (a wrong server URL or route prefix). Not a verdict on the session,
    /// and no retry will help until the configuration changes.
    Misconfigured {
        /// What is wrong, safe to show.
        message: String,
    },
    /// Nothing was sent: the request cannot be expressed (e.g. a device id that is no URL
    /// path segment, a token that is no HTTP header value).
    InvalidRequest {
        /// What is wrong, safe to show.
        message: String,
    },
}

impl Failure {
    /// Whether the server (or the request itself) said no for good: retrying the same
    /// request will not help. Only such failures may end a session.
    pub fn is_definitive(&self) -> bool {
        !matches!(self, Failure::Transient { .. } | Failure::Misconfigured { .. })
    }

    /// The server's clock, when the failing answer carried a `Date` header.
    pub fn server_time_ms(&self) -> Option<i64> {
        match self {
            Failure::Transient { server_time_ms, .. } | Failure::Rejected { server_time_ms, .. } => {
                *server_time_ms
            }
            Failure::InvalidRequest { .. } | Failure::Misconfigured { .. } => None,
        }
    }

    /// The error the app sees.
    ///
    /// | Failure | `AuthError` |
    /// |---|---|
    /// | `Transient { cause }` | `Transient { cause }` |
    /// | `InvalidRequest` | `InvalidInput` |
    /// | `Misconfigured` | `Configuration` |
    /// | `VALIDATION_ERROR`, or no code and 400 / 413 / 422 | `InvalidInput` |
    /// | `INVALID_CREDENTIALS` | `InvalidCredentials` |
    /// | `TOKEN_INVALID`, `TOKEN_EXPIRED`, `TOKEN_REVOKED`, `REFRESH_REUSED`, `SESSION_EXPIRED`, `SIGNATURE_INVALID`, `DEVICE_REVOKED`, `ACCOUNT_DISABLED`, `USER_NOT_FOUND` | `SignInRequired { code }` |
    /// | no code and 401 | `SignInRequired { TOKEN_INVALID }` |
    /// | `CHALLENGE_INVALID`, `PROOF_INVALID`, `FORBIDDEN`, `NOT_FOUND`, `DEVICE_NOT_FOUND`, `EMAIL_TAKEN`, `DEVICE_CONFLICT`, `RESET_TOKEN_INVALID`, `VERIFY_TOKEN_INVALID` | `Refused { code, message }` |
    /// | no code and 403 | `Refused { FORBIDDEN }` |
    /// | no code and 404 | `Refused { NOT_FOUND }` |
    /// | no code and 409 (Kora's only 409 is a taken email) | `Refused { EMAIL_TAKEN }` |
    /// | `RATE_LIMITED` on a status other than 429 | `Transient { RateLimited }` |
    /// | `INTERNAL` or `SERVICE_UNAVAILABLE` on a 4xx | `Transient { ServerError }` |
    /// | no code and any other 4xx | `Protocol` |
    ///
    /// `SIGNATURE_INVALID` signs out because the device key no longer proves this device;
    /// `CHALLENGE_INVALID` and `PROOF_INVALID` do not, since a fresh challenge or a proof
    /// with a corrected clock may pass. A reset or verification token that is invalid,
    /// used or expired is refused (the app asks for a new mail), not a sign-out. On the
    /// sign-in and sign-up routes, a 401 means a wrong email or password: use
    /// [`Failure::into_sign_in_error`] there.
    pub fn into_auth_error(self) -> AuthError {
        match self {
            Failure::Transient { cause, .. } => AuthError::Transient { cause },
            Failure::InvalidRequest { message } => AuthError::InvalidInput { message },
            Failure::Misconfigured { message } => AuthError::Configuration { message },
            Failure::Rejected {
                status,
                code,
                message,
                ..
            } => match code {
                Some(code) => from_code(status, code, message),
                None => from_status(status, message),
            },
        }
    }

    /// Like [`Failure::into_auth_error`], for `/signin` and `/signup`: a 401 there means a
    /// wrong email or password, also from a Kora server that sends no code; and
    /// `ACCOUNT_DISABLED` there (answered only after a correct password) is a refusal to
    /// show, not a session to end: none was started.
    pub fn into_sign_in_error(self) -> AuthError {
        match self {
            Failure::Rejected {
                status: 401, code, ..
            } if code.is_none() || code == Some(ErrorCode::InvalidCredentials) => {
                AuthError::InvalidCredentials
            }
            Failure::Rejected {
                code: Some(code @ ErrorCode::AccountDisabled),
                message,
                ..
            } => AuthError::Refused { code, message },
            other => other.into_auth_error(),
        }
    }
}

fn from_code(status: u16, code: ErrorCode, message: String) -> AuthError {
    match code {
        ErrorCode::ValidationError => AuthError::InvalidInput { message },
        ErrorCode::InvalidCredentials => AuthError::InvalidCredentials,
        ErrorCode::TokenInvalid
        | ErrorCode::TokenExpired
        | ErrorCode::TokenRevoked
        | ErrorCode::RefreshReused
        | ErrorCode::SessionExpired
        | ErrorCode::SignatureInvalid
        | ErrorCode::DeviceRevoked
        | ErrorCode::AccountDisabled
        | ErrorCode::UserNotFound => AuthError::SignInRequired { code },
        ErrorCode::ChallengeInvalid
        | ErrorCode::ProofInvalid
        | ErrorCode::Forbidden
        | ErrorCode::NotFound
        | ErrorCode::DeviceNotFound
        | ErrorCode::EmailTaken
        | ErrorCode::DeviceConflict
        | ErrorCode::ResetTokenInvalid
        | ErrorCode::VerifyTokenInvalid
        // A sync quota: only freeing space lifts it, so it is no reason to retry.
        | ErrorCode::QuotaExceeded => AuthError::Refused { code, message },
        // A 429 or 5xx never becomes `Rejected`; these arms keep a server that sends
        // the code with another status from signing anyone out.
        ErrorCode::RateLimited => AuthError::Transient {
            cause: TransientCause::RateLimited {
                retry_after_secs: None,
            },
        },
        ErrorCode::Internal | ErrorCode::ServiceUnavailable => AuthError::Transient {
            cause: TransientCause::ServerError { status },
        },
        // PROTOCOL 9: none of these is a verdict on the session.
        ErrorCode::MfaCodeInvalid => AuthError::InvalidCode,
        ErrorCode::MfaRequired => AuthError::SecondFactorRequired,
        ErrorCode::StepUpRequired => AuthError::StepUpRequired,
        ErrorCode::MfaAlreadyEnabled => AuthError::MfaAlreadyEnabled,
    }
}

fn from_status(status: u16, message: String) -> AuthError {
    match status {
        400 | 413 | 422 => AuthError::InvalidInput { message },
        401 => AuthError::SignInRequired {
            code: ErrorCode::TokenInvalid,
        },
        403 => AuthError::Refused {
            code: ErrorCode::Forbidden,
            message,
        },
        404 => AuthError::Refused {
            code: ErrorCode::NotFound,
            message,
        },
        409 => AuthError::Refused {
            code: ErrorCode::EmailTaken,
            message,
        },
        _ => AuthError::Protocol {
            message: format!("unexpected HTTP {status}: {message}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejected(status: u16, code: Option<ErrorCode>) -> Failure {
        Failure::Rejected {
            status,
            code,
            message: "m".into(),
            reason: None,
            server_time_ms: None,
        }
    }

    #[test]
    fn every_code_maps_and_only_session_codes_sign_out() {
        for code in ErrorCode::ALL {
            let error = rejected(code.status(), Some(code)).into_auth_error();
            let signs_out = matches!(error, AuthError::SignInRequired { .. });
            let expected = matches!(
                code,
                ErrorCode::TokenInvalid
                    | ErrorCode::TokenExpired
                    | ErrorCode::TokenRevoked
                    | ErrorCode::RefreshReused
                    | ErrorCode::SessionExpired
                    | ErrorCode::SignatureInvalid
                    | ErrorCode::DeviceRevoked
                    | ErrorCode::AccountDisabled
                    | ErrorCode::UserNotFound
            );
            assert_eq!(signs_out, expected, "{code}: {error:?}");
        }
        for code in [ErrorCode::ResetTokenInvalid, ErrorCode::VerifyTokenInvalid] {
            assert_eq!(
                rejected(400, Some(code)).into_auth_error(),
                AuthError::Refused {
                    code,
                    message: "m".into()
                },
                "a bad mailed token asks for a new mail"
            );
        }
        assert_eq!(
            rejected(403, Some(ErrorCode::AccountDisabled)).into_sign_in_error(),
            AuthError::Refused {
                code: ErrorCode::AccountDisabled,
                message: "m".into()
            },
            "a disabled account's sign-in is refused, not a session to end"
        );
        assert_eq!(
            rejected(409, Some(ErrorCode::DeviceConflict)).into_auth_error(),
            AuthError::Refused {
                code: ErrorCode::DeviceConflict,
                message: "m".into()
            }
        );
        assert_eq!(
            rejected(401, Some(ErrorCode::InvalidCredentials)).into_auth_error(),
            AuthError::InvalidCredentials
        );
    }

    #[test]
    fn kora_rejections_without_code_map_by_status() {
        assert_eq!(
            rejected(401, None).into_auth_error(),
            AuthError::SignInRequired {
                code: ErrorCode::TokenInvalid
            }
        );
        assert!(matches!(
            rejected(403, None).into_auth_error(),
            AuthError::Refused {
                code: ErrorCode::Forbidden,
                ..
            }
        ));
        assert!(matches!(
            rejected(400, None).into_auth_error(),
            AuthError::InvalidInput { .. }
        ));
        assert!(matches!(
            rejected(404, None).into_auth_error(),
            AuthError::Refused {
                code: ErrorCode::NotFound,
                ..
            }
        ));
        assert!(matches!(
            rejected(418, None).into_auth_error(),
            AuthError::Protocol { .. }
        ));
        assert_eq!(
            rejected(401, None).into_sign_in_error(),
            AuthError::InvalidCredentials
        );
        assert!(matches!(
            rejected(409, None).into_sign_in_error(),
            AuthError::Refused {
                code: ErrorCode::EmailTaken,
                ..
            }
        ));
    }

    #[test]
    fn transient_stays_transient_and_is_not_definitive() {
        let failure = Failure::Transient {
            cause: TransientCause::Timeout,
            server_time_ms: Some(5),
        };
        assert!(!failure.is_definitive());
        assert_eq!(failure.server_time_ms(), Some(5));
        assert_eq!(
            failure.clone().into_sign_in_error(),
            AuthError::Transient {
                cause: TransientCause::Timeout
            }
        );
        assert!(rejected(401, None).is_definitive());
        let invalid = Failure::InvalidRequest { message: "x".into() };
        assert!(invalid.is_definitive());
        assert!(matches!(
            invalid.into_auth_error(),
            AuthError::InvalidInput { .. }
        ));
    }

    #[test]
    fn codes_that_mean_retry_never_sign_out() {
        assert!(matches!(
            rejected(400, Some(ErrorCode::RateLimited)).into_auth_error(),
            AuthError::Transient { .. }
        ));
        assert!(matches!(
            rejected(400, Some(ErrorCode::Internal)).into_auth_error(),
            AuthError::Transient { .. }
        ));
    }
}
