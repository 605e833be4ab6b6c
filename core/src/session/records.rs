//! What the session keeps in the store, always sealed by the vault (through
//! [`super::sealed`]): the session (user and tokens, one record so the rotated pair is
//! written atomically), the device identity (id, software key, credential) and the payload
//! of a queued sign-out; and their forms in memory ([`Tokens`], [`DeviceIdentity`]).

use std::fmt;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use holdfast_protocol::Claims;
use holdfast_protocol::wire::User;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::sealed::SealedRecord;
use crate::device::{DeviceSigner, SoftwareSigner};
use crate::error::AuthError;

/// Record names, in the server's namespace.
pub(crate) const SESSION: &str = "session";
pub(crate) const DEVICE: &str = "device";
/// Outbox kind of a queued sign-out, and the record name its payload is sealed under.
pub(crate) const SIGN_OUT: &str = "sign_out";

/// The stored session.
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SessionRecord {
    pub user: User,
    pub access_token: String,
    pub refresh_token: String,
}

impl fmt::Debug for SessionRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionRecord")
            .field("user", &self.user.id)
            .finish_non_exhaustive()
    }
}

impl Drop for SessionRecord {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.access_token);
        zeroize::Zeroize::zeroize(&mut self.refresh_token);
    }
}

impl SealedRecord for SessionRecord {
    const NAME: &'static str = SESSION;
    /// 1: `v` added; version 0 (no `v`) has the same fields.
    const VERSION: u32 = 1;
}

/// The stored device identity. `pkcs8` is absent when the host app supplies the key.
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DeviceRecord {
    pub device_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pkcs8: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

impl fmt::Debug for DeviceRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceRecord")
            .field("device_id", &self.device_id)
            .finish_non_exhaustive()
    }
}

impl Drop for DeviceRecord {
    fn drop(&mut self) {
        if let Some(key) = self.pkcs8.as_mut() {
            zeroize::Zeroize::zeroize(key);
        }
        if let Some(credential) = self.credential.as_mut() {
            zeroize::Zeroize::zeroize(credential);
        }
    }
}

impl SealedRecord for DeviceRecord {
    const NAME: &'static str = DEVICE;
    /// 1: `v` added; version 0 (no `v`) has the same fields.
    const VERSION: u32 = 1;
}

/// The payload of a queued sign-out: the tokens to revoke, sealed like every secret.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SignOutCall {
    pub access_token: String,
    pub refresh_token: String,
}

impl Drop for SignOutCall {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.access_token);
        zeroize::Zeroize::zeroize(&mut self.refresh_token);
    }
}

impl SealedRecord for SignOutCall {
    const NAME: &'static str = SIGN_OUT;
    /// 1: `v` added; version 0 (no `v`) has the same fields.
    const VERSION: u32 = 1;
}

/// Longest token kept: the server kit refuses longer ones, so a longer one could never be
/// sent back.
pub(crate) const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// The last second of year 9999: later `exp`/`iat` values are protocol errors.
const MAX_TIME_SECS: i64 = 253_402_300_799;

/// Three non-empty base64url parts separated by dots, nothing else, at most
/// [`MAX_TOKEN_BYTES`].
fn is_compact_token(token: &str) -> bool {
    token.len() <= MAX_TOKEN_BYTES
        && token.split('.').count() == 3
        && token.split('.').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// The tokens in memory, with the access token's expiry read from its claims.
pub(crate) struct Tokens {
    pub access: Zeroizing<String>,
    pub refresh: Zeroizing<String>,
    /// `exp` of the access token, ms (server time).
    pub access_expires_ms: i64,
    /// `iat` of the access token, ms (server time).
    pub access_issued_ms: i64,
    /// Whether the session still owes its second factor (the access token's
    /// `mfa: "pending"`, PROTOCOL 9).
    pub mfa_pending: bool,
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tokens")
            .field("access_expires_ms", &self.access_expires_ms)
            .field("mfa_pending", &self.mfa_pending)
            .finish_non_exhaustive()
    }
}

