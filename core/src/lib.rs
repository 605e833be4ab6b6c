//! Holdfast's client engine.
//!
//! ```no_run
//! # async fn app() -> Result<(), holdfast_core::AuthError> {
//! use holdfast_core::vault::Passphrase;
//! use holdfast_core::{AuthClient, AuthState, ClientConfig, KeySource};
//!
//! let config = ClientConfig::new(
//!     "https://api.example.com",
//!     "/data/app/holdfast.db",
//!     KeySource::Passphrase(Passphrase::new("from the user")),
//! );
//! let client = AuthClient::new(config)?;
//! // Restores without the network: signed in even offline, if the user was.
//! match client.initialize().await {
//!     AuthState::SignedOut { .. } => {
//!         if client.sign_in("ada@example.com", "correct horse battery").await?.needs_second_factor() {
//!             client.complete_sign_in_with_code("123456").await?; // from the authenticator app
//!         }
//!     }
//!     // A sign-in that owes its second factor survives a restart: ask for the code only.
//!     AuthState::SecondFactorRequired { .. } => {
//!         client.complete_sign_in_with_code("123456").await?;
//!     }
//!     _ => {}
//! }
//! let token = client.access_token().await?; // fresh, refreshed if need be
//! # Ok(()) }
//! ```
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
//!   device re-login, sign-out through the outbox, events; the user's sessions and the
//!   account lifecycle (password change and reset, email verification, deletion), the
//!   second factor (TOTP enrolment, finishing a sign-in with a code, step-up), and why a
//!   session ended;
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
    AuthClient, AuthEvent, AuthState, ClientConfig, MfaEnrollment, RequestHeaders, SignInOutcome,
    SignOutReason, SignUpOptions, Subscription, SyncCredentials, SyncRefusal,
};
pub use vault::{KeyProvider, KeySource};
