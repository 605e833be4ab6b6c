//! Base32 (RFC 4648) and `otpauth://totp/…` URIs, the form authenticator apps read from a
//! QR code (the "Key Uri Format" most of them follow).
//!
//! The codec is the `data-encoding` crate's, which the kit already builds for tungstenite's
//! WebSocket handshake: a hand-written one would be more code to trust for no fewer crates.

use data_encoding::{BASE32_NOPAD, BASE32_NOPAD_NOCASE};
use zeroize::Zeroizing;

use super::{OtpSecret, TotpConfig};
use holdfast_protocol::percent;

/// Longest issuer or account name in a URI, in bytes. Percent-encoded, a URI of that size
/// still fits a QR code an app can scan.
const MAX_LABEL_PART_LEN: usize = 256;

/// Why a text is not base32 as [`base32_decode`] reads it. Holds nothing of the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Base32Error {
    /// A character outside the alphabet (padding and spaces included), an impossible
    /// length, or non-zero bits after the last byte.
    #[error("not unpadded RFC 4648 base32")]
    Invalid,
    /// Longer than the value decoded may be.
    #[error("base32 text is too long")]
    TooLong,
}

/// Why no URI was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UriError {
    /// The issuer is empty, longer than 256 bytes, or contains `:` (which separates it from
    /// the account name in the label, encoded or not).
    #[error("the issuer must be 1 to 256 bytes without ':'")]
    InvalidIssuer,
    /// The account name is empty, longer than 256 bytes, or contains `:` (apps would read
    /// the part before it as the issuer).
    #[error("the account name must be 1 to 256 bytes without ':'")]
    InvalidAccount,
}

/// Base32 of `bytes`: RFC 4648's alphabet, upper-case, without padding.
pub fn base32_encode(bytes: &[u8]) -> String {
    BASE32_NOPAD.encode(bytes)
}

/// Decodes unpadded RFC 4648 base32. Lower-case letters are accepted (people type secrets
/// by hand); padding, spaces and non-canonical trailing bits are refused. Use
/// [`OtpSecret::from_base32`] for a secret: it decodes into a zeroized buffer.
pub fn base32_decode(text: &str) -> Result<Vec<u8>, Base32Error> {
    let mut bytes = Vec::new();
    decode_base32_into(text, usize::MAX, &mut bytes)?;
    Ok(bytes)
}

/// Decodes `text` into `out`, which is sized once so that no reallocation leaves a copy of
/// the bytes behind; refuses a text that would decode to more than `max_len` bytes.
pub(super) fn decode_base32_into(text: &str, max_len: usize, out: &mut Vec<u8>) -> Result<(), Base32Error> {
    // The codec panics beyond this; no real input comes near it.
    if text.len() > usize::MAX / 8 {
        return Err(Base32Error::TooLong);
    }
    let len = BASE32_NOPAD_NOCASE
        .decode_len(text.len())
        .map_err(|_| Base32Error::Invalid)?;
    if len > max_len {
        return Err(Base32Error::TooLong);
    }
    out.clear();
    out.reserve_exact(len);
    out.resize(len, 0);
    let written = BASE32_NOPAD_NOCASE
        .decode_mut(text.as_bytes(), out)
        .map_err(|_| Base32Error::Invalid)?;
    out.truncate(written);
    Ok(())
}

/// The `otpauth://totp/{issuer}:{account}?secret=…&issuer=…&algorithm=…&digits=…&period=…`
/// URI of `secret` under `config`, for a QR code.
///
/// The issuer appears both as the label's prefix and as the `issuer` parameter, as the
/// common apps want. Issuer and account are percent-encoded as UTF-8, keeping only RFC
/// 3986's unreserved characters (a space is `%20`, `@` is `%40`); the `:` between them is
/// literal, so neither may contain one. Every parameter is written even at its default.
/// Some apps ignore `algorithm`, `digits` and `period` and assume SHA-1, 6 digits and 30 s:
/// other settings suit only users whose apps are known to honour them.
///
/// The URI holds the secret, so it comes back in a buffer zeroized on drop.
pub fn totp_uri(
    issuer: &str,
    account: &str,
    secret: &OtpSecret,
    config: &TotpConfig,
) -> Result<Zeroizing<String>, UriError> {
    if !is_label_part(issuer) {
        return Err(UriError::InvalidIssuer);
    }
    if !is_label_part(account) {
        return Err(UriError::InvalidAccount);
    }
    let secret_b32 = secret.to_base32();
    // An upper bound of the length, so the buffer never reallocates (and leaves the secret
    // in freed memory): every name byte may take three characters, the fixed text and the
    // numbers fit in 96.
    let capacity = 96 + 3 * (2 * issuer.len() + account.len()) + secret_b32.len();
    let mut uri = Zeroizing::new(String::with_capacity(capacity));
    uri.push_str("otpauth://totp/");
    percent::encode_into(issuer, &mut uri);
    uri.push(':');
    percent::encode_into(account, &mut uri);
    uri.push_str("?secret=");
    uri.push_str(&secret_b32);
    uri.push_str("&issuer=");
    percent::encode_into(issuer, &mut uri);
    uri.push_str("&algorithm=");
    uri.push_str(config.algorithm.name());
    uri.push_str("&digits=");
    uri.push_str(&config.digits.count().to_string());
    uri.push_str("&period=");
    uri.push_str(&config.period_secs.to_string());
    debug_assert!(uri.len() <= capacity);
    Ok(uri)
}

fn is_label_part(text: &str) -> bool {
    !text.is_empty() && text.len() <= MAX_LABEL_PART_LEN && !text.contains(':')
}

#[cfg(test)]
#[path = "uri_tests.rs"]
mod tests;
