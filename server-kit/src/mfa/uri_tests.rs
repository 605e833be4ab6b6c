//! Unit tests of `uri.rs`: RFC 4648 vectors and the URIs apps scan.

use std::num::NonZeroU32;

use super::*;
use crate::mfa::{OtpAlgorithm, OtpDigits};

/// RFC 4648 section 10, without the padding.
const RFC4648_BASE32: [(&str, &str); 7] = [
    ("", ""),
    ("f", "MY"),
    ("fo", "MZXQ"),
    ("foo", "MZXW6"),
    ("foob", "MZXW6YQ"),
    ("fooba", "MZXW6YTB"),
    ("foobar", "MZXW6YTBOI"),
];

fn rfc_secret() -> OtpSecret {
    OtpSecret::new(b"12345678901234567890")
}

#[test]
fn base32_matches_rfc4648() {
    for (plain, encoded) in RFC4648_BASE32 {
        assert_eq!(base32_encode(plain.as_bytes()), encoded, "{plain:?}");
        assert_eq!(base32_decode(encoded).unwrap(), plain.as_bytes(), "{encoded:?}");
        let lower = encoded.to_ascii_lowercase();
        assert_eq!(base32_decode(&lower).unwrap(), plain.as_bytes(), "{lower:?}");
    }
}

#[test]
fn base32_round_trips_every_length() {
    let bytes: Vec<u8> = (0..=255).collect();
    for len in 0..=bytes.len() {
        let encoded = base32_encode(&bytes[..len]);
        assert!(!encoded.contains('='), "{encoded}");
        assert_eq!(base32_decode(&encoded).unwrap(), &bytes[..len]);
    }
}

#[test]
fn base32_refuses_what_is_not_canonical_unpadded_base32() {
    for text in [
        "MY======",   // padding
        "MZXW6===",   // padding
        "M",          // no length of 1, 3 or 6 characters decodes
        "MZX",        //
        "MZXW6Y",     //
        "MZ",         // non-zero bits after the last byte
        "MZXW6YTBOJ", //
        "M1",         // 0, 1, 8 and 9 are not in the alphabet
        "M8",         //
        "MZ XQ",      // spaces
        "MZXQ\n",     //
        "MZ-Q",       //
        "MÜ",         // not ASCII
    ] {
        assert_eq!(base32_decode(text), Err(Base32Error::Invalid), "{text:?}");
    }
}

#[test]
fn default_uri() {
    let uri = totp_uri(
        "Example",
        "alice@example.com",
        &rfc_secret(),
        &TotpConfig::default(),
    )
    .unwrap();
    assert_eq!(
        uri.as_str(),
        "otpauth://totp/Example:alice%40example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\
         &issuer=Example&algorithm=SHA1&digits=6&period=30"
    );
}

#[test]
fn uri_carries_the_configuration() {
    let cfg = TotpConfig {
        algorithm: OtpAlgorithm::Sha256,
        digits: OtpDigits::Eight,
        period_secs: NonZeroU32::new(60).unwrap(),
        skew_steps: 3,
    };
    let secret = OtpSecret::new(b"12345678901234567890123456789012");
    let uri = totp_uri("Holdfast", "ada", &secret, &cfg).unwrap();
    assert_eq!(
        uri.as_str(),
        "otpauth://totp/Holdfast:ada?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZA\
         &issuer=Holdfast&algorithm=SHA256&digits=8&period=60"
    );
    let sha512 = TotpConfig {
        algorithm: OtpAlgorithm::Sha512,
        digits: OtpDigits::Seven,
        ..cfg
    };
    let uri = totp_uri("H", "a", &secret, &sha512).unwrap();
    assert!(
        uri.ends_with("&algorithm=SHA512&digits=7&period=60"),
        "{}",
        uri.as_str()
    );
}

#[test]
fn special_characters_are_percent_encoded() {
    let secret = OtpSecret::new(b"foobar");
    let uri = totp_uri(
        "ACME Co & Sons",
        "ada lovelace+mfa@example.com",
        &secret,
        &TotpConfig::default(),
    )
    .unwrap();
    assert_eq!(
        uri.as_str(),
        "otpauth://totp/ACME%20Co%20%26%20Sons:ada%20lovelace%2Bmfa%40example.com?secret=MZXW6YTBOI\
         &issuer=ACME%20Co%20%26%20Sons&algorithm=SHA1&digits=6&period=30"
    );

    let uri = totp_uri("Zürich Bank", "Ō/?#[]%=", &secret, &TotpConfig::default()).unwrap();
    assert!(
        uri.starts_with("otpauth://totp/Z%C3%BCrich%20Bank:%C5%8C%2F%3F%23%5B%5D%25%3D?secret="),
        "{}",
        uri.as_str()
    );
    assert!(uri.contains("&issuer=Z%C3%BCrich%20Bank&"), "{}", uri.as_str());

    // RFC 3986's unreserved characters stay as they are.
    let uri = totp_uri("a-b.c_d~e", "AZaz09-._~", &secret, &TotpConfig::default()).unwrap();
    assert!(
        uri.starts_with("otpauth://totp/a-b.c_d~e:AZaz09-._~?"),
        "{}",
        uri.as_str()
    );
}

#[test]
fn issuer_and_account_are_checked() {
    let secret = rfc_secret();
    let cfg = TotpConfig::default();
    let long = "x".repeat(MAX_LABEL_PART_LEN + 1);
    for issuer in ["", "Evil:Corp", ":", long.as_str()] {
        assert_eq!(
            totp_uri(issuer, "ada", &secret, &cfg).unwrap_err(),
            UriError::InvalidIssuer,
            "{issuer:?}"
        );
    }
    for account in ["", "ada:admin", long.as_str()] {
        assert_eq!(
            totp_uri("Example", account, &secret, &cfg).unwrap_err(),
            UriError::InvalidAccount,
            "{account:?}"
        );
    }
    let longest = "é".repeat(MAX_LABEL_PART_LEN / 2);
    let largest_secret = crate::mfa::new_secret(crate::mfa::MAX_SECRET_LEN).unwrap();
    let uri = totp_uri(&longest, &longest, &largest_secret, &cfg).unwrap();
    assert!(uri.starts_with("otpauth://totp/%C3%A9"));
}
