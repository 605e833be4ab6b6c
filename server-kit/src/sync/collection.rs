//! The data behind the sync endpoint: per-user key/value items, and a per-user broadcast of
//! every change to the connections open in this process.
//!
//! Two backends keep the items; the broadcasts and subscriptions are the same on both:
//!
//! - SQLite ([`SharedCollection::open`], [`SharedCollection::memory`]): one process. Each
//!   write bumps the item's version and is published while the write lock is still held.
//! - PostgreSQL ([`SharedCollection::postgres`]): any number of instances on one database
//!   schema, e.g. behind a load balancer. A write commits and notifies (`NOTIFY`) in one
//!   statement, and every instance, the writer's included, delivers the change to its own
//!   subscribers from its `LISTEN` connection (see `postgres.rs` for the staleness bound
//!   and what happens when that connection drops).
//!
//! # Ordering
//!
//! On both, every subscriber sees a user's changes in the order they were committed, across
//! keys too, so the versions of one key always increase. On PostgreSQL a large value whose
//! version is superseded by the time its instance reads it is skipped (the newer version
//! follows); after [`Update::Lagged`] the subscriber reads a fresh snapshot instead.
//!
//! # Snapshots
//!
//! Subscribe first, then read the snapshot through [`Subscription::snapshot`]: the
//! subscription then yields exactly the changes the snapshot does not hold, so no change
//! is missed, none comes twice, and none is older than the snapshot's version of its key.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::broadcast;

use super::postgres::{PostgresBackend, TxSnapshot};
use crate::events::{Delivered, Origin, Revocation, RevocationBus};
use crate::store::postgres::PostgresStore;

/// Longest key, in characters.
pub const MAX_KEY_CHARS: usize = 128;
/// Largest value, in bytes of its JSON serialization.
pub const MAX_VALUE_BYTES: usize = 16 * 1024;

/// Most items in one snapshot page.
pub const PAGE_MAX_ITEMS: usize = 256;
/// A snapshot page stops after the item that brings its keys and values to this many
/// bytes, so one page holds at most this plus one item.
pub const PAGE_BUDGET_BYTES: usize = 128 * 1024;

/// Changes a slow connection may fall behind before it is told it lagged (it then gets a
/// fresh snapshot).
const UPDATES_PER_USER: usize = 256;
/// The file's schema version (`PRAGMA user_version`): 2 adds `sync_usage`.
const SCHEMA_VERSION: i64 = 2;
/// How long a write waits for another process's lock on the file.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// One item of a user's collection, as `snapshot` and `item` messages carry it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Item {
    /// The key, 1 to [`MAX_KEY_CHARS`] characters.
    pub key: String,
    /// Any JSON value.
    pub value: Value,
    /// 1 for the first write of the key, then one more for each write.
    pub version: i64,
    /// The device that wrote it last.
    pub device_id: String,
    /// When it was written last, ms since the epoch.
    pub updated_at: i64,
}

/// What one user may keep in the collection. A write that would go over is refused with
/// [`CollectionError::QuotaExceeded`]; a write that shrinks the user's bytes is always
/// allowed, so a user over a lowered quota can still clean up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// Most items (keys) per user. Default 10,000.
    pub items: u64,
    /// Most bytes per user: keys plus values as JSON text, in UTF-8. Default 64 MiB.
    pub bytes: u64,
}

impl Default for Quota {
    fn default() -> Self {
        Quota {
            items: 10_000,
            bytes: 64 * 1024 * 1024,
        }
    }
}

/// One page of a snapshot ([`Subscription::snapshot_page`]).
#[derive(Debug, Clone, PartialEq)]
pub struct SnapshotPage {
    /// Items by key, after those of the previous pages.
    pub items: Vec<Item>,
    /// Whether this is the last page.
    pub complete: bool,
}

