//! `access_token()` and the refresh behind it: single-flight, detached, cross-process,
//! classified failures, and silent device re-login (PROTOCOL 6.4).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use holdfast_protocol::ErrorCode;
use holdfast_protocol::wire::{TokenPair, User, VerifyRequest};

use super::records::{SessionRecord, Tokens};
use super::{AuthClient, AuthEvent, AuthState, Inner, SignOutReason};
use crate::device::sign_challenge;
use crate::error::AuthError;
use crate::store::RefreshLock;
use crate::transport::Failure;

/// How long a refresh waits for another process's refresh to finish.
const LOCK_WAIT: Duration = Duration::from_secs(60);

/// What a refresh is for, which decides whether one that another caller (or process)
/// completed meanwhile already serves it.
#[derive(Debug, Clone, Copy)]
pub(super) enum Want {
    /// A token usable for a request now: a fresh one is enough.
    Usable,
    /// The background refresh: a token not yet at 80% of its lifetime is enough.
    Ahead,
    /// A rotation after the one the caller saw (`AuthClient::refresh`).
    Rotated {
        /// The token generation the caller saw.
        seen: u64,
    },
}

impl AuthClient {
    /// A valid access token: from memory while fresh (no I/O), otherwise after a refresh.
    ///
    /// Offline with an expired token this fails with [`AuthError::Transient`] and the user
    /// stays signed in; it fails with [`AuthError::SignInRequired`] only when the server
    /// definitively refused the session and device re-login was not possible.
    pub async fn access_token(&self) -> Result<String, AuthError> {
        if let Some(token) = self.inner.fresh_access_token() {
            return Ok(token);
        }
        // One deadline over the whole refresh (the refresh, a challenge and a verify could
        // each take a full request timeout); the refresh itself goes on detached.
        tokio::time::timeout(self.inner.token_deadline, self.refresh_now(Want::Usable))
            .await
            .unwrap_or(Err(AuthError::Transient {
                cause: crate::error::TransientCause::Timeout,
            }))
    }

    /// Rotates the tokens now, even while the access token is fresh (e.g. after the user's
    /// profile changed on the server), and returns the new access token. Callers arriving
    /// while a refresh is in flight share it. Failures are those of
    /// [`AuthClient::access_token`]: a network error keeps the session.
    pub async fn refresh(&self) -> Result<String, AuthError> {
        let seen = self.inner.token_generation.load(Ordering::SeqCst);
        self.refresh_now(Want::Rotated { seen }).await
    }

    /// Refreshes if the token is stale, and delivers queued server calls (sign-outs made
    /// offline). For background tasks and connectivity changes.
    pub async fn refresh_if_needed(&self) -> Result<(), AuthError> {
        let inner = self.inner.clone();
        tokio::spawn(async move { inner.deliver_outbox(true).await });
        // The network may be back: the background task retries now rather than at the end
        // of its backoff.
        self.inner.schedule.wake();
        if self.inner.current_tokens().is_none() {
            return Ok(());
        }
        self.access_token().await.map(|_| ())
    }

    /// Runs the refresh in a detached task: a caller that gives up (a cancelled future, a
    /// closed screen) cannot tear it; the rotated pair is persisted and kept for the next
    /// caller either way.
    async fn refresh_now(&self, want: Want) -> Result<String, AuthError> {
        let inner = self.inner.clone();
        tokio::spawn(async move { inner.refresh_single_flight(want).await })
            .await
            .map_err(|_| AuthError::Protocol {
                message: "the refresh task failed".to_owned(),
            })?
    }
}

impl Inner {
    pub(super) fn fresh_access_token(&self) -> Option<String> {
        let tokens = self.current_tokens()?;
        tokens
            .is_fresh(self.server_now_ms())
            .then(|| tokens.access.to_string())
    }

    /// The access token if the tokens in memory already serve `want`.
    fn serves(&self, want: Want) -> Option<String> {
        let tokens = self.current_tokens()?;
        let now = self.server_now_ms();
        let enough = match want {
            Want::Usable => tokens.is_fresh(now),
            Want::Ahead => now < tokens.refresh_due_ms(),
            Want::Rotated { seen } => {
                self.token_generation.load(Ordering::SeqCst) != seen && tokens.is_fresh(now)
            }
        };
        enough.then(|| tokens.access.to_string())
    }

