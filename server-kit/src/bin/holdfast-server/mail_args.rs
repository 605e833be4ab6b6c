//! The mail flags: the SMTP server, the sender and the links of the password reset and
//! email verification mails.

use std::sync::Arc;

use holdfast_server_kit::mail::{MailSettings, Mailer, SmtpMailer};
use holdfast_server_kit::store::redact_url_password;

/// Password reset and email verification mails (PROTOCOL 8).
#[derive(Clone, Default, clap::Args)]
#[command(next_help_heading = "Mail (password resets and email verification)")]
pub(crate) struct MailArgs {
    /// SMTP server the mails go through: `smtp://[USER:PASSWORD@]HOST[:PORT]` (no TLS: a
    /// relay on this machine or network), the same with `?tls=required` (STARTTLS, port 587
    /// by default) or `smtps://[USER:PASSWORD@]HOST[:PORT]` (TLS, port 465); percent-encode
    /// reserved characters in the user name and password. Needs --mail-from, --reset-link
    /// and --verify-link. Without it no mail is sent: development mode, where the tokens
    /// come back in the responses.
    #[arg(long, env = "HOLDFAST_SMTP_URL", hide_env_values = true, value_name = "URL")]
    pub(crate) smtp_url: Option<String>,

    /// The mails' sender, like `Example <no-reply@example.com>`.
    #[arg(long, env = "HOLDFAST_MAIL_FROM", value_name = "MAILBOX")]
    pub(crate) mail_from: Option<String>,

    /// The application's name in the mails [default: Holdfast].
    #[arg(long, env = "HOLDFAST_APP_NAME", value_name = "NAME")]
    pub(crate) app_name: Option<String>,

    /// The application's page where a user chooses a new password, like
    /// `https://app.example.com/reset-password`: the mail links to it with `token=…` added
    /// to its query, and the page sends the token to POST /password/reset.
    #[arg(long, env = "HOLDFAST_RESET_LINK", value_name = "URL")]
    pub(crate) reset_link: Option<String>,

    /// The application's page that confirms an email address, like
    /// `https://app.example.com/verify-email`: the mail links to it with `token=…` added to
    /// its query, and the page sends the token to POST /verify/confirm.
    #[arg(long, env = "HOLDFAST_VERIFY_LINK", value_name = "URL")]
    pub(crate) verify_link: Option<String>,
}

impl std::fmt::Debug for MailArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailArgs")
            .field("smtp_url", &self.smtp_url.as_deref().map(redact_url_password))
            .field("mail_from", &self.mail_from)
            .field("app_name", &self.app_name)
            .field("reset_link", &self.reset_link)
            .field("verify_link", &self.verify_link)
            .finish()
    }
}

/// The mailer the routes send through, and what they send.
pub(crate) type MailSetup = (Arc<dyn Mailer>, MailSettings);

