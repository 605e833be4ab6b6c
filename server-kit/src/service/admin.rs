//! Account-wide actions: deleting an account (the user's own `DELETE /me`, or the
//! deployment's code), and what operators do (list and find accounts, disable and enable
//! them, end a user's sessions). Each ends sessions the one way sessions end, so open sync
//! connections are told at once (PROTOCOL 6.5).

use std::net::IpAddr;

use holdfast_protocol::EndReason;
use holdfast_protocol::endpoint::{DeleteAccount, Me};
use holdfast_protocol::wire::{DeleteAccountRequest, Success};

use super::AuthService;
use crate::events::Revocation;
use crate::exchange::{ApiError, AuthRequest, AuthResponse, Encoded, parse_optional_json};
use crate::store::{OneTimeKind, SessionScope, UserQuery, UserRecord};

impl AuthService {
    /// `GET /me`: the caller's account (a pending session may read it).
    pub(super) async fn me(&self, request: &AuthRequest) -> Result<AuthResponse, ApiError> {
        // From a cached standing, the answer encoded for it the first time.
        let standing = self.inner.authn.pending_standing(request).await?;
        if let Some(encoded) = standing.me_body.get() {
            return Ok(AuthResponse::encoded(encoded));
        }
        let user = standing.user.to_wire();
        match Encoded::<Me>::new(&user) {
            Ok(encoded) => Ok(AuthResponse::encoded(standing.me_body.get_or_init(|| encoded))),
            // Answered (and logged) as any route whose answer cannot be encoded.
            Err(_) => Ok(AuthResponse::of::<Me>(&user)),
        }
    }

    /// Ends every session of `user_id` (signing out everywhere, as an operator or the
    /// deployment's own button does): each token family is revoked, so refreshes fail with
    /// `TOKEN_REVOKED` and the sync gate closes the user's connections. Devices stay
    /// registered. Returns how many sessions ended.
    pub async fn sign_out_everywhere(&self, user_id: &str) -> Result<usize, ApiError> {
        let ended = self
            .end_sessions(user_id, SessionScope::All, EndReason::SignedOutEverywhere)
            .await?;
        tracing::info!(user = %user_id, sessions = ended.len(), "signed out everywhere");
        Ok(ended.len())
    }

    /// Deletes the account of `user_id`: its sessions end, its devices, pending account
    /// tokens and the account go. Every bearer route, refresh and sync admission then
    /// answers `USER_NOT_FOUND`. Returns false when there was no such account.
    pub async fn delete_user(&self, user_id: &str) -> Result<bool, ApiError> {
        let stores = self.stores();
        if stores.users.find_user(user_id).await?.is_none() {
            return Ok(false);
        }
        let ended = stores
            .sessions
            .end_sessions(
                user_id,
                SessionScope::All,
                EndReason::AccountDeleted,
                self.now_ms(),
                self.revocation_horizon(),
            )
            .await?;
        for kind in [OneTimeKind::PasswordReset, OneTimeKind::EmailVerification] {
            stores.one_time.discard_one_time_tokens(user_id, kind).await?;
        }
        let deleted = stores.users.delete_user(user_id).await?;
        if deleted {
            tracing::info!(user = %user_id, "account deleted");
            // One event closes every connection of the account (with "account deleted");
            // the hooks still hear of each session.
            self.publish(Revocation::UserDeleted {
                user_id: user_id.to_owned(),
            })
            .await;
            for session in &ended {
                self.inner
                    .hooks
                    .session_ended(user_id, &session.id, EndReason::AccountDeleted)
                    .await;
            }
        }
        Ok(deleted)
    }

    pub(super) async fn delete_account(
        &self,
        request: &AuthRequest,
        client: Option<IpAddr>,
    ) -> Result<AuthResponse, ApiError> {
        let caller = self.authenticate(request).await?;
        let body: DeleteAccountRequest = parse_optional_json(request, "with a string member password")?;
        // With MFA on, a recent step-up is required and stands in for the password
        // (PROTOCOL 8 and 9); without it, the password is.
        let stepped_up = if self.mfa_enabled(&caller.user.id).await? {
            self.require_recent(&caller.claims)?;
            true
        } else {
            false
        };
        match body.password.as_deref() {
            Some(password) => {
                self.check_own_password(&caller.user, password, "delete-account", client)
                    .await?;
            }
            None if stepped_up => {}
            None => {
                return Err(ApiError::validation(
                    "Send the account's password to delete it: {\"password\": \"...\"}.",
                ));
            }
        }
        self.delete_user(&caller.user.id).await?;
        Ok(AuthResponse::of::<DeleteAccount>(&Success { success: true }))
    }

    /// Disables the account of `user_id`: every session ends
    /// ([`EndReason::AccountDisabled`]), and sign-in, refresh, every bearer route and sync
    /// admission answer 403 `ACCOUNT_DISABLED` until [`AuthService::enable_user`]. Returns
    /// false when there is no such account.
    pub async fn disable_user(&self, user_id: &str) -> Result<bool, ApiError> {
        if !self
            .stores()
            .users
            .set_disabled(user_id, Some(self.now_ms()))
            .await?
        {
            return Ok(false);
        }
        let ended = self
            .end_sessions(user_id, SessionScope::All, EndReason::AccountDisabled)
            .await?;
        tracing::info!(user = %user_id, sessions = ended.len(), "account disabled");
        if ended.is_empty() {
            // No session to end, but cached standings of the account must still go.
            self.publish(Revocation::UserSessions {
                user_id: user_id.to_owned(),
            })
            .await;
        }
        Ok(true)
    }

    /// Enables a disabled account (its ended sessions stay ended: the user signs in again).
    /// Returns false when there is no such account.
    pub async fn enable_user(&self, user_id: &str) -> Result<bool, ApiError> {
        let enabled = self.stores().users.set_disabled(user_id, None).await?;
        self.inner.authn.standing_changed(user_id);
        if enabled {
            tracing::info!(user = %user_id, "account enabled");
        }
        Ok(enabled)
    }

    /// Turns off the second factor of `user_id` (an operator's action for a user who lost
    /// the authenticator and the recovery codes): the factor and its codes are deleted;
    /// sessions go on. Returns whether there was one.
    pub async fn remove_mfa(&self, user_id: &str) -> Result<bool, ApiError> {
        let removed = self.stores().mfa.delete_totp(user_id).await?;
        if removed {
            tracing::warn!(user = %user_id, "second factor removed by an operator");
        }
        Ok(removed)
    }

    /// Accounts in email order, as `query` selects (at most 1000 at a time).
    pub async fn list_users(&self, query: &UserQuery) -> Result<Vec<UserRecord>, ApiError> {
        Ok(self.stores().users.list_users(query).await?)
    }

    /// The account with this id, or else with this email (normalized as sign-in does).
    pub async fn find_user(&self, id_or_email: &str) -> Result<Option<UserRecord>, ApiError> {
        let users = &self.stores().users;
        if let Some(user) = users.find_user(id_or_email).await? {
            return Ok(Some(user));
        }
        let Ok(email) = holdfast_protocol::validate::normalize_email(id_or_email.trim()) else {
            return Ok(None);
        };
        Ok(users.find_user_by_email(&email).await?)
    }
}
