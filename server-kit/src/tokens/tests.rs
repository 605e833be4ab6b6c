//! Unit tests of `tokens`.

use super::*;
use crate::config::ServerConfig;
use holdfast_protocol::{Cnf, TokenType};

const SECRET_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-secret-a";
const SECRET_B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-secret-b";
const NOW: i64 = 1_700_000_000;

fn policy() -> TokenPolicy {
    TokenPolicy {
        access_ttl_secs: 900,
        refresh_ttl_secs: 90 * 86_400,
        device_credential_ttl_secs: 90 * 86_400,
        leeway_secs: 5,
    }
}

fn manager(secrets: &[&str]) -> TokenManager {
    TokenManager::new(TokenKeys::new(secrets).unwrap(), policy())
}

fn sign_raw(secret: &str, header_json: &str, payload_json: &str) -> String {
    let input = format!(
        "{}.{}",
        holdfast_protocol::b64::encode(header_json.as_bytes()),
        holdfast_protocol::b64::encode(payload_json.as_bytes())
    );
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let tag = hmac::sign(&key, input.as_bytes());
    format!("{input}.{}", holdfast_protocol::b64::encode(tag.as_ref()))
}

#[test]
fn secrets_are_checked() {
    let none: [&str; 0] = [];
    assert_eq!(TokenKeys::new(&none).unwrap_err(), ConfigError::NoSecret);
    assert_eq!(
        TokenKeys::new(&[SECRET_A, "short"]).unwrap_err(),
        ConfigError::SecretTooShort(2)
    );
    // 32 characters, counted as characters rather than bytes.
    let thirty_two = "é".repeat(32);
    assert!(TokenKeys::new(&[thirty_two.as_str()]).is_ok());
    assert_eq!(
        TokenKeys::new(&["é".repeat(31)]).unwrap_err(),
        ConfigError::SecretTooShort(1)
    );
}

#[test]
fn generated_secrets_are_43_chars_and_usable() {
    let a = generate_secret();
    let b = generate_secret();
    assert_eq!(a.len(), 43);
    assert_ne!(a, b);
    assert!(TokenKeys::new(&[a]).is_ok());
}

#[test]
fn issue_then_verify_round_trips() {
    let tokens = manager(&[SECRET_A]);
    let pair = tokens.issue_pair("user-1", "dev-1", "fam-1", Some("jkt-1"), NOW);
    assert!(pair.access.starts_with(&format!("{JWT_HEADER_B64}.")));
    let access = tokens.verify(&pair.access, TokenType::Access, NOW).unwrap();
    assert_eq!(access, pair.access_claims);
    assert_eq!(access.fam.as_deref(), Some("fam-1"));
    assert_eq!(access.cnf, Some(Cnf { jkt: "jkt-1".into() }));
    assert_eq!(access.exp, NOW + 900);
    let refresh = tokens.verify(&pair.refresh, TokenType::Refresh, NOW).unwrap();
    assert_eq!(refresh.exp, NOW + 90 * 86_400);
    assert_ne!(access.jti, refresh.jti);
    assert_eq!(uuid::Uuid::parse_str(&access.jti).unwrap().get_version_num(), 4);

    let unbound = tokens.issue_pair("user-1", "dev-1", "fam-1", None, NOW);
    let payload = Claims::decode_unverified(&unbound.access).unwrap();
    assert_eq!(payload.cnf, None);
    assert!(!payload.to_json().contains("cnf"));
}

#[test]
fn device_credential_claims() {
    let tokens = manager(&[SECRET_A]);
    let token = tokens.issue_device_credential("user-1", "dev-1", "THUMB", NOW);
    let claims = tokens.verify(&token, TokenType::DeviceCredential, NOW).unwrap();
    assert_eq!(claims.dpk.as_deref(), Some("THUMB"));
    assert_eq!(claims.exp, NOW + 90 * 86_400);
    assert_eq!(claims.must_checkin_by, Some(claims.exp));
    assert_eq!((claims.fam, claims.cnf), (None, None));
}

