//! Every store in memory, behind one mutex: for unit tests, not for serving.
//!
//! It follows the same contract as the SQLite backend (the conformance suite in
//! `tests/store_conformance.rs` runs against both), so a test written against it holds on
//! the real thing.

mod guards;
mod mfa;
mod sessions;
mod standing;

use super::{
    ChildPair, DeviceRecord, DeviceStore, NewDevice, NewUser, OneTimeToken, RefreshRecord, RegistrationPlan,
    RotateOutcome, SessionRecord, StoreError, StoredPassword, TokenStore, UserQuery, UserRecord, UserStore,
    plan_registration,
};
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// Every store in memory. Cheap to create; nothing survives it.
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    users: HashMap<String, UserRecord>,
    /// Lower-cased email to user id: the uniqueness index.
    emails: HashMap<String, String>,
    /// With an insertion sequence, so equal creation times still list in a stable order.
    devices: HashMap<String, (u64, DeviceRecord)>,
    next_device_seq: u64,
    refresh: HashMap<String, RefreshState>,
    revoked_tokens: HashMap<String, i64>,
    revoked_families: HashMap<String, i64>,
    /// Challenge to (device id, expiry ms).
    challenges: HashMap<String, (String, i64)>,
    /// Timestamps (ms) of the counted attempts still in some window.
    windows: HashMap<String, Window>,
    blocks: HashMap<String, i64>,
    sessions: HashMap<String, SessionRecord>,
    /// By hash.
    one_time: HashMap<String, OneTimeToken>,
    /// By user id.
    totp: HashMap<String, super::TotpFactor>,
    /// By user id: the hashes of the unused recovery codes.
    recovery_codes: HashMap<String, Vec<String>>,
}

#[derive(Debug)]
struct RefreshState {
    record: RefreshRecord,
    rotated: Option<(i64, ChildPair)>,
}

#[derive(Debug)]
struct Window {
    hits: Vec<i64>,
    /// When the newest hit leaves its window, so purging needs no window length.
    expires_at_ms: i64,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// The state; a panic in another test thread must not cascade, and no operation leaves
    /// the state half-changed at a point where it could panic.
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl UserStore for MemoryStore {
    async fn create_user(&self, user: NewUser) -> Result<UserRecord, StoreError> {
        let mut state = self.state();
        if state.emails.contains_key(&user.email) {
            return Err(StoreError::EmailTaken);
        }
        if state.users.contains_key(&user.id) {
            return Err(StoreError::backend("create_user", "user id exists"));
        }
        let record = user.to_record();
        state.emails.insert(record.email.clone(), record.id.clone());
        state.users.insert(record.id.clone(), record.clone());
        Ok(record)
    }

    async fn find_user_by_email(&self, email: &str) -> Result<Option<UserRecord>, StoreError> {
        let state = self.state();
        Ok(state
            .emails
            .get(email)
            .and_then(|id| state.users.get(id))
            .cloned())
    }

    async fn find_user(&self, id: &str) -> Result<Option<UserRecord>, StoreError> {
        Ok(self.state().users.get(id).cloned())
    }

    async fn set_password(&self, id: &str, password: StoredPassword) -> Result<(), StoreError> {
        if let Some(user) = self.state().users.get_mut(id) {
            user.password = password;
        }
        Ok(())
    }

    async fn delete_user(&self, id: &str) -> Result<bool, StoreError> {
        let mut state = self.state();
        let Some(user) = state.users.remove(id) else {
            return Ok(false);
        };
        state.emails.remove(&user.email);
        state.devices.retain(|_, (_, device)| device.user_id != id);
        state.totp.remove(id);
        state.recovery_codes.remove(id);
        Ok(true)
    }

    async fn set_email_verified(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self
            .state()
            .users
            .get_mut(id)
            .map(|user| user.email_verified = true)
            .is_some())
    }

    async fn set_disabled(&self, id: &str, disabled_at_ms: Option<i64>) -> Result<bool, StoreError> {
        Ok(self
            .state()
            .users
            .get_mut(id)
            .map(|user| user.disabled_at_ms = disabled_at_ms)
            .is_some())
    }

    async fn list_users(&self, query: &UserQuery) -> Result<Vec<UserRecord>, StoreError> {
        let state = self.state();
        let mut users: Vec<UserRecord> = state
            .users
            .values()
            .filter(|user| query.admits(&user.email))
            .cloned()
            .collect();
        users.sort_by(|a, b| a.email.cmp(&b.email));
        users.truncate(query.capped_limit() as usize);
        Ok(users)
    }
}

#[async_trait]
impl DeviceStore for MemoryStore {
    async fn register_device(&self, device: NewDevice) -> Result<DeviceRecord, StoreError> {
        let mut state = self.state();
        let existing = state.devices.get(&device.id).map(|(_, record)| record);
        match plan_registration(existing, &device)? {
            RegistrationPlan::Keep => Ok(existing.cloned().ok_or_else(vanished)?),
            RegistrationPlan::AttachKey => {
                let (_, record) = state.devices.get_mut(&device.id).ok_or_else(vanished)?;
                record.key = device.key;
                record.name = device.name;
                Ok(record.clone())
            }
            RegistrationPlan::Insert => {
                let record = device.into_record();
                let seq = state.next_device_seq;
                state.next_device_seq += 1;
                state.devices.insert(record.id.clone(), (seq, record.clone()));
                Ok(record)
            }
        }
    }

