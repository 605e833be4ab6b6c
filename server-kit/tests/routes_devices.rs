//! `POST /auth/device/register` and `DELETE /auth/device/:id` over loopback HTTP
//! (PROTOCOL sections 2, 4 and 7).

mod support;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use holdfast_protocol::TokenType;
use serde_json::{Value, json};
use support::{DeviceKey, Reply, TestServer, claims, email};

async fn register(server: &TestServer, token: &str, device_id: &str, public_key: &str, name: &str) -> Reply {
    server
        .post_auth(
            "/auth/device/register",
            token,
            json!({ "deviceId": device_id, "publicKey": public_key, "name": name }),
        )
        .await
}

#[tokio::test(flavor = "multi_thread")]
async fn register_answers_201_with_the_device_and_a_credential() {
    let server = TestServer::start(|_| {}).await;
    let session = server.sign_up(&email("register")).await;
    let key = DeviceKey::generate();
    let reply = register(&server, &session.access, "laptop", &key.jwk(), " My\u{7} Laptop ")
        .await
        .expect_status(201);
    let data = reply.data().as_object().unwrap();
    assert_eq!(data.len(), 2, "{}", reply.text);
    let device = &data["device"];
    assert_eq!(device["id"], "laptop");
    assert_eq!(device["userId"], session.user_id());
    assert_eq!(device["publicKey"], key.jwk());
    assert_eq!(device["name"], "My Laptop");
    assert_eq!(device["revoked"], false);
    assert_eq!(device["createdAt"], server.now_ms());

    let credential = claims(data["deviceCredential"].as_str().unwrap());
    assert_eq!(credential.token_type, TokenType::DeviceCredential);
    assert_eq!(
        (credential.sub.as_str(), credential.dev.as_str()),
        (session.user_id(), "laptop")
    );
    assert_eq!(credential.dpk.as_deref(), Some(key.thumbprint().as_str()));
    assert_eq!(credential.must_checkin_by, Some(credential.exp));
    assert_eq!(credential.exp - credential.iat, 90 * 24 * 3600);
    assert_eq!(credential.iat, server.now_secs());
    let stored = server
        .stores
        .devices
        .find_device("laptop")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.key.unwrap().thumbprint, key.thumbprint());
}

#[tokio::test(flavor = "multi_thread")]
async fn koras_web_jwk_is_accepted_and_kept_as_sent() {
    let server = TestServer::start(|_| {}).await;
    let session = server.sign_up(&email("kora-jwk")).await;
    let key = DeviceKey::generate();
    let reply = register(&server, &session.access, "browser", &key.kora_jwk(), "Browser")
        .await
        .expect_status(201);
    assert_eq!(reply.data()["device"]["publicKey"], key.kora_jwk());
    let credential = claims(reply.data()["deviceCredential"].as_str().unwrap());
    assert_eq!(
        credential.dpk,
        Some(key.thumbprint()),
        "one key, one thumbprint, whatever the JSON form"
    );
    // The same key in Holdfast's form is the same registration.
    register(&server, &session.access, "browser", &key.jwk(), "Browser")
        .await
        .expect_status(201);
}

