//! Recovery codes (PROTOCOL 9): random, shown once, kept only as a keyed hash, single use.
//!
//! A code is 10 characters of the RFC 4648 base32 alphabet (50 bits) written `XXXXX-XXXXX`.
//! What is stored is HMAC-SHA256 under a key derived (HKDF-SHA256, info
//! `holdfast mfa recovery v1`) from the same key material as the sealed TOTP secrets, over
//! the user id and the code: a copy of the database alone cannot test guesses offline, and
//! a code of one account is no code of another. Input is forgiving the way people type
//! codes: case, spaces and dashes do not matter.

use std::fmt;

use ring::hkdf;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

use super::sealed::{MIN_KEY_MATERIAL_LEN, SealError};

/// Characters of a code, without the dash.
pub const RECOVERY_CODE_CHARS: usize = 10;

/// The HKDF info of the hashing key.
const KEY_INFO: &[u8] = b"holdfast mfa recovery v1";

/// The base32 alphabet (RFC 4648).
const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// Makes recovery codes and hashes them for storage.
pub struct RecoveryHasher {
    key: hmac::Key,
    rng: SystemRandom,
}

impl fmt::Debug for RecoveryHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RecoveryHasher(<redacted>)")
    }
}

impl RecoveryHasher {
    /// The hasher keyed from `material` (at least [`MIN_KEY_MATERIAL_LEN`] bytes).
    pub fn new(material: &[u8]) -> Result<RecoveryHasher, SealError> {
        if material.len() < MIN_KEY_MATERIAL_LEN {
            return Err(SealError::KeyTooShort(1));
        }
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, &[]).extract(material);
        let okm = prk
            .expand(&[KEY_INFO], hmac::HMAC_SHA256)
            // Only refused for an output longer than 255 hash lengths.
            .map_err(|_| SealError::KeyTooShort(1))?;
        Ok(RecoveryHasher {
            key: hmac::Key::from(okm),
            rng: SystemRandom::new(),
        })
    }

    /// `count` new codes, as shown to the user (`XXXXX-XXXXX`).
    pub fn generate(&self, count: usize) -> Result<Vec<Zeroizing<String>>, SealError> {
        (0..count).map(|_| self.generate_one()).collect()
    }

    fn generate_one(&self) -> Result<Zeroizing<String>, SealError> {
        let mut bytes = Zeroizing::new([0u8; RECOVERY_CODE_CHARS]);
        self.rng.fill(bytes.as_mut()).map_err(|_| SealError::Random)?;
        let mut code = Zeroizing::new(String::with_capacity(RECOVERY_CODE_CHARS + 1));
        for (index, byte) in bytes.iter().enumerate() {
            if index == RECOVERY_CODE_CHARS / 2 {
                code.push('-');
            }
            // 256 is a multiple of 32: every character is uniform.
            code.push(char::from(ALPHABET[usize::from(byte % 32)]));
        }
        Ok(code)
    }

    /// The stored form of `code` for `user_id` (lowercase hex), or `None` for text that
    /// cannot be a code (after dropping spaces and dashes and upper-casing, not exactly
    /// [`RECOVERY_CODE_CHARS`] base32 characters).
    pub fn hash(&self, user_id: &str, code: &str) -> Option<String> {
        let mut normalized = Zeroizing::new([0u8; RECOVERY_CODE_CHARS]);
        let mut len = 0;
        for c in code.chars().filter(|c| !matches!(c, '-' | ' ')) {
            let c = c.to_ascii_uppercase();
            if len == RECOVERY_CODE_CHARS || !c.is_ascii() || !ALPHABET.contains(&(c as u8)) {
                return None;
            }
            normalized[len] = c as u8;
            len += 1;
        }
        if len != RECOVERY_CODE_CHARS {
            return None;
        }
        let mut context = hmac::Context::with_key(&self.key);
        context.update(&(user_id.len() as u64).to_be_bytes());
        context.update(user_id.as_bytes());
        context.update(normalized.as_ref());
        Some(hex(context.sign().as_ref()))
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 15)]));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hasher() -> RecoveryHasher {
        RecoveryHasher::new(&[9u8; 32]).unwrap()
    }

    #[test]
    fn codes_have_the_documented_shape_and_differ() {
        let codes = hasher().generate(8).unwrap();
        assert_eq!(codes.len(), 8);
        for code in &codes {
            assert_eq!(code.len(), 11);
            assert_eq!(&code[5..6], "-");
            assert!(code.chars().all(|c| c == '-' || ALPHABET.contains(&(c as u8))));
        }
        let distinct: std::collections::HashSet<&str> = codes.iter().map(|c| c.as_str()).collect();
        assert_eq!(distinct.len(), 8);
    }

    #[test]
    fn hashing_forgives_case_spaces_and_dashes_only() {
        let hasher = hasher();
        let code = hasher.generate(1).unwrap().remove(0);
        let stored = hasher.hash("u1", &code).unwrap();
        assert_eq!(stored.len(), 64);
        let sloppy = code.to_lowercase().replace('-', " ");
        assert_eq!(hasher.hash("u1", &sloppy).as_deref(), Some(stored.as_str()));
        assert_eq!(
            hasher.hash("u1", &code.replace('-', "")).as_deref(),
            Some(stored.as_str())
        );
        // Another user, another key: another hash.
        assert_ne!(hasher.hash("u2", &code).unwrap(), stored);
        assert_ne!(
            RecoveryHasher::new(&[8u8; 32])
                .unwrap()
                .hash("u1", &code)
                .unwrap(),
            stored
        );
        // Not a code at all.
        for bad in [
            "",
            "ABCDE-FGHI",
            "ABCDE-FGHIJK",
            "ABCDE-FGHI1",
            "ÄBCDE-FGHIJ",
            "123456",
        ] {
            assert_eq!(hasher.hash("u1", bad), None, "{bad:?}");
        }
    }

    #[test]
    fn short_key_material_is_refused() {
        assert!(matches!(
            RecoveryHasher::new(&[1u8; 31]),
            Err(SealError::KeyTooShort(1))
        ));
    }
}
