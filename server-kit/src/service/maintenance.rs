//! What the service does on a timer: ending expired sessions and forgetting expired state.

use std::time::Duration;

use super::AuthService;

impl AuthService {
    /// Ends sessions past their idle timeout or lifetime ([`AuthService::expire_sessions`]),
    /// and forgets expired refresh records, revocations, challenges, rate windows, account
    /// tokens, and sessions that ended (or were last used) longer ago than a refresh token
    /// lives.
    pub async fn purge_expired(&self) -> Result<u64, crate::store::StoreError> {
        if let Err(error) = self.expire_sessions().await {
            tracing::warn!(code = %error.code, "ending expired sessions failed");
        }
        let now_ms = self.now_ms();
        let stores = self.stores();
        let session_horizon_ms = self
            .tokens()
            .policy()
            .refresh_ttl_secs
            .saturating_add(self.tokens().policy().leeway_secs)
            .saturating_mul(1000);
        Ok(stores
            .tokens
            .purge_expired_tokens(now_ms.div_euclid(1000))
            .await?
            + stores.challenges.purge_expired_challenges(now_ms).await?
            + stores.rate_limits.purge_expired_limits(now_ms).await?
            + stores.one_time.purge_expired_one_time_tokens(now_ms).await?
            + stores
                .sessions
                .purge_sessions(now_ms.saturating_sub(session_horizon_ms))
                .await?)
    }

    /// Runs [`AuthService::purge_expired`] every `period` until the task is dropped or aborted.
    pub fn spawn_maintenance(&self, period: Duration) -> tokio::task::JoinHandle<()> {
        let service = self.clone();
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(period);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                match service.purge_expired().await {
                    Ok(0) => {}
                    Ok(purged) => tracing::debug!(purged, "purged expired auth state"),
                    Err(error) => tracing::warn!(%error, "purging expired auth state failed"),
                }
            }
        })
    }
}
