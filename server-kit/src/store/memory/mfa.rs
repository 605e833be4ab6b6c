//! Second factors in memory.

use async_trait::async_trait;

use super::MemoryStore;
use crate::store::{MfaStore, StoreError, TotpFactor};

#[async_trait]
impl MfaStore for MemoryStore {
    async fn find_totp(&self, user_id: &str) -> Result<Option<TotpFactor>, StoreError> {
        Ok(self.state().totp.get(user_id).cloned())
    }

    async fn begin_totp(&self, factor: TotpFactor, recovery_hashes: Vec<String>) -> Result<bool, StoreError> {
        let mut state = self.state();
        if state.totp.get(&factor.user_id).is_some_and(TotpFactor::enabled) {
            return Ok(false);
        }
        let factor = TotpFactor {
            enabled_at_ms: None,
            last_step: None,
            ..factor
        };
        state
            .recovery_codes
            .insert(factor.user_id.clone(), recovery_hashes);
        state.totp.insert(factor.user_id.clone(), factor);
        Ok(true)
    }

    async fn confirm_totp(
        &self,
        user_id: &str,
        sealed_secret: &str,
        step: i64,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut state = self.state();
        match state.totp.get_mut(user_id) {
            Some(factor) if !factor.enabled() && factor.sealed_secret == sealed_secret => {
                factor.enabled_at_ms = Some(now_ms);
                factor.last_step = Some(step);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn accept_totp_step(&self, user_id: &str, step: i64) -> Result<bool, StoreError> {
        let mut state = self.state();
        match state.totp.get_mut(user_id) {
            Some(factor) if factor.enabled() && factor.last_step.is_none_or(|last| last < step) => {
                factor.last_step = Some(step);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn reseal_totp(&self, user_id: &str, sealed_secret: &str) -> Result<bool, StoreError> {
        let mut state = self.state();
        match state.totp.get_mut(user_id) {
            Some(factor) => {
                sealed_secret.clone_into(&mut factor.sealed_secret);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn use_recovery_code(&self, user_id: &str, hash: &str) -> Result<bool, StoreError> {
        let mut state = self.state();
        let Some(codes) = state.recovery_codes.get_mut(user_id) else {
            return Ok(false);
        };
        match codes.iter().position(|code| code == hash) {
            Some(index) => {
                codes.swap_remove(index);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn replace_recovery_codes(&self, user_id: &str, hashes: Vec<String>) -> Result<bool, StoreError> {
        let mut state = self.state();
        if !state.totp.get(user_id).is_some_and(TotpFactor::enabled) {
            return Ok(false);
        }
        state.recovery_codes.insert(user_id.to_owned(), hashes);
        Ok(true)
    }

    async fn count_recovery_codes(&self, user_id: &str) -> Result<u32, StoreError> {
        let state = self.state();
        let count = state.recovery_codes.get(user_id).map_or(0, Vec::len);
        Ok(u32::try_from(count).unwrap_or(u32::MAX))
    }

    async fn delete_totp(&self, user_id: &str) -> Result<bool, StoreError> {
        let mut state = self.state();
        state.recovery_codes.remove(user_id);
        Ok(state.totp.remove(user_id).is_some())
    }
}
