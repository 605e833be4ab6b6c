//! `POST /auth/device/challenge` and `POST /auth/device/verify` over loopback HTTP: the
//! device key as a re-login credential (PROTOCOL sections 4 and 6.4).

mod support;

use holdfast_protocol::TokenType;
use serde_json::json;
use support::{DeviceKey, Session, TestServer, claims, email};

/// A user with one keyed device `device_id`.
async fn keyed(server: &TestServer, device_id: &str) -> (Session, DeviceKey) {
    let key = DeviceKey::generate();
    let session = server.sign_up_device(&email(device_id), device_id, &key).await;
    (session, key)
}

#[tokio::test(flavor = "multi_thread")]
async fn challenge_with_a_bearer_is_for_the_callers_own_devices() {
    let server = TestServer::start(|_| {}).await;
    let (alice, _) = keyed(&server, "alice-phone").await;
    let (_, _) = keyed(&server, "bob-phone").await;
    let first = server.challenge("alice-phone", Some(&alice.access)).await;
    assert_ne!(
        server.challenge("alice-phone", Some(&alice.access)).await,
        first,
        "fresh every time"
    );
    let reply = server
        .post_auth(
            "/auth/device/challenge",
            &alice.access,
            json!({ "deviceId": "bob-phone" }),
        )
        .await;
    reply.expect_error(404, "DEVICE_NOT_FOUND");
    let reply = server
        .post_auth(
            "/auth/device/challenge",
            &alice.access,
            json!({ "deviceId": "nope" }),
        )
        .await;
    reply.expect_error(404, "DEVICE_NOT_FOUND");
    let reply = server
        .post_auth(
            "/auth/device/challenge",
            "bad.token.here",
            json!({ "deviceId": "alice-phone" }),
        )
        .await;
    reply.expect_error(401, "TOKEN_INVALID");
}

#[tokio::test(flavor = "multi_thread")]
async fn challenge_without_a_bearer_needs_a_live_keyed_device() {
    let server = TestServer::start(|_| {}).await;
    let (session, _) = keyed(&server, "phone").await;
    server.challenge("phone", None).await;
    server
        .post("/auth/device/challenge", json!({ "deviceId": "unknown" }))
        .await
        .expect_error(404, "DEVICE_NOT_FOUND");
    let keyless = server
        .sign_in_device(session.user["email"].as_str().unwrap(), "keyless")
        .await;
    for bearer in [None, Some(keyless.access.as_str())] {
        let body = json!({ "deviceId": "keyless" });
        let reply = match bearer {
            Some(token) => server.post_auth("/auth/device/challenge", token, body).await,
            None => server.post("/auth/device/challenge", body).await,
        };
        reply.expect_error(400, "VALIDATION_ERROR");
    }
    server
        .post("/auth/device/challenge", json!({ "deviceId": "" }))
        .await
        .expect_error(400, "VALIDATION_ERROR");
}

