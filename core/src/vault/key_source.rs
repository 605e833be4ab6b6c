//! Where the vault key comes from: the app picks a [`KeySource`], and the session layer
//! resolves it to a [`VaultKey`] when it opens the store.

use std::sync::Arc;

use zeroize::Zeroizing;

use super::key::{MIN_SALT_LEN, Passphrase, VaultKey, derive_passphrase_key};
use super::{VaultError, keyring};

/// How the app wants the vault key kept.
pub enum KeySource {
    /// The OS credential store through `keyring-core` (see [`keyring`](super::keyring) for
    /// the store used on each platform). A key is generated and stored on first use.
    Keyring {
        /// The credential's service name, e.g. the app's bundle identifier.
        service: String,
        /// The credential's account name, e.g. `"holdfast-vault"`.
        account: String,
    },
    /// A passphrase (PBKDF2-HMAC-SHA256, 600,000 iterations, random salt kept in the
    /// store).
    Passphrase(Passphrase),
    /// A key the host app keeps (Keychain/Keystore).
    Provided(Arc<dyn KeyProvider>),
}

/// The host app's keeper of the vault key (e.g. Android Keystore-wrapped storage, or the
/// iOS Keychain with the app's own access policy).
pub trait KeyProvider: Send + Sync {
    /// The stored key, or None on first use.
    fn load_key(&self) -> Result<Option<Vec<u8>>, KeyProviderError>;
    /// Keeps a newly generated key.
    fn store_key(&self, key: &[u8]) -> Result<(), KeyProviderError>;
}

/// A [`KeyProvider`] failure; it becomes [`VaultError::KeyUnavailable`] with this message,
/// so it must not contain key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct KeyProviderError {
    /// What failed.
    pub message: String,
}

impl KeyProviderError {
    /// An error with this message.
    pub fn new(message: impl Into<String>) -> KeyProviderError {
        KeyProviderError {
            message: message.into(),
        }
    }
}

impl KeySource {
    /// The vault key from this source.
    ///
    /// `salt` is asked for only by [`KeySource::Passphrase`]: it returns the salt kept in
    /// the store, creating and saving one from [`generate_salt`](super::generate_salt) on
    /// first use. This keeps the vault free of the store; the session layer passes a
    /// closure over the store's metadata.
    ///
    /// - `Keyring`: reads the credential; when there is none, generates a key, stores it
    ///   and reads it back. No store, a locked one, or a failing one is
    ///   [`VaultError::KeyUnavailable`]: never a fallback to a weaker key or to plaintext.
    /// - `Passphrase`: derives the key (slow by design). Any passphrase gives a key; check
    ///   it with [`Vault::verify_key_check`](super::Vault::verify_key_check), which turns a
    ///   wrong one into [`VaultError::WrongKey`].
    /// - `Provided`: [`KeyProvider::load_key`]; on `None`, generates a key, hands it to
    ///   [`KeyProvider::store_key`] and loads it back (so a provider that silently drops
    ///   keys is caught before any record is written under a key that will be lost). Provider
    ///   errors are [`VaultError::KeyUnavailable`]; a stored key that is not 32 bytes is
    ///   [`VaultError::InvalidKey`] and is not replaced.
    ///
    /// Every source blocks (IPC, disk, or 600,000 hash iterations): call from a blocking
    /// thread, not the async executor. Two processes creating a first key at the same time
    /// could each store their own; the read-back narrows this, and the caller closes it by
    /// resolving under the store's lock and keeping a key check.
    pub fn resolve(
        &self,
        salt: impl FnOnce() -> Result<Vec<u8>, VaultError>,
    ) -> Result<VaultKey, VaultError> {
        match self {
            KeySource::Keyring { service, account } => {
                keyring::load_or_create_key(&*keyring::default_store()?, service, account)
            }
            KeySource::Passphrase(passphrase) => {
                let salt = salt()?;
                if salt.len() < MIN_SALT_LEN {
                    return Err(VaultError::InvalidKey {
                        reason: "the stored salt is shorter than 16 bytes",
                    });
                }
                Ok(derive_passphrase_key(passphrase.as_str(), &salt))
            }
            KeySource::Provided(provider) => resolve_provided(provider.as_ref()),
        }
    }
}

fn resolve_provided(provider: &dyn KeyProvider) -> Result<VaultKey, VaultError> {
    if let Some(stored) = load_provided(provider)? {
        return VaultKey::from_bytes(&stored);
    }
    let key = VaultKey::generate()?;
    provider.store_key(key.as_bytes()).map_err(provider_failed)?;
    match load_provided(provider)? {
        // Normally our key; another writer's if one got there first, and then theirs wins.
        Some(stored) => VaultKey::from_bytes(&stored),
        None => Err(VaultError::key_unavailable(
            "the key provider did not keep the new key",
        )),
    }
}

fn load_provided(provider: &dyn KeyProvider) -> Result<Option<Zeroizing<Vec<u8>>>, VaultError> {
    Ok(provider.load_key().map_err(provider_failed)?.map(Zeroizing::new))
}

fn provider_failed(err: KeyProviderError) -> VaultError {
    VaultError::key_unavailable(format!("the host's key provider failed: {err}"))
}

impl std::fmt::Debug for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // Names, not secrets: they say where to look, which helps support.
            KeySource::Keyring { service, account } => f
                .debug_struct("Keyring")
                .field("service", service)
                .field("account", account)
                .finish(),
            KeySource::Passphrase(passphrase) => f.debug_tuple("Passphrase").field(passphrase).finish(),
            KeySource::Provided(_) => f.write_str("Provided(<host key provider>)"),
        }
    }
}

#[cfg(test)]
#[path = "key_source_tests.rs"]
mod tests;
