//! The multi-factor routes (PROTOCOL 9): enrolment, status, recovery codes, disabling,
//! completing a pending sign-in, and step-up.

use super::AuthService;
use crate::exchange::ApiError;

impl AuthService {
    /// Whether `user_id` has a confirmed second factor.
    pub(super) async fn mfa_enabled(&self, user_id: &str) -> Result<bool, ApiError> {
        Ok(self
            .stores()
            .mfa
            .find_totp(user_id)
            .await?
            .is_some_and(|factor| factor.enabled()))
    }
}
