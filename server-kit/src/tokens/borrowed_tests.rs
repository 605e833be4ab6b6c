//! Unit tests of the borrowed verification path: the hand-written signature decoder against
//! the `base64` crate, and borrowed against owned claims.

use super::*;
use holdfast_protocol::TokenType;

const SECRET: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-secret-a";
const NOW: i64 = 1_700_000_000;

fn manager(secret: &str) -> TokenManager {
    let policy = TokenPolicy {
        access_ttl_secs: 900,
        refresh_ttl_secs: 90 * 86_400,
        device_credential_ttl_secs: 90 * 86_400,
        leeway_secs: 5,
    };
    TokenManager::new(TokenKeys::new(&[secret]).unwrap(), policy)
}

fn sign_payload(secret: &str, payload_json: &str) -> String {
    let input = format!(
        "{JWT_HEADER_B64}.{}",
        holdfast_protocol::b64::encode(payload_json.as_bytes())
    );
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let tag = hmac::sign(&key, input.as_bytes());
    format!("{input}.{}", holdfast_protocol::b64::encode(tag.as_ref()))
}

/// What the `base64` crate's strict engine makes of a signature segment.
fn crate_decode(b64: &[u8]) -> Option<[u8; 32]> {
    let mut tag = [0u8; 32];
    match URL_SAFE_NO_PAD.decode_slice(b64, &mut tag) {
        Ok(32) if b64.len() == SIGNATURE_B64_LEN => Some(tag),
        _ => None,
    }
}

#[test]
fn tag_decoder_agrees_with_the_base64_crate() {
    let rng = SystemRandom::new();
    for _ in 0..64 {
        let mut tag = [0u8; 32];
        rng.fill(&mut tag).unwrap();
        let spelled = URL_SAFE_NO_PAD.encode(tag);
        assert_eq!(decode_tag(spelled.as_bytes()), Some(tag), "{spelled}");
        // Every byte at every position: accepted exactly when the crate accepts it.
        let mut mutated = spelled.clone().into_bytes();
        for position in 0..mutated.len() {
            let original = mutated[position];
            for byte in 0..=u8::MAX {
                mutated[position] = byte;
                assert_eq!(decode_tag(&mutated), crate_decode(&mutated), "{mutated:?}");
            }
            mutated[position] = original;
        }
    }
    for length in [0, 1, 40, 42, 44, 64] {
        let text = vec![b'A'; length];
        assert_eq!(decode_tag(&text), None, "{length}");
    }
}

#[test]
fn borrowed_and_owned_verification_agree_on_the_kora_vectors() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../conformance/kora-vectors.json");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let vectors: serde_json::Value = serde_json::from_str(&text).unwrap();
    let at = |pointer: &str| vectors.pointer(pointer).and_then(|v| v.as_str()).unwrap();
    let tokens = manager(at("/jwt/secret"));
    for (name, expected) in [
        ("access", TokenType::Access),
        ("deviceCredential", TokenType::DeviceCredential),
    ] {
        let token = at(&format!("/jwt/{name}/token"));
        let mut buffer = PayloadBuffer::new();
        let borrowed = tokens.verify_borrowed(token, expected, NOW, &mut buffer).unwrap();
        let owned = tokens.verify(token, expected, NOW).unwrap();
        assert_eq!(owned, Claims::decode_unverified(token).unwrap());
        assert_eq!(borrowed.into_owned(), owned, "{name}");
        // The same refusals, in the same order.
        let other = if expected == TokenType::Access {
            TokenType::Refresh
        } else {
            TokenType::Access
        };
        for (kind, now) in [(other, NOW), (expected, i64::MAX), (other, i64::MAX)] {
            let mut buffer = PayloadBuffer::new();
            assert_eq!(
                tokens.verify_borrowed(token, kind, now, &mut buffer).err(),
                tokens.verify(token, kind, now).err(),
                "{name} {kind:?} {now}"
            );
        }
    }
}

