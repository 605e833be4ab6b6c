//! Bound tokens on the bearer routes over loopback HTTP (PROTOCOL 3 and 6.1): a token that
//! carries `cnf.jkt` is only good with a `DPoP` proof made by that key for this method, URL
//! and token, fresh and never used before. Unbound tokens (Kora web clients, devices without
//! a key) need none.

mod support;

use std::io::{Read, Write};

use holdfast_protocol::proof::{ProofClaims, access_token_hash};
use reqwest::Method;
use serde_json::json;
use support::{DeviceKey, PASSWORD, Reply, Session, TestServer, claims, email};

const BOUND: &str = "This token is bound to a device key: send a DPoP proof.";

/// A device-bound session on `server`, with its key.
async fn bound_session(server: &TestServer, device_id: &str) -> (Session, DeviceKey) {
    let key = DeviceKey::generate();
    let session = server.sign_up_device(&email("dpop"), device_id, &key).await;
    assert_eq!(
        claims(&session.access).cnf.map(|cnf| cnf.jkt),
        Some(key.thumbprint()),
        "a keyed device's token is bound to its key"
    );
    (session, key)
}

/// `GET /auth/me` with `token` and, when given, `proof` as the `DPoP` header.
async fn me_with(server: &TestServer, token: &str, proof: Option<&str>) -> Reply {
    let mut request = server.request(Method::GET, "/auth/me").bearer_auth(token);
    if let Some(proof) = proof {
        request = request.header("DPoP", proof);
    }
    Reply::read(request).await
}

/// Claims of a correct proof for `GET /auth/me` with `token` on `server`.
fn me_claims(server: &TestServer, token: &str) -> ProofClaims {
    ProofClaims {
        jti: uuid::Uuid::new_v4().to_string(),
        htm: "GET".into(),
        htu: server.url("/auth/me"),
        iat: server.now_secs(),
        ath: access_token_hash(token),
        nonce: None,
    }
}

