//! Group commit: each write of a group stands or falls alone, a failed commit fails them
//! all, and a call run alone keeps its place in the queue.

use super::super::{Fail, SqliteStore};
use crate::store::StoreError;
use std::time::Duration;

fn store() -> SqliteStore {
    SqliteStore::open_in_memory().expect("open")
}

async fn setup(store: &SqliteStore) {
    store
        .write("setup", |conn| {
            conn.execute_batch("CREATE TABLE t (n INTEGER PRIMARY KEY)")?;
            Ok(())
        })
        .await
        .expect("create");
}

/// Holds the writer for a moment, so what is queued meanwhile forms one group.
fn hold_writer(store: &SqliteStore) -> tokio::task::JoinHandle<()> {
    let store = store.clone();
    tokio::spawn(async move {
        store
            .write("hold", |_| {
                std::thread::sleep(Duration::from_millis(100));
                Ok(())
            })
            .await
            .expect("hold");
    })
}

async fn rows(store: &SqliteStore) -> Vec<i64> {
    store
        .write("rows", |conn| {
            let mut statement = conn.prepare("SELECT n FROM t ORDER BY n")?;
            let rows = statement.query_map([], |row| row.get(0))?;
            Ok(rows.collect::<Result<Vec<i64>, _>>()?)
        })
        .await
        .expect("rows")
}

fn insert(store: &SqliteStore, n: i64, fail: bool) -> tokio::task::JoinHandle<Result<i64, StoreError>> {
    let store = store.clone();
    tokio::spawn(async move {
        store
            .write_grouped("insert", move |conn| {
                conn.execute("INSERT INTO t (n) VALUES (?1)", [n])?;
                if fail {
                    return Err(Fail::Store(StoreError::Corrupt(format!("refused {n}"))));
                }
                Ok(n)
            })
            .await
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_write_is_undone_alone_and_the_rest_of_its_group_commits() {
    let store = store();
    setup(&store).await;
    let hold = hold_writer(&store);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let writes: Vec<_> = (1..=20).map(|n| insert(&store, n, n % 3 == 0)).collect();
    hold.await.expect("hold");
    for (n, write) in (1..=20).zip(writes) {
        let answer = write.await.expect("join");
        if n % 3 == 0 {
            assert!(matches!(answer, Err(StoreError::Corrupt(_))), "{n}: {answer:?}");
        } else {
            assert_eq!(answer.expect("committed"), n);
        }
    }
    let expected: Vec<i64> = (1..=20).filter(|n| n % 3 != 0).collect();
    assert_eq!(rows(&store).await, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_that_cannot_commit_fails_every_write_and_keeps_none() {
    let store = store();
    setup(&store).await;
    let hold = hold_writer(&store);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let before: Vec<_> = (1..=5).map(|n| insert(&store, n, false)).collect();
    tokio::time::sleep(Duration::from_millis(10)).await;
    // Ends the group's transaction under it: the group can no longer commit as a whole.
    let breaker = {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .write_grouped("break", |conn| {
                    conn.execute_batch("ROLLBACK")?;
                    Ok(())
                })
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(10)).await;
    let after: Vec<_> = (6..=8).map(|n| insert(&store, n, false)).collect();
    hold.await.expect("hold");
    for write in before {
        assert!(matches!(
            write.await.expect("join"),
            Err(StoreError::Backend { .. })
        ));
    }
    assert!(matches!(
        breaker.await.expect("join"),
        Err(StoreError::Backend { .. })
    ));
    // Queued after the break: a group of their own, committed.
    for (n, write) in (6..=8).zip(after) {
        assert_eq!(write.await.expect("join").expect("later group"), n);
    }
    assert_eq!(rows(&store).await, vec![6, 7, 8]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_run_alone_ends_the_group_and_keeps_its_place() {
    let store = store();
    setup(&store).await;
    let hold = hold_writer(&store);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let first = insert(&store, 1, false);
    tokio::time::sleep(Duration::from_millis(10)).await;
    // Sees the first group committed and the later one not yet run.
    let alone = {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .write("alone", |conn| {
                    let in_transaction = !conn.is_autocommit();
                    let count: i64 = conn.query_row("SELECT count(*) FROM t", [], |row| row.get(0))?;
                    Ok((in_transaction, count))
                })
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(10)).await;
    let second = insert(&store, 2, false);
    hold.await.expect("hold");
    assert_eq!(first.await.expect("join").expect("first"), 1);
    assert_eq!(alone.await.expect("join").expect("alone"), (false, 1));
    assert_eq!(second.await.expect("join").expect("second"), 2);
    assert_eq!(rows(&store).await, vec![1, 2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_write_is_undone_and_its_group_commits() {
    let store = store();
    setup(&store).await;
    let hold = hold_writer(&store);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let first = insert(&store, 1, false);
    let panicking = {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .write_grouped("panics", |conn| -> Result<(), Fail> {
                    conn.execute("INSERT INTO t (n) VALUES (99)", [])?;
                    panic!("a bug in one change");
                })
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(10)).await;
    let last = insert(&store, 2, false);
    hold.await.expect("hold");
    assert!(panicking.await.expect("join").is_err());
    assert_eq!(first.await.expect("join").expect("first"), 1);
    assert_eq!(last.await.expect("join").expect("last"), 2);
    assert_eq!(rows(&store).await, vec![1, 2]);
}
