//! Sessions (PROTOCOL 8) and single-use account tokens (password reset, email
//! verification): their records and the traits the backends implement.
//!
//! A session is one refresh-token family: [`SessionStore::start_session`] records it with
//! its first refresh token, rotation ([`super::TokenStore::rotate_refresh`]) moves its
//! `last_used_at_ms`, and every way it ends ([`SessionStore::end_sessions`]) records why and
//! revokes the family in the same transaction, so the bearer routes' revocation check and
//! the session list can never disagree. Sessions and token state therefore live on one
//! backend: [`super::Stores::single`] puts them there.

use async_trait::async_trait;
use holdfast_protocol::EndReason;
use holdfast_protocol::wire;

use super::{RefreshRecord, StoreError};
use crate::tokens::Assurance;

/// The server's limits on sessions (PROTOCOL 8). `None` is no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SessionLimits {
    /// A session not refreshed for this long (ms) is dead: its refresh answers
    /// `SESSION_EXPIRED`.
    pub idle_timeout_ms: Option<i64>,
    /// A session older than this (ms from its sign-in) is dead, however often refreshed.
    pub max_lifetime_ms: Option<i64>,
    /// At most this many live sessions per user: a sign-in beyond it ends the least
    /// recently used.
    pub max_per_user: Option<u32>,
}

impl SessionLimits {
    /// Whether a session that has not ended is past a limit at `now_ms`.
    pub fn expired(&self, created_at_ms: i64, last_used_at_ms: i64, now_ms: i64) -> bool {
        let past =
            |since: i64, limit: Option<i64>| limit.is_some_and(|limit| now_ms.saturating_sub(since) > limit);
        past(last_used_at_ms, self.idle_timeout_ms) || past(created_at_ms, self.max_lifetime_ms)
    }

    /// The earliest `last_used_at_ms` and `created_at_ms` a live session may have at
    /// `now_ms` (`i64::MIN` when unlimited): what backends put in their queries.
    pub fn live_bounds(&self, now_ms: i64) -> (i64, i64) {
        let bound = |limit: Option<i64>| limit.map_or(i64::MIN, |limit| now_ms.saturating_sub(limit));
        (bound(self.idle_timeout_ms), bound(self.max_lifetime_ms))
    }
}

/// A session to record at sign-in (sign-up, sign-in, device re-login).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSession {
    /// Its id: the token family.
    pub id: String,
    /// Its user.
    pub user_id: String,
    /// Its device.
    pub device_id: String,
    /// Sign-in time, ms.
    pub created_at_ms: i64,
    /// The client address of the sign-in, when known.
    pub ip_address: Option<String>,
    /// The user agent of the sign-in (at most 512 bytes), when sent.
    pub user_agent: Option<String>,
    /// How the user proved who they are (PROTOCOL 9): what the session's tokens say.
    pub assurance: Assurance,
}

impl NewSession {
    /// The record a store keeps for it: live, not used since its sign-in.
    pub fn to_record(&self) -> SessionRecord {
        SessionRecord {
            id: self.id.clone(),
            user_id: self.user_id.clone(),
            device_id: self.device_id.clone(),
            created_at_ms: self.created_at_ms,
            last_used_at_ms: self.created_at_ms,
            ip_address: self.ip_address.clone(),
            user_agent: self.user_agent.clone(),
            assurance: self.assurance.clone(),
            ended: None,
        }
    }
}

/// How and when a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionEnding {
    /// When, ms.
    pub at_ms: i64,
    /// Why.
    pub reason: EndReason,
}

/// A stored session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// Its id: the token family.
    pub id: String,
    /// Its user.
    pub user_id: String,
    /// Its device.
    pub device_id: String,
    /// Sign-in time, ms.
    pub created_at_ms: i64,
    /// Last refresh, ms (`created_at_ms` until the first).
    pub last_used_at_ms: i64,
    /// The client address of the sign-in.
    pub ip_address: Option<String>,
    /// The user agent of the sign-in.
    pub user_agent: Option<String>,
    /// How the user proved who they are, as of the session's latest tokens (a second
    /// factor or a step-up changes it; a refresh does not).
    pub assurance: Assurance,
    /// Set once the session ended.
    pub ended: Option<SessionEnding>,
}

