//! Kora's `EncryptedTokenStore` format, to import a Kora web client's stored session.
//!
//! Kora stores `{"iv": b64url(12 bytes), "data": b64url(ciphertext ‖ tag)}`: AES-256-GCM
//! with no associated data and no version byte, so its blobs are not bound to a record the
//! way vault envelopes are. Import them with [`decrypt`] and re-seal them into the vault.
//! The Kora key for a passphrase is [`derive_passphrase_key`](super::derive_passphrase_key)
//! with Kora's salt.

use base64::Engine;
use base64::engine::general_purpose::{URL_SAFE_NO_PAD, URL_SAFE_NO_PAD_INDIFFERENT};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use zeroize::Zeroizing;

use super::{VaultError, VaultKey};

const TAG_LEN: usize = 16;

#[derive(serde::Deserialize)]
struct StoredValue {
    iv: String,
    data: String,
}

/// Kora's stored value for `plaintext` under `key` with this IV, byte for byte as Kora
/// writes it (for conformance tests and for handing a session back to a Kora client).
///
/// The caller must never use an IV twice with one key: GCM loses confidentiality and
/// integrity if it does. Fails only on inputs of tens of gigabytes.
pub fn encrypt_with_iv(key: &VaultKey, iv: &[u8; NONCE_LEN], plaintext: &[u8]) -> Result<String, VaultError> {
    // The buffer briefly holds the plaintext, so it is wiped if sealing fails.
    let mut data = Zeroizing::new(Vec::with_capacity(plaintext.len() + TAG_LEN));
    data.extend_from_slice(plaintext);
    cipher(key)?
        .seal_in_place_append_tag(Nonce::assume_unique_for_key(*iv), Aad::empty(), &mut *data)
        .map_err(|_| VaultError::Malformed {
            reason: "the value is too large to encrypt",
        })?;
    // Written by hand to keep Kora's key order; base64url needs no JSON escaping.
    Ok(format!(
        r#"{{"iv":"{}","data":"{}"}}"#,
        URL_SAFE_NO_PAD.encode(iv),
        URL_SAFE_NO_PAD.encode(&*data)
    ))
}

/// The plaintext of a Kora stored value.
///
/// Padded or unpadded base64url is accepted, and unknown JSON fields are ignored. Errors:
/// [`VaultError::Malformed`] for anything that is not Kora's JSON shape,
/// [`VaultError::Truncated`] for data shorter than a tag, [`VaultError::Tampered`] when
/// authentication fails (wrong key or altered data).
pub fn decrypt(key: &VaultKey, stored_value: &str) -> Result<Zeroizing<Vec<u8>>, VaultError> {
    let stored: StoredValue = serde_json::from_str(stored_value).map_err(|_| VaultError::Malformed {
        reason: "expected JSON {\"iv\": ..., \"data\": ...}",
    })?;
    let iv = URL_SAFE_NO_PAD_INDIFFERENT
        .decode(&stored.iv)
        .map_err(|_| VaultError::Malformed {
            reason: "the iv is not base64url",
        })?;
    let nonce = Nonce::try_assume_unique_for_key(&iv).map_err(|_| VaultError::Malformed {
        reason: "the iv is not 12 bytes",
    })?;
    let mut data = Zeroizing::new(URL_SAFE_NO_PAD_INDIFFERENT.decode(&stored.data).map_err(|_| {
        VaultError::Malformed {
            reason: "the data is not base64url",
        }
    })?);
    if data.len() < TAG_LEN {
        return Err(VaultError::Truncated);
    }
    let plaintext_len = cipher(key)?
        .open_in_place(nonce, Aad::empty(), data.as_mut_slice())
        .map_err(|_| VaultError::Tampered)?
        .len();
    data.truncate(plaintext_len);
    Ok(data)
}

fn cipher(key: &VaultKey) -> Result<LessSafeKey, VaultError> {
    UnboundKey::new(&AES_256_GCM, key.as_bytes())
        .map(LessSafeKey::new)
        .map_err(|_| VaultError::InvalidKey {
            reason: "the cipher refused the key",
        })
}

#[cfg(test)]
#[path = "kora_tests.rs"]
mod tests;
