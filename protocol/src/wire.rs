//! Request and response bodies of every route (PROTOCOL section 2).
//!
//! Names follow the protocol's JSON (camelCase on the wire). Holdfast-only members are
//! optional and skipped when absent, so a Kora peer never sees them. Types that carry a
//! secret (password, token, credential) print it redacted in `Debug`.

use serde::{Deserialize, Serialize};
use std::fmt;

use crate::redact::{Redacted, RedactedOpt};

/// The success envelope: `{"data": <value>}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope<T> {
    /// The payload.
    pub data: T,
}

/// A user as the server describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    /// User id.
    pub id: String,
    /// Lower-cased email.
    pub email: String,
    /// Display name; may be null.
    pub name: Option<String>,
    /// Whether the email was verified.
    #[serde(default)]
    pub email_verified: bool,
    /// Creation time, milliseconds since the epoch.
    pub created_at: i64,
    /// Holdfast: the application's data about the user (a JSON object given at sign-up),
    /// absent when there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<serde_json::Value>,
}

/// A registered device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Device {
    /// Device id (chosen by the client, or assigned by the server when none was sent).
    pub id: String,
    /// Owner.
    pub user_id: String,
    /// The JWK JSON string, or `""` when the device has no key.
    pub public_key: String,
    /// Display name.
    pub name: String,
    /// Whether the device was revoked.
    pub revoked: bool,
    /// Creation time, milliseconds since the epoch.
    pub created_at: i64,
    /// Last time the device was seen, milliseconds since the epoch.
    pub last_seen_at: i64,
}

/// An access and refresh token pair.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenPair {
    /// Short-lived bearer token.
    pub access_token: String,
    /// Long-lived rotating refresh token.
    pub refresh_token: String,
}

impl fmt::Debug for TokenPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenPair")
            .field("access_token", &Redacted(&self.access_token))
            .field("refresh_token", &Redacted(&self.refresh_token))
            .finish()
    }
}

/// `data` of `/signup` (201) and `/signin` (200).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthSession {
    /// The signed-in user.
    pub user: User,
    /// Their tokens.
    pub tokens: TokenPair,
}

/// Body of `POST /signup`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignUpRequest {
    /// Email address.
    pub email: String,
    /// Password, 8 to 128 characters.
    pub password: String,
    /// Optional display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Optional client-chosen device id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
    /// Optional device public key (JWK JSON string).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_public_key: Option<String>,
    /// Holdfast: optional device display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_name: Option<String>,
    /// Holdfast: the application's data about the user, a JSON object of at most
    /// [`MAX_METADATA_BYTES`](crate::validate::MAX_METADATA_BYTES), returned with the user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<serde_json::Value>,
}

impl fmt::Debug for SignUpRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignUpRequest")
            .field("email", &self.email)
            .field("password", &Redacted(&self.password))
            .field("name", &self.name)
            .field("device_id", &self.device_id)
            .field("device_public_key", &self.device_public_key)
            .field("device_name", &self.device_name)
            .field("metadata", &self.metadata.as_ref().map(|_| "<object>"))
            .finish()
    }
}

/// Body of `POST /signin`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignInRequest {
    /// Email address.
    pub email: String,
    /// Password.
    pub password: String,
    /// Optional client-chosen device id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
    /// Optional device public key (JWK JSON string).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_public_key: Option<String>,
    /// Holdfast: optional device display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_name: Option<String>,
}

impl fmt::Debug for SignInRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignInRequest")
            .field("email", &self.email)
            .field("password", &Redacted(&self.password))
            .field("device_id", &self.device_id)
            .field("device_public_key", &self.device_public_key)
            .field("device_name", &self.device_name)
            .finish()
    }
}

/// Body of `POST /refresh`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefreshRequest {
    /// The current refresh token.
    pub refresh_token: String,
}

impl fmt::Debug for RefreshRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefreshRequest")
            .field("refresh_token", &Redacted(&self.refresh_token))
            .finish()
    }
}

/// Body of `POST /signout`.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignOutRequest {
    /// The refresh token to revoke with the session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

