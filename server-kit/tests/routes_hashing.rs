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
