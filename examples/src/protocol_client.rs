//! A client written only from `PROTOCOL.md`: JSON over HTTP with `reqwest`, a software
//! P-256 device key with `ring`, and nothing from the server kit. Kora's JavaScript client
//! is written the same way, so if this client works, that one can.
//!
//! A token of a device with a key is bound to it (`cnf.jkt`, PROTOCOL 3), and a bearer call
//! with it carries a device proof (PROTOCOL 6.1) as the `DPoP` header: give the client the
//! keys of the devices it plays with [`ProtocolClient::hold_device_key`].

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::{Method, RequestBuilder};
use ring::rand::{SecureRandom, SystemRandom};
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

/// A client for the routes of PROTOCOL section 2. Clones share the device keys they hold.
#[derive(Debug, Clone)]
pub struct ProtocolClient {
    base: String,
    http: reqwest::Client,
    keys: Arc<Mutex<Vec<SoftwareDeviceKey>>>,
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
            keys: Arc::default(),
        }
    }

    /// Holds `key` from now on: a bearer call whose token is bound to it (`cnf.jkt` is its
    /// thumbprint) carries a device proof signed with it.
    pub fn hold_device_key(&self, key: &SoftwareDeviceKey) {
        self.keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(key.clone());
    }

    fn request(&self, method: Method, path: &str, bearer: Option<&str>) -> RequestBuilder {
        let url = format!("{}{path}", self.base);
        // The URL as it is sent (normalised), which the proof must name.
        let url = reqwest::Url::parse(&url).map_or(url, String::from);
        let proof = bearer.and_then(|token| self.proof(method.as_str(), &url, token));
        let builder = self.http.request(method, url);
        let builder = match bearer {
            Some(token) => builder.bearer_auth(token),
            None => builder,
        };
        match proof {
            Some(proof) => builder.header("DPoP", proof),
            None => builder,
        }
    }

    /// A proof for `method url` with `token`, when the token is bound to a held key.
    fn proof(&self, method: &str, url: &str, token: &str) -> Option<String> {
        let jkt = bound_thumbprint(token)?;
        let keys = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
        let key = keys.iter().find(|key| key.thumbprint() == jkt)?;
        key.device_proof(method, url, token).ok()
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

/// `cnf.jkt` of a token: the payload is the second dot-separated part, base64url JSON.
fn bound_thumbprint(token: &str) -> Option<String> {
    let payload = URL_SAFE_NO_PAD.decode(token.split('.').nth(1)?).ok()?;
    let claims: Value = serde_json::from_slice(&payload).ok()?;
    claims.pointer("/cnf/jkt")?.as_str().map(str::to_owned)
}

/// A software ECDSA P-256 device key. Clones are the same key.
#[derive(Clone)]
pub struct SoftwareDeviceKey {
    pair: Arc<EcdsaKeyPair>,
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
        Ok(SoftwareDeviceKey {
            pair: Arc::new(pair),
            rng,
        })
    }

    /// The public key's coordinates, base64url: SEC1 uncompressed is 0x04 ‖ x ‖ y.
    fn coordinates(&self) -> (String, String) {
        let point = self.pair.public_key().as_ref();
        (
            URL_SAFE_NO_PAD.encode(&point[1..33]),
            URL_SAFE_NO_PAD.encode(&point[33..65]),
        )
    }

    /// The public key as the JWK string the protocol sends (PROTOCOL section 4).
    pub fn public_jwk(&self) -> String {
        let (x, y) = self.coordinates();
        json!({ "kty": "EC", "crv": "P-256", "x": x, "y": y }).to_string()
    }

    /// The RFC 7638 thumbprint (PROTOCOL section 4): SHA-256 over exactly these members in
    /// this order, base64url.
    pub fn thumbprint(&self) -> String {
        let (x, y) = self.coordinates();
        let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
        URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, canonical.as_bytes()))
    }

    /// A device proof (PROTOCOL 6.1) for `method` on `url` with `access_token`, dated now.
    pub fn device_proof(
        &self,
        method: &str,
        url: &str,
        access_token: &str,
    ) -> Result<String, ring::error::Unspecified> {
        let (x, y) = self.coordinates();
        let header = json!({
            "typ": "dpop+jwt",
            "alg": "ES256",
            "jwk": { "kty": "EC", "crv": "P-256", "x": x, "y": y },
        });
        let mut jti = [0u8; 16];
        self.rng.fill(&mut jti)?;
        let iat = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|_| ring::error::Unspecified)?
            .as_secs();
        let htu = url.split(['?', '#']).next().unwrap_or(url);
        let ath = ring::digest::digest(&ring::digest::SHA256, access_token.as_bytes());
        let claims = json!({
            "jti": URL_SAFE_NO_PAD.encode(jti),
            "htm": method,
            "htu": htu,
            "iat": iat,
            "ath": URL_SAFE_NO_PAD.encode(ath),
        });
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = self.pair.sign(&self.rng, input.as_bytes())?;
        Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref())))
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
