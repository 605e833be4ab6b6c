//! What a deployment chooses: secrets, lifetimes, limits and policies.

use std::net::IpAddr;
use std::sync::Arc;

use crate::clock::{Clock, SystemClock};
use crate::passwords::Argon2Params;
use crate::store::{RateLimit, SessionLimits};

/// A configuration that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// No signing secret was given.
    #[error("at least one token secret is required")]
    NoSecret,
    /// A secret is shorter than 32 characters.
    #[error("token secret number {0} is shorter than 32 characters")]
    SecretTooShort(usize),
    /// Another setting is out of range.
    #[error("invalid setting: {0}")]
    Invalid(String),
}

/// The rate limit of each guarded route; `None` turns that limit off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// Sign-in, per client address (every attempt, malformed ones included; failures are
    /// also counted per account, see [`AccountLockout`]).
    pub sign_in: Option<RateLimit>,
    /// Sign-up, per client address.
    pub sign_up: Option<RateLimit>,
    /// Refresh, per client address.
    pub refresh: Option<RateLimit>,
    /// Challenge, per client address; per device and address for anonymous challenges
    /// (with a ceiling of ten times this per device), and per device and user for
    /// challenges with a bearer token, so strangers cannot use up a device's own budget.
    pub challenge: Option<RateLimit>,
    /// Verify, per client address (a verify needs a challenge, limited per device).
    pub verify: Option<RateLimit>,
    /// Account recovery, per client address and route: password reset requests, password
    /// resets and email confirmations (tokens are also limited per account, see
    /// [`AccountTokenPolicy`]).
    pub account_recovery: Option<RateLimit>,
}

impl RateLimits {
    /// Every limit off.
    pub const OFF: RateLimits = RateLimits {
        sign_in: None,
        sign_up: None,
        refresh: None,
        challenge: None,
        verify: None,
        account_recovery: None,
    };

    /// The same limit on every guarded route.
    pub fn uniform(limit: RateLimit) -> RateLimits {
        RateLimits {
            sign_in: Some(limit),
            sign_up: Some(limit),
            refresh: Some(limit),
            challenge: Some(limit),
            verify: Some(limit),
            account_recovery: Some(limit),
        }
    }
}

impl Default for RateLimits {
    /// Kora's 10 per minute on sign-in and sign-up; refreshes and device re-login are
    /// legitimately more frequent behind a shared address, so they get more room.
    fn default() -> Self {
        let minute = 60_000;
        RateLimits {
            sign_in: Some(RateLimit {
                max: 10,
                window_ms: minute,
            }),
            sign_up: Some(RateLimit {
                max: 10,
                window_ms: minute,
            }),
            refresh: Some(RateLimit {
                max: 120,
                window_ms: minute,
            }),
            challenge: Some(RateLimit {
                max: 30,
                window_ms: minute,
            }),
            verify: Some(RateLimit {
                max: 30,
                window_ms: minute,
            }),
            account_recovery: Some(RateLimit {
                max: 10,
                window_ms: minute,
            }),
        }
    }
}

/// Lifetimes and limits of password-reset and email-verification tokens (PROTOCOL 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountTokenPolicy {
    /// How long a reset token works, ms (default 1 h).
    pub reset_ttl_ms: i64,
    /// At most this many live reset tokens per account (default 3); a request beyond it
    /// sends nothing (and answers as always).
    pub reset_max_live: u32,
    /// How long a verification token works, ms (default 24 h).
    pub verify_ttl_ms: i64,
    /// At most this many verification mails per account per hour (default 3).
    pub verify_per_hour: u32,
}

impl Default for AccountTokenPolicy {
    fn default() -> Self {
        AccountTokenPolicy {
            reset_ttl_ms: 3_600_000,
            reset_max_live: 3,
            verify_ttl_ms: 24 * 3_600_000,
            verify_per_hour: 3,
        }
    }
}

/// Temporary blocking of a client address after repeated failures (wrong passwords, bad
/// signatures, reused refresh tokens).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpBlockPolicy {
    /// Failures that trigger a block.
    pub max_failures: u32,
    /// Window in which they are counted, ms.
    pub window_ms: i64,
    /// How long the block lasts, ms.
    pub block_ms: i64,
}

impl Default for IpBlockPolicy {
    fn default() -> Self {
        IpBlockPolicy {
            max_failures: 50,
            window_ms: 15 * 60_000,
            block_ms: 15 * 60_000,
        }
    }
}

