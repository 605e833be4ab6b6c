//! The server kit reproduces the golden values the real Kora code produced
//! (`conformance/kora-vectors.json`, the repository's copy of the project's shared file, read
//! at test time so the file stays the one source of truth).

use holdfast_protocol::claims::JWT_HEADER_B64;
use holdfast_protocol::signature::{SignatureFormatError, decode_signature};
use holdfast_protocol::{Claims, PublicJwk, TokenType};
use holdfast_server_kit::devices::{verify_challenge, verify_p1363};
use holdfast_server_kit::passwords::{PasswordCheck, PasswordHasher, hash_pbkdf2_kora, verify_pbkdf2_kora};
use holdfast_server_kit::store::StoredPassword;
use holdfast_server_kit::tokens::{TokenError, TokenKeys, TokenManager, TokenPolicy};
use serde_json::Value;

fn vectors() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../conformance/kora-vectors.json");
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("the Kora conformance vectors must be at {path}: {e}"));
    serde_json::from_str(&text).expect("kora-vectors.json is JSON")
}

fn str_at<'a>(value: &'a Value, pointer: &str) -> &'a str {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("kora-vectors.json has no string at {pointer}"))
}

fn keys(v: &Value) -> TokenKeys {
    TokenKeys::new(&[str_at(v, "/jwt/secret")]).unwrap()
}

/// A manager whose clock-free checks accept the vectors at their `iat`.
fn manager(v: &Value) -> TokenManager {
    let policy = TokenPolicy {
        access_ttl_secs: 900,
        refresh_ttl_secs: 7_776_000,
        device_credential_ttl_secs: 7_776_000,
        leeway_secs: 5,
    };
    TokenManager::new(keys(v), policy)
}

#[test]
fn header_constant_matches_kora() {
    let v = vectors();
    assert_eq!(str_at(&v, "/jwt/encodedHeader"), JWT_HEADER_B64);
}

#[test]
fn tokens_are_byte_identical_to_kora() {
    let v = vectors();
    let keys = keys(&v);
    for (name, token_type) in [
        ("access", TokenType::Access),
        ("deviceCredential", TokenType::DeviceCredential),
    ] {
        let payload = v.pointer(&format!("/jwt/{name}/payload")).unwrap().clone();
        let claims: Claims = serde_json::from_value(payload).unwrap();
        assert_eq!(claims.token_type, token_type);
        let expected = str_at(&v, &format!("/jwt/{name}/token"));
        assert_eq!(keys.sign(&claims), expected, "{name}");
        assert_eq!(keys.verify(expected).unwrap(), claims, "{name}");
        let now = claims.iat;
        assert_eq!(
            manager(&v).verify(expected, token_type, now).unwrap(),
            claims,
            "{name}"
        );
    }
}

#[test]
fn kora_device_credential_has_the_protocol_shape() {
    let v = vectors();
    let claims = keys(&v)
        .verify(str_at(&v, "/jwt/deviceCredential/token"))
        .unwrap();
    assert_eq!(claims.dpk.as_deref(), Some("THUMBPRINT"));
    assert_eq!(claims.must_checkin_by, Some(claims.exp));
}

#[test]
fn kora_access_token_expiry_with_leeway() {
    let v = vectors();
    let token = str_at(&v, "/jwt/access/token");
    let exp = v
        .pointer("/jwt/access/payload/exp")
        .and_then(Value::as_i64)
        .unwrap();
    let tokens = manager(&v);
    assert!(tokens.verify(token, TokenType::Access, exp + 5).is_ok());
    assert_eq!(
        tokens.verify(token, TokenType::Access, exp + 6),
        Err(TokenError::Expired)
    );
    assert_eq!(
        tokens.verify(token, TokenType::Refresh, exp),
        Err(TokenError::WrongType)
    );
}

#[test]
fn header_with_other_member_order_or_space_is_rejected() {
    let v = vectors();
    assert_eq!(
        v.pointer("/jwt/headerWithSpaceRejected"),
        Some(&Value::Bool(true))
    );
    let secret = str_at(&v, "/jwt/secret");
    let token = str_at(&v, "/jwt/access/token");
    let payload = token.split('.').nth(1).unwrap();
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    for header in [
        r#"{"typ":"JWT","alg":"HS256"}"#,
        r#"{"alg": "HS256","typ": "JWT"}"#,
        r#"{ "alg":"HS256","typ":"JWT" }"#,
    ] {
        // Correctly signed with the right secret: only the header is wrong.
        let input = format!("{}.{payload}", holdfast_protocol::b64::encode(header.as_bytes()));
        let tag = ring::hmac::sign(&key, input.as_bytes());
        let forged = format!("{input}.{}", holdfast_protocol::b64::encode(tag.as_ref()));
        assert_eq!(keys(&v).verify(&forged), Err(TokenError::Malformed), "{header}");
    }
}

