//! A client written only from `PROTOCOL.md`: JSON over HTTP with `reqwest`, a software
//! P-256 device key with `ring`, and nothing from the server kit. Kora's JavaScript client
//! is written the same way, so if this client works, that one can.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::{Method, RequestBuilder};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde_json::{Value, json};

/// A refusal from the server: the status and the error envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// HTTP status.
    pub status: u16,
    /// `error` message.
    pub error: String,
    /// `code`, when the server sends one (a Kora server does not).
    pub code: Option<String>,
    /// `Retry-After`, when present.
    pub retry_after: Option<String>,
}

/// Why a call did not return `data`.
#[derive(Debug)]
pub enum CallError {
    /// The server answered with an error envelope.
    Refused(Refusal),
    /// The request did not complete, or the answer was not the protocol's JSON.
    Transport(String),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Refused(r) => {
                write!(
                    f,
                    "{} {}: {}",
                    r.status,
                    r.code.as_deref().unwrap_or("(no code)"),
                    r.error
                )
            }
            CallError::Transport(message) => write!(f, "transport: {message}"),
        }
    }
}

impl std::error::Error for CallError {}

impl CallError {
    /// The refusal, if the server answered one.
    pub fn refusal(&self) -> Option<&Refusal> {
        match self {
            CallError::Refused(refusal) => Some(refusal),
            CallError::Transport(_) => None,
        }
    }
}

/// A client for the routes of PROTOCOL section 2.
#[derive(Debug, Clone)]
pub struct ProtocolClient {
    base: String,
    http: reqwest::Client,
}

impl ProtocolClient {
    /// A client for the server at `base_url` (routes under `/auth`).
    pub fn new(base_url: &str) -> ProtocolClient {
        ProtocolClient {
            base: format!("{}/auth", base_url.trim_end_matches('/')),
            http: {
                crate::ensure_crypto_provider();
                reqwest::Client::new()
            },
        }
    }

    fn request(&self, method: Method, path: &str, bearer: Option<&str>) -> RequestBuilder {
        let builder = self.http.request(method, format!("{}{path}", self.base));
        match bearer {
            Some(token) => builder.bearer_auth(token),
            None => builder,
        }
    }

    async fn call(&self, builder: RequestBuilder) -> Result<Value, CallError> {
        let response = builder
            .send()
            .await
            .map_err(|e| CallError::Transport(e.to_string()))?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body: Value = response
            .json()
            .await
            .map_err(|e| CallError::Transport(e.to_string()))?;
        if (200..300).contains(&status) {
            return body
                .get("data")
                .cloned()
                .ok_or_else(|| CallError::Transport("no `data` member".into()));
        }
        Err(CallError::Refused(Refusal {
            status,
            error: body
                .get("error")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            code: body.get("code").and_then(Value::as_str).map(str::to_owned),
            retry_after,
        }))
    }

    /// `POST /signup` → `{user, tokens}`.
    pub async fn sign_up(
        &self,
        email: &str,
        password: &str,
        name: Option<&str>,
        device: Option<(&str, &str)>,
    ) -> Result<Value, CallError> {
        let mut body = json!({ "email": email, "password": password });
        if let Some(name) = name {
            body["name"] = json!(name);
        }
        if let Some((id, key)) = device {
            body["deviceId"] = json!(id);
            body["devicePublicKey"] = json!(key);
        }
        self.call(self.request(Method::POST, "/signup", None).json(&body))
            .await
    }

    /// `POST /signin` → `{user, tokens}`.
    pub async fn sign_in(
        &self,
        email: &str,
        password: &str,
        device: Option<(&str, &str)>,
    ) -> Result<Value, CallError> {
        let mut body = json!({ "email": email, "password": password });
        if let Some((id, key)) = device {
            body["deviceId"] = json!(id);
            body["devicePublicKey"] = json!(key);
        }
        self.call(self.request(Method::POST, "/signin", None).json(&body))
            .await
    }

    /// `POST /refresh` → `{accessToken, refreshToken}`.
    pub async fn refresh(&self, refresh_token: &str) -> Result<Value, CallError> {
        self.call(
            self.request(Method::POST, "/refresh", None)
                .json(&json!({ "refreshToken": refresh_token })),
        )
        .await
    }

