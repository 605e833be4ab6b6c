//! Passwords after sign-up (PROTOCOL 8): change (the caller's session renewed, every other
//! session ended) and reset by a mailed single-use token (every session ended); and the
//! password check that change and account deletion share.

use std::net::IpAddr;

use holdfast_protocol::endpoint::{ChangePassword, RequestPasswordReset, ResetPassword};
use holdfast_protocol::validate::{check_password_length, normalize_email};
use holdfast_protocol::wire::{
    MailSent, PasswordChangeRequest, PasswordResetRequest, ResetRequest, Success, Tokens,
};
use holdfast_protocol::{EndReason, ErrorCode};

use super::AuthService;
use super::account::check_not_too_long;
use crate::authn::Authenticated;
use crate::exchange::{ApiError, AuthRequest, AuthResponse, parse_json};
use crate::guards::{address_key, check_password_policy, digest_key};
use crate::store::{OneTimeKind, SessionScope, UserRecord};
use crate::tokens::Assurance;

impl AuthService {
    /// A new password passes the protocol's length rule and the server's policy.
    pub(super) fn check_new_password(&self, password: &str) -> Result<(), ApiError> {
        check_password_length(password).map_err(ApiError::validation)?;
        check_password_policy(&self.config().password_policy, password).map_err(ApiError::validation)
    }

    /// Checks `password` against `user`'s, under the sign-in rate limit and account lockout
    /// (a wrong one counts as a failed sign-in): 401 `INVALID_CREDENTIALS` when it is wrong.
    pub(super) async fn check_own_password(
        &self,
        user: &UserRecord,
        password: &str,
        route: &str,
        client: Option<IpAddr>,
    ) -> Result<(), ApiError> {
        let guards = &self.inner.guards;
        self.admit_address(self.config().rate_limits.sign_in, route, client)
            .await?;
        let account = digest_key(&user.id);
        let address = address_key(client);
        guards
            .check_account(&account, &address, std::future::ready(false))
            .await?;
        check_not_too_long(password)?;
        let check = self
            .inner
            .hasher
            .verify(password, Some(&user.password))
            .await
            .map_err(|error| self.hashing_error(error))?;
        if !check.matches {
            guards.record_failure(client).await;
            guards.record_sign_in_failure(&account, &address).await;
            return Err(ApiError::new(
                ErrorCode::InvalidCredentials,
                "The current password is wrong.",
            ));
        }
        Ok(())
    }

    pub(super) async fn change_password(
        &self,
        request: &AuthRequest,
        client: Option<IpAddr>,
    ) -> Result<AuthResponse, ApiError> {
        let Authenticated { claims, user, .. } = self.authenticate(request).await?;
        let body: PasswordChangeRequest =
            parse_json(request, "with string members currentPassword and newPassword")?;
        self.require_recent_auth(&claims).await?;
        self.check_new_password(&body.new_password)?;
        self.check_own_password(&user, &body.current_password, "password-change", client)
            .await?;
        let Some(family) = claims.fam.clone() else {
            return Err(ApiError::new(
                ErrorCode::TokenInvalid,
                "This token belongs to no session: sign in again to change the password.",
            ));
        };
        let hashed = self
            .inner
            .hasher
            .hash(&body.new_password)
            .await
            .map_err(|error| self.hashing_error(error))?;
        self.stores().users.set_password(&user.id, hashed).await?;
        // The caller's own session stays: its cached record must carry the new hash.
        self.inner.authn.standing_changed(&user.id);
        tracing::info!(user = %user.id, "password changed");
        // Whoever else holds a session (or a reset link) loses it.
        self.end_sessions(
            &user.id,
            SessionScope::AllBut(&family),
            EndReason::PasswordChanged,
        )
        .await?;
        self.stores()
            .one_time
            .discard_one_time_tokens(&user.id, OneTimeKind::PasswordReset)
            .await?;
        // The caller's session goes on with a fresh pair; its earlier refresh tokens stop
        // working, so a copy of one taken before the change is worthless. Its current
        // access token lives out its short lifetime. The current password was just
        // checked: the session's `auth_time` moves to now.
        let assurance = Assurance {
            auth_time: self.now_secs(),
            ..Assurance::of(&claims)
        };
        let pair = self.renew_session_tokens(&claims, &user, &assurance).await?;
        Ok(AuthResponse::of::<ChangePassword>(&Tokens {
            tokens: pair.into_wire(),
        }))
    }

