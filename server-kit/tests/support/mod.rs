//! A real auth server on loopback for the HTTP integration suites.
//!
//! [`TestServer::start`] starts the shared fixture ([`holdfast_testing::TestServer`]) on
//! `127.0.0.1:0` over a fresh SQLite file, with a [`ManualClock`] set to the real time (so
//! tokens look normal) and cheap Argon2 parameters. Rate limits, IP blocking and the account lockout are off unless a test turns them on: every
//! request comes from 127.0.0.1, so the defaults would couple unrelated tests.
//!
//! Every response goes through [`Reply::read`], which checks what PROTOCOL section 1 says of
//! every response (JSON, `Cache-Control: no-store`, a `Date`, one of the two envelopes, a
//! status that matches the `code`), so no test can forget to.
#![allow(dead_code)] // Each suite uses part of the harness.

use std::net::SocketAddr;
use std::sync::Arc;

use holdfast_protocol::{Claims, ErrorCode};
use holdfast_server_kit::clock::{Clock, ManualClock, SystemClock};
use holdfast_server_kit::gate::GateConfig;
use holdfast_server_kit::sync::{SharedCollection, SyncOptions};
use holdfast_server_kit::{AuthService, Kit, ServerConfig, Stores};
use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

mod device_key;

pub use device_key::DeviceKey;

/// The signing secret of every test server unless a test configures others.
pub const SECRET: &str = holdfast_testing::SECRET;
/// A password every helper uses unless told otherwise.
pub const PASSWORD: &str = "correct horse battery";

/// An auth server on loopback ([`holdfast_testing::TestServer`]), with the HTTP helpers of
/// these suites; shuts down gracefully when dropped.
pub struct TestServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its clock (shared with every server started with [`TestServer::start_sharing`]).
    pub clock: ManualClock,
    /// Its stores, to arrange state and to check what was (not) stored.
    pub stores: Stores,
    /// A client with no default headers.
    pub client: reqwest::Client,
    /// The service behind the routes (for account-wide actions).
    pub service: AuthService,
    /// The kit (its gate and authenticator).
    pub kit: Kit,
    /// The base URL device proofs name: the configured public URL, or the local one.
    proof_base: String,
    server: holdfast_testing::TestServer,
}

impl TestServer {
    /// A server over a fresh SQLite file, configured by `configure` after the test defaults.
    pub async fn start(configure: impl FnOnce(&mut ServerConfig)) -> TestServer {
        TestServer::launch(
            holdfast_testing::TestServer::builder()
                .quick()
                .clock(ManualClock::new(SystemClock.now_ms()))
                .configure(configure),
        )
        .await
    }

    /// [`TestServer::start`] with the routes mounted under `prefix` by `Router::nest`, as an
    /// application embedding the kit would.
    pub async fn start_mounted(prefix: &str, configure: impl FnOnce(&mut ServerConfig)) -> TestServer {
        TestServer::launch(
            holdfast_testing::TestServer::builder()
                .quick()
                .clock(ManualClock::new(SystemClock.now_ms()))
                .mount(prefix)
                .configure(configure),
        )
        .await
    }

    /// [`TestServer::start`] with account mail going to `mail` (not development mode).
    pub async fn start_with_mail(mail: Arc<dyn holdfast_server_kit::service::AccountMail>) -> TestServer {
        TestServer::launch(
            holdfast_testing::TestServer::builder()
                .quick()
                .clock(ManualClock::new(SystemClock.now_ms()))
                .mail(mail),
        )
        .await
    }

    /// [`TestServer::start`] with the application's hooks.
    pub async fn start_hooked(hooks: impl holdfast_server_kit::hooks::AuthHooks) -> TestServer {
        TestServer::launch(
            holdfast_testing::TestServer::builder()
                .quick()
                .clock(ManualClock::new(SystemClock.now_ms()))
                .hooks(hooks),
        )
        .await
    }

