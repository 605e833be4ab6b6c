//! Who is calling: the checks every bearer route and the sync gate share (PROTOCOL 3, 5,
//! 6.1 and 7). An [`Authenticator`] holds the configuration, the stores, the token manager
//! and the revocation bus; the [`crate::service::AuthService`] routes and the
//! [`crate::gate::SyncGate`] are both built over one, side by side.
//!
//! A token carrying `cnf.jkt` is only good with a device proof signed by that key, for the
//! method and URL of the request actually made, for that token, fresh and unused. Every
//! entry point here enforces it, so the easy call is the safe one.
//!
//! A token's standing (not revoked, user and device in good standing) is read from the
//! stores in one hop and cached per token; revocations on the
//! [`RevocationBus`] invalidate it before the revoking call
//! returns, and whatever the bus does not carry is seen within
//! [`ServerConfig::standing_cache_ttl`] (5 s by default). `authn/standing.rs` details
//! the bounds.

pub(crate) mod cache;
mod standing;

pub(crate) use standing::judge;

use std::sync::Arc;

use holdfast_protocol::{Claims, ErrorCode};

use crate::clock::Clock;
use crate::config::{ConfigError, MfaKeys, ServerConfig};
use crate::events::RevocationBus;
use crate::exchange::{ApiError, AuthRequest, bearer_token, request_url};
use crate::proofs::{ProofCheck, ProofError, ProofFailure, verify_proof};
use crate::store::{DeviceRecord, Stores, UserRecord};
use crate::tokens::{TokenError, TokenManager};
use cache::StandingCache;

/// The request header that carries a device proof.
pub const DPOP_HEADER: &str = "dpop";

/// A caller whose access token passed every check.
#[derive(Debug, Clone)]
pub struct Authenticated {
    /// The token's claims.
    pub claims: Claims,
    /// The token's user, as stored now.
    pub user: UserRecord,
    /// The token's device, when registered.
    pub device: Option<DeviceRecord>,
}

/// A device proof as another transport carries it (a WebSocket's first message, a header of
/// another framework), with the method and URL the client made it for.
#[derive(Debug, Clone, Copy)]
pub struct TransportProof<'a> {
    /// The proof (a compact JWS, PROTOCOL 6.1).
    pub proof: &'a str,
    /// The method the proof names, e.g. `GET`.
    pub method: &'a str,
    /// The URL the client addressed, e.g. from [`crate::exchange::request_url`].
    pub url: &'a str,
}

/// The shared checks. Cheap to clone.
///
/// For a token that arrives by another transport (a message, a header of another
/// framework), with the device proof that transport carries:
///
/// ```no_run
/// # async fn check(kit: &holdfast_server_kit::Kit, token: &str, proof: &str) {
/// use holdfast_server_kit::authn::TransportProof;
/// let proof = TransportProof { proof, method: "GET", url: "wss://sync.example.com/live" };
/// match kit.authenticator().authenticate_token(token, Some(proof)).await {
///     Ok(caller) => println!("user {} on device {}", caller.user.id, caller.claims.dev),
///     Err(refused) => println!("{}: {}", refused.code, refused.message),
/// }
/// # }
/// ```
#[derive(Clone)]
pub struct Authenticator {
    inner: Arc<Inner>,
}

