//! The device API: identity, registration, challenges, proofs, the device list, revocation,
//! silent re-login, and sync credentials.

use std::fmt;
use std::sync::atomic::Ordering;

use holdfast_protocol::validate::sanitize_name;
use holdfast_protocol::wire::{Device, DeviceRegisterRequest};
use holdfast_protocol::{Claims, ErrorCode};

use super::records::DeviceIdentity;
use super::records::signer_error;
use super::{AuthClient, Inner, SignOutReason};
use crate::device::{SignerError, device_proof, sign_challenge};
use crate::error::AuthError;
use crate::transport::{Answer, Failure, Transport};

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

/// The headers of a request to the app's own backend ([`AuthClient::request_headers`]).
#[derive(Clone, PartialEq, Eq)]
pub struct RequestHeaders {
    /// The `Authorization` value: `DPoP <token>` for a token bound to the device key
    /// (RFC 9449 section 7.1), `Bearer <token>` otherwise.
    pub authorization: String,
    /// The `DPoP` value, when the token is bound: a proof for this method and URL made
    /// from the same token (its `ath` matches).
    pub dpop: Option<String>,
}

impl fmt::Debug for RequestHeaders {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestHeaders")
            .field("bound", &self.dpop.is_some())
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
    /// server found expired, revoked or invalid is refreshed now, which ends in a device
    /// re-login or a sign-out exactly as a refused refresh would. Anything else (a
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
            Some(
                ErrorCode::TokenExpired
                | ErrorCode::TokenRevoked
                | ErrorCode::TokenInvalid
                | ErrorCode::ProofInvalid,
            ) => {
                if self.inner.current_tokens().is_none() {
                    return Ok(());
                }
                self.refresh().await.map(|_| ())
            }
            _ => Ok(()),
        }
    }

    /// The headers for a request of `method` to `url` on the app's own backend: one fresh
    /// access token (refreshed if need be, as [`AuthClient::access_token`]) and, when it is
    /// bound to the device key, a proof for exactly this method and URL made from that same
    /// token, so its `ath` always matches. Make a new pair for every request: a proof is
    /// good once.
    pub async fn request_headers(&self, method: &str, url: &str) -> Result<RequestHeaders, AuthError> {
        let access = self.access_token().await?;
        let proof = self.inner.bearer_proof(&access, method, url).await?;
        let scheme = if proof.is_some() { "DPoP" } else { "Bearer" };
        Ok(RequestHeaders {
            authorization: format!("{scheme} {access}"),
            dpop: proof,
        })
    }

    /// This device's id (created with its key on first use).
    pub async fn device_id(&self) -> Result<String, AuthError> {
        Ok(self.inner.device_identity().await?.id)
    }

    /// The RFC 7638 thumbprint of this device's key (what the server binds tokens to).
    pub async fn device_thumbprint(&self) -> Result<String, AuthError> {
        let device = self.inner.device_identity().await?;
        Ok(device.signer.public_jwk().map_err(signer_error)?.thumbprint())
    }

    /// Registers this device under `name` and keeps the device credential in the vault.
    pub async fn register_device(&self, name: &str) -> Result<Device, AuthError> {
        let name = sanitize_name(name);
        if name.is_empty() {
            return Err(AuthError::InvalidInput {
                message: "the device name is empty".to_owned(),
            });
        }
        let device = self.inner.device_identity().await?;
        let public_key = device.signer.public_jwk().map_err(signer_error)?.to_wire_string();
        let access = self.access_token().await?;
        let request = DeviceRegisterRequest {
            device_id: device.id.clone(),
            public_key,
            name,
        };
        let (transport, access, request) = (&self.inner.transport, access.as_str(), &request);
        let url = transport.url_for("/device/register");
        let answer = self
            .inner
            .bearer_call(access, "POST", &url, |proof| async move {
                transport.register_device(access, proof.as_deref(), request).await
            })
            .await?
            .map_err(Failure::into_auth_error)?;
        self.inner
            .store_device_credential(answer.value.device_credential.clone())
            .await;
        Ok(answer.value.device)
    }

    /// Signs a server challenge with the device key (P1363, base64url).
    pub async fn sign_challenge(&self, challenge: &str) -> Result<String, AuthError> {
        let device = self.inner.device_identity().await?;
        sign_challenge(device.signer.as_ref(), challenge).map_err(|error| match error {
            crate::device::SignerError::InvalidInput { message } => AuthError::InvalidInput { message },
            other => signer_error(other),
        })
    }

    /// A device proof (PROTOCOL 6.1) for `method` on `url`, bound to a fresh access token
    /// and dated by the server's clock (learned from its `Date` header), so a device whose
    /// clock is off still makes proofs the server accepts.
    pub async fn device_proof(
        &self,
        method: &str,
        url: &str,
        nonce: Option<&str>,
    ) -> Result<String, AuthError> {
        let access = self.access_token().await?;
        self.proof_for(&access, method, url, nonce).await
    }

    async fn proof_for(
        &self,
        access: &str,
        method: &str,
        url: &str,
        nonce: Option<&str>,
    ) -> Result<String, AuthError> {
        let device = self.inner.device_identity().await?;
        let now_secs = self.inner.server_now_ms().div_euclid(1000);
        device_proof(device.signer.as_ref(), method, url, access, nonce, now_secs).map_err(
            |error| match error {
                crate::device::SignerError::InvalidInput { message } => AuthError::InvalidInput { message },
                other => signer_error(other),
            },
        )
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
        let proof = self.proof_for(&access_token, "GET", sync_url, None).await?;
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

    /// Every device of the signed-in user, revoked ones included.
    pub async fn list_devices(&self) -> Result<Vec<Device>, AuthError> {
        let access = self.access_token().await?;
        let (transport, access) = (&self.inner.transport, access.as_str());
        let url = transport.url_for("/devices");
        let answer = self
            .inner
            .bearer_call(access, "GET", &url, |proof| async move {
                transport.devices(access, proof.as_deref()).await
            })
            .await?
            .map_err(Failure::into_auth_error)?;
        Ok(answer.value)
    }

    /// Revokes one of the user's devices. Revoking this device signs it out and wipes its
    /// secrets.
    pub async fn revoke_device(&self, device_id: &str) -> Result<(), AuthError> {
        let access = self.access_token().await?;
        let (transport, access) = (&self.inner.transport, access.as_str());
        let route = Transport::device_route(device_id).map_err(Failure::into_auth_error)?;
        let url = transport.url_for(&route);
        self.inner
            .bearer_call(access, "DELETE", &url, |proof| async move {
                transport.revoke_device(access, proof.as_deref(), device_id).await
            })
            .await?
            .map_err(Failure::into_auth_error)?;
        let own = self
            .inner
            .stored_device()
            .await?
            .is_some_and(|device| device.id == device_id);
        if own {
            self.inner.sign_out_locally(SignOutReason::DeviceRevoked).await;
        }
        Ok(())
    }

    /// Signs in again with the device key alone (PROTOCOL 6.4), e.g. after the refresh
    /// token was lost. Fails with `SignInRequired` if the device was revoked.
    pub async fn reauthenticate_with_device(&self) -> Result<(), AuthError> {
        if self.inner.stored_device().await?.is_none() {
            return Err(AuthError::SignInRequired {
                code: ErrorCode::DeviceNotFound,
            });
        }
        let inner = self.inner.clone();
        tokio::spawn(async move {
            let _gate = inner.refresh_gate.lock().await;
            let version = inner.session_version().await?;
            inner.device_relogin(ErrorCode::TokenInvalid, version).await
        })
        .await
        .map_err(|_| AuthError::Protocol {
            message: "the re-login task failed".to_owned(),
        })?
        .map(|_| ())
    }
}

