//! Serving a router: the client's address on every request, timeouts against slow
//! clients, caps on open connections, and graceful shutdown.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use http::StatusCode;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tower::Service;

use crate::exchange::ApiError;

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
