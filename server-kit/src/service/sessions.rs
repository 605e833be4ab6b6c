//! Sessions as the user sees them (PROTOCOL 8): listing, ending one, the others, or all;
//! and the one way every session ends, whatever ends it ([`AuthService::end_sessions`]).

use holdfast_protocol::endpoint::{RevokeOtherSessions, RevokeSession, Sessions, SignOutAll};
use holdfast_protocol::wire::{Empty, Revoked, Success};
use holdfast_protocol::{Claims, EndReason, ErrorCode};

use super::AuthService;
use super::device_routes::percent_decode;
use crate::events::Revocation;
use crate::exchange::{ApiError, AuthRequest, AuthResponse, parse_optional_json};
use crate::store::{EndedSession, SessionScope, UserRecord};
use crate::tokens::{Assurance, IssuedPair};

fn session_not_found() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "No such session.")
}

impl AuthService {
    /// A fresh pair for the session of `claims` (an access token of `user`) at
    /// `assurance`: a password change, a second factor, a step-up. Every earlier refresh
    /// token of the session stops working, atomically with recording the new assurance, so
    /// a copy taken before cannot mint tokens of the new kind. Bound as the session is.
    pub(super) async fn renew_session_tokens(
        &self,
        claims: &Claims,
        user: &UserRecord,
        assurance: &Assurance,
    ) -> Result<IssuedPair, ApiError> {
        let Some(family) = claims.fam.as_deref() else {
            return Err(ApiError::new(
                ErrorCode::TokenInvalid,
                "This token belongs to no session: sign in again.",
            ));
        };
        let ext = self.extra_claims(user, &claims.dev).await?;
        let jkt = claims.cnf.as_ref().map(|c| c.jkt.as_str());
        let pair = self.tokens().issue_pair_with(
            &user.id,
            &claims.dev,
            family,
            jkt,
            ext.as_ref(),
            assurance,
            self.now_secs(),
        );
        let renewed = self
            .stores()
            .sessions
            .renew_session(
                super::session::refresh_record(&pair.refresh_claims),
                assurance,
                self.revocation_horizon(),
            )
            .await?;
        if !renewed {
            return Err(ApiError::new(
                ErrorCode::TokenRevoked,
                "This session ended meanwhile. Sign in again.",
            ));
        }
        Ok(pair)
    }

    /// Ends the sessions of `user_id` that `scope` selects, for `reason`: each is recorded
    /// as ended and its token family revoked (one transaction), open sync connections are
    /// told at once (PROTOCOL 6.5), and the application's hooks hear of each. Returns the
    /// sessions ended.
    pub async fn end_sessions(
        &self,
        user_id: &str,
        scope: SessionScope<'_>,
        reason: EndReason,
    ) -> Result<Vec<EndedSession>, ApiError> {
        let ended = self
            .stores()
            .sessions
            .end_sessions(user_id, scope, reason, self.now_ms(), self.revocation_horizon())
            .await?;
        self.announce_ended(&ended, reason, matches!(scope, SessionScope::All))
            .await;
        Ok(ended)
    }

    /// Tells the sync gate (and through the relay, the other instances) and the hooks that
    /// these sessions ended. `all`: they are every session of one user, one event says it.
    pub(super) async fn announce_ended(&self, ended: &[EndedSession], reason: EndReason, all: bool) {
        if all && let Some(first) = ended.first() {
            self.publish(Revocation::UserSessions {
                user_id: first.user_id.clone(),
            })
            .await;
        } else {
            for session in ended {
                self.publish(Revocation::Family {
                    user_id: session.user_id.clone(),
                    family: session.id.clone(),
                })
                .await;
            }
        }
        for session in ended {
            self.inner
                .hooks
                .session_ended(&session.user_id, &session.id, reason)
                .await;
        }
    }

    /// Until when (seconds) an ended session's revocation is remembered: as long as any
    /// token of its family could still verify.
    pub(super) fn revocation_horizon(&self) -> i64 {
        let policy = self.tokens().policy();
        self.now_secs()
            .saturating_add(policy.refresh_ttl_secs)
            .saturating_add(policy.leeway_secs)
    }

    /// Ends every session past the idle timeout or the absolute lifetime, so their sync
    /// connections close now rather than at their next renewal. Run by the maintenance
    /// task; returns how many ended.
    pub async fn expire_sessions(&self) -> Result<usize, ApiError> {
        let limits = self.config().sessions;
        if limits.idle_timeout_ms.is_none() && limits.max_lifetime_ms.is_none() {
            return Ok(0);
        }
        let ended = self
            .stores()
            .sessions
            .end_expired_sessions(limits, self.now_ms(), self.revocation_horizon())
            .await?;
        self.announce_ended(&ended, EndReason::Expired, false).await;
        Ok(ended.len())
    }

    pub(super) async fn list_sessions(&self, request: &AuthRequest) -> Result<AuthResponse, ApiError> {
        let caller = self.authenticate(request).await?;
        let sessions = self
            .stores()
            .sessions
            .list_sessions(&caller.claims.sub, self.config().sessions, self.now_ms())
            .await?;
        let current = caller.claims.fam.as_deref();
        let listed: Vec<_> = sessions
            .iter()
            .map(|session| session.to_wire(Some(session.id.as_str()) == current))
            .collect();
        Ok(AuthResponse::of::<Sessions>(&listed))
    }

    pub(super) async fn revoke_session(
        &self,
        request: &AuthRequest,
        segment: &str,
    ) -> Result<AuthResponse, ApiError> {
        let caller = self.authenticate(request).await?;
        let id = percent_decode(segment).ok_or_else(session_not_found)?;
        // Scoped to the caller's own sessions: another user's id ends nothing and is 404,
        // as an unknown one is.
        let ended = self
            .end_sessions(&caller.claims.sub, SessionScope::One(&id), EndReason::Revoked)
            .await?;
        if ended.is_empty() {
            return Err(session_not_found());
        }
        tracing::info!(user = %caller.claims.sub, "session revoked by its user");
        Ok(AuthResponse::of::<RevokeSession>(&Success { success: true }))
    }

    pub(super) async fn revoke_other_sessions(
        &self,
        request: &AuthRequest,
    ) -> Result<AuthResponse, ApiError> {
        let caller = self.authenticate(request).await?;
        let _: Empty = parse_optional_json(request, "that is empty: {}")?;
        self.require_recent_auth(&caller.claims).await?;
        // A token without a family belongs to no session: every session is another one.
        let own = caller.claims.fam.as_deref().unwrap_or_default();
        let ended = self
            .end_sessions(
                &caller.claims.sub,
                SessionScope::AllBut(own),
                EndReason::RevokedByOtherSession,
            )
            .await?;
        Ok(AuthResponse::of::<RevokeOtherSessions>(&Revoked {
            revoked: ended.len() as u64,
        }))
    }

    pub(super) async fn sign_out_all(&self, request: &AuthRequest) -> Result<AuthResponse, ApiError> {
        let caller = self.authenticate(request).await?;
        let _: Empty = parse_optional_json(request, "that is empty: {}")?;
        let ended = self
            .end_sessions(
                &caller.claims.sub,
                SessionScope::All,
                EndReason::SignedOutEverywhere,
            )
            .await?;
        tracing::info!(user = %caller.claims.sub, sessions = ended.len(), "signed out everywhere");
        Ok(AuthResponse::of::<SignOutAll>(&Revoked {
            revoked: ended.len() as u64,
        }))
    }
}
