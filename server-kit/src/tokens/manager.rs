//! Issuance under one policy: access/refresh pairs (a token family's first, and each
//! rotation's), re-issuance of a recorded pair in the grace window, device credentials.

use std::fmt;

use holdfast_protocol::wire::TokenPair;
use holdfast_protocol::{Claims, Cnf, TokenType};

use super::{TokenError, TokenKeys};

/// The application's claims of an access token (`ext`).
pub type ExtraClaims = serde_json::Map<String, serde_json::Value>;
use crate::config::{ConfigError, ServerConfig};
use crate::store::ChildPair;

/// Token lifetimes and the expiry leeway, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenPolicy {
    /// Access token lifetime.
    pub access_ttl_secs: i64,
    /// Refresh token lifetime.
    pub refresh_ttl_secs: i64,
    /// Device credential lifetime.
    pub device_credential_ttl_secs: i64,
    /// A token is accepted until `exp` plus this many seconds.
    pub leeway_secs: i64,
}

impl TokenPolicy {
    /// The policy a [`ServerConfig`] describes.
    pub fn from_config(config: &ServerConfig) -> TokenPolicy {
        TokenPolicy {
            access_ttl_secs: config.access_ttl_secs,
            refresh_ttl_secs: config.refresh_ttl_secs,
            device_credential_ttl_secs: config.device_credential_ttl_secs,
            leeway_secs: config.leeway_secs,
        }
    }
}

/// An access/refresh pair as issued, with the claims each token carries.
#[derive(Clone, PartialEq, Eq)]
pub struct IssuedPair {
    /// The access token.
    pub access: String,
    /// The refresh token.
    pub refresh: String,
    /// Claims of the access token.
    pub access_claims: Claims,
    /// Claims of the refresh token.
    pub refresh_claims: Claims,
}

impl fmt::Debug for IssuedPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedPair")
            .field("access", &"<redacted>")
            .field("refresh", &"<redacted>")
            .field("access_claims", &self.access_claims)
            .field("refresh_claims", &self.refresh_claims)
            .finish()
    }
}

impl IssuedPair {
    /// What the token store records at rotation so that [`TokenManager::reissue_pair`] can
    /// give the same tokens again within the grace window (PROTOCOL 6.2).
    pub fn child_pair(&self) -> ChildPair {
        ChildPair {
            access_jti: self.access_claims.jti.clone(),
            refresh_jti: self.refresh_claims.jti.clone(),
            issued_at: self.access_claims.iat,
            access_expires_at: self.access_claims.exp,
            refresh_expires_at: self.refresh_claims.exp,
        }
    }

    /// The pair as the protocol sends it.
    pub fn into_wire(self) -> TokenPair {
        TokenPair {
            access_token: self.access,
            refresh_token: self.refresh,
        }
    }
}

/// Issues and verifies tokens under one set of keys and one [`TokenPolicy`].
#[derive(Debug)]
pub struct TokenManager {
    keys: TokenKeys,
    policy: TokenPolicy,
}

impl TokenManager {
    /// A manager over `keys` with `policy`.
    pub fn new(keys: TokenKeys, policy: TokenPolicy) -> TokenManager {
        TokenManager { keys, policy }
    }

    /// A manager for a configuration. Checks the secrets; the other settings are checked by
    /// [`ServerConfig::validate`].
    pub fn from_config(config: &ServerConfig) -> Result<TokenManager, ConfigError> {
        Ok(TokenManager::new(
            TokenKeys::new(&config.secrets)?,
            TokenPolicy::from_config(config),
        ))
    }

    /// The lifetimes and leeway in force.
    pub fn policy(&self) -> &TokenPolicy {
        &self.policy
    }

    /// The keys.
    pub fn keys(&self) -> &TokenKeys {
        &self.keys
    }

