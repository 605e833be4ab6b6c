//! Sessions once started: the first pair of a token family, refresh (rotation, reuse
//! detection, the grace window) and sign-out.

use std::net::IpAddr;

use holdfast_protocol::endpoint::{Refresh, SignOut};
use holdfast_protocol::wire::{RefreshRequest, SignOutRequest, Success};
use holdfast_protocol::{Claims, ErrorCode, TokenType};

use super::AuthService;
use crate::authn::access_token_error;
use crate::events::Revocation;
use crate::exchange::{ApiError, AuthRequest, AuthResponse, bearer_token, parse_json, parse_optional_json};
use crate::store::{DeviceRecord, RefreshRecord, RotateOutcome, UserRecord};
use crate::tokens::{ExtraClaims, IssuedPair, TokenError};

/// Most bytes of JSON the application's claims may take in an access token.
pub const MAX_EXTRA_CLAIMS_BYTES: usize = 2048;

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
    /// `ext`: the application's claims, from [`AuthService::extra_claims`].
    pub(super) async fn start_session(
        &self,
        user_id: &str,
        device: &DeviceRecord,
        binding: Option<&str>,
        ext: Option<&ExtraClaims>,
    ) -> Result<IssuedPair, ApiError> {
        let family = uuid::Uuid::new_v4().to_string();
        let pair = self
            .tokens()
            .issue_pair_with(user_id, &device.id, &family, binding, ext, self.now_secs());
        self.stores()
            .tokens
            .insert_refresh(refresh_record(&pair.refresh_claims))
            .await?;
        Ok(pair)
    }

    pub(super) async fn refresh(
        &self,
        request: &AuthRequest,
        client: Option<IpAddr>,
    ) -> Result<AuthResponse, ApiError> {
        let guards = &self.inner.guards;
        self.admit_address(self.config().rate_limits.refresh, "refresh", client)
            .await?;
        let body: RefreshRequest = parse_json(request, "with a string member refreshToken")?;
        let now_secs = self.now_secs();
        let parent = self
            .tokens()
            .verify(&body.refresh_token, TokenType::Refresh, now_secs)
            .map_err(refresh_token_error)?;
        let Some(family) = parent.fam.clone() else {
            return Err(ApiError::new(ErrorCode::TokenInvalid, "Invalid refresh token."));
        };
        // The same standing checks as every bearer route: not revoked (by jti or family),
        // the user exists, the device is the user's and not revoked (PROTOCOL section 7).
        let standing = self.inner.authn.check_standing(parent).await?;
        let ext = self.extra_claims(&standing.user, &standing.claims.dev).await?;
        let parent = standing.claims;
        let stores = self.stores();

        // A bound family stays bound, and only its key may refresh it; an unbound family
        // stays unbound, whatever proof comes with it (PROTOCOL 3).
        let jkt = parent.cnf.as_ref().map(|c| c.jkt.as_str());
        if let Some(jkt) = jkt
            && self.token_request_binding(request, Some(jkt)).await?.is_none()
        {
            return Err(ApiError::new(
                ErrorCode::ProofInvalid,
                "This session is bound to a device key: send a DPoP proof with the refresh.",
            ));
        }
        let child =
            self.tokens()
                .issue_pair_with(&parent.sub, &parent.dev, &family, jkt, ext.as_ref(), now_secs);
        let outcome = stores
            .tokens
            .rotate_refresh(
                &parent.jti,
                refresh_record(&child.refresh_claims),
                child.child_pair(),
                self.now_ms(),
            )
            .await?;
        let tokens = match outcome {
            RotateOutcome::Rotated => child,
            RotateOutcome::Unknown => {
                return Err(ApiError::new(ErrorCode::TokenInvalid, "Unknown refresh token."));
            }
            RotateOutcome::FamilyRevoked => {
                return Err(ApiError::new(
                    ErrorCode::TokenRevoked,
                    "This session was revoked. Sign in again.",
                ));
            }
            RotateOutcome::AlreadyRotated {
                rotated_at_ms,
                pair,
                child_rotated,
            } => {
                let window = self.config().grace_window_ms;
                // A zero window turns the grace off entirely, even within the same millisecond.
                let within_grace = window > 0 && self.now_ms() - rotated_at_ms <= window;
                if within_grace && !child_rotated {
                    // The client lost our answer (crash, dropped connection): give it the
                    // same children again rather than ending its session (PROTOCOL 6.2).
                    self.tokens().reissue_pair(&parent, &pair, ext.as_ref())
                } else {
                    self.revoke_family_after_reuse(&parent, &family).await?;
                    guards.record_failure(client).await;
                    return Err(ApiError::new(
                        ErrorCode::RefreshReused,
                        "This refresh token was already used. The session was ended for safety; sign in again.",
                    ));
                }
            }
        };
        Ok(AuthResponse::of::<Refresh>(&tokens.into_wire()))
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

    async fn revoke_family_after_reuse(&self, parent: &Claims, family: &str) -> Result<(), ApiError> {
        tracing::warn!(user = %parent.sub, device = %parent.dev, "refresh token reuse detected; revoking the family");
        // Remember the revocation as long as any token of the family can live.
        let until = self
            .now_secs()
            .saturating_add(self.tokens().policy().refresh_ttl_secs);
        self.stores().tokens.revoke_family(family, until).await?;
        self.publish(Revocation::Family {
            user_id: parent.sub.clone(),
            family: family.to_owned(),
        })
        .await;
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
        let session_end = now_secs.saturating_add(tokens.policy().refresh_ttl_secs);
        let leeway = tokens.policy().leeway_secs;
        // Remembered as long as the token would verify: until `exp` plus the leeway.
        revocations
            .revoke_token(&access.jti, access.exp.saturating_add(leeway))
            .await?;
        if let Some(family) = &access.fam {
            revocations.revoke_family(family, session_end).await?;
        }
        let mut ended = vec![access.fam.clone()];
        if let Some(refresh) = refresh.filter(|r| r.sub == access.sub) {
            revocations
                .revoke_token(&refresh.jti, refresh.exp.saturating_add(leeway))
                .await?;
            if let Some(family) = refresh.fam.as_ref().filter(|f| access.fam.as_ref() != Some(*f)) {
                revocations.revoke_family(family, session_end).await?;
                ended.push(Some(family.clone()));
            }
        }
        self.publish(Revocation::Token {
            user_id: access.sub.clone(),
            jti: access.jti.clone(),
        })
        .await;
        for family in ended.into_iter().flatten() {
            self.publish(Revocation::Family {
                user_id: access.sub.clone(),
                family,
            })
            .await;
        }
        Ok(AuthResponse::of::<SignOut>(&Success { success: true }))
    }
}

fn refresh_token_error(error: TokenError) -> ApiError {
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
