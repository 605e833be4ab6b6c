//! Error envelopes and machine codes (PROTOCOL sections 1, 2 and 6.3).

use serde::{Deserialize, Serialize};
use std::fmt;

/// Every machine-readable `code` the server sends, with the HTTP status it travels with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// 400: the request body or a field is malformed.
    ValidationError,
    /// 401: unknown email or wrong password (deliberately indistinguishable).
    InvalidCredentials,
    /// 401: the token is malformed, tampered, of the wrong type, or unknown.
    TokenInvalid,
    /// 401: the token is past `exp` plus the leeway.
    TokenExpired,
    /// 401: the token, its family, or its session was revoked.
    TokenRevoked,
    /// 401: a consumed refresh token was presented again; the family is now revoked.
    RefreshReused,
    /// 401: the challenge is unknown, expired, used, or issued for another device.
    ChallengeInvalid,
    /// 401: the device signature does not verify.
    SignatureInvalid,
    /// 401: the device proof (DPoP) is missing or invalid.
    ProofInvalid,
    /// 401: the session was idle longer than the server allows, or is older than its
    /// absolute lifetime (PROTOCOL 8): sign in again.
    SessionExpired,
    /// 400: the password reset token is unknown, used or expired.
    ResetTokenInvalid,
    /// 400: the email verification token is unknown, used or expired.
    VerifyTokenInvalid,
    /// 403: the account was disabled by an operator; every session of it ended.
    AccountDisabled,
    /// 400: the second-factor code is wrong, already used, or from before a regeneration
    /// (PROTOCOL 9).
    MfaCodeInvalid,
    /// 403: the session still owes its second factor: only `/me`, `/signout`, `/mfa/verify`
    /// and `/mfa/recover` accept its token (PROTOCOL 9).
    MfaRequired,
    /// 403: this action needs a recent password or code check: `/mfa/step-up` first
    /// (PROTOCOL 9).
    StepUpRequired,
    /// 409: the account already has a second factor.
    MfaAlreadyEnabled,
    /// 403: the device was revoked.
    DeviceRevoked,
    /// 403: the caller may not do this.
    Forbidden,
    /// 404: no such route, or no such resource.
    NotFound,
    /// 404: the token's user no longer exists.
    UserNotFound,
    /// 404: no such device (or not one of the caller's).
    DeviceNotFound,
    /// 409: an account with this email exists.
    EmailTaken,
    /// 409: the device id belongs to another user, or is registered with another key.
    DeviceConflict,
    /// 429: too many requests; see `Retry-After`.
    RateLimited,
    /// 429: a per-user quota of the sync server (items, bytes, or open connections) is
    /// used up; the message says which. Freeing some (deleting items, closing another
    /// connection) lifts it; waiting does not.
    QuotaExceeded,
    /// 500: the server failed; the message holds no internals.
    Internal,
    /// 503: the server is too busy to take this request now (e.g. every password hashing
    /// slot stayed busy past its deadline); see `Retry-After`.
    ServiceUnavailable,
}

impl ErrorCode {
    /// All codes, for exhaustive tests and documentation.
    pub const ALL: [ErrorCode; 28] = [
        ErrorCode::ValidationError,
        ErrorCode::InvalidCredentials,
        ErrorCode::TokenInvalid,
        ErrorCode::TokenExpired,
        ErrorCode::TokenRevoked,
        ErrorCode::RefreshReused,
        ErrorCode::ChallengeInvalid,
        ErrorCode::SignatureInvalid,
        ErrorCode::ProofInvalid,
        ErrorCode::SessionExpired,
        ErrorCode::ResetTokenInvalid,
        ErrorCode::VerifyTokenInvalid,
        ErrorCode::AccountDisabled,
        ErrorCode::MfaCodeInvalid,
        ErrorCode::MfaRequired,
        ErrorCode::StepUpRequired,
        ErrorCode::MfaAlreadyEnabled,
        ErrorCode::DeviceRevoked,
        ErrorCode::Forbidden,
        ErrorCode::NotFound,
        ErrorCode::UserNotFound,
        ErrorCode::DeviceNotFound,
        ErrorCode::EmailTaken,
        ErrorCode::DeviceConflict,
        ErrorCode::RateLimited,
        ErrorCode::QuotaExceeded,
        ErrorCode::Internal,
        ErrorCode::ServiceUnavailable,
    ];

