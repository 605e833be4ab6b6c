//! Sign-up, sign-in, sign-out (local first, then the server through the outbox), and the
//! device identity those carry.

use std::sync::atomic::Ordering;

use holdfast_protocol::ErrorCode;
use holdfast_protocol::validate::{check_password_length, normalize_email};
use holdfast_protocol::wire::{AuthSession, SignInRequest, SignUpRequest, User};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::records::{DEVICE, DeviceIdentity, DeviceRecord, SESSION, SessionRecord, Tokens, signer_error};
use super::{AuthClient, AuthEvent, AuthState, Inner, SignOutReason, vault_error};
use crate::error::AuthError;
use crate::transport::{Answer, Failure};

/// Outbox kind: revoke a session on the server.
const SIGN_OUT: &str = "sign_out";

/// The payload of a queued sign-out: the tokens to revoke, sealed like every secret.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SignOutCall {
    access_token: String,
    refresh_token: String,
}

impl Drop for SignOutCall {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.access_token);
        zeroize::Zeroize::zeroize(&mut self.refresh_token);
    }
}

impl AuthClient {
    /// Creates an account and signs in, registering this device with its key.
    pub async fn sign_up(&self, email: &str, password: &str, name: Option<&str>) -> Result<User, AuthError> {
        check_credentials(email, password)?;
        let inner = &self.inner;
        let answer = inner
            .with_device(|device, public_key| {
                let request = SignUpRequest {
                    email: email.to_owned(),
                    password: password.to_owned(),
                    name: name.map(str::to_owned),
                    device_id: Some(device.id.clone()),
                    device_public_key: Some(public_key),
                    device_name: inner.device_name.clone(),
                };
                let proof = inner.token_request_proof(device, "/signup");
                async move { inner.transport.sign_up(&request, proof?.as_deref()).await }
            })
            .await?;
        inner.start_session(answer).await
    }

    /// Signs in with email and password, registering this device with its key.
    pub async fn sign_in(&self, email: &str, password: &str) -> Result<User, AuthError> {
        if email.trim().is_empty() || password.is_empty() {
            return Err(AuthError::InvalidInput {
                message: "email and password are required".to_owned(),
            });
        }
        let inner = &self.inner;
        let answer = inner
            .with_device(|device, public_key| {
                let request = SignInRequest {
                    email: email.to_owned(),
                    password: password.to_owned(),
                    device_id: Some(device.id.clone()),
                    device_public_key: Some(public_key),
                    device_name: inner.device_name.clone(),
                };
                let proof = inner.token_request_proof(device, "/signin");
                async move { inner.transport.sign_in(&request, proof?.as_deref()).await }
            })
            .await?;
        let inner = self.inner.clone();
        tokio::spawn(async move { inner.deliver_outbox(false).await });
        self.inner.start_session(answer).await
    }

    /// Signs out: local secrets are removed at once (offline too), and the server-side
    /// revocation is queued and delivered now or when the network is back.
    pub async fn sign_out(&self) -> Result<(), AuthError> {
        let Some(tokens) = self.inner.current_tokens() else {
            self.inner.set_state(AuthState::SignedOut {
                reason: SignOutReason::UserSignedOut,
            });
            return Ok(());
        };
        let call = SignOutCall {
            access_token: tokens.access.to_string(),
            refresh_token: tokens.refresh.to_string(),
        };
        let ns = self.inner.namespace.clone();
        let now = self.inner.clock.now_ms();
        let write = self.inner.session_write.lock().await;
        self.inner
            .blocking(move |opened| {
                let json = Zeroizing::new(serde_json::to_vec(&call).map_err(|_| AuthError::Protocol {
                    message: "the sign-out cannot be serialized".to_owned(),
                })?);
                let payload = opened
                    .vault
                    .seal(&ns.canonical(), SIGN_OUT, &json)
                    .map_err(vault_error)?;
                opened
                    .store
                    .delete_and_outbox_push(&ns, &[SESSION], &ns, SIGN_OUT, &payload, now)?;
                Ok(())
            })
            .await?;
        self.inner.clear_session();
        self.inner.set_state(AuthState::SignedOut {
            reason: SignOutReason::UserSignedOut,
        });
        drop(write);
        let inner = self.inner.clone();
        tokio::spawn(async move { inner.deliver_outbox(false).await });
        Ok(())
    }

