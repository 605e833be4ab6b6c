//! A bounded HTTP load generator for the auth routes, loopback only (used by
//! `src/bin/loadgen.rs`).
//!
//! Each worker owns one keep-alive HTTP/1.1 connection (hyper's connection API, no pool)
//! and one freshly signed-up user, and sends its scenario's requests back to back until the
//! shared request budget or the duration limit runs out. Every response is timed from the
//! request to its last body byte; every status other than 200 is counted as an error, by
//! status and `code`.
//!
//! A scenario is a [`Scenario`] (what to set up, what to send, what to learn from each
//! answer); adding one means adding a variant there and in `Session`.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{BufRead, BufReader, Read};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Why the load generator could not go on: a message for the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError(pub String);

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LoadError {}

/// The load generator's result type.
pub type Result<T> = std::result::Result<T, LoadError>;

fn fail(message: impl Into<String>) -> LoadError {
    LoadError(message.into())
}

/// What the workers do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// `GET /auth/me` with the worker's access token: signature check plus three reads.
    Me,
    /// `POST /auth/refresh`, each request with the refresh token of the previous answer, so
    /// every request is a real rotation (never a reuse, never the grace window).
    Refresh,
    /// `POST /auth/signin` with the worker's password: bound by password hashing.
    SignIn,
}

impl Scenario {
    /// The name used on the command line and in the output.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Me => "me",
            Scenario::Refresh => "refresh",
            Scenario::SignIn => "signin",
        }
    }

    /// Requests per run when `--requests` is not given.
    pub fn default_requests(self) -> u64 {
        match self {
            Scenario::Me => 50_000,
            Scenario::Refresh => 10_000,
            Scenario::SignIn => 200,
        }
    }
}

impl FromStr for Scenario {
    type Err = LoadError;

    fn from_str(text: &str) -> Result<Scenario> {
        match text {
            "me" => Ok(Scenario::Me),
            "refresh" => Ok(Scenario::Refresh),
            "signin" => Ok(Scenario::SignIn),
            other => Err(fail(format!(
                "unknown scenario `{other}`: expected me, refresh or signin"
            ))),
        }
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A server on this machine: where to connect and what to send as `Host`.
#[derive(Debug, Clone)]
pub struct Target {
    address: SocketAddr,
    host: HeaderValue,
    /// Base path plus the route prefix, e.g. `/auth`.
    prefix: String,
}

impl Target {
    /// Parses `http://HOST:PORT[/BASE]` and refuses every host that is not loopback
    /// (127.0.0.0/8, `::1`, `localhost` resolving only to those).
    pub async fn loopback(url: &str) -> Result<Target> {
        let uri: hyper::Uri = url
            .parse()
            .map_err(|e| fail(format!("`{url}` is not a URL: {e}")))?;
        if uri.scheme_str() != Some("http") {
            return Err(fail(format!(
                "`{url}`: only plain http:// on loopback is supported"
            )));
        }
        let authority = uri
            .authority()
            .ok_or_else(|| fail(format!("`{url}` has no host")))?;
        let host = authority.host().trim_start_matches('[').trim_end_matches(']');
        let port = authority.port_u16().unwrap_or(80);
        let refuse = || {
            fail(format!(
                "refusing `{url}`: the load generator only targets loopback (127.0.0.0/8, ::1, localhost)"
            ))
        };
        let address = if host.eq_ignore_ascii_case("localhost") {
            let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
                .await
                .map_err(|e| fail(format!("cannot resolve {host}: {e}")))?
                .collect();
            if resolved.is_empty() || !resolved.iter().all(|a| a.ip().is_loopback()) {
                return Err(refuse());
            }
            resolved[0]
        } else {
            let ip: IpAddr = host.parse().map_err(|_| refuse())?;
            if !ip.is_loopback() {
                return Err(refuse());
            }
            SocketAddr::new(ip, port)
        };
        let host = HeaderValue::from_str(authority.as_str()).map_err(|_| refuse())?;
        let prefix = format!("{}/auth", uri.path().trim_end_matches('/'));
        Ok(Target {
            address,
            host,
            prefix,
        })
    }
}

/// One keep-alive HTTP/1.1 connection.
struct Connection {
    sender: http1::SendRequest<Full<Bytes>>,
    driver: tokio::task::JoinHandle<()>,
}

impl Connection {
    async fn open(target: &Target) -> Result<Connection> {
        let stream = TcpStream::connect(target.address)
            .await
            .map_err(|e| fail(format!("cannot connect to {}: {e}", target.address)))?;
        stream
            .set_nodelay(true)
            .map_err(|e| fail(format!("cannot set TCP_NODELAY: {e}")))?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| fail(format!("HTTP handshake failed: {e}")))?;
        let driver = tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Connection { sender, driver })
    }

