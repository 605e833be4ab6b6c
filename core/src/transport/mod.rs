//! HTTP to the auth server, one method per route (PROTOCOL section 2), and the
//! classification of every failure.
//!
//! Each call returns the route's `data` with the server's clock ([`Answer`]), or a
//! [`Failure`] that answers the session's one question: is this the server definitively
//! saying no ([`Failure::Rejected`]), or should the session be kept and the call retried
//! ([`Failure::Transient`])? Only the protocol's own envelopes count as an answer: a
//! captive portal's `200 text/html` page is neither a success nor a rejection, a 5xx, 408
//! or 429 is transient whatever its body, and so is every network error.
//!
//! Tokens travel as `Authorization: Bearer`, passwords only in request bodies; neither is
//! ever logged, and [`Transport`]'s `Debug` shows the server URL only.

mod config;
mod failure;
mod response;

pub use config::TransportConfig;
pub use failure::Failure;
pub use response::Answer;

use std::fmt;
use std::sync::Arc;

use holdfast_protocol::wire::{
    AuthSession, ChallengeRequest, ChallengeResponse, Device, DeviceRegisterRequest, DeviceRegistration,
    RefreshRequest, SignInRequest, SignOutRequest, SignUpRequest, Success, TokenPair, User, VerifyRequest,
    VerifyResponse,
};
use reqwest::Method;
use reqwest::header::{ACCEPT, HeaderValue};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::AuthError;

/// The client side of the auth routes. Cheap to clone: clones share one connection pool.
#[derive(Clone)]
pub struct Transport {
    client: reqwest::Client,
    /// Server URL plus route prefix, without a trailing slash.
    base: Arc<str>,
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transport").field("url", &self.base).finish()
    }
}

impl Transport {
    /// A transport for `config`. An unusable URL or prefix is
    /// [`AuthError::InvalidInput`]; no request is made.
    pub fn new(config: TransportConfig) -> Result<Transport, AuthError> {
        Transport::with_client(&config, |builder| builder)
    }

    fn with_client(
        config: &TransportConfig,
        customize: impl FnOnce(reqwest::ClientBuilder) -> reqwest::ClientBuilder,
    ) -> Result<Transport, AuthError> {
        let (base, https) = config.base_url()?;
        let client = config.client(https, customize)?;
        Ok(Transport {
            client,
            base: base.into(),
        })
    }

    /// The base of every route URL: the server URL and the route prefix (the session keys
    /// its stored records by it).
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// `POST /signup` (201).
    pub async fn sign_up(&self, body: &SignUpRequest) -> Result<Answer<AuthSession>, Failure> {
        self.call(Method::POST, "/signup", None, Some(body)).await
    }

    /// `POST /signin`.
    pub async fn sign_in(&self, body: &SignInRequest) -> Result<Answer<AuthSession>, Failure> {
        self.call(Method::POST, "/signin", None, Some(body)).await
    }

    /// `POST /refresh`: exchanges the refresh token for a new pair (both rotate).
    pub async fn refresh(&self, refresh_token: &str) -> Result<Answer<TokenPair>, Failure> {
        let body = RefreshRequest {
            refresh_token: refresh_token.to_owned(),
        };
        self.call(Method::POST, "/refresh", None, Some(&body)).await
    }

    /// `POST /signout`: revokes the session, and the refresh token when given.
    pub async fn sign_out(
        &self,
        access_token: &str,
        refresh_token: Option<&str>,
    ) -> Result<Answer<Success>, Failure> {
        let body = SignOutRequest {
            refresh_token: refresh_token.map(str::to_owned),
        };
        self.call(Method::POST, "/signout", Some(access_token), Some(&body))
            .await
    }

    /// `GET /me`.
    pub async fn me(&self, access_token: &str) -> Result<Answer<User>, Failure> {
        self.call(Method::GET, "/me", Some(access_token), None::<&()>)
            .await
    }

    /// `GET /devices`: the user's devices, revoked ones included.
    pub async fn devices(&self, access_token: &str) -> Result<Answer<Vec<Device>>, Failure> {
        self.call(Method::GET, "/devices", Some(access_token), None::<&()>)
            .await
    }

    /// `POST /device/register` (201): registers this device's public key.
    pub async fn register_device(
        &self,
        access_token: &str,
        body: &DeviceRegisterRequest,
    ) -> Result<Answer<DeviceRegistration>, Failure> {
        self.call(Method::POST, "/device/register", Some(access_token), Some(body))
            .await
    }

    /// `POST /device/challenge`. Without an access token (PROTOCOL 6.4) for a silent
    /// device re-login after the session was lost.
    pub async fn challenge(
        &self,
        access_token: Option<&str>,
        device_id: &str,
    ) -> Result<Answer<ChallengeResponse>, Failure> {
        let body = ChallengeRequest {
            device_id: device_id.to_owned(),
        };
        self.call(Method::POST, "/device/challenge", access_token, Some(&body))
            .await
    }

    /// `POST /device/verify`: a signed challenge for fresh tokens (no bearer token).
    pub async fn verify(&self, body: &VerifyRequest) -> Result<Answer<VerifyResponse>, Failure> {
        self.call(Method::POST, "/device/verify", None, Some(body)).await
    }

    /// `DELETE /device/:id`. The id is percent-encoded; one that cannot be a path segment
    /// (empty, `.` or `..`) is [`Failure::InvalidRequest`] and nothing is sent.
    pub async fn revoke_device(
        &self,
        access_token: &str,
        device_id: &str,
    ) -> Result<Answer<Success>, Failure> {
        let segment = path_segment(device_id).ok_or_else(|| Failure::InvalidRequest {
            message: "this device id cannot be used in a URL".to_owned(),
        })?;
        self.call(
            Method::DELETE,
            &format!("/device/{segment}"),
            Some(access_token),
            None::<&()>,
        )
        .await
    }

    async fn call<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        method: Method,
        route: &str,
        access_token: Option<&str>,
        body: Option<&B>,
    ) -> Result<Answer<T>, Failure> {
        let mut request = self
            .client
            .request(method, format!("{}{route}", self.base))
            .header(ACCEPT, HeaderValue::from_static("application/json"));
        if let Some(token) = access_token {
            // Marks the header sensitive, so no `Debug` of the request shows it.
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|error| {
            if error.is_builder() {
                // E.g. a token that is not a valid header value. The error names the
                // problem, never the value.
                Failure::InvalidRequest {
                    message: format!("the request cannot be sent: {error}"),
                }
            } else {
                Failure::Transient {
                    cause: response::transient_cause(&error),
                    server_time_ms: None,
                }
            }
        })?;
        response::read_answer(response).await
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters. `.` and `..` are refused:
/// URL parsers resolve them (even encoded) as "this" and "parent" directory.
fn path_segment(text: &str) -> Option<String> {
    if matches!(text, "" | "." | "..") {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0x0f)]));
        }
    }
    Some(out)
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

#[cfg(test)]
mod tests;
