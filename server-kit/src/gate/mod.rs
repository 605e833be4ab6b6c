//! The sync gate (PROTOCOL 5 and 6.5): admits a sync connection only from a valid,
//! unrevoked device of an existing user, with a device proof where the token is bound to a
//! key, and tells the sync server when to cut the connection off.
//!
//! ```no_run
//! # async fn serve(gate: holdfast_server_kit::gate::SyncGate, token: &str, proof: Option<&str>) {
//! use holdfast_server_kit::gate::Handshake;
//! let handshake = Handshake { access_token: token, proof, method: "GET", url: "https://sync.example.com/sync" };
//! match gate.admit(&handshake).await {
//!     Ok(principal) => {
//!         let closed = gate.watch(&principal);
//!         // serve the connection until `closed` resolves, then close it with
//!         // `closed.await.close_code()` and its reason.
//!     }
//!     Err(refused) => { /* answer refused.status() with refused.code */ }
//! }
//! # }
//! ```
//!
//! # What is cached, and how stale it can be
//!
//! Admission does not read the database when its caches are warm: the claims of a token
//! already seen are kept by its HMAC tag (the signature is still checked every time), and
//! the token's standing (not revoked, user exists, device registered and not revoked, its
//! key) is kept per token.
//!
//! - Revocations made through this process's [`crate::service::AuthService`] (device revocation, sign-out,
//!   refresh-token reuse, signing out everywhere, account deletion) reach the gate on the
//!   [`RevocationBus`](crate::events::RevocationBus) at once: the user's cached standing is
//!   dropped and every [`SyncGate::watch`] of that user re-checks against the stores, so an
//!   open connection is cut off within a store read of the revocation.
//! - Revocations made on another instance reach this bus through
//!   [`RedisRelay`](crate::relay::RedisRelay) within one pub/sub hop, with the same effect.
//!   When the relay lost its subscription it delivers
//!   [`Revocation::Resync`](crate::events::Revocation::Resync): every cached standing is
//!   dropped and every watch re-checks at once.
//! - Changes the bus does not carry (another instance without a relay, Redis down, an edit
//!   in the database) are seen by admission after at most [`GateConfig::cache_ttl`] and by
//!   open connections after at most [`GateConfig::recheck_interval`]: those are the
//!   staleness bounds (5 s and 15 s by default).
//!
//! `lastSeenAt` is recorded in memory on admission and written in one batch every
//! [`GateConfig::last_seen_flush`], so admitting a connection writes nothing.

mod last_seen;
mod types;
mod watch;

use std::sync::Arc;
use std::time::Duration;

use holdfast_protocol::{Claims, ErrorCode, TokenType};

pub use types::{GateConfig, GateError, Handshake, Principal, ProoflessPolicy};
pub use watch::{Closed, Watch};

use crate::authn::Authenticator;
use crate::authn::cache::{Standing, StandingCache};
use crate::clock::Clock;
use crate::exchange::ApiError;
use crate::proofs::{ProofCheck, ProofFailure, verify_proof};
use crate::store::StoreError;
use crate::tokens::TokenError;
use last_seen::LastSeen;

/// The gate. Cheap to clone; clones share caches and watches.
#[derive(Clone)]
pub struct SyncGate {
    inner: Arc<GateInner>,
}

struct GateInner {
    authn: Authenticator,
    config: GateConfig,
    clock: Arc<dyn Clock>,
    caches: Arc<StandingCache>,
    last_seen: LastSeen,
    /// Registered on the service's bus (which holds it weakly).
    _hook: Arc<crate::events::RevocationHook>,
}

