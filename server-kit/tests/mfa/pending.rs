//! Pending sign-ins and completing them; a code's single acceptance; attempt limits; the
//! sync gate; device re-login.

use holdfast_server_kit::gate::{GateConfig, Handshake, SyncGate};
use holdfast_server_kit::store::RateLimit;
use serde_json::json;

use super::support::{DeviceKey, PASSWORD, Session, claims, email};
use super::{Backend, Kind, enable, sign_in, tokens_of};

pub async fn a_sign_in_with_mfa_is_pending_until_a_code(kind: Kind) {
    let server = Backend::start(kind, |_| {}).await;
    let address = email("pending");
    let first = server.sign_up(&address).await;
    // Without MFA: aal 1, no `mfa` claim.
    let plain = claims(&first.access);
    assert_eq!((plain.aal, plain.mfa), (Some(1), None));
    let enrolled = enable(&server, &first).await;

    // Kora's response shape, as Kora's client signs in (device fields, no proof).
    let reply = server
        .post_unproven(
            "/auth/signin",
            json!({ "email": address, "password": PASSWORD, "deviceId": "web-1",
                    "devicePublicKey": DeviceKey::generate().kora_jwk() }),
        )
        .await
        .expect_status(200);
    let pending = Session::from_reply(reply);
    let pending_claims = claims(&pending.access);
    assert_eq!(pending_claims.aal, Some(1));
    assert!(pending_claims.mfa_pending());
    assert!(claims(&pending.refresh).mfa_pending());
    // Only /me, /signout, /mfa/verify and /mfa/recover take it.
    server.me(&pending.access).await.expect_status(200);
    for path in ["/auth/devices", "/auth/sessions", "/auth/mfa/status"] {
        server
            .get_auth(path, &pending.access)
            .await
            .expect_error(403, "MFA_REQUIRED");
    }
    for path in [
        "/auth/mfa/enable",
        "/auth/mfa/step-up",
        "/auth/sessions/revoke-others",
        "/auth/verify/resend",
    ] {
        server
            .post_auth(path, &pending.access, json!({}))
            .await
            .expect_error(403, "MFA_REQUIRED");
    }
    server
        .post_auth(
            "/auth/password/change",
            &pending.access,
            json!({ "currentPassword": PASSWORD, "newPassword": "another long passphrase" }),
        )
        .await
        .expect_error(403, "MFA_REQUIRED");
    server
        .delete_auth("/auth/me", &pending.access, Some(json!({ "password": PASSWORD })))
        .await
        .expect_error(403, "MFA_REQUIRED");
    // A refresh keeps it pending.
    let refreshed = server.refresh(&pending.refresh).await.expect_status(200);
    let (access, refresh) = (
        refreshed.data()["accessToken"]
            .as_str()
            .expect("access")
            .to_owned(),
        refreshed.data()["refreshToken"]
            .as_str()
            .expect("refresh")
            .to_owned(),
    );
    assert!(claims(&access).mfa_pending() && claims(&refresh).mfa_pending());
    server
        .get_auth("/auth/devices", &access)
        .await
        .expect_error(403, "MFA_REQUIRED");

    // A wrong code changes nothing; the right one gives aal 2 tokens of the same session.
    server
        .post_auth("/auth/mfa/verify", &access, json!({ "code": "999999x" }))
        .await
        .expect_error(400, "MFA_CODE_INVALID");
    let code = enrolled.next_code(&server);
    let verified = server
        .post_auth("/auth/mfa/verify", &access, json!({ "code": code }))
        .await
        .expect_status(200);
    let (access2, refresh2) = tokens_of(&verified);
    let upgraded = claims(&access2);
    assert_eq!(upgraded.aal, Some(2));
    assert_eq!(upgraded.amr, Some(vec!["pwd".to_owned(), "otp".to_owned()]));
    assert_eq!(upgraded.auth_time, Some(server.now_secs()));
    assert_eq!(upgraded.mfa, None);
    assert_eq!(upgraded.fam, pending_claims.fam, "the same session");
    server
        .get_auth("/auth/devices", &access2)
        .await
        .expect_status(200);
    // The pending refresh tokens of the session are dead: none can mint aal 2 tokens.
    server.refresh(&refresh).await.expect_error(401, "TOKEN_REVOKED");
    // The session list shows its aal.
    let sessions = server
        .get_auth("/auth/sessions", &access2)
        .await
        .expect_status(200);
    let current = sessions
        .data()
        .as_array()
        .expect("list")
        .iter()
        .find(|s| s["current"] == true)
        .cloned();
    assert_eq!(current.expect("the caller's")["aal"], 2);
    // A refresh keeps aal 2 and its methods.
    let again = server.refresh(&refresh2).await.expect_status(200);
    let kept = claims(again.data()["accessToken"].as_str().expect("access"));
    assert_eq!(
        (kept.aal, kept.amr.clone(), kept.mfa),
        (Some(2), upgraded.amr.clone(), None)
    );
    assert_eq!(kept.auth_time, upgraded.auth_time);
    // A pending session may sign out.
    let other = sign_in(&server, &address).await;
    server
        .post_auth(
            "/auth/signout",
            &other.access,
            json!({ "refreshToken": other.refresh }),
        )
        .await
        .expect_status(200);
    server
        .refresh(&other.refresh)
        .await
        .expect_error(401, "TOKEN_REVOKED");
}

