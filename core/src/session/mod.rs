//! The [`AuthClient`]: what an app holds to keep its user signed in.
//!
//! - start-up ([`AuthClient::initialize`]) restores from the vault without the network;
//! - [`AuthClient::access_token`] answers from memory while the token is fresh, and
//!   otherwise refreshes: single-flight across tasks (one in-process gate), threads and
//!   processes (the store's [`RefreshLock`](crate::store::RefreshLock), under which the
//!   stored session is read again), in a detached task so a cancelled caller cannot tear
//!   it, persisting the rotated pair before anyone sees it;
//! - a transient failure keeps the session and reports [`AuthEvent::RefreshFailed`]; only
//!   a definitive rejection ends it, and even then a device whose key is intact first signs
//!   in again with it (PROTOCOL 6.4);
//! - sign-out wipes local secrets first, then revokes on the server through the outbox.
//!
//! The session is kept per server: one signed-in account per server per store file.

mod account;
mod device_ops;
mod listeners;
mod records;
mod refresh;
mod schedule;
mod state;
mod vault_ops;

pub use device_ops::{RequestHeaders, SyncCredentials, SyncRefusal};
pub use listeners::{Listener, Subscription};
pub use state::{AuthEvent, AuthState, SignOutReason};

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use holdfast_protocol::wire::User;

use crate::clock::{Clock, SystemClock};
use crate::device::DeviceSigner;
use crate::error::AuthError;
use crate::store::{ClientStore, Namespace, RefreshLock};
use crate::transport::{Transport, TransportConfig};
use crate::vault::{KeySource, Vault, VaultError, generate_salt};
use records::{DeviceIdentity, SESSION, SessionRecord, Tokens};

/// How an [`AuthClient`] is set up.
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
    /// when [`AuthClient::access_token`] finds them stale.
    pub auto_refresh: bool,
    /// Bind tokens to the device key (default true): token requests (sign-up, sign-in,
    /// device re-login) carry a device proof, so the server binds the tokens it issues to
    /// this device's key (PROTOCOL 3) and a copied token is useless without the key. Off,
    /// the tokens are plain bearer tokens, for apps whose own APIs know only `Bearer`. A
    /// server that ignores proofs (a Kora server) issues bearer tokens either way.
    pub bind_tokens: bool,
    /// Where the server mounts the auth routes (default `/auth`; `""` for the server's
    /// root). A server whose routes answer 404 without the protocol's envelope here is a
    /// [`AuthError::Configuration`] error.
    pub route_prefix: String,
    /// The longest [`AuthClient::access_token`] waits for a refresh, device re-login
    /// included (default 30 s); past it the caller gets a transient timeout while the
    /// refresh goes on in the background. Each request still has `request_timeout`.
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

/// Largest clock offset a `Date` header alone can set (see [`Inner::observe_server_time`]).
const MAX_UNCONFIRMED_OFFSET_MS: i64 = 24 * 60 * 60 * 1000;

/// The outcome of the last refresh, shared with the callers that waited for it.
#[derive(Default)]
struct RefreshOutcome {
    /// Refreshes completed (either way) in this process.
    completed: u64,
    /// The error of the last one, if it failed.
    failure: Option<AuthError>,
}

/// Meta keys of the store (not secret).
const META_SALT: &str = "vault.salt";
const META_KEY_CHECK: &str = "vault.key_check";

/// The client. Cheap to clone; every clone is the same client.
#[derive(Clone)]
pub struct AuthClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for AuthClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthClient")
            .field("server", &self.inner.namespace.server_url())
            .finish_non_exhaustive()
    }
}

