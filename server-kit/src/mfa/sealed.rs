//! TOTP secrets encrypted at rest under a server key, so that a copy of the database (a
//! backup, a read-only injection) does not hand out every user's second factor.
//!
//! A sealed secret is `v1.` followed by base64url (unpadded) of `nonce ‖ ciphertext ‖ tag`:
//! AES-256-GCM with a random 96-bit nonce, the user id as associated data, and a key
//! derived by HKDF-SHA256 from key material the deployment configures for this purpose
//! only (info `holdfast mfa secret v1`). The user id binding means a sealed secret copied
//! to another account's row does not open. Random nonces are safe far beyond any user
//! count: the bound for one key is about 2^32 seals.
//!
//! Rotation: [`SecretSealer::new`] takes the current key material and any previous ones. It
//! seals with the current, opens with any, and [`OpenedSecret::needs_reseal`] says when a
//! value opened with a previous one should be sealed again and stored, after which the
//! previous material can be retired.

use std::fmt;

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::hkdf;
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

use super::{MAX_SECRET_LEN, OtpSecret};

/// Shortest key material accepted, in bytes. It should be random (e.g. 32 bytes from a
/// secure RNG), not a passphrase: HKDF does not stretch a weak one.
pub const MIN_KEY_MATERIAL_LEN: usize = 32;

/// The HKDF info: names the purpose and the format version, so this key is never the key
/// of anything else derived from the same material.
const KEY_INFO: &[u8] = b"holdfast mfa secret v1";

/// The version prefix of what [`SecretSealer::seal`] writes.
const V1_PREFIX: &str = "v1.";

/// AES-GCM's tag length.
const TAG_LEN: usize = 16;

/// Longest sealed text looked at: a [`MAX_SECRET_LEN`] secret seals to about 210
/// characters; anything much longer is not one of ours.
const MAX_SEALED_LEN: usize = 4 * (NONCE_LEN + MAX_SECRET_LEN + TAG_LEN);

/// Why a secret could not be sealed or opened. No message holds the secret, the sealed
/// text or the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// Key material shorter than [`MIN_KEY_MATERIAL_LEN`]; its 1-based position among the
    /// current (1) and the previous ones (2 and on).
    #[error("MFA key material {0} is shorter than 32 bytes")]
    KeyTooShort(usize),
    /// Not `v<n>.` followed by base64url of at least a nonce and a tag, or far too long.
    #[error("sealed MFA secret is malformed")]
    Malformed,
    /// A well-formed value of a version this build does not know (`v2.…`).
    #[error("sealed MFA secret has an unknown version")]
    UnknownVersion,
    /// No configured key opens it for this user: it was sealed for another user, altered,
    /// or sealed with key material no longer configured.
    #[error("sealed MFA secret does not open")]
    Rejected,
    /// The secret to seal is longer than [`MAX_SECRET_LEN`].
    #[error("MFA secret is too long to seal")]
    SecretTooLong,
    /// The operating system's random number generator failed (sealing).
    #[error("the operating system's random number generator failed")]
    Random,
}

/// What [`SecretSealer::open`] found.
#[derive(Debug)]
pub struct OpenedSecret {
    /// The secret.
    pub secret: OtpSecret,
    /// It opened with previous key material: seal it again with [`SecretSealer::seal`] and
    /// store the result.
    pub needs_reseal: bool,
}

/// Seals secrets with the current key and opens them with the current or a previous one.
///
/// Holds only ring's AES keys; `Debug` shows how many, nothing else.
pub struct SecretSealer {
    /// The current key first.
    keys: Vec<LessSafeKey>,
    rng: SystemRandom,
}

impl fmt::Debug for SecretSealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretSealer(<{} keys redacted>)", self.keys.len())
    }
}

