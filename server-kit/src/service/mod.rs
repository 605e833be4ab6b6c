//! The auth routes of PROTOCOL section 2 as one framework-agnostic handler:
//! [`AuthService::handle`] takes an [`AuthRequest`] and gives an [`AuthResponse`]
//! (`{status, headers, body}`). [`crate::server`] puts an axum router on top; any other
//! server can call `handle` directly.
//!
//! - `account`: sign-up, sign-in, `/me`;
//! - `refresh`: rotation, reuse detection, grace window; `session`: its start and sign-out;
//! - `device_routes`: device registration, challenges, verification (silent device
//!   re-login), listing and revocation;
//! - `sessions`: listing and ending sessions, and the one way every session ends;
//! - `password`: password change and reset; `email_verification`; `account_tokens`, the
//!   single-use tokens both mail;
//! - `admin`: account deletion and what operators do (disable, enable, list, find).
//!
//! The access-token checks live in [`crate::authn`] (shared with the sync gate); request,
//! response and errors in [`crate::exchange`].

mod account;
mod account_tokens;
mod admin;
mod device_routes;
mod email_verification;
mod mail_out;
mod maintenance;
mod mfa;
mod mfa_codes;
mod password;
mod refresh;
mod session;
mod sessions;

pub use mail_out::AccountMail;

pub use crate::authn::Authenticated;

use std::net::IpAddr;
use std::sync::Arc;

use holdfast_protocol::endpoint::{self, Endpoint, Route};
use http::Method;

use crate::authn::{Authenticator, TransportProof};
use crate::config::{ConfigError, ServerConfig};
use crate::events::{Revocation, RevocationBus};
use crate::exchange::{ApiError, AuthRequest, AuthResponse};
use crate::guards::{self, Guards};
use crate::hooks::{AuthHooks, NoHooks};
use crate::passwords::PasswordHasher;
use crate::proofs::ProofCheck;
use crate::store::{RateLimit, Stores};
use crate::tokens::TokenManager;

/// The auth routes over a configuration and stores, as one framework-agnostic handler.
/// Cheap to clone. Most servers get one from [`crate::Kit`]; this is how another framework
/// calls it:
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use holdfast_server_kit::{AuthRequest, AuthService, ServerConfig, Stores};
///
/// let config = ServerConfig::new(vec![std::env::var("HOLDFAST_SECRET")?]);
/// let service = AuthService::new(config, Stores::sqlite("auth.db")?)?;
/// let request = AuthRequest::new(http::Method::GET, "/auth/me").with_bearer("eyJ...");
/// let answer = service.handle(request).await; // {status, headers, body}
/// assert_eq!(answer.status, 401);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct AuthService {
    inner: Arc<Inner>,
}

struct Inner {
    authn: Authenticator,
    hasher: PasswordHasher,
    guards: Guards,
    hooks: Arc<dyn AuthHooks>,
    /// Where account mail goes; `None` is development mode (tokens in responses).
    mail: Option<Arc<dyn AccountMail>>,
}

impl std::fmt::Debug for AuthService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthService")
            .field("config", self.config())
            .finish_non_exhaustive()
    }
}

impl AsRef<Authenticator> for AuthService {
    fn as_ref(&self) -> &Authenticator {
        &self.inner.authn
    }
}

/// The handler of a declared route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Handler {
    SignUp,
    SignIn,
    Refresh,
    SignOut,
    Me,
    Devices,
    DeviceRegister,
    DeviceChallenge,
    DeviceVerify,
    DeviceRevoke,
    Sessions,
    SessionRevoke,
    SessionsRevokeOthers,
    SignOutAll,
    PasswordChange,
    PasswordResetRequest,
    PasswordReset,
    VerifySend,
    VerifyResend,
    VerifyConfirm,
    DeleteAccount,
    MfaEnable,
    MfaVerifySetup,
    MfaStatus,
    MfaRegenerateCodes,
    MfaDisable,
    MfaTokens(mfa::CodeForTokens),
}

