//! Account-wide actions a deployment triggers from its own code (an admin console, a
//! "sign out of all devices" button, account deletion): they end every session of a user
//! and tell open sync connections at once (PROTOCOL 6.5).

use super::AuthService;
use crate::events::Revocation;
use crate::exchange::ApiError;

impl AuthService {
    /// Ends every session of `user_id`: each token family with a refresh token is revoked,
    /// so refreshes fail and the sync gate closes the user's connections. Devices stay
    /// registered (the user signs in again on them). Returns how many sessions ended.
    pub async fn sign_out_everywhere(&self, user_id: &str) -> Result<usize, ApiError> {
        let until = self
            .now_secs()
            .saturating_add(self.tokens().policy().refresh_ttl_secs);
        let families = self
            .stores()
            .sessions
            .end_sessions(
                user_id,
                crate::store::SessionScope::All,
                holdfast_protocol::EndReason::SignedOutEverywhere,
                self.now_ms(),
                until,
            )
            .await?;
        tracing::info!(user = %user_id, sessions = families.len(), "signed out everywhere");
        self.publish(Revocation::UserSessions {
            user_id: user_id.to_owned(),
        })
        .await;
        Ok(families.len())
    }

    /// Deletes the account of `user_id`, which ends its sessions: every bearer route,
    /// refresh and sync admission checks that the user exists (`USER_NOT_FOUND`). Returns
    /// false when there was no such account.
    pub async fn delete_user(&self, user_id: &str) -> Result<bool, ApiError> {
        let deleted = self.stores().users.delete_user(user_id).await?;
        if deleted {
            tracing::info!(user = %user_id, "account deleted");
            self.publish(Revocation::UserDeleted {
                user_id: user_id.to_owned(),
            })
            .await;
        }
        Ok(deleted)
    }
}