    /// Sends `request` and reads the whole answer: status and body.
    async fn send(&mut self, request: Request<Full<Bytes>>) -> Result<(u16, Bytes)> {
        self.sender
            .ready()
            .await
            .map_err(|e| fail(format!("connection lost: {e}")))?;
        let response = self
            .sender
            .send_request(request)
            .await
            .map_err(|e| fail(format!("request failed: {e}")))?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| fail(format!("body failed: {e}")))?;
        Ok((status, body.to_bytes()))
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

fn request(
    target: &Target,
    method: Method,
    path: &str,
    bearer: Option<&HeaderValue>,
    body: Option<Bytes>,
) -> Result<Request<Full<Bytes>>> {
    let mut builder = Request::builder()
        .method(method)
        .uri(format!("{}{path}", target.prefix))
        .header(HOST, &target.host);
    if let Some(bearer) = bearer {
        builder = builder.header(AUTHORIZATION, bearer);
    }
    let body = match body {
        Some(body) => {
            builder = builder.header(CONTENT_TYPE, "application/json");
            body
        }
        None => Bytes::new(),
    };
    builder
        .body(Full::new(body))
        .map_err(|e| fail(format!("cannot build a request: {e}")))
}

fn json_body(value: &Value) -> Bytes {
    Bytes::from(value.to_string())
}

/// `"STATUS CODE"` of a refusal, e.g. `401 TOKEN_INVALID`.
fn refusal(status: u16, body: &[u8]) -> String {
    let code = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("code").and_then(Value::as_str).map(str::to_owned));
    match code {
        Some(code) => format!("{status} {code}"),
        None => status.to_string(),
    }
}

fn member(body: &[u8], pointer: &str) -> Result<String> {
    let value: Value = serde_json::from_slice(body).map_err(|e| fail(format!("answer is not JSON: {e}")))?;
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| fail(format!("answer has no string at {pointer}")))
}

/// One worker's state in its scenario: what it sends next, what it learns from an answer.
enum Session {
    Me { bearer: HeaderValue },
    Refresh { refresh_token: String },
    SignIn { body: Bytes },
}

impl Session {
    /// Signs up a fresh user on `connection` and prepares `scenario` for it.
    async fn start(
        scenario: Scenario,
        target: &Target,
        connection: &mut Connection,
        email: &str,
    ) -> Result<Session> {
        const PASSWORD: &str = "load-test-password";
        let signup = json_body(&json!({ "email": email, "password": PASSWORD }));
        let (status, body) = connection
            .send(request(target, Method::POST, "/signup", None, Some(signup))?)
            .await?;
        if status != 201 {
            return Err(fail(format!(
                "sign-up of {email} answered {} (is the server's sign-up rate limit off?)",
                refusal(status, &body)
            )));
        }
        Ok(match scenario {
            Scenario::Me => {
                let token = member(&body, "/data/tokens/accessToken")?;
                let bearer = HeaderValue::from_str(&format!("Bearer {token}"))
                    .map_err(|_| fail("the access token is not a valid header value"))?;
                Session::Me { bearer }
            }
            Scenario::Refresh => Session::Refresh {
                refresh_token: member(&body, "/data/tokens/refreshToken")?,
            },
            Scenario::SignIn => Session::SignIn {
                body: json_body(&json!({ "email": email, "password": PASSWORD })),
            },
        })
    }

    fn request(&self, target: &Target) -> Result<Request<Full<Bytes>>> {
        match self {
            Session::Me { bearer } => request(target, Method::GET, "/me", Some(bearer), None),
            Session::Refresh { refresh_token } => {
                let body = json_body(&json!({ "refreshToken": refresh_token }));
                request(target, Method::POST, "/refresh", None, Some(body))
            }
            Session::SignIn { body } => request(target, Method::POST, "/signin", None, Some(body.clone())),
        }
    }

    /// Takes what a 200 answer carries forward (the next refresh token).
    fn advance(&mut self, body: &[u8]) -> Result<()> {
        if let Session::Refresh { refresh_token } = self {
            *refresh_token = member(body, "/data/refreshToken")?;
        }
        Ok(())
    }

