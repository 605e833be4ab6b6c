//! Second factors (PROTOCOL 9): a user's TOTP factor and recovery codes.
//!
//! Nothing readable is stored: the TOTP secret is sealed under a server key
//! ([`crate::mfa::SecretSealer`]) and a recovery code is kept only as a keyed hash
//! ([`crate::mfa::RecoveryHasher`]). Two methods carry the protocol's "at most once" rules
//! and are atomic on every backend (one conditional `UPDATE` or `DELETE`):
//! [`MfaStore::accept_totp_step`], so that of two instances given the same code at once
//! exactly one accepts it, and [`MfaStore::use_recovery_code`].

use async_trait::async_trait;

use super::StoreError;

/// A user's TOTP factor as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotpFactor {
    /// Its user.
    pub user_id: String,
    /// The secret, sealed ([`crate::mfa::SecretSealer::seal`]); never the secret itself.
    pub sealed_secret: String,
    /// The algorithm's name as `otpauth` spells it (`SHA1`, `SHA256`, `SHA512`).
    pub algorithm: String,
    /// Digits per code (6 to 8).
    pub digits: u8,
    /// Seconds per step.
    pub period_secs: u32,
    /// When the enrolment started, ms.
    pub created_at_ms: i64,
    /// When `/mfa/verify-setup` confirmed it, ms: MFA is on only from then.
    pub enabled_at_ms: Option<i64>,
    /// The last time step a code was accepted for (`None` before the first).
    pub last_step: Option<i64>,
}

impl TotpFactor {
    /// Whether MFA is on (the enrolment was confirmed).
    pub fn enabled(&self) -> bool {
        self.enabled_at_ms.is_some()
    }
}

/// Second factors. Deleting a user ([`super::UserStore::delete_user`]) deletes them too.
#[async_trait]
pub trait MfaStore: Send + Sync {
    /// The user's factor, confirmed or not.
    async fn find_totp(&self, user_id: &str) -> Result<Option<TotpFactor>, StoreError>;

    /// Starts an enrolment: stores `factor` (unconfirmed, `enabled_at_ms` and `last_step`
    /// `None`) and `recovery_hashes` as the user's only recovery codes, replacing an
    /// unconfirmed enrolment and its codes, atomically. Returns `false`, changing nothing,
    /// when the user has a confirmed factor.
    async fn begin_totp(&self, factor: TotpFactor, recovery_hashes: Vec<String>) -> Result<bool, StoreError>;

    /// Confirms the user's unconfirmed factor at `now_ms` with its first accepted `step`,
    /// atomically, if it is still the one sealed as `sealed_secret` (the one the code was
    /// checked against: a concurrent enrolment may have replaced it). Returns `false`,
    /// changing nothing, when there is no such unconfirmed factor (none, already
    /// confirmed, or replaced).
    async fn confirm_totp(
        &self,
        user_id: &str,
        sealed_secret: &str,
        step: i64,
        now_ms: i64,
    ) -> Result<bool, StoreError>;

    /// Records `step` as the last accepted step of the user's confirmed factor, only if it
    /// is later than the one stored (or none is): one conditional write, so of concurrent
    /// calls with the same step exactly one returns `true`. `false` otherwise (a replay,
    /// an older step, no confirmed factor).
    async fn accept_totp_step(&self, user_id: &str, step: i64) -> Result<bool, StoreError>;

    /// Replaces the sealed secret (a reseal under the current key after a key rotation).
    /// Returns whether the user has a factor.
    async fn reseal_totp(&self, user_id: &str, sealed_secret: &str) -> Result<bool, StoreError>;

    /// Removes the recovery code whose hash is `hash` from the user's, atomically (two uses
    /// of one code cannot both succeed). Returns whether it was there.
    async fn use_recovery_code(&self, user_id: &str, hash: &str) -> Result<bool, StoreError>;

    /// Replaces the user's recovery codes with `hashes`, atomically (the old ones stop
    /// working). Returns `false`, changing nothing, when the user has no confirmed factor.
    async fn replace_recovery_codes(&self, user_id: &str, hashes: Vec<String>) -> Result<bool, StoreError>;

    /// How many unused recovery codes the user has.
    async fn count_recovery_codes(&self, user_id: &str) -> Result<u32, StoreError>;

    /// Removes the user's factor and recovery codes (MFA off). Returns whether there was a
    /// factor.
    async fn delete_totp(&self, user_id: &str) -> Result<bool, StoreError>;
}
