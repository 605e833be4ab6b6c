//! A software P-256 device key, as a device's secure hardware would hold it: the JWK forms
//! clients send, the RFC 7638 thumbprint, challenge signatures (P1363 and, for negative
//! tests, DER) and device proofs (PROTOCOL 6.1).
//!
//! Every key generated in a test process is remembered by thumbprint, so the harness can
//! add a `DPoP` proof to a request whose token is bound to one ([`DeviceKey::holding`]), as
//! the device holding the key would.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use holdfast_protocol::PublicJwk;
use holdfast_protocol::proof::{ProofClaims, access_token_hash, assemble, signing_input};
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use p256::elliptic_curve::Generate;

/// Every key generated in this process, by thumbprint.
static GENERATED: Mutex<Option<HashMap<String, SigningKey>>> = Mutex::new(None);

/// The key each device was signed up with, by server and device id, so that a verify for
/// the device can carry its proof.
static DEVICES: Mutex<Option<HashMap<(String, String), SigningKey>>> = Mutex::new(None);

/// Remembers that `device_id` on the server at `server` holds `key`.
pub fn remember_device(server: &str, device_id: &str, key: &DeviceKey) {
    DEVICES
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get_or_insert_with(HashMap::new)
        .insert((server.to_owned(), device_id.to_owned()), key.key.clone());
}

/// The key `device_id` on `server` was signed up with, if this process made it.
pub fn key_of_device(server: &str, device_id: &str) -> Option<DeviceKey> {
    let devices = DEVICES.lock().unwrap_or_else(PoisonError::into_inner);
    let key = devices
        .as_ref()?
        .get(&(server.to_owned(), device_id.to_owned()))?
        .clone();
    Some(DeviceKey { key })
}

/// A software P-256 device key, as a device's secure hardware would hold it.
pub struct DeviceKey {
    key: SigningKey,
}

impl DeviceKey {
    /// A fresh random key.
    pub fn generate() -> DeviceKey {
        let key = DeviceKey {
            key: SigningKey::generate(),
        };
        GENERATED
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_or_insert_with(HashMap::new)
            .insert(key.thumbprint(), key.key.clone());
        key
    }

    /// The key generated in this process whose thumbprint is `jkt`, if any.
    pub fn holding(jkt: &str) -> Option<DeviceKey> {
        let keys = GENERATED.lock().unwrap_or_else(PoisonError::into_inner);
        let key = keys.as_ref()?.get(jkt)?.clone();
        Some(DeviceKey { key })
    }

    /// A device proof for `method` on `url`, bound to `access_token`, dated `iat` (server
    /// seconds), with a fresh `jti`.
    pub fn proof(&self, method: &str, url: &str, access_token: &str, iat: i64) -> String {
        self.proof_with(&ProofClaims {
            jti: uuid::Uuid::new_v4().to_string(),
            htm: method.to_owned(),
            htu: url.to_owned(),
            iat,
            ath: access_token_hash(access_token),
            nonce: None,
        })
    }

    /// A device proof for a token request (sign-up, sign-in, refresh, verify): no access
    /// token yet, so no `ath` (PROTOCOL 3 and 6.1).
    pub fn token_proof(&self, url: &str, iat: i64) -> String {
        self.proof_with(&ProofClaims {
            jti: uuid::Uuid::new_v4().to_string(),
            htm: "POST".to_owned(),
            htu: url.to_owned(),
            iat,
            ath: String::new(),
            nonce: None,
        })
    }

    /// A proof over any claims, signed with this key (P1363).
    pub fn proof_with(&self, claims: &ProofClaims) -> String {
        let input = signing_input(&self.public_jwk(), claims);
        let signature: Signature = self.key.sign(input.as_bytes());
        assemble(&input, &signature.to_bytes().into())
    }

    /// The same proof with an ASN.1 DER signature (what PROTOCOL 6.1 refuses).
    pub fn proof_der(&self, claims: &ProofClaims) -> String {
        let input = signing_input(&self.public_jwk(), claims);
        let signature: Signature = self.key.sign(input.as_bytes());
        format!(
            "{input}.{}",
            URL_SAFE_NO_PAD.encode(signature.to_der().to_bytes())
        )
    }

    fn public_jwk(&self) -> PublicJwk {
        PublicJwk::parse(&self.jwk()).expect("a valid JWK")
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
