//! Sessions and account tokens in the configuration (PROTOCOL 8): the token policy and the
//! checks of both.

use super::{ConfigError, MAX_LIFETIME_SECS, ServerConfig};

/// Lifetimes and limits of password-reset and email-verification tokens (PROTOCOL 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountTokenPolicy {
    /// How long a reset token works, ms (default 1 h).
    pub reset_ttl_ms: i64,
    /// At most this many live reset tokens per account (default 3); a request beyond it
    /// sends nothing (and answers as always).
    pub reset_max_live: u32,
    /// How long a verification token works, ms (default 24 h).
    pub verify_ttl_ms: i64,
    /// At most this many verification mails per account per hour (default 3).
    pub verify_per_hour: u32,
}

impl Default for AccountTokenPolicy {
    fn default() -> Self {
        AccountTokenPolicy {
            reset_ttl_ms: 3_600_000,
            reset_max_live: 3,
            verify_ttl_ms: 24 * 3_600_000,
            verify_per_hour: 3,
        }
    }
}

impl ServerConfig {
    /// Session limits and account-token lifetimes that can work: positive times of at most
    /// [`MAX_LIFETIME_SECS`], at least one session per user.
    pub(super) fn validate_sessions(&self) -> Result<(), ConfigError> {
        let max_ms = MAX_LIFETIME_SECS.saturating_mul(1000);
        let limits = self.sessions;
        let tokens = self.account_tokens;
        for (name, value) in [
            ("session idle timeout", limits.idle_timeout_ms),
            ("session lifetime", limits.max_lifetime_ms),
            ("reset token lifetime", Some(tokens.reset_ttl_ms)),
            ("verification token lifetime", Some(tokens.verify_ttl_ms)),
        ] {
            if let Some(value) = value
                && !(1..=max_ms).contains(&value)
            {
                return Err(ConfigError::Invalid(format!(
                    "{name} must be between 1 ms and 100 years, not {value} ms"
                )));
            }
        }
        if limits.max_per_user == Some(0) {
            return Err(ConfigError::Invalid(
                "the most sessions per user must be at least 1".into(),
            ));
        }
        if tokens.reset_max_live == 0 || tokens.verify_per_hour == 0 {
            return Err(ConfigError::Invalid(
                "reset tokens per account and verification mails per hour must be at least 1".into(),
            ));
        }
        Ok(())
    }
}
