//! The whole sync story across crates: the real client core (`holdfast_core::AuthClient`)
//! signs up and signs in two devices of one user against the server kit, each opens a
//! device-proven sync connection with its `sync_credentials`, an item written on one is in
//! the other's snapshot, and revoking the first device from the second cuts the first's
//! open connection off with 4001. A self-renewing connection outlives many access tokens
//! and signs its client out the moment its device is revoked.

use std::time::{Duration, Instant};

use holdfast_core::vault::Passphrase;
use holdfast_core::{AuthClient, ClientConfig, KeySource};
use holdfast_examples::local_server::LocalServer;
use holdfast_examples::sync_client::{SyncClient, SyncError, SyncEvent, SyncItem};
use serde_json::json;

const PASSWORD: &str = "correct horse battery";
/// How long to wait for an event that must come.
const EVENT_BOUND: Duration = Duration::from_secs(5);

/// A device: its own store (so its own device key) and a client of `server`.
struct Device {
    client: AuthClient,
    _dir: tempfile::TempDir,
}

impl Device {
    async fn new(server: &LocalServer) -> Device {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = ClientConfig::new(
            server.base_url(),
            dir.path().join("holdfast.db"),
            KeySource::Passphrase(Passphrase::new("device passphrase")),
        );
        let client = AuthClient::new(config).expect("client config");
        client.initialize().await;
        Device { client, _dir: dir }
    }

    async fn connect(&self, server: &LocalServer) -> SyncClient {
        let credentials = self
            .client
            .sync_credentials(&server.sync_url())
            .await
            .expect("sync credentials");
        SyncClient::connect(&server.sync_url(), &credentials)
            .await
            .expect("admitted")
    }
}

/// Fast password hashing, for tests.
fn quick_hashing(config: &mut holdfast_server_kit::ServerConfig) {
    config.argon2 = holdfast_server_kit::passwords::Argon2Params {
        memory_kib: 1024,
        iterations: 1,
        parallelism: 1,
    };
}

async fn next_event(sync: &mut SyncClient) -> SyncEvent {
    tokio::time::timeout(EVENT_BOUND, sync.next_event())
        .await
        .expect("an event in time")
        .expect("the connection is open")
}

