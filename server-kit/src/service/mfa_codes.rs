//! Checking a second-factor code (PROTOCOL 9): attempt limits per user and per address, a
//! TOTP code accepted at most once (the store advances the last accepted step atomically),
//! recovery codes used up atomically, and a wrong code counted as a failed sign-in.

use std::net::IpAddr;
use std::num::NonZeroU32;

use holdfast_protocol::ErrorCode;

use super::AuthService;
use crate::exchange::ApiError;
use crate::guards::{address_key, digest_key};
use crate::mfa::{OpenedSecret, OtpAlgorithm, OtpDigits, TotpConfig, verify_totp};
use crate::store::{StoreError, TotpFactor, UserRecord};

/// Which codes a route takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Accepts {
    /// A code from the authenticator app.
    Totp,
    /// A recovery code.
    Recovery,
    /// Either (told apart by their shape: a TOTP code is digits only).
    Either,
}

impl AuthService {
    /// Checks `code` against `user`'s confirmed factor as `accepts` allows and uses it up.
    /// Returns the method (`otp` or `rec`, for `amr`). A wrong, replayed or used code is
    /// 400 `MFA_CODE_INVALID` and counts as a failed sign-in.
    pub(super) async fn check_code(
        &self,
        user: &UserRecord,
        factor: &TotpFactor,
        code: &str,
        accepts: Accepts,
        client: Option<IpAddr>,
    ) -> Result<&'static str, ApiError> {
        self.admit_code_attempt(&user.id, client).await?;
        let code = code.trim();
        let totp_shaped = !code.is_empty() && code.len() <= 10 && code.bytes().all(|b| b.is_ascii_digit());
        let accepted = match accepts {
            Accepts::Totp => self.use_totp(user, factor, code).await?.then_some("otp"),
            Accepts::Recovery => self.use_recovery(user, code).await?.then_some("rec"),
            Accepts::Either if totp_shaped => self.use_totp(user, factor, code).await?.then_some("otp"),
            Accepts::Either => self.use_recovery(user, code).await?.then_some("rec"),
        };
        match accepted {
            Some(method) => Ok(method),
            None => Err(self.code_refused(user, client).await),
        }
    }

    /// Checks the first code of an unconfirmed enrolment and turns MFA on with its step.
    pub(super) async fn confirm_enrolment(
        &self,
        user: &UserRecord,
        factor: &TotpFactor,
        code: &str,
        client: Option<IpAddr>,
    ) -> Result<(), ApiError> {
        self.admit_code_attempt(&user.id, client).await?;
        let opened = self.open_secret(user, factor)?;
        let config = self.factor_config(factor)?;
        let step = verify_totp(&opened.secret, code.trim(), self.now_secs(), &config, None);
        let Some(step) = step.and_then(|step| i64::try_from(step).ok()) else {
            return Err(self.code_refused(user, client).await);
        };
        if !self
            .stores()
            .mfa
            .confirm_totp(&user.id, &factor.sealed_secret, step, self.now_ms())
            .await?
        {
            // Confirmed (or restarted) by a concurrent request.
            return Err(self.code_refused(user, client).await);
        }
        Ok(())
    }

    /// A TOTP code: checked after the last accepted step, then that step advanced in the
    /// store, which only one of concurrent requests (on any instance) can do.
    async fn use_totp(&self, user: &UserRecord, factor: &TotpFactor, code: &str) -> Result<bool, ApiError> {
        let opened = self.open_secret(user, factor)?;
        let config = self.factor_config(factor)?;
        let last = factor.last_step.and_then(|step| u64::try_from(step).ok());
        let Some(step) = verify_totp(&opened.secret, code, self.now_secs(), &config, last) else {
            return Ok(false);
        };
        let Ok(step) = i64::try_from(step) else {
            return Ok(false);
        };
        let mfa = &self.stores().mfa;
        if !mfa.accept_totp_step(&user.id, step).await? {
            return Ok(false);
        }
        if opened.needs_reseal {
            // Sealed under key material being retired: seal it under the current one.
            match self.inner.authn.mfa_keys().sealer.seal(&opened.secret, &user.id) {
                Ok(sealed) => {
                    if let Err(error) = mfa.reseal_totp(&user.id, &sealed).await {
                        tracing::warn!(%error, "could not reseal an MFA secret; it stays under the old key");
                    }
                }
                Err(error) => tracing::warn!(%error, "could not reseal an MFA secret"),
            }
        }
        Ok(true)
    }

    async fn use_recovery(&self, user: &UserRecord, code: &str) -> Result<bool, ApiError> {
        let Some(hash) = self.inner.authn.mfa_keys().recovery.hash(&user.id, code) else {
            return Ok(false);
        };
        Ok(self.stores().mfa.use_recovery_code(&user.id, &hash).await?)
    }

    /// Counts an attempt against the user and the client address (PROTOCOL 9), after the
    /// address's block.
    async fn admit_code_attempt(&self, user_id: &str, client: Option<IpAddr>) -> Result<(), ApiError> {
        let guards = &self.inner.guards;
        guards.check_not_blocked(client).await?;
        let limit = self.config().mfa.attempts;
        guards.limit(limit, &format!("mfa:user:{user_id}")).await?;
        guards.limit(limit, &crate::guards::ip_key("mfa", client)).await
    }

    /// A refused code: counted as a failed sign-in (address block, account lockout).
    async fn code_refused(&self, user: &UserRecord, client: Option<IpAddr>) -> ApiError {
        let guards = &self.inner.guards;
        guards.record_failure(client).await;
        guards
            .record_sign_in_failure(&digest_key(&user.id), &address_key(client))
            .await;
        ApiError::new(ErrorCode::MfaCodeInvalid, "Invalid code.")
    }

    fn open_secret(&self, user: &UserRecord, factor: &TotpFactor) -> Result<OpenedSecret, ApiError> {
        self.inner
            .authn
            .mfa_keys()
            .sealer
            .open(&factor.sealed_secret, &user.id)
            .map_err(internal_mfa)
    }

    /// How the factor's codes are made: as stored at enrolment (a later change of the
    /// server's settings does not break enrolled apps), with the server's skew.
    fn factor_config(&self, factor: &TotpFactor) -> Result<TotpConfig, ApiError> {
        let corrupt = |what: &str| ApiError::from(StoreError::Corrupt(format!("MFA factor with {what}")));
        let algorithm =
            OtpAlgorithm::from_name(&factor.algorithm).ok_or_else(|| corrupt("an unknown algorithm"))?;
        let digits = OtpDigits::new(factor.digits).ok_or_else(|| corrupt("a digit count out of range"))?;
        let period_secs = NonZeroU32::new(factor.period_secs).ok_or_else(|| corrupt("a zero period"))?;
        Ok(TotpConfig {
            algorithm,
            digits,
            period_secs,
            skew_steps: self.config().mfa.totp.skew_steps,
        })
    }
}

/// A key operation (seal, open, make codes) that failed: logged, answered 500.
pub(super) fn internal_mfa(error: crate::mfa::SealError) -> ApiError {
    tracing::error!(%error, "MFA key operation failed");
    ApiError::internal()
}
