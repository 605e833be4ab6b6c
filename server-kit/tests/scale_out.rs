//! Two instances sharing one PostgreSQL schema and one Redis (the scale-out setup): tokens
//! issued on one are refreshed on the other, reuse and the grace window hold across them,
//! rate limits and proof replays are shared, and a revocation on one closes the sync
//! connections admitted on the other within a pub/sub hop. Also the Redis rate-limit store
//! on the generic rate-limit cases, and the relay surviving a killed subscription.
//!
//! Needs PostgreSQL (`HOLDFAST_TEST_POSTGRES_URL`, see `postgres_support`) and Redis
//! (`HOLDFAST_TEST_REDIS_URL`, default `redis://127.0.0.1:6379`): without them these tests
//! fail, they are never skipped. Each test uses keys and a channel under a prefix of its
//! own; everything it writes expires by itself.
//!
//! The PostgreSQL side of a connection killed mid-load is
//! `postgres.rs::the_pool_recovers_from_killed_connections_without_losing_commits`.

#[path = "postgres_support/mod.rs"]
mod postgres_support;
mod support;

use std::time::{Duration, Instant};

use holdfast_protocol::ErrorCode;
use holdfast_server_kit::clock::{Clock, ManualClock, SystemClock};
use holdfast_server_kit::config::RateLimits;
use holdfast_server_kit::events::{Delivered, Origin, Revocation, RevocationBus};
use holdfast_server_kit::gate::{Closed, GateConfig, GateError, Handshake, Principal, SyncGate};
use holdfast_server_kit::relay::RedisRelay;
use holdfast_server_kit::store::ReplayStore;
use holdfast_server_kit::store::redis::{RedisRateLimits, RedisReplays};
use holdfast_server_kit::store::{RateDecision, RateLimit, RateLimitStore};
use holdfast_server_kit::{ServerConfig, Stores};
use postgres_support::TestSchema;
use serde_json::json;
use support::{DeviceKey, PASSWORD, TestServer, email};
use tokio::sync::broadcast;

const SYNC_URL: &str = "https://sync.example.com/sync";

