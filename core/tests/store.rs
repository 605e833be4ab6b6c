//! The client store against real files: opening, every operation, atomicity, races between
//! threads and between "processes" (separate `ClientStore`s on one file, and a real child
//! process for the refresh lock).

use holdfast_core::store::{
    BlobSlot, ClientStore, Namespace, RefreshLock, ResealError, SCHEMA_VERSION, StoreError,
};
use rusqlite::Connection;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, mpsc};
use std::thread;
use std::time::Duration;
use tempfile::TempDir;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const SERVER: &str = "https://auth.example.com";

/// A fresh store in its own folder (kept alive by the returned `TempDir`).
fn fresh() -> Result<(TempDir, PathBuf, ClientStore), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("client.db");
    let store = ClientStore::open(&path)?;
    Ok((dir, path, store))
}

fn server_ns() -> Namespace {
    match Namespace::for_server(SERVER) {
        Ok(ns) => ns,
        Err(error) => panic!("{error}"),
    }
}

fn account_ns(account: &str) -> Namespace {
    match server_ns().for_account(account) {
        Ok(ns) => ns,
        Err(error) => panic!("{error}"),
    }
}

fn blob_of(store: &ClientStore, ns: &Namespace, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(store.get(ns, name)?.map(|record| record.blob))
}

/// Makes inserts into `table` fail when `condition` holds, through a second connection: a
/// way to make a multi-write operation fail halfway.
fn fail_inserts_into(path: &Path, table: &str, condition: &str) -> rusqlite::Result<()> {
    let conn = Connection::open(path)?;
    conn.execute_batch(&format!(
        "CREATE TRIGGER fail_{table}_inserts BEFORE INSERT ON {table} WHEN {condition}
         BEGIN SELECT RAISE(ABORT, 'injected failure'); END;"
    ))
}

// ---- opening ----------------------------------------------------------------------------

#[test]
fn a_fresh_store_is_created_at_the_current_schema_in_wal_mode() -> TestResult {
    let (_dir, path, store) = fresh()?;
    drop(store);
    let conn = Connection::open(&path)?;
    let version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    let journal: String = conn.pragma_query_value(None, "journal_mode", |row| row.get(0))?;
    assert_eq!(version, SCHEMA_VERSION);
    assert_eq!(journal, "wal");
    Ok(())
}

#[test]
fn reopening_keeps_the_data_and_does_not_run_migrations_again() -> TestResult {
    let (_dir, path, store) = fresh()?;
    let ns = account_ns("user-1");
    store.put(&ns, "session", b"sealed")?;
    store.set_meta("salt", b"salt")?;
    drop(store);
    // V1 creates its tables without IF NOT EXISTS: running it again would fail the open.
    let store = ClientStore::open(&path)?;
    assert_eq!(blob_of(&store, &ns, "session")?, Some(b"sealed".to_vec()));
    assert_eq!(store.meta("salt")?, Some(b"salt".to_vec()));
    Ok(())
}

#[test]
fn processes_creating_the_file_at_the_same_time_all_open_it() -> TestResult {
    for round in 0..5 {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("client.db");
        let barrier = Arc::new(Barrier::new(4));
        let openers: Vec<_> = (0..4)
            .map(|n| {
                let (path, barrier) = (path.clone(), Arc::clone(&barrier));
                thread::spawn(move || -> Result<(), StoreError> {
                    barrier.wait();
                    let store = ClientStore::open(&path)?;
                    store.put(&account_ns("alice"), &format!("record-{n}"), b"x")?;
                    Ok(())
                })
            })
            .collect();
        for opener in openers {
            opener.join().map_err(|_| "an opener panicked")??;
        }
        let store = ClientStore::open(&path)?;
        for n in 0..4 {
            assert!(
                store.get(&account_ns("alice"), &format!("record-{n}"))?.is_some(),
                "round {round}"
            );
        }
    }
    Ok(())
}

