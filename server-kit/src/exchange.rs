//! The framework-agnostic request and response, and the error every route answers with.

use std::borrow::Cow;
use std::net::IpAddr;

use bytes::Bytes;
use holdfast_protocol::endpoint::Endpoint;
use holdfast_protocol::wire::Envelope;
use holdfast_protocol::{EndReason, ErrorBody, ErrorCode};
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::store::StoreError;

/// An HTTP request as the routes see it, whatever server delivered it.
#[derive(Debug, Clone)]
pub struct AuthRequest {
    /// Method.
    pub method: Method,
    /// Path without the query string, as the routes see it, e.g. `/auth/me`.
    pub path: String,
    /// The path the client sent, when a router mounted the routes under a prefix
    /// (`Router::nest("/api", ...)` gives `/api/auth/me` here and `/auth/me` in `path`).
    /// Device proofs name the URL the client addressed, so they are checked against it.
    pub original_path: Option<String>,
    /// Headers.
    pub headers: HeaderMap,
    /// Body, already limited to the configured size by the server.
    pub body: Bytes,
    /// The socket peer's address, when known.
    pub peer: Option<IpAddr>,
}

impl AuthRequest {
    /// A request with no headers and no body.
    pub fn new(method: Method, path: impl Into<String>) -> AuthRequest {
        AuthRequest {
            method,
            path: path.into(),
            headers: HeaderMap::new(),
            body: Bytes::new(),
            peer: None,
            original_path: None,
        }
    }

    /// The path the client addressed: [`AuthRequest::original_path`], else `path`.
    pub fn url_path(&self) -> &str {
        self.original_path.as_deref().unwrap_or(&self.path)
    }

    /// Sets a JSON body and its content type.
    pub fn with_json(mut self, body: impl Into<Bytes>) -> AuthRequest {
        self.headers
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        self.body = body.into();
        self
    }

    /// Adds `Authorization: Bearer <token>`.
    pub fn with_bearer(mut self, token: &str) -> AuthRequest {
        if let Ok(value) = HeaderValue::from_str(&format!("Bearer {token}")) {
            self.headers.insert(header::AUTHORIZATION, value);
        }
        self
    }

    /// Sets the peer address.
    pub fn with_peer(mut self, peer: IpAddr) -> AuthRequest {
        self.peer = Some(peer);
        self
    }
}

/// An HTTP response: `{status, headers, body}`.
#[derive(Debug, Clone)]
pub struct AuthResponse {
    /// Status.
    pub status: StatusCode,
    /// Headers (content type, cache control, `Retry-After`).
    pub headers: HeaderMap,
    /// JSON body.
    pub body: Bytes,
}

impl AuthResponse {
    /// A JSON response; auth responses carry tokens, so nothing may cache them.
    pub fn json(status: StatusCode, body: Vec<u8>) -> AuthResponse {
        AuthResponse::json_bytes(status, Bytes::from(body))
    }

    fn json_bytes(status: StatusCode, body: Bytes) -> AuthResponse {
        let mut headers = HeaderMap::with_capacity(2);
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        AuthResponse {
            status,
            headers,
            body,
        }
    }

    /// `{"data": value}` with `status`.
    pub fn data<T: Serialize>(status: StatusCode, value: &T) -> AuthResponse {
        match serde_json::to_vec(&Envelope { data: value }) {
            Ok(body) => AuthResponse::json(status, body),
            Err(error) => {
                tracing::error!(%error, "failed to serialize a response");
                ApiError::internal().to_response()
            }
        }
    }

    /// The success of `E`: its declared status and its response as `{data}`, so a
    /// handler cannot answer another shape or status than its route declares.
    pub fn of<E: Endpoint>(value: &E::Response) -> AuthResponse {
        match Encoded::<E>::new(value) {
            Ok(encoded) => AuthResponse::with_status_of::<E>(encoded.body),
            Err(error) => {
                tracing::error!(%error, "failed to serialize a response");
                ApiError::internal().to_response()
            }
        }
    }

    /// The success of `E` from its answer encoded before (see [`Encoded`]).
    pub(crate) fn encoded<E: Endpoint>(encoded: &Encoded<E>) -> AuthResponse {
        AuthResponse::with_status_of::<E>(encoded.body.clone())
    }