    pub(super) async fn request_password_reset(
        &self,
        request: &AuthRequest,
        client: Option<IpAddr>,
    ) -> Result<AuthResponse, ApiError> {
        self.admit_address(
            self.config().rate_limits.account_recovery,
            "reset-request",
            client,
        )
        .await?;
        let body: ResetRequest = parse_json(request, "with a string member email")?;
        let email = normalize_email(body.email.trim()).map_err(ApiError::validation)?;
        let token = if self.mail_is_configured() {
            // Whatever happens next (account or not, mail or not) happens after the answer,
            // so neither its content nor its timing tells whether the account exists.
            let service = self.clone();
            tokio::spawn(async move {
                if let Err(error) = service.issue_reset(&email).await {
                    tracing::warn!(code = %error.code, "a password reset request failed");
                }
            });
            None
        } else {
            // Development mode (no mailer; the server said so at start): the token is
            // answered, as Kora does.
            self.issue_reset(&email).await?
        };
        Ok(AuthResponse::of::<RequestPasswordReset>(&MailSent {
            success: true,
            token,
        }))
    }

    /// Makes, stores (hashed) and mails a reset token for the account of `email`, if there
    /// is one, it is enabled, and it has fewer than the allowed live tokens. Returns the
    /// token in development mode.
    async fn issue_reset(&self, email: &str) -> Result<Option<String>, ApiError> {
        let Some(user) = self.stores().users.find_user_by_email(email).await? else {
            return Ok(None);
        };
        if user.disabled_at_ms.is_some() {
            return Ok(None);
        }
        let policy = self.config().account_tokens;
        self.issue_account_token(
            &user,
            OneTimeKind::PasswordReset,
            policy.reset_ttl_ms,
            policy.reset_max_live,
        )
        .await
    }

    pub(super) async fn reset_password(
        &self,
        request: &AuthRequest,
        client: Option<IpAddr>,
    ) -> Result<AuthResponse, ApiError> {
        self.admit_address(self.config().rate_limits.account_recovery, "reset", client)
            .await?;
        let body: PasswordResetRequest = parse_json(request, "with string members token and newPassword")?;
        self.check_new_password(&body.new_password)?;
        // Hashed before the token is used up, so a busy server (503) does not burn it.
        let hashed = self
            .inner
            .hasher
            .hash(&body.new_password)
            .await
            .map_err(|error| self.hashing_error(error))?;
        let invalid = || {
            ApiError::new(
                ErrorCode::ResetTokenInvalid,
                "This reset link is invalid, used or expired. Ask for a new one.",
            )
        };
        let Some(token) = self
            .take_account_token(OneTimeKind::PasswordReset, &body.token)
            .await?
        else {
            self.inner.guards.record_failure(client).await;
            return Err(invalid());
        };
        let Some(user) = self.stores().users.find_user(&token.user_id).await? else {
            return Err(invalid());
        };
        self.stores().users.set_password(&user.id, hashed).await?;
        // The caller's own session stays: its cached record must carry the new hash.
        self.inner.authn.standing_changed(&user.id);
        tracing::info!(user = %user.id, "password reset");
        self.stores()
            .one_time
            .discard_one_time_tokens(&user.id, OneTimeKind::PasswordReset)
            .await?;
        self.end_sessions(&user.id, SessionScope::All, EndReason::PasswordReset)
            .await?;
        Ok(AuthResponse::of::<ResetPassword>(&Success { success: true }))
    }
}
