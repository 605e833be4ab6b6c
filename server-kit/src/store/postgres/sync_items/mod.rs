//! Sync items on PostgreSQL ([`PostgresSyncItems`]), for several instances sharing one
//! database schema (the `sync_items` and `sync_usage` tables of the store's migrations).
//!
//! # Writes
//!
//! The user's usage row is locked first (created if need be), so a user's writes check
//! their quota one at a time on every instance. Then one statement upserts the row
//! (`version = sync_items.version + 1`, so concurrent writes of one key from any instance
//! are serialized by its row lock and none is lost) and calls `pg_notify` on the schema's
//! channel (`holdfast_sync:SCHEMA`). The notification is sent if and only if the write
//! commits. Its payload is JSON: the user, key, version and writing transaction's id, plus
//! the device, time and value when the whole fits in [`INLINE_PAYLOAD_BYTES`] (NOTIFY
//! payloads must stay under 8000 bytes, values may take 16 KiB); otherwise each instance
//! with a subscriber for the user reads the row once.
//!
//! # Delivery
//!
//! Each instance holds one dedicated `LISTEN` connection (outside the pool, see
//! `listen.rs`) and delivers every notification to its own subscribers of the user. The
//! writer's instance gets its own writes that way too, and only that way, so none is
//! delivered twice. PostgreSQL delivers notifications in commit order, and one task handles
//! them in that order, so every subscriber on every instance sees a user's changes in
//! commit order. The one exception: when a value too large to travel in the notification
//! has been overwritten by the time it is read, that version is skipped; the newer one
//! follows, since its notification comes later.
//!
//! A snapshot page is read in one statement along with `pg_current_snapshot()` (the
//! statement's own snapshot), and each change carries its transaction id, so a
//! subscription skips exactly the changes its snapshot saw ([`TxSnapshot::sees`]).
//!
//! Writes keep working while the `LISTEN` connection is down (they go through the pool);
//! only their delivery waits for the resynchronization (see `listen.rs` for the staleness
//! bound).

mod errors;
mod listen;

use std::sync::Arc;

use async_trait::async_trait;
use deadpool_postgres::Pool;
use tokio::task::JoinHandle;

use super::PostgresStore;
use crate::store::sync_items::{
    Channels, CollectionError, Floor, Item, ItemWrite, PAGE_BUDGET_BYTES, PAGE_MAX_ITEMS, Quota,
    SnapshotPage, SyncItemStore, TxSnapshot, check_quota, page_full, page_is_full, usage_from_stored,
};
use errors::{pool_error, sql_error};
use listen::{ListenState, Listener};

/// Largest notification payload that carries the value (PostgreSQL's limit is 8000 bytes);
/// a larger item travels as its identity and is read from the table.
const INLINE_PAYLOAD_BYTES: i32 = 7000;

/// The upsert and its notification, in one statement (so in one transaction). `$7` is
/// [`INLINE_PAYLOAD_BYTES`]; the payload is `listen::Notice`.
const PUT: &str = "
WITH written AS (
    INSERT INTO sync_items (user_id, key, value, version, device_id, updated_at)
    VALUES ($1, $2, $3, 1, $4, $5)
    ON CONFLICT (user_id, key) DO UPDATE SET
        value = excluded.value,
        version = sync_items.version + 1,
        device_id = excluded.device_id,
        updated_at = excluded.updated_at
    RETURNING version, pg_current_xact_id()::text AS xid
), notice AS (
    SELECT version,
        json_build_object('u', $1::text, 'k', $2::text, 'v', version, 'x', xid,
                          'd', $4::text, 't', $5::bigint, 'val', $3::text)::text AS with_value,
        json_build_object('u', $1::text, 'k', $2::text, 'v', version, 'x', xid)::text AS identity
    FROM written
)
SELECT version,
    pg_notify($6, CASE WHEN octet_length(with_value) <= $7 THEN with_value ELSE identity END)
FROM notice";

