//! The records the stores keep, and the registration rules every backend shares.

use holdfast_protocol::wire;
use std::fmt;

/// A password hash as stored, in Kora's two columns: `hash` and `salt`.
///
/// Kora's PBKDF2-SHA512 hashes keep 128 hex characters in `hash` and the 64-hex-character
/// salt in `salt`; Argon2id hashes keep the PHC string in `hash` (it carries its own salt)
/// and an empty `salt`.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredPassword {
    /// The hash: hex (PBKDF2) or a PHC string (Argon2id).
    pub hash: String,
    /// The hex salt (PBKDF2), or empty (Argon2id).
    pub salt: String,
}

impl fmt::Debug for StoredPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StoredPassword(<redacted>)")
    }
}

/// An account to create.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// New user id (UUID v4).
    pub id: String,
    /// Lower-cased email.
    pub email: String,
    /// Sanitized display name.
    pub name: Option<String>,
    /// Creation time, ms.
    pub created_at_ms: i64,
    /// Password hash.
    pub password: StoredPassword,
    /// The application's data about the user (a JSON object), checked by the caller.
    pub metadata: Option<serde_json::Value>,
}

/// A user's metadata as a store keeps it (JSON text) back into JSON; text that is not JSON
/// (edited in the database) reads as none, with a warning, rather than failing the user.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn read_metadata(text: Option<String>) -> Option<serde_json::Value> {
    let text = text?;
    match serde_json::from_str(&text) {
        Ok(metadata) => Some(metadata),
        Err(_) => {
            tracing::warn!("a user's stored metadata is not JSON; it is ignored");
            None
        }
    }
}

impl NewUser {
    /// The account as a store records it (not verified yet).
    pub fn to_record(&self) -> UserRecord {
        UserRecord {
            id: self.id.clone(),
            email: self.email.clone(),
            name: self.name.clone(),
            email_verified: false,
            created_at_ms: self.created_at_ms,
            password: self.password.clone(),
            metadata: self.metadata.clone(),
            disabled_at_ms: None,
        }
    }
}

/// A stored account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// User id.
    pub id: String,
    /// Lower-cased email.
    pub email: String,
    /// Display name.
    pub name: Option<String>,
    /// Whether the email was verified.
    pub email_verified: bool,
    /// Creation time, ms.
    pub created_at_ms: i64,
    /// Password hash.
    pub password: StoredPassword,
    /// The application's data about the user, given at sign-up.
    pub metadata: Option<serde_json::Value>,
    /// When an operator disabled the account, ms; `None` while it is enabled.
    pub disabled_at_ms: Option<i64>,
}

/// Which accounts [`super::UserStore::list_users`] lists: in email order, after `after`
/// (an email, for paging), those whose email contains `email_contains`, at most `limit`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserQuery {
    /// Only emails containing this (lower-cased) text.
    pub email_contains: Option<String>,
    /// Only emails after this one (the last of the previous page).
    pub after: Option<String>,
    /// At most this many (a backend may cap it at 1000).
    pub limit: u32,
}

impl UserQuery {
    /// Whether `email` is in this query's page range and filter (ignoring the limit).
    pub fn admits(&self, email: &str) -> bool {
        self.after.as_deref().is_none_or(|after| email > after)
            && self
                .email_contains
                .as_deref()
                .is_none_or(|text| email.contains(text))
    }

    /// The limit, capped at 1000.
    pub fn capped_limit(&self) -> u32 {
        self.limit.min(1000)
    }
}

impl UserRecord {
    /// The user as the protocol describes it.
    pub fn to_wire(&self) -> wire::User {
        wire::User {
            id: self.id.clone(),
            email: self.email.clone(),
            name: self.name.clone(),
            email_verified: self.email_verified,
            created_at: self.created_at_ms,
            metadata: self.metadata.clone(),
        }
    }
}

/// A device key as registered: the JWK string as the client sent it, and its thumbprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceKey {
    /// JWK JSON string, kept as sent (Kora clients compare it).
    pub jwk: String,
    /// RFC 7638 thumbprint.
    pub thumbprint: String,
}

/// A device to register.
#[derive(Debug, Clone)]
pub struct NewDevice {
    /// Device id.
    pub id: String,
    /// Owner.
    pub user_id: String,
    /// Key, when the client sent one.
    pub key: Option<DeviceKey>,
    /// Sanitized display name.
    pub name: String,
    /// Now, ms.
    pub now_ms: i64,
}

impl NewDevice {
    /// The record a fresh registration stores: not revoked, created and seen now.
    pub fn into_record(self) -> DeviceRecord {
        DeviceRecord {
            id: self.id,
            user_id: self.user_id,
            key: self.key,
            name: self.name,
            revoked: false,
            created_at_ms: self.now_ms,
            last_seen_at_ms: self.now_ms,
        }
    }
}

/// A registered device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRecord {
    /// Device id.
    pub id: String,
    /// Owner.
    pub user_id: String,
    /// Key, when registered with one.
    pub key: Option<DeviceKey>,
    /// Display name.
    pub name: String,
    /// Whether revoked.
    pub revoked: bool,
    /// Creation time, ms.
    pub created_at_ms: i64,
    /// Last seen, ms.
    pub last_seen_at_ms: i64,
}

