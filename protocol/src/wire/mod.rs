//! Request and response bodies of every route (PROTOCOL section 2).
//!
//! Names follow the protocol's JSON (camelCase on the wire). Holdfast-only members are
//! optional and skipped when absent, so a Kora peer never sees them. Types that carry a
//! secret (password, token, credential) print it redacted in `Debug`.

use serde::{Deserialize, Serialize};
use std::fmt;

use crate::redact::{Redacted, RedactedOpt};

mod lifecycle;
mod mfa;

pub use lifecycle::*;
pub use mfa::*;

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
