//! A token's standing (PROTOCOL 5 rules 2-4, 7): not revoked by `jti` or family, the user
//! exists and is enabled, the device is the user's and not revoked. Read from the stores in
//! one hop ([`crate::store::StandingStore`]) and, for the bearer routes, kept in the
//! [`super::Authenticator`]'s standing cache.
//!
//! # What is cached, and how stale it can be
//!
//! A token whose signature verified has its claims kept by its HMAC tag (the signature is
//! still checked on every request, and its type and expiry too), and, once its standing was
//! found good, that standing (user record, device record) with the time it was read and
//! its user's epoch. A refusal is never cached: a revoked token costs one store read every
//! time it is presented.
//!
//! - Revocations through this process ([`crate::service::AuthService`]: sign-out, session
//!   and device revocation, signing out everywhere, password change and reset, account
//!   disabling and deletion, refresh-token reuse) are published on the
//!   [`crate::events::RevocationBus`], whose hooks run before `publish` returns: the
//!   user's epoch moves and the very next request reads the stores.
//! - The service's other changes to a user or device record (email verified, password
//!   hash, a key attached to a device) move the epoch the same way, locally.
//! - Revocations on another instance arrive through [`crate::relay::RedisRelay`] within one
//!   pub/sub hop, with the same effect; when the relay may have lost events it delivers
//!   [`crate::events::Revocation::Resync`] and every cached standing is dropped.
//! - Changes the bus does not carry (a row edited or deleted in the database directly,
//!   another instance without a relay or while Redis is down, another instance's
//!   non-revoking changes such as an email verified there) are seen after at most
//!   [`crate::config::ServerConfig::standing_cache_ttl`] (5 s by default; zero turns the
//!   cache off).
//!
//! Memory is bounded by [`crate::config::ServerConfig::standing_cache_capacity`] tokens
//! (and as many user cells), whatever tokens arrive.

use std::sync::Arc;

use holdfast_protocol::{Claims, ErrorCode, TokenType};

use super::cache::{Standing, TokenEntry};
use super::{Authenticated, Authenticator, access_token_error, check_enabled};
use crate::exchange::ApiError;
use crate::store::{StandingQuery, StandingRecord};
use crate::tokens::{SignedToken, TokenError};

impl Authenticator {
    /// Verifies an access token's signature (every time), then its type and expiry, with
    /// its claims parsed once and kept by the signature's tag.
    pub(super) fn verify_cached<'t>(
        &self,
        token: &'t str,
    ) -> Result<(SignedToken<'t>, Arc<TokenEntry>), ApiError> {
        let tokens = &self.inner.tokens;
        let signed = tokens
            .keys()
            .verify_signature(token)
            .map_err(access_token_error)?;
        let entry = self.inner.cache.entry(&signed).map_err(access_token_error)?;
        let claims = &entry.claims;
        if claims.token_type != TokenType::Access {
            return Err(access_token_error(TokenError::WrongType));
        }
        if self.now_secs() > claims.exp.saturating_add(tokens.policy().leeway_secs) {
            return Err(access_token_error(TokenError::Expired));
        }
        Ok((signed, entry))
    }

    /// The standing of a verified token: from the cache while fresh, else from the stores
    /// (one hop), kept when good.
    pub(super) async fn cached_standing(
        &self,
        signed: &SignedToken<'_>,
        entry: &TokenEntry,
    ) -> Result<Authenticated, ApiError> {
        let standing = self.shared_standing(signed, entry).await?;
        Ok(authenticated(entry, &standing))
    }

    /// [`Authenticator::cached_standing`] as the cache holds it, without copies: for a
    /// route that only reads it.
    pub(super) async fn shared_standing(
        &self,
        signed: &SignedToken<'_>,
        entry: &TokenEntry,
    ) -> Result<Arc<Standing>, ApiError> {
        let inner = &self.inner;
        let now_ms = inner.config.clock.now_ms();
        let max_age = inner.config.standing_cache_ttl;
        let standing = match inner.cache.fresh_standing(entry, now_ms, max_age) {
            Some(standing) => standing,
            None => {
                let user_cell = inner.cache.user_cell(&entry.claims.sub);
                // The epoch before the stores: an event arriving during the read makes this
                // standing stale at once instead of being lost.
                let epoch = user_cell.epoch();
                // Boxed: the store's future stays out of every cached request's (see
                // `AuthService::dispatch`).
                let checked = Box::pin(self.check_standing(entry.claims.clone())).await?;
                let standing = Arc::new(Standing::new(
                    checked.user,
                    checked.device,
                    user_cell,
                    epoch,
                    now_ms,
                ));
                if !max_age.is_zero() {
                    inner.cache.keep_standing(signed, entry, standing.clone());
                }
                standing
            }
        };
        Ok(standing)
    }

    /// The checks after the signature and the proof: revocation, user, device, read from
    /// the stores in one hop (never from the cache).
    pub async fn check_standing(&self, claims: Claims) -> Result<Authenticated, ApiError> {
        let record = self
            .inner
            .stores
            .standing
            .standing(StandingQuery {
                user_id: &claims.sub,
                device_id: &claims.dev,
                jti: &claims.jti,
                family: claims.fam.as_deref(),
            })
            .await?;
        judge(claims, record)
    }

    /// A change to `user_id`'s account or devices that the revocation bus does not carry
    /// (email verified, password hash, a device key attached): the bearer routes' cached
    /// standings of the user are read again.
    pub(crate) fn standing_changed(&self, user_id: &str) {
        self.inner.cache.invalidate_user(user_id);
    }
}

