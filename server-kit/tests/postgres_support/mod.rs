//! A PostgreSQL schema of its own for each test (shared by `store_conformance.rs`,
//! `postgres.rs` and `binary.rs`, included with `#[path]`).
//!
//! The server is `HOLDFAST_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`). It must be reachable: a test that needs it
//! fails with a message naming the URL, it is never skipped.
//!
//! Each [`TestSchema`] is named `hft_<unix seconds>_<uuid>`; the store creates it, and the
//! guard drops it (`DROP SCHEMA ... CASCADE`) when the test ends, panicking or not. A run
//! that is killed outright leaves its schemas behind: the first schema made in each test
//! process drops those more than an hour old, so they never pile up and a run in progress
//! elsewhere is never disturbed.

#![allow(dead_code)]

use std::sync::Once;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The default test server: local, trust authentication.
pub const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// Schemas older than this are leftovers of killed runs.
const STALE_AFTER: Duration = Duration::from_secs(3600);

/// The test server's URL.
pub fn url() -> String {
    std::env::var("HOLDFAST_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned())
}

/// `url` with `application_name` set, so a test can single out its own connections.
pub fn url_with_application(url: &str, application_name: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}application_name={application_name}")
}

/// Runs `work` on a fresh current-thread runtime on its own thread: usable from `Drop` and
/// from inside another runtime.
pub fn block_on_thread<T: Send + 'static>(
    work: impl FnOnce() -> std::pin::Pin<Box<dyn Future<Output = T> + Send>> + Send + 'static,
) -> T {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(work())
    })
    .join()
    .expect("PostgreSQL helper thread")
}

/// A direct connection (no pool), panicking loudly when the server is unreachable.
pub async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = match tokio_postgres::connect(url, tokio_postgres::NoTls).await {
        Ok(connected) => connected,
        Err(error) => panic!(
            "PostgreSQL is unreachable at {url} ({error}). These tests need a server: start one, \
             or point HOLDFAST_TEST_POSTGRES_URL at one (they are never skipped)."
        ),
    };
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// Drops the `hft_` schemas of runs that ended more than an hour ago.
fn sweep_stale(url: String) {
    block_on_thread(move || {
        Box::pin(async move {
            let client = connect(&url).await;
            let rows = client
                .query(
                    "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'hft\\_%'",
                    &[],
                )
                .await
                .expect("list test schemas");
            let cutoff = now_secs().saturating_sub(STALE_AFTER.as_secs());
            for row in rows {
                let name: String = row.get(0);
                let created = name.split('_').nth(1).and_then(|secs| secs.parse::<u64>().ok());
                if created.is_some_and(|created| created < cutoff) {
                    // Another process may sweep the same one: failures are fine.
                    let _ = client
                        .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE"))
                        .await;
                }
            }
        })
    });
}

/// A schema for one test, dropped with everything in it when the guard is dropped.
pub struct TestSchema {
    /// The schema name (not created yet: connecting a store creates it).
    pub name: String,
    /// The server URL.
    pub url: String,
}

impl TestSchema {
    pub fn new() -> TestSchema {
        static SWEEP: Once = Once::new();
        let url = url();
        SWEEP.call_once(|| sweep_stale(url.clone()));
        TestSchema {
            name: format!("hft_{}_{}", now_secs(), uuid::Uuid::new_v4().simple()),
            url,
        }
    }

    /// The URL with `application_name` = `application_name`.
    pub fn url_as(&self, application_name: &str) -> String {
        url_with_application(&self.url, application_name)
    }
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        let (url, name) = (self.url.clone(), self.name.clone());
        block_on_thread(move || {
            Box::pin(async move {
                // Not `connect`: a cleanup must not panic during a panic.
                if let Ok((client, connection)) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await {
                    tokio::spawn(async move {
                        let _ = connection.await;
                    });
                    let _ = client
                        .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE"))
                        .await;
                }
            })
        });
    }
}