/// Why a collection operation failed.
#[derive(Debug, thiserror::Error)]
pub enum CollectionError {
    /// The key or value breaks a limit; the message is safe to show.
    #[error("{0}")]
    Invalid(&'static str),
    /// The write would take the user over their [`Quota`]; the message is safe to show.
    #[error("{0}")]
    QuotaExceeded(String),
    /// The database failed.
    #[error("sync collection database: {0}")]
    Database(#[from] rusqlite::Error),
    /// PostgreSQL failed or could not be reached (its message and SQLSTATE only: no row
    /// values).
    #[error("sync collection database: {0}")]
    Postgres(String),
    /// A stored value is not JSON (the file was edited or damaged).
    #[error("sync collection database holds an unreadable value")]
    Corrupt,
    /// The file was written by a newer build.
    #[error("sync collection schema {0} is newer than this build understands ({SCHEMA_VERSION})")]
    NewerSchema(i64),
    /// The blocking task running the operation failed.
    #[error("sync collection task failed")]
    Task,
}

/// Per-user items, persisted, with a per-user change broadcast. Cheap to clone; clones share
/// the storage and the broadcasts.
#[derive(Clone)]
pub struct SharedCollection {
    inner: Arc<Inner>,
}

struct Inner {
    backend: Backend,
    channels: Arc<Channels>,
    /// The [`Quota`], shared by every clone.
    quota_items: AtomicU64,
    quota_bytes: AtomicU64,
}

impl Inner {
    fn new(backend: Backend, channels: Arc<Channels>) -> Inner {
        let quota = Quota::default();
        Inner {
            backend,
            channels,
            quota_items: AtomicU64::new(quota.items),
            quota_bytes: AtomicU64::new(quota.bytes),
        }
    }

    fn quota(&self) -> Quota {
        Quota {
            items: self.quota_items.load(Ordering::Relaxed),
            bytes: self.quota_bytes.load(Ordering::Relaxed),
        }
    }
}

/// Where the items are kept.
enum Backend {
    Sqlite(Arc<SqliteBackend>),
    Postgres(PostgresBackend),
}

impl std::fmt::Debug for SharedCollection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let backend = match self.inner.backend {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        };
        f.debug_struct("SharedCollection")
            .field("backend", &backend)
            .finish_non_exhaustive()
    }
}

