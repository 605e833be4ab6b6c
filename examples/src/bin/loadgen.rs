//! `loadgen`: a bounded load generator for the auth routes, loopback only.
//!
//! ```sh
//! cargo build --release -p holdfast-server-kit --bin holdfast-server -p holdfast-examples --bin loadgen
//! target/release/loadgen --spawn target/release/holdfast-server --scenario me --requests 100000
//! target/release/loadgen --server http://127.0.0.1:8080 --scenario refresh --concurrency 8
//! ```
//!
//! Prints one line per scenario for people and one `RESULT key=value …` line for scripts.
//! Exits with 1 when any request failed or a run stopped early, 2 when it could not run.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use holdfast_examples::load::{self, LoadError, Plan, Scenario, SpawnedServer, Target};

/// Load generator for the Holdfast auth routes. Loopback only: each of CONCURRENCY
/// keep-alive connections signs up its own user, then sends its scenario's requests back to
/// back until REQUESTS have been answered. Every status other than 200 counts as an error.
#[derive(Debug, Parser)]
#[command(name = "loadgen")]
struct Args {
    /// A running server, e.g. http://127.0.0.1:8080 (its sign-up rate limit must allow
    /// CONCURRENCY sign-ups, and refresh and sign-in limits the run).
    #[arg(
        long,
        value_name = "URL",
        required_unless_present = "spawn",
        conflicts_with = "spawn"
    )]
    server: Option<String>,

    /// Start this holdfast-server binary on a temporary database (rate limits and address
    /// blocking off), and stop it at the end.
    #[arg(long, value_name = "PATH")]
    spawn: Option<PathBuf>,

    /// Scenarios to run one after the other: me, refresh, signin (comma-separated).
    #[arg(long, value_name = "NAME", value_delimiter = ',', default_value = "me")]
    scenario: Vec<Scenario>,

    /// Requests per scenario (default: 50000 for me, 10000 for refresh, 200 for signin).
    #[arg(long, value_name = "N")]
    requests: Option<u64>,

    /// Parallel connections, each with its own user.
    #[arg(long, value_name = "C", default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..=4096))]
    concurrency: u16,

    /// Stop a scenario after this many seconds (setup not included) and report it.
    #[arg(long, value_name = "SECONDS", default_value_t = 120.0)]
    duration_limit: f64,

    /// Meanwhile, send GET /me every 10 ms on one more connection and report its latency
    /// (does the scenario slow other requests down?).
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

/// Runs every scenario; `Ok(false)` when one had errors or stopped early.
async fn run(args: Args) -> Result<bool, LoadError> {
    if !(args.duration_limit.is_finite() && args.duration_limit > 0.0) {
        return Err(LoadError(
            "--duration-limit must be a positive number of seconds".into(),
        ));
    }
    let spawned = match &args.spawn {
        Some(binary) => Some(SpawnedServer::start(binary)?),
        None => None,
    };
    let url = match (&spawned, &args.server) {
        (Some(server), _) => server.url().to_owned(),
        (None, Some(url)) => url.clone(),
        (None, None) => return Err(LoadError("give --server URL or --spawn PATH".into())),
    };
    let target = Target::loopback(&url).await?;
    println!("target {url}");
    let mut clean = true;
    for &scenario in &args.scenario {
        let plan = Plan {
            scenario,
            requests: args.requests.unwrap_or_else(|| scenario.default_requests()),
            concurrency: usize::from(args.concurrency),
            duration_limit: Duration::from_secs_f64(args.duration_limit),
            probe: args.probe,
            server_pid: spawned.as_ref().map(SpawnedServer::pid),
        };
        let report = load::run(&target, &plan).await?;
        println!("{}", report.human());
        println!("{}", report.machine());
        clean &= report.tally.error_count() == 0 && report.stopped_early.is_none();
    }
    Ok(clean)
}