#[test]
fn thumbprint_from_wire_string_and_rfc7638_input() {
    let v = vectors();
    let expected = str_at(&v, "/device/thumbprint");
    let jwk = PublicJwk::parse(str_at(&v, "/device/devicePublicKeyWireString")).unwrap();
    assert_eq!(jwk.thumbprint(), expected);
    let input = str_at(&v, "/device/rfc7638Input");
    assert_eq!(jwk.thumbprint_input(), input);
    let digest = ring::digest::digest(&ring::digest::SHA256, input.as_bytes());
    assert_eq!(holdfast_protocol::b64::encode(digest.as_ref()), expected);
    // The JWK object form gives the same key.
    let object = v.pointer("/device/publicJwk").and_then(Value::as_object).unwrap();
    assert_eq!(PublicJwk::from_object(object).unwrap(), jwk);
}

#[test]
fn kora_challenge_signature_verifies() {
    let v = vectors();
    let jwk = PublicJwk::parse(str_at(&v, "/device/devicePublicKeyWireString")).unwrap();
    let challenge = str_at(&v, "/device/challenge");
    let signature = decode_signature(str_at(&v, "/device/signatureP1363B64u")).unwrap();
    assert!(verify_challenge(&jwk, challenge, &signature));

    let mut tampered = challenge.to_owned().into_bytes();
    tampered[0] = if tampered[0] == b'a' { b'b' } else { b'a' };
    assert!(!verify_challenge(
        &jwk,
        std::str::from_utf8(&tampered).unwrap(),
        &signature
    ));
    assert!(
        !verify_p1363(&jwk, &hex::decode(challenge).unwrap(), &signature),
        "hex string, not bytes"
    );

    let der = holdfast_protocol::b64::encode(&p1363_to_der(&signature));
    assert_eq!(decode_signature(&der), Err(SignatureFormatError::Der));
}

/// The same signature as ASN.1 DER: `SEQUENCE { INTEGER r, INTEGER s }`, minimal encoding.
fn p1363_to_der(signature: &[u8; 64]) -> Vec<u8> {
    fn integer(bytes: &[u8]) -> Vec<u8> {
        let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len() - 1);
        let mut value = bytes[start..].to_vec();
        if value[0] & 0x80 != 0 {
            value.insert(0, 0);
        }
        let mut out = vec![0x02, u8::try_from(value.len()).unwrap()];
        out.extend(value);
        out
    }
    let mut body = integer(&signature[..32]);
    body.extend(integer(&signature[32..]));
    let mut der = vec![0x30, u8::try_from(body.len()).unwrap()];
    der.extend(body);
    der
}

#[tokio::test]
async fn kora_password_hash_reproduces_and_verifies() {
    let v = vectors();
    assert_eq!(
        v.pointer("/passwordHash/iterations").and_then(Value::as_u64),
        Some(600_000)
    );
    assert_eq!(
        v.pointer("/passwordHash/keyLen").and_then(Value::as_u64),
        Some(64)
    );
    let password = str_at(&v, "/passwordHash/password");
    let salt_hex = str_at(&v, "/passwordHash/saltHex");
    let hash_hex = str_at(&v, "/passwordHash/hashHex");

    let stored = hash_pbkdf2_kora(password, &hex::decode(salt_hex).unwrap());
    assert_eq!(
        stored,
        StoredPassword {
            hash: hash_hex.to_owned(),
            salt: salt_hex.to_owned()
        }
    );
    assert!(verify_pbkdf2_kora(password, &stored));
    assert!(!verify_pbkdf2_kora("correct horse battery!", &stored));

    // Through the hasher, as sign-in uses it: a match that asks to move to Argon2id.
    let hasher = PasswordHasher::new(1, Default::default());
    let check = hasher.verify(password, Some(&stored)).await.unwrap();
    assert_eq!(
        check,
        PasswordCheck {
            matches: true,
            needs_rehash: true
        }
    );
}
