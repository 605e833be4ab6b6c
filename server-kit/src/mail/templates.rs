//! What the mails say: [`MailTemplates`], and the kit's [`DefaultTemplates`].

use std::sync::Arc;
use std::time::Duration;

/// What a template may put in a mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailContext {
    /// The application's name ([`MailSettings::app_name`](super::MailSettings::app_name)).
    pub app_name: String,
    /// The recipient's address.
    pub email: String,
    /// The link to open, with the single-use token in it.
    pub link: String,
    /// How long the link works.
    pub valid_for: Duration,
}

/// A rendered mail: its subject, and its body as plain text and as HTML.
#[derive(Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The subject line (one line).
    pub subject: String,
    /// The plain-text body.
    pub text: String,
    /// The HTML body. Escape every value taken from the [`MailContext`] (see
    /// [`escape_html`]).
    pub html: String,
}

impl std::fmt::Debug for Rendered {
    /// The bodies carry single-use token links: only their lengths are shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rendered")
            .field("subject", &self.subject)
            .field("text_bytes", &self.text.len())
            .field("html_bytes", &self.html.len())
            .finish()
    }
}

/// The mails' words. Implement it to replace the [`DefaultTemplates`] (give it to
/// [`MailSettings::templates`](super::MailSettings::templates)).
///
/// ```
/// use holdfast_server_kit::mail::{DefaultTemplates, MailContext, MailTemplates, Rendered, escape_html};
///
/// struct Brief;
///
/// impl MailTemplates for Brief {
///     fn password_reset(&self, ctx: &MailContext) -> Rendered {
///         Rendered {
///             subject: format!("{}: new password", ctx.app_name),
///             text: format!("Choose a new password: {}\n", ctx.link),
///             html: format!("<p><a href=\"{0}\">Choose a new password</a></p>", escape_html(&ctx.link)),
///         }
///     }
///
///     fn email_verification(&self, ctx: &MailContext) -> Rendered {
///         // Keep the kit's words for this one.
///         DefaultTemplates.email_verification(ctx)
///     }
/// }
/// ```
pub trait MailTemplates: Send + Sync + 'static {
    /// The mail with a password reset link (PROTOCOL 8, `/password/reset-request`).
    fn password_reset(&self, ctx: &MailContext) -> Rendered;
    /// The mail with an email verification link (PROTOCOL 8, `/verify/send`).
    fn email_verification(&self, ctx: &MailContext) -> Rendered;
}

impl<T: MailTemplates + ?Sized> MailTemplates for Arc<T> {
    fn password_reset(&self, ctx: &MailContext) -> Rendered {
        (**self).password_reset(ctx)
    }

    fn email_verification(&self, ctx: &MailContext) -> Rendered {
        (**self).email_verification(ctx)
    }
}

/// The kit's templates: short, plain English, with a minimal HTML version.
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultTemplates;

impl MailTemplates for DefaultTemplates {
    fn password_reset(&self, ctx: &MailContext) -> Rendered {
        let app = &ctx.app_name;
        let valid = describe_duration(ctx.valid_for);
        let text = format!(
            "Hello,\n\n\
             Someone asked to reset the password of the {app} account for {email}. \
             If it was you, choose a new password here:\n\n\
             {link}\n\n\
             The link works once, within {valid}.\n\n\
             If you did not ask for this, you can ignore this mail: your password stays as \
             it is.\n\n\
             {app}\n",
            email = ctx.email,
            link = ctx.link,
        );
        let (app, email, link) = (escape_html(app), escape_html(&ctx.email), escape_html(&ctx.link));
        let html = html_page(&format!(
            "<p>Hello,</p>\n\
             <p>Someone asked to reset the password of the {app} account for {email}. \
             If it was you, choose a new password here:</p>\n\
             <p><a href=\"{link}\">Choose a new password</a></p>\n\
             <p>Or open this link: {link}</p>\n\
             <p>The link works once, within {valid}.</p>\n\
             <p>If you did not ask for this, you can ignore this mail: your password stays \
             as it is.</p>\n\
             <p>{app}</p>"
        ));
        Rendered {
            subject: format!("Reset your {} password", ctx.app_name),
            text,
            html,
        }
    }

    fn email_verification(&self, ctx: &MailContext) -> Rendered {
        let app = &ctx.app_name;
        let valid = describe_duration(ctx.valid_for);
        let text = format!(
            "Hello,\n\n\
             Please confirm that {email} is your email address for {app} by opening this \
             link:\n\n\
             {link}\n\n\
             The link works once, within {valid}.\n\n\
             If you did not sign up for {app}, you can ignore this mail.\n\n\
             {app}\n",
            email = ctx.email,
            link = ctx.link,
        );
        let (app, email, link) = (escape_html(app), escape_html(&ctx.email), escape_html(&ctx.link));
        let html = html_page(&format!(
            "<p>Hello,</p>\n\
             <p>Please confirm that {email} is your email address for {app}:</p>\n\
             <p><a href=\"{link}\">Confirm my email address</a></p>\n\
             <p>Or open this link: {link}</p>\n\
             <p>The link works once, within {valid}.</p>\n\
             <p>If you did not sign up for {app}, you can ignore this mail.</p>\n\
             <p>{app}</p>"
        ));
        Rendered {
            subject: format!("Confirm your email address for {}", ctx.app_name),
            text,
            html,
        }
    }
}

/// `text` with `&`, `<`, `>`, `"` and `'` escaped, for HTML text and attribute values.
pub fn escape_html(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

fn html_page(body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html>\n<head><meta charset=\"utf-8\"></head>\n\
         <body style=\"font-family: sans-serif; line-height: 1.5\">\n{body}\n</body>\n</html>\n"
    )
}

/// `1 hour`, `24 hours`, `30 minutes`, `90 seconds`: the largest whole unit.
pub(crate) fn describe_duration(duration: Duration) -> String {
    let seconds = duration.as_secs();
    let (n, unit) = if seconds >= 3600 && seconds.is_multiple_of(3600) {
        (seconds / 3600, "hour")
    } else if seconds >= 60 && seconds.is_multiple_of(60) {
        (seconds / 60, "minute")
    } else {
        (seconds, "second")
    };
    if n == 1 {
        format!("1 {unit}")
    } else {
        format!("{n} {unit}s")
    }
}
