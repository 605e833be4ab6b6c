use std::time::Duration;

use super::templates::describe_duration;
use super::*;

fn settings() -> MailSettings {
    MailSettings::new(
        "Holdfast <no-reply@example.com>",
        "https://app.example.com/reset",
        "https://app.example.com/verify",
    )
}

#[test]
fn links_append_the_token_to_the_query() {
    let cases = [
        (
            "https://a.example/reset",
            "abc",
            "https://a.example/reset?token=abc",
        ),
        (
            "https://a.example/reset?",
            "abc",
            "https://a.example/reset?token=abc",
        ),
        (
            "https://a.example/reset?lang=en",
            "abc",
            "https://a.example/reset?lang=en&token=abc",
        ),
        (
            "https://a.example/reset?lang=en&",
            "abc",
            "https://a.example/reset?lang=en&token=abc",
        ),
        (
            "https://a.example/#/reset",
            "abc",
            "https://a.example/?token=abc#/reset",
        ),
        (
            "https://a.example/app?x=1#/reset?y=2",
            "abc",
            "https://a.example/app?x=1&token=abc#/reset?y=2",
        ),
        (
            "https://a.example/r",
            "a+b/c=d e&f#g",
            "https://a.example/r?token=a%2Bb%2Fc%3Dd%20e%26f%23g",
        ),
        (
            "https://a.example/r",
            "Az09-._~",
            "https://a.example/r?token=Az09-._~",
        ),
        ("https://a.example/r", "é", "https://a.example/r?token=%C3%A9"),
    ];
    for (base, token, expected) in cases {
        assert_eq!(MailSettings::link(base, token), expected, "{base} + {token}");
    }
}

#[test]
fn default_templates_escape_the_html_and_keep_the_text() {
    let settings = settings().app_name("<script>alert(1)</script> & Co");
    let token = "t0k&en";
    let mail = settings.password_reset_mail("ada+\"x\"@example.com", token, Duration::from_secs(3600));
    assert_eq!(mail.to, "ada+\"x\"@example.com");
    assert_eq!(mail.subject, "Reset your <script>alert(1)</script> & Co password");
    assert!(
        mail.text.contains("<script>alert(1)</script> & Co"),
        "{}",
        mail.text
    );
    assert!(
        mail.text.contains("https://app.example.com/reset?token=t0k%26en"),
        "{}",
        mail.text
    );
    assert!(mail.text.contains("within 1 hour"), "{}", mail.text);
    assert!(!mail.html.contains("<script>"), "{}", mail.html);
    assert!(
        mail.html
            .contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co"),
        "{}",
        mail.html
    );
    assert!(
        mail.html.contains("ada+&quot;x&quot;@example.com"),
        "{}",
        mail.html
    );
    assert!(
        mail.html
            .contains("<a href=\"https://app.example.com/reset?token=t0k%26en\">"),
        "{}",
        mail.html
    );

    let mail = settings.email_verification_mail("ada@example.com", "v", Duration::from_secs(86_400));
    assert!(
        mail.subject
            .starts_with("Confirm your email address for <script>")
    );
    assert!(mail.text.contains("https://app.example.com/verify?token=v"));
    assert!(mail.text.contains("within 24 hours"));
    assert!(
        mail.html
            .contains("<a href=\"https://app.example.com/verify?token=v\">")
    );
    assert!(!mail.html.contains("<script>"));
}

#[test]
fn an_ampersand_in_the_link_is_escaped_in_the_href() {
    let settings = MailSettings::new(
        "a@example.com",
        "https://a.example/r?lang=en",
        "https://a.example/v",
    );
    let mail = settings.password_reset_mail("b@example.com", "tok", Duration::from_secs(60));
    assert!(mail.text.contains("https://a.example/r?lang=en&token=tok"));
    assert!(
        mail.html
            .contains("href=\"https://a.example/r?lang=en&amp;token=tok\"")
    );
    assert!(mail.text.contains("within 1 minute"));
}

#[test]
fn durations_are_described_in_their_largest_whole_unit() {
    assert_eq!(describe_duration(Duration::from_secs(3600)), "1 hour");
    assert_eq!(describe_duration(Duration::from_secs(86_400)), "24 hours");
    assert_eq!(describe_duration(Duration::from_secs(1800)), "30 minutes");
    assert_eq!(describe_duration(Duration::from_secs(90)), "90 seconds");
    assert_eq!(describe_duration(Duration::from_secs(1)), "1 second");
}

#[test]
fn applications_replace_the_templates() {
    struct Short;
    impl MailTemplates for Short {
        fn password_reset(&self, ctx: &MailContext) -> Rendered {
            Rendered {
                subject: "reset".into(),
                text: ctx.link.clone(),
                html: escape_html(&ctx.link),
            }
        }
        fn email_verification(&self, ctx: &MailContext) -> Rendered {
            DefaultTemplates.email_verification(ctx)
        }
    }
    let settings = settings().templates(Short);
    let mail = settings.password_reset_mail("a@example.com", "t", Duration::from_secs(60));
    assert_eq!(
        (mail.subject.as_str(), mail.text.as_str()),
        ("reset", "https://app.example.com/reset?token=t")
    );
    let shared: std::sync::Arc<dyn MailTemplates> = std::sync::Arc::new(Short);
    let mail = settings
        .clone()
        .templates(shared)
        .password_reset_mail("a@example.com", "u", Duration::ZERO);
    assert_eq!(mail.text, "https://app.example.com/reset?token=u");
}

