//! Revocations across instances: [`RedisRelay`] sends every event published on this
//! process's [`RevocationBus`] to a Redis pub/sub channel (`PREFIX:revocations`), and
//! delivers the events of the other instances into the local bus, so that
//! [`SyncGate::watch`](crate::gate::SyncGate::watch) fires on every instance, not only on
//! the one that revoked, and every instance's gate caches are invalidated.
//!
//! # How stale an instance can be
//!
//! - Redis up: an event reaches the other instances' hooks and watches within one pub/sub
//!   hop (about a millisecond on a local network; `tests/scale_out.rs` measures the whole
//!   revoke-on-A to watch-closed-on-B path, store re-check included, and asserts it is
//!   under 2 s).
//! - Redis down, or the subscription dropped: events published meanwhile are lost. Open
//!   connections still re-check the stores every
//!   [`GateConfig::recheck_interval`](crate::gate::GateConfig::recheck_interval) (15 s by
//!   default), and cached admissions expire after
//!   [`GateConfig::cache_ttl`](crate::gate::GateConfig::cache_ttl) (5 s), the bearer
//!   routes' cached standings after
//!   [`ServerConfig::standing_cache_ttl`](crate::config::ServerConfig::standing_cache_ttl)
//!   (5 s): those bound the staleness. When the subscription comes back the relay delivers
//!   [`Revocation::Resync`] locally (every cached standing dropped, every watch re-checks at
//!   once); when publishing failed, it publishes a `Resync` to the others as soon as Redis
//!   answers again.
//!
//! Pub/sub is at most once and keeps nothing: an instance that starts later does not see
//! earlier events, which is right since it has nothing cached from before them.
//!
//! The subscription uses RESP3 (Redis 6 or later) so that the connection can be named: its
//! client name is [`RedisRelay::client_name`] (`PREFIX-relay-INSTANCE`), as `CLIENT LIST`
//! shows it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ::redis::aio::{ConnectionManager, MultiplexedConnection};
use ::redis::{AsyncCommands, AsyncConnectionConfig, Client, Msg, ProtocolVersion, PushInfo, PushKind};
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;

use crate::events::{Delivered, Origin, Revocation, RevocationBus};
use crate::store::StoreError;
use crate::store::redis::connect;

/// First wait before re-subscribing after the subscription dropped; doubles up to
/// [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// How often a `Resync` owed to the other instances is retried while Redis is down.
const RESYNC_RETRY: Duration = Duration::from_millis(500);
const TIMEOUT: Duration = Duration::from_secs(2);

/// What goes over the channel.
#[derive(Serialize, Deserialize)]
struct Message {
    /// The instance that published it.
    origin: String,
    /// The event; one this version cannot read becomes a `Resync`.
    event: serde_json::Value,
}

/// The relay between this process's bus and the other instances'. Runs two tasks on the
/// current tokio runtime; they stop when the relay is dropped.
pub struct RedisRelay {
    instance_id: String,
    client_name: String,
    channel: String,
    resubscriptions: Arc<AtomicU64>,
    tasks: Vec<JoinHandle<()>>,
    bus: RevocationBus,
    /// Local events the sending task has handled (sent, or given up on), plus those
    /// published before it subscribed.
    handled: Arc<AtomicU64>,
}

impl std::fmt::Debug for RedisRelay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisRelay")
            .field("instance_id", &self.instance_id)
            .field("channel", &self.channel)
            .finish_non_exhaustive()
    }
}

