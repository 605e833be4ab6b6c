//! The WebSocket sync endpoint (`holdfast_server_kit::sync`) over real loopback sockets:
//! both handshakes, refusals before the upgrade, fan-out to a user's connections only,
//! persistence across a reopen, message validation, and each way the gate cuts an open
//! connection off (with the revocation-to-close delay measured).

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use holdfast_protocol::error::ErrorBody;
use holdfast_server_kit::gate::GateConfig;
use holdfast_server_kit::server::GoingAway;
use holdfast_server_kit::sync::{PAGE_BUDGET_BYTES, PAGE_MAX_ITEMS, Quota, SharedCollection, SyncOptions};
use serde_json::{Value, json};
use support::{DeviceKey, Session, TestServer, email};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long a test waits for a message it expects.
const RECEIVE_BOUND: Duration = Duration::from_secs(5);
/// How long a test waits to be sure a message does not come.
const SILENCE: Duration = Duration::from_millis(300);
/// The bound on revocation-to-close: generous (debug build, two shared cores); the delay
/// measured is printed.
const CLOSE_BOUND: Duration = Duration::from_secs(2);

/// An auth server with the sync endpoint (the shared fixture, wired by the kit).
struct Fixture {
    server: TestServer,
    sync_addr: SocketAddr,
    collection: SharedCollection,
}

impl Fixture {
    async fn start() -> Fixture {
        Fixture::start_with(SharedCollection::memory(), SyncOptions::default()).await
    }

    async fn start_with(collection: SharedCollection, options: SyncOptions) -> Fixture {
        Fixture::start_gated(GateConfig::default(), collection, options).await
    }

    /// A fixture whose gate re-checks (and so follows the server's manual clock) every
    /// 50 ms, for the tests that move the clock.
    async fn start_following_the_clock() -> Fixture {
        let config = GateConfig {
            recheck_interval: Duration::from_millis(50),
            ..GateConfig::default()
        };
        Fixture::start_gated(config, SharedCollection::memory(), SyncOptions::default()).await
    }

    async fn start_gated(config: GateConfig, collection: SharedCollection, options: SyncOptions) -> Fixture {
        let server = TestServer::start_sync(None, config, collection.clone(), options).await;
        Fixture {
            sync_addr: server.addr,
            server,
            collection,
        }
    }

    /// Stops the server and waits for it.
    async fn stop(self) {
        self.server.stop().await;
    }

    /// The sync URL as a device proof names it.
    fn sync_url(&self) -> String {
        format!("http://{}/sync", self.sync_addr)
    }

    fn ws_url(&self) -> String {
        format!("ws://{}/sync", self.sync_addr)
    }

    /// A proof by `key` for `GET` on the sync URL, bound to `access`.
    fn proof(&self, key: &DeviceKey, access: &str) -> String {
        key.proof("GET", &self.sync_url(), access, self.server.now_secs())
    }

    /// Opens a connection with `Authorization` (and `DPoP` when given) on the upgrade.
    async fn connect_headers(&self, access: &str, proof: Option<&str>) -> Result<Conn, tungstenite::Error> {
        let mut request = self.ws_url().into_client_request()?;
        let headers = request.headers_mut();
        headers.insert(
            "authorization",
            format!("Bearer {access}").parse().expect("header"),
        );
        if let Some(proof) = proof {
            headers.insert("dpop", proof.parse().expect("header"));
        }
        let (stream, _) = tokio_tungstenite::connect_async(request).await?;
        Ok(Conn { stream })
    }

    /// Opens a connection with a device proof (a keyed device): welcome and snapshot read.
    async fn connect_device(&self, key: &DeviceKey, session: &Session) -> (Conn, Vec<Value>) {
        let proof = self.proof(key, &session.access);
        let mut conn = self
            .connect_headers(&session.access, Some(&proof))
            .await
            .expect("admitted");
        let items = conn.expect_welcome(session).await;
        (conn, items)
    }

    /// Opens a connection without credentials (Kora style).
    async fn connect_bare(&self) -> Conn {
        let (stream, _) = tokio_tungstenite::connect_async(self.ws_url())
            .await
            .expect("upgrade");
        Conn { stream }
    }

    /// Opens a Kora-style connection and authenticates with its first message.
    async fn connect_kora(&self, session: &Session, proof: Option<&str>) -> (Conn, Vec<Value>) {
        let mut conn = self.connect_bare().await;
        let mut auth = json!({"type": "auth", "authToken": session.access});
        if let Some(proof) = proof {
            auth["proof"] = json!(proof);
        }
        conn.send(auth).await;
        let items = conn.expect_welcome(session).await;
        (conn, items)
    }
}

/// A client connection.
struct Conn {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// How a connection ended.
#[derive(Debug, PartialEq, Eq)]
struct Closing {
    code: u16,
    reason: String,
}

impl Conn {
    async fn send(&mut self, message: Value) {
        self.send_raw(Message::text(message.to_string())).await;
    }

    async fn send_raw(&mut self, message: Message) {
        self.stream.send(message).await.expect("send");
    }

    /// The next frame that is not a ping or pong, or `None` when nothing came within `bound`.
    async fn next_frame(&mut self, bound: Duration) -> Option<Message> {
        let deadline = tokio::time::Instant::now() + bound;
        loop {
            match tokio::time::timeout_at(deadline, self.stream.next()).await {
                Err(_) => return None,
                Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
                Ok(Some(Ok(message))) => return Some(message),
                Ok(Some(Err(error))) => panic!("connection failed: {error}"),
                Ok(None) => panic!("connection ended without a close frame"),
            }
        }
    }