#[test]
fn a_newer_schema_is_refused_and_the_file_left_untouched() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("client.db");
    {
        let conn = Connection::open(&path)?;
        conn.execute_batch("CREATE TABLE records (future TEXT); INSERT INTO records VALUES ('data');")?;
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)?;
    }
    let before = std::fs::read(&path)?;
    match ClientStore::open(&path) {
        Err(StoreError::NewerSchema { found, supported }) => {
            assert_eq!((found, supported), (SCHEMA_VERSION + 1, SCHEMA_VERSION));
        }
        other => panic!("expected NewerSchema, got {other:?}"),
    }
    assert_eq!(std::fs::read(&path)?, before);
    // Not even switched to WAL mode.
    assert!(!dir.path().join("client.db-wal").exists());
    Ok(())
}

#[test]
fn a_file_that_is_not_a_database_is_corrupt_and_never_overwritten() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("client.db");
    let garbage: Vec<u8> = (0..8192u32)
        .map(|n| (n.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&path, &garbage)?;
    let error = ClientStore::open(&path).map(|_| ()).err();
    assert!(matches!(error, Some(StoreError::Corrupt { .. })), "{error:?}");
    assert_eq!(std::fs::read(&path)?, garbage);
    Ok(())
}

#[test]
fn unusable_paths_are_clear_open_errors() -> TestResult {
    let dir = tempfile::tempdir()?;
    let regular_file = dir.path().join("not-a-folder");
    std::fs::write(&regular_file, b"x")?;
    for path in [
        PathBuf::from("/proc/holdfast.db"),
        regular_file.join("client.db"),
        dir.path().join("missing").join("client.db"),
        dir.path().to_path_buf(),
    ] {
        match ClientStore::open(&path) {
            Err(StoreError::Open { message }) => assert!(!message.is_empty()),
            other => panic!("{}: expected Open, got {other:?}", path.display()),
        }
    }
    Ok(())
}

#[cfg(unix)]
#[test]
fn a_read_only_file_is_refused_rather_than_opened_read_only() -> TestResult {
    use std::os::unix::fs::PermissionsExt;
    let (_dir, path, store) = fresh()?;
    drop(store);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444))?;
    if std::fs::OpenOptions::new().write(true).open(&path).is_ok() {
        // Running as root: permissions do not stop writes, so there is nothing to test.
        return Ok(());
    }
    let error = ClientStore::open(&path).map(|_| ()).err();
    assert!(matches!(error, Some(StoreError::Open { .. })), "{error:?}");
    Ok(())
}

#[test]
fn the_store_can_be_shared_between_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<ClientStore>();
    assert_send_sync::<StoreError>();
}

// ---- meta -------------------------------------------------------------------------------

#[test]
fn meta_is_set_replaced_and_kept_when_present() -> TestResult {
    let (_dir, _path, store) = fresh()?;
    assert_eq!(store.meta("salt")?, None);
    store.set_meta("salt", b"one")?;
    store.set_meta("salt", b"two")?;
    assert_eq!(store.meta("salt")?, Some(b"two".to_vec()));
    assert_eq!(store.set_meta_if_absent("salt", b"three")?, b"two".to_vec());
    assert_eq!(store.set_meta_if_absent("check", b"new")?, b"new".to_vec());
    assert_eq!(store.meta("salt")?, Some(b"two".to_vec()));
    Ok(())
}

#[test]
fn two_processes_racing_to_create_the_salt_agree() -> TestResult {
    let (_dir, path, _store) = fresh()?;
    for round in 0..20 {
        let key = format!("salt-{round}");
        let barrier = Arc::new(Barrier::new(2));
        let racers: Vec<_> = [b"first".as_slice(), b"second".as_slice()]
            .into_iter()
            .map(|value| {
                let (path, key, barrier) = (path.clone(), key.clone(), Arc::clone(&barrier));
                thread::spawn(move || -> Result<Vec<u8>, StoreError> {
                    // A store of its own: another connection, as another process would have.
                    let store = ClientStore::open(&path)?;
                    barrier.wait();
                    store.set_meta_if_absent(&key, value)
                })
            })
            .collect();
        let mut agreed = Vec::new();
        for racer in racers {
            agreed.push(racer.join().map_err(|_| "a racer panicked")??);
        }
        assert_eq!(agreed[0], agreed[1], "round {round}");
    }
    Ok(())
}