impl RedisRelay {
    /// Relays `bus` through the Redis at `url` on the channel `prefix:revocations`. Returns
    /// once subscribed: from then on, events of the other instances reach `bus`. Fails when
    /// Redis does not answer (afterwards, outages are ridden out: see the module docs).
    pub async fn start(bus: &RevocationBus, url: &str, prefix: &str) -> Result<RedisRelay, StoreError> {
        let instance_id = uuid::Uuid::new_v4().simple().to_string();
        let client_name = format!("{prefix}-relay-{instance_id}");
        if client_name.bytes().any(|b| !b.is_ascii_graphic()) {
            return Err(StoreError::backend(
                "redis_relay",
                "the Redis key prefix must be printable ASCII without spaces",
            ));
        }
        let channel = format!("{prefix}:revocations");
        let client = Client::open(url).map_err(|e| StoreError::backend("redis_relay", e))?;
        let info = client.get_connection_info().clone();
        let settings = info.redis_settings().clone().set_protocol(ProtocolVersion::RESP3);
        let client = Client::open(info.set_redis_settings(settings))
            .map_err(|e| StoreError::backend("redis_relay", e))?;
        let publisher = connect(url).await?;
        let subscription = subscribe(&client, &client_name, &channel)
            .await
            .map_err(|e| StoreError::backend("redis_relay_subscribe", e))?;
        let resubscriptions = Arc::new(AtomicU64::new(0));
        let receiving = Receiving {
            bus: bus.clone(),
            client,
            client_name: client_name.clone(),
            channel: channel.clone(),
            instance_id: instance_id.clone(),
            resubscriptions: resubscriptions.clone(),
        };
        let events = bus.subscribe();
        // Counted as handled: published before the relay listened, so never its to send.
        let handled = Arc::new(AtomicU64::new(bus.published()));
        let sending = Sending {
            handled: handled.clone(),
            events,
            publisher,
            channel: channel.clone(),
            instance_id: instance_id.clone(),
        };
        let tasks = vec![
            tokio::spawn(receiving.run(subscription)),
            tokio::spawn(sending.run()),
        ];
        tracing::info!(%channel, instance = %instance_id, "relaying revocations through Redis");
        Ok(RedisRelay {
            instance_id,
            client_name,
            channel,
            resubscriptions,
            tasks,
            bus: bus.clone(),
            handled,
        })
    }

