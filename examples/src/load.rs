//! A bounded load generator for the auth routes and sync admissions, loopback only (used by
//! `src/bin/loadgen.rs`).
//!
//! Each worker owns one freshly signed-up user and one keep-alive HTTP/1.1 connection per
//! target server (hyper's connection API, no pool), and sends its scenario's requests back to
//! back until the shared request budget or the duration limit runs out. Its k-th request goes
//! to target k mod N, so with two instances sharing PostgreSQL and Redis a refresh token
//! rotated on the first is presented to the second next (sign-up and device setup go to the
//! first target). Every response is timed from the request to its last body byte; every
//! status other than 200 is counted as an error, by status and `code`.
//!
//! The sync scenarios time one full admission per request: a new TCP connection, the
//! WebSocket upgrade `GET /sync` with `Authorization: Bearer` (and, for `sync`, a fresh
//! device proof as `DPoP`, `htu` = `http://HOST/sync` as the server derives it without
//! `--public-url`), until the server's first message (`welcome`) arrives; the connection is
//! then closed outside the timing. A refused upgrade counts as an error by status and code.
//! Access tokens are refreshed outside the timing once half their lifetime has passed.
//!
//! [`Fleet`] starts `holdfast-server` processes: one on a temporary SQLite file, or several
//! sharing a fresh PostgreSQL schema (dropped at the end, also on errors) and a Redis key
//! prefix of their own.
//!
//! ```sh
//! cargo build --release -p holdfast-server-kit --bin holdfast-server -p holdfast-examples --bin loadgen
//! target/release/loadgen --spawn target/release/holdfast-server --scenario sync,sync-unbound \
//!     --requests 2000 --concurrency 16
//! target/release/loadgen --spawn target/release/holdfast-server --instances 2 \
//!     --database postgres://127.0.0.1:5432/test --redis redis://127.0.0.1:6379 \
//!     --scenario me,refresh,sync --requests 3000 --concurrency 16
//! ```
//!
//! A scenario is a [`Scenario`] (what to set up, what to send, what to learn from each
//! answer); adding one means adding a variant there and in `Session`.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{BufRead, BufReader, Read};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures_util::StreamExt;
use holdfast_core::device::{DeviceSigner, SoftwareSigner, device_proof, sign_challenge};
use holdfast_protocol::Claims;
use holdfast_server_kit::store::redact_url_password;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};

/// Why the load generator could not go on: a message for the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError(pub String);

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LoadError {}

/// The load generator's result type.
pub type Result<T> = std::result::Result<T, LoadError>;

fn fail(message: impl Into<String>) -> LoadError {
    LoadError(message.into())
}

/// What the workers do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// `GET /auth/me` with the worker's access token: signature check plus three reads.
    Me,
    /// `POST /auth/refresh`, each request with the refresh token of the previous answer, so
    /// every request is a real rotation (never a reuse, never the grace window).
    Refresh,
    /// `POST /auth/signin` with the worker's password: bound by password hashing.
    SignIn,
    /// One sync admission per request, from a device with a P-256 key (registered, then
    /// signed in with challenge and verify, so its tokens carry `cnf.jkt`): a new
    /// connection, the WebSocket upgrade with the bearer token and a fresh device proof, and
    /// the server's first message.
    Sync,
    /// The same without a device key, as a Kora web client connects: an unbound token and
    /// no proof (admitted by the server's default proofless policy, `admit-unbound`).
    SyncUnbound,
}

impl Scenario {
    /// The name used on the command line and in the output.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Me => "me",
            Scenario::Refresh => "refresh",
            Scenario::SignIn => "signin",
            Scenario::Sync => "sync",
            Scenario::SyncUnbound => "sync-unbound",
        }
    }

    /// Requests per run when `--requests` is not given.
    pub fn default_requests(self) -> u64 {
        match self {
            Scenario::Me => 50_000,
            Scenario::Refresh | Scenario::Sync | Scenario::SyncUnbound => 10_000,
            Scenario::SignIn => 200,
        }
    }

    /// Whether each request is a sync admission (not an auth route).
    pub fn is_sync(self) -> bool {
        matches!(self, Scenario::Sync | Scenario::SyncUnbound)
    }
}

impl FromStr for Scenario {
    type Err = LoadError;

    fn from_str(text: &str) -> Result<Scenario> {
        match text {
            "me" => Ok(Scenario::Me),
            "refresh" => Ok(Scenario::Refresh),
            "signin" => Ok(Scenario::SignIn),
            "sync" => Ok(Scenario::Sync),
            "sync-unbound" => Ok(Scenario::SyncUnbound),
            other => Err(fail(format!(
                "unknown scenario `{other}`: expected me, refresh, signin, sync or sync-unbound"
            ))),
        }
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Whether `host` (a name or an IP address, brackets allowed) is loopback: 127.0.0.0/8,
/// `::1`, or `localhost` resolving only to those.
async fn is_loopback(host: &str, port: u16) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.eq_ignore_ascii_case("localhost") {
        let resolved: Vec<SocketAddr> = match tokio::net::lookup_host((host, port)).await {
            Ok(addresses) => addresses.collect(),
            Err(_) => return false,
        };
        return !resolved.is_empty() && resolved.iter().all(|a| a.ip().is_loopback());
    }
    host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// A server on this machine: where to connect and what to send as `Host`.
#[derive(Debug, Clone)]
pub struct Target {
    address: SocketAddr,
    host: HeaderValue,
    /// Base path plus the route prefix, e.g. `/auth`.
    prefix: String,
    /// `ws://AUTHORITY[/BASE]/sync`: where the sync scenarios connect.
    sync_ws: String,
    /// `http://authority[/BASE]/sync` as the server names the endpoint without
    /// `--public-url` (lower-case authority, no `:80`): the `htu` of device proofs.
    sync_url: String,
    /// `http://authority[/BASE]/auth`, as `sync_url`: the base of token requests' proofs.
    auth_url: String,
}

/// A token request's device proof (PROTOCOL 3: no `ath`) by `key` for `POST` on `url`, as the
/// `DPoP` header value: with it the server binds the tokens to the key.
fn token_proof(key: &SoftwareSigner, url: &str) -> Result<HeaderValue> {
    let proof = device_proof(key, "POST", url, "", None, unix_now_secs())
        .map_err(|e| fail(format!("cannot make a device proof: {e}")))?;
    HeaderValue::from_str(&proof).map_err(|_| fail("the device proof is not a valid header value"))
}

impl Target {
    /// Parses `http://HOST:PORT[/BASE]` and refuses every host that is not loopback
    /// (127.0.0.0/8, `::1`, `localhost` resolving only to those).
    pub async fn loopback(url: &str) -> Result<Target> {
        let uri: hyper::Uri = url
            .parse()
            .map_err(|e| fail(format!("`{url}` is not a URL: {e}")))?;
        if uri.scheme_str() != Some("http") {
            return Err(fail(format!(
                "`{url}`: only plain http:// on loopback is supported"
            )));
        }
        let authority = uri
            .authority()
            .ok_or_else(|| fail(format!("`{url}` has no host")))?;
        let host = authority.host().trim_start_matches('[').trim_end_matches(']');
        let port = authority.port_u16().unwrap_or(80);
        let refuse = || {
            fail(format!(
                "refusing `{url}`: the load generator only targets loopback (127.0.0.0/8, ::1, localhost)"
            ))
        };
        if !is_loopback(host, port).await {
            return Err(refuse());
        }
        let address = if host.eq_ignore_ascii_case("localhost") {
            tokio::net::lookup_host((host, port))
                .await
                .ok()
                .and_then(|mut resolved| resolved.next())
                .ok_or_else(refuse)?
        } else {
            SocketAddr::new(host.parse().map_err(|_| refuse())?, port)
        };
        let base = uri.path().trim_end_matches('/');
        let lower = authority.as_str().to_ascii_lowercase();
        let origin = lower.strip_suffix(":80").unwrap_or(&lower);
        Ok(Target {
            address,
            host: HeaderValue::from_str(authority.as_str()).map_err(|_| refuse())?,
            prefix: format!("{base}/auth"),
            sync_ws: format!("ws://{}{base}/sync", authority.as_str()),
            sync_url: format!("http://{origin}{base}/sync"),
            auth_url: format!("http://{origin}{base}/auth"),
        })
    }

    /// The sync endpoint as device proofs name it (`htu`), e.g. `http://127.0.0.1:8080/sync`.
    pub fn sync_url(&self) -> &str {
        &self.sync_url
    }
}

/// One keep-alive HTTP/1.1 connection.
struct Connection {
    sender: http1::SendRequest<Full<Bytes>>,
    driver: tokio::task::JoinHandle<()>,
}

impl Connection {
    async fn open(target: &Target) -> Result<Connection> {
        let stream = TcpStream::connect(target.address)
            .await
            .map_err(|e| fail(format!("cannot connect to {}: {e}", target.address)))?;
        stream
            .set_nodelay(true)
            .map_err(|e| fail(format!("cannot set TCP_NODELAY: {e}")))?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| fail(format!("HTTP handshake failed: {e}")))?;
        let driver = tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Connection { sender, driver })
    }

