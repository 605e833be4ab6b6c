//! One conformance suite for every store backend.
//!
//! Each case is a generic async function over [`Stores`]; the `backend!` lines further down
//! run every case against every backend. A new backend (PostgreSQL, say) is one more
//! `backend!` line with a constructor that returns a [`Backend`] with empty stores (it may
//! be async: `backend!(postgres => Backend::postgres().await)`).

use holdfast_server_kit::Stores;
use holdfast_server_kit::store::sqlite::{SCHEMA_VERSION, SqliteStore};
use holdfast_server_kit::store::{
    ChildPair, ConsumeOutcome, DeviceKey, DeviceRecord, NewDevice, NewUser, RateDecision, RateLimit,
    RefreshRecord, RotateOutcome, StoreError, StoredPassword,
};
use std::sync::Arc;

#[path = "postgres_support/mod.rs"]
mod postgres_support;

#[path = "store_conformance/mfa.rs"]
mod mfa;
#[path = "store_conformance/mfa_races.rs"]
mod mfa_races;
#[path = "store_conformance/migrations.rs"]
mod migrations;
#[path = "store_conformance/one_time.rs"]
mod one_time;
#[path = "store_conformance/rotate_checked.rs"]
mod rotate_checked;
#[path = "store_conformance/session_races.rs"]
mod session_races;
#[path = "store_conformance/session_tokens.rs"]
mod session_tokens;
#[path = "store_conformance/sessions.rs"]
mod sessions;
#[path = "store_conformance/standing.rs"]
mod standing;
#[path = "store_conformance/users.rs"]
mod users;

use mfa::{
    accepted_totp_steps_only_move_forward, deleting_totp_or_the_user_removes_factor_and_codes,
    recovery_codes_are_single_use_and_replaceable, resealing_replaces_only_the_secret,
    totp_enrolment_replaces_an_unconfirmed_one_until_confirmed,
};
use mfa_races::concurrent_totp_and_recovery_uses_succeed_once;
use one_time::*;
use rotate_checked::rotate_checked_answers_as_the_separate_checks;
use session_races::*;
use session_tokens::*;
use sessions::{
    a_live_session_on_a_device_comes_before_a_later_ended_one,
    a_sign_in_past_the_limit_ends_the_least_recently_used, end_sessions_ends_what_its_scope_selects,
    listing_applies_the_idle_and_lifetime_bounds_at_their_edge, sessions_start_find_and_list_newest_first,
    the_latest_session_on_a_device_is_found_live_or_ended,
};
use standing::standing_reads_revocation_user_and_device_together;
use users::*;

/// A backend under test, and whatever must outlive it (a temporary directory, a PostgreSQL
/// schema dropped after the stores).
struct Backend {
    stores: Stores,
    _keep: Option<tempfile::TempDir>,
    _schema: Option<postgres_support::TestSchema>,
}

impl Backend {
    fn memory() -> Backend {
        Backend {
            stores: Stores::memory(),
            _keep: None,
            _schema: None,
        }
    }

    fn sqlite_in_memory() -> Backend {
        let store = SqliteStore::open_in_memory().expect("open in-memory SQLite");
        Backend {
            stores: Stores::single(Arc::new(store)),
            _keep: None,
            _schema: None,
        }
    }

    fn sqlite_file() -> Backend {
        let dir = tempfile::tempdir().expect("temporary directory");
        let stores = Stores::sqlite(dir.path().join("holdfast.db")).expect("open SQLite file");
        Backend {
            stores,
            _keep: Some(dir),
            _schema: None,
        }
    }

