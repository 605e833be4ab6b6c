//! Listing and ending sessions, and the session limits.

use reqwest::Method;
use serde_json::{Value, json};

use super::support::{PASSWORD, Reply, Session, email};
use super::{Backend, Kind};

/// Signs `address` in on `device` with a user agent of its own.
async fn sign_in(server: &Backend, address: &str, device: &str) -> Session {
    let reply = Reply::read(
        server
            .request(Method::POST, "/auth/signin")
            .header("User-Agent", format!("HoldfastTest/{device}"))
            .json(&json!({ "email": address, "password": PASSWORD, "deviceId": device })),
    )
    .await
    .expect_status(200);
    Session::from_reply(reply)
}

/// The caller's sessions as `GET /sessions` lists them.
pub async fn list(server: &Backend, token: &str) -> Vec<Value> {
    let reply = server.get_auth("/auth/sessions", token).await.expect_status(200);
    reply.data().as_array().expect("an array of sessions").clone()
}

fn family(session: &Session) -> String {
    super::support::claims(&session.refresh).fam.expect("a family")
}

/// Asserts that `session`'s refresh is refused with `code` and `reason`.
#[track_caller]
fn refused(reply: &Reply, status: u16, code: &str, reason: &str) {
    reply.expect_error(status, code);
    assert_eq!(reply.reason(), Some(reason), "{}", reply.text);
}

pub async fn sessions_are_listed_newest_first_with_the_callers_marked(kind: Kind) {
    let server = Backend::start(kind, |_| {}).await;
    let address = email("list");
    server.sign_up(&address).await;
    server.clock.advance_ms(1_000);
    let phone = sign_in(&server, &address, "phone").await;
    server.clock.advance_ms(1_000);
    let laptop = sign_in(&server, &address, "laptop").await;

    let listed = list(&server, &laptop.access).await;
    // The sign-up's session, the phone's and the laptop's.
    assert_eq!(listed.len(), 3, "{listed:?}");
    let newest = &listed[0];
    assert_eq!(newest["id"], family(&laptop));
    assert_eq!(newest["deviceId"], "laptop");
    assert_eq!(newest["current"], true);
    assert_eq!(newest["ipAddress"], "127.0.0.1");
    assert_eq!(newest["userAgent"], "HoldfastTest/laptop");
    assert_eq!(newest["aal"], 1);
    assert_eq!(newest["createdAt"], newest["lastUsedAt"]);
    assert_eq!(listed[1]["id"], family(&phone));
    assert_eq!(listed[1]["current"], false);
    // The sign-up sent no user agent.
    assert_eq!(listed[2]["userAgent"], Value::Null);
    let members: Vec<&str> = newest
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        members.len(),
        8,
        "id, deviceId, createdAt, lastUsedAt, ipAddress, userAgent, aal, current: {members:?}"
    );

    // A refresh moves the phone's lastUsedAt, never its createdAt.
    server.clock.advance_ms(5_000);
    server.refresh(&phone.refresh).await.expect_status(200);
    let listed = list(&server, &laptop.access).await;
    let phone_row = listed
        .iter()
        .find(|s| s["id"] == family(&phone))
        .expect("phone listed");
    assert_eq!(phone_row["lastUsedAt"], server.now_ms());
    assert!(phone_row["createdAt"].as_i64() < phone_row["lastUsedAt"].as_i64());
}

pub async fn one_session_ends_and_says_so_at_its_refresh(kind: Kind) {
    let server = Backend::start(kind, |_| {}).await;
    let address = email("one");
    server.sign_up(&address).await;
    let phone = sign_in(&server, &address, "phone").await;
    let laptop = sign_in(&server, &address, "laptop").await;

    let path = format!("/auth/sessions/{}", family(&phone));
    let reply = server
        .delete_auth(&path, &laptop.access, None)
        .await
        .expect_status(200);
    assert_eq!(reply.data(), &json!({ "success": true }));
    refused(
        &server.refresh(&phone.refresh).await,
        401,
        "TOKEN_REVOKED",
        "revoked",
    );
    server.me(&phone.access).await.expect_error(401, "TOKEN_REVOKED");
    assert!(
        list(&server, &laptop.access)
            .await
            .iter()
            .all(|s| s["id"] != family(&phone))
    );
    // Ending it again, or a session that never was, is 404.
    server
        .delete_auth(&path, &laptop.access, None)
        .await
        .expect_error(404, "NOT_FOUND");
    server
        .delete_auth("/auth/sessions/no-such-session", &laptop.access, None)
        .await
        .expect_error(404, "NOT_FOUND");
    server.refresh(&laptop.refresh).await.expect_status(200);
}

