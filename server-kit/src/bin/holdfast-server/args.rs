//! The command line.

use std::net::{IpAddr, SocketAddr};

use clap::Parser;
use holdfast_server_kit::config::AccountLockout;
use holdfast_server_kit::store::RateLimit;

use crate::mail_args::MailArgs;

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
/// Operators manage accounts with `holdfast-server --database … users list|find|disable|
/// enable|sign-out` (JSON lines on stdout).
///
/// The first line on stdout is exactly `listening on http://ADDR`; logs go to stderr
/// (filtered by RUST_LOG). SIGINT or SIGTERM stops it gracefully (open sync connections are
/// closed with 1001, going away).
#[derive(Debug, Parser)]
#[command(name = "holdfast-server", version, about, long_about)]
pub(crate) struct Args {
    /// Address to listen on (port 0 picks a free port; the first stdout line says which).
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    pub(crate) listen: SocketAddr,

    /// Database: `sqlite:PATH` (created if missing), or a PostgreSQL URL
    /// `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE` (also `postgresql://`), which several
    /// instances can share; its tables are created or migrated at start. TLS:
    /// `?sslmode=require` (or `verify-ca`, `verify-full`: all three verify the certificate
    /// and host name) with `&sslrootcert=PATH` for a PEM file of the CA certificates to
    /// trust (default: the system's); without `sslmode`, or with `sslmode=disable`, no TLS;
    /// `prefer` and `allow` are refused.
    #[arg(long, default_value = "sqlite:./holdfast.db", value_name = "URL")]
    pub(crate) database: String,

    /// PostgreSQL only: the schema to keep the tables in (created if missing; lower-case
    /// letters, digits and underscores). Default: `holdfast`, apart from an application's
    /// own tables; a database whose search path already holds them keeps them there.
    #[arg(long, value_name = "NAME")]
    pub(crate) database_schema: Option<String>,

    /// Redis shared by several instances: `redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]`.
    /// Rate limits and device-proof replays are kept there, and revocations are relayed
    /// through it (pub/sub) so that every instance cuts off open sync connections at once.
    /// Without it, rate limits and replays are per instance and other instances see a
    /// revocation within their periodic re-check (15 s): fine for a single instance.
    #[arg(long, value_name = "URL")]
    pub(crate) redis: Option<String>,

    /// Prefix of every Redis key and of the revocation channel (`PREFIX:revocations`):
    /// instances that work together share it; deployments sharing a Redis use different ones.
    #[arg(long, default_value = "holdfast", value_name = "PREFIX")]
    pub(crate) redis_prefix: String,

    /// Access token lifetime in seconds.
    #[arg(long, default_value_t = 900, value_name = "SECONDS")]
    pub(crate) access_ttl: i64,

    /// Refresh token lifetime in seconds (default 90 days).
    #[arg(long, default_value_t = 90 * 24 * 3600, value_name = "SECONDS")]
    pub(crate) refresh_ttl: i64,

    /// Device credential lifetime in seconds (default 90 days).
    #[arg(long, default_value_t = 90 * 24 * 3600, value_name = "SECONDS")]
    pub(crate) device_credential_ttl: i64,

    /// Refresh grace window in seconds (0 to 60): a refresh token presented again this soon
    /// after its rotation gets the same new pair instead of counting as reuse.
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    pub(crate) grace_window: i64,

    /// A session not refreshed for this many seconds ends (its refresh answers
    /// SESSION_EXPIRED); 0: no idle timeout.
    #[arg(long, default_value_t = 0, value_name = "SECONDS", value_parser = clap::value_parser!(i64).range(0..=MAX_SESSION_SECS))]
    pub(crate) session_idle_timeout: i64,

    /// A session ends this many seconds after its sign-in, however often it is refreshed;
    /// 0: no absolute lifetime.
    #[arg(long, default_value_t = 0, value_name = "SECONDS", value_parser = clap::value_parser!(i64).range(0..=MAX_SESSION_SECS))]
    pub(crate) session_lifetime: i64,

    /// Live sessions one user may have; a sign-in beyond it ends the least recently used.
    /// 0: no maximum.
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub(crate) max_sessions_per_user: u32,

    /// Rate limit on sign-in, sign-up, refresh, challenge and verify: `off`, or MAX/SECONDS
    /// for the same sliding window on each. Default: 10/60 on sign-in and sign-up, 120/60 on
    /// refresh, 30/60 on challenge and verify.
    #[arg(long, value_name = "off|MAX/SECONDS", value_parser = parse_rate_limit)]
    pub(crate) rate_limit: Option<RateLimitArg>,

