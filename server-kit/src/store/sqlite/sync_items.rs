//! Sync items on SQLite ([`SqliteSyncItems`]): one process, a file of its own (or memory).
//!
//! One connection behind a mutex takes every call, on a blocking thread. Each write bumps
//! the item's version and is published into the store's [`Channels`] while the lock is
//! still held, stamped with the count of commits so far ([`Stamp::Commit`]); a snapshot
//! page read under the same lock records that count ([`Floor::Commits`]), so subscribers
//! see the commit order and skip exactly what their snapshot holds.
//!
//! The file's schema is versioned (`PRAGMA user_version`): 2 adds `sync_usage`, filled
//! from the items when a file of version 1 is opened.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};

use crate::store::sync_items::{
    Change, Channels, CollectionError, Floor, Item, ItemWrite, Quota, SnapshotPage, Stamp, SyncItemStore,
    check_quota, page_full, page_is_full, usage_from_stored,
};

/// The file's schema version (`PRAGMA user_version`): 2 adds `sync_usage`.
const SYNC_SCHEMA_VERSION: i64 = 2;
/// How long a write waits for another process's lock on the file.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Sync items in one SQLite database. Cloning shares the connection and the broadcasts.
#[derive(Clone)]
pub struct SqliteSyncItems {
    shared: Arc<Shared>,
}

struct Shared {
    db: Mutex<Db>,
    channels: Channels,
}

struct Db {
    connection: Connection,
    /// Writes committed through this store: a change's [`Stamp::Commit`], and a snapshot
    /// page's [`Floor::Commits`], both read under the lock.
    commits: u64,
}

impl std::fmt::Debug for SqliteSyncItems {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteSyncItems").finish_non_exhaustive()
    }
}

impl SqliteSyncItems {
    /// Opens (creating if need be) the file at `path`, in WAL mode, migrating its schema.
    ///
    /// # Errors
    ///
    /// [`CollectionError::Database`] when the file cannot be opened or migrated,
    /// [`CollectionError::NewerSchema`] when a newer build wrote it (it is left untouched).
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteSyncItems, CollectionError> {
        let path = path.as_ref();
        crate::files::prepare_sqlite(path);
        let connection = Connection::open(path)?;
        connection.busy_timeout(BUSY_TIMEOUT)?;
        check_not_newer(&connection)?;
        connection.pragma_update(None, "journal_mode", "WAL")?;
        connection.pragma_update(None, "synchronous", "NORMAL")?;
        let store = SqliteSyncItems::with_connection(connection)?;
        crate::files::check_sqlite(path);
        Ok(store)
    }

    /// A private in-memory database: nothing survives the store (tests, demos).
    ///
    /// # Errors
    ///
    /// [`CollectionError::Database`] when SQLite cannot allocate the database.
    pub fn open_in_memory() -> Result<SqliteSyncItems, CollectionError> {
        SqliteSyncItems::with_connection(Connection::open_in_memory()?)
    }

    fn with_connection(connection: Connection) -> Result<SqliteSyncItems, CollectionError> {
        let version = check_not_newer(&connection)?;
        connection.execute_batch(
            "CREATE TABLE IF NOT EXISTS sync_items (
                user_id TEXT NOT NULL,
                key TEXT NOT NULL,
                value TEXT NOT NULL,
                version INTEGER NOT NULL,
                device_id TEXT NOT NULL,
                updated_at INTEGER NOT NULL,
                PRIMARY KEY (user_id, key)
            ) WITHOUT ROWID;",
        )?;
        if version < 2 {
            // What each user holds, kept with every write so a quota check reads one row.
            connection.execute_batch(
                "BEGIN;
                CREATE TABLE IF NOT EXISTS sync_usage (
                    user_id TEXT PRIMARY KEY,
                    items INTEGER NOT NULL,
                    bytes INTEGER NOT NULL
                ) WITHOUT ROWID;
                INSERT OR REPLACE INTO sync_usage (user_id, items, bytes)
                    SELECT user_id, COUNT(*), SUM(length(CAST(key AS BLOB)) + length(CAST(value AS BLOB)))
                    FROM sync_items GROUP BY user_id;
                PRAGMA user_version = 2;
                COMMIT;",
            )?;
        }
        Ok(SqliteSyncItems {
            shared: Arc::new(Shared {
                db: Mutex::new(Db {
                    connection,
                    commits: 0,
                }),
                channels: Channels::default(),
            }),
        })
    }

    /// Runs `work` on the connection, on a blocking thread.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Shared, &mut Db) -> Result<T, CollectionError> + Send + 'static,
    ) -> Result<T, CollectionError> {
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || work(&shared, &mut lock(&shared.db)))
            .await
            .map_err(|_| CollectionError::Task)?
    }
}

