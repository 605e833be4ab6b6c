//! The SMTP mailer against a real SMTP server (`holdfast_testing::SmtpSink`: Python's
//! aiosmtpd; `HOLDFAST_TEST_SMTP_PYTHON=$(scripts/smtp-venv.sh)`, never skipped), and its
//! failures: bad URLs, a closed port, a server that never answers.

use std::time::{Duration, Instant};

use holdfast_server_kit::mail::{Mail, MailError, MailSettings, Mailer, SmtpMailer};
use holdfast_testing::SmtpSink;

const FROM: &str = "Holdfast Test <no-reply@holdfast.test>";

fn settings() -> MailSettings {
    MailSettings::new(
        FROM,
        "https://app.example.com/reset?lang=en",
        "https://app.example.com/verify",
    )
    .app_name("Café <b>Acme</b> & Co")
}

fn some_mail() -> Mail {
    settings().password_reset_mail("ada@example.com", "SECRET-TOKEN", Duration::from_secs(3600))
}

#[tokio::test]
async fn a_password_reset_mail_arrives_with_its_link() {
    let sink = SmtpSink::start();
    let settings = settings();
    settings.validate().unwrap();
    let token = "Zm9vYmFy-_baz~0123456789abcdefghijklmnopqrstuv";
    let mail = settings.password_reset_mail("ada@example.com", token, Duration::from_secs(3600));
    let mailer = SmtpMailer::from_url(&sink.url(), &settings.from).unwrap();
    mailer.send(mail).await.unwrap();

    let received = sink.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(received.len(), 1);
    let mail = &received[0];
    assert_eq!(mail.to, "ada@example.com");
    assert_eq!(mail.envelope_to, "ada@example.com");
    assert!(
        mail.from.contains("Holdfast Test") && mail.from.contains("<no-reply@holdfast.test>"),
        "{}",
        mail.from
    );
    assert_eq!(mail.subject, "Reset your Café <b>Acme</b> & Co password");
    assert_eq!(mail.content_type, "multipart/alternative");

    let text = mail.text.as_deref().expect("a text/plain part");
    let html = mail.html.as_deref().expect("a text/html part");
    let link = format!("https://app.example.com/reset?lang=en&token={token}");
    assert!(text.contains(&link), "{text}");
    assert!(text.contains("Café <b>Acme</b> & Co"), "{text}");
    assert!(
        html.contains(&format!("href=\"{}\"", link.replace('&', "&amp;"))),
        "{html}"
    );
    assert!(html.contains("Café &lt;b&gt;Acme&lt;/b&gt; &amp; Co"), "{html}");
    assert!(!html.contains("<b>Acme"), "{html}");
}

#[tokio::test]
async fn a_verification_mail_arrives_too() {
    let sink = SmtpSink::start();
    let settings = settings();
    let mailer = SmtpMailer::from_url(&sink.url(), &settings.from).unwrap();
    let mail = settings.email_verification_mail("grace@example.com", "v-token", Duration::from_secs(86_400));
    mailer.send(mail).await.unwrap();
    let received = sink.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(received[0].to, "grace@example.com");
    assert!(
        received[0]
            .text
            .as_deref()
            .unwrap()
            .contains("https://app.example.com/verify?token=v-token")
    );
    assert!(received[0].text.as_deref().unwrap().contains("24 hours"));
}

#[test]
fn an_unknown_scheme_is_a_clear_error_without_the_password() {
    let error = SmtpMailer::from_url("imap://mailer:s3cret-Pa55@127.0.0.1:143", FROM).unwrap_err();
    let shown = format!("{error} {error:?}");
    assert!(matches!(error, MailError::Config(_)), "{shown}");
    assert!(
        shown.contains("`imap`") && shown.contains("smtp://") && shown.contains("smtps://"),
        "{shown}"
    );
    assert!(!shown.contains("s3cret"), "{shown}");
}

#[tokio::test]
async fn sending_to_a_closed_port_fails() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = format!("smtp://mailer:s3cret-Pa55@127.0.0.1:{port}");
    let mailer = SmtpMailer::from_url_with_timeout(&url, FROM, Duration::from_secs(2)).unwrap();
    let error = tokio::time::timeout(Duration::from_secs(10), mailer.send(some_mail()))
        .await
        .expect("the mailer's own timeout ends it first")
        .unwrap_err();
    let shown = format!("{error} {error:?}");
    assert!(
        matches!(error, MailError::Connection(_) | MailError::Timeout(_)),
        "{shown}"
    );
    assert!(shown.contains(&format!("127.0.0.1:{port}")), "{shown}");
    assert!(
        !shown.contains("s3cret") && !shown.contains("SECRET-TOKEN"),
        "{shown}"
    );
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    // Accepts connections and says nothing: no greeting, ever.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    let mailer =
        SmtpMailer::from_url_with_timeout(&format!("smtp://{address}"), FROM, Duration::from_millis(500))
            .unwrap();
    let started = Instant::now();
    let error = tokio::time::timeout(Duration::from_secs(10), mailer.send(some_mail()))
        .await
        .expect("the mailer's own timeout ends it first")
        .unwrap_err();
    assert!(matches!(error, MailError::Timeout(_)), "{error:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    silent.abort();
}