    /// Temporary blocking of a client address after repeated failures: `off`, or
    /// FAILURES/SECONDS (the block lasts SECONDS too). Default 50/900.
    #[arg(long, value_name = "off|FAILURES/SECONDS", value_parser = parse_rate_limit)]
    pub(crate) ip_block: Option<RateLimitArg>,

    /// Failed sign-ins counted per account: `off`, or PER_ADDRESS/PER_ACCOUNT/SECONDS. An
    /// address with PER_ADDRESS failures for an account within SECONDS is refused for it;
    /// once the account has PER_ACCOUNT failures from all addresses, only addresses with no
    /// failure for it, or a device proving its registered key, may try. Default 5/20/900.
    #[arg(long, value_name = "off|PER_ADDRESS/PER_ACCOUNT/SECONDS", value_parser = parse_account_lockout)]
    pub(crate) account_lockout: Option<LockoutArg>,

    /// A reverse proxy whose X-Forwarded-For is believed (repeatable). Without one, the
    /// socket address is the client address.
    #[arg(long = "trusted-proxy", value_name = "IP")]
    pub(crate) trusted_proxies: Vec<IpAddr>,

    /// The URL clients use to reach the server, e.g. `https://api.example.com`, when a TLS
    /// terminator or proxy sits in front: device proofs (DPoP) name it. Default: http://
    /// and the request's Host header.
    #[arg(long = "public-url", value_name = "URL")]
    pub(crate) public_url: Option<String>,

    /// Sync connections whose token is not bound to a device key and that bring no device
    /// proof: `admit-unbound` lets them in (Kora web clients, keyless devices), `reject`
    /// refuses them. A token bound to a key always needs its proof.
    #[arg(long, value_enum, default_value_t = SyncProofless::AdmitUnbound, value_name = "POLICY")]
    pub(crate) sync_proofless: SyncProofless,

    /// Route prefix.
    #[arg(long, default_value = "/auth", value_name = "PATH")]
    pub(crate) prefix: String,

    /// Largest accepted request body in bytes.
    #[arg(long, default_value_t = 64 * 1024, value_name = "BYTES")]
    pub(crate) max_body_bytes: usize,

    /// Minimum password length for new passwords (8 to 128).
    #[arg(long, default_value_t = 8, value_name = "N")]
    pub(crate) password_min_length: usize,

    /// Character classes new passwords must contain, comma-separated: lower, upper, digit,
    /// symbol.
    #[arg(long, value_name = "CLASSES", value_delimiter = ',')]
    pub(crate) password_require: Vec<PasswordClass>,

    /// Password hashes running at once (default: half the cores, at least 1); more wait.
    #[arg(long, value_name = "N")]
    pub(crate) hashing_concurrency: Option<usize>,

    /// How long a sign-in or sign-up may wait for a free hashing slot, in milliseconds,
    /// before it is refused with 503 SERVICE_UNAVAILABLE and Retry-After (0: wait as long
    /// as it takes).
    #[arg(long, default_value_t = 3000, value_name = "MS")]
    pub(crate) hashing_max_wait: u64,

    /// Seconds a new connection may stay silent before its first byte; then it is closed.
    #[arg(long, default_value_t = 10, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub(crate) first_byte_timeout: u64,

    /// Seconds a client may take to send a request's headers, which is also how long a
    /// kept-alive connection may stay idle between requests.
    #[arg(long, default_value_t = 30, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub(crate) header_read_timeout: u64,

    /// Connections open at once; more are answered 503 SERVICE_UNAVAILABLE (Retry-After)
    /// and closed. Keep it below the process's file descriptor limit.
    #[arg(long, default_value_t = 8192, value_name = "N", value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub(crate) max_connections: usize,

    /// Connections open at once from one client address (an IPv6 client counts as its
    /// /64; the trusted proxies are exempt); more are answered 429 RATE_LIMITED and closed.
    #[arg(long, default_value_t = 256, value_name = "N", value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub(crate) max_connections_per_address: usize,

    /// Most sync items (keys) one user may keep; a put of a new key past it gets
    /// QUOTA_EXCEEDED.
    #[arg(long, default_value_t = 10_000, value_name = "N")]
    pub(crate) sync_max_items: u64,

