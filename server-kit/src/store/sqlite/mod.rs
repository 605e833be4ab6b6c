//! Every store on one SQLite file: the embedded default.
//!
//! The file is in WAL mode, so readers never wait for the writer. One writer connection
//! takes every change, in order (SQLite allows one writer at a time anyway, and queueing
//! in-process is cheaper than contending on the file lock), and a few reader connections
//! serve lookups, which are most of the load (`/auth/me` is three reads). Each connection
//! runs on its own thread (see `worker.rs`), never on the async executor. Operations that
//! must be atomic run in a `BEGIN IMMEDIATE` transaction on the writer, which also holds
//! against other processes sharing the file.
//!
//! The schema is versioned (see `migrations.rs`): opening applies what is missing and
//! refuses a database written by a newer build.

mod accounts;
mod limits;
mod mfa;
mod migrations;
mod one_time;
mod refresh;
mod sessions;
mod standing;
mod sync_items;
mod token_rows;
mod tokens;
mod worker;

pub use migrations::SCHEMA_VERSION;
pub use sync_items::SqliteSyncItems;

use super::StoreError;
use rusqlite::{Connection, OpenFlags};
use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use worker::{Threads, Worker};

/// Reader connections per file: enough to keep two cores busy while some wait on I/O, few
/// enough that each keeps a warm statement cache.
const READERS: usize = 4;

/// How long a connection waits for another process's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Prepared statements kept per connection; above the number of distinct queries here.
const STATEMENT_CACHE: usize = 64;

/// Every store on one SQLite database. Cloning shares the connections; dropping the last
/// clone lets the calls already queued finish, then closes the file.
#[derive(Clone)]
pub struct SqliteStore {
    pool: Arc<Pool>,
}

/// Fields drop in order: the queues close before the threads are joined.
struct Pool {
    writer: Worker,
    /// Empty for an in-memory database, whose only connection is the writer.
    readers: Box<[Worker]>,
    next_reader: AtomicUsize,
    _threads: Threads,
}

impl SqliteStore {
    /// Opens the database at `path`, creating and migrating it if need be.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when the file cannot be opened, refuses WAL mode or fails to
    /// migrate, and when it was written by a newer schema version (the file is then left
    /// untouched).
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteStore, StoreError> {
        let path = path.as_ref();
        // Password hashes and emails: readable by the owner only (SQLite gives its -wal and
        // -shm files the database's mode).
        crate::files::prepare_sqlite(path);
        let connect = || Connection::open_with_flags(path, OpenFlags::default());
        let opened = || -> Result<SqliteStore, Fail> {
            let writer = open_writer(connect()?, true)?;
            let readers = (0..READERS)
                .map(|_| open_reader(connect()?))
                .collect::<Result<Vec<_>, _>>()?;
            SqliteStore::start(writer, readers)
        };
        let store = opened().map_err(|fail| fail.into_store("open"))?;
        crate::files::check_sqlite(path);
        Ok(store)
    }

    /// Opens a private in-memory database on a single connection (for tests: nothing
    /// survives the store, and reads queue behind writes).
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when SQLite cannot allocate the database.
    pub fn open_in_memory() -> Result<SqliteStore, StoreError> {
        let opened = || SqliteStore::start(open_writer(Connection::open_in_memory()?, false)?, Vec::new());
        opened().map_err(|fail| fail.into_store("open"))
    }

    /// Moves each connection onto its thread.
    fn start(writer: Connection, readers: Vec<Connection>) -> Result<SqliteStore, Fail> {
        // Declared first so it drops last: on an early return the queues close, then it joins.
        let mut threads = Threads::default();
        let writer = Worker::spawn("holdfast-sqlite-writer".into(), writer, &mut threads)?;
        let readers = readers
            .into_iter()
            .enumerate()
            .map(|(n, conn)| Worker::spawn(format!("holdfast-sqlite-reader-{n}"), conn, &mut threads))
            .collect::<Result<Box<[_]>, _>>()?;
        let pool = Pool {
            writer,
            readers,
            next_reader: AtomicUsize::new(0),
            _threads: threads,
        };
        Ok(SqliteStore { pool: Arc::new(pool) })
    }

