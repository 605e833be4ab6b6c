//! Sync items: the per-user key/value items behind the sync endpoint, as a store
//! ([`SyncItemStore`]) the sync endpoint's collection (`sync::SharedCollection`) works
//! through, with two implementations:
//!
//! - SQLite ([`SqliteSyncItems`](crate::store::sqlite::SqliteSyncItems)): one process, one
//!   file (or memory). Each write bumps the item's version and is published while the write
//!   lock is still held.
//! - PostgreSQL ([`PostgresSyncItems`](crate::store::postgres::PostgresSyncItems)): any
//!   number of instances on one database schema, e.g. behind a load balancer. A write
//!   commits and notifies (`NOTIFY`) in one statement, and every instance, the writer's
//!   included, delivers the change to its own subscribers from its `LISTEN` connection.
//!
//! What is the same whatever the store lives here: the [`Item`], the limits, the [`Quota`]
//! arithmetic ([`check_quota`]), how a snapshot page is cut ([`page_full`]), and the
//! per-user change broadcast ([`Channels`]) with the [`Stamp`] of each change and the
//! [`Floor`] of each snapshot page, which tell a subscription what its snapshot already
//! holds.
//!
//! # Ordering
//!
//! Every store publishes a user's changes in the order they were committed, across keys
//! too, so the versions of one key always increase for every subscriber. On PostgreSQL a
//! large value whose version is superseded by the time its instance reads it is skipped
//! (the newer version follows); [`Change::Resync`] tells subscribers to read a fresh
//! snapshot instead.

mod changes;

pub use changes::{CHANGES_PER_USER, Change, Channels, Floor, Stamp, TxSnapshot};

use std::sync::Arc;

use async_trait::async_trait;
use serde::Serialize;
use serde_json::Value;

/// Longest key, in characters.
pub const MAX_KEY_CHARS: usize = 128;
/// Largest value, in bytes of its JSON serialization.
pub const MAX_VALUE_BYTES: usize = 16 * 1024;

/// Most items in one snapshot page.
pub const PAGE_MAX_ITEMS: usize = 256;
/// A snapshot page stops after the item that brings its keys and values to this many
/// bytes, so one page holds at most this plus one item.
pub const PAGE_BUDGET_BYTES: usize = 128 * 1024;

/// Where sync items are kept, and how their changes reach the subscribers of this process.
///
/// The caller (`sync::SharedCollection`) checks keys and values
/// against [`MAX_KEY_CHARS`] and [`MAX_VALUE_BYTES`] before a write reaches the store, and
/// keeps the subscriptions; the store keeps the items, the usage the quota counts, and
/// publishes every write into [`SyncItemStore::changes`].
#[async_trait]
pub trait SyncItemStore: Send + Sync + std::fmt::Debug {
    /// `(items, bytes)` that `user_id` holds, as the quota counts them: bytes are the UTF-8
    /// bytes of the keys plus their values' JSON text. `(0, 0)` for a user with nothing.
    async fn usage(&self, user_id: &str) -> Result<(u64, u64), CollectionError>;

    /// One page of `user_id`'s items: those whose key sorts bytewise after `after` (every
    /// key when `None`), by key, cut by [`page_full`] (at most [`PAGE_MAX_ITEMS`], and
    /// nothing after the item that reaches [`PAGE_BUDGET_BYTES`]), `complete` when no item
    /// follows. With it, the [`Floor`] of the changes the page already reflects: a
    /// subscription skips those for the keys the page covers.
    async fn snapshot_page(
        &self,
        user_id: &str,
        after: Option<&str>,
    ) -> Result<(SnapshotPage, Floor), CollectionError>;

    /// Stores the write, atomically with its quota check: the user's usage and the key's
    /// old size are read, [`check_quota`] decides, and the item (version 1, or one more
    /// than the stored one) and the new usage are written, all as one unit with respect to
    /// every other write of the user, on every instance. A refusal
    /// ([`CollectionError::QuotaExceeded`]) changes nothing.
    ///
    /// Once committed, the change is published into [`SyncItemStore::changes`] (of every
    /// instance sharing the storage) exactly once, in commit order across the user's keys,
    /// with a [`Stamp`] the [`Floor`]s of this store can place.
    async fn put(&self, write: ItemWrite, quota: Quota) -> Result<Arc<Item>, CollectionError>;

    /// Deletes every item of `user_id` and their usage: how many items there were. Nothing
    /// is published (the user's connections are closed by the sync gate).
    async fn delete_user(&self, user_id: &str) -> Result<u64, CollectionError>;

