//! The application's hooks over loopback HTTP: a sign-up refused by `before_sign_up` stores
//! nothing and answers 403 with the hook's message; every other hook is called once, after
//! the change, with what changed.

mod support;

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use holdfast_server_kit::hooks::{AuthHooks, Refusal, SessionEnd, SignUpAttempt};
use holdfast_server_kit::store::{DeviceRecord, UserRecord};
use holdfast_server_kit::tokens::ExtraClaims;
use reqwest::Method;
use serde_json::json;
use support::{DeviceKey, PASSWORD, Reply, TestServer, email};

/// Records every call; refuses sign-ups from `blocked.example`.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<String>>>);

impl Recorder {
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }

    fn record(&self, event: String) {
        self.0.lock().unwrap().push(event);
    }
}

#[async_trait]
impl AuthHooks for Recorder {
    async fn before_sign_up(&self, attempt: &SignUpAttempt) -> Result<(), Refusal> {
        self.record(format!("before_sign_up {} {}", attempt.email, attempt.device_id));
        if attempt.email.ends_with("@blocked.example") {
            return Err(Refusal::new("Sign-up is by invitation only."));
        }
        Ok(())
    }

    async fn after_sign_up(&self, user: &UserRecord, device: &DeviceRecord) {
        self.record(format!("after_sign_up {} {}", user.email, device.id));
    }

    async fn after_sign_in(&self, user: &UserRecord, device: &DeviceRecord) {
        self.record(format!("after_sign_in {} {}", user.email, device.id));
    }

    async fn device_registered(&self, device: &DeviceRecord) {
        self.record(format!("device_registered {}", device.id));
    }

    async fn device_revoked(&self, _user_id: &str, device_id: &str) {
        self.record(format!("device_revoked {device_id}"));
    }

    async fn session_ended(&self, _user_id: &str, _session_id: &str, how: SessionEnd) {
        self.record(format!("session_ended {how:?}"));
    }

    async fn account_deleted(&self, user_id: &str) {
        self.record(format!("account_deleted {user_id}"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_sign_up_stores_nothing_and_says_why() {
    let hooks = Recorder::default();
    let server = TestServer::start_hooked(hooks.clone()).await;
    let address = "someone@blocked.example";
    let reply = server
        .post_unproven(
            "/auth/signup",
            json!({ "email": address, "password": PASSWORD, "deviceId": "phone" }),
        )
        .await;
    reply.expect_error(403, "FORBIDDEN");
    assert_eq!(reply.message(), "Sign-up is by invitation only.");
    assert_eq!(hooks.take(), vec![format!("before_sign_up {address} phone")]);
    assert!(
        server
            .stores
            .users
            .find_user_by_email(address)
            .await
            .unwrap()
            .is_none(),
        "no account was stored"
    );
    assert!(
        server
            .stores
            .devices
            .find_device("phone")
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn each_hook_is_called_once_after_its_change() {
    let hooks = Recorder::default();
    let server = TestServer::start_hooked(hooks.clone()).await;
    let address = email("hooks");
    let key = DeviceKey::generate();
    let phone = server.sign_up_device(&address, "phone", &key).await;
    assert_eq!(
        hooks.take(),
        vec![
            format!("before_sign_up {address} phone"),
            "device_registered phone".to_owned(),
            format!("after_sign_up {address} phone"),
        ]
    );

    let laptop = server.sign_in_device(&address, "laptop").await;
    assert_eq!(hooks.take(), vec![format!("after_sign_in {address} laptop")]);
    let tablet_key = DeviceKey::generate();
    Reply::read(
        server
            .bearer_request(Method::POST, "/auth/device/register", &laptop.access)
            .json(&json!({ "deviceId": "tablet", "publicKey": tablet_key.jwk(), "name": "Tablet" })),
    )
    .await
    .expect_status(201);
    assert_eq!(hooks.take(), vec!["device_registered tablet".to_owned()]);

    server.revoke(&laptop.access, "tablet").await.expect_status(200);
    assert_eq!(hooks.take(), vec!["device_revoked tablet".to_owned()]);

    server
        .post_auth(
            "/auth/signout",
            &laptop.access,
            json!({ "refreshToken": laptop.refresh }),
        )
        .await
        .expect_status(200);
    assert_eq!(hooks.take(), vec!["session_ended SignedOut".to_owned()]);

    let user_id = phone.user_id().to_owned();
    server
        .service
        .sign_out_everywhere(&user_id)
        .await
        .expect("sign out everywhere");
    assert_eq!(hooks.take(), vec!["session_ended SignedOutEverywhere".to_owned()]);
    assert!(server.service.delete_user(&user_id).await.expect("delete"));
    assert_eq!(hooks.take(), vec![format!("account_deleted {user_id}")]);
}

/// Adds the app's claims: a role, and the email's domain.
struct Claims;

#[async_trait]
impl AuthHooks for Claims {
    async fn extra_claims(&self, user: &UserRecord, device_id: &str) -> Option<ExtraClaims> {
        if user.email.starts_with("huge") {
            let mut huge = ExtraClaims::new();
            huge.insert("blob".into(), json!("x".repeat(4096)));
            return Some(huge);
        }
        let domain = user.email.split_once('@').map(|(_, domain)| domain.to_owned());
        let mut claims = ExtraClaims::new();
        claims.insert("role".into(), json!("editor"));
        claims.insert("domain".into(), json!(domain));
        claims.insert("device".into(), json!(device_id));
        Some(claims)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn extra_claims_ride_in_access_tokens_through_refresh_and_the_grace_window() {
    let server = TestServer::start_hooked(Claims).await;
    let key = DeviceKey::generate();
    let session = server.sign_up_device(&email("claims"), "phone", &key).await;
    let expected = json!({"role": "editor", "domain": "example.com", "device": "phone"});
    let ext = |token: &str| serde_json::to_value(support::claims(token).ext).expect("JSON");
    assert_eq!(ext(&session.access)["role"], expected["role"]);
    assert_eq!(ext(&session.access)["device"], expected["device"]);
    assert_eq!(
        support::claims(&session.refresh).ext,
        None,
        "refresh tokens carry none"
    );
    // The bearer routes accept the token as any other.
    server.me(&session.access).await.expect_status(200);

    let first = server.refresh(&session.refresh).await.expect_status(200);
    let again = server.refresh(&session.refresh).await.expect_status(200);
    assert_eq!(
        first.data(),
        again.data(),
        "the grace window re-signs the same tokens"
    );
    let access = first.data()["accessToken"].as_str().expect("access token");
    assert_eq!(ext(access)["role"], expected["role"]);

    // Claims over 2 KiB fail the request (500 INTERNAL) and store no account.
    let answer = server
        .request(Method::POST, "/auth/signup")
        .json(&json!({ "email": "huge@example.com", "password": PASSWORD }))
        .send()
        .await
        .expect("request");
    assert_eq!(answer.status(), 500);
    assert!(
        server
            .stores
            .users
            .find_user_by_email("huge@example.com")
            .await
            .unwrap()
            .is_none()
    );
}
