//! The sync gate (PROTOCOL 5, 6.1, 6.5) over a real server: every refusal with its code,
//! the proofless policy, the caches' staleness bounds, `lastSeenAt` coalescing, and
//! `watch` firing for each way access ends.

mod support;

use std::time::{Duration, Instant};

use holdfast_protocol::ErrorCode;
use holdfast_server_kit::gate::{
    Closed, GateConfig, GateError, Handshake, Principal, ProoflessPolicy, SyncGate,
};
use serde_json::json;
use support::{DeviceKey, PASSWORD, Session, TestServer, email};

const SYNC_URL: &str = "https://sync.example.com/sync";

/// A device proof made the way PROTOCOL 6.1 says, independently of the client core (the
/// harness's `DeviceKey::proof`).
fn proof_at(key: &DeviceKey, method: &str, url: &str, access: &str, iat: i64) -> String {
    key.proof(method, url, access, iat)
}

/// A server, a gate over its service, and a user signed up on a keyed device.
struct Fixture {
    server: TestServer,
    gate: SyncGate,
    key: DeviceKey,
    session: Session,
}

impl Fixture {
    async fn start(config: GateConfig) -> Fixture {
        Fixture::start_with(config, |_| {}).await
    }

    async fn start_with(
        config: GateConfig,
        configure: impl FnOnce(&mut holdfast_server_kit::ServerConfig),
    ) -> Fixture {
        let server = TestServer::start(configure).await;
        let gate = SyncGate::new(&server.service, config);
        let key = DeviceKey::generate();
        let session = server.sign_up_device(&email("gate"), "phone-1", &key).await;
        Fixture {
            server,
            gate,
            key,
            session,
        }
    }

    fn proof(&self) -> String {
        proof_at(
            &self.key,
            "GET",
            SYNC_URL,
            &self.session.access,
            self.server.now_secs(),
        )
    }

    async fn admit(&self, token: &str, proof: Option<&str>) -> Result<Principal, GateError> {
        self.gate
            .admit(&Handshake {
                access_token: token,
                proof,
                method: "GET",
                url: SYNC_URL,
            })
            .await
    }

    async fn admit_with_proof(&self) -> Result<Principal, GateError> {
        let proof = self.proof();
        self.admit(&self.session.access, Some(&proof)).await
    }

    /// A second device of the same user, signed in without a key (its token is unbound),
    /// to act on the first from elsewhere.
    async fn other_device(&self) -> Session {
        let email = self.session.user["email"].as_str().expect("email").to_owned();
        self.server.sign_in_device(&email, "laptop-1").await
    }
}

#[track_caller]
fn assert_refused(result: Result<Principal, GateError>, code: ErrorCode, message_part: &str) {
    match result {
        Ok(principal) => panic!("admitted {principal:?}, expected {code}"),
        Err(error) => {
            assert_eq!(error.code, code, "{error}");
            assert!(
                error.message.contains(message_part),
                "{error} should mention {message_part:?}"
            );
        }
    }
}

#[tokio::test]
async fn a_bound_token_with_a_valid_proof_is_admitted_as_its_principal() {
    let fixture = Fixture::start(GateConfig::default()).await;
    let principal = fixture.admit_with_proof().await.unwrap();
    assert_eq!(principal.user_id, fixture.session.user_id());
    assert_eq!(principal.device_id, "phone-1");
    assert_eq!(principal.email, fixture.session.user["email"].as_str().unwrap());
    assert!(principal.proven);
    let claims = support::claims(&fixture.session.access);
    assert_eq!(principal.token_id, claims.jti);
    assert_eq!(principal.family, claims.fam);
    assert_eq!(principal.expires_at, claims.exp);
    assert_eq!(
        principal.to_json(),
        json!({
            "userId": principal.user_id,
            "deviceId": "phone-1",
            "metadata": {"deviceId": "phone-1", "email": principal.email, "name": null},
        })
    );
    // Warm caches: the next connection is admitted the same way.
    assert_eq!(
        fixture.admit_with_proof().await.unwrap().user_id,
        principal.user_id
    );
}

