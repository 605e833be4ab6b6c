//! The device-proof replay store: remembers each proof's id until its window ends, so a
//! proof is good once (PROTOCOL 6.1). In memory for one instance; in Redis
//! ([`super::redis::RedisReplays`]) when several instances share the load.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::StoreError;

/// Remembers proof ids until their window ends.
#[async_trait]
pub trait ReplayStore: Send + Sync {
    /// Records `key` until `expires_at_secs`. True when it was not recorded yet (the proof's
    /// first use), false for a replay.
    async fn first_use(&self, key: &str, expires_at_secs: i64, now_secs: i64) -> Result<bool, StoreError>;
}

/// The in-process replay store: enough for one server instance (several instances share
/// one through Redis). Sharded to keep lock hold times short; expired entries are swept
/// from a shard when it has grown since its last sweep. Entries only come from proofs whose
/// signature verified, so its size is bounded by what device holders can sign within the
/// window.
pub struct MemoryReplayStore {
    shards: Vec<Mutex<Shard>>,
}

#[derive(Default)]
struct Shard {
    seen: HashMap<Box<str>, i64>,
    /// Size after the last sweep: the next sweep waits until it doubles.
    swept_at_len: usize,
}

const SHARDS: usize = 16;
/// Below this a shard is never swept (cheap to keep).
const SWEEP_FLOOR: usize = 1024;

impl MemoryReplayStore {
    /// An empty store.
    pub fn new() -> MemoryReplayStore {
        MemoryReplayStore {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
        }
    }

    /// How many entries are held (expired ones not yet swept included).
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| {
                shard
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .seen
                    .len()
            })
            .sum()
    }

    /// Whether no entry is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn shard(&self, key: &str) -> &Mutex<Shard> {
        // FNV-1a: spreads keys over shards; not a security boundary (each shard is a
        // SipHash map of its own).
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in key.bytes() {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
        &self.shards[(hash % SHARDS as u64) as usize]
    }
}

impl Default for MemoryReplayStore {
    fn default() -> Self {
        MemoryReplayStore::new()
    }
}

#[async_trait]
impl ReplayStore for MemoryReplayStore {
    async fn first_use(&self, key: &str, expires_at_secs: i64, now_secs: i64) -> Result<bool, StoreError> {
        let mut shard = self
            .shard(key)
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(&expires) = shard.seen.get(key)
            && expires >= now_secs
        {
            return Ok(false);
        }
        shard.seen.insert(key.into(), expires_at_secs);
        let len = shard.seen.len();
        if len >= SWEEP_FLOOR && len >= shard.swept_at_len.saturating_mul(2) {
            shard.seen.retain(|_, expires| *expires >= now_secs);
            shard.swept_at_len = shard.seen.len();
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_key_is_accepted_once_until_it_expires() {
        let store = MemoryReplayStore::new();
        assert!(store.first_use("k:1", 100, 50).await.unwrap());
        assert!(!store.first_use("k:1", 100, 60).await.unwrap());
        assert!(!store.first_use("k:1", 100, 100).await.unwrap());
        assert!(store.first_use("k:2", 100, 60).await.unwrap());
        // Past its window the id is forgotten (a proof that old is refused as stale anyway).
        assert!(store.first_use("k:1", 200, 101).await.unwrap());
    }

    #[tokio::test]
    async fn expired_entries_are_swept_as_the_store_grows() {
        let store = MemoryReplayStore::new();
        for i in 0..(SHARDS * SWEEP_FLOOR * 4) {
            assert!(store.first_use(&format!("k:{i}"), 10, 0).await.unwrap());
        }
        let before = store.len();
        for i in 0..(SHARDS * SWEEP_FLOOR * 8) {
            assert!(store.first_use(&format!("later:{i}"), 1_000, 500).await.unwrap());
        }
        assert!(
            store.len() < before + SHARDS * SWEEP_FLOOR * 8,
            "expired entries were swept ({} held)",
            store.len()
        );
    }
}