    /// A server over the given stores and clock (e.g. PostgreSQL and Redis shared with
    /// another server, as a second instance would be).
    pub async fn start_with_stores(
        stores: Stores,
        clock: ManualClock,
        configure: impl FnOnce(&mut ServerConfig),
    ) -> TestServer {
        TestServer::launch(
            holdfast_testing::TestServer::builder()
                .quick()
                .stores(stores)
                .clock(clock)
                .configure(configure),
        )
        .await
    }

    /// A server that also serves the sync endpoint (`/sync`) over `collection`, behind a
    /// gate configured by `gate`, on the given stores and clock when given.
    pub async fn start_sync(
        shared: Option<(Stores, ManualClock)>,
        gate: GateConfig,
        collection: SharedCollection,
        options: SyncOptions,
    ) -> TestServer {
        let builder = holdfast_testing::TestServer::builder().quick();
        let builder = match shared {
            Some((stores, clock)) => builder.stores(stores).clock(clock),
            None => builder.clock(ManualClock::new(SystemClock.now_ms())),
        };
        TestServer::launch(builder.gate(gate).sync(collection, options)).await
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(self) {
        self.server.stop().await;
    }

    /// Stops this server (gracefully, waiting for it) and starts a new one on the same
    /// SQLite file and clock, as a process restart would.
    pub async fn restart(self, configure: impl FnOnce(&mut ServerConfig)) -> TestServer {
        let dir = self.server.dir().clone();
        let next = holdfast_testing::TestServer::builder()
            .quick()
            .configure(configure);
        let server = self.server.restart(next).await;
        debug_assert!(Arc::ptr_eq(server.dir(), &dir));
        TestServer::wrap(server)
    }

    /// Another server over the same stores and clock (e.g. with other secrets).
    pub async fn start_sharing(&self, configure: impl FnOnce(&mut ServerConfig)) -> TestServer {
        TestServer::launch(
            holdfast_testing::TestServer::builder()
                .quick()
                .stores(self.stores.clone())
                .clock(self.clock.clone())
                .dir(self.server.dir().clone())
                .configure(configure),
        )
        .await
    }

    async fn launch(builder: holdfast_testing::TestServerBuilder) -> TestServer {
        TestServer::wrap(builder.start().await)
    }

    fn wrap(server: holdfast_testing::TestServer) -> TestServer {
        let config = server.kit.service().config();
        let proof_base = match config.public_url.as_deref() {
            Some(url) => url.trim_end_matches('/').to_ascii_lowercase(),
            None => server.base_url(),
        };
        let client = {
            // reqwest is built with rustls and no provider in this workspace (holdfast-core).
            let _ = rustls::crypto::ring::default_provider().install_default();
            reqwest::Client::builder()
        }
        .no_proxy()
        .build()
        .expect("HTTP client");
        TestServer {
            addr: server.addr,
            clock: server
                .clock
                .clone()
                .expect("the suites' servers read a manual clock"),
            stores: server.stores.clone(),
            client,
            service: server.kit.service().clone(),
            kit: server.kit.clone(),
            proof_base,
            server,
        }
    }

    /// The SQLite file of a server started over its own stores.
    pub fn db_path(&self) -> std::path::PathBuf {
        self.server.db_path()
    }

    /// A `DELETE` with a bearer token (and its proof) and, when given, a JSON body.
    pub async fn delete_auth(&self, path: &str, token: &str, body: Option<Value>) -> Reply {
        let request = self.bearer_request(Method::DELETE, path, token);
        Reply::read(match body {
            Some(body) => request.json(&body),
            None => request,
        })
        .await
    }

    /// The server's time, ms.
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// The server's time, seconds.
    pub fn now_secs(&self) -> i64 {
        self.clock.now_secs()
    }

    /// The absolute URL of `path` (e.g. `/auth/me`), under the mount prefix if any.
    pub fn url(&self, path: &str) -> String {
        self.server.url(path)
    }

    /// The URL a device proof for `path` names (PROTOCOL 6.1: the server's public URL).
    pub fn proof_url(&self, path: &str) -> String {
        format!("{}{path}", self.proof_base)
    }

    /// A request builder for `path`.
    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.client.request(method, self.url(path))
    }

