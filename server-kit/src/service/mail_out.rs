//! Where the routes hand account mail: one seam between the service and the mail layer.

use std::time::Duration;

use async_trait::async_trait;

use crate::store::OneTimeKind;

/// Delivers a single-use account token to its owner's email. The kit implements it over
/// a [`crate::mail::Mailer`] and [`crate::mail::MailSettings`] (templates, links); an
/// application may implement it directly to send through its own channel.
#[async_trait]
pub trait AccountMail: Send + Sync + 'static {
    /// Sends `token` of `kind` to `email`, saying it works for `valid_for`. The error is
    /// logged (it must hold no secret) and the caller answered 503.
    async fn deliver(
        &self,
        kind: OneTimeKind,
        email: &str,
        token: &str,
        valid_for: Duration,
    ) -> Result<(), String>;
}
