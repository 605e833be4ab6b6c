//! The second factor (PROTOCOL 9): a TOTP authenticator app, with single-use recovery
//! codes. Enrolling it, finishing a sign-in that needs it, and confirming a sensitive
//! action with it (step-up).
//!
//! ```no_run
//! # async fn setup(client: &holdfast_core::AuthClient, code_from_app: &str) -> Result<(), holdfast_core::AuthError> {
//! let enrollment = client.enroll_mfa(None).await?;
//! let qr = enrollment.qr_svg()?; // show it, and the recovery codes, once
//! client.confirm_mfa(code_from_app).await?; // the second factor is on from here
//! # Ok(()) }
//! ```
//!
//! A sign-in of a user with a second factor ends in
//! [`SignInOutcome::SecondFactorRequired`](super::SignInOutcome::SecondFactorRequired) and
//! [`AuthState::SecondFactorRequired`](super::AuthState::SecondFactorRequired): the session
//! is kept (a restart keeps it too) and [`AuthClient::complete_sign_in_with_code`] finishes
//! it, without the password. Once finished, the session stays verified through refreshes,
//! restarts and lost networks.
//!
//! Sensitive actions (changing the password, disabling the second factor, new recovery
//! codes, deleting the account, ending the other sessions) fail with
//! [`AuthError::StepUpRequired`] when the user last proved who they are more than a few
//! minutes ago (10 by default): ask for a code, [`AuthClient::step_up`], and try again.
//!
//! Codes, secrets and recovery codes are never logged nor put in an error. A wrong, expired
//! or replayed code is [`AuthError::InvalidCode`]; no failure here signs the user out.

use holdfast_protocol::endpoint::{
    Endpoint, GetMfaStatus, MfaDisable, MfaEnable, MfaRecover, MfaRegenerateCodes, MfaStepUp, MfaVerify,
    MfaVerifySetup, NoBody,
};
use holdfast_protocol::wire::{
    MfaCodeRequest, MfaEnableRequest, MfaRecoverRequest, MfaStatus, RecoveryCodes, Tokens, User,
};

use super::AuthClient;
use super::mfa_qr::MfaEnrollment;
use crate::error::AuthError;

/// The longest code accepted (TOTP codes are 6 or 8 digits, recovery codes a few more).
const MAX_CODE_CHARS: usize = 64;

impl AuthClient {
    /// Starts setting up a second factor for the signed-in user: the answer holds the
    /// authenticator app's secret (as a URI, a QR code, and text) and the recovery codes,
    /// to show once. The second factor is on only after [`AuthClient::confirm_mfa`].
    /// `account_name` is the name the app shows (the account's own email only; `None`: the
    /// email). An account that already has one is [`AuthError::MfaAlreadyEnabled`].
    pub async fn enroll_mfa(&self, account_name: Option<&str>) -> Result<MfaEnrollment, AuthError> {
        let body = MfaEnableRequest {
            email: account_name
                .map(str::trim)
                .filter(|name| !name.is_empty())
                .map(str::to_owned),
        };
        let wire = self.authorized(&MfaEnable, &body).await?;
        Ok(MfaEnrollment::from_wire(wire))
    }

    /// Turns the second factor on with a first `code` from the authenticator app (proof
    /// that it was set up). A wrong code is [`AuthError::InvalidCode`]: nothing changed.
    pub async fn confirm_mfa(&self, code: &str) -> Result<(), AuthError> {
        let body = code_request(code)?;
        self.authorized(&MfaVerifySetup, &body).await.map(|_| ())
    }

    /// Whether the second factor is on, and how many recovery codes are left.
    pub async fn mfa_status(&self) -> Result<MfaStatus, AuthError> {
        self.authorized(&GetMfaStatus, &NoBody).await
    }

    /// New recovery codes, with a `code` from the authenticator app; the old ones stop
    /// working. Shown once. May need a recent step-up ([`AuthError::StepUpRequired`]).
    pub async fn regenerate_recovery_codes(&self, code: &str) -> Result<RecoveryCodes, AuthError> {
        let body = code_request(code)?;
        self.authorized(&MfaRegenerateCodes, &body).await
    }

    /// Turns the second factor off, with a `code` from the authenticator app or a recovery
    /// code. May need a recent step-up ([`AuthError::StepUpRequired`]).
    pub async fn disable_mfa(&self, code: &str) -> Result<(), AuthError> {
        let body = code_request(code)?;
        self.authorized(&MfaDisable, &body).await.map(|_| ())
    }