/// The file's schema version, refused when newer than this build's.
fn check_not_newer(connection: &Connection) -> Result<i64, CollectionError> {
    let version: i64 = connection.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if version > SYNC_SCHEMA_VERSION {
        return Err(CollectionError::NewerSchema(version));
    }
    Ok(version)
}

#[async_trait]
impl SyncItemStore for SqliteSyncItems {
    async fn usage(&self, user_id: &str) -> Result<(u64, u64), CollectionError> {
        let user_id = user_id.to_owned();
        self.run(move |_, db| {
            let (items, bytes) = read_usage(&db.connection, &user_id)?;
            Ok(usage_from_stored(items, bytes))
        })
        .await
    }

    async fn snapshot_page(
        &self,
        user_id: &str,
        after: Option<&str>,
    ) -> Result<(SnapshotPage, Floor), CollectionError> {
        let (user_id, after) = (user_id.to_owned(), after.unwrap_or("").to_owned());
        self.run(move |_, db| {
            let mut statement = db.connection.prepare_cached(
                "SELECT key, value, version, device_id, updated_at FROM sync_items
                 WHERE user_id = ?1 AND key > ?2 ORDER BY key",
            )?;
            // Keys are never empty, so "" is before every key.
            let mut rows = statement.query(params![user_id, after])?;
            let mut items = Vec::new();
            let mut bytes = 0;
            let mut complete = true;
            while let Some(row) = rows.next()? {
                if page_is_full(&items, bytes) {
                    complete = false;
                    break;
                }
                let value: String = row.get(1)?;
                let item = Item {
                    key: row.get(0)?,
                    value: serde_json::from_str(&value).map_err(|_| CollectionError::Corrupt)?,
                    version: row.get(2)?,
                    device_id: row.get(3)?,
                    updated_at: row.get(4)?,
                };
                page_full(&mut items, &mut bytes, item, value.len());
            }
            Ok((SnapshotPage { items, complete }, Floor::Commits(db.commits)))
        })
        .await
    }

    async fn put(&self, write: ItemWrite, quota: Quota) -> Result<Arc<Item>, CollectionError> {
        self.run(move |shared, db| {
            let transaction = db.connection.transaction()?;
            let old: Option<i64> = transaction
                .prepare_cached(
                    "SELECT length(CAST(key AS BLOB)) + length(CAST(value AS BLOB)) FROM sync_items
                     WHERE user_id = ?1 AND key = ?2",
                )?
                .query_row([&write.user_id, &write.key], |row| row.get(0))
                .optional()?;
            let usage = read_usage(&transaction, &write.user_id)?;
            let (items, bytes) = check_quota(usage, old, write.size(), quota)?;
            let version: i64 = transaction
                .prepare_cached(
                    "INSERT INTO sync_items (user_id, key, value, version, device_id, updated_at)
                     VALUES (?1, ?2, ?3, 1, ?4, ?5)
                     ON CONFLICT (user_id, key) DO UPDATE SET
                        value = excluded.value,
                        version = sync_items.version + 1,
                        device_id = excluded.device_id,
                        updated_at = excluded.updated_at
                     RETURNING version",
                )?
                .query_row(
                    params![
                        write.user_id,
                        write.key,
                        write.text,
                        write.device_id,
                        write.now_ms
                    ],
                    |row| row.get(0),
                )?;
            transaction
                .prepare_cached(
                    "INSERT INTO sync_usage (user_id, items, bytes) VALUES (?1, ?2, ?3)
                     ON CONFLICT (user_id) DO UPDATE SET items = excluded.items, bytes = excluded.bytes",
                )?
                .execute(params![write.user_id, items, bytes])?;
            transaction.commit()?;
            db.commits += 1;
            let user_id = write.user_id.clone();
            let item = Arc::new(write.into_item(version));
            // Still under the lock: subscribers see the commit order.
            let stamp = Stamp::Commit(db.commits);
            shared.channels.publish(
                &user_id,
                Change::Item {
                    item: item.clone(),
                    stamp,
                },
            );
            Ok(item)
        })
        .await
    }