impl SharedCollection {
    /// Opens (creating if need be) the collection file at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<SharedCollection, CollectionError> {
        let path = path.as_ref();
        crate::files::prepare_sqlite(path);
        let connection = Connection::open(path)?;
        connection.busy_timeout(BUSY_TIMEOUT)?;
        connection.pragma_update(None, "journal_mode", "WAL")?;
        connection.pragma_update(None, "synchronous", "NORMAL")?;
        let collection = SharedCollection::with_connection(connection)?;
        crate::files::check_sqlite(path);
        Ok(collection)
    }

    /// A collection that lives in memory only (tests, demos).
    pub fn memory() -> SharedCollection {
        // Creating one table in a fresh in-memory database depends on no input: it fails only
        // if SQLite itself is broken.
        Connection::open_in_memory()
            .map_err(CollectionError::from)
            .and_then(SharedCollection::with_connection)
            .expect("an in-memory SQLite database")
    }

    fn with_connection(connection: Connection) -> Result<SharedCollection, CollectionError> {
        let version: i64 = connection.pragma_query_value(None, "user_version", |row| row.get(0))?;
        if version > SCHEMA_VERSION {
            return Err(CollectionError::NewerSchema(version));
        }
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
        Ok(SharedCollection {
            inner: Arc::new(Inner::new(
                Backend::Sqlite(Arc::new(SqliteBackend {
                    db: Mutex::new(SqliteDb {
                        connection,
                        commits: 0,
                    }),
                })),
                Arc::new(Channels::default()),
            )),
        })
    }

    /// The collection on PostgreSQL, in `store`'s database and schema (the `sync_items`
    /// table, created by the store's migrations) and sharing its connection pool: what
    /// several instances behind a load balancer use, each with its own collection on the
    /// same schema. Opens this instance's `LISTEN` connection (one more connection than the
    /// pool's) before it returns; a background task on the current runtime keeps it open
    /// until the last clone is dropped. See the module documentation of `sync` for the
    /// delivery guarantees.
    ///
    /// # Errors
    ///
    /// [`CollectionError::Postgres`] when the `LISTEN` connection cannot be opened.
    pub async fn postgres(store: &PostgresStore) -> Result<SharedCollection, CollectionError> {
        let channels = Arc::new(Channels::default());
        let backend = PostgresBackend::start(store, channels.clone()).await?;
        Ok(SharedCollection {
            inner: Arc::new(Inner::new(Backend::Postgres(backend), channels)),
        })
    }

    /// Sets the per-user [`Quota`] (every clone shares it); [`Quota::default`] until then.
    pub fn set_quota(&self, quota: Quota) {
        self.inner.quota_items.store(quota.items, Ordering::Relaxed);
        self.inner.quota_bytes.store(quota.bytes, Ordering::Relaxed);
    }

    /// The per-user quota in force.
    pub fn quota(&self) -> Quota {
        self.inner.quota()
    }

    /// How many items `user_id` holds and their bytes (keys plus values), as the quota
    /// counts them.
    pub async fn usage(&self, user_id: &str) -> Result<(u64, u64), CollectionError> {
        match &self.inner.backend {
            Backend::Sqlite(sqlite) => {
                let (sqlite, user_id) = (sqlite.clone(), user_id.to_owned());
                run_blocking(move || {
                    let db = lock(&sqlite.db);
                    let usage = read_usage(&db.connection, &user_id)?;
                    Ok((clamp_u64(usage.0), clamp_u64(usage.1)))
                })
                .await
            }
            Backend::Postgres(postgres) => postgres.usage(user_id).await,
        }
    }

    /// Every item of `user_id`, by key (read page by page; for tests and tools: a
    /// connection sends [`Subscription::snapshot_page`]s instead of holding them all).
    pub async fn snapshot(&self, user_id: &str) -> Result<Vec<Item>, CollectionError> {
        let mut items = Vec::new();
        let mut after = None;
        loop {
            let (page, _) = self.inner.snapshot_page(user_id, after.take()).await?;
            after = page.items.last().map(|item| item.key.clone());
            items.extend(page.items);
            if page.complete {
                return Ok(items);
            }
        }
    }

    /// Stores `value` under `key` for `user_id` (one version more than before) and sends the
    /// item to every subscriber of the user (on PostgreSQL, in every instance).
    pub async fn put(
        &self,
        user_id: &str,
        key: &str,
        value: Value,
        device_id: &str,
        now_ms: i64,
    ) -> Result<Arc<Item>, CollectionError> {
        check_key(key)?;
        let text =
            serde_json::to_string(&value).map_err(|_| CollectionError::Invalid("The value is not JSON."))?;
        if text.len() > MAX_VALUE_BYTES {
            return Err(CollectionError::Invalid("The value exceeds 16 KiB."));
        }
        let quota = self.inner.quota();
        match &self.inner.backend {
            Backend::Sqlite(sqlite) => {
                let (sqlite, channels) = (sqlite.clone(), self.inner.channels.clone());
                let write = Write {
                    user_id: user_id.to_owned(),
                    key: key.to_owned(),
                    text,
                    device_id: device_id.to_owned(),
                    now_ms,
                };
                run_blocking(move || sqlite.put(&channels, write, value, quota)).await
            }
            // Delivered to the subscribers, here too, by the LISTEN connection.
            Backend::Postgres(postgres) => {
                let version = postgres
                    .put(user_id, key, &text, device_id, now_ms, quota)
                    .await?;
                Ok(Arc::new(Item {
                    key: key.to_owned(),
                    value,
                    version,
                    device_id: device_id.to_owned(),
                    updated_at: now_ms,
                }))
            }
        }
    }

    /// Deletes every item of `user_id` (an account deleted): how many there were. The
    /// user's open connections are not told; the sync gate closes them (4003).
    pub async fn delete_user(&self, user_id: &str) -> Result<u64, CollectionError> {
        match &self.inner.backend {
            Backend::Sqlite(sqlite) => {
                let (sqlite, user_id) = (sqlite.clone(), user_id.to_owned());
                run_blocking(move || {
                    let mut db = lock(&sqlite.db);
                    let transaction = db.connection.transaction()?;
                    let deleted =
                        transaction.execute("DELETE FROM sync_items WHERE user_id = ?1", [&user_id])?;
                    transaction.execute("DELETE FROM sync_usage WHERE user_id = ?1", [&user_id])?;
                    transaction.commit()?;
                    Ok(u64::try_from(deleted).unwrap_or(u64::MAX))
                })
                .await
            }
            Backend::Postgres(postgres) => postgres.delete_user(user_id).await,
        }
    }

    /// Deletes a user's items whenever `bus` says this process deleted the account
    /// ([`Revocation::UserDeleted`] published here, not relayed: on PostgreSQL the instance
    /// that deleted the account deletes the shared items, once). Runs on a task of the
    /// current runtime until the bus or the collection goes away; `sync_router` starts it.
    pub fn delete_items_of_deleted_accounts(&self, bus: &RevocationBus) {
        let mut events = bus.subscribe();
        let collection = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            use broadcast::error::RecvError;
            loop {
                let user_id = match events.recv().await {
                    Ok(Delivered {
                        event: Revocation::UserDeleted { user_id },
                        origin: Origin::Local,
                    }) => user_id,
                    Ok(_) => continue,
                    Err(RecvError::Lagged(missed)) => {
                        tracing::warn!(
                            missed,
                            "revocation events missed: the sync items of an account deleted meanwhile may remain"
                        );
                        continue;
                    }
                    Err(RecvError::Closed) => return,
                };
                let Some(inner) = collection.upgrade() else { return };
                let collection = SharedCollection { inner };
                match collection.delete_user(&user_id).await {
                    Ok(items) => {
                        tracing::info!(user = %user_id, items, "sync items of a deleted account deleted")
                    }
                    Err(error) => {
                        tracing::error!(user = %user_id, %error, "could not delete the sync items of a deleted account")
                    }
                }
            }
        });
    }

    /// Every change of `user_id`'s items from now on.
    pub fn subscribe(&self, user_id: &str) -> Subscription {
        Subscription {
            receiver: Some(self.inner.channels.subscribe(user_id)),
            user_id: user_id.to_owned(),
            inner: self.inner.clone(),
            floors: Vec::new(),
            paging: None,
        }
    }

    /// How many users have a subscriber in this process.
    pub fn subscribed_users(&self) -> usize {
        self.inner.channels.len()
    }

    /// On PostgreSQL, the server process id of this instance's `LISTEN` connection while it
    /// is open (`pg_stat_activity.pid`); `None` on SQLite or while it is being reopened.
    pub fn listen_backend_pid(&self) -> Option<i32> {
        match &self.inner.backend {
            Backend::Sqlite(_) => None,
            Backend::Postgres(postgres) => postgres.listen_backend_pid(),
        }
    }

    /// On PostgreSQL, how many times the `LISTEN` connection was reopened after it dropped
    /// (each time, every subscriber was sent [`Update::Lagged`]); 0 on SQLite.
    pub fn listen_reconnects(&self) -> u64 {
        match &self.inner.backend {
            Backend::Sqlite(_) => 0,
            Backend::Postgres(postgres) => postgres.listen_reconnects(),
        }
    }
}