    /// POSTs `body` as JSON. A token request sends a `DPoP` proof, as the Holdfast client
    /// does, when it names a key this test process generated: a sign-up or sign-in whose
    /// `devicePublicKey` is one, a refresh of a family bound to one, a verify of a device
    /// signed up with one ([`TestServer::sign_up_device`]). The tokens it gets are then
    /// bound (PROTOCOL 3); [`TestServer::post_unproven`] sends none, as Kora's client.
    pub async fn post(&self, path: &str, body: Value) -> Reply {
        let key = match path {
            "/auth/signup" | "/auth/signin" => match body["devicePublicKey"].as_str() {
                Some(jwk) => holdfast_protocol::PublicJwk::parse(jwk)
                    .ok()
                    .and_then(|jwk| DeviceKey::holding(&jwk.thumbprint())),
                // A known device signing in again without sending its key proves the
                // registered one.
                None => body["deviceId"]
                    .as_str()
                    .and_then(|device| device_key::key_of_device(&self.url(""), device)),
            },
            "/auth/refresh" => body["refreshToken"]
                .as_str()
                .and_then(|token| Claims::decode_unverified(token).ok())
                .and_then(|claims| claims.cnf)
                .and_then(|cnf| DeviceKey::holding(&cnf.jkt)),
            "/auth/device/verify" => body["deviceId"]
                .as_str()
                .and_then(|device| device_key::key_of_device(&self.url(""), device)),
            _ => None,
        };
        let request = self.request(Method::POST, path).json(&body);
        let request = match key {
            Some(key) => request.header("DPoP", key.token_proof(&self.proof_url(path), self.now_secs())),
            None => request,
        };
        Reply::read(request).await
    }

    /// POSTs `body` as JSON without any `DPoP` proof.
    pub async fn post_unproven(&self, path: &str, body: Value) -> Reply {
        Reply::read(self.request(Method::POST, path).json(&body)).await
    }

    /// A request for `path` with `Authorization: Bearer token`, and, when the token is
    /// bound to a key this test process generated (`cnf.jkt`), a fresh `DPoP` proof for it
    /// dated by the server's clock, as the device holding the key sends (PROTOCOL 6.1).
    pub fn bearer_request(&self, method: Method, path: &str, token: &str) -> reqwest::RequestBuilder {
        let request = self.request(method.clone(), path).bearer_auth(token);
        let bound = Claims::decode_unverified(token)
            .ok()
            .and_then(|claims| claims.cnf);
        match bound.and_then(|cnf| DeviceKey::holding(&cnf.jkt)) {
            Some(key) => {
                let proof = key.proof(method.as_str(), &self.url(path), token, self.now_secs());
                request.header("DPoP", proof)
            }
            None => request,
        }
    }

    /// POSTs `body` as JSON with a bearer token (and its proof, see
    /// [`TestServer::bearer_request`]).
    pub async fn post_auth(&self, path: &str, token: &str, body: Value) -> Reply {
        Reply::read(self.bearer_request(Method::POST, path, token).json(&body)).await
    }

    /// GETs `path` with a bearer token (and its proof, see [`TestServer::bearer_request`]).
    pub async fn get_auth(&self, path: &str, token: &str) -> Reply {
        Reply::read(self.bearer_request(Method::GET, path, token)).await
    }

    /// `GET /auth/me` with `token`.
    pub async fn me(&self, token: &str) -> Reply {
        self.get_auth("/auth/me", token).await
    }

    /// `POST /auth/refresh` with `refresh_token`.
    pub async fn refresh(&self, refresh_token: &str) -> Reply {
        self.post("/auth/refresh", json!({ "refreshToken": refresh_token }))
            .await
    }

