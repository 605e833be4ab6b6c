//! `holdfast-server`: the server kit's auth routes as a standalone HTTP server, with a
//! WebSocket sync endpoint (`GET /sync`, see `holdfast_server_kit::sync`) behind the sync
//! gate.
//!
//! Its first line on stdout is exactly `listening on http://ADDR`, which tests and tools
//! parse (also with `--listen 127.0.0.1:0`). Logs go to stderr (`RUST_LOG` filters them).

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use holdfast_server_kit::config::{AccountLockout, IpBlockPolicy, PasswordPolicy, RateLimits};
use holdfast_server_kit::gate::{GateConfig, ProoflessPolicy};
use holdfast_server_kit::server::GoingAway;
use holdfast_server_kit::store::postgres::PostgresStore;
use holdfast_server_kit::store::{RateLimit, redact_url_password};
use holdfast_server_kit::sync::{Quota, SYNC_PATH, SharedCollection, SyncOptions};
use holdfast_server_kit::{ConfigError, Kit, KitError, ServerConfig, Stores, server, tokens};

/// How long a stopping server waits for its sync connections to finish their close
/// handshakes (each waits at most 2 s for the client's answer).
const SYNC_CLOSE_WAIT: Duration = Duration::from_secs(3);

/// Holdfast auth server: Kora-compatible auth routes with a device registry, on SQLite or
/// PostgreSQL.
///
/// Several instances share the load with one PostgreSQL database and one Redis:
/// `--database postgres://… --redis redis://…` on each, with the same HOLDFAST_SECRET.
///
/// GET /sync is a WebSocket sync endpoint: each connection is admitted by the sync gate
/// (access token, and a device proof where the token is bound to a key) and closed as soon
/// as its device or session is revoked. Its items are kept in DATABASE.sync.db; with a
/// PostgreSQL database, in its sync_items table (same schema), and each instance pushes
/// the items written through any instance to its own connections (LISTEN/NOTIFY, one more
/// connection per instance), so sync works behind a load balancer without Redis.
///
/// Token secrets come from HOLDFAST_SECRET (comma-separated: the first signs, all verify,
/// for key rotation; each at least 32 characters). When it is unset, a secret is generated
/// once and kept in a file beside the SQLite database (DATABASE.secret, mode 0600); a
/// PostgreSQL database requires HOLDFAST_SECRET.
///
/// The first line on stdout is exactly `listening on http://ADDR`; logs go to stderr
/// (filtered by RUST_LOG). SIGINT or SIGTERM stops it gracefully (open sync connections are
/// closed with 1001, going away).
#[derive(Debug, Parser)]
#[command(name = "holdfast-server", version, about, long_about)]
struct Args {
    /// Address to listen on (port 0 picks a free port; the first stdout line says which).
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    listen: SocketAddr,

    /// Database: `sqlite:PATH` (created if missing), or a PostgreSQL URL
    /// `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE` (also `postgresql://`), which several
    /// instances can share; its tables are created or migrated at start. TLS:
    /// `?sslmode=require` (or `verify-ca`, `verify-full`: all three verify the certificate
    /// and host name) with `&sslrootcert=PATH` for a PEM file of the CA certificates to
    /// trust (default: the system's); without `sslmode`, or with `sslmode=disable`, no TLS;
    /// `prefer` and `allow` are refused.
    #[arg(long, default_value = "sqlite:./holdfast.db", value_name = "URL")]
    database: String,

    /// PostgreSQL only: the schema to keep the tables in (created if missing; lower-case
    /// letters, digits and underscores). Default: the connection's search_path (public).
    #[arg(long, value_name = "NAME")]
    database_schema: Option<String>,

    /// Redis shared by several instances: `redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]`.
    /// Rate limits and device-proof replays are kept there, and revocations are relayed
    /// through it (pub/sub) so that every instance cuts off open sync connections at once.
    /// Without it, rate limits and replays are per instance and other instances see a
    /// revocation within their periodic re-check (15 s): fine for a single instance.
    #[arg(long, value_name = "URL")]
    redis: Option<String>,

