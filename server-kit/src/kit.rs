//! The composition root: one builder that wires the checks, the auth routes, the sync gate,
//! the sync endpoint and the revocation relay, used by `holdfast-server`, the examples, the
//! benches and the tests alike.
//!
//! ```no_run
//! use holdfast_server_kit::{Kit, ServerConfig, Stores, server};
//! use holdfast_server_kit::sync::{SharedCollection, SyncOptions};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = ServerConfig::new(vec![std::env::var("HOLDFAST_SECRET")?]);
//! let kit = Kit::builder(config, Stores::sqlite("auth.db")?)
//!     .sync(SharedCollection::open("sync.db")?, SyncOptions::default())
//!     .build()
//!     .await?;
//! // The auth routes under /auth and the sync endpoint at /sync, beside the app's own.
//! let app = axum::Router::new().merge(kit.router());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! server::serve(listener, app, std::future::pending()).await?;
//! # Ok(()) }
//! ```

use std::sync::Arc;

use axum::Router;

use crate::authn::Authenticator;
use crate::config::{ConfigError, ServerConfig};
use crate::gate::{GateConfig, SyncGate};
use crate::hooks::{AuthHooks, NoHooks};
use crate::server::{self, GoingAway};
use crate::service::AccountMail;
use crate::service::AuthService;
use crate::store::{StoreError, Stores};
use crate::sync::{SharedCollection, SyncOptions, sync_router};

/// Why a [`Kit`] could not be built.
#[derive(Debug, thiserror::Error)]
pub enum KitError {
    /// The configuration is invalid.
    #[error("invalid configuration: {0}")]
    Config(#[from] ConfigError),
    /// A backend (the revocation relay's Redis) could not be reached.
    #[error("{0}")]
    Store(#[from] StoreError),
}

/// What [`Kit::builder`] assembles.
#[must_use = "a builder does nothing until `build` is called"]
pub struct KitBuilder {
    config: ServerConfig,
    stores: Stores,
    gate: GateConfig,
    sync: Option<(SharedCollection, SyncOptions)>,
    hooks: Arc<dyn AuthHooks>,
    mail: Option<Arc<dyn AccountMail>>,
    #[cfg(feature = "redis")]
    relay: Option<(String, String)>,
}

impl std::fmt::Debug for KitBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KitBuilder")
            .field("config", &self.config)
            .field("gate", &self.gate)
            .field("sync", &self.sync.is_some())
            .finish_non_exhaustive()
    }
}

impl KitBuilder {
    /// The sync gate's settings (default: [`GateConfig::default`]).
    pub fn gate(mut self, config: GateConfig) -> KitBuilder {
        self.gate = config;
        self
    }

    /// The application's callbacks around sign-up, sign-in, devices, sessions and account
    /// deletion (see [`crate::hooks`]).
    pub fn hooks(mut self, hooks: impl AuthHooks) -> KitBuilder {
        self.hooks = Arc::new(hooks);
        self
    }

    /// Where password-reset and email-verification mail goes: usually
    /// [`crate::mail::Outbox`] over a [`crate::mail::SmtpMailer`]. Without it the kit runs in development
    /// mode: the tokens come back in the responses (as Kora does), and `build` logs a
    /// warning saying so.
    pub fn mail(mut self, mail: Arc<dyn AccountMail>) -> KitBuilder {
        self.mail = Some(mail);
        self
    }

    /// Serves the WebSocket sync endpoint (`/sync`, see [`crate::sync`]) over `collection`
    /// from [`Kit::router`]. Its [`SyncOptions::going_away`] becomes the kit's
    /// [`Kit::going_away`].
    pub fn sync(mut self, collection: SharedCollection, options: SyncOptions) -> KitBuilder {
        self.sync = Some((collection, options));
        self
    }

    /// Relays revocations to and from the other instances through the Redis at `url`, on
    /// the channel `prefix:revocations` (see [`crate::relay`]).
    #[cfg(feature = "redis")]
    pub fn redis_relay(mut self, url: impl Into<String>, prefix: impl Into<String>) -> KitBuilder {
        self.relay = Some((url.into(), prefix.into()));
        self
    }

