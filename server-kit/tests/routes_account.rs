//! `POST /auth/signup` and `POST /auth/signin` over loopback HTTP (PROTOCOL section 2).

mod support;

use holdfast_protocol::TokenType;
use holdfast_server_kit::passwords::hash_pbkdf2_kora;
use holdfast_server_kit::store::NewUser;
use serde_json::json;
use support::{DeviceKey, PASSWORD, Session, TestServer, blocking, claims, email};

#[tokio::test(flavor = "multi_thread")]
async fn sign_up_answers_201_with_the_user_and_a_token_pair() {
    let server = TestServer::start(|_| {}).await;
    let now_ms = server.now_ms();
    let address = email("Mixed.Case");
    let reply = server
        .post(
            "/auth/signup",
            json!({ "email": address.to_uppercase(), "password": PASSWORD, "name": "Ada" }),
        )
        .await
        .expect_status(201);
    let session = Session::from_reply(reply);
    let user = session.user.as_object().unwrap();
    let mut members: Vec<_> = user.keys().map(String::as_str).collect();
    members.sort_unstable();
    assert_eq!(members, ["createdAt", "email", "emailVerified", "id", "name"]);
    assert_eq!(session.user["email"], address.to_lowercase());
    assert_eq!(session.user["name"], "Ada");
    assert_eq!(session.user["emailVerified"], false);
    assert_eq!(session.user["createdAt"], now_ms, "createdAt is in milliseconds");
    assert!(uuid::Uuid::parse_str(session.user_id()).is_ok());

    let access = claims(&session.access);
    let refresh = claims(&session.refresh);
    assert_eq!(
        (access.token_type, refresh.token_type),
        (TokenType::Access, TokenType::Refresh)
    );
    assert_eq!(
        (access.sub.as_str(), refresh.sub.as_str()),
        (session.user_id(), session.user_id())
    );
    assert_eq!(access.exp - access.iat, 15 * 60);
    assert_eq!(refresh.exp - refresh.iat, 90 * 24 * 3600);
    assert_eq!(access.iat, now_ms / 1000);

    let me = server.me(&session.access).await.expect_status(200);
    assert_eq!(me.data(), &session.user);
}

