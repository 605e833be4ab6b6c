//! The bearer routes' standing cache (the `authn` module's staleness bounds): a hit reads
//! no store, the revocation bus invalidates it before `publish` returns, and what the bus
//! does not carry is seen within `standing_cache_ttl`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use holdfast_server_kit::authn::Authenticated;
use holdfast_server_kit::clock::{Clock, ManualClock};
use holdfast_server_kit::events::Revocation;
use holdfast_server_kit::exchange::ApiError;
use holdfast_server_kit::store::{
    NewDevice, NewUser, StandingQuery, StandingRecord, StandingStore, StoreError, StoredPassword,
};
use holdfast_server_kit::{AuthRequest, AuthService, ServerConfig, Stores};

const SECRET: &str = "a-test-secret-of-at-least-32-characters!";
const START_MS: i64 = 1_700_000_000_000;

/// Counts the standing reads (the only store read of a bearer request) of another store.
struct Counting {
    inner: Arc<dyn StandingStore>,
    reads: AtomicUsize,
}

#[async_trait]
impl StandingStore for Counting {
    async fn standing(&self, query: StandingQuery<'_>) -> Result<StandingRecord, StoreError> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.inner.standing(query).await
    }
}

struct Fixture {
    service: AuthService,
    clock: Arc<ManualClock>,
    counting: Arc<Counting>,
}

impl Fixture {
    async fn new(ttl: Duration) -> Fixture {
        let clock = Arc::new(ManualClock::new(START_MS));
        let mut config = ServerConfig::new(vec![SECRET.into()]);
        config.clock = clock.clone();
        config.standing_cache_ttl = ttl;
        let mut stores = Stores::memory();
        let counting = Arc::new(Counting {
            inner: stores.standing.clone(),
            reads: AtomicUsize::new(0),
        });
        stores.standing = counting.clone();
        let service = AuthService::new(config, stores).expect("service");
        Fixture {
            service,
            clock,
            counting,
        }
    }

    fn reads(&self) -> usize {
        self.counting.reads.load(Ordering::SeqCst)
    }

    /// A user with a device and an access token of session `family`.
    async fn session(&self, user: &str, device: &str, family: &str) -> String {
        let stores = self.service.stores();
        if stores.users.find_user(user).await.expect("find").is_none() {
            stores
                .users
                .create_user(NewUser {
                    id: user.into(),
                    email: format!("{user}@example.com"),
                    name: None,
                    created_at_ms: START_MS,
                    password: StoredPassword {
                        hash: "hash".into(),
                        salt: "salt".into(),
                    },
                    metadata: None,
                })
                .await
                .expect("create user");
        }
        stores
            .devices
            .register_device(NewDevice {
                id: device.into(),
                user_id: user.into(),
                key: None,
                name: device.into(),
                now_ms: START_MS,
            })
            .await
            .expect("register");
        let now_secs = self.clock.now_ms() / 1000;
        self.service
            .tokens()
            .issue_pair(user, device, family, None, now_secs)
            .access
    }

    async fn authenticate(&self, token: &str) -> Result<Authenticated, ApiError> {
        let request = AuthRequest::new(http::Method::GET, "/auth/me").with_bearer(token);
        self.service.authenticate(&request).await
    }

    async fn refused(&self, token: &str) -> String {
        match self.authenticate(token).await {
            Ok(_) => panic!("expected a refusal"),
            Err(error) => error.code.as_str().to_owned(),
        }
    }
}

#[tokio::test]
async fn a_hit_reads_no_store() {
    let fixture = Fixture::new(Duration::from_secs(5)).await;
    let token = fixture.session("u1", "d1", "f1").await;
    let first = fixture.authenticate(&token).await.expect("first");
    assert_eq!(fixture.reads(), 1, "a miss is one store read");
    for _ in 0..50 {
        let again = fixture.authenticate(&token).await.expect("hit");
        assert_eq!(again.user, first.user);
        assert_eq!(again.device, first.device);
        assert_eq!(again.claims, first.claims);
    }
    assert_eq!(fixture.reads(), 1, "hits read no store");
    // Another token of the same user is its own entry.
    let other = fixture.session("u1", "d2", "f2").await;
    fixture.authenticate(&other).await.expect("other");
    assert_eq!(fixture.reads(), 2);
}

#[tokio::test]
async fn a_zero_ttl_reads_the_stores_every_time() {
    let fixture = Fixture::new(Duration::ZERO).await;
    let token = fixture.session("u1", "d1", "f1").await;
    for _ in 0..3 {
        fixture.authenticate(&token).await.expect("ok");
    }
    assert_eq!(fixture.reads(), 3);
}

