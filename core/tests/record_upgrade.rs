//! Stores written before sealed records carried a format version open with this build.
//!
//! `fixtures/store-v0.sqlite` is a client store written by the code of commit 40488a4, the
//! last before sealed records carried their version (`"v"`), by the ignored
//! `write_store_fixture` below:
//!
//! ```text
//! HOLDFAST_FIXTURE_OUT=$PWD/core/tests/fixtures/store-v0 \
//!     cargo test -p holdfast-core --test record_upgrade -- --ignored write_store_fixture
//! ```
//!
//! It holds a session (signed in), the device identity (with a device credential) and a
//! sign-out queued in the outbox (made while the server was unreachable), all sealed under
//! the passphrase in `fixtures/store-v0.json`, which also names the server, the user and the
//! device id. The server was on the fixed loopback address of that file (the store keys its
//! records by the server URL), so the tests here put a stub server there to see what the
//! client sends.
//!
//! Each test works on a copy of the fixture in a temporary folder.

// The harness re-exports its fault proxy, which the generator uses and the tests do not.
#[allow(unused_imports)]
mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use holdfast_core::clock::{Clock, SystemClock};
use holdfast_core::store::Namespace;
use holdfast_core::vault::{Passphrase, Vault, derive_passphrase_key};
use holdfast_core::{AuthClient, AuthState, ClientConfig, KeySource, SignOutReason};
use holdfast_protocol::claims::JWT_HEADER_B64;
use holdfast_protocol::proof::{ParsedProof, access_token_hash};
use holdfast_protocol::{Claims, Cnf, TokenType, b64};
use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/store-v0.sqlite");
const FIXTURE_FACTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/store-v0.json");

/// Where the fixture's server listened: below every OS's ephemeral port range, so no
/// outgoing connection holds it.
const FIXTURE_ADDR: &str = "127.0.0.1:29471";
/// The passphrase the fixture's vault key is derived from (not a secret: a test fixture).
const FIXTURE_PASSPHRASE: &str = "holdfast store-v0 fixture passphrase";

/// What `fixtures/store-v0.json` says about the fixture.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Facts {
    made_by: String,
    server_url: String,
    passphrase: String,
    user_id: String,
    email: String,
    device_id: String,
}

impl Facts {
    fn load() -> Facts {
        let text = std::fs::read_to_string(FIXTURE_FACTS).expect("read fixtures/store-v0.json");
        serde_json::from_str(&text).expect("fixtures/store-v0.json")
    }
}

// ---------------------------------------------------------------------------------------
// The fixture copy, read from outside with rusqlite and the vault's public API
// ---------------------------------------------------------------------------------------

/// A copy of the fixture in a temporary folder.
struct Store {
    dir: tempfile::TempDir,
}

impl Store {
    fn copy_fixture() -> Store {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::copy(FIXTURE, dir.path().join("holdfast.db")).expect("copy the fixture");
        Store { dir }
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("holdfast.db")
    }

    fn db(&self) -> Connection {
        Connection::open(self.path()).expect("open the store copy")
    }

    /// A client of the fixture's server on this copy, with the fixture's passphrase and the
    /// system clock; no background refresh (the tests see only the requests they cause).
    fn client(&self, facts: &Facts) -> AuthClient {
        let mut config = ClientConfig::new(
            facts.server_url.as_str(),
            self.path(),
            KeySource::Passphrase(Passphrase::new(facts.passphrase.as_str())),
        );
        config.connect_timeout = Duration::from_millis(500);
        config.request_timeout = Duration::from_secs(2);
        config.auto_refresh = false;
        AuthClient::new(config).expect("client config")
    }

    fn record(&self, name: &str) -> Option<(Vec<u8>, i64)> {
        support::stored_record(&self.path(), name)
    }

    fn set_record_blob(&self, name: &str, blob: &[u8]) {
        let changed = self
            .db()
            .execute(
                "UPDATE records SET blob = ?2 WHERE name = ?1",
                params![name, blob],
            )
            .expect("write a record");
        assert_eq!(changed, 1);
    }

