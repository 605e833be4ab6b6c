//! Device registration, challenges, verification (silent device re-login, PROTOCOL 6.4),
//! listing and revocation.

use std::net::IpAddr;

use holdfast_protocol::challenge::{CHALLENGE_TTL_SECS, is_well_formed};
use holdfast_protocol::endpoint::{Challenge, Devices, RegisterDevice, RevokeDevice, Verify};
use holdfast_protocol::signature::decode_signature;
use holdfast_protocol::validate::{check_device_id, sanitize_name};
use holdfast_protocol::wire::{
    ChallengeRequest, ChallengeResponse, DeviceRegisterRequest, DeviceRegistration, DeviceTokens, Success,
    VerifyRequest, VerifyResponse,
};
use holdfast_protocol::{EndReason, ErrorCode, PublicJwk};

use super::AuthService;
use super::account::device_key;
use crate::devices::{new_challenge, verify_challenge};
use crate::events::Revocation;
use crate::exchange::{ApiError, AuthRequest, AuthResponse, bearer_token, parse_json};
use crate::guards::{address_key, digest_key};
use crate::store::{ConsumeOutcome, DeviceRecord, NewDevice, RateLimit, SessionScope};
use crate::tokens::Assurance;

/// Anonymous challenges for one device from all addresses may reach this many times the
/// per-address limit.
const ANONYMOUS_CEILING_FACTOR: u32 = 10;

fn device_not_found() -> ApiError {
    ApiError::new(ErrorCode::DeviceNotFound, "Device not found.")
}

fn device_revoked() -> ApiError {
    ApiError::new(ErrorCode::DeviceRevoked, "This device was revoked.")
}

impl AuthService {
    pub(super) async fn register_device(&self, request: &AuthRequest) -> Result<AuthResponse, ApiError> {
        let authenticated = self.authenticate(request).await?;
        let body: DeviceRegisterRequest =
            parse_json(request, "with string members deviceId, publicKey and name")?;
        check_device_id(&body.device_id).map_err(ApiError::validation)?;
        let name = sanitize_name(&body.name);
        if name.is_empty() {
            return Err(ApiError::validation("Device name must not be empty."));
        }
        let key = device_key(body.public_key)?;
        let thumbprint = key.thumbprint.clone();
        let user_id = authenticated.claims.sub;
        let device = self
            .stores()
            .devices
            .register_device(NewDevice {
                id: body.device_id,
                user_id: user_id.clone(),
                key: Some(key),
                name,
                now_ms: self.now_ms(),
            })
            .await?;
        // A keyless device may have got its key.
        self.inner.authn.standing_changed(&user_id);
        let device_credential =
            self.tokens()
                .issue_device_credential(&user_id, &device.id, &thumbprint, self.now_secs());
        self.inner.hooks.device_registered(&device).await;
        Ok(AuthResponse::of::<RegisterDevice>(&DeviceRegistration {
            device: device.to_wire(),
            device_credential,
        }))
    }

    pub(super) async fn challenge(
        &self,
        request: &AuthRequest,
        client: Option<IpAddr>,
    ) -> Result<AuthResponse, ApiError> {
        // With a bearer token the device must be the caller's; without one (silent device
        // re-login, PROTOCOL 6.4) any registered, unrevoked device with a key may ask.
        let owner = match bearer_token(&request.headers) {
            Some(_) => Some(self.authenticate(request).await?.claims.sub),
            None => None,
        };
        let guards = &self.inner.guards;
        // The address first, so that a refused or malformed request stores nothing else.
        let limit = self.config().rate_limits.challenge;
        self.admit_address(limit, "challenge", client).await?;
        let body: ChallengeRequest = parse_json(request, "with a string member deviceId")?;
        check_device_id(&body.device_id).map_err(ApiError::validation)?;
        let device_key = digest_key(&body.device_id);
        match &owner {
            // The owner's own challenges have their own budget: strangers naming the device
            // cannot use it up.
            Some(owner) => {
                let owner = digest_key(owner);
                guards
                    .limit(limit, &format!("challenge:user:{owner}:{device_key}"))
                    .await?;
            }
            None => {
                let address = address_key(client);
                guards
                    .limit(limit, &format!("challenge:anon:{device_key}:{address}"))
                    .await?;
                let ceiling = limit.map(|limit| RateLimit {
                    max: limit.max.saturating_mul(ANONYMOUS_CEILING_FACTOR),
                    ..limit
                });
                guards
                    .limit(ceiling, &format!("challenge:anon:{device_key}"))
                    .await?;
            }
        }

        let device = self
            .stores()
            .devices
            .find_device(&body.device_id)
            .await?
            .ok_or_else(device_not_found)?;
        if owner.as_ref().is_some_and(|owner| owner != &device.user_id) {
            return Err(device_not_found());
        }
        if device.revoked {
            return Err(device_revoked());
        }
        if device.key.is_none() {
            return Err(ApiError::validation("This device has no registered public key."));
        }
        let challenge = new_challenge();
        let expires_at_ms = self.now_ms() + i64::try_from(CHALLENGE_TTL_SECS * 1000).unwrap_or(60_000);
        self.stores()
            .challenges
            .put_challenge(&challenge, &device.id, expires_at_ms)
            .await?;
        Ok(AuthResponse::of::<Challenge>(&ChallengeResponse { challenge }))
    }