    /// Validates the configuration and wires everything. Needs a tokio runtime (the gate,
    /// the sync endpoint and the relay run tasks on it); with a relay, returns once it is
    /// subscribed.
    pub async fn build(self) -> Result<Kit, KitError> {
        let authn = Authenticator::new(self.config, self.stores)?;
        if self.mail.is_none() {
            tracing::warn!(
                "no mailer configured: development mode, password-reset and email-verification \
                 tokens are returned in responses; configure a mailer before serving real users"
            );
        }
        let service = AuthService::with_parts(authn.clone(), self.hooks, self.mail);
        let gate = SyncGate::new(&authn, self.gate);
        #[cfg(feature = "redis")]
        let relay = match self.relay {
            Some((url, prefix)) => {
                Some(crate::relay::RedisRelay::start(authn.revocations(), &url, &prefix).await?)
            }
            None => None,
        };
        let going_away = match &self.sync {
            Some((_, options)) => options.going_away.clone(),
            None => GoingAway::default(),
        };
        let sync = self
            .sync
            .map(|(collection, options)| sync_router(gate.clone(), collection, options));
        Ok(Kit {
            authn,
            service,
            gate,
            sync,
            going_away,
            #[cfg(feature = "redis")]
            _relay: relay.map(Arc::new),
        })
    }
}

/// The server kit, wired: the auth routes, the sync gate beside them over the same checks,
/// and the sync endpoint when asked for. Cheap to clone.
#[derive(Clone)]
pub struct Kit {
    authn: Authenticator,
    service: AuthService,
    gate: SyncGate,
    sync: Option<Router>,
    going_away: GoingAway,
    #[cfg(feature = "redis")]
    _relay: Option<Arc<crate::relay::RedisRelay>>,
}

impl std::fmt::Debug for Kit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kit")
            .field("service", &self.service)
            .field("gate", &self.gate)
            .field("sync", &self.sync.is_some())
            .finish_non_exhaustive()
    }
}

impl Kit {
    /// A builder over `config` and `stores`.
    pub fn builder(config: ServerConfig, stores: Stores) -> KitBuilder {
        KitBuilder {
            config,
            stores,
            gate: GateConfig::default(),
            sync: None,
            hooks: Arc::new(NoHooks),
            mail: None,
            #[cfg(feature = "redis")]
            relay: None,
        }
    }

    /// Waits, at most `timeout`, until every revocation published so far was handed to
    /// the relay's Redis (at once without a relay): a short-lived process, such as an
    /// operator command, calls it before exiting so the other instances hear of what it
    /// ended. Returns whether it got there in time.
    pub async fn flush_revocations(&self, timeout: std::time::Duration) -> bool {
        #[cfg(feature = "redis")]
        if let Some(relay) = &self._relay {
            return relay.flush(timeout).await;
        }
        let _ = timeout;
        true
    }

    /// The auth routes.
    pub fn service(&self) -> &AuthService {
        &self.service
    }

    /// The sync gate, for a sync endpoint of the application's own.
    pub fn gate(&self) -> &SyncGate {
        &self.gate
    }

    /// The checks the routes and the gate share (bearer tokens and device proofs).
    pub fn authenticator(&self) -> &Authenticator {
        &self.authn
    }

    /// The signal that tells long-lived connections the server is stopping (the sync
    /// endpoint's, and a custom endpoint's through [`GoingAway::track`]).
    pub fn going_away(&self) -> &GoingAway {
        &self.going_away
    }

    /// The auth routes under the configured prefix and, when configured, the sync
    /// endpoint, to `merge` into an application's router or `nest` under a path.
    pub fn router(&self) -> Router {
        let auth = server::router(self.service.clone());
        match &self.sync {
            Some(sync) => auth.merge(sync.clone()),
            None => auth,
        }
    }

    /// [`Kit::router`] plus a JSON 404 for every other path, for a server that is only the
    /// kit.
    pub fn standalone_router(&self) -> Router {
        self.router()
            .fallback(|| async { crate::exchange::ApiError::route_not_found() })
    }

    /// Stops the kit's background work cleanly: tells long-lived connections to go away and
    /// writes the devices' last connection times.
    pub async fn shutdown(&self) -> Result<(), StoreError> {
        self.going_away.trigger();
        self.gate.flush_last_seen().await.map(|_| ())
    }
}

/// Lets the [`crate::server::Caller`] extractor read the checks from a router whose state
/// is the kit.
impl axum::extract::FromRef<Kit> for Authenticator {
    fn from_ref(kit: &Kit) -> Authenticator {
        kit.authn.clone()
    }
}

/// Lets the [`crate::server::Admitted`] extractor read the gate from a router whose state
/// is the kit.
impl axum::extract::FromRef<Kit> for SyncGate {
    fn from_ref(kit: &Kit) -> SyncGate {
        kit.gate.clone()
    }
}
