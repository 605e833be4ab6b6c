//! `GET /auth/me` and `GET /auth/devices` over loopback HTTP, and every way a bearer token
//! can be wrong (PROTOCOL section 3).

mod support;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use holdfast_server_kit::tokens::TokenKeys;
use reqwest::Method;
use serde_json::json;
use support::{DeviceKey, Reply, SECRET, TestServer, claims, email};

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// `token` with the character at `index` of segment `segment` replaced by another one.
fn flip(token: &str, segment: usize, index: usize) -> String {
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let mut bytes = parts[segment].clone().into_bytes();
    bytes[index] = if bytes[index] == b'A' { b'B' } else { b'A' };
    parts[segment] = String::from_utf8(bytes).unwrap();
    parts.join(".")
}

/// A token with `header` (JSON) over `token`'s payload, HMAC-signed with `secret`.
fn resign_with_header(token: &str, header: &str, secret: &str) -> String {
    let payload = token.split('.').nth(1).unwrap();
    let input = format!("{}.{payload}", b64(header.as_bytes()));
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let tag = ring::hmac::sign(&key, input.as_bytes());
    format!("{input}.{}", b64(tag.as_ref()))
}

#[tokio::test(flavor = "multi_thread")]
async fn me_answers_the_user() {
    let server = TestServer::start(|_| {}).await;
    let session = server
        .sign_up_with(json!({ "email": email("me"), "password": support::PASSWORD, "name": "Me" }))
        .await;
    let reply = server.me(&session.access).await.expect_status(200);
    assert_eq!(reply.data(), &session.user);
    // The scheme is case-insensitive.
    let lower = Reply::read(
        server
            .request(Method::GET, "/auth/me")
            .header("authorization", format!("bearer {}", session.access)),
    )
    .await;
    assert_eq!(lower.expect_status(200).data(), &session.user);
}

#[tokio::test(flavor = "multi_thread")]
async fn devices_lists_every_device_revoked_ones_included() {
    let server = TestServer::start(|_| {}).await;
    let address = email("devices");
    let key = DeviceKey::generate();
    let phone = server.sign_up_device(&address, "phone", &key).await;
    server
        .sign_in_with(
            json!({ "email": address, "password": support::PASSWORD, "deviceId": "tablet",
                               "deviceName": "  Tab\u{1}let " }),
        )
        .await;
    server.revoke(&phone.access, "tablet").await.expect_status(200);
    // Another user's devices never show.
    server
        .sign_up_device(&email("stranger"), "strangers-phone", &DeviceKey::generate())
        .await;

    let reply = server
        .get_auth("/auth/devices", &phone.access)
        .await
        .expect_status(200);
    let devices = reply.data().as_array().expect("an array");
    assert_eq!(devices.len(), 2, "{}", reply.text);
    let now = server.now_ms();
    let expected = [
        ("phone", key.jwk(), "Primary Device", false),
        ("tablet", String::new(), "Tablet", true),
    ];
    for (device, (id, public_key, name, revoked)) in devices.iter().zip(expected) {
        let mut members: Vec<_> = device.as_object().unwrap().keys().map(String::as_str).collect();
        members.sort_unstable();
        assert_eq!(
            members,
            [
                "createdAt",
                "id",
                "lastSeenAt",
                "name",
                "publicKey",
                "revoked",
                "userId"
            ]
        );
        assert_eq!(device["id"], id);
        assert_eq!(device["userId"], phone.user_id());
        assert_eq!(device["publicKey"], public_key.as_str());
        assert_eq!(device["name"], name);
        assert_eq!(device["revoked"], revoked);
        assert_eq!(device["createdAt"], now);
        assert!(device["lastSeenAt"].as_i64().is_some());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_malformed_and_tampered_bearer_tokens_are_invalid() {
    let server = TestServer::start(|_| {}).await;
    let session = server.sign_up(&email("tamper")).await;
    let token = session.access.as_str();
    let payload_len = token.split('.').nth(1).unwrap().len();
    let payload = token.split('.').nth(1).unwrap();
    let signature = token.split('.').nth(2).unwrap();
    let none_header = b64(br#"{"alg":"none","typ":"JWT"}"#);
    let forged = [
        flip(token, 1, payload_len / 2),
        flip(token, 2, 10),
        format!("{none_header}.{payload}."),
        format!("{none_header}.{payload}.{signature}"),
        // Kora refuses this member order, so Holdfast does too, even with a valid MAC.
        resign_with_header(token, r#"{"typ":"JWT","alg":"HS256"}"#, SECRET),
        resign_with_header(token, r#"{"alg":"HS256", "typ":"JWT"}"#, SECRET),
        TokenKeys::new(&["another-secret-0123456789abcdefghijkl"])
            .unwrap()
            .sign(&claims(token)),
        format!("{token}.extra"),
        token[..token.len() - 1].to_owned(),
        "x".repeat(20_000),
        "not-a-token".to_owned(),
    ];
    for bad in &forged {
        server.me(bad).await.expect_error(401, "TOKEN_INVALID");
        server
            .get_auth("/auth/devices", bad)
            .await
            .expect_error(401, "TOKEN_INVALID");
    }
    // The refresh token is not an access token.
    server
        .me(&session.refresh)
        .await
        .expect_error(401, "TOKEN_INVALID");
    let missing = Reply::read(server.request(Method::GET, "/auth/me")).await;
    missing.expect_error(401, "TOKEN_INVALID");
    for header in ["Basic dXNlcjpwYXNz", "Bearer", "Bearer ", token] {
        let reply = Reply::read(
            server
                .request(Method::GET, "/auth/me")
                .header("authorization", header),
        )
        .await;
        reply.expect_error(401, "TOKEN_INVALID");
    }
    // The original is untouched by all of this.
    server.me(token).await.expect_status(200);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_access_token_expires_five_seconds_after_exp() {
    let server = TestServer::start(|_| {}).await;
    let session = server.sign_up(&email("expiry")).await;
    let exp = claims(&session.access).exp;
    server.clock.set_ms((exp + 5) * 1000 + 999);
    server.me(&session.access).await.expect_status(200);
    server.clock.set_ms((exp + 6) * 1000);
    server
        .me(&session.access)
        .await
        .expect_error(401, "TOKEN_EXPIRED");
    server
        .get_auth("/auth/devices", &session.access)
        .await
        .expect_error(401, "TOKEN_EXPIRED");
}
