//! Device proofs (PROTOCOL 6.1): the full check a verifier makes, and the replay store that
//! makes each proof single-use.
//!
//! [`verify_proof`] runs the cheap checks first (shape, method, URL, time, token hash, key
//! thumbprint), then the signature (ring, about 75 µs on the dev machine), and records the proof's `jti` only
//! once the signature is good, so that nobody without a device key can fill the replay
//! store.

use holdfast_protocol::ErrorCode;
use holdfast_protocol::proof::{PROOF_MAX_SKEW_SECS, ParsedProof, access_token_hash, htu_of};

use crate::devices::verify_proof_signature;
use crate::exchange::ApiError;
use crate::store::{ReplayStore, StoreError};

/// Longest proof accepted, in bytes (a proof is about 600).
pub const MAX_PROOF_LEN: usize = 4096;
/// Longest `jti` accepted, in bytes.
const MAX_JTI_LEN: usize = 128;

/// What a proof must match.
#[derive(Debug, Clone, Copy)]
pub struct ProofCheck<'a> {
    /// The compact proof.
    pub proof: &'a str,
    /// The request's method (`GET` for a sync handshake).
    pub method: &'a str,
    /// The request's URL as the client addressed it; query and fragment are ignored.
    pub url: &'a str,
    /// The access token presented with the proof; empty for a token request (sign-up,
    /// sign-in, refresh, `/device/verify`), whose proof must then carry no `ath`.
    pub access_token: &'a str,
    /// The thumbprint the key must have: the token's `cnf.jkt`, or the device's key.
    pub expected_jkt: &'a str,
    /// The verifier's time, seconds.
    pub now_secs: i64,
}

/// Why a proof was refused. Every variant is `PROOF_INVALID` on the wire; the message says
/// which check failed (none of them is secret).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProofError {
    /// Not a structurally valid proof (JWS shape, `typ`, `alg`, key, claims).
    Malformed,
    /// `htm` is not the request's method.
    Method,
    /// `htu` is not the request's URL.
    Url,
    /// `iat` is more than the window away from the verifier's time.
    Stale,
    /// `ath` is not the hash of the presented access token.
    TokenMismatch,
    /// The key is not the device's.
    KeyMismatch,
    /// The signature does not verify.
    Signature,
    /// This proof was already used.
    Replayed,
}

impl ProofError {
    /// What failed, for the client.
    pub fn message(self) -> &'static str {
        match self {
            ProofError::Malformed => "The device proof is malformed.",
            ProofError::Method => "The device proof is for another method.",
            ProofError::Url => "The device proof is for another URL.",
            ProofError::Stale => "The device proof is too old or dated in the future.",
            ProofError::TokenMismatch => "The device proof is for another access token.",
            ProofError::KeyMismatch => "The device proof is signed by another key.",
            ProofError::Signature => "The device proof signature is invalid.",
            ProofError::Replayed => "The device proof was already used.",
        }
    }
}

impl std::fmt::Display for ProofError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for ProofError {}

impl From<ProofError> for ApiError {
    fn from(error: ProofError) -> ApiError {
        ApiError::new(ErrorCode::ProofInvalid, error.message())
    }
}

/// A proof check's failure: the proof, or the replay store.
#[derive(Debug, thiserror::Error)]
pub enum ProofFailure {
    /// The proof was refused.
    #[error(transparent)]
    Refused(#[from] ProofError),
    /// The replay store failed; the proof is neither accepted nor refused.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Checks `check.proof` completely and records it as used.
pub async fn verify_proof(check: ProofCheck<'_>, replays: &dyn ReplayStore) -> Result<(), ProofFailure> {
    let parsed = check_proof(&check)?;
    let expires = parsed.claims.iat.saturating_add(PROOF_MAX_SKEW_SECS);
    let key = replay_key(check.expected_jkt, &parsed.claims.jti);
    if !replays.first_use(&key, expires, check.now_secs).await? {
        return Err(ProofError::Replayed.into());
    }
    Ok(())
}

/// Every check but the replay store, cheapest first and the signature last.
pub fn check_proof(check: &ProofCheck<'_>) -> Result<ParsedProof, ProofError> {
    if check.proof.len() > MAX_PROOF_LEN {
        return Err(ProofError::Malformed);
    }
    let parsed = ParsedProof::parse(check.proof).map_err(|_| ProofError::Malformed)?;
    let claims = &parsed.claims;
    if claims.jti.is_empty() || claims.jti.len() > MAX_JTI_LEN {
        return Err(ProofError::Malformed);
    }
    if claims.htm != check.method {
        return Err(ProofError::Method);
    }
    if !same_url(&claims.htu, htu_of(check.url)) {
        return Err(ProofError::Url);
    }
    // Overflow-safe: an `iat` near i64::MIN or i64::MAX is refused, never wrapped into
    // the window.
    let skew = claims.iat.checked_sub(check.now_secs).map(i64::unsigned_abs);
    if skew.is_none_or(|skew| skew > PROOF_MAX_SKEW_SECS.unsigned_abs()) {
        return Err(ProofError::Stale);
    }
    // A token request (no access token yet) carries no `ath`; any other request carries
    // the hash of the token it is sent with.
    let token_matches = if check.access_token.is_empty() {
        claims.ath.is_empty()
    } else {
        claims.ath == access_token_hash(check.access_token)
    };
    if !token_matches {
        return Err(ProofError::TokenMismatch);
    }
    if parsed.jwk.thumbprint() != check.expected_jkt {
        return Err(ProofError::KeyMismatch);
    }
    if !verify_proof_signature(&parsed) {
        return Err(ProofError::Signature);
    }
    Ok(parsed)
}

/// Whether a proof's `htu` names `expected`: exactly, or with the WebSocket scheme of the
/// same URL (`ws://` for `http://`, `wss://` for `https://`; PROTOCOL 6.1), since "the
/// sync URL" may be written either way.
fn same_url(htu: &str, expected: &str) -> bool {
    if htu == expected {
        return true;
    }
    let as_http = |url: &str| -> Option<(bool, String)> {
        let (scheme, rest) = url.split_once("://")?;
        let secure = match scheme.to_ascii_lowercase().as_str() {
            "http" | "ws" => false,
            "https" | "wss" => true,
            _ => return None,
        };
        Some((secure, rest.to_owned()))
    };
    matches!((as_http(htu), as_http(expected)), (Some(a), Some(b)) if a == b)
}

/// Replay entries are per key: one device cannot spend another's `jti`.
fn replay_key(jkt: &str, jti: &str) -> String {
    let mut key = String::with_capacity(jkt.len() + 1 + jti.len());
    key.push_str(jkt);
    key.push(':');
    key.push_str(jti);
    key
}