#[tokio::test(flavor = "multi_thread")]
async fn unusable_keys_are_refused_and_nothing_is_stored() {
    let server = TestServer::start(|_| {}).await;
    let session = server.sign_up(&email("bad-keys")).await;
    let good: Value = serde_json::from_str(&DeviceKey::generate().jwk()).unwrap();
    let with = |member: &str, value: Value| {
        let mut jwk = good.clone();
        jwk[member] = value;
        jwk.to_string()
    };
    let off_curve = URL_SAFE_NO_PAD.encode([1u8; 32]);
    let bad_keys = [
        with("crv", json!("P-384")),
        with("kty", json!("RSA")),
        with("d", json!(URL_SAFE_NO_PAD.encode([9u8; 32]))),
        with("y", json!(off_curve)),
        with("x", json!("AAAA")),
        "not json".to_owned(),
        "[]".to_owned(),
        String::new(),
    ];
    for (index, jwk) in bad_keys.iter().enumerate() {
        let device_id = format!("bad-{index}");
        let reply = register(&server, &session.access, &device_id, jwk, "Bad").await;
        reply.expect_error(400, "VALIDATION_ERROR");
        assert!(
            server
                .stores
                .devices
                .find_device(&device_id)
                .await
                .unwrap()
                .is_none(),
            "{jwk}"
        );
    }
    // publicKey must be the JWK as a string, not an object.
    let reply = server
        .post_auth(
            "/auth/device/register",
            &session.access,
            json!({ "deviceId": "obj", "publicKey": good, "name": "x" }),
        )
        .await;
    reply.expect_error(400, "VALIDATION_ERROR");
    assert!(server.stores.devices.find_device("obj").await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn register_validates_the_id_and_the_name() {
    let server = TestServer::start(|_| {}).await;
    let session = server.sign_up(&email("names")).await;
    let jwk = DeviceKey::generate().jwk();
    for (device_id, name) in [
        ("ok-id", ""),
        ("ok-id", " \n\t "),
        ("", "Name"),
        ("has space", "Name"),
    ] {
        register(&server, &session.access, device_id, &jwk, name)
            .await
            .expect_error(400, "VALIDATION_ERROR");
    }
    let long_id = "x".repeat(129);
    register(&server, &session.access, &long_id, &jwk, "Name")
        .await
        .expect_error(400, "VALIDATION_ERROR");
    assert!(
        server
            .stores
            .devices
            .find_device("ok-id")
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn registering_the_same_key_again_is_idempotent() {
    let server = TestServer::start(|_| {}).await;
    let session = server.sign_up(&email("again")).await;
    let key = DeviceKey::generate();
    let first = register(&server, &session.access, "watch", &key.jwk(), "Watch")
        .await
        .expect_status(201);
    server.clock.advance_ms(5_000);
    let second = register(&server, &session.access, "watch", &key.jwk(), "Watch")
        .await
        .expect_status(201);
    assert_eq!(second.data()["device"], first.data()["device"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn another_key_for_a_registered_id_is_a_conflict() {
    let server = TestServer::start(|_| {}).await;
    let session = server.sign_up(&email("rekey")).await;
    let key = DeviceKey::generate();
    register(&server, &session.access, "watch", &key.jwk(), "Watch")
        .await
        .expect_status(201);
    // Kora answers success and silently keeps the old key.
    let reply = register(
        &server,
        &session.access,
        "watch",
        &DeviceKey::generate().jwk(),
        "Watch",
    )
    .await;
    reply.expect_error(409, "DEVICE_CONFLICT");
    let stored = server.stores.devices.find_device("watch").await.unwrap().unwrap();
    assert_eq!(stored.key.unwrap().thumbprint, key.thumbprint());
}

#[tokio::test(flavor = "multi_thread")]
async fn another_users_device_id_is_a_conflict() {
    let server = TestServer::start(|_| {}).await;
    let alice = server.sign_up(&email("alice")).await;
    let bob = server.sign_up(&email("bob")).await;
    let key = DeviceKey::generate();
    register(&server, &alice.access, "family-ipad", &key.jwk(), "iPad")
        .await
        .expect_status(201);
    for jwk in [key.jwk(), DeviceKey::generate().jwk()] {
        register(&server, &bob.access, "family-ipad", &jwk, "iPad")
            .await
            .expect_error(409, "DEVICE_CONFLICT");
    }
    let stored = server
        .stores
        .devices
        .find_device("family-ipad")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.user_id, alice.user_id());
    // Bob's sign-up device (keyless) is also out of Alice's reach.
    register(
        &server,
        &alice.access,
        &bob.device_id(),
        &DeviceKey::generate().jwk(),
        "Mine",
    )
    .await
    .expect_error(409, "DEVICE_CONFLICT");
}

#[tokio::test(flavor = "multi_thread")]
async fn register_attaches_a_key_to_a_keyless_device() {
    let server = TestServer::start(|_| {}).await;
    let session = server.sign_up(&email("attach")).await;
    let device_id = session.device_id();
    let key = DeviceKey::generate();
    let reply = register(&server, &session.access, &device_id, &key.jwk(), "Now Keyed")
        .await
        .expect_status(201);
    assert_eq!(reply.data()["device"]["publicKey"], key.jwk());
    let devices = server
        .get_auth("/auth/devices", &session.access)
        .await
        .expect_status(200);
    assert_eq!(devices.data()[0]["publicKey"], key.jwk());
    // The key is now the device's re-login credential.
    let challenge = server.challenge(&device_id, None).await;
    server
        .verify(&device_id, &challenge, &key.sign(&challenge))
        .await
        .expect_status(200);
}

#[tokio::test(flavor = "multi_thread")]
async fn register_needs_a_valid_bearer_token() {
    let server = TestServer::start(|_| {}).await;
    let jwk = DeviceKey::generate().jwk();
    let reply = server
        .post(
            "/auth/device/register",
            json!({ "deviceId": "x", "publicKey": jwk, "name": "x" }),
        )
        .await;
    reply.expect_error(401, "TOKEN_INVALID");
    assert!(server.stores.devices.find_device("x").await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_revoked_device_cannot_be_registered_again() {
    let server = TestServer::start(|_| {}).await;
    let address = email("zombie");
    let keeper = server.sign_up(&address).await;
    server.sign_in_device(&address, "stolen").await;
    server.revoke(&keeper.access, "stolen").await.expect_status(200);
    let reply = register(
        &server,
        &keeper.access,
        "stolen",
        &DeviceKey::generate().jwk(),
        "Back",
    )
    .await;
    reply.expect_error(403, "DEVICE_REVOKED");
    assert!(
        server
            .stores
            .devices
            .find_device("stolen")
            .await
            .unwrap()
            .unwrap()
            .revoked
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn revoking_a_device_ends_its_tokens() {
    let server = TestServer::start(|_| {}).await;
    let address = email("revoke");
    let keeper = server.sign_up(&address).await;
    let lost = server.sign_in_device(&address, "lost").await;
    let reply = server.revoke(&keeper.access, "lost").await.expect_status(200);
    assert_eq!(reply.body, json!({ "data": { "success": true } }));
    server.me(&lost.access).await.expect_error(403, "DEVICE_REVOKED");
    server
        .refresh(&lost.refresh)
        .await
        .expect_error(403, "DEVICE_REVOKED");
    server.me(&keeper.access).await.expect_status(200);
    // A device can revoke itself; its token stops working at once.
    let reply = server.revoke(&keeper.access, &keeper.device_id()).await;
    reply.expect_status(200);
    server
        .me(&keeper.access)
        .await
        .expect_error(403, "DEVICE_REVOKED");
}

#[tokio::test(flavor = "multi_thread")]
async fn revoking_someone_elses_or_an_unknown_device_is_refused() {
    let server = TestServer::start(|_| {}).await;
    let alice = server.sign_up(&email("alice")).await;
    let bob = server.sign_up(&email("bob")).await;
    server
        .revoke(&bob.access, &alice.device_id())
        .await
        .expect_error(403, "FORBIDDEN");
    server.me(&alice.access).await.expect_status(200);
    server
        .revoke(&bob.access, "no-such-device")
        .await
        .expect_error(404, "DEVICE_NOT_FOUND");
    // Percent-encoded ids are decoded; a bad escape is simply not found.
    server
        .sign_in_device(alice.user["email"].as_str().unwrap(), "a:b")
        .await;
    server.revoke(&alice.access, "a%3Ab").await.expect_status(200);
    server
        .revoke(&alice.access, "%ff")
        .await
        .expect_error(404, "DEVICE_NOT_FOUND");
    // Without a bearer token nothing is revoked.
    let reply = Reply::read(server.request(
        reqwest::Method::DELETE,
        &format!("/auth/device/{}", bob.device_id()),
    ))
    .await;
    reply.expect_error(401, "TOKEN_INVALID");
    server.me(&bob.access).await.expect_status(200);
}
