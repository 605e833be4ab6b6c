//! `POST /auth/refresh`: rotation, reuse detection and the grace window (PROTOCOL 6.2).
//!
//! An unbound token of a server without extra claims, on a backend that offers
//! [`crate::store::TokenStore::rotate_checked`] (SQLite and PostgreSQL), is checked and
//! rotated in one store call: the session, the standing and the rotation in one transaction
//! (on SQLite committed together with the other rotations queued with it; on PostgreSQL in
//! four round trips on one connection). Every other refresh asks the stores one by one.
//! Both answer the same refusals, in the same order.

use std::net::IpAddr;
use std::sync::Arc;

use holdfast_protocol::endpoint::Refresh;
use holdfast_protocol::wire::RefreshRequest;
use holdfast_protocol::{Claims, EndReason, ErrorCode, TokenType};

use super::AuthService;
use super::session::{refresh_record, refresh_token_error};
use crate::exchange::{ApiError, AuthRequest, AuthResponse, parse_json};
use crate::store::{CheckedRefresh, RefreshVerdict, RotateOutcome, Stores};
use crate::tokens::{Assurance, ExtraClaims, IssuedPair};

impl AuthService {
    pub(super) async fn refresh(
        &self,
        request: &AuthRequest,
        client: Option<IpAddr>,
    ) -> Result<AuthResponse, ApiError> {
        // The cold steps' futures are boxed so that this one, moved into its box on every
        // refresh, stays small (see `AuthService::dispatch`).
        Box::pin(self.admit_address(self.config().rate_limits.refresh, "refresh", client)).await?;
        let body: RefreshRequest = parse_json(request, "with a string member refreshToken")?;
        let now_secs = self.now_secs();
        let parent = self
            .tokens()
            .verify(&body.refresh_token, TokenType::Refresh, now_secs)
            .map_err(refresh_token_error)?;
        let Some(family) = parent.fam.clone() else {
            return Err(ApiError::new(ErrorCode::TokenInvalid, "Invalid refresh token."));
        };
        // A bound token's proof is checked between the standing and the rotation, and
        // extra claims need the user: both take the separate calls.
        if parent.cnf.is_none()
            && !self.inner.hooks.issues_extra_claims()
            && one_backend(self.stores())
            && let Some(tokens) = self.refresh_at_once(&parent, &family, client, now_secs).await?
        {
            return Ok(AuthResponse::of::<Refresh>(&tokens.into_wire()));
        }
        Box::pin(self.refresh_step_by_step(request, client, parent, family, now_secs)).await
    }

    /// The refresh asking the stores one by one: session, standing, extra claims, the
    /// device proof of a bound token, then the rotation.
    async fn refresh_step_by_step(
        &self,
        request: &AuthRequest,
        client: Option<IpAddr>,
        parent: Claims,
        family: String,
        now_secs: i64,
    ) -> Result<AuthResponse, ApiError> {
        self.check_session_alive(&family).await?;
        // The same standing checks as every bearer route: not revoked (by jti or family),
        // the user exists, the device is the user's and not revoked (PROTOCOL section 7).
        let standing = self.inner.authn.check_standing(parent).await?;
        let ext = self.extra_claims(&standing.user, &standing.claims.dev).await?;
        let parent = standing.claims;

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
        // The session's assurance rides on its tokens: a refresh neither raises nor lowers
        // it (a pending session stays pending; a verified one stays verified, PROTOCOL 9).
        let child = self.tokens().issue_pair_with(
            &parent.sub,
            &parent.dev,
            &family,
            jkt,
            ext.as_ref(),
            &Assurance::of(&parent),
            now_secs,
        );
        let outcome = self
            .stores()
            .tokens
            .rotate_refresh(
                &parent.jti,
                refresh_record(&child.refresh_claims),
                child.child_pair(),
                self.now_ms(),
            )
            .await?;
        let rotation = Rotation {
            parent: &parent,
            family: &family,
            ext: ext.as_ref(),
            client,
        };
        let tokens = self.after_rotation(rotation, child, outcome, None).await?;
        Ok(AuthResponse::of::<Refresh>(&tokens.into_wire()))
    }