impl Inner {
    /// Runs a bearer call of `method` on `url` with `access`, giving `call` the device proof
    /// the token needs (see [`Inner::bearer_proof`]), and learns the server's clock from the
    /// answer. A proof refused while this device's idea of the server's time was off is made
    /// again, once, with the corrected time.
    ///
    /// The outer error is a proof that could not be made (a device key unavailable now);
    /// the inner result is the call's.
    pub(super) async fn bearer_call<T, Call>(
        &self,
        access: &str,
        method: &str,
        url: &str,
        call: impl Fn(Option<String>) -> Call,
    ) -> Result<Result<Answer<T>, Failure>, AuthError>
    where
        Call: Future<Output = Result<Answer<T>, Failure>>,
    {
        self.proven_call(access, access, method, url, call).await
    }

    /// [`Inner::bearer_call`] for any request a bound token needs a proof for: the proof is
    /// made when `bound_token` is bound to this device's key, with the `ath` of `ath_token`
    /// (the access token of a bearer call; empty for a refresh, a token request).
    pub(super) async fn proven_call<T, Call>(
        &self,
        bound_token: &str,
        ath_token: &str,
        method: &str,
        url: &str,
        call: impl Fn(Option<String>) -> Call,
    ) -> Result<Result<Answer<T>, Failure>, AuthError>
    where
        Call: Future<Output = Result<Answer<T>, Failure>>,
    {
        let mut corrected = false;
        loop {
            let proof = self.proof_if_bound(bound_token, method, url, ath_token).await?;
            let sent_proof = proof.is_some();
            let result = call(proof).await;
            let offset = self.clock_offset_ms.load(Ordering::Relaxed);
            match &result {
                Ok(answer) => self.observe_server_time(answer.server_time_ms),
                Err(failure) => self.observe_server_time(failure.server_time_ms()),
            }
            let refused_proof = matches!(
                &result,
                Err(Failure::Rejected {
                    code: Some(ErrorCode::ProofInvalid),
                    ..
                })
            );
            let clock_moved = self.clock_offset_ms.load(Ordering::Relaxed) != offset;
            if sent_proof && refused_proof && clock_moved && !corrected {
                corrected = true;
                continue;
            }
            return Ok(result);
        }
    }