// ---- records ----------------------------------------------------------------------------

#[test]
fn records_are_written_read_and_versioned() -> TestResult {
    let (_dir, _path, store) = fresh()?;
    let ns = account_ns("user-1");
    assert_eq!(store.get(&ns, "session")?, None);
    let first = store.put(&ns, "session", b"v1")?;
    let second = store.put(&ns, "session", b"v2")?;
    assert!(second > first);
    let record = store.get(&ns, "session")?.ok_or("missing")?;
    assert_eq!(
        (record.blob.as_slice(), record.version),
        (b"v2".as_slice(), second)
    );
    // Debug never shows the bytes.
    assert_eq!(
        format!("{record:?}"),
        format!("Record {{ blob: <2 bytes>, version: {second} }}")
    );
    Ok(())
}

#[test]
fn namespaces_keep_servers_and_accounts_apart() -> TestResult {
    let (_dir, _path, store) = fresh()?;
    let server = server_ns();
    let alice = account_ns("alice");
    let bob = account_ns("bob");
    let other = Namespace::for_server("https://other.example.com")?.for_account("alice")?;
    store.put(&server, "device_key", b"server")?;
    store.put(&alice, "session", b"alice")?;
    store.put(&bob, "session", b"bob")?;
    store.put(&other, "session", b"other")?;
    assert_eq!(blob_of(&store, &alice, "session")?, Some(b"alice".to_vec()));
    assert_eq!(blob_of(&store, &bob, "session")?, Some(b"bob".to_vec()));
    assert_eq!(blob_of(&store, &other, "session")?, Some(b"other".to_vec()));
    assert_eq!(blob_of(&store, &server, "session")?, None);
    assert_eq!(blob_of(&store, &alice, "device_key")?, None);
    // The same server spelled differently is the same namespace.
    let respelled = Namespace::for_server("HTTPS://Auth.Example.com:443/")?.for_account("alice")?;
    assert_eq!(blob_of(&store, &respelled, "session")?, Some(b"alice".to_vec()));
    Ok(())
}

#[test]
fn put_many_writes_all_or_nothing() -> TestResult {
    let (_dir, path, store) = fresh()?;
    let ns = account_ns("user-1");
    let versions = store.put_many(&ns, &[("access_token", b"a1"), ("refresh_token", b"r1")])?;
    assert_eq!(versions.len(), 2);
    assert!(versions[1] > versions[0]);
    assert_eq!(
        store.get(&ns, "refresh_token")?.map(|r| r.version),
        Some(versions[1])
    );

    fail_inserts_into(&path, "records", "CAST(NEW.blob AS TEXT) = 'r2'")?;
    let error = store.put_many(&ns, &[("access_token", b"a2"), ("refresh_token", b"r2")]);
    assert!(
        matches!(
            error,
            Err(StoreError::Io {
                operation: "put_many",
                ..
            })
        ),
        "{error:?}"
    );
    assert_eq!(blob_of(&store, &ns, "access_token")?, Some(b"a1".to_vec()));
    assert_eq!(blob_of(&store, &ns, "refresh_token")?, Some(b"r1".to_vec()));
    Ok(())
}

#[test]
fn a_reader_never_sees_half_a_rotated_pair() -> TestResult {
    let (_dir, path, store) = fresh()?;
    let ns = account_ns("user-1");
    store.put_many(&ns, &[("access_token", b"0"), ("refresh_token", b"0")])?;
    let writer = thread::spawn(move || -> Result<(), StoreError> {
        for n in 1..=200u32 {
            let value = n.to_string();
            store.put_many(
                &ns,
                &[
                    ("access_token", value.as_bytes()),
                    ("refresh_token", value.as_bytes()),
                ],
            )?;
        }
        Ok(())
    });
    // Another process's view: its own connection, reading both in one transaction.
    let conn = Connection::open(&path)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    while !writer.is_finished() {
        let pair: Vec<Vec<u8>> = conn
            .prepare("SELECT blob FROM records WHERE name IN ('access_token', 'refresh_token')")?
            .query_map([], |row| row.get(0))?
            .collect::<Result<_, _>>()?;
        assert_eq!(pair.len(), 2);
        assert_eq!(pair[0], pair[1]);
    }
    writer.join().map_err(|_| "the writer panicked")??;
    Ok(())
}