impl DeviceRecord {
    /// The device as the protocol describes it (`publicKey` is `""` without a key).
    pub fn to_wire(&self) -> wire::Device {
        wire::Device {
            id: self.id.clone(),
            user_id: self.user_id.clone(),
            public_key: self.key.as_ref().map(|k| k.jwk.clone()).unwrap_or_default(),
            name: self.name.clone(),
            revoked: self.revoked,
            created_at: self.created_at_ms,
            last_seen_at: self.last_seen_at_ms,
        }
    }

    /// The key thumbprint, when the device has a key.
    pub fn thumbprint(&self) -> Option<&str> {
        self.key.as_ref().map(|k| k.thumbprint.as_str())
    }
}

/// What a backend does to register a device, decided by [`plan_registration`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistrationPlan {
    /// Insert a new record.
    Insert,
    /// Attach the new key (and name) to the existing keyless record.
    AttachKey,
    /// Keep the existing record as it is.
    Keep,
}

/// The registration rules (PROTOCOL section 7: no device id shared across accounts, no
/// silent key replacement), shared by every backend so they cannot drift apart.
pub fn plan_registration(
    existing: Option<&DeviceRecord>,
    new: &NewDevice,
) -> Result<RegistrationPlan, super::StoreError> {
    use super::StoreError;
    let Some(existing) = existing else {
        return Ok(RegistrationPlan::Insert);
    };
    if existing.user_id != new.user_id {
        return Err(StoreError::DeviceConflict);
    }
    if existing.revoked {
        return Err(StoreError::DeviceRevoked);
    }
    match (&existing.key, &new.key) {
        (_, None) => Ok(RegistrationPlan::Keep),
        (None, Some(_)) => Ok(RegistrationPlan::AttachKey),
        (Some(old), Some(new)) if old.thumbprint == new.thumbprint => Ok(RegistrationPlan::Keep),
        (Some(_), Some(_)) => Err(StoreError::DeviceConflict),
    }
}

/// A refresh token's rotation state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshRecord {
    /// The token's `jti`.
    pub jti: String,
    /// Its family (`fam`).
    pub family: String,
    /// Its user.
    pub user_id: String,
    /// Its device.
    pub device_id: String,
    /// `iat`, seconds.
    pub issued_at: i64,
    /// `exp`, seconds.
    pub expires_at: i64,
    /// `cnf.jkt`, when bound.
    pub jkt: Option<String>,
}

/// The children a refresh token was rotated into. Holds ids and times only, never a token:
/// HS256 is deterministic, so the same claims re-signed give the same tokens (PROTOCOL 6.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildPair {
    /// The child access token's `jti`.
    pub access_jti: String,
    /// The child refresh token's `jti`.
    pub refresh_jti: String,
    /// `iat` of both, seconds.
    pub issued_at: i64,
    /// `exp` of the access token, seconds.
    pub access_expires_at: i64,
    /// `exp` of the refresh token, seconds.
    pub refresh_expires_at: i64,
}

/// The result of [`super::TokenStore::rotate_refresh`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RotateOutcome {
    /// The parent was consumed and the child inserted.
    Rotated,
    /// No such refresh token is known (never issued here, or purged).
    Unknown,
    /// The token's family, or the token itself, is revoked.
    FamilyRevoked,
    /// The parent was already rotated.
    AlreadyRotated {
        /// When it was rotated, ms.
        rotated_at_ms: i64,
        /// The children it was rotated into.
        pair: ChildPair,
        /// Whether that child refresh token was itself rotated since.
        child_rotated: bool,
    },
}

/// The result of [`super::ChallengeStore::consume_challenge`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumeOutcome {
    /// The challenge was live and bound to this device; it is now used up.
    Consumed,
    /// Unknown, expired or already used.
    Invalid,
    /// Bound to another device; left in place.
    WrongDevice,
}

/// A rate limit: at most `max` attempts in any `window_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Attempts allowed in a window.
    pub max: u32,
    /// Window length, ms.
    pub window_ms: i64,
}

/// The sliding-log rule every backend applies to the attempts of one key: attempts that
/// left the window are forgotten, then the attempt is allowed and recorded if fewer than
/// `max` remain. `hits` need not be sorted (an injected clock may step back). Returns the
/// decision and, when the attempt was counted, when the key's window ends (for purging).
pub fn slide_window(hits: &mut Vec<i64>, limit: RateLimit, now_ms: i64) -> (RateDecision, Option<i64>) {
    let window_start = now_ms.saturating_sub(limit.window_ms);
    hits.retain(|&at| at > window_start);
    if hits.len() >= limit.max as usize {
        let oldest = hits.iter().copied().min().unwrap_or(now_ms);
        let retry_after_ms = oldest
            .saturating_add(limit.window_ms)
            .saturating_sub(now_ms)
            .max(1);
        return (
            RateDecision {
                allowed: false,
                retry_after_ms,
            },
            None,
        );
    }
    hits.push(now_ms);
    let newest = hits.iter().copied().max().unwrap_or(now_ms);
    (
        RateDecision {
            allowed: true,
            retry_after_ms: 0,
        },
        Some(newest.saturating_add(limit.window_ms)),
    )
}

/// The result of [`super::RateLimitStore::hit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateDecision {
    /// Whether the attempt is allowed (and was counted).
    pub allowed: bool,
    /// When refused: ms until an attempt would be allowed again; 0 when allowed.
    pub retry_after_ms: i64,
}
