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
//! ever logged, and [`Transport`]'s `Debug` shows the server URL only. A bearer call whose
//! token is bound to the device key (`cnf.jkt`) also carries a device proof as the `DPoP`
//! header (PROTOCOL 6.1); the caller makes it for [`Transport::url_for`] the route, the URL
//! the request goes to, and it is marked sensitive like the token.

mod config;
mod failure;
mod response;

#[cfg(fuzzing)]
pub(crate) use response::read_answer;

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
use reqwest::header::{ACCEPT, HeaderName, HeaderValue};
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

    /// The absolute URL a call to `route` (e.g. `/me`, or [`Transport::device_route`])
    /// requests, normalised as it is sent: what a device proof's `htu` names.
    pub fn url_for(&self, route: &str) -> String {
        let url = format!("{}{route}", self.base);
        match reqwest::Url::parse(&url) {
            Ok(parsed) => parsed.into(),
            Err(_) => url,
        }
    }

    /// The route of `DELETE /device/:id` for `device_id`, percent-encoded; an id that cannot
    /// be a path segment (empty, `.` or `..`) is [`Failure::InvalidRequest`].
    pub fn device_route(device_id: &str) -> Result<String, Failure> {
        let segment = path_segment(device_id).ok_or_else(|| Failure::InvalidRequest {
            message: "this device id cannot be used in a URL".to_owned(),
        })?;
        Ok(format!("/device/{segment}"))
    }

    /// `POST /signup` (201). `proof`: a device proof for `POST` on `url_for("/signup")`
    /// with no `ath`, which makes the server bind the tokens to the device key (PROTOCOL 3).
    pub async fn sign_up(
        &self,
        body: &SignUpRequest,
        proof: Option<&str>,
    ) -> Result<Answer<AuthSession>, Failure> {
        self.call(Method::POST, "/signup", None, proof, Some(body)).await
    }

    /// `POST /signin`, with a token request's proof as for [`Transport::sign_up`].
    pub async fn sign_in(
        &self,
        body: &SignInRequest,
        proof: Option<&str>,
    ) -> Result<Answer<AuthSession>, Failure> {
        self.call(Method::POST, "/signin", None, proof, Some(body)).await
    }

    /// `POST /refresh`: exchanges the refresh token for a new pair (both rotate). A bound
    /// family needs a proof by its key for `POST` on `url_for("/refresh")`, with no `ath`.
    pub async fn refresh(
        &self,
        refresh_token: &str,
        proof: Option<&str>,
    ) -> Result<Answer<TokenPair>, Failure> {
        let body = RefreshRequest {
            refresh_token: refresh_token.to_owned(),
        };
        self.call(Method::POST, "/refresh", None, proof, Some(&body))
            .await
    }

    /// `POST /signout`: revokes the session, and the refresh token when given. `proof`:
    /// the device proof for `POST` on [`Transport::url_for`]`("/signout")`, when the access
    /// token is bound.
    pub async fn sign_out(
        &self,
        access_token: &str,
        proof: Option<&str>,
        refresh_token: Option<&str>,
    ) -> Result<Answer<Success>, Failure> {
        let body = SignOutRequest {
            refresh_token: refresh_token.map(str::to_owned),
        };
        self.call(Method::POST, "/signout", Some(access_token), proof, Some(&body))
            .await
    }

    /// `GET /me`, with a device proof for `GET` on `url_for("/me")` when the token is bound.
    pub async fn me(&self, access_token: &str, proof: Option<&str>) -> Result<Answer<User>, Failure> {
        self.call(Method::GET, "/me", Some(access_token), proof, None::<&()>)
            .await
    }

    /// `GET /devices`: the user's devices, revoked ones included. With a device proof for
    /// `GET` on `url_for("/devices")` when the token is bound.
    pub async fn devices(
        &self,
        access_token: &str,
        proof: Option<&str>,
    ) -> Result<Answer<Vec<Device>>, Failure> {
        self.call(Method::GET, "/devices", Some(access_token), proof, None::<&()>)
            .await
    }

    /// `POST /device/register` (201): registers this device's public key. With a device
    /// proof for `POST` on `url_for("/device/register")` when the token is bound.
    pub async fn register_device(
        &self,
        access_token: &str,
        proof: Option<&str>,
        body: &DeviceRegisterRequest,
    ) -> Result<Answer<DeviceRegistration>, Failure> {
        self.call(
            Method::POST,
            "/device/register",
            Some(access_token),
            proof,
            Some(body),
        )
        .await
    }

    /// `POST /device/challenge`. Without an access token (PROTOCOL 6.4) for a silent
    /// device re-login after the session was lost; with a bound one, with a device proof
    /// for `POST` on `url_for("/device/challenge")`.
    pub async fn challenge(
        &self,
        access_token: Option<&str>,
        proof: Option<&str>,
        device_id: &str,
    ) -> Result<Answer<ChallengeResponse>, Failure> {
        let body = ChallengeRequest {
            device_id: device_id.to_owned(),
        };
        self.call(
            Method::POST,
            "/device/challenge",
            access_token,
            proof,
            Some(&body),
        )
        .await
    }

    /// `POST /device/verify`: a signed challenge for fresh tokens (no bearer token), bound
    /// to the device key when `proof` (for `POST` on `url_for("/device/verify")`, no `ath`)
    /// comes with it.
    pub async fn verify(
        &self,
        body: &VerifyRequest,
        proof: Option<&str>,
    ) -> Result<Answer<VerifyResponse>, Failure> {
        self.call(Method::POST, "/device/verify", None, proof, Some(body))
            .await
    }

    /// `DELETE /device/:id`. The id is percent-encoded ([`Transport::device_route`]); one
    /// that cannot be a path segment (empty, `.` or `..`) is [`Failure::InvalidRequest`]
    /// and nothing is sent. With a device proof for `DELETE` on the route's URL when the
    /// token is bound.
    pub async fn revoke_device(
        &self,
        access_token: &str,
        proof: Option<&str>,
        device_id: &str,
    ) -> Result<Answer<Success>, Failure> {
        let route = Transport::device_route(device_id)?;
        self.call(Method::DELETE, &route, Some(access_token), proof, None::<&()>)
            .await
    }

    async fn call<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        method: Method,
        route: &str,
        access_token: Option<&str>,
        proof: Option<&str>,
        body: Option<&B>,
    ) -> Result<Answer<T>, Failure> {
        let mut request = self
            .client
            .request(method, self.url_for(route))
            .header(ACCEPT, HeaderValue::from_static("application/json"));
        if let Some(token) = access_token {
            // Marks the header sensitive, so no `Debug` of the request shows it.
            request = request.bearer_auth(token);
        }
        if let Some(proof) = proof {
            // A proof opens this request for 60 s: as sensitive as the token.
            let mut value = HeaderValue::from_str(proof).map_err(|_| Failure::InvalidRequest {
                message: "the device proof is not a valid header value".to_owned(),
            })?;
            value.set_sensitive(true);
            request = request.header(DPOP, value);
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

/// The header that carries a device proof (PROTOCOL 6.1).
const DPOP: HeaderName = HeaderName::from_static("dpop");

#[cfg(test)]
mod tests;