fn redis_url() -> String {
    std::env::var("HOLDFAST_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// A key prefix (and channel) of this test's own.
fn prefix() -> String {
    format!("hft-test-{}", uuid::Uuid::new_v4().simple())
}

fn unreachable(error: impl std::fmt::Display) -> String {
    format!(
        "Redis is unreachable at {} ({error}). These tests need a server: start one, or point \
         HOLDFAST_TEST_REDIS_URL at one (they are never skipped).",
        redis_url()
    )
}

async fn redis_connection() -> redis::aio::ConnectionManager {
    holdfast_server_kit::store::redis::connect(&redis_url())
        .await
        .unwrap_or_else(|e| panic!("{}", unreachable(e)))
}

async fn relay(bus: &RevocationBus, prefix: &str) -> RedisRelay {
    RedisRelay::start(bus, &redis_url(), prefix)
        .await
        .unwrap_or_else(|e| panic!("{}", unreachable(e)))
}

/// Gate settings under which only the relay can explain a prompt cut-off: the periodic
/// re-check and the admission cache would take a minute.
fn slow_gate() -> GateConfig {
    GateConfig {
        cache_ttl: Duration::from_secs(60),
        recheck_interval: Duration::from_secs(60),
        ..GateConfig::default()
    }
}

/// One instance: a server, its sync gate and its relay.
struct Instance {
    server: TestServer,
    gate: SyncGate,
    relay: RedisRelay,
}

impl Instance {
    async fn start(
        schema: &TestSchema,
        prefix: &str,
        clock: &ManualClock,
        configure: impl FnOnce(&mut ServerConfig),
    ) -> Instance {
        let stores = Stores::postgres(&schema.url, Some(&schema.name))
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at {} (never skipped): {e}", schema.url))
            .with_redis(&redis_url(), prefix)
            .await
            .unwrap_or_else(|e| panic!("{}", unreachable(e)));
        let server = TestServer::start_with_stores(stores, clock.clone(), configure).await;
        let gate = SyncGate::new(&server.service, slow_gate());
        let relay = relay(server.service.revocations(), prefix).await;
        Instance { server, gate, relay }
    }

    async fn admit(&self, token: &str, proof: Option<&str>) -> Result<Principal, GateError> {
        self.gate
            .admit(&Handshake {
                access_token: token,
                proof,
                method: "GET",
                url: SYNC_URL,
            })
            .await
    }
}

/// Two instances on one schema and one Redis prefix, with one clock.
struct Pair {
    a: Instance,
    b: Instance,
    clock: ManualClock,
    /// The Redis key prefix and channel prefix both instances share.
    prefix: String,
    // Dropped last, after the pools.
    _schema: TestSchema,
}

impl Pair {
    async fn start(configure: impl Fn(&mut ServerConfig)) -> Pair {
        let schema = TestSchema::new();
        let prefix = prefix();
        let clock = ManualClock::new(SystemClock.now_ms());
        let a = Instance::start(&schema, &prefix, &clock, &configure).await;
        let b = Instance::start(&schema, &prefix, &clock, &configure).await;
        assert_ne!(a.relay.instance_id(), b.relay.instance_id());
        Pair {
            a,
            b,
            clock,
            prefix,
            _schema: schema,
        }
    }
}

/// A device proof for `GET` on the sync URL (the harness's `DeviceKey::proof`).
fn proof_at(key: &DeviceKey, access: &str, iat: i64) -> String {
    key.proof("GET", SYNC_URL, access, iat)
}

// ---------------------------------------------------------------------------------------
// Two instances over HTTP

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_session_started_on_one_instance_is_refreshed_on_the_other() {
    let pair = Pair::start(|_| {}).await;
    let session = pair.a.server.sign_up(&email("scale")).await;
    let refreshed = pair.b.server.refresh(&session.refresh).await.expect_status(200);
    let access = refreshed.data()["accessToken"]
        .as_str()
        .expect("access")
        .to_owned();
    let me = pair.b.server.me(&access).await.expect_status(200);
    assert_eq!(me.data()["id"], session.user["id"], "{}", me.text);
    pair.a.server.me(&access).await.expect_status(200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refresh_token_reuse_is_detected_across_instances() {
    let pair = Pair::start(|config| config.grace_window_ms = 0).await;
    let session = pair.a.server.sign_up(&email("reuse")).await;
    let child = pair.a.server.refresh(&session.refresh).await.expect_status(200);
    let child_refresh = child.data()["refreshToken"].as_str().expect("refresh").to_owned();
    let child_access = child.data()["accessToken"].as_str().expect("access").to_owned();
    pair.clock.advance_ms(1);
    pair.b
        .server
        .refresh(&session.refresh)
        .await
        .expect_error(401, "REFRESH_REUSED");
    // The whole session ended, on both instances.
    pair.a
        .server
        .refresh(&child_refresh)
        .await
        .expect_error(401, "TOKEN_REVOKED");
    pair.a
        .server
        .me(&child_access)
        .await
        .expect_error(401, "TOKEN_REVOKED");
    pair.b
        .server
        .me(&child_access)
        .await
        .expect_error(401, "TOKEN_REVOKED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_grace_window_holds_across_instances() {
    let pair = Pair::start(|config| config.grace_window_ms = 30_000).await;
    let session = pair.a.server.sign_up(&email("grace")).await;
    let first = pair.a.server.refresh(&session.refresh).await.expect_status(200);
    pair.clock.advance_ms(5_000);
    let again = pair.b.server.refresh(&session.refresh).await.expect_status(200);
    assert_eq!(
        first.data(),
        again.data(),
        "the other instance answers with the same pair within the grace window"
    );
    pair.clock.advance_ms(30_000);
    pair.b
        .server
        .refresh(&session.refresh)
        .await
        .expect_error(401, "REFRESH_REUSED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rate_limits_count_the_hits_of_both_instances_together() {
    let limit = RateLimit {
        max: 4,
        window_ms: 60_000,
    };
    let pair = Pair::start(move |config| config.rate_limits = RateLimits::uniform(limit)).await;
    let address = email("limited");
    pair.a.server.sign_up(&address).await;
    let wrong = json!({ "email": address, "password": "not the password" });
    // Four failures split over the two instances use up the shared window...
    for server in [&pair.a.server, &pair.b.server, &pair.a.server, &pair.b.server] {
        server
            .post("/auth/signin", wrong.clone())
            .await
            .expect_error(401, "INVALID_CREDENTIALS");
    }
    // ...so the fifth is refused on either, even with the right password.
    let right = json!({ "email": address, "password": PASSWORD });
    for server in [&pair.a.server, &pair.b.server] {
        let reply = server.post("/auth/signin", right.clone()).await;
        reply.expect_error(429, ErrorCode::RateLimited.as_str());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_device_proof_is_single_use_across_instances() {
    let pair = Pair::start(|_| {}).await;
    let key = DeviceKey::generate();
    let session = pair
        .a
        .server
        .sign_up_device(&email("replay"), "phone-1", &key)
        .await;
    let proof = proof_at(&key, &session.access, pair.clock.now_secs());
    pair.a
        .admit(&session.access, Some(&proof))
        .await
        .expect("first use admitted");
    let replayed = pair
        .b
        .admit(&session.access, Some(&proof))
        .await
        .expect_err("the same proof on the other instance is a replay");
    assert_eq!(replayed.code, ErrorCode::ProofInvalid, "{replayed}");
    assert!(replayed.message.contains("already used"), "{replayed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_device_revoked_on_one_instance_closes_its_watch_on_the_other() {
    let pair = Pair::start(|_| {}).await;
    let address = email("revoke");
    pair.a.server.sign_up(&address).await;
    let phone = pair.a.server.sign_in_device(&address, "phone-1").await;
    let laptop = pair.a.server.sign_in_device(&address, "laptop-1").await;

    let on_b = pair.b.admit(&phone.access, None).await.expect("admitted on B");
    let on_a = pair.a.admit(&phone.access, None).await.expect("admitted on A");
    let watch_b = tokio::spawn(pair.b.gate.watch(&on_b));
    let watch_a = tokio::spawn(pair.a.gate.watch(&on_a));
    // The laptop's session on B is untouched by the phone's revocation.
    let laptop_on_b = pair.b.admit(&laptop.access, None).await.expect("laptop admitted");
    let mut laptop_watch = std::pin::pin!(pair.b.gate.watch(&laptop_on_b));

    let started = Instant::now();
    pair.a
        .server
        .revoke(&laptop.access, "phone-1")
        .await
        .expect_status(200);
    let answered = started.elapsed();
    let closed = tokio::time::timeout(Duration::from_secs(5), watch_b)
        .await
        .expect("the watch on B closes within 5 s (the re-check interval is 60 s)")
        .expect("watch task");
    let delay = started.elapsed();
    assert_eq!(closed, Closed::DeviceRevoked);
    println!(
        "cross-instance revocation: revoke answered on A after {answered:?}, watch on B closed after {delay:?} \
         (pub/sub hop, cache invalidation and a PostgreSQL re-check)"
    );
    assert!(
        delay < Duration::from_secs(2),
        "the watch on B closed after {delay:?}"
    );
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(5), watch_a)
            .await
            .expect("the watch on A closes")
            .expect("watch task"),
        Closed::DeviceRevoked
    );
    // B's cached admission was dropped too (its cache TTL is a minute).
    let refused = pair.b.admit(&phone.access, None).await.expect_err("refused on B");
    assert_eq!(refused.code, ErrorCode::DeviceRevoked, "{refused}");
    assert!(
        tokio::time::timeout(Duration::from_millis(200), &mut laptop_watch)
            .await
            .is_err(),
        "the laptop stays connected"
    );
    pair.b
        .admit(&laptop.access, None)
        .await
        .expect("laptop still admitted");
}

/// The bearer routes' standing cache (a minute here) follows the relay: a device revoked on
/// A is refused by B's `/me` within a pub/sub hop; a change the relay does not carry (the
/// account deleted straight in the database) within B's cache max age.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bearer_routes_see_the_other_instances_revocations() {
    let pair = Pair::start(|config| config.standing_cache_ttl = Duration::from_secs(60)).await;
    let address = email("bearer-relay");
    pair.a.server.sign_up(&address).await;
    let phone = pair.a.server.sign_in_device(&address, "phone-1").await;
    let laptop = pair.a.server.sign_in_device(&address, "laptop-1").await;
    // Both standings cached on B.
    pair.b.server.me(&phone.access).await.expect_status(200);
    pair.b.server.me(&laptop.access).await.expect_status(200);

    let started = Instant::now();
    pair.a
        .server
        .revoke(&laptop.access, "phone-1")
        .await
        .expect_status(200);
    loop {
        let reply = pair.b.server.me(&phone.access).await;
        if reply.code() == Some("DEVICE_REVOKED") {
            break;
        }
        reply.expect_status(200);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "B kept serving a device revoked on A (its cache max age is a minute)"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    println!("device revoked on A: refused on B after {:?}", started.elapsed());
    pair.b.server.me(&laptop.access).await.expect_status(200);

    // Out of band: no event, so B answers from its cache until the max age.
    let user_id = laptop.user["id"].as_str().expect("user id").to_owned();
    let stores = pair.a.server.service.stores();
    assert!(stores.users.delete_user(&user_id).await.expect("delete"));
    pair.b.server.me(&laptop.access).await.expect_status(200);
    pair.clock.advance_ms(59_999);
    pair.b.server.me(&laptop.access).await.expect_status(200);
    pair.clock.advance_ms(1);
    let gone = pair.b.server.me(&laptop.access).await;
    assert_eq!(gone.code(), Some("USER_NOT_FOUND"), "{}", gone.text);
}

/// PROTOCOL 8: every way a session ends is live revocation, across instances too.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sessions_ended_on_one_instance_close_their_watches_on_the_other() {
    let pair = Pair::start(|_| {}).await;
    let address = email("ended");
    pair.a.server.sign_up(&address).await;
    let phone = pair.a.server.sign_in_device(&address, "phone-1").await;
    let laptop = pair.a.server.sign_in_device(&address, "laptop-1").await;
    let tablet = pair.a.server.sign_in_device(&address, "tablet-1").await;
    let admitted = |access: &str| {
        let access = access.to_owned();
        let b = &pair.b;
        async move { b.admit(&access, None).await.expect("admitted on B") }
    };
    let watch = |principal| tokio::spawn(pair.b.gate.watch(&principal));
    let closes_within = |handle: tokio::task::JoinHandle<Closed>| async move {
        tokio::time::timeout(Duration::from_secs(5), handle)
            .await
            .expect("the watch on B closes within 5 s (its re-check interval is 60 s)")
            .expect("watch task")
    };

    // One session, ended from another on instance A.
    let phone_watch = watch(admitted(&phone.access).await);
    let tablet_watch = watch(admitted(&tablet.access).await);
    let family = support::claims(&phone.refresh).fam.expect("family");
    let started = Instant::now();
    pair.a
        .server
        .delete_auth(&format!("/auth/sessions/{family}"), &laptop.access, None)
        .await
        .expect_status(200);
    assert_eq!(closes_within(phone_watch).await, Closed::SessionEnded);
    println!(
        "session revoked on A: watch on B closed after {:?}",
        started.elapsed()
    );
    let refused = pair.b.admit(&phone.access, None).await.expect_err("refused on B");
    assert_eq!(refused.code, ErrorCode::TokenRevoked, "{refused}");
    let refresh = pair.b.server.refresh(&phone.refresh).await;
    refresh.expect_error(401, "TOKEN_REVOKED");
    assert_eq!(refresh.reason(), Some("revoked"));

    // A password reset on A ends every other session, and B closes them.
    let token = pair
        .a
        .server
        .post_unproven("/auth/password/reset-request", json!({ "email": address }))
        .await
        .expect_status(200)
        .data()["token"]
        .as_str()
        .expect("a development-mode token")
        .to_owned();
    let laptop_watch = watch(admitted(&laptop.access).await);
    pair.b
        .server
        .post_unproven(
            "/auth/password/reset",
            json!({ "token": token, "newPassword": "a brand new passphrase" }),
        )
        .await
        .expect_status(200);
    assert_eq!(closes_within(tablet_watch).await, Closed::SessionEnded);
    assert_eq!(closes_within(laptop_watch).await, Closed::SessionEnded);
    let refresh = pair.a.server.refresh(&laptop.refresh).await;
    refresh.expect_error(401, "TOKEN_REVOKED");
    assert_eq!(refresh.reason(), Some("password_reset"));
    pair.a
        .server
        .post_unproven("/auth/signin", json!({ "email": address, "password": PASSWORD }))
        .await
        .expect_error(401, "INVALID_CREDENTIALS");
}

/// `holdfast-server users sign-out` run against the instances' database and Redis relays
/// the end of the sessions before it exits: a connection on a running instance closes within
/// a pub/sub hop (its re-check interval is a minute).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_operator_command_ends_sessions_on_the_running_instances_at_once() {
    let pair = Pair::start(|_| {}).await;
    let address = email("operator");
    let phone = pair.a.server.sign_up(&address).await;
    let principal = pair.b.admit(&phone.access, None).await.expect("admitted on B");
    let watch = tokio::spawn(pair.b.gate.watch(&principal));
    let schema = &pair._schema;
    let started = Instant::now();
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_holdfast-server"));
    command
        .args(["--database", &schema.url, "--database-schema", &schema.name])
        .args(["--redis", &redis_url(), "--redis-prefix", &pair.prefix])
        .args(["users", "sign-out", &address])
        .env_remove("HOLDFAST_SECRET")
        .env_remove("RUST_LOG");
    let output = support::blocking(move || command.output())
        .await
        .expect("run holdfast-server users sign-out");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let printed: serde_json::Value = serde_json::from_slice(&output.stdout).expect("one JSON line");
    assert_eq!(printed["sessionsEnded"], 1);
    let closed = tokio::time::timeout(Duration::from_secs(10), watch)
        .await
        .expect("the watch on B closes well within its one-minute re-check")
        .expect("watch task");
    assert_eq!(closed, Closed::SessionEnded);
    println!(
        "operator sign-out: watch on B closed {:?} after the command started",
        started.elapsed()
    );
    let refused = pair.a.server.refresh(&phone.refresh).await;
    refused.expect_error(401, "TOKEN_REVOKED");
    assert_eq!(refused.reason(), Some("signed_out_everywhere"));
}

// ---------------------------------------------------------------------------------------
// The relay

async fn next_event(events: &mut broadcast::Receiver<Delivered>, within: Duration) -> Delivered {
    tokio::time::timeout(within, events.recv())
        .await
        .unwrap_or_else(|_| panic!("no event within {within:?}"))
        .expect("the bus is open")
}

fn device_event(device_id: &str) -> Revocation {
    Revocation::Device {
        user_id: "u1".into(),
        device_id: device_id.into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_relay_delivers_other_instances_events_once_and_never_echoes() {
    let prefix = prefix();
    let (bus_a, bus_b) = (RevocationBus::new(), RevocationBus::new());
    let (_relay_a, _relay_b) = (relay(&bus_a, &prefix).await, relay(&bus_b, &prefix).await);
    let (mut seen_a, mut seen_b) = (bus_a.subscribe(), bus_b.subscribe());

    let started = Instant::now();
    bus_a.publish(device_event("d1"));
    let delivered = next_event(&mut seen_b, Duration::from_secs(2)).await;
    println!("one pub/sub hop: {:?}", started.elapsed());
    assert_eq!(
        delivered,
        Delivered {
            event: device_event("d1"),
            origin: Origin::Remote
        }
    );
    assert_eq!(
        next_event(&mut seen_a, Duration::from_secs(1)).await.origin,
        Origin::Local
    );

    bus_b.publish(Revocation::UserSessions { user_id: "u2".into() });
    assert_eq!(
        next_event(&mut seen_b, Duration::from_secs(1)).await.origin,
        Origin::Local
    );
    let back = next_event(&mut seen_a, Duration::from_secs(2)).await;
    assert_eq!(back.event, Revocation::UserSessions { user_id: "u2".into() });
    assert_eq!(back.origin, Origin::Remote);

    // Neither instance hears its own events back, nor re-publishes what it received.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(seen_a.try_recv().is_err(), "nothing more on A");
    assert!(seen_b.try_recv().is_err(), "nothing more on B");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_relay_whose_subscription_is_killed_resyncs_and_keeps_delivering() {
    let prefix = prefix();
    let (bus_a, bus_b) = (RevocationBus::new(), RevocationBus::new());
    let (_relay_a, relay_b) = (relay(&bus_a, &prefix).await, relay(&bus_b, &prefix).await);
    let mut seen_b = bus_b.subscribe();

    // Kill B's subscription, and only it: found by its client name.
    let mut admin = redis_connection().await;
    let clients: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(&mut admin)
        .await
        .expect("CLIENT LIST");
    let ids: Vec<&str> = clients
        .lines()
        .filter(|line| {
            line.split(' ')
                .any(|field| field == format!("name={}", relay_b.client_name()))
        })
        .filter_map(|line| line.split(' ').find_map(|field| field.strip_prefix("id=")))
        .collect();
    assert_eq!(ids.len(), 1, "one subscription named {}", relay_b.client_name());
    let killed: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("ID")
        .arg(ids[0])
        .query_async(&mut admin)
        .await
        .expect("CLIENT KILL");
    assert_eq!(killed, 1);

    // Events may have been lost meanwhile: B re-checks everything.
    let resync = next_event(&mut seen_b, Duration::from_secs(5)).await;
    assert_eq!(
        resync,
        Delivered {
            event: Revocation::Resync,
            origin: Origin::Remote
        }
    );
    assert_eq!(relay_b.resubscriptions(), 1);
    // And it hears A again.
    bus_a.publish(device_event("after-kill"));
    let delivered = next_event(&mut seen_b, Duration::from_secs(2)).await;
    assert_eq!(delivered.event, device_event("after-kill"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_resync_reopens_every_watch_and_cached_admission() {
    // One instance whose relay delivers a Resync: its watches re-check at once.
    let schema = TestSchema::new();
    let prefix = prefix();
    let clock = ManualClock::new(SystemClock.now_ms());
    let instance = Instance::start(&schema, &prefix, &clock, |_| {}).await;
    let address = email("resync");
    instance.server.sign_up(&address).await;
    let phone = instance.server.sign_in_device(&address, "phone-1").await;
    let principal = instance.admit(&phone.access, None).await.expect("admitted");
    let watch = tokio::spawn(instance.gate.watch(&principal));
    // Revoked behind the bus's back (as if the event had been lost): nothing wakes.
    let user_id = phone.user["id"].as_str().expect("user id").to_owned();
    assert!(
        instance
            .server
            .stores
            .devices
            .revoke_device("phone-1", &user_id)
            .await
            .expect("revoke in the store")
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!watch.is_finished(), "no event, no re-check yet");
    instance
        .admit(&phone.access, None)
        .await
        .expect("still admitted from the cache");
    instance
        .server
        .service
        .revocations()
        .deliver_remote(Revocation::Resync);
    let closed = tokio::time::timeout(Duration::from_secs(2), watch)
        .await
        .expect("the watch re-checks on a resync")
        .expect("watch task");
    assert_eq!(closed, Closed::DeviceRevoked);
    let refused = instance.admit(&phone.access, None).await.expect_err("refused");
    assert_eq!(refused.code, ErrorCode::DeviceRevoked, "{refused}");
}

// ---------------------------------------------------------------------------------------
// The Redis stores on the cases of `store_conformance.rs`

const ALLOWED: RateDecision = RateDecision {
    allowed: true,
    retry_after_ms: 0,
};

fn refused(retry_after_ms: i64) -> RateDecision {
    RateDecision {
        allowed: false,
        retry_after_ms,
    }
}

fn rate_limit(max: u32, window_ms: i64) -> RateLimit {
    RateLimit { max, window_ms }
}

async fn limits() -> RedisRateLimits {
    RedisRateLimits::new(redis_connection().await, &prefix())
}

async fn hit(limits: &RedisRateLimits, key: &str, limit: RateLimit, now_ms: i64) -> RateDecision {
    limits.hit(key, limit, now_ms).await.expect("hit")
}

#[tokio::test]
async fn redis_sliding_window_is_exact() {
    let limits = limits().await;
    let limit = rate_limit(3, 1_000);
    for at in [0, 100, 200] {
        assert_eq!(hit(&limits, "k", limit, at).await, ALLOWED, "attempt at {at}");
    }
    assert_eq!(hit(&limits, "k", limit, 300).await, refused(700));
    assert_eq!(hit(&limits, "k", limit, 999).await, refused(1));
    assert_eq!(hit(&limits, "k", limit, 1_000).await, ALLOWED);
    assert_eq!(hit(&limits, "k", limit, 1_001).await, refused(99));
    assert_eq!(hit(&limits, "k", limit, 1_100).await, ALLOWED);
    assert_eq!(hit(&limits, "k", limit, 1_150).await, refused(50));
    assert_eq!(hit(&limits, "other", limit, 1_150).await, ALLOWED);
    // Two attempts in the same millisecond both count.
    assert_eq!(hit(&limits, "same", rate_limit(2, 1_000), 5).await, ALLOWED);
    assert_eq!(hit(&limits, "same", rate_limit(2, 1_000), 5).await, ALLOWED);
    assert_eq!(
        hit(&limits, "same", rate_limit(2, 1_000), 5).await,
        refused(1_000)
    );
}

#[tokio::test]
async fn redis_limit_of_zero_refuses_everything() {
    let limits = limits().await;
    let decision = hit(&limits, "k", rate_limit(0, 1_000), 0).await;
    assert!(!decision.allowed);
    assert!(decision.retry_after_ms >= 1);
}

#[tokio::test]
async fn redis_reset_forgets_attempts() {
    let limits = limits().await;
    let limit = rate_limit(1, 1_000);
    assert_eq!(hit(&limits, "k", limit, 0).await, ALLOWED);
    assert_eq!(hit(&limits, "other", limit, 0).await, ALLOWED);
    assert_eq!(hit(&limits, "k", limit, 10).await, refused(990));
    limits.reset("k").await.expect("reset");
    limits.reset("never-seen").await.expect("reset");
    assert_eq!(hit(&limits, "k", limit, 20).await, ALLOWED);
    assert_eq!(hit(&limits, "other", limit, 20).await, refused(980));
}

#[tokio::test]
async fn redis_blocks_keep_the_later_end() {
    let limits = limits().await;
    let blocked = |now| limits.blocked_until("ip", now);
    assert_eq!(blocked(0).await.expect("read"), None);
    limits.block("ip", 1_000).await.expect("block");
    assert_eq!(blocked(0).await.expect("read"), Some(1_000));
    limits.block("ip", 500).await.expect("shorter block");
    assert_eq!(blocked(0).await.expect("read"), Some(1_000));
    limits.block("ip", 2_000).await.expect("longer block");
    assert_eq!(blocked(1_999).await.expect("read"), Some(2_000));
    assert_eq!(blocked(2_000).await.expect("read"), None);
    assert_eq!(limits.blocked_until("other", 0).await.expect("read"), None);
    // Redis expires windows and blocks itself.
    assert_eq!(limits.purge_expired_limits(10_000).await.expect("purge"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_concurrent_hits_allow_exactly_max() {
    let limits = std::sync::Arc::new(limits().await);
    let limit = rate_limit(10, 60_000);
    let attempts: Vec<_> = (0..50)
        .map(|n| {
            let limits = limits.clone();
            tokio::spawn(async move { limits.hit("k", limit, 1_000 + n).await })
        })
        .collect();
    let mut allowed = 0;
    for attempt in attempts {
        if attempt.await.expect("task").expect("hit").allowed {
            allowed += 1;
        }
    }
    assert_eq!(allowed, 10);
}

#[tokio::test]
async fn redis_replays_accept_a_key_once_until_it_expires() {
    let connection = redis_connection().await;
    let prefix = prefix();
    let (a, b) = (
        RedisReplays::new(connection.clone(), &prefix),
        RedisReplays::new(connection, &prefix),
    );
    assert!(a.first_use("k:1", 100, 50).await.expect("first use"));
    assert!(!b.first_use("k:1", 100, 60).await.expect("replay"));
    assert!(!a.first_use("k:1", 100, 100).await.expect("replay"));
    assert!(b.first_use("k:2", 100, 60).await.expect("first use"));
}
