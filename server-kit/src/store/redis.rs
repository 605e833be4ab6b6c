//! Redis for what several instances must share and answer fast: rate-limit windows and
//! blocks ([`RedisRateLimits`]) and the device-proof replay cache ([`RedisReplays`]).
//! [`Stores::with_redis`](super::Stores::with_redis) swaps them in; revocations travel
//! between instances through [`crate::relay::RedisRelay`].
//!
//! Every key starts with a prefix (`holdfast` by default) so that several deployments, or
//! tests, can share one Redis: `PREFIX:rl:KEY` (a window), `PREFIX:block:KEY` (a block),
//! `PREFIX:replay:JKT:JTI` (a proof id).
//!
//! Connections are [`ConnectionManager`]s: a dropped connection is re-established in the
//! background when a call sees it drop, so nothing needs restarting when Redis comes back.
//!
//! # When Redis is down
//!
//! Nothing committed lives in Redis (accounts, devices, sessions, rotations and revocations
//! are in the database), and once an instance is running no request fails because Redis is
//! down (connecting at start does need it): what Redis holds degrades to what a deployment
//! without Redis has, per instance.
//!
//! - Rate limits and blocks: while Redis is unavailable (connection refused or dropped, no
//!   answer within [`CALL_TIMEOUT`], or a `LOADING`, `READONLY`, `MASTERDOWN`, `TRYAGAIN`,
//!   `CLUSTERDOWN` or `OOM` reply), each instance counts in its own memory. Limits still
//!   hold, but per instance: with N instances a client gets up to N times the budget.
//! - Proof replays: each instance remembers the proofs it saw in its own memory, so a proof
//!   is still refused a second time on the same instance, but not on another one.
//!
//! The first call that finds Redis unavailable waits for it at most [`CALL_TIMEOUT`] (about
//! half a second when the connection is refused: the reconnection's retries). After that,
//! one call per store every [`PROBE_INTERVAL`] tries Redis (and so starts a reconnection)
//! while the others answer from memory at once; the first call Redis answers ends the
//! outage. So the shared state is back within about two probe intervals of Redis answering
//! (`tests/redis_restart.rs` measures it), and nothing needs restarting. The first failure
//! logs a warning, the first answer after it an info line. Any other Redis error (a refused
//! command) is still a [`StoreError::Backend`].
//!
//! A Redis restarted without persistence comes back empty: windows start over, and a proof
//! used within its window (a minute) before the restart, or during the outage on another
//! instance, could be used once more. Nothing else is lost.
//!
//! Revocations missed while Redis was down are covered by the relay's `Resync`
//! ([`crate::relay`]).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{AsyncCommands, Client, ErrorKind, RedisError, RedisResult, Script, ServerErrorKind};
use async_trait::async_trait;

use super::memory::MemoryStore;
use super::{MemoryReplayStore, ReplayStore};
use super::{RateDecision, RateLimit, RateLimitStore, StoreError};
use crate::clock::{Clock, SystemClock};

/// How long a command may take before it counts as a failure.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
/// The longest a call waits for Redis, reconnection included, before this instance's
/// memory answers instead (see the module docs).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(2);
/// While Redis is unavailable, how often one call tries it again (the others answer from
/// memory without waiting).
pub const PROBE_INTERVAL: Duration = Duration::from_millis(200);
/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a block outlives its end (in wall-clock time) before Redis forgets it; the
/// end itself is compared with the service's clock.
const BLOCK_SLACK_MS: i64 = 3_600_000;

/// Connects to `url` (`redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]`, or `rediss://` where the
/// build has TLS), failing when Redis does not answer.
pub async fn connect(url: &str) -> Result<ConnectionManager, StoreError> {
    let client = Client::open(url).map_err(|e| StoreError::backend("redis_connect", e))?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(RESPONSE_TIMEOUT))
        .set_number_of_retries(2)
        .set_max_delay(Duration::from_millis(500));
    client
        .get_connection_manager_with_config(config)
        .await
        .map_err(|e| StoreError::backend("redis_connect", e))
}

/// The sliding window of [`crate::store::slide_window`], atomically over a sorted set whose
/// scores are the attempts' times. KEYS[1]: the window; ARGV: now, window (ms), max, a
/// unique member for this attempt. Returns `{allowed, retry_after_ms}`.
const HIT: &str = r"
local key = KEYS[1]
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local max = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
if redis.call('ZCARD', key) >= max then
  local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  local retry = window
  if oldest[2] then retry = tonumber(oldest[2]) + window - now end
  if retry < 1 then retry = 1 end
  return {0, retry}
