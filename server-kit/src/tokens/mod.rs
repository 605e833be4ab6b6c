//! HS256 tokens (PROTOCOL section 3): signing, verification with key rotation, and issuance
//! of access/refresh pairs and device credentials.
//!
//! The header segment is the exact constant [`JWT_HEADER_B64`]: Kora refuses any other
//! spelling of the same JSON, so tokens are assembled by hand rather than with a JWT
//! library. Verification is the server's hottest path (every bearer request and every sync
//! handshake), so [`TokenKeys::verify`] allocates only for the decoded claims: the header is
//! compared as a string, the signature is decoded into a stack buffer and checked with
//! ring's precomputed HMAC keys before the payload is parsed at all.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use holdfast_protocol::Claims;
use holdfast_protocol::claims::JWT_HEADER_B64;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

use crate::config::ConfigError;

/// Shortest accepted secret, in characters (PROTOCOL section 3).
pub const MIN_SECRET_CHARS: usize = 32;

/// Longest token [`TokenKeys::verify`] looks at. Real tokens are a few hundred bytes; the
/// bound keeps a hostile multi-megabyte "token" from costing a MAC and a base64 pass per key.
const MAX_TOKEN_LEN: usize = 8 * 1024;

/// Length of an HS256 signature segment: base64url of 32 bytes, unpadded.
const SIGNATURE_B64_LEN: usize = 43;

/// Payloads up to this many decoded bytes are decoded on the stack; realistic ones (with
/// `fam` and `cnf`) are about 270 bytes.
const STACK_PAYLOAD_LEN: usize = 512;

/// Why a token was refused. The messages are safe to send to clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a compact JWT with the exact HS256 header and well-formed claims.
    #[error("token is malformed")]
    Malformed,
    /// The signature does not match any configured secret.
    #[error("token signature is invalid")]
    BadSignature,
    /// Past `exp` plus the leeway.
    #[error("token has expired")]
    Expired,
    /// A valid token of another type (e.g. a refresh token used as an access token).
    #[error("token is of the wrong type")]
    WrongType,
}

/// The HMAC keys derived from the configured secrets: the first signs, all verify.
///
/// Only ring's precomputed keys are kept (not the secret strings), and `Debug` shows how
/// many keys there are, nothing else.
pub struct TokenKeys {
    keys: Vec<hmac::Key>,
}

impl fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenKeys(<{} redacted>)", self.keys.len())
    }
}

impl TokenKeys {
    /// Derives one HMAC-SHA256 key per secret.
    ///
    /// Refuses an empty list ([`ConfigError::NoSecret`]) and any secret shorter than 32
    /// characters ([`ConfigError::SecretTooShort`] with its 1-based position).
    pub fn new<S: AsRef<str>>(secrets: &[S]) -> Result<TokenKeys, ConfigError> {
        if secrets.is_empty() {
            return Err(ConfigError::NoSecret);
        }
        let mut keys = Vec::with_capacity(secrets.len());
        for (index, secret) in secrets.iter().enumerate() {
            let secret = secret.as_ref();
            if secret.chars().count() < MIN_SECRET_CHARS {
                return Err(ConfigError::SecretTooShort(index + 1));
            }
            // Kora keys HMAC with the secret's UTF-8 bytes, so no decoding happens here.
            keys.push(hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes()));
        }
        Ok(TokenKeys { keys })
    }

    /// Signs `claims` with the first secret, giving a compact token.
    pub fn sign(&self, claims: &Claims) -> String {
        let payload = claims.to_json();
        // header + '.' + payload (4/3 of the JSON) + '.' + 43 signature characters.
        let mut token = String::with_capacity(
            JWT_HEADER_B64.len() + 2 + payload.len().div_ceil(3) * 4 + SIGNATURE_B64_LEN,
        );
        token.push_str(JWT_HEADER_B64);
        token.push('.');
        // Appending in place saves the intermediate strings `holdfast_protocol::b64::encode`
        // would allocate; the alphabet (base64url, unpadded) is the same.
        URL_SAFE_NO_PAD.encode_string(payload.as_bytes(), &mut token);
        let tag = hmac::sign(self.signing_key(), token.as_bytes());
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(tag.as_ref(), &mut token);
        token
    }

    /// Checks a token's structure, its exact header and its signature against every secret
    /// (rotation), and returns its claims. No time or type checks: see
    /// [`TokenManager::verify`].
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let signed = self.verify_signature(token)?;
        // Only now, with the payload authenticated, is it decoded and parsed (once).
        decode_claims(signed.payload_b64)
    }

    /// The first half of [`TokenKeys::verify`]: structure, header and signature, without
    /// decoding the claims. Its tag identifies the authenticated payload, so a caller that
    /// sees the same token often (the sync gate) can keep the parsed claims by tag.
    pub fn verify_signature<'t>(&self, token: &'t str) -> Result<SignedToken<'t>, TokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Malformed);
        }
        // The cheapest refusal first: any header other than the exact bytes (another member
        // order, whitespace, `alg: none`) is refused before any decoding.
        let rest = token
            .strip_prefix(JWT_HEADER_B64)
            .and_then(|rest| rest.strip_prefix('.'))
            .ok_or(TokenError::Malformed)?;
        let (payload_b64, signature_b64) = rest.split_once('.').ok_or(TokenError::Malformed)?;
        if payload_b64.is_empty() || signature_b64.len() != SIGNATURE_B64_LEN {
            return Err(TokenError::Malformed);
        }
        let mut tag = [0u8; 32];
        // The strict engine refuses non-canonical trailing bits, so each signature has
        // exactly one accepted spelling.
        match URL_SAFE_NO_PAD.decode_slice(signature_b64, &mut tag) {
            Ok(32) => {}
            _ => return Err(TokenError::Malformed),
        }
        let signing_input = &token.as_bytes()[..JWT_HEADER_B64.len() + 1 + payload_b64.len()];
        // ring::hmac::verify compares in constant time. Trying every key leaks at most which
        // key matched, never anything about a secret.
        if !self
            .keys
            .iter()
            .any(|key| hmac::verify(key, signing_input, &tag).is_ok())
        {
            return Err(TokenError::BadSignature);
        }
        Ok(SignedToken { payload_b64, tag })
    }

    fn signing_key(&self) -> &hmac::Key {
        // `new` refuses an empty list, so there is always a first key.
        &self.keys[0]
    }
}