#[test]
fn compare_and_put_writes_only_over_the_expected_version() -> TestResult {
    let (_dir, _path, store) = fresh()?;
    let ns = account_ns("user-1");
    let created = store
        .compare_and_put(&ns, "session", None, b"one")?
        .ok_or("create refused")?;
    assert_eq!(store.compare_and_put(&ns, "session", None, b"again")?, None);
    assert_eq!(
        store.compare_and_put(&ns, "session", Some(created + 100), b"stale")?,
        None
    );
    let updated = store
        .compare_and_put(&ns, "session", Some(created), b"two")?
        .ok_or("update refused")?;
    assert!(updated > created);
    assert_eq!(blob_of(&store, &ns, "session")?, Some(b"two".to_vec()));

    // Deleted and written again: a new version, so a caller holding the old one is refused.
    store.delete(&ns, "session")?;
    let recreated = store.put(&ns, "session", b"three")?;
    assert!(recreated > updated);
    assert_eq!(
        store.compare_and_put(&ns, "session", Some(updated), b"lost update")?,
        None
    );
    assert_eq!(blob_of(&store, &ns, "session")?, Some(b"three".to_vec()));
    Ok(())
}

#[test]
fn compare_and_put_loses_no_update_when_threads_race() -> TestResult {
    const THREADS: usize = 4;
    const INCREMENTS: u64 = 25;
    let (_dir, path, shared) = fresh()?;
    let ns = account_ns("user-1");
    shared.put(&ns, "counter", &0u64.to_le_bytes())?;
    let shared = Arc::new(shared);
    let barrier = Arc::new(Barrier::new(THREADS));
    let workers: Vec<_> = (0..THREADS)
        .map(|n| {
            let (path, ns, barrier, shared) = (
                path.clone(),
                ns.clone(),
                Arc::clone(&barrier),
                Arc::clone(&shared),
            );
            thread::spawn(
                move || -> Result<usize, Box<dyn std::error::Error + Send + Sync>> {
                    // Half share one store (threads), half have their own (processes).
                    let own = if n % 2 == 0 {
                        Some(ClientStore::open(&path)?)
                    } else {
                        None
                    };
                    let store = own.as_ref().unwrap_or(&*shared);
                    barrier.wait();
                    let mut conflicts = 0;
                    for _ in 0..INCREMENTS {
                        loop {
                            let record = store.get(&ns, "counter")?.ok_or("counter missing")?;
                            let value = u64::from_le_bytes(record.blob.as_slice().try_into()?);
                            let next = (value + 1).to_le_bytes();
                            if store
                                .compare_and_put(&ns, "counter", Some(record.version), &next)?
                                .is_some()
                            {
                                break;
                            }
                            conflicts += 1;
                        }
                    }
                    Ok(conflicts)
                },
            )
        })
        .collect();
    for worker in workers {
        worker
            .join()
            .map_err(|_| "a worker panicked")?
            .map_err(|error| error.to_string())?;
    }
    let total = blob_of(&shared, &ns, "counter")?.ok_or("counter missing")?;
    assert_eq!(
        u64::from_le_bytes(total.as_slice().try_into()?),
        THREADS as u64 * INCREMENTS
    );
    Ok(())
}

#[test]
fn deleting_removes_only_the_named_records_of_the_namespace() -> TestResult {
    let (_dir, _path, store) = fresh()?;
    let alice = account_ns("alice");
    let bob = account_ns("bob");
    for ns in [&alice, &bob] {
        store.put_many(ns, &[("session", b"s"), ("user", b"u"), ("clock_offset", b"c")])?;
    }
    store.delete(&alice, "clock_offset")?;
    store.delete(&alice, "never_written")?;
    assert_eq!(store.get(&alice, "clock_offset")?, None);

    store.delete_namespace_secrets(&alice, &["session", "user", "missing"])?;
    assert_eq!(store.get(&alice, "session")?, None);
    assert_eq!(store.get(&alice, "user")?, None);
    for name in ["session", "user", "clock_offset"] {
        assert!(store.get(&bob, name)?.is_some(), "{name}");
    }
    Ok(())
}