    /// `DELETE /auth/device/{id}` with `token`.
    pub async fn revoke(&self, token: &str, device_id: &str) -> Reply {
        Reply::read(self.bearer_request(Method::DELETE, &format!("/auth/device/{device_id}"), token)).await
    }

    /// Signs up `email` with [`PASSWORD`] and no device; panics unless 201.
    pub async fn sign_up(&self, email: &str) -> Session {
        self.sign_up_with(json!({ "email": email, "password": PASSWORD }))
            .await
    }

    /// Signs up with a raw body; panics unless 201.
    pub async fn sign_up_with(&self, body: Value) -> Session {
        Session::from_reply(self.post("/auth/signup", body).await.expect_status(201))
    }

    /// Signs in with a raw body; panics unless 200.
    pub async fn sign_in_with(&self, body: Value) -> Session {
        Session::from_reply(self.post("/auth/signin", body).await.expect_status(200))
    }

    /// Signs `email` up with a new keyed device `device_id`; panics unless 201.
    pub async fn sign_up_device(&self, email: &str, device_id: &str, key: &DeviceKey) -> Session {
        device_key::remember_device(&self.url(""), device_id, key);
        self.sign_up_with(json!({
            "email": email,
            "password": PASSWORD,
            "deviceId": device_id,
            "devicePublicKey": key.jwk(),
        }))
        .await
    }

    /// Signs `email` in (with [`PASSWORD`]) on `device_id`, keyless; panics unless 200.
    pub async fn sign_in_device(&self, email: &str, device_id: &str) -> Session {
        self.sign_in_with(json!({ "email": email, "password": PASSWORD, "deviceId": device_id }))
            .await
    }

    /// Asks for a challenge for `device_id`, with a bearer token when given; panics unless 200.
    pub async fn challenge(&self, device_id: &str, bearer: Option<&str>) -> String {
        let body = json!({ "deviceId": device_id });
        let reply = match bearer {
            Some(token) => self.post_auth("/auth/device/challenge", token, body).await,
            None => self.post("/auth/device/challenge", body).await,
        };
        let challenge = reply.expect_status(200).data()["challenge"]
            .as_str()
            .expect("challenge")
            .to_owned();
        assert!(
            challenge.len() == 64 && challenge.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
            "challenge is 64 lowercase hex characters: {challenge}"
        );
        challenge
    }

    /// `POST /auth/device/verify`.
    pub async fn verify(&self, device_id: &str, challenge: &str, signature: &str) -> Reply {
        self.post(
            "/auth/device/verify",
            json!({ "deviceId": device_id, "challenge": challenge, "signature": signature }),
        )
        .await
    }
}

/// A response, read whole and checked against PROTOCOL section 1.
#[derive(Debug)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Headers.
    pub headers: HeaderMap,
    /// The raw body.
    pub text: String,
    /// The body as JSON.
    pub body: Value,
}