    /// The per-user broadcast this store publishes into, for the subscribers of this
    /// process.
    fn changes(&self) -> &Channels;

    /// The server process id of this instance's `LISTEN` connection while it is open, for
    /// a store that listens (PostgreSQL); `None` otherwise.
    fn listen_backend_pid(&self) -> Option<i32> {
        None
    }

    /// How many times this instance's `LISTEN` connection was reopened after it dropped
    /// (each time every subscriber was sent [`Change::Resync`]); 0 for a store that does
    /// not listen.
    fn listen_reconnects(&self) -> u64 {
        0
    }
}

/// A write on its way to a [`SyncItemStore`], its key and value already checked.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemWrite {
    /// Whose item.
    pub user_id: String,
    /// 1 to [`MAX_KEY_CHARS`] characters.
    pub key: String,
    /// The value.
    pub value: Value,
    /// `value` as JSON text, at most [`MAX_VALUE_BYTES`]: what is stored, and what the quota
    /// counts.
    pub text: String,
    /// The writing device.
    pub device_id: String,
    /// When, ms since the epoch.
    pub now_ms: i64,
}

impl ItemWrite {
    /// The bytes the quota counts for the item: key plus value text.
    pub fn size(&self) -> i64 {
        i64::try_from(self.key.len().saturating_add(self.text.len())).unwrap_or(i64::MAX)
    }

    /// The item this write stores as `version`.
    pub fn into_item(self, version: i64) -> Item {
        Item {
            key: self.key,
            value: self.value,
            version,
            device_id: self.device_id,
            updated_at: self.now_ms,
        }
    }
}

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

/// One page of a snapshot.
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
    /// SQLite failed.
    #[cfg(feature = "sqlite")]
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
    #[error("sync collection schema {0} is newer than this build understands; upgrade holdfast-server-kit")]
    NewerSchema(i64),
    /// The blocking task running the operation failed.
    #[error("sync collection task failed")]
    Task,
}

/// Adds a row to a page being read: whether the page is full after it.
pub fn page_full(items: &mut Vec<Item>, bytes: &mut usize, item: Item, value_bytes: usize) -> bool {
    *bytes = bytes.saturating_add(item.key.len()).saturating_add(value_bytes);
    items.push(item);
    items.len() >= PAGE_MAX_ITEMS || *bytes >= PAGE_BUDGET_BYTES
}

/// Whether a page holding `items` and `bytes` so far takes no more rows.
pub fn page_is_full(items: &[Item], bytes: usize) -> bool {
    items.len() >= PAGE_MAX_ITEMS || bytes >= PAGE_BUDGET_BYTES
}

/// `(items, bytes)` as stored (signed) to what [`SyncItemStore::usage`] reports.
pub fn usage_from_stored(items: i64, bytes: i64) -> (u64, u64) {
    (clamp_u64(items), clamp_u64(bytes))
}

fn clamp_u64(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

fn clamp_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Checks a write against the quota: the user holds `usage`, the key held `old` bytes (or
/// nothing), the write brings `size`. The usage after the write, or the refusal.
pub fn check_quota(
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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

    #[test]
    fn pages_fill_by_count_or_by_bytes() {
        let item = |key: &str| Item {
            key: key.to_owned(),
            value: json!(1),
            version: 1,
            device_id: "d".to_owned(),
            updated_at: 0,
        };
        let (mut items, mut bytes) = (Vec::new(), 0);
        assert!(!page_full(&mut items, &mut bytes, item("ab"), 3));
        assert_eq!(bytes, 5);
        assert!(page_full(&mut items, &mut bytes, item("c"), PAGE_BUDGET_BYTES));
        assert!(page_is_full(&items, bytes));
        let (mut items, mut bytes) = (Vec::new(), 0);
        for n in 1..PAGE_MAX_ITEMS {
            assert!(!page_full(&mut items, &mut bytes, item(&n.to_string()), 1));
        }
        assert!(page_full(&mut items, &mut bytes, item("last"), 1));
        assert_eq!(usage_from_stored(-1, 7), (0, 7));
    }

    #[test]
    fn a_write_becomes_its_item() {
        let write = ItemWrite {
            user_id: "u".to_owned(),
            key: "é".to_owned(),
            value: json!("ab"),
            text: "\"ab\"".to_owned(),
            device_id: "d".to_owned(),
            now_ms: 9,
        };
        assert_eq!(write.size(), 6);
        let item = write.into_item(3);
        assert_eq!((item.key.as_str(), item.version, item.updated_at), ("é", 3, 9));
    }
}