    /// One connection to each target, in order.
    async fn open_all(targets: &[Target]) -> Result<Vec<Connection>> {
        let mut connections = Vec::with_capacity(targets.len());
        for target in targets {
            connections.push(Connection::open(target).await?);
        }
        Ok(connections)
    }

    /// Sends `request` and reads the whole answer: status and body.
    async fn send(&mut self, request: Request<Full<Bytes>>) -> Result<(u16, Bytes)> {
        self.sender
            .ready()
            .await
            .map_err(|e| fail(format!("connection lost: {e}")))?;
        let response = self
            .sender
            .send_request(request)
            .await
            .map_err(|e| fail(format!("request failed: {e}")))?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| fail(format!("body failed: {e}")))?;
        Ok((status, body.to_bytes()))
    }

    /// Sends `request`, expecting status `expected`; returns the body, or says what `what`
    /// got instead.
    async fn expect(&mut self, request: Request<Full<Bytes>>, expected: u16, what: &str) -> Result<Bytes> {
        let (status, body) = self.send(request).await?;
        if status != expected {
            return Err(fail(format!("{what} answered {}", refusal(status, &body))));
        }
        Ok(body)
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

fn request(
    target: &Target,
    method: Method,
    path: &str,
    bearer: Option<&HeaderValue>,
    body: Option<Bytes>,
) -> Result<Request<Full<Bytes>>> {
    let mut builder = Request::builder()
        .method(method)
        .uri(format!("{}{path}", target.prefix))
        .header(HOST, &target.host);
    if let Some(bearer) = bearer {
        builder = builder.header(AUTHORIZATION, bearer);
    }
    let body = match body {
        Some(body) => {
            builder = builder.header(CONTENT_TYPE, "application/json");
            body
        }
        None => Bytes::new(),
    };
    builder
        .body(Full::new(body))
        .map_err(|e| fail(format!("cannot build a request: {e}")))
}

fn json_body(value: &Value) -> Bytes {
    Bytes::from(value.to_string())
}

/// `"STATUS CODE"` of a refusal, e.g. `401 TOKEN_INVALID`.
fn refusal(status: u16, body: &[u8]) -> String {
    let code = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("code").and_then(Value::as_str).map(str::to_owned));
    match code {
        Some(code) => format!("{status} {code}"),
        None => status.to_string(),
    }
}

fn member(body: &[u8], pointer: &str) -> Result<String> {
    let value: Value = serde_json::from_slice(body).map_err(|e| fail(format!("answer is not JSON: {e}")))?;
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| fail(format!("answer has no string at {pointer}")))
}

fn bearer_header(access_token: &str) -> Result<HeaderValue> {
    HeaderValue::from_str(&format!("Bearer {access_token}"))
        .map_err(|_| fail("the access token is not a valid header value"))
}

fn unix_now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// One worker's state in its scenario: what it sends next, what it learns from an answer.
enum Session {
    Me { bearer: HeaderValue },
    Refresh { refresh_token: String },
    SignIn { body: Bytes },
    Sync(Box<SyncSession>),
}

impl Session {
    /// Signs up a fresh user on `connection` (to `target`, the first one) and prepares
    /// `scenario` for it; `device_id` names the keyed device of the `sync` scenario.
    async fn start(
        scenario: Scenario,
        target: &Target,
        connection: &mut Connection,
        email: &str,
        device_id: &str,
    ) -> Result<Session> {
        const PASSWORD: &str = "load-test-password";
        let signup = json_body(&json!({ "email": email, "password": PASSWORD }));
        let (status, body) = connection
            .send(request(target, Method::POST, "/signup", None, Some(signup))?)
            .await?;
        if status != 201 {
            return Err(fail(format!(
                "sign-up of {email} answered {} (is the server's sign-up rate limit off?)",
                refusal(status, &body)
            )));
        }
        let access_token = member(&body, "/data/tokens/accessToken")?;
        let refresh_token = member(&body, "/data/tokens/refreshToken")?;
        Ok(match scenario {
            Scenario::Me => Session::Me {
                bearer: bearer_header(&access_token)?,
            },
            Scenario::Refresh => Session::Refresh { refresh_token },
            Scenario::SignIn => Session::SignIn {
                body: json_body(&json!({ "email": email, "password": PASSWORD })),
            },
            Scenario::SyncUnbound => {
                Session::Sync(Box::new(SyncSession::new(None, access_token, refresh_token)?))
            }
            Scenario::Sync => Session::Sync(Box::new(
                SyncSession::with_device_key(target, connection, &access_token, device_id).await?,
            )),
        })
    }

    fn request(&self, target: &Target) -> Result<Request<Full<Bytes>>> {
        match self {
            Session::Me { bearer } => request(target, Method::GET, "/me", Some(bearer), None),
            Session::Refresh { refresh_token } => {
                let body = json_body(&json!({ "refreshToken": refresh_token }));
                request(target, Method::POST, "/refresh", None, Some(body))
            }
            Session::SignIn { body } => request(target, Method::POST, "/signin", None, Some(body.clone())),
            Session::Sync(_) => Err(fail("a sync session sends no HTTP request")),
        }
    }

    /// Takes what a 200 answer carries forward (the next refresh token).
    fn advance(&mut self, body: &[u8]) -> Result<()> {
        if let Session::Refresh { refresh_token } = self {
            *refresh_token = member(body, "/data/refreshToken")?;
        }
        Ok(())
    }

    /// Whether a refused request leaves nothing to send next (a broken refresh chain).
    fn broken_by_refusal(&self) -> bool {
        matches!(self, Session::Refresh { .. })
    }
}

/// A device's sync credentials: its key (none for a Kora-style web client) and its tokens.
struct SyncSession {
    key: Option<SoftwareSigner>,
    access_token: String,
    bearer: HeaderValue,
    refresh_token: String,
    /// When (Unix seconds) the access token has lived half its lifetime: the next admission
    /// after that refreshes it first, outside the timing.
    refresh_after: i64,
}

/// What one sync admission gave.
struct Admission {
    /// From connecting to the first message (or the refusal).
    took: Duration,
    /// Why it was refused (`401 PROOF_INVALID`, `sync closed 4401 …`), if it was.
    refused: Option<String>,
    /// The admitted connection, to close outside the timing.
    socket: Option<WebSocketStream<TcpStream>>,
}