    /// The next JSON message.
    async fn next_json(&mut self) -> Value {
        match self.next_frame(RECEIVE_BOUND).await {
            Some(Message::Text(text)) => serde_json::from_str(text.as_str()).expect("JSON message"),
            other => panic!("expected a text message, got {other:?}"),
        }
    }

    /// Reads `welcome` for `session`, then the snapshot; returns its items.
    async fn expect_welcome(&mut self, session: &Session) -> Vec<Value> {
        let welcome = self.next_json().await;
        assert_eq!(
            welcome,
            json!({"type": "welcome", "userId": session.user_id(), "deviceId": session.device_id()})
        );
        self.expect_snapshot().await.concat()
    }

    /// Reads snapshot pages until the complete one; returns the items of each page.
    async fn expect_snapshot(&mut self) -> Vec<Vec<Value>> {
        let mut pages = Vec::new();
        loop {
            let page = self.next_json().await;
            assert_eq!(page["type"], "snapshot", "{page}");
            pages.push(page["items"].as_array().expect("items").clone());
            match page["complete"].as_bool() {
                Some(true) => return pages,
                Some(false) => assert!(
                    !pages.last().expect("a page").is_empty(),
                    "an incomplete page holds items"
                ),
                None => panic!("a page says whether it is the last: {page}"),
            }
        }
    }

    /// Reads messages until an `error`, which it returns.
    async fn expect_error(&mut self) -> Value {
        let message = self.next_json().await;
        assert_eq!(message["type"], "error", "{message}");
        message
    }

    /// Asserts nothing arrives for a while.
    async fn expect_silence(&mut self) {
        if let Some(message) = self.next_frame(SILENCE).await {
            panic!("expected nothing, got {message:?}");
        }
    }

    /// Waits for the close frame (skipping other messages) and returns it.
    async fn expect_close(&mut self, bound: Duration) -> Closing {
        let deadline = tokio::time::Instant::now() + bound;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.stream.next())
                .await
                .expect("a close frame in time");
            match frame {
                Some(Ok(Message::Close(Some(frame)))) => {
                    return Closing {
                        code: u16::from(frame.code),
                        reason: frame.reason.as_str().to_owned(),
                    };
                }
                Some(Ok(Message::Close(None))) => panic!("a close frame without a code"),
                Some(Ok(_)) => continue,
                Some(Err(error)) => panic!("connection failed before its close frame: {error}"),
                None => panic!("connection ended without a close frame"),
            }
        }
    }
}

/// A user on a new keyed device (device ids are global: one per test unless given):
/// (key, session).
async fn keyed_user_on(fixture: &Fixture, label: &str, device_id: &str) -> (DeviceKey, Session) {
    let key = DeviceKey::generate();
    let session = fixture
        .server
        .sign_up_device(&email(label), device_id, &key)
        .await;
    (key, session)
}

/// A user on a new keyed device `phone-1`.
async fn keyed_user(fixture: &Fixture, label: &str) -> (DeviceKey, Session) {
    keyed_user_on(fixture, label, "phone-1").await
}

/// Another device of `session`'s user, keyless (its tokens are unbound).
async fn keyless_device(fixture: &Fixture, session: &Session, device_id: &str) -> Session {
    let email = session.user["email"].as_str().expect("email");
    fixture.server.sign_in_device(email, device_id).await
}

#[tokio::test]
async fn a_header_handshake_is_admitted_with_welcome_and_snapshot() {
    let fixture = Fixture::start().await;
    let (key, session) = keyed_user(&fixture, "headers").await;
    fixture
        .collection
        .put(
            session.user_id(),
            "settings",
            json!({"theme": "dark"}),
            "phone-1",
            1234,
        )
        .await
        .expect("stored");
    let (_conn, items) = fixture.connect_device(&key, &session).await;
    assert_eq!(
        items,
        vec![json!({
            "key": "settings",
            "value": {"theme": "dark"},
            "version": 1,
            "deviceId": "phone-1",
            "updatedAt": 1234,
        })]
    );
}

#[tokio::test]
async fn a_kora_style_first_message_admits_an_unbound_token() {
    let fixture = Fixture::start().await;
    let session = fixture
        .server
        .sign_up_with(json!({"email": email("kora"), "password": support::PASSWORD, "deviceId": "web-1"}))
        .await;
    assert!(support::claims(&session.access).cnf.is_none(), "an unbound token");
    let (mut conn, items) = fixture.connect_kora(&session, None).await;
    assert!(items.is_empty());
    conn.send(json!({"type": "put", "key": "k", "value": 1})).await;
    assert_eq!(conn.next_json().await["deviceId"], "web-1");
}

#[tokio::test]
async fn a_kora_style_first_message_may_carry_the_proof_of_a_bound_token() {
    let fixture = Fixture::start().await;
    let (key, session) = keyed_user(&fixture, "kora-proof").await;
    let proof = fixture.proof(&key, &session.access);
    fixture.connect_kora(&session, Some(&proof)).await;
}

