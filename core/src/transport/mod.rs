//! HTTP to the auth server: one generic call for every route declared in
//! `holdfast_protocol::endpoint` (PROTOCOL section 2), and the classification of every
//! failure.
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
//! header (PROTOCOL 6.1); the caller makes it for [`Transport::url_of`] the endpoint, the URL
//! the request goes to, and it is marked sensitive like the token.

mod config;
mod failure;
mod lazy;
mod response;

#[cfg(fuzzing)]
pub(crate) use response::read_answer;

pub use config::TransportConfig;
pub use failure::Failure;
pub use response::Answer;

use std::fmt;
use std::sync::Arc;

use holdfast_protocol::endpoint::{self, Endpoint};
use reqwest::Method;
use reqwest::header::{ACCEPT, HeaderName, HeaderValue};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::AuthError;
use lazy::LazyClient;

/// The client side of the auth routes. Cheap to clone: clones share one connection pool.
///
/// The HTTP client, and the TLS roots it loads from the system (milliseconds of parsing),
/// is built at the first request, not here: a start that needs no request (a restored
/// session with a fresh token) pays nothing for the network.
#[derive(Clone)]
pub struct Transport {
    client: Arc<LazyClient>,
    /// Server URL plus route prefix, without a trailing slash.
    base: Arc<str>,
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transport").field("url", &self.base).finish()
    }
}

impl Transport {
    /// A transport for `config`. An unusable URL, prefix or timeout is
    /// [`AuthError::InvalidInput`]; no request is made, and the HTTP client is built at the
    /// first one (a client that cannot be built, e.g. TLS without roots, is then that
    /// request's [`Failure::Transient`], and the next request tries again).
    pub fn new(config: TransportConfig) -> Result<Transport, AuthError> {
        Transport::with_client(config, |builder| builder)
    }

    fn with_client(
        config: TransportConfig,
        customize: fn(reqwest::ClientBuilder) -> reqwest::ClientBuilder,
    ) -> Result<Transport, AuthError> {
        let (base, https) = config.base_url()?;
        config::install_default_provider();
        Ok(Transport {
            client: Arc::new(LazyClient::new(config, https, customize)),
            base: base.into(),
        })
    }

    /// Whether the HTTP client has been built: only a request builds it.
    pub fn has_http_client(&self) -> bool {
        self.client.is_built()
    }

    /// The base of every route URL: the server URL and the route prefix (the session keys
    /// its stored records by it).
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// The absolute URL a call to `route` (e.g. `/me`) requests, normalised as it is sent:
    /// what a device proof's `htu` names.
    pub fn url_for(&self, route: &str) -> String {
        let url = format!("{}{route}", self.base);
        match reqwest::Url::parse(&url) {
            Ok(parsed) => parsed.into(),
            Err(_) => url,
        }
    }

    /// The absolute URL `endpoint` requests (see [`Transport::url_for`]).
    pub fn url_of<E: Endpoint>(&self, endpoint: &E) -> String {
        self.url_for(&endpoint.path())
    }

    /// Sends `endpoint` with `body` (not sent for `GET` and `DELETE`), the bearer token
    /// `access` and the device `proof` when given, and reads its answer. The proof must be
    /// for the endpoint's method and [`Transport::url_of`] it: the URL this sends to.
    pub async fn send<E: Endpoint>(
        &self,
        endpoint: &E,
        body: &E::Request,
        access: Option<&str>,
        proof: Option<&str>,
    ) -> Result<Answer<E::Response>, Failure> {
        let route = E::ROUTE;
        let body = route.body.then_some(body);
        let method = match route.method {
            endpoint::Method::Get => Method::GET,
            endpoint::Method::Post => Method::POST,
            endpoint::Method::Delete => Method::DELETE,
        };
        self.call(method, &endpoint.path(), access, proof, body).await
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
            .get()?
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

/// The header that carries a device proof (PROTOCOL 6.1).
const DPOP: HeaderName = HeaderName::from_static("dpop");

#[cfg(test)]
mod tests;
