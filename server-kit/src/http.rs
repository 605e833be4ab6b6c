//! The auth routes on axum, and a server with graceful shutdown.
//!
//! [`router`] mounts [`AuthService::handle`] under the configured prefix, so a sync server
//! can `merge` it into its own router. [`serve`] runs it standalone with the socket peer's
//! address available to the guards.

use std::future::Future;
use std::net::SocketAddr;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use holdfast_protocol::ErrorCode;
use http::StatusCode;
use tokio::net::TcpListener;

use crate::service::{ApiError, AuthRequest, AuthResponse, AuthService};

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
    router(service).fallback(|| async { to_axum(ApiError::route_not_found().into_response()) })
}

async fn handle(State(service): State<AuthService>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip());
    let limit = service.config().max_body_bytes;
    let body = match axum::body::to_bytes(body, limit).await {
        Ok(body) => body,
        Err(_) => {
            let error = ApiError {
                status_override: Some(StatusCode::PAYLOAD_TOO_LARGE),
                ..ApiError::new(
                    ErrorCode::ValidationError,
                    format!("Request body exceeds {limit} bytes."),
                )
            };
            return to_axum(error.into_response());
        }
    };
    let request = AuthRequest {
        method: parts.method,
        path: parts.uri.path().to_owned(),
        headers: parts.headers,
        body,
        peer,
    };
    to_axum(service.handle(request).await)
}

fn to_axum(response: AuthResponse) -> Response {
    let mut out = (response.status, Body::from(response.body)).into_response();
    out.headers_mut().extend(response.headers);
    out
}

/// Serves `router` on `listener` until `shutdown` completes, then finishes the requests in
/// flight. The socket peer's address reaches the handlers (for rate limits and blocks).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// Completes on SIGINT or SIGTERM (SIGINT only where there is no SIGTERM).
pub async fn shutdown_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}
