//! [`StandingStore`]: everything the standing of an access token depends on, in one read.

use async_trait::async_trait;

use super::{DeviceRecord, StoreError, UserRecord};

/// What [`StandingStore::standing`] is asked about: an access token's user, device, `jti`
/// and family (its `sub`, `dev`, `jti` and `fam` claims).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StandingQuery<'a> {
    /// The token's user (`sub`).
    pub user_id: &'a str,
    /// The token's device (`dev`).
    pub device_id: &'a str,
    /// The token's id (`jti`).
    pub jti: &'a str,
    /// The token's family (`fam`), when it has one.
    pub family: Option<&'a str>,
}

/// The stored state a token's standing is judged from, read together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StandingRecord {
    /// Whether the token's `jti`, or its family, is revoked
    /// (as [`super::TokenStore::is_revoked`]).
    pub revoked: bool,
    /// The user, as [`super::UserStore::find_user`] finds it.
    pub user: Option<UserRecord>,
    /// The device, as [`super::DeviceStore::find_device`] finds it (whoever owns it).
    pub device: Option<DeviceRecord>,
}

impl StandingRecord {
    /// Whether a token of `user_id` passes every standing check on this record: not
    /// revoked, the user there and not disabled, its device (when known) the user's and
    /// not revoked. Which refusal a failing record gets is the authenticator's to say.
    pub fn admits(&self, user_id: &str) -> bool {
        !self.revoked
            && self
                .user
                .as_ref()
                .is_some_and(|user| user.disabled_at_ms.is_none())
            && self
                .device
                .as_ref()
                .is_none_or(|device| device.user_id == user_id && !device.revoked)
    }
}

/// The read every bearer request needs when its standing is not cached: revocation, user
/// and device in one hop to the backend (one worker round trip and read transaction on
/// SQLite, one statement on PostgreSQL), instead of three.
///
/// It must be on the same backend as the [`super::UserStore`], [`super::DeviceStore`] and
/// [`super::TokenStore`] it reads ([`super::Stores::single`] puts it there).
#[async_trait]
pub trait StandingStore: Send + Sync {
    /// The revocation state of `query.jti` and `query.family`, the user `query.user_id` and
    /// the device `query.device_id`, read consistently.
    async fn standing(&self, query: StandingQuery<'_>) -> Result<StandingRecord, StoreError>;
}
