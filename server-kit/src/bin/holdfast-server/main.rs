//! `holdfast-server`: the server kit's auth routes as a standalone HTTP server, with a
//! WebSocket sync endpoint (`GET /sync`, see `holdfast_server_kit::sync`) behind the sync
//! gate.
//!
//! Its first line on stdout is exactly `listening on http://ADDR`, which tests and tools
//! parse (also with `--listen 127.0.0.1:0`). Logs go to stderr (`RUST_LOG` filters them).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use holdfast_server_kit::config::{IpBlockPolicy, PasswordPolicy, RateLimits};
use holdfast_server_kit::gate::{GateConfig, ProoflessPolicy};
use holdfast_server_kit::mail::Outbox;
use holdfast_server_kit::server::GoingAway;
use holdfast_server_kit::store::postgres::PostgresStore;
use holdfast_server_kit::store::{SessionLimits, redact_url_password};
use holdfast_server_kit::sync::{Quota, SYNC_PATH, SharedCollection, SyncOptions};
use holdfast_server_kit::{Kit, KitError, ServerConfig, Stores, server};

/// How long a stopping server waits for its sync connections to finish their close
/// handshakes (each waits at most 2 s for the client's answer).
const SYNC_CLOSE_WAIT: Duration = Duration::from_secs(3);

mod args;
mod database;
mod mail_args;
mod operator;
mod secrets;

use args::{Args, Command, LockoutArg, PasswordClass, RateLimitArg, SyncProofless};
use database::{Database, parse_database};
use secrets::{Secrets, check_config, env_secrets, find_secrets, persist_secret};

fn main() -> ExitCode {
    let args = Args::parse();
    // An operator command prints its results on stdout; its log keeps to errors unless
    // RUST_LOG asks for more.
    let default_level = if args.command.is_some() { "error" } else { "info" };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level)),
        )
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("holdfast-server: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match &args.command {
            Some(Command::Users(command)) => operator::run(&args, command).await,
            None => run(args).await,
        }
    });
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
    let mail = mail_args::mail_from_args(&args.mail)?;
    let mut config = build_config(&args, secrets.list());
    config.mfa.keys = mfa_keys_from_env()?;
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
    if let Some((mailer, settings)) = mail {
        let outbox = Outbox::new(mailer, settings).map_err(|e| format!("mail settings: {e}"))?;
        kit = kit.mail(Arc::new(outbox));
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

/// The sync endpoint's items live beside the database: `DATABASE.sync.db`.
fn sync_collection_path(database: &Path) -> PathBuf {
    let mut file = database.as_os_str().to_owned();
    file.push(".sync.db");
    PathBuf::from(file)
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
    let seconds = |value: i64| (value > 0).then(|| value.saturating_mul(1000));
    config.sessions = SessionLimits {
        idle_timeout_ms: seconds(args.session_idle_timeout),
        max_lifetime_ms: seconds(args.session_lifetime),
        max_per_user: (args.max_sessions_per_user > 0).then_some(args.max_sessions_per_user),
    };
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
    if let Some(issuer) = args.mfa_issuer.as_ref().or(args.mail.app_name.as_ref()) {
        config.mfa.issuer = issuer.clone();
    }
    config.mfa.step_up_window_secs = args.step_up_window;
    config
}

/// The MFA key material from `HOLDFAST_MFA_KEY` (comma-separated, current first), if set.
fn mfa_keys_from_env() -> Result<Vec<zeroize::Zeroizing<Vec<u8>>>, String> {
    let Ok(value) = std::env::var("HOLDFAST_MFA_KEY") else {
        return Ok(Vec::new());
    };
    let keys: Vec<_> = value
        .split(',')
        .map(str::trim)
        .filter(|key| !key.is_empty())
        .map(|key| zeroize::Zeroizing::new(key.as_bytes().to_vec()))
        .collect();
    if keys.is_empty() {
        return Err("HOLDFAST_MFA_KEY is set but holds no key".into());
    }
    Ok(keys)
}
