//! Device public keys as JWKs (PROTOCOL section 4): parsing, validation, the canonical wire
//! string, and RFC 7638 thumbprints.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// Members that only a private JWK carries (RFC 7518 section 6); a public key holding any of
/// them is refused rather than stored.
const PRIVATE_MEMBERS: [&str; 7] = ["d", "p", "q", "dp", "dq", "qi", "k"];

/// Why a JWK was refused. The messages are safe to send to clients.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwkError {
    /// Not a JSON object.
    #[error("public key must be a JSON-encoded JWK object")]
    NotJson,
    /// `kty` is not `EC`.
    #[error("public key must have kty \"EC\"")]
    KeyType,
    /// `crv` is not `P-256`.
    #[error("public key must be on curve P-256")]
    Curve,
    /// The JWK holds private key material.
    #[error("public key must not contain private key members")]
    PrivateMember,
    /// `x` or `y` missing or not 32 bytes of base64url.
    #[error("public key coordinates must be 32-byte base64url values")]
    Coordinates,
    /// The point is not on the P-256 curve.
    #[error("public key is not a point on P-256")]
    NotOnCurve,
}

/// A validated P-256 public key.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicJwk {
    x: [u8; 32],
    y: [u8; 32],
}

impl std::fmt::Debug for PublicJwk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicJwk({})", self.thumbprint())
    }
}

impl PublicJwk {
    /// Parses the wire form: a JSON **string** holding a JWK object.
    pub fn parse(wire: &str) -> Result<PublicJwk, JwkError> {
        let value: Value = serde_json::from_str(wire).map_err(|_| JwkError::NotJson)?;
        match value {
            Value::Object(map) => PublicJwk::from_object(&map),
            _ => Err(JwkError::NotJson),
        }
    }

    /// Validates a JWK object (as embedded in a device proof header).
    pub fn from_object(map: &Map<String, Value>) -> Result<PublicJwk, JwkError> {
        if PRIVATE_MEMBERS.iter().any(|member| map.contains_key(*member)) {
            return Err(JwkError::PrivateMember);
        }
        if map.get("kty").and_then(Value::as_str) != Some("EC") {
            return Err(JwkError::KeyType);
        }
        if map.get("crv").and_then(Value::as_str) != Some("P-256") {
            return Err(JwkError::Curve);
        }
        let x = coordinate(map.get("x"))?;
        let y = coordinate(map.get("y"))?;
        PublicJwk::from_coordinates(x, y)
    }

    /// Builds a key from affine coordinates, checking that the point is on the curve.
    pub fn from_coordinates(x: [u8; 32], y: [u8; 32]) -> Result<PublicJwk, JwkError> {
        let key = PublicJwk { x, y };
        p256::PublicKey::from_sec1_bytes(&key.sec1_uncompressed()).map_err(|_| JwkError::NotOnCurve)?;
        Ok(key)
    }

    /// Builds a key from its SEC1 uncompressed encoding (`0x04 ‖ x ‖ y`).
    pub fn from_sec1_uncompressed(bytes: &[u8]) -> Result<PublicJwk, JwkError> {
        if bytes.len() != 65 || bytes[0] != 0x04 {
            return Err(JwkError::Coordinates);
        }
        let mut x = [0u8; 32];
        let mut y = [0u8; 32];
        x.copy_from_slice(&bytes[1..33]);
        y.copy_from_slice(&bytes[33..65]);
        PublicJwk::from_coordinates(x, y)
    }

    /// The SEC1 uncompressed encoding, as ring and p256 take it.
    pub fn sec1_uncompressed(&self) -> [u8; 65] {
        let mut out = [0u8; 65];
        out[0] = 0x04;
        out[1..33].copy_from_slice(&self.x);
        out[33..65].copy_from_slice(&self.y);
        out
    }

    /// The x coordinate.
    pub fn x(&self) -> &[u8; 32] {
        &self.x
    }

    /// The y coordinate.
    pub fn y(&self) -> &[u8; 32] {
        &self.y
    }

    /// The canonical wire string Holdfast sends:
    /// `{"kty":"EC","crv":"P-256","x":"…","y":"…"}`.
    pub fn to_wire_string(&self) -> String {
        format!(
            r#"{{"kty":"EC","crv":"P-256","x":"{}","y":"{}"}}"#,
            crate::b64::encode(&self.x),
            crate::b64::encode(&self.y)
        )
    }

    /// The JWK as a JSON object (for embedding in a device proof header).
    pub fn to_json_value(&self) -> Value {
        serde_json::json!({
            "kty": "EC",
            "crv": "P-256",
            "x": crate::b64::encode(&self.x),
            "y": crate::b64::encode(&self.y),
        })
    }

    /// The RFC 7638 thumbprint input: exactly these members, in this order, no whitespace.
    pub fn thumbprint_input(&self) -> String {
        format!(
            r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
            crate::b64::encode(&self.x),
            crate::b64::encode(&self.y)
        )
    }

    /// The RFC 7638 thumbprint: base64url(SHA-256(thumbprint input)), 43 characters.
    pub fn thumbprint(&self) -> String {
        crate::b64::encode(&Sha256::digest(self.thumbprint_input().as_bytes()))
    }
}

fn coordinate(value: Option<&Value>) -> Result<[u8; 32], JwkError> {
    let text = value.and_then(Value::as_str).ok_or(JwkError::Coordinates)?;
    let bytes = crate::b64::decode(text).map_err(|_| JwkError::Coordinates)?;
    bytes.try_into().map_err(|_| JwkError::Coordinates)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KORA_WIRE: &str = r#"{"key_ops":["verify"],"ext":true,"kty":"EC","x":"ZYzwMY_MCfMzjxD22VzsCuJBuLTmQjhuV9RiGQBcWlU","y":"lhwrvLNBvms_cxvvzO7zCQjcrAQE3A-AVZS9TnpvCtc","crv":"P-256"}"#;

    #[test]
    fn kora_and_canonical_forms_give_one_key() {
        let kora = PublicJwk::parse(KORA_WIRE).unwrap();
        let canonical = PublicJwk::parse(&kora.to_wire_string()).unwrap();
        assert_eq!(kora, canonical);
        assert_eq!(kora.thumbprint().len(), 43);
    }

    #[test]
    fn refusals() {
        let with = |patch: &dyn Fn(&mut Map<String, Value>)| {
            let mut map: Map<String, Value> = serde_json::from_str(KORA_WIRE).unwrap();
            patch(&mut map);
            PublicJwk::from_object(&map)
        };
        assert_eq!(
            with(&|m| {
                m.insert("crv".into(), "P-384".into());
            }),
            Err(JwkError::Curve)
        );
        assert_eq!(
            with(&|m| {
                m.insert("kty".into(), "RSA".into());
            }),
            Err(JwkError::KeyType)
        );
        assert_eq!(
            with(&|m| {
                m.insert("d".into(), "AAAA".into());
            }),
            Err(JwkError::PrivateMember)
        );
        assert_eq!(
            with(&|m| {
                m.remove("y");
            }),
            Err(JwkError::Coordinates)
        );
        assert_eq!(
            with(&|m| {
                m.insert("x".into(), "AAAA".into());
            }),
            Err(JwkError::Coordinates)
        );
        let off_curve = crate::b64::encode(&[1u8; 32]);
        assert_eq!(
            with(&|m| {
                m.insert("y".into(), off_curve.clone().into());
            }),
            Err(JwkError::NotOnCurve)
        );
        assert_eq!(PublicJwk::parse("not json"), Err(JwkError::NotJson));
        assert_eq!(PublicJwk::parse("[]"), Err(JwkError::NotJson));
    }
}
