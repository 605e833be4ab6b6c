//! What an app needs around its own requests: headers for its backend made from one token
//! (`AuthClient::request_headers`), routes mounted under another prefix
//! (`ClientConfig::route_prefix`), and a clear configuration error, not "retry later", when
//! nothing answers the auth routes where the client looks.

mod support;

use std::sync::Arc;

use holdfast_core::{AuthClient, AuthError, AuthState};
use holdfast_protocol::Claims;
use holdfast_protocol::proof::{ParsedProof, access_token_hash};
use support::{Device, Fault, FaultProxy, PASSWORD, Server, clock, email};

/// GETs `url` with the given headers and returns the status.
async fn get_with(url: &str, authorization: &str, dpop: Option<&str>) -> u16 {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut request = reqwest::Client::new()
        .get(url)
        .header("Authorization", authorization);
    if let Some(dpop) = dpop {
        request = request.header("DPoP", dpop);
    }
    request.send().await.unwrap().status().as_u16()
}

#[tokio::test(flavor = "multi_thread")]
async fn request_headers_open_the_backend_with_one_token_and_a_matching_proof() {
    let server = Server::start().await;
    let clock = clock();
    let device = Device::new();
    let client = device.client(&server.url(), &clock);
    client.initialize().await;
    client.sign_up(&email("headers"), PASSWORD, None).await.unwrap();
    let me = format!("{}/auth/me", server.url());

    let headers = client.request_headers("GET", &me).await.unwrap();
    let token = headers
        .authorization
        .strip_prefix("DPoP ")
        .expect("a bound token uses the DPoP scheme");
    let proof = ParsedProof::parse(headers.dpop.as_deref().expect("a proof")).unwrap();
    assert_eq!(proof.claims.ath, access_token_hash(token));
    assert_eq!(
        (proof.claims.htm.as_str(), proof.claims.htu.as_str()),
        ("GET", me.as_str())
    );
    assert!(Claims::decode_unverified(token).unwrap().cnf.is_some());
    assert!(!format!("{headers:?}").contains(token), "Debug shows no token");
    assert_eq!(
        get_with(&me, &headers.authorization, headers.dpop.as_deref()).await,
        200
    );
    // A proof is good once: the next request needs new headers.
    assert_eq!(
        get_with(&me, &headers.authorization, headers.dpop.as_deref()).await,
        401
    );
    let again = client.request_headers("GET", &me).await.unwrap();
    assert_eq!(
        get_with(&me, &again.authorization, again.dpop.as_deref()).await,
        200
    );
    // Headers for another URL do not open this one.
    let other = client
        .request_headers("GET", &format!("{}/auth/devices", server.url()))
        .await
        .unwrap();
    assert_eq!(
        get_with(&me, &other.authorization, other.dpop.as_deref()).await,
        401
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn unbound_request_headers_are_a_plain_bearer_token() {
    let server = Server::start().await;
    let clock = clock();
    let device = Device::new();
    let mut config = device.config(&server.url(), Arc::new(clock.clone()));
    config.bind_tokens = false;
    let client = AuthClient::new(config).unwrap();
    client.initialize().await;
    client
        .sign_up(&email("bearer-headers"), PASSWORD, None)
        .await
        .unwrap();
    let me = format!("{}/auth/me", server.url());
    let headers = client.request_headers("GET", &me).await.unwrap();
    assert!(headers.authorization.starts_with("Bearer "));
    assert_eq!(headers.dpop, None);
    assert_eq!(get_with(&me, &headers.authorization, None).await, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn routes_under_another_prefix_work_when_configured_and_are_a_configuration_error_otherwise() {
    let server = Server::start_with(|config| config.route_prefix = "/api/v1/auth".to_owned()).await;
    let clock = clock();
    let device = Device::new();
    let mut config = device.config(&server.url(), Arc::new(clock.clone()));
    config.route_prefix = "/api/v1/auth".to_owned();
    let client = AuthClient::new(config).unwrap();
    client.initialize().await;
    let address = email("prefix");
    client.sign_up(&address, PASSWORD, None).await.unwrap();
    assert_eq!(client.list_devices().await.unwrap().len(), 1);
    client.refresh().await.unwrap();

    // The same server with the default prefix: whatever answers there, the client does not
    // take it for a network problem.
    let other_device = Device::new();
    let lost = other_device.client(&server.url(), &clock);
    lost.initialize().await;
    match lost.sign_in(&address, PASSWORD).await {
        Err(AuthError::Configuration { .. } | AuthError::Refused { .. }) => {}
        other => panic!("expected a configuration error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_404_page_from_the_auth_routes_is_a_configuration_error_and_keeps_the_session() {
    fn not_found_page(_: &[u8]) -> Vec<u8> {
        let page = "<html><body><h1>404 Not Found</h1></body></html>";
        format!(
            "HTTP/1.1 404 Not Found\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\r\n{page}",
            page.len()
        )
        .into_bytes()
    }
    let server = Server::start().await;
    let proxy = FaultProxy::start(server.addr).await;
    let clock = clock();
    let device = Device::new();
    let client = device.client(&proxy.url(), &clock);
    client.initialize().await;
    proxy.set(Fault::Rewrite(not_found_page));
    match client.sign_up(&email("404"), PASSWORD, None).await {
        Err(AuthError::Configuration { message }) => assert!(message.contains("route prefix"), "{message}"),
        other => panic!("expected a configuration error, got {other:?}"),
    }
    proxy.set(Fault::Pass);
    client.sign_up(&email("404"), PASSWORD, None).await.unwrap();
    // A refresh that meets the page keeps the session.
    proxy.set(Fault::Rewrite(not_found_page));
    assert!(matches!(
        client.refresh().await,
        Err(AuthError::Configuration { .. })
    ));
    assert!(matches!(client.state(), AuthState::SignedIn { .. }));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sync_refusal_handed_to_the_client_acts_at_once() {
    use holdfast_core::{SignOutReason, SyncRefusal};
    let server = Server::start().await;
    let clock = clock();
    let phone_device = Device::new();
    let phone = phone_device.client(&server.url(), &clock);
    phone.initialize().await;
    let address = email("sync-refusal");
    phone.sign_up(&address, PASSWORD, None).await.unwrap();

    // A close that is no verdict changes nothing; an expired token is refreshed now.
    let before = phone.access_token().await.unwrap();
    phone
        .handle_sync_refusal(SyncRefusal::Close {
            code: 1001,
            reason: String::new(),
        })
        .await
        .unwrap();
    assert_eq!(phone.access_token().await.unwrap(), before);
    // 4401 names its reason: a rate limit is no verdict, a refused proof refreshes.
    phone
        .handle_sync_refusal(SyncRefusal::Close {
            code: 4401,
            reason: "RATE_LIMITED".into(),
        })
        .await
        .unwrap();
    assert_eq!(phone.access_token().await.unwrap(), before);
    phone
        .handle_sync_refusal(SyncRefusal::Close {
            code: 4401,
            reason: "PROOF_INVALID".into(),
        })
        .await
        .unwrap();
    let after = phone.access_token().await.unwrap();
    assert_ne!(after, before);
    let before = after;
    phone
        .handle_sync_refusal(SyncRefusal::Close {
            code: 4004,
            reason: String::new(),
        })
        .await
        .unwrap();
    assert_ne!(phone.access_token().await.unwrap(), before);
    assert!(matches!(phone.state(), AuthState::SignedIn { .. }));

    // The phone is revoked from another device: until told, it still looks signed in.
    let laptop_device = Device::new();
    let laptop = laptop_device.client(&server.url(), &clock);
    laptop.initialize().await;
    laptop.sign_in(&address, PASSWORD).await.unwrap();
    laptop
        .revoke_device(&phone.device_id().await.unwrap())
        .await
        .unwrap();
    assert!(matches!(phone.state(), AuthState::SignedIn { .. }));
    // The sync server closes its connection with 4001: the phone signs out at once.
    phone
        .handle_sync_refusal(SyncRefusal::Close {
            code: 4001,
            reason: String::new(),
        })
        .await
        .unwrap();
    assert_eq!(
        phone.state(),
        AuthState::SignedOut {
            reason: SignOutReason::DeviceRevoked
        }
    );
    assert!(phone.access_token().await.is_err());

    // An HTTP refusal of the handshake names its code the same way.
    laptop
        .handle_sync_refusal(SyncRefusal::Http {
            status: 403,
            code: Some("DEVICE_REVOKED".into()),
        })
        .await
        .unwrap();
    assert_eq!(
        laptop.state(),
        AuthState::SignedOut {
            reason: SignOutReason::DeviceRevoked
        }
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sync_renewal_gives_a_token_that_outlives_the_one_expiring() {
    let server = Server::start().await;
    let clock = clock();
    let device = Device::new();
    let client = device.client(&server.url(), &clock);
    client.initialize().await;
    client.sign_up(&email("renewal"), PASSWORD, None).await.unwrap();
    let sync_url = format!("{}/sync", server.url());
    let current = client.access_token().await.unwrap();
    let current_exp_ms = Claims::decode_unverified(&current).unwrap().exp * 1000;

    // The server names an earlier expiry (an older token): the token in hand will do.
    let renewal = client
        .sync_renewal(&sync_url, current_exp_ms - 60_000)
        .await
        .unwrap();
    assert_eq!(renewal.access_token, current);

    // It names the token in hand: the client refreshes and gives a newer one, with a proof
    // for the sync URL made from it. (The server stamps whole seconds: one passes first, as
    // the 60 s of a real `reauth-required` would.)
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let renewal = client.sync_renewal(&sync_url, current_exp_ms).await.unwrap();
    assert_ne!(renewal.access_token, current);
    let renewed_exp_ms = Claims::decode_unverified(&renewal.access_token).unwrap().exp * 1000;
    assert!(
        renewed_exp_ms > current_exp_ms,
        "{renewed_exp_ms} > {current_exp_ms}"
    );
    let proof = ParsedProof::parse(&renewal.proof).unwrap();
    assert_eq!(proof.claims.ath, access_token_hash(&renewal.access_token));
    assert_eq!(
        (proof.claims.htm.as_str(), proof.claims.htu.as_str()),
        ("GET", sync_url.as_str())
    );
    assert_eq!(client.access_token().await.unwrap(), renewal.access_token);
}
