//! What guards the routes: rate limits, address blocking, the account lockout and the
//! password policy.

use crate::store::RateLimit;

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
    /// [`AccountTokenPolicy`](super::AccountTokenPolicy)).
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