/// The route table: every route of `holdfast_protocol::endpoint`, with its handler.
const TABLE: [(Route, Handler); 29] = [
    (endpoint::SignUp::ROUTE, Handler::SignUp),
    (endpoint::SignIn::ROUTE, Handler::SignIn),
    (endpoint::Refresh::ROUTE, Handler::Refresh),
    (endpoint::SignOut::ROUTE, Handler::SignOut),
    (endpoint::Me::ROUTE, Handler::Me),
    (endpoint::Devices::ROUTE, Handler::Devices),
    (endpoint::RegisterDevice::ROUTE, Handler::DeviceRegister),
    (endpoint::Challenge::ROUTE, Handler::DeviceChallenge),
    (endpoint::Verify::ROUTE, Handler::DeviceVerify),
    (endpoint::RevokeDevice::ROUTE, Handler::DeviceRevoke),
    (endpoint::Sessions::ROUTE, Handler::Sessions),
    (endpoint::RevokeSession::ROUTE, Handler::SessionRevoke),
    (
        endpoint::RevokeOtherSessions::ROUTE,
        Handler::SessionsRevokeOthers,
    ),
    (endpoint::SignOutAll::ROUTE, Handler::SignOutAll),
    (endpoint::ChangePassword::ROUTE, Handler::PasswordChange),
    (
        endpoint::RequestPasswordReset::ROUTE,
        Handler::PasswordResetRequest,
    ),
    (endpoint::ResetPassword::ROUTE, Handler::PasswordReset),
    (endpoint::SendVerification::ROUTE, Handler::VerifySend),
    (endpoint::ResendVerification::ROUTE, Handler::VerifyResend),
    (endpoint::ConfirmEmail::ROUTE, Handler::VerifyConfirm),
    (endpoint::DeleteAccount::ROUTE, Handler::DeleteAccount),
    (endpoint::MfaEnable::ROUTE, Handler::MfaEnable),
    (endpoint::MfaVerifySetup::ROUTE, Handler::MfaVerifySetup),
    (endpoint::GetMfaStatus::ROUTE, Handler::MfaStatus),
    (endpoint::MfaRegenerateCodes::ROUTE, Handler::MfaRegenerateCodes),
    (endpoint::MfaDisable::ROUTE, Handler::MfaDisable),
    (
        endpoint::MfaVerify::ROUTE,
        Handler::MfaTokens(mfa::CodeForTokens::Verify),
    ),
    (
        endpoint::MfaRecover::ROUTE,
        Handler::MfaTokens(mfa::CodeForTokens::Recover),
    ),
    (
        endpoint::MfaStepUp::ROUTE,
        Handler::MfaTokens(mfa::CodeForTokens::StepUp),
    ),
];

impl AuthService {
    /// Validates `config` and builds the service over `stores`.
    pub fn new(config: ServerConfig, stores: Stores) -> Result<AuthService, ConfigError> {
        Ok(AuthService::over(Authenticator::new(config, stores)?))
    }

    /// The routes over checks already built (shared with a [`crate::gate::SyncGate`]).
    pub fn over(authn: Authenticator) -> AuthService {
        AuthService::with_hooks(authn, Arc::new(NoHooks))
    }

    /// [`AuthService::over`] with the application's [`AuthHooks`].
    pub fn with_hooks(authn: Authenticator, hooks: Arc<dyn AuthHooks>) -> AuthService {
        AuthService::with_parts(authn, hooks, None)
    }

    /// [`AuthService::with_hooks`] with where account mail goes (password reset, email
    /// verification); `None` is development mode: tokens come back in the responses, and
    /// the server should say so at start.
    pub fn with_parts(
        authn: Authenticator,
        hooks: Arc<dyn AuthHooks>,
        mail: Option<Arc<dyn AccountMail>>,
    ) -> AuthService {
        let config = authn.config();
        let hasher =
            PasswordHasher::with_max_wait(config.hashing_concurrency, config.argon2, config.hashing_max_wait);
        let guards = Guards::new(
            authn.stores().rate_limits.clone(),
            config.clock.clone(),
            config.ip_block,
            config.account_lockout,
        );
        AuthService {
            inner: Arc::new(Inner {
                authn,
                hasher,
                guards,
                hooks,
                mail,
            }),
        }
    }

