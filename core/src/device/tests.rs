use super::*;
use holdfast_protocol::proof::ParsedProof;
use holdfast_protocol::signature::decode_signature;
use ring::signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};

const CHALLENGE: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn signer() -> SoftwareSigner {
    SoftwareSigner::generate().unwrap().0
}

fn ring_verifies(jwk: &PublicJwk, message: &[u8], signature: &[u8]) -> bool {
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, jwk.sec1_uncompressed())
        .verify(message, signature)
        .is_ok()
}

#[test]
fn challenge_signature_verifies_as_the_server_checks_it() {
    let signer = signer();
    let jwk = signer.public_jwk().unwrap();
    let encoded = sign_challenge(&signer, CHALLENGE).unwrap();
    assert_eq!(encoded.len(), 86, "base64url without padding of 64 bytes");
    let raw = decode_signature(&encoded).unwrap();
    // The UTF-8 bytes of the hex string are signed, not the bytes it encodes.
    assert!(ring_verifies(&jwk, CHALLENGE.as_bytes(), &raw));
    assert!(holdfast_server_kit::devices::verify_challenge(
        &jwk, CHALLENGE, &raw
    ));
    assert!(!ring_verifies(&jwk, b"another message", &raw));
}

#[test]
fn malformed_challenges_are_not_signed() {
    let signer = signer();
    for bad in [
        "",
        "abc",
        &CHALLENGE.to_uppercase(),
        &CHALLENGE[..63],
        &format!("{CHALLENGE}0"),
    ] {
        assert!(
            matches!(
                sign_challenge(&signer, bad),
                Err(SignerError::InvalidInput { .. })
            ),
            "{bad:?}"
        );
    }
}

#[test]
fn proof_parses_and_verifies_with_the_server_kit() {
    let signer = signer();
    let token = "header.payload.signature";
    let proof = device_proof(
        &signer,
        "get",
        "https://sync.example/sync?room=1#frag",
        token,
        Some("n-1"),
        1_700_000_000,
    )
    .unwrap();
    let parsed = ParsedProof::parse(&proof).unwrap();
    assert!(holdfast_server_kit::devices::verify_proof_signature(&parsed));
    assert!(ring_verifies(
        &parsed.jwk,
        parsed.signing_input.as_bytes(),
        &parsed.signature
    ));
    assert_eq!(parsed.jwk, signer.public_jwk().unwrap());
    assert_eq!(parsed.claims.htm, "GET");
    assert_eq!(parsed.claims.htu, "https://sync.example/sync");
    assert_eq!(parsed.claims.iat, 1_700_000_000);
    assert_eq!(parsed.claims.ath, access_token_hash(token));
    assert_eq!(parsed.claims.nonce.as_deref(), Some("n-1"));
    assert_eq!(parsed.jwk.thumbprint(), thumbprint(&signer).unwrap());
    let jti = uuid::Uuid::parse_str(&parsed.claims.jti).unwrap();
    assert_eq!(jti.get_version_num(), 4);
}

#[test]
fn proofs_never_share_a_jti_and_omit_an_absent_nonce() {
    let signer = signer();
    let make = || {
        let proof = device_proof(&signer, "POST", "https://a.example/x", "t", None, 1).unwrap();
        ParsedProof::parse(&proof).unwrap().claims
    };
    let (first, second) = (make(), make());
    assert_ne!(first.jti, second.jti);
    assert_eq!(first.nonce, None);
}

#[test]
fn a_tampered_proof_does_not_verify() {
    let signer = signer();
    let proof = device_proof(&signer, "GET", "https://a.example/sync", "t", None, 1).unwrap();
    let mut parsed = ParsedProof::parse(&proof).unwrap();
    parsed.signing_input.push('x');
    assert!(!holdfast_server_kit::devices::verify_proof_signature(&parsed));
}

#[test]
fn bad_proof_inputs_are_refused() {
    let signer = signer();
    for (method, url) in [("", "https://a/x"), ("G ET", "https://a/x"), ("GET", "")] {
        assert!(matches!(
            device_proof(&signer, method, url, "t", None, 1),
            Err(SignerError::InvalidInput { .. })
        ));
    }
}