#[test]
fn sign_out_wipes_and_queues_in_one_transaction() -> TestResult {
    let (_dir, path, store) = fresh()?;
    let alice = account_ns("alice");
    let server = server_ns();
    store.put_many(&alice, &[("session", b"s"), ("user", b"u")])?;
    let id =
        store.delete_and_outbox_push(&alice, &["session", "user"], &server, "revoke", b"sealed rt", 10)?;
    assert_eq!(store.get(&alice, "session")?, None);
    let due = store.outbox_due(&server, 10)?;
    assert_eq!(
        due.iter()
            .map(|item| (item.id, item.kind.as_str()))
            .collect::<Vec<_>>(),
        vec![(id, "revoke")]
    );

    // If queueing fails, the secrets stay: nothing is wiped without its revocation.
    store.put(&alice, "session", b"s2")?;
    fail_inserts_into(&path, "outbox", "NEW.kind = 'poisoned'")?;
    let error = store.delete_and_outbox_push(&alice, &["session"], &server, "poisoned", b"p", 20);
    assert!(error.is_err());
    assert_eq!(blob_of(&store, &alice, "session")?, Some(b"s2".to_vec()));
    assert_eq!(store.outbox_due(&server, 20)?.len(), 1);
    Ok(())
}

// ---- quarantine -------------------------------------------------------------------------

#[test]
fn quarantine_moves_the_record_and_keeps_its_blob() -> TestResult {
    let (_dir, _path, store) = fresh()?;
    let alice = account_ns("alice");
    let bob = account_ns("bob");
    let version = store.put(&alice, "session", b"undecryptable")?;
    store.put(&bob, "session", b"fine")?;

    assert!(store.quarantine(&alice, "session", version, "authentication tag mismatch", 1_000)?);
    assert_eq!(store.get(&alice, "session")?, None);
    let quarantined = store.quarantined(&alice)?;
    assert_eq!(quarantined.len(), 1);
    let entry = &quarantined[0];
    assert_eq!(entry.name, "session");
    assert_eq!(entry.blob, b"undecryptable");
    assert_eq!(entry.version, version);
    assert_eq!(entry.reason, "authentication tag mismatch");
    assert_eq!(entry.quarantined_at_ms, 1_000);
    assert!(format!("{entry:?}").contains("blob: <13 bytes>"), "{entry:?}");
    assert!(store.quarantined(&bob)?.is_empty());
    assert_eq!(blob_of(&store, &bob, "session")?, Some(b"fine".to_vec()));

    // A second bad blob of the same name is kept beside the first.
    let again = store.put(&alice, "session", b"also bad")?;
    assert!(store.quarantine(&alice, "session", again, "bad version byte", 2_000)?);
    let blobs: Vec<Vec<u8>> = store.quarantined(&alice)?.into_iter().map(|q| q.blob).collect();
    assert_eq!(blobs, vec![b"undecryptable".to_vec(), b"also bad".to_vec()]);
    Ok(())
}

#[test]
fn quarantine_never_moves_a_record_written_since_it_was_read() -> TestResult {
    let (_dir, _path, store) = fresh()?;
    let ns = account_ns("alice");
    let stale = store.put(&ns, "session", b"old")?;
    store.put(&ns, "session", b"fresh from another process")?;
    assert!(!store.quarantine(&ns, "session", stale, "could not open", 1)?);
    assert!(!store.quarantine(&ns, "missing", 1, "could not open", 1)?);
    assert_eq!(
        blob_of(&store, &ns, "session")?,
        Some(b"fresh from another process".to_vec())
    );
    assert!(store.quarantined(&ns)?.is_empty());
    Ok(())
}

// ---- reseal -----------------------------------------------------------------------------

/// A stand-in for the vault: "sealing" with a key prefixes the key.
fn reseal_with(
    new_key: &'static [u8],
) -> impl FnMut(&Namespace, BlobSlot<'_>, &[u8]) -> Result<Vec<u8>, std::io::Error> {
    move |_, _, blob| {
        let plain = blob
            .strip_prefix(b"old:".as_slice())
            .ok_or_else(|| std::io::Error::other("not sealed with the old key"))?;
        Ok([new_key, plain].concat())
    }
}

