//! The standing cache: parsed claims by HMAC tag, each token's standing, and one cell per
//! user whose epoch moves on every revocation of that user (and wakes the sync gate's
//! watches). One definition serves the bearer routes (the [`super::Authenticator`]'s own
//! cache) and the sync gate (its own instance, with its own bounds).
//!
//! Bounds, whatever tokens arrive:
//! - at most `capacity` token entries: an entry exists only for a token whose signature
//!   verified (so only for tokens this server issued); a full shard is started over;
//! - user cells only for users with a cached standing or an open watch, plus at most
//!   `capacity` others between prunes;
//! - a standing is served only while its user's epoch is the one read before the stores
//!   were (no revocation of the user since) and it is younger than the caller's max age.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock};
use std::time::Duration;

use holdfast_protocol::Claims;
use holdfast_protocol::endpoint::Me;
use tokio::sync::Notify;

use crate::exchange::Encoded;
use crate::store::{DeviceRecord, UserRecord};
use crate::tokens::{SignedToken, TokenError};

const SHARDS: usize = 16;

/// A token seen before: its claims, and its standing once checked.
pub(crate) struct TokenEntry {
    pub claims: Claims,
    standing: Option<Arc<Standing>>,
}

/// Rules 2-4 of PROTOCOL 5 (revocation, user, device) as the stores answered them, and when:
/// only a token in good standing is kept.
pub(crate) struct Standing {
    /// The user, as stored when read.
    pub user: UserRecord,
    /// The registered device, or `None` when it is not registered.
    pub device: Option<DeviceRecord>,
    pub user_cell: Arc<UserCell>,
    /// The user's epoch when the stores were read.
    pub epoch: u64,
    pub checked_at_ms: i64,
    /// `GET /me`'s answer for `user`, encoded on first use: a cached standing answers it
    /// without a copy of the record or a serialization.
    pub me_body: OnceLock<Encoded<Me>>,
}

impl Standing {
    /// A standing read at `checked_at_ms`, when the user's epoch was `epoch`.
    pub fn new(
        user: UserRecord,
        device: Option<DeviceRecord>,
        user_cell: Arc<UserCell>,
        epoch: u64,
        checked_at_ms: i64,
    ) -> Standing {
        Standing {
            user,
            device,
            user_cell,
            epoch,
            checked_at_ms,
            me_body: OnceLock::new(),
        }
    }
}

/// Per user: bumped on every revocation that concerns the user.
#[derive(Default)]
pub(crate) struct UserCell {
    epoch: AtomicU64,
    /// Wakes the user's watches.
    pub changed: Notify,
}

impl UserCell {
    /// How many revocations of this user the cache has seen.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }
}

type Shard = RwLock<HashMap<[u8; 32], Arc<TokenEntry>, BuildHasherDefault<TagHasher>>>;

/// Hashes an HMAC tag by taking eight of its bytes: a tag is a keyed PRF's output, uniform
/// and unknown to anyone without the token, and entries exist only for tags whose
/// signature verified, so nobody can aim keys at one bucket (SipHash's reason to exist) and
/// the lookup of every bearer request and sync handshake skips hashing 32 bytes.
#[derive(Default)]
pub(crate) struct TagHasher(u64);

impl Hasher for TagHasher {
    fn write(&mut self, bytes: &[u8]) {
        // The tag's last eight bytes (its first picks the shard).
        let mut word = [0u8; 8];
        let taken = bytes.len().min(8);
        word[..taken].copy_from_slice(&bytes[bytes.len() - taken..]);
        self.0 = self.0.rotate_left(32) ^ u64::from_le_bytes(word);
    }