struct Inner {
    config: ServerConfig,
    stores: Stores,
    tokens: TokenManager,
    mfa_keys: MfaKeys,
    events: RevocationBus,
    /// The bearer routes' standing cache (see the `standing` module).
    cache: Arc<StandingCache>,
    /// Invalidates `cache` on every event of `events` (which holds it weakly).
    _hook: Arc<crate::events::RevocationHook>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    /// Validates `config` and builds the checks over `stores`.
    pub fn new(config: ServerConfig, stores: Stores) -> Result<Authenticator, ConfigError> {
        config.validate()?;
        let tokens = TokenManager::from_config(&config)?;
        let mfa_keys = config.mfa_keys()?;
        let events = RevocationBus::new();
        let cache = Arc::new(StandingCache::new(config.standing_cache_capacity));
        let hook = cache.follow(&events);
        Ok(Authenticator {
            inner: Arc::new(Inner {
                config,
                stores,
                tokens,
                mfa_keys,
                events,
                cache,
                _hook: hook,
            }),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ServerConfig {
        &self.inner.config
    }

    /// The stores.
    pub fn stores(&self) -> &Stores {
        &self.inner.stores
    }

    /// The token manager.
    pub fn tokens(&self) -> &TokenManager {
        &self.inner.tokens
    }

    /// The keys second factors are sealed and hashed with (PROTOCOL 9).
    pub(crate) fn mfa_keys(&self) -> &MfaKeys {
        &self.inner.mfa_keys
    }

    /// Where revocations are published (PROTOCOL 6.5).
    pub fn revocations(&self) -> &RevocationBus {
        &self.inner.events
    }

    /// The clock every check reads.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.config.clock
    }

    fn now_secs(&self) -> i64 {
        self.inner.config.clock.now_secs()
    }

    /// Authenticates a request's bearer token: signature and expiry, `access` type, a valid
    /// `DPoP` proof for this request when the token is bound to a device key, not revoked
    /// (by `jti` or family), the user exists, the device is not revoked and is the user's.
    /// The last three are answered from the standing cache while fresh (see the module
    /// docs for how stale that can be).
    ///
    /// A pending token (a session that owes its second factor, PROTOCOL 9) is refused with
    /// 403 `MFA_REQUIRED`, so an application's own routes behind this check are closed to
    /// it too; [`Authenticator::authenticate_pending`] is for the few routes it may use.
    pub async fn authenticate(&self, request: &AuthRequest) -> Result<Authenticated, ApiError> {
        refuse_pending(self.authenticate_pending(request).await?)
    }

    /// [`Authenticator::authenticate`] that also admits a pending token: for `/me`, sign-out
    /// and completing the second factor.
    pub async fn authenticate_pending(&self, request: &AuthRequest) -> Result<Authenticated, ApiError> {
        let (entry, standing) = self.request_standing(request).await?;
        Ok(standing::authenticated(&entry, &standing))
    }

    /// [`Authenticator::authenticate_pending`]'s standing as the cache holds it (no copy of
    /// the records): for `GET /me`, which only reads the user.
    pub(crate) async fn pending_standing(
        &self,
        request: &AuthRequest,
    ) -> Result<Arc<cache::Standing>, ApiError> {
        Ok(self.request_standing(request).await?.1)
    }

    /// The request's bearer token verified, its device proof checked, and its standing.
    async fn request_standing(
        &self,
        request: &AuthRequest,
    ) -> Result<(Arc<cache::TokenEntry>, Arc<cache::Standing>), ApiError> {
        let token = bearer_token(&request.headers)
            .ok_or_else(|| ApiError::new(ErrorCode::TokenInvalid, "Missing bearer token."))?;
        let (signed, entry) = self.verify_cached(token)?;
        self.check_request_proof(request, token, &entry.claims).await?;
        let standing = self.shared_standing(&signed, &entry).await?;
        Ok((entry, standing))
    }

    /// [`Authenticator::authenticate`] for a token from another transport: the same checks,
    /// with the transport's device proof. A token bound to a device key without a valid
    /// `proof` is refused (401 `PROOF_INVALID`), exactly as on the bearer routes, and so is
    /// a pending one (403 `MFA_REQUIRED`).
    pub async fn authenticate_token(
        &self,
        token: &str,
        proof: Option<TransportProof<'_>>,
    ) -> Result<Authenticated, ApiError> {
        let (signed, entry) = self.verify_cached(token)?;
        if let Some(cnf) = &entry.claims.cnf {
            let proof = proof.ok_or_else(missing_proof)?;
            self.verify_device_proof(ProofCheck {
                proof: proof.proof,
                method: proof.method,
                url: proof.url,
                access_token: token,
                expected_jkt: &cnf.jkt,
                now_secs: self.now_secs(),
            })
            .await?;
        }
        refuse_pending(self.cached_standing(&signed, &entry).await?)
    }

    /// For a token bound to a device key (`cnf.jkt`), checks the request's `DPoP` proof:
    /// made by that key, for this method and URL, for this token, fresh and unused. An
    /// unbound token needs none, and a proof sent with one is ignored.
    ///
    /// Runs before the standing checks, so a bound token without its key learns nothing
    /// about its session.
    pub(crate) async fn check_request_proof(
        &self,
        request: &AuthRequest,
        access_token: &str,
        claims: &Claims,
    ) -> Result<(), ApiError> {
        let Some(cnf) = &claims.cnf else {
            return Ok(());
        };
        let proof = request
            .headers
            .get(DPOP_HEADER)
            .and_then(|value| value.to_str().ok())
            .ok_or_else(missing_proof)?;
        // Boxed: a proof's check (signature, replay store) stays out of the future of an
        // unbound token's request.
        Box::pin(self.verify_request_proof(request, proof, access_token, &cnf.jkt)).await
    }

    /// Checks `proof` as made by the key `expected_jkt` for this request's method and URL
    /// and for `access_token` (empty for a token request, whose proof has no `ath`), and
    /// records it as used: the bearer routes' check and the token requests' binding.
    pub(crate) async fn verify_request_proof(
        &self,
        request: &AuthRequest,
        proof: &str,
        access_token: &str,
        expected_jkt: &str,
    ) -> Result<(), ApiError> {
        let url = self.url_of(request).ok_or_else(|| {
            ApiError::new(
                ErrorCode::ProofInvalid,
                "The request has no valid Host header to check the DPoP proof against.",
            )
        })?;
        self.verify_device_proof(ProofCheck {
            proof,
            method: request.method.as_str(),
            url: &url,
            access_token,
            expected_jkt,
            now_secs: self.now_secs(),
        })
        .await
    }

    /// The URL `request` addressed, as its device proof must name it (see
    /// [`request_url`]); `None` without a usable `Host`.
    pub fn url_of(&self, request: &AuthRequest) -> Option<String> {
        let public_url = self.inner.config.public_url.as_deref();
        request_url(public_url, &request.headers, request.url_path())
    }

    /// Checks a device proof completely (PROTOCOL 6.1) and records it as used. A refused
    /// proof is 401 `PROOF_INVALID` saying which check failed; a replay-store failure is
    /// 500 `INTERNAL`.
    pub async fn verify_device_proof(&self, check: ProofCheck<'_>) -> Result<(), ApiError> {
        let url = check.url;
        verify_proof(check, self.inner.stores.replays.as_ref())
            .await
            .map_err(|failure| match failure {
                // Which URL was expected is what a client behind a proxy or a prefix needs
                // to know (the URL is public; nothing else of the proof is echoed).
                ProofFailure::Refused(ProofError::Url) => ApiError::new(
                    ErrorCode::ProofInvalid,
                    format!(
                        "The device proof is for another URL: this request's URL is {}.",
                        holdfast_protocol::proof::htu_of(url)
                    ),
                ),
                ProofFailure::Refused(error) => ApiError::from(error),
                ProofFailure::Store(error) => ApiError::from(error),
            })
    }
}

impl AsRef<Authenticator> for Authenticator {
    fn as_ref(&self) -> &Authenticator {
        self
    }
}

/// 403 `ACCOUNT_DISABLED` for an account an operator disabled.
pub(crate) fn check_enabled(user: &crate::store::UserRecord) -> Result<(), ApiError> {
    match user.disabled_at_ms {
        Some(_) => Err(ApiError::session_ended(
            holdfast_protocol::EndReason::AccountDisabled,
        )),
        None => Ok(()),
    }
}

/// The message of 403 `MFA_REQUIRED`.
pub(crate) const MFA_REQUIRED_MESSAGE: &str =
    "This session needs its second factor: send a code to /mfa/verify (or a recovery code to /mfa/recover).";

/// Refuses a pending token (PROTOCOL 9) with 403 `MFA_REQUIRED`.
fn refuse_pending(authenticated: Authenticated) -> Result<Authenticated, ApiError> {
    if authenticated.claims.mfa_pending() {
        return Err(ApiError::new(ErrorCode::MfaRequired, MFA_REQUIRED_MESSAGE));
    }
    Ok(authenticated)
}

fn missing_proof() -> ApiError {
    ApiError::new(
        ErrorCode::ProofInvalid,
        "This token is bound to a device key: send a DPoP proof.",
    )
}

/// The refusal for a token that failed verification.
pub(crate) fn access_token_error(error: TokenError) -> ApiError {
    match error {
        TokenError::Expired => ApiError::new(ErrorCode::TokenExpired, "The token has expired."),
        TokenError::Malformed | TokenError::BadSignature | TokenError::WrongType => {
            ApiError::new(ErrorCode::TokenInvalid, "Invalid token.")
        }
    }
}
