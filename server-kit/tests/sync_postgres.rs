//! The sync endpoint on PostgreSQL (`SharedCollection::postgres`) with two instances on one
//! schema, as behind a load balancer: an item put through one reaches the devices connected
//! to the other (the delay measured), concurrent writes of one key from both lose nothing,
//! snapshots on either show every write, a killed LISTEN connection resynchronizes its
//! instance's subscribers and delivery resumes, and schemas do not hear each other.
//!
//! Needs PostgreSQL (`HOLDFAST_TEST_POSTGRES_URL`, see `postgres_support`): without it these
//! tests fail, they are never skipped. Each test works in a schema of its own. No Redis:
//! LISTEN/NOTIFY is the only channel between the instances.

#[path = "postgres_support/mod.rs"]
mod postgres_support;
mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use holdfast_server_kit::Stores;
use holdfast_server_kit::clock::{Clock, ManualClock, SystemClock};
use holdfast_server_kit::gate::GateConfig;
use holdfast_server_kit::store::postgres::PostgresStore;
use holdfast_server_kit::sync::{
    CollectionError, MAX_VALUE_BYTES, Quota, SharedCollection, Subscription, SyncOptions, Update,
};
use postgres_support::TestSchema;
use serde_json::{Value, json};
use support::{DeviceKey, Session, TestServer, email};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long a test waits for a message it expects.
const RECEIVE_BOUND: Duration = Duration::from_secs(5);
/// How long a test waits to be sure a message does not come.
const SILENCE: Duration = Duration::from_millis(300);
/// The bound on put-on-A to item-on-B: generous (debug build, two shared cores); the delays
/// measured are printed.
const DELIVERY_BOUND: Duration = Duration::from_secs(2);

/// One instance: its own pool on the shared schema, its collection (with its LISTEN
/// connection), the auth routes and the sync endpoint on a loopback port of its own.
struct Instance {
    server: TestServer,
    collection: SharedCollection,
    sync_addr: SocketAddr,
}

impl Instance {
    async fn start(schema: &TestSchema, name: &str, clock: &ManualClock) -> Instance {
        let store = PostgresStore::connect(&schema.url_as(name), Some(&schema.name))
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at {} (never skipped): {e}", schema.url));
        let collection = SharedCollection::postgres(&store).await.expect("LISTEN");
        let server = TestServer::start_sync(
            Some((Stores::single(Arc::new(store)), clock.clone())),
            GateConfig::default(),
            collection.clone(),
            SyncOptions::default(),
        )
        .await;
        Instance {
            sync_addr: server.addr,
            server,
            collection,
        }
    }

    fn sync_url(&self) -> String {
        format!("http://{}/sync", self.sync_addr)
    }

    /// Opens a connection (`Authorization`, and `DPoP` for a keyed device) and reads the
    /// welcome and snapshot: the connection and the snapshot's items.
    async fn connect(&self, session: &Session, key: Option<&DeviceKey>) -> (Conn, Vec<Value>) {
        let mut request = format!("ws://{}/sync", self.sync_addr)
            .into_client_request()
            .expect("request");
        let headers = request.headers_mut();
        headers.insert(
            "authorization",
            format!("Bearer {}", session.access).parse().expect("header"),
        );
        if let Some(key) = key {
            let proof = key.proof("GET", &self.sync_url(), &session.access, self.server.now_secs());
            headers.insert("dpop", proof.parse().expect("header"));
        }
        let (stream, _) = tokio_tungstenite::connect_async(request).await.expect("admitted");
        let mut conn = Conn { stream };
        let welcome = conn.next_json().await;
        assert_eq!(welcome["type"], "welcome", "{welcome}");
        let items = conn.expect_snapshot().await;
        (conn, items)
    }
}

/// Two instances on one schema.
struct Pair {
    a: Instance,
    b: Instance,
    // Dropped last, after the pools.
    schema: TestSchema,
}

impl Pair {
    async fn start() -> Pair {
        let schema = TestSchema::new();
        let clock = ManualClock::new(SystemClock.now_ms());
        let a = Instance::start(&schema, "hft-sync-a", &clock).await;
        let b = Instance::start(&schema, "hft-sync-b", &clock).await;
        Pair { a, b, schema }
    }

