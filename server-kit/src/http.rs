//! The auth routes on axum, and a hardened server with graceful shutdown.
//!
//! [`router`] mounts [`AuthService::handle`] under the configured prefix, so a sync server
//! can `merge` it into its own router. [`serve`] runs a router with the socket peer's
//! address available to the guards, timeouts against slow clients, and graceful shutdown;
//! [`ShutdownSignals`] is the SIGINT/SIGTERM source a binary waits on.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use holdfast_protocol::ErrorCode;
use http::{StatusCode, header};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tower::Service;

use crate::service::{ApiError, AuthRequest, AuthResponse, AuthService};

/// How [`serve_with`] treats connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeOptions {
    /// How long a new connection may stay silent before its first byte; a connection that
    /// sends nothing is closed after it.
    pub first_byte_timeout: Duration,
    /// How long a client may take to send a request's headers, and how long a kept-alive
    /// connection may stay idle between requests. Without a bound, idle or trickling
    /// clients (slowloris) hold connections and memory forever.
    pub header_read_timeout: Duration,
    /// Connections open at once; one more is answered 503 `SERVICE_UNAVAILABLE` with
    /// `Retry-After` and closed.
    pub max_connections: usize,
    /// Connections open at once from one address (an IPv6 client counts as its /64); one
    /// more is answered 429 `RATE_LIMITED` with `Retry-After` and closed.
    pub max_connections_per_address: usize,
    /// Addresses exempt from the per-address cap: the trusted proxies, through which many
    /// clients arrive.
    pub exempt_addresses: Vec<IpAddr>,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            first_byte_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(30),
            max_connections: 8192,
            max_connections_per_address: 256,
            exempt_addresses: Vec::new(),
        }
    }
}

/// Open connections, in all and per address.
#[derive(Default)]
struct Connections {
    total: usize,
    per_address: HashMap<IpAddr, usize>,
}

/// Counts a connection while it lives.
struct ConnectionSlot {
    connections: Arc<Mutex<Connections>>,
    address: Option<IpAddr>,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut connections = self.connections.lock().unwrap_or_else(|e| e.into_inner());
        connections.total = connections.total.saturating_sub(1);
        if let Some(address) = self.address
            && let Some(count) = connections.per_address.get_mut(&address)
        {
            *count = count.saturating_sub(1);
            if *count == 0 {
                connections.per_address.remove(&address);
            }
        }
    }
}

/// Why a connection was not taken.
enum Refusal {
    TooMany,
    TooManyFromAddress,
}

/// Takes a slot for a connection from `peer`, or says which cap refuses it.
fn take_slot(
    connections: &Arc<Mutex<Connections>>,
    peer: IpAddr,
    options: &ServeOptions,
) -> Result<ConnectionSlot, Refusal> {
    let mut state = connections.lock().unwrap_or_else(|e| e.into_inner());
    let address = (!options.exempt_addresses.contains(&peer)).then(|| address_group(peer));
    if let Some(address) = address
        && state.per_address.get(&address).copied().unwrap_or(0) >= options.max_connections_per_address
    {
        return Err(Refusal::TooManyFromAddress);
    }
    if state.total >= options.max_connections {
        return Err(Refusal::TooMany);
    }
    state.total += 1;
    if let Some(address) = address {
        *state.per_address.entry(address).or_insert(0) += 1;
    }
    Ok(ConnectionSlot {
        connections: Arc::clone(connections),
        address,
    })
}

/// An IPv4 address as it is; an IPv6 address as its /64 network.
fn address_group(peer: IpAddr) -> IpAddr {
    match peer {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
        v4 => v4,
    }
}