impl SessionRecord {
    /// The session as the protocol lists it; `current` when it is the caller's.
    pub fn to_wire(&self, current: bool) -> wire::Session {
        wire::Session {
            id: self.id.clone(),
            device_id: self.device_id.clone(),
            created_at: self.created_at_ms,
            last_used_at: self.last_used_at_ms,
            ip_address: self.ip_address.clone(),
            user_agent: self.user_agent.clone(),
            aal: self.assurance.aal,
            current,
        }
    }
}

/// Which of a user's sessions [`SessionStore::end_sessions`] ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionScope<'a> {
    /// The session with this id (when it is the user's).
    One(&'a str),
    /// Every session but this one.
    AllBut(&'a str),
    /// Every session on this device.
    Device(&'a str),
    /// Every session.
    All,
}

impl<'a> SessionScope<'a> {
    /// The scope as the SQL backends bind it: `(one, all_but, device)`, each `None` unless
    /// the scope is that kind (all three `None`: every session).
    pub fn as_filters(self) -> (Option<&'a str>, Option<&'a str>, Option<&'a str>) {
        match self {
            SessionScope::One(id) => (Some(id), None, None),
            SessionScope::AllBut(id) => (None, Some(id), None),
            SessionScope::Device(id) => (None, None, Some(id)),
            SessionScope::All => (None, None, None),
        }
    }
}

/// A session that [`SessionStore`] ended: whose, and which.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndedSession {
    /// The user.
    pub user_id: String,
    /// The session (family) id.
    pub id: String,
}

/// Sessions. Implemented by the backend that holds [`super::TokenStore`]'s state: ending a
/// session revokes its family there, atomically.
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Records a new session and its first refresh token, atomically. With
    /// `limits.max_per_user`, when the user already has that many live sessions (not ended,
    /// not past a limit at the session's `created_at_ms`), the least recently used ones end
    /// ([`EndReason::SessionLimit`]) in the same transaction, their families revoked until
    /// `revoke_until` (seconds). Returns the sessions so ended.
    async fn start_session(
        &self,
        session: NewSession,
        first: RefreshRecord,
        limits: SessionLimits,
        revoke_until: i64,
    ) -> Result<Vec<EndedSession>, StoreError>;

    /// A session by id, live or ended.
    async fn find_session(&self, id: &str) -> Result<Option<SessionRecord>, StoreError>;

    /// The session that decides whether `device_id` may sign in again with its key alone:
    /// its most recently started session that has not ended, if any, else its most recently
    /// started one (greatest `created_at_ms`, then greatest id).
    async fn latest_session_on_device(&self, device_id: &str) -> Result<Option<SessionRecord>, StoreError>;

    /// The user's live sessions at `now_ms` (not ended, not past a limit), newest sign-in
    /// first.
    async fn list_sessions(
        &self,
        user_id: &str,
        limits: SessionLimits,
        now_ms: i64,
    ) -> Result<Vec<SessionRecord>, StoreError>;

    /// Ends the sessions of `user_id` that `scope` selects and that have not ended: records
    /// `reason` at `now_ms` and revokes each family until `revoke_until` (seconds), in one
    /// transaction. Returns the sessions ended (none that had already ended).
    async fn end_sessions(
        &self,
        user_id: &str,
        scope: SessionScope<'_>,
        reason: EndReason,
        now_ms: i64,
        revoke_until: i64,
    ) -> Result<Vec<EndedSession>, StoreError>;

    /// Ends every session past a limit at `now_ms` ([`EndReason::Expired`]), as
    /// [`SessionStore::end_sessions`] does. Returns them.
    async fn end_expired_sessions(
        &self,
        limits: SessionLimits,
        now_ms: i64,
        revoke_until: i64,
    ) -> Result<Vec<EndedSession>, StoreError>;

    /// A fresh pair for a live session (a password change, a second factor, a step-up):
    /// revokes, until `revoke_until` (seconds), every refresh token of the family that has
    /// not expired, rotated or not, inserts `next` and records `assurance` as the session's,
    /// atomically. Returns `false`, changing nothing, when the session is unknown or ended.
    async fn renew_session(
        &self,
        next: RefreshRecord,
        assurance: &Assurance,
        revoke_until: i64,
    ) -> Result<bool, StoreError>;

    /// Forgets sessions that ended, or were last used, before `before_ms`.
    async fn purge_sessions(&self, before_ms: i64) -> Result<u64, StoreError>;
}