/// Failed sign-ins counted per account, so that guessing one account's password stays
/// slow from any number of addresses while its owner can still sign in (README, "Limits").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountLockout {
    /// Failures for one account from one address within the window after which that
    /// address is refused (429) for that account until the window passes.
    pub per_address: u32,
    /// Failures for one account from all addresses within the window after which only an
    /// address with no failure for it in the window, or a device proving its registered key
    /// with a `DPoP` proof, may try a password for it.
    pub per_account: u32,
    /// The window, ms.
    pub window_ms: i64,
}

impl Default for AccountLockout {
    fn default() -> Self {
        AccountLockout {
            per_address: 5,
            per_account: 20,
            window_ms: 15 * 60_000,
        }
    }
}

/// What a new password must contain beyond the protocol's 8 to 128 characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordPolicy {
    /// Minimum length in characters (at least 8).
    pub min_length: usize,
    /// Requires a lower-case letter.
    pub require_lowercase: bool,
    /// Requires an upper-case letter.
    pub require_uppercase: bool,
    /// Requires a digit.
    pub require_digit: bool,
    /// Requires a character that is neither a letter nor a digit.
    pub require_symbol: bool,
}

impl Default for PasswordPolicy {
    /// Kora's rule: 8 characters, no required classes.
    fn default() -> Self {
        PasswordPolicy {
            min_length: 8,
            require_lowercase: false,
            require_uppercase: false,
            require_digit: false,
            require_symbol: false,
        }
    }
}

/// Everything the server kit is configured with.
///
/// ```
/// use holdfast_server_kit::ServerConfig;
///
/// let mut config = ServerConfig::new(vec!["a secret of at least thirty-two characters".into()]);
/// config.public_url = Some("https://api.example.com".into()); // behind a TLS proxy
/// assert!(config.validate().is_ok());
/// ```
#[derive(Clone)]
pub struct ServerConfig {
    /// Token secrets: the first signs, all verify (rotation). Each at least 32 characters.
    pub secrets: Vec<String>,
    /// Access token lifetime, seconds (default 15 min).
    pub access_ttl_secs: i64,
    /// Refresh token lifetime, seconds (default 90 days).
    pub refresh_ttl_secs: i64,
    /// Device credential lifetime, seconds (default 90 days).
    pub device_credential_ttl_secs: i64,
    /// Tokens are accepted until `exp` plus this many seconds (default 5).
    pub leeway_secs: i64,
    /// Refresh grace window, ms (PROTOCOL 6.2; default 30 s, at most 60 s).
    pub grace_window_ms: i64,
    /// Route prefix (default `/auth`).
    pub route_prefix: String,
    /// Largest accepted request body, bytes (default 64 KiB).
    pub max_body_bytes: usize,
    /// How long a client may take to send a request body once its headers arrived
    /// (default 30 s); a slower one gets 408.
    pub body_read_timeout: std::time::Duration,
    /// Rate limits.
    pub rate_limits: RateLimits,
    /// Temporary blocking after repeated failures; `None` turns it off.
    pub ip_block: Option<IpBlockPolicy>,
    /// Failed sign-ins counted per account; `None` turns it off.
    pub account_lockout: Option<AccountLockout>,
    /// Password policy for new passwords.
    pub password_policy: PasswordPolicy,
    /// Proxies whose `X-Forwarded-For` is believed. Empty: the socket address is the client.
    pub trusted_proxies: Vec<IpAddr>,
    /// The URL clients use to reach the server, e.g. `https://api.example.com`, when a TLS
    /// terminator or proxy sits in front; device proofs name it. Default: `http://` + the
    /// request's Host header. The request's path (route prefix included) follows it, so a
    /// proxy that strips a path prefix is configured with that prefix here, e.g.
    /// `https://example.com/api`.
    pub public_url: Option<String>,
    /// At most this many password hashes run at once (default: half the cores, at least 1).
    pub hashing_concurrency: usize,
    /// How long a sign-in or sign-up may wait for a password hashing slot before it is
    /// refused with 503 `SERVICE_UNAVAILABLE` and `Retry-After` (default 3 s); `None` waits
    /// as long as it takes.
    pub hashing_max_wait: Option<std::time::Duration>,
    /// Argon2id cost for new hashes.
    pub argon2: Argon2Params,
    /// Session limits: idle timeout and absolute lifetime (default none: a session lives
    /// as long as its refresh tokens are refreshed within their lifetime) and the most live
    /// sessions per user (default 10, Kora's; a sign-in beyond it ends the least recently
    /// used).
    pub sessions: SessionLimits,
    /// Password-reset and email-verification tokens.
    pub account_tokens: AccountTokenPolicy,
    /// Time source.
    pub clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("secrets", &format_args!("<{} redacted>", self.secrets.len()))
            .field("access_ttl_secs", &self.access_ttl_secs)
            .field("refresh_ttl_secs", &self.refresh_ttl_secs)
            .field("device_credential_ttl_secs", &self.device_credential_ttl_secs)
            .field("leeway_secs", &self.leeway_secs)
            .field("grace_window_ms", &self.grace_window_ms)
            .field("route_prefix", &self.route_prefix)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("body_read_timeout", &self.body_read_timeout)
            .field("rate_limits", &self.rate_limits)
            .field("ip_block", &self.ip_block)
            .field("account_lockout", &self.account_lockout)
            .field("password_policy", &self.password_policy)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("public_url", &self.public_url)
            .field("hashing_concurrency", &self.hashing_concurrency)
            .field("hashing_max_wait", &self.hashing_max_wait)
            .field("argon2", &self.argon2)
            .field("sessions", &self.sessions)
            .field("account_tokens", &self.account_tokens)
            .finish_non_exhaustive()
    }
}

