//! What can go wrong in the vault. No variant carries key material or plaintext: the
//! reasons are fixed strings, and the only free-form text (`KeyUnavailable`) comes from the
//! credential store or the host's key provider, never from a secret.

/// A vault failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VaultError {
    /// The blob is shorter than an envelope can be (version, nonce and tag).
    #[error("the vault record is truncated")]
    Truncated,
    /// The blob starts with a format version this build does not know (written by a newer
    /// Holdfast, or not a vault record at all).
    #[error("the vault record has an unknown format version ({0})")]
    UnknownVersion(u8),
    /// Authentication failed: the key is wrong, the blob belongs to another record or
    /// namespace, or a bit changed. AES-GCM cannot tell these apart.
    #[error("the vault record failed authentication (wrong key, another record, or corruption)")]
    Tampered,
    /// The key does not open the vault's key check: a wrong passphrase, or a keychain entry
    /// that was replaced since the vault was written.
    #[error("the key does not open this vault")]
    WrongKey,
    /// The key cannot be obtained now (no credential store, a locked keychain, the host's
    /// key provider failed, no system randomness). Nothing was written in its place; retry
    /// later.
    #[error("the vault key is unavailable: {message}")]
    KeyUnavailable {
        /// What failed, from the store or provider (never a secret).
        message: String,
    },
    /// Key material has the wrong form (a stored key that is not 32 bytes, a salt that is
    /// too short). A stored key in the wrong form is left as it is, never overwritten.
    #[error("invalid key material: {reason}")]
    InvalidKey {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Input the vault cannot take: a Kora stored value that is not `{"iv": ..., "data":
    /// ...}` with base64url fields and a 12-byte IV, or a plaintext beyond AES-GCM's limit
    /// (tens of gigabytes).
    #[error("malformed input: {reason}")]
    Malformed {
        /// What is wrong with it.
        reason: &'static str,
    },
}

impl VaultError {
    /// A `KeyUnavailable` with this message.
    pub(crate) fn key_unavailable(message: impl Into<String>) -> Self {
        VaultError::KeyUnavailable {
            message: message.into(),
        }
    }
}