/// Answers a refused connection with a complete HTTP response (PROTOCOL section 1 and
/// 6.3) and closes it, spending at most a second on it.
async fn refuse(mut stream: tokio::net::TcpStream, refusal: Refusal) {
    use tokio::io::AsyncWriteExt;
    let error = match refusal {
        Refusal::TooMany => {
            ApiError::unavailable(1, "The server has too many connections. Try again shortly.")
        }
        Refusal::TooManyFromAddress => ApiError::rate_limited(1000),
    };
    let status = error.code.status();
    let reason = StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Refused");
    let body =
        serde_json::to_vec(&holdfast_protocol::ErrorBody::new(error.code, error.message)).unwrap_or_default();
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncache-control: no-store\r\nretry-after: 1\r\ndate: {}\r\nconnection: close\r\ncontent-length: {}\r\n\r\n",
        httpdate::fmt_http_date(std::time::SystemTime::now()),
        body.len()
    );
    let write = async {
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(&body).await?;
        stream.shutdown().await
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), write).await;
}

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
    let config = service.config();
    let (limit, timeout) = (config.max_body_bytes, config.body_read_timeout);
    let body = match read_body(&parts.headers, body, limit, timeout).await {
        Ok(body) => body,
        Err(error) => {
            // The body was not read to its end, so the connection cannot carry another
            // request: say so, or a client reusing it would see it dropped mid-request.
            let mut response = to_axum(error.into_response());
            response
                .headers_mut()
                .insert(header::CONNECTION, http::HeaderValue::from_static("close"));
            return response;
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

fn to_axum(response: AuthResponse) -> Response {
    let mut out = (response.status, Body::from(response.body)).into_response();
    out.headers_mut().extend(response.headers);
    out
}

/// Serves `router` on `listener` until `shutdown` completes, then stops accepting and
/// waits for the connections in flight to finish their requests.
///
/// Each request carries the peer's `ConnectInfo<SocketAddr>` (for rate limits and blocks);
/// headers must arrive within the default [`ServeOptions::header_read_timeout`];
/// `TCP_NODELAY` is set because every answer is one small write; connection upgrades
/// (WebSocket) are supported. Callers that need a deadline on the wait race this future
/// against a timer.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, router, shutdown, ServeOptions::default()).await
}

/// [`serve`] with explicit options.
pub async fn serve_with(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    options: ServeOptions,
) -> std::io::Result<()> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(options.header_read_timeout);
    let builder = builder.http1_only();
    let graceful = GracefulShutdown::new();
    let connections = Arc::new(Mutex::new(Connections::default()));
    let first_byte_timeout = options.first_byte_timeout;
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: back off rather than spin.
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let slot = match take_slot(&connections, peer.ip(), &options) {
            Ok(slot) => slot,
            Err(refusal) => {
                tracing::debug!(%peer, "refusing a connection over the connection caps");
                tokio::spawn(refuse(stream, refusal));
                continue;
            }
        };
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "could not set TCP_NODELAY");
        }
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            // A Router is always ready, so `call` needs no `poll_ready` first.
            router.clone().call(request)
        });
        let builder = builder.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let _slot = slot;
            // hyper's header timer only starts once a first byte arrived (the version
            // sniffing before it has no deadline), so a silent connection is bounded here.
            let mut probe = [0u8; 1];
            match tokio::time::timeout(first_byte_timeout, stream.peek(&mut probe)).await {
                Ok(Ok(n)) if n > 0 => {}
                _ => return,
            }
            let connection = builder
                .serve_connection_with_upgrades(TokioIo::new(stream), service)
                .into_owned();
            if let Err(error) = watcher.watch(connection).await {
                tracing::debug!(%error, %peer, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// SIGINT and SIGTERM (Ctrl-C where there are no Unix signals), listened for from the
/// moment [`ShutdownSignals::register`] returns: install it before announcing readiness, or
/// a supervisor's early signal kills the process instead of stopping it gracefully.
pub struct ShutdownSignals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
    #[cfg(not(unix))]
    ctrl_c: tokio::signal::windows::CtrlC,
}

impl std::fmt::Debug for ShutdownSignals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ShutdownSignals")
    }
}

impl ShutdownSignals {
    /// Starts listening for the signals. Needs a running tokio runtime.
    pub fn register() -> std::io::Result<ShutdownSignals> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(ShutdownSignals {
                interrupt: signal(SignalKind::interrupt())?,
                terminate: signal(SignalKind::terminate())?,
            })
        }
        #[cfg(not(unix))]
        {
            Ok(ShutdownSignals {
                ctrl_c: tokio::signal::windows::ctrl_c()?,
            })
        }
    }

    /// Waits for the next signal and names it.
    pub async fn recv(&mut self) -> &'static str {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.interrupt.recv() => "SIGINT",
                _ = self.terminate.recv() => "SIGTERM",
            }
        }
        #[cfg(not(unix))]
        {
            self.ctrl_c.recv().await;
            "Ctrl-C"
        }
    }
}
