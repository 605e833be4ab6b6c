//! A client that behaves exactly as Kora's web `AuthClient` does (written only from the
//! protocol): it sends `deviceId` and `devicePublicKey` at sign-up and sign-in, never a
//! `DPoP` proof, uses its tokens as plain bearer tokens, asks for challenges with its bearer
//! token and verifies with a P1363 signature. Against the server kit, over real loopback
//! HTTP, it signs up, reads `/me`, refreshes, registers a device, answers a challenge, lists
//! and revokes devices and signs out; its tokens stay unbound throughout (PROTOCOL 3:
//! binding only on request).

use holdfast_examples::local_server::LocalServer;
use holdfast_examples::protocol_client::{CallError, ProtocolClient, SoftwareDeviceKey, text};
use serde_json::Value;

fn refusal_code(result: Result<Value, CallError>) -> (u16, String) {
    match result {
        Err(CallError::Refused(r)) => (r.status, r.code.unwrap_or_default()),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_protocol_only_client_completes_every_flow() {
    let server = LocalServer::start(|config| {
        config.argon2 = holdfast_server_kit::passwords::Argon2Params {
            memory_kib: 1024,
            iterations: 1,
            parallelism: 1,
        };
    })
    .await
    .unwrap();
    let client = ProtocolClient::new(&server.base_url());
    let key = SoftwareDeviceKey::generate().unwrap();
    let jwk = key.public_jwk();

    let unbound = |token: &str| {
        holdfast_protocol::Claims::decode_unverified(token)
            .unwrap()
            .cnf
            .is_none()
    };

    // Sign up with the device fields, as Kora's client sends them (201 in the protocol; the
    // client sees data either way).
    let session = client
        .sign_up(
            "Grace@Example.com",
            "hopper-cobol-1959",
            Some("Grace"),
            Some(("grace-laptop", &jwk)),
        )
        .await
        .unwrap();
    assert_eq!(text(&session, "/user/email").unwrap(), "grace@example.com");
    let user_id = text(&session, "/user/id").unwrap();
    let first_access = text(&session, "/tokens/accessToken").unwrap();
    assert!(unbound(&first_access), "no proof was sent: no binding");
    assert_eq!(text(&client.me(&first_access).await.unwrap(), "/id").unwrap(), user_id);

    // Sign in, naming a device and its key.
    let signed_in = client
        .sign_in(
            "grace@example.com",
            "hopper-cobol-1959",
            Some(("grace-laptop", &jwk)),
        )
        .await
        .unwrap();
    assert_eq!(text(&signed_in, "/user/id").unwrap(), user_id);
    let access = text(&signed_in, "/tokens/accessToken").unwrap();
    let refresh = text(&signed_in, "/tokens/refreshToken").unwrap();

    // Refresh rotates both tokens.
    let rotated = client.refresh(&refresh).await.unwrap();
    let access2 = text(&rotated, "/accessToken").unwrap();
    assert_ne!(access2, access);
    // The family stays unbound: a plain bearer token, no proof.
    assert!(unbound(&access) && unbound(&access2));
    assert!(unbound(&text(&rotated, "/refreshToken").unwrap()));
    assert_eq!(text(&client.me(&access2).await.unwrap(), "/id").unwrap(), user_id);

    // Register the device explicitly (same id, same key: idempotent) and get a credential.
    let registered = client
        .register_device(&access2, "grace-laptop", &jwk, "Grace's laptop")
        .await
        .unwrap();
    assert_eq!(text(&registered, "/device/id").unwrap(), "grace-laptop");
    assert_eq!(text(&registered, "/device/publicKey").unwrap(), jwk);
    assert_eq!(
        text(&registered, "/deviceCredential").unwrap().split('.').count(),
        3
    );

    // Answer a challenge: fresh tokens from the device key alone.
    let challenge = text(
        &client.challenge(Some(&access2), "grace-laptop").await.unwrap(),
        "/challenge",
    )
    .unwrap();
    assert_eq!(challenge.len(), 64);
    let signature = key.sign_challenge(&challenge).unwrap();
    let verified = client
        .verify("grace-laptop", &challenge, &signature)
        .await
        .unwrap();
    let device_access = text(&verified, "/tokens/accessToken").unwrap();
    assert!(unbound(&device_access));
    text(&verified, "/tokens/deviceCredential").unwrap();
    assert_eq!(
        text(&client.me(&device_access).await.unwrap(), "/id").unwrap(),
        user_id
    );

    // A second device, then list and revoke.
    let phone_key = SoftwareDeviceKey::generate().unwrap();
    let other = client
        .sign_in(
            "grace@example.com",
            "hopper-cobol-1959",
            Some(("grace-phone", &phone_key.public_jwk())),
        )
        .await
        .unwrap();
    let phone_access = text(&other, "/tokens/accessToken").unwrap();
    let devices = client.devices(&phone_access).await.unwrap();
    let ids: Vec<&str> = devices
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["id"].as_str())
        .collect();
    assert!(
        ids.contains(&"grace-laptop") && ids.contains(&"grace-phone"),
        "{ids:?}"
    );
    assert_eq!(
        client.revoke_device(&phone_access, "grace-laptop").await.unwrap()["success"],
        true
    );
    assert_eq!(
        refusal_code(client.me(&device_access).await),
        (403, "DEVICE_REVOKED".into())
    );
    let listed = client.devices(&phone_access).await.unwrap();
    let laptop = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == "grace-laptop")
        .unwrap();
    assert_eq!(laptop["revoked"], true);

    // Sign out: the access token stops working at once.
    let phone_refresh = text(&other, "/tokens/refreshToken").unwrap();
    assert_eq!(
        client
            .sign_out(&phone_access, Some(&phone_refresh))
            .await
            .unwrap()["success"],
        true
    );
    assert_eq!(
        refusal_code(client.me(&phone_access).await),
        (401, "TOKEN_REVOKED".into())
    );
    assert_eq!(
        refusal_code(client.refresh(&phone_refresh).await),
        (401, "TOKEN_REVOKED".into())
    );
    server.stop().await;
}