#[test]
fn borrowed_and_owned_verification_agree_on_issued_and_odd_tokens() {
    let tokens = manager(SECRET);
    let pair = tokens.issue_pair("user-1", "dev-1", "fam-1", Some("jkt-1"), NOW);
    let mut extra = ExtraClaims::new();
    // Enough application claims that the payload spills out of the inline bytes.
    extra.insert("roles".into(), serde_json::json!(["a".repeat(600), "b"]));
    let assurance = Assurance::password(NOW, true);
    let large = tokens.issue_pair_with("user-1", "dev-1", "fam-1", None, Some(&extra), &assurance, NOW);
    let large_payload = large.access.split('.').nth(1).unwrap();
    assert!(base64::decoded_len_estimate(large_payload.len()) > STACK_PAYLOAD_LEN);
    let escaped = sign_payload(
        SECRET,
        r#"{"jti":"j\u0031","sub":"u\"","dev":"d","type":"access","iat":1,"exp":1700000000,"fam":"\u00e9","amr":["p\u0077d"],"unknown":{"x":[1]}}"#,
    );
    let mut buffer = PayloadBuffer::new();
    // One buffer reused across sizes: a spilled payload, then inline ones, then spilled.
    for token in [&large.access, &pair.access, &escaped, &large.access] {
        let borrowed = tokens
            .verify_borrowed(token, TokenType::Access, NOW, &mut buffer)
            .unwrap()
            .into_owned();
        assert_eq!(borrowed, tokens.verify(token, TokenType::Access, NOW).unwrap());
    }
    assert_eq!(
        tokens
            .verify_borrowed(&escaped, TokenType::Access, NOW, &mut buffer)
            .unwrap()
            .sub,
        "u\""
    );
    assert_eq!(
        tokens.verify(&large.access, TokenType::Access, NOW).unwrap(),
        large.access_claims
    );
}

#[test]
fn signed_malformed_payloads_are_refused_both_ways() {
    let tokens = manager(SECRET);
    for payload in [
        "",
        "null",
        "{}",
        r#"{"jti":"j","sub":"u","dev":"d","type":"access","iat":1}"#,
        r#"{"jti":"j","jti":"k","sub":"u","dev":"d","type":"access","iat":1,"exp":2}"#,
        r#"{"jti":"j","sub":"u","dev":"d","type":"access","iat":1,"exp":2,"amr":[1]}"#,
        r#"{"jti":"j","sub":"u","dev":"d","type":"access","iat":1,"exp":2,"fam":"\ud800"}"#,
        r#"{"jti":"j","sub":"u","dev":"d","type":"access","iat":1,"exp":2} x"#,
    ] {
        let token = sign_payload(SECRET, payload);
        let mut buffer = PayloadBuffer::new();
        assert_eq!(
            tokens
                .verify_borrowed(&token, TokenType::Access, 0, &mut buffer)
                .err(),
            Some(TokenError::Malformed),
            "{payload}"
        );
        assert_eq!(
            tokens.verify(&token, TokenType::Access, 0),
            Err(TokenError::Malformed),
            "{payload}"
        );
    }
    // Bytes that are not UTF-8, signed.
    let input = format!(
        "{JWT_HEADER_B64}.{}",
        URL_SAFE_NO_PAD.encode(b"{\"jti\":\"\xff\"}")
    );
    let key = hmac::Key::new(hmac::HMAC_SHA256, SECRET.as_bytes());
    let token = format!(
        "{input}.{}",
        URL_SAFE_NO_PAD.encode(hmac::sign(&key, input.as_bytes()))
    );
    let mut buffer = PayloadBuffer::new();
    assert_eq!(
        tokens
            .verify_borrowed(&token, TokenType::Access, 0, &mut buffer)
            .err(),
        Some(TokenError::Malformed)
    );
    assert_eq!(format!("{buffer:?}"), "PayloadBuffer(..)");
}
