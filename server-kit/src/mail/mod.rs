//! Mail for password resets and email verification (PROTOCOL 8): the routes hand a
//! single-use token to the application's [`Mailer`], in a [`Mail`] that
//! [`MailSettings`] builds from [`MailTemplates`].
//!
//! - [`Mailer`]: sends one [`Mail`]. [`SmtpMailer`] (cargo feature `smtp`, on by default)
//!   talks to an SMTP server; [`MemoryMailer`] keeps the mails for tests and development;
//!   an application may implement the trait over its own mail service.
//! - [`MailSettings`]: the sender, the application's name, the pages the links lead to
//!   (the token is appended as `token=…`) and the templates.
//! - [`MailTemplates`]: the subject and the text and HTML bodies of each mail.
//!   [`DefaultTemplates`] writes plain English; an application replaces them by
//!   implementing the trait.
//!
//! ```
//! use std::time::Duration;
//! use holdfast_server_kit::mail::{MailSettings, MemoryMailer, Mailer};
//!
//! # async fn run() -> Result<(), holdfast_server_kit::mail::MailError> {
//! let settings = MailSettings::new(
//!     "Example <no-reply@example.com>",
//!     "https://app.example.com/reset-password",
//!     "https://app.example.com/verify-email",
//! )
//! .app_name("Example");
//! settings.validate()?;
//! let mailer = MemoryMailer::new();
//! let mail = settings.password_reset_mail("ada@example.com", "TOKEN", Duration::from_secs(3600));
//! mailer.send(mail).await?;
//! assert!(mailer.sent()[0].text.contains("https://app.example.com/reset-password?token=TOKEN"));
//! # Ok(())
//! # }
//! ```
//!
//! A [`Mail`] carries a token link in its bodies: its `Debug` shows only the recipient, the
//! subject and the bodies' lengths, and no [`MailError`] holds a body or a password.

use async_trait::async_trait;

mod memory;
mod outbox;
mod settings;
#[cfg(feature = "smtp")]
mod smtp;
mod templates;

pub use memory::MemoryMailer;
pub use outbox::Outbox;
pub use settings::MailSettings;
#[cfg(feature = "smtp")]
pub use smtp::SmtpMailer;
pub use templates::{DefaultTemplates, MailContext, MailTemplates, Rendered, escape_html};

/// One mail to one recipient. The sender is the mailer's (see [`MailSettings::from`]).
#[derive(Clone, PartialEq, Eq)]
pub struct Mail {
    /// The recipient's address, like `ada@example.com`.
    pub to: String,
    /// The subject line.
    pub subject: String,
    /// The plain-text body.
    pub text: String,
    /// The HTML body (the same content as `text`).
    pub html: String,
}

impl std::fmt::Debug for Mail {
    /// The bodies carry single-use token links: only their lengths are shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mail")
            .field("to", &self.to)
            .field("subject", &self.subject)
            .field("text_bytes", &self.text.len())
            .field("html_bytes", &self.html.len())
            .finish()
    }
}

/// Sends mail. Implementations are shared between requests (`Arc<dyn Mailer>`).
#[async_trait]
pub trait Mailer: Send + Sync + 'static {
    /// Sends `mail`, returning once the mail server (or service) took it.
    async fn send(&self, mail: Mail) -> Result<(), MailError>;
}

#[async_trait]
impl<T: Mailer + ?Sized> Mailer for std::sync::Arc<T> {
    async fn send(&self, mail: Mail) -> Result<(), MailError> {
        (**self).send(mail).await
    }
}

/// Why mail could not be set up or sent. Messages never hold a password or a mail's body.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MailError {
    /// The mail settings or the mail server URL are wrong: fix the configuration.
    #[error("invalid mail configuration: {0}")]
    Config(String),
    /// An address (the recipient's, or the sender's) is not a valid mailbox.
    #[error("invalid address: {0}")]
    Address(String),
    /// The mail server could not be reached, or the exchange with it failed (the
    /// connection, TLS, signing in); trying again later may work.
    #[error("cannot send through the mail server: {0}")]
    Connection(String),
    /// The mail server refused the mail or the credentials (`permanent`: trying again will
    /// not help).
    #[error("the mail server refused the mail{}: {message}", if *permanent { "" } else { " for now" })]
    Rejected {
        /// Whether the refusal is permanent (a 5xx reply) rather than temporary (4xx).
        permanent: bool,
        /// The server's reply.
        message: String,
    },
    /// Sending did not finish within the mailer's timeout.
    #[error("the mail server did not answer within {0:?}")]
    Timeout(std::time::Duration),
    /// Any other failure (a [`MemoryMailer`] told to fail, an application's own mailer).
    #[error("mail not sent: {0}")]
    Other(String),
}

#[cfg(test)]
mod tests;
