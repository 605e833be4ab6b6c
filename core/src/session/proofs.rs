//! Device proofs (PROTOCOL 6.1) on the way out: which request carries one (a token bound
//! to this device's key, a token request when tokens are bound), made with the server's
//! clock, and made again once when refused while that clock was off.

use std::sync::atomic::Ordering;

use holdfast_protocol::endpoint::Endpoint;
use holdfast_protocol::{Claims, ErrorCode};

use super::inner::Inner;
use super::records::{DeviceIdentity, signer_error};
use crate::device::{SignerError, device_proof};
use crate::error::AuthError;
use crate::transport::{Answer, Failure};

impl Inner {
    /// Runs a call of `method` on `url` that a bound token needs a proof for, giving `call`
    /// the proof: one when `bound_token` is bound to this device's key, with the `ath` of
    /// `ath_token` (the access token of a bearer call; empty for a refresh, a token
    /// request). Learns the server's clock from the answer; a proof refused while this
    /// device's idea of the server's time was off is made again, once, with the corrected
    /// time.
    ///
    /// The outer error is a proof that could not be made (a device key unavailable now);
    /// the inner result is the call's.
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

    /// Sends `endpoint` with the bearer token `access`: the device proof the token needs,
    /// made for the endpoint's method and the URL actually sent, and the clock-corrected
    /// retry of [`Inner::proven_call`]. Every bearer call of the client goes through here.
    pub(super) async fn send_bearer<E: Endpoint>(
        &self,
        access: &str,
        endpoint: &E,
        body: &E::Request,
    ) -> Result<Result<Answer<E::Response>, Failure>, AuthError> {
        let transport = &self.transport;
        let url = transport.url_of(endpoint);
        let method = E::ROUTE.method.as_str();
        self.proven_call(access, access, method, &url, |proof| async move {
            transport
                .send(endpoint, body, Some(access), proof.as_deref())
                .await
        })
        .await
    }

    /// The proof a token request to `endpoint` carries when this client binds its tokens
    /// ([`ClientConfig::bind_tokens`](super::ClientConfig::bind_tokens)): by `device`, for
    /// the endpoint's method and URL, with no `ath` (PROTOCOL 3 and 6.1). A key that cannot
    /// sign now fails the request rather than quietly asking for bearer tokens.
    pub(super) fn token_request_proof<E: Endpoint>(
        &self,
        device: &DeviceIdentity,
        endpoint: &E,
    ) -> Result<Option<String>, Failure> {
        if !self.bind_tokens {
            return Ok(None);
        }
        let now_secs = self.server_now_ms().div_euclid(1000);
        let url = self.transport.url_of(endpoint);
        let method = E::ROUTE.method.as_str();
        device_proof(device.signer.as_ref(), method, &url, "", None, now_secs)
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

    /// A device proof for `method` on `url`, bound to `access`, by this device's key (made
    /// on first use) and dated by the server's clock.
    pub(super) async fn proof_for(
        &self,
        access: &str,
        method: &str,
        url: &str,
        nonce: Option<&str>,
    ) -> Result<String, AuthError> {
        let device = self.device_identity().await?;
        let now_secs = self.server_now_ms().div_euclid(1000);
        device_proof(device.signer.as_ref(), method, url, access, nonce, now_secs).map_err(
            |error| match error {
                SignerError::InvalidInput { message } => AuthError::InvalidInput { message },
                other => signer_error(other),
            },
        )
    }
}