struct Snapshot {
    records: Vec<Option<(Vec<u8>, i64)>>,
    outbox: Vec<Vec<u8>>,
    salt: Option<Vec<u8>>,
}

fn snapshot(store: &ClientStore, namespaces: &[Namespace]) -> Result<Snapshot, StoreError> {
    let mut records = Vec::new();
    for ns in namespaces {
        for name in ["session", "user"] {
            records.push(store.get(ns, name)?.map(|record| (record.blob, record.version)));
        }
    }
    let outbox = store
        .outbox_due(&server_ns(), i64::MAX)?
        .into_iter()
        .map(|item| item.payload)
        .collect();
    Ok(Snapshot {
        records,
        outbox,
        salt: store.meta("salt")?,
    })
}

fn store_to_reseal() -> Result<(TempDir, ClientStore, Vec<Namespace>), Box<dyn std::error::Error>> {
    let (dir, _path, store) = fresh()?;
    let namespaces = vec![account_ns("alice"), account_ns("bob")];
    for ns in &namespaces {
        store.put_many(ns, &[("session", b"old:session"), ("user", b"old:user")])?;
    }
    store.outbox_push(&server_ns(), "revoke", b"old:token", 1)?;
    store.set_meta("salt", b"old salt")?;
    Ok((dir, store, namespaces))
}

#[test]
fn reseal_all_reseals_every_blob_and_the_meta_together() -> TestResult {
    let (_dir, store, namespaces) = store_to_reseal()?;
    let before = snapshot(&store, &namespaces)?;
    let mut seen = Vec::new();
    let mut reseal = reseal_with(b"new:");
    let count = store.reseal_all(&[("salt", b"new salt")], |ns, slot, blob| {
        seen.push((ns.canonical(), format!("{slot:?}")));
        reseal(ns, slot, blob)
    })?;
    assert_eq!(count, 5);
    assert!(seen.contains(&(
        account_ns("bob").canonical(),
        "Record { name: \"user\" }".to_owned()
    )));
    assert!(
        seen.iter()
            .any(|(ns, slot)| ns == SERVER && slot.starts_with("OutboxPayload"))
    );

    let after = snapshot(&store, &namespaces)?;
    for (old, new) in before.records.iter().zip(&after.records) {
        let ((old_blob, old_version), (new_blob, new_version)) =
            (old.as_ref().ok_or("gone")?, new.as_ref().ok_or("gone")?);
        assert_eq!(
            new_blob.strip_prefix(b"new:".as_slice()),
            old_blob.strip_prefix(b"old:".as_slice())
        );
        assert!(new_version > old_version, "resealed records get new versions");
    }
    assert_eq!(after.outbox, vec![b"new:token".to_vec()]);
    assert_eq!(after.salt, Some(b"new salt".to_vec()));
    Ok(())
}

#[test]
fn reseal_all_changes_nothing_when_one_blob_fails() -> TestResult {
    let (_dir, store, namespaces) = store_to_reseal()?;
    store.put(&namespaces[1], "user", b"sealed with some other key")?;
    let before = snapshot(&store, &namespaces)?;
    let result = store.reseal_all(&[("salt", b"new salt")], reseal_with(b"new:"));
    assert!(matches!(result, Err(ResealError::Seal(_))), "{result:?}");
    let after = snapshot(&store, &namespaces)?;
    assert_eq!(after.records, before.records);
    assert_eq!(after.outbox, before.outbox);
    assert_eq!(after.salt, Some(b"old salt".to_vec()));
    Ok(())
}

