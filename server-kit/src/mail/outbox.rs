//! [`Outbox`]: account mail (reset and verification tokens) through a [`Mailer`], written
//! by [`MailSettings`].

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::{MailSettings, Mailer};
use crate::service::AccountMail;
use crate::store::OneTimeKind;

/// Where the kit's account mail goes (see [`crate::KitBuilder::mail`]): each token becomes a
/// mail written by `settings` (its link, its template) and sent by `mailer`.
///
/// ```no_run
/// # fn wire(config: holdfast_server_kit::ServerConfig, stores: holdfast_server_kit::Stores)
/// # -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use holdfast_server_kit::Kit;
/// use holdfast_server_kit::mail::{MailSettings, Outbox, SmtpMailer};
///
/// let settings = MailSettings::new(
///     "Example <no-reply@example.com>",
///     "https://app.example.com/reset-password",
///     "https://app.example.com/verify-email",
/// );
/// let mailer = SmtpMailer::from_url("smtps://relay:secret@smtp.example.com", &settings.from)?;
/// let kit = Kit::builder(config, stores).mail(Arc::new(Outbox::new(Arc::new(mailer), settings)?));
/// # let _ = kit; Ok(()) }
/// ```
#[derive(Clone)]
pub struct Outbox {
    mailer: Arc<dyn Mailer>,
    settings: MailSettings,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Outbox {
    /// Account mail written by `settings` and sent by `mailer`; fails when the settings
    /// cannot work (see [`MailSettings::validate`]).
    pub fn new(mailer: Arc<dyn Mailer>, settings: MailSettings) -> Result<Outbox, super::MailError> {
        settings.validate()?;
        Ok(Outbox { mailer, settings })
    }
}

#[async_trait]
impl AccountMail for Outbox {
    async fn deliver(
        &self,
        kind: OneTimeKind,
        email: &str,
        token: &str,
        valid_for: Duration,
    ) -> Result<(), String> {
        let mail = match kind {
            OneTimeKind::PasswordReset => self.settings.password_reset_mail(email, token, valid_for),
            OneTimeKind::EmailVerification => self.settings.email_verification_mail(email, token, valid_for),
        };
        self.mailer.send(mail).await.map_err(|error| error.to_string())
    }
}
