//! The vault seen from the session: what `initialize` does with a damaged store or the
//! wrong key, for each key source (passphrase, a host-provided key, the OS keyring through
//! `keyring-core`'s mock store).
//!
//! The rules: a tampered or truncated record is quarantined byte for byte (never deleted)
//! and the user signs in again; a damaged store file, a damaged key check or a key that
//! does not open the vault is `Unavailable` (never `SignedOut`) and nothing is written; a
//! wrong passphrase says so; no secret is ever stored in plaintext.
//!
//! The store file is inspected and damaged with `rusqlite` directly, as a disk fault or
//! another program would.

// The harness re-exports its fault proxy, which this suite has no use for.
#[allow(unused_imports)]
mod support;

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use holdfast_core::store::Namespace;
use holdfast_core::vault::KeyProviderError;
use holdfast_core::vault::{Passphrase, Vault, derive_passphrase_key};
use holdfast_core::{
    AuthClient, AuthError, AuthEvent, AuthState, ClientConfig, KeyProvider, KeySource, SignOutReason,
};
use rusqlite::{Connection, OptionalExtension, params};
use support::{Device, Events, Server, clock, email, stored_record};

/// The passphrase `support::Device::client` uses.
const PASSPHRASE: &str = "test passphrase";

// ---------------------------------------------------------------------------------------
// The store file, read and damaged from outside
// ---------------------------------------------------------------------------------------

fn db(path: &Path) -> Connection {
    Connection::open(path).expect("open the client store")
}

fn set_record_blob(path: &Path, name: &str, blob: &[u8]) {
    let changed = db(path)
        .execute(
            "UPDATE records SET blob = ?2 WHERE name = ?1",
            params![name, blob],
        )
        .expect("write a record");
    assert_eq!(changed, 1);
}

fn meta(path: &Path, key: &str) -> Option<Vec<u8>> {
    db(path)
        .query_row("SELECT value FROM meta WHERE key = ?1", params![key], |row| {
            row.get(0)
        })
        .optional()
        .expect("read meta")
}

fn set_meta(path: &Path, key: &str, value: &[u8]) {
    let changed = db(path)
        .execute("UPDATE meta SET value = ?2 WHERE key = ?1", params![key, value])
        .expect("write meta");
    assert_eq!(changed, 1);
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Quarantined {
    name: String,
    blob: Vec<u8>,
    version: i64,
    reason: String,
}

fn quarantined(path: &Path) -> Vec<Quarantined> {
    let conn = db(path);
    let mut statement = conn
        .prepare("SELECT name, blob, version, reason FROM quarantine ORDER BY id")
        .expect("read the quarantine");
    statement
        .query_map([], |row| {
            Ok(Quarantined {
                name: row.get(0)?,
                blob: row.get(1)?,
                version: row.get(2)?,
                reason: row.get(3)?,
            })
        })
        .expect("read the quarantine")
        .collect::<Result<_, _>>()
        .expect("read the quarantine")
}

/// Every row of every table the session keeps: equal snapshots mean nothing was written.
#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    records: Vec<(String, String, String, Vec<u8>, i64)>,
    meta: Vec<(String, Vec<u8>)>,
    quarantine: Vec<Quarantined>,
    outbox: i64,
}

fn snapshot(path: &Path) -> Snapshot {
    let conn = db(path);
    let records = conn
        .prepare("SELECT server, account, name, blob, version FROM records ORDER BY server, account, name")
        .unwrap()
        .query_map([], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let meta = conn
        .prepare("SELECT key, value FROM meta ORDER BY key")
        .unwrap()
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let outbox = conn
        .query_row("SELECT count(*) FROM outbox", [], |row| row.get(0))
        .unwrap();
    Snapshot {
        records,
        meta,
        quarantine: quarantined(path),
        outbox,
    }
}

/// Moves everything from the WAL into the database file, so the file alone holds the data
/// (before damaging the file itself).
fn checkpoint(path: &Path) {
    let (busy, _, _): (i64, i64, i64) = db(path)
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })
        .expect("checkpoint");
    assert_eq!(busy, 0, "the checkpoint completed");
}

