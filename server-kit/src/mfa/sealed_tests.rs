//! Unit tests of `sealed.rs`: binding to the user, tampering, versions and key rotation.

use super::*;
use crate::mfa::new_secret;

const OLD_KEY: [u8; 32] = [0x11; 32];
const NEW_KEY: [u8; 32] = [0x22; 32];

fn sealer() -> SecretSealer {
    SecretSealer::new(&NEW_KEY, &[]).unwrap()
}

fn secret() -> OtpSecret {
    OtpSecret::new(b"12345678901234567890")
}

#[test]
fn seal_and_open() {
    let sealer = sealer();
    let sealed = sealer.seal(&secret(), "user-1").unwrap();
    assert!(sealed.starts_with("v1."), "{sealed}");
    // 12-byte nonce, 20-byte secret, 16-byte tag: 48 bytes, 64 base64url characters.
    assert_eq!(sealed.len(), 3 + 64);
    assert!(
        !sealed.contains("GEZDGNBV") && !sealed.contains("MTIzNDU2"),
        "{sealed}"
    );
    let opened = sealer.open(&sealed, "user-1").unwrap();
    assert_eq!(opened.secret.expose(), secret().expose());
    assert!(!opened.needs_reseal);

    for len in [16, 64, MAX_SECRET_LEN] {
        let random = new_secret(len).unwrap();
        let sealed = sealer.seal(&random, "u").unwrap();
        assert_eq!(
            sealer.open(&sealed, "u").unwrap().secret.expose(),
            random.expose()
        );
    }
}

#[test]
fn every_seal_takes_a_fresh_nonce() {
    let sealer = sealer();
    let first = sealer.seal(&secret(), "user-1").unwrap();
    let second = sealer.seal(&secret(), "user-1").unwrap();
    assert_ne!(first, second);
    assert_ne!(first[3..19], second[3..19], "nonces differ");
}

#[test]
fn a_sealed_secret_opens_only_for_its_user() {
    let sealer = sealer();
    let sealed = sealer.seal(&secret(), "user-1").unwrap();
    for other in ["user-2", "user-1 ", "User-1", "", "user-10"] {
        assert_eq!(
            sealer.open(&sealed, other).unwrap_err(),
            SealError::Rejected,
            "{other:?}"
        );
    }
}

#[test]
fn any_altered_byte_is_detected() {
    let sealer = sealer();
    let sealed = sealer.seal(&secret(), "user-1").unwrap();
    let bytes = holdfast_protocol::b64::decode(&sealed[3..]).unwrap();
    for index in 0..bytes.len() {
        for flip in [0x01, 0x80] {
            let mut altered = bytes.clone();
            altered[index] ^= flip;
            let text = format!("v1.{}", holdfast_protocol::b64::encode(&altered));
            assert_eq!(
                sealer.open(&text, "user-1").unwrap_err(),
                SealError::Rejected,
                "byte {index}"
            );
        }
    }
    // Cut short or extended.
    for altered in [&bytes[..bytes.len() - 1], &bytes[1..]] {
        let text = format!("v1.{}", holdfast_protocol::b64::encode(altered));
        assert_eq!(sealer.open(&text, "user-1").unwrap_err(), SealError::Rejected);
    }
    let mut longer = bytes.clone();
    longer.push(0);
    let text = format!("v1.{}", holdfast_protocol::b64::encode(&longer));
    assert_eq!(sealer.open(&text, "user-1").unwrap_err(), SealError::Rejected);
}

#[test]
fn unknown_versions_and_malformed_values_are_refused() {
    let sealer = sealer();
    let sealed = sealer.seal(&secret(), "user-1").unwrap();
    let payload = &sealed[3..];
    for version in ["v2", "v0", "v10"] {
        let text = format!("{version}.{payload}");
        assert_eq!(
            sealer.open(&text, "user-1").unwrap_err(),
            SealError::UnknownVersion,
            "{text}"
        );
    }
    let short = holdfast_protocol::b64::encode(&[0u8; NONCE_LEN + TAG_LEN - 1]);
    let oversized = format!("v1.{}", "A".repeat(MAX_SEALED_LEN));
    for text in [
        String::new(),
        payload.to_owned(),
        format!("V1.{payload}"),
        format!("v.{payload}"),
        format!("vx.{payload}"),
        format!("v1{payload}"),
        format!("v1.{payload}="),
        format!("v1.{payload}.x"),
        format!("v1.{}+", &payload[1..]),
        "v1.".to_owned(),
        format!("v1.{short}"),
        oversized,
    ] {
        assert_eq!(
            sealer.open(&text, "user-1").unwrap_err(),
            SealError::Malformed,
            "{text:?}"
        );
    }
}