    /// Whether a refused request leaves nothing to send next (a broken refresh chain).
    fn broken_by_refusal(&self) -> bool {
        matches!(self, Session::Refresh { .. })
    }
}

/// One run: a scenario, a request budget, parallel connections and a time bound.
#[derive(Debug, Clone)]
pub struct Plan {
    /// What to send.
    pub scenario: Scenario,
    /// Requests in all (the run stops sooner only at the duration limit or if every worker
    /// had to stop).
    pub requests: u64,
    /// Connections, each with its own user, sending back to back.
    pub concurrency: usize,
    /// The run stops when this has passed (setup not included) and says so.
    pub duration_limit: Duration,
    /// Also run one extra connection sending `GET /me` every 10 ms and report its latency
    /// separately: whether the scenario slows other requests down.
    pub probe: bool,
    /// The server's process id, to report its CPU time (Linux `/proc`).
    pub server_pid: Option<u32>,
}

/// Latencies and errors of a set of requests.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    /// Duration of each answered request, microseconds (sorted by [`Tally::finish`]).
    pub latencies_us: Vec<u32>,
    /// Errors by kind (`401 TOKEN_INVALID`, `transport`, `unanswered at the duration limit`, …).
    pub errors: BTreeMap<String, u64>,
}

impl Tally {
    fn error(&mut self, kind: String) {
        *self.errors.entry(kind).or_default() += 1;
    }

    fn merge(&mut self, other: Tally) {
        self.latencies_us.extend(other.latencies_us);
        for (kind, n) in other.errors {
            *self.errors.entry(kind).or_default() += n;
        }
    }

    fn finish(&mut self) {
        self.latencies_us.sort_unstable();
    }

    /// Number of errors of every kind.
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// The nearest-rank percentile `p` (0 to 100) of the sorted latencies, microseconds.
    pub fn percentile_us(&self, p: f64) -> u32 {
        let n = self.latencies_us.len();
        if n == 0 {
            return 0;
        }
        let rank = ((p / 100.0) * n as f64).ceil() as usize;
        self.latencies_us[rank.clamp(1, n) - 1]
    }
}

/// What a run measured.
#[derive(Debug, Clone)]
pub struct Report {
    /// The plan it ran.
    pub plan: Plan,
    /// Answered requests and errors.
    pub tally: Tally,
    /// From the first request to the last answer.
    pub elapsed: Duration,
    /// Why the run ended before its budget, if it did.
    pub stopped_early: Option<String>,
    /// The probe's `GET /me` requests, when asked for.
    pub probe: Option<Tally>,
    /// CPU time used during the run (Linux only).
    pub cpu: Option<CpuSplit>,
}

/// CPU seconds (user + system) spent during a run, from Linux `/proc`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CpuSplit {
    /// The server's, when its process id is known (`--spawn`).
    pub server: Option<f64>,
    /// This process's: what the load generator took from the shared cores.
    pub loadgen: f64,
}