impl Reply {
    /// Sends `request` and reads the answer; fails the test on a transport error (a dropped
    /// connection counts as a server failure) or on a response that breaks section 1.
    pub async fn read(request: reqwest::RequestBuilder) -> Reply {
        let response = request
            .send()
            .await
            .expect("the server answers (no dropped connection)");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.expect("a readable body");
        let body: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("JSON body ({e}): {text}"));
        let reply = Reply {
            status,
            headers,
            text,
            body,
        };
        reply.check_transport();
        reply
    }

    fn check_transport(&self) {
        assert_ne!(
            self.status, 500,
            "no request may make the server fail: {}",
            self.text
        );
        assert_eq!(self.header("content-type"), Some("application/json"), "{self:?}");
        assert_eq!(self.header("cache-control"), Some("no-store"), "{self:?}");
        assert!(
            self.header("date").is_some_and(|d| d.ends_with(" GMT")),
            "a Date header: {self:?}"
        );
        let object = self
            .body
            .as_object()
            .unwrap_or_else(|| panic!("an object envelope: {}", self.text));
        if self.status < 400 {
            assert!(
                object.len() == 1 && object.contains_key("data"),
                "success envelope: {}",
                self.text
            );
            return;
        }
        // `reason` (PROTOCOL 8) says why a session ended, and must be one the crate knows.
        let reason = object.get("reason");
        if let Some(reason) = reason {
            assert!(
                reason
                    .as_str()
                    .and_then(holdfast_protocol::EndReason::parse)
                    .is_some(),
                "a known reason: {}",
                self.text
            );
        }
        assert_eq!(
            object.len(),
            2 + usize::from(reason.is_some()),
            "error envelope is {{error, code, reason?}}: {}",
            self.text
        );
        assert!(object.get("error").is_some_and(Value::is_string), "{}", self.text);
        let code = object
            .get("code")
            .and_then(Value::as_str)
            .and_then(ErrorCode::parse);
        let code = code.unwrap_or_else(|| panic!("a known code: {}", self.text));
        // 413 is the one status that does not follow from its code.
        if self.status != 413 {
            assert_eq!(self.status, code.status(), "status matches code: {}", self.text);
        }
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts the status, returning the reply.
    #[track_caller]
    pub fn expect_status(self, status: u16) -> Reply {
        assert_eq!(self.status, status, "{}", self.text);
        self
    }

    /// Asserts an error reply with `status` and `code`.
    #[track_caller]
    pub fn expect_error(&self, status: u16, code: &str) {
        assert_eq!((self.status, self.code()), (status, Some(code)), "{}", self.text);
    }

    /// The error code, if any.
    pub fn code(&self) -> Option<&str> {
        self.body.get("code").and_then(Value::as_str)
    }

    /// Why the session ended, if the error says (PROTOCOL 8).
    pub fn reason(&self) -> Option<&str> {
        self.body.get("reason").and_then(Value::as_str)
    }

    /// The error message, if any.
    pub fn message(&self) -> &str {
        self.body.get("error").and_then(Value::as_str).unwrap_or_default()
    }

    /// The success payload.
    #[track_caller]
    pub fn data(&self) -> &Value {
        self.body
            .get("data")
            .unwrap_or_else(|| panic!("a data envelope: {}", self.text))
    }
}

/// A signed-in session, from a sign-up or sign-in reply.
#[derive(Debug, Clone)]
pub struct Session {
    /// `data.user`.
    pub user: Value,
    /// The access token.
    pub access: String,
    /// The refresh token.
    pub refresh: String,
}

impl Session {
    /// Reads `{user, tokens:{accessToken, refreshToken}}` (and nothing else) from a reply.
    #[track_caller]
    pub fn from_reply(reply: Reply) -> Session {
        let data = reply.data();
        let members: Vec<_> = data.as_object().expect("object").keys().cloned().collect();
        assert_eq!(members, ["tokens", "user"], "{}", reply.text);
        let tokens = data["tokens"].as_object().expect("tokens object");
        assert_eq!(tokens.len(), 2, "{}", reply.text);
        Session {
            user: data["user"].clone(),
            access: tokens["accessToken"].as_str().expect("accessToken").to_owned(),
            refresh: tokens["refreshToken"].as_str().expect("refreshToken").to_owned(),
        }
    }

    /// The user id.
    pub fn user_id(&self) -> &str {
        self.user["id"].as_str().expect("user id")
    }

    /// The device the tokens were issued for.
    pub fn device_id(&self) -> String {
        claims(&self.access).dev
    }
}

/// The claims of a token, unverified.
#[track_caller]
pub fn claims(token: &str) -> Claims {
    Claims::decode_unverified(token).expect("a well-formed token")
}

/// Runs a blocking closure (e.g. Kora's 600,000-iteration PBKDF2) off the executor.
pub async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(work).await.expect("blocking task")
}

/// A fresh email address (unique per call, so suites never collide).
pub fn email(label: &str) -> String {
    format!("{label}-{}@example.com", uuid::Uuid::new_v4().simple())
}
