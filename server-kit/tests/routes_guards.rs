//! Rate limits, temporary IP blocks and the client address over loopback HTTP (PROTOCOL
//! sections 2, 6.3 and 7). Time moves only through the `ManualClock`.

mod support;

use holdfast_server_kit::config::{AccountLockout, IpBlockPolicy, RateLimits};
use holdfast_server_kit::store::RateLimit;
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

/// Asserts a 429 `RATE_LIMITED` and returns its `Retry-After`, whole seconds.
#[track_caller]
fn rate_limited(reply: &Reply) -> u64 {
    reply.expect_error(429, "RATE_LIMITED");
    let retry_after = reply.header("retry-after").expect("Retry-After on a 429");
    let secs: u64 = retry_after
        .parse()
        .unwrap_or_else(|_| panic!("integer seconds: {retry_after}"));
    assert!(secs >= 1, "{secs}");
    secs
}

/// POSTs `body` to `path` as coming through a proxy for `client`.
async fn post_from(server: &TestServer, client: &str, path: &str, body: &Value) -> Reply {
    Reply::read(
        server
            .request(Method::POST, path)
            .header("x-forwarded-for", client)
            .json(body),
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_in_is_limited_until_the_window_passes() {
    let server = TestServer::start(|config| config.rate_limits.sign_in = limit(3)).await;
    let address = email("limited");
    server.sign_up(&address).await;
    let wrong = json!({ "email": address, "password": "wrong password" });
    for _ in 0..3 {
        server
            .post("/auth/signin", wrong.clone())
            .await
            .expect_error(401, "INVALID_CREDENTIALS");
    }
    server.clock.advance_ms(10_000);
    let correct = json!({ "email": address, "password": PASSWORD });
    let reply = server.post("/auth/signin", correct.clone()).await;
    assert_eq!(
        rate_limited(&reply),
        50,
        "the oldest attempt leaves the window in 50 s"
    );
    server.clock.advance_ms(50_001);
    server.post("/auth/signin", correct).await.expect_status(200);
}

#[tokio::test(flavor = "multi_thread")]
async fn every_guarded_route_is_limited() {
    let server = TestServer::start(|config| {
        config.rate_limits = RateLimits::uniform(RateLimit {
            max: 2,
            window_ms: MINUTE,
        })
    })
    .await;
    let key = DeviceKey::generate();
    let session = server.sign_up_device(&email("first"), "phone", &key).await;
    server.sign_up(&email("second")).await;
    rate_limited(
        &server
            .post(
                "/auth/signup",
                json!({ "email": email("third"), "password": PASSWORD }),
            )
            .await,
    );

    server.refresh("garbage").await.expect_error(401, "TOKEN_INVALID");
    server.refresh(&session.refresh).await.expect_status(200);
    rate_limited(&server.refresh(&session.refresh).await);

    let unknown = json!({ "deviceId": "unknown" });
    server
        .post("/auth/device/challenge", unknown.clone())
        .await
        .expect_error(404, "DEVICE_NOT_FOUND");
    let challenge = server.challenge("phone", None).await;
    rate_limited(&server.post("/auth/device/challenge", unknown).await);

    server
        .verify("phone", "not-a-challenge", "x")
        .await
        .expect_error(400, "VALIDATION_ERROR");
    server
        .verify("phone", &challenge, &key.sign(&challenge))
        .await
        .expect_status(200);
    rate_limited(&server.verify("phone", &challenge, &key.sign(&challenge)).await);

    // Bearer routes are not rate limited, and time restores every budget.
    server.me(&session.access).await.expect_status(200);
    server.clock.advance_ms(MINUTE);
    server.refresh("garbage").await.expect_error(401, "TOKEN_INVALID");
    server
        .post("/auth/device/challenge", json!({ "deviceId": "phone" }))
        .await
        .expect_status(200);
}

#[tokio::test(flavor = "multi_thread")]
async fn repeated_wrong_passwords_block_the_address() {
    let block_ms = 5 * MINUTE;
    let server = TestServer::start(|config| {
        config.ip_block = Some(IpBlockPolicy {
            max_failures: 3,
            window_ms: MINUTE,
            block_ms,
        });
    })
    .await;
    let address = email("blocked");
    let session = server.sign_up(&address).await;
    let wrong = json!({ "email": address, "password": "wrong password" });
    for _ in 0..3 {
        server
            .post("/auth/signin", wrong.clone())
            .await
            .expect_error(401, "INVALID_CREDENTIALS");
    }
    let correct = json!({ "email": address, "password": PASSWORD });
    let retry_after = rate_limited(&server.post("/auth/signin", correct.clone()).await);
    assert_eq!(retry_after, 300);
    rate_limited(
        &server
            .post(
                "/auth/signup",
                json!({ "email": email("new"), "password": PASSWORD }),
            )
            .await,
    );
    rate_limited(&server.refresh(&session.refresh).await);
    rate_limited(
        &server
            .post("/auth/device/challenge", json!({ "deviceId": "x" }))
            .await,
    );
    rate_limited(&server.verify("x", &"a".repeat(64), "x").await);
    // A session the address already holds keeps working on bearer routes.
    server.me(&session.access).await.expect_status(200);

    server.clock.advance_ms(block_ms - 1_000);
    let reply = server.post("/auth/signin", correct.clone()).await;
    assert_eq!(rate_limited(&reply), 1);
    server.clock.advance_ms(1_001);
    server.post("/auth/signin", correct).await.expect_status(200);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_signatures_and_refresh_reuse_count_as_failures() {
    let server = TestServer::start(|config| {
        config.ip_block = Some(IpBlockPolicy {
            max_failures: 2,
            window_ms: MINUTE,
            block_ms: MINUTE,
        });
    })
    .await;
    let key = DeviceKey::generate();
    let session = server.sign_up_device(&email("failures"), "phone", &key).await;
    let challenge = server.challenge("phone", None).await;
    let forged = DeviceKey::generate().sign(&challenge);
    server
        .verify("phone", &challenge, &forged)
        .await
        .expect_error(401, "SIGNATURE_INVALID");
    server.refresh(&session.refresh).await.expect_status(200);
    server.clock.advance_ms(31_000);
    server
        .refresh(&session.refresh)
        .await
        .expect_error(401, "REFRESH_REUSED");
    rate_limited(
        &server
            .post("/auth/device/challenge", json!({ "deviceId": "phone" }))
            .await,
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_budget() {
    let server = TestServer::start(|config| {
        config.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
        config.rate_limits.refresh = limit(2);
        config.rate_limits.sign_in = limit(3);
        config.account_lockout = Some(AccountLockout {
            per_address: 5,
            per_account: 3,
            window_ms: MINUTE,
        });
    })
    .await;
    let garbage = json!({ "refreshToken": "garbage" });
    for _ in 0..2 {
        post_from(&server, "10.0.0.1", "/auth/refresh", &garbage)
            .await
            .expect_error(401, "TOKEN_INVALID");
    }
    rate_limited(&post_from(&server, "10.0.0.1", "/auth/refresh", &garbage).await);
    // The right-most hop the proxy appended is the client, whatever the client wrote first.
    rate_limited(&post_from(&server, "10.0.0.2, 10.0.0.1", "/auth/refresh", &garbage).await);
    post_from(&server, "10.0.0.2", "/auth/refresh", &garbage)
        .await
        .expect_error(401, "TOKEN_INVALID");

    // Failures are also counted per account, so spreading guesses over addresses does not
    // help: once the account collected its ceiling, an address that failed is refused for it
    // (routes_abuse.rs covers the rest of the policy).
    let address = email("spread");
    server.sign_up(&address).await;
    let wrong = json!({ "email": address, "password": "wrong password" });
    for client in ["10.1.0.1", "10.1.0.2", "10.1.0.3"] {
        post_from(&server, client, "/auth/signin", &wrong)
            .await
            .expect_error(401, "INVALID_CREDENTIALS");
    }
    rate_limited(&post_from(&server, "10.1.0.1", "/auth/signin", &wrong).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_trusted_proxy_forwarded_for_is_ignored() {
    let server = TestServer::start(|config| {
        config.rate_limits.refresh = limit(2);
        config.ip_block = Some(IpBlockPolicy {
            max_failures: 1,
            window_ms: MINUTE,
            block_ms: MINUTE,
        });
    })
    .await;
    let garbage = json!({ "refreshToken": "garbage" });
    for client in ["10.0.0.1", "10.0.0.2"] {
        post_from(&server, client, "/auth/refresh", &garbage)
            .await
            .expect_error(401, "TOKEN_INVALID");
    }
    rate_limited(&post_from(&server, "10.0.0.3", "/auth/refresh", &garbage).await);

    // Nor does a spoofed header escape a block.
    let address = email("spoof");
    server.sign_up(&address).await;
    let wrong = json!({ "email": address, "password": "wrong password" });
    post_from(&server, "10.0.0.4", "/auth/signin", &wrong)
        .await
        .expect_error(401, "INVALID_CREDENTIALS");
    let correct = json!({ "email": address, "password": PASSWORD });
    rate_limited(&post_from(&server, "10.0.0.5", "/auth/signin", &correct).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn blocks_behind_a_trusted_proxy_are_per_forwarded_client() {
    let server = TestServer::start(|config| {
        config.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
        config.ip_block = Some(IpBlockPolicy {
            max_failures: 1,
            window_ms: MINUTE,
            block_ms: MINUTE,
        });
    })
    .await;
    let address = email("per-client");
    server.sign_up(&address).await;
    let wrong = json!({ "email": address, "password": "wrong password" });
    let correct = json!({ "email": address, "password": PASSWORD });
    post_from(&server, "10.0.0.1", "/auth/signin", &wrong)
        .await
        .expect_error(401, "INVALID_CREDENTIALS");
    rate_limited(&post_from(&server, "10.0.0.1", "/auth/signin", &correct).await);
    post_from(&server, "10.0.0.2", "/auth/signin", &correct)
        .await
        .expect_status(200);
}