impl Report {
    /// Answered requests per second.
    pub fn throughput(&self) -> f64 {
        self.tally.latencies_us.len() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// A line for people.
    pub fn human(&self) -> String {
        let t = &self.tally;
        let ms = |us: u32| f64::from(us) / 1000.0;
        let mut line = format!(
            "{}: {} requests, {} errors, {:.2} s, {:.0} req/s, latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms (concurrency {})",
            self.plan.scenario,
            t.latencies_us.len(),
            t.error_count(),
            self.elapsed.as_secs_f64(),
            self.throughput(),
            ms(t.percentile_us(50.0)),
            ms(t.percentile_us(99.0)),
            ms(t.percentile_us(100.0)),
            self.plan.concurrency,
        );
        if let Some(cpu) = self.cpu {
            let cores = |s: f64| s / self.elapsed.as_secs_f64().max(1e-9);
            if let Some(server) = cpu.server {
                line += &format!("; CPU: server {:.2} cores,", cores(server));
            } else {
                line += "; CPU:";
            }
            line += &format!(" loadgen {:.2} cores", cores(cpu.loadgen));
        }
        for (kind, n) in &t.errors {
            line += &format!("\n  error {kind}: {n}");
        }
        if let Some(reason) = &self.stopped_early {
            line += &format!("\n  stopped early: {reason}");
        }
        if let Some(probe) = &self.probe {
            line += &format!(
                "\n  probe GET /me every 10 ms meanwhile: {} requests, {} errors, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
                probe.latencies_us.len(),
                probe.error_count(),
                ms(probe.percentile_us(50.0)),
                ms(probe.percentile_us(99.0)),
                ms(probe.percentile_us(100.0)),
            );
        }
        line
    }

    /// Machine-readable `RESULT key=value …` line(s), one per scenario (and one for the probe).
    pub fn machine(&self) -> String {
        let t = &self.tally;
        let cpu = match self.cpu {
            Some(cpu) => format!(
                " server_cpu_s={} loadgen_cpu_s={:.3}",
                cpu.server
                    .map_or_else(|| "unknown".to_owned(), |s| format!("{s:.3}")),
                cpu.loadgen
            ),
            None => String::new(),
        };
        let mut line = format!(
            "RESULT scenario={} concurrency={} requests={} errors={} elapsed_s={:.3} rps={:.0} p50_us={} p99_us={} max_us={}{cpu} stopped_early={}",
            self.plan.scenario,
            self.plan.concurrency,
            t.latencies_us.len(),
            t.error_count(),
            self.elapsed.as_secs_f64(),
            self.throughput(),
            t.percentile_us(50.0),
            t.percentile_us(99.0),
            t.percentile_us(100.0),
            self.stopped_early.is_some(),
        );
        if let Some(probe) = &self.probe {
            line += &format!(
                "\nRESULT scenario={}+probe-me requests={} errors={} p50_us={} p99_us={} max_us={}",
                self.plan.scenario,
                probe.latencies_us.len(),
                probe.error_count(),
                probe.percentile_us(50.0),
                probe.percentile_us(99.0),
                probe.percentile_us(100.0),
            );
        }
        line
    }
}

/// What all workers share: the request budget and the stop signal.
struct Budget {
    total: u64,
    claimed: AtomicU64,
    deadline: Instant,
    stop: AtomicBool,
}

impl Budget {
    /// Claims one request, unless the budget, the deadline or a stop says no.
    fn claim(&self) -> bool {
        if self.stop.load(Ordering::Relaxed) {
            return false;
        }
        if Instant::now() >= self.deadline {
            self.stop.store(true, Ordering::Relaxed);
            return false;
        }
        self.claimed.fetch_add(1, Ordering::Relaxed) < self.total
    }
}

/// Runs `plan` against `target`: sets up one user and connection per worker, then measures.
pub async fn run(target: &Target, plan: &Plan) -> Result<Report> {
    let run_id = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let setups = (0..plan.concurrency + usize::from(plan.probe)).map(|n| {
        let target = target.clone();
        let scenario = if n < plan.concurrency {
            plan.scenario
        } else {
            Scenario::Me
        };
        tokio::spawn(async move {
            let mut connection = Connection::open(&target).await?;
            let email = format!("load-{run_id}-{}-{n}@example.com", scenario.name());
            let session = Session::start(scenario, &target, &mut connection, &email).await?;
            Ok::<_, LoadError>((connection, session))
        })
    });
    let mut workers = Vec::with_capacity(plan.concurrency);
    for setup in setups.collect::<Vec<_>>() {
        workers.push(
            setup
                .await
                .map_err(|e| fail(format!("setup task failed: {e}")))??,
        );
    }
    let probe_setup = if plan.probe { workers.pop() } else { None };

    let budget = Arc::new(Budget {
        total: plan.requests,
        claimed: AtomicU64::new(0),
        deadline: Instant::now() + plan.duration_limit,
        stop: AtomicBool::new(false),
    });
    let finished = Arc::new(AtomicBool::new(false));
    let cpu_before = cpu_seconds(plan.server_pid);
    let started = Instant::now();
    let probe = probe_setup.map(|(connection, session)| {
        tokio::spawn(probe_loop(
            target.clone(),
            connection,
            session,
            Arc::clone(&finished),
            budget.deadline,
        ))
    });
    let tasks: Vec<_> = workers
        .into_iter()
        .map(|(connection, session)| {
            tokio::spawn(worker(target.clone(), connection, session, Arc::clone(&budget)))
        })
        .collect();
    let mut tally = Tally::default();
    let mut notes = Vec::new();
    for task in tasks {
        let (worker_tally, note) = task.await.map_err(|e| fail(format!("worker task failed: {e}")))?;
        tally.merge(worker_tally);
        notes.extend(note);
    }
    let elapsed = started.elapsed();
    let cpu_after = cpu_seconds(plan.server_pid);
    finished.store(true, Ordering::Relaxed);
    let probe = match probe {
        Some(task) => Some(task.await.map_err(|e| fail(format!("probe task failed: {e}")))?),
        None => None,
    };
    tally.finish();

    let answered = tally.latencies_us.len() as u64;
    let stopped_early = if budget.stop.load(Ordering::Relaxed) && answered < plan.requests {
        Some(format!(
            "duration limit of {} s reached after {answered} answers",
            plan.duration_limit.as_secs_f64()
        ))
    } else if answered < plan.requests {
        Some(format!(
            "{} worker(s) stopped: {}",
            notes.len(),
            notes.first().map_or("", String::as_str)
        ))
    } else {
        None
    };
    let cpu = match (cpu_before, cpu_after) {
        (Some(before), Some(after)) => Some(CpuSplit {
            server: after.server.zip(before.server).map(|(a, b)| a - b),
            loadgen: after.loadgen - before.loadgen,
        }),
        _ => None,
    };
    Ok(Report {
        plan: plan.clone(),
        tally,
        elapsed,
        stopped_early,
        probe: probe.map(|mut p| {
            p.finish();
            p
        }),
        cpu,
    })
}

/// Sends requests back to back while the budget allows; returns what it measured and, if it
/// had to stop on its own, why.
async fn worker(
    target: Target,
    mut connection: Connection,
    mut session: Session,
    budget: Arc<Budget>,
) -> (Tally, Option<String>) {
    let mut tally = Tally::default();
    while budget.claim() {
        let request = match session.request(&target) {
            Ok(request) => request,
            Err(error) => return (tally, Some(error.0)),
        };
        let sent = Instant::now();
        let answer = tokio::time::timeout_at(budget.deadline, connection.send(request)).await;
        let took = sent.elapsed();
        match answer {
            Err(_) => {
                tally.error("unanswered at the duration limit".into());
                budget.stop.store(true, Ordering::Relaxed);
                break;
            }
            Ok(Err(error)) => {
                tally.error("transport".into());
                if session.broken_by_refusal() {
                    return (tally, Some(format!("refresh chain lost: {error}")));
                }
                match Connection::open(&target).await {
                    Ok(fresh) => connection = fresh,
                    Err(error) => return (tally, Some(error.0)),
                }
            }
            Ok(Ok((status, body))) => {
                tally
                    .latencies_us
                    .push(u32::try_from(took.as_micros()).unwrap_or(u32::MAX));
                if status == 200 {
                    if let Err(error) = session.advance(&body) {
                        tally.error("bad answer".into());
                        return (tally, Some(error.0));
                    }
                } else {
                    let kind = refusal(status, &body);
                    tally.error(kind.clone());
                    if session.broken_by_refusal() {
                        return (tally, Some(format!("refresh chain broken by {kind}")));
                    }
                }
            }
        }
    }
    (tally, None)
}

/// `GET /me` every 10 ms until `finished` (or `deadline`).
async fn probe_loop(
    target: Target,
    mut connection: Connection,
    session: Session,
    finished: Arc<AtomicBool>,
    deadline: Instant,
) -> Tally {
    let mut tally = Tally::default();
    let mut ticks = tokio::time::interval(Duration::from_millis(10));
    while !finished.load(Ordering::Relaxed) {
        ticks.tick().await;
        let Ok(request) = session.request(&target) else {
            break;
        };
        let sent = Instant::now();
        match tokio::time::timeout_at(deadline, connection.send(request)).await {
            Err(_) => {
                tally.error("unanswered at the duration limit".into());
                break;
            }
            Ok(Ok((status, body))) => {
                tally
                    .latencies_us
                    .push(u32::try_from(sent.elapsed().as_micros()).unwrap_or(u32::MAX));
                if status != 200 {
                    tally.error(refusal(status, &body));
                }
            }
            Ok(Err(_)) => {
                tally.error("transport".into());
                break;
            }
        }
    }
    tally
}

/// CPU seconds used so far by the server (if known) and by this process, from Linux
/// `/proc/PID/stat` in clock ticks of 1/100 s (USER_HZ, fixed at 100 by the kernel ABI).
fn cpu_seconds(server: Option<u32>) -> Option<CpuSplit> {
    let read = |pid: &str| -> Option<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // Fields after the `(comm)`, which may contain spaces: state is field 3, utime 14, stime 15.
        let rest = stat.get(stat.rfind(')')? + 1..)?;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
        Some(ticks as f64 / 100.0)
    };
    let loadgen = read("self")?;
    Some(CpuSplit {
        server: server.and_then(|pid| read(&pid.to_string())),
        loadgen,
    })
}