/// What a single-use account token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OneTimeKind {
    /// A password reset (1 h).
    PasswordReset,
    /// An email verification (24 h).
    EmailVerification,
}

impl OneTimeKind {
    /// The storage spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            OneTimeKind::PasswordReset => "password_reset",
            OneTimeKind::EmailVerification => "email_verification",
        }
    }

    /// Parses a storage spelling.
    pub fn parse(text: &str) -> Option<OneTimeKind> {
        [OneTimeKind::PasswordReset, OneTimeKind::EmailVerification]
            .into_iter()
            .find(|kind| kind.as_str() == text)
    }
}

/// A single-use account token as stored: only the SHA-256 of the token (hex), never the
/// token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OneTimeToken {
    /// SHA-256 of the token, lowercase hex.
    pub hash: String,
    /// What it is for.
    pub kind: OneTimeKind,
    /// Whose it is.
    pub user_id: String,
    /// The email it was sent to (a verification confirms this address only).
    pub email: String,
    /// Issue time, ms.
    pub created_at_ms: i64,
    /// Expiry, ms.
    pub expires_at_ms: i64,
}

/// Single-use account tokens.
#[async_trait]
pub trait OneTimeTokenStore: Send + Sync {
    /// Stores `token` unless its user already has `max_live` tokens of its kind that have
    /// not expired at `now_ms`, atomically. Returns whether it was stored.
    async fn put_one_time_token(
        &self,
        token: OneTimeToken,
        max_live: u32,
        now_ms: i64,
    ) -> Result<bool, StoreError>;

    /// Removes the token of `kind` whose hash is `hash` and returns it, when it has not
    /// expired at `now_ms`, atomically (so two uses of one token cannot both succeed). An
    /// expired one is removed and `None` returned.
    async fn take_one_time_token(
        &self,
        kind: OneTimeKind,
        hash: &str,
        now_ms: i64,
    ) -> Result<Option<OneTimeToken>, StoreError>;

    /// Removes every token of `kind` of `user_id` (a reset kills the other reset links).
    /// Returns how many.
    async fn discard_one_time_tokens(&self, user_id: &str, kind: OneTimeKind) -> Result<u64, StoreError>;

    /// Removes tokens that expired before `now_ms`.
    async fn purge_expired_one_time_tokens(&self, now_ms: i64) -> Result<u64, StoreError>;
}

/// A session's stored end (time and [`EndReason::as_str`] spelling) back into a
/// [`SessionEnding`]; a reason this build does not know, or a time without a reason (or the
/// reverse), is corrupt data.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn read_ending(
    at_ms: Option<i64>,
    reason: Option<String>,
) -> Result<Option<SessionEnding>, StoreError> {
    match (at_ms, reason) {
        (None, None) => Ok(None),
        (Some(at_ms), Some(reason)) => match EndReason::parse(&reason) {
            Some(reason) => Ok(Some(SessionEnding { at_ms, reason })),
            None => Err(StoreError::Corrupt(format!(
                "unknown session end reason `{reason}`"
            ))),
        },
        _ => Err(StoreError::Corrupt(
            "a session has an end time without a reason, or a reason without a time".into(),
        )),
    }
}

/// A session's stored `amr` (methods joined by `,`, empty for none) back into a list.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn read_amr(text: &str) -> Vec<String> {
    text.split(',')
        .filter(|method| !method.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A session's `amr` as stored: the methods joined by `,`.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn write_amr(amr: &[String]) -> String {
    amr.join(",")
}

/// A single-use token's stored kind back into a [`OneTimeKind`].
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn read_kind(text: &str) -> Result<OneTimeKind, StoreError> {
    OneTimeKind::parse(text)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown one-time token kind `{text}`")))
}

/// A session's stored assurance level back into a `u8`.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn read_aal(aal: i64) -> Result<u8, StoreError> {
    u8::try_from(aal)
        .map_err(|_| StoreError::Corrupt(format!("session assurance level {aal} is out of range")))
}

#[cfg(test)]
#[path = "sessions_tests.rs"]
mod tests;