/// The mailer and the mail settings the flags ask for: `None` without `--smtp-url` (and
/// no other mail flag); an error naming the flags missing or wrong.
pub(crate) fn mail_from_args(args: &MailArgs) -> Result<Option<MailSetup>, String> {
    let Some(url) = &args.smtp_url else {
        let given: Vec<&str> = [
            (args.mail_from.is_some(), "--mail-from"),
            (args.app_name.is_some(), "--app-name"),
            (args.reset_link.is_some(), "--reset-link"),
            (args.verify_link.is_some(), "--verify-link"),
        ]
        .into_iter()
        .filter_map(|(given, flag)| given.then_some(flag))
        .collect();
        if given.is_empty() {
            return Ok(None);
        }
        // Without a mailer the server would hand the tokens back in its responses.
        return Err(format!(
            "{} given without --smtp-url (HOLDFAST_SMTP_URL): no mail would be sent",
            given.join(", ")
        ));
    };
    let missing: Vec<&str> = [
        (args.mail_from.is_none(), "--mail-from (HOLDFAST_MAIL_FROM)"),
        (args.reset_link.is_none(), "--reset-link (HOLDFAST_RESET_LINK)"),
        (args.verify_link.is_none(), "--verify-link (HOLDFAST_VERIFY_LINK)"),
    ]
    .into_iter()
    .filter_map(|(missing, flag)| missing.then_some(flag))
    .collect();
    let (Some(from), Some(reset_link), Some(verify_link)) =
        (&args.mail_from, &args.reset_link, &args.verify_link)
    else {
        return Err(format!("--smtp-url needs {}", missing.join(", ")));
    };
    let mut settings = MailSettings::new(from, reset_link, verify_link);
    if let Some(name) = &args.app_name {
        settings = settings.app_name(name);
    }
    settings.validate().map_err(|e| e.to_string())?;
    let mailer = SmtpMailer::from_url(url, from).map_err(|e| format!("--smtp-url: {e}"))?;
    tracing::debug!(server = %mailer, "mail through SMTP");
    Ok(Some((Arc::new(mailer), settings)))
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        mail: MailArgs,
    }

    fn complete() -> MailArgs {
        MailArgs {
            smtp_url: Some("smtp://mailer:s3cret-Pa55@127.0.0.1:2525".into()),
            mail_from: Some("Example <no-reply@example.com>".into()),
            app_name: None,
            reset_link: Some("https://app.example.com/reset".into()),
            verify_link: Some("https://app.example.com/verify".into()),
        }
    }

    #[test]
    fn no_smtp_url_is_no_mailer() {
        assert!(mail_from_args(&MailArgs::default()).unwrap().is_none());
    }

    #[test]
    fn mail_flags_without_an_smtp_url_are_an_error() {
        let args = MailArgs {
            smtp_url: None,
            ..complete()
        };
        let error = mail_from_args(&args).err().unwrap();
        assert!(
            error.contains("--mail-from, --reset-link, --verify-link given without --smtp-url"),
            "{error}"
        );
    }

    #[test]
    fn an_smtp_url_needs_the_sender_and_the_links() {
        let error = mail_from_args(&MailArgs {
            mail_from: None,
            ..complete()
        })
        .err()
        .unwrap();
        assert_eq!(error, "--smtp-url needs --mail-from (HOLDFAST_MAIL_FROM)");
        let error = mail_from_args(&MailArgs {
            reset_link: None,
            verify_link: None,
            ..complete()
        })
        .err()
        .unwrap();
        assert_eq!(
            error,
            "--smtp-url needs --reset-link (HOLDFAST_RESET_LINK), --verify-link (HOLDFAST_VERIFY_LINK)"
        );
    }

    #[test]
    fn complete_flags_make_a_mailer_and_settings() {
        let (mailer, settings) = mail_from_args(&complete()).unwrap().unwrap();
        assert_eq!(settings.app_name, "Holdfast");
        assert_eq!(settings.from, "Example <no-reply@example.com>");
        assert_eq!(settings.reset_link, "https://app.example.com/reset");
        let _: Arc<dyn Mailer> = mailer;
        let named = MailArgs {
            app_name: Some("Example".into()),
            ..complete()
        };
        assert_eq!(mail_from_args(&named).unwrap().unwrap().1.app_name, "Example");
    }

    #[test]
    fn wrong_values_are_errors_without_the_password() {
        for (args, mentions) in [
            (
                MailArgs {
                    smtp_url: Some("imap://mailer:s3cret-Pa55@127.0.0.1".into()),
                    ..complete()
                },
                "--smtp-url",
            ),
            (
                MailArgs {
                    mail_from: Some("not a mailbox".into()),
                    ..complete()
                },
                "sender",
            ),
            (
                MailArgs {
                    reset_link: Some("/reset".into()),
                    ..complete()
                },
                "reset link",
            ),
        ] {
            let error = mail_from_args(&args).err().unwrap();
            assert!(error.contains(mentions), "{error}");
            assert!(!error.contains("s3cret"), "{error}");
            assert!(!format!("{args:?}").contains("s3cret"));
        }
    }

    #[test]
    fn flags_and_environment_variables() {
        let cli = Cli::try_parse_from([
            "holdfast-server",
            "--smtp-url",
            "smtp://127.0.0.1:2525",
            "--mail-from",
            "a@example.com",
            "--app-name",
            "Example",
            "--reset-link",
            "https://a.example/r",
            "--verify-link",
            "https://a.example/v",
        ])
        .unwrap();
        assert_eq!(cli.mail.smtp_url.as_deref(), Some("smtp://127.0.0.1:2525"));
        assert_eq!(cli.mail.app_name.as_deref(), Some("Example"));
        let command = Cli::command();
        let env = |id: &str| {
            let arg = command.get_arguments().find(|a| a.get_id() == id).unwrap();
            arg.get_env().map(|e| e.to_string_lossy().into_owned())
        };
        assert_eq!(env("smtp_url").as_deref(), Some("HOLDFAST_SMTP_URL"));
        assert_eq!(env("mail_from").as_deref(), Some("HOLDFAST_MAIL_FROM"));
        assert_eq!(env("app_name").as_deref(), Some("HOLDFAST_APP_NAME"));
        assert_eq!(env("reset_link").as_deref(), Some("HOLDFAST_RESET_LINK"));
        assert_eq!(env("verify_link").as_deref(), Some("HOLDFAST_VERIFY_LINK"));
        assert!(
            command
                .get_arguments()
                .find(|a| a.get_id() == "smtp_url")
                .unwrap()
                .is_hide_env_values_set()
        );
    }
}
