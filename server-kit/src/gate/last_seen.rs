//! `lastSeenAt` without a database write per connection: admissions record the time in
//! memory (the latest per device), and one task writes the batch periodically.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError, Weak};
use std::time::Duration;

use super::GateInner;

const SHARDS: usize = 8;

pub(super) struct LastSeen {
    shards: Vec<Mutex<HashMap<String, i64>>>,
}

impl Default for LastSeen {
    fn default() -> Self {
        LastSeen {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }
}

impl LastSeen {
    fn shard(&self, device_id: &str) -> &Mutex<HashMap<String, i64>> {
        let spread = device_id.bytes().fold(0usize, |hash, byte| {
            hash.wrapping_mul(31).wrapping_add(usize::from(byte))
        });
        &self.shards[spread % SHARDS]
    }

    /// Records that `device_id` was seen at `now_ms` (keeps the latest).
    pub fn record(&self, device_id: &str, now_ms: i64) {
        let mut shard = self
            .shard(device_id)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match shard.get_mut(device_id) {
            Some(seen) => *seen = (*seen).max(now_ms),
            None => {
                shard.insert(device_id.to_owned(), now_ms);
            }
        }
    }

    /// Everything recorded since the last take.
    pub fn take(&self) -> Vec<(String, i64)> {
        let mut batch = Vec::new();
        for shard in &self.shards {
            let taken = std::mem::take(&mut *shard.lock().unwrap_or_else(PoisonError::into_inner));
            batch.extend(taken);
        }
        batch
    }

    /// Puts back a batch that could not be written (newer values recorded meanwhile win).
    pub fn restore(&self, batch: Vec<(String, i64)>) {
        for (device_id, seen) in batch {
            self.record(&device_id, seen);
        }
    }
}

/// Writes the recorded values every `period` until the gate is dropped (call
/// `SyncGate::flush_last_seen` at shutdown for the last ones).
pub(super) async fn flush_every(gate: Weak<GateInner>, period: Duration) {
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        let Some(inner) = gate.upgrade() else { return };
        if let Err(error) = inner.flush_last_seen().await {
            tracing::warn!(%error, "could not write lastSeenAt; retrying with the next batch");
        }
        inner.caches.prune_users();
    }
}
