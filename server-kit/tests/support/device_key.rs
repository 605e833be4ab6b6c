//! A software P-256 device key, as a device's secure hardware would hold it: the JWK forms
//! clients send, the RFC 7638 thumbprint, and challenge signatures (P1363 and, for negative
//! tests, DER).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use p256::elliptic_curve::Generate;

/// A software P-256 device key, as a device's secure hardware would hold it.
pub struct DeviceKey {
    key: SigningKey,
}

impl DeviceKey {
    /// A fresh random key.
    pub fn generate() -> DeviceKey {
        DeviceKey {
            key: SigningKey::generate(),
        }
    }

    fn coordinates(&self) -> (String, String) {
        let point = self.key.verifying_key().to_sec1_point(false);
        let bytes = point.as_bytes();
        (
            URL_SAFE_NO_PAD.encode(&bytes[1..33]),
            URL_SAFE_NO_PAD.encode(&bytes[33..65]),
        )
    }

    /// The JWK string Holdfast clients send.
    pub fn jwk(&self) -> String {
        let (x, y) = self.coordinates();
        format!(r#"{{"kty":"EC","crv":"P-256","x":"{x}","y":"{y}"}}"#)
    }

    /// The JWK string Kora's web client sends (WebCrypto `exportKey("jwk")`).
    pub fn kora_jwk(&self) -> String {
        let (x, y) = self.coordinates();
        format!(r#"{{"key_ops":["verify"],"ext":true,"kty":"EC","x":"{x}","y":"{y}","crv":"P-256"}}"#)
    }

    /// The RFC 7638 thumbprint, computed here independently of the server's code.
    pub fn thumbprint(&self) -> String {
        let (x, y) = self.coordinates();
        let input = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
        URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, input.as_bytes()))
    }

    /// Signs the UTF-8 bytes of `challenge`: IEEE P1363 `r‖s`, base64url without padding.
    pub fn sign(&self, challenge: &str) -> String {
        let signature: Signature = self.key.sign(challenge.as_bytes());
        let encoded = URL_SAFE_NO_PAD.encode(signature.to_bytes());
        assert_eq!(encoded.len(), 86);
        encoded
    }

    /// Signs arbitrary bytes (P1363, base64url), e.g. to sign the wrong message.
    pub fn sign_bytes(&self, message: &[u8]) -> String {
        let signature: Signature = self.key.sign(message);
        URL_SAFE_NO_PAD.encode(signature.to_bytes())
    }

    /// The same signature in ASN.1 DER, base64url (what PROTOCOL section 4 refuses).
    pub fn sign_der(&self, challenge: &str) -> String {
        let signature: Signature = self.key.sign(challenge.as_bytes());
        URL_SAFE_NO_PAD.encode(signature.to_der().to_bytes())
    }
}
