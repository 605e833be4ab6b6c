use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;
use crate::vault::Vault;

/// A host key store in memory, with switches for the failures a real one can have.
#[derive(Default)]
struct MemoryProvider {
    key: Mutex<Option<Vec<u8>>>,
    stores: AtomicUsize,
    drops_keys: bool,
    load_fails: bool,
    store_fails: bool,
}

impl KeyProvider for MemoryProvider {
    fn load_key(&self) -> Result<Option<Vec<u8>>, KeyProviderError> {
        if self.load_fails {
            return Err(KeyProviderError::new("the keychain is locked"));
        }
        Ok(self.key.lock().unwrap().clone())
    }

    fn store_key(&self, key: &[u8]) -> Result<(), KeyProviderError> {
        self.stores.fetch_add(1, Ordering::SeqCst);
        if self.store_fails {
            return Err(KeyProviderError::new("the keystore is full"));
        }
        if !self.drops_keys {
            *self.key.lock().unwrap() = Some(key.to_vec());
        }
        Ok(())
    }
}

fn no_salt() -> Result<Vec<u8>, VaultError> {
    panic!("only a passphrase needs the salt")
}

fn provided(provider: &Arc<MemoryProvider>) -> KeySource {
    KeySource::Provided(Arc::clone(provider) as Arc<dyn KeyProvider>)
}

#[test]
fn a_provided_key_is_generated_once_then_reused() {
    let provider = Arc::new(MemoryProvider::default());
    let first = provided(&provider).resolve(no_salt).unwrap();
    assert_eq!(
        provider.key.lock().unwrap().as_deref(),
        Some(&first.as_bytes()[..])
    );
    let second = provided(&provider).resolve(no_salt).unwrap();
    assert_eq!(first.as_bytes(), second.as_bytes());
    assert_eq!(provider.stores.load(Ordering::SeqCst), 1);
}

#[test]
fn a_provided_key_of_the_wrong_length_is_refused_and_kept() {
    let provider = Arc::new(MemoryProvider {
        key: Mutex::new(Some(vec![1; 16])),
        ..Default::default()
    });
    assert!(matches!(
        provided(&provider).resolve(no_salt),
        Err(VaultError::InvalidKey { .. })
    ));
    assert_eq!(provider.stores.load(Ordering::SeqCst), 0);
    assert_eq!(provider.key.lock().unwrap().as_deref(), Some(&[1u8; 16][..]));
}

#[test]
fn provider_failures_are_key_unavailable() {
    let locked = Arc::new(MemoryProvider {
        load_fails: true,
        ..Default::default()
    });
    match provided(&locked).resolve(no_salt) {
        Err(VaultError::KeyUnavailable { message }) => {
            assert!(message.contains("the keychain is locked"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        locked.stores.load(Ordering::SeqCst),
        0,
        "a failed load must not replace the key"
    );

    let full = Arc::new(MemoryProvider {
        store_fails: true,
        ..Default::default()
    });
    assert!(matches!(
        provided(&full).resolve(no_salt),
        Err(VaultError::KeyUnavailable { .. })
    ));

    let forgetful = Arc::new(MemoryProvider {
        drops_keys: true,
        ..Default::default()
    });
    match provided(&forgetful).resolve(no_salt) {
        Err(VaultError::KeyUnavailable { message }) => assert!(message.contains("did not keep"), "{message}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_passphrase_key_uses_the_stored_salt() {
    let salt = vec![0x22; 32];
    let source = KeySource::Passphrase(Passphrase::new("my secure passphrase"));
    let key = source.resolve(|| Ok(salt.clone())).unwrap();
    assert_eq!(
        key.as_bytes(),
        derive_passphrase_key("my secure passphrase", &salt).as_bytes()
    );
    // The key opens what it sealed and a check made by the same passphrase.
    let vault = Vault::new(key);
    assert_eq!(vault.verify_key_check(&vault.key_check().unwrap()), Ok(()));
}

#[test]
fn a_passphrase_needs_a_usable_salt() {
    let source = KeySource::Passphrase(Passphrase::new("pw"));
    assert!(matches!(
        source.resolve(|| Ok(vec![1; 15])),
        Err(VaultError::InvalidKey { .. })
    ));
    let unavailable = VaultError::key_unavailable("the store is locked");
    assert_eq!(
        source.resolve(|| Err(unavailable.clone())).unwrap_err(),
        unavailable
    );
}

#[test]
fn debug_shows_no_secret() {
    let passphrase = KeySource::Passphrase(Passphrase::new("hunter2-secret"));
    let shown = format!("{passphrase:?} {passphrase:#?}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert_eq!(format!("{passphrase:?}"), "Passphrase(Passphrase(<redacted>))");

    let provider = Arc::new(MemoryProvider {
        key: Mutex::new(Some(vec![0xcd; 32])),
        ..Default::default()
    });
    let source = provided(&provider);
    source.resolve(no_salt).unwrap();
    assert_eq!(format!("{source:?}"), "Provided(<host key provider>)");

    let keyring = KeySource::Keyring {
        service: "com.example.app".into(),
        account: "vault".into(),
    };
    assert_eq!(
        format!("{keyring:?}"),
        r#"Keyring { service: "com.example.app", account: "vault" }"#
    );
}