impl SyncSession {
    fn new(key: Option<SoftwareSigner>, access_token: String, refresh_token: String) -> Result<SyncSession> {
        let mut session = SyncSession {
            key,
            bearer: HeaderValue::from_static("Bearer -"),
            access_token: String::new(),
            refresh_token: String::new(),
            refresh_after: 0,
        };
        session.keep(access_token, refresh_token)?;
        Ok(session)
    }

    /// Registers a device with a fresh P-256 key for the signed-up user, then signs it in
    /// with challenge and verify (PROTOCOL 4): its tokens are bound to the key (`cnf.jkt`).
    async fn with_device_key(
        target: &Target,
        connection: &mut Connection,
        signup_access_token: &str,
        device_id: &str,
    ) -> Result<SyncSession> {
        let signer_failed = |e: holdfast_core::device::SignerError| fail(format!("device key: {e}"));
        let (key, _pkcs8) = SoftwareSigner::generate().map_err(signer_failed)?;
        let public_key = key.public_jwk().map_err(signer_failed)?.to_wire_string();
        let bearer = bearer_header(signup_access_token)?;
        let register = json!({ "deviceId": device_id, "publicKey": public_key, "name": "loadgen" });
        let register = request(
            target,
            Method::POST,
            "/device/register",
            Some(&bearer),
            Some(json_body(&register)),
        )?;
        connection.expect(register, 201, "device registration").await?;
        let challenge = json_body(&json!({ "deviceId": device_id }));
        let challenge = request(
            target,
            Method::POST,
            "/device/challenge",
            Some(&bearer),
            Some(challenge),
        )?;
        let body = connection.expect(challenge, 200, "device challenge").await?;
        let challenge = member(&body, "/data/challenge")?;
        let signature = sign_challenge(&key, &challenge).map_err(signer_failed)?;
        let verify = json!({ "deviceId": device_id, "challenge": challenge, "signature": signature });
        let mut verify = request(
            target,
            Method::POST,
            "/device/verify",
            None,
            Some(json_body(&verify)),
        )?;
        let proof = token_proof(&key, &format!("{}/device/verify", target.auth_url))?;
        verify.headers_mut().insert("dpop", proof);
        let body = connection.expect(verify, 200, "device verification").await?;
        let access_token = member(&body, "/data/tokens/accessToken")?;
        let bound = Claims::decode_unverified(&access_token)
            .ok()
            .and_then(|claims| claims.cnf)
            .is_some_and(|cnf| Some(cnf.jkt) == key.public_jwk().ok().map(|jwk| jwk.thumbprint()));
        if !bound {
            return Err(fail(
                "the verified device's access token is not bound to its key (no matching cnf.jkt)",
            ));
        }
        SyncSession::new(
            Some(key),
            access_token,
            member(&body, "/data/tokens/refreshToken")?,
        )
    }

    fn keep(&mut self, access_token: String, refresh_token: String) -> Result<()> {
        let claims = Claims::decode_unverified(&access_token)
            .map_err(|e| fail(format!("the access token cannot be read: {e}")))?;
        self.refresh_after = claims.iat + (claims.exp - claims.iat) / 2;
        self.bearer = bearer_header(&access_token)?;
        self.access_token = access_token;
        self.refresh_token = refresh_token;
        Ok(())
    }

    fn due_for_refresh(&self) -> bool {
        unix_now_secs() >= self.refresh_after
    }

    /// Refreshes the tokens on `connection` (reopened once if it was lost); on failure, the
    /// error kind to count.
    async fn refresh(
        &mut self,
        target: &Target,
        connection: &mut Connection,
    ) -> std::result::Result<(), String> {
        let body = json_body(&json!({ "refreshToken": self.refresh_token }));
        // A bound family is refreshed with a proof by its key, fresh for each attempt.
        let make = || {
            let mut refresh =
                request(target, Method::POST, "/refresh", None, Some(body.clone())).map_err(|e| e.0)?;
            if let Some(key) = &self.key {
                let proof = token_proof(key, &format!("{}/refresh", target.auth_url)).map_err(|e| e.0)?;
                refresh.headers_mut().insert("dpop", proof);
            }
            Ok::<_, String>(refresh)
        };
        let answer = match connection.send(make()?).await {
            Ok(answer) => answer,
            // An idle keep-alive connection may have been closed: one more try on a new one.
            Err(_) => {
                *connection = Connection::open(target)
                    .await
                    .map_err(|_| "token refresh: transport".to_owned())?;
                connection
                    .send(make()?)
                    .await
                    .map_err(|_| "token refresh: transport".to_owned())?
            }
        };
        match answer {
            (200, body) => {
                let access_token = member(&body, "/data/accessToken").map_err(|e| e.0)?;
                let refresh_token = member(&body, "/data/refreshToken").map_err(|e| e.0)?;
                self.keep(access_token, refresh_token).map_err(|e| e.0)
            }
            (status, body) => Err(format!("token refresh: {}", refusal(status, &body))),
        }
    }

    /// The upgrade request for `target`: bearer token, and a fresh device proof (new `jti`,
    /// `GET`, the sync URL) when the session has a key.
    fn upgrade_request(&self, target: &Target) -> Result<tungstenite::handshake::client::Request> {
        let mut request = target
            .sync_ws
            .as_str()
            .into_client_request()
            .map_err(|e| fail(format!("invalid sync URL {}: {e}", target.sync_ws)))?;
        request.headers_mut().insert(AUTHORIZATION, self.bearer.clone());
        if let Some(key) = &self.key {
            let proof = device_proof(
                key,
                "GET",
                &target.sync_url,
                &self.access_token,
                None,
                unix_now_secs(),
            )
            .map_err(|e| fail(format!("cannot make a device proof: {e}")))?;
            let proof = HeaderValue::from_str(&proof)
                .map_err(|_| fail("the device proof is not a valid header value"))?;
            request.headers_mut().insert("dpop", proof);
        }
        Ok(request)
    }
}

/// One timed sync admission: connect, upgrade with `request`, wait for the first message.
/// `Err` when the connection failed (no answer).
async fn admit(
    target: &Target,
    request: tungstenite::handshake::client::Request,
) -> std::result::Result<Admission, String> {
    let started = Instant::now();
    let stream = TcpStream::connect(target.address)
        .await
        .map_err(|e| format!("cannot connect to {}: {e}", target.address))?;
    stream
        .set_nodelay(true)
        .map_err(|e| format!("cannot set TCP_NODELAY: {e}"))?;
    let mut socket = match tokio_tungstenite::client_async(request, stream).await {
        Ok((socket, _response)) => socket,
        Err(tungstenite::Error::Http(response)) => {
            let status = response.status().as_u16();
            let body = response.body().as_deref().unwrap_or_default();
            return Ok(Admission {
                took: started.elapsed(),
                refused: Some(refusal(status, body)),
                socket: None,
            });
        }
        Err(error) => return Err(format!("WebSocket handshake failed: {error}")),
    };
    let refused = loop {
        match socket.next().await {
            Some(Ok(Message::Text(text))) => {
                let message: Value = serde_json::from_str(text.as_str()).unwrap_or_default();
                let kind = message.get("type").and_then(Value::as_str).unwrap_or("?");
                break match kind {
                    "welcome" => None,
                    "error" => Some(format!(
                        "sync error {}",
                        message.get("code").and_then(Value::as_str).unwrap_or("?")
                    )),
                    other => Some(format!("sync first message `{other}`")),
                };
            }
            Some(Ok(Message::Close(frame))) => {
                break Some(match frame {
                    Some(frame) => format!("sync closed {} {}", u16::from(frame.code), frame.reason),
                    None => "sync closed".to_owned(),
                });
            }
            Some(Ok(Message::Binary(_))) => break Some("sync binary message".to_owned()),
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
            Some(Err(error)) => return Err(format!("sync connection failed: {error}")),
            None => return Err("sync connection closed without a message".to_owned()),
        }
    };
    Ok(Admission {
        took: started.elapsed(),
        refused,
        socket: Some(socket),
    })
}

