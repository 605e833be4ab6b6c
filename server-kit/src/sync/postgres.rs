//! The sync collection on PostgreSQL, for several instances sharing one database schema.
//!
//! # Writes
//!
//! One statement upserts the row (`version = sync_items.version + 1`, so concurrent writes
//! of one key from any instance are serialized by its row lock and none is lost) and calls
//! `pg_notify` on the schema's channel (`holdfast_sync:SCHEMA`). The notification is sent
//! if and only if the write commits. Its payload is JSON: the user, key, version and
//! writing transaction's id, plus the device, time and value when the whole fits in
//! [`INLINE_PAYLOAD_BYTES`] (NOTIFY payloads must stay under 8000 bytes, values may take
//! 16 KiB); otherwise each instance with a subscriber for the user reads the row once.
//!
//! # Delivery
//!
//! Each instance holds one dedicated `LISTEN` connection (outside the pool) and delivers
//! every notification to its own subscribers of the user. The writer's instance gets its
//! own writes that way too, and only that way, so none is delivered twice.
//!
//! PostgreSQL delivers notifications in commit order, and one task handles them in that
//! order, so every subscriber on every instance sees a user's changes in commit order,
//! across keys as well as within one (versions of a key always increase). The one
//! exception: when a value too large to travel in the notification has been overwritten
//! by the time it is read, that version is skipped; the newer one follows, since its
//! notification comes later.
//!
//! A snapshot page is read in one statement along with `pg_current_snapshot()` (the statement's
//! own snapshot), and each change carries its transaction id, so a subscription skips exactly the changes
//! its snapshot saw (see [`TxSnapshot::sees`]).
//!
//! # Staleness bound
//!
//! - `LISTEN` connection up: one notification hop after the commit (about a millisecond
//!   on one host; `tests/sync_postgres.rs` measures put-on-A to item-on-B over WebSocket),
//!   plus one row read for a value too large to travel inline.
//! - `LISTEN` connection closed (server restart, failover, `pg_terminate_backend`): noticed
//!   at once; reopened after [`MIN_BACKOFF`], the wait doubling up to [`MAX_BACKOFF`]
//!   while PostgreSQL does not answer. Notifications sent meanwhile are lost, so once
//!   `LISTEN` is back every subscriber in the instance gets [`Update::Lagged`] and reads
//!   a fresh snapshot: staleness is the outage plus at most [`MAX_BACKOFF`].
//! - `LISTEN` connection silently dead (a network partition without a reset): a query
//!   every [`HEARTBEAT`] that must answer within [`HEARTBEAT_TIMEOUT`] finds it, then as
//!   above: at most 10 s plus the reconnection.
//! - This instance falling behind the notifications (more than [`QUEUE`] waiting): the
//!   excess is dropped and every subscriber reads a fresh snapshot, as a slow connection
//!   does.
//!
//! Writes keep working while the `LISTEN` connection is down (they go through the pool);
//! only their delivery waits for the resynchronization.
//!
//! [`Update::Lagged`]: super::Update::Lagged

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::time::Duration;

use deadpool_postgres::{Pool, PoolError};
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_postgres::{AsyncMessage, Notification};

use super::collection::{
    Change, Channels, CollectionError, Item, PAGE_BUDGET_BYTES, PAGE_MAX_ITEMS, Quota, SnapshotPage, Stamp,
    check_quota, page_full,
};
use crate::store::postgres::{Connector, PostgresStore, describe_sql_error};

/// First wait before reopening a dropped `LISTEN` connection; doubles up to
/// [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// How often the `LISTEN` connection is checked, and how long the check may take.
const HEARTBEAT: Duration = Duration::from_secs(5);
const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(5);
/// Notifications received but not yet delivered; beyond, they are dropped and every
/// subscriber resynchronizes.
const QUEUE: usize = 4096;
/// Largest notification payload that carries the value (PostgreSQL's limit is 8000 bytes);
/// a larger item travels as its identity and is read from the table.
const INLINE_PAYLOAD_BYTES: i32 = 7000;
/// The channel is this prefix and the schema name (hashed when the whole would exceed
/// PostgreSQL's 63-byte identifiers).
const CHANNEL_PREFIX: &str = "holdfast_sync:";
const MAX_IDENTIFIER_BYTES: usize = 63;

