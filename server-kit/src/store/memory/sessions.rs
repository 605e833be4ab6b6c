//! Sessions and single-use account tokens in memory.

use async_trait::async_trait;
use holdfast_protocol::EndReason;

use super::{MemoryStore, RefreshState, State};
use crate::store::{
    EndedSession, NewSession, OneTimeKind, OneTimeToken, OneTimeTokenStore, RefreshRecord, SessionEnding,
    SessionLimits, SessionRecord, SessionScope, SessionStore, StoreError,
};
use crate::tokens::Assurance;

impl State {
    fn live(&self, user_id: &str, limits: SessionLimits, now_ms: i64) -> Vec<&SessionRecord> {
        self.sessions
            .values()
            .filter(|s| {
                s.user_id == user_id
                    && s.ended.is_none()
                    && !limits.expired(s.created_at_ms, s.last_used_at_ms, now_ms)
            })
            .collect()
    }

    fn end(
        &mut self,
        ids: &[String],
        reason: EndReason,
        now_ms: i64,
        revoke_until: i64,
    ) -> Vec<EndedSession> {
        let mut ended = Vec::with_capacity(ids.len());
        for id in ids {
            let Some(session) = self.sessions.get_mut(id) else {
                continue;
            };
            if session.ended.is_some() {
                continue;
            }
            session.ended = Some(SessionEnding {
                at_ms: now_ms,
                reason,
            });
            ended.push(EndedSession {
                user_id: session.user_id.clone(),
                id: id.clone(),
            });
            let until = self.revoked_families.entry(id.clone()).or_insert(revoke_until);
            *until = (*until).max(revoke_until);
        }
        ended
    }

    fn insert_refresh(&mut self, record: RefreshRecord) -> Result<(), StoreError> {
        if self.refresh.contains_key(&record.jti) {
            return Err(StoreError::backend("insert_refresh", "jti exists"));
        }
        self.refresh.insert(
            record.jti.clone(),
            RefreshState {
                record,
                rotated: None,
            },
        );
        Ok(())
    }
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn start_session(
        &self,
        session: NewSession,
        first: RefreshRecord,
        limits: SessionLimits,
        revoke_until: i64,
    ) -> Result<Vec<EndedSession>, StoreError> {
        let mut state = self.state();
        if state.sessions.contains_key(&session.id) {
            return Err(StoreError::backend("start_session", "session id exists"));
        }
        let mut evict = Vec::new();
        if let Some(max) = limits.max_per_user {
            let mut live: Vec<(i64, i64, String)> = state
                .live(&session.user_id, limits, session.created_at_ms)
                .into_iter()
                .map(|s| (s.last_used_at_ms, s.created_at_ms, s.id.clone()))
                .collect();
            live.sort();
            let excess = (live.len() + 1).saturating_sub(max as usize);
            evict = live.into_iter().take(excess).map(|(_, _, id)| id).collect();
        }
        state.insert_refresh(first)?;
        let ended = state.end(
            &evict,
            EndReason::SessionLimit,
            session.created_at_ms,
            revoke_until,
        );
        state.sessions.insert(session.id.clone(), session.to_record());
        Ok(ended)
    }

    async fn find_session(&self, id: &str) -> Result<Option<SessionRecord>, StoreError> {
        Ok(self.state().sessions.get(id).cloned())
    }

    async fn latest_session_on_device(&self, device_id: &str) -> Result<Option<SessionRecord>, StoreError> {
        Ok(self
            .state()
            .sessions
            .values()
            .filter(|s| s.device_id == device_id)
            .max_by(|a, b| {
                (a.ended.is_none(), a.created_at_ms, &a.id).cmp(&(b.ended.is_none(), b.created_at_ms, &b.id))
            })
            .cloned())
    }

    async fn list_sessions(
        &self,
        user_id: &str,
        limits: SessionLimits,
        now_ms: i64,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        let state = self.state();
        let mut live: Vec<SessionRecord> = state.live(user_id, limits, now_ms).into_iter().cloned().collect();
        live.sort_by(|a, b| {
            b.created_at_ms
                .cmp(&a.created_at_ms)
                .then_with(|| a.id.cmp(&b.id))
        });
        Ok(live)
    }