#[tokio::test(flavor = "multi_thread")]
async fn metadata_given_at_sign_up_comes_back_with_the_user() {
    let server = TestServer::start(|_| {}).await;
    let metadata = json!({"plan": "team", "referrer": "newsletter", "seats": 3});
    let reply = server
        .post(
            "/auth/signup",
            json!({ "email": email("meta"), "password": PASSWORD, "metadata": metadata }),
        )
        .await
        .expect_status(201);
    let session = Session::from_reply(reply);
    assert_eq!(session.user["metadata"], metadata);
    let me = server.me(&session.access).await.expect_status(200);
    assert_eq!(me.data()["metadata"], metadata);
    let signed_in = server
        .sign_in_with(json!({ "email": session.user["email"], "password": PASSWORD }))
        .await;
    assert_eq!(signed_in.user["metadata"], metadata);

    for (bad, message) in [
        (json!(["not", "an", "object"]), "Metadata must be a JSON object."),
        (json!("text"), "Metadata must be a JSON object."),
        (
            json!({ "blob": "x".repeat(4100) }),
            "Metadata must be at most 4096 bytes of JSON.",
        ),
    ] {
        let address = email("bad-meta");
        let reply = server
            .post(
                "/auth/signup",
                json!({ "email": address, "password": PASSWORD, "metadata": bad }),
            )
            .await;
        reply.expect_error(400, "VALIDATION_ERROR");
        assert_eq!(reply.message(), message);
        assert!(
            server
                .stores
                .users
                .find_user_by_email(&address)
                .await
                .unwrap()
                .is_none(),
            "a refused sign-up stores nothing"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_up_refuses_a_taken_email_in_any_case() {
    let server = TestServer::start(|_| {}).await;
    let address = email("taken");
    server.sign_up(&address).await;
    for variant in [address.clone(), address.to_uppercase()] {
        server
            .post(
                "/auth/signup",
                json!({ "email": variant, "password": "another password" }),
            )
            .await
            .expect_error(409, "EMAIL_TAKEN");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_sign_ups_of_one_email_create_one_account() {
    let server = TestServer::start(|_| {}).await;
    let address = email("race");
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..10 {
        let body = json!({ "email": address, "password": PASSWORD, "deviceId": format!("race-{n}") });
        tasks.spawn(support::Reply::read(
            server.request(reqwest::Method::POST, "/auth/signup").json(&body),
        ));
    }
    let mut created = Vec::new();
    while let Some(reply) = tasks.join_next().await {
        let reply = reply.expect("task");
        if reply.status == 201 {
            created.push(Session::from_reply(reply));
        } else {
            reply.expect_error(409, "EMAIL_TAKEN");
        }
    }
    assert_eq!(created.len(), 1);
    let devices = server
        .get_auth("/auth/devices", &created[0].access)
        .await
        .expect_status(200);
    assert_eq!(
        devices.data().as_array().unwrap().len(),
        1,
        "the losers left no devices behind"
    );
    for n in 0..10 {
        let device = server
            .stores
            .devices
            .find_device(&format!("race-{n}"))
            .await
            .unwrap();
        assert_eq!(device.is_some(), created[0].device_id() == format!("race-{n}"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_up_validates_email_and_password_length() {
    let server = TestServer::start(|_| {}).await;
    let cases = [
        json!({ "email": "not-an-email", "password": PASSWORD }),
        json!({ "email": "a b@example.com", "password": PASSWORD }),
        json!({ "email": "a@localhost", "password": PASSWORD }),
        json!({ "email": format!("{}@example.com", "a".repeat(250)), "password": PASSWORD }),
        json!({ "email": email("short"), "password": "1234567" }),
        json!({ "email": email("long"), "password": "x".repeat(129) }),
        json!({ "email": email("nopassword") }),
    ];
    for body in cases {
        let reply = server.post("/auth/signup", body.clone()).await;
        reply.expect_error(400, "VALIDATION_ERROR");
        if let Some(address) = body["email"].as_str() {
            assert!(
                server
                    .stores
                    .users
                    .find_user_by_email(&address.to_lowercase())
                    .await
                    .unwrap()
                    .is_none()
            );
        }
    }
    // The bounds themselves are accepted.
    server
        .sign_up_with(json!({ "email": email("eight"), "password": "12345678" }))
        .await;
    server
        .sign_up_with(json!({ "email": email("max"), "password": "x".repeat(128) }))
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_up_sanitizes_the_display_name() {
    let server = TestServer::start(|_| {}).await;
    let session = server
        .sign_up_with(json!({ "email": email("name"), "password": PASSWORD, "name": "  Ali\u{0}ce\n\t " }))
        .await;
    assert_eq!(session.user["name"], "Alice");
    let nameless = server
        .sign_up_with(json!({ "email": email("blank"), "password": PASSWORD, "name": " \u{7} " }))
        .await;
    assert_eq!(nameless.user["name"], serde_json::Value::Null);
    let long = server
        .sign_up_with(json!({ "email": email("long"), "password": PASSWORD, "name": "é".repeat(300) }))
        .await;
    assert_eq!(long.user["name"].as_str().unwrap().chars().count(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_up_applies_the_password_policy() {
    let server = TestServer::start(|config| {
        config.password_policy.require_digit = true;
        config.password_policy.require_uppercase = true;
    })
    .await;
    let reply = server
        .post(
            "/auth/signup",
            json!({ "email": email("weak"), "password": "alllowercase" }),
        )
        .await;
    reply.expect_error(400, "VALIDATION_ERROR");
    assert!(reply.message().contains("digit"), "{}", reply.text);
    server
        .sign_up_with(json!({ "email": email("strong"), "password": "Upper and 1 digit" }))
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_up_with_a_device_key_binds_the_tokens_to_it() {
    let server = TestServer::start(|_| {}).await;
    let key = DeviceKey::generate();
    let session = server.sign_up_device(&email("keyed"), "phone-1", &key).await;
    for token in [&session.access, &session.refresh] {
        let claims = claims(token);
        assert_eq!(claims.dev, "phone-1");
        assert_eq!(claims.cnf.expect("cnf").jkt, key.thumbprint());
    }
    let device = server
        .stores
        .devices
        .find_device("phone-1")
        .await
        .unwrap()
        .expect("registered");
    assert_eq!(device.user_id, session.user_id());
    assert_eq!(device.key.expect("key").jwk, key.jwk());
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_up_without_a_device_id_gets_a_random_keyless_device() {
    let server = TestServer::start(|_| {}).await;
    let session = server.sign_up(&email("keyless")).await;
    let device_id = session.device_id();
    let uuid = device_id.strip_prefix("dev-").expect("dev-<uuid>");
    assert!(uuid::Uuid::parse_str(uuid).is_ok(), "{device_id}");
    assert!(claims(&session.access).cnf.is_none(), "no key, no binding");

    let devices = server
        .get_auth("/auth/devices", &session.access)
        .await
        .expect_status(200);
    let devices = devices.data().as_array().unwrap();
    assert_eq!(devices.len(), 1);
    assert_eq!(devices[0]["id"], device_id.as_str());
    assert_eq!(devices[0]["publicKey"], "");
    assert_eq!(devices[0]["revoked"], false);

    let other = server.sign_up(&email("keyless")).await;
    assert_ne!(
        other.device_id(),
        device_id,
        "never derived from anything two users share"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_sign_up_stores_nothing() {
    let server = TestServer::start(|_| {}).await;
    let owner = server
        .sign_up_device(&email("owner"), "shared-id", &DeviceKey::generate())
        .await;
    let address = email("latecomer");
    let reply = server
        .post(
            "/auth/signup",
            json!({ "email": address, "password": PASSWORD, "deviceId": "shared-id",
                    "devicePublicKey": DeviceKey::generate().jwk() }),
        )
        .await;
    reply.expect_error(409, "DEVICE_CONFLICT");
    assert!(
        server
            .stores
            .users
            .find_user_by_email(&address)
            .await
            .unwrap()
            .is_none()
    );
    let device = server
        .stores
        .devices
        .find_device("shared-id")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(device.user_id, owner.user_id());

    let reply = server
        .post(
            "/auth/signup",
            json!({ "email": address, "password": PASSWORD, "devicePublicKey": "{\"kty\":\"EC\"}" }),
        )
        .await;
    reply.expect_error(400, "VALIDATION_ERROR");
    assert!(
        server
            .stores
            .users
            .find_user_by_email(&address)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_in_answers_200_with_the_same_envelope() {
    let server = TestServer::start(|_| {}).await;
    let address = email("signin");
    let signed_up = server.sign_up(&address).await;
    let reply = server
        .post(
            "/auth/signin",
            json!({ "email": address.to_uppercase(), "password": PASSWORD }),
        )
        .await
        .expect_status(200);
    let session = Session::from_reply(reply);
    assert_eq!(session.user, signed_up.user);
    assert_ne!(session.access, signed_up.access);
    assert_ne!(
        session.device_id(),
        signed_up.device_id(),
        "a sign-in without an id is a new device"
    );
    server.me(&session.access).await.expect_status(200);
    // Surrounding whitespace in the email is forgiven at sign-in.
    server
        .sign_in_with(json!({ "email": format!(" {address} "), "password": PASSWORD }))
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_password_and_unknown_email_are_indistinguishable() {
    let server = TestServer::start(|_| {}).await;
    let address = email("victim");
    server.sign_up(&address).await;
    let wrong = server
        .post(
            "/auth/signin",
            json!({ "email": address, "password": "wrong password" }),
        )
        .await;
    let unknown = server
        .post(
            "/auth/signin",
            json!({ "email": email("nobody"), "password": PASSWORD }),
        )
        .await;
    wrong.expect_error(401, "INVALID_CREDENTIALS");
    assert_eq!((wrong.status, &wrong.text), (unknown.status, &unknown.text));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kora_pbkdf2_account_signs_in_and_is_rehashed_to_argon2id() {
    let server = TestServer::start(|_| {}).await;
    let address = email("kora");
    let password = blocking(|| hash_pbkdf2_kora(PASSWORD, &[7u8; 32])).await;
    let user = server
        .stores
        .users
        .create_user(NewUser {
            id: uuid::Uuid::new_v4().to_string(),
            email: address.clone(),
            name: Some("Kora User".into()),
            created_at_ms: 1_700_000_000_000,
            password,
            metadata: None,
        })
        .await
        .unwrap();
    server
        .post("/auth/signin", json!({ "email": address, "password": "not it" }))
        .await
        .expect_error(401, "INVALID_CREDENTIALS");
    let stored = server.stores.users.find_user(&user.id).await.unwrap().unwrap();
    assert!(
        !stored.password.hash.starts_with("$argon2id$"),
        "a failed sign-in changes nothing"
    );

    let session = server
        .sign_in_with(json!({ "email": address, "password": PASSWORD }))
        .await;
    assert_eq!(session.user["createdAt"], 1_700_000_000_000_i64);
    let stored = server.stores.users.find_user(&user.id).await.unwrap().unwrap();
    assert!(
        stored.password.hash.starts_with("$argon2id$"),
        "transparent rehash"
    );
    assert_eq!(stored.password.salt, "");
    // The new hash works, and the old password is the one it holds.
    server
        .sign_in_with(json!({ "email": address, "password": PASSWORD }))
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_in_refuses_another_users_device_id() {
    let server = TestServer::start(|_| {}).await;
    server
        .sign_up_device(&email("a"), "laptop", &DeviceKey::generate())
        .await;
    let other = email("b");
    server.sign_up(&other).await;
    let reply = server
        .post(
            "/auth/signin",
            json!({ "email": other, "password": PASSWORD, "deviceId": "laptop" }),
        )
        .await;
    reply.expect_error(409, "DEVICE_CONFLICT");
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_in_on_a_keyed_device_binds_the_tokens_and_keeps_the_key() {
    let server = TestServer::start(|_| {}).await;
    let address = email("keyed-signin");
    let key = DeviceKey::generate();
    server.sign_up_device(&address, "phone", &key).await;
    // Without a key, or with the same key in Kora's form: the registered key binds the tokens.
    for public_key in [None, Some(key.kora_jwk())] {
        let mut body = json!({ "email": address, "password": PASSWORD, "deviceId": "phone" });
        if let Some(jwk) = public_key {
            body["devicePublicKey"] = jwk.into();
        }
        let session = server.sign_in_with(body).await;
        assert_eq!(claims(&session.access).cnf.expect("bound").jkt, key.thumbprint());
    }
    let other_key = DeviceKey::generate().jwk();
    let reply = server
        .post(
            "/auth/signin",
            json!({ "email": address, "password": PASSWORD, "deviceId": "phone", "devicePublicKey": other_key }),
        )
        .await;
    reply.expect_error(409, "DEVICE_CONFLICT");
    let device = server.stores.devices.find_device("phone").await.unwrap().unwrap();
    assert_eq!(device.key.unwrap().thumbprint, key.thumbprint());
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_in_refuses_a_revoked_device() {
    let server = TestServer::start(|_| {}).await;
    let address = email("revoked");
    let first = server.sign_up(&address).await;
    let second = server.sign_in_device(&address, "old-phone").await;
    server.revoke(&first.access, "old-phone").await.expect_status(200);
    let reply = server
        .post(
            "/auth/signin",
            json!({ "email": address, "password": PASSWORD, "deviceId": "old-phone" }),
        )
        .await;
    reply.expect_error(403, "DEVICE_REVOKED");
    server
        .me(&second.access)
        .await
        .expect_error(403, "DEVICE_REVOKED");
}
