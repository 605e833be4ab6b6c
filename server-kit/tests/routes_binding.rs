//! Binding on request (PROTOCOL 3, RFC 9449 section 5) over loopback HTTP: a token request
//! (sign-up, sign-in, refresh, `/device/verify`) gets bound tokens only when it carries a
//! valid `DPoP` proof by the device's key; without one, as Kora's web client sends it, the
//! tokens are plain bearer tokens even though the body names a device and its key.

mod support;

use holdfast_protocol::proof::ProofClaims;
use reqwest::Method;
use serde_json::{Value, json};
use support::{DeviceKey, PASSWORD, Reply, Session, TestServer, claims, email};

fn jkt(token: &str) -> Option<String> {
    claims(token).cnf.map(|cnf| cnf.jkt)
}

/// POSTs a token request with `proof` (or none) as its `DPoP` header.
async fn token_request(server: &TestServer, path: &str, body: Value, proof: Option<String>) -> Reply {
    let mut request = server.request(Method::POST, path).json(&body);
    if let Some(proof) = proof {
        request = request.header("DPoP", proof);
    }
    Reply::read(request).await
}

/// `GET /auth/me` with `authorization` as the whole header and an optional proof.
async fn me_with_header(server: &TestServer, authorization: &str, proof: Option<String>) -> Reply {
    let mut request = server
        .request(Method::GET, "/auth/me")
        .header("Authorization", authorization);
    if let Some(proof) = proof {
        request = request.header("DPoP", proof);
    }
    Reply::read(request).await
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_proof_a_keyed_device_gets_bearer_tokens_for_the_whole_family() {
    let server = TestServer::start(|_| {}).await;
    let key = DeviceKey::generate();
    let address = email("kora-like");
    let body = json!({ "email": address, "password": PASSWORD, "deviceId": "web", "devicePublicKey": key.kora_jwk() });
    let signed_up = Session::from_reply(
        token_request(&server, "/auth/signup", body.clone(), None)
            .await
            .expect_status(201),
    );
    assert_eq!(jkt(&signed_up.access), None, "no proof, no binding");
    assert_eq!(jkt(&signed_up.refresh), None);
    // A plain bearer token works on its own.
    me_with_header(&server, &format!("Bearer {}", signed_up.access), None)
        .await
        .expect_status(200);
    // Sign-in: the same.
    let signed_in = Session::from_reply(
        token_request(&server, "/auth/signin", body, None)
            .await
            .expect_status(200),
    );
    assert_eq!(jkt(&signed_in.access), None);
    // The family stays unbound, even when a refresh comes with a valid proof by the key.
    let proof = key.token_proof(&server.url("/auth/refresh"), server.now_secs());
    let rotated = token_request(
        &server,
        "/auth/refresh",
        json!({ "refreshToken": signed_in.refresh }),
        Some(proof),
    )
    .await
    .expect_status(200);
    assert_eq!(jkt(rotated.data()["accessToken"].as_str().unwrap()), None);
    assert_eq!(jkt(rotated.data()["refreshToken"].as_str().unwrap()), None);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_proof_binds_the_family_and_only_its_key_refreshes_it() {
    let server = TestServer::start(|_| {}).await;
    let key = DeviceKey::generate();
    let body = json!({ "email": email("bound"), "password": PASSWORD, "deviceId": "phone", "devicePublicKey": key.jwk() });
    for path in ["/auth/signup", "/auth/signin"] {
        let proof = key.token_proof(&server.url(path), server.now_secs());
        let reply = token_request(&server, path, body.clone(), Some(proof)).await;
        let session = Session::from_reply(reply);
        assert_eq!(jkt(&session.access), Some(key.thumbprint()), "{path}");
        assert_eq!(jkt(&session.refresh), Some(key.thumbprint()), "{path}");
    }
    let session = Session::from_reply(
        token_request(
            &server,
            "/auth/signin",
            body.clone(),
            Some(key.token_proof(&server.url("/auth/signin"), server.now_secs())),
        )
        .await,
    );
    let refresh = json!({ "refreshToken": session.refresh });
    // Without a proof, or with another key's, the bound family is not refreshed.
    let reply = token_request(&server, "/auth/refresh", refresh.clone(), None).await;
    reply.expect_error(401, "PROOF_INVALID");
    assert!(
        reply.message().contains("bound to a device key"),
        "{}",
        reply.text
    );
    let stranger = DeviceKey::generate();
    let proof = stranger.token_proof(&server.url("/auth/refresh"), server.now_secs());
    token_request(&server, "/auth/refresh", refresh.clone(), Some(proof))
        .await
        .expect_error(401, "PROOF_INVALID");
    // A proof carrying an access-token hash is not a token request's proof.
    let proof = key.proof(
        "POST",
        &server.url("/auth/refresh"),
        &session.access,
        server.now_secs(),
    );
    token_request(&server, "/auth/refresh", refresh.clone(), Some(proof))
        .await
        .expect_error(401, "PROOF_INVALID");
    // The key's own proof: a bound child pair.
    let proof = key.token_proof(&server.url("/auth/refresh"), server.now_secs());
    let rotated = token_request(&server, "/auth/refresh", refresh, Some(proof))
        .await
        .expect_status(200);
    assert_eq!(
        jkt(rotated.data()["accessToken"].as_str().unwrap()),
        Some(key.thumbprint())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_proof_at_sign_up_is_refused_and_stores_nothing() {
    let server = TestServer::start(|_| {}).await;
    let key = DeviceKey::generate();
    let address = email("refused");
    let body =
        json!({ "email": address, "password": PASSWORD, "deviceId": "phone", "devicePublicKey": key.jwk() });
    // Signed by another key than the one sent.
    let proof = DeviceKey::generate().token_proof(&server.url("/auth/signup"), server.now_secs());
    token_request(&server, "/auth/signup", body.clone(), Some(proof))
        .await
        .expect_error(401, "PROOF_INVALID");
    // For another URL: the refusal names the URL expected.
    let proof = key.token_proof("http://elsewhere.example/auth/signup", server.now_secs());
    let reply = token_request(&server, "/auth/signup", body.clone(), Some(proof)).await;
    reply.expect_error(401, "PROOF_INVALID");
    assert!(
        reply.message().contains(&server.url("/auth/signup")),
        "{}",
        reply.text
    );
    // A proof with no key to bind to.
    let keyless = json!({ "email": address, "password": PASSWORD, "deviceId": "phone" });
    token_request(
        &server,
        "/auth/signup",
        keyless,
        Some(key.token_proof(&server.url("/auth/signup"), server.now_secs())),
    )
    .await
    .expect_error(401, "PROOF_INVALID");
    // Nothing was stored: the address and the device id are still free.
    let proof = key.token_proof(&server.url("/auth/signup"), server.now_secs());
    token_request(&server, "/auth/signup", body, Some(proof))
        .await
        .expect_status(201);
}

#[tokio::test(flavor = "multi_thread")]
async fn device_verify_binds_only_with_a_proof_by_the_registered_key() {
    let server = TestServer::start(|_| {}).await;
    let key = DeviceKey::generate();
    let session = server.sign_up_device(&email("verify"), "phone", &key).await;
    for proof_by in [None, Some(&key)] {
        let challenge = server.challenge("phone", Some(&session.access)).await;
        let body = json!({ "deviceId": "phone", "challenge": challenge, "signature": key.sign(&challenge) });
        let proof = proof_by.map(|k| k.token_proof(&server.url("/auth/device/verify"), server.now_secs()));
        let reply = token_request(&server, "/auth/device/verify", body, proof)
            .await
            .expect_status(200);
        let access = reply.data()["tokens"]["accessToken"].as_str().unwrap();
        assert_eq!(jkt(access), proof_by.map(DeviceKey::thumbprint));
    }
    // A proof by another key is refused before the challenge is spent.
    let challenge = server.challenge("phone", Some(&session.access)).await;
    let body = json!({ "deviceId": "phone", "challenge": challenge, "signature": key.sign(&challenge) });
    let stranger = DeviceKey::generate().token_proof(&server.url("/auth/device/verify"), server.now_secs());
    token_request(&server, "/auth/device/verify", body.clone(), Some(stranger))
        .await
        .expect_error(401, "PROOF_INVALID");
    token_request(&server, "/auth/device/verify", body, None)
        .await
        .expect_status(200);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dpop_scheme_names_the_token_like_bearer() {
    let server = TestServer::start(|_| {}).await;
    // Unbound.
    let plain = server.sign_up(&email("scheme-plain")).await;
    me_with_header(&server, &format!("DPoP {}", plain.access), None)
        .await
        .expect_status(200);
    // Bound: the scheme does not replace the proof.
    let key = DeviceKey::generate();
    let bound = server.sign_up_device(&email("scheme-bound"), "phone", &key).await;
    assert_eq!(jkt(&bound.access), Some(key.thumbprint()));
    me_with_header(&server, &format!("DPoP {}", bound.access), None)
        .await
        .expect_error(401, "PROOF_INVALID");
    let proof = key.proof("GET", &server.url("/auth/me"), &bound.access, server.now_secs());
    me_with_header(&server, &format!("DPoP {}", bound.access), Some(proof))
        .await
        .expect_status(200);
    // Any other scheme is no token.
    me_with_header(&server, &format!("Basic {}", plain.access), None)
        .await
        .expect_error(401, "TOKEN_INVALID");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_proof_dated_near_the_ends_of_time_is_refused_never_wrapped() {
    let server = TestServer::start(|_| {}).await;
    let key = DeviceKey::generate();
    let bound = server.sign_up_device(&email("iat"), "phone", &key).await;
    let now = server.now_secs();
    for iat in [
        i64::MIN + now,
        i64::MIN,
        i64::MAX,
        i64::MAX - 30,
        now - 61,
        now + 61,
    ] {
        let proof = key.proof_with(&ProofClaims {
            jti: uuid::Uuid::new_v4().to_string(),
            htm: "GET".into(),
            htu: server.url("/auth/me"),
            iat,
            ath: holdfast_protocol::proof::access_token_hash(&bound.access),
            nonce: None,
        });
        let reply = me_with_header(&server, &format!("Bearer {}", bound.access), Some(proof)).await;
        reply.expect_error(401, "PROOF_INVALID");
        assert!(reply.message().contains("too old"), "iat {iat}: {}", reply.text);
    }
}