impl Inner {
    /// One page of the user's items: those after the key `after`, by key, and what the
    /// subscriptions are to skip for the keys it covers.
    async fn snapshot_page(
        &self,
        user_id: &str,
        after: Option<String>,
    ) -> Result<(SnapshotPage, Floor), CollectionError> {
        match &self.backend {
            Backend::Sqlite(sqlite) => {
                let (sqlite, user_id) = (sqlite.clone(), user_id.to_owned());
                run_blocking(move || sqlite.snapshot_page(&user_id, after.as_deref())).await
            }
            Backend::Postgres(postgres) => {
                let (page, snapshot) = postgres.snapshot_page(user_id, after.as_deref()).await?;
                Ok((page, Floor::Postgres(snapshot)))
            }
        }
    }
}

/// Adds a row to a page being read: whether the page is full after it.
pub(super) fn page_full(items: &mut Vec<Item>, bytes: &mut usize, item: Item, value_bytes: usize) -> bool {
    *bytes = bytes.saturating_add(item.key.len()).saturating_add(value_bytes);
    items.push(item);
    items.len() >= PAGE_MAX_ITEMS || *bytes >= PAGE_BUDGET_BYTES
}

fn clamp_u64(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

fn clamp_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// `(items, bytes)` of a user on SQLite.
fn read_usage(connection: &Connection, user_id: &str) -> Result<(i64, i64), rusqlite::Error> {
    Ok(connection
        .prepare_cached("SELECT items, bytes FROM sync_usage WHERE user_id = ?1")?
        .query_row([user_id], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?
        .unwrap_or((0, 0)))
}

/// Checks a write against the quota: the user holds `usage`, the key held `old` bytes (or
/// nothing), the write brings `size`. The usage after the write, or the refusal.
pub(super) fn check_quota(
    usage: (i64, i64),
    old: Option<i64>,
    size: i64,
    quota: Quota,
) -> Result<(i64, i64), CollectionError> {
    let (items, bytes) = usage;
    let new_items = if old.is_some() {
        items
    } else {
        items.saturating_add(1)
    };
    let new_bytes = bytes.saturating_sub(old.unwrap_or(0)).saturating_add(size);
    if old.is_none() && new_items > clamp_i64(quota.items) {
        return Err(CollectionError::QuotaExceeded(format!(
            "This account already holds {items} items, the most this server keeps ({}).",
            quota.items
        )));
    }
    if new_bytes > clamp_i64(quota.bytes) && new_bytes > bytes {
        return Err(CollectionError::QuotaExceeded(format!(
            "This write would bring the account's items to {new_bytes} bytes, over the {} this server keeps.",
            quota.bytes
        )));
    }
    Ok((new_items, new_bytes))
}

// ---------------------------------------------------------------------------------------
// The broadcasts, shared by both backends.

/// Where a change stands in its backend's commit order, to compare it with a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stamp {
    /// SQLite: the count of this process's commits, this one included.
    Commit(u64),
    /// PostgreSQL: the id of the transaction that wrote it.
    Xid(u64),
}

/// What goes through a user's broadcast.
#[derive(Debug, Clone)]
pub(super) enum Change {
    /// An item was written.
    Item { item: Arc<Item>, stamp: Stamp },
    /// Changes may have been missed: every subscriber reads a fresh snapshot.
    Resync,
}

/// The changes a snapshot already holds: a subscription skips them.
#[derive(Debug, Clone)]
enum Floor {
    /// SQLite: the commits counted when the snapshot was read.
    Commits(u64),
    /// PostgreSQL: the transactions the snapshot saw.
    Postgres(TxSnapshot),
}

impl Floor {
    fn holds(&self, stamp: Stamp) -> bool {
        match (self, stamp) {
            (Floor::Commits(commits), Stamp::Commit(commit)) => commit <= *commits,
            (Floor::Postgres(snapshot), Stamp::Xid(xid)) => snapshot.sees(xid),
            _ => false,
        }
    }
}

/// One broadcast per user with at least one subscriber in this process; removed with the
/// last one.
#[derive(Default)]
pub(super) struct Channels {
    senders: Mutex<HashMap<String, broadcast::Sender<Change>>>,
}

impl Channels {
    /// Sends `change` to the user's subscribers, if any.
    pub(super) fn publish(&self, user_id: &str, change: Change) {
        if let Some(sender) = lock(&self.senders).get(user_id) {
            // An error only means nobody listens any more.
            let _ = sender.send(change);
        }
    }

    /// Whether the user has a subscriber here.
    pub(super) fn is_subscribed(&self, user_id: &str) -> bool {
        lock(&self.senders).contains_key(user_id)
    }

    /// Tells every subscriber of every user to read a fresh snapshot.
    pub(super) fn resync_all(&self) {
        for sender in lock(&self.senders).values() {
            let _ = sender.send(Change::Resync);
        }
    }

    fn subscribe(&self, user_id: &str) -> broadcast::Receiver<Change> {
        let mut senders = lock(&self.senders);
        match senders.get(user_id) {
            Some(sender) => sender.subscribe(),
            None => {
                let (sender, receiver) = broadcast::channel(UPDATES_PER_USER);
                senders.insert(user_id.to_owned(), sender);
                receiver
            }
        }
    }

    /// Removes the user's broadcast if its last receiver is gone.
    fn release(&self, user_id: &str) {
        let mut senders = lock(&self.senders);
        // Subscribing also holds this lock, so no receiver appears while we look.
        if senders
            .get(user_id)
            .is_some_and(|sender| sender.receiver_count() == 0)
        {
            senders.remove(user_id);
        }
    }

    fn len(&self) -> usize {
        lock(&self.senders).len()
    }
}

/// What a [`Subscription`] receives.
#[derive(Debug, Clone)]
pub enum Update {
    /// An item was written.
    Item(Arc<Item>),
    /// Changes were missed (the subscriber was too slow, or on PostgreSQL this instance's
    /// `LISTEN` connection dropped): read a fresh snapshot.
    Lagged,
}

/// The changes of one user's items; the user's broadcast goes away with its last
/// subscription.
pub struct Subscription {
    receiver: Option<broadcast::Receiver<Change>>,
    user_id: String,
    inner: Arc<Inner>,
    /// What the last snapshot read through this subscription holds: for each of its pages,
    /// the last key it covers (`None`: every key after the previous page's) and what it saw.
    floors: Vec<(Option<String>, Floor)>,
    /// A snapshot being read: the last key of the pages read so far (`None` before the
    /// first page).
    paging: Option<Option<String>>,
}

impl Subscription {
    /// The next change, skipping those the last snapshot holds. Cancel-safe. Call it once
    /// the snapshot's last page is read (changes wait in the broadcast meanwhile, up to
    /// 256; then [`Update::Lagged`]).
    pub async fn recv(&mut self) -> Update {
        use broadcast::error::RecvError;
        let Some(receiver) = self.receiver.as_mut() else {
            return std::future::pending().await;
        };
        loop {
            match receiver.recv().await {
                Ok(Change::Item { item, stamp }) => {
                    if !held(&self.floors, &item.key, stamp) {
                        return Update::Item(item);
                    }
                }
                Ok(Change::Resync) | Err(RecvError::Lagged(_)) => return Update::Lagged,
                // The map holds the sender while this receiver lives, so this cannot happen.
                Err(RecvError::Closed) => return std::future::pending().await,
            }
        }
    }

    /// The next page of a snapshot of the user's items: the first page after each
    /// [`Update::Lagged`] (or ever), then the pages after it until one is `complete`. Each
    /// page is read on its own, and [`Subscription::recv`] then skips, key by key, exactly
    /// the changes the page holding that key already saw, so no change is missed, none
    /// comes twice, and none is older than the snapshot's version of its key. A page holds
    /// at most [`PAGE_MAX_ITEMS`] items and about [`PAGE_BUDGET_BYTES`]. Cancel-safe: a page
    /// read but not returned is read again.
    pub async fn snapshot_page(&mut self) -> Result<SnapshotPage, CollectionError> {
        let after = match &self.paging {
            Some(after) => after.clone(),
            None => None,
        };
        let (page, floor) = self.inner.snapshot_page(&self.user_id, after.clone()).await?;
        if after.is_none() {
            self.floors.clear();
        }
        let last = page.items.last().map(|item| item.key.clone());
        if page.complete {
            self.floors.push((None, floor));
            self.paging = None;
        } else {
            // A page that is not the last holds at least one item.
            self.floors.push((last.clone(), floor));
            self.paging = Some(last.or(after));
        }
        Ok(page)
    }

    /// Every item of the user, read as [`Subscription::snapshot_page`]s; from then on
    /// [`Subscription::recv`] skips the changes they already hold.
    pub async fn snapshot(&mut self) -> Result<Vec<Item>, CollectionError> {
        self.paging = None;
        let mut items = Vec::new();
        loop {
            let page = self.snapshot_page().await?;
            items.extend(page.items);
            if page.complete {
                return Ok(items);
            }
        }
    }
}

/// Whether the snapshot whose pages are `floors` holds the change of `key` stamped `stamp`.
fn held(floors: &[(Option<String>, Floor)], key: &str, stamp: Stamp) -> bool {
    floors
        .iter()
        .find(|(last, _)| last.as_deref().is_none_or(|last| key <= last))
        .is_some_and(|(_, floor)| floor.holds(stamp))
}

impl Drop for Subscription {
    fn drop(&mut self) {
        drop(self.receiver.take());
        self.inner.channels.release(&self.user_id);
    }
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription").finish_non_exhaustive()
    }
}