pub async fn another_users_session_is_not_found(kind: Kind) {
    let server = Backend::start(kind, |_| {}).await;
    let alice = server.sign_up(&email("alice")).await;
    let bob = server.sign_up(&email("bob")).await;
    let path = format!("/auth/sessions/{}", family(&alice));
    server
        .delete_auth(&path, &bob.access, None)
        .await
        .expect_error(404, "NOT_FOUND");
    server.refresh(&alice.refresh).await.expect_status(200);
    // And it is not in Bob's list.
    assert_eq!(list(&server, &bob.access).await.len(), 1);
}

pub async fn revoke_others_keeps_only_the_caller(kind: Kind) {
    let server = Backend::start(kind, |_| {}).await;
    let address = email("others");
    let first = server.sign_up(&address).await;
    let phone = sign_in(&server, &address, "phone").await;
    let laptop = sign_in(&server, &address, "laptop").await;

    let reply = server
        .post_auth("/auth/sessions/revoke-others", &laptop.access, json!({}))
        .await
        .expect_status(200);
    assert_eq!(reply.data(), &json!({ "revoked": 2 }));
    for ended in [&first, &phone] {
        refused(
            &server.refresh(&ended.refresh).await,
            401,
            "TOKEN_REVOKED",
            "revoked_by_other_session",
        );
    }
    let listed = list(&server, &laptop.access).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["current"], true);
    let again = server
        .post_auth("/auth/sessions/revoke-others", &laptop.access, json!({}))
        .await
        .expect_status(200);
    assert_eq!(again.data(), &json!({ "revoked": 0 }));
    server.refresh(&laptop.refresh).await.expect_status(200);
}

pub async fn sign_out_all_ends_every_session(kind: Kind) {
    let server = Backend::start(kind, |_| {}).await;
    let address = email("all");
    let first = server.sign_up(&address).await;
    let phone = sign_in(&server, &address, "phone").await;
    let reply = server
        .post_auth("/auth/signout-all", &phone.access, json!({}))
        .await
        .expect_status(200);
    assert_eq!(reply.data(), &json!({ "revoked": 2 }));
    server.me(&phone.access).await.expect_error(401, "TOKEN_REVOKED");
    for ended in [&first, &phone] {
        refused(
            &server.refresh(&ended.refresh).await,
            401,
            "TOKEN_REVOKED",
            "signed_out_everywhere",
        );
    }
    // A body that is not an object is refused; so is a missing token.
    let fresh = sign_in(&server, &address, "phone").await;
    server
        .post_auth("/auth/signout-all", &fresh.access, json!(5))
        .await
        .expect_error(400, "VALIDATION_ERROR");
    server
        .post_unproven("/auth/signout-all", json!({}))
        .await
        .expect_error(401, "TOKEN_INVALID");
}

pub async fn an_idle_session_expires(kind: Kind) {
    let server = Backend::start(kind, |config| config.sessions.idle_timeout_ms = Some(60_000)).await;
    let address = email("idle");
    let session = server.sign_up(&address).await;
    let busy = sign_in(&server, &address, "busy").await;
    server.clock.advance_ms(59_000);
    let busy = Session {
        refresh: server.refresh(&busy.refresh).await.expect_status(200).data()["refreshToken"]
            .as_str()
            .expect("refresh token")
            .to_owned(),
        ..busy
    };
    server.clock.advance_ms(2_000);
    refused(
        &server.refresh(&session.refresh).await,
        401,
        "SESSION_EXPIRED",
        "expired",
    );
    // Refreshed within the timeout, the other one lives on, and the list shows only it.
    server.refresh(&busy.refresh).await.expect_status(200);
    let fresh = sign_in(&server, &address, "fresh").await;
    let listed = list(&server, &fresh.access).await;
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert!(listed.iter().all(|s| s["id"] != family(&session)));
}