    /// The wire spelling, e.g. `"TOKEN_EXPIRED"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::ValidationError => "VALIDATION_ERROR",
            ErrorCode::InvalidCredentials => "INVALID_CREDENTIALS",
            ErrorCode::TokenInvalid => "TOKEN_INVALID",
            ErrorCode::TokenExpired => "TOKEN_EXPIRED",
            ErrorCode::TokenRevoked => "TOKEN_REVOKED",
            ErrorCode::RefreshReused => "REFRESH_REUSED",
            ErrorCode::ChallengeInvalid => "CHALLENGE_INVALID",
            ErrorCode::SignatureInvalid => "SIGNATURE_INVALID",
            ErrorCode::ProofInvalid => "PROOF_INVALID",
            ErrorCode::SessionExpired => "SESSION_EXPIRED",
            ErrorCode::ResetTokenInvalid => "RESET_TOKEN_INVALID",
            ErrorCode::VerifyTokenInvalid => "VERIFY_TOKEN_INVALID",
            ErrorCode::AccountDisabled => "ACCOUNT_DISABLED",
            ErrorCode::MfaCodeInvalid => "MFA_CODE_INVALID",
            ErrorCode::MfaRequired => "MFA_REQUIRED",
            ErrorCode::StepUpRequired => "STEP_UP_REQUIRED",
            ErrorCode::MfaAlreadyEnabled => "MFA_ALREADY_ENABLED",
            ErrorCode::DeviceRevoked => "DEVICE_REVOKED",
            ErrorCode::Forbidden => "FORBIDDEN",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::UserNotFound => "USER_NOT_FOUND",
            ErrorCode::DeviceNotFound => "DEVICE_NOT_FOUND",
            ErrorCode::EmailTaken => "EMAIL_TAKEN",
            ErrorCode::DeviceConflict => "DEVICE_CONFLICT",
            ErrorCode::RateLimited => "RATE_LIMITED",
            ErrorCode::QuotaExceeded => "QUOTA_EXCEEDED",
            ErrorCode::Internal => "INTERNAL",
            ErrorCode::ServiceUnavailable => "SERVICE_UNAVAILABLE",
        }
    }

    /// The HTTP status this code is sent with.
    pub const fn status(self) -> u16 {
        match self {
            ErrorCode::ValidationError
            | ErrorCode::ResetTokenInvalid
            | ErrorCode::VerifyTokenInvalid
            | ErrorCode::MfaCodeInvalid => 400,
            ErrorCode::InvalidCredentials
            | ErrorCode::TokenInvalid
            | ErrorCode::TokenExpired
            | ErrorCode::TokenRevoked
            | ErrorCode::RefreshReused
            | ErrorCode::ChallengeInvalid
            | ErrorCode::SignatureInvalid
            | ErrorCode::ProofInvalid
            | ErrorCode::SessionExpired => 401,
            ErrorCode::DeviceRevoked
            | ErrorCode::Forbidden
            | ErrorCode::AccountDisabled
            | ErrorCode::MfaRequired
            | ErrorCode::StepUpRequired => 403,
            ErrorCode::NotFound | ErrorCode::UserNotFound | ErrorCode::DeviceNotFound => 404,
            ErrorCode::EmailTaken | ErrorCode::DeviceConflict | ErrorCode::MfaAlreadyEnabled => 409,
            ErrorCode::RateLimited | ErrorCode::QuotaExceeded => 429,
            ErrorCode::Internal => 500,
            ErrorCode::ServiceUnavailable => 503,
        }
    }

    /// Parses a wire spelling; unknown codes (a newer server) give `None`.
    pub fn parse(text: &str) -> Option<ErrorCode> {
        ErrorCode::ALL.into_iter().find(|code| code.as_str() == text)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// The failure envelope: `{"error": "<human message>", "code": "<MACHINE_CODE>"}`.
///
/// `code` is kept as a string when decoding, because a Kora server sends none and a newer
/// Holdfast server may send codes this version does not know; [`ErrorBody::code`] parses it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Human-readable message, safe to show; never holds secrets or internals.
    pub error: String,
    /// Machine code, when the server sends one.
    #[serde(rename = "code", default, skip_serializing_if = "Option::is_none")]
    pub code_text: Option<String>,
    /// Holdfast: why a session ended, on a refresh refused with `TOKEN_REVOKED`,
    /// `SESSION_EXPIRED` or `ACCOUNT_DISABLED` (PROTOCOL 8), as [`EndReason`] spells it;
    /// kept as text for reasons a newer server adds ([`ErrorBody::reason`] parses it).
    #[serde(rename = "reason", default, skip_serializing_if = "Option::is_none")]
    pub reason_text: Option<String>,
}