    fn write_usize(&mut self, _length: usize) {
        // The slice length `[u8; 32]` hashes first: the same for every tag.
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// The cache (see the module docs).
pub(crate) struct StandingCache {
    tokens: Vec<Shard>,
    users: Mutex<HashMap<String, Arc<UserCell>>>,
    shard_capacity: usize,
    capacity: usize,
}

impl StandingCache {
    /// A cache of at most `capacity` tokens.
    pub fn new(capacity: usize) -> StandingCache {
        StandingCache {
            tokens: (0..SHARDS).map(|_| RwLock::new(HashMap::default())).collect(),
            users: Mutex::new(HashMap::new()),
            shard_capacity: (capacity / SHARDS).max(1),
            capacity: capacity.max(1),
        }
    }

    fn shard(&self, tag: &[u8; 32]) -> &Shard {
        // The tag is an HMAC output: uniformly spread, and unknown to anyone without the
        // token, so its first byte picks a shard fairly.
        &self.tokens[usize::from(tag[0]) % SHARDS]
    }

    /// The entry for a token whose signature verified, parsing its claims on first sight.
    pub fn entry(&self, signed: &SignedToken<'_>) -> Result<Arc<TokenEntry>, TokenError> {
        let shard = self.shard(&signed.tag);
        if let Some(entry) = shard
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&signed.tag)
        {
            return Ok(entry.clone());
        }
        let claims = signed.claims()?;
        let entry = Arc::new(TokenEntry {
            claims,
            standing: None,
        });
        let mut map = shard.write().unwrap_or_else(PoisonError::into_inner);
        let cleared = map.len() >= self.shard_capacity;
        if cleared {
            // Bounded memory: tokens expire within minutes, so the oldest entries are
            // mostly dead; starting the shard over costs one re-parse per live token.
            map.clear();
        }
        let entry = map.entry(signed.tag).or_insert(entry).clone();
        drop(map);
        if cleared {
            self.prune_users();
        }
        Ok(entry)
    }

    /// The cached standing of `entry`, if no revocation of its user happened since it was
    /// read and it is younger than `max_age`.
    pub fn fresh_standing(
        &self,
        entry: &TokenEntry,
        now_ms: i64,
        max_age: Duration,
    ) -> Option<Arc<Standing>> {
        let standing = entry.standing.as_ref()?;
        let age = now_ms.saturating_sub(standing.checked_at_ms);
        let young = age >= 0 && u128::try_from(age).is_ok_and(|age| age < max_age.as_millis());
        (young && standing.epoch == standing.user_cell.epoch()).then(|| standing.clone())
    }

    /// Keeps `standing` for the token of `signed`.
    pub fn keep_standing(&self, signed: &SignedToken<'_>, entry: &TokenEntry, standing: Arc<Standing>) {
        let updated = Arc::new(TokenEntry {
            claims: entry.claims.clone(),
            standing: Some(standing),
        });
        let mut map = self
            .shard(&signed.tag)
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        // Replaces the entry only if it is still there: a shard started over since stays
        // within its bound.
        if let Some(slot) = map.get_mut(&signed.tag) {
            *slot = updated;
        }
    }

    /// The cell of `user_id`, created on first use.
    pub fn user_cell(&self, user_id: &str) -> Arc<UserCell> {
        let mut users = self.users.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(cell) = users.get(user_id) {
            return cell.clone();
        }
        if users.len() >= self.capacity {
            // Bounded memory: cells nothing refers to (a load that failed) go.
            users.retain(|_, cell| Arc::strong_count(cell) > 1);
        }
        let cell = Arc::new(UserCell::default());
        users.insert(user_id.to_owned(), cell.clone());
        cell
    }

    /// A revocation (or another change) concerning `user_id`: its cached standings are
    /// stale, its watches re-check.
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

    /// An invalidating hook for `bus`, registered and returned: the caller keeps it alive
    /// (the bus holds it weakly). It runs inside `publish`, so once a revoking call has
    /// returned, no standing from before it is served.
    pub fn follow(
        self: &Arc<Self>,
        bus: &crate::events::RevocationBus,
    ) -> Arc<crate::events::RevocationHook> {
        let cache = Arc::downgrade(self);
        let hook: Arc<crate::events::RevocationHook> = Arc::new(move |event: &crate::events::Revocation| {
            if let Some(cache) = cache.upgrade() {
                match event.user_id() {
                    Some(user_id) => cache.invalidate_user(user_id),
                    None => cache.invalidate_all(),
                }
            }
        });
        bus.add_hook(&hook);
        hook
    }
}

#[cfg(test)]
impl StandingCache {
    /// How many tokens and user cells are held.
    fn sizes(&self) -> (usize, usize) {
        let tokens = self
            .tokens
            .iter()
            .map(|shard| shard.read().unwrap_or_else(PoisonError::into_inner).len())
            .sum();
        let users = self.users.lock().unwrap_or_else(PoisonError::into_inner).len();
        (tokens, users)
    }
}

#[cfg(test)]
#[path = "cache_tests.rs"]
mod tests;
