//! Silent device re-login (PROTOCOL 6.4): when the refresh token is refused without a
//! reason the session ended (a Kora server, a lost or reused token), the device signs in
//! again with its key alone (a challenge it signs, then fresh tokens), if it is registered
//! and not revoked; otherwise the session ends with the server's reason.

use holdfast_protocol::ErrorCode;
use holdfast_protocol::endpoint::{Challenge, Verify};
use holdfast_protocol::wire::{ChallengeRequest, TokenPair, VerifyRequest};

use super::inner::Inner;
use super::refresh::session_end;
use super::state::{AuthEvent, SignOutReason};
use crate::device::sign_challenge;
use crate::error::AuthError;
use crate::transport::Failure;

impl Inner {
    /// The refresh token was refused: sign in again with the device key alone, if the
    /// device is registered and not revoked (PROTOCOL 6.4). The new pair replaces the
    /// stored session only if it is still at `expected_version`.
    pub(super) async fn device_relogin(
        &self,
        refused: ErrorCode,
        expected_version: Option<i64>,
    ) -> Result<String, AuthError> {
        let device = match self.stored_device().await {
            Ok(Some(device)) => device,
            Ok(None) | Err(_) => {
                let reason = SignOutReason::SessionRejected { code: refused };
                return self.end_session_at(expected_version, reason, refused).await;
            }
        };
        let attempt = || async {
            let body = ChallengeRequest {
                device_id: device.id.clone(),
            };
            let challenge = self.transport.send(&Challenge, &body, None, None).await?;
            self.observe_server_time(challenge.server_time_ms);
            let signature =
                sign_challenge(device.signer.as_ref(), &challenge.value.challenge).map_err(|error| {
                    Failure::InvalidRequest {
                        message: error.to_string(),
                    }
                })?;
            let request = VerifyRequest {
                device_id: device.id.clone(),
                challenge: challenge.value.challenge,
                signature,
            };
            let proof = self.token_request_proof(&device, &Verify)?;
            self.transport
                .send(&Verify, &request, None, proof.as_deref())
                .await
        };
        // A challenge that expired on the way, a proof dated by a clock just corrected, or
        // a request the server found malformed are no verdict on the device: one more try
        // with a fresh challenge, then the session is kept (stale) rather than ended.
        let not_a_verdict = |result: &Result<_, Failure>| {
            matches!(
                result,
                Err(Failure::Rejected {
                    code: Some(
                        ErrorCode::ChallengeInvalid | ErrorCode::ProofInvalid | ErrorCode::ValidationError
                    ),
                    ..
                })
            )
        };
        let mut result = attempt().await;
        if not_a_verdict(&result) {
            result = attempt().await;
        }
        if not_a_verdict(&result)
            && let Err(failure) = result
        {
            self.mark_stale();
            return Err(failure.into_auth_error());
        }
        match result {
            Ok(answer) => {
                let answer_date_ms = answer.server_time_ms;
                self.observe_server_time(answer_date_ms);
                let Some(user) = self.current_user() else {
                    return Err(AuthError::NotSignedIn);
                };
                let tokens = answer.value.tokens;
                let pair = TokenPair {
                    access_token: tokens.access_token.clone(),
                    refresh_token: tokens.refresh_token.clone(),
                };
                self.store_device_credential(tokens.device_credential.clone())
                    .await;
                tracing::info!("signed in again with the device key");
                self.adopt_pair(user, expected_version, pair, answer_date_ms)
                    .await
            }
            Err(Failure::Transient { cause, .. }) => {
                self.mark_stale();
                self.emit(AuthEvent::RefreshFailed { cause: cause.clone() });
                Err(AuthError::Transient { cause })
            }
            // Refused because the session was ended deliberately (the server says why), the
            // device revoked, the account disabled or deleted: signed out for that reason.
            Err(failure) => match session_end(&failure) {
                Some((reason, code)) => self.end_session_at(expected_version, reason, code).await,
                None => {
                    self.end_session_at(
                        expected_version,
                        SignOutReason::SessionRejected { code: refused },
                        refused,
                    )
                    .await
                }
            },
        }
    }
}