impl ErrorBody {
    /// An envelope for `code` with a human message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ErrorBody {
            error: message.into(),
            code_text: Some(code.as_str().to_owned()),
            reason_text: None,
        }
    }

    /// This envelope saying why the session ended.
    pub fn with_reason(mut self, reason: EndReason) -> Self {
        self.reason_text = Some(reason.as_str().to_owned());
        self
    }

    /// Why the session ended, if the server said and this version knows the reason.
    pub fn reason(&self) -> Option<EndReason> {
        self.reason_text.as_deref().and_then(EndReason::parse)
    }

    /// The machine code, if present and known.
    pub fn code(&self) -> Option<ErrorCode> {
        self.code_text.as_deref().and_then(ErrorCode::parse)
    }
}

/// Why a session ended (PROTOCOL 8), as a refused refresh reports it in `reason`, so an app
/// can tell its user what happened rather than only that they were signed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EndReason {
    /// The session signed out (`/signout`).
    SignedOut,
    /// Another session of the user ended this one (`DELETE /sessions/:id`).
    Revoked,
    /// Another session ended every other one (`/sessions/revoke-others`).
    RevokedByOtherSession,
    /// The user signed out everywhere (`/signout-all`), or an operator ended every session.
    SignedOutEverywhere,
    /// The password was changed in another session.
    PasswordChanged,
    /// The password was reset.
    PasswordReset,
    /// A consumed refresh token was presented again (theft suspected).
    RefreshReused,
    /// A newer sign-in exceeded the user's maximum of sessions and this one was the least
    /// recently used.
    SessionLimit,
    /// Idle longer than the server allows, or older than the absolute lifetime.
    Expired,
    /// The device was revoked.
    DeviceRevoked,
    /// An operator disabled the account.
    AccountDisabled,
    /// The account was deleted.
    AccountDeleted,
}

impl EndReason {
    /// Every reason, for exhaustive tests.
    pub const ALL: [EndReason; 12] = [
        EndReason::SignedOut,
        EndReason::Revoked,
        EndReason::RevokedByOtherSession,
        EndReason::SignedOutEverywhere,
        EndReason::PasswordChanged,
        EndReason::PasswordReset,
        EndReason::RefreshReused,
        EndReason::SessionLimit,
        EndReason::Expired,
        EndReason::DeviceRevoked,
        EndReason::AccountDisabled,
        EndReason::AccountDeleted,
    ];

