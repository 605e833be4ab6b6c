//! Email verification, account deletion, and disabled accounts.

use serde_json::json;

use super::support::{PASSWORD, email};
use super::{Backend, Kind};

pub async fn an_email_is_verified_by_its_token_once(kind: Kind) {
    let server = Backend::start(kind, |_| {}).await;
    let session = server.sign_up(&email("verify")).await;
    assert_eq!(session.user["emailVerified"], false);
    let sent = server
        .post_auth("/auth/verify/send", &session.access, json!({}))
        .await
        .expect_status(200);
    let token = sent.data()["token"]
        .as_str()
        .expect("a development-mode token")
        .to_owned();
    let confirmed = server
        .post_unproven("/auth/verify/confirm", json!({ "token": token }))
        .await
        .expect_status(200);
    assert_eq!(confirmed.data()["user"]["emailVerified"], true);
    assert_eq!(confirmed.data()["user"]["id"], session.user["id"]);
    let me = server.me(&session.access).await.expect_status(200);
    assert_eq!(me.data()["emailVerified"], true);
    for used in [token.as_str(), "unknown", ""] {
        server
            .post_unproven("/auth/verify/confirm", json!({ "token": used }))
            .await
            .expect_error(400, "VERIFY_TOKEN_INVALID");
    }
    // A verified address sends nothing more.
    let again = server
        .post_auth("/auth/verify/resend", &session.access, json!({}))
        .await
        .expect_status(200);
    assert_eq!(again.data(), &json!({ "success": true }));
}

pub async fn verification_mail_is_limited_and_bound_to_the_address(kind: Kind) {
    let server = Backend::start(kind, |_| {}).await;
    let address = email("limited");
    let session = server.sign_up(&address).await;
    // Another address than the account's is refused; the account's own is accepted.
    server
        .post_auth(
            "/auth/verify/send",
            &session.access,
            json!({ "email": email("other") }),
        )
        .await
        .expect_error(400, "VALIDATION_ERROR");
    let mut tokens = Vec::new();
    let first = server
        .post_auth(
            "/auth/verify/send",
            &session.access,
            json!({ "email": address.to_uppercase() }),
        )
        .await
        .expect_status(200);
    tokens.push(first.data()["token"].as_str().expect("token").to_owned());
    for _ in 0..2 {
        let resent = server
            .post_auth("/auth/verify/resend", &session.access, json!({}))
            .await
            .expect_status(200);
        tokens.push(resent.data()["token"].as_str().expect("token").to_owned());
    }
    let limited = server
        .post_auth("/auth/verify/resend", &session.access, json!({}))
        .await;
    limited.expect_error(429, "RATE_LIMITED");
    assert!(limited.header("retry-after").is_some());
    // An hour later, another can be sent; the earlier tokens still work for a day.
    server.clock.advance_ms(3_600_001);
    let refreshed = server.refresh(&session.refresh).await.expect_status(200);
    let access = refreshed.data()["accessToken"]
        .as_str()
        .expect("access")
        .to_owned();
    server
        .post_auth("/auth/verify/resend", &access, json!({}))
        .await
        .expect_status(200);
    server
        .post_unproven("/auth/verify/confirm", json!({ "token": tokens[1] }))
        .await
        .expect_status(200);
    // A day later an unused one is dead (and the address is verified anyway).
    server.clock.advance_ms(24 * 3_600_000);
    server
        .post_unproven("/auth/verify/confirm", json!({ "token": tokens[2] }))
        .await
        .expect_error(400, "VERIFY_TOKEN_INVALID");
    server
        .post_unproven("/auth/verify/send", json!({}))
        .await
        .expect_error(401, "TOKEN_INVALID");
}

pub async fn deleting_the_account_needs_its_password_and_ends_everything(kind: Kind) {
    let server = Backend::start(kind, |_| {}).await;
    let address = email("delete");
    let first = server.sign_up(&address).await;
    let phone = server.sign_in_device(&address, "phone").await;
    server
        .delete_auth("/auth/me", &phone.access, Some(json!({})))
        .await
        .expect_error(400, "VALIDATION_ERROR");
    server
        .delete_auth("/auth/me", &phone.access, None)
        .await
        .expect_error(400, "VALIDATION_ERROR");
    server
        .delete_auth(
            "/auth/me",
            &phone.access,
            Some(json!({ "password": "wrong password" })),
        )
        .await
        .expect_error(401, "INVALID_CREDENTIALS");
    server.me(&phone.access).await.expect_status(200);

    let reply = server
        .delete_auth("/auth/me", &phone.access, Some(json!({ "password": PASSWORD })))
        .await
        .expect_status(200);
    assert_eq!(reply.data(), &json!({ "success": true }));
    for session in [&first, &phone] {
        let refused = server.refresh(&session.refresh).await;
        refused.expect_error(404, "USER_NOT_FOUND");
        assert_eq!(refused.reason(), Some("account_deleted"));
    }
    server.me(&first.access).await.expect_error(404, "USER_NOT_FOUND");
    server
        .post_unproven("/auth/signin", json!({ "email": address, "password": PASSWORD }))
        .await
        .expect_error(401, "INVALID_CREDENTIALS");
    // The address is free again.
    server.sign_up(&address).await;
}

pub async fn a_disabled_account_is_refused_everywhere_until_enabled(kind: Kind) {
    let server = Backend::start(kind, |_| {}).await;
    let address = email("disabled");
    let session = server.sign_up(&address).await;
    let user_id = session.user_id().to_owned();
    assert!(server.service.disable_user(&user_id).await.expect("disable"));
    assert!(
        !server
            .service
            .disable_user("no-such-user")
            .await
            .expect("disable")
    );

    let refused = server.refresh(&session.refresh).await;
    refused.expect_error(403, "ACCOUNT_DISABLED");
    assert_eq!(refused.reason(), Some("account_disabled"));
    let me = server.me(&session.access).await;
    me.expect_error(403, "ACCOUNT_DISABLED");
    assert_eq!(me.reason(), Some("account_disabled"));
    server
        .post_unproven("/auth/signin", json!({ "email": address, "password": PASSWORD }))
        .await
        .expect_error(403, "ACCOUNT_DISABLED");
    // A wrong password does not learn that the account is disabled.
    server
        .post_unproven(
            "/auth/signin",
            json!({ "email": address, "password": "wrong password" }),
        )
        .await
        .expect_error(401, "INVALID_CREDENTIALS");
    // No reset mail for a disabled account (the answer is the same).
    let reply = server
        .post_unproven("/auth/password/reset-request", json!({ "email": address }))
        .await
        .expect_status(200);
    assert_eq!(reply.data(), &json!({ "success": true }));

    let found = server
        .service
        .find_user(&address)
        .await
        .expect("find")
        .expect("found");
    assert!(found.disabled_at_ms.is_some());
    assert!(server.service.enable_user(&user_id).await.expect("enable"));
    let back = server
        .post_unproven("/auth/signin", json!({ "email": address, "password": PASSWORD }))
        .await
        .expect_status(200);
    server
        .me(back.data()["tokens"]["accessToken"].as_str().expect("token"))
        .await
        .expect_status(200);
}
