//! Every revocation through the routes is seen by the very next bearer request, even with
//! the standing of every token cached (an hour's max age here, so only the revocation bus
//! can explain the refusals).

mod support;

use std::time::Duration;

use serde_json::json;
use support::{PASSWORD, Session, TestServer, claims, email};

const NEW_PASSWORD: &str = "another correct horse battery staple";

async fn start() -> TestServer {
    TestServer::start(|config| config.standing_cache_ttl = Duration::from_secs(3600)).await
}

/// Caches the standing of every one of `sessions`.
async fn warm(server: &TestServer, sessions: &[&Session]) {
    for session in sessions {
        server.me(&session.access).await.expect_status(200);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_out_and_session_and_device_revocations_are_seen_at_once() {
    let server = start().await;
    let address = email("cached-revocations");
    let first = server.sign_up(&address).await;
    let phone = server.sign_in_device(&address, "phone").await;
    let tablet = server.sign_in_device(&address, "tablet").await;
    let laptop = server.sign_in_device(&address, "laptop").await;
    warm(&server, &[&first, &phone, &tablet, &laptop]).await;

    server
        .post_auth(
            "/auth/signout",
            &first.access,
            json!({ "refreshToken": first.refresh }),
        )
        .await
        .expect_status(200);
    server.me(&first.access).await.expect_error(401, "TOKEN_REVOKED");

    let family = claims(&phone.refresh).fam.expect("a family");
    server
        .delete_auth(&format!("/auth/sessions/{family}"), &laptop.access, None)
        .await
        .expect_status(200);
    server.me(&phone.access).await.expect_error(401, "TOKEN_REVOKED");

    server.revoke(&laptop.access, "tablet").await.expect_status(200);
    let revoked = server.me(&tablet.access).await;
    assert_eq!(revoked.code(), Some("DEVICE_REVOKED"), "{}", revoked.text);
    server.me(&laptop.access).await.expect_status(200);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_password_change_is_seen_at_once_by_every_session() {
    let server = start().await;
    let address = email("cached-password");
    let caller = server.sign_up(&address).await;
    let other = server.sign_in_device(&address, "other").await;
    warm(&server, &[&caller, &other]).await;
    let reply = server
        .post_auth(
            "/auth/password/change",
            &caller.access,
            json!({ "currentPassword": PASSWORD, "newPassword": NEW_PASSWORD }),
        )
        .await
        .expect_status(200);
    server.me(&other.access).await.expect_error(401, "TOKEN_REVOKED");
    let access = reply.data()["tokens"]["accessToken"]
        .as_str()
        .expect("access")
        .to_owned();
    server.me(&access).await.expect_status(200);
    // The cached record carries the new hash: the new password is the current one.
    server
        .post_auth(
            "/auth/password/change",
            &access,
            json!({ "currentPassword": NEW_PASSWORD, "newPassword": PASSWORD }),
        )
        .await
        .expect_status(200);
}

#[tokio::test(flavor = "multi_thread")]
async fn disabling_and_deleting_an_account_are_seen_at_once() {
    let server = start().await;
    let disabled = server.sign_up(&email("cached-disabled")).await;
    let deleted = server.sign_up(&email("cached-deleted")).await;
    warm(&server, &[&disabled, &deleted]).await;

    assert!(
        server
            .service
            .disable_user(disabled.user_id())
            .await
            .expect("disable")
    );
    server
        .me(&disabled.access)
        .await
        .expect_error(403, "ACCOUNT_DISABLED");

    server
        .delete_auth("/auth/me", &deleted.access, Some(json!({ "password": PASSWORD })))
        .await
        .expect_status(200);
    let gone = server.me(&deleted.access).await;
    assert_eq!(gone.code(), Some("USER_NOT_FOUND"), "{}", gone.text);
}

/// `GET /me` answers from the cached standing (its body encoded once): a change of the
/// account through the routes shows in the very next answer, with the same token.
#[tokio::test(flavor = "multi_thread")]
async fn me_answers_the_account_as_it_is_now_with_the_standing_cached() {
    let server = start().await;
    let caller = server.sign_up(&email("cached-me")).await;
    for _ in 0..3 {
        let me = server.me(&caller.access).await.expect_status(200);
        assert_eq!(me.data()["emailVerified"], false, "{}", me.text);
    }
    let sent = server
        .post_auth("/auth/verify/send", &caller.access, json!({}))
        .await
        .expect_status(200);
    let token = sent.data()["token"]
        .as_str()
        .expect("a token without a mailer")
        .to_owned();
    server
        .post_unproven("/auth/verify/confirm", json!({ "token": token }))
        .await
        .expect_status(200);
    let me = server.me(&caller.access).await.expect_status(200);
    assert_eq!(me.data()["emailVerified"], true, "{}", me.text);
    assert_eq!(me.data()["id"], caller.user["id"], "{}", me.text);
}
