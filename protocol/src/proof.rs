//! Device proofs (PROTOCOL 6.1): a compact JWS in the shape of an RFC 9449 DPoP proof,
//! signed with the device key.
//!
//! This module builds the signing input (for clients) and parses a proof into its parts
//! (for servers). Signing and signature verification live with the side that holds the
//! key or needs the speed: the client core and the server kit.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::jwk::PublicJwk;
use crate::signature::{SIGNATURE_LEN, decode_signature};

/// The `typ` of a proof header.
pub const PROOF_TYP: &str = "dpop+jwt";
/// The only accepted `alg`.
pub const PROOF_ALG: &str = "ES256";
/// How far a proof's `iat` may be from the verifier's clock, in seconds.
pub const PROOF_MAX_SKEW_SECS: i64 = 60;

/// The claims of a device proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProofClaims {
    /// Unique proof id; a verifier refuses one it has seen within the window.
    pub jti: String,
    /// HTTP method of the request (`GET` for a sync handshake).
    pub htm: String,
    /// Request URL without query or fragment.
    pub htu: String,
    /// Issued at, seconds since the epoch.
    pub iat: i64,
    /// base64url(SHA-256(access token)). Empty, and absent on the wire, in a proof sent
    /// with a token request (sign-up, sign-in, refresh, `/device/verify`), which has no
    /// access token yet.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ath: String,
    /// Server nonce, when the server demands one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
}

/// Why a proof was refused before any signature check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofFormatError {
    /// Not a three-part compact JWS of base64url JSON.
    #[error("device proof is not a compact JWS")]
    Malformed,
    /// `typ` is not `dpop+jwt`.
    #[error("device proof typ must be dpop+jwt")]
    Typ,
    /// `alg` is not `ES256`.
    #[error("device proof alg must be ES256")]
    Alg,
    /// The embedded key is missing or invalid.
    #[error("device proof key is invalid: {0}")]
    Key(#[from] crate::jwk::JwkError),
    /// The claims are missing members or have the wrong types.
    #[error("device proof claims are invalid")]
    Claims,
    /// The signature is not 64 bytes of base64url.
    #[error("device proof signature is invalid")]
    Signature,
}

/// A proof split into its parts, structurally valid but **not yet verified**.
#[derive(Debug, Clone)]
pub struct ParsedProof {
    /// The key from the header.
    pub jwk: PublicJwk,
    /// The claims.
    pub claims: ProofClaims,
    /// `<header>.<payload>`, the bytes the signature covers.
    pub signing_input: String,
    /// The P1363 signature.
    pub signature: [u8; SIGNATURE_LEN],
}

impl ParsedProof {
    /// Parses a compact proof, checking `typ`, `alg`, the key and the claim shapes.
    pub fn parse(compact: &str) -> Result<ParsedProof, ProofFormatError> {
        let (header_b64, payload_b64, signature_b64) =
            crate::claims::split_compact(compact).map_err(|_| ProofFormatError::Malformed)?;
        let header_json = crate::b64::decode(header_b64).map_err(|_| ProofFormatError::Malformed)?;
        let header: Value = serde_json::from_slice(&header_json).map_err(|_| ProofFormatError::Malformed)?;
        if header.get("typ").and_then(Value::as_str) != Some(PROOF_TYP) {
            return Err(ProofFormatError::Typ);
        }
        if header.get("alg").and_then(Value::as_str) != Some(PROOF_ALG) {
            return Err(ProofFormatError::Alg);
        }
        let jwk = match header.get("jwk") {
            Some(Value::Object(map)) => PublicJwk::from_object(map)?,
            _ => return Err(ProofFormatError::Key(crate::jwk::JwkError::NotJson)),
        };
        let payload_json = crate::b64::decode(payload_b64).map_err(|_| ProofFormatError::Malformed)?;
        let claims: ProofClaims =
            serde_json::from_slice(&payload_json).map_err(|_| ProofFormatError::Claims)?;
        // The signature segment must be strict base64url here: it is part of a JWS.
        if signature_b64.contains(['+', '/', '=']) {
            return Err(ProofFormatError::Signature);
        }
        let signature = decode_signature(signature_b64).map_err(|_| ProofFormatError::Signature)?;
        let signing_input = compact[..header_b64.len() + 1 + payload_b64.len()].to_owned();
        Ok(ParsedProof {
            jwk,
            claims,
            signing_input,
            signature,
        })
    }
}