/// Longest grace window PROTOCOL 6.2 allows.
pub const MAX_GRACE_WINDOW_MS: i64 = 60_000;

/// Longest token lifetime accepted (100 years, in seconds).
pub const MAX_LIFETIME_SECS: i64 = 100 * 365 * 86_400;

/// Largest expiry leeway accepted (one hour, in seconds).
pub const MAX_LEEWAY_SECS: i64 = 3_600;

impl ServerConfig {
    /// Defaults around the given secrets.
    pub fn new(secrets: Vec<String>) -> ServerConfig {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        ServerConfig {
            secrets,
            access_ttl_secs: 15 * 60,
            refresh_ttl_secs: 90 * 24 * 3600,
            device_credential_ttl_secs: 90 * 24 * 3600,
            leeway_secs: 5,
            grace_window_ms: 30_000,
            route_prefix: "/auth".to_owned(),
            max_body_bytes: 64 * 1024,
            body_read_timeout: std::time::Duration::from_secs(30),
            rate_limits: RateLimits::default(),
            ip_block: Some(IpBlockPolicy::default()),
            account_lockout: Some(AccountLockout::default()),
            password_policy: PasswordPolicy::default(),
            trusted_proxies: Vec::new(),
            public_url: None,
            hashing_concurrency: (cores / 2).max(1),
            hashing_max_wait: Some(std::time::Duration::from_secs(3)),
            argon2: Argon2Params::default(),
            sessions: SessionLimits {
                idle_timeout_ms: None,
                max_lifetime_ms: None,
                max_per_user: Some(10),
            },
            account_tokens: AccountTokenPolicy::default(),
            clock: Arc::new(SystemClock),
        }
    }