    async fn delete_user(&self, user_id: &str) -> Result<u64, CollectionError> {
        let user_id = user_id.to_owned();
        self.run(move |_, db| {
            let transaction = db.connection.transaction()?;
            let deleted = transaction.execute("DELETE FROM sync_items WHERE user_id = ?1", [&user_id])?;
            transaction.execute("DELETE FROM sync_usage WHERE user_id = ?1", [&user_id])?;
            transaction.commit()?;
            Ok(u64::try_from(deleted).unwrap_or(u64::MAX))
        })
        .await
    }

    fn changes(&self) -> &Channels {
        &self.shared.channels
    }
}

/// `(items, bytes)` of a user.
fn read_usage(connection: &Connection, user_id: &str) -> Result<(i64, i64), rusqlite::Error> {
    Ok(connection
        .prepare_cached("SELECT items, bytes FROM sync_usage WHERE user_id = ?1")?
        .query_row([user_id], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?
        .unwrap_or((0, 0)))
}

/// A panic elsewhere while holding the lock leaves the data consistent (SQLite rolls the
/// transaction back), so a poisoned lock is used anyway.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn write(key: &str, value: serde_json::Value) -> ItemWrite {
        ItemWrite {
            user_id: "u".to_owned(),
            key: key.to_owned(),
            text: value.to_string(),
            value,
            device_id: "d".to_owned(),
            now_ms: 0,
        }
    }

    #[tokio::test]
    async fn usage_is_counted_from_a_file_of_the_first_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sync.db");
        {
            let connection = Connection::open(&path).unwrap();
            connection
                .execute_batch(
                    "CREATE TABLE sync_items (
                        user_id TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
                        version INTEGER NOT NULL, device_id TEXT NOT NULL,
                        updated_at INTEGER NOT NULL, PRIMARY KEY (user_id, key)
                    ) WITHOUT ROWID;
                    INSERT INTO sync_items VALUES ('u', 'é', '\"ab\"', 1, 'd', 0), ('u', 'k', '1', 1, 'd', 0);
                    PRAGMA user_version = 1;",
                )
                .unwrap();
        }
        let store = SqliteSyncItems::open(&path).unwrap();
        // "é" is 2 bytes, "\"ab\"" 4, "k" 1, "1" 1.
        assert_eq!(store.usage("u").await.unwrap(), (2, 8));
        let item = store.put(write("k", json!(22)), Quota::default()).await.unwrap();
        assert_eq!(item.version, 2, "the version goes on from the old file's");
        assert_eq!(store.usage("u").await.unwrap(), (2, 9));
        assert_eq!(store.delete_user("u").await.unwrap(), 2);
        assert_eq!(store.usage("u").await.unwrap(), (0, 0));
    }

    #[test]
    fn a_file_of_a_newer_schema_is_refused_and_left_as_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sync.db");
        Connection::open(&path)
            .unwrap()
            .execute_batch("PRAGMA user_version = 3;")
            .unwrap();
        let refused = SqliteSyncItems::open(&path).unwrap_err();
        assert!(matches!(refused, CollectionError::NewerSchema(3)), "{refused}");
        let connection = Connection::open(&path).unwrap();
        let mode: String = connection
            .pragma_query_value(None, "journal_mode", |row| row.get(0))
            .unwrap();
        assert_ne!(mode.to_lowercase(), "wal", "not switched to WAL");
        let tables: i64 = connection
            .query_row("SELECT count(*) FROM sqlite_master", [], |row| row.get(0))
            .unwrap();
        assert_eq!(tables, 0, "no table created");
    }

    #[tokio::test]
    async fn an_unreadable_value_is_reported_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sync.db");
        let store = SqliteSyncItems::open(&path).unwrap();
        store.put(write("k", json!(1)), Quota::default()).await.unwrap();
        Connection::open(&path)
            .unwrap()
            .execute("UPDATE sync_items SET value = 'not json'", [])
            .unwrap();
        let read = store.snapshot_page("u", None).await;
        assert!(matches!(read, Err(CollectionError::Corrupt)), "{read:?}");
    }
}
