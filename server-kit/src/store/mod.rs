//! Storage behind the server kit: one trait per concern, so a deployment can put each on
//! the backend that suits it (SQLite embedded by default; PostgreSQL and Redis when several
//! instances share the load).
//!
//! Every method that must be atomic says so, and every backend implements it atomically
//! (a transaction, a compare-and-set); the route code relies on it for refresh rotation,
//! single-use challenges and device ownership.
//!
//! - [`UserStore`]: accounts and password hashes;
//! - [`DeviceStore`]: the device registry;
//! - [`TokenStore`]: refresh-token rotation state, revoked tokens and revoked families;
//! - [`SessionStore`]: sessions (token families) with their limits and why they ended;
//! - [`OneTimeTokenStore`]: hashed single-use password-reset and email-verification tokens;
//! - [`MfaStore`]: second factors (sealed TOTP secrets, hashed recovery codes);
//! - [`StandingStore`]: an access token's revocation, user and device in one read;
//! - [`ChallengeStore`]: single-use device challenges;
//! - [`RateLimitStore`]: sliding-window counters and temporary blocks.
//!
//! [`sqlite::SqliteStore`] implements them all on one SQLite file;
//! [`postgres::PostgresStore`] implements them all on one PostgreSQL database (or schema), for
//! several instances sharing the load; [`memory::MemoryStore`] implements them in memory for
//! unit tests. [`redis::RedisRateLimits`] and [`redis::RedisReplays`] put rate limits and
//! the device-proof replay cache in Redis ([`Stores::with_redis`]), for several instances.

pub mod memory;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "redis")]
pub mod redis;
#[cfg(feature = "sqlite")]
pub mod sqlite;
pub mod sync_items;

mod mfa;
mod records;
mod refresh;
mod replay;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod rotation;
mod sessions;
mod standing;

pub use mfa::{MfaStore, TotpFactor};
pub use records::*;
pub use refresh::{CheckedRefresh, RefreshVerdict};
pub use replay::{MemoryReplayStore, ReplayStore};
pub use sessions::{
    EndedSession, NewSession, OneTimeKind, OneTimeToken, OneTimeTokenStore, SessionEnding, SessionLimits,
    SessionRecord, SessionScope, SessionStore,
};
pub use standing::{StandingQuery, StandingRecord, StandingStore};
pub use sync_items::SyncItemStore;

/// A database or Redis URL with the password of its user info, if any, replaced by `***`,
/// for logs and error messages.
pub fn redact_url_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((user_info, host)) => match user_info.split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

use async_trait::async_trait;
use std::sync::Arc;

/// A storage failure. Messages name the operation, never a secret.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// An account with this email exists.
    #[error("an account with this email already exists")]
    EmailTaken,
    /// The device id belongs to another user, or is registered with another key.
    #[error("the device id is registered to another account or with another key")]
    DeviceConflict,
    /// The device was revoked and cannot be registered again.
    #[error("the device was revoked")]
    DeviceRevoked,
    /// The database refused or failed.
    #[error("storage failure during {operation}: {message}")]
    Backend {
        /// What was being done.
        operation: &'static str,
        /// The backend's message (no secrets: queries are parameterized).
        message: String,
    },
    /// A stored value could not be read back.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// A backend failure during `operation`.
    pub fn backend(operation: &'static str, error: impl std::fmt::Display) -> Self {
        StoreError::Backend {
            operation,
            message: error.to_string(),
        }
    }
}

