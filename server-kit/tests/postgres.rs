//! PostgreSQL-only behaviour the generic store suite (`store_conformance.rs`) cannot
//! express: several instances (pools) on one database, migrations racing at start, a newer
//! schema, and connections killed under the pool.
//!
//! Needs a reachable server (`HOLDFAST_TEST_POSTGRES_URL`, see `postgres_support`): these
//! tests fail, never skip, without one.

#[path = "postgres_support/mod.rs"]
mod postgres_support;

use holdfast_server_kit::Stores;
use holdfast_server_kit::store::postgres::{PostgresStore, SCHEMA_VERSION};
use holdfast_server_kit::store::{
    ChildPair, NewUser, RefreshRecord, RotateOutcome, StoreError, StoredPassword, TokenStore, UserStore,
};
use postgres_support::TestSchema;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn refresh(jti: &str) -> RefreshRecord {
    RefreshRecord {
        jti: jti.into(),
        family: "fam".into(),
        user_id: "u1".into(),
        device_id: "d1".into(),
        issued_at: 1_000,
        expires_at: 9_000,
        jkt: None,
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

fn new_user(n: usize) -> NewUser {
    NewUser {
        id: format!("u{n}"),
        email: format!("user{n}@example.com"),
        name: None,
        created_at_ms: 1_700_000_000_000,
        password: StoredPassword {
            hash: format!("hash-{n}"),
            salt: String::new(),
        },
        metadata: None,
    }
}

async fn open(schema: &TestSchema, application_name: &str) -> PostgresStore {
    PostgresStore::connect(&schema.url_as(application_name), Some(&schema.name))
        .await
        .unwrap_or_else(|e| {
            panic!(
                "cannot connect to PostgreSQL at {} (never skipped): {e}",
                schema.url
            )
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_starts_migrate_the_fresh_schema_once() {
    let schema = TestSchema::new();
    let url = schema.url_as("holdfast-migrate-race");
    let starts: Vec<_> = (0..6)
        .map(|_| {
            let (url, name) = (url.clone(), schema.name.clone());
            tokio::spawn(async move { PostgresStore::connect(&url, Some(&name)).await })
        })
        .collect();
    let mut stores = Vec::new();
    for start in starts {
        stores.push(start.await.expect("task").expect("every instance starts"));
    }
    for store in &stores {
        assert_eq!(store.schema_version().await.expect("version"), SCHEMA_VERSION);
    }

    let client = postgres_support::connect(&schema.url).await;
    let versions: Vec<i64> = client
        .query(
            &format!(
                "SELECT version FROM \"{}\".holdfast_schema_migrations ORDER BY version",
                schema.name
            ),
            &[],
        )
        .await
        .expect("read versions")
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(
        versions,
        (1..=SCHEMA_VERSION).collect::<Vec<_>>(),
        "each migration recorded once"
    );
    // The tables are in the test's schema, not in public.
    let tables: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE schemaname = $1 AND tablename = 'refresh_tokens'",
            &[&schema.name],
        )
        .await
        .expect("pg_tables")
        .get(0);
    assert_eq!(tables, 1);

    // Data written through one instance is seen by the others, and a restart keeps it.
    stores[0].create_user(new_user(1)).await.expect("create");
    drop(stores);
    let again = open(&schema, "holdfast-migrate-race").await;
    assert!(again.find_user("u1").await.expect("find").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_newer_schema_is_refused_untouched() {
    let schema = TestSchema::new();
    let store = open(&schema, "holdfast-newer").await;
    store.create_user(new_user(1)).await.expect("create");
    drop(store);
    let client = postgres_support::connect(&schema.url).await;
    client
        .execute(
            &format!(
                "INSERT INTO \"{}\".holdfast_schema_migrations (version) VALUES ($1)",
                schema.name
            ),
            &[&(SCHEMA_VERSION + 1)],
        )
        .await
        .expect("pretend a newer build migrated");

    let refused = PostgresStore::connect(&schema.url_as("holdfast-newer"), Some(&schema.name)).await;
    assert!(
        matches!(&refused, Err(StoreError::Backend { message, .. }) if message.contains("newer")),
        "{refused:?}"
    );
    let kept: i64 = client
        .query_one(&format!("SELECT count(*) FROM \"{}\".users", schema.name), &[])
        .await
        .expect("users")
        .get(0);
    assert_eq!(kept, 1, "the data is left as it was");
}

/// Two stores with their own pools stand for two server instances: only PostgreSQL's row
/// locks keep their rotations of the same parent apart.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_rotating_the_same_parent_rotate_once() {
    let schema = TestSchema::new();
    let first = Arc::new(open(&schema, "holdfast-instance-a").await);
    let second = Arc::new(open(&schema, "holdfast-instance-b").await);
    for round in 0..25 {
        let parent = format!("r{round}");
        first.insert_refresh(refresh(&parent)).await.expect("insert");
        let barrier = Arc::new(tokio::sync::Barrier::new(2));
        let attempts: Vec<_> = [(first.clone(), "a"), (second.clone(), "b")]
            .into_iter()
            .map(|(store, instance)| {
                let (parent, barrier) = (parent.clone(), barrier.clone());
                tokio::spawn(async move {
                    let child = format!("{parent}-child-{instance}");
                    barrier.wait().await;
                    let outcome = store
                        .rotate_refresh(&parent, refresh(&child), pair(&child), 5_000)
                        .await
                        .expect("rotate");
                    (child, outcome)
                })
            })
            .collect();
        let mut outcomes = Vec::new();
        for attempt in attempts {
            outcomes.push(attempt.await.expect("task"));
        }
        let winners: Vec<&String> = outcomes
            .iter()
            .filter(|(_, outcome)| *outcome == RotateOutcome::Rotated)
            .map(|(child, _)| child)
            .collect();
        assert_eq!(winners.len(), 1, "round {round}: {outcomes:?}");
        let winner = winners[0];
        for (child, outcome) in &outcomes {
            if child != winner {
                assert_eq!(
                    *outcome,
                    RotateOutcome::AlreadyRotated {
                        rotated_at_ms: 5_000,
                        pair: pair(winner),
                        child_rotated: false
                    },
                    "round {round}: the loser sees the winner's children"
                );
            }
        }
    }
}

/// Terminates every connection named `application_name` and waits until those are gone
/// (the pool may open new ones meanwhile): how many were killed.
async fn kill_connections(client: &tokio_postgres::Client, application_name: &str) -> usize {
    let pids: Vec<i32> = client
        .query(
            "SELECT pid FROM pg_stat_activity
             WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name = $1",
            &[&application_name],
        )
        .await
        .expect("pg_stat_activity")
        .iter()
        .map(|row| row.get(0))
        .collect();
    client
        .execute(
            "SELECT pg_terminate_backend(pid) FROM unnest($1::int4[]) AS pid",
            &[&pids],
        )
        .await
        .expect("pg_terminate_backend");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let alive: i64 = client
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1::int4[])",
                &[&pids],
            )
            .await
            .expect("pg_stat_activity")
            .get(0);
        if alive == 0 {
            return pids.len();
        }
        assert!(
            Instant::now() < deadline,
            "the killed connections did not go away"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_pool_recovers_from_killed_connections_without_losing_commits() {
    let schema = TestSchema::new();
    let application_name = format!("hft-kill-{}", uuid::Uuid::new_v4().simple());
    let stores = Stores::postgres(&schema.url_as(&application_name), Some(&schema.name))
        .await
        .expect("connect");
    let admin = postgres_support::connect(&schema.url).await;

    // Warm several pooled connections, then kill them all while idle.
    let warm: Vec<_> = (0..8)
        .map(|n| {
            let users = stores.users.clone();
            tokio::spawn(async move { users.create_user(new_user(n)).await })
        })
        .collect();
    for task in warm {
        task.await.expect("task").expect("create");
    }
    assert!(
        kill_connections(&admin, &application_name).await > 0,
        "no connection to kill"
    );

    // The pool verifies a connection before handing it out: the dead ones are replaced and
    // the very next calls succeed.
    for n in 0..8 {
        assert!(
            stores
                .users
                .find_user(&format!("u{n}"))
                .await
                .expect("find after the kill")
                .is_some()
        );
    }
    stores
        .users
        .create_user(new_user(100))
        .await
        .expect("create after the kill");
    stores
        .tokens
        .insert_refresh(refresh("r0"))
        .await
        .expect("insert after the kill");

    // Kill again while calls are in flight: those caught by the kill fail with a backend
    // error (a 500 on a route), never a panic; every create that reported success is there.
    let calls: Vec<_> = (200..260)
        .map(|n| {
            let users = stores.users.clone();
            tokio::spawn(async move { (n, users.create_user(new_user(n)).await) })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(5)).await;
    kill_connections(&admin, &application_name).await;
    let mut committed = Vec::new();
    for call in calls {
        let (n, result) = call.await.expect("task");
        match result {
            Ok(_) => committed.push(n),
            Err(StoreError::Backend { .. }) => {}
            Err(other) => panic!("unexpected error {other:?}"),
        }
    }
    for n in &committed {
        assert!(
            stores
                .users
                .find_user(&format!("u{n}"))
                .await
                .expect("find")
                .is_some(),
            "committed user u{n} is lost"
        );
    }
    assert_eq!(
        rotate(&stores, "r0", "r1").await,
        RotateOutcome::Rotated,
        "rotation works after the pool recovered"
    );
}

async fn rotate(stores: &Stores, parent: &str, child: &str) -> RotateOutcome {
    stores
        .tokens
        .rotate_refresh(parent, refresh(child), pair(child), 5_000)
        .await
        .expect("rotate")
}

#[tokio::test]
async fn an_unreachable_server_is_a_backend_error() {
    let started = Instant::now();
    let result = PostgresStore::connect("postgres://postgres@127.0.0.1:1/test", None).await;
    assert!(matches!(result, Err(StoreError::Backend { .. })), "{result:?}");
    assert!(started.elapsed() < Duration::from_secs(15));
}

#[tokio::test]
async fn invalid_urls_and_schema_names_are_refused() {
    let bad_url = PostgresStore::connect("postgres://[::1", None).await;
    assert!(matches!(bad_url, Err(StoreError::Backend { .. })), "{bad_url:?}");
    for name in ["", "Upper", "1st", "semi;colon", "has space", "quo\"te"] {
        let refused = PostgresStore::connect(&postgres_support::url(), Some(name)).await;
        assert!(
            matches!(&refused, Err(StoreError::Backend { message, .. }) if message.contains("schema name")),
            "{name:?}: {refused:?}"
        );
    }
}