    /// The outbox: (kind, payload, attempts) per item, oldest first.
    fn outbox(&self) -> Vec<(String, Vec<u8>, i64)> {
        let db = self.db();
        let mut statement = db
            .prepare("SELECT kind, payload, attempts FROM outbox ORDER BY id")
            .expect("read the outbox");
        statement
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
            .expect("read the outbox")
            .collect::<Result<_, _>>()
            .expect("read the outbox")
    }

    fn set_outbox_payload(&self, payload: &[u8]) {
        let changed = self
            .db()
            .execute("UPDATE outbox SET payload = ?1", params![payload])
            .expect("write the outbox");
        assert_eq!(changed, 1);
    }

    /// The quarantine: (name, blob, reason) per entry, oldest first.
    fn quarantine(&self) -> Vec<(String, Vec<u8>, String)> {
        let db = self.db();
        let mut statement = db
            .prepare("SELECT name, blob, reason FROM quarantine ORDER BY id")
            .expect("read the quarantine");
        statement
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
            .expect("read the quarantine")
            .collect::<Result<_, _>>()
            .expect("read the quarantine")
    }

    /// The vault over this store, from the fixture's passphrase and the stored salt.
    fn vault(&self, facts: &Facts) -> Vault {
        let salt: Vec<u8> = self
            .db()
            .query_row("SELECT value FROM meta WHERE key = 'vault.salt'", [], |row| {
                row.get(0)
            })
            .expect("the passphrase salt");
        Vault::new(derive_passphrase_key(&facts.passphrase, &salt))
    }
}

/// The namespace every record of the fixture is sealed under.
fn namespace(facts: &Facts) -> String {
    Namespace::for_server(&facts.server_url)
        .expect("the fixture's server URL")
        .canonical()
}

/// Opens `blob`, sealed as record `name`, and parses its JSON.
fn open_json(vault: &Vault, facts: &Facts, name: &str, blob: &[u8]) -> Value {
    let plain = vault
        .open(&namespace(facts), name, blob)
        .unwrap_or_else(|error| panic!("the {name} record opens: {error}"));
    serde_json::from_slice(&plain).unwrap_or_else(|_| panic!("the {name} record is JSON"))
}

/// `value` (a record's JSON) sealed again as record `name`, with its `v` set to `version`.
fn resealed_with_version(
    vault: &Vault,
    facts: &Facts,
    name: &str,
    mut value: Value,
    version: u64,
) -> Vec<u8> {
    value
        .as_object_mut()
        .expect("a record is a JSON object")
        .insert("v".to_owned(), json!(version));
    let plain = serde_json::to_vec(&value).expect("JSON");
    vault.seal(&namespace(facts), name, &plain).expect("seal")
}

/// The fixture's three sealed values, checked to be the old format: no record carries a
/// version. Returns (session, device, queued sign-out) JSON.
fn fixture_records(store: &Store, facts: &Facts) -> (Value, Value, Value) {
    let vault = store.vault(facts);
    let (session, _) = store.record("session").expect("the fixture has a session");
    let (device, _) = store.record("device").expect("the fixture has a device identity");
    let outbox = store.outbox();
    assert_eq!(outbox.len(), 1, "the fixture has one queued call");
    assert_eq!(outbox[0].0, "sign_out");
    let values = (
        open_json(&vault, facts, "session", &session),
        open_json(&vault, facts, "device", &device),
        open_json(&vault, facts, "sign_out", &outbox[0].1),
    );
    for (name, value) in [
        ("session", &values.0),
        ("device", &values.1),
        ("sign_out", &values.2),
    ] {
        assert!(value.is_object(), "{name}");
        assert!(
            value.get("v").is_none(),
            "the fixture's {name} record has no version"
        );
    }
    assert_eq!(values.0["user"]["id"], facts.user_id.as_str());
    assert_eq!(values.1["deviceId"], facts.device_id.as_str());
    assert!(
        values.1["credential"].is_string(),
        "the fixture's device has a credential"
    );
    (values.0, values.1, values.2)
}

fn token_of<'a>(value: &'a Value, field: &str) -> &'a str {
    value[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} is a string"))
}

// ---------------------------------------------------------------------------------------
// A stub auth server on the fixture's address
// ---------------------------------------------------------------------------------------

