//! Device challenges in memory.

use async_trait::async_trait;

use super::MemoryStore;
use crate::store::{ChallengeStore, ConsumeOutcome, StoreError};

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
