//! The [`AuthClient`] object: every method of the core's client, converted at the edge
//! (the sessions and account lifecycle methods are in `lifecycle.rs`).
//!
//! The constructor is synchronous (async primary constructors break Kotlin and Python);
//! everything that touches storage or the network is async and runs on tokio, which the
//! core needs for its background refresh and storage tasks.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use holdfast_core::vault::Passphrase;
use holdfast_core::{SignUpOptions, Subscription};

use crate::config::ClientConfig;
use crate::error::HoldfastError;
use crate::foreign::{self, AuthEventListener};
use crate::records::{AuthState, Device, RequestHeaders, SyncCredentials, SyncRefusal, User};
use crate::sign_in::SignInOutcome;

/// Keeps one user signed in to one server, through lost networks and restarts.
///
/// Create it, call `initialize()` (restores the stored session without the network), then
/// `sign_in`/`sign_up` if signed out, and `access_token()` before each server call.
#[derive(Debug, uniffi::Object)]
pub struct AuthClient {
    pub(crate) core: holdfast_core::AuthClient,
    /// Whether `initialize()` was called: every other call that reads storage or the
    /// network is a usage error before it.
    initialized: AtomicBool,
}

#[uniffi::export(async_runtime = "tokio")]
impl AuthClient {
    /// Checks the configuration; nothing is read or sent until `initialize()`.
    #[uniffi::constructor]
    pub fn new(config: ClientConfig) -> Result<Arc<AuthClient>, HoldfastError> {
        let core = holdfast_core::AuthClient::new(config.into())?;
        Ok(Arc::new(AuthClient {
            core,
            initialized: AtomicBool::new(false),
        }))
    }

    /// Restores the stored session without the network: `SignedIn` (even with an expired
    /// token), `SecondFactorRequired` (a sign-in waiting for its code), `SignedOut`, or `Unavailable` when storage cannot be read now. Safe to call
    /// again, e.g. after the device is unlocked.
    pub async fn initialize(&self) -> AuthState {
        self.initialized.store(true, Ordering::SeqCst);
        self.core.initialize().await.into()
    }

    /// The current state.
    pub fn state(&self) -> AuthState {
        self.core.state().into()
    }

    /// The signed-in user, as last known.
    pub fn current_user(&self) -> Option<User> {
        self.core.current_user().map(User::from)
    }

    /// The server's time as this client estimates it, ms since the epoch.
    pub fn server_now_ms(&self) -> i64 {
        self.core.server_now_ms()
    }

    /// Sends every event to `listener` until the returned handle is cancelled (or dropped).
    pub fn subscribe(&self, listener: Arc<dyn AuthEventListener>) -> Arc<SubscriptionHandle> {
        let subscription = self.core.subscribe(foreign::listener(listener));
        Arc::new(SubscriptionHandle {
            subscription: Mutex::new(Some(subscription)),
        })
    }

    /// Creates an account and signs in. `metadata_json`: the application's data about the
    /// user, a JSON object (at most 4096 bytes) the server keeps and returns with the user.
    #[uniffi::method(default(name = None, metadata_json = None))]
    pub async fn sign_up(
        &self,
        email: String,
        password: String,
        name: Option<String>,
        metadata_json: Option<String>,
    ) -> Result<User, HoldfastError> {
        self.ready()?;
        let metadata = metadata_json
            .map(|text| {
                serde_json::from_str(&text).map_err(|_| HoldfastError::InvalidInput {
                    message: "the metadata is not JSON".to_owned(),
                })
            })
            .transpose()?;
        let options = SignUpOptions { name, metadata };
        Ok(self.core.sign_up_with(&email, &password, options).await?.into())
    }

    /// Signs in with email and password. For an account with a second factor the outcome
    /// is `SecondFactorRequired` (not an error): ask for a code and call
    /// `complete_sign_in_with_code`.
    pub async fn sign_in(&self, email: String, password: String) -> Result<SignInOutcome, HoldfastError> {
        self.ready()?;
        Ok(self.core.sign_in(&email, &password).await?.into())
    }

    /// Signs out: local secrets go at once (offline too); the server is told now or when
    /// the network is back.
    pub async fn sign_out(&self) -> Result<(), HoldfastError> {
        self.ready()?;
        Ok(self.core.sign_out().await?)
    }

