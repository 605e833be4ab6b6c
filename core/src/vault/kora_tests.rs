use base64::engine::general_purpose::URL_SAFE;

use super::*;
use crate::vault::{Vault, derive_passphrase_key};

/// The Kora conformance vectors (the repository's `conformance/kora-vectors.json`), read at
/// test time so the tests follow the file.
fn vectors() -> serde_json::Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../conformance/kora-vectors.json");
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|err| panic!("the Kora conformance vectors are missing at {path}: {err}"));
    serde_json::from_str(&text).unwrap_or_else(|err| panic!("{path} is not JSON: {err}"))
}

fn field<'a>(vectors: &'a serde_json::Value, section: &str, name: &str) -> &'a str {
    vectors[section][name]
        .as_str()
        .unwrap_or_else(|| panic!("{section}.{name} is missing from the vectors"))
}

fn key_from_hex(hex_key: &str) -> VaultKey {
    VaultKey::from_bytes(&hex::decode(hex_key).unwrap()).unwrap()
}

#[test]
fn passphrase_key_matches_kora_key_derivation() {
    let vectors = vectors();
    assert_eq!(vectors["keyDerivation"]["iterations"], 600_000);
    assert_eq!(vectors["keyDerivation"]["hash"], "SHA-256");
    let salt = hex::decode(field(&vectors, "keyDerivation", "saltHex")).unwrap();
    let key = derive_passphrase_key(field(&vectors, "keyDerivation", "passphrase"), &salt);
    assert_eq!(
        hex::encode(key.as_bytes()),
        field(&vectors, "keyDerivation", "rawKeyHex")
    );
}

#[test]
fn encrypted_token_store_value_is_reproduced_and_decrypted() {
    let vectors = vectors();
    let key = key_from_hex(field(&vectors, "encryptedTokenStore", "rawKeyHex"));
    let iv: [u8; 12] = hex::decode(field(&vectors, "encryptedTokenStore", "ivHex"))
        .unwrap()
        .try_into()
        .unwrap();
    let plaintext = field(&vectors, "encryptedTokenStore", "plaintext");
    let stored_value = field(&vectors, "encryptedTokenStore", "storedValue");

    assert_eq!(
        encrypt_with_iv(&key, &iv, plaintext.as_bytes()).unwrap(),
        stored_value
    );
    assert_eq!(
        decrypt(&key, stored_value).unwrap().as_slice(),
        plaintext.as_bytes()
    );
    let stored: serde_json::Value = serde_json::from_str(stored_value).unwrap();
    let data = URL_SAFE_NO_PAD.decode(stored["data"].as_str().unwrap()).unwrap();
    assert_eq!(
        serde_json::json!(data.len()),
        vectors["encryptedTokenStore"]["ciphertextPlusTagBytes"]
    );
}

#[test]
fn an_imported_kora_session_can_be_resealed_into_the_vault() {
    let vectors = vectors();
    let key = key_from_hex(field(&vectors, "encryptedTokenStore", "rawKeyHex"));
    let plaintext = decrypt(&key, field(&vectors, "encryptedTokenStore", "storedValue")).unwrap();
    let vault = Vault::new(VaultKey::generate().unwrap());
    let blob = vault
        .seal("https://auth.example.com|alice", "session", &plaintext)
        .unwrap();
    assert_eq!(
        vault
            .open("https://auth.example.com|alice", "session", &blob)
            .unwrap(),
        plaintext
    );
}

#[test]
fn padded_base64url_is_accepted() {
    let key = VaultKey::from_bytes(&[3; 32]).unwrap();
    // 17 bytes of ciphertext and tag: padded base64url ends in '='.
    let stored = encrypt_with_iv(&key, &[4; 12], b"x").unwrap();
    let value: serde_json::Value = serde_json::from_str(&stored).unwrap();
    let data = URL_SAFE_NO_PAD.decode(value["data"].as_str().unwrap()).unwrap();
    let padded = format!(
        r#"{{"iv":"{}","data":"{}"}}"#,
        value["iv"].as_str().unwrap(),
        URL_SAFE.encode(data)
    );
    assert!(padded.ends_with("=\"}"), "{padded}");
    assert_eq!(decrypt(&key, &padded).unwrap().as_slice(), b"x");
}

#[test]
fn bad_values_are_refused_without_panicking() {
    let key = VaultKey::from_bytes(&[3; 32]).unwrap();
    let good = encrypt_with_iv(&key, &[4; 12], b"{\"accessToken\":\"a.b.c\"}").unwrap();
    let malformed = |reason| Err(VaultError::Malformed { reason });
    assert_eq!(
        decrypt(&key, ""),
        malformed("expected JSON {\"iv\": ..., \"data\": ...}")
    );
    assert_eq!(
        decrypt(&key, "[]"),
        malformed("expected JSON {\"iv\": ..., \"data\": ...}")
    );
    assert_eq!(
        decrypt(&key, r#"{"iv":"RERE"}"#),
        malformed("expected JSON {\"iv\": ..., \"data\": ...}")
    );
    assert_eq!(
        decrypt(&key, r#"{"iv":"*","data":""}"#),
        malformed("the iv is not base64url")
    );
    assert_eq!(
        decrypt(&key, r#"{"iv":"RERE","data":""}"#),
        malformed("the iv is not 12 bytes")
    );
    assert_eq!(
        decrypt(&key, r#"{"iv":"RERERERERERERERE","data":"*"}"#),
        malformed("the data is not base64url")
    );
    assert_eq!(
        decrypt(&key, r#"{"iv":"RERERERERERERERE","data":"AAAA"}"#),
        Err(VaultError::Truncated)
    );
    let other_key = VaultKey::from_bytes(&[5; 32]).unwrap();
    assert_eq!(decrypt(&other_key, &good), Err(VaultError::Tampered));
    // Every prefix of a real value, and deeply nested JSON, are refused, never a panic.
    for len in 0..good.len() {
        assert!(decrypt(&key, &good[..len]).is_err());
    }
    assert!(decrypt(&key, &"[".repeat(100_000)).is_err());
}