#[test]
fn pkcs8_round_trip_keeps_the_key() {
    let (signer, pkcs8) = SoftwareSigner::generate().unwrap();
    let loaded = SoftwareSigner::from_pkcs8(&pkcs8).unwrap();
    assert_eq!(loaded.public_jwk().unwrap(), signer.public_jwk().unwrap());
    let raw = decode_signature(&sign_challenge(&loaded, CHALLENGE).unwrap()).unwrap();
    assert!(ring_verifies(
        &signer.public_jwk().unwrap(),
        CHALLENGE.as_bytes(),
        &raw
    ));
}

#[test]
fn corrupt_pkcs8_is_an_error_not_a_panic() {
    let (_, pkcs8) = SoftwareSigner::generate().unwrap();
    let mut inputs: Vec<Vec<u8>> = vec![Vec::new(), vec![0u8; 138], b"not a key".to_vec()];
    inputs.push(pkcs8[..pkcs8.len() / 2].to_vec());
    let mut appended = pkcs8.to_vec();
    appended.push(0);
    inputs.push(appended);
    // Flip each byte in turn: every corruption must be refused or, where the byte is not
    // checked, still give a usable key; none may panic.
    for index in 0..pkcs8.len() {
        let mut flipped = pkcs8.to_vec();
        flipped[index] ^= 0x5a;
        inputs.push(flipped);
    }
    let mut refused = 0;
    for input in &inputs {
        match SoftwareSigner::from_pkcs8(input) {
            Err(SignerError::InvalidKey { message }) => {
                assert!(message.contains("cannot be read"), "{message}");
                refused += 1;
            }
            Err(other) => panic!("unexpected error {other:?}"),
            Ok(loaded) => assert!(sign_challenge(&loaded, CHALLENGE).is_ok()),
        }
    }
    assert!(
        refused >= inputs.len() / 2,
        "only {refused} of {} refused",
        inputs.len()
    );
}

#[test]
fn debug_shows_no_key_material() {
    let (signer, pkcs8) = SoftwareSigner::generate().unwrap();
    let debug = format!("{signer:?}");
    assert!(debug.contains(&thumbprint(&signer).unwrap()), "{debug}");
    let jwk = signer.public_jwk().unwrap();
    let hex: String = pkcs8.iter().map(|b| format!("{b:02x}")).collect();
    let b64 = holdfast_protocol::b64::encode(&pkcs8);
    // The private scalar is the 32 bytes after the `04 20` OCTET STRING header.
    let scalar_at = pkcs8.windows(2).position(|w| w == [0x04, 0x20]).unwrap() + 2;
    let scalar = holdfast_protocol::b64::encode(&pkcs8[scalar_at..scalar_at + 32]);
    for secret in [
        &hex[..],
        &b64[..],
        &scalar[..],
        &format!("{:?}", &pkcs8[scalar_at..scalar_at + 8]),
    ] {
        assert!(!debug.contains(secret), "{debug}");
    }
    // Not even the public coordinates: the thumbprint identifies the key well enough.
    assert!(
        !debug.contains(&holdfast_protocol::b64::encode(jwk.x())),
        "{debug}"
    );
}

#[test]
fn a_failing_hardware_signer_surfaces_its_error() {
    struct Locked;
    impl DeviceSigner for Locked {
        fn public_jwk(&self) -> Result<PublicJwk, SignerError> {
            Err(SignerError::KeyUnavailable {
                message: "device locked".into(),
            })
        }
        fn sign(&self, _message: &[u8]) -> Result<[u8; 64], SignerError> {
            Err(SignerError::KeyUnavailable {
                message: "device locked".into(),
            })
        }
    }
    assert!(matches!(
        device_proof(&Locked, "GET", "https://a/x", "t", None, 1),
        Err(SignerError::KeyUnavailable { .. })
    ));
    assert!(matches!(
        sign_challenge(&Locked, CHALLENGE),
        Err(SignerError::KeyUnavailable { .. })
    ));
    assert!(thumbprint(&Locked).is_err());
}