/// One request the stub received.
#[derive(Debug, Clone)]
struct Request {
    method: String,
    path: String,
    headers: HashMap<String, String>,
    body: Value,
}

/// Answers each configured path with `200 {"data": ...}` and records every request; any
/// other path gets a 503. Stops when dropped.
struct Stub {
    requests: Arc<Mutex<Vec<Request>>>,
    answers: Arc<Mutex<HashMap<String, Value>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Stub {
    /// Binds the fixture's address, waiting while another test (or test run) holds it.
    async fn start() -> Stub {
        let mut waited = Duration::ZERO;
        let listener = loop {
            match TcpListener::bind(FIXTURE_ADDR).await {
                Ok(listener) => break listener,
                Err(error) if waited < Duration::from_secs(60) => {
                    if waited.is_zero() {
                        eprintln!("waiting for {FIXTURE_ADDR}: {error}");
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    waited += Duration::from_millis(100);
                }
                Err(error) => panic!("cannot listen on {FIXTURE_ADDR}: {error}"),
            }
        };
        let requests = Arc::new(Mutex::new(Vec::new()));
        let answers = Arc::new(Mutex::new(HashMap::new()));
        let (seen, known) = (requests.clone(), answers.clone());
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(stub_answer(stream, seen.clone(), known.clone()));
            }
        });
        Stub {
            requests,
            answers,
            task,
        }
    }

    fn answer(&self, path: &str, data: Value) {
        self.answers.lock().unwrap().insert(path.to_owned(), data);
    }

    fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }

    fn requests_to(&self, path: &str) -> Vec<Request> {
        self.requests()
            .into_iter()
            .filter(|request| request.path == path)
            .collect()
    }
}

impl Drop for Stub {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|window| window == needle)
}

/// Reads one HTTP/1.1 request, records it, answers and closes the connection.
async fn stub_answer(
    mut stream: TcpStream,
    seen: Arc<Mutex<Vec<Request>>>,
    answers: Arc<Mutex<HashMap<String, Value>>>,
) {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(end) = find(&buffer, b"\r\n\r\n") {
            break end;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(read) => buffer.extend_from_slice(&chunk[..read]),
        }
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut start = lines.next().unwrap_or_default().split(' ');
    let method = start.next().unwrap_or_default().to_owned();
    let path = start.next().unwrap_or_default().to_owned();
    let headers: HashMap<String, String> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    let length: usize = headers
        .get("content-length")
        .and_then(|value| value.parse().ok())
        .unwrap_or(0);
    while buffer.len() < head_end + 4 + length {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(read) => buffer.extend_from_slice(&chunk[..read]),
        }
    }
    let body = serde_json::from_slice(&buffer[head_end + 4..head_end + 4 + length]).unwrap_or(Value::Null);
    let answer = answers.lock().unwrap().get(&path).cloned();
    seen.lock().unwrap().push(Request {
        method,
        path,
        headers,
        body,
    });
    let (status, body) = match answer {
        Some(data) => ("200 OK", json!({ "data": data }).to_string()),
        None => ("503 Service Unavailable", String::new()),
    };
    let length = body.len();
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n\
         Connection: close\r\n\r\n{body}"
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// A token as the server kit mints them (the client reads the claims, never the signature).
fn mint(facts: &Facts, token_type: TokenType, lifetime_secs: i64, jkt: &str) -> String {
    let now = SystemClock.now_ms() / 1000;
    let claims = Claims {
        jti: format!("jti-{}", uuid_like()),
        sub: facts.user_id.clone(),
        dev: facts.device_id.clone(),
        token_type,
        iat: now,
        exp: now + lifetime_secs,
        dpk: None,
        must_checkin_by: None,
        fam: Some("fam-upgrade-test".to_owned()),
        cnf: Some(Cnf { jkt: jkt.to_owned() }),
        aal: None,
        amr: None,
        auth_time: None,
        mfa: None,
        ext: None,
    };
    format!(
        "{JWT_HEADER_B64}.{}.{}",
        b64::encode(claims.to_json().as_bytes()),
        b64::encode(b"not-checked-by-the-client")
    )
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::SeqCst))
}

