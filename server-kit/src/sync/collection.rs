//! The data behind the sync endpoint: per-user key/value items in a
//! [`SyncItemStore`], and a per-user broadcast of every change to the connections open in
//! this process.
//!
//! [`SharedCollection`] is the same whatever the store: it checks keys and values, holds
//! the quota, and hands out [`Subscription`]s. The store keeps the items and publishes
//! their changes (see [`crate::store::sync_items`] for the ordering it guarantees):
//!
//! - SQLite ([`SharedCollection::open`], [`SharedCollection::memory`]): one process.
//! - PostgreSQL ([`SharedCollection::postgres`]): any number of instances on one database
//!   schema, e.g. behind a load balancer.
//! - Any other ([`SharedCollection::with_store`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::Value;
use tokio::sync::broadcast;

use super::subscription::Subscription;
use crate::events::{Delivered, Origin, Revocation, RevocationBus};
#[cfg(feature = "postgres")]
use crate::store::postgres::{PostgresStore, PostgresSyncItems};
#[cfg(feature = "sqlite")]
use crate::store::sqlite::SqliteSyncItems;
use crate::store::sync_items::{
    CollectionError, Item, ItemWrite, MAX_KEY_CHARS, MAX_VALUE_BYTES, Quota, SyncItemStore,
};

/// Per-user items, persisted, with a per-user change broadcast. Cheap to clone; clones share
/// the store, the broadcasts and the quota.
#[derive(Clone)]
pub struct SharedCollection {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn SyncItemStore>,
    /// The [`Quota`], shared by every clone.
    quota_items: AtomicU64,
    quota_bytes: AtomicU64,
}

impl Inner {
    fn quota(&self) -> Quota {
        Quota {
            items: self.quota_items.load(Ordering::Relaxed),
            bytes: self.quota_bytes.load(Ordering::Relaxed),
        }
    }
}

impl std::fmt::Debug for SharedCollection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedCollection")
            .field("store", &self.inner.store)
            .field("quota", &self.inner.quota())
            .finish()
    }
}

impl SharedCollection {
    /// The collection in `store`, with [`Quota::default`]: how an embedder picks a store
    /// (`SqliteSyncItems`, `PostgresSyncItems`) or supplies its own.
    ///
    /// ```no_run
    /// # async fn pick(shared: bool) -> Result<(), Box<dyn std::error::Error>> {
    /// use std::sync::Arc;
    /// use holdfast_server_kit::store::SyncItemStore;
    /// use holdfast_server_kit::store::postgres::{PostgresStore, PostgresSyncItems};
    /// use holdfast_server_kit::store::sqlite::SqliteSyncItems;
    /// use holdfast_server_kit::sync::SharedCollection;
    ///
    /// let store: Arc<dyn SyncItemStore> = if shared {
    ///     let postgres = PostgresStore::connect("postgres://app@db/holdfast", None).await?;
    ///     Arc::new(PostgresSyncItems::start(&postgres).await?)
    /// } else {
    ///     Arc::new(SqliteSyncItems::open("sync.db")?)
    /// };
    /// let collection = SharedCollection::with_store(store);
    /// # Ok(()) }
    /// ```
    pub fn with_store(store: Arc<dyn SyncItemStore>) -> SharedCollection {
        let quota = Quota::default();
        SharedCollection {
            inner: Arc::new(Inner {
                store,
                quota_items: AtomicU64::new(quota.items),
                quota_bytes: AtomicU64::new(quota.bytes),
            }),
        }
    }

    /// The store behind the collection.
    pub fn store(&self) -> &Arc<dyn SyncItemStore> {
        &self.inner.store
    }

    /// Opens (creating if need be) the SQLite collection file at `path`
    /// (`SqliteSyncItems::open`).
    #[cfg(feature = "sqlite")]
    pub fn open(path: impl AsRef<std::path::Path>) -> Result<SharedCollection, CollectionError> {
        Ok(SharedCollection::with_store(Arc::new(SqliteSyncItems::open(
            path,
        )?)))
    }

    /// A collection that lives in memory only (tests, demos).
    #[cfg(feature = "sqlite")]
    pub fn memory() -> SharedCollection {
        // A fresh in-memory database depends on no input: it fails only if SQLite itself is
        // broken.
        let store = SqliteSyncItems::open_in_memory().expect("an in-memory SQLite database");
        SharedCollection::with_store(Arc::new(store))
    }

    /// The collection on PostgreSQL, in `store`'s database and schema (the `sync_items`
    /// table, created by the store's migrations) and sharing its connection pool: what
    /// several instances behind a load balancer use, each with its own collection on the
    /// same schema. Opens this instance's `LISTEN` connection (one more connection than the
    /// pool's) before it returns; a background task on the current runtime keeps it open
    /// until the last clone is dropped (`PostgresSyncItems::start`). See the module
    /// documentation of `sync` for the delivery guarantees.
    ///
    /// # Errors
    ///
    /// [`CollectionError::Postgres`] when the `LISTEN` connection cannot be opened.
    #[cfg(feature = "postgres")]
    pub async fn postgres(store: &PostgresStore) -> Result<SharedCollection, CollectionError> {
        let items = PostgresSyncItems::start(store).await?;
        Ok(SharedCollection::with_store(Arc::new(items)))
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
        self.inner.store.usage(user_id).await
    }

    /// Every item of `user_id`, by key (read page by page; for tests and tools: a
    /// connection sends [`Subscription::snapshot_page`]s instead of holding them all).
    pub async fn snapshot(&self, user_id: &str) -> Result<Vec<Item>, CollectionError> {
        let mut items = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let (page, _) = self.inner.store.snapshot_page(user_id, after.as_deref()).await?;
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
        let write = ItemWrite {
            user_id: user_id.to_owned(),
            key: key.to_owned(),
            value,
            text,
            device_id: device_id.to_owned(),
            now_ms,
        };
        self.inner.store.put(write, self.inner.quota()).await
    }

    /// Deletes every item of `user_id` (an account deleted): how many there were. The
    /// user's open connections are not told; the sync gate closes them (4003).
    pub async fn delete_user(&self, user_id: &str) -> Result<u64, CollectionError> {
        self.inner.store.delete_user(user_id).await
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
        Subscription::new(self.inner.store.clone(), user_id)
    }

    /// How many users have a subscriber in this process.
    pub fn subscribed_users(&self) -> usize {
        self.inner.store.changes().len()
    }

    /// On PostgreSQL, the server process id of this instance's `LISTEN` connection while it
    /// is open (`pg_stat_activity.pid`); `None` on SQLite or while it is being reopened.
    pub fn listen_backend_pid(&self) -> Option<i32> {
        self.inner.store.listen_backend_pid()
    }

    /// On PostgreSQL, how many times the `LISTEN` connection was reopened after it dropped
    /// (each time, every subscriber was sent [`Update::Lagged`](super::Update::Lagged)); 0 on
    /// SQLite.
    pub fn listen_reconnects(&self) -> u64 {
        self.inner.store.listen_reconnects()
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
