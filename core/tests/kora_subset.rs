//! The client against a Kora-shaped server: PROTOCOL sections 2 to 4 only.
//!
//! A rewriting proxy owned by the test sits in front of the real server kit and makes it
//! answer the way `@korajs/auth` does: error bodies are `{"error": "..."}` with no `code`
//! member (PROTOCOL 1 and 6.3), no `Retry-After`, success bodies carry only the members
//! section 2 lists, and the device routes Holdfast's silent re-login uses (PROTOCOL 6.4)
//! are either not mounted at all (404, as in Kora's quick start) or demand a bearer token
//! (as in Kora's device guide). The client must sign up, sign in, refresh and sign out
//! through it, map the code-less rejections by HTTP status, end a session the server
//! definitively refused (there is no device re-login to fall back on), and keep the session
//! through a Kora deployment's 5xx and HTML pages.

mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use holdfast_core::clock::{Clock, SystemClock};
use holdfast_core::error::TransientCause;
use holdfast_core::transport::{Failure, Transport, TransportConfig};
use holdfast_core::{AuthClient, AuthError, AuthEvent, AuthState, SignOutReason};
use holdfast_protocol::endpoint::{Challenge, Me, NoBody, SignIn};
use holdfast_protocol::wire::{ChallengeRequest, SignInRequest};
use holdfast_protocol::{Claims, ErrorCode};
use serde_json::{Value, json};
use support::{Device, Events, Fault, FaultProxy, Server, email};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const SIGNUP: &str = "/auth/signup";
const SIGNIN: &str = "/auth/signin";
const REFRESH: &str = "/auth/refresh";
const SIGNOUT: &str = "/auth/signout";
const CHALLENGE: &str = "/auth/device/challenge";
const VERIFY: &str = "/auth/device/verify";

/// `user` as PROTOCOL section 2 defines it.
const USER_MEMBERS: &[&str] = &["id", "email", "name", "emailVerified", "createdAt"];
/// `tokens` of sign-up and sign-in, and the `data` of `/refresh`.
const TOKEN_MEMBERS: &[&str] = &["accessToken", "refreshToken"];

// ---------------------------------------------------------------------------------------
// The Kora-shaping proxy
// ---------------------------------------------------------------------------------------

/// How the Kora deployment mounts the device routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DeviceRoutes {
    /// Not mounted (Kora's quick start wires only sign-up, sign-in, refresh, sign-out and
    /// me): every `/auth/device/*` and `/auth/devices` path is 404 `{"error":"Not found"}`.
    Absent,
    /// Mounted as in Kora's device guide: `/device/challenge` requires a bearer token, so a
    /// request without one (PROTOCOL 6.4's silent re-login) is 401 without a code.
    BearerOnly,
}

/// A canned answer for one path, instead of forwarding.
#[derive(Debug, Clone)]
struct Canned {
    /// Status line after the version, e.g. `503 Service Unavailable`.
    status: &'static str,
    content_type: &'static str,
    body: String,
}

struct KoraState {
    upstream: SocketAddr,
    device_routes: DeviceRoutes,
    canned: HashMap<String, Canned>,
    seen: HashMap<String, usize>,
    /// What the proxy removed from the server's answers, as `"<path>: <member>"`.
    removed: Vec<String>,
}

/// The proxy; stops when dropped.
struct KoraProxy {
    addr: SocketAddr,
    state: Arc<Mutex<KoraState>>,
    task: tokio::task::JoinHandle<()>,
}

impl KoraProxy {
    async fn start(upstream: SocketAddr, device_routes: DeviceRoutes) -> KoraProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let state = Arc::new(Mutex::new(KoraState {
            upstream,
            device_routes,
            canned: HashMap::new(),
            seen: HashMap::new(),
            removed: Vec::new(),
        }));
        let shared = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(serve(client, shared.clone()));
            }
        });
        KoraProxy { addr, state, task }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests seen for `path` (forwarded or answered by the proxy).
    fn count(&self, path: &str) -> usize {
        self.lock().seen.get(path).copied().unwrap_or(0)
    }

    /// Answers `path` with `canned` from now on (`None`: forward again).
    fn answer(&self, path: &str, canned: Option<Canned>) {
        let mut state = self.lock();
        match canned {
            Some(canned) => state.canned.insert(path.to_owned(), canned),
            None => state.canned.remove(path),
        };
    }

    /// Whether the proxy removed `member` from an answer to `path` (so the server did send
    /// it, and the client did not see it).
    fn removed(&self, path: &str, member: &str) -> bool {
        let wanted = format!("{path}: {member}");
        self.lock().removed.contains(&wanted)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, KoraState> {
        self.state.lock().expect("proxy state")
    }
}