pub async fn a_session_ends_at_its_absolute_lifetime(kind: Kind) {
    let server = Backend::start(kind, |config| config.sessions.max_lifetime_ms = Some(120_000)).await;
    let mut session = server.sign_up(&email("lifetime")).await;
    for _ in 0..2 {
        server.clock.advance_ms(50_000);
        let reply = server.refresh(&session.refresh).await.expect_status(200);
        session.refresh = reply.data()["refreshToken"].as_str().expect("token").to_owned();
    }
    server.clock.advance_ms(21_000);
    refused(
        &server.refresh(&session.refresh).await,
        401,
        "SESSION_EXPIRED",
        "expired",
    );
    // The maintenance sweep ends expired sessions too (here: none left to end).
    assert_eq!(server.service.expire_sessions().await.expect("sweep"), 0);
}

pub async fn a_sign_in_beyond_the_maximum_ends_the_least_recently_used(kind: Kind) {
    let server = Backend::start(kind, |config| config.sessions.max_per_user = Some(2)).await;
    let address = email("max");
    let first = server.sign_up(&address).await;
    server.clock.advance_ms(1_000);
    let second = sign_in(&server, &address, "second").await;
    server.clock.advance_ms(1_000);
    // The first is used after the second started: the second is now the least recently used.
    let first_pair = server.refresh(&first.refresh).await.expect_status(200);
    server.clock.advance_ms(1_000);
    let third = sign_in(&server, &address, "third").await;
    refused(
        &server.refresh(&second.refresh).await,
        401,
        "TOKEN_REVOKED",
        "session_limit",
    );
    server
        .refresh(first_pair.data()["refreshToken"].as_str().expect("token"))
        .await
        .expect_status(200);
    let listed = list(&server, &third.access).await;
    assert_eq!(listed.len(), 2);
}

pub async fn sign_out_and_device_revocation_say_why(kind: Kind) {
    let server = Backend::start(kind, |_| {}).await;
    let address = email("why");
    let first = server.sign_up(&address).await;
    let phone = sign_in(&server, &address, "phone").await;
    server
        .post_auth(
            "/auth/signout",
            &first.access,
            json!({ "refreshToken": first.refresh }),
        )
        .await
        .expect_status(200);
    refused(
        &server.refresh(&first.refresh).await,
        401,
        "TOKEN_REVOKED",
        "signed_out",
    );
    let laptop = sign_in(&server, &address, "laptop").await;
    server.revoke(&laptop.access, "phone").await.expect_status(200);
    refused(
        &server.refresh(&phone.refresh).await,
        403,
        "DEVICE_REVOKED",
        "device_revoked",
    );
    let listed = list(&server, &laptop.access).await;
    assert_eq!(listed.len(), 1, "only the laptop's session is live: {listed:?}");
}

pub async fn a_session_ended_on_purpose_is_not_undone_by_device_relogin(kind: Kind) {
    use super::support::DeviceKey;
    let server = Backend::start(kind, |_| {}).await;
    let address = email("relogin");
    let key = DeviceKey::generate();
    let phone = server.sign_up_device(&address, "phone", &key).await;
    let laptop = sign_in(&server, &address, "laptop").await;

    // Reuse detected: the device's key may replace the ended session.
    server.refresh(&phone.refresh).await.expect_status(200);
    server.clock.advance_ms(31_000);
    server
        .refresh(&phone.refresh)
        .await
        .expect_error(401, "REFRESH_REUSED");
    let challenge = server.challenge("phone", None).await;
    let relogin = server
        .verify("phone", &challenge, &key.sign(&challenge))
        .await
        .expect_status(200);
    let access = relogin.data()["tokens"]["accessToken"]
        .as_str()
        .expect("access")
        .to_owned();

    // Ended from the laptop: the key cannot bring it back, and says why.
    let family = super::support::claims(&access).fam.expect("family");
    server
        .delete_auth(&format!("/auth/sessions/{family}"), &laptop.access, None)
        .await
        .expect_status(200);
    let challenge = server.challenge("phone", None).await;
    let refused = server.verify("phone", &challenge, &key.sign(&challenge)).await;
    refused.expect_error(401, "TOKEN_REVOKED");
    assert_eq!(refused.reason(), Some("revoked"));
    // A password sign-in on the device starts over, and re-login works again after it.
    let again = server.sign_in_device(&address, "phone").await;
    server.refresh(&again.refresh).await.expect_status(200);
    let challenge = server.challenge("phone", None).await;
    server
        .verify("phone", &challenge, &key.sign(&challenge))
        .await
        .expect_status(200);
}
