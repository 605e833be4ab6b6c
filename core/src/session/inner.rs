//! The session's state machine: [`Inner`], what every [`AuthClient`](super::AuthClient)
//! clone shares, and its basic transitions (the state and its events, a session set or
//! cleared in memory, a token found stale), plus the gateway to the store ([`Inner::blocking`]).
//!
//! The rest of the machine extends `Inner` in its own files: the clock offset
//! (`clock_offset.rs`), restoring from and writing to the store (`restore.rs`,
//! `persist.rs`), starting and ending sessions (`lifecycle.rs`), refresh and device
//! re-login (`refresh.rs`, `relogin.rs`), the device identity and its proofs
//! (`device_identity.rs`, `proofs.rs`), the outbox (`outbox.rs`) and the background
//! refresh (`schedule.rs`). None of them depends on the public facade.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Duration;

use holdfast_protocol::wire::User;

use super::listeners::Listeners;
use super::records::{DeviceIdentity, Tokens};
use super::state::{AuthEvent, AuthState};
use crate::clock::Clock;
use crate::device::DeviceSigner;
use crate::error::AuthError;
use crate::store::{ClientStore, Namespace};
use crate::transport::Transport;
use crate::vault::{KeySource, Vault};

/// The outcome of the last refresh, shared with the callers that waited for it.
#[derive(Default)]
pub(super) struct RefreshOutcome {
    /// Refreshes completed (either way) in this process.
    pub completed: u64,
    /// The error of the last one, if it failed.
    pub failure: Option<AuthError>,
}

/// The open store and the vault over it.
#[derive(Clone)]
pub(super) struct Opened {
    pub store: Arc<ClientStore>,
    pub vault: Arc<Vault>,
}

pub(crate) struct Inner {
    pub(super) namespace: Namespace,
    pub(super) storage_path: PathBuf,
    /// Replaced by `change_passphrase`.
    pub(super) key_source: RwLock<KeySource>,
    pub(super) device_name: Option<String>,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) host_signer: Option<Arc<dyn DeviceSigner>>,
    pub(super) transport: Transport,
    /// Set by `initialize`: the store and the vault over it. Store work holds the read
    /// lock for its whole duration (see `blocking`), so a key change, which holds the write
    /// lock, never interleaves with a write sealed under the old key.
    pub(super) opened: Arc<RwLock<Option<Opened>>>,
    /// The hot path: read on every `access_token()`.
    pub(super) tokens: RwLock<Option<Arc<Tokens>>>,
    pub(super) user: RwLock<Option<User>>,
    pub(super) state: Mutex<AuthState>,
    /// Why the last `initialize` left the state `Unavailable`: what calls then return (a
    /// wrong passphrase stays `WrongPassphrase`, not a generic storage error).
    pub(super) unavailable_cause: Mutex<Option<AuthError>>,
    pub(super) listeners: Listeners,
    /// One refresh at a time in this process; the store's lock covers other processes.
    pub(super) refresh_gate: tokio::sync::Mutex<()>,
    /// How many refreshes completed and, if the last failed, its error: what callers that
    /// waited on the gate meanwhile get instead of a refresh of their own.
    pub(super) refresh_outcome: Mutex<RefreshOutcome>,
    /// Held from a session write in the store to the matching change in memory (sign-in,
    /// sign-out, adopting a refreshed pair), so a sign-out never falls between a refresh's
    /// write and its adoption and the refresh cannot bring the session back.
    pub(super) session_write: tokio::sync::Mutex<()>,
    /// The device identity, loaded or created on first use.
    pub(super) device: tokio::sync::Mutex<Option<DeviceIdentity>>,
    /// Server time minus local time, ms, learned from `Date` headers.
    pub(super) clock_offset_ms: AtomicI64,
    /// Counts token changes (sign-in, refresh, a pair adopted from another process).
    pub(super) token_generation: AtomicU64,
    /// Whether the background refresh runs (`ClientConfig::auto_refresh`).
    pub(super) auto_refresh: bool,
    pub(super) auto_refresh_started: AtomicBool,
    /// `ClientConfig::token_deadline`.
    pub(super) token_deadline: Duration,
    /// Whether token requests carry a device proof (`ClientConfig::bind_tokens`).
    pub(super) bind_tokens: bool,
    pub(super) schedule: Arc<Schedule>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The background task holds only a weak reference: wake it so it sees it is alone.
        self.schedule.wake();
    }
}

