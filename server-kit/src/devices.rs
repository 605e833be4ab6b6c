//! Device challenges and P-256 signature verification (PROTOCOL sections 4 and 6.1).
//!
//! Key parsing, thumbprints and the signature and proof formats live in
//! `holdfast_protocol`; this module adds what only the server does: minting challenges and
//! verifying signatures fast.
//!
//! Verification uses ring rather than the pure-Rust `p256` crate that `holdfast_protocol`
//! uses for point validation: ring's assembly P-256 verifies about five times faster here
//! (see `benches/crypto.rs`), and it runs on every `/device/verify` and every device-proven
//! sync handshake.
//!
//! ring against aws-lc-rs, side by side in the same bench (`p256_p1363_verify`, criterion
//! medians on the 2-core AMD EPYC dev machine): quiet, ring 57.9 µs, aws-lc-rs 51.4 µs
//! with the key parsed per call and 50.6 µs with a `ParsedPublicKey` kept (what a
//! per-thumbprint cache would give); under load from other builds the three were within
//! noise of each other (79-86, 79-80, 75-77 µs). The `p256` crate takes 392 µs, and
//! `openssl speed ecdsap256` about 61 µs under load. The two scalar multiplications of
//! ECDSA verification are nearly all of the time, so no choice here reaches 45 µs, and a
//! parsed-key cache saves about 1 µs. ring stays for now: aws-lc-rs's C build needs cmake
//! under a sanitizer (the `cargo fuzz` builds of `fuzz/`), which the test script does not
//! install yet, for an 11 % gain.

use holdfast_protocol::challenge::format_challenge;
use holdfast_protocol::jwk::PublicJwk;
use holdfast_protocol::proof::ParsedProof;
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};

/// A new challenge: 32 bytes from the system's secure RNG as 64 lowercase hex characters.
///
/// # Panics
/// If the operating system's RNG fails; a guessable challenge would be worse.
pub fn new_challenge() -> String {
    let mut random = [0u8; 32];
    // No input reaches this panic; failure means the OS RNG is broken.
    SystemRandom::new()
        .fill(&mut random)
        .expect("the operating system's random number generator failed");
    format_challenge(&random)
}

/// Whether `signature` (IEEE P1363 `r ‖ s`) is a valid ECDSA P-256 / SHA-256 signature of
/// `message` by `jwk`.
pub fn verify_p1363(jwk: &PublicJwk, message: &[u8], signature: &[u8; 64]) -> bool {
    // `_FIXED` is ring's name for the P1363 encoding; DER was already refused when the
    // signature string was decoded (`holdfast_protocol::signature::decode_signature`).
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, jwk.sec1_uncompressed())
        .verify(message, signature)
        .is_ok()
}

/// Whether `signature` signs `challenge`: the UTF-8 bytes of the 64-character hex string,
/// not the bytes it encodes (Kora's web client signs the string).
pub fn verify_challenge(jwk: &PublicJwk, challenge: &str, signature: &[u8; 64]) -> bool {
    verify_p1363(jwk, challenge.as_bytes(), signature)
}

/// Whether a device proof's signature is valid under the key embedded in its header.
///
/// This is only the signature: the caller still checks `htm`, `htu`, `iat`, `ath`, the
/// replay cache and that the key's thumbprint is the device's (PROTOCOL 6.1).
pub fn verify_proof_signature(proof: &ParsedProof) -> bool {
    verify_p1363(&proof.jwk, proof.signing_input.as_bytes(), &proof.signature)
}

#[cfg(test)]
mod tests {
    use super::*;
    use holdfast_protocol::proof::{ProofClaims, assemble, signing_input};
    use ring::rand::SystemRandom;
    use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};

    fn key_pair() -> (EcdsaKeyPair, PublicJwk) {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
        let jwk = PublicJwk::from_sec1_uncompressed(pair.public_key().as_ref()).unwrap();
        (pair, jwk)
    }

    fn sign(pair: &EcdsaKeyPair, message: &[u8]) -> [u8; 64] {
        pair.sign(&SystemRandom::new(), message)
            .unwrap()
            .as_ref()
            .try_into()
            .unwrap()
    }

    #[test]
    fn challenges_are_well_formed_and_fresh() {
        let a = new_challenge();
        assert!(holdfast_protocol::challenge::is_well_formed(&a), "{a}");
        assert_ne!(a, new_challenge());
    }

    #[test]
    fn challenge_signatures() {
        let (pair, jwk) = key_pair();
        let challenge = new_challenge();
        let signature = sign(&pair, challenge.as_bytes());
        assert!(verify_challenge(&jwk, &challenge, &signature));
        assert!(!verify_challenge(&jwk, &new_challenge(), &signature));
        // The decoded bytes are not what is signed.
        let decoded = hex::decode(&challenge).unwrap();
        assert!(!verify_p1363(&jwk, &decoded, &signature));
        let mut tampered = signature;
        tampered[63] ^= 1;
        assert!(!verify_challenge(&jwk, &challenge, &tampered));
        assert!(!verify_challenge(&jwk, &challenge, &[0u8; 64]));
        let (_, other) = key_pair();
        assert!(!verify_challenge(&other, &challenge, &signature));
    }

    #[test]
    fn proof_signatures() {
        let (pair, jwk) = key_pair();
        let claims = ProofClaims {
            jti: "proof-1".into(),
            htm: "GET".into(),
            htu: "https://sync.example/ws".into(),
            iat: 1_700_000_000,
            ath: holdfast_protocol::proof::access_token_hash("a.b.c"),
            nonce: None,
        };
        let input = signing_input(&jwk, &claims);
        let compact = assemble(&input, &sign(&pair, input.as_bytes()));
        let proof = ParsedProof::parse(&compact).unwrap();
        assert!(verify_proof_signature(&proof));

        let mut forged = proof.clone();
        forged.signing_input.push('x');
        assert!(!verify_proof_signature(&forged));
        let (_, other) = key_pair();
        let swapped = ParsedProof { jwk: other, ..proof };
        assert!(!verify_proof_signature(&swapped));
    }
}