/// Closes an admitted connection normally and waits (at most 2 s) for the server's answer.
async fn close_sync(mut socket: WebSocketStream<TcpStream>) {
    let _ = tokio::time::timeout(Duration::from_secs(2), async move {
        if socket.close(None).await.is_ok() {
            while let Some(Ok(_)) = socket.next().await {}
        }
    })
    .await;
}

/// One run: a scenario, a request budget, parallel connections and a time bound.
#[derive(Debug, Clone)]
pub struct Plan {
    /// What to send.
    pub scenario: Scenario,
    /// Requests in all (the run stops sooner only at the duration limit or if every worker
    /// had to stop).
    pub requests: u64,
    /// Workers, each with its own user and one keep-alive connection per target, sending
    /// back to back.
    pub concurrency: usize,
    /// The run stops when this has passed (setup not included) and says so.
    pub duration_limit: Duration,
    /// Also run one extra connection sending `GET /me` every 10 ms (to the first target) and
    /// report its latency separately: whether the scenario slows other requests down.
    pub probe: bool,
    /// The servers' process ids, to report their CPU time (Linux `/proc`).
    pub server_pids: Vec<u32>,
    /// Where the servers keep their state, for the report: `sqlite`, `postgres`,
    /// `postgres+redis`, … (see [`Fleet::database`]), or `unknown`.
    pub database: String,
}

/// Latencies and errors of a set of requests.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    /// Duration of each answered request, microseconds (sorted by `Tally::finish`).
    pub latencies_us: Vec<u32>,
    /// Errors by kind (`401 TOKEN_INVALID`, `transport`, `unanswered at the duration limit`, …).
    pub errors: BTreeMap<String, u64>,
    /// Access tokens refreshed outside the timings (sync scenarios).
    pub token_refreshes: u64,
}

impl Tally {
    fn error(&mut self, kind: String) {
        *self.errors.entry(kind).or_default() += 1;
    }

    fn answered(&mut self, took: Duration) {
        self.latencies_us
            .push(u32::try_from(took.as_micros()).unwrap_or(u32::MAX));
    }

    fn merge(&mut self, other: Tally) {
        self.latencies_us.extend(other.latencies_us);
        for (kind, n) in other.errors {
            *self.errors.entry(kind).or_default() += n;
        }
        self.token_refreshes += other.token_refreshes;
    }

    fn finish(&mut self) {
        self.latencies_us.sort_unstable();
    }

    /// Number of errors of every kind.
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// The nearest-rank percentile `p` (0 to 100) of the sorted latencies, microseconds.
    pub fn percentile_us(&self, p: f64) -> u32 {
        let n = self.latencies_us.len();
        if n == 0 {
            return 0;
        }
        let rank = ((p / 100.0) * n as f64).ceil() as usize;
        self.latencies_us[rank.clamp(1, n) - 1]
    }
}

/// What a run measured.
#[derive(Debug, Clone)]
pub struct Report {
    /// The plan it ran.
    pub plan: Plan,
    /// How many servers it ran against.
    pub instances: usize,
    /// Answered requests and errors.
    pub tally: Tally,
    /// From the first request to the last answer.
    pub elapsed: Duration,
    /// Why the run ended before its budget, if it did.
    pub stopped_early: Option<String>,
    /// The probe's `GET /me` requests, when asked for.
    pub probe: Option<Tally>,
    /// CPU time used during the run (Linux only).
    pub cpu: Option<CpuSplit>,
}

/// CPU seconds (user + system) spent during a run, from Linux `/proc`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CpuSplit {
    /// The servers' together, when their process ids are known (`--spawn`).
    pub server: Option<f64>,
    /// This process's: what the load generator took from the shared cores.
    pub loadgen: f64,
}

