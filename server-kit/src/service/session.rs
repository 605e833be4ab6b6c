//! Sessions once started: the first pair of a token family, what refresh shares with the
//! rest (session liveness, ending a family) and sign-out. Refresh itself: `refresh.rs`.

use std::net::IpAddr;

use holdfast_protocol::endpoint::SignOut;
use holdfast_protocol::wire::{SignOutRequest, Success};
use holdfast_protocol::{Claims, EndReason, ErrorCode, TokenType};

use super::AuthService;
use crate::authn::access_token_error;
use crate::events::Revocation;
use crate::exchange::{ApiError, AuthRequest, AuthResponse, bearer_token, parse_optional_json};
use crate::store::{DeviceRecord, NewSession, RefreshRecord, SessionScope, UserRecord};
use crate::tokens::{Assurance, ExtraClaims, IssuedPair, TokenError};

/// Most bytes of JSON the application's claims may take in an access token.
pub const MAX_EXTRA_CLAIMS_BYTES: usize = 2048;

/// Longest user agent kept with a session, bytes.
const MAX_USER_AGENT_BYTES: usize = 512;

/// The request's `User-Agent`, without control characters and cut to
/// [`MAX_USER_AGENT_BYTES`] on a character boundary; `None` when absent or empty.
fn user_agent(request: &AuthRequest) -> Option<String> {
    let value = request.headers.get(http::header::USER_AGENT)?;
    let text = String::from_utf8_lossy(value.as_bytes());
    let mut agent = String::with_capacity(text.len().min(MAX_USER_AGENT_BYTES));
    for c in text.chars().filter(|c| !c.is_control()) {
        if agent.len() + c.len_utf8() > MAX_USER_AGENT_BYTES {
            break;
        }
        agent.push(c);
    }
    let agent = agent.trim();
    (!agent.is_empty()).then(|| agent.to_owned())
}

/// The rotation record of a refresh token.
pub(super) fn refresh_record(claims: &Claims) -> RefreshRecord {
    RefreshRecord {
        jti: claims.jti.clone(),
        family: claims.fam.clone().unwrap_or_default(),
        user_id: claims.sub.clone(),
        device_id: claims.dev.clone(),
        issued_at: claims.iat,
        expires_at: claims.exp,
        jkt: claims.cnf.as_ref().map(|c| c.jkt.clone()),
    }
}

impl AuthService {
    /// Issues the first pair of a new token family for `device` and records its refresh
    /// token. The pair is bound (`cnf.jkt`) to `binding`, the key whose proof came with the
    /// request ([`AuthService::token_request_binding`]); without one it is unbound.
    /// `ext`: the application's claims, from [`AuthService::extra_claims`]; `assurance`:
    /// how the user proved who they are (PROTOCOL 9).
    /// The session is recorded with the request's client address and user agent; when
    /// the user would have more live sessions than allowed, the least recently used end.
    pub(super) async fn start_session(
        &self,
        user_id: &str,
        device: &DeviceRecord,
        binding: Option<&str>,
        ext: Option<&ExtraClaims>,
        assurance: Assurance,
        origin: (&AuthRequest, Option<IpAddr>),
    ) -> Result<IssuedPair, ApiError> {
        let family = uuid::Uuid::new_v4().to_string();
        let pair = self.tokens().issue_pair_with(
            user_id,
            &device.id,
            &family,
            binding,
            ext,
            &assurance,
            self.now_secs(),
        );
        let (request, client) = origin;
        let session = NewSession {
            id: family,
            user_id: user_id.to_owned(),
            device_id: device.id.clone(),
            created_at_ms: self.now_ms(),
            ip_address: client.map(|address| address.to_string()),
            user_agent: user_agent(request),
            assurance,
        };
        let evicted = self
            .stores()
            .sessions
            .start_session(
                session,
                refresh_record(&pair.refresh_claims),
                self.config().sessions,
                self.revocation_horizon(),
            )
            .await?;
        self.announce_ended(&evicted, EndReason::SessionLimit, false)
            .await;
        Ok(pair)
    }

    /// The application's claims for an access token of `user` on `device_id`, at most
    /// [`MAX_EXTRA_CLAIMS_BYTES`] of JSON.
    pub(super) async fn extra_claims(
        &self,
        user: &UserRecord,
        device_id: &str,
    ) -> Result<Option<ExtraClaims>, ApiError> {
        let Some(ext) = self.inner.hooks.extra_claims(user, device_id).await else {
            return Ok(None);
        };
        let size = serde_json::to_vec(&ext)
            .map(|json| json.len())
            .unwrap_or(usize::MAX);
        if size > MAX_EXTRA_CLAIMS_BYTES {
            tracing::error!(
                size,
                "the application's extra claims exceed {MAX_EXTRA_CLAIMS_BYTES} bytes; no token was issued"
            );
            return Err(ApiError::internal());
        }
        Ok(Some(ext))
    }