/// A token whose signature verified (see [`TokenKeys::verify_signature`]).
#[derive(Clone, Copy)]
pub struct SignedToken<'t> {
    payload_b64: &'t str,
    /// The HMAC tag: the same tag under the same keys means the same payload.
    pub tag: [u8; 32],
}

impl SignedToken<'_> {
    /// Decodes and parses the claims.
    pub fn claims(&self) -> Result<Claims, TokenError> {
        decode_claims(self.payload_b64)
    }
}

impl std::fmt::Debug for SignedToken<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SignedToken(<redacted>)")
    }
}

fn decode_claims(payload_b64: &str) -> Result<Claims, TokenError> {
    let estimate = base64::decoded_len_estimate(payload_b64.len());
    if estimate <= STACK_PAYLOAD_LEN {
        let mut buffer = [0u8; STACK_PAYLOAD_LEN];
        let len = URL_SAFE_NO_PAD
            .decode_slice(payload_b64, &mut buffer)
            .map_err(|_| TokenError::Malformed)?;
        serde_json::from_slice(&buffer[..len]).map_err(|_| TokenError::Malformed)
    } else {
        let json = URL_SAFE_NO_PAD
            .decode(payload_b64)
            .map_err(|_| TokenError::Malformed)?;
        serde_json::from_slice(&json).map_err(|_| TokenError::Malformed)
    }
}

/// Generates a token secret: 256 bits from the system's secure RNG, as base64url (43
/// characters).
///
/// # Panics
/// If the operating system's RNG fails; a weaker secret would be worse than no server.
pub fn generate_secret() -> String {
    let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
    // No input reaches this panic; failure means the OS RNG is broken.
    SystemRandom::new()
        .fill(bytes.as_mut())
        .expect("the operating system's random number generator failed");
    holdfast_protocol::b64::encode(bytes.as_ref())
}

mod manager;