    /// Most bytes of sync items (keys plus values as JSON) one user may keep; a put that
    /// would go past it gets QUOTA_EXCEEDED (writes that shrink are always taken).
    #[arg(long, default_value_t = 64 * 1024 * 1024, value_name = "BYTES")]
    pub(crate) sync_max_bytes: u64,

    /// Sync connections one user may have open on this instance; one more is refused with
    /// 429 QUOTA_EXCEEDED.
    #[arg(long, default_value_t = 16, value_name = "N", value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub(crate) sync_max_connections_per_user: usize,

    /// How long one sync message may wait for a client to read it; a client that stops
    /// reading is dropped after this.
    #[arg(long, default_value_t = 30, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub(crate) sync_send_timeout: u64,

    /// After SIGINT or SIGTERM, how long requests in flight may take to finish before the
    /// server stops anyway (a second signal stops it at once). It then exits with status 0.
    #[arg(long, default_value_t = 10, value_name = "SECONDS")]
    pub(crate) shutdown_timeout: u64,

    #[command(flatten)]
    pub(crate) mail: MailArgs,

    /// The name authenticator apps show beside the account (no ':'); default: --app-name,
    /// else `Holdfast`. The key TOTP secrets are sealed under comes from HOLDFAST_MFA_KEY
    /// (comma-separated, current first, each at least 32 characters), else from the token
    /// secrets.
    #[arg(long, env = "HOLDFAST_MFA_ISSUER", value_name = "NAME")]
    pub(crate) mfa_issuer: Option<String>,

    /// With MFA on, how recent (seconds) a password or code check must be for changing the
    /// password, turning MFA off, new recovery codes, deleting the account and ending other
    /// sessions.
    #[arg(long, default_value_t = 600, value_name = "SECONDS", value_parser = clap::value_parser!(i64).range(1..=86_400))]
    pub(crate) step_up_window: i64,

    /// An operator command instead of serving (see `holdfast-server users --help`).
    #[command(subcommand)]
    pub(crate) command: Option<Command>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum PasswordClass {
    Lower,
    Upper,
    Digit,
    Symbol,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum SyncProofless {
    Reject,
    AdmitUnbound,
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum RateLimitArg {
    Off,
    Limit(RateLimit),
}

/// Longest session idle timeout or lifetime accepted from a flag (ten years).
pub(crate) const MAX_SESSION_SECS: i64 = 10 * 365 * 86_400;

/// Longest rate-limit, block or lockout window accepted from a flag (one year).
pub(crate) const MAX_WINDOW_SECS: i64 = 365 * 86_400;

pub(crate) fn parse_rate_limit(text: &str) -> Result<RateLimitArg, String> {
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
pub(crate) struct LockoutArg(pub(crate) Option<AccountLockout>);

pub(crate) fn parse_account_lockout(text: &str) -> Result<LockoutArg, String> {
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

/// Operator commands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Accounts: list, find, disable, enable, sign out everywhere. Give the same
    /// --database (and --redis, --redis-prefix) as the servers.
    #[command(subcommand)]
    Users(UsersCommand),
}

/// What to do to accounts.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum UsersCommand {
    /// Lists accounts in email order, one JSON object per line.
    List {
        /// Only emails containing this text.
        #[arg(long, value_name = "TEXT")]
        contains: Option<String>,
        /// Only emails after this one (the last of the previous page).
        #[arg(long, value_name = "EMAIL")]
        after: Option<String>,
        /// At most this many (at most 1000).
        #[arg(long, default_value_t = 100, value_name = "N")]
        limit: u32,
    },
    /// Shows one account, by id or email; fails when there is none.
    Find {
        /// The account's id or email.
        user: String,
    },
    /// Disables an account: every session ends now, and sign-in, refresh and every
    /// route refuse it (403 ACCOUNT_DISABLED) until it is enabled.
    Disable {
        /// The account's id or email.
        user: String,
    },
    /// Enables a disabled account (its user signs in again).
    Enable {
        /// The account's id or email.
        user: String,
    },
    /// Ends every session of an account (its devices stay registered).
    SignOut {
        /// The account's id or email.
        user: String,
    },
    /// Turns an account's second factor off (a user who lost both the authenticator and
    /// the recovery codes, after the operator checked who they are); they sign in with
    /// the password alone and may enrol again.
    ResetMfa {
        /// The account's id or email.
        user: String,
    },
}
