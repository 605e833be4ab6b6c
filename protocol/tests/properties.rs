//! Property tests of the protocol's parsers and encoders: what one side writes, the other
//! reads back unchanged, and what the parsers accept is stable under a second pass. The
//! coverage-guided fuzz targets (fuzz/) look for crashes; these look for wrong answers.

use holdfast_protocol::challenge::{format_challenge, is_well_formed};
use holdfast_protocol::signature::{SIGNATURE_LEN, decode_signature, encode_signature};
use holdfast_protocol::validate::{MAX_NAME_LEN, normalize_email, sanitize_name};
use holdfast_protocol::{Claims, Cnf, ErrorCode, PublicJwk, TokenType, b64};
use p256::elliptic_curve::sec1::ToSec1Point;
use proptest::prelude::*;

fn token_type() -> impl Strategy<Value = TokenType> {
    prop_oneof![
        Just(TokenType::Access),
        Just(TokenType::Refresh),
        Just(TokenType::DeviceCredential)
    ]
}

fn claims() -> impl Strategy<Value = Claims> {
    (
        ("\\PC{0,40}", "\\PC{0,40}", "\\PC{0,40}"),
        token_type(),
        (any::<i64>(), any::<i64>()),
        (
            proptest::option::of("[A-Za-z0-9_-]{43}"),
            proptest::option::of(any::<i64>()),
            proptest::option::of("\\PC{0,40}"),
            proptest::option::of("[A-Za-z0-9_-]{43}"),
        ),
    )
        .prop_map(
            |((jti, sub, dev), token_type, (iat, exp), (dpk, must_checkin_by, fam, jkt))| Claims {
                jti,
                sub,
                dev,
                token_type,
                iat,
                exp,
                dpk,
                must_checkin_by,
                fam,
                cnf: jkt.map(|jkt| Cnf { jkt }),
                aal: None,
                amr: None,
                auth_time: None,
                mfa: None,
                ext: None,
            },
        )
}

proptest! {
    #[test]
    fn base64url_round_trips_in_every_accepted_form(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let text = b64::encode(&bytes);
        prop_assert!(!text.contains(['=', '+', '/']));
        prop_assert_eq!(b64::decode(&text).unwrap(), bytes.clone());
        prop_assert_eq!(b64::decode_lenient(&text).unwrap(), bytes.clone());
        // The standard, padded alphabet of the same bytes reads the same.
        use base64::Engine as _;
        let standard = base64::engine::general_purpose::STANDARD.encode(&bytes);
        prop_assert_eq!(b64::decode_lenient(&standard).unwrap(), bytes);
    }

    #[test]
    fn every_p1363_signature_round_trips(bytes in proptest::array::uniform32(any::<u8>()), tail in proptest::array::uniform32(any::<u8>()), der_prefix in any::<bool>()) {
        let mut signature = [0u8; SIGNATURE_LEN];
        signature[..32].copy_from_slice(&bytes);
        signature[32..].copy_from_slice(&tail);
        if der_prefix {
            // The one-in-2^24 signature that starts like a 64-byte DER sequence.
            signature[..3].copy_from_slice(&[0x30, 0x3e, 0x02]);
        }
        prop_assert_eq!(decode_signature(&encode_signature(&signature)).unwrap(), signature);
    }

    #[test]
    fn challenges_are_always_well_formed(random in proptest::array::uniform32(any::<u8>())) {
        let challenge = format_challenge(&random);
        prop_assert!(is_well_formed(&challenge));
        prop_assert!(!is_well_formed(&challenge.to_uppercase()) || !challenge.contains(|c: char| c.is_ascii_alphabetic()));
    }

    #[test]
    fn claims_round_trip_through_the_payload(claims in claims()) {
        let segment = b64::encode(claims.to_json().as_bytes());
        prop_assert_eq!(Claims::from_payload_segment(&segment).unwrap(), claims);
    }

    #[test]
    fn any_valid_key_round_trips_and_keeps_its_thumbprint(scalar in proptest::array::uniform32(any::<u8>())) {
        let Ok(secret) = p256::SecretKey::from_bytes(&scalar.into()) else {
            // Zero or not below the group order: not a key.
            return Ok(());
        };
        let point = secret.public_key().to_sec1_point(false);
        let jwk = PublicJwk::from_sec1_uncompressed(point.as_bytes()).unwrap();
        let parsed = PublicJwk::parse(&jwk.to_wire_string()).unwrap();
        prop_assert_eq!(parsed.thumbprint(), jwk.thumbprint());
        prop_assert_eq!(parsed.sec1_uncompressed(), jwk.sec1_uncompressed());
        prop_assert_eq!(jwk.thumbprint().len(), 43);
    }

    #[test]
    fn accepted_emails_are_already_normal(email in "\\PC{1,40}@\\PC{1,20}\\.[a-zA-Z\\PC]{1,10}") {
        if let Ok(normal) = normalize_email(&email) {
            prop_assert_eq!(normalize_email(&normal), Ok(normal.clone()));
        }
    }

    #[test]
    fn sanitized_names_are_clean_bounded_and_stable(name in "\\PC{0,300}|[\\x00-\\x1f a-z]{0,300}") {
        let clean = sanitize_name(&name);
        prop_assert!(!clean.chars().any(char::is_control));
        prop_assert!(clean.encode_utf16().count() <= MAX_NAME_LEN);
        prop_assert_eq!(clean.trim(), clean.as_str());
        prop_assert_eq!(sanitize_name(&clean), clean);
    }

    #[test]
    fn error_codes_parse_only_their_own_spelling(text in "[A-Z_]{0,30}") {
        match ErrorCode::parse(&text) {
            Some(code) => prop_assert_eq!(code.as_str(), text.as_str()),
            None => prop_assert!(ErrorCode::ALL.iter().all(|code| code.as_str() != text)),
        }
    }
}