impl fmt::Debug for SignOutRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignOutRequest")
            .field("refresh_token", &RedactedOpt(&self.refresh_token))
            .finish()
    }
}

/// `data` of `/signout` and `DELETE /device/:id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Success {
    /// Always `true`.
    pub success: bool,
}

/// Body of `POST /device/register`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceRegisterRequest {
    /// Client-chosen device id.
    pub device_id: String,
    /// JWK JSON string.
    pub public_key: String,
    /// Display name.
    pub name: String,
}

/// `data` of `POST /device/register` (201).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceRegistration {
    /// The registered device.
    pub device: Device,
    /// A `device_credential` token bound to the key thumbprint.
    pub device_credential: String,
}

impl fmt::Debug for DeviceRegistration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceRegistration")
            .field("device", &self.device)
            .field("device_credential", &Redacted(&self.device_credential))
            .finish()
    }
}

/// Body of `POST /device/challenge`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChallengeRequest {
    /// The device that will sign.
    pub device_id: String,
}

/// `data` of `POST /device/challenge`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChallengeResponse {
    /// 64 lowercase hex characters, valid 60 s, single use.
    pub challenge: String,
}

/// Body of `POST /device/verify`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyRequest {
    /// The device that signed.
    pub device_id: String,
    /// The challenge it signed.
    pub challenge: String,
    /// P1363 signature, base64url.
    pub signature: String,
}

/// Tokens returned by `POST /device/verify`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceTokens {
    /// Fresh access token.
    pub access_token: String,
    /// Fresh refresh token.
    pub refresh_token: String,
    /// Fresh device credential.
    pub device_credential: String,
}

impl fmt::Debug for DeviceTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceTokens")
            .field("access_token", &Redacted(&self.access_token))
            .field("refresh_token", &Redacted(&self.refresh_token))
            .field("device_credential", &Redacted(&self.device_credential))
            .finish()
    }
}

/// `data` of `POST /device/verify`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyResponse {
    /// The fresh tokens.
    pub tokens: DeviceTokens,
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_secrets() {
        let secret = "s3cr3t-value-that-must-not-leak";
        let outputs = [
            format!(
                "{:?}",
                TokenPair {
                    access_token: secret.into(),
                    refresh_token: secret.into()
                }
            ),
            format!(
                "{:?}",
                SignInRequest {
                    email: "a@b.co".into(),
                    password: secret.into(),
                    device_id: None,
                    device_public_key: None,
                    device_name: None
                }
            ),
            format!(
                "{:?}",
                SignUpRequest {
                    email: "a@b.co".into(),
                    password: secret.into(),
                    name: None,
                    device_id: None,
                    device_public_key: None,
                    device_name: None,
                    metadata: None,
                }
            ),
            format!(
                "{:?}",
                RefreshRequest {
                    refresh_token: secret.into()
                }
            ),
            format!(
                "{:?}",
                SignOutRequest {
                    refresh_token: Some(secret.into())
                }
            ),
            format!(
                "{:?}",
                DeviceTokens {
                    access_token: secret.into(),
                    refresh_token: secret.into(),
                    device_credential: secret.into()
                }
            ),
            format!(
                "{:?}",
                PasswordChangeRequest {
                    current_password: secret.into(),
                    new_password: secret.into()
                }
            ),
            format!(
                "{:?}",
                PasswordResetRequest {
                    token: secret.into(),
                    new_password: secret.into()
                }
            ),
            format!("{:?}", VerifyConfirmRequest { token: secret.into() }),
            format!(
                "{:?}",
                MailSent {
                    success: true,
                    token: Some(secret.into())
                }
            ),
            format!(
                "{:?}",
                DeleteAccountRequest {
                    password: Some(secret.into())
                }
            ),
        ];
        for output in outputs {
            assert!(!output.contains(secret), "{output}");
            assert!(output.contains("redacted"), "{output}");
        }
    }

    #[test]
    fn holdfast_members_are_omitted_for_kora_peers() {
        let body = SignInRequest {
            email: "a@b.co".into(),
            password: "p".into(),
            device_id: None,
            device_public_key: None,
            device_name: None,
        };
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"email":"a@b.co","password":"p"}"#
        );
    }
}
