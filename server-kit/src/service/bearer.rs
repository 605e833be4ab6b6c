//! The check every bearer route shares (PROTOCOL section 7: revocation is checked on every
//! bearer route, not only at refresh).

use holdfast_protocol::{Claims, ErrorCode, TokenType};

use super::{ApiError, AuthRequest, AuthService, bearer_token};
use crate::store::{DeviceRecord, UserRecord};
use crate::tokens::TokenError;

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
    /// Authenticates the request's bearer token: signature and expiry, `access` type, not
    /// revoked (by `jti` or family), the user exists, the device is not revoked and is the
    /// user's.
    pub async fn authenticate(&self, request: &AuthRequest) -> Result<Authenticated, ApiError> {
        let token = bearer_token(&request.headers)
            .ok_or_else(|| ApiError::new(ErrorCode::TokenInvalid, "Missing bearer token."))?;
        self.authenticate_token(token).await
    }

    /// [`AuthService::authenticate`] for a token from any transport.
    pub async fn authenticate_token(&self, token: &str) -> Result<Authenticated, ApiError> {
        let claims = self
            .inner
            .tokens
            .verify(token, TokenType::Access, self.now_secs())
            .map_err(access_token_error)?;
        self.check_standing(claims).await
    }

    /// The checks after the signature: revocation, user, device.
    pub(super) async fn check_standing(&self, claims: Claims) -> Result<Authenticated, ApiError> {
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

/// The refusal for a token that failed verification.
pub(super) fn access_token_error(error: TokenError) -> ApiError {
    match error {
        TokenError::Expired => ApiError::new(ErrorCode::TokenExpired, "The token has expired."),
        TokenError::Malformed | TokenError::BadSignature | TokenError::WrongType => {
            ApiError::new(ErrorCode::TokenInvalid, "Invalid token.")
        }
    }
}
