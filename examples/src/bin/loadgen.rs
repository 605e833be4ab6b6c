//! `loadgen`: a bounded load generator for the auth routes and sync admissions, loopback only.
//!
//! ```sh
//! cargo build --release -p holdfast-server-kit --bin holdfast-server -p holdfast-examples --bin loadgen
//! target/release/loadgen --spawn target/release/holdfast-server --scenario me --requests 100000
//! target/release/loadgen --server http://127.0.0.1:8080 --scenario refresh --concurrency 8
//! # Sync admissions (WebSocket upgrade of GET /sync), with and without a device key:
//! target/release/loadgen --spawn target/release/holdfast-server --scenario sync,sync-unbound \
//!     --requests 2000 --concurrency 16
//! # Two instances sharing a fresh PostgreSQL schema and Redis prefix (both removed at the end):
//! target/release/loadgen --spawn target/release/holdfast-server --instances 2 \
//!     --database postgres://127.0.0.1:5432/test --redis redis://127.0.0.1:6379 \
//!     --scenario me,refresh,sync --requests 3000 --concurrency 16
//! # Two servers started elsewhere (sharing state): requests alternate between them.
//! target/release/loadgen --server http://127.0.0.1:8080,http://127.0.0.1:8081 --scenario refresh
//! ```
//!
//! Prints one line per scenario for people and one `RESULT key=value …` line for scripts.
//! Exits with 1 when any request failed or a run stopped early, 2 when it could not run.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use holdfast_examples::load::{self, Fleet, FleetOptions, LoadError, Plan, Scenario, Target};

/// Load generator for the Holdfast auth routes and sync admissions. Loopback only: each of
/// CONCURRENCY workers signs up its own user and keeps one keep-alive connection per server,
/// then sends its scenario's requests back to back, the k-th to server k mod N, until
/// REQUESTS have been answered. Every status other than 200 counts as an error.
#[derive(Debug, Parser)]
#[command(name = "loadgen")]
struct Args {
    /// A running server, e.g. http://127.0.0.1:8080 (its sign-up rate limit must allow
    /// CONCURRENCY sign-ups, and refresh and sign-in limits the run). Repeat it, or separate
    /// URLs with commas, for several instances sharing their state; sign-ups go to the first.
    /// Device proofs name http://HOST/sync: a server behind --public-url refuses them.
    #[arg(
        long,
        value_name = "URL",
        value_delimiter = ',',
        required_unless_present = "spawn",
        conflicts_with = "spawn"
    )]
    server: Vec<String>,

    /// Start this holdfast-server binary (rate limits and address blocking off) and stop it
    /// at the end: on a temporary SQLite database, or with --database on PostgreSQL.
    #[arg(long, value_name = "PATH")]
    spawn: Option<PathBuf>,

    /// With --spawn: how many instances to start (default 1; more than 1 needs --database).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=16))]
    instances: Option<u16>,

    /// With --spawn: a PostgreSQL server on loopback, e.g. postgres://127.0.0.1:5432/test; the
    /// instances share a fresh schema there (loadgen_PID_TIME_N), dropped at the end.
    #[arg(long, value_name = "URL")]
    database: Option<String>,

    /// With --spawn: a Redis on loopback, e.g. redis://127.0.0.1:6379; the instances share a
    /// fresh key prefix there (its keys expire by themselves).
    #[arg(long, value_name = "URL")]
    redis: Option<String>,

    /// Scenarios to run one after the other: me, refresh, signin, sync, sync-unbound
    /// (comma-separated).
    #[arg(long, value_name = "NAME", value_delimiter = ',', default_value = "me")]
    scenario: Vec<Scenario>,

    /// Requests per scenario (default: 50000 for me, 10000 for refresh, sync and
    /// sync-unbound, 200 for signin).
    #[arg(long, value_name = "N")]
    requests: Option<u64>,

    /// Parallel workers, each with its own user.
    #[arg(long, value_name = "C", default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..=4096))]
    concurrency: u16,

    /// Stop a scenario after this many seconds (setup not included) and report it.
    #[arg(long, value_name = "SECONDS", default_value_t = 120.0)]
    duration_limit: f64,

    /// Meanwhile, send GET /me every 10 ms on one more connection (to the first server) and
    /// report its latency (does the scenario slow other requests down?).
    #[arg(long)]
    probe: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("loadgen: cannot start the runtime: {error}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(args)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("loadgen: {error}");
            ExitCode::from(2)
        }
    }
}

/// Starts the servers if asked, runs every scenario (or until Ctrl-C), then stops the
/// servers and drops their schema; `Ok(false)` when a scenario had errors or stopped early.
async fn run(args: Args) -> Result<bool, LoadError> {
    if !(args.duration_limit.is_finite() && args.duration_limit > 0.0) {
        return Err(LoadError(
            "--duration-limit must be a positive number of seconds".into(),
        ));
    }
    if args.spawn.is_none() && (args.instances.is_some() || args.database.is_some() || args.redis.is_some()) {
        return Err(LoadError(
            "--instances, --database and --redis go with --spawn (servers given with --server bring their own)"
                .into(),
        ));
    }
    let fleet = match &args.spawn {
        Some(binary) => {
            let options = FleetOptions {
                instances: usize::from(args.instances.unwrap_or(1)),
                database: args.database.clone(),
                redis: args.redis.clone(),
            };
            Some(Fleet::start(binary, &options).await?)
        }
        None => None,
    };
    let measured = tokio::select! {
        measured = measure(&args, fleet.as_ref()) => measured,
        _ = tokio::signal::ctrl_c() => Err(LoadError("interrupted".into())),
    };
    let stopped = match fleet {
        Some(fleet) => fleet.stop().await,
        None => Ok(()),
    };
    match (measured, stopped) {
        (Ok(clean), Ok(())) => Ok(clean),
        (Err(error), Ok(())) | (Ok(_), Err(error)) => Err(error),
        (Err(error), Err(cleanup)) => Err(LoadError(format!("{error}; also: {cleanup}"))),
    }
}

async fn measure(args: &Args, fleet: Option<&Fleet>) -> Result<bool, LoadError> {
    let urls = match fleet {
        Some(fleet) => fleet.urls(),
        None => args.server.clone(),
    };
    if urls.is_empty() {
        return Err(LoadError("give --server URL or --spawn PATH".into()));
    }
    let mut targets = Vec::with_capacity(urls.len());
    for url in &urls {
        targets.push(Target::loopback(url).await?);
        println!("target {url}");
    }
    if let Some(fleet) = fleet {
        let mut shared = Vec::new();
        if let Some(schema) = fleet.schema() {
            shared.push(format!("PostgreSQL schema {schema}"));
        }
        if let Some(prefix) = fleet.redis_prefix() {
            shared.push(format!("Redis prefix {prefix}"));
        }
        if !shared.is_empty() {
            println!("shared: {}", shared.join(", "));
        }
    }
    let mut clean = true;
    for &scenario in &args.scenario {
        let plan = Plan {
            scenario,
            requests: args.requests.unwrap_or_else(|| scenario.default_requests()),
            concurrency: usize::from(args.concurrency),
            duration_limit: Duration::from_secs_f64(args.duration_limit),
            probe: args.probe,
            server_pids: fleet.map(Fleet::pids).unwrap_or_default(),
            database: fleet.map_or("unknown", Fleet::database).to_owned(),
        };
        let report = load::run(&targets, &plan).await?;
        println!("{}", report.human());
        println!("{}", report.machine());
        clean &= report.tally.error_count() == 0 && report.stopped_early.is_none();
    }
    Ok(clean)
}
