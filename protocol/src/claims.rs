//! JWT claims (PROTOCOL section 3).
//!
//! Field order matters: serializing [`Claims`] gives the member order Kora writes, so a
//! token minted here is byte-identical to Kora's for the same claims (the conformance
//! vectors check it). Holdfast's additions (`fam`, `cnf`) come last and are omitted when
//! absent.

use serde::{Deserialize, Serialize};

mod borrowed;

pub use borrowed::{ClaimsRef, CnfRef};

/// The header segment of every token: base64url of `{"alg":"HS256","typ":"JWT"}`, exactly.
pub const JWT_HEADER_B64: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";

/// What a token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenType {
    /// Short-lived bearer token for API calls and sync handshakes.
    Access,
    /// Long-lived token exchanged at `/refresh`; rotated on every use.
    Refresh,
    /// Proof that a device was registered with a given key (`dpk`).
    DeviceCredential,
}

/// RFC 7800 confirmation: the thumbprint of the device key a token is bound to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cnf {
    /// RFC 7638 thumbprint of the device's public key.
    pub jkt: String,
}

/// The claims of an access, refresh or device-credential token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Unique token id (UUID v4).
    pub jti: String,
    /// User id.
    pub sub: String,
    /// Device id.
    pub dev: String,
    /// Token type.
    #[serde(rename = "type")]
    pub token_type: TokenType,
    /// Issued at, seconds since the epoch.
    pub iat: i64,
    /// Expires at, seconds since the epoch.
    pub exp: i64,
    /// Device credential only: thumbprint of the device key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpk: Option<String>,
    /// Device credential only: the time by which the device must check in (= `exp`).
    #[serde(rename = "mustCheckinBy", default, skip_serializing_if = "Option::is_none")]
    pub must_checkin_by: Option<i64>,
    /// Holdfast: the token family (one sign-in session), shared by every token that
    /// descends from one sign-in through refreshes. Revoking it ends the session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fam: Option<String>,
    /// Holdfast: binding to the device key (present when the device has a key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Cnf>,
    /// Holdfast: authentication assurance level (PROTOCOL 9): 1 after a password (or a
    /// device key), 2 after a second factor. Access and refresh tokens of a Holdfast server
    /// always carry it; a Kora token has none (read it as 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aal: Option<u8>,
    /// Holdfast: the authentication methods of the session (RFC 8176 names: `pwd`, `otp`;
    /// `rec` for a recovery code, `swk` for a device key), with `aal: 2` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amr: Option<Vec<String>>,
    /// Holdfast: when the session's user last proved who they are (a password or a second
    /// factor), seconds since the epoch; step-up (PROTOCOL 9) is measured from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    /// Holdfast: `pending` while the session still owes its second factor (PROTOCOL 9).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mfa: Option<MfaClaim>,
    /// Holdfast: the application's own claims (the server kit's `AuthHooks::extra_claims`),
    /// in one member of their own so they never collide with the protocol's. Access tokens
    /// only; absent unless an application adds some.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ext: Option<serde_json::Map<String, serde_json::Value>>,
}

/// The `mfa` claim (PROTOCOL 9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MfaClaim {
    /// The user has a second factor and this session has not presented it yet: the token
    /// is good only for `/me`, `/signout`, `/mfa/verify` and `/mfa/recover`.
    Pending,
}

impl Claims {
    /// Whether the session still owes its second factor (`mfa: "pending"`).
    pub fn mfa_pending(&self) -> bool {
        self.mfa == Some(MfaClaim::Pending)
    }

    /// The assurance level, 1 when the token says none (a Kora token).
    pub fn assurance(&self) -> u8 {
        self.aal.unwrap_or(1)
    }
}

/// Why a token could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClaimsError {
    /// Not three dot-separated segments.
    #[error("token is not a compact JWT")]
    Malformed,
    /// The header is not the exact HS256 header.
    #[error("token header is not the HS256 header")]
    Header,
    /// The payload is not base64url JSON of the expected shape.
    #[error("token payload is not valid claims")]
    Payload,
}

impl Claims {
    /// Serializes the claims to the payload JSON.
    pub fn to_json(&self) -> String {
        // Serializing plain strings and integers cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Decodes the payload of a compact token **without verifying its signature**.
    ///
    /// For clients, which cannot verify HS256 tokens but need `exp`, `dev` and `cnf`.
    /// A server must verify instead.
    pub fn decode_unverified(token: &str) -> Result<Claims, ClaimsError> {
        let (header, payload, _signature) = split_compact(token)?;
        if header != JWT_HEADER_B64 {
            return Err(ClaimsError::Header);
        }
        Claims::from_payload_segment(payload)
    }

    /// Decodes a base64url payload segment.
    pub fn from_payload_segment(segment: &str) -> Result<Claims, ClaimsError> {
        let json = crate::b64::decode(segment).map_err(|_| ClaimsError::Payload)?;
        serde_json::from_slice(&json).map_err(|_| ClaimsError::Payload)
    }
}

/// Splits a compact JWS into its three segments.
pub fn split_compact(token: &str) -> Result<(&str, &str, &str), ClaimsError> {
    let mut parts = token.split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(h), Some(p), Some(s), None) if !h.is_empty() && !p.is_empty() && !s.is_empty() => Ok((h, p, s)),
        _ => Err(ClaimsError::Malformed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_constant_is_the_exact_bytes() {
        assert_eq!(
            crate::b64::decode(JWT_HEADER_B64).unwrap(),
            br#"{"alg":"HS256","typ":"JWT"}"#
        );
    }

    #[test]
    fn optional_members_are_omitted_and_ordered() {
        let claims = Claims {
            jti: "j".into(),
            sub: "u".into(),
            dev: "d".into(),
            token_type: TokenType::Access,
            iat: 1,
            exp: 2,
            dpk: None,
            must_checkin_by: None,
            fam: Some("f".into()),
            cnf: Some(Cnf { jkt: "t".into() }),
            aal: None,
            amr: None,
            auth_time: None,
            mfa: None,
            ext: None,
        };
        assert_eq!(
            claims.to_json(),
            r#"{"jti":"j","sub":"u","dev":"d","type":"access","iat":1,"exp":2,"fam":"f","cnf":{"jkt":"t"}}"#
        );
        let pending = Claims {
            aal: Some(1),
            mfa: Some(MfaClaim::Pending),
            ..claims.clone()
        };
        assert!(
            pending.to_json().ends_with(r#""aal":1,"mfa":"pending"}"#),
            "{}",
            pending.to_json()
        );
        assert!(pending.mfa_pending() && !claims.mfa_pending());
        let verified = Claims {
            aal: Some(2),
            amr: Some(vec!["pwd".into(), "otp".into()]),
            auth_time: Some(5),
            ..claims.clone()
        };
        assert!(
            verified
                .to_json()
                .ends_with(r#""aal":2,"amr":["pwd","otp"],"auth_time":5}"#)
        );
        assert_eq!(verified.assurance(), 2);
        assert_eq!(claims.assurance(), 1);
    }

    #[test]
    fn malformed_tokens_are_refused() {
        for token in ["", "a.b", "a.b.c.d", "..", "a..c"] {
            assert_eq!(split_compact(token), Err(ClaimsError::Malformed), "{token:?}");
        }
        assert_eq!(
            Claims::decode_unverified("eyJ0eXAiOiJKV1QifQ.e30.c"),
            Err(ClaimsError::Header)
        );
        assert_eq!(
            Claims::decode_unverified(&format!("{JWT_HEADER_B64}.e30.c")),
            Err(ClaimsError::Payload)
        );
    }
}
