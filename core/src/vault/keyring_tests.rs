use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use keyring_core::api::CredentialStoreApi;
use keyring_core::mock;

use super::*;
use crate::vault::KeySource;

fn mock_store() -> Arc<CredentialStore> {
    mock::Store::new().unwrap()
}

fn stored_secret(store: &CredentialStore, service: &str, account: &str) -> Option<Vec<u8>> {
    store.build(service, account, None).unwrap().get_secret().ok()
}

#[test]
fn a_missing_key_is_generated_stored_and_found_again() {
    let store = mock_store();
    assert_eq!(stored_secret(&*store, "com.example.app", "vault"), None);
    let created = load_or_create_key(&*store, "com.example.app", "vault").unwrap();
    assert_eq!(
        stored_secret(&*store, "com.example.app", "vault").as_deref(),
        Some(&created.as_bytes()[..])
    );
    let found = load_or_create_key(&*store, "com.example.app", "vault").unwrap();
    assert_eq!(created.as_bytes(), found.as_bytes());
    // Another account is another key.
    let other = load_or_create_key(&*store, "com.example.app", "other").unwrap();
    assert_ne!(created.as_bytes(), other.as_bytes());
}

#[test]
fn a_stored_key_round_trips_as_raw_bytes_or_base64() {
    let store = mock_store();
    let entry = store.build("svc", "raw", None).unwrap();
    entry.set_secret(&[0x42; 32]).unwrap();
    assert_eq!(
        load_or_create_key(&*store, "svc", "raw").unwrap().as_bytes(),
        &[0x42; 32]
    );

    let entry = store.build("svc", "text", None).unwrap();
    entry
        .set_password(&format!("{}\n", STANDARD.encode([0x43; 32])))
        .unwrap();
    assert_eq!(
        load_or_create_key(&*store, "svc", "text").unwrap().as_bytes(),
        &[0x43; 32]
    );
}

#[test]
fn a_malformed_stored_key_is_refused_and_left_alone() {
    let store = mock_store();
    store
        .build("svc", "acct", None)
        .unwrap()
        .set_secret(b"not a key")
        .unwrap();
    assert!(matches!(
        load_or_create_key(&*store, "svc", "acct"),
        Err(VaultError::InvalidKey { .. })
    ));
    assert_eq!(
        stored_secret(&*store, "svc", "acct").as_deref(),
        Some(&b"not a key"[..])
    );
}

