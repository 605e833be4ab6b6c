//! HOTP (RFC 4226) and TOTP (RFC 6238), computed as authenticator apps compute them.
//!
//! A TOTP code is the HOTP code of the current time step, `floor(unix_secs / period)`.
//! [`verify_totp`] is what a route calls: it accepts the steps within
//! [`TotpConfig::skew_steps`] of now, compares in constant time, and refuses any step at or
//! before the last one accepted for the user, so a code is accepted at most once
//! (PROTOCOL 9). The caller stores the returned step and must advance it atomically (a
//! compare-and-set), or two concurrent requests could both accept the same code.
//!
//! The HMACs are ring's, which the kit already uses for tokens and key derivation: HOTP
//! needs nothing else, so no OTP crate is added.

use std::num::NonZeroU32;

use ring::hmac;
use subtle::{Choice, ConditionallySelectable, ConstantTimeEq};

use super::OtpSecret;

/// The HMAC a code is computed with.
///
/// SHA-1 is the default and the only one every authenticator app honours. HMAC-SHA1 is
/// still sound here: HOTP relies on HMAC being a pseudo-random function, not on SHA-1's
/// collision resistance (RFC 4226 appendix A).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum OtpAlgorithm {
    /// HMAC-SHA1.
    #[default]
    Sha1,
    /// HMAC-SHA256.
    Sha256,
    /// HMAC-SHA512.
    Sha512,
}

impl OtpAlgorithm {
    /// The name in `otpauth://` URIs: `SHA1`, `SHA256` or `SHA512`.
    pub fn name(self) -> &'static str {
        match self {
            OtpAlgorithm::Sha1 => "SHA1",
            OtpAlgorithm::Sha256 => "SHA256",
            OtpAlgorithm::Sha512 => "SHA512",
        }
    }

    /// The algorithm `otpauth` URIs name `name` (see [`OtpAlgorithm::name`]).
    pub fn from_name(name: &str) -> Option<OtpAlgorithm> {
        [OtpAlgorithm::Sha1, OtpAlgorithm::Sha256, OtpAlgorithm::Sha512]
            .into_iter()
            .find(|algorithm| algorithm.name() == name)
    }

    /// The secret length to generate, in bytes: the HMAC's output size (20, 32 or 64), as
    /// RFC 4226 recommends and RFC 6238's test seeds use.
    pub fn secret_len(self) -> usize {
        match self {
            OtpAlgorithm::Sha1 => 20,
            OtpAlgorithm::Sha256 => 32,
            OtpAlgorithm::Sha512 => 64,
        }
    }

    fn hmac(self) -> hmac::Algorithm {
        match self {
            // "Legacy" is ring's warning about SHA-1 signatures; see the type's comment.
            OtpAlgorithm::Sha1 => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
            OtpAlgorithm::Sha256 => hmac::HMAC_SHA256,
            OtpAlgorithm::Sha512 => hmac::HMAC_SHA512,
        }
    }
}

/// How many digits a code has: 6 (the default, what every app shows), 7 or 8.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum OtpDigits {
    /// 6 digits.
    #[default]
    Six,
    /// 7 digits.
    Seven,
    /// 8 digits.
    Eight,
}

impl OtpDigits {
    /// The variant for `count` digits; `None` outside 6 to 8.
    pub fn new(count: u8) -> Option<OtpDigits> {
        match count {
            6 => Some(OtpDigits::Six),
            7 => Some(OtpDigits::Seven),
            8 => Some(OtpDigits::Eight),
            _ => None,
        }
    }

    /// The number of digits.
    pub fn count(self) -> u8 {
        match self {
            OtpDigits::Six => 6,
            OtpDigits::Seven => 7,
            OtpDigits::Eight => 8,
        }
    }

    /// `10^count`: codes are the truncated HMAC modulo this.
    fn modulus(self) -> u32 {
        10u32.pow(u32::from(self.count()))
    }
}

/// How TOTP codes are made and checked. The types admit only valid settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TotpConfig {
    /// The HMAC (default SHA-1).
    pub algorithm: OtpAlgorithm,
    /// Digits per code (default 6).
    pub digits: OtpDigits,
    /// Length of a time step, seconds (default 30).
    pub period_secs: NonZeroU32,
    /// How many steps before and after the current one are also accepted (default 1), for
    /// clock drift and the time it takes to type a code. Each step of skew costs two more
    /// HMACs per check.
    pub skew_steps: u8,
}

impl TotpConfig {
    /// The period authenticator apps assume: 30 s.
    pub const DEFAULT_PERIOD_SECS: NonZeroU32 = match NonZeroU32::new(30) {
        Some(period) => period,
        None => panic!("30 is not zero"),
    };

