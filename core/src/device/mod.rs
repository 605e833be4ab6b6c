//! The device identity: a P-256 key that proves "this is the same device" to the server.
//!
//! The key signs two things (PROTOCOL sections 4 and 6.1):
//! - a **challenge** from `/device/challenge`, with [`sign_challenge`], to sign in again
//!   with the device key alone (silent device re-login);
//! - a **device proof** for a request or a sync handshake, with [`device_proof`], which
//!   binds the access token to this key so a stolen token is useless elsewhere.
//!
//! Who holds the key is behind [`DeviceSigner`]: [`SoftwareSigner`] (the default, whose
//! PKCS#8 bytes the vault stores encrypted) or a hardware key the host app supplies
//! (Secure Enclave, StrongBox), which never leaves the chip.
//!
//! Formats (JWK, thumbprint, P1363 signatures, the proof's JWS) come from
//! `holdfast_protocol`; this module only adds what the client does: holding and using a key.

mod software;

pub use software::SoftwareSigner;

use holdfast_protocol::PublicJwk;
use holdfast_protocol::challenge::is_well_formed;
use holdfast_protocol::proof::{ProofClaims, access_token_hash, assemble, htu_of, signing_input};
use holdfast_protocol::signature::encode_signature;
use ring::rand::{SecureRandom, SystemRandom};

/// Why the device key could not be used. Messages never hold key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignerError {
    /// The key exists but cannot be used now (a locked device, a user who cancelled a
    /// biometric prompt): the identity is not lost; try again later.
    #[error("device key unavailable: {message}")]
    KeyUnavailable {
        /// What happened.
        message: String,
    },
    /// The key is unusable: corrupt stored bytes, a wrong curve, or a key that is gone.
    #[error("device key is invalid: {message}")]
    InvalidKey {
        /// What is wrong.
        message: String,
    },
    /// Signing itself failed (e.g. the system's random number generator).
    #[error("device signing failed: {message}")]
    SigningFailed {
        /// What failed.
        message: String,
    },
    /// What was to be signed is malformed (e.g. not a challenge); nothing was signed.
    #[error("refused to sign: {message}")]
    InvalidInput {
        /// What is wrong, safe to show.
        message: String,
    },
}

/// A P-256 key that signs for this device: the software key by default, or a hardware key
/// (Secure Enclave, StrongBox) the host app supplies.
pub trait DeviceSigner: Send + Sync {
    /// The public half, as sent in `devicePublicKey` and embedded in device proofs.
    fn public_jwk(&self) -> Result<PublicJwk, SignerError>;

    /// ECDSA P-256 / SHA-256 over `message`, IEEE P1363 (r‖s, 64 bytes).
    ///
    /// A hardware key that produces DER must convert it: the protocol refuses DER.
    fn sign(&self, message: &[u8]) -> Result<[u8; 64], SignerError>;
}

/// Signs a server challenge for `/device/verify`: the UTF-8 bytes of the 64-character hex
/// string (not the bytes it encodes, as Kora's web client does), as base64url P1363.
///
/// Refuses anything that is not a challenge, so the device key never signs text chosen by
/// someone who can tamper with the challenge answer.
pub fn sign_challenge(signer: &dyn DeviceSigner, challenge: &str) -> Result<String, SignerError> {
    if !is_well_formed(challenge) {
        return Err(SignerError::InvalidInput {
            message: "a challenge is 64 lowercase hex characters".to_owned(),
        });
    }
    let signature = signer.sign(challenge.as_bytes())?;
    Ok(encode_signature(&signature))
}

/// A device proof (PROTOCOL 6.1) for one request: `method` and `url` name it (for a sync
/// handshake, `GET` and the sync URL), `access_token` is the token it accompanies, `nonce`
/// the server's nonce when it demands one, and `now_secs` the (server-corrected) time.
///
/// The method is upper-cased and the URL loses its query and fragment, as verifiers
/// compare them. Each proof has a fresh random `jti`, so none is a replay of another.
pub fn device_proof(
    signer: &dyn DeviceSigner,
    method: &str,
    url: &str,
    access_token: &str,
    nonce: Option<&str>,
    now_secs: i64,
) -> Result<String, SignerError> {
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(SignerError::InvalidInput {
            message: "the HTTP method must be letters only, e.g. GET".to_owned(),
        });
    }
    if url.is_empty() {
        return Err(SignerError::InvalidInput {
            message: "the request URL is empty".to_owned(),
        });
    }
    let jwk = signer.public_jwk()?;
    let claims = ProofClaims {
        jti: random_uuid()?,
        htm: method.to_ascii_uppercase(),
        htu: htu_of(url).to_owned(),
        iat: now_secs,
        // A token request has no access token yet, and its proof no `ath` (PROTOCOL 6.1).
        ath: if access_token.is_empty() {
            String::new()
        } else {
            access_token_hash(access_token)
        },
        nonce: nonce.map(str::to_owned),
    };
    let input = signing_input(&jwk, &claims);
    let signature = signer.sign(input.as_bytes())?;
    Ok(assemble(&input, &signature))
}

/// The RFC 7638 thumbprint of the device key: what the server binds tokens to (`cnf.jkt`).
pub fn thumbprint(signer: &dyn DeviceSigner) -> Result<String, SignerError> {
    Ok(signer.public_jwk()?.thumbprint())
}

/// A random UUID v4 for a proof's `jti`.
///
/// Built from ring's RNG rather than `Uuid::new_v4()`, which panics when the system RNG
/// fails; here that failure is an error the caller sees.
fn random_uuid() -> Result<String, SignerError> {
    let mut bytes = [0u8; 16];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| SignerError::SigningFailed {
            message: "the system's random number generator failed".to_owned(),
        })?;
    Ok(uuid::Builder::from_random_bytes(bytes).into_uuid().to_string())
}

#[cfg(test)]
mod tests;
