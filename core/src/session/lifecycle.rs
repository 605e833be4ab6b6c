//! Starting and ending a session: a sign-in or sign-up made with this device's identity
//! (starting over with a new one if the server refuses it), the session it starts, and the
//! local end of a session (secrets wiped first, whatever the network).

use std::sync::atomic::Ordering;

use holdfast_protocol::ErrorCode;
use holdfast_protocol::wire::{AuthSession, User};

use super::inner::Inner;
use super::records::{DEVICE, DeviceIdentity, SESSION, SessionRecord, SignOutCall, Tokens, signer_error};
use super::state::{AuthState, SignOutReason};
use crate::error::AuthError;
use crate::transport::{Answer, Failure};

impl Inner {
    /// Runs a sign-in or sign-up `call` with this device's identity. If the server says the
    /// device id is revoked or belongs to someone else, the device starts over with a new id
    /// and key, once.
    pub(super) async fn with_device<F, Fut>(&self, call: F) -> Result<Answer<AuthSession>, AuthError>
    where
        F: Fn(&DeviceIdentity, String) -> Fut,
        Fut: std::future::Future<Output = Result<Answer<AuthSession>, Failure>>,
    {
        self.opened()?;
        let mut clock_corrected = false;
        let mut attempt = 0;
        while attempt < 2 {
            let device = self.device_identity().await?;
            let public_key = device.signer.public_jwk().map_err(signer_error)?.to_wire_string();
            let offset = self.clock_offset_ms.load(Ordering::Relaxed);
            match call(&device, public_key).await {
                Ok(answer) => {
                    self.observe_server_time(answer.server_time_ms);
                    return Ok(answer);
                }
                // The token request's proof was dated by a clock this device had not yet
                // learned (a first sign-in on a device whose clock is off): once the answer
                // corrected it, the request is made again with a fresh proof.
                Err(
                    failure @ Failure::Rejected {
                        code: Some(ErrorCode::ProofInvalid),
                        ..
                    },
                ) if !clock_corrected => {
                    self.observe_server_time(failure.server_time_ms());
                    if self.clock_offset_ms.load(Ordering::Relaxed) == offset {
                        return Err(failure.into_sign_in_error());
                    }
                    clock_corrected = true;
                    continue;
                }
                Err(Failure::Rejected {
                    code: Some(ErrorCode::DeviceRevoked | ErrorCode::DeviceConflict),
                    ..
                }) if attempt == 0 && self.host_signer.is_none() => {
                    tracing::info!(
                        "the device id is revoked or taken; starting over with a new device identity"
                    );
                    self.forget_device().await?;
                    attempt += 1;
                }
                Err(failure) => {
                    self.observe_server_time(failure.server_time_ms());
                    return Err(failure.into_sign_in_error());
                }
            }
        }
        Err(AuthError::Protocol {
            message: "the server refused every device identity".to_owned(),
        })
    }

    pub(super) async fn start_session(&self, answer: Answer<AuthSession>) -> Result<User, AuthError> {
        let session = answer.value;
        self.confirm_clock(&session.tokens.access_token, answer.server_time_ms)?;
        let tokens = Tokens::received(
            &session.tokens.access_token,
            &session.tokens.refresh_token,
            self.server_now_ms(),
        )?;
        let record = SessionRecord {
            user: session.user.clone(),
            access_token: session.tokens.access_token.clone(),
            refresh_token: session.tokens.refresh_token.clone(),
        };
        {
            let _write = self.session_write.lock().await;
            self.save_session(record).await?;
            self.set_session(session.user.clone(), tokens);
        }
        self.save_clock_offset().await;
        Ok(session.user)
    }

    /// Ends the session locally: secrets are wiped; on a device revocation or an account
    /// deletion the device key too (it can no longer sign in, and a new sign-in starts a
    /// new identity).
    pub(super) async fn sign_out_locally(&self, reason: SignOutReason) {
        self.sign_out_locally_at(reason, None).await;
    }

    /// [`Inner::sign_out_locally`], only if the stored session is still at
    /// `expected_version` (`None`: whatever is stored). Returns whether it signed out:
    /// `false` when the stored session changed meanwhile (a sign-out, or a sign-in since),
    /// and nothing was touched.
    pub(super) async fn sign_out_locally_at(
        &self,
        reason: SignOutReason,
        expected_version: Option<i64>,
    ) -> bool {
        let ns = self.namespace.clone();
        let wipe_device = reason.wipes_device();
        let write = self.session_write.lock().await;
        let result = self
            .blocking(move |opened| {
                if let Some(expected) = expected_version {
                    let stored = opened.store.get(&ns, SESSION)?.map(|record| record.version);
                    if stored != Some(expected) {
                        return Ok(false);
                    }
                }
                let names: &[&str] = if wipe_device {
                    &[SESSION, DEVICE]
                } else {
                    &[SESSION]
                };
                opened.store.delete_namespace_secrets(&ns, names)?;
                Ok(true)
            })
            .await;
        match result {
            Ok(false) => return false,
            Ok(true) => {}
            // Signed out in memory whatever the store says: the server ended the session.
            Err(error) => tracing::error!(%error, "could not wipe the stored session"),
        }
        self.clear_session();
        self.set_state(AuthState::SignedOut { reason });
        drop(write);
        if wipe_device {
            *self.device.lock().await = None;
        }
        true
    }

    /// The user signed out: the session is deleted and its revocation queued (one
    /// transaction), then forgotten in memory. The caller delivers the outbox.
    pub(super) async fn sign_out_and_queue(&self, tokens: &Tokens) -> Result<(), AuthError> {
        let call = SignOutCall {
            access_token: tokens.access.to_string(),
            refresh_token: tokens.refresh.to_string(),
        };
        let write = self.session_write.lock().await;
        self.delete_session_and_queue(call).await?;
        self.clear_session();
        self.set_state(AuthState::SignedOut {
            reason: SignOutReason::UserSignedOut,
        });
        drop(write);
        Ok(())
    }
}