    /// The time step `unix_secs` falls in: `floor(unix_secs / period_secs)`.
    ///
    /// Never overflows: a time before the epoch (which RFC 6238 does not define) counts as
    /// step 0, and every non-negative `i64` divides to a valid `u64`.
    pub fn step(&self, unix_secs: i64) -> u64 {
        u64::try_from(unix_secs).map_or(0, |secs| secs / u64::from(self.period_secs.get()))
    }
}

impl Default for TotpConfig {
    /// SHA-1, 6 digits, 30 s, ±1 step: what PROTOCOL 9 and every authenticator app expect.
    fn default() -> Self {
        TotpConfig {
            algorithm: OtpAlgorithm::Sha1,
            digits: OtpDigits::Six,
            period_secs: TotpConfig::DEFAULT_PERIOD_SECS,
            skew_steps: 1,
        }
    }
}

/// The HOTP code for `counter` (RFC 4226), zero-padded to `digits`.
pub fn hotp(secret: &OtpSecret, counter: u64, algorithm: OtpAlgorithm, digits: OtpDigits) -> String {
    let key = hmac::Key::new(algorithm.hmac(), secret.expose());
    format_code(hotp_value(&key, counter, digits), digits)
}

/// The TOTP code at `unix_secs` (RFC 6238): the HOTP code of [`TotpConfig::step`].
pub fn totp_at(secret: &OtpSecret, unix_secs: i64, config: &TotpConfig) -> String {
    hotp(secret, config.step(unix_secs), config.algorithm, config.digits)
}

/// Checks a TOTP `code` at `unix_secs`: returns the time step it matched, to be stored as
/// the user's new `last_accepted_step`, or `None`.
///
/// A step is a candidate if it is within [`TotpConfig::skew_steps`] of the current one and
/// after `last_accepted_step`: a replayed code, or an older one once a newer was accepted,
/// is refused. A code that is not exactly [`OtpDigits::count`] ASCII digits is refused
/// without computing anything. Every candidate is computed and compared in constant time;
/// if the code matches several (a 10^-6 coincidence), the latest is returned, so that no
/// other candidate in the window can accept the same code again.
pub fn verify_totp(
    secret: &OtpSecret,
    code: &str,
    unix_secs: i64,
    config: &TotpConfig,
    last_accepted_step: Option<u64>,
) -> Option<u64> {
    let submitted = parse_code(code, config.digits)?;
    let current = config.step(unix_secs);
    let skew = u64::from(config.skew_steps);
    let mut oldest = current.saturating_sub(skew);
    if let Some(last) = last_accepted_step {
        // `last == u64::MAX` leaves no step after it.
        oldest = oldest.max(last.checked_add(1)?);
    }
    let newest = current.saturating_add(skew);

    let key = hmac::Key::new(config.algorithm.hmac(), secret.expose());
    // No branch on a comparison: which step matched, if any, shows only in the result.
    let mut found = Choice::from(0);
    let mut matched = 0u64;
    for step in oldest..=newest {
        let equal = hotp_value(&key, step, config.digits).ct_eq(&submitted);
        matched.conditional_assign(&step, equal);
        found |= equal;
    }
    bool::from(found).then_some(matched)
}

/// HOTP's value before formatting: dynamic truncation (RFC 4226 section 5.3) of the HMAC of
/// the big-endian counter, modulo `10^digits`.
fn hotp_value(key: &hmac::Key, counter: u64, digits: OtpDigits) -> u32 {
    let tag = hmac::sign(key, &counter.to_be_bytes());
    let mac = tag.as_ref();
    // A MAC is at least 20 bytes and the offset at most 15, so `offset + 3` is in range.
    // RFC 6238 takes the offset from the last byte of the longer SHA-2 MACs too.
    let offset = usize::from(mac[mac.len() - 1] & 0x0f);
    let truncated = u32::from_be_bytes([
        mac[offset] & 0x7f,
        mac[offset + 1],
        mac[offset + 2],
        mac[offset + 3],
    ]);
    truncated % digits.modulus()
}

fn format_code(value: u32, digits: OtpDigits) -> String {
    format!("{value:0width$}", width = usize::from(digits.count()))
}

/// The value of a code of exactly `digits` ASCII digits; `None` for anything else.
fn parse_code(code: &str, digits: OtpDigits) -> Option<u32> {
    if code.len() != usize::from(digits.count()) {
        return None;
    }
    code.bytes().try_fold(0u32, |value, byte| {
        // At most 8 digits: 99,999,999 fits in a u32.
        byte.is_ascii_digit().then(|| value * 10 + u32::from(byte - b'0'))
    })
}

#[cfg(test)]
#[path = "otp_tests.rs"]
mod tests;
