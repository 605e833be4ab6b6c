//! Redis restarted under two running instances (the issue's "Redis restarted loses no
//! committed data and the instances recover without a restart").
//!
//! The test starts a Redis of its own ([`RedisServer`]: `HOLDFAST_REDIS_SERVER_BIN`, default
//! `redis-server` on the PATH, on a free loopback port, without persistence), so that killing
//! it disturbs nobody, and two instances on one fresh PostgreSQL schema
//! (`HOLDFAST_TEST_POSTGRES_URL`, see `postgres_support`) sharing that Redis. Neither may be
//! missing: the test fails, it is never skipped. It then SIGKILLs Redis, uses both
//! instances while it is down, starts it again empty on the same port, and checks that they
//! recover by themselves and that nothing committed was lost.
//!
//! What each Redis-backed feature does while Redis is down (`store::redis` and `relay`
//! document the same):
//!
//! | feature | while Redis is down | after Redis is back |
//! | --- | --- | --- |
//! | `/auth/me`, refresh rotation, device revocation, sign-up and sign-in data | work: committed to PostgreSQL | everything made before and during the outage is still valid |
//! | rate limits (sign-in, sign-up, refresh) | counted per instance, in memory: a limit still holds on each instance, but not across them | shared again from the first call that finds Redis answering |
//! | device-proof replay | remembered per instance: a proof used again is refused on the same instance, but not on another | single-use across instances again |
//! | revocation fan-out | lost (publishing fails); an open watch on the other instance stays open until its periodic re-check | the relay re-subscribes (backoff 50 ms doubling to 2 s) and delivers a `Resync`: every watch re-checks at once, so the revocation made during the outage closes its watch without waiting for the re-check |
//!
//! No request fails (no 500, which the harness refuses anyway). The first Redis call that
//! finds Redis gone waits for it at most
//! [`CALL_TIMEOUT`](holdfast_server_kit::store::redis::CALL_TIMEOUT); after that only one
//! call per store every
//! [`PROBE_INTERVAL`](holdfast_server_kit::store::redis::PROBE_INTERVAL) tries Redis, the
//! others answer from memory at once. Every request here is bounded by [`REQUEST_BOUND`],
//! and the test prints the slowest one of the outage and the recovery times.

#[path = "postgres_support/mod.rs"]
mod postgres_support;
mod support;

use std::future::Future;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use holdfast_protocol::ErrorCode;
use holdfast_server_kit::clock::{Clock, ManualClock, SystemClock};
use holdfast_server_kit::config::RateLimits;
use holdfast_server_kit::gate::{Closed, GateConfig, GateError, Handshake, Principal, SyncGate};
use holdfast_server_kit::relay::RedisRelay;
use holdfast_server_kit::store::RateLimit;
use holdfast_server_kit::store::redis::CALL_TIMEOUT;
use holdfast_server_kit::{ServerConfig, Stores};
use postgres_support::TestSchema;
use serde_json::json;
use support::{DeviceKey, PASSWORD, Reply, Session, TestServer, email};

const SYNC_URL: &str = "https://sync.example.com/sync";

/// The longest any single request or admission may take, outage or not: a sign-in makes up
/// to three rate-limit calls, each waiting at most `CALL_TIMEOUT` for Redis.
const REQUEST_BOUND: Duration = Duration::from_secs(7);
/// How long the relay may take to re-subscribe once Redis answers: its backoff is capped at
/// 2 s (`relay.rs`, `MAX_BACKOFF`), plus slack for a loaded machine.
const RELAY_RECOVERY_BOUND: Duration = Duration::from_secs(3);
/// How long the stores may take to use Redis again: a probe (one call per `PROBE_INTERVAL`)
/// that finds the connection dead starts a reconnection, the next one uses it.
const STORE_RECOVERY_BOUND: Duration = Duration::from_secs(3);
/// How long the outage lasts at least, so that the relay's backoff reaches its cap.
const MIN_OUTAGE: Duration = Duration::from_secs(3);

// ---------------------------------------------------------------------------------------
// A Redis of the test's own