impl Report {
    /// Answered requests per second.
    pub fn throughput(&self) -> f64 {
        self.tally.latencies_us.len() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// A line for people.
    pub fn human(&self) -> String {
        let t = &self.tally;
        let ms = |us: u32| f64::from(us) / 1000.0;
        let mut line = format!(
            "{}: {} requests, {} errors, {:.2} s, {:.0} req/s, latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms (concurrency {}, {} instance{}, {})",
            self.plan.scenario,
            t.latencies_us.len(),
            t.error_count(),
            self.elapsed.as_secs_f64(),
            self.throughput(),
            ms(t.percentile_us(50.0)),
            ms(t.percentile_us(99.0)),
            ms(t.percentile_us(100.0)),
            self.plan.concurrency,
            self.instances,
            if self.instances == 1 { "" } else { "s" },
            self.plan.database,
        );
        if let Some(cpu) = self.cpu {
            let cores = |s: f64| s / self.elapsed.as_secs_f64().max(1e-9);
            if let Some(server) = cpu.server {
                line += &format!("; CPU: server {:.2} cores,", cores(server));
            } else {
                line += "; CPU:";
            }
            line += &format!(" loadgen {:.2} cores", cores(cpu.loadgen));
        }
        if t.token_refreshes > 0 {
            line += &format!("; {} token refreshes (untimed)", t.token_refreshes);
        }
        for (kind, n) in &t.errors {
            line += &format!("\n  error {kind}: {n}");
        }
        if let Some(reason) = &self.stopped_early {
            line += &format!("\n  stopped early: {reason}");
        }
        if let Some(probe) = &self.probe {
            line += &format!(
                "\n  probe GET /me every 10 ms meanwhile: {} requests, {} errors, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
                probe.latencies_us.len(),
                probe.error_count(),
                ms(probe.percentile_us(50.0)),
                ms(probe.percentile_us(99.0)),
                ms(probe.percentile_us(100.0)),
            );
        }
        line
    }

    /// Machine-readable `RESULT key=value …` line(s), one per scenario (and one for the probe).
    pub fn machine(&self) -> String {
        let t = &self.tally;
        let cpu = match self.cpu {
            Some(cpu) => format!(
                " server_cpu_s={} loadgen_cpu_s={:.3}",
                cpu.server
                    .map_or_else(|| "unknown".to_owned(), |s| format!("{s:.3}")),
                cpu.loadgen
            ),
            None => String::new(),
        };
        let refreshes = if self.plan.scenario.is_sync() {
            format!(" token_refreshes={}", t.token_refreshes)
        } else {
            String::new()
        };
        let mut line = format!(
            "RESULT scenario={} instances={} database={} concurrency={} requests={} errors={} elapsed_s={:.3} rps={:.0} p50_us={} p99_us={} max_us={}{cpu}{refreshes} stopped_early={}",
            self.plan.scenario,
            self.instances,
            self.plan.database,
            self.plan.concurrency,
            t.latencies_us.len(),
            t.error_count(),
            self.elapsed.as_secs_f64(),
            self.throughput(),
            t.percentile_us(50.0),
            t.percentile_us(99.0),
            t.percentile_us(100.0),
            self.stopped_early.is_some(),
        );
        if let Some(probe) = &self.probe {
            line += &format!(
                "\nRESULT scenario={}+probe-me requests={} errors={} p50_us={} p99_us={} max_us={}",
                self.plan.scenario,
                probe.latencies_us.len(),
                probe.error_count(),
                probe.percentile_us(50.0),
                probe.percentile_us(99.0),
                probe.percentile_us(100.0),
            );
        }
        line
    }
}

/// What all workers share: the request budget and the stop signal.
struct Budget {
    total: u64,
    claimed: AtomicU64,
    deadline: Instant,
    stop: AtomicBool,
}

impl Budget {
    /// Claims one request, unless the budget, the deadline or a stop says no.
    fn claim(&self) -> bool {
        if self.stop.load(Ordering::Relaxed) {
            return false;
        }
        if Instant::now() >= self.deadline {
            self.stop.store(true, Ordering::Relaxed);
            return false;
        }
        self.claimed.fetch_add(1, Ordering::Relaxed) < self.total
    }
}

/// Runs `plan` against `targets`: sets up one user and one connection per target for each
/// worker (sign-up on the first target), then measures. A worker's k-th request goes to
/// target k mod N.
pub async fn run(targets: &[Target], plan: &Plan) -> Result<Report> {
    if targets.is_empty() {
        return Err(fail("no server to run against"));
    }
    let targets: Arc<[Target]> = targets.into();
    let run_id = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let setups = (0..plan.concurrency + usize::from(plan.probe)).map(|n| {
        let targets = Arc::clone(&targets);
        let scenario = if n < plan.concurrency {
            plan.scenario
        } else {
            Scenario::Me
        };
        tokio::spawn(async move {
            let mut connections = Connection::open_all(&targets).await?;
            let email = format!("load-{run_id}-{}-{n}@example.com", scenario.name());
            let device_id = format!("load-{run_id}-{n}");
            let session =
                Session::start(scenario, &targets[0], &mut connections[0], &email, &device_id).await?;
            Ok::<_, LoadError>((connections, session))
        })
    });
    let mut workers = Vec::with_capacity(plan.concurrency);
    for setup in setups.collect::<Vec<_>>() {
        workers.push(
            setup
                .await
                .map_err(|e| fail(format!("setup task failed: {e}")))??,
        );
    }
    let probe_setup = if plan.probe { workers.pop() } else { None };

    let budget = Arc::new(Budget {
        total: plan.requests,
        claimed: AtomicU64::new(0),
        deadline: Instant::now() + plan.duration_limit,
        stop: AtomicBool::new(false),
    });
    let finished = Arc::new(AtomicBool::new(false));
    let cpu_before = cpu_seconds(&plan.server_pids);
    let started = Instant::now();
    let probe = probe_setup.and_then(|(connections, session)| {
        let connection = connections.into_iter().next()?;
        Some(tokio::spawn(probe_loop(
            targets[0].clone(),
            connection,
            session,
            Arc::clone(&finished),
            budget.deadline,
        )))
    });
    let tasks: Vec<_> = workers
        .into_iter()
        .map(|(connections, session)| {
            tokio::spawn(worker(
                Arc::clone(&targets),
                connections,
                session,
                Arc::clone(&budget),
            ))
        })
        .collect();
    let mut tally = Tally::default();
    let mut notes = Vec::new();
    for task in tasks {
        let (worker_tally, note) = task.await.map_err(|e| fail(format!("worker task failed: {e}")))?;
        tally.merge(worker_tally);
        notes.extend(note);
    }
    let elapsed = started.elapsed();
    let cpu_after = cpu_seconds(&plan.server_pids);
    finished.store(true, Ordering::Relaxed);
    let probe = match probe {
        Some(task) => Some(task.await.map_err(|e| fail(format!("probe task failed: {e}")))?),
        None => None,
    };
    tally.finish();

    let answered = tally.latencies_us.len() as u64;
    let stopped_early = if budget.stop.load(Ordering::Relaxed) && answered < plan.requests {
        Some(format!(
            "duration limit of {} s reached after {answered} answers",
            plan.duration_limit.as_secs_f64()
        ))
    } else if answered < plan.requests {
        Some(format!(
            "{} worker(s) stopped: {}",
            notes.len(),
            notes.first().map_or("", String::as_str)
        ))
    } else {
        None
    };
    let cpu = match (cpu_before, cpu_after) {
        (Some(before), Some(after)) => Some(CpuSplit {
            server: after.server.zip(before.server).map(|(a, b)| a - b),
            loadgen: after.loadgen - before.loadgen,
        }),
        _ => None,
    };
    Ok(Report {
        plan: plan.clone(),
        instances: targets.len(),
        tally,
        elapsed,
        stopped_early,
        probe: probe.map(|mut p| {
            p.finish();
            p
        }),
        cpu,
    })
}

/// A sync worker gives up after this many connection failures in a row.
const MAX_SYNC_FAILURES_IN_A_ROW: u32 = 10;

/// Sends requests back to back while the budget allows, the k-th to target k mod N; returns
/// what it measured and, if it had to stop on its own, why.
async fn worker(
    targets: Arc<[Target]>,
    mut connections: Vec<Connection>,
    mut session: Session,
    budget: Arc<Budget>,
) -> (Tally, Option<String>) {
    let mut tally = Tally::default();
    let mut sync_failures = 0;
    let mut k = 0usize;
    while budget.claim() {
        let index = k % targets.len();
        k = k.wrapping_add(1);
        let target = &targets[index];
        // `Some((took, refusal))` for an answer, `None` when the connection failed.
        let answer = match &mut session {
            Session::Sync(sync) => {
                if sync.due_for_refresh() {
                    if let Err(kind) = sync.refresh(target, &mut connections[index]).await {
                        tally.error(kind.clone());
                        return (tally, Some(kind));
                    }
                    tally.token_refreshes += 1;
                }
                let request = match sync.upgrade_request(target) {
                    Ok(request) => request,
                    Err(error) => return (tally, Some(error.0)),
                };
                match tokio::time::timeout_at(budget.deadline, admit(target, request)).await {
                    Err(_) => None,
                    Ok(Err(error)) => {
                        tally.error("transport".into());
                        sync_failures += 1;
                        if sync_failures >= MAX_SYNC_FAILURES_IN_A_ROW {
                            return (tally, Some(error));
                        }
                        continue;
                    }
                    Ok(Ok(admission)) => {
                        sync_failures = 0;
                        if let Some(socket) = admission.socket {
                            close_sync(socket).await;
                        }
                        Some((admission.took, admission.refused))
                    }
                }
            }
            _ => {
                let request = match session.request(target) {
                    Ok(request) => request,
                    Err(error) => return (tally, Some(error.0)),
                };
                let sent = Instant::now();
                let answer = tokio::time::timeout_at(budget.deadline, connections[index].send(request)).await;
                let took = sent.elapsed();
                match answer {
                    Err(_) => None,
                    Ok(Err(error)) => {
                        tally.error("transport".into());
                        if session.broken_by_refusal() {
                            return (tally, Some(format!("refresh chain lost: {error}")));
                        }
                        match Connection::open(target).await {
                            Ok(fresh) => connections[index] = fresh,
                            Err(error) => return (tally, Some(error.0)),
                        }
                        continue;
                    }
                    Ok(Ok((200, body))) => {
                        if let Err(error) = session.advance(&body) {
                            tally.answered(took);
                            tally.error("bad answer".into());
                            return (tally, Some(error.0));
                        }
                        Some((took, None))
                    }
                    Ok(Ok((status, body))) => Some((took, Some(refusal(status, &body)))),
                }
            }
        };
        let Some((took, refused)) = answer else {
            tally.error("unanswered at the duration limit".into());
            budget.stop.store(true, Ordering::Relaxed);
            break;
        };
        tally.answered(took);
        if let Some(kind) = refused {
            tally.error(kind.clone());
            if session.broken_by_refusal() {
                return (tally, Some(format!("refresh chain broken by {kind}")));
            }
        }
    }
    (tally, None)
}

/// `GET /me` every 10 ms until `finished` (or `deadline`).
async fn probe_loop(
    target: Target,
    mut connection: Connection,
    session: Session,
    finished: Arc<AtomicBool>,
    deadline: Instant,
) -> Tally {
    let mut tally = Tally::default();
    let mut ticks = tokio::time::interval(Duration::from_millis(10));
    while !finished.load(Ordering::Relaxed) {
        ticks.tick().await;
        let Ok(request) = session.request(&target) else {
            break;
        };
        let sent = Instant::now();
        match tokio::time::timeout_at(deadline, connection.send(request)).await {
            Err(_) => {
                tally.error("unanswered at the duration limit".into());
                break;
            }
            Ok(Ok((status, body))) => {
                tally.answered(sent.elapsed());
                if status != 200 {
                    tally.error(refusal(status, &body));
                }
            }
            Ok(Err(_)) => {
                tally.error("transport".into());
                break;
            }
        }
    }
    tally
}

/// CPU seconds used so far by the servers together (if known) and by this process, from
/// Linux `/proc/PID/stat` in clock ticks of 1/100 s (USER_HZ, fixed at 100 by the kernel ABI).
fn cpu_seconds(servers: &[u32]) -> Option<CpuSplit> {
    let read = |pid: &str| -> Option<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // Fields after the `(comm)`, which may contain spaces: state is field 3, utime 14, stime 15.
        let rest = stat.get(stat.rfind(')')? + 1..)?;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
        Some(ticks as f64 / 100.0)
    };
    let loadgen = read("self")?;
    let server = if servers.is_empty() {
        None
    } else {
        servers
            .iter()
            .map(|pid| read(&pid.to_string()))
            .sum::<Option<f64>>()
    };
    Some(CpuSplit { server, loadgen })
}

