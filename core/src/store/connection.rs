//! Opening the database file and running calls on its one connection.
//!
//! One connection behind a mutex: a client process makes a handful of store calls a minute,
//! each well under a millisecond, so a pool would only add threads and open files. Other
//! processes (an app extension, a second instance) share the file through SQLite's own
//! locking, which waits up to [`BUSY_TIMEOUT`] before reporting [`StoreError::Busy`].

use super::ClientStore;
use super::error::{StoreError, sql};
use super::schema;
use rusqlite::{Connection, MAIN_DB, OpenFlags, Transaction, TransactionBehavior};
use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// How long a call waits for another process's write before failing with `Busy`.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Prepared statements kept on the connection; above the number of distinct queries.
const STATEMENT_CACHE: usize = 32;

impl ClientStore {
    /// Opens the store at `path`, creating and migrating the database if need be.
    ///
    /// The parent folder must exist (the app owns its data folder). Blocks on file I/O and
    /// possibly on another process's lock: call it off the async executor.
    ///
    /// # Errors
    ///
    /// - [`StoreError::Open`] when the folder is missing, the path is not writable or the
    ///   file system refuses WAL mode;
    /// - [`StoreError::Corrupt`] when the file exists but is not a SQLite database (it is
    ///   left as it is);
    /// - [`StoreError::NewerSchema`] when a newer build wrote it (it is left untouched);
    /// - [`StoreError::Busy`] when another process holds it locked for too long.
    pub fn open(path: &Path) -> Result<ClientStore, StoreError> {
        check_parent(path)?;
        // Two processes creating the file at once can get SQLITE_BUSY from the WAL switch
        // or the first migration without the busy handler being consulted (SQLite's
        // deadlock avoidance when a shared lock must be upgraded): such an open is simply
        // tried again, within the same bound as any other wait for another process.
        let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
        let mut pause = std::time::Duration::from_millis(5);
        let conn = loop {
            match open_connection(path).map_err(StoreError::while_opening) {
                Err(StoreError::Busy { .. }) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(std::time::Duration::from_millis(100));
                }
                other => break other?,
            }
        };
        Ok(ClientStore {
            conn: Mutex::new(conn),
            path: path.to_path_buf(),
        })
    }

    /// The database file's path (the refresh lock lives beside it).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The connection. A panic while it was held (only a caller's closure in `reseal_all`
    /// can panic) rolled its transaction back as it unwound, so the connection is sound and
    /// the poison is ignored.
    pub(super) fn connection(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs a read on the connection (a single statement reads one consistent snapshot).
    pub(super) fn read<T>(
        &self,
        operation: &'static str,
        query: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        query(&self.connection()).map_err(sql(operation))
    }

    /// Runs `change` in one write transaction, committed only if it succeeds.
    ///
    /// `BEGIN IMMEDIATE` takes the database's write lock up front, so a read-then-write
    /// (compare_and_put, set_meta_if_absent) holds against other processes, and waiting
    /// for their writes goes through the busy timeout instead of failing on upgrade.
    pub(super) fn write<T>(
        &self,
        operation: &'static str,
        change: impl FnOnce(&Transaction<'_>) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        let mut conn = self.connection();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql(operation))?;
        let value = change(&tx).map_err(sql(operation))?;
        tx.commit().map_err(sql(operation))?;
        Ok(value)
    }
}

/// A missing or wrong parent is reported in plain words rather than as SQLite's "unable to
/// open database file".
fn check_parent(path: &Path) -> Result<(), StoreError> {
    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        // A bare file name lives in the current directory, which exists.
        _ => return Ok(()),
    };
    match std::fs::metadata(parent) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(StoreError::Open {
            message: format!("{} is not a folder", parent.display()),
        }),
        Err(error) => Err(StoreError::Open {
            message: format!("folder {}: {error}", parent.display()),
        }),
    }
}

fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    // No SQLITE_OPEN_URI: the path is a file name, never a `file:` URI with options.
    // No internal mutex: the connection is only ever used under ours.
    let flags =
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    // rusqlite's message names the path already ("unable to open database file: <path>").
    let mut conn = Connection::open_with_flags(path, flags).map_err(|error| StoreError::Open {
        message: error.to_string(),
    })?;
    // SQLite quietly falls back to read-only when it cannot write the file; every write
    // would then fail later, far from the cause.
    if conn.is_readonly(MAIN_DB).map_err(sql("open"))? {
        return Err(StoreError::Open {
            message: format!("{} is read-only", path.display()),
        });
    }
    conn.busy_timeout(BUSY_TIMEOUT).map_err(sql("open"))?;
    // Checked before anything writes (the journal mode included): a file that is not a
    // database, or is from a newer build, stays exactly as it was.
    schema::check_not_newer(schema::schema_version(&conn)?)?;
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(sql("open"))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Open {
            message: format!("the file system refused WAL mode (journal mode is {mode})"),
        });
    }
    // FULL syncs the WAL on every commit: once `put` returns, a rotated token pair survives
    // a crash or power loss (NORMAL could lose the last commits). The cost, one fsync per
    // write, is nothing at a client's write rate.
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(sql("open"))?;
    // Deleted secrets (signed-out sessions) are overwritten rather than left in free pages.
    conn.pragma_update(None, "secure_delete", true)
        .map_err(sql("open"))?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    schema::migrate(&mut conn)?;
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connection_is_durable_and_waits_for_other_processes() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let store = ClientStore::open(&dir.path().join("client.db"))?;
        let conn = store.connection();
        let journal: String = conn.pragma_query_value(None, "journal_mode", |row| row.get(0))?;
        let synchronous: i64 = conn.pragma_query_value(None, "synchronous", |row| row.get(0))?;
        let busy_ms: i64 = conn.pragma_query_value(None, "busy_timeout", |row| row.get(0))?;
        let secure_delete: i64 = conn.pragma_query_value(None, "secure_delete", |row| row.get(0))?;
        assert_eq!(journal, "wal");
        assert_eq!(synchronous, 2, "FULL");
        assert_eq!(busy_ms, 5000);
        assert_eq!(secure_delete, 1);
        Ok(())
    }
}
