//! HS256 tokens (PROTOCOL section 3): signing, verification with key rotation, and issuance
//! of access/refresh pairs and device credentials.
//!
//! The header segment is the exact constant [`JWT_HEADER_B64`]: Kora refuses any other
//! spelling of the same JSON, so tokens are assembled by hand rather than with a JWT
//! library. Verification is the server's hottest path (every bearer request and every sync
//! handshake): the header is compared as a string, the signature is decoded into a stack
//! buffer and checked with ring's precomputed HMAC keys before the payload is decoded at
//! all, and [`TokenManager::verify_borrowed`] decodes the payload into a caller's
//! [`PayloadBuffer`] and parses a [`ClaimsRef`] borrowing from it, so a verification that
//! only reads the claims allocates nothing.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use holdfast_protocol::claims::JWT_HEADER_B64;
use holdfast_protocol::{Claims, ClaimsRef};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

use crate::config::ConfigError;

/// Shortest accepted secret, in characters (PROTOCOL section 3).
pub const MIN_SECRET_CHARS: usize = 32;

/// Longest token [`TokenKeys::verify`] looks at. Real tokens are a few hundred bytes; the
/// bound keeps a hostile multi-megabyte "token" from costing a MAC and a base64 pass per key.
const MAX_TOKEN_LEN: usize = 8 * 1024;

/// Length of an HS256 signature segment: base64url of 32 bytes, unpadded.
const SIGNATURE_B64_LEN: usize = 43;

/// Payloads up to this many decoded bytes are decoded into a [`PayloadBuffer`]'s own bytes; realistic ones (with
/// `fam` and `cnf`) are about 270 bytes.
const STACK_PAYLOAD_LEN: usize = 512;

/// Why a token was refused. The messages are safe to send to clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a compact JWT with the exact HS256 header and well-formed claims.
    #[error("token is malformed")]
    Malformed,
    /// The signature does not match any configured secret.
    #[error("token signature is invalid")]
    BadSignature,
    /// Past `exp` plus the leeway.
    #[error("token has expired")]
    Expired,
    /// A valid token of another type (e.g. a refresh token used as an access token).
    #[error("token is of the wrong type")]
    WrongType,
}

/// The HMAC keys derived from the configured secrets: the first signs, all verify.
///
/// Only ring's precomputed keys are kept (not the secret strings), and `Debug` shows how
/// many keys there are, nothing else.
pub struct TokenKeys {
    keys: Vec<hmac::Key>,
}

impl fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenKeys(<{} redacted>)", self.keys.len())
    }
}

impl TokenKeys {
    /// Derives one HMAC-SHA256 key per secret.
    ///
    /// Refuses an empty list ([`ConfigError::NoSecret`]) and any secret shorter than 32
    /// characters ([`ConfigError::SecretTooShort`] with its 1-based position).
    pub fn new<S: AsRef<str>>(secrets: &[S]) -> Result<TokenKeys, ConfigError> {
        if secrets.is_empty() {
            return Err(ConfigError::NoSecret);
        }
        let mut keys = Vec::with_capacity(secrets.len());
        for (index, secret) in secrets.iter().enumerate() {
            let secret = secret.as_ref();
            if secret.chars().count() < MIN_SECRET_CHARS {
                return Err(ConfigError::SecretTooShort(index + 1));
            }
            // Kora keys HMAC with the secret's UTF-8 bytes, so no decoding happens here.
            keys.push(hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes()));
        }
        Ok(TokenKeys { keys })
    }

    /// Signs `claims` with the first secret, giving a compact token.
    pub fn sign(&self, claims: &Claims) -> String {
        let payload = claims.to_json();
        // header + '.' + payload (4/3 of the JSON) + '.' + 43 signature characters.
        let mut token = String::with_capacity(
            JWT_HEADER_B64.len() + 2 + payload.len().div_ceil(3) * 4 + SIGNATURE_B64_LEN,
        );
        token.push_str(JWT_HEADER_B64);
        token.push('.');
        // Appending in place saves the intermediate strings `holdfast_protocol::b64::encode`
        // would allocate; the alphabet (base64url, unpadded) is the same.
        URL_SAFE_NO_PAD.encode_string(payload.as_bytes(), &mut token);
        let tag = hmac::sign(self.signing_key(), token.as_bytes());
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(tag.as_ref(), &mut token);
        token
    }

    /// Checks a token's structure, its exact header and its signature against every secret
    /// (rotation), and returns its claims. No time or type checks: see
    /// [`TokenManager::verify`].
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        // Only with the payload authenticated is it decoded and parsed (once).
        self.verify_signature(token)?.claims()
    }

    /// The first half of [`TokenKeys::verify`]: structure, header and signature, without
    /// decoding the claims. Its tag identifies the authenticated payload, so a caller that
    /// sees the same token often (the sync gate) can keep the parsed claims by tag.
    pub fn verify_signature<'t>(&self, token: &'t str) -> Result<SignedToken<'t>, TokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Malformed);
        }
        // The cheapest refusal first: any header other than the exact bytes (another member
        // order, whitespace, `alg: none`) is refused before any decoding.
        let rest = token
            .strip_prefix(JWT_HEADER_B64)
            .and_then(|rest| rest.strip_prefix('.'))
            .ok_or(TokenError::Malformed)?;
        let (payload_b64, signature_b64) = rest.split_once('.').ok_or(TokenError::Malformed)?;
        if payload_b64.is_empty() || signature_b64.len() != SIGNATURE_B64_LEN {
            return Err(TokenError::Malformed);
        }
        let tag = decode_tag(signature_b64.as_bytes()).ok_or(TokenError::Malformed)?;
        let signing_input = &token.as_bytes()[..JWT_HEADER_B64.len() + 1 + payload_b64.len()];
        // ring::hmac::verify compares in constant time. Trying every key leaks at most which
        // key matched, never anything about a secret.
        if !self
            .keys
            .iter()
            .any(|key| hmac::verify(key, signing_input, &tag).is_ok())
        {
            return Err(TokenError::BadSignature);
        }
        Ok(SignedToken { payload_b64, tag })
    }

    fn signing_key(&self) -> &hmac::Key {
        // `new` refuses an empty list, so there is always a first key.
        &self.keys[0]
    }
}

