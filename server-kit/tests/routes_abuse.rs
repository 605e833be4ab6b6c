//! What strangers can do to a deployment through the unauthenticated routes (issue 12):
//! grow the rate-limit store with keys of their choosing, lock a victim's account out with
//! wrong passwords, or block a device's re-login by naming it. Over loopback HTTP against
//! the real routes; addresses are simulated through a trusted proxy's `X-Forwarded-For`.
//! Time moves only through the `ManualClock`.

mod support;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use holdfast_server_kit::config::{AccountLockout, RateLimits};
use holdfast_server_kit::store::{RateDecision, RateLimit, RateLimitStore, StoreError};
use holdfast_server_kit::{Stores, guards::MAX_STORED_KEY_LEN};
use reqwest::Method;
use serde_json::{Value, json};
use support::{DeviceKey, PASSWORD, Reply, TestServer, email};

const MINUTE: i64 = 60_000;

fn limit(max: u32) -> Option<RateLimit> {
    Some(RateLimit {
        max,
        window_ms: MINUTE,
    })
}

/// A rate-limit store that remembers every key something was stored under.
struct Recording {
    inner: Arc<dyn RateLimitStore>,
    stored: Mutex<BTreeSet<String>>,
}

impl Recording {
    fn keys(&self) -> BTreeSet<String> {
        self.stored.lock().unwrap().clone()
    }
}

#[async_trait]
impl RateLimitStore for Recording {
    async fn hit(&self, key: &str, limit: RateLimit, now_ms: i64) -> Result<RateDecision, StoreError> {
        let decision = self.inner.hit(key, limit, now_ms).await?;
        if decision.allowed {
            self.stored.lock().unwrap().insert(key.to_owned());
        }
        Ok(decision)
    }
    async fn reset(&self, key: &str) -> Result<(), StoreError> {
        self.inner.reset(key).await
    }
    async fn block(&self, key: &str, until_ms: i64) -> Result<(), StoreError> {
        self.stored.lock().unwrap().insert(key.to_owned());
        self.inner.block(key, until_ms).await
    }
    async fn blocked_until(&self, key: &str, now_ms: i64) -> Result<Option<i64>, StoreError> {
        self.inner.blocked_until(key, now_ms).await
    }
    async fn purge_expired_limits(&self, now_ms: i64) -> Result<u64, StoreError> {
        self.inner.purge_expired_limits(now_ms).await
    }
}

/// Asserts a 429 `RATE_LIMITED` with a `Retry-After`.
#[track_caller]
fn rate_limited(reply: &Reply) {
    reply.expect_error(429, "RATE_LIMITED");
    assert!(reply.header("retry-after").is_some(), "Retry-After on a 429");
}

/// POSTs `body` to `path` as coming through the trusted proxy for `client`.
async fn post_from(server: &TestServer, client: &str, path: &str, body: &Value) -> Reply {
    Reply::read(
        server
            .request(Method::POST, path)
            .header("x-forwarded-for", client)
            .json(body),
    )
    .await
}