    /// One refresh at a time in this process. Callers that waited while a refresh was in
    /// flight share its outcome, failures included: 20 callers during a failing refresh
    /// make one request, and 10 callers during a stalled one wait one timeout, not ten.
    pub(super) async fn refresh_single_flight(self: Arc<Self>, want: Want) -> Result<String, AuthError> {
        // Refreshes completed before this caller arrived are not its business; one that
        // completes while it waits for the gate is.
        let seen = self.refresh_outcome().completed;
        let _gate = self.refresh_gate.lock().await;
        // Another task may have refreshed while this one waited.
        if let Some(token) = self.serves(want) {
            return Ok(token);
        }
        {
            let outcome = self.refresh_outcome();
            if outcome.completed != seen
                && let Some(failure) = &outcome.failure
            {
                return Err(failure.clone());
            }
        }
        let result = self.refresh_under_gate(want).await;
        let mut outcome = self.refresh_outcome();
        outcome.completed += 1;
        outcome.failure = result.as_ref().err().cloned();
        drop(outcome);
        result
    }

    fn refresh_outcome(&self) -> std::sync::MutexGuard<'_, super::RefreshOutcome> {
        self.refresh_outcome
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The refresh proper, with the process's refresh gate held by the caller.
    async fn refresh_under_gate(self: &Arc<Self>, want: Want) -> Result<String, AuthError> {
        let Some(held) = self.current_tokens() else {
            return Err(self.no_session_error());
        };
        let path = self.storage_path.clone();
        let _lock = tokio::task::spawn_blocking(move || RefreshLock::acquire_within(&path, LOCK_WAIT))
            .await
            .map_err(|_| AuthError::StorageUnavailable {
                message: "waiting for the refresh lock failed".to_owned(),
            })??;
        // Under the lock, the store is the truth: another process may have refreshed (or
        // signed out) since this one read it.
        let Some((stored, version)) = self.load_session().await? else {
            return Err(self.signed_out_meanwhile());
        };
        let refresh_token = if *stored.refresh_token != **held.refresh {
            // Another process refreshed: adopt its pair, which may be all that was wanted.
            let tokens = Tokens::new(&stored.access_token, &stored.refresh_token)?;
            let next = stored.refresh_token.clone();
            {
                let _write = self.session_write.lock().await;
                if self.current_tokens().is_none() {
                    // Signed out here since the store was read.
                    return Err(AuthError::NotSignedIn);
                }
                self.set_session(stored.user.clone(), tokens);
            }
            self.emit(AuthEvent::Refreshed);
            if let Some(token) = self.serves(want) {
                return Ok(token);
            }
            next
        } else {
            stored.refresh_token.clone()
        };

        // A bound family is refreshed only with a proof by its key (PROTOCOL 3), made again
        // once if refused while the clock was off: the refresh token was not spent (the
        // server checks the proof before rotating).
        let url = self.transport.url_for("/refresh");
        let transport = &self.transport;
        let refresh_token = &refresh_token;
        let result = self
            .proven_call(refresh_token, "", "POST", &url, |proof| async move {
                transport.refresh(refresh_token, proof.as_deref()).await
            })
            .await?;
        match result {
            Ok(answer) => {
                self.adopt_pair(
                    stored.user.clone(),
                    Some(version),
                    answer.value,
                    answer.server_time_ms,
                )
                .await
            }
            Err(failure) => self.after_refresh_failure(failure, version).await,
        }
    }

    /// The stored session went away (a sign-out here or in another process): so does the
    /// one in memory.
    fn signed_out_meanwhile(&self) -> AuthError {
        self.clear_session();
        self.set_state(AuthState::SignedOut {
            reason: SignOutReason::UserSignedOut,
        });
        AuthError::NotSignedIn
    }

    /// Persists a rotated pair, then shows it: nobody sees tokens that a crash could lose.
    /// Only if the stored session is still the one the refresh started from
    /// (`expected_version`): a sign-out or sign-in meanwhile wins, and the pair is dropped
    /// (a sign-out revoked its family on the server, or will when the outbox delivers it).
    async fn adopt_pair(
        &self,
        user: User,
        expected_version: Option<i64>,
        pair: TokenPair,
        answer_date_ms: Option<i64>,
    ) -> Result<String, AuthError> {
        self.confirm_clock(&pair.access_token, answer_date_ms)?;
        let tokens = Tokens::received(&pair.access_token, &pair.refresh_token, self.server_now_ms())?;
        let record = SessionRecord {
            user: user.clone(),
            access_token: pair.access_token.clone(),
            refresh_token: pair.refresh_token.clone(),
        };
        let write = self.session_write.lock().await;
        if !self.replace_session(record, expected_version).await? {
            drop(write);
            return self.superseded().await;
        }
        let access = tokens.access.to_string();
        self.set_session(user, tokens);
        drop(write);
        self.emit(AuthEvent::Refreshed);
        self.save_clock_offset().await;
        Ok(access)
    }

