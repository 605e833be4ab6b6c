//! Sign-up, sign-in and `/me`; sessions once started are in `session.rs`.

use std::net::IpAddr;

use holdfast_protocol::endpoint::{SignIn, SignUp};
use holdfast_protocol::validate::{
    check_device_id, check_metadata, check_password_length, normalize_email, sanitize_name,
};
use holdfast_protocol::wire::{AuthSession, SignInRequest, SignUpRequest};
use holdfast_protocol::{ErrorCode, PublicJwk};

use super::AuthService;
use crate::authn::DPOP_HEADER;
use crate::exchange::{ApiError, AuthRequest, AuthResponse, parse_json};
use crate::guards::{address_key, check_password_policy, digest_key};
use crate::hooks::SignUpAttempt;
use crate::proofs::{ProofCheck, check_proof};
use crate::store::{DeviceKey, DeviceRecord, NewDevice, NewUser, StoreError, UserRecord};
use crate::tokens::Assurance;

/// A device named in a sign-up or sign-in, validated before anything is stored.
pub(super) struct PendingDevice {
    pub id: String,
    pub key: Option<DeviceKey>,
    pub name: String,
}

impl PendingDevice {
    /// Validates the optional device members of a sign-up or sign-in. Without an id the
    /// server assigns a random one (never one derived from the user, which every browser of
    /// that user would share).
    pub fn from_request(
        device_id: Option<String>,
        public_key: Option<String>,
        name: Option<String>,
        default_name: &str,
    ) -> Result<PendingDevice, ApiError> {
        let id = match device_id {
            Some(id) => {
                check_device_id(&id).map_err(ApiError::validation)?;
                id
            }
            None => format!("dev-{}", uuid::Uuid::new_v4()),
        };
        let key = match public_key.filter(|k| !k.is_empty()) {
            Some(jwk) => Some(device_key(jwk)?),
            None => None,
        };
        let name = name.map(|n| sanitize_name(&n)).filter(|n| !n.is_empty());
        Ok(PendingDevice {
            id,
            key,
            name: name.unwrap_or_else(|| default_name.to_owned()),
        })
    }
}

/// Parses and validates a JWK string, keeping it as sent.
pub(super) fn device_key(jwk: String) -> Result<DeviceKey, ApiError> {
    let key = PublicJwk::parse(&jwk)
        .map_err(|error| ApiError::validation(format!("Invalid device public key: {error}.")))?;
    Ok(DeviceKey {
        jwk,
        thumbprint: key.thumbprint(),
    })
}

/// The forms under which a sign-in's email may be stored: the normalized form
/// ([`normalize_email`]: NFKC, lower-cased) when the email passes today's rules, then the
/// form accounts created before those rules were stored under (trimmed, lower-cased), when
/// it differs. An email longer than any account's is refused before anything is looked up
/// or stored.
fn sign_in_emails(email: &str) -> Result<Vec<String>, ApiError> {
    if email.encode_utf16().count() > holdfast_protocol::validate::MAX_EMAIL_LEN {
        return Err(ApiError::validation(
            "Invalid email address. Provide an address like user@domain.com.",
        ));
    }
    let legacy = email.trim().to_lowercase();
    let mut forms = Vec::with_capacity(2);
    if let Ok(normalized) = normalize_email(email.trim()) {
        forms.push(normalized);
    }
    if !forms.contains(&legacy) {
        forms.push(legacy);
    }
    Ok(forms)
}

/// A password presented for checking (sign-in, a password change, account deletion) is
/// refused unhashed when longer than any password can be; shorter ones are checked as they
/// are, since accounts made under older rules may have them.
pub(super) fn check_not_too_long(password: &str) -> Result<(), ApiError> {
    if password.encode_utf16().count() > holdfast_protocol::validate::MAX_PASSWORD_LEN {
        return Err(ApiError::validation(
            "Password must be at most 128 characters long.",
        ));
    }
    Ok(())
}

const SIGN_UP_SHAPE: &str = "with string members email and password (name, deviceId, devicePublicKey optional; metadata, an object, optional)";
const SIGN_IN_SHAPE: &str = "with string members email and password (deviceId, devicePublicKey optional)";