end
redis.call('ZADD', key, now, ARGV[4])
local newest = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
local ttl = tonumber(newest[2]) + window - now
if ttl < 1 then ttl = 1 end
redis.call('PEXPIRE', key, ttl)
return {1, 0}
";

/// Keeps the later of the stored block and ARGV[1]; ARGV[2] is how long to keep it (ms).
const BLOCK: &str = r"
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local until_ms = tonumber(ARGV[1])
if until_ms > current then
  redis.call('SET', KEYS[1], ARGV[1])
end
local ttl = tonumber(redis.call('PTTL', KEYS[1]))
if ttl < tonumber(ARGV[2]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 1
";

/// Whether a Redis error means Redis is unavailable (rather than that it refused a command).
fn unavailable(error: &RedisError) -> bool {
    error.is_io_error()
        || matches!(
            error.kind(),
            ErrorKind::Server(
                ServerErrorKind::BusyLoading
                    | ServerErrorKind::ReadOnly
                    | ServerErrorKind::MasterDown
                    | ServerErrorKind::TryAgain
                    | ServerErrorKind::ClusterDown
            )
        )
        || error.code() == Some("OOM")
}

/// Whether a store is answering from this instance's memory, and when it next tries Redis.
#[derive(Clone)]
struct Outage {
    store: &'static str,
    state: Arc<OutageState>,
}

struct OutageState {
    down: AtomicBool,
    /// When (ms after `since`) the next call may try Redis while it is down.
    next_probe_ms: AtomicU64,
    since: Instant,
}

impl Outage {
    fn new(store: &'static str) -> Outage {
        Outage {
            store,
            state: Arc::new(OutageState {
                down: AtomicBool::new(false),
                next_probe_ms: AtomicU64::new(0),
                since: Instant::now(),
            }),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.state.since.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// While Redis is down, whether this call is the one that tries it (at most one per
    /// [`PROBE_INTERVAL`]).
    fn may_try(&self) -> bool {
        if !self.state.down.load(Ordering::Acquire) {
            return true;
        }
        let now = self.now_ms();
        let next = self.state.next_probe_ms.load(Ordering::Acquire);
        now >= next
            && self
                .state
                .next_probe_ms
                .compare_exchange(
                    next,
                    now + PROBE_INTERVAL.as_millis() as u64,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
                .is_ok()
    }

    /// Runs `call` against Redis within [`CALL_TIMEOUT`]; `None` when Redis is unavailable
    /// (the caller answers from memory). While Redis is down, `call` is only run by one
    /// call per [`PROBE_INTERVAL`].
    async fn call<T>(
        &self,
        operation: &'static str,
        call: impl Future<Output = RedisResult<T>>,
    ) -> Result<Option<T>, StoreError> {
        if !self.may_try() {
            return Ok(None);
        }
        let error = match tokio::time::timeout(CALL_TIMEOUT, call).await {
            Ok(Ok(value)) => {
                if self.state.down.swap(false, Ordering::AcqRel) {
                    tracing::info!(
                        store = self.store,
                        "Redis answers again; shared across instances again"
                    );
                }
                return Ok(Some(value));
            }
            Ok(Err(error)) if unavailable(&error) => error.to_string(),
            Ok(Err(error)) => return Err(StoreError::backend(operation, error)),
            Err(_) => format!("no answer within {CALL_TIMEOUT:?}"),
        };
        self.state.next_probe_ms.store(
            self.now_ms() + PROBE_INTERVAL.as_millis() as u64,
            Ordering::Release,
        );
        if self.state.down.swap(true, Ordering::AcqRel) {
            tracing::debug!(store = self.store, operation, %error, "Redis still unavailable");
        } else {
            tracing::warn!(
                store = self.store,
                operation,
                %error,
                "Redis unavailable; answering from this instance's memory until it is back"
            );
        }
        Ok(None)
    }
}

/// Rate limits and blocks in Redis, with the same semantics as the SQL backends. Windows
/// and blocks expire by themselves; [`RateLimitStore::purge_expired_limits`] only purges
/// what was counted in memory while Redis was down (see the module docs).
#[derive(Clone)]
pub struct RedisRateLimits {
    connection: ConnectionManager,
    prefix: String,
    hit: Script,
    block: Script,
    /// Counts while Redis is unavailable.
    fallback: Arc<MemoryStore>,
    outage: Outage,
}

impl RedisRateLimits {
    /// Rate limits on `connection`, under keys starting with `prefix:`.
    pub fn new(connection: ConnectionManager, prefix: &str) -> RedisRateLimits {
        RedisRateLimits {
            connection,
            prefix: prefix.to_owned(),
            hit: Script::new(HIT),
            block: Script::new(BLOCK),
            fallback: Arc::new(MemoryStore::new()),
            outage: Outage::new("rate_limits"),
        }
    }

    fn window_key(&self, key: &str) -> String {
        format!("{}:rl:{key}", self.prefix)
    }

    fn block_key(&self, key: &str) -> String {
        format!("{}:block:{key}", self.prefix)
    }
}

#[async_trait]
impl RateLimitStore for RedisRateLimits {
    async fn hit(&self, key: &str, limit: RateLimit, now_ms: i64) -> Result<RateDecision, StoreError> {
        let member = format!("{now_ms}:{}", uuid::Uuid::new_v4().simple());
        let mut invocation = self.hit.key(self.window_key(key));
        invocation
            .arg(now_ms)
            .arg(limit.window_ms)
            .arg(limit.max)
            .arg(member);
        let mut connection = self.connection.clone();
        let answer: Option<(i64, i64)> = self
            .outage
            .call("rate_limit_hit", invocation.invoke_async(&mut connection))
            .await?;
        match answer {
            Some((allowed, retry_after_ms)) => Ok(RateDecision {
                allowed: allowed == 1,
                retry_after_ms,
            }),
            None => self.fallback.hit(key, limit, now_ms).await,
        }
    }

    async fn reset(&self, key: &str) -> Result<(), StoreError> {
        let mut connection = self.connection.clone();
        let answer: Option<i64> = self
            .outage
            .call("rate_limit_reset", connection.del(self.window_key(key)))
            .await?;
        if answer.is_none() {
            self.fallback.reset(key).await?;
        }
        Ok(())
    }

    async fn block(&self, key: &str, until_ms: i64) -> Result<(), StoreError> {
        // `block` is not told the service's time: Redis keeps the block until its end by the
        // wall clock, plus a slack that covers a service clock running behind.
        let keep_ms = until_ms
            .saturating_sub(SystemClock.now_ms())
            .max(0)
            .saturating_add(BLOCK_SLACK_MS);
        let mut invocation = self.block.key(self.block_key(key));
        invocation.arg(until_ms).arg(keep_ms);
        let mut connection = self.connection.clone();
        let answer: Option<i64> = self
            .outage
            .call("block", invocation.invoke_async(&mut connection))
            .await?;
        if answer.is_none() {
            self.fallback.block(key, until_ms).await?;
        }
        Ok(())
    }

    async fn blocked_until(&self, key: &str, now_ms: i64) -> Result<Option<i64>, StoreError> {
        let mut connection = self.connection.clone();
        let answer: Option<Option<i64>> = self
            .outage
            .call("blocked_until", connection.get(self.block_key(key)))
            .await?;
        match answer {
            Some(until) => Ok(until.filter(|until| *until > now_ms)),
            None => self.fallback.blocked_until(key, now_ms).await,
        }
    }

    async fn purge_expired_limits(&self, now_ms: i64) -> Result<u64, StoreError> {
        // Every window and block in Redis carries its own expiry; what was counted in memory
        // during an outage is purged here.
        self.fallback.purge_expired_limits(now_ms).await
    }
}

/// Proof ids in Redis (`SET NX PX`): a proof is single-use across every instance (per
/// instance while Redis is down, see the module docs).
#[derive(Clone)]
pub struct RedisReplays {
    connection: ConnectionManager,
    prefix: String,
    /// Remembers proofs while Redis is unavailable.
    fallback: Arc<MemoryReplayStore>,
    outage: Outage,
}

impl RedisReplays {
    /// Replay entries on `connection`, under keys starting with `prefix:`.
    pub fn new(connection: ConnectionManager, prefix: &str) -> RedisReplays {
        RedisReplays {
            connection,
            prefix: prefix.to_owned(),
            fallback: Arc::new(MemoryReplayStore::new()),
            outage: Outage::new("proof_replays"),
        }
    }
}

#[async_trait]
impl ReplayStore for RedisReplays {
    async fn first_use(&self, key: &str, expires_at_secs: i64, now_secs: i64) -> Result<bool, StoreError> {
        // Remembered through `expires_at_secs` inclusive, as the in-memory store does.
        let keep_ms = expires_at_secs
            .saturating_sub(now_secs)
            .saturating_add(1)
            .max(1)
            .saturating_mul(1000);
        let mut command = ::redis::cmd("SET");
        command
            .arg(format!("{}:replay:{key}", self.prefix))
            .arg(1)
            .arg("NX")
            .arg("PX")
            .arg(keep_ms);
        let mut connection = self.connection.clone();
        let answer: Option<Option<String>> = self
            .outage
            .call("proof_first_use", command.query_async(&mut connection))
            .await?;
        match answer {
            Some(set) => Ok(set.is_some()),
            None => self.fallback.first_use(key, expires_at_secs, now_secs).await,
        }
    }
}
