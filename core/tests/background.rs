//! Time against the real server kit on loopback: the background refresh at about 80% of
//! the lifetime, its backoff while the server is unreachable, a client clock an hour off,
//! a forced rotation, and a passphrase change that keeps the session.
//!
//! Tokens here really expire (lifetimes of a few seconds, real time): moving only the
//! client's clock would be corrected by the server's `Date` header. The bounds on time are
//! generous behaviour bounds (before expiry, not a hot loop), not performance figures.

mod support;

use std::sync::Arc;
use std::time::Duration;

use holdfast_core::clock::{Clock, SystemClock};
use holdfast_core::vault::Passphrase;
use holdfast_core::{AuthClient, AuthError, AuthEvent, AuthState, KeySource};
use holdfast_protocol::Claims;
use holdfast_protocol::proof::{PROOF_MAX_SKEW_SECS, ParsedProof, access_token_hash};
use support::{Device, Events, Fault, FaultProxy, Server, email};

const REFRESH: &str = "/auth/refresh";

/// The real time plus a fixed offset: a device whose clock is wrong.
struct OffsetClock(i64);

impl Clock for OffsetClock {
    fn now_ms(&self) -> i64 {
        SystemClock.now_ms() + self.0
    }
}

fn real_now_ms() -> i64 {
    SystemClock.now_ms()
}

/// A client with the background refresh on.
fn auto_client(device: &Device, url: &str, clock: Arc<dyn Clock>) -> AuthClient {
    let mut config = device.config(url, clock);
    config.auto_refresh = true;
    AuthClient::new(config).expect("client config")
}

fn expiry_ms(access_token: &str) -> i64 {
    Claims::decode_unverified(access_token).expect("a JWT").exp * 1000
}

