//! The auth routes on axum, and a hardened server with graceful shutdown.
//!
//! [`router`] mounts [`AuthService::handle`] under the configured prefix, so a sync server
//! can `merge` it into its own router or `nest` it under a path of its own (device proofs
//! are checked against the URL the client sent, mount included). [`serve`] runs a router
//! with the socket peer's address available to the guards, timeouts against slow clients,
//! and graceful shutdown; [`ShutdownSignals`] is the SIGINT/SIGTERM source a binary waits
//! on, and [`GoingAway`] the signal that closes long-lived connections.
//!
//! Served another way (`axum::serve`), the router needs the client's address:
//!
//! ```no_run
//! # async fn run(router: axum::Router) -> std::io::Result<()> {
//! use std::net::SocketAddr;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>()).await
//! # }
//! ```
//!
//! Without it every client would share one rate-limit bucket, so the first request says so
//! in the log, once, as an error.

mod extract;
mod serve;
mod signals;

pub use extract::{Admitted, Caller};
pub use serve::{ServeOptions, serve, serve_with};
pub use signals::{GoingAway, OpenConnection, ShutdownSignals};

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, OriginalUri, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use holdfast_protocol::ErrorCode;
use http::{StatusCode, header};

use crate::exchange::{ApiError, AuthRequest, AuthResponse};
use crate::service::AuthService;

/// A router answering every path under the service's prefix (default `/auth`).
pub fn router(service: AuthService) -> Router {
    let prefix = service.config().route_prefix.clone();
    let wildcard = format!("{prefix}/{{*rest}}");
    let mut router = Router::new().route(&wildcard, any(handle));
    if !prefix.is_empty() {
        router = router.route(&prefix, any(handle));
    }
    router.with_state(service)
}

/// [`router`] plus a JSON 404 for every other path, for a server that only does auth.
pub fn standalone_router(service: AuthService) -> Router {
    router(service).fallback(|| async { ApiError::route_not_found() })
}

async fn handle(State(service): State<AuthService>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip());
    if peer.is_none() {
        warn_unknown_client_address();
    }
    let config = service.config();
    let (limit, timeout) = (config.max_body_bytes, config.body_read_timeout);
    let body = match read_body(&parts.headers, body, limit, timeout).await {
        Ok(body) => body,
        Err(error) => {
            // The body was not read to its end, so the connection cannot carry another
            // request: say so, or a client reusing it would see it dropped mid-request.
            let mut response = error.into_response();
            response
                .headers_mut()
                .insert(header::CONNECTION, http::HeaderValue::from_static("close"));
            return response;
        }
    };
    // Under `Router::nest` the URI is stripped of the mount; the client's own path is kept
    // for the device proofs, which name the URL the client addressed.
    let original_path = Some(client_path(&parts));
    let request = AuthRequest {
        method: parts.method,
        path: parts.uri.path().to_owned(),
        headers: parts.headers,
        body,
        peer,
        original_path,
    };
    service.handle(request).await.into_response()
}

/// The path the client sent (the mount prefix included under `Router::nest`).
fn client_path(parts: &http::request::Parts) -> String {
    parts
        .extensions
        .get::<OriginalUri>()
        .map(|original| original.0.path().to_owned())
        .unwrap_or_else(|| parts.uri.path().to_owned())
}

/// Says once per process, loudly, that requests arrive without the client's address.
pub(crate) fn warn_unknown_client_address() {
    static WARNED: std::sync::Once = std::sync::Once::new();
    WARNED.call_once(|| {
        tracing::error!(
            "requests arrive without the client's address, so every client shares one rate-limit \
             bucket and one IP block: serve the router with holdfast_server_kit::server::serve, \
             or with axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>()),"
        );
    });
}

/// Reads a body of at most `limit` bytes within `timeout`. A declared `Content-Length`
/// over the limit is refused before reading a byte.
async fn read_body(
    headers: &http::HeaderMap,
    body: Body,
    limit: usize,
    timeout: Duration,
) -> Result<bytes::Bytes, ApiError> {
    let too_large = || ApiError {
        status_override: Some(StatusCode::PAYLOAD_TOO_LARGE),
        ..ApiError::new(
            ErrorCode::ValidationError,
            format!("Request body exceeds {limit} bytes."),
        )
    };
    // A request without a body (most GETs) arms no timer and reads nothing.
    if axum::body::HttpBody::is_end_stream(&body) {
        return Ok(bytes::Bytes::new());
    }
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(too_large());
    }
    match tokio::time::timeout(timeout, axum::body::to_bytes(body, limit)).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(error)) if is_length_limit(&error) => Err(too_large()),
        Ok(Err(_)) => Err(ApiError::validation("Request body could not be read.")),
        Err(_) => Err(ApiError {
            status_override: Some(StatusCode::REQUEST_TIMEOUT),
            ..ApiError::validation("Request body was not received in time.")
        }),
    }
}

fn is_length_limit(error: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = source {
        if current.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = current.source();
    }
    false
}

impl IntoResponse for AuthResponse {
    fn into_response(self) -> Response {
        let mut out = Response::new(Body::from(self.body));
        *out.status_mut() = self.status;
        *out.headers_mut() = self.headers;
        out
    }
}

/// An error answers as the routes do: its status, `{"error", "code"}`, `Cache-Control:
/// no-store` and, for a rate limit, `Retry-After`.
impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.to_response().into_response()
    }
}