#[tokio::test]
async fn a_failed_login_does_not_show_the_password() {
    // The sink offers no AUTH: a mailer with credentials cannot sign in.
    let sink = SmtpSink::start();
    let url = sink.url().replace("smtp://", "smtp://mailer:s3cret-Pa55@");
    let mailer = SmtpMailer::from_url(&url, FROM).unwrap();
    assert!(!format!("{mailer} {mailer:?}").contains("s3cret"));
    let error = mailer.send(some_mail()).await.unwrap_err();
    let shown = format!("{error} {error:?}");
    assert!(
        !shown.contains("s3cret") && !shown.contains("SECRET-TOKEN"),
        "{shown}"
    );
    assert!(sink.messages().is_empty());
}

// ---------------------------------------------------------------------------------------
// The server kit's account mail, end to end through the SMTP server.

#[path = "support/mod.rs"]
mod support;

/// The token in the first link of a mail's text (`…?token=TOKEN`).
fn token_in(text: &str) -> String {
    let start = text.find("token=").expect("a link with a token") + "token=".len();
    text[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '%'))
        .collect()
}

async fn server_mailing_to(sink: &SmtpSink) -> support::TestServer {
    let settings = MailSettings::new(
        FROM,
        "https://app.example.com/reset-password",
        "https://app.example.com/verify-email",
    );
    let mailer = SmtpMailer::from_url(&sink.url(), &settings.from).expect("SMTP mailer");
    let outbox =
        holdfast_server_kit::mail::Outbox::new(std::sync::Arc::new(mailer), settings).expect("outbox");
    support::TestServer::start_with_mail(std::sync::Arc::new(outbox)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mailed_reset_link_resets_the_password_and_ends_every_session() {
    use serde_json::json;
    let sink = SmtpSink::start();
    let server = server_mailing_to(&sink).await;
    let address = support::email("smtp-reset");
    let first = server.sign_up(&address).await;
    let second = server.sign_in_device(&address, "laptop").await;

    // The answer holds no token, and is the same for an unknown address.
    let known = server
        .post_unproven("/auth/password/reset-request", json!({ "email": address }))
        .await
        .expect_status(200);
    let unknown = server
        .post_unproven(
            "/auth/password/reset-request",
            json!({ "email": support::email("nobody") }),
        )
        .await
        .expect_status(200);
    assert_eq!(known.text, unknown.text);
    assert_eq!(known.data(), &json!({ "success": true }));

    let mails = sink.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(mails.len(), 1, "one mail, to the known address only");
    assert_eq!(mails[0].to, address);
    let text = mails[0].text.as_deref().expect("a text part");
    assert!(
        text.contains("https://app.example.com/reset-password?token="),
        "{text}"
    );
    let token = token_in(text);
    assert_eq!(token.len(), 43, "{text}");

    server
        .post_unproven(
            "/auth/password/reset",
            json!({ "token": token, "newPassword": "a brand new passphrase" }),
        )
        .await
        .expect_status(200);
    for session in [&first, &second] {
        let refused = server.refresh(&session.refresh).await;
        refused.expect_error(401, "TOKEN_REVOKED");
        assert_eq!(refused.reason(), Some("password_reset"));
    }
    server
        .post_unproven(
            "/auth/signin",
            json!({ "email": address, "password": "a brand new passphrase" }),
        )
        .await
        .expect_status(200);
    server
        .post_unproven(
            "/auth/password/reset",
            json!({ "token": token, "newPassword": "yet another passphrase" }),
        )
        .await
        .expect_error(400, "RESET_TOKEN_INVALID");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mailed_verification_link_verifies_the_email() {
    use serde_json::json;
    let sink = SmtpSink::start();
    let server = server_mailing_to(&sink).await;
    let session = server.sign_up(&support::email("smtp-verify")).await;
    let sent = server
        .post_auth("/auth/verify/send", &session.access, json!({}))
        .await
        .expect_status(200);
    assert_eq!(
        sent.data(),
        &json!({ "success": true }),
        "no token outside development mode"
    );
    let mails = sink.wait_for(1, Duration::from_secs(10)).await;
    let text = mails[0].text.as_deref().expect("a text part");
    assert!(
        text.contains("https://app.example.com/verify-email?token="),
        "{text}"
    );
    let confirmed = server
        .post_unproven("/auth/verify/confirm", json!({ "token": token_in(text) }))
        .await
        .expect_status(200);
    assert_eq!(confirmed.data()["user"]["emailVerified"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mail_server_that_is_down_is_a_503_not_a_lost_token() {
    use serde_json::json;
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("smtp://{}", closed.local_addr().expect("address"));
    drop(closed);
    let settings = MailSettings::new(FROM, "https://app.example.com/r", "https://app.example.com/v");
    let mailer =
        SmtpMailer::from_url_with_timeout(&url, &settings.from, Duration::from_secs(2)).expect("mailer");
    let outbox =
        holdfast_server_kit::mail::Outbox::new(std::sync::Arc::new(mailer), settings).expect("outbox");
    let server = support::TestServer::start_with_mail(std::sync::Arc::new(outbox)).await;
    let session = server.sign_up(&support::email("smtp-down")).await;
    let reply = server
        .post_auth("/auth/verify/send", &session.access, json!({}))
        .await;
    reply.expect_error(503, "SERVICE_UNAVAILABLE");
    assert!(reply.header("retry-after").is_some());
}