#[test]
fn rotation_old_secret_verifies_only_while_listed() {
    let old = manager(&[SECRET_A]);
    let token = old.issue_pair("u", "d", "f", None, NOW).access;
    let rotated = manager(&[SECRET_B, SECRET_A]);
    assert!(rotated.verify(&token, TokenType::Access, NOW).is_ok());
    // New tokens are signed with the first secret only.
    let fresh = rotated.issue_pair("u", "d", "f", None, NOW).access;
    assert_eq!(
        old.verify(&fresh, TokenType::Access, NOW),
        Err(TokenError::BadSignature)
    );
    let removed = manager(&[SECRET_B]);
    assert_eq!(
        removed.verify(&token, TokenType::Access, NOW),
        Err(TokenError::BadSignature)
    );
}

#[test]
fn tampering_is_refused() {
    let tokens = manager(&[SECRET_A]);
    let token = tokens.issue_pair("user-1", "dev-1", "f", None, NOW).access;
    let (input, signature) = token.rsplit_once('.').unwrap();
    let (header, payload) = input.split_once('.').unwrap();

    let other_payload = holdfast_protocol::b64::encode(
        tokens
            .verify(&token, TokenType::Access, NOW)
            .unwrap()
            .to_json()
            .replace("user-1", "user-2")
            .as_bytes(),
    );
    let forged = format!("{header}.{other_payload}.{signature}");
    assert_eq!(tokens.keys().verify(&forged), Err(TokenError::BadSignature));

    // Flip one signature character (keeping it canonical base64url).
    let mut chars: Vec<char> = signature.chars().collect();
    chars[0] = if chars[0] == 'A' { 'B' } else { 'A' };
    let flipped: String = chars.into_iter().collect();
    assert_eq!(
        tokens.keys().verify(&format!("{input}.{flipped}")),
        Err(TokenError::BadSignature)
    );

    // Non-canonical trailing bits in the last signature character.
    let last = signature.chars().last().unwrap();
    let sibling = if last == 'A' { 'B' } else { 'A' };
    let mut noncanonical = signature[..42].to_owned();
    noncanonical.push(sibling);
    assert!(tokens.keys().verify(&format!("{input}.{noncanonical}")).is_err());

    for bad in [
        format!("{input}.{signature}="),
        format!("{input}.{}", &signature[..42]),
        format!("{input}."),
        format!("{header}..{signature}"),
        format!("{input}.{signature}.x"),
        format!("{header}.{payload}"),
        token.replace('.', ""),
        String::new(),
        format!("{input}.{}", "A".repeat(44)),
        "x".repeat(MAX_TOKEN_LEN + 1),
    ] {
        assert_eq!(tokens.keys().verify(&bad), Err(TokenError::Malformed), "{bad}");
    }
}