impl Drop for KoraProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One HTTP/1.1 message: the start line and headers (without the blank line), and the
/// body, de-chunked.
struct Message {
    head: String,
    body: Vec<u8>,
}

impl Message {
    fn start_line(&self) -> &str {
        self.head.lines().next().unwrap_or_default()
    }

    /// Header lines, without the start line.
    fn headers(&self) -> impl Iterator<Item = &str> {
        self.head.split("\r\n").skip(1)
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim().eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }
}

/// A socket and the bytes read from it but not consumed yet (keep-alive).
struct Peer {
    stream: TcpStream,
    buffer: Vec<u8>,
}

impl Peer {
    fn new(stream: TcpStream) -> Peer {
        let _ = stream.set_nodelay(true);
        Peer {
            stream,
            buffer: Vec::with_capacity(4096),
        }
    }

    async fn fill(&mut self) -> Option<()> {
        let mut chunk = [0u8; 8192];
        let n = self.stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        self.buffer.extend_from_slice(&chunk[..n]);
        Some(())
    }

    /// Waits for `needle` in the buffer and returns its position.
    async fn find(&mut self, needle: &[u8]) -> Option<usize> {
        loop {
            if let Some(at) = find(&self.buffer, needle) {
                return Some(at);
            }
            self.fill().await?;
        }
    }

    async fn take(&mut self, len: usize) -> Option<Vec<u8>> {
        while self.buffer.len() < len {
            self.fill().await?;
        }
        Some(self.buffer.drain(..len).collect())
    }

    /// Reads one message with a `Content-Length` body, a chunked body, or none.
    async fn read_message(&mut self) -> Option<Message> {
        let head_end = self.find(b"\r\n\r\n").await?;
        let head = String::from_utf8_lossy(&self.buffer[..head_end]).into_owned();
        self.buffer.drain(..head_end + 4);
        let mut message = Message {
            head,
            body: Vec::new(),
        };
        let chunked = message
            .header("transfer-encoding")
            .is_some_and(|value| value.to_ascii_lowercase().contains("chunked"));
        if chunked {
            message.body = self.read_chunked().await?;
        } else {
            let length = message
                .header("content-length")
                .and_then(|value| value.parse::<usize>().ok())
                .unwrap_or(0);
            message.body = self.take(length).await?;
        }
        Some(message)
    }