    /// The device proof (PROTOCOL 6.1) a bearer call of `method` on `url` with `access`
    /// carries: one when the token is bound to a key (`cnf.jkt`) and that key is this
    /// device's, dated by the server's clock. `None` for an unbound token, and when the key
    /// is gone or replaced (device revoked, identity wiped): the server then refuses the
    /// bound token with `PROOF_INVALID`, as definitively as it would refuse the token
    /// anyway. An existing key that cannot sign now (a locked device) is an error.
    pub(super) async fn bearer_proof(
        &self,
        access: &str,
        method: &str,
        url: &str,
    ) -> Result<Option<String>, AuthError> {
        self.proof_if_bound(access, method, url, access).await
    }

    /// The proof a token request to `route` carries when this client binds its tokens
    /// ([`ClientConfig::bind_tokens`](super::ClientConfig::bind_tokens)): by `device`, for
    /// `POST` on the route's URL, with no `ath` (PROTOCOL 3 and 6.1). A key that cannot
    /// sign now fails the request rather than quietly asking for bearer tokens.
    pub(super) fn token_request_proof(
        &self,
        device: &DeviceIdentity,
        route: &str,
    ) -> Result<Option<String>, Failure> {
        if !self.bind_tokens {
            return Ok(None);
        }
        let now_secs = self.server_now_ms().div_euclid(1000);
        let url = self.transport.url_for(route);
        device_proof(device.signer.as_ref(), "POST", &url, "", None, now_secs)
            .map(Some)
            .map_err(|error| Failure::InvalidRequest {
                message: format!("the device key cannot sign a proof: {error}"),
            })
    }

    /// A proof for `method` on `url` when `bound_token` is bound (`cnf.jkt`) to this
    /// device's key; its `ath` is the hash of `ath_token` (empty for a token request).
    pub(super) async fn proof_if_bound(
        &self,
        bound_token: &str,
        method: &str,
        url: &str,
        ath_token: &str,
    ) -> Result<Option<String>, AuthError> {
        let Some(jkt) = Claims::decode_unverified(bound_token)
            .ok()
            .and_then(|claims| claims.cnf)
            .map(|cnf| cnf.jkt)
        else {
            return Ok(None);
        };
        let Some(device) = self.stored_device().await? else {
            return Ok(None);
        };
        let thumbprint = match device.signer.public_jwk() {
            Ok(jwk) => jwk.thumbprint(),
            Err(SignerError::InvalidKey { .. }) => return Ok(None),
            Err(error) => return Err(signer_error(error)),
        };
        if thumbprint != jkt {
            return Ok(None);
        }
        let now_secs = self.server_now_ms().div_euclid(1000);
        match device_proof(device.signer.as_ref(), method, url, ath_token, None, now_secs) {
            Ok(proof) => Ok(Some(proof)),
            Err(SignerError::InvalidKey { .. }) => Ok(None),
            Err(SignerError::InvalidInput { message }) => Err(AuthError::InvalidInput { message }),
            Err(error) => Err(signer_error(error)),
        }
    }
}