#[test]
fn a_store_that_cannot_be_opened_is_key_unavailable_and_nothing_is_written() {
    let store = mock_store();
    let entry = store.build("svc", "acct", None).unwrap();
    let cred: &mock::Cred = entry.as_any().downcast_ref().unwrap();
    cred.set_error(KeyringError::NoStorageAccess("the keychain is locked".into()));
    match load_or_create_key(&*store, "svc", "acct") {
        Err(VaultError::KeyUnavailable { message }) => assert!(message.contains("locked"), "{message}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(stored_secret(&*store, "svc", "acct"), None);
}

/// A credential that never holds a secret: its writes fail, or are silently dropped.
#[derive(Debug)]
struct NoWriteCred {
    write_fails: bool,
}

impl keyring_core::api::CredentialApi for NoWriteCred {
    fn set_secret(&self, _: &[u8]) -> keyring_core::Result<()> {
        match self.write_fails {
            true => Err(KeyringError::PlatformFailure("disk full".into())),
            false => Ok(()),
        }
    }
    fn get_secret(&self) -> keyring_core::Result<Vec<u8>> {
        Err(KeyringError::NoEntry)
    }
    fn delete_credential(&self) -> keyring_core::Result<()> {
        Err(KeyringError::NoEntry)
    }
    fn get_credential(&self) -> keyring_core::Result<Option<Arc<keyring_core::Credential>>> {
        Err(KeyringError::NoEntry)
    }
    fn get_specifiers(&self) -> Option<(String, String)> {
        None
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

#[derive(Debug)]
struct NoWriteStore {
    write_fails: bool,
}

impl CredentialStoreApi for NoWriteStore {
    fn vendor(&self) -> String {
        "test".into()
    }
    fn id(&self) -> String {
        "test".into()
    }
    fn build(&self, _: &str, _: &str, _: Option<&HashMap<&str, &str>>) -> keyring_core::Result<Entry> {
        Ok(Entry::new_with_credential(Arc::new(NoWriteCred {
            write_fails: self.write_fails,
        })))
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

#[test]
fn a_key_the_store_does_not_keep_is_never_used() {
    match load_or_create_key(&NoWriteStore { write_fails: true }, "svc", "acct") {
        Err(VaultError::KeyUnavailable { message }) => assert!(message.contains("disk full"), "{message}"),
        other => panic!("{other:?}"),
    }
    match load_or_create_key(&NoWriteStore { write_fails: false }, "svc", "acct") {
        Err(VaultError::KeyUnavailable { message }) => assert!(message.contains("did not keep"), "{message}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_failed_read_is_key_unavailable_and_the_key_is_not_replaced() {
    let store = mock_store();
    let entry = store.build("svc", "acct", None).unwrap();
    entry.set_secret(&[1; 32]).unwrap();
    let cred: &mock::Cred = entry.as_any().downcast_ref().unwrap();
    cred.set_error(KeyringError::PlatformFailure("the daemon crashed".into()));
    assert!(matches!(
        load_or_create_key(&*store, "svc", "acct"),
        Err(VaultError::KeyUnavailable { .. })
    ));
    assert_eq!(
        stored_secret(&*store, "svc", "acct").as_deref(),
        Some(&[1u8; 32][..])
    );
}

#[test]
fn key_source_keyring_uses_the_installed_default_store() {
    // The app (here, the test) installs a store before the first resolve; the vault then
    // uses it instead of installing the platform's.
    keyring_core::set_default_store(mock_store());
    let source = KeySource::Keyring {
        service: "com.example.default".into(),
        account: "vault".into(),
    };
    let salt = || -> Result<Vec<u8>, VaultError> { panic!("a keyring key needs no salt") };
    let first = source.resolve(salt).unwrap();
    let again = source.resolve(salt).unwrap();
    assert_eq!(first.as_bytes(), again.as_bytes());
    let store = default_store().unwrap();
    assert!(store.as_any().is::<mock::Store>());
}

/// The real platform store: it must either keep a key or say `KeyUnavailable`, never panic
/// and never hand out a key it did not keep.
#[cfg(target_os = "linux")]
#[test]
fn the_linux_keyutils_store_keeps_a_key_or_says_unavailable() {
    // A fixed name: without a session keyring, keyutils keeps the key it could not link
    // (unreadable to us), and a fixed name keeps that to one stray key per machine instead of
    // one per run, as a second add of the same name is refused.
    let account = "round-trip";
    let store = match platform_store() {
        Ok(store) => store,
        Err(err) => {
            assert!(matches!(err, VaultError::KeyUnavailable { .. }), "{err:?}");
            return;
        }
    };
    match load_or_create_key(&*store, "holdfast-core-tests", account) {
        Ok(created) => {
            let found = load_or_create_key(&*store, "holdfast-core-tests", account).unwrap();
            assert_eq!(created.as_bytes(), found.as_bytes());
            store
                .build("holdfast-core-tests", account, None)
                .unwrap()
                .delete_credential()
                .unwrap();
        }
        // Set HOLDFAST_REQUIRE_KEYUTILS=1 where a session keyring exists (e.g. under
        // `keyctl session -`) to make the real round trip mandatory.
        Err(VaultError::KeyUnavailable { message })
            if std::env::var_os("HOLDFAST_REQUIRE_KEYUTILS").is_none() =>
        {
            assert!(message.contains("session keyring"), "{message}");
            eprintln!("keyutils unavailable here: {message}");
        }
        Err(other) => panic!("expected a key or KeyUnavailable, got {other:?}"),
    }
}

#[cfg(target_os = "linux")]
#[test]
fn the_linux_store_refuses_an_ambiguous_service_name() {
    let store = platform_store().unwrap();
    match load_or_create_key(&*store, "svc@example", "acct") {
        Err(VaultError::KeyUnavailable { message }) => assert!(message.contains("service"), "{message}"),
        other => panic!("{other:?}"),
    }
}