#[tokio::test]
async fn a_refused_kora_style_handshake_says_why_and_closes_with_4401() {
    let fixture = Fixture::start().await;
    let (_, session) = keyed_user(&fixture, "kora-refused").await;

    let mut conn = fixture.connect_bare().await;
    conn.send(json!({"type": "auth", "authToken": "not.a.token"}))
        .await;
    assert_eq!(conn.expect_error().await["code"], "TOKEN_INVALID");
    let closing = conn.expect_close(RECEIVE_BOUND).await;
    assert_eq!(
        closing,
        Closing {
            code: 4401,
            reason: "TOKEN_INVALID".into()
        }
    );

    // A bound token needs its proof, in the message as in the headers.
    let mut conn = fixture.connect_bare().await;
    conn.send(json!({"type": "auth", "authToken": session.access}))
        .await;
    assert_eq!(conn.expect_error().await["code"], "PROOF_INVALID");
    assert_eq!(conn.expect_close(RECEIVE_BOUND).await.reason, "PROOF_INVALID");

    // Anything but an auth message first.
    let mut conn = fixture.connect_bare().await;
    conn.send(json!({"type": "put", "key": "k", "value": 1})).await;
    assert_eq!(conn.expect_error().await["code"], "VALIDATION_ERROR");
    assert_eq!(
        conn.expect_close(RECEIVE_BOUND).await,
        Closing {
            code: 4401,
            reason: "VALIDATION_ERROR".into()
        }
    );
}

#[tokio::test]
async fn a_silent_kora_style_client_is_closed_after_the_auth_timeout() {
    let options = SyncOptions {
        auth_timeout: Duration::from_millis(200),
        ..SyncOptions::default()
    };
    let fixture = Fixture::start_with(SharedCollection::memory(), options).await;
    let mut conn = fixture.connect_bare().await;
    assert_eq!(conn.expect_error().await["code"], "TOKEN_INVALID");
    assert_eq!(conn.expect_close(RECEIVE_BOUND).await.code, 4401);
}

/// The refusal an upgrade request got: status and error envelope.
async fn refusal(result: Result<Conn, tungstenite::Error>) -> (u16, ErrorBody) {
    match result {
        Ok(_) => panic!("the upgrade was accepted"),
        Err(tungstenite::Error::Http(response)) => {
            let body = response.body().as_deref().expect("a body");
            let body: ErrorBody = serde_json::from_slice(body).expect("an error envelope");
            (response.status().as_u16(), body)
        }
        Err(other) => panic!("expected an HTTP refusal, got {other}"),
    }
}

#[tokio::test]
async fn a_bound_token_without_a_proof_is_refused_before_the_upgrade() {
    let fixture = Fixture::start().await;
    let (key, session) = keyed_user(&fixture, "no-proof").await;
    let (status, body) = refusal(fixture.connect_headers(&session.access, None).await).await;
    assert_eq!(
        (status, body.code_text.as_deref()),
        (401, Some("PROOF_INVALID")),
        "{body:?}"
    );
    assert!(!body.error.is_empty());

    // A proof for another URL, and a token that is no token.
    let wrong_url = key.proof(
        "GET",
        "http://elsewhere/sync",
        &session.access,
        fixture.server.now_secs(),
    );
    let (status, body) = refusal(fixture.connect_headers(&session.access, Some(&wrong_url)).await).await;
    assert_eq!(
        (status, body.code()),
        (401, Some(holdfast_protocol::ErrorCode::ProofInvalid))
    );
    let (status, body) = refusal(fixture.connect_headers("garbage", None).await).await;
    assert_eq!((status, body.code_text.as_deref()), (401, Some("TOKEN_INVALID")));
}

#[tokio::test]
async fn a_plain_request_to_the_endpoint_is_told_to_upgrade() {
    let fixture = Fixture::start().await;
    let reply = fixture
        .server
        .client
        .get(fixture.sync_url())
        .send()
        .await
        .expect("an answer");
    assert_eq!(reply.status().as_u16(), 426);
    assert_eq!(
        reply.headers().get("upgrade").map(|v| v.as_bytes()),
        Some(&b"websocket"[..])
    );
    let body: ErrorBody = reply.json().await.expect("an error envelope");
    assert_eq!(body.code_text.as_deref(), Some("VALIDATION_ERROR"));
}

#[tokio::test]
async fn a_put_reaches_every_connection_of_its_user_and_no_one_else() {
    let fixture = Fixture::start().await;
    let (key, phone) = keyed_user(&fixture, "fanout").await;
    let laptop = keyless_device(&fixture, &phone, "laptop-1").await;
    let (other_key, other) = keyed_user_on(&fixture, "bystander", "phone-2").await;
    let (mut a, _) = fixture.connect_device(&key, &phone).await;
    let (mut b, _) = fixture.connect_kora(&laptop, None).await;
    let (mut c, _) = fixture.connect_device(&other_key, &other).await;

    a.send(json!({"type": "put", "key": "todo/1", "value": {"title": "milk", "done": false}}))
        .await;
    let ack = a.next_json().await;
    assert_eq!(ack["type"], "item");
    assert_eq!(ack["key"], "todo/1");
    assert_eq!(ack["value"], json!({"title": "milk", "done": false}));
    assert_eq!(ack["version"], 1);
    assert_eq!(ack["deviceId"], "phone-1");
    assert!(ack["updatedAt"].as_i64().is_some_and(|ms| ms > 1_600_000_000_000));
    assert_eq!(
        b.next_json().await,
        ack,
        "the user's other device gets the same item"
    );
    c.expect_silence().await;

    b.send(json!({"type": "put", "key": "todo/1", "value": {"title": "milk", "done": true}}))
        .await;
    let second = a.next_json().await;
    assert_eq!(
        (second["version"].as_i64(), second["deviceId"].as_str()),
        (Some(2), Some("laptop-1"))
    );
    assert_eq!(b.next_json().await, second);
    c.expect_silence().await;
}

