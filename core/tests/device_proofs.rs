//! The client's bearer calls against a server kit that binds tokens to the device key
//! (PROTOCOL 3 and 6.1): each call carries a `DPoP` proof the server accepts, made when the
//! call is sent (a queued sign-out too), dated by the server's clock, and a call without
//! one is refused.

mod support;

use holdfast_core::transport::{Failure, Transport, TransportConfig};
use holdfast_core::{AuthError, AuthState, SignOutReason};
use holdfast_protocol::endpoint::{Devices, Me, NoBody};
use holdfast_protocol::{Claims, ErrorCode};
use support::{Device, Fault, FaultProxy, PASSWORD, Server, clock, email};

const SIGNOUT: &str = "/auth/signout";

#[track_caller]
fn assert_proof_invalid<T: std::fmt::Debug>(result: Result<T, Failure>) {
    match result {
        Err(Failure::Rejected {
            status: 401,
            code: Some(ErrorCode::ProofInvalid),
            ..
        }) => {}
        other => panic!("expected 401 PROOF_INVALID, got {other:?}"),
    }
}

/// Waits until the proxy has seen `n` sign-outs (the attempt `sign_out` starts by itself).
async fn wait_for_sign_outs(proxy: &FaultProxy, n: usize) {
    for _ in 0..500 {
        if proxy.count(SIGNOUT) >= n {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("the sign-out was never attempted");
}

async fn is_revoked(server: &Server, access: &str) -> bool {
    let claims = Claims::decode_unverified(access).unwrap();
    server
        .stores
        .tokens
        .is_revoked(&claims.jti, claims.fam.as_deref())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn bearer_calls_carry_a_proof_the_server_accepts() {
    let server = Server::start().await;
    let clock = clock();
    let device = Device::new();
    let client = device.client(&server.url(), &clock);
    client.initialize().await;
    client.sign_up(&email("proofs"), PASSWORD, None).await.unwrap();
    let access = client.access_token().await.unwrap();
    let jkt = Claims::decode_unverified(&access).unwrap().cnf.map(|cnf| cnf.jkt);
    assert_eq!(jkt, Some(client.device_thumbprint().await.unwrap()));

    // Every bearer call of the session works with the bound token.
    assert_eq!(client.list_devices().await.unwrap().len(), 1);
    client.register_device("Ada's phone").await.unwrap();
    let other_device = Device::new();
    let other = other_device.client(&server.url(), &clock);
    other.initialize().await;
    let address = client.current_user().unwrap().email;
    other.sign_in(&address, PASSWORD).await.unwrap();
    let other_id = other.device_id().await.unwrap();
    assert_eq!(client.list_devices().await.unwrap().len(), 2);
    client.revoke_device(&other_id).await.unwrap();
    // The revoked device's proof is good; its device is not, and its refresh says so.
    assert_eq!(
        other.list_devices().await,
        Err(AuthError::SignInRequired {
            code: ErrorCode::DeviceRevoked
        })
    );
    assert_eq!(
        other.refresh().await,
        Err(AuthError::SignInRequired {
            code: ErrorCode::DeviceRevoked
        })
    );
    assert_eq!(
        other.state(),
        AuthState::SignedOut {
            reason: SignOutReason::DeviceRevoked
        }
    );

    // The same token without a proof is refused; the client's proof for that URL opens it,
    // once.
    let transport = Transport::new(TransportConfig::new(server.url())).unwrap();
    assert_proof_invalid(transport.send(&Devices, &NoBody, Some(&access), None).await);
    let url = transport.url_for("/devices");
    let proof = client.device_proof("GET", &url, None).await.unwrap();
    transport
        .send(&Devices, &NoBody, Some(&access), Some(&proof))
        .await
        .unwrap();
    assert_proof_invalid(
        transport
            .send(&Devices, &NoBody, Some(&access), Some(&proof))
            .await,
    );
    let elsewhere = client
        .device_proof("GET", &transport.url_for("/me"), None)
        .await
        .unwrap();
    assert_proof_invalid(
        transport
            .send(&Devices, &NoBody, Some(&access), Some(&elsewhere))
            .await,
    );

    // Sign-out reaches the server with its proof.
    client.sign_out().await.unwrap();
    assert_eq!(client.flush_outbox().await.unwrap(), 0);
    assert!(
        is_revoked(&server, &access).await,
        "the server revoked the session"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_queued_sign_out_is_proven_when_it_is_delivered() {
    let server = Server::start().await;
    let proxy = FaultProxy::start(server.addr).await;
    let clock = clock();
    let device = Device::new();
    let client = device.client(&proxy.url(), &clock);
    client.initialize().await;
    client.sign_up(&email("late"), PASSWORD, None).await.unwrap();
    let access = client.access_token().await.unwrap();

    proxy.set(Fault::Drop);
    client.sign_out().await.unwrap();
    wait_for_sign_outs(&proxy, 1).await;
    // Later, and the device clock moved meanwhile: a proof made at queue time would be
    // stale, and one dated by the old idea of the server's time is refused once, after
    // which the server's `Date` corrects it.
    clock.advance_ms(5 * 60_000);
    let restarted = device.client(&proxy.url(), &clock);
    restarted.initialize().await;
    proxy.set(Fault::Pass);
    let before = proxy.count(SIGNOUT);
    assert_eq!(restarted.flush_outbox().await.unwrap(), 0);
    assert_eq!(
        proxy.count(SIGNOUT) - before,
        2,
        "one refused proof, one with the server's time"
    );
    assert!(
        is_revoked(&server, &access).await,
        "the server revoked the session"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn without_the_device_key_a_queued_sign_out_is_sent_once_and_dropped() {
    let server = Server::start().await;
    let proxy = FaultProxy::start(server.addr).await;
    let clock = clock();
    let device = Device::new();
    let client = device.client(&proxy.url(), &clock);
    client.initialize().await;
    client.sign_up(&email("keyless"), PASSWORD, None).await.unwrap();
    let access = client.access_token().await.unwrap();
    proxy.set(Fault::Drop);
    client.sign_out().await.unwrap();
    wait_for_sign_outs(&proxy, 1).await;
    drop(client);

    // The device identity is gone (wiped) before the network is back.
    let conn = rusqlite::Connection::open(device.path()).unwrap();
    let deleted = conn
        .execute("DELETE FROM records WHERE name = 'device'", [])
        .unwrap();
    assert_eq!(deleted, 1);
    drop(conn);
    let restarted = device.client(&proxy.url(), &clock);
    assert_eq!(
        restarted.initialize().await,
        AuthState::SignedOut {
            reason: SignOutReason::NoStoredSession
        }
    );
    proxy.set(Fault::Pass);
    let before = proxy.count(SIGNOUT);
    // Sent without a proof, refused for good (401 PROOF_INVALID): not retried, not kept.
    assert_eq!(restarted.flush_outbox().await.unwrap(), 0);
    assert_eq!(proxy.count(SIGNOUT) - before, 1);
    assert_eq!(restarted.flush_outbox().await.unwrap(), 0);
    assert_eq!(proxy.count(SIGNOUT) - before, 1);
    // The bound token stays useless without the key.
    let transport = Transport::new(TransportConfig::new(server.url())).unwrap();
    assert_proof_invalid(transport.send(&Me, &NoBody, Some(&access), None).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn with_binding_off_every_flow_works_with_bearer_tokens() {
    // ClientConfig::bind_tokens = false: token requests carry no proof, so the server issues
    // plain bearer tokens (PROTOCOL 3), which an app's own API can take as they are.
    let server = Server::start().await;
    let clock = clock();
    let device = Device::new();
    let mut config = device.config(&server.url(), std::sync::Arc::new(clock.clone()));
    config.bind_tokens = false;
    let client = holdfast_core::AuthClient::new(config).unwrap();
    client.initialize().await;
    client.sign_up(&email("unbound"), PASSWORD, None).await.unwrap();
    let access = client.access_token().await.unwrap();
    assert_eq!(Claims::decode_unverified(&access).unwrap().cnf, None);
    // Bearer calls, refresh, a device re-login and sign-out all work unbound.
    client.register_device("Ada's phone").await.unwrap();
    assert_eq!(client.list_devices().await.unwrap().len(), 1);
    let refreshed = client.refresh().await.unwrap();
    assert_ne!(refreshed, access);
    assert_eq!(Claims::decode_unverified(&refreshed).unwrap().cnf, None);
    client.reauthenticate_with_device().await.unwrap();
    let relogged = client.access_token().await.unwrap();
    assert_eq!(Claims::decode_unverified(&relogged).unwrap().cnf, None);
    let me = Transport::new(TransportConfig::new(server.url()))
        .unwrap()
        .send(&Me, &NoBody, Some(&relogged), None)
        .await
        .unwrap();
    assert_eq!(me.value.id, client.current_user().unwrap().id);
    client.sign_out().await.unwrap();
    assert!(matches!(client.state(), AuthState::SignedOut { .. }));
}

#[tokio::test(flavor = "multi_thread")]
async fn by_default_every_token_request_binds_the_tokens_to_the_device_key() {
    let server = Server::start().await;
    let clock = clock();
    let device = Device::new();
    let client = device.client(&server.url(), &clock);
    client.initialize().await;
    let address = email("bound-everywhere");
    client.sign_up(&address, PASSWORD, None).await.unwrap();
    let jkt = Some(client.device_thumbprint().await.unwrap());
    let bound = |token: &str| Claims::decode_unverified(token).unwrap().cnf.map(|cnf| cnf.jkt);
    assert_eq!(bound(&client.access_token().await.unwrap()), jkt, "sign-up");
    // Refresh: the family stays bound (the server demands the key's proof, which the
    // client sends).
    assert_eq!(bound(&client.refresh().await.unwrap()), jkt, "refresh");
    // Device re-login (challenge and verify).
    client.reauthenticate_with_device().await.unwrap();
    assert_eq!(bound(&client.access_token().await.unwrap()), jkt, "verify");
    // Sign-in on the same device.
    client.sign_out().await.unwrap();
    client.sign_in(&address, PASSWORD).await.unwrap();
    assert_eq!(bound(&client.access_token().await.unwrap()), jkt, "sign-in");
    // A copy of the token is refused without the key.
    let copy = client.access_token().await.unwrap();
    assert_proof_invalid(
        Transport::new(TransportConfig::new(server.url()))
            .unwrap()
            .send(&Me, &NoBody, Some(&copy), None)
            .await,
    );
}
