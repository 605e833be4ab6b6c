//! The multi-factor routes (PROTOCOL 9): enrolment, status, recovery codes, disabling,
//! completing a pending sign-in, and step-up. The code checks themselves (limits, the
//! single acceptance of a TOTP step, recovery codes) are in `mfa_codes.rs`.

use std::net::IpAddr;

use holdfast_protocol::endpoint::{
    GetMfaStatus, MfaDisable, MfaEnable, MfaRecover, MfaRegenerateCodes, MfaStepUp, MfaVerify, MfaVerifySetup,
};
use holdfast_protocol::validate::normalize_email;
use holdfast_protocol::wire::{
    MfaChanged, MfaCodeRequest, MfaEnableRequest, MfaEnrollment, MfaRecoverRequest, MfaStatus, RecoveryCodes,
    Tokens,
};
use holdfast_protocol::{Claims, ErrorCode};

use super::AuthService;
use super::mfa_codes::{Accepts, internal_mfa};
use crate::authn::Authenticated;
use crate::exchange::{ApiError, AuthRequest, AuthResponse, parse_json, parse_optional_json};
use crate::mfa::{new_secret, totp_uri};
use crate::store::{TotpFactor, UserRecord};
use crate::tokens::Assurance;
use zeroize::Zeroizing;

impl AuthService {
    /// Whether `user_id` has a confirmed second factor.
    pub(super) async fn mfa_enabled(&self, user_id: &str) -> Result<bool, ApiError> {
        Ok(self.confirmed_factor(user_id).await?.is_some())
    }

    /// The user's confirmed TOTP factor, if MFA is on.
    async fn confirmed_factor(&self, user_id: &str) -> Result<Option<TotpFactor>, ApiError> {
        Ok(self
            .stores()
            .mfa
            .find_totp(user_id)
            .await?
            .filter(TotpFactor::enabled))
    }

    /// The user's confirmed factor, or 400 when MFA is off.
    async fn require_factor(&self, user_id: &str) -> Result<TotpFactor, ApiError> {
        self.confirmed_factor(user_id)
            .await?
            .ok_or_else(|| ApiError::validation("Multi-factor authentication is not on for this account."))
    }

    /// Step-up (PROTOCOL 9): when the user has MFA on, `claims` must come from a password
    /// or code check within the configured window; 403 `STEP_UP_REQUIRED` otherwise.
    pub(super) async fn require_recent_auth(&self, claims: &Claims) -> Result<(), ApiError> {
        if !self.mfa_enabled(&claims.sub).await? {
            return Ok(());
        }
        self.require_recent(claims)
    }

    /// Step-up for a user known to have MFA on: 403 `STEP_UP_REQUIRED` unless `claims` come
    /// from a password or code check within the window. A token without `auth_time`
    /// (minted before PROTOCOL 9) is never recent.
    pub(super) fn require_recent(&self, claims: &Claims) -> Result<(), ApiError> {
        let window = self.config().mfa.step_up_window_secs;
        let recent = claims
            .auth_time
            .is_some_and(|at| self.now_secs().saturating_sub(at) <= window);
        if recent {
            return Ok(());
        }
        Err(ApiError::new(
            ErrorCode::StepUpRequired,
            "This needs a recent check: send a code to /mfa/step-up, then try again.",
        ))
    }

    /// What `/mfa/regenerate-codes` and `/mfa/disable` check first: the caller (not
    /// pending), MFA on, a recent check, then the body's code as `accepts` allows. Returns
    /// the user.
    async fn stepped_up_with_code(
        &self,
        request: &AuthRequest,
        client: Option<IpAddr>,
        accepts: Accepts,
    ) -> Result<UserRecord, ApiError> {
        let Authenticated { claims, user, .. } = self.authenticate(request).await?;
        let body: MfaCodeRequest = parse_json(request, "with a string member code")?;
        let factor = self.require_factor(&user.id).await?;
        self.require_recent(&claims)?;
        self.check_code(&user, &factor, &body.code, accepts, client)
            .await?;
        Ok(user)
    }

