//! The OS credential store, through `keyring-core` and one store crate per platform.
//!
//! # Stores
//!
//! | Platform | Store | Why |
//! |----------|-------|-----|
//! | macOS | `apple-native-keyring-store`, legacy login keychain | works for unsigned tools and Python/desktop apps; the data-protection keychain needs a provisioning profile |
//! | iOS | `apple-native-keyring-store`, protected data, `AfterFirstUnlockThisDeviceOnly` | the only keychain on iOS; readable by background refresh once the phone was unlocked after boot, and never restored onto another device |
//! | Windows | `windows-native-keyring-store`, Credential Manager, `Local` persistence | the key stays on this machine, like the vault file it opens |
//! | Linux | `linux-keyutils-keyring-store`, kernel keyutils | needs no D-Bus, no desktop session and no C library (Secret Service would pull in zbus or libdbus); see the caveat below |
//! | Android, others | none | Android's store needs JNI set-up by the app and a newer Rust; use [`KeySource::Provided`](super::KeySource::Provided) over the Android Keystore |
//!
//! **Linux caveat**: keyutils lives in kernel memory. The key survives logout for a few
//! days (the persistent keyring) but not a reboot, after which a new key is generated and
//! the vault's key check reports [`VaultError::WrongKey`]. Desktop apps that need the key
//! to outlive reboots choose a passphrase, a provided key, or install a Secret Service store
//! (below).
//!
//! # Installing the store
//!
//! `keyring-core` keeps one default store per process. [`default_store`] uses the one the
//! app installed with `keyring_core::set_default_store` (a Secret Service store, Android's,
//! or the mock store in tests); if none is installed, it installs this platform's store
//! above, once, under a lock, and every later call finds it.
//!
//! # The stored secret
//!
//! The key is stored as its 32 raw bytes (every store here keeps binary secrets). A
//! credential holding base64 text of 32 bytes is read too, so a key provisioned with a
//! password-oriented tool works. A credential holding anything else is
//! [`VaultError::InvalidKey`] and is left untouched: overwriting it could destroy the only
//! key to the vault.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use base64::Engine;
use base64::engine::general_purpose::STANDARD_PAD_INDIFFERENT;
use keyring_core::{CredentialStore, Entry, Error as KeyringError};
use zeroize::Zeroizing;

use super::key::KEY_LEN;
use super::{VaultError, VaultKey};

/// The process's default credential store, installing [`platform_store`] on first use if
/// the app installed none.
pub fn default_store() -> Result<Arc<CredentialStore>, VaultError> {
    if let Some(store) = keyring_core::get_default_store() {
        return Ok(store);
    }
    static INSTALL: Mutex<()> = Mutex::new(());
    // The lock guards no data, so a panic elsewhere while holding it leaves nothing torn.
    let _installing = INSTALL.lock().unwrap_or_else(PoisonError::into_inner);
    // Another thread may have installed it while this one waited.
    if let Some(store) = keyring_core::get_default_store() {
        return Ok(store);
    }
    let store = platform_store()?;
    keyring_core::set_default_store(Arc::clone(&store));
    Ok(store)
}

/// This platform's credential store (see the module docs), without installing it.
pub fn platform_store() -> Result<Arc<CredentialStore>, VaultError> {
    #[cfg(target_os = "linux")]
    {
        // Refusing the divider ('@') in service names makes "keyring:<account>@<service>"
        // unambiguous even when accounts are e-mail addresses.
        let config = HashMap::from([("service_no_divider", "true")]);
        let store =
            linux_keyutils_keyring_store::Store::new_with_configuration(&config).map_err(unavailable)?;
        Ok(store)
    }
    #[cfg(target_os = "macos")]
    {
        let store = apple_native_keyring_store::keychain::Store::new().map_err(unavailable)?;
        Ok(store)
    }
    #[cfg(target_os = "ios")]
    {
        let store = apple_native_keyring_store::protected::Store::new().map_err(unavailable)?;
        Ok(store)
    }
    #[cfg(target_os = "windows")]
    {
        // The default naming ("<account>.<service>"): refusing the divider would refuse
        // reverse-DNS service names.
        let store = windows_native_keyring_store::Store::new().map_err(unavailable)?;
        Ok(store)
    }
    #[cfg(not(any(
        target_os = "linux",
        target_os = "macos",
        target_os = "ios",
        target_os = "windows"
    )))]
    {
        Err(VaultError::key_unavailable(
            "no OS credential store is built in for this platform: use a provided key (e.g. the \
             Android Keystore) or install a keyring-core store",
        ))
    }
}

