//! The refresh behind `access_token()`: single-flight in this process (one gate, whose
//! outcome the callers that waited share) and across processes (the store's lock, under
//! which the stored session is the truth), persisting the rotated pair before anyone sees
//! it, and classifying failures: a transient one keeps the session, a rejection goes to
//! device re-login (`relogin.rs`) or ends the session.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use holdfast_protocol::endpoint::{Endpoint, Refresh};
use holdfast_protocol::wire::{RefreshRequest, TokenPair, User};
use holdfast_protocol::{Claims, EndReason, ErrorCode};

use super::inner::Inner;
use super::records::{SessionRecord, Tokens};
use super::state::{AuthEvent, AuthState, SignOutReason};
use crate::error::AuthError;
use crate::store::{RefreshGuard, RefreshLock};
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

impl Inner {
    pub(super) fn fresh_access_token(&self) -> Option<String> {
        let tokens = self.current_tokens()?;
        tokens
            .is_fresh(self.server_now_ms())
            .then(|| tokens.access.to_string())
    }

    /// `token`, unless it still owes its second factor: then
    /// [`AuthError::SecondFactorRequired`] (such a token is never handed to the app). The
    /// tokens in memory answer for the token they hold; another one (the tokens changed
    /// meanwhile) is read from its own claims.
    pub(super) fn refuse_pending(&self, token: String) -> Result<String, AuthError> {
        let pending = match self.current_tokens() {
            Some(tokens) if *tokens.access == token => tokens.mfa_pending,
            _ => Claims::decode_unverified(&token).is_ok_and(|claims| claims.mfa_pending()),
        };
        if pending {
            return Err(AuthError::SecondFactorRequired);
        }
        Ok(token)
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

    /// The refresh proper, with the process's refresh gate held by the caller.
    async fn refresh_under_gate(self: &Arc<Self>, want: Want) -> Result<String, AuthError> {
        let Some(held) = self.current_tokens() else {
            return Err(self.no_session_error());
        };
        let _lock = self.refresh_lock().await?;
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
        let url = self.transport.url_of(&Refresh);
        let transport = &self.transport;
        let body = &RefreshRequest {
            refresh_token: refresh_token.clone(),
        };
        let result = self
            .proven_call(
                &refresh_token,
                "",
                Refresh::ROUTE.method.as_str(),
                &url,
                |proof| async move { transport.send(&Refresh, body, None, proof.as_deref()).await },
            )
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

    /// The store's refresh lock, waited for off the executor: while it is held no process
    /// sharing the store refreshes, so the stored session is the truth. The process's
    /// refresh gate is taken first, by the caller.
    pub(super) async fn refresh_lock(&self) -> Result<RefreshGuard, AuthError> {
        let path = self.storage_path.clone();
        Ok(
            tokio::task::spawn_blocking(move || RefreshLock::acquire_within(&path, LOCK_WAIT))
                .await
                .map_err(|_| AuthError::StorageUnavailable {
                    message: "waiting for the refresh lock failed".to_owned(),
                })??,
        )
    }

    /// The stored session went away (a sign-out here or in another process): so does the
    /// one in memory. A sign-out here already said why (the user, or a server's reason),
    /// and that stands; otherwise another process signed out.
    pub(super) fn signed_out_meanwhile(&self) -> AuthError {
        self.clear_session();
        if !matches!(self.current_state(), AuthState::SignedOut { .. }) {
            self.set_state(AuthState::SignedOut {
                reason: SignOutReason::UserSignedOut,
            });
        }
        AuthError::NotSignedIn
    }

    /// Persists a rotated pair, then shows it: nobody sees tokens that a crash could lose.
    /// Only if the stored session is still the one the refresh started from
    /// (`expected_version`): a sign-out or sign-in meanwhile wins, and the pair is dropped
    /// (a sign-out revoked its family on the server, or will when the outbox delivers it).
    pub(super) async fn adopt_pair(
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
    pub(super) async fn superseded(&self) -> Result<String, AuthError> {
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

    /// A refresh of the session stored at `version` failed. A transient failure keeps it;
    /// a rejection that says the session ended (see [`session_end`]) signs out with that
    /// reason, with no device re-login (the server would refuse it, and must not be asked
    /// to bring back what the user or an operator ended); any other 401 or 403 (a Kora
    /// server, which gives no reason) goes to device re-login.
    async fn after_refresh_failure(&self, failure: Failure, version: i64) -> Result<String, AuthError> {
        if let Some((reason, code)) = session_end(&failure) {
            return self.end_session_at(Some(version), reason, code).await;
        }
        match failure {
            Failure::Transient { cause, .. } => {
                self.mark_stale();
                self.emit(AuthEvent::RefreshFailed { cause: cause.clone() });
                Err(AuthError::Transient { cause })
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

    /// The server ended the session stored at `expected_version` (`None`: whatever is
    /// stored): signs out with `reason` and fails with `code`. If the stored session changed
    /// meanwhile (signed out, or another sign-in since), that stands instead: a late
    /// verdict on an old session neither ends a new one nor rewrites why it ended.
    pub(super) async fn end_session_at(
        &self,
        expected_version: Option<i64>,
        reason: SignOutReason,
        code: ErrorCode,
    ) -> Result<String, AuthError> {
        if self.sign_out_locally_at(reason, expected_version).await {
            Err(AuthError::SignInRequired { code })
        } else {
            self.superseded().await
        }
    }
}

/// What a definitive rejection of a refresh or a device re-login says of the session, when
/// it says the session is over: how the client signs out, and the code its caller gets.
///
/// - A `reason` (PROTOCOL 8: only a Holdfast server sends one) on a 401, 403 or 404: the
///   session ended for it, and device re-login would be refused too. Except
///   [`EndReason::RefreshReused`]: a copy of the refresh token was used, not the device's
///   key, so the device may sign in again with it (PROTOCOL 6.4).
/// - Without one, the codes that end the session whatever the device key could do: a
///   revoked device, a deleted or disabled account, a session past its idle timeout or
///   lifetime (`SESSION_EXPIRED`).
///
/// `None` for everything else: a Kora server's 401 (no reason, ever), a transient failure.
pub(super) fn session_end(failure: &Failure) -> Option<(SignOutReason, ErrorCode)> {
    let Failure::Rejected {
        status, code, reason, ..
    } = failure
    else {
        return None;
    };
    if let Some(reason) = *reason
        && reason != EndReason::RefreshReused
        && matches!(*status, 401 | 403 | 404)
    {
        return Some((SignOutReason::ended(reason), code.unwrap_or(reason.code())));
    }
    let reason = match (*code)? {
        ErrorCode::DeviceRevoked => EndReason::DeviceRevoked,
        ErrorCode::UserNotFound => EndReason::AccountDeleted,
        ErrorCode::AccountDisabled => EndReason::AccountDisabled,
        ErrorCode::SessionExpired => EndReason::Expired,
        _ => return None,
    };
    Some((SignOutReason::ended(reason), reason.code()))
}