/// The signing input `<header>.<payload>` of a proof for `jwk` and `claims`.
pub fn signing_input(jwk: &PublicJwk, claims: &ProofClaims) -> String {
    let header = serde_json::json!({ "typ": PROOF_TYP, "alg": PROOF_ALG, "jwk": jwk.to_json_value() });
    let payload = serde_json::to_string(claims).unwrap_or_default();
    format!(
        "{}.{}",
        crate::b64::encode(header.to_string().as_bytes()),
        crate::b64::encode(payload.as_bytes())
    )
}

/// Appends a signature to a signing input, giving the compact proof.
pub fn assemble(signing_input: &str, signature: &[u8; SIGNATURE_LEN]) -> String {
    format!(
        "{signing_input}.{}",
        crate::signature::encode_signature(signature)
    )
}

/// `ath`: base64url(SHA-256(access token)).
pub fn access_token_hash(access_token: &str) -> String {
    crate::b64::encode(&Sha256::digest(access_token.as_bytes()))
}

/// `htu` for a URL: the URL without its query and fragment.
pub fn htu_of(url: &str) -> &str {
    let end = url.find(['?', '#']).unwrap_or(url.len());
    &url[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> PublicJwk {
        PublicJwk::parse(r#"{"kty":"EC","crv":"P-256","x":"ZYzwMY_MCfMzjxD22VzsCuJBuLTmQjhuV9RiGQBcWlU","y":"lhwrvLNBvms_cxvvzO7zCQjcrAQE3A-AVZS9TnpvCtc"}"#).unwrap()
    }

    fn claims() -> ProofClaims {
        ProofClaims {
            jti: "p1".into(),
            htm: "GET".into(),
            htu: "https://sync.example/sync".into(),
            iat: 1_700_000_000,
            ath: access_token_hash("a.b.c"),
            nonce: None,
        }
    }

    #[test]
    fn parse_inverts_assemble() {
        let input = signing_input(&key(), &claims());
        let proof = assemble(&input, &[7u8; 64]);
        let parsed = ParsedProof::parse(&proof).unwrap();
        assert_eq!(parsed.jwk, key());
        assert_eq!(parsed.claims, claims());
        assert_eq!(parsed.signing_input, input);
        assert_eq!(parsed.signature, [7u8; 64]);
    }

    #[test]
    fn wrong_typ_alg_and_shapes_are_refused() {
        let header = |h: Value| crate::b64::encode(h.to_string().as_bytes());
        let payload = crate::b64::encode(serde_json::to_string(&claims()).unwrap().as_bytes());
        let sig = crate::b64::encode(&[1u8; 64]);
        let jwk = key().to_json_value();
        let make = |h: Value| format!("{}.{}.{}", header(h), payload, sig);
        assert_eq!(
            ParsedProof::parse(&make(serde_json::json!({"typ":"JWT","alg":"ES256","jwk":jwk}))).unwrap_err(),
            ProofFormatError::Typ
        );
        assert_eq!(
            ParsedProof::parse(&make(
                serde_json::json!({"typ":"dpop+jwt","alg":"HS256","jwk":jwk})
            ))
            .unwrap_err(),
            ProofFormatError::Alg
        );
        assert!(matches!(
            ParsedProof::parse(&make(serde_json::json!({"typ":"dpop+jwt","alg":"ES256"}))).unwrap_err(),
            ProofFormatError::Key(_)
        ));
        assert_eq!(
            ParsedProof::parse("a.b").unwrap_err(),
            ProofFormatError::Malformed
        );
    }

    #[test]
    fn htu_strips_query_and_fragment() {
        assert_eq!(htu_of("wss://h/sync?x=1#f"), "wss://h/sync");
        assert_eq!(htu_of("wss://h/sync"), "wss://h/sync");
    }
}