// ---------------------------------------------------------------------------------------
// SQLite

struct SqliteBackend {
    db: Mutex<SqliteDb>,
}

struct SqliteDb {
    connection: Connection,
    /// Writes committed through this collection: a change's [`Stamp::Commit`], and a
    /// snapshot's [`Floor::Commits`], both read under the lock.
    commits: u64,
}

/// A write on its way to SQLite.
struct Write {
    user_id: String,
    key: String,
    text: String,
    device_id: String,
    now_ms: i64,
}

impl SqliteBackend {
    fn snapshot_page(
        &self,
        user_id: &str,
        after: Option<&str>,
    ) -> Result<(SnapshotPage, Floor), CollectionError> {
        let db = lock(&self.db);
        let mut statement = db.connection.prepare_cached(
            "SELECT key, value, version, device_id, updated_at FROM sync_items
             WHERE user_id = ?1 AND key > ?2 ORDER BY key",
        )?;
        // Keys are never empty, so "" is before every key.
        let mut rows = statement.query(params![user_id, after.unwrap_or("")])?;
        let mut items = Vec::new();
        let mut bytes = 0;
        let mut complete = true;
        while let Some(row) = rows.next()? {
            if items.len() >= PAGE_MAX_ITEMS || bytes >= PAGE_BUDGET_BYTES {
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
    }

    fn put(
        &self,
        channels: &Channels,
        write: Write,
        value: Value,
        quota: Quota,
    ) -> Result<Arc<Item>, CollectionError> {
        let Write {
            user_id,
            key,
            text,
            device_id,
            now_ms,
        } = write;
        let mut db = lock(&self.db);
        let transaction = db.connection.transaction()?;
        let old: Option<i64> = transaction
            .prepare_cached(
                "SELECT length(CAST(key AS BLOB)) + length(CAST(value AS BLOB)) FROM sync_items
                 WHERE user_id = ?1 AND key = ?2",
            )?
            .query_row([&user_id, &key], |row| row.get(0))
            .optional()?;
        let size = i64::try_from(key.len().saturating_add(text.len())).unwrap_or(i64::MAX);
        let (items, bytes) = check_quota(read_usage(&transaction, &user_id)?, old, size, quota)?;
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
            .query_row(params![user_id, key, text, device_id, now_ms], |row| row.get(0))?;
        transaction
            .prepare_cached(
                "INSERT INTO sync_usage (user_id, items, bytes) VALUES (?1, ?2, ?3)
                 ON CONFLICT (user_id) DO UPDATE SET items = excluded.items, bytes = excluded.bytes",
            )?
            .execute(params![user_id, items, bytes])?;
        transaction.commit()?;
        db.commits += 1;
        let item = Arc::new(Item {
            key,
            value,
            version,
            device_id,
            updated_at: now_ms,
        });
        // Still under the write lock: subscribers see the commit order.
        let stamp = Stamp::Commit(db.commits);
        channels.publish(
            &user_id,
            Change::Item {
                item: item.clone(),
                stamp,
            },
        );
        Ok(item)
    }
}

fn check_key(key: &str) -> Result<(), CollectionError> {
    if key.is_empty() {
        return Err(CollectionError::Invalid("The key is empty."));
    }
    if key.chars().count() > MAX_KEY_CHARS {
        return Err(CollectionError::Invalid("The key exceeds 128 characters."));
    }
    Ok(())
}

/// A panic elsewhere while holding the lock leaves the data consistent (SQLite rolls back;
/// the map is only ever inserted into or removed from), so a poisoned lock is used anyway.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

async fn run_blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, CollectionError> + Send + 'static,
) -> Result<T, CollectionError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|_| CollectionError::Task)?
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn versions_count_writes_per_user_and_key() {
        let collection = SharedCollection::memory();
        let first = collection.put("u1", "k", json!(1), "d1", 10).await.unwrap();
        let second = collection
            .put("u1", "k", json!({"a": 2}), "d2", 20)
            .await
            .unwrap();
        let other = collection.put("u2", "k", json!(3), "d3", 30).await.unwrap();
        assert_eq!((first.version, second.version, other.version), (1, 2, 1));
        let items = collection.snapshot("u1").await.unwrap();
        assert_eq!(items, vec![(*second).clone()]);
        assert_eq!(items[0].device_id, "d2");
        assert!(collection.snapshot("nobody").await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn limits_on_keys_and_values() {
        let collection = SharedCollection::memory();
        let invalid = |r: Result<Arc<Item>, CollectionError>| matches!(r, Err(CollectionError::Invalid(_)));
        assert!(invalid(collection.put("u", "", json!(1), "d", 0).await));
        assert!(invalid(
            collection.put("u", &"é".repeat(129), json!(1), "d", 0).await
        ));
        assert!(
            collection
                .put("u", &"é".repeat(128), json!(1), "d", 0)
                .await
                .is_ok()
        );
        let big = json!("x".repeat(MAX_VALUE_BYTES));
        assert!(invalid(collection.put("u", "big", big, "d", 0).await));
        let fits = json!("x".repeat(MAX_VALUE_BYTES - 2));
        assert!(collection.put("u", "fits", fits, "d", 0).await.is_ok());
    }

    #[tokio::test]
    async fn subscribers_get_their_users_changes_and_channels_go_with_the_last_one() {
        let collection = SharedCollection::memory();
        let mut a = collection.subscribe("u1");
        let b = collection.subscribe("u1");
        let mut other = collection.subscribe("u2");
        assert_eq!(collection.subscribed_users(), 2);
        collection.put("u1", "k", json!(true), "d", 1).await.unwrap();
        let Update::Item(item) = a.recv().await else {
            panic!("an item")
        };
        assert_eq!((item.key.as_str(), item.version), ("k", 1));
        let nothing = tokio::time::timeout(Duration::from_millis(50), other.recv()).await;
        assert!(nothing.is_err(), "another user's subscriber hears nothing");
        drop((a, b));
        assert_eq!(collection.subscribed_users(), 1);
        drop(other);
        assert_eq!(collection.subscribed_users(), 0);
    }

    #[tokio::test]
    async fn a_slow_subscriber_is_told_it_lagged() {
        let collection = SharedCollection::memory();
        let mut slow = collection.subscribe("u");
        for n in 0..=UPDATES_PER_USER {
            collection.put("u", "k", json!(n), "d", 0).await.unwrap();
        }
        assert!(matches!(slow.recv().await, Update::Lagged));
    }

    #[tokio::test]
    async fn a_subscription_skips_what_its_snapshot_holds() {
        let collection = SharedCollection::memory();
        let mut updates = collection.subscribe("u");
        collection.put("u", "k", json!(1), "d", 0).await.unwrap();
        collection.put("u", "other", json!(1), "d", 0).await.unwrap();
        let items = updates.snapshot().await.unwrap();
        assert_eq!(items.len(), 2);
        collection.put("u", "k", json!(2), "d", 0).await.unwrap();
        let Update::Item(item) = updates.recv().await else {
            panic!("an item")
        };
        assert_eq!(
            (item.key.as_str(), item.version),
            ("k", 2),
            "the writes before it are skipped"
        );
        let nothing = tokio::time::timeout(Duration::from_millis(50), updates.recv()).await;
        assert!(nothing.is_err());
    }

    #[tokio::test]
    async fn a_paged_snapshot_skips_exactly_what_each_page_saw() {
        let collection = SharedCollection::memory();
        let big = json!("x".repeat(8 * 1024));
        // 40 items of 8 KiB: pages of 16 items (128 KiB).
        for n in 0..40 {
            collection
                .put("u", &format!("k{n:02}"), big.clone(), "d", 0)
                .await
                .unwrap();
        }
        let mut updates = collection.subscribe("u");
        let first = updates.snapshot_page().await.unwrap();
        assert!(!first.complete);
        let first_last = first.items.last().unwrap().key.clone();
        assert_eq!(first.items.len(), 16);
        // Written after the first page was read: one in its range (not in the page: must
        // come as a change), one in a later page's range (in that page: must not come
        // again), and a new key past every page.
        collection.put("u", "k00", json!("new"), "d", 0).await.unwrap();
        collection.put("u", "k30", json!("new"), "d", 0).await.unwrap();
        collection.put("u", "z", json!("new"), "d", 0).await.unwrap();
        let mut rest = Vec::new();
        loop {
            let page = updates.snapshot_page().await.unwrap();
            assert!(page.items.iter().all(|item| item.key > first_last));
            rest.extend(page.items);
            if page.complete {
                break;
            }
        }
        assert_eq!(first.items.len() + rest.len(), 41);
        let k30 = rest.iter().find(|item| item.key == "k30").unwrap();
        assert_eq!((k30.version, &k30.value), (2, &json!("new")));
        assert!(rest.iter().any(|item| item.key == "z"));
        let Update::Item(item) = updates.recv().await else {
            panic!("an item")
        };
        assert_eq!((item.key.as_str(), item.version), ("k00", 2));
        let nothing = tokio::time::timeout(Duration::from_millis(50), updates.recv()).await;
        assert!(nothing.is_err(), "k30 and z are in the pages, not sent again");
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
        let collection = SharedCollection::open(&path).unwrap();
        // "é" is 2 bytes, "\"ab\"" 4, "k" 1, "1" 1.
        assert_eq!(collection.usage("u").await.unwrap(), (2, 8));
        collection.put("u", "k", json!(22), "d", 0).await.unwrap();
        assert_eq!(collection.usage("u").await.unwrap(), (2, 9));
        collection.delete_user("u").await.unwrap();
        assert_eq!(collection.usage("u").await.unwrap(), (0, 0));
    }

    #[test]
    fn quota_arithmetic() {
        let quota = Quota { items: 2, bytes: 10 };
        assert_eq!(check_quota((0, 0), None, 5, quota).unwrap(), (1, 5));
        assert_eq!(check_quota((1, 5), Some(5), 10, quota).unwrap(), (1, 10));
        assert!(check_quota((1, 5), None, 6, quota).is_err());
        assert!(check_quota((2, 4), None, 1, quota).is_err());
        // Shrinking is allowed over the quota; overflow saturates instead of wrapping.
        assert_eq!(check_quota((2, 50), Some(20), 1, quota).unwrap(), (2, 31));
        assert!(
            check_quota(
                (1, i64::MAX),
                None,
                i64::MAX,
                Quota {
                    items: 9,
                    bytes: u64::MAX
                }
            )
            .is_ok()
        );
        assert!(check_quota((1, 0), None, 1, Quota { items: 0, bytes: 0 }).is_err());
    }

    #[tokio::test]
    async fn items_survive_reopening_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sync.db");
        let collection = SharedCollection::open(&path).unwrap();
        collection.put("u", "k", json!({"n": 1}), "d", 5).await.unwrap();
        drop(collection);
        let reopened = SharedCollection::open(&path).unwrap();
        let items = reopened.snapshot("u").await.unwrap();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].value, json!({"n": 1}));
        let next = reopened.put("u", "k", json!(2), "d", 6).await.unwrap();
        assert_eq!(next.version, 2);
    }
}
