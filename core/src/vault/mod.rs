//! The vault: encryption of everything the store keeps, and the key that opens it.
//!
//! - A [`Vault`] seals and opens records with AES-256-GCM. Each envelope carries a
//!   version byte and a fresh random nonce, and its associated data names the record and
//!   its namespace, so a blob moved to another record fails to open (see [`envelope`] for
//!   the persisted format).
//! - Its [`VaultKey`] comes from the app's [`KeySource`]: the OS credential store
//!   ([`keyring`]), a key the host app keeps ([`KeyProvider`]), or a passphrase
//!   ([`derive_passphrase_key`], with a salt kept in the store). The session layer calls
//!   [`KeySource::resolve`] when it opens the store.
//! - The store keeps a [`Vault::key_check`]; [`Vault::verify_key_check`] tells a wrong key
//!   ([`VaultError::WrongKey`]) before any record is read, so a wrong passphrase is never
//!   mistaken for damaged records. A new passphrase is applied with [`Vault::reseal`].
//! - [`kora`] reads (and, for tests, writes) a Kora web client's encrypted token store.
//!
//! Keys and passphrases are wiped on drop and never appear in `Debug` or in errors.
//!
//! ```
//! use holdfast_core::vault::{Vault, VaultKey};
//!
//! let vault = Vault::new(VaultKey::generate()?);
//! let blob = vault.seal("https://auth.example.com|alice", "session", b"{\"refreshToken\":\"...\"}")?;
//! let plaintext = vault.open("https://auth.example.com|alice", "session", &blob)?;
//! assert_eq!(plaintext.as_slice(), b"{\"refreshToken\":\"...\"}");
//! # Ok::<(), holdfast_core::vault::VaultError>(())
//! ```

pub mod envelope;
mod error;
mod key;
mod key_source;
pub mod keyring;
pub mod kora;

pub use envelope::Vault;
pub use error::VaultError;
pub use key::{
    KEY_LEN, MIN_SALT_LEN, PBKDF2_ITERATIONS, Passphrase, SALT_LEN, VaultKey, derive_passphrase_key,
    generate_salt,
};
pub use key_source::{KeyProvider, KeyProviderError, KeySource};
