//! The vault key, passphrases and PBKDF2: the secrets, each zeroized on drop and redacted in
//! `Debug`.

use std::num::NonZeroU32;

use ring::pbkdf2;
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

use super::VaultError;

/// Length of a vault key in bytes (AES-256).
pub const KEY_LEN: usize = 32;

/// PBKDF2-HMAC-SHA256 iterations for passphrase keys: OWASP's 2023 figure, and Kora's, so a
/// Kora web store can be imported with the same passphrase.
pub const PBKDF2_ITERATIONS: u32 = 600_000;

/// Length of the salts [`generate_salt`] makes.
pub const SALT_LEN: usize = 32;

/// The shortest salt [`KeySource::Passphrase`](super::KeySource::Passphrase) accepts: below
/// 128 bits, precomputed tables start to pay off.
pub const MIN_SALT_LEN: usize = 16;

// Written as a `match` so the non-zero proof happens at compile time, with no `unwrap()`.
const ITERATIONS: NonZeroU32 = match NonZeroU32::new(PBKDF2_ITERATIONS) {
    Some(iterations) => iterations,
    None => panic!("PBKDF2_ITERATIONS must not be zero"),
};

/// A 256-bit vault key. Wiped from memory on drop; `Debug` never shows it, and there is no
/// `Display` or `Clone` so it cannot be copied around by accident.
pub struct VaultKey(Zeroizing<[u8; KEY_LEN]>);

impl VaultKey {
    /// A fresh random key from the operating system's generator.
    ///
    /// Fails with [`VaultError::KeyUnavailable`] only if the system generator fails.
    pub fn generate() -> Result<VaultKey, VaultError> {
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        fill_random(bytes.as_mut_slice())?;
        Ok(VaultKey(bytes))
    }

    /// A key from exactly 32 bytes; anything else is [`VaultError::InvalidKey`].
    pub fn from_bytes(bytes: &[u8]) -> Result<VaultKey, VaultError> {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        if bytes.len() != KEY_LEN {
            return Err(VaultError::InvalidKey {
                reason: "a vault key is exactly 32 bytes",
            });
        }
        key.copy_from_slice(bytes);
        Ok(VaultKey(key))
    }

    /// The raw key, for the cipher and for handing a new key to its store. Crate-only so that
    /// apps never need to hold raw key bytes.
    pub(crate) fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl std::fmt::Debug for VaultKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VaultKey(<redacted>)")
    }
}

/// A passphrase the user typed. Wiped from memory on drop; `Debug` never shows it.
pub struct Passphrase(Zeroizing<String>);

impl Passphrase {
    /// Takes ownership of the passphrase so that the only copy is wiped on drop.
    pub fn new(passphrase: impl Into<String>) -> Passphrase {
        Passphrase(Zeroizing::new(passphrase.into()))
    }

    /// The passphrase, for key derivation.
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<String> for Passphrase {
    fn from(passphrase: String) -> Passphrase {
        Passphrase::new(passphrase)
    }
}

impl From<&str> for Passphrase {
    fn from(passphrase: &str) -> Passphrase {
        Passphrase::new(passphrase)
    }
}

impl std::fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Passphrase(<redacted>)")
    }
}

/// The vault key for a passphrase: PBKDF2-HMAC-SHA256, 600,000 iterations, 32-byte output.
///
/// Deliberately slow (a few hundred milliseconds on a phone): call it off the async
/// executor. The same inputs give Kora's key (`keyDerivation` in the conformance vectors).
/// Any passphrase yields a key; whether it is the right one is told by
/// [`Vault::verify_key_check`](super::Vault::verify_key_check).
pub fn derive_passphrase_key(passphrase: &str, salt: &[u8]) -> VaultKey {
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        ITERATIONS,
        salt,
        passphrase.as_bytes(),
        key.as_mut_slice(),
    );
    VaultKey(key)
}

/// A fresh random salt for a passphrase vault, to be stored beside the data (it is not
/// secret).
pub fn generate_salt() -> Result<[u8; SALT_LEN], VaultError> {
    let mut salt = [0u8; SALT_LEN];
    fill_random(&mut salt)?;
    Ok(salt)
}

/// Fills `buf` from the operating system's generator.
pub(crate) fn fill_random(buf: &mut [u8]) -> Result<(), VaultError> {
    SystemRandom::new()
        .fill(buf)
        .map_err(|_| VaultError::key_unavailable("the system random number generator failed"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_bytes_takes_exactly_32_bytes() {
        assert!(VaultKey::from_bytes(&[7u8; 32]).is_ok());
        for len in [0, 1, 16, 31, 33, 64] {
            assert!(
                matches!(
                    VaultKey::from_bytes(&vec![7u8; len]),
                    Err(VaultError::InvalidKey { .. })
                ),
                "{len} bytes accepted"
            );
        }
    }

    #[test]
    fn generated_keys_differ() {
        let a = VaultKey::generate().unwrap();
        let b = VaultKey::generate().unwrap();
        assert_ne!(a.as_bytes(), b.as_bytes());
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let key = VaultKey::from_bytes(&[0xab; 32]).unwrap();
        let shown = format!("{key:?} {key:#?}");
        assert!(
            !shown.to_lowercase().contains("ab, ") && !shown.contains("171"),
            "{shown}"
        );
        assert_eq!(format!("{key:?}"), "VaultKey(<redacted>)");

        let passphrase = Passphrase::new("correct horse battery staple");
        let shown = format!("{passphrase:?} {passphrase:#?}");
        assert!(!shown.contains("horse"), "{shown}");
        assert_eq!(format!("{passphrase:?}"), "Passphrase(<redacted>)");
    }

    #[test]
    fn salts_are_random() {
        assert_ne!(generate_salt().unwrap(), generate_salt().unwrap());
    }
}