impl SecretSealer {
    /// Derives the sealing key from `current` and an opening key from each of `previous`.
    ///
    /// Refuses material shorter than [`MIN_KEY_MATERIAL_LEN`] bytes
    /// ([`SealError::KeyTooShort`] with its position: 1 for `current`, then 2 and on).
    pub fn new(current: &[u8], previous: &[&[u8]]) -> Result<SecretSealer, SealError> {
        let keys = std::iter::once(current)
            .chain(previous.iter().copied())
            .enumerate()
            .map(|(index, material)| {
                if material.len() < MIN_KEY_MATERIAL_LEN {
                    return Err(SealError::KeyTooShort(index + 1));
                }
                Ok(derive_key(material))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(SecretSealer {
            keys,
            rng: SystemRandom::new(),
        })
    }

    /// Seals `secret` for `user_id` with the current key: `v1.` and base64url.
    pub fn seal(&self, secret: &OtpSecret, user_id: &str) -> Result<String, SealError> {
        if secret.len() > MAX_SECRET_LEN {
            return Err(SealError::SecretTooLong);
        }
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).map_err(|_| SealError::Random)?;
        // Sized once, so the plaintext is never left behind by a reallocation.
        let mut sealed = Zeroizing::new(Vec::with_capacity(NONCE_LEN + secret.len() + TAG_LEN));
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(secret.expose());
        let tag = self.keys[0]
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(user_id.as_bytes()),
                &mut sealed[NONCE_LEN..],
            )
            // Only refused beyond GCM's 64 GiB message limit.
            .map_err(|_| SealError::SecretTooLong)?;
        sealed.extend_from_slice(tag.as_ref());
        Ok(format!("{V1_PREFIX}{}", holdfast_protocol::b64::encode(&sealed)))
    }

    /// Opens what [`seal`](Self::seal) made for `user_id`, with the current key or a
    /// previous one.
    pub fn open(&self, sealed: &str, user_id: &str) -> Result<OpenedSecret, SealError> {
        if sealed.len() > MAX_SEALED_LEN {
            return Err(SealError::Malformed);
        }
        let payload = match sealed.strip_prefix(V1_PREFIX) {
            Some(payload) => payload,
            None if has_version_prefix(sealed) => return Err(SealError::UnknownVersion),
            None => return Err(SealError::Malformed),
        };
        let bytes = holdfast_protocol::b64::decode(payload).map_err(|_| SealError::Malformed)?;
        if bytes.len() < NONCE_LEN + TAG_LEN {
            return Err(SealError::Malformed);
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let mut nonce_bytes = [0u8; NONCE_LEN];
        nonce_bytes.copy_from_slice(nonce);

        for (index, key) in self.keys.iter().enumerate() {
            // A failed attempt may leave the buffer overwritten: each key gets a fresh copy.
            let mut buffer = Zeroizing::new(ciphertext.to_vec());
            let opened = key.open_in_place(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::from(user_id.as_bytes()),
                &mut buffer,
            );
            if let Ok(plaintext) = opened {
                let len = plaintext.len();
                buffer.truncate(len);
                return Ok(OpenedSecret {
                    secret: OtpSecret::from_zeroizing(buffer),
                    needs_reseal: index > 0,
                });
            }
        }
        Err(SealError::Rejected)
    }
}

/// AES-256-GCM key from key material: HKDF-SHA256, no salt (the material is meant to be
/// uniformly random already), info [`KEY_INFO`].
fn derive_key(material: &[u8]) -> LessSafeKey {
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, &[]).extract(material);
    let okm = prk
        .expand(&[KEY_INFO], &AES_256_GCM)
        // No input reaches this: HKDF refuses only outputs over 255 hash lengths, and an
        // AES-256 key is one.
        .expect("HKDF-SHA256 yields a 32-byte key");
    LessSafeKey::new(UnboundKey::from(okm))
}

/// Whether `sealed` starts like a versioned value: `v`, digits, `.`.
fn has_version_prefix(sealed: &str) -> bool {
    sealed
        .strip_prefix('v')
        .and_then(|rest| rest.split_once('.'))
        .is_some_and(|(number, _)| !number.is_empty() && number.bytes().all(|byte| byte.is_ascii_digit()))
}

#[cfg(test)]
#[path = "sealed_tests.rs"]
mod tests;
