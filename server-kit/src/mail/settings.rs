//! [`MailSettings`]: who the mails come from, where their links lead, and their words.

use std::sync::Arc;
use std::time::Duration;

use super::templates::{DefaultTemplates, MailContext, MailTemplates, Rendered};
use super::{Mail, MailError};
use crate::store::redact_url_password;

/// The mails' sender, the application's name, the pages their links open and their
/// templates. Check it with [`MailSettings::validate`] at start.
#[derive(Clone)]
pub struct MailSettings {
    /// The sender: an RFC 5322 mailbox, like `Holdfast <no-reply@example.com>` or
    /// `no-reply@example.com`.
    pub from: String,
    /// The application's name, in the subjects and bodies (default `Holdfast`).
    pub app_name: String,
    /// The page where a user chooses a new password, an absolute `http(s)` URL: the link in
    /// a password reset mail is this with `token=…` appended (see [`MailSettings::link`]).
    pub reset_link: String,
    /// The page that confirms an email address with its token, as [`Self::reset_link`].
    pub verify_link: String,
    /// The mails' words (default [`DefaultTemplates`]).
    pub templates: Arc<dyn MailTemplates>,
}

impl MailSettings {
    /// Settings with the application name `Holdfast` and the [`DefaultTemplates`].
    pub fn new(
        from: impl Into<String>,
        reset_link: impl Into<String>,
        verify_link: impl Into<String>,
    ) -> MailSettings {
        MailSettings {
            from: from.into(),
            app_name: "Holdfast".to_owned(),
            reset_link: reset_link.into(),
            verify_link: verify_link.into(),
            templates: Arc::new(DefaultTemplates),
        }
    }

    /// The application's name, as the mails call it.
    pub fn app_name(mut self, app_name: impl Into<String>) -> MailSettings {
        self.app_name = app_name.into();
        self
    }

    /// The application's own templates instead of the [`DefaultTemplates`] (an
    /// `Arc<dyn MailTemplates>` is one too).
    pub fn templates(mut self, templates: impl MailTemplates) -> MailSettings {
        self.templates = Arc::new(templates);
        self
    }

    /// Checks that [`Self::from`] is a mailbox, that the application name is one line
    /// and that both links are absolute `http(s)` URLs.
    pub fn validate(&self) -> Result<(), MailError> {
        if !is_mailbox(&self.from) {
            return Err(MailError::Config(format!(
                "the sender {:?} is not a mailbox like `Holdfast <no-reply@example.com>` or \
                 `no-reply@example.com`",
                self.from
            )));
        }
        if self.app_name.trim().is_empty() || self.app_name.chars().any(char::is_control) {
            return Err(MailError::Config(format!(
                "the application name {:?} must be one line of text, not empty",
                self.app_name
            )));
        }
        for (what, link) in [
            ("reset link", &self.reset_link),
            ("verify link", &self.verify_link),
        ] {
            if !is_web_link(link) {
                return Err(MailError::Config(format!(
                    "the {what} {:?} is not an absolute http:// or https:// URL, like \
                     `https://app.example.com/reset-password`",
                    redact_url_password(link)
                )));
            }
        }
        Ok(())
    }

    /// `base` with `token=<token, percent-encoded>` added to its query: after `?`, or after
    /// `&` when `base` already has a query, and before its fragment (`#…`) if it has one.
    ///
    /// ```
    /// use holdfast_server_kit::mail::MailSettings;
    /// assert_eq!(MailSettings::link("https://a.example/reset", "t/1"), "https://a.example/reset?token=t%2F1");
    /// assert_eq!(MailSettings::link("https://a.example/r?lang=en", "t"), "https://a.example/r?lang=en&token=t");
    /// assert_eq!(MailSettings::link("https://a.example/#/reset", "t"), "https://a.example/?token=t#/reset");
    /// ```
    pub fn link(base: &str, token: &str) -> String {
        let (before, fragment) = match base.split_once('#') {
            Some((before, fragment)) => (before, Some(fragment)),
            None => (base, None),
        };
        let mut link = String::with_capacity(base.len() + token.len() + 8);
        link.push_str(before);
        match before.split_once('?') {
            None => link.push('?'),
            Some((_, "")) => {}
            Some((_, query)) if query.ends_with('&') => {}
            Some(_) => link.push('&'),
        }
        link.push_str("token=");
        holdfast_protocol::percent::encode_into(token, &mut link);
        if let Some(fragment) = fragment {
            link.push('#');
            link.push_str(fragment);
        }
        link
    }