/// A name no other run uses: `PREFIX<sep>PID<sep>UNIX SECONDS<sep>N`.
fn unique_name(prefix: &str, separator: char) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!(
        "{prefix}{separator}{}{separator}{}{separator}{n}",
        std::process::id(),
        unix_now_secs()
    )
}

/// Whether `url` names a PostgreSQL database.
fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// Refuses a PostgreSQL URL whose hosts are not loopback (a Unix socket is local).
async fn check_postgres_loopback(url: &str) -> Result<()> {
    let shown = redact_url_password(url);
    let config: tokio_postgres::Config = url
        .parse()
        .map_err(|e| fail(format!("`{shown}` is not a PostgreSQL URL: {e}")))?;
    let port = config.get_ports().first().copied().unwrap_or(5432);
    for host in config.get_hosts() {
        if let tokio_postgres::config::Host::Tcp(name) = host
            && !is_loopback(name, port).await
        {
            return Err(fail(format!(
                "refusing `{shown}`: the load generator only uses a database on loopback (127.0.0.0/8, ::1, localhost)"
            )));
        }
    }
    Ok(())
}

/// Refuses a Redis URL that is not `redis://` on loopback (or a local Unix socket).
async fn check_redis_loopback(url: &str) -> Result<()> {
    let shown = redact_url_password(url);
    if url.starts_with("redis+unix://") || url.starts_with("unix://") {
        return Ok(());
    }
    let uri: hyper::Uri = url
        .parse()
        .map_err(|e| fail(format!("`{shown}` is not a Redis URL: {e}")))?;
    let host = uri.host().unwrap_or_default();
    if uri.scheme_str() != Some("redis") || !is_loopback(host, uri.port_u16().unwrap_or(6379)).await {
        return Err(fail(format!(
            "refusing `{shown}`: the load generator only uses redis:// on loopback (127.0.0.0/8, ::1, localhost)"
        )));
    }
    Ok(())
}

/// A PostgreSQL schema of one run (`loadgen_PID_SECONDS_N`), created empty and dropped with
/// everything in it (`DROP SCHEMA … CASCADE`) by [`ScratchSchema::drop_now`], or when
/// dropped (also on errors and panics; a warning on stderr if that fails).
pub struct ScratchSchema {
    url: String,
    name: String,
    dropped: bool,
}

impl ScratchSchema {
    /// Creates a fresh schema on the server at `url` (which must be reachable).
    pub async fn create(url: &str) -> Result<ScratchSchema> {
        let name = unique_name("loadgen", '_');
        let client = postgres_client(url).await?;
        client
            .batch_execute(&format!("CREATE SCHEMA \"{name}\""))
            .await
            .map_err(|e| fail(format!("cannot create the schema {name}: {e}")))?;
        Ok(ScratchSchema {
            url: url.to_owned(),
            name,
            dropped: false,
        })
    }

    /// The schema's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The server's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Drops the schema and everything in it now.
    pub async fn drop_now(mut self) -> Result<()> {
        self.dropped = true;
        drop_schema(&self.url, &self.name).await
    }
}

impl Drop for ScratchSchema {
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        let (url, name) = (self.url.clone(), self.name.clone());
        // On a thread of its own with its own runtime: usable inside and outside a runtime.
        let dropped = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| fail(format!("cannot start a runtime: {e}")))?
                .block_on(drop_schema(&url, &name))
        })
        .join()
        .unwrap_or_else(|_| Err(fail("the cleanup thread panicked")));
        if let Err(error) = dropped {
            eprintln!("loadgen: warning: {error}");
        }
    }
}

/// A direct connection (no pool) to the PostgreSQL server at `url`.
async fn postgres_client(url: &str) -> Result<tokio_postgres::Client> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .map_err(|e| {
            fail(format!(
                "PostgreSQL is unreachable at {} ({e})",
                redact_url_password(url)
            ))
        })?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

async fn drop_schema(url: &str, name: &str) -> Result<()> {
    let failed = |e: &dyn fmt::Display| {
        fail(format!(
            "could not drop the PostgreSQL schema {name} ({e}); drop it with DROP SCHEMA \"{name}\" CASCADE"
        ))
    };
    let client = postgres_client(url).await.map_err(|e| failed(&e))?;
    client
        .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE"))
        .await
        .map_err(|e| failed(&e))
}

/// How many `holdfast-server` processes to start and where they keep their state.
#[derive(Debug, Clone)]
pub struct FleetOptions {
    /// How many processes (at least 1; more than 1 needs `database`).
    pub instances: usize,
    /// A PostgreSQL URL: every instance uses one fresh schema there (dropped at the end).
    /// Without it, the single instance uses a temporary SQLite file.
    pub database: Option<String>,
    /// A Redis URL: every instance uses it under one fresh key prefix (rate limits, proof
    /// replays and revocations; its keys expire by themselves).
    pub redis: Option<String>,
}

/// `holdfast-server` processes started by the load generator, rate limits and address
/// blocking off. Several instances share one fresh PostgreSQL schema and one fresh Redis key
/// prefix (and one `HOLDFAST_SECRET`). When stopped or dropped, the processes are killed
/// first, then the schema is dropped.
pub struct Fleet {
    // Declared (so dropped) before the schema: the servers go first.
    servers: Vec<SpawnedServer>,
    schema: Option<ScratchSchema>,
    redis_prefix: Option<String>,
    database: String,
}

