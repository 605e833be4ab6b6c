//! Password change and reset (development mode: the reset token comes back in the
//! response; `smtp.rs` sends it through a real SMTP server).

use holdfast_server_kit::config::RateLimits;
use holdfast_server_kit::store::RateLimit;
use serde_json::json;

use super::sessions::list;
use super::support::{PASSWORD, Reply, Session, email};
use super::{Backend, Kind};

const NEW_PASSWORD: &str = "a brand new passphrase";

async fn sign_in(server: &Backend, address: &str, password: &str) -> Reply {
    server
        .post_unproven("/auth/signin", json!({ "email": address, "password": password }))
        .await
}

/// Asks for a reset of `address` and returns the development-mode token, if any.
async fn request_reset(server: &Backend, address: &str) -> Option<String> {
    let reply = server
        .post_unproven("/auth/password/reset-request", json!({ "email": address }))
        .await
        .expect_status(200);
    assert_eq!(reply.data()["success"], true, "{}", reply.text);
    reply.data()["token"].as_str().map(str::to_owned)
}

pub async fn a_password_change_renews_the_caller_and_ends_the_others(kind: Kind) {
    let server = Backend::start(kind, |_| {}).await;
    let address = email("change");
    let other = server.sign_up(&address).await;
    let caller = Session::from_reply(sign_in(&server, &address, PASSWORD).await.expect_status(200));

    let reply = server
        .post_auth(
            "/auth/password/change",
            &caller.access,
            json!({ "currentPassword": PASSWORD, "newPassword": NEW_PASSWORD }),
        )
        .await
        .expect_status(200);
    let tokens = &reply.data()["tokens"];
    let (access, refresh) = (
        tokens["accessToken"].as_str().expect("access").to_owned(),
        tokens["refreshToken"].as_str().expect("refresh").to_owned(),
    );
    // The caller's session goes on under the same id, with the new pair only.
    let before = super::support::claims(&caller.refresh).fam;
    assert_eq!(super::support::claims(&refresh).fam, before);
    server.me(&access).await.expect_status(200);
    server
        .refresh(&caller.refresh)
        .await
        .expect_error(401, "TOKEN_REVOKED");
    server.refresh(&refresh).await.expect_status(200);
    // Every other session ended, and says why.
    let ended = server.refresh(&other.refresh).await;
    ended.expect_error(401, "TOKEN_REVOKED");
    assert_eq!(ended.reason(), Some("password_changed"));
    assert_eq!(list(&server, &access).await.len(), 1);
    // The old password no longer signs in; the new one does.
    sign_in(&server, &address, PASSWORD)
        .await
        .expect_error(401, "INVALID_CREDENTIALS");
    sign_in(&server, &address, NEW_PASSWORD).await.expect_status(200);
    // A new password that breaks the rules is refused before anything changes.
    server
        .post_auth(
            "/auth/password/change",
            &access,
            json!({ "currentPassword": NEW_PASSWORD, "newPassword": "short" }),
        )
        .await
        .expect_error(400, "VALIDATION_ERROR");
    server
        .post_auth(
            "/auth/password/change",
            &access,
            json!({ "newPassword": NEW_PASSWORD }),
        )
        .await
        .expect_error(400, "VALIDATION_ERROR");
}

pub async fn a_wrong_current_password_is_refused_and_limited(kind: Kind) {
    let server = Backend::start(kind, |config| {
        config.rate_limits = RateLimits {
            sign_in: Some(RateLimit {
                max: 3,
                window_ms: 60_000,
            }),
            ..RateLimits::OFF
        };
    })
    .await;
    let session = server.sign_up(&email("wrong")).await;
    let attempt = |password: &'static str| {
        server.post_auth(
            "/auth/password/change",
            &session.access,
            json!({ "currentPassword": password, "newPassword": NEW_PASSWORD }),
        )
    };
    for _ in 0..3 {
        attempt("not the password")
            .await
            .expect_error(401, "INVALID_CREDENTIALS");
    }
    let limited = attempt(PASSWORD).await;
    limited.expect_error(429, "RATE_LIMITED");
    assert!(limited.header("retry-after").is_some());
    // Nothing changed: the session and the password still work.
    server.refresh(&session.refresh).await.expect_status(200);
}