    /// The refresh of an unbound token without extra claims in one store call; `None` when
    /// the store does not offer it.
    async fn refresh_at_once(
        &self,
        parent: &Claims,
        family: &str,
        client: Option<IpAddr>,
        now_secs: i64,
    ) -> Result<Option<IssuedPair>, ApiError> {
        let assurance = Assurance::of(parent);
        let child =
            self.tokens()
                .issue_pair_with(&parent.sub, &parent.dev, family, None, None, &assurance, now_secs);
        let check = CheckedRefresh {
            parent_jti: parent.jti.clone(),
            family: family.to_owned(),
            user_id: parent.sub.clone(),
            device_id: parent.dev.clone(),
            child: refresh_record(&child.refresh_claims),
            pair: child.child_pair(),
            now_ms: self.now_ms(),
            limits: self.config().sessions,
        };
        let Some(verdict) = self.stores().tokens.rotate_checked(&check).await? else {
            return Ok(None);
        };
        let (outcome, child_revoked) = match verdict {
            RefreshVerdict::SessionEnded(reason) => return Err(ApiError::session_ended(reason)),
            RefreshVerdict::SessionExpired => {
                // Ends it (and says so) as the separate check does.
                Box::pin(self.check_session_alive(family)).await?;
                return Err(ApiError::session_ended(EndReason::Expired));
            }
            RefreshVerdict::Refused(standing) => {
                // The bearer routes' judgement of the same record: the same refusal.
                return Err(match crate::authn::judge(parent.clone(), *standing) {
                    Err(refusal) => refusal,
                    Ok(_) => {
                        tracing::error!("a refused standing passed the authenticator's checks");
                        ApiError::internal()
                    }
                });
            }
            RefreshVerdict::Rotation {
                outcome,
                child_revoked,
            } => (outcome, child_revoked),
        };
        if outcome == RotateOutcome::Rotated {
            return Ok(Some(child));
        }
        let rotation = Rotation {
            parent,
            family,
            ext: None,
            client,
        };
        Box::pin(self.after_rotation(rotation, child, outcome, Some(child_revoked)))
            .await
            .map(Some)
    }

    /// The answer to a rotation's `outcome`: `child` when rotated; the recorded children
    /// again within the grace window (unless `child_revoked`, asked of the store when
    /// `None`); otherwise the refusal, ending the session on reuse.
    async fn after_rotation(
        &self,
        rotation: Rotation<'_>,
        child: IssuedPair,
        outcome: RotateOutcome,
        child_revoked: Option<bool>,
    ) -> Result<IssuedPair, ApiError> {
        let Rotation {
            parent,
            family,
            ext,
            client,
        } = rotation;
        match outcome {
            RotateOutcome::Rotated => Ok(child),
            RotateOutcome::Unknown => Err(ApiError::new(ErrorCode::TokenInvalid, "Unknown refresh token.")),
            RotateOutcome::FamilyRevoked => {
                // Ended since it was checked above: say why, if it was recorded.
                self.check_session_alive(family).await?;
                Err(ApiError::new(
                    ErrorCode::TokenRevoked,
                    "This session was revoked. Sign in again.",
                ))
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
                    // same children again rather than ending its session (PROTOCOL 6.2),
                    // unless they were superseded since (a password change renewed the
                    // session's tokens).
                    let replaced = match child_revoked {
                        Some(revoked) => revoked,
                        None => self.stores().tokens.is_revoked(&pair.refresh_jti, None).await?,
                    };
                    if replaced {
                        return Err(ApiError::new(
                            ErrorCode::TokenRevoked,
                            "This session's tokens were replaced. Sign in again.",
                        ));
                    }
                    Ok(self.tokens().reissue_pair(parent, &pair, ext))
                } else {
                    self.revoke_family_after_reuse(parent, family).await?;
                    self.inner.guards.record_failure(client).await;
                    Err(ApiError::new(
                        ErrorCode::RefreshReused,
                        "This refresh token was already used. The session was ended for safety; sign in again.",
                    ))
                }
            }
        }
    }
}

/// What a rotation's answer needs of its request.
struct Rotation<'a> {
    parent: &'a Claims,
    family: &'a str,
    ext: Option<&'a ExtraClaims>,
    client: Option<IpAddr>,
}

/// Whether sessions, users and devices are on the token store's backend, as one store
/// call checking them all needs.
fn one_backend(stores: &Stores) -> bool {
    let tokens = Arc::as_ptr(&stores.tokens).cast::<()>();
    [
        Arc::as_ptr(&stores.sessions).cast::<()>(),
        Arc::as_ptr(&stores.users).cast::<()>(),
        Arc::as_ptr(&stores.devices).cast::<()>(),
    ]
    .into_iter()
    .all(|other| std::ptr::eq(other, tokens))
}
