//! The schema, as an ordered list of migrations tracked by `PRAGMA user_version`.
//!
//! A migration is never edited once released: a change is a new entry at the end, with a
//! test that builds the previous version's database by hand and opens it.

use super::error::{StoreError, sql};
use rusqlite::{Connection, TransactionBehavior};

/// `(version, SQL)`, versions strictly increasing from 1.
const MIGRATIONS: &[(i64, &str)] = &[(1, V1)];

/// The schema version this build writes; a database with a newer one is refused.
pub const SCHEMA_VERSION: i64 = MIGRATIONS[MIGRATIONS.len() - 1].0;

/// `account` is '' for server-wide rows (see `Namespace`); a NULL would not take part in
/// the primary key's uniqueness.
const V1: &str = "
-- Settings that are not secret: the passphrase key's salt, the vault's key check.
CREATE TABLE meta (
    key TEXT PRIMARY KEY NOT NULL,
    value BLOB NOT NULL
);

-- The last record version handed out. Versions come from this one counter, so they are
-- never reused, not even after a delete: compare_and_put cannot mistake a record deleted
-- and written again for the one its caller read.
CREATE TABLE record_versions (
    singleton INTEGER PRIMARY KEY NOT NULL CHECK (singleton = 1),
    last INTEGER NOT NULL
);
INSERT INTO record_versions (singleton, last) VALUES (1, 0);

-- Sealed blobs; only the vault can open them.
CREATE TABLE records (
    server TEXT NOT NULL,
    account TEXT NOT NULL,
    name TEXT NOT NULL,
    blob BLOB NOT NULL,
    version INTEGER NOT NULL,
    PRIMARY KEY (server, account, name)
);

-- Records that could not be opened, moved here with their blob so nothing is lost.
-- AUTOINCREMENT: ids are never reused.
CREATE TABLE quarantine (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    server TEXT NOT NULL,
    account TEXT NOT NULL,
    name TEXT NOT NULL,
    blob BLOB NOT NULL,
    version INTEGER NOT NULL,
    reason TEXT NOT NULL,
    quarantined_at_ms INTEGER NOT NULL
);
CREATE INDEX quarantine_by_namespace ON quarantine (server, account, id);

-- Server calls to make once the network is back. AUTOINCREMENT: a caller still holding
-- the id of an item that is done can never complete or postpone a newer item by mistake.
CREATE TABLE outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    server TEXT NOT NULL,
    account TEXT NOT NULL,
    kind TEXT NOT NULL,
    payload BLOB NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at_ms INTEGER NOT NULL,
    next_attempt_at_ms INTEGER NOT NULL
);
CREATE INDEX outbox_by_due_time ON outbox (server, account, next_attempt_at_ms);
";

/// The database's schema version, read without writing anything.
pub(super) fn schema_version(conn: &Connection) -> Result<i64, StoreError> {
    conn.pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(sql("read the schema version"))
}

/// Refuses a schema newer than this build knows: its data is left untouched.
pub(super) fn check_not_newer(found: i64) -> Result<(), StoreError> {
    if found > SCHEMA_VERSION {
        return Err(StoreError::NewerSchema {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    Ok(())
}

/// Applies the migrations the database lacks, all in one transaction, so a crash leaves it
/// at its old version rather than half-migrated.
pub(super) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sql("migrate"))?;
    // Read again under the write lock: another process may have migrated meanwhile.
    let current = schema_version(&tx)?;
    check_not_newer(current)?;
    for (version, migration) in MIGRATIONS.iter().filter(|(version, _)| *version > current) {
        tx.execute_batch(migration).map_err(sql("migrate"))?;
        // PRAGMA takes no bound parameters; the version is an integer from the list above.
        tx.execute_batch(&format!("PRAGMA user_version = {version}"))
            .map_err(sql("migrate"))?;
    }
    tx.commit().map_err(sql("migrate"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_strictly_increase_from_one() {
        let versions: Vec<i64> = MIGRATIONS.iter().map(|(version, _)| *version).collect();
        let expected: Vec<i64> = (1..=MIGRATIONS.len() as i64).collect();
        assert_eq!(versions, expected);
    }

    #[test]
    fn migrating_twice_is_a_no_op() -> Result<(), Box<dyn std::error::Error>> {
        let mut conn = Connection::open_in_memory()?;
        migrate(&mut conn)?;
        migrate(&mut conn)?;
        assert_eq!(schema_version(&conn)?, SCHEMA_VERSION);
        Ok(())
    }

    #[test]
    fn a_newer_schema_is_not_migrated() -> Result<(), Box<dyn std::error::Error>> {
        let mut conn = Connection::open_in_memory()?;
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)?;
        assert_eq!(
            migrate(&mut conn),
            Err(StoreError::NewerSchema {
                found: SCHEMA_VERSION + 1,
                supported: SCHEMA_VERSION
            })
        );
        let tables: i64 = conn.query_row("SELECT count(*) FROM sqlite_master", [], |row| row.get(0))?;
        assert_eq!(tables, 0);
        Ok(())
    }
}