/// A token whose signature verified (see [`TokenKeys::verify_signature`]).
#[derive(Clone, Copy)]
pub struct SignedToken<'t> {
    payload_b64: &'t str,
    /// The HMAC tag: the same tag under the same keys means the same payload.
    pub tag: [u8; 32],
}

impl SignedToken<'_> {
    /// Decodes and parses the claims, owned.
    pub fn claims(&self) -> Result<Claims, TokenError> {
        let mut buffer = PayloadBuffer::new();
        Ok(self.claims_in(&mut buffer)?.into_owned())
    }

    /// Decodes the payload into `buffer` and parses the claims as a view into it.
    pub fn claims_in<'b>(&self, buffer: &'b mut PayloadBuffer) -> Result<ClaimsRef<'b>, TokenError> {
        let json = buffer.decode(self.payload_b64)?;
        ClaimsRef::from_json(json).ok_or(TokenError::Malformed)
    }
}

impl std::fmt::Debug for SignedToken<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SignedToken(<redacted>)")
    }
}

/// Room for a token's decoded payload, which a [`ClaimsRef`] borrows from (see
/// [`TokenManager::verify_borrowed`]). Realistic payloads fit in its inline bytes; a larger
/// one (many `ext` claims) is decoded into a vector the buffer keeps for its next use.
pub struct PayloadBuffer {
    inline: [u8; STACK_PAYLOAD_LEN],
    spill: Vec<u8>,
}

impl PayloadBuffer {
    /// An empty buffer (no allocation).
    pub fn new() -> PayloadBuffer {
        PayloadBuffer {
            inline: [0; STACK_PAYLOAD_LEN],
            spill: Vec::new(),
        }
    }

    /// Decodes a base64url payload segment, giving its bytes.
    fn decode(&mut self, payload_b64: &str) -> Result<&[u8], TokenError> {
        if base64::decoded_len_estimate(payload_b64.len()) <= STACK_PAYLOAD_LEN {
            let len = URL_SAFE_NO_PAD
                .decode_slice(payload_b64, &mut self.inline)
                .map_err(|_| TokenError::Malformed)?;
            Ok(&self.inline[..len])
        } else {
            self.spill.clear();
            URL_SAFE_NO_PAD
                .decode_vec(payload_b64, &mut self.spill)
                .map_err(|_| TokenError::Malformed)?;
            Ok(&self.spill)
        }
    }
}

impl Default for PayloadBuffer {
    fn default() -> Self {
        PayloadBuffer::new()
    }
}

impl fmt::Debug for PayloadBuffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A payload is not secret, but a buffer's leftovers are nobody's business either.
        f.write_str("PayloadBuffer(..)")
    }
}

/// Decodes a signature segment: base64url of 32 bytes, unpadded, with the unused low bits
/// of its last character zero, so that each tag has exactly one accepted spelling (as the
/// `base64` crate's strict engine decides; the tests compare the two). Hand-written because
/// it runs on every request and the general decoder's set-up cost more than the decoding.
fn decode_tag(b64: &[u8]) -> Option<[u8; 32]> {
    if b64.len() != SIGNATURE_B64_LEN {
        return None;
    }
    let mut tag = [0u8; 32];
    // Ten groups of four characters give 30 bytes.
    for (group, out) in b64[..40].chunks_exact(4).zip(tag[..30].chunks_exact_mut(3)) {
        let mut word = 0u32;
        for &c in group {
            word = word << 6 | sextet(c)?;
        }
        out.copy_from_slice(&word.to_be_bytes()[1..]);
    }
    // The last three characters: 18 bits, 16 of them data.
    let mut word = 0u32;
    for &c in &b64[40..] {
        word = word << 6 | sextet(c)?;
    }
    if word & 0b11 != 0 {
        return None;
    }
    tag[30..].copy_from_slice(&u16::try_from(word >> 2).ok()?.to_be_bytes());
    Some(tag)
}

/// The value of a base64url character.
fn sextet(c: u8) -> Option<u32> {
    let value = match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'-' => 62,
        b'_' => 63,
        _ => return None,
    };
    Some(u32::from(value))
}

/// Generates a token secret: 256 bits from the system's secure RNG, as base64url (43
/// characters).
///
/// # Panics
/// If the operating system's RNG fails; a weaker secret would be worse than no server.
pub fn generate_secret() -> String {
    let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
    // No input reaches this panic; failure means the OS RNG is broken.
    SystemRandom::new()
        .fill(bytes.as_mut())
        .expect("the operating system's random number generator failed");
    holdfast_protocol::b64::encode(bytes.as_ref())
}

mod manager;

pub use manager::{Assurance, ExtraClaims, IssuedPair, TokenManager, TokenPolicy};

#[cfg(test)]
mod tests;

#[cfg(test)]
mod borrowed_tests;
