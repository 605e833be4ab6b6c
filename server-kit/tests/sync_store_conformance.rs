//! One conformance suite for every sync item store ([`SyncItemStore`]), run through the
//! collection an embedder builds over it ([`SharedCollection::with_store`]).
//!
//! Each case (in `sync_store_conformance/cases.rs`) is an async function over a
//! [`Backend`]; the `conformance!` list at the end runs every case against SQLite (a file
//! in a temporary directory) and PostgreSQL (a schema of its own on
//! `HOLDFAST_TEST_POSTGRES_URL`, see `postgres_support`: without a server these tests fail,
//! they are never skipped).

#[path = "postgres_support/mod.rs"]
mod postgres_support;

#[path = "sync_store_conformance/cases.rs"]
mod cases;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use holdfast_server_kit::store::SyncItemStore;
use holdfast_server_kit::store::postgres::{PostgresStore, PostgresSyncItems};
use holdfast_server_kit::store::sqlite::SqliteSyncItems;
use holdfast_server_kit::sync::{Item, SharedCollection, Subscription, Update};

/// How long a case waits for a change it expects (PostgreSQL delivers through `LISTEN`).
const RECEIVE_BOUND: Duration = Duration::from_secs(5);
/// How long a case waits to be sure a change does not come.
const SILENCE: Duration = Duration::from_millis(300);

/// Where a backend keeps its items; [`Backend::collection`] opens a fresh store on it each
/// time, so a case can reopen what it wrote.
enum Place {
    Sqlite { path: PathBuf, _dir: tempfile::TempDir },
    Postgres { schema: postgres_support::TestSchema },
}

/// A backend under test, with nothing stored yet.
pub struct Backend {
    place: Place,
}

impl Backend {
    fn sqlite() -> Backend {
        let dir = tempfile::tempdir().expect("temporary directory");
        Backend {
            place: Place::Sqlite {
                path: dir.path().join("sync.db"),
                _dir: dir,
            },
        }
    }

    fn postgres() -> Backend {
        Backend {
            place: Place::Postgres {
                schema: postgres_support::TestSchema::new(),
            },
        }
    }

    /// Opens a store on this backend's place (the file, or the schema, created and migrated
    /// by the first).
    pub async fn store(&self) -> Arc<dyn SyncItemStore> {
        match &self.place {
            Place::Sqlite { path, .. } => {
                Arc::new(SqliteSyncItems::open(path).expect("open the SQLite file"))
            }
            Place::Postgres { schema } => {
                let url = schema.url_as("hft-sync-conformance");
                let store = match PostgresStore::connect(&url, Some(&schema.name)).await {
                    Ok(store) => store,
                    Err(error) => panic!(
                        "cannot open PostgreSQL at {url} (set HOLDFAST_TEST_POSTGRES_URL; these tests are \
                         never skipped): {error}"
                    ),
                };
                let items = PostgresSyncItems::start(&store)
                    .await
                    .unwrap_or_else(|error| panic!("cannot LISTEN on PostgreSQL at {url}: {error}"));
                Arc::new(items)
            }
        }
    }

    /// A collection over a fresh store on this backend, as an embedder builds one.
    pub async fn collection(&self) -> SharedCollection {
        SharedCollection::with_store(self.store().await)
    }
}

/// The next change of a subscription, in time; a lag fails the case.
pub async fn next_item(updates: &mut Subscription) -> Arc<Item> {
    match tokio::time::timeout(RECEIVE_BOUND, updates.recv()).await {
        Ok(Update::Item(item)) => item,
        Ok(Update::Lagged) => panic!("the subscription lagged"),
        Err(_) => panic!("no change within {RECEIVE_BOUND:?}"),
    }
}

/// Fails the case if a change comes within [`SILENCE`].
pub async fn expect_silence(updates: &mut Subscription, why: &str) {
    if let Ok(update) = tokio::time::timeout(SILENCE, updates.recv()).await {
        panic!("{why}: got {update:?}");
    }
}

/// `(key, version)` of an item, for comparisons.
pub fn id(item: &Item) -> (String, i64) {
    (item.key.clone(), item.version)
}

/// Runs every case on every backend: `sqlite::case` and `postgres::case`.
macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let backend = super::Backend::sqlite();
                    super::cases::$case(&backend).await;
                }
            )*
        }

        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let backend = super::Backend::postgres();
                    super::cases::$case(&backend).await;
                }
            )*
        }
    };
}

conformance!(
    versions_count_writes_per_user_and_key,
    limits_on_keys_and_values,
    usage_counts_the_utf8_bytes_of_keys_and_values,
    the_quota_refuses_growth_and_lets_shrinking_writes_pass,
    snapshot_pages_are_bounded_and_in_bytewise_key_order,
    a_subscriber_sees_its_user_s_changes_in_commit_order,
    concurrent_writes_reach_a_subscriber_in_version_order,
    a_subscription_skips_what_its_snapshot_holds,
    a_paged_snapshot_skips_exactly_what_each_page_saw,
    a_slow_subscriber_is_told_it_lagged,
    delete_user_removes_that_user_s_items_and_usage_only,
    reopening_keeps_items_versions_and_usage,
);