    /// Prefix of every Redis key and of the revocation channel (`PREFIX:revocations`):
    /// instances that work together share it; deployments sharing a Redis use different ones.
    #[arg(long, default_value = "holdfast", value_name = "PREFIX")]
    redis_prefix: String,

    /// Access token lifetime in seconds.
    #[arg(long, default_value_t = 900, value_name = "SECONDS")]
    access_ttl: i64,

    /// Refresh token lifetime in seconds (default 90 days).
    #[arg(long, default_value_t = 90 * 24 * 3600, value_name = "SECONDS")]
    refresh_ttl: i64,

    /// Device credential lifetime in seconds (default 90 days).
    #[arg(long, default_value_t = 90 * 24 * 3600, value_name = "SECONDS")]
    device_credential_ttl: i64,

    /// Refresh grace window in seconds (0 to 60): a refresh token presented again this soon
    /// after its rotation gets the same new pair instead of counting as reuse.
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    grace_window: i64,

    /// Rate limit on sign-in, sign-up, refresh, challenge and verify: `off`, or MAX/SECONDS
    /// for the same sliding window on each. Default: 10/60 on sign-in and sign-up, 120/60 on
    /// refresh, 30/60 on challenge and verify.
    #[arg(long, value_name = "off|MAX/SECONDS", value_parser = parse_rate_limit)]
    rate_limit: Option<RateLimitArg>,

    /// Temporary blocking of a client address after repeated failures: `off`, or
    /// FAILURES/SECONDS (the block lasts SECONDS too). Default 50/900.
    #[arg(long, value_name = "off|FAILURES/SECONDS", value_parser = parse_rate_limit)]
    ip_block: Option<RateLimitArg>,

    /// Failed sign-ins counted per account: `off`, or PER_ADDRESS/PER_ACCOUNT/SECONDS. An
    /// address with PER_ADDRESS failures for an account within SECONDS is refused for it;
    /// once the account has PER_ACCOUNT failures from all addresses, only addresses with no
    /// failure for it, or a device proving its registered key, may try. Default 5/20/900.
    #[arg(long, value_name = "off|PER_ADDRESS/PER_ACCOUNT/SECONDS", value_parser = parse_account_lockout)]
    account_lockout: Option<LockoutArg>,

    /// A reverse proxy whose X-Forwarded-For is believed (repeatable). Without one, the
    /// socket address is the client address.
    #[arg(long = "trusted-proxy", value_name = "IP")]
    trusted_proxies: Vec<IpAddr>,

    /// The URL clients use to reach the server, e.g. https://api.example.com, when a TLS
    /// terminator or proxy sits in front: device proofs (DPoP) name it. Default: http://
    /// and the request's Host header.
    #[arg(long = "public-url", value_name = "URL")]
    public_url: Option<String>,

    /// Sync connections whose token is not bound to a device key and that bring no device
    /// proof: `admit-unbound` lets them in (Kora web clients, keyless devices), `reject`
    /// refuses them. A token bound to a key always needs its proof.
    #[arg(long, value_enum, default_value_t = SyncProofless::AdmitUnbound, value_name = "POLICY")]
    sync_proofless: SyncProofless,

    /// Route prefix.
    #[arg(long, default_value = "/auth", value_name = "PATH")]
    prefix: String,

    /// Largest accepted request body in bytes.
    #[arg(long, default_value_t = 64 * 1024, value_name = "BYTES")]
    max_body_bytes: usize,

    /// Minimum password length for new passwords (8 to 128).
    #[arg(long, default_value_t = 8, value_name = "N")]
    password_min_length: usize,

    /// Character classes new passwords must contain, comma-separated: lower, upper, digit,
    /// symbol.
    #[arg(long, value_name = "CLASSES", value_delimiter = ',')]
    password_require: Vec<PasswordClass>,

