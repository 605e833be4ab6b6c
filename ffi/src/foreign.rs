//! Traits the host app implements, and their bridges to the core's own traits (so the core
//! never sees UniFFI).
//!
//! Every method returns `Result<_, HoldfastError>`: an implementation says what went wrong
//! with a variant (`StorageUnavailable` for a locked keychain, `InvalidInput` for a request
//! it refuses), and an exception it did not mean to throw arrives as `StorageUnavailable`.

use std::sync::Arc;

use holdfast_core::device::{DeviceSigner as CoreDeviceSigner, SignerError};
use holdfast_core::session::{AuthEvent as CoreAuthEvent, Listener};
use holdfast_core::vault::{KeyProvider as CoreKeyProvider, KeyProviderError};
use holdfast_protocol::PublicJwk;

use crate::error::HoldfastError;
use crate::exit::Foreign;
use crate::records::AuthEvent;

/// Keeps the vault key for the app (Keychain, Keystore-wrapped storage...), for
/// `KeySource::Provided`. Holdfast generates the key on first use and hands it over.
#[uniffi::export(foreign)]
pub trait KeyProvider: Send + Sync {
    /// The stored 32-byte key, or `None` on first use.
    fn load_key(&self) -> Result<Option<Vec<u8>>, HoldfastError>;
    /// Keeps a newly generated key; `load_key` must return it from then on.
    fn store_key(&self, key: Vec<u8>) -> Result<(), HoldfastError>;
}

/// A P-256 device key the app holds in hardware (Secure Enclave, StrongBox), used instead
/// of Holdfast's software key.
#[uniffi::export(foreign)]
pub trait DeviceSigner: Send + Sync {
    /// The public key as a JWK JSON object string: `{"kty":"EC","crv":"P-256","x":..,"y":..}`.
    fn public_jwk(&self) -> Result<String, HoldfastError>;
    /// ECDSA P-256 with SHA-256 over `message`, as 64 bytes r‖s (IEEE P1363, not DER).
    fn sign(&self, message: Vec<u8>) -> Result<Vec<u8>, HoldfastError>;
}

/// Receives every [`AuthEvent`] until its subscription is cancelled. Called on a Holdfast
/// thread: keep it short, and hand work to the app's own thread or loop. An error or
/// exception it raises is logged and harms nobody.
#[uniffi::export(foreign)]
pub trait AuthEventListener: Send + Sync {
    /// One event.
    fn on_event(&self, event: AuthEvent) -> Result<(), HoldfastError>;
}

/// What a bridge reports when the app's code may no longer be called (the process is
/// exiting; see [`crate::exit`]).
const EXITING: &str = "the app is exiting; its code is no longer called";

/// The app's [`KeyProvider`] as the core's.
pub(crate) struct KeyProviderBridge(Foreign<dyn KeyProvider>);

impl KeyProviderBridge {
    pub(crate) fn new(provider: Arc<dyn KeyProvider>) -> KeyProviderBridge {
        KeyProviderBridge(Foreign::new(provider))
    }
}

impl CoreKeyProvider for KeyProviderBridge {
    fn load_key(&self) -> Result<Option<Vec<u8>>, KeyProviderError> {
        self.0
            .call(|provider| provider.load_key())
            .ok_or_else(|| KeyProviderError::new(EXITING))?
            .map_err(|error| KeyProviderError::new(error.to_string()))
    }

    fn store_key(&self, key: &[u8]) -> Result<(), KeyProviderError> {
        self.0
            .call(|provider| provider.store_key(key.to_vec()))
            .ok_or_else(|| KeyProviderError::new(EXITING))?
            .map_err(|error| KeyProviderError::new(error.to_string()))
    }
}

/// The app's [`DeviceSigner`] as the core's, checking what it returns.
pub(crate) struct DeviceSignerBridge(Foreign<dyn DeviceSigner>);

impl DeviceSignerBridge {
    pub(crate) fn new(signer: Arc<dyn DeviceSigner>) -> DeviceSignerBridge {
        DeviceSignerBridge(Foreign::new(signer))
    }

    fn exiting() -> SignerError {
        SignerError::KeyUnavailable {
            message: EXITING.to_owned(),
        }
    }
}

impl CoreDeviceSigner for DeviceSignerBridge {
    fn public_jwk(&self) -> Result<PublicJwk, SignerError> {
        let jwk = self
            .0
            .call(|signer| signer.public_jwk())
            .ok_or_else(Self::exiting)?
            .map_err(signer_error)?;
        PublicJwk::parse(&jwk).map_err(|error| SignerError::InvalidKey {
            message: format!("the app's device signer gave an invalid public JWK: {error}"),
        })
    }

    fn sign(&self, message: &[u8]) -> Result<[u8; 64], SignerError> {
        let signature = self
            .0
            .call(|signer| signer.sign(message.to_vec()))
            .ok_or_else(Self::exiting)?
            .map_err(signer_error)?;
        <[u8; 64]>::try_from(signature.as_slice()).map_err(|_| SignerError::InvalidKey {
            message: format!(
                "the app's device signer returned {} bytes; a P1363 P-256 signature is 64 (DER is refused)",
                signature.len()
            ),
        })
    }
}

