//! Upgrading a database written before sessions: every refresh-token family becomes a
//! session, revoked ones ended; and one written before second factors: each session taken
//! as proved at its sign-in. The same rows, on SQLite and on PostgreSQL.

use super::sessions::{NO_LIMITS, find_session, live_ids, rotate_in};
use super::*;
use holdfast_server_kit::protocol::EndReason;
use holdfast_server_kit::store::postgres::PostgresStore;
use holdfast_server_kit::store::sqlite::migrate_file_to;
use holdfast_server_kit::store::{SessionEnding, SessionRecord};
use holdfast_server_kit::tokens::Assurance;

/// The schema versions before sessions.
const SQLITE_BEFORE: i64 = 3;
const POSTGRES_BEFORE: i64 = 4;

/// Three families, as an older build left them: `live` (rotated once), `gone` (revoked)
/// and `far` (times past what milliseconds can hold, either way). Valid on both backends.
const OLD_ROWS: &str = "
INSERT INTO refresh_tokens (jti, family, user_id, device_id, issued_at, expires_at, jkt, rotated_at_ms,
        child_access_jti, child_refresh_jti, child_issued_at, child_access_expires_at, child_refresh_expires_at)
    VALUES ('l0', 'live', 'u1', 'd1', 1000, 90000, 'thumb-1', 2000000, 'a1', 'l1', 2000, 2900, 90000);
INSERT INTO refresh_tokens (jti, family, user_id, device_id, issued_at, expires_at)
    VALUES ('l1', 'live', 'u1', 'd1', 2000, 90000),
           ('g0', 'gone', 'u1', 'd2', 500, 90000),
           ('g1', 'gone', 'u1', 'd2', 1500, 90000),
           ('f0', 'far', 'u2', 'd3', 9223372036854776, 9223372036854776),
           ('f1', 'far', 'u2', 'd3', -9223372036854776, 9223372036854776);
INSERT INTO revoked_families (family, expires_at) VALUES ('gone', 90000);
";

