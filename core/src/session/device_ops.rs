//! The device API: identity, registration, challenges, proofs (also as the headers of the
//! app's own requests), the device list, revocation and re-login with the device key.

use std::fmt;

use holdfast_protocol::ErrorCode;
use holdfast_protocol::endpoint::{Devices, NoBody, RegisterDevice, RevokeDevice};
use holdfast_protocol::validate::sanitize_name;
use holdfast_protocol::wire::{Device, DeviceRegisterRequest};

use super::AuthClient;
use super::records::signer_error;
use super::state::SignOutReason;
use crate::device::sign_challenge;
use crate::error::AuthError;

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

impl AuthClient {
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
        let registration = self.authorized_with(&access, &RegisterDevice, &request).await?;
        self.inner
            .store_device_credential(registration.device_credential.clone())
            .await;
        Ok(registration.device)
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
        self.inner.proof_for(&access, method, url, nonce).await
    }

    /// Every device of the signed-in user, revoked ones included.
    pub async fn list_devices(&self) -> Result<Vec<Device>, AuthError> {
        self.authorized(&Devices, &NoBody).await
    }

    /// Revokes one of the user's devices. Revoking this device signs it out and wipes its
    /// secrets.
    pub async fn revoke_device(&self, device_id: &str) -> Result<(), AuthError> {
        let revoke = RevokeDevice::new(device_id).ok_or_else(|| AuthError::InvalidInput {
            message: "this device id cannot be used in a URL".to_owned(),
        })?;
        self.authorized(&revoke, &NoBody).await?;
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