#[test]
fn rotation_opens_with_previous_keys_and_asks_for_a_reseal() {
    let old = SecretSealer::new(&OLD_KEY, &[]).unwrap();
    let sealed_old = old.seal(&secret(), "user-1").unwrap();

    let rotated = SecretSealer::new(&NEW_KEY, &[&OLD_KEY]).unwrap();
    let opened = rotated.open(&sealed_old, "user-1").unwrap();
    assert_eq!(opened.secret.expose(), secret().expose());
    assert!(opened.needs_reseal);
    // Still bound to the user under the old key.
    assert_eq!(
        rotated.open(&sealed_old, "user-2").unwrap_err(),
        SealError::Rejected
    );

    let resealed = rotated.seal(&opened.secret, "user-1").unwrap();
    let reopened = rotated.open(&resealed, "user-1").unwrap();
    assert!(!reopened.needs_reseal);
    // The new value needs the new key: the old sealer cannot open it.
    assert_eq!(old.open(&resealed, "user-1").unwrap_err(), SealError::Rejected);

    // Once the old key is retired, values not resealed no longer open.
    assert_eq!(
        sealer().open(&sealed_old, "user-1").unwrap_err(),
        SealError::Rejected
    );
    assert!(sealer().open(&resealed, "user-1").is_ok());
}

#[test]
fn key_material_must_be_long_enough() {
    assert_eq!(
        SecretSealer::new(&[0u8; 31], &[]).unwrap_err(),
        SealError::KeyTooShort(1)
    );
    assert_eq!(
        SecretSealer::new(&NEW_KEY, &[&OLD_KEY, &[0u8; 8]]).unwrap_err(),
        SealError::KeyTooShort(3)
    );
    assert!(SecretSealer::new(&[0u8; 64], &[&[1u8; 32]]).is_ok());
}

#[test]
fn a_longer_key_material_is_another_key() {
    // HKDF over the whole material: appending bytes changes the key.
    let longer: Vec<u8> = NEW_KEY.iter().copied().chain([0]).collect();
    let sealed = sealer().seal(&secret(), "user-1").unwrap();
    let other = SecretSealer::new(&longer, &[]).unwrap();
    assert_eq!(other.open(&sealed, "user-1").unwrap_err(), SealError::Rejected);
}

#[test]
fn oversized_secrets_are_not_sealed() {
    let huge = OtpSecret::new(vec![7u8; MAX_SECRET_LEN + 1]);
    assert_eq!(
        sealer().seal(&huge, "user-1").unwrap_err(),
        SealError::SecretTooLong
    );
}

#[test]
fn nothing_secret_is_shown() {
    let rotated = SecretSealer::new(&NEW_KEY, &[&OLD_KEY]).unwrap();
    assert_eq!(format!("{rotated:?}"), "SecretSealer(<2 keys redacted>)");
    let sealed = rotated.seal(&secret(), "user-1").unwrap();
    let opened = rotated.open(&sealed, "user-1").unwrap();
    let shown = format!("{opened:?}");
    assert!(!shown.contains("1234") && shown.contains("redacted"), "{shown}");

    let errors = [
        SealError::KeyTooShort(1),
        SealError::Malformed,
        SealError::UnknownVersion,
        SealError::Rejected,
        SealError::SecretTooLong,
        SealError::Random,
    ];
    for error in errors {
        let text = format!("{error} {error:?}");
        assert!(!text.contains("1234") && !text.contains(&sealed[3..13]), "{text}");
    }
}