#[test]
fn other_headers_are_refused_even_when_correctly_signed() {
    let tokens = manager(&[SECRET_A]);
    let payload = r#"{"jti":"j","sub":"u","dev":"d","type":"access","iat":1700000000,"exp":1700000900}"#;
    for header in [
        r#"{"typ":"JWT","alg":"HS256"}"#,
        r#"{"alg": "HS256", "typ": "JWT"}"#,
        r#"{"alg":"HS256","typ":"JWT"} "#,
        r#"{"alg":"none","typ":"JWT"}"#,
        r#"{"alg":"HS512","typ":"JWT"}"#,
        r#"{"alg":"HS256"}"#,
    ] {
        let token = sign_raw(SECRET_A, header, payload);
        assert_eq!(
            tokens.keys().verify(&token),
            Err(TokenError::Malformed),
            "{header}"
        );
    }
    let unsigned = format!(
        "{}.{}.",
        holdfast_protocol::b64::encode(br#"{"alg":"none","typ":"JWT"}"#),
        holdfast_protocol::b64::encode(payload.as_bytes())
    );
    assert_eq!(tokens.keys().verify(&unsigned), Err(TokenError::Malformed));
    // The exact header with the same payload is accepted: the refusals above are the header.
    assert!(
        tokens
            .keys()
            .verify(&sign_raw(SECRET_A, r#"{"alg":"HS256","typ":"JWT"}"#, payload))
            .is_ok()
    );
}

#[test]
fn signed_garbage_payloads_are_malformed_not_panics() {
    let tokens = manager(&[SECRET_A]);
    let header = r#"{"alg":"HS256","typ":"JWT"}"#;
    for payload in [
        "",
        "null",
        "[]",
        "{}",
        r#"{"jti":1}"#,
        r#"{"type":"admin"}"#,
        "\u{0}",
    ] {
        let token = sign_raw(SECRET_A, header, payload);
        assert_eq!(
            tokens.keys().verify(&token),
            Err(TokenError::Malformed),
            "{payload:?}"
        );
    }
    // A signed payload larger than the stack buffer still parses.
    let big = format!(
        r#"{{"jti":"j","sub":"u","dev":"d","type":"access","iat":1,"exp":2,"pad":"{}"}}"#,
        "p".repeat(3000)
    );
    assert!(tokens.keys().verify(&sign_raw(SECRET_A, header, &big)).is_ok());
}

#[test]
fn expiry_leeway_boundaries() {
    let tokens = manager(&[SECRET_A]);
    let pair = tokens.issue_pair("u", "d", "f", None, NOW);
    let exp = pair.access_claims.exp;
    for now in [NOW, exp, exp + 5] {
        assert!(
            tokens.verify(&pair.access, TokenType::Access, now).is_ok(),
            "{now}"
        );
    }
    assert_eq!(
        tokens.verify(&pair.access, TokenType::Access, exp + 6),
        Err(TokenError::Expired)
    );
    // Signature is checked before expiry: an expired token under an unknown secret is a
    // bad signature, not an expired one.
    let foreign = manager(&[SECRET_B]).issue_pair("u", "d", "f", None, NOW).access;
    assert_eq!(
        tokens.verify(&foreign, TokenType::Access, exp + 6),
        Err(TokenError::BadSignature)
    );
}

#[test]
fn extreme_exp_does_not_overflow() {
    let tokens = manager(&[SECRET_A]);
    let claims = Claims {
        jti: "j".into(),
        sub: "u".into(),
        dev: "d".into(),
        token_type: TokenType::Access,
        iat: 0,
        exp: i64::MAX,
        dpk: None,
        must_checkin_by: None,
        fam: None,
        cnf: None,
        aal: None,
        amr: None,
        auth_time: None,
        mfa: None,
        ext: None,
    };
    let token = tokens.keys().sign(&claims);
    assert!(tokens.verify(&token, TokenType::Access, i64::MAX).is_ok());
}

#[test]
fn wrong_type_is_refused_before_expiry() {
    let tokens = manager(&[SECRET_A]);
    let pair = tokens.issue_pair("u", "d", "f", None, NOW);
    assert_eq!(
        tokens.verify(&pair.refresh, TokenType::Access, NOW),
        Err(TokenError::WrongType)
    );
    assert_eq!(
        tokens.verify(&pair.access, TokenType::Refresh, NOW),
        Err(TokenError::WrongType)
    );
    let far_future = NOW + 1_000_000_000;
    assert_eq!(
        tokens.verify(&pair.access, TokenType::Refresh, far_future),
        Err(TokenError::WrongType)
    );
    let credential = tokens.issue_device_credential("u", "d", "t", NOW);
    assert_eq!(
        tokens.verify(&credential, TokenType::Access, NOW),
        Err(TokenError::WrongType)
    );
}

#[test]
fn reissue_pair_is_byte_identical() {
    let tokens = manager(&[SECRET_A]);
    for jkt in [Some("VfgaAVYfO1paNyhrn-87ShJMMRBGtlxiFWr4uWfJzI4"), None] {
        let parent = tokens.issue_pair("user-1", "dev-1", "fam-1", jkt, NOW);
        // Rotation, later: the children are issued from the parent's claims.
        let assurance = super::Assurance::of(&parent.refresh_claims);
        let children = tokens.issue_pair_with("user-1", "dev-1", "fam-1", jkt, None, &assurance, NOW + 60);
        let recorded = children.child_pair();
        let again = tokens.reissue_pair(&parent.refresh_claims, &recorded, None);
        assert_eq!(again.access, children.access);
        assert_eq!(again.refresh, children.refresh);
        assert_eq!(again, children);
        assert_eq!(again.child_pair(), recorded);
    }
}

#[test]
fn into_wire_keeps_the_tokens() {
    let tokens = manager(&[SECRET_A]);
    let pair = tokens.issue_pair("u", "d", "f", None, NOW);
    let (access, refresh) = (pair.access.clone(), pair.refresh.clone());
    let wire = pair.into_wire();
    assert_eq!((wire.access_token, wire.refresh_token), (access, refresh));
}

#[test]
fn debug_shows_no_secrets_or_tokens() {
    let keys = TokenKeys::new(&[SECRET_A, SECRET_B]).unwrap();
    let debug = format!("{keys:?}");
    assert!(
        !debug.contains("secret") && !debug.contains("aaaa") && !debug.contains("bbbb"),
        "{debug}"
    );
    let tokens = TokenManager::new(keys, policy());
    let debug = format!("{tokens:?}");
    assert!(!debug.contains("aaaa") && !debug.contains("bbbb"), "{debug}");
    let pair = tokens.issue_pair("u", "d", "f", None, NOW);
    let debug = format!("{pair:?}");
    for token in [&pair.access, &pair.refresh] {
        let signature = token.rsplit_once('.').unwrap().1;
        assert!(
            !debug.contains(signature) && !debug.contains(JWT_HEADER_B64),
            "{debug}"
        );
    }
}

#[test]
fn from_config_uses_secrets_and_lifetimes() {
    let mut config = ServerConfig::new(vec![SECRET_A.to_owned()]);
    config.access_ttl_secs = 60;
    let tokens = TokenManager::from_config(&config).unwrap();
    assert_eq!(tokens.policy().access_ttl_secs, 60);
    assert_eq!(tokens.policy().leeway_secs, 5);
    config.secrets = vec!["short".into()];
    assert_eq!(
        TokenManager::from_config(&config).unwrap_err(),
        ConfigError::SecretTooShort(1)
    );
}

#[test]
fn assurance_rides_on_both_tokens_and_survives_reissue() {
    use super::Assurance;
    let tokens = manager(&[SECRET_A]);
    let pending = Assurance::password(NOW - 100, true);
    let pair = tokens.issue_pair_with("u", "d", "f", None, None, &pending, NOW);
    for claims in [&pair.access_claims, &pair.refresh_claims] {
        assert_eq!(claims.aal, Some(1));
        assert_eq!(claims.amr, Some(vec!["pwd".to_owned()]));
        assert_eq!(claims.auth_time, Some(NOW - 100));
        assert!(claims.mfa_pending());
    }
    // What a refresh carries over is exactly what the parent said.
    assert_eq!(Assurance::of(&pair.refresh_claims), pending);
    let verified = pending.with_second_factor("otp", NOW);
    assert_eq!(
        (
            verified.aal,
            verified.amr.clone(),
            verified.auth_time,
            verified.mfa_pending
        ),
        (2, vec!["pwd".to_owned(), "otp".to_owned()], NOW, false)
    );
    // A method is named once however often it is used.
    assert_eq!(verified.with_second_factor("otp", NOW + 1).amr, verified.amr);
    let pair = tokens.issue_pair_with("u", "d", "f", None, None, &verified, NOW);
    assert!(!pair.access.is_empty() && pair.access_claims.mfa.is_none());
    let child = pair.child_pair();
    let again = tokens.reissue_pair(&pair.refresh_claims, &child, None);
    assert_eq!(again.access_claims.aal, Some(2));
    assert_eq!(again.access_claims.amr, verified.amr.clone().into());
    // A token from before these claims counts as a first-factor session of its `iat`.
    let mut old = pair.refresh_claims.clone();
    (old.aal, old.amr, old.auth_time, old.mfa) = (None, None, None, None);
    assert_eq!(
        Assurance::of(&old),
        Assurance {
            aal: 1,
            amr: vec![],
            auth_time: NOW,
            mfa_pending: false
        }
    );
}

#[test]
fn device_key_relogin_never_raises_assurance() {
    use super::Assurance;
    // No earlier session: a key alone, never a recent check.
    let fresh = Assurance::device_key(None, false, NOW);
    assert_eq!((fresh.aal, fresh.auth_time, fresh.mfa_pending), (1, 0, false));
    assert!(Assurance::device_key(None, true, NOW).mfa_pending);
    // A verified session's device stays verified, with the old check time.
    let verified = Assurance::password(NOW - 50, true).with_second_factor("otp", NOW - 40);
    let relogin = Assurance::device_key(Some(verified.clone()), true, NOW);
    assert_eq!(relogin, verified);
    // A first-factor session's device owes the second factor once MFA is on.
    let first = Assurance::password(NOW - 50, false);
    assert!(Assurance::device_key(Some(first.clone()), true, NOW).mfa_pending);
    assert!(!Assurance::device_key(Some(first), false, NOW).mfa_pending);
}
