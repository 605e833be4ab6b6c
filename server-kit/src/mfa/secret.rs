//! The shared secret of an authenticator: random bytes the server and the app both hold.
//!
//! [`OtpSecret`] keeps them in a buffer zeroized on drop and never prints them; the base32
//! text shown to the user at enrolment is zeroized too. What the server stores is the
//! sealed form ([`super::SecretSealer`]), never these bytes.

use std::fmt;

use data_encoding::BASE32_NOPAD;
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

use super::uri::{Base32Error, decode_base32_into};

/// Shortest secret [`new_secret`] makes: 128 bits, RFC 4226's minimum.
pub const MIN_SECRET_LEN: usize = 16;
/// Longest secret [`new_secret`] makes or [`OtpSecret::from_base32`] reads: 128 bytes,
/// SHA-512's block size (a longer HMAC key is hashed down anyway).
pub const MAX_SECRET_LEN: usize = 128;

/// Why no secret was made. The messages hold no secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// The requested length is outside [`MIN_SECRET_LEN`] to [`MAX_SECRET_LEN`].
    #[error("an OTP secret is 16 to 128 bytes long")]
    Length,
    /// The operating system's random number generator failed.
    #[error("the operating system's random number generator failed")]
    Random,
}

/// The secret an HOTP or TOTP code is computed from.
///
/// Zeroized when dropped; `Debug` shows nothing of it; not `Clone`, so copies are explicit.
pub struct OtpSecret(Zeroizing<Vec<u8>>);

impl OtpSecret {
    /// Wraps secret bytes, of any length (the RFC test seeds, a migrated secret). Pass an
    /// owned buffer where you can: a borrowed one is copied and the original left as it is.
    pub fn new(bytes: impl Into<Vec<u8>>) -> OtpSecret {
        OtpSecret(Zeroizing::new(bytes.into()))
    }

    pub(super) fn from_zeroizing(bytes: Zeroizing<Vec<u8>>) -> OtpSecret {
        OtpSecret(bytes)
    }

    /// The secret bytes, to compute a code or seal them.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the secret is empty (no real one is).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The secret as authenticator apps take it typed in: base32, upper-case, unpadded.
    pub fn to_base32(&self) -> Zeroizing<String> {
        // Reserved exactly, so the encoder never reallocates and leaves a copy behind.
        let mut text = Zeroizing::new(String::with_capacity(BASE32_NOPAD.encode_len(self.len())));
        BASE32_NOPAD.encode_append(&self.0, &mut text);
        text
    }

    /// Reads a base32 secret (as [`super::base32_decode`] does) of at most
    /// [`MAX_SECRET_LEN`] bytes, into a zeroized buffer.
    pub fn from_base32(text: &str) -> Result<OtpSecret, Base32Error> {
        let mut bytes = Zeroizing::new(Vec::new());
        decode_base32_into(text, MAX_SECRET_LEN, &mut bytes)?;
        Ok(OtpSecret(bytes))
    }
}

impl fmt::Debug for OtpSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OtpSecret(<redacted>)")
    }
}

/// A new secret of `len` random bytes from the system's secure RNG.
///
/// Use [`super::OtpAlgorithm::secret_len`] for the algorithm's size: 20 bytes for SHA-1, 32
/// for SHA-256, 64 for SHA-512. Lengths outside [`MIN_SECRET_LEN`] to [`MAX_SECRET_LEN`]
/// are refused.
pub fn new_secret(len: usize) -> Result<OtpSecret, SecretError> {
    if !(MIN_SECRET_LEN..=MAX_SECRET_LEN).contains(&len) {
        return Err(SecretError::Length);
    }
    let mut bytes = Zeroizing::new(vec![0u8; len]);
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| SecretError::Random)?;
    Ok(OtpSecret(bytes))
}

#[cfg(test)]
#[path = "secret_tests.rs"]
mod tests;