pub async fn a_recovery_code_completes_a_sign_in(kind: Kind) {
    let server = Backend::start(kind, |_| {}).await;
    let address = email("recover");
    let first = server.sign_up(&address).await;
    let enrolled = enable(&server, &first).await;
    let pending = sign_in(&server, &address).await;
    // A code from the app is no recovery code, and the reverse.
    server
        .post_auth(
            "/auth/mfa/recover",
            &pending.access,
            json!({ "recoveryCode": "123456" }),
        )
        .await
        .expect_error(400, "MFA_CODE_INVALID");
    server
        .post_auth(
            "/auth/mfa/verify",
            &pending.access,
            json!({ "code": enrolled.recovery_codes[0] }),
        )
        .await
        .expect_error(400, "MFA_CODE_INVALID");
    let reply = server
        .post_auth(
            "/auth/mfa/recover",
            &pending.access,
            json!({ "recoveryCode": enrolled.recovery_codes[0].replace('-', " ") }),
        )
        .await
        .expect_status(200);
    let (access, _) = tokens_of(&reply);
    let recovered = claims(&access);
    assert_eq!(recovered.aal, Some(2));
    assert_eq!(recovered.amr, Some(vec!["pwd".to_owned(), "rec".to_owned()]));
    server.get_auth("/auth/devices", &access).await.expect_status(200);
}

pub async fn a_code_is_accepted_once_and_wrong_codes_are_limited(kind: Kind) {
    let server = Backend::start(kind, |config| {
        config.mfa.attempts = Some(RateLimit {
            max: 4,
            window_ms: 120_000,
        });
    })
    .await;
    let address = email("once");
    let first = server.sign_up(&address).await;
    let enrolled = enable(&server, &first).await;
    let a = sign_in(&server, &address).await;
    let b = sign_in(&server, &address).await;
    let code = enrolled.next_code(&server);
    server
        .post_auth("/auth/mfa/verify", &a.access, json!({ "code": code }))
        .await
        .expect_status(200);
    // The same code again, on another session: a replay.
    server
        .post_auth("/auth/mfa/verify", &b.access, json!({ "code": code }))
        .await
        .expect_error(400, "MFA_CODE_INVALID");
    // An older step after a newer one was accepted: refused too.
    let older = super::code_at(&enrolled.secret, server.now_secs() - 30);
    server
        .post_auth("/auth/mfa/verify", &b.access, json!({ "code": older }))
        .await
        .expect_error(400, "MFA_CODE_INVALID");
    // Four attempts in two minutes (the confirmation, the three above) were the limit:
    // even the right code waits now.
    let next = enrolled.next_code(&server);
    let limited = server
        .post_auth("/auth/mfa/verify", &b.access, json!({ "code": next }))
        .await;
    limited.expect_error(429, "RATE_LIMITED");
    assert!(limited.header("retry-after").is_some());
    // After the window, the user's next code works.
    server.clock.advance_ms(121_000);
    let later = enrolled.next_code(&server);
    server
        .post_auth("/auth/mfa/verify", &b.access, json!({ "code": later }))
        .await
        .expect_status(200);
}

