//! The kit as a library inside an application's own server: the routes nested under a
//! prefix keep bound bearer routes working (device proofs name the URL the client sent),
//! and a token from another transport gets every check of the bearer routes, the proof
//! included.

mod support;

use holdfast_server_kit::authn::TransportProof;
use holdfast_server_kit::{ApiError, Authenticator};
use reqwest::Method;
use serde_json::json;
use support::{DeviceKey, Reply, TestServer, claims, email};

#[tokio::test(flavor = "multi_thread")]
async fn nested_under_a_prefix_bound_bearer_routes_keep_working() {
    let server = TestServer::start_mounted("/api", |_| {}).await;
    assert!(server.url("/auth/me").ends_with("/api/auth/me"));
    let key = DeviceKey::generate();
    // Sign-up's token request carries a proof for /api/auth/signup (the URL sent).
    let session = server.sign_up_device(&email("nested"), "phone", &key).await;
    assert!(claims(&session.access).cnf.is_some(), "the token is bound");

    let me = server.me(&session.access).await.expect_status(200);
    assert_eq!(me.data(), &session.user);
    server
        .get_auth("/auth/devices", &session.access)
        .await
        .expect_status(200);
    let refreshed = server.refresh(&session.refresh).await.expect_status(200);
    let access = refreshed.data()["accessToken"].as_str().expect("access token");
    server.me(access).await.expect_status(200);

    // A proof for the path without the mount is for another URL, and the refusal names the
    // one the client addressed.
    let unmounted = format!("http://{}/auth/me", server.addr);
    let proof = key.proof("GET", &unmounted, access, server.now_secs());
    let reply = Reply::read(
        server
            .request(Method::GET, "/auth/me")
            .bearer_auth(access)
            .header("DPoP", proof),
    )
    .await;
    reply.expect_error(401, "PROOF_INVALID");
    assert_eq!(
        reply.message(),
        format!(
            "The device proof is for another URL: this request's URL is {}.",
            server.url("/auth/me")
        )
    );

    // Paths outside the mount are not the kit's.
    let outside = server
        .client
        .get(format!("http://{}/auth/me", server.addr))
        .send()
        .await
        .expect("request");
    assert_eq!(outside.status(), 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_from_another_transport_needs_its_proof_when_bound() {
    let server = TestServer::start(|_| {}).await;
    let authn: &Authenticator = server.kit.authenticator();
    let key = DeviceKey::generate();
    let bound = server.sign_up_device(&email("transport"), "phone", &key).await;
    let url = "wss://sync.example.com/sync";

    let refused: ApiError = authn
        .authenticate_token(&bound.access, None)
        .await
        .expect_err("a bound token without its proof is refused");
    assert_eq!(refused.code.as_str(), "PROOF_INVALID");

    let stranger = DeviceKey::generate().proof("GET", url, &bound.access, server.now_secs());
    let refused = authn
        .authenticate_token(
            &bound.access,
            Some(TransportProof {
                proof: &stranger,
                method: "GET",
                url,
            }),
        )
        .await
        .expect_err("a proof by another key is refused");
    assert_eq!(refused.code.as_str(), "PROOF_INVALID");

    let proof = key.proof("GET", url, &bound.access, server.now_secs());
    let transport = TransportProof {
        proof: &proof,
        method: "GET",
        url,
    };
    let authenticated = authn
        .authenticate_token(&bound.access, Some(transport))
        .await
        .expect("the token with its proof");
    assert_eq!(authenticated.user.id, bound.user_id());
    let replayed = authn
        .authenticate_token(&bound.access, Some(transport))
        .await
        .expect_err("a proof works once");
    assert_eq!(replayed.code.as_str(), "PROOF_INVALID");

    // A Kora web client's token is unbound and needs no proof; a revoked session is refused.
    let unbound = server
        .post_unproven(
            "/auth/signup",
            json!({ "email": email("kora"), "password": support::PASSWORD }),
        )
        .await
        .expect_status(201);
    let access = support::Session::from_reply(unbound).access;
    authn
        .authenticate_token(&access, None)
        .await
        .expect("an unbound token needs no proof");
    server
        .post_auth("/auth/signout", &access, json!({}))
        .await
        .expect_status(200);
    let revoked = authn
        .authenticate_token(&access, None)
        .await
        .expect_err("signed out");
    assert_eq!(revoked.code.as_str(), "TOKEN_REVOKED");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_caller_extractor_makes_the_bearer_routes_checks_on_an_apps_route() {
    use axum::routing::get;
    use holdfast_server_kit::server::{Caller, serve};

    let server = TestServer::start(|_| {}).await;
    async fn profile(caller: Caller) -> String {
        caller.user.email.clone()
    }
    let app = axum::Router::new().nest(
        "/app",
        axum::Router::new()
            .route("/profile", get(profile))
            .with_state(server.kit.clone()),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/app/profile", listener.local_addr().expect("address"));
    tokio::spawn(serve(listener, app, std::future::pending()));

    let key = DeviceKey::generate();
    let address = email("caller");
    let session = server.sign_up_device(&address, "phone", &key).await;
    let get = |proof: Option<String>| {
        let mut request = server.client.get(&url).bearer_auth(&session.access);
        if let Some(proof) = proof {
            request = request.header("DPoP", proof);
        }
        request.send()
    };
    let proof = key.proof("GET", &url, &session.access, server.now_secs());
    let answer = get(Some(proof)).await.expect("request");
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.text().await.expect("body"), address);

    let refused = Reply::read(server.client.get(&url).bearer_auth(&session.access)).await;
    refused.expect_error(401, "PROOF_INVALID");
    // A proof for the path without the mount is for another URL.
    let unmounted = url.replace("/app/profile", "/profile");
    let wrong = key.proof("GET", &unmounted, &session.access, server.now_secs());
    assert_eq!(get(Some(wrong)).await.expect("request").status(), 401);
    let anonymous = Reply::read(server.client.get(&url)).await;
    anonymous.expect_error(401, "TOKEN_INVALID");
}