impl AuthService {
    pub(super) async fn sign_up(
        &self,
        request: &AuthRequest,
        client: Option<IpAddr>,
    ) -> Result<AuthResponse, ApiError> {
        self.admit_address(self.config().rate_limits.sign_up, "signup", client)
            .await?;

        let body: SignUpRequest = parse_json(request, SIGN_UP_SHAPE)?;
        let email = normalize_email(&body.email).map_err(ApiError::validation)?;
        check_password_length(&body.password).map_err(ApiError::validation)?;
        check_password_policy(&self.config().password_policy, &body.password)
            .map_err(ApiError::validation)?;
        let name = body.name.as_deref().map(sanitize_name).filter(|n| !n.is_empty());
        if let Some(metadata) = &body.metadata {
            check_metadata(metadata).map_err(ApiError::validation)?;
        }
        let device = PendingDevice::from_request(
            body.device_id,
            body.device_public_key,
            body.device_name,
            "Primary Device",
        )?;
        // An account stored before emails were normalized, under the form this email had
        // then, is the same account.
        let legacy = body.email.to_lowercase();
        if legacy != email && self.stores().users.find_user_by_email(&legacy).await?.is_some() {
            return Err(StoreError::EmailTaken.into());
        }
        // A device id that exists already belongs to someone else: refuse before creating
        // the account, so a refused sign-up stores nothing.
        if self.stores().devices.find_device(&device.id).await?.is_some() {
            return Err(StoreError::DeviceConflict.into());
        }
        let binding = self
            .token_request_binding(request, device.key.as_ref().map(|key| key.thumbprint.as_str()))
            .await?;
        let attempt = SignUpAttempt {
            email: email.clone(),
            name: name.clone(),
            device_id: device.id.clone(),
            metadata: body.metadata.clone(),
            client,
        };
        if let Err(refusal) = self.inner.hooks.before_sign_up(&attempt).await {
            return Err(ApiError::new(ErrorCode::Forbidden, refusal.message));
        }

        let password = self
            .inner
            .hasher
            .hash(&body.password)
            .await
            .map_err(|error| self.hashing_error(error))?;
        let now_ms = self.now_ms();
        let new_user = NewUser {
            id: uuid::Uuid::new_v4().to_string(),
            email,
            name,
            created_at_ms: now_ms,
            password,
            metadata: body.metadata,
        };
        // The application's claims are asked for before anything is stored, so a failure
        // there leaves no account behind.
        let ext = self.extra_claims(&new_user.to_record(), &device.id).await?;
        let user = self.stores().users.create_user(new_user).await?;
        let device = match self.register_pending_device(&user, device).await {
            Ok(device) => device,
            Err(error) => {
                // Lost a race for the device id: undo the account so nothing half-made stays.
                if let Err(undo) = self.stores().users.delete_user(&user.id).await {
                    tracing::error!(error = %undo, "could not remove an account after a refused sign-up");
                }
                return Err(error);
            }
        };
        let tokens = self
            .start_session(
                &user.id,
                &device,
                binding.as_deref(),
                ext.as_ref(),
                Assurance::password(self.now_secs(), false),
                (request, client),
            )
            .await?;
        if device.thumbprint().is_some() {
            self.inner.hooks.device_registered(&device).await;
        }
        self.inner.hooks.after_sign_up(&user, &device).await;
        Ok(AuthResponse::of::<SignUp>(&AuthSession {
            user: user.to_wire(),
            tokens: tokens.into_wire(),
        }))
    }

    pub(super) async fn sign_in(
        &self,
        request: &AuthRequest,
        client: Option<IpAddr>,
    ) -> Result<AuthResponse, ApiError> {
        let guards = &self.inner.guards;
        self.admit_address(self.config().rate_limits.sign_in, "signin", client)
            .await?;
        let body: SignInRequest = parse_json(request, SIGN_IN_SHAPE)?;
        let emails = sign_in_emails(&body.email)?;
        check_not_too_long(&body.password)?;
        let device =
            PendingDevice::from_request(body.device_id, body.device_public_key, body.device_name, "Device")?;

        let stores = self.stores();
        let mut user = None;
        for email in &emails {
            user = stores.users.find_user_by_email(email).await?;
            if user.is_some() {
                break;
            }
        }
        // Failures are counted per account (known or not, so the answers do not tell them
        // apart; a known one by id, whichever form of its email named it) and address: see
        // `Guards::check_account`.
        let account = digest_key(user.as_ref().map_or(&emails[0], |user| &user.id));
        let address = address_key(client);
        guards
            .check_account(
                &account,
                &address,
                self.proves_registered_key(request, user.as_ref(), &device.id),
            )
            .await?;
        let check = self
            .inner
            .hasher
            .verify(&body.password, user.as_ref().map(|u| &u.password))
            .await
            .map_err(|error| self.hashing_error(error))?;
        let user = match user {
            Some(user) if check.matches => user,
            _ => {
                guards.record_failure(client).await;
                guards.record_sign_in_failure(&account, &address).await;
                return Err(ApiError::new(
                    ErrorCode::InvalidCredentials,
                    "Invalid email or password.",
                ));
            }
        };
        crate::authn::check_enabled(&user)?;
        // The key a proof must be made with: the one sent now, or the device's registered
        // key when the request names a known device of this user without one.
        let registered = match (&device.key, request.headers.contains_key(DPOP_HEADER)) {
            (None, true) => match stores.devices.find_device(&device.id).await? {
                // Another account's device: the conflict, not the proof, is the answer.
                Some(known) if known.user_id != user.id => return Err(StoreError::DeviceConflict.into()),
                known => known.and_then(|known| known.thumbprint().map(str::to_owned)),
            },
            _ => None,
        };
        let key_jkt = device
            .key
            .as_ref()
            .map(|key| key.thumbprint.as_str())
            .or(registered.as_deref());
        let binding = self.token_request_binding(request, key_jkt).await?;
        if check.needs_rehash {
            self.rehash(&user, &body.password).await;
        }
        let new_key = device.key.is_some();
        let device = self.register_pending_device(&user, device).await?;
        let ext = self.extra_claims(&user, &device.id).await?;
        let tokens = self
            .start_session(
                &user.id,
                &device,
                binding.as_deref(),
                ext.as_ref(),
                Assurance::password(self.now_secs(), self.mfa_enabled(&user.id).await?),
                (request, client),
            )
            .await?;
        if new_key && registered.is_none() {
            self.inner.hooks.device_registered(&device).await;
        }
        self.inner.hooks.after_sign_in(&user, &device).await;
        Ok(AuthResponse::of::<SignIn>(&AuthSession {
            user: user.to_wire(),
            tokens: tokens.into_wire(),
        }))
    }

