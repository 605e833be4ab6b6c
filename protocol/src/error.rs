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
    pub const ALL: [ErrorCode; 20] = [
        ErrorCode::ValidationError,
        ErrorCode::InvalidCredentials,
        ErrorCode::TokenInvalid,
        ErrorCode::TokenExpired,
        ErrorCode::TokenRevoked,
        ErrorCode::RefreshReused,
        ErrorCode::ChallengeInvalid,
        ErrorCode::SignatureInvalid,
        ErrorCode::ProofInvalid,
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
            ErrorCode::ValidationError => 400,
            ErrorCode::InvalidCredentials
            | ErrorCode::TokenInvalid
            | ErrorCode::TokenExpired
            | ErrorCode::TokenRevoked
            | ErrorCode::RefreshReused
            | ErrorCode::ChallengeInvalid
            | ErrorCode::SignatureInvalid
            | ErrorCode::ProofInvalid => 401,
            ErrorCode::DeviceRevoked | ErrorCode::Forbidden => 403,
            ErrorCode::NotFound | ErrorCode::UserNotFound | ErrorCode::DeviceNotFound => 404,
            ErrorCode::EmailTaken | ErrorCode::DeviceConflict => 409,
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
}

impl ErrorBody {
    /// An envelope for `code` with a human message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ErrorBody {
            error: message.into(),
            code_text: Some(code.as_str().to_owned()),
        }
    }

    /// The machine code, if present and known.
    pub fn code(&self) -> Option<ErrorCode> {
        self.code_text.as_deref().and_then(ErrorCode::parse)
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
    fn kora_error_without_code_parses() {
        let body: ErrorBody = serde_json::from_str(r#"{"error":"Invalid email or password."}"#).unwrap();
        assert_eq!(body.code(), None);
        let ours = serde_json::to_string(&ErrorBody::new(ErrorCode::TokenExpired, "expired")).unwrap();
        assert_eq!(ours, r#"{"error":"expired","code":"TOKEN_EXPIRED"}"#);
    }
}
