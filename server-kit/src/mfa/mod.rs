//! One-time-password primitives for multi-factor authentication (PROTOCOL 9): what the MFA
//! routes build on.
//!
//! - [`otp`]: HOTP (RFC 4226) and TOTP (RFC 6238) with SHA-1, SHA-256 or SHA-512, 6 to 8
//!   digits and any period; [`verify_totp`] accepts a code within the configured skew,
//!   compares in constant time and refuses a time step already accepted, so a code works
//!   at most once.
//! - [`secret`]: [`OtpSecret`], the shared secret, redacted in `Debug` and zeroized on
//!   drop, and [`new_secret`] to make one.
//! - [`uri`]: base32 (RFC 4648) and the `otpauth://totp/…` URI an authenticator app reads
//!   from a QR code.
//! - [`sealed`]: [`SecretSealer`], the secret encrypted at rest under a server key
//!   (AES-256-GCM, bound to the user id), with key rotation.
//! - [`recovery`]: [`RecoveryHasher`], recovery codes and their keyed hashes.
//!
//! ```
//! use holdfast_server_kit::mfa::{
//!     OtpAlgorithm, SecretSealer, TotpConfig, new_secret, totp_at, totp_uri, verify_totp,
//! };
//!
//! # fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = TotpConfig::default(); // SHA-1, 6 digits, 30 s, ±1 step
//! let secret = new_secret(OtpAlgorithm::Sha1.secret_len())?;
//! let uri = totp_uri("Example", "ada@example.com", &secret, &config)?;
//! assert!(uri.starts_with("otpauth://totp/Example:ada%40example.com?secret="));
//!
//! // Stored encrypted, bound to the user.
//! let sealer = SecretSealer::new(&[7u8; 32], &[])?;
//! let stored = sealer.seal(&secret, "user-1")?;
//! let opened = sealer.open(&stored, "user-1")?;
//!
//! // The app shows a code; the server accepts it once.
//! let now = 1_700_000_000;
//! let code = totp_at(&opened.secret, now, &config);
//! let step = verify_totp(&opened.secret, &code, now, &config, None).expect("accepted");
//! assert_eq!(verify_totp(&opened.secret, &code, now, &config, Some(step)), None);
//! # Ok(())
//! # }
//! # run().unwrap();
//! ```

pub mod otp;
pub mod recovery;
pub mod sealed;
pub mod secret;
pub mod uri;

pub use otp::{OtpAlgorithm, OtpDigits, TotpConfig, hotp, totp_at, verify_totp};
pub use recovery::{RECOVERY_CODE_CHARS, RecoveryHasher};
pub use sealed::{MIN_KEY_MATERIAL_LEN, OpenedSecret, SealError, SecretSealer};
pub use secret::{MAX_SECRET_LEN, MIN_SECRET_LEN, OtpSecret, SecretError, new_secret};
pub use uri::{Base32Error, UriError, base32_decode, base32_encode, totp_uri};