    /// The wire (and storage) spelling, e.g. `"password_changed"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            EndReason::SignedOut => "signed_out",
            EndReason::Revoked => "revoked",
            EndReason::RevokedByOtherSession => "revoked_by_other_session",
            EndReason::SignedOutEverywhere => "signed_out_everywhere",
            EndReason::PasswordChanged => "password_changed",
            EndReason::PasswordReset => "password_reset",
            EndReason::RefreshReused => "refresh_reused",
            EndReason::SessionLimit => "session_limit",
            EndReason::Expired => "expired",
            EndReason::DeviceRevoked => "device_revoked",
            EndReason::AccountDisabled => "account_disabled",
            EndReason::AccountDeleted => "account_deleted",
        }
    }

    /// Parses a spelling; unknown ones (a newer server) give `None`.
    pub fn parse(text: &str) -> Option<EndReason> {
        EndReason::ALL.into_iter().find(|reason| reason.as_str() == text)
    }

    /// The code a refresh of a session ended for this reason answers (`REFRESH_REUSED`
    /// answers only the reuse itself; later refreshes of that family are `TOKEN_REVOKED`).
    pub const fn code(self) -> ErrorCode {
        match self {
            EndReason::Expired => ErrorCode::SessionExpired,
            EndReason::AccountDisabled => ErrorCode::AccountDisabled,
            EndReason::DeviceRevoked => ErrorCode::DeviceRevoked,
            EndReason::AccountDeleted => ErrorCode::UserNotFound,
            _ => ErrorCode::TokenRevoked,
        }
    }

    /// A message a person can read.
    pub const fn message(self) -> &'static str {
        match self {
            EndReason::SignedOut => "This session was signed out. Sign in again.",
            EndReason::Revoked | EndReason::RevokedByOtherSession => {
                "This session was ended from another session. Sign in again."
            }
            EndReason::SignedOutEverywhere => "You were signed out everywhere. Sign in again.",
            EndReason::PasswordChanged => "The password was changed in another session. Sign in again.",
            EndReason::PasswordReset => "The password was reset. Sign in with the new password.",
            EndReason::RefreshReused => {
                "This refresh token was already used. The session was ended for safety; sign in again."
            }
            EndReason::SessionLimit => {
                "This session ended because a newer sign-in exceeded the number of sessions allowed."
            }
            EndReason::Expired => "This session expired. Sign in again.",
            EndReason::DeviceRevoked => "This device was revoked.",
            EndReason::AccountDisabled => "This account is disabled.",
            EndReason::AccountDeleted => "The account no longer exists.",
        }
    }
}

impl fmt::Display for EndReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_and_has_a_protocol_status() {
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::parse(code.as_str()), Some(code));
            assert!(matches!(
                code.status(),
                400 | 401 | 403 | 404 | 409 | 429 | 500 | 503
            ));
        }
        assert_eq!(ErrorCode::parse("SOMETHING_NEW"), None);
    }

    #[test]
    fn every_reason_round_trips_and_rides_on_its_code() {
        for reason in EndReason::ALL {
            assert_eq!(EndReason::parse(reason.as_str()), Some(reason));
            let body = ErrorBody::new(reason.code(), reason.message()).with_reason(reason);
            let json = serde_json::to_string(&body).unwrap();
            let back: ErrorBody = serde_json::from_str(&json).unwrap();
            assert_eq!((back.code(), back.reason()), (Some(reason.code()), Some(reason)));
        }
        assert_eq!(EndReason::parse("whatever"), None);
        assert_eq!(EndReason::Expired.code(), ErrorCode::SessionExpired);
        assert_eq!(EndReason::PasswordReset.code(), ErrorCode::TokenRevoked);
    }

    #[test]
    fn kora_error_without_code_parses() {
        let body: ErrorBody = serde_json::from_str(r#"{"error":"Invalid email or password."}"#).unwrap();
        assert_eq!(body.code(), None);
        let ours = serde_json::to_string(&ErrorBody::new(ErrorCode::TokenExpired, "expired")).unwrap();
        assert_eq!(ours, r#"{"error":"expired","code":"TOKEN_EXPIRED"}"#);
    }
}