/// One page of a user's items and the snapshot that read it, in one statement: within a
/// statement `pg_current_snapshot()` is the statement's own snapshot, the one its scan reads
/// with. `$2` is the last key of the previous page ('' before the first), `$3` the most
/// rows to look at, `$4` the page's byte budget: a row is taken while the bytes before it
/// are under the budget. `fetched` is how many rows were looked at. The outer join yields
/// one row (of NULL items) when there are none.
const SNAPSHOT_PAGE: &str = "
SELECT pg_current_snapshot()::text, p.key, p.value, p.version, p.device_id, p.updated_at, p.fetched
FROM (SELECT 1) AS one LEFT JOIN LATERAL (
    SELECT key, value, version, device_id, updated_at, fetched FROM (
        SELECT key, value, version, device_id, updated_at,
            count(*) OVER () AS fetched,
            sum(octet_length(key) + octet_length(value)) OVER (ORDER BY key)
                - (octet_length(key) + octet_length(value)) AS before
        FROM (
            SELECT key, value, version, device_id, updated_at FROM sync_items
            WHERE user_id = $1 AND key > $2 ORDER BY key LIMIT $3
        ) AS limited
    ) AS running
    WHERE before < $4
    ORDER BY key
) AS p ON true";

/// Locks the user's usage row (creating it), so a user's writes check their quota one at
/// a time on every instance.
const LOCK_USAGE: &str = "
INSERT INTO sync_usage AS u (user_id, items, bytes) VALUES ($1, 0, 0)
ON CONFLICT (user_id) DO UPDATE SET items = u.items
RETURNING items, bytes";

const OLD_SIZE: &str = "SELECT (octet_length(key) + octet_length(value))::bigint FROM sync_items
WHERE user_id = $1 AND key = $2";

const SET_USAGE: &str = "UPDATE sync_usage SET items = $2, bytes = $3 WHERE user_id = $1";

/// Sync items in a [`PostgresStore`]'s database and schema, sharing its pool, and this
/// instance's `LISTEN` task (stopped when the store is dropped).
pub struct PostgresSyncItems {
    pool: Pool,
    channel: String,
    channels: Arc<Channels>,
    state: Arc<ListenState>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for PostgresSyncItems {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresSyncItems")
            .field("channel", &self.channel)
            .finish_non_exhaustive()
    }
}

impl Drop for PostgresSyncItems {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl PostgresSyncItems {
    /// The items in `store`'s database and schema (created by its migrations), sharing its
    /// connection pool. Opens this instance's `LISTEN` connection (one more connection than
    /// the pool's, opened as the pool's are, TLS included) before it returns; a task on the
    /// current runtime keeps it open, reopening it when it drops, until the store is
    /// dropped.
    ///
    /// # Errors
    ///
    /// [`CollectionError::Postgres`] when the `LISTEN` connection cannot be opened.
    pub async fn start(store: &PostgresStore) -> Result<PostgresSyncItems, CollectionError> {
        let pool = store.pool().clone();
        let schema = match store.schema() {
            Some(schema) => schema.to_owned(),
            None => {
                let conn = pool.get().await.map_err(pool_error)?;
                let row = conn
                    .query_one("SELECT coalesce(current_schema(), '')", &[])
                    .await
                    .map_err(sql_error)?;
                row.try_get(0).map_err(sql_error)?
            }
        };
        let channel = listen::channel_name(&schema);
        let channels = Arc::new(Channels::default());
        let state = Arc::new(ListenState::default());
        let listener = Listener {
            connector: store.connector().clone(),
            pool: pool.clone(),
            channel: channel.clone(),
            channels: channels.clone(),
            state: state.clone(),
        };
        let session = listener.listen().await.map_err(sql_error)?;
        let task = tokio::spawn(listener.run(session));
        Ok(PostgresSyncItems {
            pool,
            channel,
            channels,
            state,
            task,
        })
    }
}

#[async_trait]
impl SyncItemStore for PostgresSyncItems {
    async fn usage(&self, user_id: &str) -> Result<(u64, u64), CollectionError> {
        let conn = self.pool.get().await.map_err(pool_error)?;
        let row = conn
            .query_opt(
                "SELECT items, bytes FROM sync_usage WHERE user_id = $1",
                &[&user_id],
            )
            .await
            .map_err(sql_error)?;
        let Some(row) = row else { return Ok((0, 0)) };
        Ok(usage_from_stored(
            row.try_get(0).map_err(sql_error)?,
            row.try_get(1).map_err(sql_error)?,
        ))
    }