#[test]
fn debug_output_hides_the_bodies() {
    let mail = settings().password_reset_mail("ada@example.com", "SECRET-TOKEN", Duration::from_secs(3600));
    let shown = format!("{mail:?}");
    assert!(
        shown.contains("ada@example.com") && shown.contains("Reset your Holdfast password"),
        "{shown}"
    );
    assert!(
        shown.contains(&format!("text_bytes: {}", mail.text.len())),
        "{shown}"
    );
    assert!(
        !shown.contains("SECRET-TOKEN") && !shown.contains("https://"),
        "{shown}"
    );

    let rendered = DefaultTemplates.password_reset(&MailContext {
        app_name: "A".into(),
        email: "a@example.com".into(),
        link: "https://a.example/?token=SECRET-TOKEN".into(),
        valid_for: Duration::from_secs(60),
    });
    assert!(!format!("{rendered:?}").contains("SECRET-TOKEN"));

    let settings = MailSettings::new(
        "a@example.com",
        "https://user:pw1234@a.example/r",
        "https://a.example/v",
    );
    let shown = format!("{settings:?}");
    assert!(!shown.contains("pw1234"), "{shown}");
}

#[test]
fn settings_validation() {
    settings().validate().unwrap();
    MailSettings::new(
        "no-reply@example.com",
        "http://localhost:3000/reset#x",
        "HTTPS://A.EXAMPLE/v?x=1",
    )
    .validate()
    .unwrap();
    MailSettings::new(
        "\"Holdfast, Inc.\" <no-reply@[127.0.0.1]>",
        "https://a.example",
        "https://a.example",
    )
    .validate()
    .unwrap();

    let invalid = |settings: MailSettings, mentions: &str| {
        let error = settings.validate().unwrap_err();
        assert!(matches!(error, MailError::Config(_)), "{error:?}");
        assert!(
            error.to_string().contains(mentions),
            "{error} should mention {mentions}"
        );
    };
    for from in [
        "",
        "Holdfast",
        "no-reply@",
        "Holdfast <no-reply@example.com",
        "a@example.com\r\nBcc: x@y.z",
    ] {
        invalid(
            MailSettings::new(from, "https://a.example/r", "https://a.example/v"),
            "sender",
        );
    }
    for link in [
        "/reset",
        "app.example.com/reset",
        "ftp://a.example/r",
        "javascript:alert(1)",
        "https://",
        "https://a.example/a b",
    ] {
        invalid(
            MailSettings::new("a@example.com", link, "https://a.example/v"),
            "reset link",
        );
        invalid(
            MailSettings::new("a@example.com", "https://a.example/r", link),
            "verify link",
        );
    }
    invalid(settings().app_name(" "), "application name");
    invalid(settings().app_name("A\nBcc: x@y.z"), "application name");
    let error = MailSettings::new(
        "a@example.com",
        "ftp://u:pw1234@a.example/r",
        "https://a.example/v",
    )
    .validate()
    .unwrap_err();
    assert!(!error.to_string().contains("pw1234"), "{error}");
}

#[tokio::test]
async fn the_memory_mailer_keeps_and_waits_for_mails() {
    let mailer = MemoryMailer::new();
    let mail = |n: usize| Mail {
        to: format!("u{n}@example.com"),
        subject: format!("s{n}"),
        text: String::new(),
        html: String::new(),
    };
    assert_eq!(mailer.next(Duration::from_millis(20)).await, None);

    let sender = mailer.clone();
    let sending = tokio::spawn(async move {
        for n in 0..3 {
            tokio::time::sleep(Duration::from_millis(10)).await;
            sender.send(mail(n)).await.unwrap();
        }
    });
    let three = mailer
        .wait_for(3, Duration::from_secs(5))
        .await
        .expect("three mails");
    assert_eq!(
        three.iter().map(|m| m.to.as_str()).collect::<Vec<_>>(),
        ["u0@example.com", "u1@example.com", "u2@example.com"]
    );
    sending.await.unwrap();
    assert_eq!(mailer.wait_for(4, Duration::from_millis(20)).await, None);
    assert_eq!(mailer.next(Duration::ZERO).await, Some(mail(0)));
    assert_eq!(mailer.sent().len(), 2);
    assert_eq!(mailer.take(), vec![mail(1), mail(2)]);
    assert!(mailer.sent().is_empty());

    mailer.set_failing(true);
    let error = mailer.send(mail(9)).await.unwrap_err();
    assert!(matches!(error, MailError::Other(_)));
    assert!(mailer.sent().is_empty());
    mailer.set_failing(false);
    let as_dyn: std::sync::Arc<dyn Mailer> = std::sync::Arc::new(mailer.clone());
    as_dyn.send(mail(5)).await.unwrap();
    assert_eq!(mailer.next(Duration::from_secs(1)).await, Some(mail(5)));
}