    /// Delivers queued server calls now; returns how many are still waiting.
    pub async fn flush_outbox(&self) -> Result<u64, HoldfastError> {
        self.ready()?;
        let waiting = self.core.flush_outbox().await?;
        Ok(u64::try_from(waiting).unwrap_or(u64::MAX))
    }

    /// An access token valid for at least a safety margin, refreshed if needed.
    pub async fn access_token(&self) -> Result<String, HoldfastError> {
        self.ready()?;
        Ok(self.core.access_token().await?)
    }

    /// The access token when a fresh one is in memory; `None` when `access_token()` would
    /// have to refresh or fail (then call it). No I/O and never waits: a synchronous call,
    /// cheaper from the host than an async one (the Python package's `access_token()`
    /// tries it first).
    pub fn fresh_access_token(&self) -> Option<String> {
        if !self.initialized.load(Ordering::SeqCst) {
            return None;
        }
        self.core.fresh_access_token()
    }

    /// Refreshes now, whatever the token's age, and returns the new access token.
    pub async fn refresh(&self) -> Result<String, HoldfastError> {
        self.ready()?;
        Ok(self.core.refresh().await?)
    }

    /// Refreshes if the token is due (for background tasks and connectivity changes).
    pub async fn refresh_if_needed(&self) -> Result<(), HoldfastError> {
        self.ready()?;
        Ok(self.core.refresh_if_needed().await?)
    }

    /// Re-keys the vault under a new passphrase (only with `KeySource::Passphrase`).
    pub async fn change_passphrase(
        &self,
        current_passphrase: String,
        new_passphrase: String,
    ) -> Result<(), HoldfastError> {
        self.ready()?;
        Ok(self
            .core
            .change_passphrase(
                Passphrase::new(current_passphrase),
                Passphrase::new(new_passphrase),
            )
            .await?)
    }

    /// This device's id (created with its key on first use).
    pub async fn device_id(&self) -> Result<String, HoldfastError> {
        self.ready()?;
        Ok(self.core.device_id().await?)
    }

    /// The RFC 7638 thumbprint of this device's key (what the server binds tokens to).
    pub async fn device_thumbprint(&self) -> Result<String, HoldfastError> {
        self.ready()?;
        Ok(self.core.device_thumbprint().await?)
    }

    /// Registers this device under `name`.
    pub async fn register_device(&self, name: String) -> Result<Device, HoldfastError> {
        self.ready()?;
        Ok(self.core.register_device(&name).await?.into())
    }

    /// Signs a server challenge with the device key (P1363, base64url).
    pub async fn sign_challenge(&self, challenge: String) -> Result<String, HoldfastError> {
        self.ready()?;
        Ok(self.core.sign_challenge(&challenge).await?)
    }

    /// A device proof (PROTOCOL 6.1) for `method` on `url`, bound to a fresh access token.
    #[uniffi::method(default(nonce = None))]
    pub async fn device_proof(
        &self,
        method: String,
        url: String,
        nonce: Option<String>,
    ) -> Result<String, HoldfastError> {
        self.ready()?;
        Ok(self.core.device_proof(&method, &url, nonce.as_deref()).await?)
    }

    /// What a sync connection to `sync_url` presents: token, device id and proof.
    pub async fn sync_credentials(&self, sync_url: String) -> Result<SyncCredentials, HoldfastError> {
        self.ready()?;
        Ok(self.core.sync_credentials(&sync_url).await?.into())
    }

    /// What an open sync connection to `sync_url` sends to renew itself (PROTOCOL 5) when
    /// the server says, in `{"type":"reauth-required","expiresAt":…}`, that its token
    /// expires at `expires_at_ms`: a token that outlives it (refreshed if need be) and its
    /// proof. Send `{"type":"reauth","authToken":…,"proof":…}` with them.
    pub async fn sync_renewal(
        &self,
        sync_url: String,
        expires_at_ms: i64,
    ) -> Result<SyncCredentials, HoldfastError> {
        self.ready()?;
        Ok(self.core.sync_renewal(&sync_url, expires_at_ms).await?.into())
    }

