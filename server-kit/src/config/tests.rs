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

#[test]
fn mfa_settings_are_checked_and_keys_come_from_the_secrets_by_default() {
    let config = || ServerConfig::new(vec!["0123456789abcdef0123456789abcdef".into()]);
    for set in [
        (|c: &mut ServerConfig| c.mfa.issuer = "A:B".into()) as fn(&mut ServerConfig),
        |c| c.mfa.issuer = "  ".into(),
        |c| c.mfa.recovery_codes = 0,
        |c| c.mfa.recovery_codes = 21,
        |c| c.mfa.step_up_window_secs = 0,
        |c| c.mfa.step_up_window_secs = MAX_STEP_UP_WINDOW_SECS + 1,
        |c| c.mfa.keys = vec![zeroize::Zeroizing::new(vec![1u8; 31])],
    ] {
        let mut bad = config();
        set(&mut bad);
        assert!(matches!(bad.validate(), Err(ConfigError::Invalid(_))), "{bad:?}");
    }
    let mut good = config();
    good.validate().unwrap();
    let derived = good.mfa_keys().unwrap();
    let secret = crate::mfa::new_secret(20).unwrap();
    let sealed = derived.sealer.seal(&secret, "u").unwrap();
    // Explicit key material replaces the secrets; the secrets' key no longer opens.
    good.mfa.keys = vec![zeroize::Zeroizing::new(vec![7u8; 32])];
    good.validate().unwrap();
    let explicit = good.mfa_keys().unwrap();
    assert!(explicit.sealer.open(&sealed, "u").is_err());
    // Listing the old material second keeps it opening (rotation).
    good.mfa.keys.push(zeroize::Zeroizing::new(
        b"0123456789abcdef0123456789abcdef".to_vec(),
    ));
    let rotating = good.mfa_keys().unwrap();
    assert!(rotating.sealer.open(&sealed, "u").unwrap().needs_reseal);
    let debug = format!("{:?}", good.mfa);
    assert!(
        !debug.contains("7, 7") && debug.contains("<2 redacted>"),
        "{debug}"
    );
}
