//! What the gate takes and gives: the handshake, the principal, the settings and the
//! refusals.

use std::borrow::Cow;
use std::time::Duration;

use holdfast_protocol::ErrorCode;
use serde_json::json;

use crate::exchange::ApiError;
use crate::store::StoreError;

/// What a sync connection presents at its handshake.
#[derive(Clone, Copy)]
pub struct Handshake<'a> {
    /// The access token (Kora's handshake `authToken`).
    pub access_token: &'a str,
    /// The device proof (PROTOCOL 6.1), from a Holdfast client.
    pub proof: Option<&'a str>,
    /// The handshake's method (`GET` for a WebSocket upgrade).
    pub method: &'a str,
    /// The sync URL as the client addressed it.
    pub url: &'a str,
}

impl std::fmt::Debug for Handshake<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handshake")
            .field("proof", &self.proof.map(|_| "<redacted>"))
            .field("method", &self.method)
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// Who is connected: PROTOCOL 5's principal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The user.
    pub user_id: String,
    /// The device.
    pub device_id: String,
    /// The user's email.
    pub email: String,
    /// The user's display name.
    pub name: Option<String>,
    /// The access token's `jti` (not a secret: it names the token).
    pub token_id: String,
    /// The token's session (family), when it has one.
    pub family: Option<String>,
    /// When the access token was issued, seconds.
    pub issued_at: i64,
    /// When the access token expires, seconds.
    pub expires_at: i64,
    /// Whether the connection proved possession of the device key.
    pub proven: bool,
    /// The user's revocation epoch at admission: a watch started later re-checks at once if
    /// a revocation came in between.
    pub(super) admitted_epoch: u64,
}

impl Principal {
    /// The principal as Kora's sync server sees it:
    /// `{userId, deviceId, metadata: {deviceId, email, name}}`.
    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "userId": self.user_id,
            "deviceId": self.device_id,
            "metadata": {"deviceId": self.device_id, "email": self.email, "name": self.name},
        })
    }
}

/// What to do with a token presented without a device proof.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProoflessPolicy {
    /// Refuse every connection without a proof.
    Reject,
    /// Admit tokens not bound to a device key (Kora web clients, keyless devices). Bound
    /// tokens always need a proof.
    #[default]
    AdmitUnbound,
}

/// How the gate behaves.
#[derive(Debug, Clone)]
pub struct GateConfig {
    /// Tokens without a proof.
    pub proofless: ProoflessPolicy,
    /// Admit tokens whose device is not registered (Kora does; Holdfast does not by default).
    pub allow_unregistered_devices: bool,
    /// How long a token's cached standing is trusted without an event (staleness bound of
    /// admission).
    pub cache_ttl: Duration,
    /// How often an open connection re-checks its standing without an event (staleness
    /// bound of open connections).
    pub recheck_interval: Duration,
    /// How often the coalesced `lastSeenAt` values are written.
    pub last_seen_flush: Duration,
    /// Most tokens whose claims and standing are cached.
    pub cache_capacity: usize,
}

impl Default for GateConfig {
    fn default() -> Self {
        GateConfig {
            proofless: ProoflessPolicy::default(),
            allow_unregistered_devices: false,
            cache_ttl: Duration::from_secs(5),
            recheck_interval: Duration::from_secs(15),
            last_seen_flush: Duration::from_secs(5),
            cache_capacity: 100_000,
        }
    }
}

/// Why a connection was refused: a PROTOCOL code and a message safe to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateError {
    /// The code (fixes the HTTP status).
    pub code: ErrorCode,
    /// What failed.
    pub message: Cow<'static, str>,
}

impl GateError {
    pub(super) fn new(code: ErrorCode, message: impl Into<Cow<'static, str>>) -> GateError {
        GateError {
            code,
            message: message.into(),
        }
    }

    /// The HTTP status for an upgrade request that is refused.
    pub fn status(&self) -> u16 {
        self.code.status()
    }
}

impl std::fmt::Display for GateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for GateError {}

impl From<ApiError> for GateError {
    fn from(error: ApiError) -> GateError {
        GateError::new(error.code, error.message)
    }
}

impl From<GateError> for ApiError {
    fn from(error: GateError) -> ApiError {
        ApiError::new(error.code, error.message)
    }
}

impl From<StoreError> for GateError {
    fn from(error: StoreError) -> GateError {
        ApiError::from(error).into()
    }
}