#[tokio::test]
async fn items_survive_reopening_the_collection() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("auth.db.sync.db");
    let collection = SharedCollection::open(&path).expect("open");
    let fixture = Fixture::start_with(collection, SyncOptions::default()).await;
    let (key, session) = keyed_user(&fixture, "persist").await;
    let (mut conn, _) = fixture.connect_device(&key, &session).await;
    conn.send(json!({"type": "put", "key": "kept", "value": [1, 2, 3]}))
        .await;
    assert_eq!(conn.next_json().await["version"], 1);
    drop(conn);
    let user_id = session.user_id().to_owned();
    fixture.stop().await;

    let reopened = SharedCollection::open(&path).expect("reopen");
    let items = reopened.snapshot(&user_id).await.expect("snapshot");
    assert_eq!(items.len(), 1);
    assert_eq!(
        (items[0].key.as_str(), &items[0].value),
        ("kept", &json!([1, 2, 3]))
    );
    assert_eq!(items[0].device_id, "phone-1");
}

#[tokio::test]
async fn malformed_messages_get_error_messages_and_the_connection_stays_open() {
    let fixture = Fixture::start().await;
    let (key, session) = keyed_user(&fixture, "malformed").await;
    let (mut conn, _) = fixture.connect_device(&key, &session).await;
    let too_long_key = "k".repeat(129);
    let too_big_value = "v".repeat(16 * 1024);
    let bad = [
        Message::text("not json"),
        Message::text("[1, 2]"),
        Message::text(r#"{"type": "nope"}"#),
        Message::text(r#"{"key": "k", "value": 1}"#),
        Message::text(r#"{"type": "put", "value": 1}"#),
        Message::text(r#"{"type": "put", "key": "k"}"#),
        Message::text(r#"{"type": "put", "key": "", "value": 1}"#),
        Message::text(json!({"type": "put", "key": too_long_key, "value": 1}).to_string()),
        Message::text(json!({"type": "put", "key": "big", "value": too_big_value}).to_string()),
        Message::text(json!({"type": "auth", "authToken": session.access}).to_string()),
        Message::binary(vec![1u8, 2, 3]),
    ];
    for message in bad {
        let shown = format!("{message:?}").chars().take(80).collect::<String>();
        conn.send_raw(message).await;
        let error = conn.expect_error().await;
        assert_eq!(error["code"], "VALIDATION_ERROR", "{shown}: {error}");
        assert!(
            error["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{error}"
        );
    }
    // Pings are answered, and the connection still works.
    conn.send_raw(Message::Ping(b"hi".to_vec().into())).await;
    match tokio::time::timeout(RECEIVE_BOUND, conn.stream.next()).await {
        Ok(Some(Ok(Message::Pong(payload)))) => assert_eq!(&payload[..], b"hi"),
        other => panic!("expected a pong, got {other:?}"),
    }
    let key_128 = "é".repeat(128);
    conn.send(json!({"type": "put", "key": key_128, "value": null}))
        .await;
    let item = conn.next_json().await;
    assert_eq!(
        (item["type"].as_str(), item["version"].as_i64()),
        (Some("item"), Some(1))
    );
}

#[tokio::test]
async fn a_message_over_64_kib_closes_the_connection_with_1009() {
    let fixture = Fixture::start().await;
    let (key, session) = keyed_user(&fixture, "oversized").await;
    let (mut conn, _) = fixture.connect_device(&key, &session).await;
    let huge = json!({"type": "put", "key": "k", "value": "x".repeat(64 * 1024)}).to_string();
    // The server may close before the whole frame is written.
    let _ = conn.stream.send(Message::text(huge)).await;
    let closing = conn.expect_close(RECEIVE_BOUND).await;
    assert_eq!(closing.code, u16::from(CloseCode::Size));
}

/// Waits for `conn`'s close frame and returns it with the time since `from`.
async fn close_after(conn: &mut Conn, from: Instant) -> (Closing, Duration) {
    let closing = conn.expect_close(RECEIVE_BOUND).await;
    (closing, from.elapsed())
}

#[tokio::test]
async fn revoking_the_device_closes_its_open_connection_with_4001_at_once() {
    let fixture = Fixture::start().await;
    let (key, phone) = keyed_user(&fixture, "revoke").await;
    let laptop = keyless_device(&fixture, &phone, "laptop-1").await;
    let (mut phone_conn, _) = fixture.connect_device(&key, &phone).await;
    let (mut laptop_conn, _) = fixture.connect_kora(&laptop, None).await;

    let called_at = Instant::now();
    fixture
        .server
        .revoke(&laptop.access, "phone-1")
        .await
        .expect_status(200);
    let returned_at = Instant::now();
    let (closing, delay) = close_after(&mut phone_conn, returned_at).await;
    let since_call = called_at.elapsed();
    // The close frame may be on its way before the HTTP answer is read, so the delay from
    // the call's return can be close to zero; the one from its start includes the request.
    println!(
        "revocation-to-close delay: {delay:?} after the revoke call returned, {since_call:?} after it started"
    );
    assert_eq!(
        closing,
        Closing {
            code: 4001,
            reason: "DEVICE_REVOKED".into()
        }
    );
    assert!(
        since_call < CLOSE_BOUND,
        "closed {since_call:?} after the revocation started"
    );

    // The other device's connection is untouched, and the revoked one cannot come back.
    laptop_conn.expect_silence().await;
    let proof = fixture.proof(&key, &phone.access);
    let (status, body) = refusal(fixture.connect_headers(&phone.access, Some(&proof)).await).await;
    assert_eq!((status, body.code_text.as_deref()), (403, Some("DEVICE_REVOKED")));
}

#[tokio::test]
async fn signing_out_everywhere_closes_with_4002() {
    let fixture = Fixture::start().await;
    let (key, session) = keyed_user(&fixture, "everywhere").await;
    let (mut conn, _) = fixture.connect_device(&key, &session).await;
    fixture
        .server
        .service
        .sign_out_everywhere(session.user_id())
        .await
        .expect("signed out");
    let (closing, delay) = close_after(&mut conn, Instant::now()).await;
    println!("sign-out-everywhere-to-close delay: {delay:?}");
    assert_eq!(
        closing,
        Closing {
            code: 4002,
            reason: "TOKEN_REVOKED".into()
        }
    );
    assert!(delay < CLOSE_BOUND, "closed {delay:?} after the sign-out");
}

#[tokio::test]
async fn deleting_the_account_closes_with_4003() {
    let fixture = Fixture::start().await;
    let (key, session) = keyed_user(&fixture, "deleted").await;
    let (mut conn, _) = fixture.connect_device(&key, &session).await;
    let deleted = fixture
        .server
        .service
        .delete_user(session.user_id())
        .await
        .expect("deleted");
    assert!(deleted);
    let (closing, delay) = close_after(&mut conn, Instant::now()).await;
    println!("account-deletion-to-close delay: {delay:?}");
    assert_eq!(
        closing,
        Closing {
            code: 4003,
            reason: "USER_NOT_FOUND".into()
        }
    );
    assert!(delay < CLOSE_BOUND, "closed {delay:?} after the deletion");
}

#[tokio::test]
async fn deleting_an_account_deletes_its_sync_items_and_no_one_else_s() {
    let fixture = Fixture::start().await;
    let (_, leaving) = keyed_user_on(&fixture, "leaving", "leaving-phone").await;
    let (_, staying) = keyed_user_on(&fixture, "staying", "staying-phone").await;
    for (session, key) in [(&leaving, "a"), (&leaving, "b"), (&staying, "c")] {
        fixture
            .collection
            .put(session.user_id(), key, json!({"n": 1}), &session.device_id(), 1)
            .await
            .expect("put");
    }

    assert!(
        fixture
            .server
            .service
            .delete_user(leaving.user_id())
            .await
            .expect("delete the account")
    );
    let started = Instant::now();
    loop {
        let left = fixture
            .collection
            .snapshot(leaving.user_id())
            .await
            .expect("snapshot");
        if left.is_empty() {
            break;
        }
        assert!(
            started.elapsed() < RECEIVE_BOUND,
            "the deleted account's {} items are still there",
            left.len()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    println!("items deleted {:?} after the account", started.elapsed());
    let kept = fixture
        .collection
        .snapshot(staying.user_id())
        .await
        .expect("snapshot");
    assert_eq!(kept.len(), 1, "another user's items are kept");
    fixture.stop().await;
}

#[tokio::test]
async fn going_away_closes_admitted_and_waiting_connections_with_1001() {
    let going_away = GoingAway::default();
    let options = SyncOptions {
        going_away: going_away.clone(),
        ..SyncOptions::default()
    };
    let fixture = Fixture::start_with(SharedCollection::memory(), options).await;
    let (key, phone) = keyed_user(&fixture, "going-away").await;
    let (mut admitted, _) = fixture.connect_device(&key, &phone).await;
    // A Kora-style client that has not sent its auth message yet.
    let mut waiting = fixture.connect_bare().await;
    let started = Instant::now();
    while going_away.open_connections() < 2 {
        assert!(started.elapsed() < RECEIVE_BOUND, "both connections counted");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }

    going_away.trigger();
    for conn in [&mut admitted, &mut waiting] {
        let closing = conn.expect_close(RECEIVE_BOUND).await;
        assert_eq!(closing.code, 1001);
        assert_eq!(closing.reason, "SERVER_SHUTTING_DOWN");
    }
    drop((admitted, waiting));
    assert!(
        going_away.all_closed(RECEIVE_BOUND).await,
        "every connection ended"
    );
    assert_eq!(going_away.open_connections(), 0);
    fixture.stop().await;
}

/// The access token's expiry, ms since the epoch (as `reauth-required` names it).
fn expires_at_ms(access: &str) -> i64 {
    support::claims(access).exp * 1000
}

/// A `reauth` message for `session`, with a proof by `key` when given.
fn reauth(fixture: &Fixture, session: &Session, key: Option<&DeviceKey>) -> Value {
    let mut message = json!({"type": "reauth", "authToken": session.access});
    if let Some(key) = key {
        message["proof"] = json!(fixture.proof(key, &session.access));
    }
    message
}

/// Refreshes `session` (with its device key's proof, by the support client).
async fn refreshed(fixture: &Fixture, session: &Session) -> Session {
    let reply = fixture.server.refresh(&session.refresh).await.expect_status(200);
    let token = |name: &str| reply.data()[name].as_str().expect("a token").to_owned();
    Session {
        user: session.user.clone(),
        access: token("accessToken"),
        refresh: token("refreshToken"),
    }
}

/// Moves the server's clock to `seconds_before` the expiry of `access`.
fn clock_to_before_expiry(fixture: &Fixture, access: &str, seconds_before: i64) {
    let target = expires_at_ms(access) - seconds_before * 1000;
    let now = fixture.server.now_ms();
    assert!(target > now, "the clock only moves forward");
    fixture.server.clock.advance_ms(target - now);
}

#[tokio::test]
async fn a_connection_is_told_to_renew_and_lives_on_by_its_new_token() {
    let fixture = Fixture::start_following_the_clock().await;
    let (key, session) = keyed_user(&fixture, "renew").await;
    let (mut conn, _) = fixture.connect_device(&key, &session).await;
    // Fifteen minutes left: no notice yet.
    conn.expect_silence().await;

    // 61 s before expiry: still nothing; 59 s before: the notice, with the expiry.
    clock_to_before_expiry(&fixture, &session.access, 61);
    conn.expect_silence().await;
    fixture.server.clock.advance_ms(2_000);
    assert_eq!(
        conn.next_json().await,
        json!({"type": "reauth-required", "expiresAt": expires_at_ms(&session.access)})
    );
    conn.expect_silence().await;

    // The renewal: a newer token of the same user and device, with a proof.
    let renewed = refreshed(&fixture, &session).await;
    assert!(expires_at_ms(&renewed.access) > expires_at_ms(&session.access));
    conn.send(reauth(&fixture, &renewed, Some(&key))).await;
    conn.expect_silence().await;

    // Past the old token's expiry and leeway, the connection still works.
    fixture.server.clock.advance_ms(70_000);
    conn.expect_silence().await;
    conn.send(json!({"type": "put", "key": "k", "value": 1})).await;
    let item = conn.next_json().await;
    assert_eq!(
        (item["type"].as_str(), item["key"].as_str()),
        (Some("item"), Some("k"))
    );

    // The new token gets its own notice, and without a renewal the connection closes with
    // 4004 after it expires.
    clock_to_before_expiry(&fixture, &renewed.access, 30);
    assert_eq!(
        conn.next_json().await,
        json!({"type": "reauth-required", "expiresAt": expires_at_ms(&renewed.access)})
    );
    fixture.server.clock.advance_ms(36_000);
    assert_eq!(
        conn.expect_close(RECEIVE_BOUND).await,
        Closing {
            code: 4004,
            reason: "TOKEN_EXPIRED".into()
        }
    );
}

#[tokio::test]
async fn a_kora_style_connection_renews_with_an_unbound_token() {
    let fixture = Fixture::start_following_the_clock().await;
    let (_, phone) = keyed_user(&fixture, "kora-renew").await;
    let laptop = keyless_device(&fixture, &phone, "laptop-1").await;
    let (mut conn, _) = fixture.connect_kora(&laptop, None).await;
    clock_to_before_expiry(&fixture, &laptop.access, 10);
    assert_eq!(conn.next_json().await["type"], "reauth-required");
    let renewed = refreshed(&fixture, &laptop).await;
    conn.send(reauth(&fixture, &renewed, None)).await;
    // A connection's messages are handled in order: once this put is answered, the renewal
    // before it was (a renewal itself is not answered), so the clock may move past the old
    // token's expiry.
    conn.send(json!({"type": "put", "key": "renewed", "value": true}))
        .await;
    assert_eq!(conn.next_json().await["key"], "renewed");
    fixture.server.clock.advance_ms(60_000);
    conn.expect_silence().await;
    conn.send(json!({"type": "put", "key": "still-here", "value": true}))
        .await;
    assert_eq!(conn.next_json().await["key"], "still-here");
}

/// Sends `message` on a fresh connection of `key`'s device and returns how it closed.
async fn renewal_refused(fixture: &Fixture, key: &DeviceKey, session: &Session, message: Value) -> Closing {
    let (mut conn, _) = fixture.connect_device(key, session).await;
    conn.send(message).await;
    conn.expect_close(RECEIVE_BOUND).await
}

#[tokio::test]
async fn a_refused_renewal_closes_with_the_code_of_the_refusal() {
    let fixture = Fixture::start().await;
    let (key, session) = keyed_user(&fixture, "refused-renewal").await;

    // Another user's token, even a valid one with its own device's proof.
    let (other_key, other) = keyed_user_on(&fixture, "someone-else", "other-phone").await;
    let closing = renewal_refused(
        &fixture,
        &key,
        &session,
        reauth(&fixture, &other, Some(&other_key)),
    )
    .await;
    assert_eq!(
        closing,
        Closing {
            code: 4401,
            reason: "TOKEN_INVALID".into()
        }
    );

    // Another device of the same user.
    let laptop = keyless_device(&fixture, &session, "laptop-1").await;
    let closing = renewal_refused(&fixture, &key, &session, reauth(&fixture, &laptop, None)).await;
    assert_eq!(closing.code, 4401);
    assert_eq!(closing.reason, "TOKEN_INVALID");

    // A bound token without its proof.
    let closing = renewal_refused(&fixture, &key, &session, reauth(&fixture, &session, None)).await;
    assert_eq!(
        closing,
        Closing {
            code: 4401,
            reason: "PROOF_INVALID".into()
        }
    );

    // A proof used twice (the one the connection was admitted with is replayed).
    let proof = fixture.proof(&key, &session.access);
    let mut conn = fixture
        .connect_headers(&session.access, Some(&proof))
        .await
        .expect("admitted");
    conn.expect_welcome(&session).await;
    conn.send(json!({"type": "reauth", "authToken": session.access, "proof": proof}))
        .await;
    assert_eq!(conn.expect_close(RECEIVE_BOUND).await.reason, "PROOF_INVALID");

    // A token that is not a token.
    let closing = renewal_refused(
        &fixture,
        &key,
        &session,
        json!({"type": "reauth", "authToken": "not.a.token"}),
    )
    .await;
    assert_eq!((closing.code, closing.reason.as_str()), (4401, "TOKEN_INVALID"));

    // A token of this device whose session was signed out: the session-ended code.
    let email = session.user["email"].as_str().expect("email").to_owned();
    let second = fixture
        .server
        .sign_in_with(json!({"email": email, "password": support::PASSWORD, "deviceId": "phone-1"}))
        .await;
    fixture
        .server
        .post_auth(
            "/auth/signout",
            &second.access,
            json!({"refreshToken": second.refresh}),
        )
        .await
        .expect_status(200);
    let closing = renewal_refused(&fixture, &key, &session, reauth(&fixture, &second, Some(&key))).await;
    assert_eq!(
        closing,
        Closing {
            code: 4002,
            reason: "TOKEN_REVOKED".into()
        }
    );
}

#[tokio::test]
async fn a_malformed_renewal_is_an_error_message_and_the_connection_stays_open() {
    let fixture = Fixture::start().await;
    let (key, session) = keyed_user(&fixture, "malformed-renewal").await;
    let (mut conn, _) = fixture.connect_device(&key, &session).await;
    for bad in [
        json!({"type": "reauth"}),
        json!({"type": "reauth", "authToken": 5}),
        json!({"type": "reauth", "authToken": session.access, "proof": ["x"]}),
    ] {
        conn.send(bad).await;
        let error = conn.expect_error().await;
        assert_eq!(error["code"], "VALIDATION_ERROR", "{error}");
    }
    // A second `auth` message points to `reauth`.
    conn.send(json!({"type": "auth", "authToken": session.access}))
        .await;
    let error = conn.expect_error().await;
    assert!(
        error["message"].as_str().unwrap_or_default().contains("reauth"),
        "{error}"
    );
    conn.send(reauth(&fixture, &session, Some(&key))).await;
    conn.expect_silence().await;
}

#[tokio::test]
async fn puts_over_the_item_or_byte_quota_are_refused_and_freeing_space_works() {
    let collection = SharedCollection::memory();
    collection.set_quota(Quota { items: 3, bytes: 100 });
    let fixture = Fixture::start_with(collection.clone(), SyncOptions::default()).await;
    let (key, session) = keyed_user(&fixture, "quota").await;
    let (mut conn, _) = fixture.connect_device(&key, &session).await;
    // Sizes are key bytes plus value JSON bytes: "a" + "1" = 2, and so on.
    for name in ["a", "b", "c"] {
        conn.send(json!({"type": "put", "key": name, "value": 1})).await;
        assert_eq!(conn.next_json().await["type"], "item");
    }
    conn.send(json!({"type": "put", "key": "d", "value": 1})).await;
    let refused = conn.expect_error().await;
    assert_eq!(refused["code"], "QUOTA_EXCEEDED", "{refused}");
    assert!(
        refused["message"]
            .as_str()
            .unwrap_or_default()
            .contains("3 items"),
        "{refused}"
    );

    // Overwriting an item adds no item; past the bytes it is refused.
    conn.send(json!({"type": "put", "key": "a", "value": "x".repeat(90)}))
        .await;
    assert_eq!(conn.next_json().await["type"], "item");
    conn.send(json!({"type": "put", "key": "b", "value": "x".repeat(10)}))
        .await;
    let refused = conn.expect_error().await;
    assert_eq!(refused["code"], "QUOTA_EXCEEDED", "{refused}");
    assert!(
        refused["message"].as_str().unwrap_or_default().contains("bytes"),
        "{refused}"
    );
    assert_eq!(
        collection.usage(session.user_id()).await.unwrap(),
        (3, 1 + 92 + 2 + 2)
    );

    // Under a quota lowered below what the user holds, a write that shrinks still works.
    collection.set_quota(Quota { items: 3, bytes: 10 });
    conn.send(json!({"type": "put", "key": "a", "value": 0})).await;
    assert_eq!(conn.next_json().await["type"], "item");
    assert_eq!(collection.usage(session.user_id()).await.unwrap(), (3, 6));
    // The connection stayed open throughout, and the refused writes left nothing.
    let items = collection.snapshot(session.user_id()).await.unwrap();
    let keys: Vec<&str> = items.iter().map(|item| item.key.as_str()).collect();
    assert_eq!(keys, ["a", "b", "c"]);
    assert_eq!(items[1].value, json!(1));
}

#[tokio::test]
async fn a_user_s_connections_are_capped_and_closing_one_makes_room() {
    let options = SyncOptions {
        max_connections_per_user: 2,
        ..SyncOptions::default()
    };
    let fixture = Fixture::start_with(SharedCollection::memory(), options).await;
    let (key, phone) = keyed_user(&fixture, "cap").await;
    let laptop = keyless_device(&fixture, &phone, "laptop-1").await;
    let (first, _) = fixture.connect_device(&key, &phone).await;
    let (_second, _) = fixture.connect_kora(&laptop, None).await;

    // A third by headers: HTTP 429 before the upgrade.
    let proof = fixture.proof(&key, &phone.access);
    let (status, body) = refusal(fixture.connect_headers(&phone.access, Some(&proof)).await).await;
    assert_eq!((status, body.code_text.as_deref()), (429, Some("QUOTA_EXCEEDED")));
    // A third Kora-style: an error message, then 4401.
    let mut third = fixture.connect_bare().await;
    third
        .send(json!({"type": "auth", "authToken": laptop.access}))
        .await;
    assert_eq!(third.expect_error().await["code"], "QUOTA_EXCEEDED");
    assert_eq!(
        third.expect_close(RECEIVE_BOUND).await,
        Closing {
            code: 4401,
            reason: "QUOTA_EXCEEDED".into()
        }
    );
    // Another user is not affected.
    let (other_key, other) = keyed_user_on(&fixture, "cap-other", "other-phone").await;
    fixture.connect_device(&other_key, &other).await;

    // Closing one makes room (the slot is freed when the server's side ends).
    drop(first);
    let started = Instant::now();
    loop {
        let proof = fixture.proof(&key, &phone.access);
        match fixture.connect_headers(&phone.access, Some(&proof)).await {
            Ok(mut conn) => {
                conn.expect_welcome(&phone).await;
                break;
            }
            Err(_) if started.elapsed() < RECEIVE_BOUND => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            Err(error) => panic!("no room after closing a connection: {error}"),
        }
    }
}

#[tokio::test]
async fn a_large_collection_arrives_in_bounded_pages_in_key_order() {
    let collection = SharedCollection::memory();
    let fixture = Fixture::start_with(collection.clone(), SyncOptions::default()).await;
    let (key, session) = keyed_user(&fixture, "pages").await;
    // 600 items of about 1 KiB: more than one page by count and by bytes.
    let value = json!("v".repeat(1000));
    for n in 0..600 {
        collection
            .put(
                session.user_id(),
                &format!("item-{n:04}"),
                value.clone(),
                "phone-1",
                0,
            )
            .await
            .unwrap();
    }
    let proof = fixture.proof(&key, &session.access);
    let mut conn = fixture
        .connect_headers(&session.access, Some(&proof))
        .await
        .expect("admitted");
    assert_eq!(conn.next_json().await["type"], "welcome");
    let pages = conn.expect_snapshot().await;
    assert!(pages.len() >= 5, "{} pages", pages.len());
    for page in &pages {
        assert!(page.len() <= PAGE_MAX_ITEMS);
        // The budget counts keys and values; the page stops after the item that reaches it.
        let size = |item: &Value| item["key"].as_str().expect("key").len() + item["value"].to_string().len();
        let bytes: usize = page.iter().map(size).sum();
        let last = page.last().map_or(0, size);
        assert!(bytes - last < PAGE_BUDGET_BYTES, "a page of {bytes} bytes");
    }
    let keys: Vec<String> = pages
        .concat()
        .iter()
        .map(|item| item["key"].as_str().expect("key").to_owned())
        .collect();
    let expected: Vec<String> = (0..600).map(|n| format!("item-{n:04}")).collect();
    assert_eq!(keys, expected);
    // Then live items as usual.
    conn.send(json!({"type": "put", "key": "item-0000", "value": 2}))
        .await;
    let item = conn.next_json().await;
    assert_eq!(
        (item["key"].as_str(), item["version"].as_i64()),
        (Some("item-0000"), Some(2))
    );
}

#[tokio::test]
async fn a_connection_that_stops_reading_is_dropped_after_the_send_timeout() {
    let collection = SharedCollection::memory();
    let going_away = GoingAway::default();
    let options = SyncOptions {
        send_timeout: Duration::from_millis(500),
        going_away: going_away.clone(),
        ..SyncOptions::default()
    };
    let fixture = Fixture::start_with(collection.clone(), options).await;
    let (key, session) = keyed_user(&fixture, "slow-reader").await;
    // 32 MB of items: more than the loopback socket buffers hold.
    let value = json!("s".repeat(16 * 1024 - 2));
    for n in 0..2000 {
        collection
            .put(
                session.user_id(),
                &format!("big-{n:04}"),
                value.clone(),
                "phone-1",
                0,
            )
            .await
            .unwrap();
    }
    let proof = fixture.proof(&key, &session.access);
    // Admitted, then never read.
    let _silent = fixture
        .connect_headers(&session.access, Some(&proof))
        .await
        .expect("admitted");
    let started = Instant::now();
    while going_away.open_connections() == 0 {
        assert!(started.elapsed() < RECEIVE_BOUND, "the connection was counted");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    while going_away.open_connections() > 0 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "a connection that stops reading is dropped"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "a non-reading connection was dropped {:?} after it opened",
        started.elapsed()
    );
    // A reading connection of the same user still gets everything.
    let (_, items) = fixture.connect_device(&key, &session).await;
    assert_eq!(items.len(), 2000);
}