    /// Tells the client that the sync server refused or closed this device's connection,
    /// so the session follows at once: a revoked device or deleted account signs out, an
    /// expired or revoked token is refreshed now. Anything else changes nothing.
    pub async fn handle_sync_refusal(&self, refusal: SyncRefusal) -> Result<(), HoldfastError> {
        self.ready()?;
        Ok(self.core.handle_sync_refusal(refusal.into()).await?)
    }

    /// The headers for one request of `method` to `url` on the app's own backend:
    /// `Authorization` (`DPoP <token>` when the token is bound to the device key, `Bearer
    /// <token>` otherwise) and, when bound, `DPoP`, a proof for exactly this request made
    /// from the same token. Make new headers for every request: a proof is good once.
    pub async fn request_headers(
        &self,
        method: String,
        url: String,
    ) -> Result<RequestHeaders, HoldfastError> {
        self.ready()?;
        Ok(self.core.request_headers(&method, &url).await?.into())
    }

    /// Every device of the signed-in user, revoked ones included.
    pub async fn list_devices(&self) -> Result<Vec<Device>, HoldfastError> {
        self.ready()?;
        Ok(self
            .core
            .list_devices()
            .await?
            .into_iter()
            .map(Device::from)
            .collect())
    }

    /// Revokes one of the user's devices; revoking this one signs it out.
    pub async fn revoke_device(&self, device_id: String) -> Result<(), HoldfastError> {
        self.ready()?;
        Ok(self.core.revoke_device(&device_id).await?)
    }

    /// Signs in again with the device key alone (PROTOCOL 6.4).
    pub async fn reauthenticate_with_device(&self) -> Result<(), HoldfastError> {
        self.ready()?;
        Ok(self.core.reauthenticate_with_device().await?)
    }
}

impl AuthClient {
    pub(crate) fn ready(&self) -> Result<(), HoldfastError> {
        if self.initialized.load(Ordering::SeqCst) {
            Ok(())
        } else {
            Err(HoldfastError::Usage {
                message: "call initialize() first".to_owned(),
            })
        }
    }
}

/// An event subscription; `cancel()` (or dropping it) ends it.
#[derive(Debug, uniffi::Object)]
pub struct SubscriptionHandle {
    subscription: Mutex<Option<Subscription>>,
}

#[uniffi::export]
impl SubscriptionHandle {
    /// Stops the events. Calling it again does nothing.
    pub fn cancel(&self) {
        drop(
            self.subscription
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::KeySource;

    fn config(server_url: &str, storage_path: &str) -> ClientConfig {
        ClientConfig {
            server_url: server_url.into(),
            storage_path: storage_path.into(),
            key_source: KeySource::Passphrase {
                passphrase: "pass".into(),
            },
            device_name: None,
            connect_timeout_ms: 1_000,
            request_timeout_ms: 1_000,
            auto_refresh: false,
            device_signer: None,
            bind_tokens: true,
            route_prefix: "/auth".into(),
            token_deadline_ms: 30_000,
        }
    }

    #[test]
    fn bad_configuration_is_invalid_input() {
        assert!(matches!(
            AuthClient::new(config("", "/tmp/x.db")),
            Err(HoldfastError::InvalidInput { .. })
        ));
        assert!(matches!(
            AuthClient::new(config("http://127.0.0.1:9", "")),
            Err(HoldfastError::InvalidInput { .. })
        ));
    }

    #[tokio::test]
    async fn a_fresh_store_restores_signed_out_and_calls_need_a_session() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("client.db");
        let client = AuthClient::new(config("http://127.0.0.1:9", path.to_str().unwrap())).unwrap();
        assert_eq!(client.state(), AuthState::Restoring);
        let state = client.initialize().await;
        assert!(matches!(state, AuthState::SignedOut { .. }), "{state:?}");
        assert_eq!(client.current_user(), None);
        assert_eq!(client.access_token().await, Err(HoldfastError::NotSignedIn));
    }

    #[test]
    fn cancelling_twice_is_harmless() {
        let client = AuthClient::new(config("http://127.0.0.1:9", "/tmp/unused.db")).unwrap();
        struct Quiet;
        impl AuthEventListener for Quiet {
            fn on_event(&self, _: crate::records::AuthEvent) -> Result<(), HoldfastError> {
                Ok(())
            }
        }
        let handle = client.subscribe(Arc::new(Quiet));
        handle.cancel();
        handle.cancel();
    }
}