/// Asserts that `proof` is a valid device proof by the key of thumbprint `jkt`, for `POST`
/// on `url`, bound to `access` (the signature is checked too).
fn assert_proof(proof: &str, jkt: &str, url: &str, access: &str) {
    let parsed = ParsedProof::parse(proof).expect("a well-formed device proof");
    assert_eq!(parsed.jwk.thumbprint(), jkt, "made by the device key");
    assert_eq!(parsed.claims.htm, "POST");
    assert_eq!(parsed.claims.htu, url);
    assert_eq!(parsed.claims.ath, access_token_hash(access));
    let key = ring::signature::UnparsedPublicKey::new(
        &ring::signature::ECDSA_P256_SHA256_FIXED,
        parsed.jwk.sec1_uncompressed(),
    );
    key.verify(parsed.signing_input.as_bytes(), &parsed.signature)
        .expect("the proof's signature verifies");
}

/// Delivers the outbox until it is empty (at most ten seconds).
async fn flush_until_empty(client: &AuthClient) {
    for _ in 0..100 {
        if client.flush_outbox().await.expect("flush the outbox") == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the outbox was not delivered");
}

fn signed_in_user_id(state: &AuthState) -> &str {
    match state {
        AuthState::SignedIn { user, .. } => &user.id,
        other => panic!("expected signed in, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// The upgrade
// ---------------------------------------------------------------------------------------

/// The old store opens signed in as the same user on the same device; the queued sign-out
/// is read and delivered with its tokens and a proof by the stored device key; a refresh
/// then rewrites the session in the new format, which opens again after a restart.
#[tokio::test(flavor = "multi_thread")]
async fn a_store_from_before_record_versions_opens_signed_in_and_delivers_its_queued_sign_out() {
    let facts = Facts::load();
    let store = Store::copy_fixture();
    let (_, _, queued) = fixture_records(&store, &facts);
    let (queued_access, queued_refresh) = (
        token_of(&queued, "accessToken"),
        token_of(&queued, "refreshToken"),
    );
    let (device_blob, _) = store.record("device").unwrap();
    let stub = Stub::start().await;
    stub.answer("/auth/signout", json!({ "success": true }));

    let client = store.client(&facts);
    let state = client.initialize().await;
    assert_eq!(signed_in_user_id(&state), facts.user_id, "{state:?}");
    assert_eq!(client.current_user().expect("a user").id, facts.user_id);
    assert_eq!(client.current_user().unwrap().email, facts.email);
    assert_eq!(
        client.device_id().await.unwrap(),
        facts.device_id,
        "the same device identity"
    );
    let thumbprint = client.device_thumbprint().await.unwrap();
    let bound_to = Claims::decode_unverified(queued_access)
        .unwrap()
        .cnf
        .expect("a bound token");
    assert_eq!(
        thumbprint, bound_to.jkt,
        "the stored device key is the one the tokens are bound to"
    );

    // The queued sign-out is read and sent (initialize starts a delivery too, so it may go
    // twice: delivery is at least once), with the queued tokens and a proof by the key.
    flush_until_empty(&client).await;
    let sign_outs = stub.requests_to("/auth/signout");
    assert!(!sign_outs.is_empty(), "the queued sign-out was sent");
    for request in &sign_outs {
        assert_eq!(request.method, "POST");
        assert_eq!(
            request.headers["authorization"],
            format!("Bearer {queued_access}")
        );
        assert_eq!(request.body, json!({ "refreshToken": queued_refresh }));
        let url = format!("{}/auth/signout", facts.server_url);
        assert_proof(&request.headers["dpop"], &thumbprint, &url, queued_access);
    }
    assert!(store.outbox().is_empty(), "delivered, so removed");
    assert!(store.quarantine().is_empty(), "nothing was found unreadable");
    assert!(
        client.state().is_signed_in(),
        "the old sign-out does not end the session"
    );

    // A refresh rewrites the session, now with its version; the device record is untouched.
    let access = mint(&facts, TokenType::Access, 900, &thumbprint);
    let refresh = mint(&facts, TokenType::Refresh, 30 * 86_400, &thumbprint);
    stub.answer(
        "/auth/refresh",
        json!({ "accessToken": access, "refreshToken": refresh }),
    );
    assert_eq!(client.refresh().await.unwrap(), access);
    let vault = store.vault(&facts);
    let (session_blob, _) = store.record("session").unwrap();
    let session = open_json(&vault, &facts, "session", &session_blob);
    assert_eq!(session["v"], 1, "written in the current format");
    assert_eq!(session["user"]["id"], facts.user_id.as_str());
    assert_eq!(session["accessToken"], access.as_str());
    assert_eq!(session["refreshToken"], refresh.as_str());
    assert_eq!(
        store.record("device").unwrap().0,
        device_blob,
        "reading does not rewrite"
    );
    drop(client);

    let requests = stub.requests().len();
    let restarted = store.client(&facts);
    let state = restarted.initialize().await;
    assert_eq!(
        state,
        AuthState::SignedIn {
            user: restarted.current_user().unwrap(),
            token_fresh: true
        }
    );
    assert_eq!(signed_in_user_id(&state), facts.user_id);
    assert_eq!(
        restarted.access_token().await.unwrap(),
        access,
        "from the store, no request"
    );
    assert_eq!(restarted.device_id().await.unwrap(), facts.device_id);
    assert_eq!(stub.requests().len(), requests, "nothing else was sent");
    assert!(store.quarantine().is_empty());
}

/// A session written by a newer build (a version this one does not know) is treated like
/// an unreadable one: moved to the quarantine byte for byte with a reason that names the
/// version, and the app is told; the device identity and the outbox are untouched.
#[tokio::test(flavor = "multi_thread")]
async fn a_session_from_a_newer_build_is_quarantined_and_the_rest_is_kept() {
    let facts = Facts::load();
    let store = Store::copy_fixture();
    let (session, _, _) = fixture_records(&store, &facts);
    let vault = store.vault(&facts);
    let newer = resealed_with_version(&vault, &facts, "session", session.clone(), 99);
    store.set_record_blob("session", &newer);
    let device = store.record("device").unwrap();
    let outbox = store.outbox();

    let client = store.client(&facts);
    assert_eq!(
        client.initialize().await,
        AuthState::SignedOut {
            reason: SignOutReason::StoredSessionUnreadable
        }
    );
    assert_eq!(store.record("session"), None, "no longer a live record");
    let quarantine = store.quarantine();
    assert_eq!(quarantine.len(), 1);
    let (name, blob, reason) = &quarantine[0];
    assert_eq!(name, "session");
    assert_eq!(blob, &newer, "kept byte for byte");
    assert!(
        reason.contains("version 99") && reason.contains("newer"),
        "the reason names the version: {reason}"
    );
    for secret in [
        token_of(&session, "accessToken"),
        token_of(&session, "refreshToken"),
    ] {
        assert!(!reason.contains(secret), "the reason quotes a token");
    }
    assert_eq!(client.device_id().await.unwrap(), facts.device_id);
    assert_eq!(
        store.record("device"),
        Some(device),
        "the device record is untouched"
    );
    assert_eq!(store.outbox(), outbox, "the outbox is untouched");
}

/// A queued sign-out written by a newer build is neither sent nor dropped: it waits in the
/// outbox for a build that reads it, while the session carries on.
#[tokio::test(flavor = "multi_thread")]
async fn a_queued_sign_out_from_a_newer_build_is_kept_not_sent_nor_dropped() {
    let facts = Facts::load();
    let store = Store::copy_fixture();
    let (_, _, queued) = fixture_records(&store, &facts);
    let vault = store.vault(&facts);
    let newer = resealed_with_version(&vault, &facts, "sign_out", queued, 2);
    store.set_outbox_payload(&newer);
    let stub = Stub::start().await;
    stub.answer("/auth/signout", json!({ "success": true }));

    let client = store.client(&facts);
    assert_eq!(signed_in_user_id(&client.initialize().await), facts.user_id);
    assert_eq!(client.flush_outbox().await.unwrap(), 1, "still waiting");
    assert_eq!(client.flush_outbox().await.unwrap(), 1, "still waiting");
    let outbox = store.outbox();
    assert_eq!(outbox.len(), 1);
    assert_eq!(outbox[0].1, newer, "kept byte for byte");
    assert!(stub.requests_to("/auth/signout").is_empty(), "not sent");
    assert!(client.state().is_signed_in());
    assert!(store.quarantine().is_empty());
}

// ---------------------------------------------------------------------------------------
// The generator
// ---------------------------------------------------------------------------------------

/// Forwards every connection to `FIXTURE_ADDR` to `upstream`, until dropped.
struct Forwarder(tokio::task::JoinHandle<()>);

impl Forwarder {
    async fn start(upstream: SocketAddr) -> Forwarder {
        let listener = TcpListener::bind(FIXTURE_ADDR)
            .await
            .expect("listen on the fixture's address");
        Forwarder(tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        }))
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Writes the fixture with the code of this build: `$HOLDFAST_FIXTURE_OUT.sqlite` and
/// `.json` (see the module documentation). Signs up through the server kit, registers the
/// device (a device credential in the device record), signs out while the server is
/// unreachable (the sign-out stays queued), and signs in again.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "writes a fixture: run by hand with HOLDFAST_FIXTURE_OUT set"]
async fn write_store_fixture() {
    let out = PathBuf::from(std::env::var_os("HOLDFAST_FIXTURE_OUT").expect(
        "HOLDFAST_FIXTURE_OUT: the fixture's path without extension, e.g. $PWD/core/tests/fixtures/store-v0",
    ));
    let server = support::Server::start().await;
    let proxy = support::FaultProxy::start(server.addr).await;
    let proxy_addr: SocketAddr = proxy.url().trim_start_matches("http://").parse().unwrap();
    let _forwarder = Forwarder::start(proxy_addr).await;
    let url = format!("http://{FIXTURE_ADDR}");
    let device = support::Device::new();
    let clock = support::clock();
    let mut config = device.config(&url, Arc::new(clock.clone()));
    config.key_source = KeySource::Passphrase(Passphrase::new(FIXTURE_PASSPHRASE));
    let client = AuthClient::new(config).unwrap();
    assert_eq!(
        client.initialize().await,
        AuthState::SignedOut {
            reason: SignOutReason::NoStoredSession
        }
    );
    let email = support::email("fixture");
    let user = client
        .sign_up(&email, support::PASSWORD, Some("Fixture User"))
        .await
        .unwrap();
    client.register_device("Fixture phone").await.unwrap();

    proxy.set(support::Fault::Drop);
    client.sign_out().await.unwrap();
    assert_eq!(client.flush_outbox().await.unwrap(), 1, "the sign-out waits");
    tokio::time::sleep(Duration::from_millis(300)).await;
    proxy.set(support::Fault::Pass);
    // The manual clock stands still: the failed sign-out is not due again, so signing in
    // (which delivers what is due) leaves it queued.
    let again = client
        .sign_in(&email, support::PASSWORD)
        .await
        .unwrap()
        .into_user();
    assert_eq!(again.id, user.id);
    let device_id = client.device_id().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(client);
    tokio::time::sleep(Duration::from_millis(300)).await;

    let db = Connection::open(device.path()).unwrap();
    let queued: i64 = db
        .query_row("SELECT count(*) FROM outbox WHERE kind = 'sign_out'", [], |row| {
            row.get(0)
        })
        .unwrap();
    assert_eq!(queued, 1, "one sign-out queued");
    db.execute_batch("VACUUM; PRAGMA wal_checkpoint(TRUNCATE);")
        .unwrap();
    drop(db);
    std::fs::copy(device.path(), out.with_extension("sqlite")).unwrap();
    let facts = Facts {
        made_by: format!(
            "write_store_fixture in core/tests/record_upgrade.rs, on the code of commit {}",
            std::env::var("HOLDFAST_FIXTURE_COMMIT").unwrap_or_else(|_| "(unknown)".to_owned())
        ),
        server_url: url,
        passphrase: FIXTURE_PASSPHRASE.to_owned(),
        user_id: user.id,
        email,
        device_id,
    };
    let text = serde_json::to_string_pretty(&facts).unwrap() + "\n";
    std::fs::write(out.with_extension("json"), text).unwrap();
    assert!(Path::new(&out.with_extension("sqlite")).exists());
}