/// Reads the welcome (for `device_id`) and the snapshot; returns the snapshot.
async fn welcomed(sync: &mut SyncClient, device_id: &str) -> Vec<SyncItem> {
    match next_event(sync).await {
        SyncEvent::Welcome { device_id: id, .. } => assert_eq!(id, device_id),
        other => panic!("expected a welcome, got {other:?}"),
    }
    match next_event(sync).await {
        SyncEvent::Snapshot(items) => items,
        other => panic!("expected a snapshot, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn two_devices_share_items_and_revoking_one_cuts_its_connection() {
    holdfast_examples::ensure_crypto_provider();
    let server = LocalServer::start(quick_hashing).await.expect("server");
    let email = "sync-e2e@example.com";

    let phone = Device::new(&server).await;
    phone
        .client
        .sign_up(email, PASSWORD, Some("Ada"))
        .await
        .expect("signed up");
    let phone_id = phone.client.device_id().await.expect("device id");
    let mut phone_sync = phone.connect(&server).await;
    assert!(welcomed(&mut phone_sync, &phone_id).await.is_empty());

    phone_sync
        .put("note/1", json!({"text": "offline-first"}))
        .await
        .expect("sent");
    let written = match next_event(&mut phone_sync).await {
        SyncEvent::Item(item) => item,
        other => panic!("expected the item back, got {other:?}"),
    };
    assert_eq!((written.key.as_str(), written.version), ("note/1", 1));
    assert_eq!(written.device_id, phone_id);

    let laptop = Device::new(&server).await;
    laptop.client.sign_in(email, PASSWORD).await.expect("signed in");
    let laptop_id = laptop.client.device_id().await.expect("device id");
    assert_ne!(laptop_id, phone_id);
    let mut laptop_sync = laptop.connect(&server).await;
    assert_eq!(welcomed(&mut laptop_sync, &laptop_id).await, vec![written]);

    let started = Instant::now();
    laptop.client.revoke_device(&phone_id).await.expect("revoked");
    let returned = Instant::now();
    match next_event(&mut phone_sync).await {
        SyncEvent::Closed { code, reason } => {
            println!(
                "revocation-to-close delay: {:?} after revoke_device returned, {:?} after it started",
                returned.elapsed(),
                started.elapsed()
            );
            assert_eq!((code, reason.as_str()), (4001, "DEVICE_REVOKED"));
        }
        other => panic!("expected the close, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(2), "closed in time");
    assert_eq!(phone_sync.next_event().await, None);

    // The revoked device cannot come back; the laptop's connection is untouched.
    let credentials = phone.client.sync_credentials(&server.sync_url()).await;
    if let Ok(credentials) = credentials {
        match SyncClient::connect(&server.sync_url(), &credentials).await {
            Err(SyncError::Refused { status, .. }) => assert!(matches!(status, 401 | 403)),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
    laptop_sync.put("note/2", json!(null)).await.expect("still open");
    match next_event(&mut laptop_sync).await {
        SyncEvent::Item(item) => assert_eq!(item.device_id, laptop_id),
        other => panic!("expected the laptop's item, got {other:?}"),
    }
    laptop_sync.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_renewing_connection_outlives_its_tokens_and_follows_a_revocation() {
    holdfast_examples::ensure_crypto_provider();
    // Access tokens of 4 s: the server asks for a renewal halfway through each.
    let server = LocalServer::start(|config| {
        quick_hashing(config);
        config.access_ttl_secs = 4;
    })
    .await
    .expect("server");
    let email = "sync-renewal@example.com";
    let phone = Device::new(&server).await;
    phone
        .client
        .sign_up(email, PASSWORD, None)
        .await
        .expect("signed up");
    let phone_id = phone.client.device_id().await.expect("device id");
    let mut sync = SyncClient::connect_renewing(&phone.client, &server.sync_url())
        .await
        .expect("admitted");
    welcomed(&mut sync, &phone_id).await;

    // Three token lifetimes on one connection.
    let started = Instant::now();
    let mut renewals = Vec::new();
    while started.elapsed() < Duration::from_secs(12) {
        match tokio::time::timeout(Duration::from_millis(500), sync.next_event()).await {
            Err(_) => {}
            Ok(Some(SyncEvent::Renewed { expires_at })) => renewals.push(expires_at),
            Ok(other) => panic!("expected only renewals, got {other:?}"),
        }
    }
    println!("renewals in 12 s with 4 s tokens: {}", renewals.len());
    assert!(renewals.len() >= 3, "renewed {} times", renewals.len());
    assert!(renewals.windows(2).all(|pair| pair[0] < pair[1]), "{renewals:?}");
    sync.put("after/renewals", json!(1)).await.expect("still open");
    match next_event(&mut sync).await {
        SyncEvent::Item(item) => assert_eq!(item.key, "after/renewals"),
        other => panic!("expected the item back, got {other:?}"),
    }

    // Revoked from another device: the connection closes with 4001 and the phone's client
    // is signed out at once, not at its next refresh.
    let laptop = Device::new(&server).await;
    laptop.client.sign_in(email, PASSWORD).await.expect("signed in");
    laptop.client.revoke_device(&phone_id).await.expect("revoked");
    loop {
        match next_event(&mut sync).await {
            SyncEvent::Closed { code, reason } => {
                assert_eq!((code, reason.as_str()), (4001, "DEVICE_REVOKED"));
                break;
            }
            SyncEvent::Renewed { .. } | SyncEvent::RenewalFailed { .. } => {}
            other => panic!("expected the close, got {other:?}"),
        }
    }
    assert!(
        matches!(
            phone.client.state(),
            holdfast_core::AuthState::SignedOut {
                reason: holdfast_core::SignOutReason::DeviceRevoked
            }
        ),
        "{:?}",
        phone.client.state()
    );
}
