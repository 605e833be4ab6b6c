//! Email verification (PROTOCOL 8): a mailed single-use token marks the account's email
//! verified.

use std::net::IpAddr;

use holdfast_protocol::endpoint::{ConfirmEmail, ResendVerification, SendVerification};
use holdfast_protocol::validate::normalize_email;
use holdfast_protocol::wire::{Empty, MailSent, UserBody, VerifyConfirmRequest, VerifySendRequest};

use super::AuthService;
use super::account_tokens::verify_token_invalid;
use crate::exchange::{ApiError, AuthRequest, AuthResponse, parse_json, parse_optional_json};
use crate::store::{OneTimeKind, RateLimit, UserRecord};

impl AuthService {
    pub(super) async fn send_verification(&self, request: &AuthRequest) -> Result<AuthResponse, ApiError> {
        let caller = self.authenticate(request).await?;
        let body: VerifySendRequest = parse_optional_json(request, "with an optional string member email")?;
        if let Some(email) = &body.email {
            let email = normalize_email(email.trim()).map_err(ApiError::validation)?;
            if email != caller.user.email {
                return Err(ApiError::validation(
                    "Only the account's own email can be verified; change it first.",
                ));
            }
        }
        let sent = self.mail_verification(&caller.user).await?;
        Ok(AuthResponse::of::<SendVerification>(&sent))
    }

    pub(super) async fn resend_verification(&self, request: &AuthRequest) -> Result<AuthResponse, ApiError> {
        let caller = self.authenticate(request).await?;
        let _: Empty = parse_optional_json(request, "that is empty: {}")?;
        let sent = self.mail_verification(&caller.user).await?;
        Ok(AuthResponse::of::<ResendVerification>(&sent))
    }

    /// Mails a verification token for `user`'s email, at most the policy's number per hour
    /// (429 beyond); nothing when the email is verified already.
    async fn mail_verification(&self, user: &UserRecord) -> Result<MailSent, ApiError> {
        if user.email_verified {
            return Ok(MailSent {
                success: true,
                token: None,
            });
        }
        let policy = self.config().account_tokens;
        let hourly = RateLimit {
            max: policy.verify_per_hour,
            window_ms: 3_600_000,
        };
        self.inner
            .guards
            .limit(Some(hourly), &format!("verify-mail:user:{}", user.id))
            .await?;
        // Every token of the day stays usable: at most a day's worth of mails are live.
        let max_live = policy.verify_per_hour.saturating_mul(24);
        let token = self
            .issue_account_token(
                user,
                OneTimeKind::EmailVerification,
                policy.verify_ttl_ms,
                max_live,
            )
            .await?;
        Ok(MailSent { success: true, token })
    }

    pub(super) async fn confirm_email(
        &self,
        request: &AuthRequest,
        client: Option<IpAddr>,
    ) -> Result<AuthResponse, ApiError> {
        self.admit_address(
            self.config().rate_limits.account_recovery,
            "verify-confirm",
            client,
        )
        .await?;
        let body: VerifyConfirmRequest = parse_json(request, "with a string member token")?;
        let Some(token) = self
            .take_account_token(OneTimeKind::EmailVerification, &body.token)
            .await?
        else {
            self.inner.guards.record_failure(client).await;
            return Err(verify_token_invalid());
        };
        let users = &self.stores().users;
        // The token confirms the address it was sent to, and only while it is the account's.
        let user = match users.find_user(&token.user_id).await? {
            Some(user) if user.email == token.email => user,
            _ => return Err(verify_token_invalid()),
        };
        if !users.set_email_verified(&user.id).await? {
            return Err(verify_token_invalid());
        }
        self.inner.authn.standing_changed(&user.id);
        tracing::info!(user = %user.id, "email verified");
        let user = UserRecord {
            email_verified: true,
            ..user
        };
        Ok(AuthResponse::of::<ConfirmEmail>(&UserBody {
            user: user.to_wire(),
        }))
    }
}