/// What the upgrade made of [`OLD_ROWS`], and that the live family still refreshes.
async fn check_backfill(stores: &Stores) {
    let live = SessionRecord {
        id: "live".into(),
        user_id: "u1".into(),
        device_id: "d1".into(),
        created_at_ms: 1_000_000,
        last_used_at_ms: 2_000_000,
        ip_address: None,
        user_agent: None,
        // Taken as proved at its sign-in, by no method on record.
        assurance: Assurance {
            aal: 1,
            amr: Vec::new(),
            auth_time: 1_000,
            mfa_pending: false,
        },
        ended: None,
    };
    assert_eq!(find_session(stores, "live").await, Some(live.clone()));
    let listed = stores.sessions.list_sessions("u1", NO_LIMITS, 3_000_000).await;
    assert_eq!(listed.expect("list"), [live]);

    let gone = find_session(stores, "gone").await.expect("backfilled");
    assert_eq!((gone.device_id.as_str(), gone.created_at_ms), ("d2", 500_000));
    let signed_out = SessionEnding {
        at_ms: 1_500_000,
        reason: EndReason::SignedOut,
    };
    assert_eq!(gone.ended, Some(signed_out));
    let far = find_session(stores, "far").await.expect("backfilled");
    assert_eq!((far.created_at_ms, far.last_used_at_ms), (i64::MIN, i64::MAX));
    assert_eq!(far.assurance.auth_time, i64::MIN / 1_000);
    assert_eq!(live_ids(stores, "u2", NO_LIMITS, 0).await, ["far"]);

    assert_eq!(
        rotate_in(stores, "live", "l1", "l2", 3_000_000).await,
        RotateOutcome::Rotated
    );
    assert_eq!(
        find_session(stores, "live").await.map(|s| s.last_used_at_ms),
        Some(3_000_000)
    );
    assert_eq!(
        rotate_in(stores, "gone", "g1", "g2", 3_000_000).await,
        RotateOutcome::FamilyRevoked
    );
    assert!(matches!(
        rotate_in(stores, "live", "l0", "l1-bis", 3_000_000).await,
        RotateOutcome::AlreadyRotated { .. }
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_families_become_sessions() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("old.db");
    migrate_file_to(&path, SQLITE_BEFORE).expect("the old schema");
    {
        let conn = rusqlite::Connection::open(&path).expect("open raw");
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .expect("user_version");
        assert_eq!(version, SQLITE_BEFORE);
        conn.execute_batch(OLD_ROWS).expect("old rows");
    }
    let stores = Stores::sqlite(&path).expect("upgrade");
    check_backfill(&stores).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_families_become_sessions() {
    let schema = postgres_support::TestSchema::new();
    let url = schema.url_as("holdfast-migration");
    let opened = PostgresStore::connect_at_version(&url, Some(&schema.name), POSTGRES_BEFORE).await;
    let old = opened.unwrap_or_else(|error| {
        panic!("cannot open PostgreSQL at {url} (set HOLDFAST_TEST_POSTGRES_URL; never skipped): {error}")
    });
    assert_eq!(old.schema_version().await.expect("version"), POSTGRES_BEFORE);
    drop(old);
    let client = postgres_support::connect(&schema.url).await;
    let rows = format!("SET search_path TO \"{}\"; {OLD_ROWS}", schema.name);
    client.batch_execute(&rows).await.expect("old rows");

    let store = PostgresStore::connect(&url, Some(&schema.name))
        .await
        .expect("upgrade");
    assert_eq!(
        store.schema_version().await.expect("version"),
        holdfast_server_kit::store::postgres::SCHEMA_VERSION
    );
    check_backfill(&Stores::single(Arc::new(store))).await;
}

/// Rows a store cannot read back are corrupt, not panics or guesses.
#[tokio::test(flavor = "multi_thread")]
async fn sqlite_unknown_end_reasons_and_kinds_are_corrupt() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("holdfast.db");
    drop(SqliteStore::open(&path).expect("create"));
    rusqlite::Connection::open(&path)
        .expect("open raw")
        .execute_batch(
            "INSERT INTO sessions (id, user_id, device_id, created_at_ms, last_used_at_ms, ended_at_ms, end_reason)
                 VALUES ('s1', 'u1', 'd1', 1, 1, 2, 'taken_by_aliens'),
                        ('s2', 'u1', 'd1', 1, 1, NULL, 'signed_out');
             INSERT INTO sessions (id, user_id, device_id, created_at_ms, last_used_at_ms, aal)
                 VALUES ('s3', 'u2', 'd1', 1, 1, 300);
             INSERT INTO one_time_tokens VALUES ('h1', 'magic_link', 'u1', 'a@example.com', 1, 9000);",
        )
        .expect("tamper");
    let stores = Stores::sqlite(&path).expect("reopen");
    for id in ["s1", "s2", "s3"] {
        let found = stores.sessions.find_session(id).await;
        assert!(matches!(found, Err(StoreError::Corrupt(_))), "{id}: {found:?}");
    }
    let listed = stores.sessions.list_sessions("u1", NO_LIMITS, 5).await;
    assert!(matches!(listed, Err(StoreError::Corrupt(_))), "{listed:?}");
    let listed = stores.sessions.list_sessions("u2", NO_LIMITS, 5).await;
    assert!(matches!(listed, Err(StoreError::Corrupt(_))), "{listed:?}");
    // A kind this build does not know is never taken for one it knows.
    let taken = stores
        .one_time
        .take_one_time_token(holdfast_server_kit::store::OneTimeKind::PasswordReset, "h1", 0)
        .await;
    assert_eq!(taken.expect("not that kind"), None);
}

/// The schema versions before second factors.
const SQLITE_BEFORE_MFA: i64 = 4;
const POSTGRES_BEFORE_MFA: i64 = 5;

/// A session as a build before second factors left it. Valid on both backends.
const SESSION_BEFORE_MFA: &str = "
INSERT INTO sessions (id, user_id, device_id, created_at_ms, last_used_at_ms, aal)
    VALUES ('s1', 'u1', 'd1', 1700000000999, 1700000005000, 2);
";

/// What the upgrade made of [`SESSION_BEFORE_MFA`], and that second factors can be stored.
async fn check_assurance_backfill(stores: &Stores) {
    let session = find_session(stores, "s1").await.expect("kept");
    let proved_at_sign_in = Assurance {
        aal: 2,
        amr: Vec::new(),
        auth_time: 1_700_000_000,
        mfa_pending: false,
    };
    assert_eq!(session.assurance, proved_at_sign_in);
    assert_eq!(session.last_used_at_ms, 1_700_000_005_000);
    let factor = super::mfa::factor("u1", "sealed");
    let begun = stores.mfa.begin_totp(factor, vec!["h1".into()]).await;
    assert!(begun.expect("begin"));
    assert_eq!(stores.mfa.count_recovery_codes("u1").await.expect("count"), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_sessions_gain_their_assurance() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("old.db");
    migrate_file_to(&path, SQLITE_BEFORE_MFA).expect("the old schema");
    rusqlite::Connection::open(&path)
        .expect("open raw")
        .execute_batch(SESSION_BEFORE_MFA)
        .expect("old rows");
    let stores = Stores::sqlite(&path).expect("upgrade");
    check_assurance_backfill(&stores).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_sessions_gain_their_assurance() {
    let schema = postgres_support::TestSchema::new();
    let url = schema.url_as("holdfast-migration");
    let opened = PostgresStore::connect_at_version(&url, Some(&schema.name), POSTGRES_BEFORE_MFA).await;
    let old = opened.unwrap_or_else(|error| {
        panic!("cannot open PostgreSQL at {url} (set HOLDFAST_TEST_POSTGRES_URL; never skipped): {error}")
    });
    assert_eq!(old.schema_version().await.expect("version"), POSTGRES_BEFORE_MFA);
    drop(old);
    let client = postgres_support::connect(&schema.url).await;
    let rows = format!("SET search_path TO \"{}\"; {SESSION_BEFORE_MFA}", schema.name);
    client.batch_execute(&rows).await.expect("old rows");

    let store = PostgresStore::connect(&url, Some(&schema.name))
        .await
        .expect("upgrade");
    assert_eq!(
        store.schema_version().await.expect("version"),
        holdfast_server_kit::store::postgres::SCHEMA_VERSION
    );
    check_assurance_backfill(&Stores::single(Arc::new(store))).await;
}

/// Factors whose digits or period no code could have are corrupt (raw rows a store cannot
/// have written), on SQLite and on PostgreSQL.
const BAD_FACTORS: &str = "
INSERT INTO mfa_totp (user_id, sealed_secret, algorithm, digits, period_secs, created_at_ms)
    VALUES ('digits', 's', 'SHA1', 300, 30, 1),
           ('period', 's', 'SHA1', 6, -30, 1),
           ('fine', 's', 'SHA1', 6, 30, 1);
";

async fn check_bad_factors(stores: &Stores) {
    for user_id in ["digits", "period"] {
        let found = stores.mfa.find_totp(user_id).await;
        assert!(
            matches!(found, Err(StoreError::Corrupt(_))),
            "{user_id}: {found:?}"
        );
    }
    let fine = stores.mfa.find_totp("fine").await.expect("readable");
    assert_eq!(fine.map(|f| (f.digits, f.period_secs)), Some((6, 30)));
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_impossible_factors_are_corrupt() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("holdfast.db");
    drop(SqliteStore::open(&path).expect("create"));
    rusqlite::Connection::open(&path)
        .expect("open raw")
        .execute_batch(BAD_FACTORS)
        .expect("tamper");
    check_bad_factors(&Stores::sqlite(&path).expect("reopen")).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_impossible_factors_are_corrupt() {
    let schema = postgres_support::TestSchema::new();
    let url = schema.url_as("holdfast-migration");
    let store = PostgresStore::connect(&url, Some(&schema.name)).await;
    let store = store.unwrap_or_else(|error| {
        panic!("cannot open PostgreSQL at {url} (set HOLDFAST_TEST_POSTGRES_URL; never skipped): {error}")
    });
    let client = postgres_support::connect(&schema.url).await;
    let rows = format!("SET search_path TO \"{}\"; {BAD_FACTORS}", schema.name);
    client.batch_execute(&rows).await.expect("tamper");
    check_bad_factors(&Stores::single(Arc::new(store))).await;
}