pub async fn a_reset_ends_every_session_and_its_token_works_once(kind: Kind) {
    let server = Backend::start(kind, |_| {}).await;
    let address = email("reset");
    let first = server.sign_up(&address).await;
    let second = Session::from_reply(sign_in(&server, &address, PASSWORD).await.expect_status(200));
    let token = request_reset(&server, &address)
        .await
        .expect("a development-mode token");
    assert_eq!(token.len(), 43, "32 random bytes, base64url");

    // A new password that breaks the rules does not use the token up.
    server
        .post_unproven(
            "/auth/password/reset",
            json!({ "token": token, "newPassword": "short" }),
        )
        .await
        .expect_error(400, "VALIDATION_ERROR");
    server
        .post_unproven(
            "/auth/password/reset",
            json!({ "token": token, "newPassword": NEW_PASSWORD }),
        )
        .await
        .expect_status(200);
    for session in [&first, &second] {
        let reply = server.refresh(&session.refresh).await;
        reply.expect_error(401, "TOKEN_REVOKED");
        assert_eq!(reply.reason(), Some("password_reset"));
    }
    sign_in(&server, &address, NEW_PASSWORD).await.expect_status(200);
    for used in [token.as_str(), "not-a-token", ""] {
        server
            .post_unproven(
                "/auth/password/reset",
                json!({ "token": used, "newPassword": "yet another passphrase" }),
            )
            .await
            .expect_error(400, "RESET_TOKEN_INVALID");
    }
    server
        .post_unproven("/auth/password/reset", json!({ "newPassword": NEW_PASSWORD }))
        .await
        .expect_error(400, "VALIDATION_ERROR");
}

pub async fn reset_requests_answer_alike_and_store_only_hashes(kind: Kind) {
    let server = Backend::start(kind, |_| {}).await;
    let address = email("hashes");
    let session = server.sign_up(&address).await;
    // An unknown address gets the same 200 and body, without a token.
    let unknown = server
        .post_unproven(
            "/auth/password/reset-request",
            json!({ "email": email("nobody") }),
        )
        .await
        .expect_status(200);
    assert_eq!(unknown.data(), &json!({ "success": true }));
    server
        .post_unproven("/auth/password/reset-request", json!({ "email": "not an email" }))
        .await
        .expect_error(400, "VALIDATION_ERROR");

    let reset = request_reset(&server, &address).await.expect("a token");
    let verify = server
        .post_auth("/auth/verify/send", &session.access, json!({}))
        .await
        .expect_status(200);
    let verify = verify.data()["token"].as_str().expect("a token").to_owned();
    let rows = server.one_time_rows().await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    for token in [&reset, &verify] {
        let hash = hex::encode(ring::digest::digest(&ring::digest::SHA256, token.as_bytes()));
        assert!(
            rows.iter().any(|row| row[0] == hash),
            "the hash is stored: {rows:?}"
        );
        assert!(
            rows.iter()
                .flatten()
                .all(|column| !column.contains(token.as_str())),
            "the token itself is stored nowhere: {rows:?}"
        );
    }
    let kinds: Vec<&str> = rows.iter().map(|row| row[1].as_str()).collect();
    assert!(kinds.contains(&"password_reset") && kinds.contains(&"email_verification"));
}

pub async fn reset_tokens_expire_and_are_capped(kind: Kind) {
    let server = Backend::start(kind, |_| {}).await;
    let address = email("expire");
    server.sign_up(&address).await;
    let tokens: Vec<Option<String>> = {
        let mut tokens = Vec::new();
        for _ in 0..4 {
            tokens.push(request_reset(&server, &address).await);
        }
        tokens
    };
    assert!(tokens[..3].iter().all(Option::is_some));
    assert_eq!(tokens[3], None, "at most three live reset tokens per account");
    // An hour later they are all dead, and a new one can be asked for.
    server.clock.advance_ms(3_600_001);
    let stale = tokens[0].clone().expect("token");
    server
        .post_unproven(
            "/auth/password/reset",
            json!({ "token": stale, "newPassword": NEW_PASSWORD }),
        )
        .await
        .expect_error(400, "RESET_TOKEN_INVALID");
    assert!(request_reset(&server, &address).await.is_some());
    sign_in(&server, &address, PASSWORD).await.expect_status(200);
}