pub(crate) struct Inner {
    namespace: Namespace,
    storage_path: PathBuf,
    /// Replaced by `change_passphrase`.
    key_source: RwLock<KeySource>,
    device_name: Option<String>,
    clock: Arc<dyn Clock>,
    host_signer: Option<Arc<dyn DeviceSigner>>,
    transport: Transport,
    /// Set by `initialize`: the store and the vault over it. Store work holds the read
    /// lock for its whole duration (see `blocking`), so a key change, which holds the write
    /// lock, never interleaves with a write sealed under the old key.
    opened: Arc<RwLock<Option<Opened>>>,
    /// The hot path: read on every `access_token()`.
    tokens: RwLock<Option<Arc<Tokens>>>,
    user: RwLock<Option<User>>,
    state: Mutex<AuthState>,
    /// Why the last `initialize` left the state `Unavailable`: what calls then return (a
    /// wrong passphrase stays `WrongPassphrase`, not a generic storage error).
    unavailable_cause: Mutex<Option<AuthError>>,
    listeners: listeners::Listeners,
    /// One refresh at a time in this process; the store's lock covers other processes.
    refresh_gate: tokio::sync::Mutex<()>,
    /// How many refreshes completed and, if the last failed, its error: what callers that
    /// waited on the gate meanwhile get instead of a refresh of their own.
    refresh_outcome: Mutex<RefreshOutcome>,
    /// Held from a session write in the store to the matching change in memory (sign-in,
    /// sign-out, adopting a refreshed pair), so a sign-out never falls between a refresh's
    /// write and its adoption and the refresh cannot bring the session back.
    session_write: tokio::sync::Mutex<()>,
    /// The device identity, loaded or created on first use.
    device: tokio::sync::Mutex<Option<DeviceIdentity>>,
    /// Server time minus local time, ms, learned from `Date` headers.
    clock_offset_ms: AtomicI64,
    /// Counts token changes (sign-in, refresh, a pair adopted from another process).
    token_generation: AtomicU64,
    /// Whether the background refresh runs ([`ClientConfig::auto_refresh`]).
    auto_refresh: bool,
    auto_refresh_started: AtomicBool,
    /// [`ClientConfig::token_deadline`].
    token_deadline: Duration,
    /// Whether token requests carry a device proof ([`ClientConfig::bind_tokens`]).
    bind_tokens: bool,
    schedule: Arc<schedule::Schedule>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The background task holds only a weak reference: wake it so it sees it is alone.
        self.schedule.wake();
    }
}

#[derive(Clone)]
struct Opened {
    store: Arc<ClientStore>,
    vault: Arc<Vault>,
}

impl AuthClient {
    /// Checks the configuration and builds the client. Nothing is read or sent yet: call
    /// [`AuthClient::initialize`].
    pub fn new(config: ClientConfig) -> Result<AuthClient, AuthError> {
        let namespace =
            Namespace::for_server(&config.server_url).map_err(|error| AuthError::InvalidInput {
                message: error.to_string(),
            })?;
        if config.token_deadline.is_zero() {
            return Err(AuthError::InvalidInput {
                message: "the token deadline must be longer than zero".to_owned(),
            });
        }
        if config.storage_path.as_os_str().is_empty() {
            return Err(AuthError::InvalidInput {
                message: "the storage path is empty".to_owned(),
            });
        }
        let mut transport_config = TransportConfig::new(config.server_url.clone());
        transport_config.connect_timeout = config.connect_timeout;
        transport_config.request_timeout = config.request_timeout;
        transport_config.route_prefix = config.route_prefix.clone();
        let transport = Transport::new(transport_config)?;
        Ok(AuthClient {
            inner: Arc::new(Inner {
                namespace,
                storage_path: config.storage_path,
                key_source: RwLock::new(config.key_source),
                device_name: config.device_name,
                clock: config.clock,
                host_signer: config.device_signer,
                transport,
                opened: Arc::default(),
                tokens: RwLock::new(None),
                user: RwLock::new(None),
                state: Mutex::new(AuthState::Restoring),
                unavailable_cause: Mutex::new(None),
                listeners: listeners::Listeners::default(),
                refresh_gate: tokio::sync::Mutex::new(()),
                refresh_outcome: Mutex::default(),
                session_write: tokio::sync::Mutex::new(()),
                device: tokio::sync::Mutex::new(None),
                clock_offset_ms: AtomicI64::new(0),
                token_generation: AtomicU64::new(0),
                auto_refresh: config.auto_refresh,
                auto_refresh_started: AtomicBool::new(false),
                bind_tokens: config.bind_tokens,
                token_deadline: config.token_deadline,
                schedule: Arc::default(),
            }),
        })
    }

