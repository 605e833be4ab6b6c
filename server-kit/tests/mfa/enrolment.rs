//! Enrolment, what is stored, recovery codes and disabling.

use serde_json::json;

use super::support::{claims, email};
use super::{Backend, Kind, begin, code_at, enable, sign_in};

pub async fn enrolment_turns_mfa_on_only_after_a_code(kind: Kind) {
    let server = Backend::start(kind, |_| {}).await;
    let address = email("enrol");
    let session = server.sign_up(&address).await;
    let status = |access: String| {
        let server = &server;
        async move {
            server
                .get_auth("/auth/mfa/status", &access)
                .await
                .expect_status(200)
                .data()
                .clone()
        }
    };
    assert_eq!(
        status(session.access.clone()).await,
        json!({ "enabled": false, "remainingRecoveryCodes": 0 })
    );

    // Confirming with nothing enrolled is a clear refusal.
    server
        .post_auth(
            "/auth/mfa/verify-setup",
            &session.access,
            json!({ "code": "123456" }),
        )
        .await
        .expect_error(400, "VALIDATION_ERROR");
    let first = begin(&server, &session).await;
    // The URI an authenticator app reads, every parameter spelled out.
    let encoded = address.replace('@', "%40");
    assert_eq!(
        first.uri,
        format!(
            "otpauth://totp/Holdfast:{encoded}?secret={}&issuer=Holdfast&algorithm=SHA1&digits=6&period=30",
            first.secret
        )
    );
    assert_eq!(first.secret.len(), 32, "20 bytes of base32");
    assert_eq!(first.recovery_codes.len(), 8);
    // Not on until confirmed: a sign-in is not pending, the status says off.
    let signed_in = sign_in(&server, &address).await;
    assert!(!claims(&signed_in.access).mfa_pending());
    assert_eq!(status(session.access.clone()).await["enabled"], false);

    // Enrolling again replaces the unconfirmed secret: the first one's codes no longer fit.
    let second = begin(&server, &session).await;
    assert_ne!(second.secret, first.secret);
    let stale = code_at(&first.secret, server.now_secs());
    if stale != code_at(&second.secret, server.now_secs()) {
        server
            .post_auth(
                "/auth/mfa/verify-setup",
                &session.access,
                json!({ "code": stale }),
            )
            .await
            .expect_error(400, "MFA_CODE_INVALID");
    }
    // A wrong code and a malformed one are refused alike.
    for wrong in ["000000x", "12345", ""] {
        server
            .post_auth(
                "/auth/mfa/verify-setup",
                &session.access,
                json!({ "code": wrong }),
            )
            .await
            .expect_error(400, "MFA_CODE_INVALID");
    }
    let code = code_at(&second.secret, server.now_secs());
    let reply = server
        .post_auth("/auth/mfa/verify-setup", &session.access, json!({ "code": code }))
        .await
        .expect_status(200);
    assert_eq!(reply.data()["success"], true);
    assert_eq!(
        status(session.access.clone()).await,
        json!({ "enabled": true, "remainingRecoveryCodes": 8 })
    );
    // On now: enrolling or confirming again is a conflict.
    server
        .post_auth("/auth/mfa/enable", &session.access, json!({}))
        .await
        .expect_error(409, "MFA_ALREADY_ENABLED");
    server
        .post_auth("/auth/mfa/verify-setup", &session.access, json!({ "code": code }))
        .await
        .expect_error(409, "MFA_ALREADY_ENABLED");
    // The account name must be the account's own.
    let other = server.sign_up(&email("enrol-other")).await;
    server
        .post_auth(
            "/auth/mfa/enable",
            &other.access,
            json!({ "email": "someone@else.example" }),
        )
        .await
        .expect_error(400, "VALIDATION_ERROR");
    let upper = other.user["email"].as_str().expect("email").to_uppercase();
    server
        .post_auth("/auth/mfa/enable", &other.access, json!({ "email": upper }))
        .await
        .expect_status(200);
}

pub async fn the_secret_is_sealed_and_codes_are_hashed_at_rest(kind: Kind) {
    let server = Backend::start(kind, |_| {}).await;
    let session = server.sign_up(&email("sealed")).await;
    let enrolled = enable(&server, &session).await;
    let stored = server
        .stores
        .mfa
        .find_totp(session.user_id())
        .await
        .expect("read")
        .expect("a factor");
    assert!(stored.enabled());
    assert!(
        stored.sealed_secret.starts_with("v1."),
        "{}",
        stored.sealed_secret
    );
    assert!(!stored.sealed_secret.contains(&enrolled.secret));
    let raw = super::base32(&enrolled.secret);
    let sealed_bytes = holdfast_protocol::b64::decode(&stored.sealed_secret[3..]).expect("base64url");
    assert!(
        !sealed_bytes
            .windows(raw.len())
            .any(|window| window == raw.as_slice()),
        "the secret's bytes are not in what is stored"
    );
    // A recovery code is found by its keyed hash only: the code itself is no key.
    let mfa = &server.stores.mfa;
    assert!(
        !mfa.use_recovery_code(session.user_id(), &enrolled.recovery_codes[0])
            .await
            .expect("use")
    );
    assert_eq!(
        mfa.count_recovery_codes(session.user_id()).await.expect("count"),
        8
    );
}

