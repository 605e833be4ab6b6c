//! `POST /auth/refresh` over loopback HTTP: rotation, the grace window (PROTOCOL 6.2),
//! reuse detection (section 3) and the standing checks of section 7.

mod support;

use std::collections::HashSet;

use holdfast_protocol::TokenType;
use serde_json::json;
use support::{DeviceKey, TestServer, claims, email};

/// The `{accessToken, refreshToken}` of a 200 refresh reply.
#[track_caller]
fn pair(reply: support::Reply) -> (String, String) {
    let reply = reply.expect_status(200);
    let data = reply.data().as_object().expect("object");
    assert_eq!(data.len(), 2, "{}", reply.text);
    (
        data["accessToken"].as_str().unwrap().to_owned(),
        data["refreshToken"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn refresh_rotates_both_tokens_of_the_session() {
    let server = TestServer::start(|_| {}).await;
    let key = DeviceKey::generate();
    let session = server.sign_up_device(&email("rotate"), "phone", &key).await;
    server.clock.advance_ms(2_000);
    let (access, refresh) = pair(server.refresh(&session.refresh).await);
    assert_ne!(access, session.access);
    assert_ne!(refresh, session.refresh);
    let (old, new) = (claims(&session.refresh), claims(&refresh));
    assert_eq!(claims(&access).token_type, TokenType::Access);
    assert_eq!(new.token_type, TokenType::Refresh);
    assert_eq!((new.sub.as_str(), new.dev.as_str()), (old.sub.as_str(), "phone"));
    assert_eq!(new.fam, old.fam, "one session, one family");
    assert_eq!(new.iat, old.iat + 2);
    assert_eq!(
        claims(&access).cnf.unwrap().jkt,
        key.thumbprint(),
        "the binding survives rotation"
    );
    server.me(&access).await.expect_status(200);
    // The child rotates in turn.
    pair(server.refresh(&refresh).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_parent_within_the_grace_window_gets_the_same_pair_again() {
    let server = TestServer::start(|_| {}).await;
    let session = server.sign_up(&email("grace")).await;
    let first = pair(server.refresh(&session.refresh).await);
    server.clock.advance_ms(29_000);
    let again = pair(server.refresh(&session.refresh).await);
    assert_eq!(again, first, "byte-identical pair");
    server.clock.advance_ms(1_000);
    assert_eq!(
        pair(server.refresh(&session.refresh).await),
        first,
        "30 s is still inside the window"
    );
    server.me(&first.0).await.expect_status(200);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_grace_window_survives_a_restart() {
    let server = TestServer::start(|_| {}).await;
    let session = server.sign_up(&email("restart")).await;
    let first = pair(server.refresh(&session.refresh).await);
    let server = server.restart(|_| {}).await;
    server.clock.advance_ms(10_000);
    assert_eq!(pair(server.refresh(&session.refresh).await), first);
    server.clock.advance_ms(30_000);
    server
        .refresh(&session.refresh)
        .await
        .expect_error(401, "REFRESH_REUSED");
    let server = server.restart(|_| {}).await;
    server.refresh(&first.1).await.expect_error(401, "TOKEN_REVOKED");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_parent_after_the_grace_window_is_reuse_and_ends_the_session() {
    let server = TestServer::start(|_| {}).await;
    let session = server.sign_up(&email("reuse")).await;
    let (child_access, child_refresh) = pair(server.refresh(&session.refresh).await);
    server.clock.advance_ms(30_001);
    server
        .refresh(&session.refresh)
        .await
        .expect_error(401, "REFRESH_REUSED");
    server
        .refresh(&child_refresh)
        .await
        .expect_error(401, "TOKEN_REVOKED");
    server.me(&child_access).await.expect_error(401, "TOKEN_REVOKED");
    server
        .me(&session.access)
        .await
        .expect_error(401, "TOKEN_REVOKED");
    // Presenting the parent again stays refused.
    let again = server.refresh(&session.refresh).await;
    assert_eq!(again.status, 401, "{}", again.text);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_zero_grace_window_makes_any_second_presentation_reuse() {
    let server = TestServer::start(|config| config.grace_window_ms = 0).await;
    let session = server.sign_up(&email("nograce")).await;
    pair(server.refresh(&session.refresh).await);
    // Same millisecond on the manual clock: still reuse, the window is off.
    server
        .refresh(&session.refresh)
        .await
        .expect_error(401, "REFRESH_REUSED");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_older_ancestor_within_the_window_is_reuse() {
    let server = TestServer::start(|_| {}).await;
    let session = server.sign_up(&email("ancestor")).await;
    let (_, child) = pair(server.refresh(&session.refresh).await);
    let (grandchild_access, grandchild) = pair(server.refresh(&child).await);
    server.clock.advance_ms(1_000);
    // The immediate parent of the current token still gets its children again...
    assert_eq!(
        pair(server.refresh(&child).await),
        (grandchild_access.clone(), grandchild.clone())
    );
    // ...but its own parent is an older ancestor now.
    server
        .refresh(&session.refresh)
        .await
        .expect_error(401, "REFRESH_REUSED");
    server
        .refresh(&grandchild)
        .await
        .expect_error(401, "TOKEN_REVOKED");
    server
        .me(&grandchild_access)
        .await
        .expect_error(401, "TOKEN_REVOKED");
}

#[tokio::test(flavor = "multi_thread")]
async fn reuse_ends_only_that_session() {
    let server = TestServer::start(|_| {}).await;
    let address = email("two-sessions");
    let stolen = server.sign_up(&address).await;
    let other = server.sign_in_device(&address, "tablet").await;
    pair(server.refresh(&stolen.refresh).await);
    server.clock.advance_ms(31_000);
    server
        .refresh(&stolen.refresh)
        .await
        .expect_error(401, "REFRESH_REUSED");
    server.me(&other.access).await.expect_status(200);
    pair(server.refresh(&other.refresh).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_of_the_wrong_type_or_shape_are_invalid() {
    let server = TestServer::start(|_| {}).await;
    let key = DeviceKey::generate();
    let session = server.sign_up_device(&email("types"), "phone", &key).await;
    server
        .refresh(&session.access)
        .await
        .expect_error(401, "TOKEN_INVALID");
    let registration = server
        .post_auth(
            "/auth/device/register",
            &session.access,
            json!({ "deviceId": "phone", "publicKey": key.jwk(), "name": "Phone" }),
        )
        .await
        .expect_status(201);
    let credential = registration.data()["deviceCredential"]
        .as_str()
        .unwrap()
        .to_owned();
    server
        .refresh(&credential)
        .await
        .expect_error(401, "TOKEN_INVALID");
    for garbage in ["", "not a token", "a.b.c"] {
        server.refresh(garbage).await.expect_error(401, "TOKEN_INVALID");
    }
    // The refused attempts consumed nothing.
    pair(server.refresh(&session.refresh).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refresh_token_is_accepted_until_exp_plus_five_seconds() {
    let server = TestServer::start(|config| config.refresh_ttl_secs = 3_600).await;
    let session = server.sign_up(&email("expiry")).await;
    let exp = claims(&session.refresh).exp;
    server.clock.set_ms((exp + 6) * 1000);
    server
        .refresh(&session.refresh)
        .await
        .expect_error(401, "TOKEN_EXPIRED");
    server.clock.set_ms((exp + 5) * 1000 + 999);
    pair(server.refresh(&session.refresh).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn refresh_of_a_revoked_device_is_refused() {
    let server = TestServer::start(|_| {}).await;
    let address = email("revoked");
    let keeper = server.sign_up(&address).await;
    let lost = server.sign_in_device(&address, "lost-phone").await;
    server
        .revoke(&keeper.access, "lost-phone")
        .await
        .expect_status(200);
    server
        .refresh(&lost.refresh)
        .await
        .expect_error(403, "DEVICE_REVOKED");
    pair(server.refresh(&keeper.refresh).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn refresh_after_the_account_was_deleted_is_refused() {
    let server = TestServer::start(|_| {}).await;
    let session = server.sign_up(&email("deleted")).await;
    assert!(server.stores.users.delete_user(session.user_id()).await.unwrap());
    server
        .refresh(&session.refresh)
        .await
        .expect_error(404, "USER_NOT_FOUND");
    server
        .me(&session.access)
        .await
        .expect_error(404, "USER_NOT_FOUND");
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_refreshes_of_one_token_never_fork_the_session() {
    let server = TestServer::start(|_| {}).await;
    let session = server.sign_up(&email("race")).await;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let request = server.request(reqwest::Method::POST, "/auth/refresh");
        let body = json!({ "refreshToken": session.refresh });
        tasks.spawn(async move { support::Reply::read(request.json(&body)).await });
    }
    let mut pairs = HashSet::new();
    while let Some(reply) = tasks.join_next().await {
        // Within the grace window every retry is answered with the one child pair.
        pairs.insert(pair(reply.expect("task")));
    }
    assert_eq!(
        pairs.len(),
        1,
        "one successful rotation, whatever the interleaving"
    );
    let (access, refresh) = pairs.into_iter().next().unwrap();
    server.me(&access).await.expect_status(200);
    pair(server.refresh(&refresh).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn key_rotation_accepts_tokens_of_the_old_secret() {
    let old = "old-secret-0123456789abcdefghijklmnopq".to_owned();
    let new = "new-secret-0123456789abcdefghijklmnopq".to_owned();
    let before = TestServer::start(|config| config.secrets = vec![old.clone()]).await;
    let session = before.sign_up(&email("rotation")).await;
    let after = before
        .start_sharing(|config| config.secrets = vec![new.clone(), old.clone()])
        .await;
    after.me(&session.access).await.expect_status(200);
    let (access, refresh) = pair(after.refresh(&session.refresh).await);
    after.me(&access).await.expect_status(200);
    // The new pair is signed with the new secret, which the old server does not know.
    before.me(&access).await.expect_error(401, "TOKEN_INVALID");
    before.refresh(&refresh).await.expect_error(401, "TOKEN_INVALID");
    // And a server that dropped the old secret refuses the old tokens.
    let dropped = before
        .start_sharing(|config| config.secrets = vec![new.clone()])
        .await;
    dropped
        .me(&session.access)
        .await
        .expect_error(401, "TOKEN_INVALID");
}