/// The key in credential (`service`, `account`) of `store`; when there is none, a new key,
/// stored and read back (so the key used is the one the store really keeps).
pub fn load_or_create_key(
    store: &CredentialStore,
    service: &str,
    account: &str,
) -> Result<VaultKey, VaultError> {
    let failed = |err| store_failed(store, err);
    let entry = build_entry(store, service, account).map_err(failed)?;
    match entry.get_secret() {
        Ok(secret) => return decode_stored(Zeroizing::new(secret)),
        Err(KeyringError::NoEntry) => {}
        Err(err) => return Err(failed(err)),
    }
    let key = VaultKey::generate()?;
    entry.set_secret(key.as_bytes()).map_err(failed)?;
    match entry.get_secret() {
        Ok(secret) => decode_stored(Zeroizing::new(secret)),
        Err(KeyringError::NoEntry) => Err(VaultError::key_unavailable(
            "the credential store did not keep the new key",
        )),
        Err(err) => Err(failed(err)),
    }
}

/// Whether `store` is the keyutils store this module installs on Linux.
fn is_keyutils(store: &CredentialStore) -> bool {
    #[cfg(target_os = "linux")]
    return store.as_any().is::<linux_keyutils_keyring_store::Store>();
    #[cfg(not(target_os = "linux"))]
    {
        let _ = store;
        false
    }
}

fn build_entry(store: &CredentialStore, service: &str, account: &str) -> keyring_core::Result<Entry> {
    let modifiers = entry_modifiers(store);
    let modifiers = (!modifiers.is_empty()).then_some(&modifiers);
    store.build(service, account, modifiers)
}

/// Per-credential settings for the platform stores this module installs; none for a store
/// the app installed, whose modifiers this crate cannot know.
fn entry_modifiers(store: &CredentialStore) -> HashMap<&'static str, &'static str> {
    #[cfg(target_os = "ios")]
    if store
        .as_any()
        .is::<apple_native_keyring_store::protected::Store>()
    {
        return HashMap::from([("access-policy", "after-first-unlock-this-device-only")]);
    }
    #[cfg(target_os = "windows")]
    if store.as_any().is::<windows_native_keyring_store::Store>() {
        return HashMap::from([("persistence", "Local")]);
    }
    let _ = store;
    HashMap::new()
}

fn decode_stored(secret: Zeroizing<Vec<u8>>) -> Result<VaultKey, VaultError> {
    const MALFORMED: VaultError = VaultError::InvalidKey {
        reason: "the credential holds neither 32 bytes nor base64 of 32 bytes",
    };
    if secret.len() == KEY_LEN {
        return VaultKey::from_bytes(&secret);
    }
    let text = std::str::from_utf8(&secret).map_err(|_| MALFORMED)?;
    // The decode error is dropped: it quotes the offending byte of the secret.
    let decoded = Zeroizing::new(
        STANDARD_PAD_INDIFFERENT
            .decode(text.trim())
            .map_err(|_| MALFORMED)?,
    );
    VaultKey::from_bytes(&decoded).map_err(|_| MALFORMED)
}

/// A failure of `store` as `KeyUnavailable`, with a hint when it is the keyutils store
/// refusing access: its usual cause is no session keyring (containers, services started
/// outside a login).
fn store_failed(store: &CredentialStore, err: KeyringError) -> VaultError {
    let no_access = matches!(err, KeyringError::NoStorageAccess(_));
    match unavailable(err) {
        VaultError::KeyUnavailable { message } if no_access && is_keyutils(store) => {
            VaultError::KeyUnavailable {
                message: format!(
                    "{message} (the Linux keyutils store needs a session keyring: run inside a login \
                 session, or under `keyctl session -`)"
                ),
            }
        }
        other => other,
    }
}

/// A credential-store failure as `KeyUnavailable`, worded here so that no store's
/// formatting of secret data can reach the message.
fn unavailable(err: KeyringError) -> VaultError {
    let message = match &err {
        KeyringError::NoStorageAccess(cause) => format!("the credential store refused access: {cause}"),
        KeyringError::PlatformFailure(cause) => format!("the credential store failed: {cause}"),
        KeyringError::NoDefaultStore => "no credential store is installed".to_owned(),
        KeyringError::NoEntry => "the credential is missing".to_owned(),
        KeyringError::Ambiguous(entries) => {
            format!("{} credentials match the vault key's name", entries.len())
        }
        KeyringError::Invalid(what, why) => format!("the credential store refused the {what}: {why}"),
        KeyringError::TooLong(what, limit) => {
            format!("the credential store limits the {what} to {limit} characters")
        }
        KeyringError::NotSupportedByStore(why) => format!("the credential store cannot do this: {why}"),
        KeyringError::BadStoreFormat(why) => format!("the credential store is damaged: {why}"),
        KeyringError::BadEncoding(_) | KeyringError::BadDataFormat(..) => {
            "the stored credential is malformed".to_owned()
        }
        _ => "the credential store failed".to_owned(),
    };
    VaultError::KeyUnavailable { message }
}

#[cfg(test)]
#[path = "keyring_tests.rs"]
mod tests;