/// A `redis-server` on a loopback port, without persistence, that the test kills (SIGKILL)
/// and starts again on the same port; killed when dropped, and by a watchdog shell if the
/// test process dies without unwinding (Ctrl-C, SIGKILL), so none is left running.
struct RedisServer {
    binary: String,
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
    watchdog: Option<Child>,
    starts: u32,
}

/// Why a `redis-server` did not start.
enum StartFailure {
    /// The binary cannot be run: no point trying another port.
    Binary(String),
    /// It ran but did not serve (the port was taken, ...).
    Serve(String),
}

impl RedisServer {
    /// Starts one on a free port and waits until it answers; panics (never skips) when it
    /// cannot.
    fn start() -> RedisServer {
        let binary = std::env::var("HOLDFAST_REDIS_SERVER_BIN").unwrap_or_else(|_| "redis-server".to_owned());
        let dir = tempfile::tempdir().expect("temp dir for redis-server");
        let mut server = RedisServer {
            binary,
            port: 0,
            dir,
            child: None,
            watchdog: None,
            starts: 0,
        };
        // A port below the kernel's ephemeral range (32768-60999 by default), so that no
        // outgoing connection takes it while Redis is down; another listener might, hence the
        // retries.
        let mut failures = Vec::new();
        for _ in 0..5 {
            server.port = free_port();
            match server.spawn() {
                Ok(()) => return server,
                Err(StartFailure::Binary(failure)) => failures = vec![failure],
                Err(StartFailure::Serve(failure)) => {
                    failures.push(failure);
                    continue;
                }
            }
            break;
        }
        panic!(
            "could not start a Redis for this test (it is never skipped; set \
             HOLDFAST_REDIS_SERVER_BIN to a redis-server binary):\n{}",
            failures.join("\n")
        );
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) -> Result<(), StartFailure> {
        self.starts += 1;
        let log = self.log_path();
        let stdout = std::fs::File::create(&log)
            .map_err(|e| StartFailure::Serve(format!("{}: {e}", log.display())))?;
        let stderr = stdout
            .try_clone()
            .map_err(|e| StartFailure::Serve(e.to_string()))?;
        let port = self.port.to_string();
        let child = Command::new(&self.binary)
            .args(["--port", &port, "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .args(["--daemonize", "no", "--logfile", ""])
            .arg("--dir")
            .arg(self.dir.path())
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .map_err(|e| StartFailure::Binary(format!("cannot run `{}`: {e}", self.binary)))?;
        // Kills the server if this process goes away first; ends by itself when the server
        // does.
        let (test, redis) = (std::process::id(), child.id());
        self.watchdog = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "while kill -0 {test} 2>/dev/null && kill -0 {redis} 2>/dev/null; do sleep 0.2; done; \
                 kill -9 {redis} 2>/dev/null"
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok();
        self.child = Some(child);
        self.wait_ready(Duration::from_secs(10))
            .map_err(StartFailure::Serve)
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join(format!("redis-{}.log", self.starts))
    }

    /// Waits until the server started last answers on its port (checked by process id, so
    /// that another server on the port does not count).
    fn wait_ready(&mut self, within: Duration) -> Result<(), String> {
        let deadline = Instant::now() + within;
        loop {
            let child = self.child.as_mut().expect("a running redis-server");
            if let Ok(Some(status)) = child.try_wait() {
                self.kill();
                return Err(format!(
                    "redis-server on port {} exited ({status}): {}",
                    self.port,
                    self.log_tail()
                ));
            }
            if serving_pid(self.port) == Some(child.id()) {
                return Ok(());
            }
            if Instant::now() > deadline {
                self.kill();
                return Err(format!(
                    "redis-server on port {} did not answer within {within:?}: {}",
                    self.port,
                    self.log_tail()
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(10)..].join("\n")
    }

    /// SIGKILL, as a crash or an OOM kill would; waits until the process is gone.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(mut watchdog) = self.watchdog.take() {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        }
    }

    /// Starts it again on the same port: empty, as a Redis without persistence restarts.
    fn restart(&mut self) {
        assert!(self.child.is_none(), "kill it first");
        match self.spawn() {
            Ok(()) => {}
            Err(StartFailure::Binary(failure) | StartFailure::Serve(failure)) => {
                panic!("could not restart redis-server on port {}: {failure}", self.port)
            }
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A loopback port below the ephemeral range that nothing listens on right now.
fn free_port() -> u16 {
    loop {
        let candidate = 20_000 + (uuid::Uuid::new_v4().as_u128() % 12_000) as u16;
        if TcpListener::bind(("127.0.0.1", candidate)).is_ok() {
            return candidate;
        }
    }
}

/// The `process_id` of the Redis answering `INFO server` on `port`, if one does.
fn serving_pid(port: u16) -> Option<u32> {
    let address = ([127, 0, 0, 1], port).into();
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_millis(200)).ok()?;
    stream.set_read_timeout(Some(Duration::from_millis(500))).ok()?;
    stream.write_all(b"INFO server\r\n").ok()?;
    // A bulk string: `$LEN\r\n`, then LEN bytes and `\r\n`.
    let mut header = Vec::new();
    let mut byte = [0_u8; 1];
    while !header.ends_with(b"\r\n") {
        stream.read_exact(&mut byte).ok()?;
        header.push(byte[0]);
    }
    let length: usize = std::str::from_utf8(header.strip_prefix(b"$")?)
        .ok()?
        .trim_end()
        .parse()
        .ok()?;
    let mut body = vec![0_u8; length];
    stream.read_exact(&mut body).ok()?;
    String::from_utf8(body)
        .ok()?
        .lines()
        .find_map(|line| line.strip_prefix("process_id:"))?
        .trim()
        .parse()
        .ok()
}

/// A fresh connection for the test's own checks (none is kept across the restart).
async fn admin(redis: &RedisServer) -> redis::aio::MultiplexedConnection {
    redis::Client::open(redis.url())
        .expect("Redis URL")
        .get_multiplexed_async_connection()
        .await
        .unwrap_or_else(|e| panic!("the test's Redis at {} answers: {e}", redis.url()))
}

async fn redis_has(redis: &RedisServer, key: &str) -> bool {
    let exists: i64 = redis::cmd("EXISTS")
        .arg(key)
        .query_async(&mut admin(redis).await)
        .await
        .expect("EXISTS");
    exists == 1
}

// ---------------------------------------------------------------------------------------
// Two instances

/// `work`, which must finish within `bound`.
async fn bounded<T>(what: &str, bound: Duration, work: impl Future<Output = T>) -> T {
    tokio::time::timeout(bound, work)
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within {bound:?}"))
}

/// Gate settings under which only the relay (an event or a `Resync`) can explain a prompt
/// cut-off: the periodic re-check and the admission cache would take a minute.
fn slow_gate() -> GateConfig {
    GateConfig {
        cache_ttl: Duration::from_secs(60),
        recheck_interval: Duration::from_secs(60),
        ..GateConfig::default()
    }
}

/// Sign-in: 4 a minute per address, so the shared count shows, and failures counted per
/// account; sign-up
/// and refresh are limited too (generously) so that they need the rate-limit store.
fn configure(config: &mut ServerConfig) {
    let minute = 60_000;
    config.rate_limits = RateLimits {
        sign_in: Some(RateLimit {
            max: 4,
            window_ms: minute,
        }),
        sign_up: Some(RateLimit {
            max: 50,
            window_ms: minute,
        }),
        refresh: Some(RateLimit {
            max: 50,
            window_ms: minute,
        }),
        ..RateLimits::OFF
    };
    // Failed sign-ins are also counted per account, in the same store.
    config.account_lockout = Some(holdfast_server_kit::config::AccountLockout {
        per_address: 50,
        per_account: 50,
        window_ms: minute,
    });
}

struct Instance {
    name: &'static str,
    server: TestServer,
    gate: SyncGate,
    relay: RedisRelay,
}

impl Instance {
    async fn start(
        name: &'static str,
        schema: &TestSchema,
        redis: &RedisServer,
        prefix: &str,
        clock: &ManualClock,
    ) -> Instance {
        let stores = Stores::postgres(&schema.url, Some(&schema.name))
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "PostgreSQL at {} ({e}): set HOLDFAST_TEST_POSTGRES_URL (never skipped)",
                    schema.url
                )
            })
            .with_redis(&redis.url(), prefix)
            .await
            .unwrap_or_else(|e| panic!("the test's Redis at {}: {e}", redis.url()));
        let server = TestServer::start_with_stores(stores, clock.clone(), configure).await;
        let gate = SyncGate::new(&server.service, slow_gate());
        let relay = RedisRelay::start(server.service.revocations(), &redis.url(), prefix)
            .await
            .unwrap_or_else(|e| panic!("relay on the test's Redis at {}: {e}", redis.url()));
        Instance {
            name,
            server,
            gate,
            relay,
        }
    }

    async fn admit(&self, token: &str, proof: Option<&str>) -> Result<Principal, GateError> {
        let handshake = Handshake {
            access_token: token,
            proof,
            method: "GET",
            url: SYNC_URL,
        };
        bounded(
            &format!("admission on {}", self.name),
            REQUEST_BOUND,
            self.gate.admit(&handshake),
        )
        .await
    }

    async fn me(&self, token: &str) -> Reply {
        bounded("GET /auth/me", REQUEST_BOUND, self.server.me(token)).await
    }

    async fn refresh(&self, refresh: &str) -> Reply {
        bounded("POST /auth/refresh", REQUEST_BOUND, self.server.refresh(refresh)).await
    }

    async fn revoke(&self, token: &str, device_id: &str) -> Reply {
        bounded(
            "DELETE /auth/device",
            REQUEST_BOUND,
            self.server.revoke(token, device_id),
        )
        .await
    }

    async fn sign_in(&self, email: &str, password: &str, device_id: &str) -> Reply {
        let body = json!({ "email": email, "password": password, "deviceId": device_id });
        bounded(
            "POST /auth/signin",
            REQUEST_BOUND,
            self.server.post("/auth/signin", body),
        )
        .await
    }

    async fn sign_up(&self, email: &str) -> Session {
        bounded("POST /auth/signup", REQUEST_BOUND, self.server.sign_up(email)).await
    }

    async fn devices(&self, token: &str) -> Reply {
        bounded(
            "GET /auth/devices",
            REQUEST_BOUND,
            self.server.get_auth("/auth/devices", token),
        )
        .await
    }

    /// True once both of this instance's Redis stores write to Redis again.
    async fn stores_use_redis(&self, redis: &RedisServer, prefix: &str) -> bool {
        let stores = &self.server.stores;
        let probe = format!("probe-{}", uuid::Uuid::new_v4().simple());
        let limit = RateLimit {
            max: 1_000,
            window_ms: 60_000,
        };
        let now = self.server.clock.now_ms();
        let decision = bounded(
            "a rate-limit probe",
            REQUEST_BOUND,
            stores.rate_limits.hit(&probe, limit, now),
        )
        .await
        .expect("a rate-limit hit never fails for want of Redis");
        assert!(decision.allowed);
        let now_secs = self.server.clock.now_secs();
        let first = bounded(
            "a replay probe",
            REQUEST_BOUND,
            stores.replays.first_use(&probe, now_secs + 60, now_secs),
        )
        .await
        .expect("a replay check never fails for want of Redis");
        assert!(first, "a fresh probe is a first use");
        redis_has(redis, &format!("{prefix}:rl:{probe}")).await
            && redis_has(redis, &format!("{prefix}:replay:{probe}")).await
    }
}

/// A proof for the sync handshake, dated by the shared clock.
fn proof(key: &DeviceKey, access: &str, clock: &ManualClock) -> String {
    key.proof("GET", SYNC_URL, access, clock.now_secs())
}

fn tokens(reply: &Reply) -> (String, String) {
    let data = reply.data();
    let access = data["accessToken"].as_str().expect("accessToken").to_owned();
    let refresh = data["refreshToken"].as_str().expect("refreshToken").to_owned();
    (access, refresh)
}

/// Polls `done` every 20 ms until it holds, at most `bound` after `since`; the time from
/// `since` to then.
async fn time_until<F: Future<Output = bool>>(
    what: &str,
    since: Instant,
    bound: Duration,
    mut done: impl FnMut() -> F,
) -> Duration {
    loop {
        if done().await {
            return since.elapsed();
        }
        assert!(
            since.elapsed() < bound,
            "{what}: not within {bound:?} of Redis answering again"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_redis_restart_loses_no_committed_data_and_the_instances_recover_by_themselves() {
    let test_started = Instant::now();
    let mut redis = RedisServer::start();
    let schema = TestSchema::new();
    let prefix = format!("hft-restart-{}", uuid::Uuid::new_v4().simple());
    let clock = ManualClock::new(SystemClock.now_ms());
    let a = Instance::start("A", &schema, &redis, &prefix, &clock).await;
    let b = Instance::start("B", &schema, &redis, &prefix, &clock).await;

    // --- Before: an account with a keyed phone and keyless devices; fan-out works. ---
    let address = email("restart");
    let key = DeviceKey::generate();
    let phone = bounded(
        "sign-up",
        REQUEST_BOUND,
        a.server.sign_up_device(&address, "phone-1", &key),
    )
    .await;
    let laptop = Session::from_reply(a.sign_in(&address, PASSWORD, "laptop-1").await.expect_status(200));
    let tablet = Session::from_reply(b.sign_in(&address, PASSWORD, "tablet-1").await.expect_status(200));
    let desk = Session::from_reply(b.sign_in(&address, PASSWORD, "desk-1").await.expect_status(200));
    // A rotation committed before the outage.
    let (laptop_access, laptop_refresh) = tokens(&b.refresh(&laptop.refresh).await.expect_status(200));
    a.admit(&phone.access, Some(&proof(&key, &phone.access, &clock)))
        .await
        .expect("the keyed phone is admitted with a proof");

    let tablet_on_b = b.admit(&tablet.access, None).await.expect("tablet admitted on B");
    let tablet_watch = tokio::spawn(b.gate.watch(&tablet_on_b));
    let started = Instant::now();
    a.revoke(&laptop_access, "tablet-1").await.expect_status(200);
    let closed = bounded("the tablet's watch on B", Duration::from_secs(5), tablet_watch)
        .await
        .expect("watch task");
    assert_eq!(closed, Closed::DeviceRevoked);
    println!(
        "before the restart: revoke on A closed the watch on B after {:?}",
        started.elapsed()
    );

    let desk_on_b = b.admit(&desk.access, None).await.expect("desk admitted on B");
    let desk_watch = {
        let watch = b.gate.watch(&desk_on_b);
        tokio::spawn(async move { (watch.await, Instant::now()) })
    };

    // --- Redis dies. ---
    redis.kill();
    let outage_started = Instant::now();
    let mut slowest = Duration::ZERO;
    let mut timed = |started: Instant| slowest = slowest.max(started.elapsed());

    // Routes that need only PostgreSQL work, on both instances.
    let started = Instant::now();
    a.me(&laptop_access).await.expect_status(200);
    b.me(&laptop_access).await.expect_status(200);
    timed(started);
    // Refresh rotation (rate limited: counted in memory) is committed.
    let started = Instant::now();
    let (outage_access, outage_refresh) = tokens(&a.refresh(&laptop_refresh).await.expect_status(200));
    timed(started);
    b.me(&outage_access).await.expect_status(200);
    // So is a sign-up.
    let started = Instant::now();
    let outage_address = email("outage");
    let newcomer = b.sign_up(&outage_address).await;
    timed(started);
    // A bound token's proof (replay cache in memory) is accepted on bearer routes.
    let started = Instant::now();
    a.me(&phone.access).await.expect_status(200);
    timed(started);

    // A revocation is committed, but cannot reach B: B's watch on the desk stays open (its
    // re-check is a minute away) until Redis is back.
    a.revoke(&outage_access, "desk-1").await.expect_status(200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !desk_watch.is_finished(),
        "with Redis down nothing carries the revocation to B"
    );

    // Rate limits hold per instance: A refuses the fifth attempt it saw...
    let mut last_wrong_sign_in = Duration::ZERO;
    for attempt in 1..=4 {
        let started = Instant::now();
        a.sign_in(&address, "not the password", "laptop-1")
            .await
            .expect_error(401, "INVALID_CREDENTIALS");
        timed(started);
        last_wrong_sign_in = started.elapsed();
        println!("outage: wrong sign-in {attempt} on A answered after {last_wrong_sign_in:?}");
    }
    let started = Instant::now();
    let refused = a.sign_in(&address, PASSWORD, "laptop-1").await;
    timed(started);
    refused.expect_error(429, ErrorCode::RateLimited.as_str());
    assert!(refused.header("retry-after").is_some(), "{refused:?}");
    // ...which B did not see: it signs the account in on a new device (committed).
    let started = Instant::now();
    let watcher = Session::from_reply(b.sign_in(&address, PASSWORD, "watch-1").await.expect_status(200));
    timed(started);

    // Proofs are single-use per instance: a replay on A is refused, but B, which cannot
    // ask Redis, has not seen it.
    let outage_proof = proof(&key, &phone.access, &clock);
    let started = Instant::now();
    a.admit(&phone.access, Some(&outage_proof))
        .await
        .expect("a fresh proof is admitted on A");
    timed(started);
    let replayed = a
        .admit(&phone.access, Some(&outage_proof))
        .await
        .expect_err("the same proof again on A");
    assert_eq!(replayed.code, ErrorCode::ProofInvalid, "{replayed}");
    assert!(replayed.message.contains("already used"), "{replayed}");
    b.admit(&phone.access, Some(&outage_proof))
        .await
        .expect("degraded to per instance: B has not seen the proof");

    // Long enough for the relay's backoff to reach its cap.
    tokio::time::sleep(MIN_OUTAGE.saturating_sub(outage_started.elapsed())).await;
    let outage = outage_started.elapsed();
    println!("outage: {outage:?}, slowest request {slowest:?} (bound {REQUEST_BOUND:?})");
    assert!(
        slowest <= CALL_TIMEOUT * 3,
        "a request waited {slowest:?} for a Redis that was down"
    );
    assert!(
        last_wrong_sign_in < CALL_TIMEOUT,
        "once Redis is known to be down, calls answer from memory without waiting for it \
         ({last_wrong_sign_in:?})"
    );
    assert_eq!((a.relay.resubscriptions(), b.relay.resubscriptions()), (0, 0));

    // --- Redis comes back, empty. ---
    redis.restart();
    let restarted = Instant::now();
    let size: i64 = redis::cmd("DBSIZE")
        .query_async(&mut admin(&redis).await)
        .await
        .expect("DBSIZE");
    assert_eq!(size, 0, "restarted without persistence, Redis is empty");

    // Each instance's stores use Redis again once a probe finds it answering; the relays
    // re-subscribe at their next backoff step. Both measured from the restart, side by side.
    let (stores_back, relays_back) = tokio::join!(
        time_until(
            "both instances' rate limits and replay caches in Redis",
            restarted,
            STORE_RECOVERY_BOUND,
            || async {
                a.stores_use_redis(&redis, &prefix).await && b.stores_use_redis(&redis, &prefix).await
            },
        ),
        time_until(
            "both relays re-subscribed",
            restarted,
            RELAY_RECOVERY_BOUND,
            || async { a.relay.resubscriptions() >= 1 && b.relay.resubscriptions() >= 1 }
        ),
    );
    // The revocation made during the outage reaches B's open watch: B's relay re-subscribed
    // and re-checks everything (A also owes the others a Resync).
    let (closed, at) = bounded(
        "the desk's watch on B after the restart",
        RELAY_RECOVERY_BOUND,
        desk_watch,
    )
    .await
    .expect("watch task");
    assert_eq!(closed, Closed::DeviceRevoked);
    assert!(at > restarted, "the desk's watch closed while Redis was down");
    let desk_closed = at.duration_since(restarted);
    println!(
        "RECOVERY after the restart: both instances' stores in Redis after {stores_back:?}, both relays \
         re-subscribed after {relays_back:?}, the watch of the device revoked during the outage \
         closed on B after {desk_closed:?}"
    );
    assert!(
        desk_closed < RELAY_RECOVERY_BOUND,
        "the desk's watch closed after {desk_closed:?}"
    );
    assert_eq!(
        (a.relay.resubscriptions(), b.relay.resubscriptions()),
        (1, 1),
        "one re-subscription each"
    );

    // Fan-out works again: a revocation on A closes a new watch on B within a pub/sub hop.
    let watcher_on_b = b
        .admit(&watcher.access, None)
        .await
        .expect("watch-1 admitted on B");
    let watcher_watch = tokio::spawn(b.gate.watch(&watcher_on_b));
    let started = Instant::now();
    a.revoke(&outage_access, "watch-1").await.expect_status(200);
    let closed = bounded("watch-1's watch on B", Duration::from_secs(5), watcher_watch)
        .await
        .expect("watch task");
    assert_eq!(closed, Closed::DeviceRevoked);
    let fan_out = started.elapsed();
    println!("after the restart: revoke on A closed a new watch on B after {fan_out:?}");
    assert!(fan_out < Duration::from_secs(2), "fan-out took {fan_out:?}");

    // Proofs are single-use across instances again.
    let fresh = proof(&key, &phone.access, &clock);
    a.admit(&phone.access, Some(&fresh))
        .await
        .expect("a fresh proof on A");
    let replayed = b
        .admit(&phone.access, Some(&fresh))
        .await
        .expect_err("the same proof on B is a replay again");
    assert_eq!(replayed.code, ErrorCode::ProofInvalid, "{replayed}");
    assert!(replayed.message.contains("already used"), "{replayed}");

    // Nothing committed was lost: sessions and rotations from before and during the outage.
    for instance in [&a, &b] {
        instance.me(&outage_access).await.expect_status(200);
        instance.me(&phone.access).await.expect_status(200);
        instance.me(&newcomer.access).await.expect_status(200);
    }
    for (instance, refresh) in [
        (&b, &outage_refresh),
        (&a, &newcomer.refresh),
        (&b, &phone.refresh),
    ] {
        let (access, _) = tokens(&instance.refresh(refresh).await.expect_status(200));
        instance.me(&access).await.expect_status(200);
    }
    // The devices revoked before, during and after the outage stay revoked.
    let devices = a.devices(&phone.access).await.expect_status(200);
    let revoked = |id: &str| {
        devices
            .data()
            .as_array()
            .expect("a device list")
            .iter()
            .find(|device| device["id"] == id)
            .unwrap_or_else(|| panic!("device {id} is listed: {}", devices.text))["revoked"]
            .as_bool()
            .expect("revoked flag")
    };
    assert!(
        revoked("tablet-1") && revoked("desk-1") && revoked("watch-1"),
        "{}",
        devices.text
    );
    assert!(!revoked("phone-1") && !revoked("laptop-1"), "{}", devices.text);
    for (session, device) in [(&tablet, "tablet-1"), (&desk, "desk-1")] {
        for instance in [&a, &b] {
            let refused = instance.admit(&session.access, None).await.expect_err(device);
            assert_eq!(refused.code, ErrorCode::DeviceRevoked, "{device}: {refused}");
            for reply in [
                instance.me(&session.access).await,
                instance.refresh(&session.refresh).await,
            ] {
                assert!(
                    matches!(reply.code(), Some("TOKEN_REVOKED" | "DEVICE_REVOKED")),
                    "{device}: {}",
                    reply.text
                );
            }
        }
    }

    // The rate limit counts across instances again (on an account neither instance counted
    // in memory): four failures split over A and B use up the shared window.
    for instance in [&a, &b, &a, &b] {
        instance
            .sign_in(&outage_address, "not the password", "somewhere-1")
            .await
            .expect_error(401, "INVALID_CREDENTIALS");
    }
    for instance in [&a, &b] {
        instance
            .sign_in(&outage_address, PASSWORD, "somewhere-1")
            .await
            .expect_error(429, ErrorCode::RateLimited.as_str());
    }
    let counted: i64 = redis::cmd("ZCARD")
        .arg(format!(
            "{prefix}:rl:signin:fail:{}",
            holdfast_server_kit::guards::digest_key(newcomer.user_id())
        ))
        .query_async(&mut admin(&redis).await)
        .await
        .expect("ZCARD");
    assert_eq!(counted, 4, "the four failures are counted in Redis");

    let total = test_started.elapsed();
    println!("whole test: {total:?}");
    assert!(total < Duration::from_secs(30), "the test took {total:?}");
}