impl Tokens {
    /// Reads the expiry of `access` (the client cannot verify HS256; the server does). An
    /// `exp` or `iat` outside 1970 to 9999 is a protocol error: no arithmetic on them can
    /// then overflow, and no token counts as fresh forever or as due every second.
    pub fn new(access: &str, refresh: &str) -> Result<Tokens, AuthError> {
        let claims = Claims::decode_unverified(access).map_err(|_| AuthError::Protocol {
            message: "the server sent an access token that is not a JWT".to_owned(),
        })?;
        let in_range = |secs: i64| (0..=MAX_TIME_SECS).contains(&secs);
        if !in_range(claims.exp) || !in_range(claims.iat) {
            return Err(AuthError::Protocol {
                message: "the server sent an access token whose times are out of range".to_owned(),
            });
        }
        Ok(Tokens {
            access: Zeroizing::new(access.to_owned()),
            refresh: Zeroizing::new(refresh.to_owned()),
            // In range: at most 253,402,300,799,000, far from overflowing.
            access_expires_ms: claims.exp * 1000,
            access_issued_ms: claims.iat * 1000,
            mfa_pending: claims.mfa_pending(),
        })
    }

    /// A pair just received from the server, checked before anything keeps it: each token
    /// must be one the server could accept back (a compact JWS of at most
    /// [`MAX_TOKEN_BYTES`]: three base64url parts, no whitespace), else a session would be
    /// stored that every later refresh fails on; and the access token must not already be
    /// expired at `server_now_ms`, else the client would hand out a token it knows is bad.
    pub fn received(access: &str, refresh: &str, server_now_ms: i64) -> Result<Tokens, AuthError> {
        for (name, token) in [("access", access), ("refresh", refresh)] {
            if !is_compact_token(token) {
                return Err(AuthError::Protocol {
                    message: format!(
                        "the server sent a {name} token that is not a compact JWT of at most {MAX_TOKEN_BYTES} bytes"
                    ),
                });
            }
        }
        let tokens = Tokens::new(access, refresh)?;
        if tokens.access_expires_ms <= server_now_ms {
            return Err(AuthError::Protocol {
                message: "the server sent an access token that had already expired".to_owned(),
            });
        }
        Ok(tokens)
    }

    /// How long before expiry the token counts as stale: a tenth of its lifetime, at most
    /// 30 s, so a caller always gets a token that outlives its request.
    pub fn margin_ms(&self) -> i64 {
        ((self.access_expires_ms - self.access_issued_ms) / 10).clamp(0, 30_000)
    }

    /// Whether the access token is usable at `server_now_ms`.
    pub fn is_fresh(&self, server_now_ms: i64) -> bool {
        server_now_ms < self.access_expires_ms - self.margin_ms()
    }
}

/// The device identity in memory.
#[derive(Clone)]
pub(crate) struct DeviceIdentity {
    pub id: String,
    pub signer: Arc<dyn DeviceSigner>,
}

impl fmt::Debug for DeviceIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceIdentity")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl DeviceRecord {
    /// A new software identity: a random device id and a fresh P-256 key.
    pub fn generate() -> Result<(DeviceRecord, DeviceIdentity), AuthError> {
        let (signer, pkcs8) = SoftwareSigner::generate().map_err(signer_error)?;
        let id = format!("dev-{}", uuid::Uuid::new_v4());
        let record = DeviceRecord {
            device_id: id.clone(),
            pkcs8: Some(URL_SAFE_NO_PAD.encode(&*pkcs8)),
            credential: None,
        };
        Ok((
            record,
            DeviceIdentity {
                id,
                signer: Arc::new(signer),
            },
        ))
    }

    /// The identity this record describes; `host` is the app's hardware signer, if any.
    pub fn identity(&self, host: Option<&Arc<dyn DeviceSigner>>) -> Result<DeviceIdentity, AuthError> {
        let signer: Arc<dyn DeviceSigner> = match (host, &self.pkcs8) {
            (Some(host), _) => host.clone(),
            (None, Some(pkcs8)) => {
                let bytes = Zeroizing::new(URL_SAFE_NO_PAD.decode(pkcs8).map_err(|_| corrupt_key())?);
                Arc::new(SoftwareSigner::from_pkcs8(&bytes).map_err(|_| corrupt_key())?)
            }
            (None, None) => return Err(corrupt_key()),
        };
        Ok(DeviceIdentity {
            id: self.device_id.clone(),
            signer,
        })
    }
}

fn corrupt_key() -> AuthError {
    AuthError::StorageUnavailable {
        message: "the stored device key cannot be read".to_owned(),
    }
}

pub(crate) fn signer_error(error: crate::device::SignerError) -> AuthError {
    AuthError::StorageUnavailable {
        message: format!("the device key failed: {error}"),
    }
}