/// The caller a verified token and its good standing describe (copies of the cached records).
pub(super) fn authenticated(entry: &TokenEntry, standing: &Standing) -> Authenticated {
    Authenticated {
        claims: entry.claims.clone(),
        user: standing.user.clone(),
        device: standing.device.clone(),
    }
}

/// Judges a token's stored standing, with the most specific refusal.
pub(crate) fn judge(claims: Claims, record: StandingRecord) -> Result<Authenticated, ApiError> {
    let StandingRecord {
        revoked,
        user,
        device,
    } = record;
    let user_gone = || ApiError::new(ErrorCode::UserNotFound, "The account no longer exists.");
    let device_revoked = || ApiError::new(ErrorCode::DeviceRevoked, "This device was revoked.");
    if revoked {
        // Deleting or disabling an account and revoking a device end sessions too: say the
        // more specific cause.
        check_enabled(&user.ok_or_else(user_gone)?)?;
        if device.is_some_and(|device| device.revoked && device.user_id == claims.sub) {
            return Err(device_revoked());
        }
        return Err(ApiError::new(
            ErrorCode::TokenRevoked,
            "This token was revoked. Sign in again.",
        ));
    }
    let user = user.ok_or_else(user_gone)?;
    check_enabled(&user)?;
    if let Some(device) = &device {
        if device.user_id != claims.sub {
            return Err(ApiError::new(ErrorCode::TokenInvalid, "Invalid token."));
        }
        if device.revoked {
            return Err(device_revoked());
        }
    }
    Ok(Authenticated { claims, user, device })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{DeviceRecord, StoredPassword, UserRecord};
    use holdfast_protocol::TokenType;

    /// The store's quick test ([`StandingRecord::admits`], which the one-trip refresh uses
    /// inside its transaction) and [`judge`] agree on every combination.
    #[test]
    fn admits_agrees_with_the_judgement() {
        let user = |disabled: bool| UserRecord {
            id: "u".into(),
            email: "u@example.com".into(),
            name: None,
            email_verified: false,
            created_at_ms: 0,
            password: StoredPassword {
                hash: String::new(),
                salt: String::new(),
            },
            metadata: None,
            disabled_at_ms: disabled.then_some(1),
        };
        let device = |owner: &str, revoked: bool| DeviceRecord {
            id: "d".into(),
            user_id: owner.into(),
            key: None,
            name: String::new(),
            revoked,
            created_at_ms: 0,
            last_seen_at_ms: 0,
        };
        let claims = Claims {
            jti: "j".into(),
            sub: "u".into(),
            dev: "d".into(),
            token_type: TokenType::Access,
            iat: 0,
            exp: 1,
            dpk: None,
            must_checkin_by: None,
            fam: Some("f".into()),
            cnf: None,
            aal: None,
            amr: None,
            auth_time: None,
            mfa: None,
            ext: None,
        };
        let users = [None, Some(user(false)), Some(user(true))];
        let devices = [
            None,
            Some(device("u", false)),
            Some(device("u", true)),
            Some(device("other", false)),
        ];
        for revoked in [false, true] {
            for user in &users {
                for device in &devices {
                    let record = StandingRecord {
                        revoked,
                        user: user.clone(),
                        device: device.clone(),
                    };
                    assert_eq!(
                        record.admits("u"),
                        judge(claims.clone(), record.clone()).is_ok(),
                        "{record:?}"
                    );
                }
            }
        }
    }
}