    /// Verifies a token: signature first, then type (a mismatch is
    /// [`TokenError::WrongType`]), then expiry (`now_secs > exp + leeway` is
    /// [`TokenError::Expired`]).
    pub fn verify(&self, token: &str, expected: TokenType, now_secs: i64) -> Result<Claims, TokenError> {
        let claims = self.keys.verify(token)?;
        if claims.token_type != expected {
            return Err(TokenError::WrongType);
        }
        if now_secs > claims.exp.saturating_add(self.policy.leeway_secs) {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }

    /// Issues an access/refresh pair for one sign-in session (`family`), bound to the device
    /// key `jkt` when the device has one.
    pub fn issue_pair(
        &self,
        user_id: &str,
        device_id: &str,
        family: &str,
        jkt: Option<&str>,
        now_secs: i64,
    ) -> IssuedPair {
        self.issue_pair_with(user_id, device_id, family, jkt, None, now_secs)
    }

    /// [`TokenManager::issue_pair`] with the application's claims in the access token
    /// (`ext`, see [`crate::hooks::AuthHooks::extra_claims`]).
    pub fn issue_pair_with(
        &self,
        user_id: &str,
        device_id: &str,
        family: &str,
        jkt: Option<&str>,
        ext: Option<&ExtraClaims>,
        now_secs: i64,
    ) -> IssuedPair {
        let pair = ChildPair {
            access_jti: new_jti(),
            refresh_jti: new_jti(),
            issued_at: now_secs,
            access_expires_at: now_secs.saturating_add(self.policy.access_ttl_secs),
            refresh_expires_at: now_secs.saturating_add(self.policy.refresh_ttl_secs),
        };
        self.sign_pair(user_id, device_id, Some(family), jkt, ext, &pair)
    }

    /// Re-signs the children recorded when `parent` (a refresh token's claims) was rotated,
    /// giving tokens byte-identical to the ones [`TokenManager::issue_pair`] returned then.
    ///
    /// HS256 is deterministic and the claims serialize in a fixed order, so the store keeps
    /// only ids and times ([`ChildPair`]), never a token (PROTOCOL 6.2). The result is the
    /// same only while the first secret is the same: after a rotation of the signing secret
    /// the re-issued tokens differ but still verify.
    ///
    /// `ext` is the application's claims, as when the pair was first issued: the same
    /// claims give the same tokens.
    pub fn reissue_pair(&self, parent: &Claims, pair: &ChildPair, ext: Option<&ExtraClaims>) -> IssuedPair {
        self.sign_pair(
            &parent.sub,
            &parent.dev,
            parent.fam.as_deref(),
            parent.cnf.as_ref().map(|cnf| cnf.jkt.as_str()),
            ext,
            pair,
        )
    }

    /// Issues a device credential: proof that `device_id` of `user_id` was registered with
    /// the key whose thumbprint is `thumbprint`. `mustCheckinBy` equals `exp`.
    pub fn issue_device_credential(
        &self,
        user_id: &str,
        device_id: &str,
        thumbprint: &str,
        now_secs: i64,
    ) -> String {
        let exp = now_secs.saturating_add(self.policy.device_credential_ttl_secs);
        self.keys.sign(&Claims {
            jti: new_jti(),
            sub: user_id.to_owned(),
            dev: device_id.to_owned(),
            token_type: TokenType::DeviceCredential,
            iat: now_secs,
            exp,
            dpk: Some(thumbprint.to_owned()),
            must_checkin_by: Some(exp),
            fam: None,
            cnf: None,
            ext: None,
        })
    }

    /// The one place pair claims are built, so issuing and re-issuing cannot drift apart.
    fn sign_pair(
        &self,
        user_id: &str,
        device_id: &str,
        family: Option<&str>,
        jkt: Option<&str>,
        ext: Option<&ExtraClaims>,
        pair: &ChildPair,
    ) -> IssuedPair {
        let claims = |jti: &str, token_type: TokenType, exp: i64| Claims {
            jti: jti.to_owned(),
            sub: user_id.to_owned(),
            dev: device_id.to_owned(),
            token_type,
            iat: pair.issued_at,
            exp,
            dpk: None,
            must_checkin_by: None,
            fam: family.map(str::to_owned),
            cnf: jkt.map(|jkt| Cnf { jkt: jkt.to_owned() }),
            ext: None,
        };
        let mut access_claims = claims(&pair.access_jti, TokenType::Access, pair.access_expires_at);
        access_claims.ext = ext.cloned();
        let refresh_claims = claims(&pair.refresh_jti, TokenType::Refresh, pair.refresh_expires_at);
        IssuedPair {
            access: self.keys.sign(&access_claims),
            refresh: self.keys.sign(&refresh_claims),
            access_claims,
            refresh_claims,
        }
    }
}

fn new_jti() -> String {
    uuid::Uuid::new_v4().to_string()
}