    pub(super) async fn verify_device(
        &self,
        request: &AuthRequest,
        client: Option<IpAddr>,
    ) -> Result<AuthResponse, ApiError> {
        let guards = &self.inner.guards;
        // Counted per address only, before anything is parsed: a verify needs a challenge,
        // and challenges are limited per device, so strangers sending garbage verifies
        // naming a device use up nothing of that device's.
        self.admit_address(self.config().rate_limits.verify, "verify", client)
            .await?;
        let body: VerifyRequest =
            parse_json(request, "with string members deviceId, challenge and signature")?;
        check_device_id(&body.device_id).map_err(ApiError::validation)?;
        if !is_well_formed(&body.challenge) {
            return Err(ApiError::validation(
                "challenge must be 64 lowercase hex characters.",
            ));
        }
        // Format errors are refused before the challenge is consumed: a client bug should
        // not cost the user a challenge.
        let signature = decode_signature(&body.signature)
            .map_err(|error| ApiError::validation(format!("Invalid signature: {error}.")))?;

        let stores = self.stores();
        // A proof by the device's registered key binds the tokens (PROTOCOL 3); it is
        // checked before the challenge is consumed, so a bad proof costs no challenge.
        let binding = if request.headers.contains_key(crate::authn::DPOP_HEADER) {
            let device = stores
                .devices
                .find_device(&body.device_id)
                .await?
                .ok_or_else(device_not_found)?;
            self.token_request_binding(request, device.thumbprint()).await?
        } else {
            None
        };
        // Checks the binding before consuming (PROTOCOL section 7), atomically.
        match stores
            .challenges
            .consume_challenge(&body.challenge, &body.device_id, self.now_ms())
            .await?
        {
            ConsumeOutcome::Consumed => {}
            ConsumeOutcome::Invalid | ConsumeOutcome::WrongDevice => {
                return Err(ApiError::new(
                    ErrorCode::ChallengeInvalid,
                    "Invalid or expired challenge. Request a new challenge.",
                ));
            }
        }
        let device = stores
            .devices
            .find_device(&body.device_id)
            .await?
            .ok_or_else(device_not_found)?;
        if device.revoked {
            return Err(device_revoked());
        }
        if !self.signature_matches(&device, &body.challenge, &signature) {
            guards.record_failure(client).await;
            return Err(ApiError::new(ErrorCode::SignatureInvalid, "Invalid signature."));
        }
        let Some(user) = stores.users.find_user(&device.user_id).await? else {
            return Err(ApiError::new(
                ErrorCode::UserNotFound,
                "The account no longer exists.",
            ));
        };
        crate::authn::check_enabled(&user)?;
        // Re-login replaces lost tokens (PROTOCOL 6.4); it must not undo a session that was
        // ended on purpose (revoked, signed out everywhere, password changed or reset, ...):
        // that device signs in with a password again. Only a session ended for refresh-token
        // reuse (the device itself lost the race to a thief) may be replaced by its key.
        let latest = stores.sessions.latest_session_on_device(&device.id).await?;
        if let Some(latest) = &latest {
            let ended = match latest.ended {
                Some(ending) => Some(ending.reason),
                None => self
                    .config()
                    .sessions
                    .expired(latest.created_at_ms, latest.last_used_at_ms, self.now_ms())
                    .then_some(EndReason::Expired),
            };
            if let Some(reason) = ended.filter(|reason| *reason != EndReason::RefreshReused) {
                return Err(ApiError::session_ended(reason));
            }
        }
        let now_secs = self.now_secs();
        let ext = self.extra_claims(&user, &device.id).await?;
        let tokens = self
            .start_session(
                &user.id,
                &device,
                binding.as_deref(),
                ext.as_ref(),
                Assurance::device_key(
                    latest.map(|latest| latest.assurance),
                    self.mfa_enabled(&user.id).await?,
                    now_secs,
                ),
                (request, client),
            )
            .await?;
        let thumbprint = device.thumbprint().unwrap_or_default();
        let device_credential =
            self.tokens()
                .issue_device_credential(&device.user_id, &device.id, thumbprint, now_secs);
        if let Err(error) = stores.devices.touch_device(&device.id, self.now_ms()).await {
            tracing::warn!(%error, "could not record a device's last sighting");
        }
        let pair = tokens.into_wire();
        Ok(AuthResponse::of::<Verify>(&VerifyResponse {
            tokens: DeviceTokens {
                access_token: pair.access_token,
                refresh_token: pair.refresh_token,
                device_credential,
            },
        }))
    }

