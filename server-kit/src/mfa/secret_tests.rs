//! Unit tests of `secret.rs`.

use super::*;

#[test]
fn new_secrets_have_the_length_asked_for_and_differ() {
    for len in [MIN_SECRET_LEN, 20, 32, 64, MAX_SECRET_LEN] {
        let first = new_secret(len).unwrap();
        let second = new_secret(len).unwrap();
        assert_eq!(first.len(), len);
        assert_ne!(first.expose(), second.expose(), "{len} random bytes twice");
    }
}

#[test]
fn lengths_outside_the_bounds_are_refused() {
    for len in [0, 1, MIN_SECRET_LEN - 1, MAX_SECRET_LEN + 1, usize::MAX] {
        assert_eq!(new_secret(len).unwrap_err(), SecretError::Length, "{len}");
    }
}

#[test]
fn debug_shows_nothing_of_the_secret() {
    let secret = OtpSecret::new(b"12345678901234567890");
    let shown = format!("{secret:?} {secret:#?}");
    assert!(!shown.contains("1234"), "{shown}");
    assert!(!shown.contains("49, 50"), "{shown}");
    assert!(shown.contains("redacted"), "{shown}");
}

#[test]
fn base32_round_trip() {
    let secret = OtpSecret::new(b"12345678901234567890");
    let text = secret.to_base32();
    assert_eq!(text.as_str(), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
    assert_eq!(text.capacity(), text.len(), "reserved exactly");
    assert_eq!(OtpSecret::from_base32(&text).unwrap().expose(), secret.expose());
    let lower = text.to_ascii_lowercase();
    assert_eq!(OtpSecret::from_base32(&lower).unwrap().expose(), secret.expose());

    let random = new_secret(64).unwrap();
    assert_eq!(
        OtpSecret::from_base32(&random.to_base32()).unwrap().expose(),
        random.expose()
    );
}

#[test]
fn from_base32_refuses_long_or_invalid_text() {
    let longest = OtpSecret::new(vec![0xA5; MAX_SECRET_LEN]).to_base32();
    assert_eq!(OtpSecret::from_base32(&longest).unwrap().len(), MAX_SECRET_LEN);
    let too_long = OtpSecret::new(vec![0xA5; MAX_SECRET_LEN + 1]).to_base32();
    assert_eq!(
        OtpSecret::from_base32(&too_long).unwrap_err(),
        Base32Error::TooLong
    );
    assert_eq!(
        OtpSecret::from_base32(&"A".repeat(1 << 20)).unwrap_err(),
        Base32Error::TooLong
    );
    assert_eq!(
        OtpSecret::from_base32("GEZDGNBV GY3TQOJQ").unwrap_err(),
        Base32Error::Invalid
    );
}
