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
//!
//! # Layout
//!
//! Three parts, each depending only on the ones below it:
//!
//! 1. **The public facade**: [`AuthClient`] (here: construction, start-up, state, tokens),
//!    [`ClientConfig`] (`config.rs`), and the rest of the API by topic: `account.rs`
//!    (sign-up, sign-in, sign-out), `sessions_ops.rs` (the user's sessions: list, end one,
//!    the others, all), `account_ops.rs` (password change and reset, email verification,
//!    account deletion), `mfa_ops.rs` (the second factor: enrolment, finishing a sign-in,
//!    step-up; `mfa_qr.rs`, the enrolment and its QR code), `device_ops.rs` (the device,
//!    proofs, request headers), `sync.rs`
//!    (sync connections), `vault_ops.rs` (changing the passphrase); and what the app sees
//!    of the session (`state.rs`, `listeners.rs`). These only check input and call the
//!    state machine.
//! 2. **The state machine**: `Inner` (`inner.rs`), the state every clone shares, and its
//!    transitions, one concern per file: the clock offset (`clock_offset.rs`), start-up
//!    (`restore.rs`), the sealed records it keeps (`persist.rs`), starting and ending
//!    sessions (`lifecycle.rs`), refresh (`refresh.rs`), device re-login (`relogin.rs`),
//!    changes that must not cross a refresh (`renew.rs`: a password change's new pair, a
//!    newer copy of the user), the device identity (`device_identity.rs`), device proofs
//!    (`proofs.rs`), the outbox (`outbox.rs`) and the background refresh (`schedule.rs`).
//!
//! # Why a session ends
//!
//! A Holdfast server says why it refused a refresh (PROTOCOL 8): the session was revoked
//! from another one, the user signed out everywhere, the password changed or was reset,
//! a newer sign-in went past the session limit, the session expired, the device was
//! revoked, the account disabled or deleted. The client then signs out with that reason
//! ([`SignOutReason::SessionEnded`] and its siblings), without trying device re-login, which
//! the server would refuse: what the user or an operator ended stays ended. A refusal without
//! a reason (a Kora server, or refresh-token reuse) still goes to device re-login first.
//! 3. **Sealed persistence**: the one typed pair that turns a record into a sealed, versioned
//!    blob and back, and quarantines what cannot be read (`sealed.rs`), and the records
//!    themselves (`records.rs`). Below it: the [store](crate::store) and the
//!    [vault](crate::vault).

mod account;
mod account_ops;
mod clock_offset;
mod config;
mod device_identity;
mod device_ops;
mod inner;
mod lifecycle;
mod listeners;
mod mfa_ops;
mod mfa_qr;
mod outbox;
mod persist;
mod proofs;
mod records;
mod refresh;
mod relogin;
mod renew;
mod restore;
mod schedule;
mod sealed;
mod sessions_ops;
mod state;
mod sync;
mod vault_ops;

pub use account::{SignInOutcome, SignUpOptions};
pub use config::ClientConfig;
pub use device_ops::RequestHeaders;
pub use listeners::{Listener, Subscription};
pub use mfa_qr::MfaEnrollment;
pub use state::{AuthEvent, AuthState, SignOutReason};
pub use sync::{SyncCredentials, SyncRefusal};

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use holdfast_protocol::endpoint::Endpoint;
use holdfast_protocol::wire::User;

