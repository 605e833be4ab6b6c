//! The test-server fixture: the server kit wired by its composition root ([`Kit`]) on a
//! temporary SQLite file (or given stores) and a free loopback port, optionally mounted
//! under a path prefix as an application nesting the kit's router would.
//!
//! ```no_run
//! # async fn run() {
//! use holdfast_testing::TestServer;
//! let server = TestServer::builder().quick().start().await;
//! let me = server.url("/auth/me"); // http://127.0.0.1:PORT/auth/me
//! server.stop().await;
//! # }
//! ```
//!
//! [`SmtpSink`] is a real SMTP server for the mail tests (Python's `aiosmtpd`; see its
//! doc for the interpreter it needs).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use holdfast_server_kit::clock::ManualClock;
use holdfast_server_kit::config::RateLimits;
use holdfast_server_kit::gate::GateConfig;
use holdfast_server_kit::hooks::AuthHooks;
use holdfast_server_kit::passwords::Argon2Params;
use holdfast_server_kit::server::ServeOptions;
use holdfast_server_kit::service::AccountMail;
use holdfast_server_kit::sync::{SharedCollection, SyncOptions};
use holdfast_server_kit::{Kit, KitBuilder, ServerConfig, Stores, server};
use tokio::sync::oneshot;

mod smtp;

pub use smtp::{ReceivedMail, SMTP_PYTHON_ENV, SmtpSink};

/// The signing secret of a test server unless the test gives others.
pub const SECRET: &str = "holdfast-test-secret-0123456789abcdef";
/// The SQLite file of a test server's stores, in its temporary folder.
pub const DB_FILE: &str = "auth.db";

/// How to start a [`TestServer`].
#[must_use = "a builder does nothing until `start` is called"]
pub struct TestServerBuilder {
    config: ServerConfig,
    stores: Option<Stores>,
    clock: Option<ManualClock>,
    dir: Option<Arc<tempfile::TempDir>>,
    gate: GateConfig,
    sync: Option<(SharedCollection, SyncOptions)>,
    /// Further wiring of the kit (hooks, mail), in order.
    wiring: Vec<Box<dyn FnOnce(KitBuilder) -> KitBuilder + Send>>,
    mount: String,
    serve: ServeOptions,
}

impl TestServerBuilder {
    /// Test defaults: cheap password hashing, no rate limits, IP blocks or lockouts. Call it
    /// before [`TestServerBuilder::configure`], which it would otherwise undo.
    pub fn quick(mut self) -> TestServerBuilder {
        quick(&mut self.config);
        self
    }

    /// Signing secrets (default: [`SECRET`]).
    pub fn secrets(mut self, secrets: Vec<String>) -> TestServerBuilder {
        self.config.secrets = secrets;
        self
    }

    /// Adjusts the configuration now, after the defaults chosen so far.
    pub fn configure(mut self, configure: impl FnOnce(&mut ServerConfig)) -> TestServerBuilder {
        configure(&mut self.config);
        self
    }

    /// Stores to use instead of a fresh SQLite file (e.g. PostgreSQL shared with another
    /// instance).
    pub fn stores(mut self, stores: Stores) -> TestServerBuilder {
        self.stores = Some(stores);
        self
    }

    /// A clock the test moves, for the server to read instead of the system's.
    pub fn clock(mut self, clock: ManualClock) -> TestServerBuilder {
        self.config.clock = Arc::new(clock.clone());
        self.clock = Some(clock);
        self
    }

    /// The folder of the SQLite file (shared with another server, or kept across a restart).
    pub fn dir(mut self, dir: Arc<tempfile::TempDir>) -> TestServerBuilder {
        self.dir = Some(dir);
        self
    }

    /// The sync gate's settings.
    pub fn gate(mut self, gate: GateConfig) -> TestServerBuilder {
        self.gate = gate;
        self
    }

    /// Serves the sync endpoint over `collection`.
    pub fn sync(mut self, collection: SharedCollection, options: SyncOptions) -> TestServerBuilder {
        self.sync = Some((collection, options));
        self
    }

    /// The application's hooks.
    pub fn hooks(mut self, hooks: impl AuthHooks) -> TestServerBuilder {
        self.wiring
            .push(Box::new(move |kit: KitBuilder| kit.hooks(hooks)));
        self
    }

    /// Where account mail goes (otherwise: development mode, tokens in responses).
    pub fn mail(mut self, mail: Arc<dyn AccountMail>) -> TestServerBuilder {
        self.wiring.push(Box::new(move |kit: KitBuilder| kit.mail(mail)));
        self
    }