/// `holdfast-server` started by the load generator on a temporary database, with rate limits
/// and address blocking off; killed (and its database deleted) when dropped.
pub struct SpawnedServer {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl SpawnedServer {
    /// Starts `binary` on `127.0.0.1:0` and reads the address from its first stdout line.
    pub fn start(binary: &Path) -> Result<SpawnedServer> {
        let dir = tempfile::tempdir().map_err(|e| fail(format!("cannot create a temporary folder: {e}")))?;
        let log_path = dir.path().join("server.log");
        let log = std::fs::File::create(&log_path)
            .map_err(|e| fail(format!("cannot create the server log: {e}")))?;
        let mut child = Command::new(binary)
            .args([
                "--listen",
                "127.0.0.1:0",
                "--rate-limit",
                "off",
                "--ip-block",
                "off",
                "--database",
            ])
            .arg(format!("sqlite:{}", dir.path().join("db").display()))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .map_err(|e| fail(format!("cannot start {}: {e}", binary.display())))?;
        let line = child
            .stdout
            .take()
            .and_then(|stdout| first_line(stdout, Duration::from_secs(30)));
        let url = line
            .as_deref()
            .and_then(|l| l.trim_end().strip_prefix("listening on "))
            .map(str::to_owned);
        match url {
            Some(url) => Ok(SpawnedServer {
                child,
                url,
                _dir: dir,
            }),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                Err(fail(format!(
                    "{} did not print `listening on http://ADDR` (first line: {line:?}); its log:\n{log}",
                    binary.display()
                )))
            }
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for SpawnedServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The first line of `stdout`, within `limit`; the rest is drained on a thread so that the
/// server never writes into a closed pipe.
fn first_line(stdout: impl Read + Send + 'static, limit: Duration) -> Option<String> {
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        let read = reader.read_line(&mut line).ok().filter(|&n| n > 0).map(|_| line);
        let _ = sender.send(read);
        let _ = std::io::copy(&mut reader, &mut std::io::sink());
    });
    receiver.recv_timeout(limit).ok().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn refuses_hosts_that_are_not_loopback() {
        for url in [
            "http://10.0.0.1:8080",
            "http://example.com",
            "https://127.0.0.1:8080",
            "http://[2001:db8::1]:80",
        ] {
            assert!(Target::loopback(url).await.is_err(), "{url}");
        }
        for url in [
            "http://127.0.0.1:8080",
            "http://127.1.2.3:9",
            "http://[::1]:8080/base",
        ] {
            assert!(Target::loopback(url).await.is_ok(), "{url}");
        }
        let target = Target::loopback("http://[::1]:8080/base/").await.unwrap();
        assert_eq!(target.prefix, "/base/auth");
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut tally = Tally {
            latencies_us: (1..=100).rev().collect(),
            ..Tally::default()
        };
        tally.finish();
        assert_eq!(tally.percentile_us(50.0), 50);
        assert_eq!(tally.percentile_us(99.0), 99);
        assert_eq!(tally.percentile_us(100.0), 100);
        assert_eq!(Tally::default().percentile_us(50.0), 0);
    }

    #[tokio::test]
    async fn runs_each_scenario_against_a_local_server() {
        let server = crate::local_server::LocalServer::start(|config| {
            config.rate_limits = holdfast_server_kit::config::RateLimits::OFF;
            config.argon2 = holdfast_server_kit::passwords::Argon2Params {
                memory_kib: 64,
                iterations: 1,
                parallelism: 1,
            };
        })
        .await
        .unwrap();
        let target = Target::loopback(&server.base_url()).await.unwrap();
        for scenario in [Scenario::Me, Scenario::Refresh, Scenario::SignIn] {
            let plan = Plan {
                scenario,
                requests: 40,
                concurrency: 4,
                duration_limit: Duration::from_secs(30),
                probe: scenario == Scenario::SignIn,
                server_pid: None,
            };
            let report = run(&target, &plan).await.unwrap();
            assert_eq!(report.tally.latencies_us.len(), 40, "{}", report.human());
            assert_eq!(report.tally.error_count(), 0, "{}", report.human());
            assert!(report.stopped_early.is_none());
            assert!(
                report
                    .machine()
                    .starts_with(&format!("RESULT scenario={scenario} "))
            );
        }
        server.stop().await;
    }
}