fn trusted_loopback() -> Vec<std::net::IpAddr> {
    vec!["127.0.0.1".parse().unwrap()]
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_and_malformed_requests_store_nothing_and_keys_stay_short() {
    let dir = tempfile::tempdir().unwrap();
    let mut stores = Stores::sqlite(dir.path().join("limits.db")).unwrap();
    let recording = Arc::new(Recording {
        inner: stores.rate_limits.clone(),
        stored: Mutex::new(BTreeSet::new()),
    });
    stores.rate_limits = recording.clone();
    let clock =
        holdfast_server_kit::clock::ManualClock::new(holdfast_server_kit::clock::SystemClock.now_ms());
    use holdfast_server_kit::clock::Clock;
    let server = TestServer::start_with_stores(stores, clock, |config| {
        config.rate_limits = RateLimits {
            sign_in: limit(5),
            challenge: limit(5),
            verify: limit(5),
            ..RateLimits::OFF
        };
        config.account_lockout = Some(AccountLockout::default());
    })
    .await;

    // A new 60 KB email each time, with an invalid device id: 400 until the address's
    // budget is spent, then 429.
    for round in 0..40 {
        let body = json!({
            "email": format!("{round}{}@example.com", "a".repeat(60_000)),
            "password": "wrong password",
            "deviceId": "not a device id",
        });
        let reply = server.post("/auth/signin", body).await;
        if round < 5 {
            reply.expect_error(400, "VALIDATION_ERROR");
        } else {
            rate_limited(&reply);
        }
    }
    // New, maximally long device ids on the device routes.
    for round in 0..40 {
        let device = format!("{round:03}{}", "d".repeat(125));
        let reply = server
            .post("/auth/device/challenge", json!({ "deviceId": device }))
            .await;
        if round < 5 {
            reply.expect_error(404, "DEVICE_NOT_FOUND");
        } else {
            rate_limited(&reply);
        }
        let reply = server.verify(&device, &"a".repeat(64), "garbage").await;
        if round < 5 {
            reply.expect_error(400, "VALIDATION_ERROR");
        } else {
            rate_limited(&reply);
        }
    }
    // Malformed JSON counts against the address too.
    rate_limited(
        &Reply::read(
            server
                .request(Method::POST, "/auth/signin")
                .header("content-type", "application/json")
                .body("{"),
        )
        .await,
    );

    let keys = recording.keys();
    // One key per route for the address, and per challenge that passed it one for the
    // device and address and one for the device's ceiling: 3 + 2 * 5.
    assert!(keys.len() <= 13, "{} keys stored: {keys:?}", keys.len());
    for key in &keys {
        assert!(
            key.len() <= MAX_STORED_KEY_LEN,
            "a {}-byte key was stored",
            key.len()
        );
    }
}

/// Signs in `email` from `client` with `password`, with an optional `DPoP` proof by `key`
/// for device `device_id`.
async fn sign_in_from(
    server: &TestServer,
    client: &str,
    email: &str,
    password: &str,
    device: Option<(&str, &DeviceKey)>,
) -> Reply {
    let mut body = json!({ "email": email, "password": password });
    let mut request = server
        .request(Method::POST, "/auth/signin")
        .header("x-forwarded-for", client);
    if let Some((device_id, key)) = device {
        body["deviceId"] = json!(device_id);
        let proof = key.token_proof(&server.url("/auth/signin"), server.now_secs());
        request = request.header("DPoP", proof);
    }
    Reply::read(request.json(&body)).await
}

#[tokio::test(flavor = "multi_thread")]
async fn strangers_guessing_a_password_do_not_lock_its_owner_out() {
    let server = TestServer::start(|config| {
        config.trusted_proxies = trusted_loopback();
        config.rate_limits.sign_in = limit(10);
        config.account_lockout = Some(AccountLockout {
            per_address: 3,
            per_account: 6,
            window_ms: 15 * MINUTE,
        });
    })
    .await;
    let victim = email("victim");
    let key = DeviceKey::generate();
    server.sign_up_device(&victim, "victims-phone", &key).await;
    let wrong = "wrong password";

    // One address gets `per_address` guesses at this account, then waits out the window.
    for _ in 0..3 {
        sign_in_from(&server, "10.0.0.1", &victim, wrong, None)
            .await
            .expect_error(401, "INVALID_CREDENTIALS");
    }
    rate_limited(&sign_in_from(&server, "10.0.0.1", &victim, wrong, None).await);
    // ... which costs the owner nothing.
    sign_in_from(&server, "10.9.9.9", &victim, PASSWORD, None)
        .await
        .expect_status(200);

    // Ten more guesses from other addresses: the account collects `per_account` failures
    // and is guarded.
    for client in ["10.0.0.2", "10.0.0.3", "10.0.0.4"] {
        sign_in_from(&server, client, &victim, wrong, None)
            .await
            .expect_error(401, "INVALID_CREDENTIALS");
    }
    for client in ["10.0.0.2", "10.0.0.3", "10.0.0.4"] {
        rate_limited(&sign_in_from(&server, client, &victim, wrong, None).await);
    }
    // The owner, from an address with no failures, still signs in; so does the owner's
    // device proving its key from an address strangers used.
    sign_in_from(&server, "10.9.9.8", &victim, PASSWORD, None)
        .await
        .expect_status(200);
    rate_limited(&sign_in_from(&server, "10.0.0.2", &victim, PASSWORD, None).await);
    sign_in_from(
        &server,
        "10.0.0.2",
        &victim,
        PASSWORD,
        Some(("victims-phone", &key)),
    )
    .await
    .expect_status(200);
    // A proof by another key, or for another device, does not pass.
    rate_limited(
        &sign_in_from(
            &server,
            "10.0.0.3",
            &victim,
            PASSWORD,
            Some(("victims-phone", &DeviceKey::generate())),
        )
        .await,
    );
    // Brute force stays expensive: a guarded account gives each new address one guess.
    sign_in_from(&server, "10.0.0.5", &victim, wrong, None)
        .await
        .expect_error(401, "INVALID_CREDENTIALS");
    rate_limited(&sign_in_from(&server, "10.0.0.5", &victim, wrong, None).await);

    // Once the window passes, everything is forgotten.
    server.clock.advance_ms(15 * MINUTE + 1);
    sign_in_from(&server, "10.0.0.2", &victim, PASSWORD, None)
        .await
        .expect_status(200);
}

#[tokio::test(flavor = "multi_thread")]
async fn strangers_naming_a_device_do_not_block_its_re_login() {
    let server = TestServer::start(|config| {
        config.trusted_proxies = trusted_loopback();
        config.rate_limits.challenge = limit(3);
        config.rate_limits.verify = limit(3);
    })
    .await;
    let key = DeviceKey::generate();
    let session = server.sign_up_device(&email("owner"), "phone", &key).await;
    let anonymous = json!({ "deviceId": "phone" });

    // Anonymous challenges naming the device from twelve addresses: each address has its
    // own budget, and the device's anonymous ceiling (ten times the limit) is reached.
    for n in 0..12 {
        let client = format!("10.0.1.{n}");
        for _ in 0..3 {
            let reply = post_from(&server, &client, "/auth/device/challenge", &anonymous).await;
            if reply.status != 200 {
                rate_limited(&reply);
            }
        }
        rate_limited(&post_from(&server, &client, "/auth/device/challenge", &anonymous).await);
    }
    rate_limited(&post_from(&server, "10.0.2.1", "/auth/device/challenge", &anonymous).await);
    // Garbage verifies naming the device, from as many addresses.
    let garbage = json!({ "deviceId": "phone", "challenge": "a".repeat(64), "signature": "x" });
    for n in 0..12 {
        let client = format!("10.0.3.{n}");
        for _ in 0..3 {
            post_from(&server, &client, "/auth/device/verify", &garbage)
                .await
                .expect_error(400, "VALIDATION_ERROR");
        }
    }

    // The owner, with a bearer token, from its own address, still re-logs in.
    let reply = Reply::read(
        server
            .bearer_request(Method::POST, "/auth/device/challenge", &session.access)
            .header("x-forwarded-for", "10.0.9.9")
            .json(&anonymous),
    )
    .await
    .expect_status(200);
    let challenge = reply.data()["challenge"].as_str().unwrap().to_owned();
    let body = json!({ "deviceId": "phone", "challenge": challenge, "signature": key.sign(&challenge) });
    post_from(&server, "10.0.9.9", "/auth/device/verify", &body)
        .await
        .expect_status(200);
}

fn file_size(path: &std::path::Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// The bound README "Limits" states: 100,000 requests from one address, each naming a new
/// account or device, at the default limits, against a SQLite file. Half an hour of the
/// server's time passes over the run (18 ms a request) and the maintenance purge runs each
/// minute, so windows expire and come back as they would under a steady attack. Prints the
/// growth of the database (main file and WAL).
///
/// `cargo test --release -p holdfast-server-kit --test routes_abuse -- --ignored --nocapture storage_growth`
#[tokio::test(flavor = "multi_thread")]
#[ignore = "a measurement: 100,000 requests"]
async fn storage_growth_from_100000_distinct_key_requests() {
    use holdfast_server_kit::clock::{Clock, ManualClock, SystemClock};
    const REQUESTS: usize = 100_000;
    const STEP_MS: i64 = 18;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("growth.db");
    let stores = Stores::sqlite(&path).unwrap();
    let clock = ManualClock::new(SystemClock.now_ms());
    let server = TestServer::start_with_stores(stores, clock, |config| {
        config.rate_limits = RateLimits::default();
        config.ip_block = Some(Default::default());
        config.account_lockout = Some(AccountLockout::default());
    })
    .await;
    // A known account and device, so the routes do their full work when allowed.
    server
        .sign_up_device(&email("known"), "known-device", &DeviceKey::generate())
        .await;
    server.service.purge_expired().await.unwrap();
    let wal = dir.path().join("growth.db-wal");
    let (main_before, wal_before) = (file_size(&path), file_size(&wal));
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    let mut last_purge = server.now_ms();
    for n in 0..REQUESTS {
        let reply = match n % 4 {
            // A new 200-character email, a wrong password and a valid device id: the
            // password is checked and the failure counted for that account.
            0 => {
                let body = json!({
                    "email": format!("{n:08}{}@example.com", "e".repeat(180)),
                    "password": "wrong password",
                    "deviceId": format!("dev-{n}"),
                });
                server.post("/auth/signin", body).await
            }
            // A new 2 KB email and an invalid device id.
            1 => {
                let body = json!({
                    "email": format!("{n:08}{}@example.com", "e".repeat(2_000)),
                    "password": "wrong password",
                    "deviceId": "not a device id",
                });
                server.post("/auth/signin", body).await
            }
            2 => {
                let device = format!("{n:08}{}", "d".repeat(120));
                server
                    .post("/auth/device/challenge", json!({ "deviceId": device }))
                    .await
            }
            _ => {
                let device = format!("{n:08}{}", "d".repeat(120));
                server.verify(&device, &"a".repeat(64), "garbage").await
            }
        };
        *statuses.entry(reply.status).or_default() += 1;
        server.clock.advance_ms(STEP_MS);
        if server.now_ms() - last_purge >= MINUTE {
            server.service.purge_expired().await.unwrap();
            last_purge = server.now_ms();
        }
    }
    let (main_after, wal_after) = (file_size(&path), file_size(&wal));
    println!(
        "{REQUESTS} requests over {} s of server time: statuses {statuses:?}; database file {main_before} -> {main_after} bytes, WAL {wal_before} -> {wal_after} bytes",
        REQUESTS as i64 * STEP_MS / 1000,
    );
    // The WAL is checkpointed at SQLite's default 1,000 pages (4 MiB) and reused.
    assert!(main_after.saturating_sub(main_before) < 1024 * 1024);
    assert!(wal_after <= 4 * 1024 * 1024 + 64 * 1024);
}