#[track_caller]
fn expect_proof_invalid(reply: &Reply, message: &str) {
    reply.expect_error(401, "PROOF_INVALID");
    assert_eq!(reply.message(), message, "{}", reply.text);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bound_token_needs_a_proof_and_each_proof_works_once() {
    let server = TestServer::start(|_| {}).await;
    let (session, key) = bound_session(&server, "phone").await;

    expect_proof_invalid(&me_with(&server, &session.access, None).await, BOUND);

    let proof = key.proof("GET", &server.url("/auth/me"), &session.access, server.now_secs());
    let reply = me_with(&server, &session.access, Some(&proof)).await;
    assert_eq!(reply.expect_status(200).data(), &session.user);

    expect_proof_invalid(
        &me_with(&server, &session.access, Some(&proof)).await,
        "The device proof was already used.",
    );
    // A new proof for the same request is fine.
    let again = key.proof("GET", &server.url("/auth/me"), &session.access, server.now_secs());
    me_with(&server, &session.access, Some(&again))
        .await
        .expect_status(200);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_proof_for_anything_else_is_refused_saying_why() {
    let server = TestServer::start(|_| {}).await;
    let (session, key) = bound_session(&server, "phone").await;
    let (other_session, other_key) = bound_session(&server, "tablet").await;
    let access = session.access.as_str();
    let now = server.now_secs();
    let base = me_claims(&server, access);
    // A refusal for another URL names the URL the server expected.
    let another_url = format!(
        "The device proof is for another URL: this request's URL is {}.",
        server.url("/auth/me")
    );

    let cases: Vec<(&str, String, &str)> = vec![
        (
            "another URL",
            key.proof("GET", &server.url("/auth/devices"), access, now),
            &another_url,
        ),
        (
            "another host",
            key.proof("GET", "http://api.example.com/auth/me", access, now),
            &another_url,
        ),
        (
            "another method",
            key.proof("POST", &server.url("/auth/me"), access, now),
            "The device proof is for another method.",
        ),
        (
            "a lower-case method",
            key.proof("get", &server.url("/auth/me"), access, now),
            "The device proof is for another method.",
        ),
        (
            "61 s old",
            key.proof("GET", &server.url("/auth/me"), access, now - 61),
            "The device proof is too old or dated in the future.",
        ),
        (
            "61 s in the future",
            key.proof("GET", &server.url("/auth/me"), access, now + 61),
            "The device proof is too old or dated in the future.",
        ),
        (
            "another access token",
            key.proof("GET", &server.url("/auth/me"), &other_session.access, now),
            "The device proof is for another access token.",
        ),
        (
            "another key",
            other_key.proof("GET", &server.url("/auth/me"), access, now),
            "The device proof is signed by another key.",
        ),
        (
            "a forged signature",
            {
                // The right key in the header, signed by another one.
                let forged = other_key.proof_with(&base);
                let genuine = key.proof_with(&base);
                let signature = forged.rsplit('.').next().unwrap();
                let (input, _) = genuine.rsplit_once('.').unwrap();
                format!("{input}.{signature}")
            },
            "The device proof signature is invalid.",
        ),
        (
            "a DER signature",
            key.proof_der(&base),
            "The device proof is malformed.",
        ),
        (
            "garbage",
            "not-a-proof".to_owned(),
            "The device proof is malformed.",
        ),
        ("empty", String::new(), "The device proof is malformed."),
        (
            "oversized",
            format!("{}{}", key.proof_with(&base), "A".repeat(5000)),
            "The device proof is malformed.",
        ),
        (
            "the access token itself",
            access.to_owned(),
            "The device proof is malformed.",
        ),
    ];
    for (case, proof, message) in cases {
        let reply = me_with(&server, access, Some(&proof)).await;
        assert_eq!(
            (reply.status, reply.code(), reply.message()),
            (401, Some("PROOF_INVALID"), message),
            "{case}: {}",
            reply.text
        );
    }
    // None of them spent anything: the window's edges still pass.
    for iat in [now - 60, now + 60] {
        let proof = key.proof("GET", &server.url("/auth/me"), access, iat);
        me_with(&server, access, Some(&proof)).await.expect_status(200);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_proof_window_follows_the_server_clock() {
    let server = TestServer::start(|_| {}).await;
    let (session, key) = bound_session(&server, "phone").await;
    let proof = key.proof("GET", &server.url("/auth/me"), &session.access, server.now_secs());
    server.clock.advance_ms(61_000);
    expect_proof_invalid(
        &me_with(&server, &session.access, Some(&proof)).await,
        "The device proof is too old or dated in the future.",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unbound_token_needs_no_proof_and_ignores_one() {
    let server = TestServer::start(|_| {}).await;
    let session = server.sign_up(&email("unbound")).await;
    assert_eq!(claims(&session.access).cnf, None);
    me_with(&server, &session.access, None).await.expect_status(200);
    me_with(&server, &session.access, Some("garbage"))
        .await
        .expect_status(200);
    // A keyless device's tokens are unbound too.
    let keyless = server.sign_in_device(&email_of(&session), "kiosk").await;
    assert_eq!(claims(&keyless.access).cnf, None);
    me_with(&server, &keyless.access, None).await.expect_status(200);
}

fn email_of(session: &Session) -> String {
    session.user["email"].as_str().expect("email").to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_bearer_route_demands_the_proof() {
    let server = TestServer::start(|_| {}).await;
    let (session, key) = bound_session(&server, "phone").await;
    let other = DeviceKey::generate();
    server
        .sign_in_with(json!({
            "email": email_of(&session),
            "password": PASSWORD,
            "deviceId": "old-laptop",
            "devicePublicKey": other.jwk(),
        }))
        .await;
    let access = session.access.as_str();
    let routes: Vec<(Method, &str, Option<serde_json::Value>, u16)> = vec![
        (Method::GET, "/auth/me", None, 200),
        (Method::GET, "/auth/devices", None, 200),
        (
            Method::POST,
            "/auth/device/register",
            Some(json!({ "deviceId": "phone", "publicKey": key.jwk(), "name": "Phone" })),
            201,
        ),
        (
            Method::POST,
            "/auth/device/challenge",
            Some(json!({ "deviceId": "phone" })),
            200,
        ),
        (Method::DELETE, "/auth/device/old-laptop", None, 200),
        (
            Method::POST,
            "/auth/signout",
            Some(json!({ "refreshToken": session.refresh })),
            200,
        ),
    ];
    for (method, path, body, status) in routes {
        let send = |proof: Option<String>| {
            let mut request = server.request(method.clone(), path).bearer_auth(access);
            if let Some(body) = &body {
                request = request.json(body);
            }
            if let Some(proof) = proof {
                request = request.header("DPoP", proof);
            }
            Reply::read(request)
        };
        let reply = send(None).await;
        assert_eq!(
            (reply.status, reply.code(), reply.message()),
            (401, Some("PROOF_INVALID"), BOUND),
            "{method} {path}: {}",
            reply.text
        );
        // A proof for another route of the same token does not open this one.
        let elsewhere = key.proof("GET", &server.url("/auth/elsewhere"), access, server.now_secs());
        send(Some(elsewhere)).await.expect_error(401, "PROOF_INVALID");
        let proof = key.proof(method.as_str(), &server.url(path), access, server.now_secs());
        send(Some(proof)).await.expect_status(status);
    }
    // Signed out: with its proof the token is revoked, without one it is still just bound.
    let proof = key.proof("GET", &server.url("/auth/me"), access, server.now_secs());
    me_with(&server, access, Some(&proof))
        .await
        .expect_error(401, "TOKEN_REVOKED");
    expect_proof_invalid(&me_with(&server, access, None).await, BOUND);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_late_sign_out_with_an_expired_token_carries_its_proof() {
    let server = TestServer::start(|_| {}).await;
    let (session, key) = bound_session(&server, "phone").await;
    // Offline past the access token's expiry and leeway, then the queued sign-out arrives.
    server.clock.advance_ms((15 * 60 + 10) * 1000);
    let body = json!({ "refreshToken": session.refresh });
    let send = |proof: Option<String>| {
        let mut request = server
            .request(Method::POST, "/auth/signout")
            .bearer_auth(&session.access)
            .json(&body);
        if let Some(proof) = proof {
            request = request.header("DPoP", proof);
        }
        Reply::read(request)
    };
    expect_proof_invalid(&send(None).await, BOUND);
    let proof = key.proof(
        "POST",
        &server.url("/auth/signout"),
        &session.access,
        server.now_secs(),
    );
    send(Some(proof)).await.expect_status(200);
    server
        .refresh(&session.refresh)
        .await
        .expect_error(401, "TOKEN_REVOKED");
}

#[tokio::test(flavor = "multi_thread")]
async fn behind_a_proxy_the_proof_names_the_public_url() {
    let server = TestServer::start(|config| {
        config.public_url = Some("https://API.example.com/".into());
    })
    .await;
    let (session, key) = bound_session(&server, "phone").await;
    let now = server.now_secs();
    let local = key.proof("GET", &server.url("/auth/me"), &session.access, now);
    expect_proof_invalid(
        &me_with(&server, &session.access, Some(&local)).await,
        "The device proof is for another URL: this request's URL is https://api.example.com/auth/me.",
    );
    let public = key.proof("GET", "https://api.example.com/auth/me", &session.access, now);
    me_with(&server, &session.access, Some(&public))
        .await
        .expect_status(200);
    // Query and fragment are not part of what a proof names.
    let public = key.proof("GET", "https://api.example.com/auth/me", &session.access, now);
    Reply::read(
        server
            .request(Method::GET, "/auth/me?view=full")
            .bearer_auth(&session.access)
            .header("DPoP", public),
    )
    .await
    .expect_status(200);
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_host_header_a_bound_token_is_refused() {
    let server = TestServer::start(|_| {}).await;
    let (session, key) = bound_session(&server, "phone").await;
    let proof = key.proof("GET", &server.url("/auth/me"), &session.access, server.now_secs());
    let addr = server.addr;
    let access = session.access.clone();
    let response = tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(addr).expect("connect");
        write!(
            stream,
            "GET /auth/me HTTP/1.0\r\nAuthorization: Bearer {access}\r\nDPoP: {proof}\r\n\r\n"
        )
        .expect("write");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("read");
        response
    })
    .await
    .expect("blocking task");
    assert!(response.starts_with("HTTP/1.0 401"), "{response}");
    assert!(response.contains("\"code\":\"PROOF_INVALID\""), "{response}");
    assert!(response.contains("no valid Host header"), "{response}");
}