impl std::fmt::Debug for SyncGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncGate")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl SyncGate {
    /// A gate over the tokens, stores and revocation bus of `authn` (an
    /// [`Authenticator`], or the [`crate::service::AuthService`] built over it). Starts one
    /// background task (the `lastSeenAt` writes) on the current tokio runtime; it ends when
    /// the last clone of the gate is dropped.
    pub fn new(authn: &impl AsRef<Authenticator>, config: GateConfig) -> SyncGate {
        let authn = authn.as_ref();
        // One definition of the cache, the bearer routes' too; the gate keeps its own
        // instance, sized and aged by its configuration.
        let caches = Arc::new(StandingCache::new(config.cache_capacity));
        let hook = caches.follow(authn.revocations());
        let inner = Arc::new(GateInner {
            clock: authn.clock().clone(),
            caches,
            last_seen: LastSeen::default(),
            authn: authn.clone(),
            config,
            _hook: hook,
        });
        tokio::spawn(last_seen::flush_every(
            Arc::downgrade(&inner),
            inner.config.last_seen_flush,
        ));
        SyncGate { inner }
    }

    /// The configuration.
    pub fn config(&self) -> &GateConfig {
        &self.inner.config
    }

    /// The checks the gate shares with the auth routes.
    pub fn authenticator(&self) -> &Authenticator {
        &self.inner.authn
    }

    /// The revocation bus the gate follows (its service's).
    pub fn revocations(&self) -> &crate::events::RevocationBus {
        self.inner.authn.revocations()
    }

    /// Applies every rule of PROTOCOL 5 to a handshake and returns who is connecting.
    pub async fn admit(&self, handshake: &Handshake<'_>) -> Result<Principal, GateError> {
        let inner = &self.inner;
        let now_ms = inner.clock.now_ms();
        let now_secs = now_ms.div_euclid(1000);
        let tokens = inner.authn.tokens();
        // 1. Signature (every time), then claims (cached by the authenticated tag).
        let signed = tokens
            .keys()
            .verify_signature(handshake.access_token)
            .map_err(token_error)?;
        let entry = inner.caches.entry(&signed).map_err(token_error)?;
        let claims = &entry.claims;
        if claims.token_type != TokenType::Access {
            return Err(token_error(TokenError::WrongType));
        }
        if now_secs > claims.exp.saturating_add(tokens.policy().leeway_secs) {
            return Err(token_error(TokenError::Expired));
        }
        // A session that owes its second factor syncs nothing (PROTOCOL 9).
        if claims.mfa_pending() {
            return Err(GateError::new(
                ErrorCode::MfaRequired,
                crate::authn::MFA_REQUIRED_MESSAGE,
            ));
        }
        // 2-4. Revocation, user and device: cached standing, or the stores.
        let standing = match inner
            .caches
            .fresh_standing(&entry, now_ms, inner.config.cache_ttl)
        {
            Some(standing) => standing,
            None => {
                // The cold paths' futures are boxed: held inline they would make every
                // admission's future (moved whole before it is polled) several times larger.
                let standing = Box::pin(inner.load_standing(claims, now_ms)).await?;
                inner.caches.keep_standing(&signed, &entry, standing.clone());
                standing
            }
        };
        let device_key = match &standing.device {
            Some(device) => device.key.as_ref().map(|key| key.thumbprint.as_str()),
            None if inner.config.allow_unregistered_devices => None,
            None => {
                return Err(GateError::new(
                    ErrorCode::DeviceNotFound,
                    "This device is not registered.",
                ));
            }
        };
        // 5. The proof, where the token is bound or the policy wants one.
        let bound = claims.cnf.as_ref().map(|cnf| cnf.jkt.as_str());
        let proven = match (handshake.proof, bound) {
            (Some(proof), _) => {
                // A bound token names its key; the device's registered key must be the same.
                let expected = match (bound, device_key) {
                    (Some(bound), Some(registered)) if bound == registered => bound,
                    (Some(_), _) => {
                        return Err(GateError::new(
                            ErrorCode::ProofInvalid,
                            "The token's key is not this device's registered key.",
                        ));
                    }
                    (None, Some(registered)) => registered,
                    (None, None) => {
                        return Err(GateError::new(
                            ErrorCode::ProofInvalid,
                            "This device has no registered key to check a proof against.",
                        ));
                    }
                };
                let check = ProofCheck {
                    proof,
                    method: handshake.method,
                    url: handshake.url,
                    access_token: handshake.access_token,
                    expected_jkt: expected,
                    now_secs,
                };
                match Box::pin(verify_proof(check, inner.authn.stores().replays.as_ref())).await {
                    Ok(()) => true,
                    Err(ProofFailure::Refused(refused)) => return Err(ApiError::from(refused).into()),
                    Err(ProofFailure::Store(error)) => return Err(error.into()),
                }
            }
            (None, Some(_)) => {
                return Err(GateError::new(
                    ErrorCode::ProofInvalid,
                    "This token is bound to a device key: a device proof is required.",
                ));
            }
            (None, None) => match inner.config.proofless {
                ProoflessPolicy::AdmitUnbound => false,
                ProoflessPolicy::Reject => {
                    return Err(GateError::new(
                        ErrorCode::ProofInvalid,
                        "A device proof is required.",
                    ));
                }
            },
        };
        inner.last_seen.record(&claims.dev, now_ms);
        Ok(Principal {
            user_id: claims.sub.clone(),
            device_id: claims.dev.clone(),
            email: standing.user.email.clone(),
            name: standing.user.name.clone(),
            token_id: claims.jti.clone(),
            family: claims.fam.clone(),
            issued_at: claims.iat,
            expires_at: claims.exp,
            proven,
            admitted_epoch: standing.epoch,
        })
    }

    /// Checks the renewal of an open connection (PROTOCOL 5, `reauth`): the new handshake
    /// is admitted exactly as at admission, and its token must be of the same user and
    /// device as the connection's. The connection then lives by the returned principal
    /// (watch it instead of the old one).
    pub async fn renew(
        &self,
        current: &Principal,
        handshake: &Handshake<'_>,
    ) -> Result<Principal, GateError> {
        let renewed = self.admit(handshake).await?;
        if renewed.user_id != current.user_id || renewed.device_id != current.device_id {
            return Err(GateError::new(
                ErrorCode::TokenInvalid,
                "A renewal must carry a token of the connection's user and device.",
            ));
        }
        Ok(renewed)
    }

    /// Resolves when the connection of `principal` should be told to renew (PROTOCOL 5,
    /// `reauth-required`), by the gate's clock: `notice` before its access token expires (at
    /// once when less time is left), but not before halfway through the token's life, so
    /// tokens that live less than twice `notice` are not renewed in a tight loop.
    /// Cancel-safe.
    pub fn renewal_due(
        &self,
        principal: &Principal,
        notice: Duration,
    ) -> impl Future<Output = ()> + Send + 'static {
        let gate = self.inner.clone();
        let notice_ms = i64::try_from(notice.as_millis()).unwrap_or(i64::MAX);
        let expires_ms = principal.expires_at.saturating_mul(1000);
        let issued_ms = principal.issued_at.saturating_mul(1000);
        let halfway_ms = issued_ms.saturating_add(expires_ms.saturating_sub(issued_ms) / 2);
        let due_ms = expires_ms.saturating_sub(notice_ms).max(halfway_ms);
        async move {
            loop {
                let remaining = due_ms.saturating_sub(gate.clock.now_ms());
                if remaining <= 0 {
                    return;
                }
                // Slept in steps no longer than the re-check interval, so a clock that jumps
                // (or a test's manual clock) is followed within one step.
                let step = Duration::from_millis(u64::try_from(remaining).unwrap_or(u64::MAX))
                    .min(gate.config.recheck_interval);
                tokio::time::sleep(step).await;
            }
        }
    }

    /// Resolves when the connection of `principal` must close: its device is revoked, its
    /// session ends (sign-out, signing out everywhere, refresh-token reuse), the account is
    /// deleted, or its access token expires. Cancel-safe; drop it when the connection ends.
    pub fn watch(&self, principal: &Principal) -> Watch {
        watch::watch(self.inner.clone(), principal.clone())
    }

    /// Writes the `lastSeenAt` values recorded since the last write (the background task
    /// does this every [`GateConfig::last_seen_flush`]; call it at shutdown). Returns how
    /// many devices were written.
    pub async fn flush_last_seen(&self) -> Result<usize, StoreError> {
        self.inner.flush_last_seen().await
    }
}