    /// Checks that the configuration can work.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.secrets.is_empty() {
            return Err(ConfigError::NoSecret);
        }
        if let Some(index) = self.secrets.iter().position(|s| s.chars().count() < 32) {
            return Err(ConfigError::SecretTooShort(index + 1));
        }
        let positive = |name: &str, value: i64| {
            if value > 0 {
                Ok(())
            } else {
                Err(ConfigError::Invalid(format!("{name} must be positive")))
            }
        };
        positive("access token lifetime", self.access_ttl_secs)?;
        positive("refresh token lifetime", self.refresh_ttl_secs)?;
        positive("device credential lifetime", self.device_credential_ttl_secs)?;
        // Times are added to now (seconds) and multiplied into milliseconds: a lifetime
        // beyond these bounds would overflow somewhere, so it is refused at start rather
        // than wrapped (a signed-out refresh token working again after a restart).
        for (name, value) in [
            ("access token lifetime", self.access_ttl_secs),
            ("refresh token lifetime", self.refresh_ttl_secs),
            ("device credential lifetime", self.device_credential_ttl_secs),
        ] {
            if value > MAX_LIFETIME_SECS {
                return Err(ConfigError::Invalid(format!(
                    "{name} must be at most {MAX_LIFETIME_SECS} seconds (100 years), not {value}"
                )));
            }
        }
        if self.leeway_secs > MAX_LEEWAY_SECS {
            return Err(ConfigError::Invalid(format!(
                "leeway must be at most {MAX_LEEWAY_SECS} seconds"
            )));
        }
        self.validate_sessions()?;
        if !(0..=MAX_GRACE_WINDOW_MS).contains(&self.grace_window_ms) {
            return Err(ConfigError::Invalid(
                "grace window must be between 0 and 60 seconds".into(),
            ));
        }
        if self.leeway_secs < 0 {
            return Err(ConfigError::Invalid("leeway must not be negative".into()));
        }
        if !self.route_prefix.is_empty()
            && (!self.route_prefix.starts_with('/') || self.route_prefix.ends_with('/'))
        {
            return Err(ConfigError::Invalid(
                "route prefix must start with '/' and not end with one".into(),
            ));
        }
        if self.max_body_bytes < 1024 {
            return Err(ConfigError::Invalid(
                "body limit must be at least 1024 bytes".into(),
            ));
        }
        if self.password_policy.min_length < holdfast_protocol::validate::MIN_PASSWORD_LEN
            || self.password_policy.min_length > holdfast_protocol::validate::MAX_PASSWORD_LEN
        {
            return Err(ConfigError::Invalid(
                "password minimum length must be between 8 and 128".into(),
            ));
        }
        if let Some(lockout) = self.account_lockout
            && (lockout.per_address == 0 || lockout.per_account == 0 || lockout.window_ms <= 0)
        {
            return Err(ConfigError::Invalid(
                "account lockout counts and window must be positive".into(),
            ));
        }
        if self.hashing_concurrency == 0 {
            return Err(ConfigError::Invalid(
                "hashing concurrency must be at least 1".into(),
            ));
        }
        if self
            .hashing_max_wait
            .is_some_and(|wait| wait.is_zero() || wait.as_secs() > 3600)
        {
            return Err(ConfigError::Invalid(
                "hashing wait must be between 1 ms and 1 hour".into(),
            ));
        }
        if let Some(url) = &self.public_url {
            check_public_base_url(url).map_err(|reason| {
                ConfigError::Invalid(format!("public base URL {reason}, like https://api.example.com"))
            })?;
        }
        Ok(())
    }
}

impl ServerConfig {
    /// Session limits and account-token lifetimes that can work: positive times of at most
    /// [`MAX_LIFETIME_SECS`], at least one session per user.
    fn validate_sessions(&self) -> Result<(), ConfigError> {
        let max_ms = MAX_LIFETIME_SECS.saturating_mul(1000);
        let limits = self.sessions;
        let tokens = self.account_tokens;
        for (name, value) in [
            ("session idle timeout", limits.idle_timeout_ms),
            ("session lifetime", limits.max_lifetime_ms),
            ("reset token lifetime", Some(tokens.reset_ttl_ms)),
            ("verification token lifetime", Some(tokens.verify_ttl_ms)),
        ] {
            if let Some(value) = value
                && !(1..=max_ms).contains(&value)
            {
                return Err(ConfigError::Invalid(format!(
                    "{name} must be between 1 ms and 100 years, not {value} ms"
                )));
            }
        }
        if limits.max_per_user == Some(0) {
            return Err(ConfigError::Invalid(
                "the most sessions per user must be at least 1".into(),
            ));
        }
        if tokens.reset_max_live == 0 || tokens.verify_per_hour == 0 {
            return Err(ConfigError::Invalid(
                "reset tokens per account and verification mails per hour must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

/// A public base URL is an absolute `http` or `https` URL with a host and no user info,
/// query or fragment (a trailing slash is ignored).
fn check_public_base_url(url: &str) -> Result<(), &'static str> {
    let uri: http::Uri = url.parse().map_err(|_| "must be an absolute URL")?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) {
        return Err("must start with http:// or https://");
    }
    let authority = uri.authority().ok_or("must have a host")?;
    if authority.host().is_empty() || authority.as_str().contains('@') {
        return Err("must have a host and no user name");
    }
    if uri.query().is_some() || url.contains(['?', '#']) {
        return Err("must not have a query or fragment");
    }
    Ok(())
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
