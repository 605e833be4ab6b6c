//! Bodies of the multi-factor routes (PROTOCOL 9).

use serde::{Deserialize, Serialize};
use std::fmt;

use crate::redact::Redacted;

/// Body of `POST /mfa/enable`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MfaEnableRequest {
    /// The account name the authenticator app shows (Kora's field); absent means the
    /// account's email. Only the account's own email is accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// `data` of `/mfa/enable`: what the user needs to set up an authenticator app, shown
/// once. Nothing here is stored readable on the server.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MfaEnrollment {
    /// The `otpauth://totp/…` URI, for a QR code.
    pub uri: String,
    /// The shared secret, base32 (RFC 4648, unpadded), for typing in by hand.
    pub secret: String,
    /// Single-use recovery codes.
    pub recovery_codes: Vec<String>,
}

impl fmt::Debug for MfaEnrollment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MfaEnrollment")
            .field("uri", &Redacted(&self.uri))
            .field("secret", &Redacted(&self.secret))
            .field(
                "recovery_codes",
                &format_args!("<{} redacted>", self.recovery_codes.len()),
            )
            .finish()
    }
}

/// Body of `POST /mfa/verify-setup`, `/mfa/verify`, `/mfa/step-up`,
/// `/mfa/regenerate-codes` and `/mfa/disable`: a code from the authenticator app (for
/// `disable` and `step-up`, a recovery code is accepted too).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MfaCodeRequest {
    /// The code.
    pub code: String,
}

impl fmt::Debug for MfaCodeRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MfaCodeRequest")
            .field("code", &Redacted(&self.code))
            .finish()
    }
}

/// Body of `POST /mfa/recover`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MfaRecoverRequest {
    /// One of the recovery codes.
    pub recovery_code: String,
}

impl fmt::Debug for MfaRecoverRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MfaRecoverRequest")
            .field("recovery_code", &Redacted(&self.recovery_code))
            .finish()
    }
}

/// `data` of `/mfa/verify-setup` and `/mfa/disable`: `{success: true}` with Kora's
/// `message`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MfaChanged {
    /// Always `true`.
    pub success: bool,
    /// What changed, for people.
    pub message: String,
}

/// `data` of `GET /mfa/status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MfaStatus {
    /// Whether a second factor is on (enrolled and confirmed).
    pub enabled: bool,
    /// Recovery codes not used yet (0 when MFA is off).
    pub remaining_recovery_codes: u32,
}

/// `data` of `/mfa/regenerate-codes`: the new codes (the old ones no longer work).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecoveryCodes {
    /// The new single-use recovery codes, shown once.
    pub recovery_codes: Vec<String>,
}

impl fmt::Debug for RecoveryCodes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RecoveryCodes(<{} redacted>)", self.recovery_codes.len())
    }
}
