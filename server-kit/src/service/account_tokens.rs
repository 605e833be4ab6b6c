//! Single-use account tokens (password reset, email verification): made from 32 random
//! bytes, stored only as their SHA-256, delivered by the application's mailer, or answered
//! in development mode (no mailer), as Kora does.

use holdfast_protocol::ErrorCode;
use ring::rand::{SecureRandom, SystemRandom};

use super::AuthService;
use crate::exchange::ApiError;
use crate::store::{OneTimeKind, OneTimeToken, UserRecord};

/// Longest token text looked up; anything longer is not one of ours.
const MAX_TOKEN_LEN: usize = 128;

/// A new token: 32 random bytes, base64url (43 characters).
fn new_token() -> Result<String, ApiError> {
    let mut random = [0u8; 32];
    SystemRandom::new().fill(&mut random).map_err(|_| {
        tracing::error!("the operating system's random number generator failed");
        ApiError::internal()
    })?;
    Ok(holdfast_protocol::b64::encode(&random))
}

/// What a store keeps of a token: its SHA-256, lowercase hex.
pub(crate) fn token_hash(token: &str) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, token.as_bytes()))
}

impl AuthService {
    /// Whether account mail goes out through a mailer (otherwise: development mode).
    pub(super) fn mail_is_configured(&self) -> bool {
        self.inner.mail.is_some()
    }

    /// Makes a token of `kind` for `user`, valid `ttl_ms`, stores its hash unless the user
    /// already has `max_live` live ones, and delivers it. Returns it in development mode
    /// (and `None` when none was stored).
    pub(super) async fn issue_account_token(
        &self,
        user: &UserRecord,
        kind: OneTimeKind,
        ttl_ms: i64,
        max_live: u32,
    ) -> Result<Option<String>, ApiError> {
        let token = new_token()?;
        let now_ms = self.now_ms();
        let record = OneTimeToken {
            hash: token_hash(&token),
            kind,
            user_id: user.id.clone(),
            email: user.email.clone(),
            created_at_ms: now_ms,
            expires_at_ms: now_ms.saturating_add(ttl_ms),
        };
        if !self
            .stores()
            .one_time
            .put_one_time_token(record, max_live, now_ms)
            .await?
        {
            tracing::info!(user = %user.id, kind = kind.as_str(), "not issuing an account token: the account has as many live ones as allowed");
            return Ok(None);
        }
        let valid_for = std::time::Duration::from_millis(u64::try_from(ttl_ms).unwrap_or(0));
        match &self.inner.mail {
            None => Ok(Some(token)),
            Some(mail) => {
                mail.deliver(kind, &user.email, &token, valid_for)
                    .await
                    .map_err(|error| {
                        tracing::warn!(%error, kind = kind.as_str(), "could not send account mail");
                        ApiError::unavailable(60, "The mail could not be sent. Try again later.")
                    })?;
                Ok(None)
            }
        }
    }

    /// Uses up the live token of `kind` that `token` is, if any.
    pub(super) async fn take_account_token(
        &self,
        kind: OneTimeKind,
        token: &str,
    ) -> Result<Option<OneTimeToken>, ApiError> {
        if token.is_empty() || token.len() > MAX_TOKEN_LEN {
            return Ok(None);
        }
        Ok(self
            .stores()
            .one_time
            .take_one_time_token(kind, &token_hash(token), self.now_ms())
            .await?)
    }
}

/// The refusal of a verification token that is unknown, used or expired.
pub(super) fn verify_token_invalid() -> ApiError {
    ApiError::new(
        ErrorCode::VerifyTokenInvalid,
        "This verification link is invalid, used or expired. Ask for a new one.",
    )
}