/// The upsert and its notification, in one statement (so in one transaction). `$7` is
/// [`INLINE_PAYLOAD_BYTES`].
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

const READ_ONE: &str = "SELECT value, version, device_id, updated_at FROM sync_items
WHERE user_id = $1 AND key = $2";

/// The collection's storage on PostgreSQL, and its `LISTEN` task (stopped when dropped).
pub(super) struct PostgresBackend {
    pool: Pool,
    channel: String,
    state: Arc<ListenState>,
    task: JoinHandle<()>,
}

/// What the `LISTEN` task shows.
#[derive(Default)]
struct ListenState {
    /// The connection's server process id; 0 while it is being reopened.
    pid: AtomicI32,
    reconnects: AtomicU64,
}

impl Drop for PostgresBackend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl PostgresBackend {
    /// Opens the `LISTEN` connection on `store`'s database and schema and starts delivering
    /// into `channels`.
    pub(super) async fn start(
        store: &PostgresStore,
        channels: Arc<Channels>,
    ) -> Result<PostgresBackend, CollectionError> {
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
        let channel = channel_name(&schema);
        let state = Arc::new(ListenState::default());
        let listener = Listener {
            connector: store.connector().clone(),
            pool: pool.clone(),
            channel: channel.clone(),
            channels,
            state: state.clone(),
        };
        let session = listener.listen().await.map_err(sql_error)?;
        let task = tokio::spawn(listener.run(session));
        Ok(PostgresBackend {
            pool,
            channel,
            state,
            task,
        })
    }

