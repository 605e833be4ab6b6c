//! Suites whose every case runs on SQLite and on PostgreSQL: which backend, a server on it,
//! and `on_both!`, which makes the two tests of each case.
#![allow(dead_code)] // Each suite uses part of it.

use holdfast_server_kit::clock::{Clock, ManualClock, SystemClock};
use holdfast_server_kit::{ServerConfig, Stores};

use crate::postgres_support::TestSchema;
use crate::support::TestServer;

/// Which backend a case runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Sqlite,
    Postgres,
}

/// A server on one backend, and what must outlive it.
pub struct Backend {
    pub server: TestServer,
    pub kind: Kind,
    /// The PostgreSQL schema (dropped after the server's pools).
    pub schema: Option<TestSchema>,
}

impl std::ops::Deref for Backend {
    type Target = TestServer;
    fn deref(&self) -> &TestServer {
        &self.server
    }
}

impl Backend {
    /// A fresh server on `kind`, configured by `configure` after the test defaults.
    pub async fn start(kind: Kind, configure: impl FnOnce(&mut ServerConfig)) -> Backend {
        match kind {
            Kind::Sqlite => Backend {
                server: TestServer::start(configure).await,
                kind,
                schema: None,
            },
            Kind::Postgres => {
                let schema = TestSchema::new();
                let stores = Stores::postgres(&schema.url, Some(&schema.name))
                    .await
                    .unwrap_or_else(|e| panic!("PostgreSQL at {} (never skipped): {e}", schema.url));
                let clock = ManualClock::new(SystemClock.now_ms());
                Backend {
                    server: TestServer::start_with_stores(stores, clock, configure).await,
                    kind,
                    schema: Some(schema),
                }
            }
        }
    }
}

/// Runs each named case (an `async fn(Kind)`) on SQLite and on PostgreSQL.
macro_rules! on_both {
    ($($module:ident :: $case:ident),* $(,)?) => {
        $(
            mod $case {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$module::$case(super::Kind::Sqlite).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$module::$case(super::Kind::Postgres).await;
                }
            }
        )*
    };
}

pub(crate) use on_both;
