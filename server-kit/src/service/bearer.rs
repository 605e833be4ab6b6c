//! The check every bearer route shares (PROTOCOL section 7: revocation is checked on every
//! bearer route, not only at refresh), including the device proof a bound token demands
//! (PROTOCOL 3 and 6.1: a token carrying `cnf.jkt` is only good with a `DPoP` proof signed
//! by that key).

use holdfast_protocol::{Claims, ErrorCode, TokenType};
use http::{HeaderMap, header};

use super::{ApiError, AuthRequest, AuthService, bearer_token};
use crate::proofs::{ProofCheck, ProofError, ProofFailure, verify_proof};
use crate::store::{DeviceRecord, UserRecord};
use crate::tokens::TokenError;

/// The request header that carries a device proof.
pub(super) const DPOP_HEADER: &str = "dpop";

/// A request whose access token passed every check.
#[derive(Debug, Clone)]
pub struct Authenticated {
    /// The token's claims.
    pub claims: Claims,
    /// The token's user, as stored now.
    pub user: UserRecord,
    /// The token's device, when registered.
    pub device: Option<DeviceRecord>,
}

impl AuthService {
    /// Authenticates the request's bearer token: signature and expiry, `access` type, a
    /// valid `DPoP` proof when the token is bound to a device key, not revoked (by `jti` or
    /// family), the user exists, the device is not revoked and is the user's.
    pub async fn authenticate(&self, request: &AuthRequest) -> Result<Authenticated, ApiError> {
        let token = bearer_token(&request.headers)
            .ok_or_else(|| ApiError::new(ErrorCode::TokenInvalid, "Missing bearer token."))?;
        let claims = self
            .inner
            .tokens
            .verify(token, TokenType::Access, self.now_secs())
            .map_err(access_token_error)?;
        self.check_request_proof(request, token, &claims).await?;
        self.check_standing(claims).await
    }

    /// For a token bound to a device key (`cnf.jkt`), checks the request's `DPoP` proof:
    /// made by that key, for this method and URL, for this token, fresh and unused. An
    /// unbound token needs none, and a proof sent with one is ignored.
    ///
    /// Runs before the standing checks, so a bound token without its key learns nothing
    /// about its session.
    pub(super) async fn check_request_proof(
        &self,
        request: &AuthRequest,
        access_token: &str,
        claims: &Claims,
    ) -> Result<(), ApiError> {
        let Some(cnf) = &claims.cnf else {
            return Ok(());
        };
        let proof = request
            .headers
            .get(DPOP_HEADER)
            .and_then(|value| value.to_str().ok())
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::ProofInvalid,
                    "This token is bound to a device key: send a DPoP proof.",
                )
            })?;
        self.verify_request_proof(request, proof, access_token, &cnf.jkt)
            .await
    }

    /// Checks `proof` as made by the key `expected_jkt` for this request's method and URL
    /// and for `access_token` (empty for a token request, whose proof has no `ath`), and
    /// records it as used: the bearer routes' check and the token requests' binding.
    pub(super) async fn verify_request_proof(
        &self,
        request: &AuthRequest,
        proof: &str,
        access_token: &str,
        expected_jkt: &str,
    ) -> Result<(), ApiError> {
        let public_base_url = self.inner.config.public_base_url.as_deref();
        let url = request_url(public_base_url, &request.headers, &request.path).ok_or_else(|| {
            ApiError::new(
                ErrorCode::ProofInvalid,
                "The request has no valid Host header to check the DPoP proof against.",
            )
        })?;
        self.verify_device_proof(ProofCheck {
            proof,
            method: request.method.as_str(),
            url: &url,
            access_token,
            expected_jkt,
            now_secs: self.now_secs(),
        })
        .await
    }

    /// Checks a device proof completely (PROTOCOL 6.1) and records it as used: for the
    /// bearer routes and for a sync gate's handshake. A refused proof is 401
    /// `PROOF_INVALID` saying which check failed; a replay-store failure is 500 `INTERNAL`.
    pub async fn verify_device_proof(&self, check: ProofCheck<'_>) -> Result<(), ApiError> {
        let url = check.url;
        verify_proof(check, self.inner.stores.replays.as_ref())
            .await
            .map_err(|failure| match failure {
                // Which URL was expected is what a client behind a proxy or a prefix needs
                // to know (the URL is public; nothing else of the proof is echoed).
                ProofFailure::Refused(ProofError::Url) => ApiError::new(
                    ErrorCode::ProofInvalid,
                    format!(
                        "The device proof is for another URL: this request's URL is {}.",
                        holdfast_protocol::proof::htu_of(url)
                    ),
                ),
                ProofFailure::Refused(error) => ApiError::from(error),
                ProofFailure::Store(error) => ApiError::from(error),
            })
    }

    /// [`AuthService::authenticate`] for a token from any transport. No device proof is
    /// checked here: a caller given a bound token (`cnf.jkt`) checks the transport's proof
    /// with [`AuthService::verify_device_proof`].
    pub async fn authenticate_token(&self, token: &str) -> Result<Authenticated, ApiError> {
        let claims = self
            .inner
            .tokens
            .verify(token, TokenType::Access, self.now_secs())
            .map_err(access_token_error)?;
        self.check_standing(claims).await
    }

    /// The checks after the signature: revocation, user, device (also the sync gate's).
    pub(crate) async fn check_standing(&self, claims: Claims) -> Result<Authenticated, ApiError> {
        let stores = &self.inner.stores;
        if stores
            .tokens
            .is_revoked(&claims.jti, claims.fam.as_deref())
            .await?
        {
            return Err(ApiError::new(
                ErrorCode::TokenRevoked,
                "This token was revoked. Sign in again.",
            ));
        }
        let user = stores
            .users
            .find_user(&claims.sub)
            .await?
            .ok_or_else(|| ApiError::new(ErrorCode::UserNotFound, "The account no longer exists."))?;
        let device = stores.devices.find_device(&claims.dev).await?;
        if let Some(device) = &device {
            if device.user_id != claims.sub {
                return Err(ApiError::new(ErrorCode::TokenInvalid, "Invalid token."));
            }
            if device.revoked {
                return Err(ApiError::new(
                    ErrorCode::DeviceRevoked,
                    "This device was revoked.",
                ));
            }
        }
        Ok(Authenticated { claims, user, device })
    }
}