    /// A user with a keyed phone signed up on A and a keyless laptop signed in on B.
    async fn user(&self, label: &str) -> (DeviceKey, Session, Session) {
        let key = DeviceKey::generate();
        let phone = self.a.server.sign_up_device(&email(label), "phone-1", &key).await;
        let address = phone.user["email"].as_str().expect("email").to_owned();
        let laptop = self.b.server.sign_in_device(&address, "laptop-1").await;
        (key, phone, laptop)
    }
}

/// A client connection.
struct Conn {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Conn {
    async fn send(&mut self, message: Value) {
        self.stream
            .send(Message::text(message.to_string()))
            .await
            .expect("send");
    }

    /// The next JSON message within `bound`, or `None`.
    async fn next_within(&mut self, bound: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + bound;
        loop {
            match tokio::time::timeout_at(deadline, self.stream.next()).await {
                Err(_) => return None,
                Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
                Ok(Some(Ok(Message::Text(text)))) => {
                    return Some(serde_json::from_str(text.as_str()).expect("JSON message"));
                }
                Ok(other) => panic!("expected a text message, got {other:?}"),
            }
        }
    }

    async fn next_json(&mut self) -> Value {
        self.next_within(RECEIVE_BOUND).await.expect("a message in time")
    }

    async fn expect_item(&mut self) -> Value {
        let message = self.next_json().await;
        assert_eq!(message["type"], "item", "{message}");
        message
    }

    /// Reads snapshot pages until the complete one: all their items.
    async fn expect_snapshot(&mut self) -> Vec<Value> {
        let mut items = Vec::new();
        loop {
            let message = self.next_json().await;
            assert_eq!(message["type"], "snapshot", "{message}");
            items.extend(message["items"].as_array().expect("items").iter().cloned());
            if message["complete"] == json!(true) {
                return items;
            }
        }
    }

