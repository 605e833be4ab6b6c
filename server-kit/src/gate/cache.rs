//! The gate's caches: parsed claims by HMAC tag, each token's standing, and one cell per
//! user whose epoch moves on every revocation of that user (and wakes its watches).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use holdfast_protocol::Claims;
use tokio::sync::Notify;

use super::{GateError, token_error};
use crate::tokens::SignedToken;

const SHARDS: usize = 16;

/// A token seen before: its claims, and its standing once checked.
pub(super) struct TokenEntry {
    pub claims: Claims,
    standing: Option<Arc<Standing>>,
}

/// Rules 2-4 of PROTOCOL 5 as the stores answered them, and when.
pub(super) struct Standing {
    pub email: String,
    pub name: Option<String>,
    /// The registered device, or `None` when it is not registered.
    pub device: Option<DeviceState>,
    pub user_cell: Arc<UserCell>,
    /// The user's epoch when the stores were read.
    pub epoch: u64,
    pub checked_at_ms: i64,
}

/// What the gate needs of a registered, unrevoked device.
pub(super) struct DeviceState {
    /// Thumbprint of its key, when it has one.
    pub jkt: Option<String>,
}

/// Per user: bumped on every revocation that concerns the user.
#[derive(Default)]
pub(super) struct UserCell {
    epoch: AtomicU64,
    /// Wakes the user's watches.
    pub changed: Notify,
}

impl UserCell {
    /// How many revocations of this user the gate has seen.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }
}

pub(super) struct Caches {
    tokens: Vec<RwLock<HashMap<[u8; 32], Arc<TokenEntry>>>>,
    users: Mutex<HashMap<String, Arc<UserCell>>>,
    shard_capacity: usize,
}

impl Caches {
    pub fn new(capacity: usize) -> Caches {
        Caches {
            tokens: (0..SHARDS).map(|_| RwLock::new(HashMap::new())).collect(),
            users: Mutex::new(HashMap::new()),
            shard_capacity: (capacity / SHARDS).max(1),
        }
    }

    fn shard(&self, tag: &[u8; 32]) -> &RwLock<HashMap<[u8; 32], Arc<TokenEntry>>> {
        // The tag is an HMAC output: uniformly spread, and unknown to anyone without the
        // token, so its first byte picks a shard fairly.
        &self.tokens[usize::from(tag[0]) % SHARDS]
    }

    /// The entry for a token whose signature verified, parsing its claims on first sight.
    pub fn entry(&self, signed: &SignedToken<'_>) -> Result<Arc<TokenEntry>, GateError> {
        let shard = self.shard(&signed.tag);
        if let Some(entry) = shard
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&signed.tag)
        {
            return Ok(entry.clone());
        }
        let claims = signed.claims().map_err(token_error)?;
        let entry = Arc::new(TokenEntry {
            claims,
            standing: None,
        });
        let mut map = shard.write().unwrap_or_else(PoisonError::into_inner);
        if map.len() >= self.shard_capacity {
            // Bounded memory: tokens expire within minutes, so the oldest entries are
            // mostly dead; starting the shard over costs one re-parse per live token.
            map.clear();
        }
        Ok(map.entry(signed.tag).or_insert(entry).clone())
    }

    /// The cached standing of `entry`, if no revocation of its user happened since it was
    /// read and it is younger than `ttl`.
    pub fn fresh_standing(&self, entry: &TokenEntry, now_ms: i64, ttl: Duration) -> Option<Arc<Standing>> {
        let standing = entry.standing.as_ref()?;
        let age = now_ms.saturating_sub(standing.checked_at_ms);
        let young = age >= 0 && u128::try_from(age).is_ok_and(|age| age < ttl.as_millis());
        (young && standing.epoch == standing.user_cell.epoch()).then(|| standing.clone())
    }

    /// Keeps `standing` for the token of `signed`.
    pub fn keep_standing(&self, signed: &SignedToken<'_>, entry: &TokenEntry, standing: Arc<Standing>) {
        let updated = Arc::new(TokenEntry {
            claims: entry.claims.clone(),
            standing: Some(standing),
        });
        self.shard(&signed.tag)
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(signed.tag, updated);
    }

    /// The cell of `user_id`, created on first use.
    pub fn user_cell(&self, user_id: &str) -> Arc<UserCell> {
        let mut users = self.users.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(cell) = users.get(user_id) {
            return cell.clone();
        }
        let cell = Arc::new(UserCell::default());
        users.insert(user_id.to_owned(), cell.clone());
        cell
    }

    /// A revocation concerning `user_id`: its cached standings are stale, its watches
    /// re-check.
    pub fn invalidate_user(&self, user_id: &str) {
        let cell = self
            .users
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(user_id)
            .cloned();
        // No cell: nothing of this user is cached or watched.
        if let Some(cell) = cell {
            cell.epoch.fetch_add(1, Ordering::AcqRel);
            cell.changed.notify_waiters();
        }
    }

    /// Events may have been lost ([`Revocation::Resync`](crate::events::Revocation::Resync)):
    /// every cached standing is stale, every watch re-checks.
    pub fn invalidate_all(&self) {
        let cells: Vec<Arc<UserCell>> = self
            .users
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        for cell in cells {
            cell.epoch.fetch_add(1, Ordering::AcqRel);
            cell.changed.notify_waiters();
        }
    }

    /// Forgets the cells nothing refers to any more (no cached standing, no watch).
    pub fn prune_users(&self) {
        self.users
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|_, cell| Arc::strong_count(cell) > 1);
    }
}