    fn signature_matches(&self, device: &DeviceRecord, challenge: &str, signature: &[u8; 64]) -> bool {
        let Some(key) = &device.key else {
            return false;
        };
        match PublicJwk::parse(&key.jwk) {
            Ok(jwk) => verify_challenge(&jwk, challenge, signature),
            Err(error) => {
                tracing::error!(device = %device.id, %error, "a stored device key does not parse");
                false
            }
        }
    }

    pub(super) async fn list_devices(&self, request: &AuthRequest) -> Result<AuthResponse, ApiError> {
        let authenticated = self.authenticate(request).await?;
        let devices = self
            .stores()
            .devices
            .list_devices(&authenticated.claims.sub)
            .await?;
        let wire: Vec<_> = devices.iter().map(DeviceRecord::to_wire).collect();
        Ok(AuthResponse::of::<Devices>(&wire))
    }

    pub(super) async fn revoke_device(
        &self,
        request: &AuthRequest,
        device_id: &str,
    ) -> Result<AuthResponse, ApiError> {
        let authenticated = self.authenticate(request).await?;
        let device_id = percent_decode(device_id).ok_or_else(device_not_found)?;
        let devices = &self.stores().devices;
        let device = devices
            .find_device(&device_id)
            .await?
            .ok_or_else(device_not_found)?;
        if device.user_id != authenticated.claims.sub {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                "You can only revoke your own devices.",
            ));
        }
        if !devices.revoke_device(&device.id, &device.user_id).await? {
            return Err(device_not_found());
        }
        tracing::info!(device = %device.id, "device revoked");
        // Its sessions end too, so they leave the session list and say why they ended.
        self.end_sessions(
            &device.user_id,
            SessionScope::Device(&device.id),
            EndReason::DeviceRevoked,
        )
        .await?;
        self.publish(Revocation::Device {
            user_id: device.user_id.clone(),
            device_id: device.id.clone(),
        })
        .await;
        Ok(AuthResponse::of::<RevokeDevice>(&Success { success: true }))
    }
}

/// Decodes `%XX` escapes in a path segment; `None` when the escapes are not valid UTF-8.
pub(super) fn percent_decode(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::percent_decode;

    #[test]
    fn path_segments_decode() {
        assert_eq!(percent_decode("dev-1").as_deref(), Some("dev-1"));
        assert_eq!(percent_decode("a%3Ab").as_deref(), Some("a:b"));
        assert_eq!(percent_decode("a%zz"), None);
        assert_eq!(percent_decode("%ff"), None);
        assert_eq!(percent_decode("abc%").as_deref(), Some("abc%"));
    }
}