    async fn snapshot_page(
        &self,
        user_id: &str,
        after: Option<&str>,
    ) -> Result<(SnapshotPage, Floor), CollectionError> {
        // One round trip, no transaction: an admission reads this for every connection.
        let conn = self.pool.get().await.map_err(pool_error)?;
        let statement = conn.prepare_cached(SNAPSHOT_PAGE).await.map_err(sql_error)?;
        // One row more than a page may hold tells whether more follow.
        let limit = i64::try_from(PAGE_MAX_ITEMS + 1).unwrap_or(i64::MAX);
        let budget = i64::try_from(PAGE_BUDGET_BYTES).unwrap_or(i64::MAX);
        let rows = conn
            .query(&statement, &[&user_id, &after.unwrap_or(""), &limit, &budget])
            .await
            .map_err(sql_error)?;
        let Some(first) = rows.first() else {
            return Err(CollectionError::Postgres(
                "the snapshot query returned no row".to_owned(),
            ));
        };
        let text: String = first.try_get(0).map_err(sql_error)?;
        let snapshot = TxSnapshot::parse(&text)
            .ok_or_else(|| CollectionError::Postgres(format!("unexpected pg_current_snapshot() `{text}`")))?;
        let mut items = Vec::new();
        let mut bytes = 0;
        let mut fetched = 0;
        let mut complete = true;
        for row in &rows {
            let Some(key) = row.try_get::<_, Option<String>>(1).map_err(sql_error)? else {
                continue; // the user has no items after `after`
            };
            fetched = row.try_get::<_, i64>(6).map_err(sql_error)?;
            if page_is_full(&items, bytes) {
                complete = false;
                break;
            }
            let value: String = row.try_get(2).map_err(sql_error)?;
            let item = Item {
                key,
                value: serde_json::from_str(&value).map_err(|_| CollectionError::Corrupt)?,
                version: row.try_get(3).map_err(sql_error)?,
                device_id: row.try_get(4).map_err(sql_error)?,
                updated_at: row.try_get(5).map_err(sql_error)?,
            };
            page_full(&mut items, &mut bytes, item, value.len());
        }
        // Rows the budget left out, or the extra row, mean more pages follow.
        if usize::try_from(fetched).unwrap_or(usize::MAX) > items.len() {
            complete = false;
        }
        Ok((SnapshotPage { items, complete }, Floor::Transactions(snapshot)))
    }

    /// Delivered to the subscribers, of this instance too, by the `LISTEN` connection.
    async fn put(&self, write: ItemWrite, quota: Quota) -> Result<Arc<Item>, CollectionError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let transaction = conn.transaction().await.map_err(sql_error)?;
        let user_id = write.user_id.as_str();
        let usage = transaction
            .query_one(LOCK_USAGE, &[&user_id])
            .await
            .map_err(sql_error)?;
        let usage: (i64, i64) = (
            usage.try_get(0).map_err(sql_error)?,
            usage.try_get(1).map_err(sql_error)?,
        );
        let old: Option<i64> = match transaction
            .query_opt(OLD_SIZE, &[&user_id, &write.key])
            .await
            .map_err(sql_error)?
        {
            Some(row) => Some(row.try_get(0).map_err(sql_error)?),
            None => None,
        };
        let (items, bytes) = check_quota(usage, old, write.size(), quota)?;
        let statement = transaction.prepare_cached(PUT).await.map_err(sql_error)?;
        let row = transaction
            .query_one(
                &statement,
                &[
                    &user_id,
                    &write.key,
                    &write.text,
                    &write.device_id,
                    &write.now_ms,
                    &self.channel,
                    &INLINE_PAYLOAD_BYTES,
                ],
            )
            .await
            .map_err(sql_error)?;
        let version = row.try_get(0).map_err(sql_error)?;
        transaction
            .execute(SET_USAGE, &[&user_id, &items, &bytes])
            .await
            .map_err(sql_error)?;
        // The notification goes out with the commit.
        transaction.commit().await.map_err(sql_error)?;
        Ok(Arc::new(write.into_item(version)))
    }

    async fn delete_user(&self, user_id: &str) -> Result<u64, CollectionError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let transaction = conn.transaction().await.map_err(sql_error)?;
        let deleted = transaction
            .execute("DELETE FROM sync_items WHERE user_id = $1", &[&user_id])
            .await
            .map_err(sql_error)?;
        transaction
            .execute("DELETE FROM sync_usage WHERE user_id = $1", &[&user_id])
            .await
            .map_err(sql_error)?;
        transaction.commit().await.map_err(sql_error)?;
        Ok(deleted)
    }

    fn changes(&self) -> &Channels {
        &self.channels
    }

    fn listen_backend_pid(&self) -> Option<i32> {
        self.state.pid()
    }

    fn listen_reconnects(&self) -> u64 {
        self.state.reconnects()
    }
}