    async fn find_device(&self, id: &str) -> Result<Option<DeviceRecord>, StoreError> {
        Ok(self.state().devices.get(id).map(|(_, record)| record.clone()))
    }

    async fn list_devices(&self, user_id: &str) -> Result<Vec<DeviceRecord>, StoreError> {
        let state = self.state();
        let mut devices: Vec<_> = state
            .devices
            .values()
            .filter(|(_, device)| device.user_id == user_id)
            .collect();
        devices.sort_by_key(|(seq, device)| (device.created_at_ms, *seq));
        Ok(devices.into_iter().map(|(_, device)| device.clone()).collect())
    }

    async fn revoke_device(&self, id: &str, user_id: &str) -> Result<bool, StoreError> {
        match self.state().devices.get_mut(id) {
            Some((_, device)) if device.user_id == user_id => {
                device.revoked = true;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn touch_device(&self, id: &str, now_ms: i64) -> Result<(), StoreError> {
        if let Some((_, device)) = self.state().devices.get_mut(id) {
            device.last_seen_at_ms = device.last_seen_at_ms.max(now_ms);
        }
        Ok(())
    }
}

/// A record found a moment ago under the same lock is gone: cannot happen, but is not worth
/// a panic.
fn vanished() -> StoreError {
    StoreError::backend("register_device", "record vanished under the lock")
}

#[async_trait]
impl TokenStore for MemoryStore {
    async fn insert_refresh(&self, record: RefreshRecord) -> Result<(), StoreError> {
        let mut state = self.state();
        if state.refresh.contains_key(&record.jti) {
            return Err(StoreError::backend("insert_refresh", "jti exists"));
        }
        state.refresh.insert(
            record.jti.clone(),
            RefreshState {
                record,
                rotated: None,
            },
        );
        Ok(())
    }

    async fn rotate_refresh(
        &self,
        parent_jti: &str,
        child: RefreshRecord,
        pair: ChildPair,
        now_ms: i64,
    ) -> Result<RotateOutcome, StoreError> {
        let mut state = self.state();
        let Some(parent) = state.refresh.get(parent_jti) else {
            return Ok(RotateOutcome::Unknown);
        };
        // A revoked family, or this token revoked on its own (a password change renewed
        // its session), cannot rotate.
        if state.revoked_families.contains_key(&parent.record.family)
            || state.revoked_tokens.contains_key(parent_jti)
        {
            return Ok(RotateOutcome::FamilyRevoked);
        }
        if let Some((rotated_at_ms, pair)) = &parent.rotated {
            let child_rotated = state
                .refresh
                .get(&pair.refresh_jti)
                .is_some_and(|child| child.rotated.is_some());
            return Ok(RotateOutcome::AlreadyRotated {
                rotated_at_ms: *rotated_at_ms,
                pair: pair.clone(),
                child_rotated,
            });
        }
        if state.refresh.contains_key(&child.jti) {
            return Err(StoreError::backend("rotate_refresh", "child jti exists"));
        }
        if let Some(parent) = state.refresh.get_mut(parent_jti) {
            parent.rotated = Some((now_ms, pair));
        }
        if let Some(session) = state.sessions.get_mut(&child.family) {
            session.last_used_at_ms = session.last_used_at_ms.max(now_ms);
        }
        state.refresh.insert(
            child.jti.clone(),
            RefreshState {
                record: child,
                rotated: None,
            },
        );
        Ok(RotateOutcome::Rotated)
    }

    async fn revoke_token(&self, jti: &str, expires_at: i64) -> Result<(), StoreError> {
        let mut state = self.state();
        let until = state.revoked_tokens.entry(jti.to_owned()).or_insert(expires_at);
        *until = (*until).max(expires_at);
        Ok(())
    }

    async fn revoke_family(&self, family: &str, expires_at: i64) -> Result<(), StoreError> {
        let mut state = self.state();
        let until = state
            .revoked_families
            .entry(family.to_owned())
            .or_insert(expires_at);
        *until = (*until).max(expires_at);
        Ok(())
    }

    async fn is_revoked(&self, jti: &str, family: Option<&str>) -> Result<bool, StoreError> {
        let state = self.state();
        Ok(state.revoked_tokens.contains_key(jti)
            || family.is_some_and(|family| state.revoked_families.contains_key(family)))
    }

    async fn purge_expired_tokens(&self, now: i64) -> Result<u64, StoreError> {
        let mut state = self.state();
        let before = state.refresh.len() + state.revoked_tokens.len() + state.revoked_families.len();
        state.refresh.retain(|_, token| token.record.expires_at >= now);
        state.revoked_tokens.retain(|_, expires_at| *expires_at >= now);
        state.revoked_families.retain(|_, expires_at| *expires_at >= now);
        let after = state.refresh.len() + state.revoked_tokens.len() + state.revoked_families.len();
        Ok((before - after) as u64)
    }
}