impl Inner {
    pub(super) fn set_state(&self, state: AuthState) {
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

    pub(super) fn current_state(&self) -> AuthState {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    pub(super) fn emit(&self, event: AuthEvent) {
        self.listeners.emit(&event);
    }

    pub(super) fn current_user(&self) -> Option<User> {
        self.user.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    pub(super) fn current_tokens(&self) -> Option<Arc<Tokens>> {
        self.tokens.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Signed in as `user` with `tokens`, in memory (the caller stored them first).
    pub(super) fn set_session(&self, user: User, tokens: Tokens) {
        *self.user.write().unwrap_or_else(PoisonError::into_inner) = Some(user.clone());
        let state = AuthState::of_session(user, &tokens, self.server_now_ms());
        *self.tokens.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(tokens));
        self.token_generation.fetch_add(1, Ordering::SeqCst);
        self.schedule.wake();
        self.set_state(state);
    }

    /// No session in memory any more (the caller sets the state that says why).
    pub(super) fn clear_session(&self) {
        *self.tokens.write().unwrap_or_else(PoisonError::into_inner) = None;
        *self.user.write().unwrap_or_else(PoisonError::into_inner) = None;
        self.token_generation.fetch_add(1, Ordering::SeqCst);
        self.schedule.wake();
    }

    /// The token is expired and could not be refreshed: still signed in (or still waiting
    /// for the second factor), not fresh.
    pub(super) fn mark_stale(&self) {
        self.restate_session();
    }

    /// Sets the state the session in memory makes (signed in, fresh or not, or waiting for
    /// the second factor); nothing when there is none.
    pub(super) fn restate_session(&self) {
        if let (Some(user), Some(tokens)) = (self.current_user(), self.current_tokens()) {
            self.set_state(AuthState::of_session(user, &tokens, self.server_now_ms()));
        }
    }

    /// Why there are no tokens: the store could not be read (nothing is lost; retry after
    /// `initialize`), or nobody is signed in.
    pub(super) fn no_session_error(&self) -> AuthError {
        match self.current_state() {
            AuthState::Unavailable { reason } => match *self.unavailable_cause() {
                Some(AuthError::WrongPassphrase) => AuthError::WrongPassphrase,
                _ => AuthError::StorageUnavailable { message: reason },
            },
            _ => AuthError::NotSignedIn,
        }
    }

    pub(super) fn unavailable_cause(&self) -> MutexGuard<'_, Option<AuthError>> {
        self.unavailable_cause
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn refresh_outcome(&self) -> MutexGuard<'_, RefreshOutcome> {
        self.refresh_outcome
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The open store and vault, or why there is none.
    pub(super) fn opened(&self) -> Result<Opened, AuthError> {
        self.opened
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or_else(|| self.not_opened())
    }

    /// Why there is no open store: a wrong passphrase at the last `initialize`, or no
    /// `initialize` (or one that failed otherwise) yet.
    fn not_opened(&self) -> AuthError {
        match *self.unavailable_cause() {
            Some(AuthError::WrongPassphrase) => AuthError::WrongPassphrase,
            _ => not_initialized(),
        }
    }

    /// Runs blocking store work off the async executor.
    pub(super) async fn blocking<T, F>(&self, work: F) -> Result<T, AuthError>
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
}

fn not_initialized() -> AuthError {
    AuthError::StorageUnavailable {
        message: "the client is not initialized: call initialize()".to_owned(),
    }
}

/// What the client and its background refresh task (`schedule.rs`) share.
#[derive(Default)]
pub(super) struct Schedule {
    /// Rung when the tokens change, when the app reports connectivity, and when the
    /// client is dropped.
    pub(super) wake: tokio::sync::Notify,
}

impl Schedule {
    /// Makes the task look at the tokens again now (and forget its backoff).
    pub fn wake(&self) {
        self.wake.notify_one();
    }
}