    /// Mounts the kit's router under `prefix` (e.g. `/api`) with `Router::nest`, as an
    /// application embedding the kit would.
    pub fn mount(mut self, prefix: &str) -> TestServerBuilder {
        self.mount = prefix.to_owned();
        self
    }

    /// How the server treats connections (default: [`ServeOptions::default`]).
    pub fn serve_options(mut self, options: ServeOptions) -> TestServerBuilder {
        self.serve = options;
        self
    }

    /// Starts the server; panics, saying why, if it cannot.
    pub async fn start(self) -> TestServer {
        self.try_start().await.expect("the test server starts")
    }

    /// Starts the server.
    pub async fn try_start(self) -> Result<TestServer, Box<dyn std::error::Error + Send + Sync>> {
        let dir = match self.dir {
            Some(dir) => dir,
            None => Arc::new(tempfile::tempdir()?),
        };
        let stores = match self.stores {
            Some(stores) => stores,
            None => Stores::sqlite(dir.path().join(DB_FILE))?,
        };
        let clock = self.clock;
        let mut kit = Kit::builder(self.config, stores.clone()).gate(self.gate);
        if let Some((collection, options)) = self.sync {
            kit = kit.sync(collection, options);
        }
        for wire in self.wiring {
            kit = wire(kit);
        }
        let kit = kit.build().await?;
        let router = if self.mount.is_empty() {
            kit.standalone_router()
        } else {
            axum::Router::new().nest(&self.mount, kit.router())
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (shutdown, stopped) = oneshot::channel::<()>();
        let stopped = async {
            let _ = stopped.await;
        };
        let task = tokio::spawn(server::serve_with(listener, router, stopped, self.serve));
        Ok(TestServer {
            addr,
            kit,
            stores,
            clock,
            mount: self.mount,
            shutdown: Some(shutdown),
            task: Some(task),
            dir,
        })
    }
}

/// The test defaults of [`TestServerBuilder::quick`], for a configuration built elsewhere.
pub fn quick(config: &mut ServerConfig) {
    config.argon2 = Argon2Params {
        memory_kib: 1024,
        iterations: 1,
        parallelism: 1,
    };
    config.hashing_concurrency = 2;
    config.hashing_max_wait = None;
    config.rate_limits = RateLimits::OFF;
    config.ip_block = None;
    config.account_lockout = None;
}

/// A server kit on loopback; shuts down gracefully when dropped.
pub struct TestServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The kit behind the routes (its service, gate and authenticator).
    pub kit: Kit,
    /// Its stores, to arrange state and to check what was (not) stored.
    pub stores: Stores,
    /// The clock the server reads, when the test gave one.
    pub clock: Option<ManualClock>,
    mount: String,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    dir: Arc<tempfile::TempDir>,
}

impl TestServer {
    /// A builder with the defaults: a fresh SQLite file, [`SECRET`], the kit's own settings.
    pub fn builder() -> TestServerBuilder {
        TestServerBuilder {
            config: ServerConfig::new(vec![SECRET.to_owned()]),
            stores: None,
            clock: None,
            dir: None,
            gate: GateConfig::default(),
            sync: None,
            wiring: Vec::new(),
            mount: String::new(),
            serve: ServeOptions::default(),
        }
    }

    /// `http://127.0.0.1:PORT` and the mount prefix, if any.
    pub fn base_url(&self) -> String {
        format!("http://{}{}", self.addr, self.mount)
    }

    /// The absolute URL of `path` (e.g. `/auth/me`), under the mount prefix.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url())
    }

    /// The folder holding the SQLite file.
    pub fn dir(&self) -> &Arc<tempfile::TempDir> {
        &self.dir
    }

    /// The SQLite file of the stores (when the server made them).
    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join(DB_FILE)
    }

    /// Stops the server and waits until it has finished its requests in flight.
    pub async fn stop(mut self) {
        self.stop_now().await;
    }

    async fn stop_now(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            let stopped = tokio::time::timeout(std::time::Duration::from_secs(10), task).await;
            stopped
                .expect("graceful shutdown completes")
                .expect("server task")
                .expect("server");
        }
    }

    /// Stops this server gracefully and starts `next` on the same folder and clock, as a
    /// process restart would (`next` gets the folder; its stores reopen the same file).
    /// Give `next` its settings, [`TestServerBuilder::quick`] first, as for a first start.
    pub async fn restart(mut self, next: TestServerBuilder) -> TestServer {
        self.stop_now().await;
        let (dir, clock) = (self.dir.clone(), self.clock.clone());
        drop(self);
        let next = next.dir(dir);
        match clock {
            Some(clock) => next.clock(clock),
            None => next,
        }
        .start()
        .await
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}