    /// `body`, an encoded answer of `E`, with the status `E` declares.
    fn with_status_of<E: Endpoint>(body: Bytes) -> AuthResponse {
        match StatusCode::from_u16(E::ROUTE.status) {
            Ok(status) => AuthResponse::json_bytes(status, body),
            Err(_) => ApiError::internal().to_response(),
        }
    }

    /// Parses the error envelope, if this is one (for tests and tools).
    pub fn error_body(&self) -> Option<ErrorBody> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// The success body of `E` (`{"data": …}`), encoded once for an answer served again from a
/// cache (`GET /me` from a cached standing); typed by its endpoint, so it can only answer
/// that route, as [`AuthResponse::of`].
pub(crate) struct Encoded<E: Endpoint> {
    body: Bytes,
    endpoint: std::marker::PhantomData<fn() -> E>,
}

impl<E: Endpoint> Encoded<E> {
    /// `value` encoded as [`AuthResponse::of`] answers it.
    pub(crate) fn new(value: &E::Response) -> Result<Encoded<E>, serde_json::Error> {
        let body = serde_json::to_vec(&Envelope { data: value })?;
        Ok(Encoded {
            body: Bytes::from(body),
            endpoint: std::marker::PhantomData,
        })
    }
}

/// A refusal: status and `code` from [`ErrorCode`], a message safe to show, and a retry hint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// Machine code (fixes the status).
    pub code: ErrorCode,
    /// Human message; never holds a secret or an internal detail.
    pub message: Cow<'static, str>,
    /// `Retry-After`, seconds.
    pub retry_after_secs: Option<u64>,
    /// Overrides the code's usual status (413 for an oversized body).
    pub status_override: Option<StatusCode>,
    /// Why the session ended, on a refused refresh (PROTOCOL 8).
    pub reason: Option<EndReason>,
}

impl ApiError {
    /// A refusal with `code` and `message`.
    pub fn new(code: ErrorCode, message: impl Into<Cow<'static, str>>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
            retry_after_secs: None,
            status_override: None,
            reason: None,
        }
    }

    /// The refusal of a session that ended for `reason`: its code, message and `reason`.
    pub fn session_ended(reason: EndReason) -> ApiError {
        ApiError {
            reason: Some(reason),
            ..ApiError::new(reason.code(), reason.message())
        }
    }

    /// 400 `VALIDATION_ERROR`.
    pub fn validation(message: impl Into<Cow<'static, str>>) -> ApiError {
        ApiError::new(ErrorCode::ValidationError, message)
    }

    /// 500 `INTERNAL`, with nothing of the cause.
    pub fn internal() -> ApiError {
        ApiError::new(ErrorCode::Internal, "Internal server error.")
    }

    /// 429 `RATE_LIMITED` with `Retry-After`.
    pub fn rate_limited(retry_after_ms: i64) -> ApiError {
        let secs = u64::try_from(retry_after_ms.max(1)).unwrap_or(1).div_ceil(1000);
        ApiError {
            retry_after_secs: Some(secs.max(1)),
            ..ApiError::new(ErrorCode::RateLimited, "Too many requests. Try again later.")
        }
    }

    /// 503 `SERVICE_UNAVAILABLE` with `Retry-After`: the server is too busy for this
    /// request now.
    pub fn unavailable(retry_after_secs: u64, message: impl Into<Cow<'static, str>>) -> ApiError {
        ApiError {
            retry_after_secs: Some(retry_after_secs.max(1)),
            ..ApiError::new(ErrorCode::ServiceUnavailable, message)
        }
    }

    /// 404 `NOT_FOUND` for an unknown route or method.
    pub fn route_not_found() -> ApiError {
        ApiError::new(ErrorCode::NotFound, "Not found")
    }

    /// The HTTP response.
    pub fn to_response(self) -> AuthResponse {
        let status = self
            .status_override
            .or_else(|| StatusCode::from_u16(self.code.status()).ok())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut body = ErrorBody::new(self.code, self.message);
        if let Some(reason) = self.reason {
            body = body.with_reason(reason);
        }
        let body = serde_json::to_vec(&body).unwrap_or_default();
        let mut response = AuthResponse::json(status, body);
        if let Some(secs) = self.retry_after_secs {
            response
                .headers
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> ApiError {
        match error {
            StoreError::EmailTaken => ApiError::new(
                ErrorCode::EmailTaken,
                "An account with this email already exists.",
            ),
            StoreError::DeviceConflict => ApiError::new(
                ErrorCode::DeviceConflict,
                "This device id is registered to another account or with another key. Use a new device id.",
            ),
            StoreError::DeviceRevoked => ApiError::new(ErrorCode::DeviceRevoked, "This device was revoked."),
            other => {
                tracing::error!(error = %other, "storage failure");
                ApiError::internal()
            }
        }
    }
}

/// Parses a JSON request body into `T`, refusing a wrong content type, invalid JSON and a
/// body of the wrong shape with 400 `VALIDATION_ERROR`. `shape` names the expected members
/// for the message (serde's own message could echo a submitted value, such as a password).
pub fn parse_json<T: DeserializeOwned>(request: &AuthRequest, shape: &'static str) -> Result<T, ApiError> {
    if !has_json_content_type(&request.headers) {
        return Err(ApiError::validation("Content-Type must be application/json."));
    }
    // serde would read a struct from a JSON array too (`["a@b.co", "password"]` as a
    // sign-in); the protocol's bodies are objects, and a valid JSON text starting with `{`
    // is one.
    if request.body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(
            match serde_json::from_slice::<serde::de::IgnoredAny>(&request.body) {
                Ok(_) => ApiError::validation(format!("Request body must be a JSON object {shape}.")),
                Err(_) => ApiError::validation("Request body is not valid JSON."),
            },
        );
    }
    serde_json::from_slice(&request.body).map_err(|error| match error.classify() {
        serde_json::error::Category::Data => {
            ApiError::validation(format!("Request body must be a JSON object {shape}."))
        }
        _ => ApiError::validation("Request body is not valid JSON."),
    })
}