#[tokio::test]
async fn a_proof_may_name_the_sync_url_in_its_websocket_form() {
    // PROTOCOL 6.1: `wss://host/sync` and `https://host/sync` are the same URL (and `ws`
    // is `http`); a secure and a plain scheme are not.
    let fixture = Fixture::start(GateConfig::default()).await;
    let key = &fixture.key;
    let access = fixture.session.access.clone();
    let now = fixture.server.now_secs();
    for url in ["wss://sync.example.com/sync", "WSS://sync.example.com/sync"] {
        let proof = proof_at(key, "GET", url, &access, now);
        fixture.admit(&access, Some(&proof)).await.unwrap();
    }
    for url in [
        "ws://sync.example.com/sync",
        "http://sync.example.com/sync",
        "wss://sync.example.com/other",
    ] {
        let proof = proof_at(key, "GET", url, &access, now);
        assert_refused(
            fixture.admit(&access, Some(&proof)).await,
            ErrorCode::ProofInvalid,
            "another URL",
        );
    }
}

#[tokio::test]
async fn proofs_that_do_not_match_the_connection_are_refused() {
    let fixture = Fixture::start(GateConfig::default()).await;
    let now = fixture.server.now_secs();
    let access = fixture.session.access.clone();
    let key = &fixture.key;

    let replayed = fixture.proof();
    fixture.admit(&access, Some(&replayed)).await.unwrap();
    assert_refused(
        fixture.admit(&access, Some(&replayed)).await,
        ErrorCode::ProofInvalid,
        "already used",
    );

    let cases = [
        (
            proof_at(key, "GET", "https://sync.example.com/other", &access, now),
            "another URL",
        ),
        (proof_at(key, "POST", SYNC_URL, &access, now), "another method"),
        (proof_at(key, "GET", SYNC_URL, &access, now - 61), "too old"),
        (
            proof_at(key, "GET", SYNC_URL, &access, now + 61),
            "too old or dated in the future",
        ),
        (
            proof_at(&DeviceKey::generate(), "GET", SYNC_URL, &access, now),
            "another key",
        ),
        (
            proof_at(key, "GET", SYNC_URL, &fixture.other_device().await.access, now),
            "another access token",
        ),
        ("not.a.proof".to_owned(), "malformed"),
    ];
    for (proof, expected) in cases {
        assert_refused(
            fixture.admit(&access, Some(&proof)).await,
            ErrorCode::ProofInvalid,
            expected,
        );
    }
    // Just inside the window on either side is fine.
    for iat in [now - 60, now + 60] {
        let proof = proof_at(key, "GET", SYNC_URL, &access, iat);
        fixture.admit(&access, Some(&proof)).await.unwrap();
    }
}

#[tokio::test]
async fn a_bound_token_without_a_proof_is_refused_whatever_the_policy() {
    for proofless in [ProoflessPolicy::AdmitUnbound, ProoflessPolicy::Reject] {
        let fixture = Fixture::start(GateConfig {
            proofless,
            ..GateConfig::default()
        })
        .await;
        assert_refused(
            fixture.admit(&fixture.session.access, None).await,
            ErrorCode::ProofInvalid,
            "bound to a device key",
        );
    }
}

#[tokio::test]
async fn an_unbound_kora_token_is_handled_per_policy() {
    let admit = Fixture::start(GateConfig::default()).await;
    let kora = admit.other_device().await;
    assert!(
        support::claims(&kora.access).cnf.is_none(),
        "a keyless device's token is unbound"
    );
    let principal = admit.admit(&kora.access, None).await.unwrap();
    assert!(!principal.proven);
    assert_eq!(principal.device_id, "laptop-1");
    // A proof from a device without a registered key cannot be checked: refused.
    let proof = proof_at(
        &DeviceKey::generate(),
        "GET",
        SYNC_URL,
        &kora.access,
        admit.server.now_secs(),
    );
    assert_refused(
        admit.admit(&kora.access, Some(&proof)).await,
        ErrorCode::ProofInvalid,
        "no registered key",
    );

    let reject = Fixture::start(GateConfig {
        proofless: ProoflessPolicy::Reject,
        ..GateConfig::default()
    })
    .await;
    let kora = reject.other_device().await;
    assert_refused(
        reject.admit(&kora.access, None).await,
        ErrorCode::ProofInvalid,
        "proof is required",
    );
}

