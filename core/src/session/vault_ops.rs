//! Changing the vault's passphrase without losing the session.

use std::sync::{Arc, PoisonError};
use std::time::Duration;

use super::AuthClient;
use super::inner::{Inner, Opened};
use super::sealed::{META_KEY_CHECK, META_SALT, vault_error};
use crate::error::AuthError;
use crate::store::{BlobSlot, RefreshLock, ResealError};
use crate::vault::{KeySource, Passphrase, Vault, derive_passphrase_key, generate_salt};

/// How long a key change waits for another process's refresh to finish.
const LOCK_WAIT: Duration = Duration::from_secs(60);

impl AuthClient {
    /// Replaces the vault's passphrase, keeping the session, the device key and queued
    /// sign-outs: every sealed record is re-encrypted under a key derived from `new` with a
    /// fresh salt, in one transaction (a crash midway leaves the old passphrase working).
    ///
    /// `current` must be the passphrase in use ([`AuthError::WrongPassphrase`] otherwise),
    /// so an unlocked app left on a table cannot be re-keyed by someone else. Other
    /// processes sharing the store must initialize again with the new passphrase; until
    /// they do, they report the store unavailable and change nothing.
    ///
    /// Slow by design (two key derivations); runs off the async executor.
    pub async fn change_passphrase(&self, current: Passphrase, new: Passphrase) -> Result<(), AuthError> {
        if new.as_str().is_empty() {
            return Err(AuthError::InvalidInput {
                message: "the new passphrase is empty".to_owned(),
            });
        }
        let uses_passphrase = matches!(
            *self
                .inner
                .key_source
                .read()
                .unwrap_or_else(PoisonError::into_inner),
            KeySource::Passphrase(_)
        );
        if !uses_passphrase {
            return Err(AuthError::InvalidInput {
                message: "this client's vault key does not come from a passphrase".to_owned(),
            });
        }
        self.inner.opened()?;
        // No refresh of this process writes under the old key meanwhile; the store's lock
        // keeps other processes' refreshes out.
        let _gate = self.inner.refresh_gate.lock().await;
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || inner.rekey(&current, new))
            .await
            .map_err(|_| AuthError::StorageUnavailable {
                message: "the passphrase change failed to run".to_owned(),
            })?
    }
}

impl Inner {
    fn rekey(self: &Arc<Self>, current: &Passphrase, new: Passphrase) -> Result<(), AuthError> {
        let _lock = RefreshLock::acquire_within(&self.storage_path, LOCK_WAIT)?;
        let store = self.opened()?.store;
        let (Some(salt), Some(check)) = (store.meta(META_SALT)?, store.meta(META_KEY_CHECK)?) else {
            return Err(AuthError::StorageUnavailable {
                message: "the store has no passphrase salt or key check".to_owned(),
            });
        };
        let old = Vault::new(derive_passphrase_key(current.as_str(), &salt));
        old.verify_key_check(&check)
            .map_err(|_| AuthError::WrongPassphrase)?;
        let new_salt = generate_salt().map_err(vault_error)?;
        let new_vault = Vault::new(derive_passphrase_key(new.as_str(), &new_salt));
        let new_check = new_vault.key_check().map_err(vault_error)?;

        // Every store operation of this process holds the read side: none is half done.
        let mut opened = self.opened.write().unwrap_or_else(PoisonError::into_inner);
        let resealed = store.reseal_all(
            &[(META_SALT, &new_salt[..]), (META_KEY_CHECK, &new_check[..])],
            |ns, slot, blob| {
                let name = match slot {
                    BlobSlot::Record { name } => name,
                    BlobSlot::OutboxPayload { kind, .. } => kind,
                };
                match old.open(&ns.canonical(), name, blob) {
                    Ok(plaintext) => new_vault.seal(&ns.canonical(), name, &plaintext),
                    // Already unreadable under the old key (damaged): kept byte for byte, to be
                    // quarantined when read, rather than blocking the change or being dropped.
                    Err(_) => Ok(blob.to_vec()),
                }
            },
        );
        let resealed = match resealed {
            Ok(count) => count,
            Err(ResealError::Store(error)) => return Err(error.into()),
            Err(ResealError::Seal(error)) => return Err(vault_error(error)),
        };
        *opened = Some(Opened {
            store,
            vault: Arc::new(new_vault),
        });
        drop(opened);
        *self.key_source.write().unwrap_or_else(PoisonError::into_inner) = KeySource::Passphrase(new);
        tracing::info!(resealed, "the vault passphrase was changed");
        Ok(())
    }
}