#[test]
fn reseal_all_changes_nothing_when_the_closure_panics() -> TestResult {
    let (_dir, store, namespaces) = store_to_reseal()?;
    let before = snapshot(&store, &namespaces)?;
    let mut calls = 0;
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        store.reseal_all(&[("salt", b"new salt")], |ns, slot, blob| {
            calls += 1;
            if calls == 3 {
                panic!("vault bug");
            }
            reseal_with(b"new:")(ns, slot, blob)
        })
    }));
    assert!(panicked.is_err());
    let after = snapshot(&store, &namespaces)?;
    assert_eq!(after.records, before.records);
    assert_eq!(after.salt, Some(b"old salt".to_vec()));
    // The store still works after the panic.
    store.put(&namespaces[0], "session", b"old:still usable")?;
    Ok(())
}

// ---- outbox -----------------------------------------------------------------------------

#[test]
fn outbox_items_come_due_in_order_and_retry_later() -> TestResult {
    let (_dir, _path, store) = fresh()?;
    let ns = server_ns();
    assert!(store.outbox_due(&ns, 0)?.is_empty());
    let first = store.outbox_push(&ns, "revoke_refresh_token", b"p1", 100)?;
    let second = store.outbox_push(&ns, "revoke_device", b"p2", 200)?;
    let other = store.outbox_push(&account_ns("alice"), "other", b"p3", 100)?;
    assert!(first < second);

    assert_eq!(store.outbox_due(&ns, 99)?.len(), 0);
    let due = store.outbox_due(&ns, 200)?;
    assert_eq!(
        due.iter().map(|item| item.id).collect::<Vec<_>>(),
        vec![first, second]
    );
    assert_eq!(
        (due[0].kind.as_str(), due[0].payload.as_slice(), due[0].attempts),
        ("revoke_refresh_token", b"p1".as_slice(), 0)
    );
    assert_eq!((due[0].created_at_ms, due[0].next_attempt_at_ms), (100, 100));
    assert!(
        format!("{:?}", due[0]).contains("payload: <2 bytes>"),
        "{:?}",
        due[0]
    );

    // The first fails and is postponed: the second goes alone, then the first comes back
    // ahead of it.
    store.outbox_retry_later(first, 1_000)?;
    let due = store.outbox_due(&ns, 500)?;
    assert_eq!(due.iter().map(|item| item.id).collect::<Vec<_>>(), vec![second]);
    let due = store.outbox_due(&ns, 1_000)?;
    assert_eq!(
        due.iter().map(|item| item.id).collect::<Vec<_>>(),
        vec![first, second]
    );
    assert_eq!((due[0].attempts, due[0].next_attempt_at_ms), (1, 1_000));
    store.outbox_retry_later(first, 2_000)?;
    assert_eq!(store.outbox_due(&ns, 2_000)?[0].attempts, 2);

    store.outbox_done(first)?;
    store.outbox_done(first)?;
    store.outbox_retry_later(first, 5)?;
    assert_eq!(
        store
            .outbox_due(&ns, i64::MAX)?
            .iter()
            .map(|item| item.id)
            .collect::<Vec<_>>(),
        vec![second]
    );
    // Ids are never reused, so a stale id cannot complete a newer item.
    store.outbox_done(second)?;
    let third = store.outbox_push(&ns, "revoke", b"p4", 3_000)?;
    assert!(third > other && third > second);
    assert_eq!(store.outbox_due(&account_ns("alice"), i64::MAX)?.len(), 1);
    Ok(())
}

// ---- refresh lock -----------------------------------------------------------------------

#[test]
fn the_refresh_lock_excludes_a_second_holder_until_dropped() -> TestResult {
    let (_dir, path, _store) = fresh()?;
    let guard = RefreshLock::try_acquire(&path)?.ok_or("the lock should be free")?;
    assert!(RefreshLock::lock_path(&path).exists());
    // A second open of the lock file in the same process and thread is excluded: the lock
    // belongs to the open file, not to the process.
    assert!(RefreshLock::try_acquire(&path)?.is_none());
    let waited = RefreshLock::acquire_within(&path, Duration::from_millis(30));
    assert!(matches!(waited, Err(StoreError::Busy { .. })), "{waited:?}");
    drop(guard);
    let _again = RefreshLock::acquire_within(&path, Duration::from_secs(5))?;
    Ok(())
}

