//! Challenges and rate limits in memory.

use async_trait::async_trait;

use super::{MemoryStore, Window};
use crate::store::{
    ChallengeStore, ConsumeOutcome, RateDecision, RateLimit, RateLimitStore, StoreError, slide_window,
};

#[async_trait]
impl ChallengeStore for MemoryStore {
    async fn put_challenge(
        &self,
        challenge: &str,
        device_id: &str,
        expires_at_ms: i64,
    ) -> Result<(), StoreError> {
        self.state()
            .challenges
            .insert(challenge.to_owned(), (device_id.to_owned(), expires_at_ms));
        Ok(())
    }

    async fn consume_challenge(
        &self,
        challenge: &str,
        device_id: &str,
        now_ms: i64,
    ) -> Result<ConsumeOutcome, StoreError> {
        let mut state = self.state();
        let Some((bound_to, expires_at_ms)) = state.challenges.get(challenge) else {
            return Ok(ConsumeOutcome::Invalid);
        };
        if now_ms > *expires_at_ms {
            state.challenges.remove(challenge);
            return Ok(ConsumeOutcome::Invalid);
        }
        if bound_to != device_id {
            return Ok(ConsumeOutcome::WrongDevice);
        }
        state.challenges.remove(challenge);
        Ok(ConsumeOutcome::Consumed)
    }

    async fn purge_expired_challenges(&self, now_ms: i64) -> Result<u64, StoreError> {
        let mut state = self.state();
        let before = state.challenges.len();
        state
            .challenges
            .retain(|_, (_, expires_at_ms)| *expires_at_ms >= now_ms);
        Ok((before - state.challenges.len()) as u64)
    }
}

#[async_trait]
impl RateLimitStore for MemoryStore {
    async fn hit(&self, key: &str, limit: RateLimit, now_ms: i64) -> Result<RateDecision, StoreError> {
        let mut state = self.state();
        let mut hits = state.windows.get(key).map(|w| w.hits.clone()).unwrap_or_default();
        let (decision, expires_at_ms) = slide_window(&mut hits, limit, now_ms);
        // A refused attempt changes nothing, and creates no window.
        if let Some(expires_at_ms) = expires_at_ms {
            state
                .windows
                .insert(key.to_owned(), Window { hits, expires_at_ms });
        }
        Ok(decision)
    }

    async fn reset(&self, key: &str) -> Result<(), StoreError> {
        self.state().windows.remove(key);
        Ok(())
    }

    async fn block(&self, key: &str, until_ms: i64) -> Result<(), StoreError> {
        let mut state = self.state();
        let until = state.blocks.entry(key.to_owned()).or_insert(until_ms);
        *until = (*until).max(until_ms);
        Ok(())
    }

    async fn blocked_until(&self, key: &str, now_ms: i64) -> Result<Option<i64>, StoreError> {
        Ok(self
            .state()
            .blocks
            .get(key)
            .copied()
            .filter(|until| *until > now_ms))
    }

    async fn purge_expired_limits(&self, now_ms: i64) -> Result<u64, StoreError> {
        let mut state = self.state();
        let before = state.windows.len() + state.blocks.len();
        state.windows.retain(|_, window| window.expires_at_ms > now_ms);
        state.blocks.retain(|_, until| *until > now_ms);
        Ok((before - state.windows.len() - state.blocks.len()) as u64)
    }
}
