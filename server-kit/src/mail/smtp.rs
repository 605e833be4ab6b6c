//! [`SmtpMailer`]: mail through an SMTP server (cargo feature `smtp`).

use std::time::Duration;

use async_trait::async_trait;
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::{Mail, MailError, Mailer};

/// Sends each mail through an SMTP server, as a `multipart/alternative` message (the text
/// body, then the HTML one), over a new connection (TLS by rustls, trusting the system's CA
/// certificates).
///
/// The server URL is one of:
/// - `smtp://[USER:PASSWORD@]HOST[:PORT]`: no TLS (port 25 by default), for a relay on
///   the same machine or network, and tests;
/// - `smtp://[USER:PASSWORD@]HOST[:PORT]?tls=required`: STARTTLS, required (port 587);
/// - `smtps://[USER:PASSWORD@]HOST[:PORT]`: TLS from the start (port 465).
///
/// A user name or password with reserved characters (`@`, `:`, `/`, `?`, `#`, `%`) is
/// percent-encoded. The password appears in no `Debug` or `Display` output and no
/// [`MailError`].
#[derive(Clone)]
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    /// `scheme://[user[:***]@]host:port[?tls=required]`, for messages.
    server: String,
    /// The password as written and as decoded, scrubbed from error messages.
    secrets: Vec<String>,
    timeout: Duration,
}

impl SmtpMailer {
    /// How long sending one mail may take by default (connecting, TLS, signing in and
    /// sending): [`SmtpMailer::from_url_with_timeout`] chooses another.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);

    /// A mailer sending through the SMTP server at `url` (see [`SmtpMailer`]) as `from`, an
    /// RFC 5322 mailbox like `Holdfast <no-reply@example.com>`. Nothing is sent or
    /// connected to yet.
    pub fn from_url(url: &str, from: &str) -> Result<SmtpMailer, MailError> {
        SmtpMailer::from_url_with_timeout(url, from, SmtpMailer::DEFAULT_TIMEOUT)
    }

    /// [`SmtpMailer::from_url`], where sending one mail fails with [`MailError::Timeout`]
    /// after `timeout`.
    pub fn from_url_with_timeout(url: &str, from: &str, timeout: Duration) -> Result<SmtpMailer, MailError> {
        let parsed = parse_url(url)?;
        let secrets = match parsed.password() {
            Some(password) => {
                let decoded = percent_decode(password);
                vec![password.to_owned(), decoded]
            }
            None => Vec::new(),
        };
        let scrub = |message: String| scrub(message, &secrets);
        let from: Mailbox = from.parse().map_err(|_| {
            MailError::Address(format!(
                "the sender {from:?} is not a mailbox like `Holdfast <no-reply@example.com>` or \
                 `no-reply@example.com`"
            ))
        })?;
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| MailError::Config(scrub(format!("cannot use the mail server URL: {e}"))))?
            .timeout(Some(timeout))
            .build();
        Ok(SmtpMailer {
            transport,
            from,
            server: describe(&parsed),
            secrets,
            timeout,
        })
    }

    /// The sender, as the `From` header gives it.
    pub fn sender(&self) -> String {
        self.from.to_string()
    }

    fn error(&self, error: &lettre::transport::smtp::Error) -> MailError {
        if error.is_timeout() {
            return MailError::Timeout(self.timeout);
        }
        let message = scrub(error.to_string(), &self.secrets);
        if error.is_permanent() || error.is_transient() {
            MailError::Rejected {
                permanent: error.is_permanent(),
                message,
            }
        } else {
            MailError::Connection(format!("{}: {message}", self.server))
        }
    }
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, mail: Mail) -> Result<(), MailError> {
        let to: Mailbox = mail
            .to
            .parse()
            .map_err(|_| MailError::Address("the recipient's address is not valid".into()))?;
        let message_id = format!("<{}@{}>", uuid::Uuid::new_v4().simple(), self.from.email.domain());
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(mail.subject)
            .message_id(Some(message_id))
            .multipart(MultiPart::alternative_plain_html(mail.text, mail.html))
            .map_err(|e| MailError::Other(format!("cannot build the message: {e}")))?;
        // Each step has the timeout too (set on the transport); this bounds them all.
        match tokio::time::timeout(self.timeout, self.transport.send(message)).await {
            Err(_) => Err(MailError::Timeout(self.timeout)),
            Ok(Err(error)) => Err(self.error(&error)),
            Ok(Ok(_response)) => Ok(()),
        }
    }
}

impl std::fmt::Debug for SmtpMailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpMailer")
            .field("server", &self.server)
            .field("from", &self.from.to_string())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Display for SmtpMailer {
    /// The server, without its password: `smtps://user:***@mail.example.com:465`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.server)
    }
}