    async fn expect_silence(&mut self) {
        if let Some(message) = self.next_within(SILENCE).await {
            panic!("expected nothing, got {message}");
        }
    }
}

/// The next update of a subscription, in time.
async fn next_update(updates: &mut Subscription) -> Update {
    tokio::time::timeout(RECEIVE_BOUND, updates.recv())
        .await
        .expect("an update in time")
}

fn summary(delays: &mut [Duration]) -> String {
    delays.sort();
    format!(
        "min {:?}, median {:?}, max {:?} over {}",
        delays[0],
        delays[delays.len() / 2],
        delays[delays.len() - 1],
        delays.len()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_item_put_through_one_instance_reaches_a_device_on_the_other() {
    let pair = Pair::start().await;
    let (key, phone, laptop) = pair.user("cross").await;
    let (mut on_a, _) = pair.a.connect(&phone, Some(&key)).await;
    let (mut on_b, _) = pair.b.connect(&laptop, None).await;

    // Values that travel in the notification, then ones read from the table.
    let large = "x".repeat(12 * 1024);
    for (label, value_of) in [
        (
            "inline",
            Box::new(|n: i64| json!({"n": n, "title": "milk"})) as Box<dyn Fn(i64) -> Value>,
        ),
        (
            "read from the table",
            Box::new(|n: i64| json!({"n": n, "blob": large})),
        ),
    ] {
        let mut delays = Vec::new();
        let mut acks = Vec::new();
        for n in 1..=20 {
            let value = value_of(n);
            let started = Instant::now();
            on_a.send(json!({"type": "put", "key": label, "value": value}))
                .await;
            let item = on_b.expect_item().await;
            let delay = started.elapsed();
            assert_eq!(
                (&item["key"], &item["value"], item["version"].as_i64()),
                (&json!(label), &value, Some(n))
            );
            assert_eq!(item["deviceId"], "phone-1");
            // The writer's acknowledgement is the same item, once.
            let ack = on_a.expect_item().await;
            acks.push(started.elapsed());
            assert_eq!(ack, item);
            delays.push(delay);
        }
        let max = *delays.iter().max().expect("delays");
        println!(
            "put on A to item on B ({label}): {}; writer's acknowledgement on A: {}",
            summary(&mut delays),
            summary(&mut acks)
        );
        assert!(max < DELIVERY_BOUND, "an item took {max:?} to cross ({label})");
    }
    on_a.expect_silence().await;
    on_b.expect_silence().await;

    // And the other way round.
    on_b.send(json!({"type": "put", "key": "from-b", "value": true}))
        .await;
    let item = on_a.expect_item().await;
    assert_eq!(
        (&item["key"], &item["deviceId"]),
        (&json!("from-b"), &json!("laptop-1"))
    );
    assert_eq!(on_b.expect_item().await, item);
    on_a.expect_silence().await;
    on_b.expect_silence().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writes_of_one_key_from_both_instances_lose_no_update() {
    const PER_INSTANCE: i64 = 25;
    let pair = Pair::start().await;
    let user = "u-concurrent";
    let mut watch_b = pair.b.collection.subscribe(user);
    let mut watch_a = pair.a.collection.subscribe(user);
    assert!(watch_b.snapshot().await.expect("snapshot").is_empty());
    assert!(watch_a.snapshot().await.expect("snapshot").is_empty());

    let barrier = Arc::new(tokio::sync::Barrier::new(2 * PER_INSTANCE as usize));
    let writes: Vec<_> = (0..PER_INSTANCE)
        .flat_map(|n| {
            [
                (pair.a.collection.clone(), "a", n),
                (pair.b.collection.clone(), "b", n),
            ]
        })
        .map(|(collection, side, n)| {
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                // A second key written alongside, for the order across keys.
                let other = format!("other-{side}");
                collection
                    .put(user, &other, json!(n), side, n)
                    .await
                    .expect("put");
                collection
                    .put(user, "counter", json!({"side": side, "n": n}), side, n)
                    .await
                    .expect("put")
                    .version
            })
        })
        .collect();
    let mut versions = Vec::new();
    for write in writes {
        versions.push(write.await.expect("task"));
    }
    versions.sort_unstable();
    let total = 2 * PER_INSTANCE;
    assert_eq!(
        versions,
        (1..=total).collect::<Vec<_>>(),
        "every write got its own version"
    );

    // Both instances' subscribers see every version of the key, in order, and each other
    // key's versions in order too.
    for (name, watch) in [("A", &mut watch_a), ("B", &mut watch_b)] {
        let mut seen = std::collections::HashMap::<String, Vec<i64>>::new();
        while seen.values().map(Vec::len).sum::<usize>() < 2 * total as usize {
            match next_update(watch).await {
                Update::Item(item) => seen.entry(item.key.clone()).or_default().push(item.version),
                Update::Lagged => panic!("{name} lagged"),
            }
        }
        assert_eq!(seen["counter"], (1..=total).collect::<Vec<_>>(), "on {name}");
        for side in ["a", "b"] {
            assert_eq!(
                seen[&format!("other-{side}")],
                (1..=PER_INSTANCE).collect::<Vec<_>>(),
                "on {name}"
            );
        }
    }
    for collection in [&pair.a.collection, &pair.b.collection] {
        let items = collection.snapshot(user).await.expect("snapshot");
        let counter = items.iter().find(|item| item.key == "counter").expect("counter");
        assert_eq!(counter.version, total);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn snapshots_on_one_instance_show_the_other_instances_writes() {
    let pair = Pair::start().await;
    let (_, phone, laptop) = pair.user("snapshot").await;
    let user = phone.user_id();
    let value = json!({"nested": {"list": [1, 2.5, "three", null]}, "text": "\u{0}é\"\\"});
    for key in ["é", "a", "B"] {
        pair.a
            .collection
            .put(user, key, value.clone(), "phone-1", 42)
            .await
            .expect("put");
    }
    let fits = json!("x".repeat(MAX_VALUE_BYTES - 2));
    pair.a
        .collection
        .put(user, "large", fits.clone(), "phone-1", 43)
        .await
        .expect("a value of 16 KiB");
    let items = pair.b.collection.snapshot(user).await.expect("snapshot on B");
    let keys: Vec<&str> = items.iter().map(|item| item.key.as_str()).collect();
    assert_eq!(keys, ["B", "a", "large", "é"], "bytewise order, as on SQLite");
    assert_eq!(items[0].value, value, "the value comes back as written");
    assert_eq!(
        (items[0].version, items[0].device_id.as_str(), items[0].updated_at),
        (1, "phone-1", 42)
    );
    assert_eq!(items[2].value, fits);

    // A device connecting to B gets them in its snapshot, in the wire format.
    let (_conn, items) = pair.b.connect(&laptop, None).await;
    assert_eq!(items.len(), 4);
    assert_eq!(
        items[1],
        json!({"key": "a", "value": value, "version": 1, "deviceId": "phone-1", "updatedAt": 42})
    );

    // The limits hold as on SQLite.
    let invalid = |result: Result<_, CollectionError>| matches!(result, Err(CollectionError::Invalid(_)));
    assert!(invalid(pair.a.collection.put(user, "", json!(1), "d", 0).await));
    assert!(invalid(
        pair.a
            .collection
            .put(user, &"é".repeat(129), json!(1), "d", 0)
            .await
    ));
    assert!(invalid(
        pair.a
            .collection
            .put(user, "big", json!("x".repeat(MAX_VALUE_BYTES)), "d", 0)
            .await
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_subscription_skips_what_its_snapshot_holds() {
    let pair = Pair::start().await;
    let user = "u-floor";
    let mut updates = pair.b.collection.subscribe(user);
    // Written before the snapshot: their notifications may reach B before or after it.
    for n in 1..=3 {
        pair.a
            .collection
            .put(user, "k", json!(n), "d", n)
            .await
            .expect("put");
    }
    let items = updates.snapshot().await.expect("snapshot");
    assert_eq!(items[0].version, 3);
    pair.a
        .collection
        .put(user, "k", json!(4), "d", 4)
        .await
        .expect("put");
    match next_update(&mut updates).await {
        Update::Item(item) => assert_eq!(item.version, 4, "versions 1 to 3 are in the snapshot"),
        Update::Lagged => panic!("lagged"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_paged_snapshot_skips_exactly_what_each_page_saw_across_instances() {
    let pair = Pair::start().await;
    let user = "u-pages";
    let big = json!("x".repeat(8 * 1024));
    for n in 0..40 {
        pair.a
            .collection
            .put(user, &format!("k{n:02}"), big.clone(), "d", 0)
            .await
            .expect("put");
    }
    let mut updates = pair.b.collection.subscribe(user);
    let first = updates.snapshot_page().await.expect("page");
    assert!(!first.complete);
    assert_eq!(first.items.len(), 16, "128 KiB of 8 KiB items");
    // Written on A after B read its first page: one key in that page's range, one in a
    // later page's, one past every page.
    for key in ["k00", "k30", "z"] {
        pair.a
            .collection
            .put(user, key, json!("new"), "d", 1)
            .await
            .expect("put");
    }
    let mut rest = Vec::new();
    loop {
        let page = updates.snapshot_page().await.expect("page");
        rest.extend(page.items);
        if page.complete {
            break;
        }
    }
    assert_eq!(first.items.len() + rest.len(), 41);
    assert_eq!(
        rest.iter().find(|item| item.key == "k30").expect("k30").version,
        2
    );
    match next_update(&mut updates).await {
        Update::Item(item) => assert_eq!((item.key.as_str(), item.version), ("k00", 2)),
        Update::Lagged => panic!("lagged"),
    }
    let nothing = tokio::time::timeout(SILENCE, updates.recv()).await;
    assert!(nothing.is_err(), "k30 and z are in the pages, not sent again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_item_quota_holds_under_concurrent_writes_from_both_instances() {
    let pair = Pair::start().await;
    let user = "u-quota";
    let quota = Quota {
        items: 10,
        bytes: 1 << 20,
    };
    pair.a.collection.set_quota(quota);
    pair.b.collection.set_quota(quota);
    // 40 new keys at once, half through each instance: exactly 10 are kept.
    let mut writes = Vec::new();
    for n in 0..40 {
        let collection = if n % 2 == 0 {
            pair.a.collection.clone()
        } else {
            pair.b.collection.clone()
        };
        writes.push(tokio::spawn(async move {
            collection.put(user, &format!("key-{n}"), json!(n), "d", 0).await
        }));
    }
    let mut stored = 0;
    for write in writes {
        match write.await.expect("task") {
            Ok(_) => stored += 1,
            Err(CollectionError::QuotaExceeded(_)) => {}
            Err(other) => panic!("unexpected failure: {other}"),
        }
    }
    assert_eq!(stored, 10);
    assert_eq!(
        pair.b.collection.snapshot(user).await.expect("snapshot").len(),
        10
    );
    let (items, bytes) = pair.a.collection.usage(user).await.expect("usage");
    assert_eq!(items, 10);
    let expected: u64 = pair
        .a
        .collection
        .snapshot(user)
        .await
        .expect("snapshot")
        .iter()
        .map(|item| (item.key.len() + item.value.to_string().len()) as u64)
        .sum();
    assert_eq!(bytes, expected);
    pair.a.collection.delete_user(user).await.expect("deleted");
    assert_eq!(pair.b.collection.usage(user).await.expect("usage"), (0, 0));
}

/// Terminates the server process `pid` and waits until it is gone.
async fn terminate(admin: &tokio_postgres::Client, pid: i32) {
    let killed: bool = admin
        .query_one("SELECT pg_terminate_backend($1)", &[&pid])
        .await
        .expect("pg_terminate_backend")
        .get(0);
    assert!(killed, "process {pid} was running");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let alive: i64 = admin
            .query_one("SELECT count(*) FROM pg_stat_activity WHERE pid = $1", &[&pid])
            .await
            .expect("pg_stat_activity")
            .get(0);
        if alive == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "process {pid} did not go away");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_listen_connection_resyncs_its_subscribers_and_delivery_resumes() {
    let pair = Pair::start().await;
    let (key, phone, laptop) = pair.user("killed").await;
    let (mut on_a, _) = pair.a.connect(&phone, Some(&key)).await;
    let (mut on_b, _) = pair.b.connect(&laptop, None).await;
    let pid = pair.b.collection.listen_backend_pid().expect("B listens");
    let admin = postgres_support::connect(&pair.schema.url).await;
    let owner: String = admin
        .query_one(
            "SELECT application_name FROM pg_stat_activity WHERE pid = $1",
            &[&pid],
        )
        .await
        .expect("pg_stat_activity")
        .get(0);
    assert_eq!(owner, "hft-sync-b", "B's own connection");

    let killed_at = Instant::now();
    terminate(&admin, pid).await;
    // Written while B may not listen: B's laptop must still end up with it.
    on_a.send(json!({"type": "put", "key": "during", "value": 1}))
        .await;
    assert_eq!(on_a.expect_item().await["key"], "during", "A is unaffected");

    // B's connection gets a fresh snapshot, holding that write or followed by it.
    let items = on_b.expect_snapshot().await;
    let resynced = killed_at.elapsed();
    if !items.iter().any(|item| item["key"] == "during") {
        assert_eq!(on_b.expect_item().await["key"], "during");
    }
    println!("LISTEN connection killed to fresh snapshot on B: {resynced:?}");
    assert!(resynced < RECEIVE_BOUND);
    assert_eq!(pair.b.collection.listen_reconnects(), 1);
    assert_eq!(pair.a.collection.listen_reconnects(), 0);
    let new_pid = pair.b.collection.listen_backend_pid().expect("B listens again");
    assert_ne!(new_pid, pid);

    // Later writes are delivered again, once.
    let started = Instant::now();
    on_a.send(json!({"type": "put", "key": "after", "value": 2}))
        .await;
    let item = on_b.expect_item().await;
    let delay = started.elapsed();
    println!("put on A to item on B after the reconnection: {delay:?}");
    assert_eq!(
        (&item["key"], item["version"].as_i64()),
        (&json!("after"), Some(1))
    );
    assert!(delay < DELIVERY_BOUND, "{delay:?}");
    assert_eq!(on_a.expect_item().await, item);
    on_a.expect_silence().await;
    on_b.expect_silence().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn schemas_do_not_hear_each_other() {
    let (one, other) = (TestSchema::new(), TestSchema::new());
    let clock = ManualClock::new(SystemClock.now_ms());
    let writer = Instance::start(&one, "hft-sync-one", &clock).await;
    let bystander = Instance::start(&other, "hft-sync-other", &clock).await;
    let mut heard = bystander.collection.subscribe("u");
    let mut own = writer.collection.subscribe("u");
    writer
        .collection
        .put("u", "k", json!(1), "d", 0)
        .await
        .expect("put");
    assert!(matches!(next_update(&mut own).await, Update::Item(_)));
    let nothing = tokio::time::timeout(SILENCE, heard.recv()).await;
    assert!(nothing.is_err(), "another schema's write was delivered");
    assert!(
        bystander
            .collection
            .snapshot("u")
            .await
            .expect("snapshot")
            .is_empty()
    );
}

/// A `holdfast-server` process, killed and reaped when dropped.
struct ServerProcess {
    child: std::process::Child,
    address: String,
}

impl ServerProcess {
    /// Starts the binary on the schema and reads its first line (`listening on http://ADDR`).
    async fn start(schema: &TestSchema) -> ServerProcess {
        use std::io::BufRead;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_holdfast-server"))
            .args(["--listen", "127.0.0.1:0", "--database", &schema.url])
            .args(["--database-schema", &schema.name])
            .env("HOLDFAST_SECRET", support::SECRET)
            .env_remove("RUST_LOG")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn holdfast-server");
        let stdout = child.stdout.take().expect("stdout");
        let line = tokio::time::timeout(
            Duration::from_secs(60),
            support::blocking(move || {
                let mut line = String::new();
                std::io::BufReader::new(stdout).read_line(&mut line).map(|_| line)
            }),
        )
        .await
        .expect("a first line in time")
        .expect("read stdout");
        let address = line
            .trim()
            .strip_prefix("listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        ServerProcess { child, address }
    }

    /// Signs in (or up, with `sign_up`) on `device_id`, keyless: the access token.
    async fn session(&self, address: &str, device_id: &str, sign_up: bool) -> String {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let path = if sign_up { "signup" } else { "signin" };
        let reply: Value = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client")
            .post(format!("http://{}/auth/{path}", self.address))
            .json(&json!({"email": address, "password": support::PASSWORD, "deviceId": device_id}))
            .send()
            .await
            .expect("an answer")
            .json()
            .await
            .expect("JSON");
        reply["data"]["tokens"]["accessToken"]
            .as_str()
            .unwrap_or_else(|| panic!("{path}: {reply}"))
            .to_owned()
    }

    /// A sync connection with the access token, its welcome read: it and its snapshot.
    async fn connect(&self, access: &str) -> (Conn, Vec<Value>) {
        let mut request = format!("ws://{}/sync", self.address)
            .into_client_request()
            .expect("request");
        request.headers_mut().insert(
            "authorization",
            format!("Bearer {access}").parse().expect("header"),
        );
        let (stream, _) = tokio_tungstenite::connect_async(request).await.expect("admitted");
        let mut conn = Conn { stream };
        assert_eq!(conn.next_json().await["type"], "welcome");
        let items = conn.expect_snapshot().await;
        (conn, items)
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `holdfast-server --database postgres://… --database-schema NAME` keeps its sync items in
/// PostgreSQL: two processes on one schema serve one collection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_server_processes_on_one_schema_serve_one_collection() {
    let schema = TestSchema::new();
    let a = ServerProcess::start(&schema).await;
    let b = ServerProcess::start(&schema).await;
    let address = email("binary");
    let on_a = a.session(&address, "phone-1", true).await;
    let on_b = b.session(&address, "laptop-1", false).await;
    let (mut phone, _) = a.connect(&on_a).await;
    let (mut laptop, _) = b.connect(&on_b).await;
    let started = Instant::now();
    phone
        .send(json!({"type": "put", "key": "k", "value": {"across": "processes"}}))
        .await;
    let item = laptop.expect_item().await;
    println!("put on process A to item on process B: {:?}", started.elapsed());
    assert_eq!(
        (&item["value"], &item["deviceId"]),
        (&json!({"across": "processes"}), &json!("phone-1"))
    );
    assert_eq!(phone.expect_item().await, item);
    // Kept in the schema: a restarted process serves it.
    drop((phone, laptop, a));
    let again = ServerProcess::start(&schema).await;
    let access = again.session(&address, "phone-1", false).await;
    let (_conn, items) = again.connect(&access).await;
    let mut stored = item;
    stored.as_object_mut().expect("object").remove("type");
    assert_eq!(items, vec![stored]);
    drop(b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_account_deleted_on_one_instance_loses_its_items_everywhere() {
    let pair = Pair::start().await;
    let (_, phone, _) = pair.user("deleted").await;
    let user = phone.user_id();
    for key in ["a", "b"] {
        pair.a
            .collection
            .put(user, key, json!(key), "phone-1", 1)
            .await
            .expect("put");
    }
    // Another user's items stay.
    let other = pair
        .a
        .server
        .sign_up_device(&email("kept"), "phone-2", &DeviceKey::generate())
        .await;
    pair.b
        .collection
        .put(other.user_id(), "c", json!("c"), "phone-2", 1)
        .await
        .expect("put");

    assert!(
        pair.b
            .server
            .service
            .delete_user(user)
            .await
            .expect("delete the account")
    );
    let started = Instant::now();
    loop {
        let left = pair.a.collection.snapshot(user).await.expect("snapshot on A");
        if left.is_empty() {
            break;
        }
        assert!(
            started.elapsed() < DELIVERY_BOUND,
            "{} items of the deleted account remain",
            left.len()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    println!(
        "items deleted {:?} after the account, seen from the other instance",
        started.elapsed()
    );
    assert_eq!(
        pair.a
            .collection
            .snapshot(other.user_id())
            .await
            .expect("snapshot")
            .len(),
        1
    );
}