#[test]
fn the_refresh_lock_excludes_threads_of_one_process() -> TestResult {
    const THREADS: usize = 4;
    let (_dir, path, _store) = fresh()?;
    let inside = Arc::new(AtomicUsize::new(0));
    let entries = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(Barrier::new(THREADS));
    let workers: Vec<_> = (0..THREADS)
        .map(|_| {
            let (path, inside, entries, barrier) = (
                path.clone(),
                Arc::clone(&inside),
                Arc::clone(&entries),
                Arc::clone(&barrier),
            );
            thread::spawn(move || -> Result<(), StoreError> {
                barrier.wait();
                for _ in 0..10 {
                    let _guard = RefreshLock::acquire(&path)?;
                    assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0, "two holders at once");
                    entries.fetch_add(1, Ordering::SeqCst);
                    thread::sleep(Duration::from_millis(1));
                    inside.fetch_sub(1, Ordering::SeqCst);
                }
                Ok(())
            })
        })
        .collect();
    for worker in workers {
        worker
            .join()
            .map_err(|_| "a worker panicked (two holders at once?)")??;
    }
    assert_eq!(entries.load(Ordering::SeqCst), THREADS * 10);
    Ok(())
}

#[test]
fn a_blocked_acquire_proceeds_when_the_holder_drops() -> TestResult {
    let (_dir, path, _store) = fresh()?;
    let guard = RefreshLock::acquire(&path)?;
    let (acquired, acquired_rx) = mpsc::channel();
    let waiter = {
        let path = path.clone();
        thread::spawn(move || -> Result<(), StoreError> {
            let _guard = RefreshLock::acquire(&path)?;
            let _ = acquired.send(());
            Ok(())
        })
    };
    assert!(
        acquired_rx.recv_timeout(Duration::from_millis(100)).is_err(),
        "acquired while held"
    );
    drop(guard);
    acquired_rx.recv_timeout(Duration::from_secs(10))?;
    waiter.join().map_err(|_| "the waiter panicked")??;
    Ok(())
}

/// The environment variable that turns this test binary into the lock-holding child of
/// [`a_killed_process_releases_the_refresh_lock`].
const LOCK_HELPER_ENV: &str = "HOLDFAST_TEST_REFRESH_LOCK_HELPER";

/// What the child prints once it holds the lock (libtest may print its own text on the
/// same line first).
const LOCKED: &str = "holdfast: refresh lock held";

/// Not a test of its own: in a normal run it returns at once. Run as the child process, it
/// takes the refresh lock of the database named by the environment, says so, and waits to
/// be killed.
#[test]
fn refresh_lock_helper_process() -> TestResult {
    let Some(db) = std::env::var_os(LOCK_HELPER_ENV) else {
        return Ok(());
    };
    let _guard = RefreshLock::acquire(Path::new(&db))?;
    let mut stdout = std::io::stdout();
    writeln!(stdout, "{LOCKED}")?;
    stdout.flush()?;
    loop {
        thread::sleep(Duration::from_secs(60));
    }
}

/// Kills the child if the test fails before it does.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_killed_process_releases_the_refresh_lock() -> TestResult {
    let (_dir, path, _store) = fresh()?;
    let mut child = KillOnDrop(
        Command::new(std::env::current_exe()?)
            .args([
                "--exact",
                "refresh_lock_helper_process",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(LOCK_HELPER_ENV, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?,
    );
    let stdout = child.0.stdout.take().ok_or("no stdout")?;
    let (said, said_rx) = mpsc::channel();
    thread::spawn(move || {
        let locked = BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .any(|line| line.contains(LOCKED));
        let _ = said.send(locked);
    });
    assert!(
        said_rx.recv_timeout(Duration::from_secs(60))?,
        "the child exited without locking"
    );

    assert!(
        RefreshLock::try_acquire(&path)?.is_none(),
        "another process holds the lock"
    );
    let waited = RefreshLock::acquire_within(&path, Duration::from_millis(50));
    assert!(matches!(waited, Err(StoreError::Busy { .. })), "{waited:?}");

    // SIGKILL: no destructor runs; the kernel releases the lock as the process dies.
    child.0.kill()?;
    child.0.wait()?;
    let _guard = RefreshLock::acquire_within(&path, Duration::from_secs(5))?;
    Ok(())
}
