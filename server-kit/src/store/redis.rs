//! Redis for what several instances must share and answer fast: rate-limit windows and
//! blocks ([`RedisRateLimits`]) and the device-proof replay cache ([`RedisReplays`]).
//! [`Stores::with_redis`](super::Stores::with_redis) swaps them in; revocations travel
//! between instances through [`crate::relay::RedisRelay`].
//!
//! Every key starts with a prefix (`holdfast` by default) so that several deployments, or
//! tests, can share one Redis: `PREFIX:rl:KEY` (a window), `PREFIX:block:KEY` (a block),
//! `PREFIX:replay:JKT:JTI` (a proof id).
//!
//! Connections are [`ConnectionManager`]s: a dropped connection is re-established on the
//! next call (the call that saw it drop fails with [`StoreError::Backend`], as a database
//! failure would).

use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{AsyncCommands, Client, Script};
use async_trait::async_trait;

use super::{RateDecision, RateLimit, RateLimitStore, StoreError};
use crate::clock::{Clock, SystemClock};
use crate::proofs::ReplayStore;

/// How long a command may take before it counts as a failure.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
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

/// Rate limits and blocks in Redis, with the same semantics as the SQL backends. Windows
/// and blocks expire by themselves, so [`RateLimitStore::purge_expired_limits`] has nothing
/// to do.
#[derive(Clone)]
pub struct RedisRateLimits {
    connection: ConnectionManager,
    prefix: String,
    hit: Script,
    block: Script,
}

impl RedisRateLimits {
    /// Rate limits on `connection`, under keys starting with `prefix:`.
    pub fn new(connection: ConnectionManager, prefix: &str) -> RedisRateLimits {
        RedisRateLimits {
            connection,
            prefix: prefix.to_owned(),
            hit: Script::new(HIT),
            block: Script::new(BLOCK),
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
        let (allowed, retry_after_ms): (i64, i64) = self
            .hit
            .key(self.window_key(key))
            .arg(now_ms)
            .arg(limit.window_ms)
            .arg(limit.max)
            .arg(member)
            .invoke_async(&mut self.connection.clone())
            .await
            .map_err(|e| StoreError::backend("rate_limit_hit", e))?;
        Ok(RateDecision {
            allowed: allowed == 1,
            retry_after_ms,
        })
    }

    async fn reset(&self, key: &str) -> Result<(), StoreError> {
        let _: i64 = self
            .connection
            .clone()
            .del(self.window_key(key))
            .await
            .map_err(|e| StoreError::backend("rate_limit_reset", e))?;
        Ok(())
    }

    async fn block(&self, key: &str, until_ms: i64) -> Result<(), StoreError> {
        // `block` is not told the service's time: Redis keeps the block until its end by the
        // wall clock, plus a slack that covers a service clock running behind.
        let keep_ms = until_ms
            .saturating_sub(SystemClock.now_ms())
            .max(0)
            .saturating_add(BLOCK_SLACK_MS);
        let _: i64 = self
            .block
            .key(self.block_key(key))
            .arg(until_ms)
            .arg(keep_ms)
            .invoke_async(&mut self.connection.clone())
            .await
            .map_err(|e| StoreError::backend("block", e))?;
        Ok(())
    }

    async fn blocked_until(&self, key: &str, now_ms: i64) -> Result<Option<i64>, StoreError> {
        let until: Option<i64> = self
            .connection
            .clone()
            .get(self.block_key(key))
            .await
            .map_err(|e| StoreError::backend("blocked_until", e))?;
        Ok(until.filter(|until| *until > now_ms))
    }

    async fn purge_expired_limits(&self, _now_ms: i64) -> Result<u64, StoreError> {
        // Every window and block carries its own expiry.
        Ok(0)
    }
}

/// Proof ids in Redis (`SET NX PX`): a proof is single-use across every instance.
#[derive(Clone)]
pub struct RedisReplays {
    connection: ConnectionManager,
    prefix: String,
}

impl RedisReplays {
    /// Replay entries on `connection`, under keys starting with `prefix:`.
    pub fn new(connection: ConnectionManager, prefix: &str) -> RedisReplays {
        RedisReplays {
            connection,
            prefix: prefix.to_owned(),
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
        let set: Option<String> = ::redis::cmd("SET")
            .arg(format!("{}:replay:{key}", self.prefix))
            .arg(1)
            .arg("NX")
            .arg("PX")
            .arg(keep_ms)
            .query_async(&mut self.connection.clone())
            .await
            .map_err(|e| StoreError::backend("proof_first_use", e))?;
        Ok(set.is_some())
    }
}
