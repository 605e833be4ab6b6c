//! Harness for the session tests: the real server kit on loopback (with its stores at hand,
//! to revoke or delete things as another device or an admin would), a fault proxy in front
//! of it, and clients on temporary stores.
#![allow(dead_code)] // Each suite uses part of the harness.

pub mod proxy;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use holdfast_core::clock::{Clock, ManualClock, SystemClock};
use holdfast_core::vault::Passphrase;
use holdfast_core::{AuthClient, AuthEvent, ClientConfig, KeySource, Subscription};
use holdfast_server_kit::{AuthService, ServerConfig, Stores};

#[allow(unused_imports)] // Not every suite injects faults.
pub use proxy::{Fault, FaultProxy};

pub const PASSWORD: &str = "correct horse battery";

/// The server kit on a loopback port, over SQLite in a temporary folder: the shared
/// fixture ([`holdfast_testing::TestServer`]) on the system clock, or on a clock the test
/// moves ([`Server::start_clocked`]). No mailer: it answers reset and verification tokens
/// (development mode).
pub struct Server {
    pub addr: SocketAddr,
    pub stores: Stores,
    server: holdfast_testing::TestServer,
}

impl Server {
    pub async fn start() -> Server {
        Server::start_with(|_| {}).await
    }

    /// A server whose configuration `configure` adjusts after the test defaults.
    pub async fn start_with(configure: impl FnOnce(&mut ServerConfig)) -> Server {
        Server::launch(Server::builder().configure(configure)).await
    }

    /// [`Server::start_with`] on a manual clock set to the real time ([`Server::clock`]).
    pub async fn start_clocked(configure: impl FnOnce(&mut ServerConfig)) -> Server {
        let clock = holdfast_server_kit::clock::ManualClock::new(SystemClock.now_ms());
        Server::launch(Server::builder().clock(clock).configure(configure)).await
    }

    fn builder() -> holdfast_testing::TestServerBuilder {
        holdfast_testing::TestServer::builder()
            .secrets(vec!["holdfast-core-test-secret-0123456789abcdef".into()])
            .quick()
    }

    async fn launch(builder: holdfast_testing::TestServerBuilder) -> Server {
        let server = builder.start().await;
        Server {
            addr: server.addr,
            stores: server.stores.clone(),
            server,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The service behind the routes, for what an operator does (disable an account).
    pub fn service(&self) -> &AuthService {
        self.server.kit.service()
    }

    /// The server's clock, of a server started with [`Server::start_clocked`].
    pub fn clock(&self) -> &holdfast_server_kit::clock::ManualClock {
        self.server
            .clock
            .as_ref()
            .expect("a server started with start_clocked")
    }
}

/// A client store folder that outlives the clients using it (restarts, second processes).
pub struct Device {
    pub dir: tempfile::TempDir,
}

impl Device {
    pub fn new() -> Device {
        Device {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().join("holdfast.db")
    }

    /// A client of `url` on this store, with a passphrase key and `clock`.
    pub fn client(&self, url: &str, clock: &ManualClock) -> AuthClient {
        self.client_with_clock(url, Arc::new(clock.clone()))
    }

    /// A client of `url` on this store, with a passphrase key and any clock. Background
    /// refresh is off, so tests see only the refreshes they cause (see `config`).
    pub fn client_with_clock(&self, url: &str, clock: Arc<dyn Clock>) -> AuthClient {
        AuthClient::new(self.config(url, clock)).expect("client config")
    }

    /// The configuration `client_with_clock` uses, for tests that change it.
    pub fn config(&self, url: &str, clock: Arc<dyn Clock>) -> ClientConfig {
        let mut config = ClientConfig::new(
            url,
            self.path(),
            KeySource::Passphrase(Passphrase::new("test passphrase")),
        );
        config.clock = clock;
        config.connect_timeout = Duration::from_millis(500);
        config.request_timeout = Duration::from_secs(2);
        config.auto_refresh = false;
        config
    }
}

/// A manual clock set to the real time.
pub fn clock() -> ManualClock {
    ManualClock::new(SystemClock.now_ms())
}

/// Unique email per test.
pub fn email(label: &str) -> String {
    format!("{label}-{}@example.com", uuid_like())
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::SeqCst))
}

/// Records every event a client emits.
pub struct Events {
    pub seen: Arc<Mutex<Vec<AuthEvent>>>,
    _subscription: Subscription,
}

impl Events {
    pub fn record(client: &AuthClient) -> Events {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        let subscription = client.subscribe(Arc::new(move |event: &AuthEvent| {
            sink.lock().expect("events").push(event.clone());
        }));
        Events {
            seen,
            _subscription: subscription,
        }
    }

    pub fn all(&self) -> Vec<AuthEvent> {
        self.seen.lock().expect("events").clone()
    }

    pub fn count(&self, matches: impl Fn(&AuthEvent) -> bool) -> usize {
        self.all().iter().filter(|event| matches(event)).count()
    }
}

/// Fifteen minutes and a bit: past the default access token lifetime.
pub const PAST_ACCESS_EXPIRY_MS: i64 = 16 * 60_000;

/// A sealed record's blob and version in the client store at `path`, read from outside
/// (the store holds one server, so the name identifies the record).
pub fn stored_record(path: &std::path::Path, name: &str) -> Option<(Vec<u8>, i64)> {
    use rusqlite::OptionalExtension;
    rusqlite::Connection::open(path)
        .expect("open the client store")
        .query_row(
            "SELECT blob, version FROM records WHERE name = ?1",
            [name],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()
        .expect("read a record")
}