    /// Every store on PostgreSQL, in a schema of its own (see `postgres_support`). Fails
    /// loudly when the server is unreachable.
    async fn postgres() -> Backend {
        let schema = postgres_support::TestSchema::new();
        let url = schema.url_as("holdfast-conformance");
        let stores = match Stores::postgres(&url, Some(&schema.name)).await {
            Ok(stores) => stores,
            Err(error) => panic!(
                "cannot open PostgreSQL stores at {url} (set HOLDFAST_TEST_POSTGRES_URL; these tests \
                 are never skipped): {error}"
            ),
        };
        Backend {
            stores,
            _keep: None,
            _schema: Some(schema),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Fixtures

fn password(n: u8) -> StoredPassword {
    StoredPassword {
        hash: format!("hash-{n}"),
        salt: format!("salt-{n}"),
    }
}

fn new_user(id: &str, email: &str) -> NewUser {
    NewUser {
        id: id.into(),
        email: email.into(),
        name: Some(format!("Name of {id}")),
        created_at_ms: 1_700_000_000_000,
        password: password(1),
        metadata: None,
    }
}

fn key(n: u8) -> DeviceKey {
    DeviceKey {
        jwk: format!(r#"{{"kty":"EC","crv":"P-256","x":"x{n}","y":"y{n}"}}"#),
        thumbprint: format!("thumb-{n}"),
    }
}

fn new_device(id: &str, user_id: &str, key: Option<DeviceKey>, now_ms: i64) -> NewDevice {
    NewDevice {
        id: id.into(),
        user_id: user_id.into(),
        key,
        name: format!("device {id}"),
        now_ms,
    }
}

fn refresh(jti: &str, family: &str, expires_at: i64) -> RefreshRecord {
    RefreshRecord {
        jti: jti.into(),
        family: family.into(),
        user_id: "u1".into(),
        device_id: "d1".into(),
        issued_at: 1_000,
        expires_at,
        jkt: Some("thumb-1".into()),
    }
}

fn pair(refresh_jti: &str) -> ChildPair {
    ChildPair {
        access_jti: format!("access-of-{refresh_jti}"),
        refresh_jti: refresh_jti.into(),
        issued_at: 2_000,
        access_expires_at: 2_900,
        refresh_expires_at: 9_000,
    }
}

/// Rotates `parent` into a child named `child`, expiring at 9 000 s.
async fn rotate(stores: &Stores, parent: &str, child: &str, now_ms: i64) -> RotateOutcome {
    stores
        .tokens
        .rotate_refresh(parent, refresh(child, "fam", 9_000), pair(child), now_ms)
        .await
        .expect("rotate")
}

async fn register(stores: &Stores, device: NewDevice) -> DeviceRecord {
    stores.devices.register_device(device).await.expect("register")
}

async fn find_device(stores: &Stores, id: &str) -> Option<DeviceRecord> {
    stores.devices.find_device(id).await.expect("find device")
}

async fn is_revoked(stores: &Stores, jti: &str, family: Option<&str>) -> bool {
    stores.tokens.is_revoked(jti, family).await.expect("is_revoked")
}

async fn consume(stores: &Stores, challenge: &str, device_id: &str, now_ms: i64) -> ConsumeOutcome {
    stores
        .challenges
        .consume_challenge(challenge, device_id, now_ms)
        .await
        .expect("consume")
}

async fn hit(stores: &Stores, key: &str, limit: RateLimit, now_ms: i64) -> RateDecision {
    stores.rate_limits.hit(key, limit, now_ms).await.expect("hit")
}

async fn blocked_until(stores: &Stores, key: &str, now_ms: i64) -> Option<i64> {
    stores
        .rate_limits
        .blocked_until(key, now_ms)
        .await
        .expect("blocked_until")
}

fn rate_limit(max: u32, window_ms: i64) -> RateLimit {
    RateLimit { max, window_ms }
}

const ALLOWED: RateDecision = RateDecision {
    allowed: true,
    retry_after_ms: 0,
};

fn refused(retry_after_ms: i64) -> RateDecision {
    RateDecision {
        allowed: false,
        retry_after_ms,
    }
}

// ---------------------------------------------------------------------------------------
// Users

async fn users_roundtrip(stores: &Stores) {
    let mut nameless = new_user("u2", "b@example.com");
    nameless.name = None;
    let created = stores
        .users
        .create_user(new_user("u1", "a@example.com"))
        .await
        .expect("create");
    stores.users.create_user(nameless).await.expect("create nameless");

    assert_eq!(created.id, "u1");
    assert!(!created.email_verified);
    let by_id = stores.users.find_user("u1").await.expect("find").expect("exists");
    assert_eq!(by_id, created);
    assert_eq!(by_id.password, password(1));
    let by_email = stores
        .users
        .find_user_by_email("a@example.com")
        .await
        .expect("find")
        .expect("exists");
    assert_eq!(by_email, created);
    let nameless = stores.users.find_user("u2").await.expect("find").expect("exists");
    assert_eq!(nameless.name, None);
    assert_eq!(nameless.email, "b@example.com");

    assert_eq!(stores.users.find_user("nobody").await.expect("find"), None);
    assert_eq!(
        stores
            .users
            .find_user_by_email("nobody@example.com")
            .await
            .expect("find"),
        None
    );
}

async fn email_is_unique(stores: &Stores) {
    stores
        .users
        .create_user(new_user("u1", "a@example.com"))
        .await
        .expect("create");
    let taken = stores.users.create_user(new_user("u2", "a@example.com")).await;
    assert!(matches!(taken, Err(StoreError::EmailTaken)), "{taken:?}");
    assert_eq!(stores.users.find_user("u2").await.expect("find"), None);
    assert_eq!(
        stores
            .users
            .find_user_by_email("a@example.com")
            .await
            .expect("find")
            .map(|u| u.id),
        Some("u1".into())
    );
    stores
        .users
        .create_user(new_user("u2", "b@example.com"))
        .await
        .expect("another email");
}

async fn concurrent_sign_ups_create_one_account(stores: &Stores) {
    let attempts = (0..20).map(|n| {
        let users = stores.users.clone();
        tokio::spawn(async move {
            users
                .create_user(new_user(&format!("u{n}"), "same@example.com"))
                .await
        })
    });
    let mut created = 0;
    for attempt in attempts.collect::<Vec<_>>() {
        match attempt.await.expect("task") {
            Ok(_) => created += 1,
            Err(StoreError::EmailTaken) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(created, 1);
}

async fn set_password_replaces_the_hash(stores: &Stores) {
    stores
        .users
        .create_user(new_user("u1", "a@example.com"))
        .await
        .expect("create");
    stores.users.set_password("u1", password(2)).await.expect("set");
    let user = stores.users.find_user("u1").await.expect("find").expect("exists");
    assert_eq!(user.password, password(2));
    stores
        .users
        .set_password("nobody", password(3))
        .await
        .expect("unknown user is a no-op");
}

async fn metadata_comes_back_as_stored(stores: &Stores) {
    let metadata = serde_json::json!({"plan": "team", "seats": 5, "tags": ["beta"], "nested": {"é": null}});
    let mut with = new_user("meta-1", "meta@example.com");
    with.metadata = Some(metadata.clone());
    let created = stores.users.create_user(with).await.expect("create");
    assert_eq!(created.metadata.as_ref(), Some(&metadata));
    let found = stores
        .users
        .find_user("meta-1")
        .await
        .expect("find")
        .expect("exists");
    assert_eq!(found.metadata, Some(metadata.clone()));
    let by_email = stores
        .users
        .find_user_by_email("meta@example.com")
        .await
        .expect("find")
        .expect("exists");
    assert_eq!(by_email.metadata, Some(metadata));
    stores
        .users
        .create_user(new_user("meta-2", "none@example.com"))
        .await
        .expect("create");
    let none = stores
        .users
        .find_user("meta-2")
        .await
        .expect("find")
        .expect("exists");
    assert_eq!(none.metadata, None);
}

async fn delete_user_deletes_their_devices(stores: &Stores) {
    stores
        .users
        .create_user(new_user("u1", "a@example.com"))
        .await
        .expect("create");
    stores
        .users
        .create_user(new_user("u2", "b@example.com"))
        .await
        .expect("create");
    stores
        .devices
        .register_device(new_device("d1", "u1", Some(key(1)), 10))
        .await
        .expect("register");
    register(stores, new_device("d2", "u2", None, 10)).await;

    assert!(stores.users.delete_user("u1").await.expect("delete"));
    assert!(!stores.users.delete_user("u1").await.expect("delete again"));
    assert_eq!(stores.users.find_user("u1").await.expect("find"), None);
    assert_eq!(find_device(stores, "d1").await, None);
    assert!(
        find_device(stores, "d2").await.is_some(),
        "another user's device stays"
    );
    stores
        .users
        .create_user(new_user("u3", "a@example.com"))
        .await
        .expect("the email is free again");
}

// ---------------------------------------------------------------------------------------
// Devices

async fn register_inserts_new_devices(stores: &Stores) {
    let keyed = stores
        .devices
        .register_device(new_device("d1", "u1", Some(key(1)), 10))
        .await
        .expect("register");
    let expected = DeviceRecord {
        id: "d1".into(),
        user_id: "u1".into(),
        key: Some(key(1)),
        name: "device d1".into(),
        revoked: false,
        created_at_ms: 10,
        last_seen_at_ms: 10,
    };
    assert_eq!(keyed, expected);
    assert_eq!(find_device(stores, "d1").await, Some(expected));

    let keyless = register(stores, new_device("d2", "u1", None, 20)).await;
    assert_eq!(keyless.key, None);
    assert_eq!(keyless.to_wire().public_key, "");
    assert_eq!(find_device(stores, "d2").await, Some(keyless));
    assert_eq!(find_device(stores, "nope").await, None);
}

async fn register_keeps_an_existing_device(stores: &Stores) {
    let first = stores
        .devices
        .register_device(new_device("d1", "u1", Some(key(1)), 10))
        .await
        .expect("register");
    let mut again = new_device("d1", "u1", Some(key(1)), 99);
    again.name = "renamed".into();
    assert_eq!(
        stores.devices.register_device(again).await.expect("same key"),
        first
    );
    assert_eq!(
        stores
            .devices
            .register_device(new_device("d1", "u1", None, 99))
            .await
            .expect("no key"),
        first
    );
    assert_eq!(find_device(stores, "d1").await, Some(first));
}

async fn register_attaches_a_key_to_a_keyless_device(stores: &Stores) {
    register(stores, new_device("d1", "u1", None, 10)).await;
    let mut keyed = new_device("d1", "u1", Some(key(1)), 99);
    keyed.name = "with a key".into();
    let attached = stores.devices.register_device(keyed).await.expect("attach");
    assert_eq!(attached.key, Some(key(1)));
    assert_eq!(attached.name, "with a key");
    assert_eq!(attached.created_at_ms, 10);
    assert_eq!(find_device(stores, "d1").await, Some(attached));
}

async fn register_refuses_conflicts_and_revoked_devices(stores: &Stores) {
    let original = stores
        .devices
        .register_device(new_device("d1", "u1", Some(key(1)), 10))
        .await
        .expect("register");

    let other_user = stores
        .devices
        .register_device(new_device("d1", "u2", Some(key(1)), 20))
        .await;
    assert!(
        matches!(other_user, Err(StoreError::DeviceConflict)),
        "{other_user:?}"
    );
    let other_user_keyless = stores
        .devices
        .register_device(new_device("d1", "u2", None, 20))
        .await;
    assert!(
        matches!(other_user_keyless, Err(StoreError::DeviceConflict)),
        "{other_user_keyless:?}"
    );
    let other_key = stores
        .devices
        .register_device(new_device("d1", "u1", Some(key(2)), 20))
        .await;
    assert!(
        matches!(other_key, Err(StoreError::DeviceConflict)),
        "{other_key:?}"
    );
    assert_eq!(find_device(stores, "d1").await, Some(original));

    assert!(stores.devices.revoke_device("d1", "u1").await.expect("revoke"));
    let revoked = stores
        .devices
        .register_device(new_device("d1", "u1", Some(key(1)), 30))
        .await;
    assert!(matches!(revoked, Err(StoreError::DeviceRevoked)), "{revoked:?}");
    let revoked_other_user = stores
        .devices
        .register_device(new_device("d1", "u2", None, 30))
        .await;
    assert!(
        matches!(revoked_other_user, Err(StoreError::DeviceConflict)),
        "{revoked_other_user:?}"
    );
}

async fn list_devices_oldest_first_with_revoked(stores: &Stores) {
    register(stores, new_device("late", "u1", None, 30)).await;
    register(stores, new_device("early", "u1", None, 10)).await;
    register(stores, new_device("theirs", "u2", None, 5)).await;
    stores
        .devices
        .register_device(new_device("middle", "u1", Some(key(1)), 20))
        .await
        .expect("register");
    register(stores, new_device("tie", "u1", None, 20)).await;
    stores
        .devices
        .revoke_device("middle", "u1")
        .await
        .expect("revoke");

    let listed = stores.devices.list_devices("u1").await.expect("list");
    let ids: Vec<&str> = listed.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(ids, ["early", "middle", "tie", "late"]);
    assert!(listed[1].revoked);
    assert_eq!(stores.devices.list_devices("nobody").await.expect("list"), []);
}

async fn revoke_device_checks_ownership(stores: &Stores) {
    register(stores, new_device("d1", "u1", None, 10)).await;
    assert!(!stores.devices.revoke_device("d1", "u2").await.expect("revoke"));
    assert!(!find_device(stores, "d1").await.expect("exists").revoked);
    assert!(!stores.devices.revoke_device("nope", "u1").await.expect("revoke"));
    assert!(stores.devices.revoke_device("d1", "u1").await.expect("revoke"));
    assert!(find_device(stores, "d1").await.expect("exists").revoked);
}

async fn touch_device_records_last_seen(stores: &Stores) {
    register(stores, new_device("d1", "u1", None, 10)).await;
    stores.devices.touch_device("d1", 50).await.expect("touch");
    let seen = find_device(stores, "d1").await.expect("exists");
    assert_eq!((seen.created_at_ms, seen.last_seen_at_ms), (10, 50));
    // Requests that finish out of order must not move it back.
    stores.devices.touch_device("d1", 40).await.expect("touch");
    assert_eq!(
        find_device(stores, "d1").await.expect("exists").last_seen_at_ms,
        50
    );
    stores
        .devices
        .touch_device("nope", 50)
        .await
        .expect("unknown device is a no-op");
}

// ---------------------------------------------------------------------------------------
// Tokens

async fn rotate_then_already_rotated(stores: &Stores) {
    stores
        .tokens
        .insert_refresh(refresh("r0", "fam", 9_000))
        .await
        .expect("insert");
    assert_eq!(rotate(stores, "r0", "r1", 5_000).await, RotateOutcome::Rotated);

    // A second rotation reports the first one's children and inserts nothing.
    let again = rotate(stores, "r0", "r1-bis", 6_000).await;
    assert_eq!(
        again,
        RotateOutcome::AlreadyRotated {
            rotated_at_ms: 5_000,
            pair: pair("r1"),
            child_rotated: false
        }
    );
    assert_eq!(
        rotate(stores, "r1-bis", "r2", 6_000).await,
        RotateOutcome::Unknown
    );

    assert_eq!(rotate(stores, "r1", "r2", 7_000).await, RotateOutcome::Rotated);
    let grandparent = rotate(stores, "r0", "r1-ter", 8_000).await;
    assert_eq!(
        grandparent,
        RotateOutcome::AlreadyRotated {
            rotated_at_ms: 5_000,
            pair: pair("r1"),
            child_rotated: true
        }
    );
    let parent = rotate(stores, "r1", "r2-bis", 8_000).await;
    assert_eq!(
        parent,
        RotateOutcome::AlreadyRotated {
            rotated_at_ms: 7_000,
            pair: pair("r2"),
            child_rotated: false
        }
    );
}

async fn rotate_unknown_and_revoked_family(stores: &Stores) {
    assert_eq!(
        rotate(stores, "never-issued", "r1", 5_000).await,
        RotateOutcome::Unknown
    );
    assert_eq!(
        rotate(stores, "r1", "r2", 5_000).await,
        RotateOutcome::Unknown,
        "nothing was inserted"
    );

    stores
        .tokens
        .insert_refresh(refresh("r0", "fam", 9_000))
        .await
        .expect("insert");
    stores
        .tokens
        .insert_refresh(refresh("s0", "fam", 9_000))
        .await
        .expect("insert");
    assert_eq!(rotate(stores, "s0", "s1", 5_000).await, RotateOutcome::Rotated);
    stores.tokens.revoke_family("fam", 9_000).await.expect("revoke");

    assert_eq!(
        rotate(stores, "r0", "r1", 6_000).await,
        RotateOutcome::FamilyRevoked
    );
    assert_eq!(
        rotate(stores, "r1", "r2", 6_000).await,
        RotateOutcome::Unknown,
        "the child was not inserted"
    );
    // A revoked family wins over a reused parent.
    assert_eq!(
        rotate(stores, "s0", "s1-bis", 6_000).await,
        RotateOutcome::FamilyRevoked
    );
}

async fn rotate_reports_a_purged_child_as_not_rotated(stores: &Stores) {
    stores
        .tokens
        .insert_refresh(refresh("r0", "fam", 9_000))
        .await
        .expect("insert");
    let short_lived = refresh("r1", "fam", 3_000);
    let outcome = stores
        .tokens
        .rotate_refresh("r0", short_lived, pair("r1"), 2_000)
        .await
        .expect("rotate");
    assert_eq!(outcome, RotateOutcome::Rotated);
    assert_eq!(rotate(stores, "r1", "r2", 2_500).await, RotateOutcome::Rotated);
    stores.tokens.purge_expired_tokens(4_000).await.expect("purge");
    let outcome = rotate(stores, "r0", "r1-bis", 5_000).await;
    assert_eq!(
        outcome,
        RotateOutcome::AlreadyRotated {
            rotated_at_ms: 2_000,
            pair: pair("r1"),
            child_rotated: false
        }
    );
}

async fn concurrent_rotations_rotate_once(stores: &Stores) {
    stores
        .tokens
        .insert_refresh(refresh("r0", "fam", 9_000))
        .await
        .expect("insert");
    let attempts: Vec<_> = (0..50)
        .map(|n| {
            let tokens = stores.tokens.clone();
            let child = format!("child-{n}");
            tokio::spawn(async move {
                tokens
                    .rotate_refresh("r0", refresh(&child, "fam", 9_000), pair(&child), 5_000 + n)
                    .await
            })
        })
        .collect();
    let mut winners = Vec::new();
    let mut pairs = Vec::new();
    for (n, attempt) in attempts.into_iter().enumerate() {
        match attempt.await.expect("task").expect("rotate") {
            RotateOutcome::Rotated => winners.push(n),
            RotateOutcome::AlreadyRotated { pair, .. } => pairs.push(pair),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one rotation");
    let winner = pair(&format!("child-{}", winners[0]));
    assert!(
        pairs.iter().all(|p| *p == winner),
        "every loser sees the winner's children"
    );
}

async fn revocation_by_jti_and_family(stores: &Stores) {
    assert!(!is_revoked(stores, "a1", Some("fam")).await);
    stores.tokens.revoke_token("a1", 1_000).await.expect("revoke");
    assert!(is_revoked(stores, "a1", None).await);
    assert!(is_revoked(stores, "a1", Some("other")).await);
    assert!(!is_revoked(stores, "a2", Some("fam")).await);

    stores.tokens.revoke_family("fam", 1_000).await.expect("revoke");
    assert!(is_revoked(stores, "a2", Some("fam")).await);
    assert!(!is_revoked(stores, "a2", None).await);
    assert!(!is_revoked(stores, "a2", Some("other")).await);
    // Revoking again is fine.
    stores
        .tokens
        .revoke_token("a1", 1_000)
        .await
        .expect("revoke again");
    stores
        .tokens
        .revoke_family("fam", 1_000)
        .await
        .expect("revoke again");
}

async fn purge_forgets_expired_token_state(stores: &Stores) {
    stores
        .tokens
        .insert_refresh(refresh("old", "f1", 100))
        .await
        .expect("insert");
    stores
        .tokens
        .insert_refresh(refresh("edge", "f1", 200))
        .await
        .expect("insert");
    stores
        .tokens
        .insert_refresh(refresh("new", "f1", 300))
        .await
        .expect("insert");
    stores.tokens.revoke_token("old-jti", 100).await.expect("revoke");
    stores.tokens.revoke_token("new-jti", 300).await.expect("revoke");
    stores.tokens.revoke_family("old-fam", 100).await.expect("revoke");
    stores.tokens.revoke_family("new-fam", 300).await.expect("revoke");
    // A repeated revocation with an earlier expiry keeps the later one.
    stores.tokens.revoke_token("new-jti", 50).await.expect("revoke");
    stores.tokens.revoke_family("new-fam", 50).await.expect("revoke");

    // Expiry `before now`: a record expiring exactly now stays.
    assert_eq!(stores.tokens.purge_expired_tokens(200).await.expect("purge"), 3);
    assert_eq!(stores.tokens.purge_expired_tokens(200).await.expect("purge"), 0);

    assert_eq!(rotate(stores, "old", "x1", 1).await, RotateOutcome::Unknown);
    assert_eq!(rotate(stores, "edge", "x2", 1).await, RotateOutcome::Rotated);
    assert_eq!(rotate(stores, "new", "x3", 1).await, RotateOutcome::Rotated);
    assert!(!is_revoked(stores, "old-jti", Some("old-fam")).await);
    assert!(is_revoked(stores, "new-jti", None).await);
    assert!(is_revoked(stores, "x", Some("new-fam")).await);
}

// ---------------------------------------------------------------------------------------
// Challenges

async fn challenges_are_single_use(stores: &Stores) {
    let challenges = &stores.challenges;
    challenges.put_challenge("c1", "d1", 1_000).await.expect("put");
    assert_eq!(consume(stores, "c1", "d1", 500).await, ConsumeOutcome::Consumed);
    assert_eq!(consume(stores, "c1", "d1", 500).await, ConsumeOutcome::Invalid);
    assert_eq!(consume(stores, "never", "d1", 500).await, ConsumeOutcome::Invalid);

    // Valid until its expiry, inclusive.
    challenges.put_challenge("c2", "d1", 1_000).await.expect("put");
    assert_eq!(consume(stores, "c2", "d1", 1_000).await, ConsumeOutcome::Consumed);
}

async fn expired_challenges_are_invalid_and_removed(stores: &Stores) {
    let challenges = &stores.challenges;
    challenges.put_challenge("c1", "d1", 1_000).await.expect("put");
    assert_eq!(consume(stores, "c1", "d1", 1_001).await, ConsumeOutcome::Invalid);
    // Removed: even a clock that steps back cannot use it.
    assert_eq!(consume(stores, "c1", "d1", 500).await, ConsumeOutcome::Invalid);
}

async fn wrong_device_leaves_the_challenge(stores: &Stores) {
    let challenges = &stores.challenges;
    challenges.put_challenge("c1", "d1", 1_000).await.expect("put");
    assert_eq!(
        consume(stores, "c1", "d2", 500).await,
        ConsumeOutcome::WrongDevice
    );
    assert_eq!(consume(stores, "c1", "d1", 600).await, ConsumeOutcome::Consumed);
}

async fn purge_removes_expired_challenges(stores: &Stores) {
    let challenges = &stores.challenges;
    challenges.put_challenge("old", "d1", 100).await.expect("put");
    challenges.put_challenge("edge", "d1", 200).await.expect("put");
    challenges.put_challenge("new", "d1", 300).await.expect("put");
    assert_eq!(challenges.purge_expired_challenges(200).await.expect("purge"), 1);
    assert_eq!(consume(stores, "edge", "d1", 200).await, ConsumeOutcome::Consumed);
    assert_eq!(consume(stores, "new", "d1", 200).await, ConsumeOutcome::Consumed);
}

async fn concurrent_consumes_consume_once(stores: &Stores) {
    stores
        .challenges
        .put_challenge("c1", "d1", 10_000)
        .await
        .expect("put");
    let attempts: Vec<_> = (0..50)
        .map(|_| {
            let challenges = stores.challenges.clone();
            tokio::spawn(async move { challenges.consume_challenge("c1", "d1", 500).await })
        })
        .collect();
    let mut consumed = 0;
    for attempt in attempts {
        match attempt.await.expect("task").expect("consume") {
            ConsumeOutcome::Consumed => consumed += 1,
            ConsumeOutcome::Invalid => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(consumed, 1);
}

// ---------------------------------------------------------------------------------------
// Rate limits

async fn sliding_window_is_exact(stores: &Stores) {
    let limit = rate_limit(3, 1_000);
    for at in [0, 100, 200] {
        assert_eq!(hit(stores, "k", limit, at).await, ALLOWED, "attempt at {at}");
    }
    assert_eq!(hit(stores, "k", limit, 300).await, refused(700));
    assert_eq!(hit(stores, "k", limit, 999).await, refused(1));
    // The window is (now - window, now]: the attempt at 0 left it at 1 000.
    assert_eq!(hit(stores, "k", limit, 1_000).await, ALLOWED);
    assert_eq!(hit(stores, "k", limit, 1_001).await, refused(99));
    // Refused attempts were not counted: at 1 100 only 200 and 1 000 remain.
    assert_eq!(hit(stores, "k", limit, 1_100).await, ALLOWED);
    assert_eq!(hit(stores, "k", limit, 1_150).await, refused(50));
    // Keys are independent.
    assert_eq!(hit(stores, "other", limit, 1_150).await, ALLOWED);
}

async fn a_limit_of_zero_refuses_everything(stores: &Stores) {
    let limit = rate_limit(0, 1_000);
    let decision = hit(stores, "k", limit, 0).await;
    assert!(!decision.allowed);
    assert!(decision.retry_after_ms >= 1);
}

/// A refused attempt stores nothing, not even an empty window for a new key: strangers
/// naming new keys past their limit must not grow the store (issue 12).
async fn a_refused_attempt_on_a_new_key_stores_nothing(stores: &Stores) {
    let limits = &stores.rate_limits;
    for n in 0..20 {
        assert!(
            !hit(stores, &format!("new-{n}"), rate_limit(0, 1_000), 0)
                .await
                .allowed
        );
    }
    let purged = limits.purge_expired_limits(i64::MAX / 2).await.expect("purge");
    assert_eq!(purged, 0, "refused attempts left {purged} windows behind");
}

async fn reset_forgets_attempts(stores: &Stores) {
    let limits = &stores.rate_limits;
    let limit = rate_limit(1, 1_000);
    assert_eq!(hit(stores, "k", limit, 0).await, ALLOWED);
    assert_eq!(hit(stores, "other", limit, 0).await, ALLOWED);
    assert_eq!(hit(stores, "k", limit, 10).await, refused(990));
    limits.reset("k").await.expect("reset");
    limits.reset("never-seen").await.expect("reset");
    assert_eq!(hit(stores, "k", limit, 20).await, ALLOWED);
    assert_eq!(hit(stores, "other", limit, 20).await, refused(980));
}

async fn blocks_keep_the_later_end(stores: &Stores) {
    let limits = &stores.rate_limits;
    assert_eq!(blocked_until(stores, "ip", 0).await, None);
    limits.block("ip", 1_000).await.expect("block");
    assert_eq!(blocked_until(stores, "ip", 0).await, Some(1_000));
    limits.block("ip", 500).await.expect("shorter block");
    assert_eq!(blocked_until(stores, "ip", 0).await, Some(1_000));
    limits.block("ip", 2_000).await.expect("longer block");
    assert_eq!(blocked_until(stores, "ip", 1_999).await, Some(2_000));
    assert_eq!(blocked_until(stores, "ip", 2_000).await, None);
    assert_eq!(blocked_until(stores, "other", 0).await, None);
}

async fn purge_removes_ended_windows_and_blocks(stores: &Stores) {
    let limits = &stores.rate_limits;
    let limit = rate_limit(1, 1_000);
    hit(stores, "old", limit, 0).await;
    hit(stores, "live", limit, 500).await;
    limits.block("ended", 1_000).await.expect("block");
    limits.block("live", 5_000).await.expect("block");

    assert_eq!(limits.purge_expired_limits(1_000).await.expect("purge"), 2);
    assert_eq!(limits.purge_expired_limits(1_000).await.expect("purge"), 0);
    assert_eq!(hit(stores, "live", limit, 1_000).await, refused(500));
    assert_eq!(hit(stores, "old", limit, 1_000).await, ALLOWED);
    assert_eq!(blocked_until(stores, "live", 1_000).await, Some(5_000));
}

async fn concurrent_hits_allow_exactly_max(stores: &Stores) {
    let limit = rate_limit(10, 60_000);
    let attempts: Vec<_> = (0..50)
        .map(|n| {
            let limits = stores.rate_limits.clone();
            tokio::spawn(async move { limits.hit("k", limit, 1_000 + n).await })
        })
        .collect();
    let mut allowed = 0;
    for attempt in attempts {
        if attempt.await.expect("task").expect("hit").allowed {
            allowed += 1;
        }
    }
    assert_eq!(allowed, 10);
}

// ---------------------------------------------------------------------------------------
// Every case on every backend

macro_rules! backend {
    ($name:ident => $open:expr) => {
        mod $name {
            use super::*;

            cases!($open;
                users_roundtrip,
                metadata_comes_back_as_stored,
                email_is_unique,
                concurrent_sign_ups_create_one_account,
                set_password_replaces_the_hash,
                delete_user_deletes_their_devices,
                register_inserts_new_devices,
                register_keeps_an_existing_device,
                register_attaches_a_key_to_a_keyless_device,
                register_refuses_conflicts_and_revoked_devices,
                list_devices_oldest_first_with_revoked,
                revoke_device_checks_ownership,
                touch_device_records_last_seen,
                rotate_then_already_rotated,
                rotate_unknown_and_revoked_family,
                rotate_reports_a_purged_child_as_not_rotated,
                concurrent_rotations_rotate_once,
                revocation_by_jti_and_family,
                purge_forgets_expired_token_state,
                challenges_are_single_use,
                expired_challenges_are_invalid_and_removed,
                wrong_device_leaves_the_challenge,
                purge_removes_expired_challenges,
                concurrent_consumes_consume_once,
                sliding_window_is_exact,
                a_limit_of_zero_refuses_everything,
                a_refused_attempt_on_a_new_key_stores_nothing,
                reset_forgets_attempts,
                blocks_keep_the_later_end,
                purge_removes_ended_windows_and_blocks,
                concurrent_hits_allow_exactly_max,
                email_verification_and_disabling_are_recorded,
                list_users_pages_in_bytewise_email_order,
                delete_user_with_sessions_and_tokens,
                sessions_start_find_and_list_newest_first,
                the_latest_session_on_a_device_is_found_live_or_ended,
                a_live_session_on_a_device_comes_before_a_later_ended_one,
                listing_applies_the_idle_and_lifetime_bounds_at_their_edge,
                a_sign_in_past_the_limit_ends_the_least_recently_used,
                end_sessions_ends_what_its_scope_selects,
                end_expired_sessions_ends_idle_and_over_age_ones,
                rotation_moves_last_use_forward_only,
                renew_session_revokes_the_family_s_unexpired_tokens,
                renew_session_refuses_unknown_ended_foreign_and_revoked_sessions,
                purge_sessions_forgets_sessions_ended_or_idle_before,
                concurrent_sign_ins_keep_to_the_session_limit,
                concurrent_endings_end_each_session_once,
                one_time_puts_count_only_live_tokens_of_the_kind_and_user,
                taking_a_one_time_token_uses_it_up,
                concurrent_takes_of_one_token_take_it_once,
                concurrent_puts_keep_to_the_live_limit,
                discard_and_purge_one_time_tokens,
                totp_enrolment_replaces_an_unconfirmed_one_until_confirmed,
                accepted_totp_steps_only_move_forward,
                recovery_codes_are_single_use_and_replaceable,
                deleting_totp_or_the_user_removes_factor_and_codes,
                resealing_replaces_only_the_secret,
                concurrent_totp_and_recovery_uses_succeed_once,
                standing_reads_revocation_user_and_device_together,
                rotate_checked_answers_as_the_separate_checks,
            );
        }
    };
}

macro_rules! cases {
    ($open:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let backend: Backend = $open;
                super::$case(&backend.stores).await;
            }
        )*
    };
}

backend!(memory => Backend::memory());
backend!(sqlite_in_memory => Backend::sqlite_in_memory());
backend!(sqlite_file => Backend::sqlite_file());
backend!(postgres => Backend::postgres().await);

// ---------------------------------------------------------------------------------------
// SQLite only: the file, its schema version and what it holds

mod sqlite_file_format {
    use super::*;
    use rusqlite::Connection;

    fn user_version(path: &std::path::Path) -> i64 {
        let conn = Connection::open(path).expect("open raw");
        conn.pragma_query_value(None, "user_version", |row| row.get(0))
            .expect("user_version")
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn data_survives_reopening_and_migrations_run_once() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("holdfast.db");
        {
            let stores = Stores::sqlite(&path).expect("create");
            stores
                .users
                .create_user(new_user("u1", "a@example.com"))
                .await
                .expect("create user");
            stores
                .tokens
                .insert_refresh(refresh("r0", "fam", 9_000))
                .await
                .expect("insert");
            assert_eq!(rotate(&stores, "r0", "r1", 5_000).await, RotateOutcome::Rotated);
        }
        assert_eq!(user_version(&path), SCHEMA_VERSION);

        // Re-running the first migration would fail on its CREATE TABLE statements.
        let stores = Stores::sqlite(&path).expect("reopen");
        assert_eq!(user_version(&path), SCHEMA_VERSION);
        assert!(stores.users.find_user("u1").await.expect("find").is_some());
        // The grace window's state survives a restart (PROTOCOL 6.2).
        let again = rotate(&stores, "r0", "r1-bis", 6_000).await;
        assert_eq!(
            again,
            RotateOutcome::AlreadyRotated {
                rotated_at_ms: 5_000,
                pair: pair("r1"),
                child_rotated: false
            }
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_newer_schema_is_refused_untouched() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("future.db");
        {
            let conn = Connection::open(&path).expect("open raw");
            conn.execute_batch("CREATE TABLE future (x TEXT); INSERT INTO future VALUES ('kept');")
                .expect("future schema");
            conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
                .expect("set version");
        }

        let refused = SqliteStore::open(&path);
        assert!(
            matches!(&refused, Err(StoreError::Backend { message, .. }) if message.contains("newer")),
            "{refused:?}"
        );

        let conn = Connection::open(&path).expect("open raw");
        let mode: String = conn
            .pragma_query_value(None, "journal_mode", |row| row.get(0))
            .expect("journal mode");
        assert_eq!(mode, "delete", "not even the journal mode changed");
        assert_eq!(user_version(&path), SCHEMA_VERSION + 1);
        let kept: String = conn
            .query_row("SELECT x FROM future", [], |row| row.get(0))
            .expect("data");
        assert_eq!(kept, "kept");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn the_file_is_in_wal_mode() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("holdfast.db");
        let _store = SqliteStore::open(&path).expect("open");
        let conn = Connection::open(&path).expect("open raw");
        let mode: String = conn
            .pragma_query_value(None, "journal_mode", |row| row.get(0))
            .expect("journal mode");
        assert_eq!(mode, "wal");
    }

    /// Opens a migrated file, lets `tamper` write raw rows into it, and reopens the store.
    fn tampered(tamper: &str) -> (tempfile::TempDir, Stores) {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("holdfast.db");
        drop(SqliteStore::open(&path).expect("create"));
        Connection::open(&path)
            .expect("open raw")
            .execute_batch(tamper)
            .expect("tamper");
        let stores = Stores::sqlite(&path).expect("reopen");
        (dir, stores)
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn metadata_edited_into_non_json_reads_as_none() {
        let (_dir, stores) = tampered(
            "INSERT INTO users (id, email, name, email_verified, created_at, password_hash, salt, metadata)
             VALUES ('u1', 'a@example.com', NULL, 0, 1700000000000, 'h', '', '{not json');",
        );
        let user = stores
            .users
            .find_user("u1")
            .await
            .expect("readable")
            .expect("exists");
        assert_eq!(user.metadata, None);
        assert_eq!(user.email, "a@example.com");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn undecodable_rows_are_corrupt_not_panics() {
        let (_dir, stores) = tampered(
            "INSERT INTO users (id, email, name, email_verified, created_at, password_hash, salt, metadata)
             VALUES ('u1', 'a@example.com', NULL, 0, 'not a time', 'h', '', NULL);
             INSERT INTO devices VALUES ('d1', 'u1', '{\"kty\":\"EC\"}', NULL, 'n', 0, 1, 1);
             INSERT INTO devices VALUES ('d2', 'u1', '', NULL, X'FF', 0, 1, 1);
             INSERT INTO rate_limits VALUES ('k', X'0102030405', 9999999999999);
             INSERT INTO refresh_tokens (jti, family, user_id, device_id, issued_at, expires_at, rotated_at_ms)
                 VALUES ('r0', 'fam', 'u1', 'd1', 1, 9000, 5000);",
        );
        let user = stores.users.find_user("u1").await;
        assert!(matches!(user, Err(StoreError::Corrupt(_))), "{user:?}");
        let keyed_without_thumbprint = stores.devices.find_device("d1").await;
        assert!(
            matches!(keyed_without_thumbprint, Err(StoreError::Corrupt(_))),
            "{keyed_without_thumbprint:?}"
        );
        let blob_name = stores.devices.find_device("d2").await;
        assert!(matches!(blob_name, Err(StoreError::Corrupt(_))), "{blob_name:?}");
        let listed = stores.devices.list_devices("u1").await;
        assert!(matches!(listed, Err(StoreError::Corrupt(_))), "{listed:?}");
        let window = stores.rate_limits.hit("k", rate_limit(5, 1_000), 0).await;
        assert!(matches!(window, Err(StoreError::Corrupt(_))), "{window:?}");
        let rotated_without_children = stores
            .tokens
            .rotate_refresh("r0", refresh("r1", "fam", 9_000), pair("r1"), 6_000)
            .await;
        assert!(
            matches!(rotated_without_children, Err(StoreError::Corrupt(_))),
            "{rotated_without_children:?}"
        );
    }

    /// Two stores on one file stand for two server processes: only SQLite's own locking
    /// (`BEGIN IMMEDIATE` and the busy timeout) keeps them apart.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn two_processes_rotate_and_consume_once() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("shared.db");
        let first = Stores::sqlite(&path).expect("open");
        let second = Stores::sqlite(&path).expect("open again");
        first
            .tokens
            .insert_refresh(refresh("r0", "fam", 9_000))
            .await
            .expect("insert");
        first
            .challenges
            .put_challenge("c1", "d1", 10_000)
            .await
            .expect("put");

        let attempts: Vec<_> = (0..40)
            .map(|n| {
                let stores = if n % 2 == 0 { first.clone() } else { second.clone() };
                tokio::spawn(async move {
                    let child = format!("child-{n}");
                    let rotated = stores
                        .tokens
                        .rotate_refresh("r0", refresh(&child, "fam", 9_000), pair(&child), 5_000)
                        .await;
                    let consumed = stores.challenges.consume_challenge("c1", "d1", 500).await;
                    (rotated.expect("rotate"), consumed.expect("consume"))
                })
            })
            .collect();
        let (mut rotations, mut consumptions) = (0, 0);
        for attempt in attempts {
            let (rotated, consumed) = attempt.await.expect("task");
            rotations += usize::from(rotated == RotateOutcome::Rotated);
            consumptions += usize::from(consumed == ConsumeOutcome::Consumed);
        }
        assert_eq!((rotations, consumptions), (1, 1));
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn reads_proceed_while_writes_run() {
        let backend = Backend::sqlite_file();
        let stores = backend.stores.clone();
        stores
            .users
            .create_user(new_user("u1", "a@example.com"))
            .await
            .expect("create");
        let writers: Vec<_> = (0..200)
            .map(|n| {
                let tokens = stores.tokens.clone();
                tokio::spawn(async move { tokens.revoke_token(&format!("jti-{n}"), 9_000).await })
            })
            .collect();
        let readers: Vec<_> = (0..200)
            .map(|_| {
                let users = stores.users.clone();
                tokio::spawn(async move { users.find_user("u1").await })
            })
            .collect();
        for writer in writers {
            writer.await.expect("task").expect("revoke");
        }
        for reader in readers {
            assert!(reader.await.expect("task").expect("find").is_some());
        }
        assert!(is_revoked(&stores, "jti-199", None).await);
    }
}