/// Accounts.
#[async_trait]
pub trait UserStore: Send + Sync {
    /// Creates an account. Fails with [`StoreError::EmailTaken`] when the (lower-cased)
    /// email exists; atomic with respect to concurrent creations.
    async fn create_user(&self, user: NewUser) -> Result<UserRecord, StoreError>;
    /// Finds an account by lower-cased email.
    async fn find_user_by_email(&self, email: &str) -> Result<Option<UserRecord>, StoreError>;
    /// Finds an account by id.
    async fn find_user(&self, id: &str) -> Result<Option<UserRecord>, StoreError>;
    /// Replaces the stored password hash (transparent rehash, password change).
    async fn set_password(&self, id: &str, password: StoredPassword) -> Result<(), StoreError>;
    /// Deletes an account and its devices. Returns whether it existed.
    async fn delete_user(&self, id: &str) -> Result<bool, StoreError>;
    /// Marks the account's email verified. Returns whether the account exists.
    async fn set_email_verified(&self, id: &str) -> Result<bool, StoreError>;
    /// Disables the account from `disabled_at_ms`, or enables it with `None`. Returns
    /// whether the account exists.
    async fn set_disabled(&self, id: &str, disabled_at_ms: Option<i64>) -> Result<bool, StoreError>;
    /// Accounts in email order, as `query` selects (for operators).
    async fn list_users(&self, query: &UserQuery) -> Result<Vec<UserRecord>, StoreError>;
}

/// The device registry.
#[async_trait]
pub trait DeviceStore: Send + Sync {
    /// Registers a device, atomically, following [`plan_registration`]: a new id is
    /// inserted; an id owned by another user, or registered with another key, fails with
    /// [`StoreError::DeviceConflict`]; a revoked id fails with [`StoreError::DeviceRevoked`];
    /// a keyless device of the same user gets the key attached; otherwise the existing
    /// record is returned unchanged.
    async fn register_device(&self, device: NewDevice) -> Result<DeviceRecord, StoreError>;
    /// Finds a device by id.
    async fn find_device(&self, id: &str) -> Result<Option<DeviceRecord>, StoreError>;
    /// Every device of a user, revoked ones included, oldest first.
    async fn list_devices(&self, user_id: &str) -> Result<Vec<DeviceRecord>, StoreError>;
    /// Marks a device of `user_id` revoked. Returns `false` when no such device is theirs.
    async fn revoke_device(&self, id: &str, user_id: &str) -> Result<bool, StoreError>;
    /// Records that the device was seen at `now_ms`.
    async fn touch_device(&self, id: &str, now_ms: i64) -> Result<(), StoreError>;
    /// [`DeviceStore::touch_device`] for many devices at once (the sync gate's coalesced
    /// `lastSeenAt`); backends override it to write them in one transaction.
    async fn touch_devices(&self, seen: &[(String, i64)]) -> Result<(), StoreError> {
        for (id, now_ms) in seen {
            self.touch_device(id, *now_ms).await?;
        }
        Ok(())
    }
}

/// Refresh rotation state and revocations.
#[async_trait]
pub trait TokenStore: Send + Sync {
    /// Records a refresh token issued at the start of a session (sign-in, sign-up, device
    /// re-login).
    async fn insert_refresh(&self, record: RefreshRecord) -> Result<(), StoreError>;
    /// Atomically rotates `parent_jti`: when it exists, is not consumed and its family is
    /// not revoked, marks it consumed at `now_ms` with `pair` as its children, inserts
    /// `child` and moves the session's ([`SessionStore`]) `last_used_at_ms` to `now_ms`;
    /// otherwise reports why not (see [`RotateOutcome`]), changing nothing.
    async fn rotate_refresh(
        &self,
        parent_jti: &str,
        child: RefreshRecord,
        pair: ChildPair,
        now_ms: i64,
    ) -> Result<RotateOutcome, StoreError>;
    /// A refresh's checks and rotation in one atomic call, as a backend that can answer them
    /// together offers it: the session's state, the token's standing and
    /// [`TokenStore::rotate_refresh`] (see [`RefreshVerdict`]). `None` (the default): not
    /// offered; the caller asks [`SessionStore`], [`UserStore`], [`DeviceStore`] and
    /// [`TokenStore::rotate_refresh`] one by one. Needs sessions, users and devices on this
    /// backend.
    async fn rotate_checked(&self, check: &CheckedRefresh) -> Result<Option<RefreshVerdict>, StoreError> {
        let _ = check;
        Ok(None)
    }
    /// Revokes one token by `jti`, remembered until `expires_at` (seconds).
    async fn revoke_token(&self, jti: &str, expires_at: i64) -> Result<(), StoreError>;
    /// Revokes a whole token family (one sign-in session), remembered until `expires_at`.
    async fn revoke_family(&self, family: &str, expires_at: i64) -> Result<(), StoreError>;
    /// Whether the token `jti`, or its `family`, is revoked.
    async fn is_revoked(&self, jti: &str, family: Option<&str>) -> Result<bool, StoreError>;
    /// Forgets refresh records and revocations whose expiry (seconds) is before `now`.
    async fn purge_expired_tokens(&self, now: i64) -> Result<u64, StoreError>;
}

