//! Bodies of the sessions and account-lifecycle routes (PROTOCOL 8).

use serde::{Deserialize, Serialize};
use std::fmt;

use super::{TokenPair, User};
use crate::redact::{Redacted, RedactedOpt};

/// A body that is an empty JSON object, `{}` (`/sessions/revoke-others`, `/signout-all`,
/// `/verify/resend`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Empty {}

/// A session (PROTOCOL 8): one sign-in on one device, one refresh-token family.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    /// The session's id (its token family).
    pub id: String,
    /// The device it was signed in on.
    pub device_id: String,
    /// Sign-in time, milliseconds since the epoch.
    pub created_at: i64,
    /// Last refresh, milliseconds since the epoch (`createdAt` until the first).
    pub last_used_at: i64,
    /// The client address of the sign-in, when known.
    pub ip_address: Option<String>,
    /// The user agent of the sign-in, when known.
    pub user_agent: Option<String>,
    /// Authentication assurance level: 1, or 2 after a second factor (PROTOCOL 9).
    pub aal: u8,
    /// Whether this is the caller's own session.
    pub current: bool,
}

/// `data` of `/sessions/revoke-others` and `/signout-all`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revoked {
    /// How many sessions ended.
    pub revoked: u64,
}

/// `data` of `/password/change`: the caller's session's fresh pair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tokens {
    /// The fresh pair.
    pub tokens: TokenPair,
}

/// `data` of `/verify/confirm`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserBody {
    /// The user, now with `emailVerified: true`.
    pub user: User,
}

/// Body of `POST /password/change`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PasswordChangeRequest {
    /// The password now.
    pub current_password: String,
    /// The password to set, 8 to 128 characters.
    pub new_password: String,
}

impl fmt::Debug for PasswordChangeRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordChangeRequest")
            .field("current_password", &Redacted(&self.current_password))
            .field("new_password", &Redacted(&self.new_password))
            .finish()
    }
}

/// Body of `POST /password/reset-request`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResetRequest {
    /// The account's email.
    pub email: String,
}

/// Body of `POST /password/reset`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PasswordResetRequest {
    /// The token from the reset mail.
    pub token: String,
    /// The password to set, 8 to 128 characters.
    pub new_password: String,
}

impl fmt::Debug for PasswordResetRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordResetRequest")
            .field("token", &Redacted(&self.token))
            .field("new_password", &Redacted(&self.new_password))
            .finish()
    }
}

/// Body of `POST /verify/send`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifySendRequest {
    /// The address to verify: the account's own (the only one accepted); absent means it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// Body of `POST /verify/confirm`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyConfirmRequest {
    /// The token from the verification mail.
    pub token: String,
}

impl fmt::Debug for VerifyConfirmRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyConfirmRequest")
            .field("token", &Redacted(&self.token))
            .finish()
    }
}

/// `data` of `/password/reset-request`, `/verify/send` and `/verify/resend`: `token` only
/// from a server in development mode (no mailer configured), as Kora does.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailSent {
    /// Always `true`.
    pub success: bool,
    /// The token the mail would have carried (development mode only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

impl fmt::Debug for MailSent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MailSent")
            .field("success", &self.success)
            .field("token", &RedactedOpt(&self.token))
            .finish()
    }
}

/// Body of `DELETE /me`.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteAccountRequest {
    /// The account's password (required unless a recent step-up stands in, PROTOCOL 9).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

impl fmt::Debug for DeleteAccountRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeleteAccountRequest")
            .field("password", &RedactedOpt(&self.password))
            .finish()
    }
}