    /// Runs a lookup on the reader with the shortest queue (ties go round-robin).
    async fn read<T, F>(&self, operation: &'static str, query: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, Fail> + Send + 'static,
    {
        let readers = &self.pool.readers;
        let start = self.pool.next_reader.fetch_add(1, Ordering::Relaxed) % readers.len().max(1);
        let reader = readers
            .iter()
            .cycle()
            .skip(start)
            .take(readers.len())
            .min_by_key(|reader| reader.backlog());
        reader
            .unwrap_or(&self.pool.writer)
            .run(operation, move |conn| query(conn))
            .await
    }

    /// Runs a change on the writer connection, after the changes queued before it.
    async fn write<T, F>(&self, operation: &'static str, change: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, Fail> + Send + 'static,
    {
        self.pool.writer.run(operation, change).await
    }

    /// Runs a change on the writer in a group commit with the grouped changes queued with
    /// it (see `worker.rs`): answered once durable. `change` must not open a transaction.
    async fn write_grouped<T, F>(&self, operation: &'static str, change: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, Fail> + Send + 'static,
    {
        self.pool.writer.run_grouped(operation, change).await
    }
}

/// Creates the database at `path`, or migrates it, up to schema `version` only: the file an
/// older build left, for migration tests.
#[doc(hidden)]
pub fn migrate_file_to(path: impl AsRef<Path>, version: i64) -> Result<(), StoreError> {
    let migrated = || -> Result<(), Fail> {
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        migrations::migrate_to(&mut conn, version)
    };
    migrated().map_err(|fail| fail.into_store("migrate"))
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("readers", &self.pool.readers.len())
            .finish_non_exhaustive()
    }
}

/// Settings every connection needs; `synchronous` and the busy timeout are per connection.
fn configure(conn: &Connection) -> Result<(), Fail> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    conn.pragma_update(None, "foreign_keys", true)?;
    // With WAL, NORMAL loses at most the last commits on power loss, never consistency.
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(())
}

fn open_writer(mut conn: Connection, wal: bool) -> Result<Connection, Fail> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // Checked before anything writes (journal mode included): a newer file stays as it is.
    migrations::check_not_newer(migrations::schema_version(&conn)?)?;
    if wal {
        let mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Fail::Store(StoreError::backend(
                "open",
                format!("the file system refused WAL mode (journal mode is {mode})"),
            )));
        }
    }
    configure(&conn)?;
    migrations::migrate(&mut conn)?;
    Ok(conn)
}

fn open_reader(conn: Connection) -> Result<Connection, Fail> {
    configure(&conn)?;
    // Readers must never write: writes belong on the serialized writer.
    conn.pragma_update(None, "query_only", true)?;
    Ok(conn)
}

/// Why a database call failed, before it is named after its operation.
#[derive(Debug)]
enum Fail {
    Sql(rusqlite::Error),
    Store(StoreError),
}

impl From<rusqlite::Error> for Fail {
    fn from(error: rusqlite::Error) -> Self {
        Fail::Sql(error)
    }
}

impl From<StoreError> for Fail {
    fn from(error: StoreError) -> Self {
        Fail::Store(error)
    }
}

impl Fail {
    fn into_store(self, operation: &'static str) -> StoreError {
        use rusqlite::Error as E;
        match self {
            Fail::Store(error) => error,
            // A value of the wrong type or shape: the row is bad, not the database.
            Fail::Sql(
                error @ (E::InvalidColumnType(..)
                | E::FromSqlConversionFailure(..)
                | E::IntegralValueOutOfRange(..)
                | E::Utf8Error(..)),
            ) => StoreError::Corrupt(format!("{operation}: {error}")),
            Fail::Sql(error) => StoreError::backend(operation, error),
        }
    }
}
