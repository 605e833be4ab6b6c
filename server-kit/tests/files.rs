//! Databases hold password hashes and emails: they are created readable by their owner
//! only, and an exposed one is reported (issue 12, part 6).
#![cfg(unix)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use holdfast_server_kit::Stores;
use holdfast_server_kit::files::check_sqlite;
use holdfast_server_kit::sync::SharedCollection;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|error| panic!("{}: {error}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

fn with_suffix(path: &Path, suffix: &str) -> std::path::PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    name.into()
}

#[test]
fn new_databases_and_their_wal_and_shm_files_are_private() {
    let dir = tempfile::tempdir().unwrap();
    let auth = dir.path().join("auth.db");
    let stores = Stores::sqlite(&auth).unwrap();
    let sync = dir.path().join("sync.db");
    let collection = SharedCollection::open(&sync).unwrap();
    for database in [&auth, &sync] {
        for file in [
            database.clone(),
            with_suffix(database, "-wal"),
            with_suffix(database, "-shm"),
        ] {
            assert_eq!(mode(&file), 0o600, "{}", file.display());
        }
        assert!(check_sqlite(database).is_empty());
    }
    drop((stores, collection));
}

#[test]
fn an_existing_database_readable_by_others_is_reported_and_left_as_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let auth = dir.path().join("auth.db");
    drop(Stores::sqlite(&auth).unwrap());
    std::fs::set_permissions(&auth, std::fs::Permissions::from_mode(0o644)).unwrap();
    let stores = Stores::sqlite(&auth).unwrap();
    // SQLite gives the -wal and -shm files the database's mode: all three are reported.
    let exposed = check_sqlite(&auth);
    assert!(exposed.contains(&auth), "{exposed:?}");
    assert_eq!(mode(&auth), 0o644);
    drop(stores);
}
