//! Unit tests of `config.rs`.

use super::*;

fn with_public_url(url: &str) -> Result<(), ConfigError> {
    let mut config = ServerConfig::new(vec!["0123456789abcdef0123456789abcdef".into()]);
    config.public_url = Some(url.to_owned());
    config.validate()
}

#[test]
fn lifetimes_and_leeway_that_would_overflow_are_refused() {
    let config = || ServerConfig::new(vec!["0123456789abcdef0123456789abcdef".into()]);
    for set in [
        (|c: &mut ServerConfig| c.refresh_ttl_secs = i64::MAX) as fn(&mut ServerConfig),
        |c| c.access_ttl_secs = MAX_LIFETIME_SECS + 1,
        |c| c.device_credential_ttl_secs = i64::MAX / 1000,
        |c| c.leeway_secs = i64::MAX,
    ] {
        let mut bad = config();
        set(&mut bad);
        assert!(matches!(bad.validate(), Err(ConfigError::Invalid(_))), "{bad:?}");
    }
    let mut longest = config();
    longest.refresh_ttl_secs = MAX_LIFETIME_SECS;
    longest.leeway_secs = MAX_LEEWAY_SECS;
    longest.validate().unwrap();
}

#[test]
fn public_base_urls_are_absolute_http_urls() {
    for good in [
        "https://api.example.com",
        "https://api.example.com/",
        "http://127.0.0.1:8080",
        "https://example.com/api",
    ] {
        assert_eq!(with_public_url(good), Ok(()), "{good}");
    }
    for bad in [
        "",
        "api.example.com",
        "/auth",
        "ftp://example.com",
        "wss://example.com",
        "https://",
        "https://user:pw@example.com",
        "https://example.com?x=1",
        "https://example.com/#f",
        "https://exa mple.com",
    ] {
        assert!(
            matches!(with_public_url(bad), Err(ConfigError::Invalid(_))),
            "{bad}"
        );
    }
}