fn signer_error(error: HoldfastError) -> SignerError {
    match error {
        HoldfastError::StorageUnavailable { message } => SignerError::KeyUnavailable { message },
        HoldfastError::InvalidInput { message } => SignerError::InvalidInput { message },
        other => SignerError::SigningFailed {
            message: other.to_string(),
        },
    }
}

/// The app's listener as a core [`Listener`].
/// Once the app is exiting, events are no longer delivered.
pub(crate) fn listener(listener: Arc<dyn AuthEventListener>) -> Listener {
    let listener = Foreign::new(listener);
    Arc::new(move |event: &CoreAuthEvent| {
        if let Some(Err(error)) = listener.call(|listener| listener.on_event(event.into())) {
            tracing::warn!(%error, "an auth event listener failed; it was skipped");
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    use holdfast_core::device::{SoftwareSigner, device_proof, thumbprint};
    use holdfast_core::vault::{KeySource, Vault};

    /// A host key store in memory; `fail` makes it behave like a locked keychain.
    #[derive(Default)]
    struct MemoryKeys {
        key: Mutex<Option<Vec<u8>>>,
        fail: bool,
    }

    impl KeyProvider for MemoryKeys {
        fn load_key(&self) -> Result<Option<Vec<u8>>, HoldfastError> {
            if self.fail {
                return Err(HoldfastError::StorageUnavailable {
                    message: "keychain locked".into(),
                });
            }
            Ok(self.key.lock().unwrap().clone())
        }

        fn store_key(&self, key: Vec<u8>) -> Result<(), HoldfastError> {
            *self.key.lock().unwrap() = Some(key);
            Ok(())
        }
    }

    #[test]
    fn a_provided_key_is_generated_once_and_kept_by_the_host() {
        let keys = Arc::new(MemoryKeys::default());
        let source = KeySource::Provided(Arc::new(KeyProviderBridge::new(keys.clone())));
        let first = source
            .resolve(|| unreachable!("no salt for a provided key"))
            .unwrap();
        let second = source
            .resolve(|| unreachable!("no salt for a provided key"))
            .unwrap();
        assert_eq!(keys.key.lock().unwrap().as_ref().map(Vec::len), Some(32));
        let sealed = Vault::new(first).seal("ns", "session", b"secret").unwrap();
        let opened = Vault::new(second).open("ns", "session", &sealed).unwrap();
        assert_eq!(opened.as_slice(), b"secret");
    }

    #[test]
    fn a_failing_provider_makes_the_key_unavailable_with_its_message() {
        let keys = Arc::new(MemoryKeys {
            fail: true,
            ..MemoryKeys::default()
        });
        let source = KeySource::Provided(Arc::new(KeyProviderBridge::new(keys)));
        let Err(error) = source.resolve(|| unreachable!()) else {
            panic!("a locked keychain gave a key");
        };
        assert!(error.to_string().contains("keychain locked"), "{error}");
    }

    /// A "hardware" signer backed by the software key; `truncate` makes it return DER-sized
    /// garbage instead of 64 bytes.
    struct HostSigner {
        key: SoftwareSigner,
        truncate: bool,
    }

    impl DeviceSigner for HostSigner {
        fn public_jwk(&self) -> Result<String, HoldfastError> {
            Ok(self.key.public_jwk().unwrap().to_wire_string())
        }

        fn sign(&self, message: Vec<u8>) -> Result<Vec<u8>, HoldfastError> {
            let signature = self.key.sign(&message).unwrap().to_vec();
            Ok(if self.truncate {
                signature[..10].to_vec()
            } else {
                signature
            })
        }
    }

    fn host_signer(truncate: bool) -> (Arc<HostSigner>, DeviceSignerBridge) {
        let (key, _pkcs8) = SoftwareSigner::generate().unwrap();
        let host = Arc::new(HostSigner { key, truncate });
        (host.clone(), DeviceSignerBridge::new(host))
    }

    #[test]
    fn a_host_signer_makes_proofs_for_its_own_key() {
        let (host, bridge) = host_signer(false);
        assert_eq!(
            thumbprint(&bridge).unwrap(),
            host.key.public_jwk().unwrap().thumbprint()
        );
        let proof = device_proof(
            &bridge,
            "GET",
            "https://api.example.com/sync",
            "token",
            None,
            1_700_000_000,
        )
        .unwrap();
        assert_eq!(proof.split('.').count(), 3);
    }

    #[test]
    fn a_signature_that_is_not_64_bytes_is_refused() {
        let (_, bridge) = host_signer(true);
        assert!(matches!(
            bridge.sign(b"message"),
            Err(SignerError::InvalidKey { .. })
        ));
    }

    #[test]
    fn host_signer_errors_keep_their_kind() {
        assert!(matches!(
            signer_error(HoldfastError::StorageUnavailable {
                message: "biometric prompt cancelled".into()
            }),
            SignerError::KeyUnavailable { .. }
        ));
        assert!(matches!(
            signer_error(HoldfastError::Protocol { message: "?".into() }),
            SignerError::SigningFailed { .. }
        ));
    }

    #[test]
    fn a_failing_listener_is_skipped() {
        struct Failing;
        impl AuthEventListener for Failing {
            fn on_event(&self, _: AuthEvent) -> Result<(), HoldfastError> {
                Err(HoldfastError::InvalidInput {
                    message: "bug".into(),
                })
            }
        }
        listener(Arc::new(Failing))(&CoreAuthEvent::Refreshed);
    }
}