/// Like [`parse_json`], but an empty body means `T::default()` (for optional bodies).
pub fn parse_optional_json<T: DeserializeOwned + Default>(
    request: &AuthRequest,
    shape: &'static str,
) -> Result<T, ApiError> {
    if request.body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    parse_json(request, shape)
}

fn has_json_content_type(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("application/json")
}

/// The access token of a request, if it has one: `Authorization: Bearer <token>`, or
/// `Authorization: DPoP <token>` (RFC 9449 section 7.1), which names the same token; a bound
/// token needs its `DPoP` proof whichever scheme carries it.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    let known = scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("dpop");
    (known && !token.is_empty()).then_some(token)
}

/// The URL the client addressed: the configured public base URL, or `http://` and the
/// `Host` header, followed by the request's path (with the route prefix). Scheme and host
/// are lower-cased and a default port is dropped, as URL parsers (and so clients) write
/// them. `None` when there is no usable `Host`.
pub fn request_url(public_url: Option<&str>, headers: &HeaderMap, path: &str) -> Option<String> {
    let origin = match public_url {
        Some(base) => base.trim_end_matches('/'),
        None => {
            let host = headers.get(header::HOST)?.to_str().ok()?.trim();
            let valid = !host.is_empty()
                && host.bytes().all(|b| {
                    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':' | b'[' | b']')
                });
            if !valid {
                return None;
            }
            return Some(format!(
                "http://{}{path}",
                host.strip_suffix(":80").unwrap_or(host).to_ascii_lowercase()
            ));
        }
    };
    // `scheme://authority` is case-insensitive; a path the base may carry is not.
    let authority_end = origin
        .find("://")
        .map(|at| at + 3)
        .and_then(|start| origin[start..].find('/').map(|end| start + end))
        .unwrap_or(origin.len());
    let (authority, base_path) = origin.split_at(authority_end);
    let mut url = authority.to_ascii_lowercase();
    for default in [("http://", ":80"), ("https://", ":443")] {
        if url.starts_with(default.0) && url.ends_with(default.1) {
            url.truncate(url.len() - default.1.len());
        }
    }
    url.push_str(base_path);
    url.push_str(path);
    Some(url)
}

#[cfg(test)]
#[path = "exchange_tests.rs"]
mod tests;
