//! Second factors used concurrently: of the requests presenting one TOTP code (one step)
//! or one recovery code at once, exactly one succeeds, within one store and across two
//! stores on one database (two server instances, two processes on one SQLite file).

use super::mfa::{enrolled, hashes};
use super::*;
use holdfast_server_kit::store::postgres::PostgresStore;

const ROUNDS: i64 = 20;
const TASKS: usize = 8;

/// Per round, `TASKS` tasks (alternating between `first` and `second`) present the same
/// step, then the same recovery code, of `u1` (enrolled with `ROUNDS` codes through `first`).
/// Returns how many succeeded in each round: `(steps, codes)`.
async fn race(first: &Stores, second: &Stores) -> Vec<(usize, usize)> {
    enrolled(first, "u1", ROUNDS as usize).await;
    let mut outcomes = Vec::new();
    for round in 0..ROUNDS {
        let step = 101 + round;
        let code = hashes("u1", ROUNDS as usize)[round as usize].clone();
        let attempts: Vec<_> = (0..TASKS)
            .map(|n| {
                let stores = if n % 2 == 0 { first.clone() } else { second.clone() };
                let code = code.clone();
                tokio::spawn(async move {
                    let accepted = stores.mfa.accept_totp_step("u1", step).await;
                    let used = stores.mfa.use_recovery_code("u1", &code).await;
                    (accepted.expect("accept"), used.expect("use"))
                })
            })
            .collect();
        let (mut accepted, mut used) = (0, 0);
        for attempt in attempts {
            let (step_ok, code_ok) = attempt.await.expect("task");
            accepted += usize::from(step_ok);
            used += usize::from(code_ok);
        }
        outcomes.push((accepted, used));
    }
    outcomes
}

fn once_per_round() -> Vec<(usize, usize)> {
    vec![(1, 1); ROUNDS as usize]
}

pub async fn concurrent_totp_and_recovery_uses_succeed_once(stores: &Stores) {
    assert_eq!(race(stores, stores).await, once_per_round());
    assert_eq!(super::mfa::codes_left(stores, "u1").await, 0);
    let last = stores.mfa.find_totp("u1").await.expect("find");
    assert_eq!(last.and_then(|f| f.last_step), Some(100 + ROUNDS));
}

/// Two stores on one file stand for two server processes: only SQLite's own locking keeps
/// them apart.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_processes_accept_a_step_and_use_a_code_once() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("shared.db");
    let first = Stores::sqlite(&path).expect("open");
    let second = Stores::sqlite(&path).expect("open again");
    assert_eq!(race(&first, &second).await, once_per_round());
}

/// Two stores, each with its own pool, on one PostgreSQL schema: two server instances.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_instances_accept_a_step_and_use_a_code_once() {
    let schema = postgres_support::TestSchema::new();
    let url = schema.url_as("holdfast-mfa-races");
    let connect = || async {
        match PostgresStore::connect(&url, Some(&schema.name)).await {
            Ok(store) => Stores::single(Arc::new(store)),
            Err(error) => panic!(
                "cannot open PostgreSQL stores at {url} (set HOLDFAST_TEST_POSTGRES_URL; never \
                 skipped): {error}"
            ),
        }
    };
    let first = connect().await;
    let second = connect().await;
    assert_eq!(race(&first, &second).await, once_per_round());
    let left = second.mfa.count_recovery_codes("u1").await.expect("count");
    assert_eq!(left, 0);
}