impl GateInner {
    /// Rules 2-4 from the stores: the same check as the bearer routes.
    async fn load_standing(&self, claims: &Claims, now_ms: i64) -> Result<Arc<Standing>, GateError> {
        let user_cell = self.caches.user_cell(&claims.sub);
        // Read the epoch before the stores: an event arriving during the reads then makes
        // this standing stale at once instead of being lost.
        let epoch = user_cell.epoch();
        let standing = self.authn.check_standing(claims.clone()).await?;
        Ok(Arc::new(Standing::new(
            standing.user,
            standing.device,
            user_cell,
            epoch,
            now_ms,
        )))
    }

    async fn flush_last_seen(&self) -> Result<usize, StoreError> {
        let batch = self.last_seen.take();
        if batch.is_empty() {
            return Ok(0);
        }
        let count = batch.len();
        if let Err(error) = self.authn.stores().devices.touch_devices(&batch).await {
            // Not lost: put back, to be written with the next batch.
            self.last_seen.restore(batch);
            return Err(error);
        }
        Ok(count)
    }
}

fn token_error(error: TokenError) -> GateError {
    match error {
        TokenError::Expired => GateError::new(ErrorCode::TokenExpired, "The token has expired."),
        TokenError::Malformed | TokenError::BadSignature | TokenError::WrongType => {
            GateError::new(ErrorCode::TokenInvalid, "Invalid token.")
        }
    }
}
