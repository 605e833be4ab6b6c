//! How an app sets up its [`AuthClient`](crate::AuthClient): the [`ClientConfig`] record and
//! the [`KeySource`] of the vault key.

use std::sync::Arc;
use std::time::Duration;

use holdfast_core::vault::{KeySource as CoreKeySource, Passphrase};

use crate::foreign::{DeviceSigner, DeviceSignerBridge, KeyProvider, KeyProviderBridge};

/// Where the vault key comes from.
#[derive(uniffi::Enum)]
#[uniffi::export(Debug, Display)]
pub enum KeySource {
    /// A passphrase the user types (PBKDF2-HMAC-SHA256, 600,000 iterations, so opening
    /// takes a moment on purpose).
    Passphrase {
        /// The passphrase.
        passphrase: String,
    },
    /// The OS credential store (Keychain, Secret Service, Credential Manager); a key is
    /// generated and stored there on first use.
    Keyring {
        /// The credential's service, e.g. the app's bundle identifier.
        service: String,
        /// The credential's account, e.g. `"holdfast-vault"`.
        account: String,
    },
    /// A key the app keeps itself, through its [`KeyProvider`].
    Provided {
        /// The app's key keeper.
        provider: Arc<dyn KeyProvider>,
    },
}

impl std::fmt::Debug for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeySource::Passphrase { .. } => f.write_str("Passphrase(<redacted>)"),
            KeySource::Keyring { service, account } => f
                .debug_struct("Keyring")
                .field("service", service)
                .field("account", account)
                .finish(),
            KeySource::Provided { .. } => f.write_str("Provided(<app key provider>)"),
        }
    }
}

impl std::fmt::Display for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

impl From<KeySource> for CoreKeySource {
    fn from(source: KeySource) -> CoreKeySource {
        match source {
            KeySource::Passphrase { passphrase } => CoreKeySource::Passphrase(Passphrase::new(passphrase)),
            KeySource::Keyring { service, account } => CoreKeySource::Keyring { service, account },
            KeySource::Provided { provider } => {
                CoreKeySource::Provided(Arc::new(KeyProviderBridge::new(provider)))
            }
        }
    }
}

/// How an [`AuthClient`](crate::AuthClient) is set up.
#[derive(uniffi::Record)]
#[uniffi::export(Debug, Display)]
pub struct ClientConfig {
    /// The auth server, e.g. `https://api.example.com` (routes under `/auth`).
    pub server_url: String,
    /// The SQLite file holding the sealed session; its folder must exist and be writable.
    pub storage_path: String,
    /// Where the vault key comes from.
    pub key_source: KeySource,
    /// This device's display name, sent at sign-in.
    #[uniffi(default = None)]
    pub device_name: Option<String>,
    /// How long to wait for a connection, ms.
    #[uniffi(default = 10000)]
    pub connect_timeout_ms: u64,
    /// How long a request may take, ms.
    #[uniffi(default = 30000)]
    pub request_timeout_ms: u64,
    /// Refresh in the background at about 80% of the access token's lifetime.
    #[uniffi(default = true)]
    pub auto_refresh: bool,
    /// A hardware-backed device key; Holdfast's software key when absent.
    #[uniffi(default = None)]
    pub device_signer: Option<Arc<dyn DeviceSigner>>,
    /// Bind tokens to the device key (token requests carry a device proof, PROTOCOL 3); off,
    /// the tokens are plain bearer tokens, for apps whose own APIs know only `Bearer`.
    #[uniffi(default = true)]
    pub bind_tokens: bool,
    /// Where the server mounts the auth routes (`/auth` unless it says otherwise).
    #[uniffi(default = "/auth")]
    pub route_prefix: String,
    /// The longest `access_token()` (and every call that needs a token) waits for a
    /// refresh, its device re-login included, ms; then it fails as transient.
    #[uniffi(default = 30000)]
    pub token_deadline_ms: u64,
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
            .field("token_deadline_ms", &self.token_deadline_ms)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Display for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

impl From<ClientConfig> for holdfast_core::ClientConfig {
    fn from(config: ClientConfig) -> holdfast_core::ClientConfig {
        let mut core = holdfast_core::ClientConfig::new(
            config.server_url,
            config.storage_path,
            config.key_source.into(),
        );
        core.device_name = config.device_name;
        core.connect_timeout = Duration::from_millis(config.connect_timeout_ms);
        core.request_timeout = Duration::from_millis(config.request_timeout_ms);
        core.auto_refresh = config.auto_refresh;
        core.bind_tokens = config.bind_tokens;
        core.route_prefix = config.route_prefix;
        core.token_deadline = Duration::from_millis(config.token_deadline_ms);
        core.device_signer = config.device_signer.map(|signer| {
            Arc::new(DeviceSignerBridge::new(signer)) as Arc<dyn holdfast_core::device::DeviceSigner>
        });
        core
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(key_source: KeySource) -> ClientConfig {
        ClientConfig {
            server_url: "https://auth.example.com".into(),
            storage_path: "/tmp/holdfast.db".into(),
            key_source,
            device_name: Some("laptop".into()),
            connect_timeout_ms: 1_500,
            request_timeout_ms: 4_000,
            auto_refresh: false,
            device_signer: None,
            bind_tokens: false,
            route_prefix: "/api/auth".into(),
            token_deadline_ms: 5_000,
        }
    }

    #[test]
    fn the_config_reaches_the_core_unchanged() {
        let core = holdfast_core::ClientConfig::from(config(KeySource::Keyring {
            service: "com.example.app".into(),
            account: "vault".into(),
        }));
        assert_eq!(core.server_url, "https://auth.example.com");
        assert_eq!(core.storage_path, std::path::PathBuf::from("/tmp/holdfast.db"));
        assert_eq!(core.device_name.as_deref(), Some("laptop"));
        assert_eq!(core.connect_timeout, Duration::from_millis(1_500));
        assert_eq!(core.request_timeout, Duration::from_secs(4));
        assert!(!core.auto_refresh);
        assert!(!core.bind_tokens);
        assert_eq!(core.route_prefix, "/api/auth");
        assert_eq!(core.token_deadline, Duration::from_secs(5));
        assert!(core.device_signer.is_none());
        assert!(matches!(
            core.key_source,
            CoreKeySource::Keyring { ref service, ref account } if service == "com.example.app" && account == "vault"
        ));
    }

    #[test]
    fn debug_never_shows_the_passphrase() {
        let config = config(KeySource::Passphrase {
            passphrase: "correct horse battery staple".into(),
        });
        let shown = format!("{config:?}");
        assert!(!shown.contains("horse"), "{shown}");
        let core = holdfast_core::ClientConfig::from(config);
        assert!(!format!("{core:?}").contains("horse"));
        assert!(matches!(core.key_source, CoreKeySource::Passphrase(_)));
    }
}
