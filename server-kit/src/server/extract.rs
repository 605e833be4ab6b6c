//! axum extractors for an application's own routes: [`Caller`], a request whose bearer
//! token passed every check of the kit's bearer routes (its device proof included), and
//! [`Admitted`], a sync connection the gate admitted (PROTOCOL 5).
//!
//! They read the kit's parts from the router's state, through `FromRef`: give the router
//! the [`Kit`](crate::Kit) (which provides both), or a state of your own that provides an
//! [`Authenticator`] (for [`Caller`]) and a [`SyncGate`] (for [`Admitted`]).
//!
//! ```no_run
//! use axum::{Router, routing::get};
//! use holdfast_server_kit::Kit;
//! use holdfast_server_kit::server::Caller;
//!
//! async fn profile(caller: Caller) -> String {
//!     format!("signed in as {}", caller.user.email)
//! }
//!
//! # fn app(kit: Kit) -> Router {
//! Router::new()
//!     .route("/profile", get(profile))
//!     .with_state(kit.clone())
//!     .merge(kit.router())
//! # }
//! ```
//!
//! A refusal answers as the kit's routes do (`{"error", "code"}` with the code's status);
//! a bound token without its proof, or with a proof for another URL, is refused.

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use http::{HeaderMap, Method};

use super::client_path;
use crate::authn::{Authenticated, Authenticator, DPOP_HEADER};
use crate::exchange::{ApiError, AuthRequest, bearer_token, request_url};
use crate::gate::{GateError, Handshake, Principal, SyncGate};

/// The caller of an application route: the bearer token's claims, its user and device, as
/// [`crate::authn::Authenticator::authenticate`] checked them.
#[derive(Debug, Clone)]
pub struct Caller(pub Authenticated);

impl std::ops::Deref for Caller {
    type Target = Authenticated;

    fn deref(&self) -> &Authenticated {
        &self.0
    }
}

impl<S> FromRequestParts<S> for Caller
where
    Authenticator: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Caller, ApiError> {
        let authn = Authenticator::from_ref(state);
        let request = AuthRequest {
            method: parts.method.clone(),
            path: parts.uri.path().to_owned(),
            headers: only_auth_headers(&parts.headers),
            body: bytes::Bytes::new(),
            peer: None,
            original_path: Some(client_path(parts)),
        };
        authn.authenticate(&request).await.map(Caller)
    }
}

/// The headers the checks read, so a request's other headers are not copied.
fn only_auth_headers(headers: &HeaderMap) -> HeaderMap {
    let mut kept = HeaderMap::new();
    for name in [http::header::AUTHORIZATION, http::header::HOST] {
        if let Some(value) = headers.get(&name) {
            kept.insert(name, value.clone());
        }
    }
    if let Some(value) = headers.get(DPOP_HEADER) {
        kept.insert(DPOP_HEADER, value.clone());
    }
    kept
}

/// A sync connection the gate admitted from its upgrade request's `Authorization` and
/// `DPoP` headers (PROTOCOL 5): who it is, to pass to [`crate::gate::SyncGate::watch`],
/// which says when to close it.
#[derive(Debug, Clone)]
pub struct Admitted(pub Principal);

impl std::ops::Deref for Admitted {
    type Target = Principal;

    fn deref(&self) -> &Principal {
        &self.0
    }
}

impl<S> FromRequestParts<S> for Admitted
where
    SyncGate: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Admitted, ApiError> {
        let gate = SyncGate::from_ref(state);
        if parts.method != Method::GET {
            return Err(ApiError::route_not_found());
        }
        let token = bearer_token(&parts.headers).ok_or_else(|| {
            ApiError::new(
                holdfast_protocol::ErrorCode::TokenInvalid,
                "Missing bearer token.",
            )
        })?;
        let proof = parts
            .headers
            .get(DPOP_HEADER)
            .and_then(|value| value.to_str().ok())
            .map(str::trim);
        let public_url = gate.authenticator().config().public_url.as_deref();
        // Without a usable Host the URL is empty, which no proof names.
        let url = request_url(public_url, &parts.headers, &client_path(parts)).unwrap_or_default();
        let handshake = Handshake {
            access_token: token,
            proof,
            method: "GET",
            url: &url,
        };
        gate.admit(&handshake)
            .await
            .map(Admitted)
            .map_err(|error: GateError| ApiError::from(error))
    }
}