    /// Password hashes running at once (default: half the cores, at least 1); more wait.
    #[arg(long, value_name = "N")]
    hashing_concurrency: Option<usize>,

    /// How long a sign-in or sign-up may wait for a free hashing slot, in milliseconds,
    /// before it is refused with 503 SERVICE_UNAVAILABLE and Retry-After (0: wait as long
    /// as it takes).
    #[arg(long, default_value_t = 3000, value_name = "MS")]
    hashing_max_wait: u64,

    /// Seconds a new connection may stay silent before its first byte; then it is closed.
    #[arg(long, default_value_t = 10, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=3600))]
    first_byte_timeout: u64,

    /// Seconds a client may take to send a request's headers, which is also how long a
    /// kept-alive connection may stay idle between requests.
    #[arg(long, default_value_t = 30, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=3600))]
    header_read_timeout: u64,

    /// Connections open at once; more are answered 503 SERVICE_UNAVAILABLE (Retry-After)
    /// and closed. Keep it below the process's file descriptor limit.
    #[arg(long, default_value_t = 8192, value_name = "N", value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    max_connections: usize,

    /// Connections open at once from one client address (an IPv6 client counts as its
    /// /64; the trusted proxies are exempt); more are answered 429 RATE_LIMITED and closed.
    #[arg(long, default_value_t = 256, value_name = "N", value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    max_connections_per_address: usize,

    /// Most sync items (keys) one user may keep; a put of a new key past it gets
    /// QUOTA_EXCEEDED.
    #[arg(long, default_value_t = 10_000, value_name = "N")]
    sync_max_items: u64,

    /// Most bytes of sync items (keys plus values as JSON) one user may keep; a put that
    /// would go past it gets QUOTA_EXCEEDED (writes that shrink are always taken).
    #[arg(long, default_value_t = 64 * 1024 * 1024, value_name = "BYTES")]
    sync_max_bytes: u64,

    /// Sync connections one user may have open on this instance; one more is refused with
    /// 429 QUOTA_EXCEEDED.
    #[arg(long, default_value_t = 16, value_name = "N", value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    sync_max_connections_per_user: usize,

    /// How long one sync message may wait for a client to read it; a client that stops
    /// reading is dropped after this.
    #[arg(long, default_value_t = 30, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=3600))]
    sync_send_timeout: u64,

