//! The envelope format and the [`Vault`] that seals and opens it.
//!
//! An envelope is `0x01 ‖ nonce (12 random bytes) ‖ AES-256-GCM ciphertext ‖ tag (16)`.
//! The associated data names the record, so a blob copied to another record or namespace
//! does not open:
//!
//! ```text
//! "holdfast-vault/1\0" ‖ u64be(len(namespace)) ‖ namespace ‖ u64be(len(record)) ‖ record
//! ```
//!
//! The lengths make the encoding injective: ("ab", "c") and ("a", "bc") differ. Both layouts
//! are persisted; changing either means a new version byte.
//!
//! Cipher: ring's AEAD rather than RustCrypto's `aes-gcm`, because ring is already in the
//! client (it is rustls' provider and signs device proofs), so the vault adds no crypto
//! code to the mobile library, and one crate gives AES-GCM (hardware AES on ARMv8 and
//! x86), PBKDF2 and the system RNG. ring does not wipe its expanded AES key on drop, so the
//! vault keeps only the raw key (zeroized) and expands it per call instead of holding a
//! `LessSafeKey` for the vault's lifetime.

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use zeroize::Zeroizing;

use super::key::fill_random;
use super::{VaultError, VaultKey};

/// The format version this build writes and reads.
pub const ENVELOPE_VERSION: u8 = 0x01;

/// The GCM tag length.
const TAG_LEN: usize = 16;

/// The shortest envelope: version, nonce, tag (empty plaintext).
pub const MIN_ENVELOPE_LEN: usize = 1 + NONCE_LEN + TAG_LEN;

/// The AAD domain label, so a vault envelope can never authenticate as any other use of
/// the key.
const AAD_LABEL: &[u8] = b"holdfast-vault/1\0";

/// The key check is a vault envelope under this reserved namespace and record; the store
/// must not use the namespace for its own records.
pub const KEY_CHECK_NAMESPACE: &str = "holdfast-vault";
/// See [`KEY_CHECK_NAMESPACE`].
pub const KEY_CHECK_RECORD: &str = "key-check";
const KEY_CHECK_PLAINTEXT: &[u8] = b"holdfast vault key check v1";

/// Seals and opens records under one [`VaultKey`]. `Debug` shows no key.
///
/// Random 96-bit nonces are safe for about 2^32 writes under one key, far beyond what an
/// auth store writes in its life.
#[derive(Debug)]
pub struct Vault {
    key: VaultKey,
}

impl Vault {
    /// A vault over `key`.
    pub fn new(key: VaultKey) -> Vault {
        Vault { key }
    }