    async fn read_chunked(&mut self) -> Option<Vec<u8>> {
        let mut body = Vec::new();
        loop {
            let line_end = self.find(b"\r\n").await?;
            let line = String::from_utf8_lossy(&self.buffer[..line_end]).into_owned();
            self.buffer.drain(..line_end + 2);
            let size = usize::from_str_radix(line.split(';').next()?.trim(), 16).ok()?;
            if size == 0 {
                // Trailers, up to an empty line.
                loop {
                    let end = self.find(b"\r\n").await?;
                    self.buffer.drain(..end + 2);
                    if end == 0 {
                        return Some(body);
                    }
                }
            }
            let chunk = self.take(size + 2).await?;
            body.extend_from_slice(&chunk[..size]);
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|window| window == needle)
}

/// Rebuilds a message with `Content-Length` framing, leaving out the headers in `drop`.
fn encode(start_line: &str, headers: &[&str], drop: &[&str], body: &[u8]) -> Vec<u8> {
    let mut out = format!("{start_line}\r\n");
    for line in headers {
        let name = line.split(':').next().unwrap_or_default().trim();
        let framing = ["content-length", "transfer-encoding", "connection"];
        if framing
            .iter()
            .chain(drop)
            .any(|dropped| name.eq_ignore_ascii_case(dropped))
        {
            continue;
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

fn json_response(status: &str, body: &Value) -> Vec<u8> {
    let body = body.to_string();
    encode(
        &format!("HTTP/1.1 {status}"),
        &["Content-Type: application/json"],
        &[],
        body.as_bytes(),
    )
}

/// One client connection: requests one at a time (keep-alive), each answered by the proxy
/// or forwarded on a fresh upstream connection and reshaped.
async fn serve(client: TcpStream, state: Arc<Mutex<KoraState>>) {
    let mut client = Peer::new(client);
    loop {
        let Some(request) = client.read_message().await else {
            return;
        };
        let mut parts = request.start_line().split(' ');
        let method = parts.next().unwrap_or_default().to_owned();
        let path = parts
            .next()
            .unwrap_or_default()
            .split('?')
            .next()
            .unwrap_or_default()
            .to_owned();
        let bearer = request
            .header("authorization")
            .is_some_and(|value| value.len() > "Bearer ".len() && value.starts_with("Bearer "));
        let (canned, upstream, device_routes) = {
            let mut state = state.lock().expect("proxy state");
            *state.seen.entry(path.clone()).or_default() += 1;
            (
                state.canned.get(&path).cloned(),
                state.upstream,
                state.device_routes,
            )
        };
        let answer = if let Some(canned) = canned {
            encode(
                &format!("HTTP/1.1 {}", canned.status),
                &[&format!("Content-Type: {}", canned.content_type)],
                &[],
                canned.body.as_bytes(),
            )
        } else if let Some(answer) = kora_route(device_routes, &path, bearer) {
            answer
        } else {
            let Some(response) = forward(upstream, &request).await else {
                return;
            };
            reshape(&method, &path, response, &state)
        };
        if client.stream.write_all(&answer).await.is_err() {
            return;
        }
    }
}

/// What Kora answers itself where the server kit would do more.
fn kora_route(device_routes: DeviceRoutes, path: &str, bearer: bool) -> Option<Vec<u8>> {
    let device_path = path == "/auth/devices" || path.starts_with("/auth/device/");
    match device_routes {
        DeviceRoutes::Absent if device_path => {
            Some(json_response("404 Not Found", &json!({"error": "Not found"})))
        }
        DeviceRoutes::BearerOnly if path == CHALLENGE && !bearer => Some(json_response(
            "401 Unauthorized",
            &json!({"error": "Missing or invalid access token"}),
        )),
        _ => None,
    }
}

/// Sends `request` to the server on a new connection and reads its answer.
///
/// The `DPoP` header goes through: a Kora server ignores it, and the server kit behind this
/// proxy, unlike Kora, binds the tokens of a keyed device to its key and demands it.
async fn forward(upstream: SocketAddr, request: &Message) -> Option<Message> {
    let stream = TcpStream::connect(upstream).await.ok()?;
    let mut server = Peer::new(stream);
    let headers: Vec<&str> = request.headers().collect();
    let bytes = encode(request.start_line(), &headers, &[], &request.body);
    server.stream.write_all(&bytes).await.ok()?;
    server.read_message().await
}

/// Makes the server kit's answer Kora's: no `code`, no `Retry-After`, and only the
/// members PROTOCOL section 2 lists on the routes Kora has.
fn reshape(method: &str, path: &str, response: Message, state: &Mutex<KoraState>) -> Vec<u8> {
    let mut removed = Vec::new();
    if response.header("retry-after").is_some() {
        removed.push(format!("{path}: Retry-After"));
    }
    let status: u16 = response
        .start_line()
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = match serde_json::from_slice::<Value>(&response.body) {
        Ok(mut value) => {
            if status >= 400 {
                keep_only(&mut value, &["error"], path, &mut removed);
            } else {
                keep_only(&mut value, &["data"], path, &mut removed);
                if let Some(data) = value.get_mut("data") {
                    shape_data(method, path, data, &mut removed);
                }
            }
            value.to_string().into_bytes()
        }
        Err(_) => response.body.clone(),
    };
    state.lock().expect("proxy state").removed.extend(removed);
    let headers: Vec<&str> = response.headers().collect();
    encode(response.start_line(), &headers, &["retry-after"], &body)
}

fn shape_data(method: &str, path: &str, data: &mut Value, removed: &mut Vec<String>) {
    match (method, path) {
        ("POST", SIGNUP | SIGNIN) => {
            keep_only(data, &["user", "tokens"], path, removed);
            if let Some(user) = data.get_mut("user") {
                keep_only(user, USER_MEMBERS, path, removed);
            }
            if let Some(tokens) = data.get_mut("tokens") {
                keep_only(tokens, TOKEN_MEMBERS, path, removed);
            }
        }
        ("POST", REFRESH) => keep_only(data, TOKEN_MEMBERS, path, removed),
        ("POST", SIGNOUT) => keep_only(data, &["success"], path, removed),
        ("GET", "/auth/me") => keep_only(data, USER_MEMBERS, path, removed),
        _ => {}
    }
}

/// Removes every member of the object `value` not in `allowed`, noting each.
fn keep_only(value: &mut Value, allowed: &[&str], path: &str, removed: &mut Vec<String>) {
    if let Value::Object(members) = value {
        members.retain(|key, _| {
            let keep = allowed.contains(&key.as_str());
            if !keep {
                removed.push(format!("{path}: {key}"));
            }
            keep
        });
    }
}

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// A server whose access tokens live `ttl_secs`, behind a Kora-shaping proxy.
async fn kora(ttl_secs: i64, device_routes: DeviceRoutes) -> (Server, KoraProxy) {
    let server = Server::start_with(|config| config.access_ttl_secs = ttl_secs).await;
    let proxy = KoraProxy::start(server.addr, device_routes).await;
    (server, proxy)
}

/// A client on real time: a token that is really expired, not one the server's `Date`
/// header would call fresh again.
fn client(device: &Device, url: &str) -> AuthClient {
    device.client_with_clock(url, Arc::new(SystemClock))
}

/// Sleeps until `access` has expired (and the client's margin with it).
async fn wait_until_expired(access: &str) {
    let expires_ms = Claims::decode_unverified(access).expect("a JWT").exp * 1000;
    let wait = expires_ms - SystemClock.now_ms() + 100;
    tokio::time::sleep(Duration::from_millis(u64::try_from(wait.max(0)).unwrap_or(0))).await;
}

/// Whether the store file still holds a session record (sealed or not).
fn stored_session(path: &Path) -> bool {
    let conn = rusqlite::Connection::open(path).expect("open the client store");
    conn.query_row("SELECT count(*) FROM records WHERE name = 'session'", [], |row| {
        row.get::<_, i64>(0)
    })
    .expect("count sessions")
        > 0
}

fn transport(url: &str) -> Transport {
    let mut config = TransportConfig::new(url);
    config.connect_timeout = Duration::from_millis(500);
    config.request_timeout = Duration::from_secs(2);
    Transport::new(config).expect("transport")
}

// ---------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn the_proxy_answers_like_kora() {
    let (_server, proxy) = kora(900, DeviceRoutes::Absent).await;
    let device = Device::new();
    let client = client(&device, &proxy.url());
    client.initialize().await;
    let address = email("shape");
    client.sign_up(&address, support::PASSWORD, None).await.unwrap();
    let access = client.access_token().await.unwrap();

    let transport = transport(&proxy.url());
    // The server kit sends INVALID_CREDENTIALS; Kora's body has no code.
    let wrong = SignInRequest {
        email: address.clone(),
        password: "not the password".into(),
        device_id: None,
        device_public_key: None,
        device_name: None,
    };
    match transport.send(&SignIn, &wrong, None, None).await {
        Err(Failure::Rejected {
            status: 401,
            code: None,
            ..
        }) => {}
        other => panic!("expected a 401 without code, got {other:?}"),
    }
    assert!(proxy.removed(SIGNIN, "code"), "the server's code was removed");
    // No device re-login routes.
    let someone = ChallengeRequest {
        device_id: "dev-someone".into(),
    };
    match transport.send(&Challenge, &someone, None, None).await {
        Err(Failure::Rejected {
            status: 404,
            code: None,
            message,
            ..
        }) => assert_eq!(message, "Not found"),
        other => panic!("expected 404 Not found, got {other:?}"),
    }
    // Success bodies keep Kora's shape; GET /me works with the client's token (bound to
    // its device key, so with the client's proof).
    let proof = client
        .device_proof("GET", &transport.url_for("/me"), None)
        .await
        .unwrap();
    let me = transport
        .send(&Me, &NoBody, Some(&access), Some(&proof))
        .await
        .unwrap()
        .value;
    assert_eq!(Some(me), client.current_user());
    match transport.send(&Me, &NoBody, Some("not-a-token"), None).await {
        Err(Failure::Rejected {
            status: 401,
            code: None,
            ..
        }) => {}
        other => panic!("expected a 401 without code, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_up_sign_in_refresh_and_sign_out_against_kora() {
    // Four-second tokens: short enough to wait for, long enough that the refreshed one is
    // still fresh when a restarted client reads it.
    let (server, proxy) = kora(4, DeviceRoutes::Absent).await;
    let device = Device::new();
    let client = client(&device, &proxy.url());
    assert_eq!(
        client.initialize().await,
        AuthState::SignedOut {
            reason: SignOutReason::NoStoredSession
        }
    );
    let address = email("kora");
    let user = client
        .sign_up(&address, support::PASSWORD, Some("Ada"))
        .await
        .unwrap();
    assert_eq!(user.email, address);
    assert_eq!(user.name.as_deref(), Some("Ada"));
    assert_eq!(client.current_user(), Some(user.clone()));
    assert_eq!(
        client.state(),
        AuthState::SignedIn {
            user: user.clone(),
            token_fresh: true
        }
    );
    let first = client.access_token().await.unwrap();
    assert_eq!(proxy.count(REFRESH), 0, "a fresh token is served from memory");

    // Expired for real: the next call refreshes through Kora's /refresh.
    let events = Events::record(&client);
    wait_until_expired(&first).await;
    let second = client.access_token().await.unwrap();
    assert_ne!(second, first);
    assert_eq!(proxy.count(REFRESH), 1);
    assert_eq!(events.count(|e| *e == AuthEvent::Refreshed), 1);
    assert_eq!(
        client.state(),
        AuthState::SignedIn {
            user: user.clone(),
            token_fresh: true
        }
    );

    // The rotated pair was persisted: a restart uses it without another refresh.
    let restarted = self::client(&device, &proxy.url());
    assert_eq!(
        restarted.initialize().await,
        AuthState::SignedIn {
            user: user.clone(),
            token_fresh: true
        }
    );
    assert_eq!(restarted.access_token().await.unwrap(), second);
    assert_eq!(restarted.current_user(), Some(user.clone()));
    assert_eq!(proxy.count(REFRESH), 1);
    drop(restarted);

    // Sign-in from another device.
    let other_device = Device::new();
    let other = self::client(&other_device, &proxy.url());
    other.initialize().await;
    let signed_in = other
        .sign_in(&address, support::PASSWORD)
        .await
        .unwrap()
        .into_user();
    assert_eq!(signed_in.id, user.id);
    assert!(other.state().is_signed_in());
    assert_eq!(proxy.count(SIGNIN), 1);

    // Sign-out: wiped locally, revoked on the server through Kora's /signout.
    let claims = Claims::decode_unverified(&second).unwrap();
    client.sign_out().await.unwrap();
    assert_eq!(
        client.state(),
        AuthState::SignedOut {
            reason: SignOutReason::UserSignedOut
        }
    );
    assert_eq!(client.current_user(), None);
    assert_eq!(client.flush_outbox().await.unwrap(), 0);
    assert!(proxy.count(SIGNOUT) >= 1);
    assert!(
        server
            .stores
            .tokens
            .is_revoked(&claims.jti, claims.fam.as_deref())
            .await
            .unwrap(),
        "the server revoked the session"
    );
    assert!(!stored_session(&device.path()));
    let restarted = self::client(&device, &proxy.url());
    assert_eq!(
        restarted.initialize().await,
        AuthState::SignedOut {
            reason: SignOutReason::NoStoredSession
        }
    );
    // The other device's session is its own.
    other.access_token().await.unwrap();
    assert!(other.state().is_signed_in());
}

#[tokio::test(flavor = "multi_thread")]
async fn code_less_rejections_at_sign_in_and_sign_up_map_by_status() {
    let (_server, proxy) = kora(900, DeviceRoutes::Absent).await;
    let first = Device::new();
    let owner = client(&first, &proxy.url());
    owner.initialize().await;
    let address = email("wrong");
    owner.sign_up(&address, support::PASSWORD, None).await.unwrap();

    let device = Device::new();
    let client = client(&device, &proxy.url());
    client.initialize().await;
    assert_eq!(
        client.sign_in(&address, "not the password").await,
        Err(AuthError::InvalidCredentials)
    );
    assert!(
        proxy.removed(SIGNIN, "code"),
        "the server's code never reached the client"
    );
    assert_eq!(
        client.sign_in(&email("nobody"), support::PASSWORD).await,
        Err(AuthError::InvalidCredentials)
    );
    assert_eq!(
        client.state(),
        AuthState::SignedOut {
            reason: SignOutReason::NoStoredSession
        }
    );
    assert!(!stored_session(&device.path()));
    // Kora's only 409 is a taken email.
    match client.sign_up(&address, support::PASSWORD, None).await {
        Err(AuthError::Refused {
            code: ErrorCode::EmailTaken,
            ..
        }) => {}
        other => panic!("expected EMAIL_TAKEN from a bare 409, got {other:?}"),
    }
    assert!(proxy.removed(SIGNUP, "code"));
    // And the right password works.
    client.sign_in(&address, support::PASSWORD).await.unwrap();
    assert!(client.state().is_signed_in());
}

/// The server definitively refuses the refresh token (401, no code). A Holdfast server
/// would let the device sign in again with its key; Kora cannot, so the session ends and
/// its secrets are wiped.
async fn rejected_refresh_signs_out(device_routes: DeviceRoutes) {
    let (server, proxy) = kora(3, device_routes).await;
    let device = Device::new();
    let client = client(&device, &proxy.url());
    client.initialize().await;
    let address = email("rejected");
    let user = client.sign_up(&address, support::PASSWORD, None).await.unwrap();
    let device_id = client.device_id().await.unwrap();
    let access = client.access_token().await.unwrap();
    // An admin, or a reuse elsewhere, ends every token of this sign-in on the server.
    let family = Claims::decode_unverified(&access).unwrap().fam.unwrap();
    server
        .stores
        .tokens
        .revoke_family(&family, i64::MAX / 2)
        .await
        .unwrap();

    let events = Events::record(&client);
    wait_until_expired(&access).await;
    assert_eq!(
        client.access_token().await,
        Err(AuthError::SignInRequired {
            code: ErrorCode::TokenInvalid
        })
    );
    assert!(
        proxy.removed(REFRESH, "code"),
        "the refusal reached the client without code"
    );
    assert_eq!(proxy.count(REFRESH), 1);
    assert_eq!(
        proxy.count(CHALLENGE),
        1,
        "device re-login was tried, and refused"
    );
    assert_eq!(proxy.count(VERIFY), 0);
    assert_eq!(
        client.state(),
        AuthState::SignedOut {
            reason: SignOutReason::SessionRejected {
                code: ErrorCode::TokenInvalid
            }
        }
    );
    assert_eq!(client.current_user(), None);
    assert_eq!(
        events.count(|e| *e == AuthEvent::ReuseDetected),
        0,
        "no code, no reuse claim"
    );
    assert_eq!(client.access_token().await, Err(AuthError::NotSignedIn));

    // The secrets are gone from the store: a restart finds no session.
    assert!(!stored_session(&device.path()));
    let restarted = self::client(&device, &proxy.url());
    assert_eq!(
        restarted.initialize().await,
        AuthState::SignedOut {
            reason: SignOutReason::NoStoredSession
        }
    );
    assert_eq!(restarted.current_user(), None);
    // The device identity was kept (only revocation wipes it), and signing in works.
    assert_eq!(restarted.device_id().await.unwrap(), device_id);
    let again = restarted
        .sign_in(&address, support::PASSWORD)
        .await
        .unwrap()
        .into_user();
    assert_eq!(again.id, user.id);
    assert!(restarted.state().is_signed_in());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rejected_refresh_signs_out_when_kora_has_no_device_routes() {
    rejected_refresh_signs_out(DeviceRoutes::Absent).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rejected_refresh_signs_out_when_kora_wants_a_bearer_for_challenges() {
    rejected_refresh_signs_out(DeviceRoutes::BearerOnly).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn kora_server_errors_and_html_pages_during_refresh_keep_the_session() {
    let (_server, proxy) = kora(3, DeviceRoutes::Absent).await;
    // The network between the app and the Kora deployment: client -> network -> Kora.
    let network = FaultProxy::start(proxy.addr).await;
    let device = Device::new();
    let client = client(&device, &network.url());
    client.initialize().await;
    let user = client
        .sign_up(&email("transient"), support::PASSWORD, None)
        .await
        .unwrap();
    let access = client.access_token().await.unwrap();
    let events = Events::record(&client);
    wait_until_expired(&access).await;

    type Expect = fn(&AuthError) -> bool;
    let cases: [(Canned, Expect); 6] = [
        (
            Canned {
                status: "503 Service Unavailable",
                content_type: "application/json",
                body: r#"{"error":"Service unavailable"}"#.into(),
            },
            |e| {
                matches!(
                    e,
                    AuthError::Transient {
                        cause: TransientCause::ServerError { status: 503 }
                    }
                )
            },
        ),
        (
            Canned {
                status: "502 Bad Gateway",
                content_type: "text/html",
                body: "<html><body><h1>502 Bad Gateway</h1><hr>nginx</body></html>".into(),
            },
            |e| {
                matches!(
                    e,
                    AuthError::Transient {
                        cause: TransientCause::ServerError { status: 502 }
                    }
                )
            },
        ),
        (
            Canned {
                status: "500 Internal Server Error",
                content_type: "application/json",
                body: r#"{"error":"Internal server error"}"#.into(),
            },
            |e| {
                matches!(
                    e,
                    AuthError::Transient {
                        cause: TransientCause::ServerError { status: 500 }
                    }
                )
            },
        ),
        (
            Canned {
                status: "200 OK",
                content_type: "text/html",
                body: "<html><body><h1>Welcome to Airport Wi-Fi</h1></body></html>".into(),
            },
            |e| {
                matches!(
                    e,
                    AuthError::Transient {
                        cause: TransientCause::NotTheServer { status: 200 }
                    }
                )
            },
        ),
        // Express's own 404 page: nothing answers the auth routes at this URL (a wrong
        // server URL or route prefix, or routes being redeployed). A configuration error
        // the app can show, and still no verdict on the session.
        (
            Canned {
                status: "404 Not Found",
                content_type: "text/html",
                body: "<!DOCTYPE html><html><body><pre>Cannot POST /auth/refresh</pre></body></html>".into(),
            },
            |e| matches!(e, AuthError::Configuration { .. }),
        ),
        // A code-less 400 is about the request, not a verdict on the session.
        (
            Canned {
                status: "400 Bad Request",
                content_type: "application/json",
                body: r#"{"error":"Refresh token is required"}"#.into(),
            },
            |e| matches!(e, AuthError::InvalidInput { .. }),
        ),
    ];
    let stale = AuthState::SignedIn {
        user: user.clone(),
        token_fresh: false,
    };
    let transient_cases = cases
        .iter()
        .filter(|(canned, _)| !canned.status.starts_with("400") && !canned.status.starts_with("404"))
        .count();
    for (canned, expected) in cases {
        let label = canned.status;
        proxy.answer(REFRESH, Some(canned));
        match client.access_token().await {
            Err(error) => assert!(expected(&error), "{label}: {error:?}"),
            Ok(_) => panic!("{label}: a token from a canned answer"),
        }
        assert_eq!(client.state(), stale, "{label} must not sign out");
        assert_eq!(client.current_user(), Some(user.clone()), "{label}");
        assert!(stored_session(&device.path()), "{label} kept the stored session");
        let restarted = self::client(&device, &network.url());
        assert_eq!(
            restarted.initialize().await,
            stale,
            "{label}: a restart is still signed in"
        );
    }
    proxy.answer(REFRESH, None);
    // And the network itself failing on the way to Kora.
    for fault in [Fault::Drop, Fault::Reset] {
        network.set(fault);
        match client.access_token().await {
            Err(AuthError::Transient {
                cause: TransientCause::Network(_),
            }) => {}
            other => panic!("{fault:?}: expected a network error, got {other:?}"),
        }
        assert_eq!(client.state(), stale, "{fault:?} must not sign out");
    }
    network.set(Fault::Pass);
    assert_eq!(
        events.count(|e| matches!(e, AuthEvent::RefreshFailed { .. })),
        transient_cases + 2
    );
    assert_eq!(
        proxy.count(CHALLENGE),
        0,
        "no re-login attempt: nothing was refused"
    );
    assert_eq!(proxy.count(REFRESH), 6, "the network faults never reached Kora");

    let fresh = client.access_token().await.unwrap();
    assert_ne!(fresh, access);
    assert_eq!(
        client.state(),
        AuthState::SignedIn {
            user,
            token_fresh: true
        }
    );
}