    pub(super) async fn revoke_family_after_reuse(
        &self,
        parent: &Claims,
        family: &str,
    ) -> Result<(), ApiError> {
        tracing::warn!(user = %parent.sub, device = %parent.dev, "refresh token reuse detected; revoking the family");
        self.end_family(&parent.sub, family, EndReason::RefreshReused)
            .await
    }

    /// Ends the session `family` of `user_id` for `reason`. A family with no session
    /// record (issued before sessions were recorded and since purged) is revoked all the
    /// same.
    async fn end_family(&self, user_id: &str, family: &str, reason: EndReason) -> Result<(), ApiError> {
        let ended = self
            .end_sessions(user_id, SessionScope::One(family), reason)
            .await?;
        if ended.is_empty() {
            self.stores()
                .tokens
                .revoke_family(family, self.revocation_horizon())
                .await?;
            self.publish(Revocation::Family {
                user_id: user_id.to_owned(),
                family: family.to_owned(),
            })
            .await;
        }
        Ok(())
    }

    /// Refuses a refresh of a session that ended, with the reason it ended; ends (and
    /// refuses) one past its idle timeout or lifetime. A family without a session record
    /// passes: the rotation decides.
    pub(super) async fn check_session_alive(&self, family: &str) -> Result<(), ApiError> {
        let Some(session) = self.stores().sessions.find_session(family).await? else {
            return Ok(());
        };
        if let Some(ending) = session.ended {
            return Err(ApiError::session_ended(ending.reason));
        }
        let now_ms = self.now_ms();
        if self
            .config()
            .sessions
            .expired(session.created_at_ms, session.last_used_at_ms, now_ms)
        {
            self.end_sessions(
                &session.user_id,
                SessionScope::One(&session.id),
                EndReason::Expired,
            )
            .await?;
            return Err(ApiError::session_ended(EndReason::Expired));
        }
        Ok(())
    }

    pub(super) async fn sign_out(&self, request: &AuthRequest) -> Result<AuthResponse, ApiError> {
        let body: SignOutRequest =
            parse_optional_json(request, "with an optional string member refreshToken")?;
        let token = bearer_token(&request.headers)
            .ok_or_else(|| ApiError::new(ErrorCode::TokenInvalid, "Missing bearer token."))?;
        let now_secs = self.now_secs();
        let tokens = self.tokens();
        let refresh = body
            .refresh_token
            .as_deref()
            .and_then(|t| tokens.verify(t, TokenType::Refresh, now_secs).ok());
        let access = match tokens.verify(token, TokenType::Access, now_secs) {
            Ok(claims) => claims,
            // A client that signed out offline delivers the sign-out later, when its access
            // token may have expired: a valid refresh token of the same session vouches for it.
            Err(TokenError::Expired) => {
                let expired = tokens.keys().verify(token).map_err(access_token_error)?;
                if expired.token_type != TokenType::Access {
                    return Err(access_token_error(TokenError::WrongType));
                }
                match &refresh {
                    Some(r) if r.sub == expired.sub && r.fam.is_some() && r.fam == expired.fam => expired,
                    _ => return Err(access_token_error(TokenError::Expired)),
                }
            }
            Err(error) => return Err(access_token_error(error)),
        };
        self.inner
            .authn
            .check_request_proof(request, token, &access)
            .await?;
        let access = self.inner.authn.check_standing(access).await?.claims;

        let revocations = &self.stores().tokens;
        let leeway = tokens.policy().leeway_secs;
        // Remembered as long as the token would verify: until `exp` plus the leeway.
        revocations
            .revoke_token(&access.jti, access.exp.saturating_add(leeway))
            .await?;
        let mut ended = vec![access.fam.clone()];
        if let Some(refresh) = refresh.filter(|r| r.sub == access.sub) {
            revocations
                .revoke_token(&refresh.jti, refresh.exp.saturating_add(leeway))
                .await?;
            if let Some(family) = refresh.fam.as_ref().filter(|f| access.fam.as_ref() != Some(*f)) {
                ended.push(Some(family.clone()));
            }
        }
        for family in ended.into_iter().flatten() {
            self.end_family(&access.sub, &family, EndReason::SignedOut)
                .await?;
        }
        self.publish(Revocation::Token {
            user_id: access.sub.clone(),
            jti: access.jti.clone(),
        })
        .await;
        Ok(AuthResponse::of::<SignOut>(&Success { success: true }))
    }
}

pub(super) fn refresh_token_error(error: TokenError) -> ApiError {
    match error {
        TokenError::Expired => ApiError::new(
            ErrorCode::TokenExpired,
            "The refresh token has expired. Sign in again.",
        ),
        TokenError::Malformed | TokenError::BadSignature | TokenError::WrongType => {
            ApiError::new(ErrorCode::TokenInvalid, "Invalid refresh token.")
        }
    }
}