    /// Restores the stored session without the network: `SignedIn` (with an expired token
    /// if need be), `SignedOut`, or `Unavailable` when the store or its key cannot be read
    /// now (never `SignedOut` by mistake). Safe to call again, e.g. after an unlock.
    pub async fn initialize(&self) -> AuthState {
        self.inner.set_state(AuthState::Restoring);
        let (state, cause) = match self.inner.clone().restore().await {
            Ok(state) => (state, None),
            Err(error) => (
                AuthState::Unavailable {
                    reason: error.to_string(),
                },
                Some(error),
            ),
        };
        *self
            .inner
            .unavailable_cause
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = cause;
        self.inner.set_state(state.clone());
        self.inner.start_auto_refresh();
        if state.is_signed_in() {
            // Deliver what a previous run could not (e.g. a sign-out made offline).
            let inner = self.inner.clone();
            tokio::spawn(async move { inner.deliver_outbox(false).await });
        }
        state
    }

    /// The current state.
    pub fn state(&self) -> AuthState {
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The signed-in user, as last known.
    pub fn current_user(&self) -> Option<User> {
        self.inner
            .user
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Calls `listener` with every event until the returned [`Subscription`] is dropped.
    pub fn subscribe(&self, listener: Listener) -> Subscription {
        self.inner.listeners.subscribe(listener)
    }

    /// The server's time as this client estimates it (local clock plus the learned offset).
    pub fn server_now_ms(&self) -> i64 {
        self.inner.server_now_ms()
    }
}

impl Inner {
    fn set_state(&self, state: AuthState) {
        let changed = {
            let mut current = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            if *current == state {
                false
            } else {
                *current = state.clone();
                true
            }
        };
        if changed {
            self.listeners.emit(&AuthEvent::StateChanged(state));
        }
    }

    fn emit(&self, event: AuthEvent) {
        self.listeners.emit(&event);
    }

    fn server_now_ms(&self) -> i64 {
        self.clock.now_ms() + self.clock_offset_ms.load(Ordering::Relaxed)
    }

    /// Learns the clock offset from a server `Date`. `Date` has one-second precision (the
    /// server's clock read somewhere in the second it names, so the middle of that second is
    /// the best estimate), and differences under two seconds are noise and ignored.
    ///
    /// A `Date` alone never moves the offset by more than [`MAX_UNCONFIRMED_OFFSET_MS`]: one
    /// answer dated 1970 must not make the client hand out expired tokens and date its
    /// proofs 56 years back. Larger offsets are learned from the `iat` of tokens just issued
    /// ([`Inner::confirm_clock`]), and only a confirmed offset is kept across restarts.
    fn observe_server_time(&self, server_time_ms: Option<i64>) {
        let Some(server) = server_time_ms else { return };
        let Some(offset) = self.date_offset(server) else {
            tracing::debug!("ignoring a server Date too far from this device's clock");
            return;
        };
        self.set_clock_offset(offset);
    }

    /// The offset a server time read to the second gives (the middle of that second), if
    /// it is computable at all.
    fn offset_of(&self, server_ms: i64) -> Option<i64> {
        server_ms.checked_add(500)?.checked_sub(self.clock.now_ms())
    }

    /// The offset a `Date` gives, when within [`MAX_UNCONFIRMED_OFFSET_MS`].
    fn date_offset(&self, date_ms: i64) -> Option<i64> {
        self.offset_of(date_ms)
            .filter(|offset| offset.unsigned_abs() <= MAX_UNCONFIRMED_OFFSET_MS.unsigned_abs())
    }

    /// Cross-checks the clock against the `iat` of an access token the server just issued
    /// (its time when it answered, to the second). When the answer's `Date` was usable
    /// ([`Inner::observe_server_time`]) the two must agree within a minute, else the token
    /// is a protocol error (a server does not issue tokens dated long ago or ahead); when it
    /// was not (none, or too far off to trust alone), the `iat` sets the offset.
    fn confirm_clock(&self, access_token: &str, answer_date_ms: Option<i64>) -> Result<(), AuthError> {
        let Ok(claims) = holdfast_protocol::Claims::decode_unverified(access_token) else {
            // `Tokens::received` refuses it next, with the reason.
            return Ok(());
        };
        let Some(iat_offset) = claims.iat.checked_mul(1000).and_then(|iat| self.offset_of(iat)) else {
            return Ok(());
        };
        match answer_date_ms.and_then(|date| self.date_offset(date)) {
            Some(date_offset) if date_offset.abs_diff(iat_offset) > 60_000 => Err(AuthError::Protocol {
                message: "the server sent an access token whose issue time disagrees with its clock"
                    .to_owned(),
            }),
            Some(_) => Ok(()),
            None => {
                self.set_clock_offset(iat_offset);
                Ok(())
            }
        }
    }

    fn set_clock_offset(&self, offset: i64) {
        let previous = self.clock_offset_ms.load(Ordering::Relaxed);
        if offset.abs_diff(previous) < 2_000 {
            return;
        }
        self.clock_offset_ms.store(offset, Ordering::Relaxed);
        if offset.unsigned_abs() > 60_000
            && (previous.unsigned_abs() <= 60_000 || offset.abs_diff(previous) > 60_000)
        {
            self.emit(AuthEvent::ClockSkew { offset_ms: offset });
        }
    }

    fn opened(&self) -> Result<Opened, AuthError> {
        self.opened
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or_else(|| self.not_opened())
    }

    /// Why there is no open store: a wrong passphrase at the last `initialize`, or no
    /// `initialize` (or one that failed otherwise) yet.
    fn not_opened(&self) -> AuthError {
        match *self
            .unavailable_cause
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
        {
            Some(AuthError::WrongPassphrase) => AuthError::WrongPassphrase,
            _ => not_initialized(),
        }
    }

    fn current_tokens(&self) -> Option<Arc<Tokens>> {
        self.tokens.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn set_session(&self, user: User, tokens: Tokens) {
        *self.user.write().unwrap_or_else(PoisonError::into_inner) = Some(user.clone());
        let fresh = tokens.is_fresh(self.server_now_ms());
        *self.tokens.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(tokens));
        self.token_generation.fetch_add(1, Ordering::SeqCst);
        self.schedule.wake();
        self.set_state(AuthState::SignedIn {
            user,
            token_fresh: fresh,
        });
    }

    fn clear_session(&self) {
        *self.tokens.write().unwrap_or_else(PoisonError::into_inner) = None;
        *self.user.write().unwrap_or_else(PoisonError::into_inner) = None;
        self.token_generation.fetch_add(1, Ordering::SeqCst);
        self.schedule.wake();
    }

    /// Runs blocking store work off the async executor.
    async fn blocking<T, F>(&self, work: F) -> Result<T, AuthError>
    where
        T: Send + 'static,
        F: FnOnce(Opened) -> Result<T, AuthError> + Send + 'static,
    {
        let cell = self.opened.clone();
        let not_opened = self.not_opened();
        tokio::task::spawn_blocking(move || {
            let opened = cell.read().unwrap_or_else(PoisonError::into_inner);
            let opened = opened.as_ref().ok_or(not_opened)?;
            work(opened.clone())
        })
        .await
        .map_err(|_| AuthError::StorageUnavailable {
            message: "a storage task failed".to_owned(),
        })?
    }

    async fn restore(self: Arc<Self>) -> Result<AuthState, AuthError> {
        let inner = self.clone();
        let opened = tokio::task::spawn_blocking(move || inner.open_store())
            .await
            .map_err(|_| AuthError::StorageUnavailable {
                message: "opening the store failed".to_owned(),
            })??;
        *self.opened.write().unwrap_or_else(PoisonError::into_inner) = Some(opened);
        match self.load_session().await? {
            Some((record, _)) => {
                let tokens = Tokens::new(&record.access_token, &record.refresh_token)?;
                self.set_session(record.user.clone(), tokens);
                Ok(self.state.lock().unwrap_or_else(PoisonError::into_inner).clone())
            }
            // Either nothing is stored, or `load_session` quarantined it and said so.
            None => Ok(
                match self.state.lock().unwrap_or_else(PoisonError::into_inner).clone() {
                    unreadable @ AuthState::SignedOut {
                        reason: SignOutReason::StoredSessionUnreadable,
                    } => unreadable,
                    _ => AuthState::SignedOut {
                        reason: SignOutReason::NoStoredSession,
                    },
                },
            ),
        }
    }

    /// Opens the store and resolves the vault key under the refresh lock (so two processes
    /// creating a first key or salt agree), checking it against the stored key check.
    fn open_store(&self) -> Result<Opened, AuthError> {
        let store = Arc::new(ClientStore::open(&self.storage_path)?);
        let _lock = RefreshLock::acquire_within(&self.storage_path, Duration::from_secs(30))?;
        let key_source = self.key_source.read().unwrap_or_else(PoisonError::into_inner);
        let key = key_source
            .resolve(|| {
                let salt = generate_salt()?;
                store
                    .set_meta_if_absent(META_SALT, &salt)
                    .map_err(|e| VaultError::KeyUnavailable {
                        message: format!("the salt cannot be stored: {e}"),
                    })
            })
            .map_err(vault_error)?;
        let vault = Vault::new(key);
        match store.meta(META_KEY_CHECK)? {
            Some(check) => vault.verify_key_check(&check).map_err(|error| match error {
                VaultError::WrongKey | VaultError::Tampered => match *key_source {
                    KeySource::Passphrase(_) => AuthError::WrongPassphrase,
                    _ => AuthError::StorageUnavailable {
                        message: "the vault key does not open this store (was the key replaced?)".to_owned(),
                    },
                },
                other => vault_error(other),
            })?,
            None => {
                store.set_meta(META_KEY_CHECK, &vault.key_check().map_err(vault_error)?)?;
            }
        }
        let stored_offset = store.meta(&clock_meta_key(&self.namespace))?;
        if let Some(bytes) = stored_offset.and_then(|offset| <[u8; 8]>::try_from(offset.as_slice()).ok()) {
            self.clock_offset_ms
                .store(i64::from_be_bytes(bytes), Ordering::Relaxed);
        }
        Ok(Opened {
            store,
            vault: Arc::new(vault),
        })
    }

    /// Reads and opens the stored session, with its record version. An unreadable record is
    /// quarantined (kept, never deleted), reported as no session, and the state says so.
    async fn load_session(&self) -> Result<Option<(SessionRecord, i64)>, AuthError> {
        let ns = self.namespace.clone();
        let now = self.clock.now_ms();
        let read = self
            .blocking(move |opened| read_sealed::<SessionRecord>(&opened, &ns, SESSION, now))
            .await?;
        match read {
            Sealed::Found(record, version) => Ok(Some((record, version))),
            Sealed::Missing => Ok(None),
            Sealed::Quarantined => {
                self.set_state(AuthState::SignedOut {
                    reason: SignOutReason::StoredSessionUnreadable,
                });
                Ok(None)
            }
        }
    }

    /// Seals and writes the session. Returns once it is durable.
    async fn save_session(&self, record: SessionRecord) -> Result<(), AuthError> {
        self.write_session(record, None).await.map(|_| ())
    }

    /// Seals and writes the session only if the stored one is still at `expected_version`
    /// (`None`: nothing stored); `false` when it changed meanwhile (a sign-out or sign-in,
    /// here or in another process) and nothing was written.
    async fn replace_session(
        &self,
        record: SessionRecord,
        expected_version: Option<i64>,
    ) -> Result<bool, AuthError> {
        self.write_session(record, Some(expected_version)).await
    }

    /// `expected`: `None` writes whatever is stored; `Some(version)` compares first.
    async fn write_session(
        &self,
        record: SessionRecord,
        expected: Option<Option<i64>>,
    ) -> Result<bool, AuthError> {
        let ns = self.namespace.clone();
        self.blocking(move |opened| {
            let json = Zeroizing::new(serde_json::to_vec(&record).map_err(|_| AuthError::Protocol {
                message: "the session cannot be serialized".to_owned(),
            })?);
            let blob = opened
                .vault
                .seal(&ns.canonical(), SESSION, &json)
                .map_err(vault_error)?;
            Ok(match expected {
                None => {
                    opened.store.put(&ns, SESSION, &blob)?;
                    true
                }
                Some(version) => opened
                    .store
                    .compare_and_put(&ns, SESSION, version, &blob)?
                    .is_some(),
            })
        })
        .await
    }

    /// The stored session's record version, if one is stored.
    async fn session_version(&self) -> Result<Option<i64>, AuthError> {
        let ns = self.namespace.clone();
        self.blocking(move |opened| Ok(opened.store.get(&ns, SESSION)?.map(|record| record.version)))
            .await
    }

    async fn save_clock_offset(&self) {
        let key = clock_meta_key(&self.namespace);
        let offset = self.clock_offset_ms.load(Ordering::Relaxed);
        let result = self
            .blocking(move |opened| Ok(opened.store.set_meta(&key, &offset.to_be_bytes())?))
            .await;
        if let Err(error) = result {
            tracing::debug!(%error, "could not keep the clock offset");
        }
    }
}

use zeroize::Zeroizing;

/// A sealed record as read from the store.
enum Sealed<T> {
    /// The value and the record's version (for a later compare-and-write).
    Found(T, i64),
    Missing,
    /// It could not be opened or parsed, and was moved to the quarantine.
    Quarantined,
}

/// Reads, opens and parses the record `name`. One that cannot be opened or parsed is moved
/// to the quarantine, with a reason that names the failure but never quotes the decrypted
/// bytes. When the vault's key no longer matches the store's key check (another process
/// changed the passphrase), every record is unreadable to this process and none is damaged:
/// that is an error, and nothing is quarantined.
fn read_sealed<T: serde::de::DeserializeOwned>(
    opened: &Opened,
    ns: &Namespace,
    name: &str,
    now_ms: i64,
) -> Result<Sealed<T>, AuthError> {
    let Some(record) = opened.store.get(ns, name)? else {
        return Ok(Sealed::Missing);
    };
    let parsed = match opened.vault.open(&ns.canonical(), name, &record.blob) {
        Ok(plain) => serde_json::from_slice::<T>(&plain).map_err(|error| {
            // serde's message quotes the values it rejects: keep only where and what kind.
            format!(
                "the decrypted record is not a valid {name} ({:?} error at line {}, column {})",
                error.classify(),
                error.line(),
                error.column()
            )
        }),
        Err(error) => Err(error.to_string()),
    };
    match parsed {
        Ok(value) => Ok(Sealed::Found(value, record.version)),
        Err(reason) => {
            if let Some(check) = opened.store.meta(META_KEY_CHECK)?
                && opened.vault.verify_key_check(&check).is_err()
            {
                return Err(AuthError::StorageUnavailable {
                    message: "the vault key was changed by another process: initialize again".to_owned(),
                });
            }
            tracing::warn!(record = name, %reason, "a stored record cannot be read; quarantining it");
            opened
                .store
                .quarantine(ns, name, record.version, &reason, now_ms)?;
            Ok(Sealed::Quarantined)
        }
    }
}

fn not_initialized() -> AuthError {
    AuthError::StorageUnavailable {
        message: "the client is not initialized: call initialize()".to_owned(),
    }
}

fn clock_meta_key(ns: &Namespace) -> String {
    format!("clock_offset:{}", ns.canonical())
}

/// The app-facing error for a vault failure.
pub(crate) fn vault_error(error: VaultError) -> AuthError {
    match error {
        VaultError::WrongKey => AuthError::WrongPassphrase,
        other => AuthError::StorageUnavailable {
            message: other.to_string(),
        },
    }
}

/// Whether the client would accept this token pair from the server (for the fuzz targets).
#[cfg(fuzzing)]
pub(crate) fn fuzz_accepts_tokens(access: &str, refresh: &str) -> bool {
    Tokens::new(access, refresh).is_ok()
}