#[tokio::test]
async fn bad_expired_and_non_access_tokens_are_refused() {
    let fixture = Fixture::start(GateConfig::default()).await;
    let access = fixture.session.access.clone();
    let mut tampered = access.clone().into_bytes();
    let middle = tampered.len() / 2;
    tampered[middle] = if tampered[middle] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    assert_refused(
        fixture.admit(&tampered, None).await,
        ErrorCode::TokenInvalid,
        "Invalid",
    );
    assert_refused(fixture.admit("", None).await, ErrorCode::TokenInvalid, "Invalid");
    let refresh = fixture.session.refresh.clone();
    assert_refused(
        fixture.admit(&refresh, None).await,
        ErrorCode::TokenInvalid,
        "Invalid",
    );

    fixture.admit_with_proof().await.unwrap();
    // Past `exp` and the 5 s leeway, even with the claims cached.
    fixture.server.clock.advance_ms(16 * 60_000);
    assert_refused(
        fixture.admit_with_proof().await,
        ErrorCode::TokenExpired,
        "expired",
    );
}

#[tokio::test]
async fn an_unknown_device_is_refused_unless_configured() {
    let fixture = Fixture::start(GateConfig::default()).await;
    let user_id = fixture.session.user_id().to_owned();
    let now = fixture.server.now_secs();
    let issued =
        fixture
            .server
            .service
            .tokens()
            .issue_pair(&user_id, "never-registered", "family-x", None, now);
    let token = issued.access.clone();
    assert_refused(
        fixture.admit(&token, None).await,
        ErrorCode::DeviceNotFound,
        "not registered",
    );

    let lenient = SyncGate::new(
        &fixture.server.service,
        GateConfig {
            allow_unregistered_devices: true,
            ..GateConfig::default()
        },
    );
    let principal = lenient
        .admit(&Handshake {
            access_token: &token,
            proof: None,
            method: "GET",
            url: SYNC_URL,
        })
        .await
        .unwrap();
    assert_eq!(principal.device_id, "never-registered");
}

#[tokio::test]
async fn revoked_devices_signed_out_tokens_and_deleted_users_are_refused_at_once() {
    // Revoked device, through the HTTP route from the user's other device.
    let fixture = Fixture::start(GateConfig::default()).await;
    fixture.admit_with_proof().await.unwrap(); // warm caches
    let other = fixture.other_device().await;
    fixture
        .server
        .revoke(&other.access, "phone-1")
        .await
        .expect_status(200);
    assert_refused(
        fixture.admit_with_proof().await,
        ErrorCode::DeviceRevoked,
        "revoked",
    );

    // Signed-out token (and its session), through the HTTP route.
    let fixture = Fixture::start(GateConfig::default()).await;
    fixture.admit_with_proof().await.unwrap();
    let signout_proof = proof_at(
        &fixture.key,
        "POST",
        &fixture.server.url("/auth/signout"),
        &fixture.session.access,
        fixture.server.now_secs(),
    );
    let reply = support::Reply::read(
        fixture
            .server
            .request(reqwest::Method::POST, "/auth/signout")
            .bearer_auth(&fixture.session.access)
            .header("DPoP", signout_proof)
            .json(&json!({ "refreshToken": fixture.session.refresh })),
    )
    .await;
    reply.expect_status(200);
    assert_refused(
        fixture.admit_with_proof().await,
        ErrorCode::TokenRevoked,
        "revoked",
    );

    // Signed out everywhere.
    let fixture = Fixture::start(GateConfig::default()).await;
    fixture.admit_with_proof().await.unwrap();
    let ended = fixture
        .server
        .service
        .sign_out_everywhere(fixture.session.user_id())
        .await
        .unwrap();
    assert_eq!(ended, 1);
    assert_refused(
        fixture.admit_with_proof().await,
        ErrorCode::TokenRevoked,
        "revoked",
    );

    // Deleted user.
    let fixture = Fixture::start(GateConfig::default()).await;
    fixture.admit_with_proof().await.unwrap();
    assert!(
        fixture
            .server
            .service
            .delete_user(fixture.session.user_id())
            .await
            .unwrap()
    );
    assert_refused(
        fixture.admit_with_proof().await,
        ErrorCode::UserNotFound,
        "no longer exists",
    );
}

#[tokio::test]
async fn changes_the_bus_does_not_carry_are_seen_within_the_cache_ttl() {
    let fixture = Fixture::start(GateConfig::default()).await;
    fixture.admit_with_proof().await.unwrap();
    // Revoked behind the service's back (another instance without a shared bus, an admin
    // editing the database): no event.
    let user_id = fixture.session.user_id().to_owned();
    assert!(
        fixture
            .server
            .stores
            .devices
            .revoke_device("phone-1", &user_id)
            .await
            .unwrap()
    );
    // Within the bound, the cached standing still admits...
    fixture.server.clock.advance_ms(4_000);
    fixture.admit_with_proof().await.unwrap();
    // ...and past it (5 s by default) the stores are asked again.
    fixture.server.clock.advance_ms(1_500);
    assert_refused(
        fixture.admit_with_proof().await,
        ErrorCode::DeviceRevoked,
        "revoked",
    );
}