/// What `url` means, checked as the transport will read it; errors never repeat the URL
/// (a password there may not be where the URL's syntax puts it).
fn parse_url(url: &str) -> Result<url::Url, MailError> {
    const USAGE: &str = "expected smtp://[USER:PASSWORD@]HOST[:PORT] (add ?tls=required for \
                         STARTTLS) or smtps://[USER:PASSWORD@]HOST[:PORT]";
    let Some((scheme, _)) = url.split_once("://") else {
        return Err(MailError::Config(format!(
            "the mail server URL has no scheme: {USAGE}"
        )));
    };
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "smtp" && scheme != "smtps" {
        let shown = if scheme.len() <= 16
            && scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
        {
            format!("`{scheme}`")
        } else {
            "(not shown)".to_owned()
        };
        return Err(MailError::Config(format!(
            "unsupported mail server URL scheme {shown}: {USAGE}"
        )));
    }
    let parsed = url::Url::parse(url)
        .map_err(|e| MailError::Config(format!("invalid mail server URL ({e}): {USAGE}")))?;
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(MailError::Config(format!(
            "the mail server URL has no host: {USAGE}"
        )));
    }
    if !parsed.username().is_empty() && parsed.password().is_none() {
        return Err(MailError::Config(
            "the mail server URL names a user but no password (USER:PASSWORD@HOST)".into(),
        ));
    }
    for (key, value) in parsed.query_pairs() {
        match (key.as_ref(), value.as_ref()) {
            ("tls", "required") => {}
            ("tls", "opportunistic") => {
                return Err(MailError::Config(
                    "tls=opportunistic would send mail (and the password) in clear text when the \
                     server offers no STARTTLS: use tls=required, or smtp:// without TLS knowingly"
                        .into(),
                ));
            }
            ("tls", _) => {
                return Err(MailError::Config(
                    "the mail server URL's `tls` can only be `required`".into(),
                ));
            }
            _ => {
                return Err(MailError::Config(format!(
                    "the mail server URL has an unknown parameter (only `tls=required` is read): {USAGE}"
                )));
            }
        }
    }
    if parsed.fragment().is_some() {
        return Err(MailError::Config(format!(
            "the mail server URL has a fragment (`#…`): {USAGE}"
        )));
    }
    Ok(parsed)
}

/// `scheme://[user[:***]@]host:port[?tls=required]`.
fn describe(url: &url::Url) -> String {
    let scheme = url.scheme();
    let user = match (url.username(), url.password()) {
        ("", None) => String::new(),
        (user, None) => format!("{user}@"),
        (user, Some(_)) => format!("{user}:***@"),
    };
    let host = url.host_str().unwrap_or_default();
    let tls = url.query_pairs().any(|(key, _)| key == "tls");
    let port = url.port().unwrap_or(match (scheme, tls) {
        ("smtps", _) => 465,
        (_, true) => 587,
        _ => 25,
    });
    let query = if tls && scheme == "smtp" {
        "?tls=required"
    } else {
        ""
    };
    format!("{scheme}://{user}{host}:{port}{query}")
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `message` with every secret replaced by `***`.
fn scrub(mut message: String, secrets: &[String]) -> String {
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        if message.contains(secret.as_str()) {
            message = message.replace(secret.as_str(), "***");
        }
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_the_server_without_its_password() {
        let mailer = SmtpMailer::from_url(
            "smtps://app:p%40ss%2Fw0rd@mail.example.com",
            "no-reply@example.com",
        )
        .unwrap();
        let shown = format!("{mailer} {mailer:?}");
        assert!(shown.contains("smtps://app:***@mail.example.com:465"), "{shown}");
        assert!(!shown.contains("p%40ss") && !shown.contains("p@ss"), "{shown}");
        let starttls =
            SmtpMailer::from_url("smtp://relay.example.com?tls=required", "a@example.com").unwrap();
        assert_eq!(starttls.to_string(), "smtp://relay.example.com:587?tls=required");
    }

    #[test]
    fn refuses_bad_urls_without_repeating_them() {
        for url in [
            "ftp://user:hunter22@mail.example.com",
            "user:hunter22@mail.example.com",
            "smtp://user:hunter22@mail.example.com?tls=opportunistic",
            "smtp://user:hunter22@mail.example.com?tls=maybe",
            "smtp://user:hunter22@mail.example.com?ssl=1",
            "smtp://user:hunter22@:25",
            "smtp://user:hun/ter22@mail.example.com",
            "smtp://user@mail.example.com",
        ] {
            let error = SmtpMailer::from_url(url, "no-reply@example.com").unwrap_err();
            let text = error.to_string();
            assert!(matches!(error, MailError::Config(_)), "{url}: {error:?}");
            assert!(
                !text.contains("hunter22") && !text.contains("ter22"),
                "{url}: {text}"
            );
        }
    }

    #[test]
    fn refuses_a_sender_that_is_not_a_mailbox() {
        let error = SmtpMailer::from_url("smtp://127.0.0.1:2525", "Holdfast no-reply").unwrap_err();
        assert!(matches!(error, MailError::Address(_)), "{error:?}");
    }

    #[test]
    fn scrubs_decoded_and_encoded_passwords() {
        let secrets = vec!["p%40ss".to_owned(), "p@ss".to_owned()];
        assert_eq!(scrub("auth p@ss and p%40ss".into(), &secrets), "auth *** and ***");
        assert_eq!(percent_decode("a%2Fb%zz%4"), "a/b%zz%4");
    }

    #[test]
    fn the_kit_accepts_the_senders_the_transport_accepts() {
        for from in [
            "Holdfast <no-reply@example.com>",
            "\"Holdfast, Inc.\" <no-reply@example.com>",
            "no-reply@example.com",
            "<no-reply@example.com>",
            "Holdfast Team <a.b+c@mail.example.co.uk>",
        ] {
            assert!(super::super::settings::is_mailbox(from), "{from}");
            assert!(from.parse::<Mailbox>().is_ok(), "{from}");
        }
        for from in [
            "Holdfast",
            "Holdfast <no-reply>",
            "a@b@c",
            "Holdfast, Inc. <a@example.com>",
            "x <a@example.com",
        ] {
            assert!(!super::super::settings::is_mailbox(from), "{from}");
        }
    }
}