    /// Encrypts `plaintext` as record `record` of `namespace`, with a fresh random nonce.
    ///
    /// Fails if the system random generator fails ([`VaultError::KeyUnavailable`]: without
    /// a fresh nonce nothing may be written), or for a plaintext of tens of gigabytes.
    pub fn seal(&self, namespace: &str, record: &str, plaintext: &[u8]) -> Result<Vec<u8>, VaultError> {
        let mut nonce = [0u8; NONCE_LEN];
        fill_random(&mut nonce)?;
        // Built in a zeroizing buffer: the plaintext sits in it until it is encrypted in
        // place, and an early return must not leave that copy in freed memory.
        let mut blob = Zeroizing::new(Vec::with_capacity(MIN_ENVELOPE_LEN + plaintext.len()));
        blob.push(ENVELOPE_VERSION);
        blob.extend_from_slice(&nonce);
        blob.extend_from_slice(plaintext);
        let (_, in_out) = blob.split_at_mut(1 + NONCE_LEN);
        let tag = self
            .cipher()?
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad(namespace, record)),
                in_out,
            )
            // Only inputs of tens of gigabytes are refused.
            .map_err(|_| VaultError::Malformed {
                reason: "the record is too large to encrypt",
            })?;
        blob.extend_from_slice(tag.as_ref());
        Ok(std::mem::take(&mut *blob))
    }

    /// Decrypts the envelope of record `record` of `namespace`.
    ///
    /// Never panics: any input is either opened or refused as [`VaultError::Truncated`],
    /// [`VaultError::UnknownVersion`] or [`VaultError::Tampered`].
    pub fn open(&self, namespace: &str, record: &str, blob: &[u8]) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        let (&version, rest) = blob.split_first().ok_or(VaultError::Truncated)?;
        // The version is checked before the length: another version may have another layout.
        if version != ENVELOPE_VERSION {
            return Err(VaultError::UnknownVersion(version));
        }
        if blob.len() < MIN_ENVELOPE_LEN {
            return Err(VaultError::Truncated);
        }
        let (nonce, sealed) = rest.split_at_checked(NONCE_LEN).ok_or(VaultError::Truncated)?;
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| VaultError::Truncated)?;
        let mut buf = Zeroizing::new(sealed.to_vec());
        let plaintext_len = self
            .cipher()?
            .open_in_place(nonce, Aad::from(aad(namespace, record)), buf.as_mut_slice())
            .map_err(|_| VaultError::Tampered)?
            .len();
        buf.truncate(plaintext_len);
        Ok(buf)
    }

    /// Opens `blob` with this vault and seals it again with `new`, for changing the key
    /// (a new passphrase): the store re-encrypts every record this way in one transaction.
    /// The plaintext exists only in a zeroizing buffer in between.
    pub fn reseal(
        &self,
        new: &Vault,
        namespace: &str,
        record: &str,
        blob: &[u8],
    ) -> Result<Vec<u8>, VaultError> {
        let plaintext = self.open(namespace, record, blob)?;
        new.seal(namespace, record, &plaintext)
    }

    /// An envelope of a fixed plaintext under the reserved key-check record, kept in the
    /// store so that a wrong key is recognised before any record is read.
    pub fn key_check(&self) -> Result<Vec<u8>, VaultError> {
        self.seal(KEY_CHECK_NAMESPACE, KEY_CHECK_RECORD, KEY_CHECK_PLAINTEXT)
    }

    /// Whether this vault's key is the one that wrote `blob` (from [`Vault::key_check`]).
    ///
    /// A failed authentication is [`VaultError::WrongKey`] (GCM cannot tell a wrong key
    /// from a damaged check; either way this key does not open the vault). A check too
    /// short or of an unknown version keeps its own error: that is damage, not a wrong key.
    pub fn verify_key_check(&self, blob: &[u8]) -> Result<(), VaultError> {
        match self.open(KEY_CHECK_NAMESPACE, KEY_CHECK_RECORD, blob) {
            Ok(plaintext) if plaintext.as_slice() == KEY_CHECK_PLAINTEXT => Ok(()),
            // Authentic but not the check: written by this key, so not a wrong key.
            Ok(_) => Err(VaultError::Tampered),
            Err(VaultError::Tampered) => Err(VaultError::WrongKey),
            Err(other) => Err(other),
        }
    }

    fn cipher(&self) -> Result<LessSafeKey, VaultError> {
        UnboundKey::new(&AES_256_GCM, self.key.as_bytes())
            .map(LessSafeKey::new)
            .map_err(|_| VaultError::InvalidKey {
                reason: "the cipher refused the key",
            })
    }
}

/// The associated data for a record (see the module docs).
fn aad(namespace: &str, record: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(AAD_LABEL.len() + 16 + namespace.len() + record.len());
    aad.extend_from_slice(AAD_LABEL);
    for part in [namespace, record] {
        // usize is at most 64 bits on every target Rust supports, so this is lossless.
        aad.extend_from_slice(&(part.len() as u64).to_be_bytes());
        aad.extend_from_slice(part.as_bytes());
    }
    aad
}

#[cfg(test)]
#[path = "envelope_tests.rs"]
mod tests;