#[tokio::test]
async fn the_bus_invalidates_before_publish_returns() {
    let fixture = Fixture::new(Duration::from_secs(3600)).await;
    let stores = fixture.service.stores().clone();
    let bus = fixture.service.revocations().clone();
    let token = fixture.session("u1", "d1", "f1").await;
    let other_user = fixture.session("u2", "d9", "f9").await;
    fixture.authenticate(&token).await.expect("warm");
    fixture.authenticate(&other_user).await.expect("warm");

    // Revoked in the store only: the cache still answers (this is the hit path) ...
    stores
        .tokens
        .revoke_family("f1", i64::MAX / 1000)
        .await
        .expect("revoke");
    fixture.authenticate(&token).await.expect("still cached");
    // ... until the event: the very next request reads the stores.
    bus.publish(Revocation::Family {
        user_id: "u1".into(),
        family: "f1".into(),
    });
    assert_eq!(fixture.refused(&token).await, "TOKEN_REVOKED");
    // Another user's standing is untouched by it.
    let reads = fixture.reads();
    fixture.authenticate(&other_user).await.expect("other user");
    assert_eq!(fixture.reads(), reads);

    // A device revoked, relayed from another instance.
    let phone = fixture.session("u1", "phone", "f2").await;
    fixture.authenticate(&phone).await.expect("warm");
    assert!(stores.devices.revoke_device("phone", "u1").await.expect("revoke"));
    fixture.authenticate(&phone).await.expect("still cached");
    bus.deliver_remote(Revocation::Device {
        user_id: "u1".into(),
        device_id: "phone".into(),
    });
    assert_eq!(fixture.refused(&phone).await, "DEVICE_REVOKED");

    // Resync: everything is read again.
    stores
        .users
        .set_disabled("u2", Some(START_MS))
        .await
        .expect("disable");
    fixture.authenticate(&other_user).await.expect("still cached");
    bus.deliver_remote(Revocation::Resync);
    assert_eq!(fixture.refused(&other_user).await, "ACCOUNT_DISABLED");
}

#[tokio::test]
async fn changes_the_bus_does_not_carry_are_seen_within_the_ttl() {
    let ttl = Duration::from_secs(5);
    let fixture = Fixture::new(ttl).await;
    let stores = fixture.service.stores().clone();
    let deleted = fixture.session("u1", "d1", "f1").await;
    let disabled = fixture.session("u2", "d2", "f2").await;
    let revoked = fixture.session("u3", "d3", "f3").await;
    for token in [&deleted, &disabled, &revoked] {
        fixture.authenticate(token).await.expect("warm");
    }
    // Out of band: straight into the database, no event.
    assert!(stores.users.delete_user("u1").await.expect("delete"));
    assert!(
        stores
            .users
            .set_disabled("u2", Some(START_MS))
            .await
            .expect("disable")
    );
    assert!(stores.devices.revoke_device("d3", "u3").await.expect("revoke"));
    fixture.clock.advance_ms(4_999);
    for token in [&deleted, &disabled, &revoked] {
        fixture.authenticate(token).await.expect("within the bound");
    }
    fixture.clock.advance_ms(1);
    assert_eq!(fixture.refused(&deleted).await, "USER_NOT_FOUND");
    assert_eq!(fixture.refused(&disabled).await, "ACCOUNT_DISABLED");
    assert_eq!(fixture.refused(&revoked).await, "DEVICE_REVOKED");
}

#[tokio::test]
async fn refusals_are_not_cached_and_keep_their_specifics() {
    let fixture = Fixture::new(Duration::from_secs(3600)).await;
    let stores = fixture.service.stores().clone();
    let token = fixture.session("u1", "d1", "f1").await;
    stores
        .tokens
        .revoke_family("f1", i64::MAX / 1000)
        .await
        .expect("revoke");
    assert_eq!(fixture.refused(&token).await, "TOKEN_REVOKED");
    assert_eq!(fixture.refused(&token).await, "TOKEN_REVOKED");
    assert_eq!(fixture.reads(), 2, "every refusal reads the stores");
    // A revoked device says so rather than the session's end.
    assert!(stores.devices.revoke_device("d1", "u1").await.expect("revoke"));
    assert_eq!(fixture.refused(&token).await, "DEVICE_REVOKED");
    // The token of a device another user owns is invalid.
    let foreign = fixture.session("u2", "d2", "f2").await;
    let stolen = fixture
        .service
        .tokens()
        .issue_pair("u1", "d2", "f3", None, START_MS / 1000)
        .access;
    assert_eq!(fixture.refused(&stolen).await, "TOKEN_INVALID");
    fixture.authenticate(&foreign).await.expect("its owner's token");
}