/// Whether any file of the store's folder (database, WAL, lock) contains `needle`.
fn folder_contains(device: &Device, needle: &[u8]) -> bool {
    std::fs::read_dir(device.dir.path())
        .expect("list the store folder")
        .map(|entry| std::fs::read(entry.expect("a folder entry").path()).unwrap_or_default())
        .any(|bytes| bytes.windows(needle.len()).any(|window| window == needle))
}

/// Lets the tasks a dropped client spawned (outbox delivery) finish with the store.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(100)).await;
}

// ---------------------------------------------------------------------------------------
// Clients with other key sources
// ---------------------------------------------------------------------------------------

fn keyed_client(device: &Device, url: &str, key_source: KeySource) -> AuthClient {
    let mut config = ClientConfig::new(url, device.path(), key_source);
    config.connect_timeout = Duration::from_millis(500);
    config.request_timeout = Duration::from_secs(2);
    AuthClient::new(config).expect("client config")
}

fn passphrase(text: &str) -> KeySource {
    KeySource::Passphrase(Passphrase::new(text))
}

/// A host key keeper in memory, that can be made to fail.
#[derive(Default)]
struct MemoryKeys {
    key: Mutex<Option<Vec<u8>>>,
    failure: Mutex<Option<String>>,
    stores: AtomicUsize,
}

impl MemoryKeys {
    fn holding(key: &[u8]) -> Arc<MemoryKeys> {
        let keys = MemoryKeys::default();
        *keys.key.lock().unwrap() = Some(key.to_vec());
        Arc::new(keys)
    }

    fn key(&self) -> Option<Vec<u8>> {
        self.key.lock().unwrap().clone()
    }

    fn fail_with(&self, message: Option<&str>) {
        *self.failure.lock().unwrap() = message.map(str::to_owned);
    }

    fn failure(&self) -> Result<(), KeyProviderError> {
        match self.failure.lock().unwrap().as_deref() {
            Some(message) => Err(KeyProviderError::new(message)),
            None => Ok(()),
        }
    }
}

impl KeyProvider for MemoryKeys {
    fn load_key(&self) -> Result<Option<Vec<u8>>, KeyProviderError> {
        self.failure()?;
        Ok(self.key())
    }

    fn store_key(&self, key: &[u8]) -> Result<(), KeyProviderError> {
        self.failure()?;
        self.stores.fetch_add(1, Ordering::SeqCst);
        *self.key.lock().unwrap() = Some(key.to_vec());
        Ok(())
    }
}

fn provided(keys: &Arc<MemoryKeys>) -> KeySource {
    KeySource::Provided(keys.clone())
}

/// `state` is `Unavailable` with a reason containing `expected`.
#[track_caller]
fn assert_unavailable(state: &AuthState, expected: &str) {
    match state {
        AuthState::Unavailable { reason } => {
            assert!(reason.contains(expected), "reason {reason:?} lacks {expected:?}")
        }
        other => panic!("expected Unavailable ({expected}), got {other:?}"),
    }
}

/// A client that could not open its store writes nothing when asked to sign in or up.
async fn nothing_written_by(client: &AuthClient, address: &str) {
    refuses_to_write(client, address, |error| {
        matches!(error, AuthError::StorageUnavailable { .. })
    })
    .await;
}

/// Sign-in, sign-up and `access_token` each fail with an error `expected` accepts.
async fn refuses_to_write(client: &AuthClient, address: &str, expected: impl Fn(&AuthError) -> bool) {
    let signed_in = client.sign_in(address, support::PASSWORD).await;
    assert!(signed_in.as_ref().is_err_and(&expected), "{signed_in:?}");
    let signed_up = client.sign_up(&email("blocked"), support::PASSWORD, None).await;
    assert!(signed_up.as_ref().is_err_and(&expected), "{signed_up:?}");
    let token = client.access_token().await;
    assert!(token.as_ref().is_err_and(&expected), "{token:?}");
}

// ---------------------------------------------------------------------------------------
// Damaged records: quarantined, never lost
// ---------------------------------------------------------------------------------------

/// How a test damages the sealed session: from the session blob and the device blob.
type Damage = Box<dyn Fn(&[u8], &[u8]) -> Vec<u8>>;

fn flip(at: fn(usize) -> usize) -> Damage {
    Box::new(move |session, _| {
        let mut blob = session.to_vec();
        let index = at(blob.len());
        blob[index] ^= 0x01;
        blob
    })
}

fn truncate(to: fn(usize) -> usize) -> Damage {
    Box::new(move |session, _| session[..to(session.len())].to_vec())
}