    /// Stores the item and notifies every instance, within the user's quota: its version.
    pub(super) async fn put(
        &self,
        user_id: &str,
        key: &str,
        text: &str,
        device_id: &str,
        now_ms: i64,
        quota: Quota,
    ) -> Result<i64, CollectionError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let transaction = conn.transaction().await.map_err(sql_error)?;
        let usage = transaction
            .query_one(LOCK_USAGE, &[&user_id])
            .await
            .map_err(sql_error)?;
        let usage: (i64, i64) = (
            usage.try_get(0).map_err(sql_error)?,
            usage.try_get(1).map_err(sql_error)?,
        );
        let old: Option<i64> = match transaction
            .query_opt(OLD_SIZE, &[&user_id, &key])
            .await
            .map_err(sql_error)?
        {
            Some(row) => Some(row.try_get(0).map_err(sql_error)?),
            None => None,
        };
        let size = i64::try_from(key.len().saturating_add(text.len())).unwrap_or(i64::MAX);
        let (items, bytes) = check_quota(usage, old, size, quota)?;
        let statement = transaction.prepare_cached(PUT).await.map_err(sql_error)?;
        let row = transaction
            .query_one(
                &statement,
                &[
                    &user_id,
                    &key,
                    &text,
                    &device_id,
                    &now_ms,
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
        Ok(version)
    }

    /// Deletes every item of the user: how many there were.
    pub(super) async fn delete_user(&self, user_id: &str) -> Result<u64, CollectionError> {
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

    /// `(items, bytes)` the user holds.
    pub(super) async fn usage(&self, user_id: &str) -> Result<(u64, u64), CollectionError> {
        let conn = self.pool.get().await.map_err(pool_error)?;
        let row = conn
            .query_opt(
                "SELECT items, bytes FROM sync_usage WHERE user_id = $1",
                &[&user_id],
            )
            .await
            .map_err(sql_error)?;
        let Some(row) = row else { return Ok((0, 0)) };
        let (items, bytes): (i64, i64) = (
            row.try_get(0).map_err(sql_error)?,
            row.try_get(1).map_err(sql_error)?,
        );
        Ok((
            u64::try_from(items).unwrap_or(0),
            u64::try_from(bytes).unwrap_or(0),
        ))
    }

    /// One page of the user's items after the key `after`, by key, and the transactions it
    /// reflects.
    pub(super) async fn snapshot_page(
        &self,
        user_id: &str,
        after: Option<&str>,
    ) -> Result<(SnapshotPage, TxSnapshot), CollectionError> {
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
            if items.len() >= PAGE_MAX_ITEMS || bytes >= PAGE_BUDGET_BYTES {
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
        Ok((SnapshotPage { items, complete }, snapshot))
    }

    pub(super) fn listen_backend_pid(&self) -> Option<i32> {
        Some(self.state.pid.load(Ordering::Relaxed)).filter(|pid| *pid != 0)
    }

    pub(super) fn listen_reconnects(&self) -> u64 {
        self.state.reconnects.load(Ordering::Relaxed)
    }
}

/// The notification channel of a schema.
fn channel_name(schema: &str) -> String {
    let name = format!("{CHANNEL_PREFIX}{schema}");
    if name.len() <= MAX_IDENTIFIER_BYTES {
        return name;
    }
    let digest = ring::digest::digest(&ring::digest::SHA256, schema.as_bytes());
    format!("{CHANNEL_PREFIX}{}", hex::encode(&digest.as_ref()[..16]))
}

/// `name` as a quoted SQL identifier.
fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The transactions a PostgreSQL snapshot sees: `pg_current_snapshot()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct TxSnapshot {
    xmin: u64,
    xmax: u64,
    in_progress: Vec<u64>,
}

impl TxSnapshot {
    /// Parses `xmin:xmax:xip,xip,...` (the text form of `pg_snapshot`).
    fn parse(text: &str) -> Option<TxSnapshot> {
        let mut parts = text.split(':');
        let xmin = parts.next()?.parse().ok()?;
        let xmax = parts.next()?.parse().ok()?;
        let in_progress = match parts.next()? {
            "" => Vec::new(),
            list => list
                .split(',')
                .map(|xid| xid.parse().ok())
                .collect::<Option<Vec<u64>>>()?,
        };
        if parts.next().is_some() {
            return None;
        }
        Some(TxSnapshot {
            xmin,
            xmax,
            in_progress,
        })
    }

    /// Whether the transaction `xid` had committed when the snapshot was taken, i.e.
    /// whether the snapshot holds its write or a later one. (A transaction that aborted
    /// sends no notification, so "visible" here means "committed before".)
    pub(super) fn sees(&self, xid: u64) -> bool {
        xid < self.xmin || (xid < self.xmax && !self.in_progress.contains(&xid))
    }
}

/// A notification's payload (see [`PUT`]).
#[derive(Debug, Deserialize)]
struct Notice {
    #[serde(rename = "u")]
    user_id: String,
    #[serde(rename = "k")]
    key: String,
    #[serde(rename = "v")]
    version: i64,
    #[serde(rename = "x")]
    xid: String,
    #[serde(rename = "d")]
    device_id: Option<String>,
    #[serde(rename = "t")]
    updated_at: Option<i64>,
    #[serde(rename = "val")]
    value: Option<String>,
}

/// The `LISTEN` side: one connection, reopened when it drops.
struct Listener {
    /// How the store's connections are opened (TLS included): this one is opened the same way.
    connector: Connector,
    pool: Pool,
    channel: String,
    channels: Arc<Channels>,
    state: Arc<ListenState>,
}

/// One open `LISTEN` connection.
struct Session {
    client: tokio_postgres::Client,
    /// Fed by the task driving the connection; closed when the connection ends.
    notifications: mpsc::Receiver<Notification>,
    /// Set when a notification was dropped because the queue was full.
    overflowed: Arc<AtomicBool>,
    /// Drives the connection; its result says why it ended.
    driver: JoinHandle<Result<(), tokio_postgres::Error>>,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

impl Listener {
    /// Opens a connection and listens on the channel. Notifications committed after this
    /// returns are delivered.
    async fn listen(&self) -> Result<Session, tokio_postgres::Error> {
        let (client, mut messages) = self.connector.connect().await?;
        let (sender, notifications) = mpsc::channel(QUEUE);
        let overflowed = Arc::new(AtomicBool::new(false));
        let flag = overflowed.clone();
        let driver = tokio::spawn(async move {
            loop {
                match std::future::poll_fn(|cx| messages(cx)).await {
                    Some(Ok(AsyncMessage::Notification(notification))) => match sender.try_send(notification)
                    {
                        Ok(()) => {}
                        Err(mpsc::error::TrySendError::Full(_)) => flag.store(true, Ordering::Release),
                        Err(mpsc::error::TrySendError::Closed(_)) => return Ok(()),
                    },
                    Some(Ok(_)) => {}
                    Some(Err(error)) => return Err(error),
                    None => return Ok(()),
                }
            }
        });
        let session = Session {
            client,
            notifications,
            overflowed,
            driver,
        };
        session
            .client
            .batch_execute(&format!("LISTEN {}", quote_identifier(&self.channel)))
            .await?;
        let row = session.client.query_one("SELECT pg_backend_pid()", &[]).await?;
        self.state.pid.store(row.try_get(0)?, Ordering::Relaxed);
        Ok(session)
    }

    /// Delivers notifications for ever, reopening the connection whenever it drops.
    async fn run(self, mut session: Session) {
        loop {
            let reason = self.serve(&mut session).await;
            self.state.pid.store(0, Ordering::Relaxed);
            drop(session);
            tracing::warn!(channel = %self.channel, %reason, "the sync LISTEN connection dropped; reopening it");
            let mut backoff = MIN_BACKOFF;
            session = loop {
                tokio::time::sleep(backoff).await;
                match self.listen().await {
                    Ok(session) => break session,
                    Err(error) => {
                        tracing::warn!(channel = %self.channel, error = %sql_error(error), "cannot reopen the sync LISTEN connection");
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                    }
                }
            };
            self.state.reconnects.fetch_add(1, Ordering::Relaxed);
            // Listening again: whatever was committed while nobody listened is in the
            // snapshots the subscribers now read.
            self.channels.resync_all();
            tracing::info!(channel = %self.channel, "the sync LISTEN connection is back; subscribers resynchronize");
        }
    }

    /// Delivers the session's notifications until its connection fails: why it did.
    async fn serve(&self, session: &mut Session) -> String {
        let start = tokio::time::Instant::now() + HEARTBEAT;
        let mut heartbeat = tokio::time::interval_at(start, HEARTBEAT);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                received = session.notifications.recv() => {
                    let Some(notification) = received else {
                        return match (&mut session.driver).await {
                            Ok(Err(error)) => sql_error(error).to_string(),
                            _ => "the connection closed".to_owned(),
                        };
                    };
                    if session.overflowed.swap(false, Ordering::Acquire) {
                        tracing::warn!(channel = %self.channel, "sync notifications arrived faster than they were delivered; subscribers resynchronize");
                        self.channels.resync_all();
                    }
                    self.deliver(&notification).await;
                }
                _ = heartbeat.tick() => {
                    let answered = tokio::time::timeout(HEARTBEAT_TIMEOUT, session.client.simple_query("SELECT 1")).await;
                    match answered {
                        Ok(Ok(_)) => {}
                        Ok(Err(error)) => return sql_error(error).to_string(),
                        Err(_) => return format!("no answer to a heartbeat within {HEARTBEAT_TIMEOUT:?}"),
                    }
                }
            }
        }
    }

    /// Hands one notification to the user's subscribers in this instance, if any.
    async fn deliver(&self, notification: &Notification) {
        let parsed = serde_json::from_str::<Notice>(notification.payload())
            .ok()
            .and_then(|notice| Some((notice.xid.parse::<u64>().ok()?, notice)));
        let Some((xid, notice)) = parsed else {
            // From another build, or damaged: its change cannot be delivered.
            tracing::warn!(channel = %self.channel, "unreadable sync notification; subscribers resynchronize");
            self.channels.resync_all();
            return;
        };
        if !self.channels.is_subscribed(&notice.user_id) {
            return;
        }
        let user_id = notice.user_id.clone();
        match self.item(notice).await {
            Ok(Some(item)) => self.channels.publish(
                &user_id,
                Change::Item {
                    item: Arc::new(item),
                    stamp: Stamp::Xid(xid),
                },
            ),
            // Superseded: the newer version's notification follows.
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(%error, "cannot read a sync item to deliver; its user's subscribers resynchronize");
                self.channels.publish(&user_id, Change::Resync);
            }
        }
    }

    /// The item a notice announces: from the notice, or read from the table (`None` if a
    /// later version replaced it meanwhile).
    async fn item(&self, notice: Notice) -> Result<Option<Item>, CollectionError> {
        if let Notice {
            key,
            version,
            device_id: Some(device_id),
            updated_at: Some(updated_at),
            value: Some(value),
            ..
        } = notice
        {
            let value = serde_json::from_str(&value).map_err(|_| CollectionError::Corrupt)?;
            return Ok(Some(Item {
                key,
                value,
                version,
                device_id,
                updated_at,
            }));
        }
        let conn = self.pool.get().await.map_err(pool_error)?;
        let statement = conn.prepare_cached(READ_ONE).await.map_err(sql_error)?;
        let row = conn
            .query_opt(&statement, &[&notice.user_id, &notice.key])
            .await
            .map_err(sql_error)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let version: i64 = row.try_get(1).map_err(sql_error)?;
        if version != notice.version {
            return Ok(None);
        }
        let value: String = row.try_get(0).map_err(sql_error)?;
        Ok(Some(Item {
            key: notice.key,
            value: serde_json::from_str(&value).map_err(|_| CollectionError::Corrupt)?,
            version,
            device_id: row.try_get(2).map_err(sql_error)?,
            updated_at: row.try_get(3).map_err(sql_error)?,
        }))
    }
}

/// The server's message and SQLSTATE only (its detail may quote row values), or the
/// error and its causes (a TLS handshake's reason, say).
fn sql_error(error: tokio_postgres::Error) -> CollectionError {
    CollectionError::Postgres(describe_sql_error(&error))
}

fn pool_error(error: PoolError) -> CollectionError {
    match error {
        PoolError::Backend(error) => sql_error(error),
        other => CollectionError::Postgres(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_see_what_committed_before_them() {
        let snapshot = TxSnapshot::parse("100:110:100,104,107").expect("parses");
        assert!(snapshot.sees(99));
        assert!(!snapshot.sees(100), "in progress");
        assert!(snapshot.sees(101));
        assert!(!snapshot.sees(104), "in progress");
        assert!(snapshot.sees(109));
        assert!(!snapshot.sees(110), "started after");
        assert!(!snapshot.sees(500));
        let quiet = TxSnapshot::parse("7:7:").expect("parses");
        assert!(quiet.sees(6));
        assert!(!quiet.sees(7));
        for bad in ["", "1:2", "1:2:x", "a:2:", "1:2:3:4", "1:2:3,"] {
            assert_eq!(TxSnapshot::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn channels_are_named_for_their_schema_and_fit_an_identifier() {
        assert_eq!(channel_name("public"), "holdfast_sync:public");
        let long = "s".repeat(63);
        let hashed = channel_name(&long);
        assert!(hashed.len() <= MAX_IDENTIFIER_BYTES, "{hashed}");
        assert!(hashed.starts_with(CHANNEL_PREFIX));
        assert_eq!(hashed, channel_name(&long), "stable");
        assert_ne!(hashed, channel_name(&"t".repeat(63)));
        assert_eq!(quote_identifier("a\"b"), "\"a\"\"b\"");
    }

    #[test]
    fn notices_with_and_without_the_value_parse() {
        let full: Notice =
            serde_json::from_str(r#"{"u":"u1","k":"k","v":3,"x":"812","d":"phone","t":5,"val":"{\"a\":1}"}"#)
                .expect("full");
        assert_eq!(
            (full.version, full.value.as_deref(), full.device_id.as_deref()),
            (3, Some(r#"{"a":1}"#), Some("phone"))
        );
        let identity: Notice =
            serde_json::from_str(r#"{"u":"u1","k":"k","v":4,"x":"813"}"#).expect("identity");
        assert!(identity.value.is_none() && identity.updated_at.is_none());
    }
}