pub async fn the_sync_gate_refuses_pending_tokens(kind: Kind) {
    let server = Backend::start(kind, |_| {}).await;
    let address = email("gate");
    let first = server.sign_up(&address).await;
    let enrolled = enable(&server, &first).await;
    let gate = SyncGate::new(
        &server.service,
        GateConfig {
            allow_unregistered_devices: true,
            ..GateConfig::default()
        },
    );
    let admit = |token: String| {
        let gate = gate.clone();
        async move {
            gate.admit(&Handshake {
                access_token: &token,
                proof: None,
                method: "GET",
                url: "https://sync.example.com/sync",
            })
            .await
        }
    };
    let pending = sign_in(&server, &address).await;
    let refused = admit(pending.access.clone())
        .await
        .expect_err("pending is refused");
    assert_eq!(refused.code.as_str(), "MFA_REQUIRED");
    assert_eq!(refused.status(), 403);
    // Also through the kit's token check for other transports.
    let other = server.service.authenticate_token(&pending.access, None).await;
    assert_eq!(other.expect_err("refused").code.as_str(), "MFA_REQUIRED");
    let code = enrolled.next_code(&server);
    let verified = server
        .post_auth("/auth/mfa/verify", &pending.access, json!({ "code": code }))
        .await
        .expect_status(200);
    let (access, _) = tokens_of(&verified);
    let admitted = admit(access).await.expect("an aal 2 session syncs");
    assert_eq!(admitted.user_id, first.user_id());
}

pub async fn device_relogin_keeps_a_verified_session_verified(kind: Kind) {
    let server = Backend::start(kind, |_| {}).await;
    let address = email("relogin");
    let key = DeviceKey::generate();
    let phone = server.sign_up_device(&address, "phone-mfa", &key).await;
    let enrolled = enable(&server, &phone).await;
    // The phone's own session predates MFA: its re-login is pending now. (A second later,
    // so the new session is the device's latest.)
    server.clock.advance_ms(1_000);
    let challenge = server.challenge("phone-mfa", None).await;
    let reply = server
        .verify("phone-mfa", &challenge, &key.sign(&challenge))
        .await
        .expect_status(200);
    let pending_access = reply.data()["tokens"]["accessToken"]
        .as_str()
        .expect("access")
        .to_owned();
    assert!(claims(&pending_access).mfa_pending());
    // Verified once...
    let code = enrolled.next_code(&server);
    server
        .post_auth("/auth/mfa/verify", &pending_access, json!({ "code": code }))
        .await
        .expect_status(200);
    // ...a later silent re-login with the device key stays verified, and keeps the time
    // of the last real check (a key is no step-up).
    server.clock.advance_ms(60_000);
    let challenge = server.challenge("phone-mfa", None).await;
    let reply = server
        .verify("phone-mfa", &challenge, &key.sign(&challenge))
        .await
        .expect_status(200);
    let access = reply.data()["tokens"]["accessToken"]
        .as_str()
        .expect("access")
        .to_owned();
    let relogged = claims(&access);
    assert_eq!(relogged.aal, Some(2));
    assert!(!relogged.mfa_pending());
    assert_eq!(relogged.auth_time, Some(server.now_secs() - 60));
    server.get_auth("/auth/devices", &access).await.expect_status(200);
}

pub async fn a_password_reset_works_with_mfa_on_and_keeps_it(kind: Kind) {
    let server = Backend::start(kind, |_| {}).await;
    let address = email("reset");
    let first = server.sign_up(&address).await;
    let enrolled = enable(&server, &first).await;
    // The reset routes are public: MFA neither blocks them nor is removed by them (a mailbox
    // alone must not take over an account with a second factor).
    let requested = server
        .post_unproven("/auth/password/reset-request", json!({ "email": address }))
        .await
        .expect_status(200);
    let token = requested.data()["token"]
        .as_str()
        .expect("development-mode token")
        .to_owned();
    let new_password = "a passphrase after the reset";
    server
        .post_unproven(
            "/auth/password/reset",
            json!({ "token": token, "newPassword": new_password }),
        )
        .await
        .expect_status(200);
    server
        .refresh(&first.refresh)
        .await
        .expect_error(401, "TOKEN_REVOKED");
    let pending = Session::from_reply(
        server
            .post_unproven(
                "/auth/signin",
                json!({ "email": address, "password": new_password }),
            )
            .await
            .expect_status(200),
    );
    assert!(claims(&pending.access).mfa_pending());
    let code = enrolled.next_code(&server);
    let verified = server
        .post_auth("/auth/mfa/verify", &pending.access, json!({ "code": code }))
        .await
        .expect_status(200);
    assert_eq!(claims(&tokens_of(&verified).0).aal, Some(2));
}