    /// `POST /signout` → `{success: true}`.
    pub async fn sign_out(
        &self,
        access_token: &str,
        refresh_token: Option<&str>,
    ) -> Result<Value, CallError> {
        let body = match refresh_token {
            Some(token) => json!({ "refreshToken": token }),
            None => json!({}),
        };
        self.call(
            self.request(Method::POST, "/signout", Some(access_token))
                .json(&body),
        )
        .await
    }

    /// `GET /me` → user.
    pub async fn me(&self, access_token: &str) -> Result<Value, CallError> {
        self.call(self.request(Method::GET, "/me", Some(access_token)))
            .await
    }

    /// `GET /devices` → `[device…]`.
    pub async fn devices(&self, access_token: &str) -> Result<Value, CallError> {
        self.call(self.request(Method::GET, "/devices", Some(access_token)))
            .await
    }

    /// `POST /device/register` → `{device, deviceCredential}`.
    pub async fn register_device(
        &self,
        access_token: &str,
        device_id: &str,
        public_key: &str,
        name: &str,
    ) -> Result<Value, CallError> {
        let body = json!({ "deviceId": device_id, "publicKey": public_key, "name": name });
        self.call(
            self.request(Method::POST, "/device/register", Some(access_token))
                .json(&body),
        )
        .await
    }

    /// `POST /device/challenge` → `{challenge}`; without a token for silent re-login.
    pub async fn challenge(&self, access_token: Option<&str>, device_id: &str) -> Result<Value, CallError> {
        let body = json!({ "deviceId": device_id });
        self.call(
            self.request(Method::POST, "/device/challenge", access_token)
                .json(&body),
        )
        .await
    }

    /// `POST /device/verify` → `{tokens:{accessToken, refreshToken, deviceCredential}}`.
    pub async fn verify(
        &self,
        device_id: &str,
        challenge: &str,
        signature: &str,
    ) -> Result<Value, CallError> {
        let body = json!({ "deviceId": device_id, "challenge": challenge, "signature": signature });
        self.call(self.request(Method::POST, "/device/verify", None).json(&body))
            .await
    }

    /// `DELETE /device/:id` → `{success: true}`.
    pub async fn revoke_device(&self, access_token: &str, device_id: &str) -> Result<Value, CallError> {
        self.call(self.request(
            Method::DELETE,
            &format!("/device/{device_id}"),
            Some(access_token),
        ))
        .await
    }
}

/// A software ECDSA P-256 device key.
pub struct SoftwareDeviceKey {
    pair: EcdsaKeyPair,
    rng: SystemRandom,
}

impl std::fmt::Debug for SoftwareDeviceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SoftwareDeviceKey(<private>)")
    }
}

impl SoftwareDeviceKey {
    /// A fresh random key.
    pub fn generate() -> Result<SoftwareDeviceKey, ring::error::Unspecified> {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)?;
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .map_err(|_| ring::error::Unspecified)?;
        Ok(SoftwareDeviceKey { pair, rng })
    }

    /// The public key as the JWK string the protocol sends (PROTOCOL section 4).
    pub fn public_jwk(&self) -> String {
        // SEC1 uncompressed: 0x04 ‖ x (32 bytes) ‖ y (32 bytes).
        let point = self.pair.public_key().as_ref();
        json!({
            "kty": "EC",
            "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
        })
        .to_string()
    }

    /// Signs the UTF-8 bytes of a challenge string: P1363 `r‖s`, base64url.
    pub fn sign_challenge(&self, challenge: &str) -> Result<String, ring::error::Unspecified> {
        let signature = self.pair.sign(&self.rng, challenge.as_bytes())?;
        Ok(URL_SAFE_NO_PAD.encode(signature.as_ref()))
    }
}

/// Reads a string member at a JSON pointer, e.g. `/tokens/accessToken`.
pub fn text(value: &Value, pointer: &str) -> Result<String, CallError> {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| CallError::Transport(format!("missing string at {pointer}")))
}
