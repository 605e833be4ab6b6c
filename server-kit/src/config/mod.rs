//! What a deployment chooses: secrets, lifetimes, limits and policies.

use std::net::IpAddr;
use std::sync::Arc;

use crate::clock::{Clock, SystemClock};
use crate::passwords::Argon2Params;
use crate::store::SessionLimits;

mod accounts;
mod guards;
mod mfa;

pub use accounts::AccountTokenPolicy;
pub use guards::{AccountLockout, IpBlockPolicy, PasswordPolicy, RateLimits};
pub use mfa::{MAX_STEP_UP_WINDOW_SECS, MfaConfig, MfaKeys};

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
    /// Second factors and step-up (PROTOCOL 9).
    pub mfa: MfaConfig,
    /// How long the bearer routes trust a token's cached standing (revocation, user,
    /// device) without an event on the revocation bus: the staleness bound for changes the
    /// bus does not carry (see [`crate::authn`]'s standing module). Default 5 s; zero turns
    /// the cache off (every bearer request reads the stores once).
    pub standing_cache_ttl: std::time::Duration,
    /// Most tokens whose claims and standing the bearer routes cache. Default 100 000.
    pub standing_cache_capacity: usize,
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
            .field("mfa", &self.mfa)
            .field("standing_cache_ttl", &self.standing_cache_ttl)
            .field("standing_cache_capacity", &self.standing_cache_capacity)
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
            mfa: MfaConfig::default(),
            standing_cache_ttl: std::time::Duration::from_secs(5),
            standing_cache_capacity: 100_000,
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
        self.validate_mfa()?;
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
mod tests;