    /// Delivers queued server calls now, waiting for the attempt. Returns how many are
    /// still waiting (0 when everything was delivered).
    pub async fn flush_outbox(&self) -> Result<usize, AuthError> {
        self.inner.deliver_outbox(true).await
    }
}

fn check_credentials(email: &str, password: &str) -> Result<(), AuthError> {
    normalize_email(email).map_err(|message| AuthError::InvalidInput {
        message: message.to_owned(),
    })?;
    check_password_length(password).map_err(|message| AuthError::InvalidInput {
        message: message.to_owned(),
    })
}

impl Inner {
    /// Runs a sign-in or sign-up `call` with this device's identity. If the server says the
    /// device id is revoked or belongs to someone else, the device starts over with a new id
    /// and key, once.
    async fn with_device<F, Fut>(&self, call: F) -> Result<Answer<AuthSession>, AuthError>
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

    async fn start_session(&self, answer: Answer<AuthSession>) -> Result<User, AuthError> {
        let session = answer.value;
        let tokens = Tokens::new(&session.tokens.access_token, &session.tokens.refresh_token)?;
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

    /// Ends the session locally: secrets are wiped; on revocation the device key too (it
    /// can no longer sign in, and a new sign-in starts a new identity).
    pub(super) async fn sign_out_locally(&self, reason: SignOutReason) {
        let ns = self.namespace.clone();
        let wipe_device = reason == SignOutReason::DeviceRevoked;
        let write = self.session_write.lock().await;
        let result = self
            .blocking(move |opened| {
                let names: &[&str] = if wipe_device {
                    &[SESSION, DEVICE]
                } else {
                    &[SESSION]
                };
                Ok(opened.store.delete_namespace_secrets(&ns, names)?)
            })
            .await;
        if let Err(error) = result {
            tracing::error!(%error, "could not wipe the stored session");
        }
        self.clear_session();
        self.set_state(AuthState::SignedOut { reason });
        drop(write);
        if wipe_device {
            *self.device.lock().await = None;
        }
    }

    /// The device identity, loaded from the vault or created (and stored) on first use.
    pub(super) async fn device_identity(&self) -> Result<DeviceIdentity, AuthError> {
        let mut slot = self.device.lock().await;
        if let Some(device) = slot.as_ref() {
            return Ok(device.clone());
        }
        let identity = match self.read_device_record().await? {
            Some(record) => match record.identity(self.host_signer.as_ref()) {
                Ok(identity) => identity,
                Err(error) => {
                    tracing::warn!(%error, "the stored device key is unusable; creating a new identity");
                    self.emit(AuthEvent::DeviceKeyLost);
                    self.create_device().await?
                }
            },
            None => self.create_device().await?,
        };
        *slot = Some(identity.clone());
        Ok(identity)
    }

    /// The stored device identity, without creating one.
    pub(super) async fn stored_device(&self) -> Result<Option<DeviceIdentity>, AuthError> {
        if let Some(device) = self.device.lock().await.as_ref() {
            return Ok(Some(device.clone()));
        }
        match self.read_device_record().await? {
            Some(record) => Ok(Some(record.identity(self.host_signer.as_ref())?)),
            None => Ok(None),
        }
    }

    async fn create_device(&self) -> Result<DeviceIdentity, AuthError> {
        let (record, identity) = match &self.host_signer {
            Some(host) => {
                let id = format!("dev-{}", uuid::Uuid::new_v4());
                let record = DeviceRecord {
                    device_id: id.clone(),
                    pkcs8: None,
                    credential: None,
                };
                (
                    record,
                    DeviceIdentity {
                        id,
                        signer: host.clone(),
                    },
                )
            }
            None => DeviceRecord::generate()?,
        };
        self.write_device_record(record).await?;
        Ok(identity)
    }

    async fn forget_device(&self) -> Result<(), AuthError> {
        let ns = self.namespace.clone();
        self.blocking(move |opened| Ok(opened.store.delete(&ns, DEVICE)?))
            .await?;
        *self.device.lock().await = None;
        Ok(())
    }

    pub(super) async fn read_device_record(&self) -> Result<Option<DeviceRecord>, AuthError> {
        let ns = self.namespace.clone();
        let now = self.clock.now_ms();
        let read = self
            .blocking(move |opened| super::read_sealed::<DeviceRecord>(&opened, &ns, DEVICE, now))
            .await?;
        Ok(match read {
            super::Sealed::Found(device, _) => Some(device),
            super::Sealed::Missing | super::Sealed::Quarantined => None,
        })
    }

    pub(super) async fn write_device_record(&self, record: DeviceRecord) -> Result<(), AuthError> {
        let ns = self.namespace.clone();
        self.blocking(move |opened| {
            let json = Zeroizing::new(serde_json::to_vec(&record).map_err(|_| AuthError::Protocol {
                message: "the device identity cannot be serialized".to_owned(),
            })?);
            let blob = opened
                .vault
                .seal(&ns.canonical(), DEVICE, &json)
                .map_err(vault_error)?;
            opened.store.put(&ns, DEVICE, &blob)?;
            Ok(())
        })
        .await
    }

    /// Keeps the device credential the server issued (Kora discards it).
    pub(super) async fn store_device_credential(&self, credential: String) {
        let result = async {
            let Some(mut record) = self.read_device_record().await? else {
                return Ok(());
            };
            record.credential = Some(credential);
            self.write_device_record(record).await
        };
        if let Err(error) = result.await {
            tracing::warn!(%error, "could not keep the device credential");
        }
    }

    /// Delivers outbox items: the due ones, or with `now_or_never` every one, whatever its
    /// backoff (the app says the network is back). Returns how many are still waiting.
    pub(super) async fn deliver_outbox(&self, now_or_never: bool) -> Result<usize, AuthError> {
        let ns = self.namespace.clone();
        let now = self.clock.now_ms();
        let horizon = if now_or_never { i64::MAX } else { now };
        let due = self
            .blocking(move |opened| Ok(opened.store.outbox_due(&ns, horizon)?))
            .await?;
        let mut waiting = 0;
        for item in due {
            let ns = self.namespace.clone();
            let payload = item.payload.clone();
            let call = self
                .blocking(move |opened| {
                    let plain = opened
                        .vault
                        .open(&ns.canonical(), SIGN_OUT, &payload)
                        .map_err(vault_error)?;
                    serde_json::from_slice::<SignOutCall>(&plain).map_err(|_| AuthError::Protocol {
                        message: "a queued call cannot be read".to_owned(),
                    })
                })
                .await;
            let delivered = match (item.kind.as_str(), call) {
                (SIGN_OUT, Ok(call)) => {
                    // The proof is made now, not when the sign-out was queued: it is good
                    // for 60 s. Without the device key (revoked, wiped) it goes without
                    // one, and the server's refusal is as definitive as the revocation.
                    let transport = &self.transport;
                    let (access, refresh) = (call.access_token.as_str(), call.refresh_token.as_str());
                    let url = transport.url_for("/signout");
                    let outcome = self
                        .bearer_call(access, "POST", &url, |proof| async move {
                            transport.sign_out(access, proof.as_deref(), Some(refresh)).await
                        })
                        .await;
                    match outcome {
                        Ok(Ok(_)) => true,
                        // Already revoked, expired for good, or unknown: nothing left to do.
                        Ok(Err(failure)) if failure.is_definitive() => true,
                        Ok(Err(_)) => false,
                        // The device key cannot sign now (e.g. a locked device): later.
                        Err(error) => {
                            tracing::info!(%error, "the queued sign-out waits for the device key");
                            false
                        }
                    }
                }
                // Unreadable or unknown items cannot ever be delivered; dropping them loses
                // nothing the server would accept.
                _ => true,
            };
            let id = item.id;
            let retry_at = now + backoff_ms(item.attempts);
            let result = self
                .blocking(move |opened| {
                    if delivered {
                        opened.store.outbox_done(id)?;
                    } else {
                        opened.store.outbox_retry_later(id, retry_at)?;
                    }
                    Ok(())
                })
                .await;
            if let Err(error) = result {
                tracing::warn!(%error, "could not update the outbox");
            }
            if !delivered {
                waiting += 1;
            }
        }
        Ok(waiting)
    }
}

/// Retry delay after `attempts` failed deliveries: exponential from 5 s, capped at 10 min.
fn backoff_ms(attempts: i64) -> i64 {
    let exponent = u32::try_from(attempts.clamp(0, 7)).unwrap_or(7);
    (5_000_i64 << exponent).min(600_000)
}