    /// The stored session changed while a refresh was in flight: whatever is stored now
    /// is the session (a sign-in's, or none after a sign-out).
    async fn superseded(&self) -> Result<String, AuthError> {
        let _write = self.session_write.lock().await;
        match self.load_session().await? {
            Some((record, _)) => {
                let tokens = Tokens::new(&record.access_token, &record.refresh_token)?;
                let access = tokens.access.to_string();
                self.set_session(record.user.clone(), tokens);
                Ok(access)
            }
            None => Err(self.signed_out_meanwhile()),
        }
    }

    async fn after_refresh_failure(&self, failure: Failure, version: i64) -> Result<String, AuthError> {
        match failure {
            Failure::Transient { cause, .. } => {
                self.mark_stale();
                self.emit(AuthEvent::RefreshFailed { cause: cause.clone() });
                Err(AuthError::Transient { cause })
            }
            Failure::Rejected {
                code: Some(ErrorCode::DeviceRevoked),
                ..
            } => {
                self.sign_out_locally(SignOutReason::DeviceRevoked).await;
                Err(AuthError::SignInRequired {
                    code: ErrorCode::DeviceRevoked,
                })
            }
            Failure::Rejected {
                code: Some(ErrorCode::UserNotFound),
                ..
            } => {
                self.sign_out_locally(SignOutReason::AccountDeleted).await;
                Err(AuthError::SignInRequired {
                    code: ErrorCode::UserNotFound,
                })
            }
            Failure::Rejected { status, code, .. } if status == 401 || status == 403 => {
                let code = code.unwrap_or(ErrorCode::TokenInvalid);
                if code == ErrorCode::RefreshReused {
                    self.emit(AuthEvent::ReuseDetected);
                }
                self.device_relogin(code, Some(version)).await
            }
            other => {
                // Not a verdict on the session (e.g. a 400 from a confused proxy): keep it.
                let error = other.into_auth_error();
                self.mark_stale();
                Err(error)
            }
        }
    }

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
                self.sign_out_locally(SignOutReason::SessionRejected { code: refused })
                    .await;
                return Err(AuthError::SignInRequired { code: refused });
            }
        };
        let attempt = || async {
            let challenge = self.transport.challenge(None, None, &device.id).await?;
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
            let proof = self.token_request_proof(&device, "/device/verify")?;
            self.transport.verify(&request, proof.as_deref()).await
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
                let user = self
                    .user
                    .read()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .clone();
                let Some(user) = user else {
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
            Err(Failure::Rejected {
                code: Some(ErrorCode::DeviceRevoked),
                ..
            }) => {
                self.sign_out_locally(SignOutReason::DeviceRevoked).await;
                Err(AuthError::SignInRequired {
                    code: ErrorCode::DeviceRevoked,
                })
            }
            Err(Failure::Rejected {
                code: Some(ErrorCode::UserNotFound),
                ..
            }) => {
                self.sign_out_locally(SignOutReason::AccountDeleted).await;
                Err(AuthError::SignInRequired {
                    code: ErrorCode::UserNotFound,
                })
            }
            Err(_) => {
                self.sign_out_locally(SignOutReason::SessionRejected { code: refused })
                    .await;
                Err(AuthError::SignInRequired { code: refused })
            }
        }
    }

    /// Why there are no tokens: the store could not be read (nothing is lost; retry after
    /// `initialize`), or nobody is signed in.
    fn no_session_error(&self) -> AuthError {
        match &*self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
        {
            AuthState::Unavailable { reason } => match *self
                .unavailable_cause
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
            {
                Some(AuthError::WrongPassphrase) => AuthError::WrongPassphrase,
                _ => AuthError::StorageUnavailable {
                    message: reason.clone(),
                },
            },
            _ => AuthError::NotSignedIn,
        }
    }

    /// The token is expired and could not be refreshed: still signed in, not fresh.
    fn mark_stale(&self) {
        let user = self
            .user
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        if let Some(user) = user {
            let fresh = self.fresh_access_token().is_some();
            self.set_state(AuthState::SignedIn {
                user,
                token_fresh: fresh,
            });
        }
    }
}