    /// The key a token request's tokens are bound to (PROTOCOL 3, RFC 9449 section 5):
    /// `key_jkt` when the request carries a valid `DPoP` proof by that key for itself (no
    /// `ath`), recorded as used; `None` when it carries no proof, as Kora's web client
    /// sends none. A proof that fails is refused rather than ignored: a client that asked
    /// for bound tokens must not be handed bearer tokens instead.
    pub(super) async fn token_request_binding(
        &self,
        request: &AuthRequest,
        key_jkt: Option<&str>,
    ) -> Result<Option<String>, ApiError> {
        let Some(proof) = request.headers.get(DPOP_HEADER) else {
            return Ok(None);
        };
        let invalid = |message: &'static str| ApiError::new(ErrorCode::ProofInvalid, message);
        let proof = proof
            .to_str()
            .map_err(|_| invalid("The DPoP header is not a device proof."))?;
        let jkt = key_jkt.ok_or_else(|| {
            invalid("A DPoP proof binds tokens to the device's key: send devicePublicKey with it.")
        })?;
        self.inner
            .authn
            .verify_request_proof(request, proof, "", jkt)
            .await?;
        Ok(Some(jkt.to_owned()))
    }

    /// Whether the sign-in request carries a `DPoP` proof for itself (PROTOCOL 6.1, no
    /// access token yet) signed by the registered key of `device_id`, a device of `user`
    /// that is not revoked. Only the account lockout asks: it lets the owner's device
    /// through while strangers' failures guard the account.
    async fn proves_registered_key(
        &self,
        request: &AuthRequest,
        user: Option<&UserRecord>,
        device_id: &str,
    ) -> bool {
        let (Some(user), Some(proof)) = (
            user,
            request
                .headers
                .get(DPOP_HEADER)
                .and_then(|value| value.to_str().ok()),
        ) else {
            return false;
        };
        let device = match self.stores().devices.find_device(device_id).await {
            Ok(Some(device)) if device.user_id == user.id && !device.revoked => device,
            _ => return false,
        };
        let Some(jkt) = device.thumbprint() else {
            return false;
        };
        let Some(url) = self.authenticator().url_of(request) else {
            return false;
        };
        check_proof(&ProofCheck {
            proof,
            method: request.method.as_str(),
            url: &url,
            access_token: "",
            expected_jkt: jkt,
            now_secs: self.now_secs(),
        })
        .is_ok()
    }

    /// Replaces a Kora PBKDF2 hash (or an Argon2id hash with old parameters) after a
    /// successful sign-in. A failure here must not fail the sign-in.
    async fn rehash(&self, user: &UserRecord, password: &str) {
        match self.inner.hasher.hash(password).await {
            Ok(stored) => {
                if let Err(error) = self.stores().users.set_password(&user.id, stored).await {
                    tracing::warn!(%error, "could not store a rehashed password");
                }
                self.inner.authn.standing_changed(&user.id);
            }
            Err(error) => tracing::warn!(%error, "could not rehash a password"),
        }
    }

    async fn register_pending_device(
        &self,
        user: &UserRecord,
        device: PendingDevice,
    ) -> Result<DeviceRecord, ApiError> {
        let record = self
            .stores()
            .devices
            .register_device(NewDevice {
                id: device.id,
                user_id: user.id.clone(),
                key: device.key,
                name: device.name,
                now_ms: self.now_ms(),
            })
            .await?;
        // A keyless device may have got its key.
        self.inner.authn.standing_changed(&user.id);
        Ok(record)
    }
}