    /// After SIGINT or SIGTERM, how long requests in flight may take to finish before the
    /// server stops anyway (a second signal stops it at once). It then exits with status 0.
    #[arg(long, default_value_t = 10, value_name = "SECONDS")]
    shutdown_timeout: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum PasswordClass {
    Lower,
    Upper,
    Digit,
    Symbol,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum SyncProofless {
    Reject,
    AdmitUnbound,
}

#[derive(Debug, Clone, Copy)]
enum RateLimitArg {
    Off,
    Limit(RateLimit),
}

/// Longest rate-limit, block or lockout window accepted from a flag (one year).
const MAX_WINDOW_SECS: i64 = 365 * 86_400;

fn parse_rate_limit(text: &str) -> Result<RateLimitArg, String> {
    if text.eq_ignore_ascii_case("off") {
        return Ok(RateLimitArg::Off);
    }
    let usage = || format!("expected `off` or MAX/SECONDS, like 10/60, not `{text}`");
    let (max, seconds) = text.split_once('/').ok_or_else(usage)?;
    let max: u32 = max.trim().parse().map_err(|_| usage())?;
    let seconds: i64 = seconds.trim().parse().map_err(|_| usage())?;
    // At most a year: windows are added to times in milliseconds, which must not overflow.
    if max == 0 || !(1..=MAX_WINDOW_SECS).contains(&seconds) {
        return Err(format!(
            "{}; SECONDS must be between 1 and {MAX_WINDOW_SECS}",
            usage()
        ));
    }
    Ok(RateLimitArg::Limit(RateLimit {
        max,
        window_ms: seconds * 1000,
    }))
}

#[derive(Debug, Clone, Copy)]
struct LockoutArg(Option<AccountLockout>);

fn parse_account_lockout(text: &str) -> Result<LockoutArg, String> {
    if text.eq_ignore_ascii_case("off") {
        return Ok(LockoutArg(None));
    }
    let usage = || format!("expected `off` or PER_ADDRESS/PER_ACCOUNT/SECONDS, like 5/20/900, not `{text}`");
    let parts: Vec<&str> = text.split('/').map(str::trim).collect();
    let [per_address, per_account, seconds] = parts[..] else {
        return Err(usage());
    };
    let per_address: u32 = per_address.parse().map_err(|_| usage())?;
    let per_account: u32 = per_account.parse().map_err(|_| usage())?;
    let seconds: i64 = seconds.parse().map_err(|_| usage())?;
    if per_address == 0 || per_account == 0 || !(1..=MAX_WINDOW_SECS).contains(&seconds) {
        return Err(usage());
    }
    let window_ms = seconds * 1000;
    Ok(LockoutArg(Some(AccountLockout {
        per_address,
        per_account,
        window_ms,
    })))
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("holdfast-server: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(args));
    // Connections abandoned at the shutdown deadline must not hold the exit.
    runtime.shutdown_timeout(Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("holdfast-server: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    let database = parse_database(&args.database)?;
    let secrets = match &database {
        Database::Sqlite(path) => find_secrets(path)?,
        Database::Postgres(_) => env_secrets()?.ok_or(
            "a PostgreSQL database needs HOLDFAST_SECRET (there is no file beside it to keep a \
             generated secret in): set it to the same secret on every instance (generate one \
             with `openssl rand -base64 32`)",
        )?,
    };
    if args.database_schema.is_some() && matches!(database, Database::Sqlite(_)) {
        return Err("--database-schema applies to a PostgreSQL database only".into());
    }
    // Everything is checked before anything is written: a bad flag leaves no files behind.
    let mut config = build_config(&args, secrets.list());
    check_config(&config, &secrets)?;
    if config.route_prefix == SYNC_PATH {
        return Err(format!(
            "the route prefix cannot be {SYNC_PATH}: that is the sync endpoint"
        ));
    }
    match &secrets {
        Secrets::Env(_) => {}
        Secrets::File(file, _) => tracing::warn!(
            file = %file.display(),
            "HOLDFAST_SECRET is unset; using the secret kept beside the database"
        ),
        Secrets::Generated(file, secret) => {
            let kept = persist_secret(file, secret)?;
            if kept != *secret {
                // Another process starting on the same database wrote its secret first.
                config.secrets = vec![kept];
                check_config(&config, &Secrets::File(file.clone(), String::new()))?;
            }
            tracing::warn!(
                file = %file.display(),
                "HOLDFAST_SECRET is unset; generated a secret and kept it beside the database. Set HOLDFAST_SECRET in production."
            );
        }
    }
    let (stores, collection) = match &database {
        Database::Sqlite(path) => {
            let stores = Stores::sqlite(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
            let sync_path = sync_collection_path(path);
            let collection = SharedCollection::open(&sync_path)
                .map_err(|e| format!("cannot open {}: {e}", sync_path.display()))?;
            (stores, collection)
        }
        Database::Postgres(url) => {
            let store = PostgresStore::connect(url, args.database_schema.as_deref())
                .await
                .map_err(|e| format!("cannot open {}: {e}", redact_url_password(url)))?;
            // Shared by every instance on the schema: stored there, pushed through LISTEN.
            let collection = SharedCollection::postgres(&store).await.map_err(|e| {
                format!(
                    "cannot listen for sync items on {}: {e}",
                    redact_url_password(url)
                )
            })?;
            (Stores::single(Arc::new(store)), collection)
        }
    };
    let stores = match &args.redis {
        Some(url) => stores
            .with_redis(url, &args.redis_prefix)
            .await
            .map_err(|e| format!("cannot use Redis at {}: {e}", redact_url_password(url)))?,
        None => stores,
    };
    let going_away = GoingAway::default();
    collection.set_quota(Quota {
        items: args.sync_max_items,
        bytes: args.sync_max_bytes,
    });
    let sync_options = SyncOptions {
        going_away: going_away.clone(),
        max_connections_per_user: args.sync_max_connections_per_user,
        send_timeout: Duration::from_secs(args.sync_send_timeout),
        ..SyncOptions::default()
    };
    let mut kit = Kit::builder(config, stores)
        .gate(GateConfig {
            proofless: match args.sync_proofless {
                SyncProofless::Reject => ProoflessPolicy::Reject,
                SyncProofless::AdmitUnbound => ProoflessPolicy::AdmitUnbound,
            },
            ..GateConfig::default()
        })
        .sync(collection, sync_options);
    if let Some(url) = &args.redis {
        kit = kit.redis_relay(url, &args.redis_prefix);
    }
    let kit = kit.build().await.map_err(|error| match error {
        KitError::Store(e) => format!(
            "cannot relay revocations through {}: {e}",
            args.redis.as_deref().map(redact_url_password).unwrap_or_default()
        ),
        error => error.to_string(),
    })?;
    let router = kit.standalone_router();

    // Installed before the first stdout line: a signal sent as soon as a supervisor reads
    // it must stop the server gracefully, not kill it with the default disposition.
    let mut signals =
        server::ShutdownSignals::register().map_err(|e| format!("cannot listen for signals: {e}"))?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let address = listener
        .local_addr()
        .map_err(|e| format!("cannot read the bound address: {e}"))?;
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "listening on http://{address}").map_err(|e| e.to_string())?;
        stdout.flush().map_err(|e| e.to_string())?;
    }
    tracing::info!(
        database = %database.describe(),
        redis = %args.redis.as_deref().map(redact_url_password).unwrap_or_else(|| "none".into()),
        "holdfast-server ready"
    );

    let (stopping, stopped) = tokio::sync::oneshot::channel::<server::ShutdownSignals>();
    let closing = going_away.clone();
    let shutdown = async move {
        let signal = signals.recv().await;
        tracing::info!(signal, "shutting down: finishing the requests in flight");
        // Sync connections are upgraded, so the HTTP server's graceful shutdown does not
        // wait for them: they are told to go away (1001) and waited for below.
        closing.trigger();
        let _ = stopping.send(signals);
    };
    let limit = Duration::from_secs(args.shutdown_timeout);
    // A client holding a half-sent request would otherwise keep the server up forever.
    let deadline = async move {
        let Ok(mut signals) = stopped.await else {
            return std::future::pending().await;
        };
        tokio::select! {
            () = tokio::time::sleep(limit) => tracing::warn!(
                seconds = limit.as_secs(),
                "requests still in flight at the shutdown deadline; stopping anyway"
            ),
            signal = signals.recv() => tracing::warn!(
                signal,
                "second signal: stopping without waiting for the requests in flight"
            ),
        }
    };

    let maintenance = kit.service().spawn_maintenance(Duration::from_secs(600));
    let serve_options = server::ServeOptions {
        first_byte_timeout: Duration::from_secs(args.first_byte_timeout),
        header_read_timeout: Duration::from_secs(args.header_read_timeout),
        max_connections: args.max_connections,
        max_connections_per_address: args.max_connections_per_address,
        exempt_addresses: args.trusted_proxies.clone(),
    };
    let server = server::serve_with(listener, router, shutdown, serve_options);
    let (result, graceful) = tokio::select! {
        result = server => (result, true),
        () = deadline => (Ok(()), false),
    };
    maintenance.abort();
    // After the deadline or a second signal, nothing more is waited for.
    if graceful && !going_away.all_closed(SYNC_CLOSE_WAIT).await {
        tracing::warn!(
            open = going_away.open_connections(),
            "sync connections still open after their close frames; stopping anyway"
        );
    }
    if let Err(error) = kit.gate().flush_last_seen().await {
        tracing::warn!(%error, "could not record the devices' last sync connections");
    }
    tracing::info!("holdfast-server stopped");
    result.map_err(|e| format!("server failed: {e}"))
}

/// Where the stores live.
enum Database {
    Sqlite(PathBuf),
    /// The URL as given.
    Postgres(String),
}

impl Database {
    /// For logs: the path, or the URL without its password.
    fn describe(&self) -> String {
        match self {
            Database::Sqlite(path) => path.display().to_string(),
            Database::Postgres(url) => redact_url_password(url),
        }
    }
}

fn parse_database(database: &str) -> Result<Database, String> {
    if database.starts_with("postgres://") || database.starts_with("postgresql://") {
        return Ok(Database::Postgres(database.to_owned()));
    }
    sqlite_path(database).map(Database::Sqlite)
}

fn sqlite_path(database: &str) -> Result<PathBuf, String> {
    let path = database
        .strip_prefix("sqlite://")
        .or_else(|| database.strip_prefix("sqlite:"))
        .ok_or_else(|| {
            format!(
                "unsupported database `{}`: this build supports sqlite:PATH and postgres://URL",
                redact_url_password(database)
            )
        })?;
    if path.is_empty() {
        return Err("the database path is empty".into());
    }
    if path == ":memory:" {
        // Each connection would get its own empty database, and nothing would survive a
        // restart (PROTOCOL 6.2 needs the grace window state to).
        return Err("an in-memory database is not supported: give a file, like sqlite:./holdfast.db".into());
    }
    Ok(PathBuf::from(path))
}

/// The sync endpoint's items live beside the database: `DATABASE.sync.db`.
fn sync_collection_path(database: &Path) -> PathBuf {
    let mut file = database.as_os_str().to_owned();
    file.push(".sync.db");
    PathBuf::from(file)
}

/// Where the token secrets come from.
enum Secrets {
    /// `HOLDFAST_SECRET`.
    Env(Vec<String>),
    /// The file beside the database, written by an earlier run.
    File(PathBuf, String),
    /// Generated now, to be kept in the file beside the database.
    Generated(PathBuf, String),
}

impl Secrets {
    fn list(&self) -> Vec<String> {
        match self {
            Secrets::Env(secrets) => secrets.clone(),
            Secrets::File(_, secret) | Secrets::Generated(_, secret) => vec![secret.clone()],
        }
    }
}

/// Secrets from `HOLDFAST_SECRET`, or from the file beside the database, or new ones
/// (not yet written: see [`persist_secret`]).
fn find_secrets(database: &Path) -> Result<Secrets, String> {
    if let Some(secrets) = env_secrets()? {
        return Ok(secrets);
    }
    let mut file = database.as_os_str().to_owned();
    file.push(".secret");
    let file = PathBuf::from(file);
    match std::fs::read_to_string(&file) {
        Ok(text) => {
            holdfast_server_kit::files::warn_if_exposed([file.as_path()]);
            Ok(Secrets::File(file, text.trim().to_owned()))
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            Ok(Secrets::Generated(file, tokens::generate_secret()))
        }
        Err(error) => Err(format!("cannot read the secret file {}: {error}", file.display())),
    }
}

/// Secrets from `HOLDFAST_SECRET`, when it is set.
fn env_secrets() -> Result<Option<Secrets>, String> {
    match std::env::var("HOLDFAST_SECRET") {
        Ok(value) => {
            let secrets: Vec<String> = value
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
            if secrets.is_empty() {
                return Err("HOLDFAST_SECRET is set but holds no secret".into());
            }
            Ok(Some(Secrets::Env(secrets)))
        }
        Err(std::env::VarError::NotUnicode(_)) => Err("HOLDFAST_SECRET is not valid UTF-8".into()),
        Err(std::env::VarError::NotPresent) => Ok(None),
    }
}

/// [`ServerConfig::validate`], with messages that say which secret is wrong.
fn check_config(config: &ServerConfig, secrets: &Secrets) -> Result<(), String> {
    match (config.validate(), secrets) {
        (Ok(()), _) => Ok(()),
        (Err(ConfigError::SecretTooShort(n)), Secrets::Env(list)) => Err(format!(
            "HOLDFAST_SECRET: secret {n} of {} is shorter than 32 characters (generate one with `openssl rand -base64 32`)",
            list.len()
        )),
        (Err(ConfigError::SecretTooShort(_)), Secrets::File(file, _) | Secrets::Generated(file, _)) => {
            Err(format!(
                "the secret in {} is shorter than 32 characters; set HOLDFAST_SECRET, or delete the file to generate a new secret (tokens signed with the old one stop working)",
                file.display()
            ))
        }
        (Err(error), _) => Err(format!("invalid configuration: {error}")),
    }
}

/// Keeps a generated secret in `file` (mode 0600) unless another process did first, and
/// returns the secret the file holds. The file appears complete or not at all: the secret
/// is written to a temporary file that is then linked into place.
fn persist_secret(file: &Path, secret: &str) -> Result<String, String> {
    let failed = |e: std::io::Error| format!("cannot create the secret file {}: {e}", file.display());
    let mut temp = file.as_os_str().to_owned();
    temp.push(format!(".tmp-{}", std::process::id()));
    let temp = PathBuf::from(temp);
    // A leftover of a run that crashed with the same process id.
    let _ = std::fs::remove_file(&temp);
    write_private(&temp, secret).map_err(failed)?;
    let linked = std::fs::hard_link(&temp, file);
    let _ = std::fs::remove_file(&temp);
    match linked {
        Ok(()) => Ok(secret.to_owned()),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => std::fs::read_to_string(file)
            .map(|text| text.trim().to_owned())
            .map_err(|e| format!("cannot read the secret file {}: {e}", file.display())),
        // A file system without hard links: create the file in place.
        Err(_) => match write_private(file, secret) {
            Ok(()) => Ok(secret.to_owned()),
            Err(error) => Err(failed(error)),
        },
    }
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()
}

fn build_config(args: &Args, secrets: Vec<String>) -> ServerConfig {
    let mut config = ServerConfig::new(secrets);
    config.access_ttl_secs = args.access_ttl;
    config.refresh_ttl_secs = args.refresh_ttl;
    config.device_credential_ttl_secs = args.device_credential_ttl;
    config.grace_window_ms = args.grace_window.saturating_mul(1000);
    config.rate_limits = match args.rate_limit {
        None => RateLimits::default(),
        Some(RateLimitArg::Off) => RateLimits::OFF,
        Some(RateLimitArg::Limit(limit)) => RateLimits::uniform(limit),
    };
    config.ip_block = match args.ip_block {
        None => Some(IpBlockPolicy::default()),
        Some(RateLimitArg::Off) => None,
        Some(RateLimitArg::Limit(limit)) => Some(IpBlockPolicy {
            max_failures: limit.max,
            window_ms: limit.window_ms,
            block_ms: limit.window_ms,
        }),
    };
    if let Some(LockoutArg(lockout)) = args.account_lockout {
        config.account_lockout = lockout;
    }
    config.trusted_proxies = args.trusted_proxies.clone();
    config.route_prefix = args.prefix.clone();
    config.public_url = args.public_url.clone();
    config.max_body_bytes = args.max_body_bytes;
    let require = |class| args.password_require.contains(&class);
    config.password_policy = PasswordPolicy {
        min_length: args.password_min_length,
        require_lowercase: require(PasswordClass::Lower),
        require_uppercase: require(PasswordClass::Upper),
        require_digit: require(PasswordClass::Digit),
        require_symbol: require(PasswordClass::Symbol),
    };
    config.hashing_max_wait =
        (args.hashing_max_wait > 0).then(|| Duration::from_millis(args.hashing_max_wait));
    if let Some(n) = args.hashing_concurrency {
        config.hashing_concurrency = n;
    }
    config
}