#[tokio::test(flavor = "multi_thread")]
async fn challenge_for_a_revoked_device_is_refused() {
    let server = TestServer::start(|_| {}).await;
    let (session, key) = keyed(&server, "phone").await;
    let address = session.user["email"].as_str().unwrap();
    let tablet = server
        .sign_in_with(
            json!({ "email": address, "password": support::PASSWORD, "deviceId": "tablet",
                               "devicePublicKey": DeviceKey::generate().jwk() }),
        )
        .await;
    let pending = server.challenge("phone", None).await;
    server.revoke(&tablet.access, "phone").await.expect_status(200);
    server
        .post("/auth/device/challenge", json!({ "deviceId": "phone" }))
        .await
        .expect_error(403, "DEVICE_REVOKED");
    let reply = server
        .post_auth(
            "/auth/device/challenge",
            &tablet.access,
            json!({ "deviceId": "phone" }),
        )
        .await;
    reply.expect_error(403, "DEVICE_REVOKED");
    // A challenge issued before the revocation does not get the device back in.
    server
        .verify("phone", &pending, &key.sign(&pending))
        .await
        .expect_error(403, "DEVICE_REVOKED");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_valid_signature_signs_the_owner_in_on_that_device() {
    let server = TestServer::start(|_| {}).await;
    let (session, key) = keyed(&server, "phone").await;
    let challenge = server.challenge("phone", Some(&session.access)).await;
    server.clock.advance_ms(59_000);
    let reply = server
        .verify("phone", &challenge, &key.sign(&challenge))
        .await
        .expect_status(200);
    let tokens = reply.data()["tokens"].as_object().expect("tokens");
    let mut members: Vec<_> = tokens.keys().map(String::as_str).collect();
    members.sort_unstable();
    assert_eq!(members, ["accessToken", "deviceCredential", "refreshToken"]);
    assert_eq!(reply.data().as_object().unwrap().len(), 1);

    let access = claims(tokens["accessToken"].as_str().unwrap());
    let refresh = claims(tokens["refreshToken"].as_str().unwrap());
    let credential = claims(tokens["deviceCredential"].as_str().unwrap());
    assert_eq!(
        (access.token_type, refresh.token_type),
        (TokenType::Access, TokenType::Refresh)
    );
    assert_eq!(credential.token_type, TokenType::DeviceCredential);
    for claims in [&access, &refresh, &credential] {
        assert_eq!(
            (claims.sub.as_str(), claims.dev.as_str()),
            (session.user_id(), "phone")
        );
    }
    assert_eq!(access.cnf.unwrap().jkt, key.thumbprint());
    assert_eq!(refresh.cnf.unwrap().jkt, key.thumbprint());
    assert_eq!(credential.dpk, Some(key.thumbprint()));
    assert_ne!(refresh.fam, claims(&session.refresh).fam, "a new session");

    let me = server
        .me(tokens["accessToken"].as_str().unwrap())
        .await
        .expect_status(200);
    assert_eq!(me.data(), &session.user);
    let device = server.stores.devices.find_device("phone").await.unwrap().unwrap();
    assert_eq!(
        device.last_seen_at_ms,
        server.now_ms(),
        "verify records the sighting"
    );
    server
        .refresh(tokens["refreshToken"].as_str().unwrap())
        .await
        .expect_status(200);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_challenge_is_single_use_and_lives_sixty_seconds() {
    let server = TestServer::start(|_| {}).await;
    let (_, key) = keyed(&server, "phone").await;
    let challenge = server.challenge("phone", None).await;
    server
        .verify("phone", &challenge, &key.sign(&challenge))
        .await
        .expect_status(200);
    server
        .verify("phone", &challenge, &key.sign(&challenge))
        .await
        .expect_error(401, "CHALLENGE_INVALID");

    let stale = server.challenge("phone", None).await;
    server.clock.advance_ms(61_000);
    server
        .verify("phone", &stale, &key.sign(&stale))
        .await
        .expect_error(401, "CHALLENGE_INVALID");

    let never_issued = "0".repeat(64);
    server
        .verify("phone", &never_issued, &key.sign(&never_issued))
        .await
        .expect_error(401, "CHALLENGE_INVALID");
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_verifies_of_one_challenge_succeed_once() {
    let server = TestServer::start(|_| {}).await;
    let (_, key) = keyed(&server, "phone").await;
    let challenge = server.challenge("phone", None).await;
    let body = json!({ "deviceId": "phone", "challenge": challenge, "signature": key.sign(&challenge) });
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let request = server
            .request(reqwest::Method::POST, "/auth/device/verify")
            .json(&body);
        tasks.spawn(support::Reply::read(request));
    }
    let mut successes = 0;
    while let Some(reply) = tasks.join_next().await {
        let reply = reply.expect("task");
        if reply.status == 200 {
            successes += 1;
        } else {
            reply.expect_error(401, "CHALLENGE_INVALID");
        }
    }
    assert_eq!(successes, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_challenge_named_with_another_device_is_not_burnt() {
    let server = TestServer::start(|_| {}).await;
    let (_, key_a) = keyed(&server, "device-a").await;
    let (_, key_b) = keyed(&server, "device-b").await;
    let challenge = server.challenge("device-a", None).await;
    // Kora burns the challenge here; Holdfast checks the binding before consuming it.
    let reply = server
        .verify("device-b", &challenge, &key_b.sign(&challenge))
        .await;
    reply.expect_error(401, "CHALLENGE_INVALID");
    server
        .verify("device-a", &challenge, &key_a.sign(&challenge))
        .await
        .expect_status(200);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signature_by_another_key_is_refused() {
    let server = TestServer::start(|_| {}).await;
    let (_, key) = keyed(&server, "phone").await;
    let challenge = server.challenge("phone", None).await;
    let thief = DeviceKey::generate();
    server
        .verify("phone", &challenge, &thief.sign(&challenge))
        .await
        .expect_error(401, "SIGNATURE_INVALID");
    // Signing the decoded bytes, or another challenge, is not signing this one.
    let fresh = server.challenge("phone", None).await;
    let other = server.challenge("phone", None).await;
    let decoded = hex::decode(&fresh).unwrap();
    server
        .verify("phone", &fresh, &key.sign_bytes(&decoded))
        .await
        .expect_error(401, "SIGNATURE_INVALID");
    server
        .verify("phone", &other, &key.sign(&fresh))
        .await
        .expect_error(401, "SIGNATURE_INVALID");
    let other = server.challenge("phone", None).await;
    server
        .verify("phone", &other, &key.sign(&other))
        .await
        .expect_status(200);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_der_signature_is_a_format_error_that_keeps_the_challenge() {
    let server = TestServer::start(|_| {}).await;
    let (_, key) = keyed(&server, "phone").await;
    let challenge = server.challenge("phone", None).await;
    let reply = server
        .verify("phone", &challenge, &key.sign_der(&challenge))
        .await;
    reply.expect_error(400, "VALIDATION_ERROR");
    assert!(reply.message().contains("DER"), "{}", reply.text);
    for malformed in ["", "!!!", "AAAA", &"A".repeat(87)] {
        server
            .verify("phone", &challenge, malformed)
            .await
            .expect_error(400, "VALIDATION_ERROR");
    }
    for bad_challenge in ["", "ABC", &challenge.to_uppercase(), &challenge[..63]] {
        server
            .verify("phone", bad_challenge, &key.sign(bad_challenge))
            .await
            .expect_error(400, "VALIDATION_ERROR");
    }
    server
        .verify("phone", &challenge, &key.sign(&challenge))
        .await
        .expect_status(200);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signature_in_padded_standard_base64_is_accepted() {
    let server = TestServer::start(|_| {}).await;
    let (_, key) = keyed(&server, "phone").await;
    for _ in 0..3 {
        let challenge = server.challenge("phone", None).await;
        let standard = key.sign(&challenge).replace('-', "+").replace('_', "/") + "==";
        server
            .verify("phone", &challenge, &standard)
            .await
            .expect_status(200);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_for_an_unknown_device_is_refused() {
    let server = TestServer::start(|_| {}).await;
    let key = DeviceKey::generate();
    let challenge = "a".repeat(64);
    server
        .verify("ghost", &challenge, &key.sign(&challenge))
        .await
        .expect_error(401, "CHALLENGE_INVALID");
    let reply = server
        .post(
            "/auth/device/verify",
            json!({ "deviceId": "ghost", "challenge": challenge }),
        )
        .await;
    reply.expect_error(400, "VALIDATION_ERROR");
}

#[tokio::test(flavor = "multi_thread")]
async fn silent_re_login_with_the_device_key_alone() {
    let server = TestServer::start(|_| {}).await;
    let address = email("silent");
    server.sign_up(&address).await;
    let session = server.sign_in_device(&address, "phone").await;
    let key = DeviceKey::generate();
    server
        .post_auth(
            "/auth/device/register",
            &session.access,
            json!({ "deviceId": "phone", "publicKey": key.jwk(), "name": "Phone" }),
        )
        .await
        .expect_status(201);
    // The app loses its tokens (wiped store, rejected refresh); the key survives.
    drop(session);
    server.clock.advance_ms(100 * 24 * 3600 * 1000);
    let challenge = server.challenge("phone", None).await;
    let reply = server
        .verify("phone", &challenge, &key.sign(&challenge))
        .await
        .expect_status(200);
    let access = reply.data()["tokens"]["accessToken"].as_str().unwrap();
    let me = server.me(access).await.expect_status(200);
    assert_eq!(me.data()["email"], address.as_str());
    let devices = server.get_auth("/auth/devices", access).await.expect_status(200);
    assert_eq!(devices.data().as_array().unwrap().len(), 2);
}