    async fn end_sessions(
        &self,
        user_id: &str,
        scope: SessionScope<'_>,
        reason: EndReason,
        now_ms: i64,
        revoke_until: i64,
    ) -> Result<Vec<EndedSession>, StoreError> {
        let mut state = self.state();
        let mut ids: Vec<String> = state
            .sessions
            .values()
            .filter(|s| s.user_id == user_id && s.ended.is_none())
            .filter(|s| match scope {
                SessionScope::One(id) => s.id == id,
                SessionScope::AllBut(id) => s.id != id,
                SessionScope::Device(device) => s.device_id == device,
                SessionScope::All => true,
            })
            .map(|s| s.id.clone())
            .collect();
        ids.sort();
        Ok(state.end(&ids, reason, now_ms, revoke_until))
    }

    async fn end_expired_sessions(
        &self,
        limits: SessionLimits,
        now_ms: i64,
        revoke_until: i64,
    ) -> Result<Vec<EndedSession>, StoreError> {
        let mut state = self.state();
        let mut ids: Vec<String> = state
            .sessions
            .values()
            .filter(|s| s.ended.is_none() && limits.expired(s.created_at_ms, s.last_used_at_ms, now_ms))
            .map(|s| s.id.clone())
            .collect();
        ids.sort();
        Ok(state.end(&ids, EndReason::Expired, now_ms, revoke_until))
    }

    async fn renew_session(
        &self,
        next: RefreshRecord,
        assurance: &Assurance,
        revoke_until: i64,
    ) -> Result<bool, StoreError> {
        let mut state = self.state();
        let live = state
            .sessions
            .get(&next.family)
            .is_some_and(|s| s.ended.is_none() && s.user_id == next.user_id);
        if !live || state.revoked_families.contains_key(&next.family) {
            return Ok(false);
        }
        let now_secs = next.issued_at;
        let superseded: Vec<String> = state
            .refresh
            .values()
            .filter(|r| r.record.family == next.family && r.record.expires_at >= now_secs)
            .map(|r| r.record.jti.clone())
            .collect();
        for jti in superseded {
            let until = state.revoked_tokens.entry(jti).or_insert(revoke_until);
            *until = (*until).max(revoke_until);
        }
        if let Some(session) = state.sessions.get_mut(&next.family) {
            session.assurance = assurance.clone();
        }
        state.insert_refresh(next)?;
        Ok(true)
    }

    async fn purge_sessions(&self, before_ms: i64) -> Result<u64, StoreError> {
        let mut state = self.state();
        let before = state.sessions.len();
        state
            .sessions
            .retain(|_, s| s.ended.map_or(s.last_used_at_ms, |e| e.at_ms) >= before_ms);
        Ok((before - state.sessions.len()) as u64)
    }
}

#[async_trait]
impl OneTimeTokenStore for MemoryStore {
    async fn put_one_time_token(
        &self,
        token: OneTimeToken,
        max_live: u32,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut state = self.state();
        let live = state
            .one_time
            .values()
            .filter(|t| t.kind == token.kind && t.user_id == token.user_id && t.expires_at_ms > now_ms)
            .count();
        if live >= max_live as usize {
            return Ok(false);
        }
        if state.one_time.contains_key(&token.hash) {
            return Err(StoreError::backend("put_one_time_token", "token hash exists"));
        }
        state.one_time.insert(token.hash.clone(), token);
        Ok(true)
    }

    async fn take_one_time_token(
        &self,
        kind: OneTimeKind,
        hash: &str,
        now_ms: i64,
    ) -> Result<Option<OneTimeToken>, StoreError> {
        let mut state = self.state();
        match state.one_time.get(hash) {
            Some(token) if token.kind == kind => {}
            _ => return Ok(None),
        }
        Ok(state
            .one_time
            .remove(hash)
            .filter(|token| token.expires_at_ms > now_ms))
    }

    async fn discard_one_time_tokens(&self, user_id: &str, kind: OneTimeKind) -> Result<u64, StoreError> {
        let mut state = self.state();
        let before = state.one_time.len();
        state
            .one_time
            .retain(|_, t| !(t.user_id == user_id && t.kind == kind));
        Ok((before - state.one_time.len()) as u64)
    }

    async fn purge_expired_one_time_tokens(&self, now_ms: i64) -> Result<u64, StoreError> {
        let mut state = self.state();
        let before = state.one_time.len();
        state.one_time.retain(|_, t| t.expires_at_ms > now_ms);
        Ok((before - state.one_time.len()) as u64)
    }
}
