//! Multi-factor authentication in the configuration (PROTOCOL 9).

use std::fmt;

use zeroize::Zeroizing;

use super::{ConfigError, ServerConfig};
use crate::mfa::{MIN_KEY_MATERIAL_LEN, RecoveryHasher, SecretSealer, TotpConfig};
use crate::store::RateLimit;

/// Longest step-up window accepted: one day.
pub const MAX_STEP_UP_WINDOW_SECS: i64 = 86_400;

/// How second factors work on this server.
#[derive(Clone)]
pub struct MfaConfig {
    /// The name authenticator apps show next to the account (default `Holdfast`; set your
    /// application's). No `:`.
    pub issuer: String,
    /// How codes are made (default SHA-1, 6 digits, 30 s, ±1 step: what every app reads).
    pub totp: TotpConfig,
    /// Recovery codes per user (default 8).
    pub recovery_codes: u8,
    /// How recent (seconds) a password or code check must be for the sensitive routes when
    /// MFA is on (default 600).
    pub step_up_window_secs: i64,
    /// Code attempts, per user and per client address (default 10 per 5 minutes); `None`
    /// turns the limit off. A wrong code also counts as a failed sign-in.
    pub attempts: Option<RateLimit>,
    /// Key material the TOTP secrets are sealed under and recovery codes hashed with: the
    /// current first, then previous ones (still opened, resealed on use). Random, at least
    /// 32 bytes each. Empty (the default) derives it from the token secrets, which ties
    /// second factors to them: configure it explicitly to rotate token secrets freely.
    pub keys: Vec<Zeroizing<Vec<u8>>>,
}

impl Default for MfaConfig {
    fn default() -> Self {
        MfaConfig {
            issuer: "Holdfast".to_owned(),
            totp: TotpConfig::default(),
            recovery_codes: 8,
            step_up_window_secs: 600,
            attempts: Some(RateLimit {
                max: 10,
                window_ms: 5 * 60_000,
            }),
            keys: Vec::new(),
        }
    }
}

impl fmt::Debug for MfaConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MfaConfig")
            .field("issuer", &self.issuer)
            .field("totp", &self.totp)
            .field("recovery_codes", &self.recovery_codes)
            .field("step_up_window_secs", &self.step_up_window_secs)
            .field("attempts", &self.attempts)
            .field("keys", &format_args!("<{} redacted>", self.keys.len()))
            .finish()
    }
}

/// The keys of [`MfaConfig::keys`] (or of the token secrets), ready to use.
pub struct MfaKeys {
    /// Seals and opens TOTP secrets.
    pub sealer: SecretSealer,
    /// Hashes recovery codes (with the current key material).
    pub recovery: RecoveryHasher,
}

impl fmt::Debug for MfaKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MfaKeys(<redacted>)")
    }
}

impl ServerConfig {
    /// Checks the MFA settings.
    pub(super) fn validate_mfa(&self) -> Result<(), ConfigError> {
        let mfa = &self.mfa;
        if mfa.issuer.trim().is_empty() || mfa.issuer.contains(':') || mfa.issuer.len() > 100 {
            return Err(ConfigError::Invalid(
                "the MFA issuer must be 1 to 100 bytes without ':'".into(),
            ));
        }
        if !(1..=20).contains(&mfa.recovery_codes) {
            return Err(ConfigError::Invalid(
                "recovery codes per user must be between 1 and 20".into(),
            ));
        }
        if !(1..=MAX_STEP_UP_WINDOW_SECS).contains(&mfa.step_up_window_secs) {
            return Err(ConfigError::Invalid(
                "the step-up window must be between 1 second and 1 day".into(),
            ));
        }
        if mfa.totp.skew_steps > 10 {
            return Err(ConfigError::Invalid("TOTP skew must be at most 10 steps".into()));
        }
        if let Some(index) = mfa.keys.iter().position(|key| key.len() < MIN_KEY_MATERIAL_LEN) {
            return Err(ConfigError::Invalid(format!(
                "MFA key {} is shorter than {MIN_KEY_MATERIAL_LEN} bytes",
                index + 1
            )));
        }
        Ok(())
    }

    /// The MFA keys: from [`MfaConfig::keys`], or derived from the token secrets (the first
    /// seals, the others open) when none are configured.
    pub fn mfa_keys(&self) -> Result<MfaKeys, ConfigError> {
        let materials: Vec<&[u8]> = if self.mfa.keys.is_empty() {
            self.secrets.iter().map(|secret| secret.as_bytes()).collect()
        } else {
            self.mfa.keys.iter().map(|key| key.as_slice()).collect()
        };
        let Some((current, previous)) = materials.split_first() else {
            return Err(ConfigError::NoSecret);
        };
        let invalid = |error: crate::mfa::SealError| ConfigError::Invalid(error.to_string());
        Ok(MfaKeys {
            sealer: SecretSealer::new(current, previous).map_err(invalid)?,
            recovery: RecoveryHasher::new(current).map_err(invalid)?,
        })
    }
}
