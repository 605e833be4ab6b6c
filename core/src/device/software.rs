//! The default device key: a P-256 key held in memory, stored by the vault as encrypted
//! PKCS#8 bytes.
//!
//! Why ring on the client: its assembly P-256 keeps device-proof creation under the 100 µs
//! target (`benches/device.rs`; the pure-Rust `p256` crate is about five times slower at
//! P-256 on this machine, see DESIGN "Targets"), it is audited and widely deployed, and it
//! builds for iOS and Android. The server kit verifies with ring too, so one
//! implementation backs both ends.

use std::fmt;

use holdfast_protocol::PublicJwk;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use zeroize::Zeroizing;

use super::{DeviceSigner, SignerError};

/// A software P-256 device key (ECDSA P-256 / SHA-256, P1363 signatures).
///
/// `Debug` shows the key's thumbprint only.
pub struct SoftwareSigner {
    pair: EcdsaKeyPair,
    // Derived once: every proof embeds the public key, and proof creation is on the
    // hot path of every sync handshake.
    public: PublicJwk,
    rng: SystemRandom,
}

impl SoftwareSigner {
    /// Generates a new key. Returns it with its PKCS#8 encoding, which the caller stores
    /// (encrypted, in the vault) to load the same key with [`SoftwareSigner::from_pkcs8`].
    ///
    /// The returned bytes are wiped when dropped. ring's own copy of the encoding cannot
    /// be wiped through its API; it lives only until this function returns.
    pub fn generate() -> Result<(SoftwareSigner, Zeroizing<Vec<u8>>), SignerError> {
        let rng = SystemRandom::new();
        let document =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).map_err(|_| {
                SignerError::SigningFailed {
                    message: "the system's random number generator failed".to_owned(),
                }
            })?;
        let pkcs8 = Zeroizing::new(document.as_ref().to_vec());
        let signer = SoftwareSigner::from_pkcs8(&pkcs8)?;
        Ok((signer, pkcs8))
    }

    /// Loads a key from its PKCS#8 encoding (as returned by [`SoftwareSigner::generate`]).
    ///
    /// Corrupt or foreign bytes (another curve, RSA, truncated) give
    /// [`SignerError::InvalidKey`], never a panic.
    pub fn from_pkcs8(pkcs8: &[u8]) -> Result<SoftwareSigner, SignerError> {
        let rng = SystemRandom::new();
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8, &rng).map_err(|rejected| {
                // ring's reason is a fixed description ("InvalidEncoding", ...), never key bytes.
                SignerError::InvalidKey {
                    message: format!("the stored device key cannot be read ({rejected})"),
                }
            })?;
        let public = PublicJwk::from_sec1_uncompressed(pair.public_key().as_ref()).map_err(|error| {
            SignerError::InvalidKey {
                message: error.to_string(),
            }
        })?;
        Ok(SoftwareSigner { pair, public, rng })
    }
}

impl DeviceSigner for SoftwareSigner {
    fn public_jwk(&self) -> Result<PublicJwk, SignerError> {
        Ok(self.public.clone())
    }

    fn sign(&self, message: &[u8]) -> Result<[u8; 64], SignerError> {
        let signature = self
            .pair
            .sign(&self.rng, message)
            .map_err(|_| SignerError::SigningFailed {
                message: "the system's random number generator failed".to_owned(),
            })?;
        // `_FIXED` signatures are always r‖s of 32 bytes each; the check costs nothing and
        // keeps a future ring change from becoming a panic.
        signature
            .as_ref()
            .try_into()
            .map_err(|_| SignerError::SigningFailed {
                message: "the signature is not 64 bytes".to_owned(),
            })
    }
}

impl fmt::Debug for SoftwareSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SoftwareSigner")
            .field("thumbprint", &self.public.thumbprint())
            .finish_non_exhaustive()
    }
}