impl Fleet {
    /// Checks `options` (several instances need PostgreSQL; databases and Redis must be on
    /// loopback), creates the schema and starts the instances one after the other.
    pub async fn start(binary: &Path, options: &FleetOptions) -> Result<Fleet> {
        if options.instances == 0 {
            return Err(fail("--instances must be at least 1"));
        }
        let postgres = match &options.database {
            Some(url) if is_postgres_url(url) => Some(url.clone()),
            Some(_) => {
                return Err(fail(
                    "--database takes a postgres:// URL (a spawned server otherwise uses a temporary SQLite file)",
                ));
            }
            None => None,
        };
        if options.instances > 1 && postgres.is_none() {
            return Err(fail(format!(
                "--instances {} needs --database postgres://…: SQLite instances would each have a file of \
                 their own and could not share users, tokens or rotations",
                options.instances
            )));
        }
        if let Some(url) = &postgres {
            check_postgres_loopback(url).await?;
        }
        if let Some(url) = &options.redis {
            check_redis_loopback(url).await?;
        }
        let schema = match &postgres {
            Some(url) => Some(ScratchSchema::create(url).await?),
            None => None,
        };
        let redis_prefix = options.redis.as_ref().map(|_| unique_name("loadgen", '-'));
        let mut shared = Vec::new();
        if let Some(schema) = &schema {
            shared.extend(["--database-schema".to_owned(), schema.name.clone()]);
        }
        if let (Some(url), Some(prefix)) = (&options.redis, &redis_prefix) {
            shared.extend([
                "--redis".to_owned(),
                url.clone(),
                "--redis-prefix".to_owned(),
                prefix.clone(),
            ]);
        }
        // PostgreSQL instances need HOLDFAST_SECRET, the same on each.
        let secret = postgres
            .as_ref()
            .map(|_| holdfast_server_kit::tokens::generate_secret());
        let mut servers: Vec<SpawnedServer> = Vec::with_capacity(options.instances);
        for _ in 0..options.instances {
            let (binary, database, shared, secret) = (
                binary.to_path_buf(),
                postgres.clone(),
                shared.clone(),
                secret.clone(),
            );
            let server = tokio::task::spawn_blocking(move || {
                SpawnedServer::launch(&binary, database.as_deref(), &shared, secret.as_deref())
            })
            .await
            .map_err(|e| fail(format!("server start failed: {e}")))??;
            servers.push(server);
        }
        let database = match (&postgres, &options.redis) {
            (Some(_), Some(_)) => "postgres+redis",
            (Some(_), None) => "postgres",
            (None, Some(_)) => "sqlite+redis",
            (None, None) => "sqlite",
        };
        Ok(Fleet {
            servers,
            schema,
            redis_prefix,
            database: database.to_owned(),
        })
    }

    /// `http://127.0.0.1:PORT` of each instance, in start order.
    pub fn urls(&self) -> Vec<String> {
        self.servers.iter().map(|s| s.url().to_owned()).collect()
    }

    /// The process ids.
    pub fn pids(&self) -> Vec<u32> {
        self.servers.iter().map(SpawnedServer::pid).collect()
    }

    /// `sqlite`, `sqlite+redis`, `postgres` or `postgres+redis`.
    pub fn database(&self) -> &str {
        &self.database
    }

    /// The PostgreSQL schema the instances share, if any.
    pub fn schema(&self) -> Option<&str> {
        self.schema.as_ref().map(ScratchSchema::name)
    }

    /// The Redis key prefix the instances share, if any.
    pub fn redis_prefix(&self) -> Option<&str> {
        self.redis_prefix.as_deref()
    }

    /// Kills the instances, then drops the schema.
    pub async fn stop(mut self) -> Result<()> {
        self.servers.clear();
        match self.schema.take() {
            Some(schema) => schema.drop_now().await,
            None => Ok(()),
        }
    }
}

/// `holdfast-server` started by the load generator, with rate limits and address blocking
/// off, on a temporary SQLite database or a given PostgreSQL one; killed (and its temporary
/// folder deleted) when dropped.
pub struct SpawnedServer {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl SpawnedServer {
    /// Starts `binary` on `127.0.0.1:0` on a temporary SQLite database and reads the address
    /// from its first stdout line.
    pub fn start(binary: &Path) -> Result<SpawnedServer> {
        SpawnedServer::launch(binary, None, &[], None)
    }

    /// Starts `binary` on `127.0.0.1:0` with `database` (a temporary SQLite file when
    /// `None`), the `extra` arguments and `secret` as `HOLDFAST_SECRET` (inherited when
    /// `None`).
    fn launch(
        binary: &Path,
        database: Option<&str>,
        extra: &[String],
        secret: Option<&str>,
    ) -> Result<SpawnedServer> {
        let dir = tempfile::tempdir().map_err(|e| fail(format!("cannot create a temporary folder: {e}")))?;
        let log_path = dir.path().join("server.log");
        let log = std::fs::File::create(&log_path)
            .map_err(|e| fail(format!("cannot create the server log: {e}")))?;
        let database = match database {
            Some(url) => url.to_owned(),
            None => format!("sqlite:{}", dir.path().join("db").display()),
        };
        let mut command = Command::new(binary);
        command
            .args([
                "--listen",
                "127.0.0.1:0",
                "--rate-limit",
                "off",
                "--ip-block",
                "off",
                "--database",
            ])
            .arg(&database)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log);
        if let Some(secret) = secret {
            command.env("HOLDFAST_SECRET", secret);
        }
        let mut child = command
            .spawn()
            .map_err(|e| fail(format!("cannot start {}: {e}", binary.display())))?;
        let line = child
            .stdout
            .take()
            .and_then(|stdout| first_line(stdout, Duration::from_secs(30)));
        let url = line
            .as_deref()
            .and_then(|l| l.trim_end().strip_prefix("listening on "))
            .map(str::to_owned);
        match url {
            Some(url) => Ok(SpawnedServer {
                child,
                url,
                _dir: dir,
            }),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                Err(fail(format!(
                    "{} did not print `listening on http://ADDR` (first line: {line:?}); its log:\n{log}",
                    binary.display()
                )))
            }
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for SpawnedServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The first line of `stdout`, within `limit`; the rest is drained on a thread so that the
/// server never writes into a closed pipe.
fn first_line(stdout: impl Read + Send + 'static, limit: Duration) -> Option<String> {
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        let read = reader.read_line(&mut line).ok().filter(|&n| n > 0).map(|_| line);
        let _ = sender.send(read);
        let _ = std::io::copy(&mut reader, &mut std::io::sink());
    });
    receiver.recv_timeout(limit).ok().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use holdfast_server_kit::ServerConfig;

    /// Cheap password hashing and no rate limits: setup must not dominate the tests.
    fn quick(config: &mut ServerConfig) {
        config.rate_limits = holdfast_server_kit::config::RateLimits::OFF;
        config.argon2 = holdfast_server_kit::passwords::Argon2Params {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        };
    }

    fn plan(scenario: Scenario, requests: u64, database: &str) -> Plan {
        Plan {
            scenario,
            requests,
            concurrency: 4,
            duration_limit: Duration::from_secs(30),
            probe: scenario == Scenario::SignIn,
            server_pids: Vec::new(),
            database: database.to_owned(),
        }
    }

    #[tokio::test]
    async fn refuses_hosts_that_are_not_loopback() {
        for url in [
            "http://10.0.0.1:8080",
            "http://example.com",
            "https://127.0.0.1:8080",
            "http://[2001:db8::1]:80",
        ] {
            assert!(Target::loopback(url).await.is_err(), "{url}");
        }
        for url in [
            "http://127.0.0.1:8080",
            "http://127.1.2.3:9",
            "http://[::1]:8080/base",
        ] {
            assert!(Target::loopback(url).await.is_ok(), "{url}");
        }
        let target = Target::loopback("http://[::1]:8080/base/").await.unwrap();
        assert_eq!(target.prefix, "/base/auth");
        assert_eq!(target.sync_url(), "http://[::1]:8080/base/sync");
        assert_eq!(target.sync_ws, "ws://[::1]:8080/base/sync");
        // As the server names the endpoint from the Host header: no default port.
        let target = Target::loopback("http://127.0.0.1:80").await.unwrap();
        assert_eq!(target.sync_url(), "http://127.0.0.1/sync");

        for url in [
            "postgres://10.0.0.1:5432/test",
            "postgresql://user:secret@example.com/test",
        ] {
            let refused = check_postgres_loopback(url).await.unwrap_err();
            assert!(!refused.0.contains("secret"), "{refused}");
        }
        for url in [
            "postgres://127.0.0.1:5432/test",
            "postgres://postgres@localhost/test",
        ] {
            check_postgres_loopback(url).await.unwrap();
        }
        for url in [
            "redis://10.0.0.1:6379",
            "rediss://127.0.0.1:6379",
            "http://127.0.0.1:6379",
        ] {
            assert!(check_redis_loopback(url).await.is_err(), "{url}");
        }
        for url in ["redis://127.0.0.1:6379", "redis://:pw@[::1]:6379/2"] {
            check_redis_loopback(url).await.unwrap();
        }
    }

