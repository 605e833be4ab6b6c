//! Extension points an application implements: [`AuthHooks`], called around sign-up and
//! sign-in and when devices, sessions and accounts change. Give them to
//! [`crate::KitBuilder::hooks`].
//!
//! ```
//! use async_trait::async_trait;
//! use holdfast_server_kit::hooks::{AuthHooks, Refusal, SignUpAttempt};
//!
//! struct InviteOnly;
//!
//! #[async_trait]
//! impl AuthHooks for InviteOnly {
//!     async fn before_sign_up(&self, attempt: &SignUpAttempt) -> Result<(), Refusal> {
//!         if attempt.email.ends_with("@example.com") {
//!             Ok(())
//!         } else {
//!             Err(Refusal::new("Sign-up is by invitation only."))
//!         }
//!     }
//! }
//! ```
//!
//! The `after_*` and event hooks run after the change is stored and before the response
//! goes out (device, session and account events: once the revocation is published), on
//! the request's task: keep them quick, and spawn longer work. They cannot undo what
//! happened. Events relayed from other instances do not call them: each event calls the
//! hooks of the instance where it happened, once.

use std::net::IpAddr;

use async_trait::async_trait;

use crate::store::{DeviceRecord, UserRecord};
use crate::tokens::ExtraClaims;

/// A sign-up about to create an account.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SignUpAttempt {
    /// The email, normalized.
    pub email: String,
    /// The display name, if given.
    pub name: Option<String>,
    /// The device id the account starts on.
    pub device_id: String,
    /// The application's data about the user, as sent (a JSON object of at most 4 KiB).
    pub metadata: Option<serde_json::Value>,
    /// The client's address, when known.
    pub client: Option<IpAddr>,
}

/// Why a hook refused a sign-up: answered 403 `FORBIDDEN` with the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Shown to the user: say what to do, and nothing secret.
    pub message: String,
}

impl Refusal {
    /// A refusal with `message`.
    pub fn new(message: impl Into<String>) -> Refusal {
        Refusal {
            message: message.into(),
        }
    }
}

/// Why a session ended: the reason a refused refresh reports (PROTOCOL 8).
pub use holdfast_protocol::EndReason as SessionEnd;

/// Callbacks around the account lifecycle. Every method has a default that does nothing.
#[async_trait]
pub trait AuthHooks: Send + Sync + 'static {
    /// Before an account is created: `Err` refuses the sign-up (403 `FORBIDDEN` with the
    /// refusal's message) and nothing is stored.
    async fn before_sign_up(&self, _attempt: &SignUpAttempt) -> Result<(), Refusal> {
        Ok(())
    }

    /// An account was created and its first session started on `device`.
    async fn after_sign_up(&self, _user: &UserRecord, _device: &DeviceRecord) {}

    /// A session started with a password on `device`.
    async fn after_sign_in(&self, _user: &UserRecord, _device: &DeviceRecord) {}

    /// A device's key was registered (at sign-up, at sign-in, or by `/device/register`).
    async fn device_registered(&self, _device: &DeviceRecord) {}

    /// A device was revoked.
    async fn device_revoked(&self, _user_id: &str, _device_id: &str) {}

    /// A session of a user ended (called once per session: signing out everywhere calls
    /// it for each).
    async fn session_ended(&self, _user_id: &str, _session_id: &str, _how: SessionEnd) {}

    /// An account was deleted.
    async fn account_deleted(&self, _user_id: &str) {}

    /// The application's claims for an access token of `user` on `device_id`, put under
    /// the token's `ext` member (at most 2 KiB of JSON; more fails the request with 500
    /// `INTERNAL` and an error log). Called at sign-up, sign-in, refresh and device
    /// re-login. Make it depend only on the user and device: a refresh retried within the
    /// grace window is answered with the same tokens re-signed, which needs the same claims.
    async fn extra_claims(&self, _user: &UserRecord, _device_id: &str) -> Option<ExtraClaims> {
        None
    }

    /// Whether [`AuthHooks::extra_claims`] may return claims. `false` promises it always
    /// returns `None`, which lets a refresh skip reading the user before it signs the new
    /// pair (one store call instead of several, on backends that offer it). The default,
    /// `true`, is always correct.
    fn issues_extra_claims(&self) -> bool {
        true
    }
}

/// The hooks of a kit without any: every default.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoHooks;

impl AuthHooks for NoHooks {
    fn issues_extra_claims(&self) -> bool {
        false
    }
}
