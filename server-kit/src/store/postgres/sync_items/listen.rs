//! The `LISTEN` side of sync items on PostgreSQL: one dedicated connection per instance,
//! reopened when it drops, delivering every notification of the schema's channel to this
//! instance's subscribers.
//!
//! # Staleness bound
//!
//! - `LISTEN` connection up: one notification hop after the commit (about a millisecond
//!   on one host; `tests/sync_postgres.rs` measures put-on-A to item-on-B over WebSocket),
//!   plus one row read for a value too large to travel inline.
//! - `LISTEN` connection closed (server restart, failover, `pg_terminate_backend`): noticed
//!   at once; reopened after [`MIN_BACKOFF`], the wait doubling up to [`MAX_BACKOFF`]
//!   while PostgreSQL does not answer. Notifications sent meanwhile are lost, so once
//!   `LISTEN` is back every subscriber in the instance is sent [`Change::Resync`] and reads
//!   a fresh snapshot: staleness is the outage plus at most [`MAX_BACKOFF`].
//! - `LISTEN` connection silently dead (a network partition without a reset): a query
//!   every [`HEARTBEAT`] that must answer within [`HEARTBEAT_TIMEOUT`] finds it, then as
//!   above: at most 10 s plus the reconnection.
//! - This instance falling behind the notifications (more than [`QUEUE`] waiting): the
//!   excess is dropped and every subscriber reads a fresh snapshot, as a slow connection
//!   does.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::time::Duration;

use deadpool_postgres::Pool;
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_postgres::{AsyncMessage, Notification};

use super::errors::{pool_error, sql_error};
use crate::store::postgres::Connector;
use crate::store::sync_items::{Change, Channels, CollectionError, Item, Stamp};

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
/// The channel is this prefix and the schema name (hashed when the whole would exceed
/// PostgreSQL's 63-byte identifiers).
const CHANNEL_PREFIX: &str = "holdfast_sync:";
const MAX_IDENTIFIER_BYTES: usize = 63;

const READ_ONE: &str = "SELECT value, version, device_id, updated_at FROM sync_items
WHERE user_id = $1 AND key = $2";

/// What the `LISTEN` task shows.
#[derive(Default)]
pub(super) struct ListenState {
    /// The connection's server process id; 0 while it is being reopened.
    pid: AtomicI32,
    reconnects: AtomicU64,
}

impl ListenState {
    pub(super) fn pid(&self) -> Option<i32> {
        Some(self.pid.load(Ordering::Relaxed)).filter(|pid| *pid != 0)
    }

    pub(super) fn reconnects(&self) -> u64 {
        self.reconnects.load(Ordering::Relaxed)
    }
}

/// The notification channel of a schema.
pub(super) fn channel_name(schema: &str) -> String {
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

/// A notification's payload (see `PUT` in `mod.rs`).
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
pub(super) struct Listener {
    /// How the store's connections are opened (TLS included): this one is opened the same way.
    pub(super) connector: Connector,
    pub(super) pool: Pool,
    pub(super) channel: String,
    pub(super) channels: Arc<Channels>,
    pub(super) state: Arc<ListenState>,
}

/// One open `LISTEN` connection.
pub(super) struct Session {
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
    pub(super) async fn listen(&self) -> Result<Session, tokio_postgres::Error> {
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
    pub(super) async fn run(self, mut session: Session) {
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

#[cfg(test)]
mod tests {
    use super::*;

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
