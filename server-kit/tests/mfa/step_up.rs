//! Step-up for the sensitive routes, and assurance that outlives refreshes and restarts.

use holdfast_server_kit::Stores;
use holdfast_server_kit::clock::{Clock, ManualClock};
use serde_json::json;

use super::support::{PASSWORD, TestServer, claims, email};
use super::{Backend, Kind, enable, sign_in, tokens_of};

pub async fn the_sensitive_routes_need_a_recent_check(kind: Kind) {
    let server = Backend::start(kind, |_| {}).await;
    let address = email("step-up");
    let first = server.sign_up(&address).await;
    let enrolled = enable(&server, &first).await;
    let pending = sign_in(&server, &address).await;
    let code = enrolled.next_code(&server);
    let verified = server
        .post_auth("/auth/mfa/verify", &pending.access, json!({ "code": code }))
        .await
        .expect_status(200);
    let (access, _) = tokens_of(&verified);
    // Eleven minutes on, past the ten-minute window (the access token still lives).
    server.clock.advance_ms(11 * 60_000);
    let stale = || async {
        let code = enrolled.next_code(&server);
        let replies = [
            server
                .post_auth(
                    "/auth/password/change",
                    &access,
                    json!({ "currentPassword": PASSWORD, "newPassword": "another long passphrase" }),
                )
                .await,
            server
                .post_auth("/auth/sessions/revoke-others", &access, json!({}))
                .await,
            server
                .delete_auth("/auth/me", &access, Some(json!({ "password": PASSWORD })))
                .await,
            server
                .post_auth("/auth/mfa/regenerate-codes", &access, json!({ "code": code }))
                .await,
            server
                .post_auth("/auth/mfa/disable", &access, json!({ "code": code }))
                .await,
        ];
        for reply in replies {
            reply.expect_error(403, "STEP_UP_REQUIRED");
        }
    };
    stale().await;
    // Nothing was done: MFA is on, the password unchanged, the account there.
    let status = server
        .get_auth("/auth/mfa/status", &access)
        .await
        .expect_status(200);
    assert_eq!(status.data()["enabled"], true);
    // A wrong code does not step up; a right one (from the app or a recovery code) does.
    server
        .post_auth("/auth/mfa/step-up", &access, json!({ "code": "12345x" }))
        .await
        .expect_error(400, "MFA_CODE_INVALID");
    let code = enrolled.next_code(&server);
    let stepped = server
        .post_auth("/auth/mfa/step-up", &access, json!({ "code": code }))
        .await
        .expect_status(200);
    let (fresh, _) = tokens_of(&stepped);
    let fresh_claims = claims(&fresh);
    assert_eq!(fresh_claims.auth_time, Some(server.now_secs()));
    assert_eq!(fresh_claims.aal, Some(2));
    assert_eq!(fresh_claims.fam, claims(&access).fam);
    server
        .post_auth("/auth/sessions/revoke-others", &fresh, json!({}))
        .await
        .expect_status(200);
    // The window closes again; a recovery code steps up as well.
    server.clock.advance_ms(11 * 60_000);
    server
        .post_auth("/auth/sessions/revoke-others", &fresh, json!({}))
        .await
        .expect_error(403, "STEP_UP_REQUIRED");
    let stepped = server
        .post_auth(
            "/auth/mfa/step-up",
            &fresh,
            json!({ "code": enrolled.recovery_codes[0] }),
        )
        .await
        .expect_status(200);
    let (latest, _) = tokens_of(&stepped);
    assert_eq!(
        claims(&latest).amr,
        Some(vec!["pwd".to_owned(), "otp".to_owned(), "rec".to_owned()])
    );
    // With a recent step-up, deleting the account needs no password.
    server
        .delete_auth("/auth/me", &latest, Some(json!({})))
        .await
        .expect_status(200);
    server.me(&latest).await.expect_error(404, "USER_NOT_FOUND");

    // An account without MFA is not asked to step up, however old its sign-in.
    let plain = server.sign_up(&email("no-mfa")).await;
    server.clock.advance_ms(11 * 60_000);
    server
        .post_auth("/auth/sessions/revoke-others", &plain.access, json!({}))
        .await
        .expect_status(200);
}

pub async fn assurance_survives_refresh_and_restart(kind: Kind) {
    let backend = Backend::start(kind, |_| {}).await;
    let address = email("restart");
    let first = backend.sign_up(&address).await;
    let enrolled = enable(&backend, &first).await;
    let pending = sign_in(&backend, &address).await;
    let code = enrolled.next_code(&backend);
    let verified = backend
        .post_auth("/auth/mfa/verify", &pending.access, json!({ "code": code }))
        .await
        .expect_status(200);
    let (access, refresh) = tokens_of(&verified);
    let before = claims(&access);
    // A second pending sign-in, left pending across the restart.
    let waiting = sign_in(&backend, &address).await;

    let now_ms = backend.now_ms();
    let Backend { server, kind, schema } = backend;
    let server = restart(server, kind, schema.as_ref(), now_ms).await;

    let refreshed = server.refresh(&refresh).await.expect_status(200);
    let after = claims(refreshed.data()["accessToken"].as_str().expect("access"));
    assert_eq!(
        (after.aal, after.amr.clone(), after.auth_time),
        (Some(2), before.amr.clone(), before.auth_time)
    );
    assert_eq!(after.fam, before.fam);
    let access = refreshed.data()["accessToken"]
        .as_str()
        .expect("access")
        .to_owned();
    let sessions = server
        .get_auth("/auth/sessions", &access)
        .await
        .expect_status(200);
    let listed = sessions.data().as_array().expect("list").clone();
    let current = listed
        .iter()
        .find(|s| s["current"] == true)
        .expect("the caller's");
    assert_eq!(current["aal"], 2);
    let other = listed.iter().find(|s| s["current"] == false && s["aal"] == 1);
    assert!(
        other.is_some(),
        "the pending session is listed at aal 1: {listed:?}"
    );
    // The pending one is still pending, and a code still completes it.
    let waiting_refreshed = server.refresh(&waiting.refresh).await.expect_status(200);
    let waiting_access = waiting_refreshed.data()["accessToken"]
        .as_str()
        .expect("access")
        .to_owned();
    assert!(claims(&waiting_access).mfa_pending());
    let code = enrolled.next_code(&server);
    server
        .post_auth("/auth/mfa/verify", &waiting_access, json!({ "code": code }))
        .await
        .expect_status(200);
}

/// A new server over the same data (the SQLite file, or the PostgreSQL schema through a
/// new pool), its clock at `now_ms`.
async fn restart(
    server: TestServer,
    kind: Kind,
    schema: Option<&super::TestSchema>,
    now_ms: i64,
) -> TestServer {
    match kind {
        Kind::Sqlite => {
            let server = server.restart(|_| {}).await;
            server.clock.set_ms(now_ms.max(server.clock.now_ms()));
            server
        }
        Kind::Postgres => {
            server.stop().await;
            let schema = schema.expect("a schema");
            let stores = Stores::postgres(&schema.url, Some(&schema.name))
                .await
                .expect("PostgreSQL again");
            TestServer::start_with_stores(stores, ManualClock::new(now_ms), |_| {}).await
        }
    }
}