pub use manager::{ExtraClaims, IssuedPair, TokenManager, TokenPolicy};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ServerConfig;
    use holdfast_protocol::{Cnf, TokenType};

    const SECRET_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-secret-a";
    const SECRET_B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-secret-b";
    const NOW: i64 = 1_700_000_000;

    fn policy() -> TokenPolicy {
        TokenPolicy {
            access_ttl_secs: 900,
            refresh_ttl_secs: 90 * 86_400,
            device_credential_ttl_secs: 90 * 86_400,
            leeway_secs: 5,
        }
    }

    fn manager(secrets: &[&str]) -> TokenManager {
        TokenManager::new(TokenKeys::new(secrets).unwrap(), policy())
    }

    fn sign_raw(secret: &str, header_json: &str, payload_json: &str) -> String {
        let input = format!(
            "{}.{}",
            holdfast_protocol::b64::encode(header_json.as_bytes()),
            holdfast_protocol::b64::encode(payload_json.as_bytes())
        );
        let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
        let tag = hmac::sign(&key, input.as_bytes());
        format!("{input}.{}", holdfast_protocol::b64::encode(tag.as_ref()))
    }

    #[test]
    fn secrets_are_checked() {
        let none: [&str; 0] = [];
        assert_eq!(TokenKeys::new(&none).unwrap_err(), ConfigError::NoSecret);
        assert_eq!(
            TokenKeys::new(&[SECRET_A, "short"]).unwrap_err(),
            ConfigError::SecretTooShort(2)
        );
        // 32 characters, counted as characters rather than bytes.
        let thirty_two = "é".repeat(32);
        assert!(TokenKeys::new(&[thirty_two.as_str()]).is_ok());
        assert_eq!(
            TokenKeys::new(&["é".repeat(31)]).unwrap_err(),
            ConfigError::SecretTooShort(1)
        );
    }

    #[test]
    fn generated_secrets_are_43_chars_and_usable() {
        let a = generate_secret();
        let b = generate_secret();
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
        assert!(TokenKeys::new(&[a]).is_ok());
    }

    #[test]
    fn issue_then_verify_round_trips() {
        let tokens = manager(&[SECRET_A]);
        let pair = tokens.issue_pair("user-1", "dev-1", "fam-1", Some("jkt-1"), NOW);
        assert!(pair.access.starts_with(&format!("{JWT_HEADER_B64}.")));
        let access = tokens.verify(&pair.access, TokenType::Access, NOW).unwrap();
        assert_eq!(access, pair.access_claims);
        assert_eq!(access.fam.as_deref(), Some("fam-1"));
        assert_eq!(access.cnf, Some(Cnf { jkt: "jkt-1".into() }));
        assert_eq!(access.exp, NOW + 900);
        let refresh = tokens.verify(&pair.refresh, TokenType::Refresh, NOW).unwrap();
        assert_eq!(refresh.exp, NOW + 90 * 86_400);
        assert_ne!(access.jti, refresh.jti);
        assert_eq!(uuid::Uuid::parse_str(&access.jti).unwrap().get_version_num(), 4);

        let unbound = tokens.issue_pair("user-1", "dev-1", "fam-1", None, NOW);
        let payload = Claims::decode_unverified(&unbound.access).unwrap();
        assert_eq!(payload.cnf, None);
        assert!(!payload.to_json().contains("cnf"));
    }

    #[test]
    fn device_credential_claims() {
        let tokens = manager(&[SECRET_A]);
        let token = tokens.issue_device_credential("user-1", "dev-1", "THUMB", NOW);
        let claims = tokens.verify(&token, TokenType::DeviceCredential, NOW).unwrap();
        assert_eq!(claims.dpk.as_deref(), Some("THUMB"));
        assert_eq!(claims.exp, NOW + 90 * 86_400);
        assert_eq!(claims.must_checkin_by, Some(claims.exp));
        assert_eq!((claims.fam, claims.cnf), (None, None));
    }

    #[test]
    fn rotation_old_secret_verifies_only_while_listed() {
        let old = manager(&[SECRET_A]);
        let token = old.issue_pair("u", "d", "f", None, NOW).access;
        let rotated = manager(&[SECRET_B, SECRET_A]);
        assert!(rotated.verify(&token, TokenType::Access, NOW).is_ok());
        // New tokens are signed with the first secret only.
        let fresh = rotated.issue_pair("u", "d", "f", None, NOW).access;
        assert_eq!(
            old.verify(&fresh, TokenType::Access, NOW),
            Err(TokenError::BadSignature)
        );
        let removed = manager(&[SECRET_B]);
        assert_eq!(
            removed.verify(&token, TokenType::Access, NOW),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn tampering_is_refused() {
        let tokens = manager(&[SECRET_A]);
        let token = tokens.issue_pair("user-1", "dev-1", "f", None, NOW).access;
        let (input, signature) = token.rsplit_once('.').unwrap();
        let (header, payload) = input.split_once('.').unwrap();

        let other_payload = holdfast_protocol::b64::encode(
            tokens
                .verify(&token, TokenType::Access, NOW)
                .unwrap()
                .to_json()
                .replace("user-1", "user-2")
                .as_bytes(),
        );
        let forged = format!("{header}.{other_payload}.{signature}");
        assert_eq!(tokens.keys().verify(&forged), Err(TokenError::BadSignature));

        // Flip one signature character (keeping it canonical base64url).
        let mut chars: Vec<char> = signature.chars().collect();
        chars[0] = if chars[0] == 'A' { 'B' } else { 'A' };
        let flipped: String = chars.into_iter().collect();
        assert_eq!(
            tokens.keys().verify(&format!("{input}.{flipped}")),
            Err(TokenError::BadSignature)
        );

        // Non-canonical trailing bits in the last signature character.
        let last = signature.chars().last().unwrap();
        let sibling = if last == 'A' { 'B' } else { 'A' };
        let mut noncanonical = signature[..42].to_owned();
        noncanonical.push(sibling);
        assert!(tokens.keys().verify(&format!("{input}.{noncanonical}")).is_err());

        for bad in [
            format!("{input}.{signature}="),
            format!("{input}.{}", &signature[..42]),
            format!("{input}."),
            format!("{header}..{signature}"),
            format!("{input}.{signature}.x"),
            format!("{header}.{payload}"),
            token.replace('.', ""),
            String::new(),
            format!("{input}.{}", "A".repeat(44)),
            "x".repeat(MAX_TOKEN_LEN + 1),
        ] {
            assert_eq!(tokens.keys().verify(&bad), Err(TokenError::Malformed), "{bad}");
        }
    }

    #[test]
    fn other_headers_are_refused_even_when_correctly_signed() {
        let tokens = manager(&[SECRET_A]);
        let payload = r#"{"jti":"j","sub":"u","dev":"d","type":"access","iat":1700000000,"exp":1700000900}"#;
        for header in [
            r#"{"typ":"JWT","alg":"HS256"}"#,
            r#"{"alg": "HS256", "typ": "JWT"}"#,
            r#"{"alg":"HS256","typ":"JWT"} "#,
            r#"{"alg":"none","typ":"JWT"}"#,
            r#"{"alg":"HS512","typ":"JWT"}"#,
            r#"{"alg":"HS256"}"#,
        ] {
            let token = sign_raw(SECRET_A, header, payload);
            assert_eq!(
                tokens.keys().verify(&token),
                Err(TokenError::Malformed),
                "{header}"
            );
        }
        let unsigned = format!(
            "{}.{}.",
            holdfast_protocol::b64::encode(br#"{"alg":"none","typ":"JWT"}"#),
            holdfast_protocol::b64::encode(payload.as_bytes())
        );
        assert_eq!(tokens.keys().verify(&unsigned), Err(TokenError::Malformed));
        // The exact header with the same payload is accepted: the refusals above are the header.
        assert!(
            tokens
                .keys()
                .verify(&sign_raw(SECRET_A, r#"{"alg":"HS256","typ":"JWT"}"#, payload))
                .is_ok()
        );
    }

    #[test]
    fn signed_garbage_payloads_are_malformed_not_panics() {
        let tokens = manager(&[SECRET_A]);
        let header = r#"{"alg":"HS256","typ":"JWT"}"#;
        for payload in [
            "",
            "null",
            "[]",
            "{}",
            r#"{"jti":1}"#,
            r#"{"type":"admin"}"#,
            "\u{0}",
        ] {
            let token = sign_raw(SECRET_A, header, payload);
            assert_eq!(
                tokens.keys().verify(&token),
                Err(TokenError::Malformed),
                "{payload:?}"
            );
        }
        // A signed payload larger than the stack buffer still parses.
        let big = format!(
            r#"{{"jti":"j","sub":"u","dev":"d","type":"access","iat":1,"exp":2,"pad":"{}"}}"#,
            "p".repeat(3000)
        );
        assert!(tokens.keys().verify(&sign_raw(SECRET_A, header, &big)).is_ok());
    }

    #[test]
    fn expiry_leeway_boundaries() {
        let tokens = manager(&[SECRET_A]);
        let pair = tokens.issue_pair("u", "d", "f", None, NOW);
        let exp = pair.access_claims.exp;
        for now in [NOW, exp, exp + 5] {
            assert!(
                tokens.verify(&pair.access, TokenType::Access, now).is_ok(),
                "{now}"
            );
        }
        assert_eq!(
            tokens.verify(&pair.access, TokenType::Access, exp + 6),
            Err(TokenError::Expired)
        );
        // Signature is checked before expiry: an expired token under an unknown secret is a
        // bad signature, not an expired one.
        let foreign = manager(&[SECRET_B]).issue_pair("u", "d", "f", None, NOW).access;
        assert_eq!(
            tokens.verify(&foreign, TokenType::Access, exp + 6),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn extreme_exp_does_not_overflow() {
        let tokens = manager(&[SECRET_A]);
        let claims = Claims {
            jti: "j".into(),
            sub: "u".into(),
            dev: "d".into(),
            token_type: TokenType::Access,
            iat: 0,
            exp: i64::MAX,
            dpk: None,
            must_checkin_by: None,
            fam: None,
            cnf: None,
            ext: None,
        };
        let token = tokens.keys().sign(&claims);
        assert!(tokens.verify(&token, TokenType::Access, i64::MAX).is_ok());
    }

    #[test]
    fn wrong_type_is_refused_before_expiry() {
        let tokens = manager(&[SECRET_A]);
        let pair = tokens.issue_pair("u", "d", "f", None, NOW);
        assert_eq!(
            tokens.verify(&pair.refresh, TokenType::Access, NOW),
            Err(TokenError::WrongType)
        );
        assert_eq!(
            tokens.verify(&pair.access, TokenType::Refresh, NOW),
            Err(TokenError::WrongType)
        );
        let far_future = NOW + 1_000_000_000;
        assert_eq!(
            tokens.verify(&pair.access, TokenType::Refresh, far_future),
            Err(TokenError::WrongType)
        );
        let credential = tokens.issue_device_credential("u", "d", "t", NOW);
        assert_eq!(
            tokens.verify(&credential, TokenType::Access, NOW),
            Err(TokenError::WrongType)
        );
    }

    #[test]
    fn reissue_pair_is_byte_identical() {
        let tokens = manager(&[SECRET_A]);
        for jkt in [Some("VfgaAVYfO1paNyhrn-87ShJMMRBGtlxiFWr4uWfJzI4"), None] {
            let parent = tokens.issue_pair("user-1", "dev-1", "fam-1", jkt, NOW);
            // Rotation, later: the children are issued from the parent's claims.
            let children = tokens.issue_pair("user-1", "dev-1", "fam-1", jkt, NOW + 60);
            let recorded = children.child_pair();
            let again = tokens.reissue_pair(&parent.refresh_claims, &recorded, None);
            assert_eq!(again.access, children.access);
            assert_eq!(again.refresh, children.refresh);
            assert_eq!(again, children);
            assert_eq!(again.child_pair(), recorded);
        }
    }

    #[test]
    fn into_wire_keeps_the_tokens() {
        let tokens = manager(&[SECRET_A]);
        let pair = tokens.issue_pair("u", "d", "f", None, NOW);
        let (access, refresh) = (pair.access.clone(), pair.refresh.clone());
        let wire = pair.into_wire();
        assert_eq!((wire.access_token, wire.refresh_token), (access, refresh));
    }

    #[test]
    fn debug_shows_no_secrets_or_tokens() {
        let keys = TokenKeys::new(&[SECRET_A, SECRET_B]).unwrap();
        let debug = format!("{keys:?}");
        assert!(
            !debug.contains("secret") && !debug.contains("aaaa") && !debug.contains("bbbb"),
            "{debug}"
        );
        let tokens = TokenManager::new(keys, policy());
        let debug = format!("{tokens:?}");
        assert!(!debug.contains("aaaa") && !debug.contains("bbbb"), "{debug}");
        let pair = tokens.issue_pair("u", "d", "f", None, NOW);
        let debug = format!("{pair:?}");
        for token in [&pair.access, &pair.refresh] {
            let signature = token.rsplit_once('.').unwrap().1;
            assert!(
                !debug.contains(signature) && !debug.contains(JWT_HEADER_B64),
                "{debug}"
            );
        }
    }

    #[test]
    fn from_config_uses_secrets_and_lifetimes() {
        let mut config = ServerConfig::new(vec![SECRET_A.to_owned()]);
        config.access_ttl_secs = 60;
        let tokens = TokenManager::from_config(&config).unwrap();
        assert_eq!(tokens.policy().access_ttl_secs, 60);
        assert_eq!(tokens.policy().leeway_secs, 5);
        config.secrets = vec!["short".into()];
        assert_eq!(
            TokenManager::from_config(&config).unwrap_err(),
            ConfigError::SecretTooShort(1)
        );
    }
}