    /// The checks the routes share with the sync gate.
    pub fn authenticator(&self) -> &Authenticator {
        &self.inner.authn
    }

    /// The configuration.
    pub fn config(&self) -> &ServerConfig {
        self.inner.authn.config()
    }

    /// The stores.
    pub fn stores(&self) -> &Stores {
        self.inner.authn.stores()
    }

    /// Where revocations are published (PROTOCOL 6.5): the sync gate subscribes to cut off
    /// open connections.
    pub fn revocations(&self) -> &RevocationBus {
        self.inner.authn.revocations()
    }

    /// The token manager (to verify tokens outside the routes).
    pub fn tokens(&self) -> &TokenManager {
        self.inner.authn.tokens()
    }

    /// Authenticates a request's bearer token with every check of the bearer routes
    /// (see [`Authenticator::authenticate`]); a pending token is 403 `MFA_REQUIRED`.
    pub async fn authenticate(&self, request: &AuthRequest) -> Result<Authenticated, ApiError> {
        self.inner.authn.authenticate(request).await
    }

    /// [`AuthService::authenticate`] that admits a pending token (PROTOCOL 9).
    async fn authenticate_pending(&self, request: &AuthRequest) -> Result<Authenticated, ApiError> {
        self.inner.authn.authenticate_pending(request).await
    }

    /// A token from another transport, with that transport's device proof (see
    /// [`Authenticator::authenticate_token`]): a bound token without its proof is refused.
    pub async fn authenticate_token(
        &self,
        token: &str,
        proof: Option<TransportProof<'_>>,
    ) -> Result<Authenticated, ApiError> {
        self.inner.authn.authenticate_token(token, proof).await
    }

    /// Checks a device proof completely and records it as used (see
    /// [`Authenticator::verify_device_proof`]).
    pub async fn verify_device_proof(&self, check: ProofCheck<'_>) -> Result<(), ApiError> {
        self.inner.authn.verify_device_proof(check).await
    }

    /// Handles one request. Never panics on request content; storage failures answer 500
    /// `INTERNAL` and are logged without secrets.
    pub async fn handle(&self, request: AuthRequest) -> AuthResponse {
        match self.dispatch(&request).await {
            Ok(response) => response,
            Err(error) => error.to_response(),
        }
    }

    /// Every route but `GET /me` is boxed: a request's future, moved into the router's box
    /// on every request, stays as small as `/me` needs (inline, all routes made it 5.5 KB).
    async fn dispatch(&self, request: &AuthRequest) -> Result<AuthResponse, ApiError> {
        let (handler, param) = self
            .route(&request.method, &request.path)
            .ok_or_else(ApiError::route_not_found)?;
        let client = guards::client_address(request.peer, &request.headers, &self.config().trusted_proxies);
        match handler {
            Handler::SignUp => Box::pin(self.sign_up(request, client)).await,
            Handler::SignIn => Box::pin(self.sign_in(request, client)).await,
            Handler::Refresh => Box::pin(self.refresh(request, client)).await,
            Handler::SignOut => Box::pin(self.sign_out(request)).await,
            Handler::Me => self.me(request).await,
            Handler::Devices => Box::pin(self.list_devices(request)).await,
            Handler::DeviceRegister => Box::pin(self.register_device(request)).await,
            Handler::DeviceChallenge => Box::pin(self.challenge(request, client)).await,
            Handler::DeviceVerify => Box::pin(self.verify_device(request, client)).await,
            Handler::DeviceRevoke => {
                Box::pin(self.revoke_device(request, param.ok_or_else(ApiError::route_not_found)?)).await
            }
            Handler::Sessions => Box::pin(self.list_sessions(request)).await,
            Handler::SessionRevoke => {
                Box::pin(self.revoke_session(request, param.ok_or_else(ApiError::route_not_found)?)).await
            }
            Handler::SessionsRevokeOthers => Box::pin(self.revoke_other_sessions(request)).await,
            Handler::SignOutAll => Box::pin(self.sign_out_all(request)).await,
            Handler::PasswordChange => Box::pin(self.change_password(request, client)).await,
            Handler::PasswordResetRequest => Box::pin(self.request_password_reset(request, client)).await,
            Handler::PasswordReset => Box::pin(self.reset_password(request, client)).await,
            Handler::VerifySend => Box::pin(self.send_verification(request)).await,
            Handler::VerifyResend => Box::pin(self.resend_verification(request)).await,
            Handler::VerifyConfirm => Box::pin(self.confirm_email(request, client)).await,
            Handler::DeleteAccount => Box::pin(self.delete_account(request, client)).await,
            Handler::MfaEnable => Box::pin(self.mfa_enable(request)).await,
            Handler::MfaVerifySetup => Box::pin(self.mfa_verify_setup(request, client)).await,
            Handler::MfaStatus => Box::pin(self.mfa_status(request)).await,
            Handler::MfaRegenerateCodes => Box::pin(self.mfa_regenerate_codes(request, client)).await,
            Handler::MfaDisable => Box::pin(self.mfa_disable(request, client)).await,
            Handler::MfaTokens(route) => Box::pin(self.mfa_tokens(request, client, route)).await,
        }
    }