/// The URL the client addressed: the configured public base URL, or `http://` and the
/// `Host` header, followed by the request's path (with the route prefix). Scheme and host
/// are lower-cased and a default port is dropped, as URL parsers (and so clients) write
/// them. `None` when there is no usable `Host`.
pub(crate) fn request_url(public_base_url: Option<&str>, headers: &HeaderMap, path: &str) -> Option<String> {
    let origin = match public_base_url {
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

/// The refusal for a token that failed verification.
pub(super) fn access_token_error(error: TokenError) -> ApiError {
    match error {
        TokenError::Expired => ApiError::new(ErrorCode::TokenExpired, "The token has expired."),
        TokenError::Malformed | TokenError::BadSignature | TokenError::WrongType => {
            ApiError::new(ErrorCode::TokenInvalid, "Invalid token.")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn host(value: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static(value));
        headers
    }

    #[test]
    fn the_request_url_comes_from_the_host_header() {
        let url = |value| request_url(None, &host(value), "/auth/me");
        assert_eq!(
            url("127.0.0.1:8080").as_deref(),
            Some("http://127.0.0.1:8080/auth/me")
        );
        assert_eq!(
            url("API.Example.com:80").as_deref(),
            Some("http://api.example.com/auth/me")
        );
        assert_eq!(url("[::1]:9000").as_deref(), Some("http://[::1]:9000/auth/me"));
        assert_eq!(url("evil.example/x?"), None);
        assert_eq!(url("user@host"), None);
        assert_eq!(request_url(None, &HeaderMap::new(), "/auth/me"), None);
    }

    #[test]
    fn a_public_base_url_wins_over_the_host_header() {
        let url = |base| request_url(Some(base), &host("internal:8080"), "/auth/me");
        assert_eq!(
            url("https://api.example.com").as_deref(),
            Some("https://api.example.com/auth/me")
        );
        assert_eq!(
            url("https://API.example.com:443/").as_deref(),
            Some("https://api.example.com/auth/me")
        );
        assert_eq!(
            url("https://example.com/Backend/").as_deref(),
            Some("https://example.com/Backend/auth/me")
        );
        assert_eq!(
            url("http://example.com:8443").as_deref(),
            Some("http://example.com:8443/auth/me")
        );
        assert_eq!(
            request_url(Some("https://a.example"), &HeaderMap::new(), "/auth/me").as_deref(),
            Some("https://a.example/auth/me")
        );
    }
}
