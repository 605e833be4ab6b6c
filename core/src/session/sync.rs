//! Sync connections (PROTOCOL 5): the credentials a connection's handshake carries, their
//! renewal in place, and what a refusal by the sync server does to the session.

use std::fmt;

use holdfast_protocol::ErrorCode;

use super::AuthClient;
use super::inner::Inner;
use super::state::SignOutReason;
use crate::error::AuthError;

/// What a sync connection's handshake carries (PROTOCOL 5 and 6.1).
#[derive(Clone, PartialEq, Eq)]
pub struct SyncCredentials {
    /// A fresh access token.
    pub access_token: String,
    /// This device's id.
    pub device_id: String,
    /// A device proof for `GET` on the sync URL, bound to `access_token`.
    pub proof: String,
}

impl fmt::Debug for SyncCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SyncCredentials")
            .field("device_id", &self.device_id)
            .finish_non_exhaustive()
    }
}

/// Why a sync server refused or closed this device's connection, as the app's sync code
/// saw it: hand it to [`AuthClient::handle_sync_refusal`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncRefusal {
    /// The handshake was refused with an HTTP error (PROTOCOL 5: the code's status and
    /// `{"error", "code"}` body).
    Http {
        /// The HTTP status.
        status: u16,
        /// The body's `code`, when there was one.
        code: Option<String>,
    },
    /// An open connection was closed with this WebSocket close code (PROTOCOL 5: 4001
    /// `DEVICE_REVOKED`, 4002 `TOKEN_REVOKED`, 4003 `USER_NOT_FOUND`, 4004
    /// `TOKEN_EXPIRED`, 4401 a refused handshake or renewal whose reason is the code).
    Close {
        /// The close code.
        code: u16,
        /// The close reason (the protocol code for 4001-4004 and 4401), or empty.
        reason: String,
    },
}

impl SyncRefusal {
    /// The protocol's reason, when the refusal names one this client acts on.
    fn code(&self) -> Option<ErrorCode> {
        match self {
            SyncRefusal::Close { code: 4001, .. } => Some(ErrorCode::DeviceRevoked),
            SyncRefusal::Close { code: 4002, .. } => Some(ErrorCode::TokenRevoked),
            SyncRefusal::Close { code: 4003, .. } => Some(ErrorCode::UserNotFound),
            SyncRefusal::Close { code: 4004, .. } => Some(ErrorCode::TokenExpired),
            SyncRefusal::Close { code: 4401, reason } => ErrorCode::parse(reason),
            SyncRefusal::Close { .. } => None,
            SyncRefusal::Http { status, code } => match code.as_deref().and_then(ErrorCode::parse) {
                Some(code) => Some(code),
                None if *status == 401 => Some(ErrorCode::TokenInvalid),
                None if *status == 403 => Some(ErrorCode::Forbidden),
                None => None,
            },
        }
    }
}

impl AuthClient {
    /// Tells the client that a sync server refused or closed this device's connection, so
    /// the session follows at once rather than at its next refresh: a revoked device or a
    /// deleted account signs out (secrets wiped, with that reason), and a token the sync
    /// server found expired, revoked or invalid, a session it found expired or an account
    /// disabled is refreshed now, which ends in a device re-login or a sign-out (with the
    /// server's reason) exactly as a refused refresh would. Anything else (a
    /// rate limit, a server going away, an unknown code) changes nothing. Returns the
    /// refresh's error when one was made and failed.
    pub async fn handle_sync_refusal(&self, refusal: SyncRefusal) -> Result<(), AuthError> {
        match refusal.code() {
            Some(ErrorCode::DeviceRevoked) => {
                self.inner.sign_out_locally(SignOutReason::DeviceRevoked).await;
                Ok(())
            }
            Some(ErrorCode::UserNotFound) => {
                self.inner.sign_out_locally(SignOutReason::AccountDeleted).await;
                Ok(())
            }
            // The refresh learns why a session ended (PROTOCOL 8) and signs out with it.
            Some(
                ErrorCode::TokenExpired
                | ErrorCode::TokenRevoked
                | ErrorCode::TokenInvalid
                | ErrorCode::ProofInvalid
                | ErrorCode::SessionExpired
                | ErrorCode::AccountDisabled,
            ) => {
                if self.inner.current_tokens().is_none() {
                    return Ok(());
                }
                self.refresh().await.map(|_| ())
            }
            _ => Ok(()),
        }
    }

    /// What a sync connection to `sync_url` presents: a fresh access token, the device id
    /// and a proof for `GET sync_url`.
    pub async fn sync_credentials(&self, sync_url: &str) -> Result<SyncCredentials, AuthError> {
        let access_token = self.access_token().await?;
        self.sync_credentials_with(access_token, sync_url).await
    }

    /// The credentials of a sync connection to `sync_url` made from `access_token`.
    async fn sync_credentials_with(
        &self,
        access_token: String,
        sync_url: &str,
    ) -> Result<SyncCredentials, AuthError> {
        let device_id = self.device_id().await?;
        let proof = self.inner.proof_for(&access_token, "GET", sync_url, None).await?;
        Ok(SyncCredentials {
            access_token,
            device_id,
            proof,
        })
    }

    /// What an open sync connection to `sync_url` sends to renew itself in place (PROTOCOL 5)
    /// when the server says its token expires at `expires_at_ms` (the `expiresAt` of its
    /// `reauth-required` message, server time): credentials as [`AuthClient::sync_credentials`]
    /// whose access token outlives that one, refreshed now if the token in hand does not.
    pub async fn sync_renewal(
        &self,
        sync_url: &str,
        expires_at_ms: i64,
    ) -> Result<SyncCredentials, AuthError> {
        let mut access_token = self.access_token().await?;
        let outlives = |inner: &Inner, token: &str| {
            inner
                .current_tokens()
                .is_some_and(|tokens| *tokens.access == *token && tokens.access_expires_ms > expires_at_ms)
        };
        if !outlives(&self.inner, &access_token) {
            access_token = self.refresh().await?;
            if !outlives(&self.inner, &access_token) {
                return Err(AuthError::Protocol {
                    message:
                        "the refreshed access token does not outlive the one the sync server is expiring"
                            .to_owned(),
                });
            }
        }
        self.sync_credentials_with(access_token, sync_url).await
    }
}
