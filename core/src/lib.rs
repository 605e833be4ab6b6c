//! Holdfast's client engine.
//!
//! Work in progress (issue 3): the modules land one by one, each with its tests.
//!
//! - [`clock`]: time, injectable for tests;
//! - [`error`]: the one error type the app sees, whose variants say what to do;
//! - [`device`]: the device key (software or hardware) that signs challenges and device
//!   proofs;
//! - [`store`]: the one SQLite file holding sealed records, non-secret settings,
//!   quarantined records and the outbox, plus the cross-process refresh lock;
//! - [`transport`]: HTTP to the auth server, and the split of every failure into
//!   "keep the session" (transient) and "the server said no" (rejected);
//! - [`session`]: the [`AuthClient`] apps hold: restore, sign-in, single-flight refresh,
//!   device re-login, sign-out through the outbox, events;
//! - [`vault`]: AES-256-GCM envelopes for every stored record, and the vault key from the
//!   OS credential store, the host app, or a passphrase.

pub mod clock;
pub mod device;
pub mod error;
pub mod session;
pub mod store;
pub mod transport;
pub mod vault;

/// Entry points for the fuzz targets in `fuzz/` (built only under `cargo fuzz`).
#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzzing;

pub use error::AuthError;
pub use session::{
    AuthClient, AuthEvent, AuthState, ClientConfig, RequestHeaders, SignOutReason, Subscription,
    SyncCredentials, SyncRefusal,
};
pub use vault::{KeyProvider, KeySource};
