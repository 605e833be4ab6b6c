//! [`ClientConfig`]: how an [`AuthClient`](super::AuthClient) is set up.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::clock::{Clock, SystemClock};
use crate::device::DeviceSigner;
use crate::vault::KeySource;

/// How an [`AuthClient`](crate::AuthClient) is set up.
pub struct ClientConfig {
    /// The auth server, e.g. `https://api.example.com` (routes under `/auth`).
    pub server_url: String,
    /// The SQLite file holding the sealed session (its folder must exist).
    pub storage_path: PathBuf,
    /// Where the vault key comes from.
    pub key_source: KeySource,
    /// This device's display name, sent at sign-in.
    pub device_name: Option<String>,
    /// How long to wait for a connection.
    pub connect_timeout: Duration,
    /// How long a request may take.
    pub request_timeout: Duration,
    /// Time source (tests inject a manual clock).
    pub clock: Arc<dyn Clock>,
    /// A hardware-backed device key the host supplies; the software key otherwise.
    pub device_signer: Option<Arc<dyn DeviceSigner>>,
    /// Refresh in the background at about 80% of the access token's lifetime, retrying
    /// with backoff and jitter while offline (default true). Off, tokens are refreshed only
    /// when [`AuthClient::access_token`](super::AuthClient::access_token) finds them stale.
    pub auto_refresh: bool,
    /// Bind tokens to the device key (default true): token requests (sign-up, sign-in,
    /// device re-login) carry a device proof, so the server binds the tokens it issues to
    /// this device's key (PROTOCOL 3) and a copied token is useless without the key. Off,
    /// the tokens are plain bearer tokens, for apps whose own APIs know only `Bearer`. A
    /// server that ignores proofs (a Kora server) issues bearer tokens either way.
    pub bind_tokens: bool,
    /// Where the server mounts the auth routes (default `/auth`; `""` for the server's
    /// root). A server whose routes answer 404 without the protocol's envelope here is a
    /// [`AuthError::Configuration`](crate::AuthError::Configuration) error.
    pub route_prefix: String,
    /// The longest [`AuthClient::access_token`](super::AuthClient::access_token) waits for
    /// a refresh, device re-login included (default 30 s); past it the caller gets a
    /// transient timeout while the refresh goes on in the background. Each request still
    /// has `request_timeout`.
    pub token_deadline: Duration,
}

impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("server_url", &self.server_url)
            .field("storage_path", &self.storage_path)
            .field("key_source", &self.key_source)
            .field("device_name", &self.device_name)
            .field("auto_refresh", &self.auto_refresh)
            .field("bind_tokens", &self.bind_tokens)
            .field("route_prefix", &self.route_prefix)
            .finish_non_exhaustive()
    }
}

impl ClientConfig {
    /// A configuration with default timeouts (10 s to connect, 30 s per request), the system
    /// clock and the software device key.
    pub fn new(
        server_url: impl Into<String>,
        storage_path: impl Into<PathBuf>,
        key_source: KeySource,
    ) -> Self {
        ClientConfig {
            server_url: server_url.into(),
            storage_path: storage_path.into(),
            key_source,
            device_name: None,
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            clock: Arc::new(SystemClock),
            device_signer: None,
            auto_refresh: true,
            bind_tokens: true,
            route_prefix: "/auth".to_owned(),
            token_deadline: Duration::from_secs(30),
        }
    }
}