#[tokio::test]
async fn last_seen_is_written_in_batches_not_per_connection() {
    let fixture = Fixture::start(GateConfig {
        last_seen_flush: Duration::from_secs(3600),
        ..GateConfig::default()
    })
    .await;
    let devices = &fixture.server.stores.devices;
    let before = devices
        .find_device("phone-1")
        .await
        .unwrap()
        .unwrap()
        .last_seen_at_ms;
    fixture.server.clock.advance_ms(60_000);
    for _ in 0..3 {
        fixture.admit_with_proof().await.unwrap();
    }
    let unwritten = devices
        .find_device("phone-1")
        .await
        .unwrap()
        .unwrap()
        .last_seen_at_ms;
    assert_eq!(unwritten, before, "admission writes nothing");
    assert_eq!(
        fixture.gate.flush_last_seen().await.unwrap(),
        1,
        "one device, one write"
    );
    let written = devices
        .find_device("phone-1")
        .await
        .unwrap()
        .unwrap()
        .last_seen_at_ms;
    assert_eq!(written, fixture.server.now_ms());
    assert_eq!(fixture.gate.flush_last_seen().await.unwrap(), 0);
}

/// Waits for `watch` to fire, returning why and how long it took after `since`.
async fn closed_within(
    watch: holdfast_server_kit::gate::Watch,
    since: Instant,
    bound: Duration,
) -> (Closed, Duration) {
    let closed = tokio::time::timeout(bound, watch)
        .await
        .unwrap_or_else(|_| panic!("the watch did not fire within {bound:?}"));
    (closed, since.elapsed())
}

#[tokio::test]
async fn watch_fires_when_the_device_is_revoked_the_session_ends_or_the_user_is_deleted() {
    // Device revoked from the other device, over HTTP.
    let fixture = Fixture::start(GateConfig::default()).await;
    let principal = fixture.admit_with_proof().await.unwrap();
    let watch = fixture.gate.watch(&principal);
    let other = fixture.other_device().await;
    fixture
        .server
        .revoke(&other.access, "phone-1")
        .await
        .expect_status(200);
    let (closed, delay) = closed_within(watch, Instant::now(), Duration::from_secs(2)).await;
    assert_eq!(closed, Closed::DeviceRevoked);
    assert_eq!((closed.close_code(), closed.reason()), (4001, "DEVICE_REVOKED"));
    println!("device revoked -> watch fired in {delay:?}");

    // Signed out everywhere.
    let fixture = Fixture::start(GateConfig::default()).await;
    let principal = fixture.admit_with_proof().await.unwrap();
    let watch = fixture.gate.watch(&principal);
    let started = Instant::now();
    fixture
        .server
        .service
        .sign_out_everywhere(fixture.session.user_id())
        .await
        .unwrap();
    let (closed, _) = closed_within(watch, started, Duration::from_secs(2)).await;
    assert_eq!(closed, Closed::SessionEnded);
    assert_eq!(closed.close_code(), 4002);

    // Account deleted.
    let fixture = Fixture::start(GateConfig::default()).await;
    let principal = fixture.admit_with_proof().await.unwrap();
    let watch = fixture.gate.watch(&principal);
    let started = Instant::now();
    fixture
        .server
        .service
        .delete_user(fixture.session.user_id())
        .await
        .unwrap();
    let (closed, _) = closed_within(watch, started, Duration::from_secs(2)).await;
    assert_eq!(closed, Closed::AccountDeleted);
    assert_eq!(closed.close_code(), 4003);

    // PROTOCOL 8: the session ended from another one, its password changed elsewhere, the
    // account disabled: each closes the connection at once.
    for how in ["revoke session", "password change", "disable"] {
        let fixture = Fixture::start(GateConfig::default()).await;
        let principal = fixture.admit_with_proof().await.unwrap();
        let watch = fixture.gate.watch(&principal);
        let other = fixture.other_device().await;
        let started = Instant::now();
        match how {
            "revoke session" => {
                let family = principal.family.clone().expect("a session");
                fixture
                    .server
                    .delete_auth(&format!("/auth/sessions/{family}"), &other.access, None)
                    .await
                    .expect_status(200);
            }
            "password change" => {
                fixture
                    .server
                    .post_auth(
                        "/auth/password/change",
                        &other.access,
                        serde_json::json!({ "currentPassword": PASSWORD, "newPassword": "a brand new passphrase" }),
                    )
                    .await
                    .expect_status(200);
            }
            _ => {
                assert!(
                    fixture
                        .server
                        .service
                        .disable_user(fixture.session.user_id())
                        .await
                        .unwrap()
                );
            }
        }
        let (closed, delay) = closed_within(watch, started, Duration::from_secs(2)).await;
        assert_eq!(closed, Closed::SessionEnded, "{how}");
        println!("{how} -> watch fired in {delay:?}");
    }

    // Another user's revocation does not disturb this connection.
    let fixture = Fixture::start(GateConfig::default()).await;
    let principal = fixture.admit_with_proof().await.unwrap();
    let mut watch = fixture.gate.watch(&principal);
    let stranger = fixture.server.sign_up(&email("stranger")).await;
    fixture
        .server
        .service
        .sign_out_everywhere(stranger.user_id())
        .await
        .unwrap();
    let other = fixture.other_device().await;
    // The user's other device is revoked: this connection re-checks and stays.
    fixture
        .server
        .revoke(&other.access, "laptop-1")
        .await
        .expect_status(200);
    assert!(
        tokio::time::timeout(Duration::from_millis(300), &mut watch)
            .await
            .is_err(),
        "the connection stays open"
    );
}

