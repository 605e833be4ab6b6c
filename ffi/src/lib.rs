//! Holdfast's UniFFI surface: what Swift, Kotlin and Python apps call.
//!
//! A thin layer over `holdfast-core` with no business logic of its own:
//! - [`client`]: the [`AuthClient`] object (a synchronous constructor, async methods run on
//!   tokio) and the [`SubscriptionHandle`] its `subscribe` returns;
//! - [`config`]: the [`ClientConfig`] record and the [`KeySource`] the vault key comes from;
//! - [`records`]: users, devices, sync credentials, [`AuthState`] and [`AuthEvent`], each
//!   converted from the core's type; [`sessions`]: the user's [`Session`]s and why one
//!   ends ([`SessionEndReason`]);
//! - [`lifecycle`]: the client's sessions and account methods (list and end sessions,
//!   sign out everywhere, change or reset the password, verify the email, delete the
//!   account);
//! - [`sign_in`]: what a sign-in ended in ([`SignInOutcome`]);
//! - [`mfa`]: the second factor: enrolment ([`MfaEnrollment`], printed redacted), finishing
//!   a sign-in with a code, step-up, recovery codes;
//! - [`error`]: the one [`HoldfastError`], whose variants say what the app should do;
//! - [`foreign`]: the traits the host app implements ([`KeyProvider`] for a key it keeps,
//!   [`DeviceSigner`] for a hardware key, [`AuthEventListener`]), each bridged to the
//!   core's own trait so the core stays free of UniFFI;
//! - [`exit`]: [`quiesce_for_exit`], which stops calls into the app before the process
//!   exits (hosts such as CPython cannot take them while they shut down).
//!
//! Bindings are generated from the compiled library by the workspace's `uniffi-bindgen`
//! binary (library mode); `bindings/python` packages them with maturin.

uniffi::setup_scaffolding!("holdfast");

pub mod client;
pub mod config;
pub mod error;
pub mod exit;
pub mod foreign;
pub mod lifecycle;
pub mod mfa;
pub mod records;
pub mod sessions;
pub mod sign_in;

pub use client::{AuthClient, SubscriptionHandle};
pub use config::{ClientConfig, KeySource};
pub use error::HoldfastError;
pub use exit::quiesce_for_exit;
pub use foreign::{AuthEventListener, DeviceSigner, KeyProvider};
pub use mfa::{MfaEnrollment, MfaStatus, RecoveryCodes};
pub use records::{AuthEvent, AuthState, Device, SignOutReason, SyncCredentials, User};
pub use sessions::{Session, SessionEndReason};
pub use sign_in::SignInOutcome;
