//! `POST /auth/signout` over loopback HTTP, including the offline sign-out delivered late
//! and the revocation check every bearer route makes (PROTOCOL section 7).

mod support;

use reqwest::Method;
use serde_json::json;
use support::{Reply, TestServer, email};

#[tokio::test(flavor = "multi_thread")]
async fn sign_out_revokes_the_access_and_refresh_tokens() {
    let server = TestServer::start(|_| {}).await;
    let address = email("signout");
    let session = server.sign_up(&address).await;
    let other = server.sign_in_device(&address, "other").await;
    let reply = server
        .post_auth(
            "/auth/signout",
            &session.access,
            json!({ "refreshToken": session.refresh }),
        )
        .await;
    assert_eq!(
        reply.expect_status(200).body,
        json!({ "data": { "success": true } })
    );
    // Kora keeps accepting this token on /me; Holdfast does not.
    server
        .me(&session.access)
        .await
        .expect_error(401, "TOKEN_REVOKED");
    server
        .get_auth("/auth/devices", &session.access)
        .await
        .expect_error(401, "TOKEN_REVOKED");
    server
        .refresh(&session.refresh)
        .await
        .expect_error(401, "TOKEN_REVOKED");
    // Signing out twice is refused like any other use of a revoked token.
    server
        .post_auth("/auth/signout", &session.access, json!({}))
        .await
        .expect_error(401, "TOKEN_REVOKED");
    // Other sessions of the account are untouched.
    server.me(&other.access).await.expect_status(200);
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_out_without_a_body_ends_the_whole_session() {
    let server = TestServer::start(|_| {}).await;
    let session = server.sign_up(&email("nobody")).await;
    let reply = Reply::read(
        server
            .request(Method::POST, "/auth/signout")
            .bearer_auth(&session.access),
    )
    .await;
    reply.expect_status(200);
    server
        .refresh(&session.refresh)
        .await
        .expect_error(401, "TOKEN_REVOKED");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_late_offline_sign_out_is_vouched_for_by_the_refresh_token() {
    let server = TestServer::start(|_| {}).await;
    let session = server.sign_up(&email("offline")).await;
    server.clock.advance_ms(16 * 60_000);
    server
        .me(&session.access)
        .await
        .expect_error(401, "TOKEN_EXPIRED");
    server
        .post_auth(
            "/auth/signout",
            &session.access,
            json!({ "refreshToken": session.refresh }),
        )
        .await
        .expect_status(200);
    server
        .refresh(&session.refresh)
        .await
        .expect_error(401, "TOKEN_REVOKED");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_access_token_alone_cannot_sign_out() {
    let server = TestServer::start(|_| {}).await;
    let address = email("expired");
    let session = server.sign_up(&address).await;
    let other = server.sign_in_device(&address, "other").await;
    server.clock.advance_ms(16 * 60_000);
    server
        .post_auth("/auth/signout", &session.access, json!({}))
        .await
        .expect_error(401, "TOKEN_EXPIRED");
    // A refresh token of another session of the same user does not vouch for it either.
    server
        .post_auth(
            "/auth/signout",
            &session.access,
            json!({ "refreshToken": other.refresh }),
        )
        .await
        .expect_error(401, "TOKEN_EXPIRED");
    // Nothing was revoked by the refusals.
    let reply = server.refresh(&session.refresh).await;
    reply.expect_status(200);
    server.refresh(&other.refresh).await.expect_status(200);
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_out_needs_a_bearer_token() {
    let server = TestServer::start(|_| {}).await;
    let session = server.sign_up(&email("bearer")).await;
    server
        .post("/auth/signout", json!({ "refreshToken": session.refresh }))
        .await
        .expect_error(401, "TOKEN_INVALID");
    // A refresh token is not a bearer token.
    server
        .post_auth(
            "/auth/signout",
            &session.refresh,
            json!({ "refreshToken": session.refresh }),
        )
        .await
        .expect_error(401, "TOKEN_INVALID");
    server.refresh(&session.refresh).await.expect_status(200);
}