/// Waits until `events` holds a `Refreshed`, or until real time passes `deadline_ms`;
/// returns the real time at which it was seen.
async fn refreshed_by(events: &Events, deadline_ms: i64) -> Option<i64> {
    loop {
        if events.count(|event| *event == AuthEvent::Refreshed) > 0 {
            return Some(real_now_ms());
        }
        if real_now_ms() > deadline_ms {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_background_refresh_runs_before_expiry_so_callers_never_wait() {
    let server = Server::start_with(|config| config.access_ttl_secs = 4).await;
    let proxy = FaultProxy::start(server.addr).await;
    let device = Device::new();
    let client = auto_client(&device, &proxy.url(), Arc::new(SystemClock));
    client.initialize().await;
    let events = Events::record(&client);
    client
        .sign_up(&email("ahead"), support::PASSWORD, None)
        .await
        .unwrap();
    let first = client.access_token().await.unwrap();
    let expires = expiry_ms(&first);

    let seen = refreshed_by(&events, expires + 2_000).await;
    let seen = seen.expect("the background task refreshed");
    assert!(seen < expires, "refreshed {} ms after expiry", seen - expires);
    assert_eq!(proxy.count(REFRESH), 1);
    // The caller gets the new token from memory: no request of its own.
    let second = client.access_token().await.unwrap();
    assert_ne!(second, first);
    assert_eq!(proxy.count(REFRESH), 1);
    assert!(expiry_ms(&second) > expires);
}

#[tokio::test(flavor = "multi_thread")]
async fn offline_the_background_refresh_backs_off_and_recovers_on_its_own() {
    let server = Server::start_with(|config| config.access_ttl_secs = 2).await;
    let proxy = FaultProxy::start(server.addr).await;
    let device = Device::new();
    let client = auto_client(&device, &proxy.url(), Arc::new(SystemClock));
    client.initialize().await;
    let events = Events::record(&client);
    client
        .sign_up(&email("backoff"), support::PASSWORD, None)
        .await
        .unwrap();
    let first = client.access_token().await.unwrap();
    let issued = Claims::decode_unverified(&first).unwrap().iat * 1000;
    proxy.set(Fault::Unavailable);

    // Due at 1.6 s after issue, then waits of 1-2 s, 2-4 s, 4-8 s: about three attempts in
    // the first six seconds. A retry loop without backoff would make hundreds.
    tokio::time::sleep(Duration::from_millis(
        u64::try_from(issued + 6_000 - real_now_ms()).unwrap_or(0),
    ))
    .await;
    let attempts = proxy.count(REFRESH);
    assert!((2..=5).contains(&attempts), "{attempts} attempts in 6 s");
    let failures = events.count(|event| matches!(event, AuthEvent::RefreshFailed { .. }));
    assert_eq!(failures, attempts, "each failed attempt is reported");
    assert!(matches!(
        client.state(),
        AuthState::SignedIn {
            token_fresh: false,
            ..
        }
    ));

    // The server comes back; nobody calls the client; the next attempt succeeds.
    proxy.set(Fault::Pass);
    let seen = refreshed_by(&events, real_now_ms() + 20_000).await;
    assert!(
        seen.is_some(),
        "the background task refreshed once the server was back"
    );
    assert!(matches!(
        client.state(),
        AuthState::SignedIn {
            token_fresh: true,
            ..
        }
    ));
    assert_eq!(proxy.count(REFRESH), attempts + 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_clock_an_hour_off_still_refreshes_before_expiry_and_makes_accepted_proofs() {
    for offset_ms in [3_600_000, -3_600_000] {
        // Six seconds: the refresh is due 1.2 s before expiry, and `Date`'s one-second
        // precision leaves the learned offset up to half a second off.
        let server = Server::start_with(|config| config.access_ttl_secs = 6).await;
        let proxy = FaultProxy::start(server.addr).await;
        let device = Device::new();
        let clock: Arc<dyn Clock> = Arc::new(OffsetClock(offset_ms));
        let client = auto_client(&device, &proxy.url(), clock.clone());
        client.initialize().await;
        let events = Events::record(&client);
        client
            .sign_up(&email("skew"), support::PASSWORD, None)
            .await
            .unwrap();

        // The offset was learned from the sign-up's `Date` header.
        let estimate_error = client.server_now_ms() - real_now_ms();
        assert!(
            estimate_error.abs() < 2_500,
            "offset {offset_ms}: off by {estimate_error} ms"
        );
        assert_eq!(
            events.count(|event| matches!(event, AuthEvent::ClockSkew { .. })),
            1,
            "offset {offset_ms}: the skew is reported once"
        );

        let first = client.access_token().await.unwrap();
        let expires = expiry_ms(&first);
        let seen = refreshed_by(&events, expires + 2_000).await;
        let seen = seen.unwrap_or_else(|| panic!("offset {offset_ms}: no refresh"));
        assert!(seen < expires, "offset {offset_ms}: refreshed after expiry");

        // A device proof dated by the learned server time passes the server's checks
        // (PROTOCOL 6.1): signature, iat within the window, ath, and the device's key.
        let url = format!("{}/sync", proxy.url());
        let proof = client.device_proof("GET", &url, None).await.unwrap();
        let access = client.access_token().await.unwrap();
        let parsed = ParsedProof::parse(&proof).unwrap();
        assert!(holdfast_server_kit::devices::verify_proof_signature(&parsed));
        let skew = parsed.claims.iat - real_now_ms() / 1000;
        assert!(
            skew.abs() <= PROOF_MAX_SKEW_SECS,
            "offset {offset_ms}: iat off by {skew} s"
        );
        assert_eq!(parsed.claims.ath, access_token_hash(&access));
        assert_eq!(parsed.claims.htm, "GET");
        assert_eq!(parsed.claims.htu, url);
        assert_eq!(parsed.jwk.thumbprint(), client.device_thumbprint().await.unwrap());
        // And the server takes the token the skewed client holds.
        assert!(!client.list_devices().await.unwrap().is_empty());

        // Restarted offline, the client remembers the offset instead of trusting its clock.
        drop(events);
        drop(client);
        proxy.set(Fault::Drop);
        let restarted = auto_client(&device, &proxy.url(), clock);
        assert!(restarted.initialize().await.is_signed_in());
        let estimate_error = restarted.server_now_ms() - real_now_ms();
        assert!(
            estimate_error.abs() < 2_500,
            "offset {offset_ms}: restart off by {estimate_error} ms"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn refresh_rotates_a_fresh_token_and_concurrent_callers_share_requests() {
    let server = Server::start().await;
    let proxy = FaultProxy::start(server.addr).await;
    let device = Device::new();
    let client = device.client(&proxy.url(), &support::clock());
    client.initialize().await;
    client
        .sign_up(&email("forced"), support::PASSWORD, None)
        .await
        .unwrap();
    let before = client.access_token().await.unwrap();

    let mut callers = Vec::new();
    for _ in 0..20 {
        let client = client.clone();
        callers.push(tokio::spawn(async move { client.refresh().await }));
    }
    let mut tokens = std::collections::HashSet::new();
    for caller in callers {
        let token = caller.await.unwrap().unwrap();
        assert_ne!(
            token, before,
            "a forced refresh never returns the token seen before it"
        );
        tokens.insert(token);
    }
    // Callers that overlapped a request in flight took its result.
    assert_eq!(proxy.count(REFRESH), tokens.len());
    assert!(
        tokens.len() < 20,
        "{} requests for 20 overlapping callers",
        tokens.len()
    );
    let latest = client.access_token().await.unwrap();
    assert!(tokens.contains(&latest));

    // One more, alone: one more request, and the server takes its token.
    let again = client.refresh().await.unwrap();
    assert!(!tokens.contains(&again));
    assert_eq!(proxy.count(REFRESH), tokens.len() + 1);
    assert!(!client.list_devices().await.unwrap().is_empty());
}

fn passphrase_client(device: &Device, url: &str, passphrase: &str) -> AuthClient {
    let mut config = device.config(url, Arc::new(SystemClock));
    config.key_source = KeySource::Passphrase(Passphrase::new(passphrase));
    AuthClient::new(config).expect("client config")
}

#[tokio::test(flavor = "multi_thread")]
async fn changing_the_passphrase_keeps_the_session_and_retires_the_old_one() {
    let server = Server::start().await;
    let device = Device::new();
    let client = passphrase_client(&device, &server.url(), "old passphrase");
    client.initialize().await;
    let user = client
        .sign_up(&email("rekey"), support::PASSWORD, None)
        .await
        .unwrap();
    let device_id = client.device_id().await.unwrap();
    let token = client.access_token().await.unwrap();
    // Another instance (as another process would) still holds the old key.
    let stale = passphrase_client(&device, &server.url(), "old passphrase");
    assert!(stale.initialize().await.is_signed_in());

    let refused = client
        .change_passphrase(Passphrase::new("not it"), Passphrase::new("new passphrase"))
        .await;
    assert_eq!(refused, Err(AuthError::WrongPassphrase));
    let empty = client
        .change_passphrase(Passphrase::new("old passphrase"), Passphrase::new(""))
        .await;
    assert!(matches!(empty, Err(AuthError::InvalidInput { .. })), "{empty:?}");
    client
        .change_passphrase(
            Passphrase::new("old passphrase"),
            Passphrase::new("new passphrase"),
        )
        .await
        .unwrap();

    // Nothing changed for the app: same session, same token, same device.
    assert_eq!(client.access_token().await.unwrap(), token);
    assert!(client.state().is_signed_in());
    let refreshed = client.refresh().await.unwrap();
    assert_ne!(refreshed, token);

    // The stale instance cannot read the store any more, and does not mistake that for
    // damage: nothing is quarantined, nothing deleted.
    let stale_refresh = stale.refresh().await;
    assert!(
        matches!(&stale_refresh, Err(AuthError::StorageUnavailable { message }) if message.contains("changed")),
        "{stale_refresh:?}"
    );
    drop(stale);

    drop(client);
    let old = passphrase_client(&device, &server.url(), "old passphrase");
    assert!(matches!(old.initialize().await, AuthState::Unavailable { .. }));
    let new = passphrase_client(&device, &server.url(), "new passphrase");
    match new.initialize().await {
        AuthState::SignedIn { user: restored, .. } => assert_eq!(restored.id, user.id),
        other => panic!("after the change: {other:?}"),
    }
    assert_eq!(new.device_id().await.unwrap(), device_id);
    assert_eq!(new.access_token().await.unwrap(), refreshed);
}