    /// The password reset mail to `email`, with a link to [`Self::reset_link`] carrying
    /// `token`, valid for `valid_for`.
    pub fn password_reset_mail(&self, email: &str, token: &str, valid_for: Duration) -> Mail {
        let ctx = self.context(email, &self.reset_link, token, valid_for);
        mail(email, self.templates.password_reset(&ctx))
    }

    /// The email verification mail to `email`, with a link to [`Self::verify_link`]
    /// carrying `token`, valid for `valid_for`.
    pub fn email_verification_mail(&self, email: &str, token: &str, valid_for: Duration) -> Mail {
        let ctx = self.context(email, &self.verify_link, token, valid_for);
        mail(email, self.templates.email_verification(&ctx))
    }

    fn context(&self, email: &str, base: &str, token: &str, valid_for: Duration) -> MailContext {
        MailContext {
            app_name: self.app_name.clone(),
            email: email.to_owned(),
            link: MailSettings::link(base, token),
            valid_for,
        }
    }
}

impl std::fmt::Debug for MailSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailSettings")
            .field("from", &self.from)
            .field("app_name", &self.app_name)
            .field("reset_link", &redact_url_password(&self.reset_link))
            .field("verify_link", &redact_url_password(&self.verify_link))
            .finish_non_exhaustive()
    }
}

fn mail(to: &str, rendered: Rendered) -> Mail {
    Mail {
        to: to.to_owned(),
        subject: rendered.subject,
        text: rendered.text,
        html: rendered.html,
    }
}

/// An absolute `http://` or `https://` URL with a host, no spaces or control characters.
fn is_web_link(link: &str) -> bool {
    if link.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return false;
    }
    let before_fragment = link.split_once('#').map_or(link, |(before, _)| before);
    let Ok(uri) = before_fragment.parse::<http::Uri>() else {
        return false;
    };
    let web = matches!(
        uri.scheme_str().map(str::to_ascii_lowercase).as_deref(),
        Some("http" | "https")
    );
    web && uri.host().is_some_and(|host| !host.is_empty())
}

/// An RFC 5322 mailbox: `addr@domain`, or `Display Name <addr@domain>` (the name as words,
/// or a quoted string).
pub(crate) fn is_mailbox(mailbox: &str) -> bool {
    if mailbox.chars().any(char::is_control) {
        return false;
    }
    let mailbox = mailbox.trim();
    match mailbox.strip_suffix('>') {
        Some(rest) => match rest.rsplit_once('<') {
            Some((name, address)) => is_display_name(name.trim()) && is_address(address),
            None => false,
        },
        None => is_address(mailbox),
    }
}

fn is_display_name(name: &str) -> bool {
    if let Some(quoted) = name.strip_prefix('"').and_then(|n| n.strip_suffix('"')) {
        // A quoted string: `"` and `\` only escaped.
        let mut chars = quoted.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' if chars.next().is_none() => return false,
                '\\' => {}
                '"' => return false,
                _ => {}
            }
        }
        return true;
    }
    // Words (atoms, and `.` as obsolete phrases allow): no specials.
    !name.contains(['(', ')', '<', '>', '[', ']', ':', ';', '@', '\\', ',', '"'])
}

fn is_address(address: &str) -> bool {
    let Some((local, domain)) = address.rsplit_once('@') else {
        return false;
    };
    let ip_literal = domain
        .strip_prefix('[')
        .and_then(|d| d.strip_suffix(']'))
        .is_some_and(|ip| ip.parse::<std::net::IpAddr>().is_ok());
    email_address::EmailAddress::is_valid_local_part(local)
        && (ip_literal || email_address::EmailAddress::is_valid_domain(domain))
}