    /// New recovery codes for `user_id` (as many as configured), as shown and as stored.
    fn new_recovery_codes(&self, user_id: &str) -> Result<(Vec<Zeroizing<String>>, Vec<String>), ApiError> {
        let recovery = &self.inner.authn.mfa_keys().recovery;
        let codes = recovery
            .generate(usize::from(self.config().mfa.recovery_codes))
            .map_err(internal_mfa)?;
        let hashes = codes
            .iter()
            .map(|code| recovery.hash(user_id, code).ok_or_else(ApiError::internal))
            .collect::<Result<_, _>>()?;
        Ok((codes, hashes))
    }

    pub(super) async fn mfa_enable(&self, request: &AuthRequest) -> Result<AuthResponse, ApiError> {
        let Authenticated { user, .. } = self.authenticate(request).await?;
        let body: MfaEnableRequest = parse_optional_json(request, "with an optional string member email")?;
        if let Some(email) = body.email.as_deref()
            && normalize_email(email.trim()).ok().as_deref() != Some(user.email.as_str())
        {
            return Err(ApiError::validation(
                "The account name must be the account's own email (or absent).",
            ));
        }
        if self.mfa_enabled(&user.id).await? {
            return Err(already_enabled());
        }
        let config = &self.config().mfa;
        let secret = new_secret(config.totp.algorithm.secret_len()).map_err(|error| {
            tracing::error!(%error, "could not make an MFA secret");
            ApiError::internal()
        })?;
        let uri = totp_uri(&config.issuer, &user.email, &secret, &config.totp)
            .map_err(|_| ApiError::validation("This account's email cannot name an MFA account."))?;
        let sealed = self
            .inner
            .authn
            .mfa_keys()
            .sealer
            .seal(&secret, &user.id)
            .map_err(internal_mfa)?;
        let (codes, hashes) = self.new_recovery_codes(&user.id)?;
        let factor = TotpFactor {
            user_id: user.id.clone(),
            sealed_secret: sealed,
            algorithm: config.totp.algorithm.name().to_owned(),
            digits: config.totp.digits.count(),
            period_secs: config.totp.period_secs.get(),
            created_at_ms: self.now_ms(),
            enabled_at_ms: None,
            last_step: None,
        };
        if !self.stores().mfa.begin_totp(factor, hashes).await? {
            return Err(already_enabled());
        }
        tracing::info!(user = %user.id, "MFA enrolment started");
        Ok(AuthResponse::of::<MfaEnable>(&MfaEnrollment {
            uri: uri.to_string(),
            secret: secret.to_base32().to_string(),
            recovery_codes: codes.iter().map(|code| code.to_string()).collect(),
        }))
    }

    pub(super) async fn mfa_verify_setup(
        &self,
        request: &AuthRequest,
        client: Option<IpAddr>,
    ) -> Result<AuthResponse, ApiError> {
        let Authenticated { user, .. } = self.authenticate(request).await?;
        let body: MfaCodeRequest = parse_json(request, "with a string member code")?;
        let factor = match self.stores().mfa.find_totp(&user.id).await? {
            Some(factor) if factor.enabled() => return Err(already_enabled()),
            Some(factor) => factor,
            None => {
                return Err(ApiError::validation(
                    "There is no enrolment to confirm: call /mfa/enable first.",
                ));
            }
        };
        self.confirm_enrolment(&user, &factor, &body.code, client).await?;
        tracing::info!(user = %user.id, "MFA enabled");
        Ok(AuthResponse::of::<MfaVerifySetup>(&MfaChanged {
            success: true,
            message: "MFA enabled successfully.".to_owned(),
        }))
    }

    pub(super) async fn mfa_status(&self, request: &AuthRequest) -> Result<AuthResponse, ApiError> {
        let Authenticated { user, .. } = self.authenticate(request).await?;
        let enabled = self.mfa_enabled(&user.id).await?;
        let remaining = if enabled {
            self.stores().mfa.count_recovery_codes(&user.id).await?
        } else {
            0
        };
        Ok(AuthResponse::of::<GetMfaStatus>(&MfaStatus {
            enabled,
            remaining_recovery_codes: remaining,
        }))
    }

