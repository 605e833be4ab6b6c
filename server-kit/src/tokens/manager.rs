//! Issuance under one policy: access/refresh pairs (a token family's first, and each
//! rotation's), re-issuance of a recorded pair in the grace window, device credentials.

use std::fmt;

use holdfast_protocol::wire::TokenPair;
use holdfast_protocol::{Claims, ClaimsRef, Cnf, MfaClaim, TokenType};

use super::{PayloadBuffer, TokenError, TokenKeys};

/// The application's claims of an access token (`ext`).
pub type ExtraClaims = serde_json::Map<String, serde_json::Value>;
use crate::config::{ConfigError, ServerConfig};
use crate::store::ChildPair;

/// How a session's user proved who they are (PROTOCOL 9): what its tokens say in `aal`,
/// `amr`, `auth_time` and `mfa`. It belongs to the session: a refresh carries it over
/// unchanged, and only a check (a password, a second factor) changes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assurance {
    /// 1 after a password or a device key alone, 2 after a second factor.
    pub aal: u8,
    /// The methods used, RFC 8176 names (`pwd`, `otp`), `rec` for a recovery code.
    pub amr: Vec<String>,
    /// When the user last passed a check (password or second factor), seconds.
    pub auth_time: i64,
    /// The user has a second factor this session has not presented yet.
    pub mfa_pending: bool,
}

impl Assurance {
    /// A password check at `now_secs`: `aal` 1, pending when the user has a second factor.
    pub fn password(now_secs: i64, mfa_pending: bool) -> Assurance {
        Assurance {
            aal: 1,
            amr: vec!["pwd".to_owned()],
            auth_time: now_secs,
            mfa_pending,
        }
    }

    /// A silent re-login with the device key (PROTOCOL 6.4) at `now_secs`: the new session
    /// carries on how the device's deciding session was proved (`previous`), so a device
    /// that presented the second factor once stays verified; a device key alone never
    /// raises it. With a second factor on and `previous` not at `aal` 2, the new session is
    /// pending. Its `auth_time` is the previous one's (a key is no password check), `0`
    /// without one.
    pub fn device_key(previous: Option<Assurance>, mfa_on: bool, now_secs: i64) -> Assurance {
        let mut assurance = previous.unwrap_or(Assurance {
            aal: 1,
            amr: vec!["swk".to_owned()],
            auth_time: 0,
            mfa_pending: false,
        });
        assurance.auth_time = assurance.auth_time.min(now_secs);
        if assurance.aal < 2 {
            assurance.mfa_pending = mfa_on;
        }
        assurance
    }

    /// What the tokens of a session say (`aal` 1 and no methods for a token without them,
    /// as a token minted before PROTOCOL 9).
    pub fn of(claims: &Claims) -> Assurance {
        Assurance {
            aal: claims.assurance(),
            amr: claims.amr.clone().unwrap_or_default(),
            auth_time: claims.auth_time.unwrap_or(claims.iat),
            mfa_pending: claims.mfa_pending(),
        }
    }

    /// This assurance after a second factor (`method`: `otp` or `rec`) passed at
    /// `now_secs`: `aal` 2, no longer pending, the method added.
    pub fn with_second_factor(&self, method: &str, now_secs: i64) -> Assurance {
        let mut amr = self.amr.clone();
        if !amr.iter().any(|m| m == method) {
            amr.push(method.to_owned());
        }
        Assurance {
            aal: 2,
            amr,
            auth_time: now_secs,
            mfa_pending: false,
        }
    }

    fn fill(&self, claims: &mut Claims) {
        claims.aal = Some(self.aal);
        claims.amr = (!self.amr.is_empty()).then(|| self.amr.clone());
        claims.auth_time = Some(self.auth_time);
        claims.mfa = self.mfa_pending.then_some(MfaClaim::Pending);
    }
}

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
        let mut buffer = PayloadBuffer::new();
        self.verify_borrowed(token, expected, now_secs, &mut buffer)
            .map(ClaimsRef::into_owned)
    }

    /// [`TokenManager::verify`] for a caller that only reads the claims: the payload is
    /// decoded into `buffer` and the claims borrow from it, so nothing is allocated for a
    /// token of a realistic size.
    pub fn verify_borrowed<'b>(
        &self,
        token: &str,
        expected: TokenType,
        now_secs: i64,
        buffer: &'b mut PayloadBuffer,
    ) -> Result<ClaimsRef<'b>, TokenError> {
        let claims = self.keys.verify_signature(token)?.claims_in(buffer)?;
        if claims.token_type != expected {
            return Err(TokenError::WrongType);
        }
        if now_secs > claims.exp.saturating_add(self.policy.leeway_secs) {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }

    /// Issues an access/refresh pair for one sign-in session (`family`) after a password
    /// check, bound to the device key `jkt` when the device has one.
    pub fn issue_pair(
        &self,
        user_id: &str,
        device_id: &str,
        family: &str,
        jkt: Option<&str>,
        now_secs: i64,
    ) -> IssuedPair {
        let assurance = Assurance::password(now_secs, false);
        self.issue_pair_with(user_id, device_id, family, jkt, None, &assurance, now_secs)
    }

    /// [`TokenManager::issue_pair`] with the application's claims in the access token
    /// (`ext`, see [`crate::hooks::AuthHooks::extra_claims`]) and the session's
    /// [`Assurance`].
    #[allow(clippy::too_many_arguments)]
    pub fn issue_pair_with(
        &self,
        user_id: &str,
        device_id: &str,
        family: &str,
        jkt: Option<&str>,
        ext: Option<&ExtraClaims>,
        assurance: &Assurance,
        now_secs: i64,
    ) -> IssuedPair {
        let pair = ChildPair {
            access_jti: new_jti(),
            refresh_jti: new_jti(),
            issued_at: now_secs,
            access_expires_at: now_secs.saturating_add(self.policy.access_ttl_secs),
            refresh_expires_at: now_secs.saturating_add(self.policy.refresh_ttl_secs),
        };
        self.sign_pair(user_id, device_id, Some(family), jkt, ext, assurance, &pair)
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
            &Assurance::of(parent),
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
            aal: None,
            amr: None,
            auth_time: None,
            mfa: None,
            ext: None,
        })
    }

    /// The one place pair claims are built, so issuing and re-issuing cannot drift apart.
    #[allow(clippy::too_many_arguments)]
    fn sign_pair(
        &self,
        user_id: &str,
        device_id: &str,
        family: Option<&str>,
        jkt: Option<&str>,
        ext: Option<&ExtraClaims>,
        assurance: &Assurance,
        pair: &ChildPair,
    ) -> IssuedPair {
        let claims = |jti: &str, token_type: TokenType, exp: i64| {
            let mut claims = Claims {
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
                aal: None,
                amr: None,
                auth_time: None,
                mfa: None,
                ext: None,
            };
            assurance.fill(&mut claims);
            claims
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

/// A random v4 UUID. uuid's `fast-rng` draws it from a thread-local CSPRNG seeded by the
/// OS (rand's `ThreadRng`) rather than a `getrandom` call per id: two per refresh.
fn new_jti() -> String {
    uuid::Uuid::new_v4().to_string()
}