pub async fn recovery_codes_work_once_and_regeneration_replaces_them(kind: Kind) {
    let server = Backend::start(kind, |_| {}).await;
    let address = email("recovery");
    let session = server.sign_up(&address).await;
    let enrolled = enable(&server, &session).await;
    // The codes are distinct, single use, and count down.
    let mut unique = enrolled.recovery_codes.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 8);
    let pending = sign_in(&server, &address).await;
    let reply = server
        .post_auth(
            "/auth/mfa/recover",
            &pending.access,
            json!({ "recoveryCode": enrolled.recovery_codes[0].to_lowercase() }),
        )
        .await
        .expect_status(200);
    let (access, _) = super::tokens_of(&reply);
    let again = sign_in(&server, &address).await;
    server
        .post_auth(
            "/auth/mfa/recover",
            &again.access,
            json!({ "recoveryCode": enrolled.recovery_codes[0] }),
        )
        .await
        .expect_error(400, "MFA_CODE_INVALID");
    let status = server
        .get_auth("/auth/mfa/status", &access)
        .await
        .expect_status(200);
    assert_eq!(status.data()["remainingRecoveryCodes"], 7);

    // Regeneration takes a code from the app (a recovery code is not one) and a recent check.
    server
        .post_auth(
            "/auth/mfa/regenerate-codes",
            &access,
            json!({ "code": enrolled.recovery_codes[1] }),
        )
        .await
        .expect_error(400, "MFA_CODE_INVALID");
    let code = enrolled.next_code(&server);
    let reply = server
        .post_auth("/auth/mfa/regenerate-codes", &access, json!({ "code": code }))
        .await
        .expect_status(200);
    let fresh: Vec<String> = reply.data()["recoveryCodes"]
        .as_array()
        .expect("codes")
        .iter()
        .map(|c| c.as_str().expect("code").to_owned())
        .collect();
    assert_eq!(fresh.len(), 8);
    assert!(fresh.iter().all(|code| !enrolled.recovery_codes.contains(code)));
    // The old ones died with the regeneration; the new ones work.
    let third = sign_in(&server, &address).await;
    server
        .post_auth(
            "/auth/mfa/recover",
            &third.access,
            json!({ "recoveryCode": enrolled.recovery_codes[2] }),
        )
        .await
        .expect_error(400, "MFA_CODE_INVALID");
    server
        .post_auth(
            "/auth/mfa/recover",
            &third.access,
            json!({ "recoveryCode": fresh[0] }),
        )
        .await
        .expect_status(200);
}

pub async fn disabling_needs_a_code_and_turns_pending_sign_ins_off(kind: Kind) {
    let server = Backend::start(kind, |_| {}).await;
    let address = email("disable");
    let session = server.sign_up(&address).await;
    let enrolled = enable(&server, &session).await;
    // The caller's password check is recent (sign-up just now): only the code is asked.
    server
        .post_auth("/auth/mfa/disable", &session.access, json!({ "code": "000000" }))
        .await
        .expect_error(400, "MFA_CODE_INVALID");
    server
        .post_auth(
            "/auth/mfa/disable",
            &session.access,
            json!({ "code": enrolled.recovery_codes[3] }),
        )
        .await
        .expect_status(200);
    let status = server
        .get_auth("/auth/mfa/status", &session.access)
        .await
        .expect_status(200);
    assert_eq!(status.data()["enabled"], false);
    let signed_in = sign_in(&server, &address).await;
    let signed = claims(&signed_in.access);
    assert!(!signed.mfa_pending());
    assert_eq!(signed.aal, Some(1));
    server
        .get_auth("/auth/devices", &signed_in.access)
        .await
        .expect_status(200);
    // Off means off: disabling, regenerating, verifying are clear refusals now.
    server
        .post_auth(
            "/auth/mfa/disable",
            &signed_in.access,
            json!({ "code": "123456" }),
        )
        .await
        .expect_error(400, "VALIDATION_ERROR");
    server
        .post_auth(
            "/auth/mfa/step-up",
            &signed_in.access,
            json!({ "code": "123456" }),
        )
        .await
        .expect_error(400, "VALIDATION_ERROR");
    // And it can be enrolled again, with a new secret.
    let again = enable(&server, &signed_in).await;
    assert_ne!(again.secret, enrolled.secret);
}