/// Single-use device challenges.
#[async_trait]
pub trait ChallengeStore: Send + Sync {
    /// Stores a challenge bound to `device_id`, valid until `expires_at_ms`.
    async fn put_challenge(
        &self,
        challenge: &str,
        device_id: &str,
        expires_at_ms: i64,
    ) -> Result<(), StoreError>;
    /// Atomically consumes a challenge for `device_id`. A challenge bound to another device
    /// is left in place ([`ConsumeOutcome::WrongDevice`]); an expired one is removed and
    /// reported [`ConsumeOutcome::Invalid`].
    async fn consume_challenge(
        &self,
        challenge: &str,
        device_id: &str,
        now_ms: i64,
    ) -> Result<ConsumeOutcome, StoreError>;
    /// Removes expired challenges.
    async fn purge_expired_challenges(&self, now_ms: i64) -> Result<u64, StoreError>;
}

/// Sliding-window rate limits and temporary blocks.
#[async_trait]
pub trait RateLimitStore: Send + Sync {
    /// Counts an attempt against `key` if it is within `limit` (a sliding log of the
    /// attempts in the last `limit.window_ms`), atomically. A refused attempt is not
    /// counted; its decision says when the oldest counted attempt leaves the window.
    async fn hit(&self, key: &str, limit: RateLimit, now_ms: i64) -> Result<RateDecision, StoreError>;
    /// Forgets the attempts of `key` (after a successful sign-in).
    async fn reset(&self, key: &str) -> Result<(), StoreError>;
    /// Blocks `key` until `until_ms` (keeps the later of an existing block and this one).
    async fn block(&self, key: &str, until_ms: i64) -> Result<(), StoreError>;
    /// When `key` is blocked at `now_ms`, until when.
    async fn blocked_until(&self, key: &str, now_ms: i64) -> Result<Option<i64>, StoreError>;
    /// Removes windows and blocks that ended before `now_ms`.
    async fn purge_expired_limits(&self, now_ms: i64) -> Result<u64, StoreError>;
}

/// Every store the server kit needs, each possibly on a different backend.
///
/// ```no_run
/// # async fn pick(shared: bool) -> Result<(), holdfast_server_kit::store::StoreError> {
/// use holdfast_server_kit::Stores;
/// let stores = if shared {
///     // Several instances: PostgreSQL (the `holdfast` schema), rate limits in Redis.
///     Stores::postgres("postgres://app@db/app", None)
///         .await?
///         .with_redis("redis://cache:6379", "holdfast")
///         .await?
/// } else {
///     Stores::sqlite("holdfast.db")?
/// };
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Stores {
    /// Accounts.
    pub users: Arc<dyn UserStore>,
    /// Devices.
    pub devices: Arc<dyn DeviceStore>,
    /// Token state.
    pub tokens: Arc<dyn TokenStore>,
    /// Revocation, user and device in one read: on the same backend as `users`, `devices`
    /// and `tokens`.
    pub standing: Arc<dyn StandingStore>,
    /// Sessions: on the same backend as `tokens` (ending a session revokes its family).
    pub sessions: Arc<dyn SessionStore>,
    /// Password-reset and email-verification tokens.
    pub one_time: Arc<dyn OneTimeTokenStore>,
    /// Second factors.
    pub mfa: Arc<dyn MfaStore>,
    /// Challenges.
    pub challenges: Arc<dyn ChallengeStore>,
    /// Rate limits.
    pub rate_limits: Arc<dyn RateLimitStore>,
    /// Device-proof ids seen within their window (in memory unless replaced by a shared
    /// store, as several instances need).
    pub replays: Arc<dyn ReplayStore>,
}