use crate::error::AuthError;
use crate::store::Namespace;
use crate::transport::{Failure, Transport, TransportConfig};
use inner::Inner;
use refresh::Want;

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
    /// if need be), `SecondFactorRequired` (a sign-in that still owes its second factor:
    /// ask for the code, not the password), `SignedOut`, or `Unavailable` when the store or its key cannot be read
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
        *self.inner.unavailable_cause() = cause;
        self.inner.set_state(state.clone());
        self.inner.start_auto_refresh();
        if state.has_session() {
            // Deliver what a previous run could not (e.g. a sign-out made offline).
            let inner = self.inner.clone();
            tokio::spawn(async move { inner.deliver_outbox(false).await });
        }
        state
    }

    /// The current state.
    pub fn state(&self) -> AuthState {
        self.inner.current_state()
    }

    /// The signed-in user, as last known.
    pub fn current_user(&self) -> Option<User> {
        self.inner.current_user()
    }

    /// Calls `listener` with every event until the returned [`Subscription`] is dropped.
    pub fn subscribe(&self, listener: Listener) -> Subscription {
        self.inner.listeners.subscribe(listener)
    }

    /// The server's time as this client estimates it (local clock plus the learned offset).
    pub fn server_now_ms(&self) -> i64 {
        self.inner.server_now_ms()
    }

    /// A valid access token: from memory while fresh (no I/O), otherwise after a refresh.
    ///
    /// Offline with an expired token this fails with [`AuthError::Transient`] and the user
    /// stays signed in; it fails with [`AuthError::SignInRequired`] only when the server
    /// definitively refused the session and device re-login was not possible.
    ///
    /// While the sign-in waits for its second factor
    /// ([`AuthState::SecondFactorRequired`]) this fails with
    /// [`AuthError::SecondFactorRequired`]: such a token is good for nothing but finishing
    /// the sign-in, and is never handed to the app.
    pub async fn access_token(&self) -> Result<String, AuthError> {
        let token = self.session_token().await?;
        self.inner.refuse_pending(token)
    }

    /// The access token when a fresh one is in memory and is the app's to use; `None` when
    /// [`AuthClient::access_token`] would have to refresh or fail (no session, a stale
    /// token, a sign-in waiting for its second factor). No I/O, never waits: for bindings
    /// whose every async call costs a trip through the host's event loop, which try this
    /// first and await `access_token()` only on `None`.
    pub fn fresh_access_token(&self) -> Option<String> {
        let tokens = self.inner.current_tokens()?;
        (!tokens.mfa_pending && tokens.is_fresh(self.inner.server_now_ms()))
            .then(|| tokens.access.to_string())
    }

    /// The session's access token, fresh, even one that still owes its second factor
    /// (for the routes that finish a sign-in).
    async fn session_token(&self) -> Result<String, AuthError> {
        if let Some(token) = self.inner.fresh_access_token() {
            return Ok(token);
        }
        // One deadline over the whole refresh (the refresh, a challenge and a verify could
        // each take a full request timeout); the refresh itself goes on detached.
        tokio::time::timeout(self.inner.token_deadline, self.refresh_now(Want::Usable))
            .await
            .unwrap_or(Err(AuthError::Transient {
                cause: crate::error::TransientCause::Timeout,
            }))
    }

    /// Rotates the tokens now, even while the access token is fresh (e.g. after the user's
    /// profile changed on the server), and returns the new access token. Callers arriving
    /// while a refresh is in flight share it. Failures are those of
    /// [`AuthClient::access_token`]: a network error keeps the session; a session waiting
    /// for its second factor is refreshed (and still waits) but its token is not returned
    /// ([`AuthError::SecondFactorRequired`]).
    pub async fn refresh(&self) -> Result<String, AuthError> {
        let seen = self.inner.token_generation.load(Ordering::SeqCst);
        let token = self.refresh_now(Want::Rotated { seen }).await?;
        self.inner.refuse_pending(token)
    }

    /// Refreshes if the token is stale, and delivers queued server calls (sign-outs made
    /// offline). For background tasks and connectivity changes.
    pub async fn refresh_if_needed(&self) -> Result<(), AuthError> {
        let inner = self.inner.clone();
        tokio::spawn(async move { inner.deliver_outbox(true).await });
        // The network may be back: the background task retries now rather than at the end
        // of its backoff.
        self.inner.schedule.wake();
        if self.inner.current_tokens().is_none() {
            return Ok(());
        }
        // A session waiting for its second factor is refreshed too (it stays waiting).
        self.session_token().await.map(|_| ())
    }

    /// One authorized call of `endpoint` with a fresh access token: the device proof the
    /// token needs for the URL actually sent, the clock-corrected retry, and the failure
    /// mapped to what the app should do. Every bearer method of the client is this and a
    /// line or two.
    async fn authorized<E: Endpoint>(
        &self,
        endpoint: &E,
        body: &E::Request,
    ) -> Result<E::Response, AuthError> {
        let access = self.access_token().await?;
        self.authorized_with(&access, endpoint, body).await
    }

    /// [`AuthClient::authorized`] with an access token already at hand.
    async fn authorized_with<E: Endpoint>(
        &self,
        access: &str,
        endpoint: &E,
        body: &E::Request,
    ) -> Result<E::Response, AuthError> {
        let answer = self
            .inner
            .send_bearer(access, endpoint, body)
            .await?
            .map_err(Failure::into_auth_error)?;
        Ok(answer.value)
    }

    /// One call of a public route (no bearer token: nothing authorizes it, or a mailed
    /// token in its body does), learning the server's clock from the answer, the failure
    /// mapped to what the app should do.
    async fn public<E: Endpoint>(&self, endpoint: &E, body: &E::Request) -> Result<E::Response, AuthError> {
        let result = self.inner.transport.send(endpoint, body, None, None).await;
        let server_time_ms = match &result {
            Ok(answer) => answer.server_time_ms,
            Err(failure) => failure.server_time_ms(),
        };
        self.inner.observe_server_time(server_time_ms);
        Ok(result.map_err(Failure::into_auth_error)?.value)
    }

    /// Runs the refresh in a detached task: a caller that gives up (a cancelled future, a
    /// closed screen) cannot tear it; the rotated pair is persisted and kept for the next
    /// caller either way.
    async fn refresh_now(&self, want: Want) -> Result<String, AuthError> {
        let inner = self.inner.clone();
        tokio::spawn(async move { inner.refresh_single_flight(want).await })
            .await
            .map_err(|_| AuthError::Protocol {
                message: "the refresh task failed".to_owned(),
            })?
    }
}

#[cfg(test)]
mod cold_start_tests;

/// Whether the client would accept this token pair from the server (for the fuzz targets).
#[cfg(fuzzing)]
pub(crate) fn fuzz_accepts_tokens(access: &str, refresh: &str) -> bool {
    records::Tokens::new(access, refresh).is_ok()
}