/// For each damage: the session is damaged while the app is not running; the next start
/// quarantines it (the exact bytes, under its version), the device identity is untouched,
/// nothing panics, and signing in again works on the same device.
async fn damaged_sessions_are_quarantined(label: &str, cases: Vec<(&'static str, Damage)>) {
    let server = Server::start().await;
    let device = Device::new();
    let clock = clock();
    let url = server.url();
    let client = device.client(&url, &clock);
    client.initialize().await;
    let address = email(label);
    let user = client.sign_up(&address, support::PASSWORD, None).await.unwrap();
    let device_id = client.device_id().await.unwrap();
    drop(client);
    let mut expected_quarantine = Vec::new();

    for (case, damage) in cases {
        settle().await;
        let path = device.path();
        let (blob, version) = stored_record(&path, "session").expect("a stored session");
        let device_record = stored_record(&path, "device").expect("a stored device");
        let damaged = damage(&blob, &device_record.0);
        assert_ne!(damaged, blob, "{case}: the damage changes the record");
        set_record_blob(&path, "session", &damaged);

        let client = device.client(&url, &clock);
        let events = Events::record(&client);
        let state = client.initialize().await;
        assert_eq!(
            state,
            AuthState::SignedOut {
                reason: SignOutReason::StoredSessionUnreadable
            },
            "{case}: an unreadable session is signed out and said to be unreadable"
        );
        assert!(
            events
                .all()
                .contains(&AuthEvent::StateChanged(AuthState::SignedOut {
                    reason: SignOutReason::StoredSessionUnreadable
                })),
            "{case}: the app was told the session was unreadable: {:?}",
            events.all()
        );
        assert_eq!(client.current_user(), None, "{case}");
        assert_eq!(client.access_token().await, Err(AuthError::NotSignedIn), "{case}");

        // Moved, not lost: the exact bytes under their version, with a reason.
        assert_eq!(
            stored_record(&path, "session"),
            None,
            "{case}: no longer a live record"
        );
        let quarantine = quarantined(&path);
        assert_eq!(quarantine.len(), expected_quarantine.len() + 1, "{case}");
        let entry = quarantine.last().unwrap();
        assert_eq!(entry.name, "session", "{case}");
        assert_eq!(entry.blob, damaged, "{case}: quarantined byte for byte");
        assert_eq!(entry.version, version, "{case}");
        assert!(!entry.reason.is_empty(), "{case}");
        assert_eq!(
            &quarantine[..expected_quarantine.len()],
            &expected_quarantine[..],
            "{case}: earlier entries stay"
        );
        expected_quarantine = quarantine;
        assert_eq!(
            stored_record(&path, "device"),
            Some(device_record),
            "{case}: device untouched"
        );

        // Signing in again works, on the same device identity.
        let again = client
            .sign_in(&address, support::PASSWORD)
            .await
            .unwrap()
            .into_user();
        assert_eq!(again.id, user.id, "{case}");
        assert_eq!(client.device_id().await.unwrap(), device_id, "{case}");
        assert!(client.state().is_signed_in(), "{case}");
        drop(client);
    }
    settle().await;
    let restarted = device.client(&url, &clock);
    assert!(restarted.initialize().await.is_signed_in());
    assert_eq!(quarantined(&device.path()), expected_quarantine);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tampered_session_is_quarantined_byte_for_byte_and_sign_in_works_again() {
    let cases: Vec<(&'static str, Damage)> = vec![
        ("format version byte", flip(|_| 0)),
        ("nonce", flip(|_| 5)),
        ("ciphertext", flip(|len| len / 2)),
        ("tag", flip(|len| len - 1)),
        (
            "the device record's blob",
            Box::new(|_, device: &[u8]| device.to_vec()),
        ),
    ];
    damaged_sessions_are_quarantined("tampered", cases).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_truncated_session_is_quarantined_byte_for_byte_and_sign_in_works_again() {
    let cases: Vec<(&'static str, Damage)> = vec![
        ("half", truncate(|len| len / 2)),
        ("empty", truncate(|_| 0)),
        ("one byte", truncate(|_| 1)),
        ("without the last byte", truncate(|len| len - 1)),
    ];
    damaged_sessions_are_quarantined("truncated", cases).await;
}

/// A signed-up store whose session record is replaced by an authentic envelope (the right
/// key, the right record) holding `content`, as a newer or buggy build could write. Returns
/// the server (keep it alive), the store and the sealed bytes.
async fn sealed_session_holding(content: &[u8]) -> (Server, Device, Vec<u8>) {
    let server = Server::start().await;
    let url = server.url();
    let device = Device::new();
    let client = device.client(&url, &clock());
    client.initialize().await;
    client
        .sign_up(&email("authentic"), support::PASSWORD, None)
        .await
        .unwrap();
    drop(client);
    settle().await;
    let salt = meta(&device.path(), "vault.salt").expect("a salt");
    let vault = Vault::new(derive_passphrase_key(PASSPHRASE, &salt));
    let namespace = Namespace::for_server(&url).unwrap().canonical();
    let sealed = vault.seal(&namespace, "session", content).unwrap();
    set_record_blob(&device.path(), "session", &sealed);
    (server, device, sealed)
}

#[tokio::test(flavor = "multi_thread")]
async fn an_authentic_record_that_is_not_a_session_is_quarantined() {
    let (server, device, sealed) = sealed_session_holding(br#"{"not":"a session"}"#).await;
    let client = device.client(&server.url(), &clock());
    let events = Events::record(&client);
    assert!(matches!(client.initialize().await, AuthState::SignedOut { .. }));
    assert!(
        events
            .all()
            .contains(&AuthEvent::StateChanged(AuthState::SignedOut {
                reason: SignOutReason::StoredSessionUnreadable
            }))
    );
    assert_eq!(stored_record(&device.path(), "session"), None);
    let quarantine = quarantined(&device.path());
    assert_eq!(quarantine.len(), 1);
    assert_eq!(quarantine[0].name, "session");
    assert_eq!(quarantine[0].blob, sealed, "quarantined byte for byte");
}

/// The quarantine reason is stored unencrypted and logged: it names the failure but never
/// quotes the decrypted record (serde's own messages quote the values they reject).
#[tokio::test(flavor = "multi_thread")]
async fn a_quarantine_reason_never_quotes_the_decrypted_record() {
    let secret = "decrypted-secret-7f3a";
    let content = format!(r#"{{"user":"{secret}","accessToken":"a","refreshToken":"r"}}"#);
    let (server, device, _) = sealed_session_holding(content.as_bytes()).await;
    let client = device.client(&server.url(), &clock());
    assert!(matches!(client.initialize().await, AuthState::SignedOut { .. }));
    let quarantine = quarantined(&device.path());
    assert_eq!(quarantine.len(), 1);
    assert!(
        !quarantine[0].reason.contains(secret),
        "the quarantine reason quotes decrypted content: {}",
        quarantine[0].reason
    );
}

/// `initialize` tells the app the session was unreadable, not that there never was one.
#[tokio::test(flavor = "multi_thread")]
async fn initialize_reports_a_quarantined_session_as_unreadable() {
    let server = Server::start().await;
    let device = Device::new();
    let clock = clock();
    let client = device.client(&server.url(), &clock);
    client.initialize().await;
    client
        .sign_up(&email("reason"), support::PASSWORD, None)
        .await
        .unwrap();
    drop(client);
    settle().await;
    let (blob, _) = stored_record(&device.path(), "session").unwrap();
    set_record_blob(&device.path(), "session", &blob[..blob.len() / 2]);

    let client = device.client(&server.url(), &clock);
    let unreadable = AuthState::SignedOut {
        reason: SignOutReason::StoredSessionUnreadable,
    };
    assert_eq!(client.initialize().await, unreadable);
    assert_eq!(client.state(), unreadable);
}

// ---------------------------------------------------------------------------------------
// Damaged key check and store file: unavailable, nothing written
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn a_damaged_key_check_is_unavailable_and_the_session_is_untouched() {
    let server = Server::start().await;
    let device = Device::new();
    let clock = clock();
    let url = server.url();
    let client = device.client(&url, &clock);
    client.initialize().await;
    let address = email("keycheck");
    let user = client.sign_up(&address, support::PASSWORD, None).await.unwrap();
    drop(client);
    settle().await;
    let path = device.path();
    let check = meta(&path, "vault.key_check").expect("a key check");

    let mut flipped = check.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x01;
    let cases = [
        ("a flipped byte", flipped),
        ("truncated", check[..3].to_vec()),
        ("empty", Vec::new()),
    ];
    for (case, damaged) in cases {
        set_meta(&path, "vault.key_check", &damaged);
        let before = snapshot(&path);
        let client = device.client(&url, &clock);
        let state = client.initialize().await;
        assert!(
            matches!(state, AuthState::Unavailable { .. }),
            "{case}: got {state:?}"
        );
        assert_eq!(client.current_user(), None, "{case}");
        // Under a passphrase a damaged check reads as a wrong passphrase (the state says so
        // too); either way nothing is written.
        refuses_to_write(&client, &address, |error| {
            matches!(
                error,
                AuthError::StorageUnavailable { .. } | AuthError::WrongPassphrase
            )
        })
        .await;
        drop(client);
        settle().await;
        assert_eq!(
            snapshot(&path),
            before,
            "{case}: nothing written, the check not replaced"
        );
        assert!(stored_record(&path, "session").is_some(), "{case}");
    }

    // The session was never touched: with the check repaired, it opens.
    set_meta(&path, "vault.key_check", &check);
    let client = device.client(&url, &clock);
    assert!(matches!(
        client.initialize().await,
        AuthState::SignedIn { user: restored, .. } if restored == user
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_damaged_database_file_is_unavailable_and_left_as_it_is() {
    let server = Server::start().await;
    let device = Device::new();
    let clock = clock();
    let url = server.url();
    let client = device.client(&url, &clock);
    client.initialize().await;
    let address = email("file");
    let user = client.sign_up(&address, support::PASSWORD, None).await.unwrap();
    drop(client);
    settle().await;
    let path = device.path();
    checkpoint(&path);
    let pristine = std::fs::read(&path).unwrap();
    assert!(pristine.len() >= 4096 * 4, "a multi-page database");

    let mut header = pristine.clone();
    header[..100].fill(0xa5);
    let mut pages = pristine.clone();
    pages[4096..].fill(0x5a);
    let cases = [
        ("truncated to half", pristine[..pristine.len() / 2].to_vec()),
        ("truncated to one page", pristine[..4096].to_vec()),
        ("header overwritten", header),
        ("every page but the first overwritten", pages),
        ("not a database at all", b"<html>not a database</html>".to_vec()),
    ];
    for (case, damaged) in cases {
        std::fs::write(&path, &damaged).unwrap();
        let client = device.client(&url, &clock);
        let state = client.initialize().await;
        assert!(
            matches!(state, AuthState::Unavailable { .. }),
            "{case}: got {state:?}"
        );
        if let AuthState::Unavailable { reason } = &state {
            // Named by the store, not a caught panic ("a storage task failed").
            assert!(
                reason.contains("corrupt") || reason.contains("malformed") || reason.contains("database"),
                "{case}: {reason}"
            );
        }
        nothing_written_by(&client, &address).await;
        drop(client);
        settle().await;
        assert!(path.exists(), "{case}: not deleted");
        assert_eq!(std::fs::read(&path).unwrap(), damaged, "{case}: not overwritten");
    }

    // Put back, the file opens: the damage was all there was.
    std::fs::write(&path, &pristine).unwrap();
    let client = device.client(&url, &clock);
    assert_eq!(
        client.initialize().await,
        AuthState::SignedIn {
            user,
            token_fresh: true
        }
    );
}

// ---------------------------------------------------------------------------------------
// Key sources
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_passphrase_is_a_clear_error_and_the_right_one_opens_the_session() {
    let server = Server::start().await;
    let device = Device::new();
    let url = server.url();
    let client = keyed_client(&device, &url, passphrase(PASSPHRASE));
    client.initialize().await;
    let address = email("passphrase");
    let user = client
        .sign_up(&address, support::PASSWORD, Some("Ada"))
        .await
        .unwrap();
    let access = client.access_token().await.unwrap();
    drop(client);
    settle().await;
    let path = device.path();
    let before = snapshot(&path);

    let wrong = keyed_client(&device, &url, passphrase("test passphrasE"));
    let state = wrong.initialize().await;
    assert_eq!(
        state,
        AuthState::Unavailable {
            reason: AuthError::WrongPassphrase.to_string()
        }
    );
    assert_eq!(AuthError::WrongPassphrase.to_string(), "wrong passphrase");
    assert_eq!(wrong.state(), state);
    assert_eq!(wrong.current_user(), None);
    // Asking for a token says the passphrase is wrong, not that nobody is signed in (nor
    // a generic storage failure).
    assert_eq!(wrong.access_token().await, Err(AuthError::WrongPassphrase));
    refuses_to_write(&wrong, &address, |error| *error == AuthError::WrongPassphrase).await;
    drop(wrong);
    settle().await;
    assert_eq!(snapshot(&path), before, "the stored session is untouched");

    let right = keyed_client(&device, &url, passphrase(PASSPHRASE));
    assert_eq!(
        right.initialize().await,
        AuthState::SignedIn {
            user: user.clone(),
            token_fresh: true
        }
    );
    assert_eq!(right.access_token().await.unwrap(), access);
    assert_eq!(right.current_user(), Some(user));
    assert!(
        !folder_contains(&device, address.as_bytes()),
        "no plaintext email"
    );
    assert!(!folder_contains(&device, access.as_bytes()), "no plaintext token");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_provided_key_opens_the_session_and_a_failing_or_different_one_is_unavailable() {
    let server = Server::start().await;
    let device = Device::new();
    let url = server.url();
    let keys = Arc::new(MemoryKeys::default());
    let client = keyed_client(&device, &url, provided(&keys));
    assert_eq!(
        client.initialize().await,
        AuthState::SignedOut {
            reason: SignOutReason::NoStoredSession
        }
    );
    assert_eq!(
        keys.stores.load(Ordering::SeqCst),
        1,
        "a key was generated and kept"
    );
    let key = keys.key().expect("the provider holds the key");
    assert_eq!(key.len(), 32);
    let address = email("provided");
    let user = client.sign_up(&address, support::PASSWORD, None).await.unwrap();
    let access = client.access_token().await.unwrap();
    drop(client);
    settle().await;
    let path = device.path();
    assert!(
        !folder_contains(&device, address.as_bytes()),
        "no plaintext email"
    );
    assert!(!folder_contains(&device, access.as_bytes()), "no plaintext token");
    assert!(!folder_contains(&device, &key), "the key is not in the store");

    // Restart: the same key opens the session.
    let restarted = keyed_client(&device, &url, provided(&keys));
    assert_eq!(
        restarted.initialize().await,
        AuthState::SignedIn {
            user: user.clone(),
            token_fresh: true
        }
    );
    assert_eq!(restarted.access_token().await.unwrap(), access);
    drop(restarted);
    settle().await;
    let before = snapshot(&path);

    // The host's keeper fails (a locked Keystore): unavailable, never signed out.
    keys.fail_with(Some("the keystore is locked"));
    let locked = keyed_client(&device, &url, provided(&keys));
    assert_unavailable(&locked.initialize().await, "the keystore is locked");
    nothing_written_by(&locked, &address).await;
    // Unlocked, the same client opens it.
    keys.fail_with(None);
    assert!(locked.initialize().await.is_signed_in());
    drop(locked);
    settle().await;
    assert_eq!(keys.key().as_deref(), Some(&key[..]), "the key was not replaced");

    // Another 32-byte key, a malformed one, or none at all (the keeper lost it): the
    // vault does not open, and nothing is deleted or rewritten.
    let other = MemoryKeys::holding(&[7; 32]);
    let short = MemoryKeys::holding(&[7; 16]);
    let lost = Arc::new(MemoryKeys::default());
    let cases = [
        ("another key", &other, "does not open"),
        ("a 16-byte key", &short, "invalid key"),
        ("a lost key", &lost, "does not open"),
    ];
    for (case, provider, reason) in cases {
        let held = provider.key();
        let client = keyed_client(&device, &url, provided(provider));
        let state = client.initialize().await;
        assert_unavailable(&state, reason);
        nothing_written_by(&client, &address).await;
        drop(client);
        settle().await;
        assert_eq!(snapshot(&path), before, "{case}: nothing deleted or rewritten");
        if held.is_some() {
            assert_eq!(provider.key(), held, "{case}: the host's key is left alone");
        }
    }

    // The right key still opens everything.
    let client = keyed_client(&device, &url, provided(&keys));
    assert_eq!(
        client.initialize().await,
        AuthState::SignedIn {
            user,
            token_fresh: true
        }
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_provider_on_first_use_stores_nothing() {
    let server = Server::start().await;
    let device = Device::new();
    let keys = Arc::new(MemoryKeys::default());
    keys.fail_with(Some("no keystore"));
    let client = keyed_client(&device, &server.url(), provided(&keys));
    assert_unavailable(&client.initialize().await, "no keystore");
    nothing_written_by(&client, &email("first")).await;
    drop(client);
    settle().await;
    let path = device.path();
    let stored = snapshot(&path);
    assert!(stored.records.is_empty(), "no record without a key");
    assert!(
        stored.meta.iter().all(|(key, _)| key != "vault.key_check"),
        "no key check for a key that does not exist"
    );
    assert_eq!(keys.key(), None);
}

/// Every keyring case in one test: `keyring-core`'s default store is process-wide.
#[tokio::test(flavor = "multi_thread")]
async fn the_keyring_key_opens_the_session_and_another_or_a_locked_one_is_unavailable() {
    use keyring_core::{Entry, Error as KeyringError, mock};

    const SERVICE: &str = "com.example.holdfast.vault-session-test";
    keyring_core::set_default_store(mock::Store::new().unwrap());
    let keyring = |account: &str| KeySource::Keyring {
        service: SERVICE.to_owned(),
        account: account.to_owned(),
    };

    let server = Server::start().await;
    let device = Device::new();
    let url = server.url();
    let client = keyed_client(&device, &url, keyring("vault"));
    assert_eq!(
        client.initialize().await,
        AuthState::SignedOut {
            reason: SignOutReason::NoStoredSession
        }
    );
    let address = email("keyring");
    let user = client.sign_up(&address, support::PASSWORD, None).await.unwrap();
    let access = client.access_token().await.unwrap();
    drop(client);
    settle().await;
    let path = device.path();

    // The mock keeps the credential across entries built from the same store.
    let entry = Entry::new(SERVICE, "vault").unwrap();
    let key = entry.get_secret().expect("the key is in the keyring");
    assert_eq!(key.len(), 32);
    assert!(!folder_contains(&device, &key), "the key is not in the store");
    assert!(!folder_contains(&device, access.as_bytes()), "no plaintext token");

    // Restart: the same credential opens the session.
    let restarted = keyed_client(&device, &url, keyring("vault"));
    assert_eq!(
        restarted.initialize().await,
        AuthState::SignedIn {
            user: user.clone(),
            token_fresh: true
        }
    );
    assert_eq!(restarted.access_token().await.unwrap(), access);
    drop(restarted);
    settle().await;
    let before = snapshot(&path);

    // Another credential (another key): unavailable, not signed out, nothing deleted.
    let other = keyed_client(&device, &url, keyring("another-account"));
    assert_unavailable(&other.initialize().await, "does not open");
    nothing_written_by(&other, &address).await;
    drop(other);
    settle().await;
    assert_eq!(snapshot(&path), before);

    // A locked keychain: unavailable; once unlocked, the same client opens the session.
    let cred: &mock::Cred = entry.as_any().downcast_ref().unwrap();
    cred.set_error(KeyringError::NoStorageAccess("the keychain is locked".into()));
    let locked = keyed_client(&device, &url, keyring("vault"));
    assert_unavailable(&locked.initialize().await, "locked");
    assert!(locked.initialize().await.is_signed_in());
    drop(locked);
    settle().await;

    // A credential that is not a key: refused and left as it is.
    entry.set_secret(b"not a key").unwrap();
    let malformed = keyed_client(&device, &url, keyring("vault"));
    assert_unavailable(&malformed.initialize().await, "invalid key");
    drop(malformed);
    assert_eq!(entry.get_secret().unwrap(), b"not a key");

    // The credential was deleted (e.g. a reset keychain): a new key cannot open the vault.
    entry.delete_credential().unwrap();
    let lost = keyed_client(&device, &url, keyring("vault"));
    assert_unavailable(&lost.initialize().await, "does not open");
    drop(lost);
    settle().await;
    assert_eq!(snapshot(&path), before, "nothing deleted or rewritten");

    // With the key put back, everything is there.
    entry.set_secret(&key).unwrap();
    let client = keyed_client(&device, &url, keyring("vault"));
    assert_eq!(
        client.initialize().await,
        AuthState::SignedIn {
            user,
            token_fresh: true
        }
    );
}