    /// Waits until every event published on the bus so far has been handed to Redis (or
    /// given up on, when Redis refused it), at most `timeout`: a short-lived process (an
    /// operator command) calls it before exiting so the other instances hear of what it
    /// revoked. Returns whether it got there in time.
    pub async fn flush(&self, timeout: std::time::Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.handled.load(Ordering::SeqCst) >= self.bus.published() {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    /// This instance's id, which tags what it publishes.
    pub fn instance_id(&self) -> &str {
        &self.instance_id
    }

    /// The client name of the subscription's connection (`CLIENT LIST` shows it).
    pub fn client_name(&self) -> &str {
        &self.client_name
    }

    /// The channel.
    pub fn channel(&self) -> &str {
        &self.channel
    }

    /// How many times the subscription was re-established after it dropped.
    pub fn resubscriptions(&self) -> u64 {
        self.resubscriptions.load(Ordering::Acquire)
    }
}

impl Drop for RedisRelay {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// A named connection subscribed to `channel`, and where its messages arrive.
type Subscription = (MultiplexedConnection, mpsc::UnboundedReceiver<PushInfo>);

async fn subscribe(client: &Client, name: &str, channel: &str) -> ::redis::RedisResult<Subscription> {
    let (sender, receiver) = mpsc::unbounded_channel();
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(TIMEOUT))
        .set_response_timeout(Some(TIMEOUT))
        .set_push_sender(sender);
    let mut connection = client
        .get_multiplexed_async_connection_with_config(&config)
        .await?;
    ::redis::cmd("CLIENT")
        .arg("SETNAME")
        .arg(name)
        .exec_async(&mut connection)
        .await?;
    connection.subscribe(channel).await?;
    Ok((connection, receiver))
}

/// Redis to the local bus.
struct Receiving {
    bus: RevocationBus,
    client: Client,
    client_name: String,
    channel: String,
    instance_id: String,
    resubscriptions: Arc<AtomicU64>,
}

impl Receiving {
    async fn run(self, first: Subscription) {
        let mut subscription = first;
        loop {
            self.receive(&mut subscription.1).await;
            drop(subscription);
            tracing::warn!(channel = %self.channel, "lost the Redis revocation subscription; re-subscribing");
            subscription = self.resubscribe().await;
            self.resubscriptions.fetch_add(1, Ordering::AcqRel);
            // Whatever was published while unsubscribed is lost: re-check everything.
            self.bus.deliver_remote(Revocation::Resync);
            tracing::info!(channel = %self.channel, "re-subscribed to the Redis revocation channel");
        }
    }

    /// Delivers messages until the connection drops.
    async fn receive(&self, pushes: &mut mpsc::UnboundedReceiver<PushInfo>) {
        while let Some(push) = pushes.recv().await {
            if push.kind == PushKind::Disconnection {
                return;
            }
            let Some(message) = Msg::from_push_info(push) else {
                continue;
            };
            if message.get_channel_name() != self.channel {
                continue;
            }
            match serde_json::from_slice::<Message>(message.get_payload_bytes()) {
                Ok(message) if message.origin == self.instance_id => {}
                Ok(message) => {
                    let event = serde_json::from_value(message.event).unwrap_or_else(|error| {
                        tracing::warn!(%error, "an unreadable revocation from another instance; re-checking everything");
                        Revocation::Resync
                    });
                    self.bus.deliver_remote(event);
                }
                Err(error) => tracing::warn!(%error, "ignored a malformed message on the revocation channel"),
            }
        }
    }

    async fn resubscribe(&self) -> Subscription {
        let mut backoff = MIN_BACKOFF;
        loop {
            tokio::time::sleep(backoff).await;
            match subscribe(&self.client, &self.client_name, &self.channel).await {
                Ok(subscription) => return subscription,
                Err(error) => {
                    tracing::warn!(%error, "cannot re-subscribe to the Redis revocation channel yet");
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }
}

/// The local bus to Redis.
struct Sending {
    handled: Arc<AtomicU64>,
    events: broadcast::Receiver<Delivered>,
    publisher: ConnectionManager,
    channel: String,
    instance_id: String,
}

impl Sending {
    async fn run(mut self) {
        // Set when an event could not be sent: the others must re-check everything.
        let mut owe_resync = false;
        loop {
            let received = if owe_resync {
                tokio::select! {
                    received = self.events.recv() => received,
                    () = tokio::time::sleep(RESYNC_RETRY) => {
                        owe_resync = !self.publish(&Revocation::Resync).await;
                        continue;
                    }
                }
            } else {
                self.events.recv().await
            };
            let event = match received {
                Ok(Delivered {
                    event,
                    origin: Origin::Local,
                }) => event,
                Ok(Delivered {
                    origin: Origin::Remote,
                    ..
                }) => continue,
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "the Redis relay fell behind the revocation bus");
                    // Lost to this relay (some may be relayed ones: an over-count only
                    // ends a flush early, after the resync that covers them).
                    self.handled.fetch_add(missed, Ordering::SeqCst);
                    owe_resync = true;
                    continue;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            };
            if owe_resync {
                owe_resync = !self.publish(&Revocation::Resync).await;
            }
            if !self.publish(&event).await {
                owe_resync = true;
            }
            self.handled.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Publishes `event`; false when Redis did not take it.
    async fn publish(&mut self, event: &Revocation) -> bool {
        let message = Message {
            origin: self.instance_id.clone(),
            event: serde_json::to_value(event).unwrap_or(serde_json::Value::Null),
        };
        let payload = match serde_json::to_string(&message) {
            Ok(payload) => payload,
            Err(error) => {
                tracing::warn!(%error, "cannot encode a revocation");
                return false;
            }
        };
        match self.publisher.publish::<_, _, i64>(&self.channel, payload).await {
            Ok(_) => true,
            Err(error) => {
                tracing::warn!(%error, "cannot publish a revocation to Redis; the other instances will re-check");
                false
            }
        }
    }
}