#[tokio::test]
async fn watch_fires_when_the_token_expires_and_catches_silent_revocations_by_rechecking() {
    let fixture = Fixture::start(GateConfig {
        recheck_interval: Duration::from_millis(200),
        ..GateConfig::default()
    })
    .await;
    let principal = fixture.admit_with_proof().await.unwrap();
    let watch = fixture.gate.watch(&principal);
    // Revoked with no event: the periodic re-check finds it.
    let started = Instant::now();
    fixture
        .server
        .stores
        .devices
        .revoke_device("phone-1", fixture.session.user_id())
        .await
        .unwrap();
    let (closed, delay) = closed_within(watch, started, Duration::from_secs(2)).await;
    assert_eq!(closed, Closed::DeviceRevoked);
    println!("silent revocation -> watch fired in {delay:?} (re-check every 200 ms)");

    let fixture = Fixture::start_with(GateConfig::default(), |config| config.access_ttl_secs = 1).await;
    let principal = fixture.admit_with_proof().await.unwrap();
    let watch = fixture.gate.watch(&principal);
    fixture.server.clock.advance_ms(10_000);
    let (closed, _) = closed_within(watch, Instant::now(), Duration::from_secs(5)).await;
    assert_eq!(closed, Closed::TokenExpired);
    assert!(closed.may_reconnect());
}

/// PROTOCOL 8: a session past its idle timeout ends at the maintenance sweep, and its
/// connection closes then, without waiting for a refresh or a re-check.
#[tokio::test]
async fn the_sweep_ends_an_idle_session_and_closes_its_connection() {
    let fixture = Fixture::start_with(
        GateConfig {
            recheck_interval: Duration::from_secs(60),
            ..GateConfig::default()
        },
        |config| config.sessions.idle_timeout_ms = Some(60_000),
    )
    .await;
    let principal = fixture.admit_with_proof().await.unwrap();
    let mut watch = fixture.gate.watch(&principal);
    // Within the timeout the sweep ends nothing.
    fixture.server.clock.advance_ms(59_000);
    assert_eq!(fixture.server.service.expire_sessions().await.unwrap(), 0);
    assert!(
        tokio::time::timeout(Duration::from_millis(100), &mut watch)
            .await
            .is_err()
    );
    fixture.server.clock.advance_ms(2_000);
    let started = Instant::now();
    assert_eq!(fixture.server.service.expire_sessions().await.unwrap(), 1);
    let (closed, delay) = closed_within(watch, started, Duration::from_secs(2)).await;
    assert_eq!(closed, Closed::SessionEnded);
    println!("idle session swept -> watch fired in {delay:?}");
    let refused = fixture.server.refresh(&fixture.session.refresh).await;
    refused.expect_error(401, "SESSION_EXPIRED");
    assert_eq!(refused.reason(), Some("expired"));
}
