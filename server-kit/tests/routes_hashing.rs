//! Password hashing runs off the async executor with bounded concurrency: a burst of
//! sign-ins queues for the hashing workers while every other request is still served.
//! Checked by ordering, not timing, on a single-threaded runtime that the server and the
//! client share: if a hash ran on the executor thread, each `/me` round trip would wait
//! behind every queued hash, and none would finish while sign-ins were still in flight.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use holdfast_server_kit::passwords::Argon2Params;
use serde_json::json;
use support::{PASSWORD, TestServer, email};

#[tokio::test(flavor = "current_thread")]
async fn a_burst_of_sign_ins_does_not_starve_other_requests() {
    // Real Argon2id cost and one hashing worker: 12 sign-ins take a while in sequence.
    let server = Arc::new(
        TestServer::start(|config| {
            config.argon2 = Argon2Params::default();
            config.hashing_concurrency = 1;
        })
        .await,
    );
    let user = email("burst");
    let session = server.sign_up(&user).await;

    let finished = Arc::new(AtomicUsize::new(0));
    let burst = 12;
    let mut sign_ins = Vec::new();
    for _ in 0..burst {
        let (server, finished, user) = (server.clone(), finished.clone(), user.clone());
        sign_ins.push(tokio::spawn(async move {
            let reply = server
                .post("/auth/signin", json!({ "email": user, "password": PASSWORD }))
                .await;
            finished.fetch_add(1, Ordering::SeqCst);
            reply.status
        }));
    }
    // While the sign-ins queue for the single hashing worker, bearer requests go through.
    let mut answered_during_burst = 0;
    for _ in 0..20 {
        server.me(&session.access).await.expect_status(200);
        if finished.load(Ordering::SeqCst) < burst {
            answered_during_burst += 1;
        }
    }
    for sign_in in sign_ins {
        assert_eq!(sign_in.await.unwrap(), 200);
    }
    assert!(
        answered_during_burst >= 10,
        "only {answered_during_burst} of 20 /me requests were answered while sign-ins were in flight"
    );
}

/// A flood of sign-ins cannot make a legitimate one wait without bound: past the hashing
/// deadline a sign-in is refused with 503 `SERVICE_UNAVAILABLE` and `Retry-After`, bearer
/// routes answer meanwhile, and sign-ins work again once the flood is over.
#[tokio::test(flavor = "multi_thread")]
async fn sign_ins_behind_a_flood_are_refused_past_the_hashing_deadline() {
    let server = TestServer::start(|config| {
        config.hashing_concurrency = 1;
        // Far shorter than one hash with these parameters.
        config.hashing_max_wait = Some(std::time::Duration::from_millis(1));
        config.argon2 = holdfast_server_kit::passwords::Argon2Params {
            memory_kib: 8 * 1024,
            iterations: 2,
            parallelism: 1,
        };
    })
    .await;
    let address = support::email("flooded");
    let session = server.sign_up(&address).await;
    let flood: Vec<_> = (0..24)
        .map(|n| {
            let client = server.client.clone();
            let url = server.url("/auth/signin");
            tokio::spawn(async move {
                support::Reply::read(client.post(url).json(&serde_json::json!({
                    "email": format!("nobody-{n}@example.com"),
                    "password": "wrong password",
                })))
                .await
            })
        })
        .collect();
    server.me(&session.access).await.expect_status(200);
    let mut busy = 0;
    for reply in flood {
        let reply = reply.await.unwrap();
        match reply.status {
            401 => reply.expect_error(401, "INVALID_CREDENTIALS"),
            _ => {
                reply.expect_error(503, "SERVICE_UNAVAILABLE");
                assert_eq!(reply.header("retry-after"), Some("1"));
                busy += 1;
            }
        }
    }
    assert!(
        busy > 0,
        "24 sign-ins at once on one hashing slot: some waited past 1 ms"
    );
    server
        .post(
            "/auth/signin",
            serde_json::json!({ "email": address, "password": support::PASSWORD }),
        )
        .await
        .expect_status(200);
}
