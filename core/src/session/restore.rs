//! Start-up: opening the store under the vault key (checked against the store's key
//! check), then restoring the stored session into memory, without the network.

use std::sync::{Arc, PoisonError};
use std::time::Duration;

use super::inner::{Inner, Opened};
use super::records::Tokens;
use super::sealed::{META_KEY_CHECK, META_SALT, vault_error};
use super::state::{AuthState, SignOutReason};
use crate::error::AuthError;
use crate::store::{ClientStore, RefreshLock};
use crate::vault::{KeySource, Vault, VaultError, generate_salt};

impl Inner {
    /// Opens the store and restores the session: `SignedIn` (with an expired token if
    /// need be) or `SignedOut`, saying whether the stored session was unreadable; an error
    /// when the store or its key cannot be read now.
    pub(super) async fn restore(self: Arc<Self>) -> Result<AuthState, AuthError> {
        let inner = self.clone();
        let opened = tokio::task::spawn_blocking(move || inner.open_store())
            .await
            .map_err(|_| AuthError::StorageUnavailable {
                message: "opening the store failed".to_owned(),
            })??;
        *self.opened.write().unwrap_or_else(PoisonError::into_inner) = Some(opened);
        match self.load_session().await? {
            Some((record, _)) => {
                let tokens = Tokens::new(&record.access_token, &record.refresh_token)?;
                self.set_session(record.user.clone(), tokens);
                Ok(self.current_state())
            }
            // Either nothing is stored, or `load_session` quarantined it and said so.
            None => Ok(match self.current_state() {
                unreadable @ AuthState::SignedOut {
                    reason: SignOutReason::StoredSessionUnreadable,
                } => unreadable,
                _ => AuthState::SignedOut {
                    reason: SignOutReason::NoStoredSession,
                },
            }),
        }
    }

    /// Opens the store and resolves the vault key under the refresh lock (so two processes
    /// creating a first key or salt agree), checking it against the stored key check.
    fn open_store(&self) -> Result<Opened, AuthError> {
        let store = Arc::new(ClientStore::open(&self.storage_path)?);
        let _lock = RefreshLock::acquire_within(&self.storage_path, Duration::from_secs(30))?;
        let key_source = self.key_source.read().unwrap_or_else(PoisonError::into_inner);
        let key = key_source
            .resolve(|| {
                let salt = generate_salt()?;
                store
                    .set_meta_if_absent(META_SALT, &salt)
                    .map_err(|e| VaultError::KeyUnavailable {
                        message: format!("the salt cannot be stored: {e}"),
                    })
            })
            .map_err(vault_error)?;
        let vault = Vault::new(key);
        match store.meta(META_KEY_CHECK)? {
            Some(check) => vault.verify_key_check(&check).map_err(|error| match error {
                VaultError::WrongKey | VaultError::Tampered => match *key_source {
                    KeySource::Passphrase(_) => AuthError::WrongPassphrase,
                    _ => AuthError::StorageUnavailable {
                        message: "the vault key does not open this store (was the key replaced?)".to_owned(),
                    },
                },
                other => vault_error(other),
            })?,
            None => {
                store.set_meta(META_KEY_CHECK, &vault.key_check().map_err(vault_error)?)?;
            }
        }
        self.load_clock_offset(&store)?;
        Ok(Opened {
            store,
            vault: Arc::new(vault),
        })
    }
}