impl Stores {
    /// Every store on one backend.
    pub fn single<B>(backend: Arc<B>) -> Stores
    where
        B: UserStore
            + DeviceStore
            + TokenStore
            + StandingStore
            + SessionStore
            + OneTimeTokenStore
            + MfaStore
            + ChallengeStore
            + RateLimitStore
            + 'static,
    {
        Stores {
            users: backend.clone(),
            devices: backend.clone(),
            tokens: backend.clone(),
            standing: backend.clone(),
            sessions: backend.clone(),
            one_time: backend.clone(),
            mfa: backend.clone(),
            challenges: backend.clone(),
            rate_limits: backend,
            replays: Arc::new(MemoryReplayStore::new()),
        }
    }

    /// Every store on one SQLite file (created and migrated if need be).
    #[cfg(feature = "sqlite")]
    pub fn sqlite(path: impl AsRef<std::path::Path>) -> Result<Stores, StoreError> {
        Ok(Stores::single(Arc::new(sqlite::SqliteStore::open(path)?)))
    }

    /// Every store on one PostgreSQL database (created and migrated if need be); with
    /// `schema`, in that schema (created if absent). See [`postgres::PostgresStore::connect`].
    #[cfg(feature = "postgres")]
    pub async fn postgres(url: &str, schema: Option<&str>) -> Result<Stores, StoreError> {
        Ok(Stores::single(Arc::new(
            postgres::PostgresStore::connect(url, schema).await?,
        )))
    }

    /// These stores with rate limits and the device-proof replay cache moved to the Redis at
    /// `url`, under keys starting with `prefix:` (see [`redis`]): what several instances
    /// must share and answer fast. Fails when Redis does not answer.
    #[cfg(feature = "redis")]
    pub async fn with_redis(self, url: &str, prefix: &str) -> Result<Stores, StoreError> {
        let connection = redis::connect(url).await?;
        Ok(Stores {
            rate_limits: Arc::new(redis::RedisRateLimits::new(connection.clone(), prefix)),
            replays: Arc::new(redis::RedisReplays::new(connection, prefix)),
            ..self
        })
    }

    /// Every store in memory (for unit tests).
    pub fn memory() -> Stores {
        Stores::single(Arc::new(memory::MemoryStore::new()))
    }
}

impl std::fmt::Debug for Stores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Stores")
    }
}

#[cfg(test)]
mod redaction_tests {
    use super::redact_url_password;

    #[test]
    fn passwords_are_hidden_and_nothing_else_changes() {
        assert_eq!(
            redact_url_password("postgres://app:s3cret@db.internal:5432/auth?sslmode=require"),
            "postgres://app:***@db.internal:5432/auth?sslmode=require"
        );
        assert_eq!(
            redact_url_password("redis://:hunter2@cache:6379/0"),
            "redis://:***@cache:6379/0"
        );
        assert_eq!(
            redact_url_password("postgres://app@db/auth"),
            "postgres://app@db/auth"
        );
        assert_eq!(
            redact_url_password("sqlite:./holdfast.db"),
            "sqlite:./holdfast.db"
        );
        // An '@' in the password: the last '@' of the authority ends the user info.
        assert_eq!(
            redact_url_password("postgres://u:p@ss@h/d"),
            "postgres://u:***@h/d"
        );
    }
}