    #[tokio::test]
    async fn several_instances_need_postgres() {
        let binary = Path::new("/nonexistent/holdfast-server");
        let sqlite = FleetOptions {
            instances: 2,
            database: None,
            redis: None,
        };
        let refused = Fleet::start(binary, &sqlite).await.err().unwrap();
        assert!(refused.0.contains("--database postgres://"), "{refused}");
        let not_postgres = FleetOptions {
            database: Some("sqlite:./x.db".into()),
            ..sqlite
        };
        assert!(Fleet::start(binary, &not_postgres).await.is_err());
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut tally = Tally {
            latencies_us: (1..=100).rev().collect(),
            ..Tally::default()
        };
        tally.finish();
        assert_eq!(tally.percentile_us(50.0), 50);
        assert_eq!(tally.percentile_us(99.0), 99);
        assert_eq!(tally.percentile_us(100.0), 100);
        assert_eq!(Tally::default().percentile_us(50.0), 0);
    }

    #[tokio::test]
    async fn runs_each_scenario_against_a_local_server() {
        let server = crate::local_server::LocalServer::start(quick).await.unwrap();
        let target = Target::loopback(&server.base_url()).await.unwrap();
        assert_eq!(target.sync_url(), server.sync_url());
        for scenario in [
            Scenario::Me,
            Scenario::Refresh,
            Scenario::SignIn,
            Scenario::Sync,
            Scenario::SyncUnbound,
        ] {
            let report = run(std::slice::from_ref(&target), &plan(scenario, 40, "sqlite"))
                .await
                .unwrap();
            assert_eq!(report.tally.latencies_us.len(), 40, "{}", report.human());
            assert_eq!(report.tally.error_count(), 0, "{}", report.human());
            assert!(report.stopped_early.is_none());
            assert_eq!(report.instances, 1);
            assert!(
                report.machine().starts_with(&format!(
                    "RESULT scenario={scenario} instances=1 database=sqlite "
                )),
                "{}",
                report.machine()
            );
        }
        server.stop().await;
    }

    #[tokio::test]
    async fn sync_refreshes_expiring_tokens_outside_the_timing() {
        let server = crate::local_server::LocalServer::start(|config| {
            quick(config);
            // Half of the lifetime is 0 s: every admission refreshes first.
            config.access_ttl_secs = 1;
        })
        .await
        .unwrap();
        let target = Target::loopback(&server.base_url()).await.unwrap();
        for scenario in [Scenario::Sync, Scenario::SyncUnbound] {
            let report = run(std::slice::from_ref(&target), &plan(scenario, 20, "sqlite"))
                .await
                .unwrap();
            assert_eq!(report.tally.error_count(), 0, "{}", report.human());
            assert_eq!(report.tally.latencies_us.len(), 20, "{}", report.human());
            assert!(report.tally.token_refreshes >= 20, "{}", report.human());
            assert!(report.machine().contains(" token_refreshes="));
        }
        server.stop().await;
    }

    /// The test PostgreSQL server: `HOLDFAST_TEST_POSTGRES_URL`, as in the server kit's tests.
    fn postgres_url() -> String {
        std::env::var("HOLDFAST_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
    }

    /// The test Redis: `HOLDFAST_TEST_REDIS_URL`, as in the server kit's tests.
    fn redis_url() -> String {
        std::env::var("HOLDFAST_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
    }

    /// An in-process `holdfast-server`: PostgreSQL stores in `schema`, Redis under `prefix`
    /// with the revocation relay, and the sync endpoint.
    struct SharedInstance {
        address: SocketAddr,
        stop: tokio::sync::oneshot::Sender<()>,
        task: tokio::task::JoinHandle<std::io::Result<()>>,
        _kit: holdfast_server_kit::Kit,
    }

    impl SharedInstance {
        async fn start(schema: &ScratchSchema, prefix: &str, secret: &str) -> SharedInstance {
            use holdfast_server_kit::sync::{SharedCollection, SyncOptions};
            use holdfast_server_kit::{Kit, Stores, server};

            let redis = redis_url();
            let stores = Stores::postgres(schema.url(), Some(schema.name()))
                .await
                .unwrap_or_else(|e| {
                    panic!(
                        "PostgreSQL at {} ({e}): this test needs it (set HOLDFAST_TEST_POSTGRES_URL; never skipped)",
                        schema.url()
                    )
                })
                .with_redis(&redis, prefix)
                .await
                .unwrap_or_else(|e| {
                    panic!("Redis at {redis} ({e}): this test needs it (set HOLDFAST_TEST_REDIS_URL; never skipped)")
                });
            let mut config = ServerConfig::new(vec![secret.to_owned()]);
            quick(&mut config);
            let kit = Kit::builder(config, stores)
                .sync(SharedCollection::memory(), SyncOptions::default())
                .redis_relay(&redis, prefix)
                .build()
                .await
                .unwrap_or_else(|e| panic!("Redis relay at {redis}: {e}"));
            let router = kit.standalone_router();
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let address = listener.local_addr().unwrap();
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let task = tokio::spawn(server::serve(listener, router, async move {
                let _ = stopped.await;
            }));
            SharedInstance {
                address,
                stop,
                task,
                _kit: kit,
            }
        }

        async fn stop(self) {
            let _ = self.stop.send(());
            let _ = self.task.await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn runs_refresh_and_sync_across_two_instances_on_postgres_and_redis() {
        let url = postgres_url();
        let schema = ScratchSchema::create(&url).await.unwrap_or_else(|e| {
            panic!("{e}: this test needs PostgreSQL (set HOLDFAST_TEST_POSTGRES_URL; never skipped)")
        });
        let prefix = unique_name("loadgen-test", '-');
        let secret = holdfast_server_kit::tokens::generate_secret();
        let a = SharedInstance::start(&schema, &prefix, &secret).await;
        let b = SharedInstance::start(&schema, &prefix, &secret).await;
        let mut targets = Vec::new();
        for instance in [&a, &b] {
            targets.push(
                Target::loopback(&format!("http://{}", instance.address))
                    .await
                    .unwrap(),
            );
        }
        // Refresh: each rotation is presented to the other instance next.
        for (scenario, requests) in [(Scenario::Refresh, 60), (Scenario::Sync, 40), (Scenario::Me, 40)] {
            let report = run(&targets, &plan(scenario, requests, "postgres+redis"))
                .await
                .unwrap();
            assert_eq!(report.tally.error_count(), 0, "{}", report.human());
            assert_eq!(
                report.tally.latencies_us.len() as u64,
                requests,
                "{}",
                report.human()
            );
            assert_eq!(report.instances, 2);
            assert!(
                report.machine().starts_with(&format!(
                    "RESULT scenario={scenario} instances=2 database=postgres+redis "
                )),
                "{}",
                report.machine()
            );
            assert!(
                report.human().contains("2 instances, postgres+redis"),
                "{}",
                report.human()
            );
        }
        a.stop().await;
        b.stop().await;
        let name = schema.name().to_owned();
        schema.drop_now().await.unwrap();
        let client = postgres_client(&url).await.unwrap();
        let left = client
            .query("SELECT 1 FROM pg_namespace WHERE nspname = $1", &[&name])
            .await
            .unwrap();
        assert!(left.is_empty(), "schema {name} was not dropped");
    }
}