    /// Finishes a sign-in that waits for its second factor
    /// ([`AuthState::SecondFactorRequired`](super::AuthState::SecondFactorRequired)) with a
    /// `code` from the authenticator app: the session is renewed as verified, the state
    /// becomes `SignedIn` (listeners are told), and the user is returned. No password is
    /// needed, also after a restart.
    ///
    /// A wrong, expired or already used code is [`AuthError::InvalidCode`] and the session
    /// still waits; offline, nothing changes. With no session this is
    /// [`AuthError::NotSignedIn`]; a session already verified is returned as it is.
    pub async fn complete_sign_in_with_code(&self, code: &str) -> Result<User, AuthError> {
        let body = code_request(code)?;
        self.complete_sign_in(MfaVerify, body).await
    }

    /// [`AuthClient::complete_sign_in_with_code`] with one of the user's recovery codes
    /// (for a lost phone). The code is spent: it never works again.
    pub async fn complete_sign_in_with_recovery_code(&self, recovery_code: &str) -> Result<User, AuthError> {
        let body = MfaRecoverRequest {
            recovery_code: clean_code(recovery_code)?,
        };
        self.complete_sign_in(MfaRecover, body).await
    }

    /// Proves again who the user is, with a `code` from the authenticator app or a
    /// recovery code, before a sensitive action that answered
    /// [`AuthError::StepUpRequired`]: the session is renewed (its `auth_time` is now), and
    /// the action can be tried again for the next few minutes.
    pub async fn step_up(&self, code: &str) -> Result<(), AuthError> {
        let body = code_request(code)?;
        let access = self.access_token().await?;
        self.renew_detached(access, MfaStepUp, body).await.map(|_| ())
    }

    /// POSTs `body` to `endpoint` (`/mfa/verify` or `/mfa/recover`) with the session's
    /// pending token, and keeps the verified pair it answers.
    async fn complete_sign_in<E>(&self, endpoint: E, body: E::Request) -> Result<User, AuthError>
    where
        E: Endpoint<Response = Tokens> + Send + Sync + 'static,
        E::Request: Send + Sync + 'static,
    {
        let pending = match self.inner.current_tokens() {
            None => return Err(self.inner.no_session_error()),
            Some(tokens) => tokens.mfa_pending,
        };
        if pending {
            let access = self.session_token().await?;
            self.renew_detached(access, endpoint, body).await?;
        }
        self.inner.current_user().ok_or(AuthError::NotSignedIn)
    }

    /// Sends a bearer call whose answer is this session's next token pair, and keeps that
    /// pair as a password change does (`renew.rs`): under the refresh lock, over the session
    /// it was made for only. Detached: once the server has answered, the new pair must be
    /// kept whether or not the caller is still waiting.
    async fn renew_detached<E>(
        &self,
        access: String,
        endpoint: E,
        body: E::Request,
    ) -> Result<String, AuthError>
    where
        E: Endpoint<Response = Tokens> + Send + Sync + 'static,
        E::Request: Send + Sync + 'static,
    {
        let inner = self.inner.clone();
        tokio::spawn(async move {
            inner
                .renew_session(&access, &endpoint, &body, |answer| answer.tokens)
                .await
        })
        .await
        .map_err(|_| AuthError::Protocol {
            message: "the second-factor task failed".to_owned(),
        })?
    }
}

/// The body of the routes that take a code.
fn code_request(code: &str) -> Result<MfaCodeRequest, AuthError> {
    Ok(MfaCodeRequest {
        code: clean_code(code)?,
    })
}

/// A code as typed: without the spaces apps show in it ("123 456"), non-empty and short
/// enough to be one. The error never repeats the code.
fn clean_code(code: &str) -> Result<String, AuthError> {
    let cleaned: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if cleaned.is_empty() || cleaned.chars().count() > MAX_CODE_CHARS {
        return Err(AuthError::InvalidInput {
            message: "the code is empty or too long to be one".to_owned(),
        });
    }
    Ok(cleaned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_lose_their_spaces_and_errors_never_repeat_them() {
        assert_eq!(clean_code(" 123 456\n").unwrap(), "123456");
        assert_eq!(clean_code("abcd-efgh").unwrap(), "abcd-efgh");
        for bad in ["", "   ", &"9".repeat(65)] {
            let error = clean_code(bad).unwrap_err();
            assert!(matches!(error, AuthError::InvalidInput { .. }));
        }
        let long = format!("secret{}", "x".repeat(80));
        assert!(!clean_code(&long).unwrap_err().to_string().contains("secret"));
    }
}