    pub(super) async fn mfa_regenerate_codes(
        &self,
        request: &AuthRequest,
        client: Option<IpAddr>,
    ) -> Result<AuthResponse, ApiError> {
        let user = self.stepped_up_with_code(request, client, Accepts::Totp).await?;
        let (codes, hashes) = self.new_recovery_codes(&user.id)?;
        if !self.stores().mfa.replace_recovery_codes(&user.id, hashes).await? {
            return Err(ApiError::validation(
                "Multi-factor authentication was turned off meanwhile.",
            ));
        }
        tracing::info!(user = %user.id, "recovery codes regenerated");
        Ok(AuthResponse::of::<MfaRegenerateCodes>(&RecoveryCodes {
            recovery_codes: codes.iter().map(|code| code.to_string()).collect(),
        }))
    }

    pub(super) async fn mfa_disable(
        &self,
        request: &AuthRequest,
        client: Option<IpAddr>,
    ) -> Result<AuthResponse, ApiError> {
        let user = self
            .stepped_up_with_code(request, client, Accepts::Either)
            .await?;
        self.stores().mfa.delete_totp(&user.id).await?;
        tracing::info!(user = %user.id, "MFA disabled");
        Ok(AuthResponse::of::<MfaDisable>(&MfaChanged {
            success: true,
            message: "MFA disabled.".to_owned(),
        }))
    }

    /// `/mfa/verify`, `/mfa/recover` and `/mfa/step-up`: a code for a fresh pair of the
    /// caller's session at `aal` 2 (the first two take a pending session's token).
    pub(super) async fn mfa_tokens(
        &self,
        request: &AuthRequest,
        client: Option<IpAddr>,
        route: CodeForTokens,
    ) -> Result<AuthResponse, ApiError> {
        let caller = match route {
            CodeForTokens::StepUp => self.authenticate(request).await?,
            CodeForTokens::Verify | CodeForTokens::Recover => self.authenticate_pending(request).await?,
        };
        let (code, accepts) = match route {
            CodeForTokens::Recover => {
                let body: MfaRecoverRequest = parse_json(request, "with a string member recoveryCode")?;
                (body.recovery_code, Accepts::Recovery)
            }
            CodeForTokens::Verify | CodeForTokens::StepUp => {
                let body: MfaCodeRequest = parse_json(request, "with a string member code")?;
                let accepts = match route {
                    CodeForTokens::Verify => Accepts::Totp,
                    _ => Accepts::Either,
                };
                (body.code, accepts)
            }
        };
        let pair = self.second_factor(&caller, &code, accepts, client).await?;
        let tokens = Tokens {
            tokens: pair.into_wire(),
        };
        Ok(match route {
            CodeForTokens::Verify => AuthResponse::of::<MfaVerify>(&tokens),
            CodeForTokens::Recover => AuthResponse::of::<MfaRecover>(&tokens),
            CodeForTokens::StepUp => AuthResponse::of::<MfaStepUp>(&tokens),
        })
    }

    /// Checks a second factor for the caller's session and gives the session a fresh pair
    /// at `aal` 2 with the method in `amr` and `auth_time` now; every earlier refresh token
    /// of the session stops working, so a copy of a pending one cannot mint `aal` 2 tokens.
    async fn second_factor(
        &self,
        caller: &Authenticated,
        code: &str,
        accepts: Accepts,
        client: Option<IpAddr>,
    ) -> Result<crate::tokens::IssuedPair, ApiError> {
        let factor = self.require_factor(&caller.user.id).await?;
        let method = self
            .check_code(&caller.user, &factor, code, accepts, client)
            .await?;
        let assurance = Assurance::of(&caller.claims).with_second_factor(method, self.now_secs());
        let pair = self
            .renew_session_tokens(&caller.claims, &caller.user, &assurance)
            .await?;
        tracing::info!(user = %caller.user.id, method, "second factor accepted");
        Ok(pair)
    }
}

/// The routes that answer a fresh pair for a code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CodeForTokens {
    /// `/mfa/verify`: a TOTP code completes a pending sign-in.
    Verify,
    /// `/mfa/recover`: a recovery code completes a pending sign-in.
    Recover,
    /// `/mfa/step-up`: either kind renews `auth_time`.
    StepUp,
}

fn already_enabled() -> ApiError {
    ApiError::new(
        ErrorCode::MfaAlreadyEnabled,
        "Multi-factor authentication is already on for this account.",
    )
}