    /// The handler of `method` on `path` (under the prefix), and the path's parameter.
    fn route<'a>(&self, method: &Method, path: &'a str) -> Option<(Handler, Option<&'a str>)> {
        let rest = path.strip_prefix(self.config().route_prefix.as_str())?;
        let method = endpoint::Method::parse(method.as_str())?;
        TABLE
            .iter()
            .find_map(|(route, handler)| route.matches(method, rest).map(|param| (*handler, param)))
    }

    fn now_ms(&self) -> i64 {
        self.config().clock.now_ms()
    }

    fn now_secs(&self) -> i64 {
        self.config().clock.now_secs()
    }
}

impl AuthService {
    /// Publishes a revocation (the sync gate and the relay act on it before this returns),
    /// then tells the application's hooks.
    async fn publish(&self, event: Revocation) {
        self.revocations().publish(event.clone());
        let hooks = &self.inner.hooks;
        match &event {
            Revocation::Device { user_id, device_id } => hooks.device_revoked(user_id, device_id).await,
            Revocation::UserDeleted { user_id } => hooks.account_deleted(user_id).await,
            // Sessions' ends reach the hooks from `end_sessions`, with their reasons; an
            // access token ends with its session; a resync concerns no one.
            Revocation::Family { .. }
            | Revocation::UserSessions { .. }
            | Revocation::Token { .. }
            | Revocation::Resync => {}
        }
    }

    /// The answer to a failed password hash or check: 503 with `Retry-After` when every
    /// hashing slot stayed busy past the deadline, else a logged 500.
    fn hashing_error(&self, error: crate::passwords::PasswordError) -> ApiError {
        match error {
            crate::passwords::PasswordError::Busy => {
                let wait = self.config().hashing_max_wait.unwrap_or_default();
                tracing::debug!("refusing a password check: every hashing slot is busy");
                ApiError::unavailable(
                    wait.as_secs().saturating_add(u64::from(wait.subsec_nanos() > 0)),
                    "The server is busy. Try again shortly.",
                )
            }
            error => {
                tracing::error!(%error, "password hashing failed");
                ApiError::internal()
            }
        }
    }
}

impl AuthService {
    /// The client address's standing, checked before anything of the request is read: not
    /// blocked, and within `limit` for `route` (every attempt counts, malformed ones too;
    /// one refused here stores nothing else).
    async fn admit_address(
        &self,
        limit: Option<RateLimit>,
        route: &str,
        client: Option<IpAddr>,
    ) -> Result<(), ApiError> {
        self.inner.guards.check_not_blocked(client).await?;
        self.inner
            .guards
            .limit(limit, &guards::ip_key(route, client))
            .await
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
