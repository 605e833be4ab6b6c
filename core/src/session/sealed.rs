//! Sealed persistence: how every secret record the session keeps (the session, the device
//! identity, a queued sign-out) becomes bytes in the store and back. There is one typed
//! pair, [`seal`] and [`unseal`], and every record type says what it is through
//! [`SealedRecord`]: its name (the vault's associated data with the namespace, so a blob
//! moved to another record or server does not open) and its format version.
//!
//! # Record format
//!
//! The vault's envelope (see [`crate::vault::envelope`]) holds a JSON object: the
//! record's own fields and `v`, the version of their format, e.g. for the session
//!
//! ```text
//! {"v":1,"user":{"id":"…","email":"…","name":null,"emailVerified":false,"createdAt":0},
//!  "accessToken":"…","refreshToken":"…"}
//! ```
//!
//! A record without `v` was written before records carried their version: it is version 0
//! and is upgraded when read ([`SealedRecord::upgrade`]); the next write stores the
//! current version. A version above [`SealedRecord::VERSION`] was written by a newer build
//! and is [`UnsealError::Newer`]: not read with a shape it does not have, and, through
//! [`read_sealed`], quarantined like any record this build cannot read (kept, never
//! deleted).
//!
//! This layer depends only on the store and the vault.

use std::io;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::AuthError;
use crate::store::{ClientStore, Namespace};
use crate::vault::{Vault, VaultError};

/// Meta key of the passphrase key's salt (not secret).
pub(crate) const META_SALT: &str = "vault.salt";
/// Meta key of the vault's key check (not secret).
pub(crate) const META_KEY_CHECK: &str = "vault.key_check";

/// A record the session seals in the store.
///
/// Its `Serialize` must give a JSON object without a `v` member (this layer adds it), and
/// its `Deserialize` must ignore unknown members (the `v` it is read with): serde's derive
/// does both, unless told `deny_unknown_fields`. Types holding secrets wipe them on drop.
pub(crate) trait SealedRecord: Serialize + DeserializeOwned {
    /// The record's name: in the store, and in the vault's associated data.
    const NAME: &'static str;
    /// The format version this build writes, and the newest it reads.
    const VERSION: u32;

    /// Reads `json`, written at `version` (0 for a record from before versions, at most
    /// [`Self::VERSION`]). The default reads every version with today's shape, true of
    /// every record so far (version 1 only added `v`); a record whose shape changes
    /// overrides this to convert the older ones.
    fn upgrade(version: u32, json: &[u8]) -> Result<Self, serde_json::Error> {
        let _ = version;
        serde_json::from_slice(json)
    }
}

/// Why a sealed record could not be read. The messages name the failure, never a value of
/// the decrypted record (they are stored as quarantine reasons and logged).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum UnsealError {
    /// The vault did not open it: another key, another record or namespace, or damage.
    #[error(transparent)]
    Vault(VaultError),
    /// It opened, but is not a valid record of this type.
    #[error("{0}")]
    Malformed(String),
    /// It was written by a newer build, in a format this one does not know.
    #[error("the {name} record is version {found}, newer than this build reads (version {known})")]
    Newer {
        /// The record's name.
        name: &'static str,
        /// The version it carries.
        found: u32,
        /// The newest this build reads.
        known: u32,
    },
}

/// The record with its version in front, serialized as one JSON object: `{"v": 1, ...}`.
#[derive(Serialize)]
struct Versioned<'a, T> {
    v: u32,
    #[serde(flatten)]
    record: &'a T,
}

/// The version of a sealed record's JSON, read without the rest (unknown members are
/// skipped without being copied).
#[derive(Deserialize)]
struct VersionOf {
    #[serde(default)]
    v: u32,
}

/// Counts the bytes a serialization writes, so the real one goes into a buffer of the
/// right size: a growing buffer would leave copies of the secrets in freed memory.
struct ByteCount(usize);

impl io::Write for ByteCount {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0 += bytes.len();
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Serializes `record` with its version and seals it as record `T::NAME` of `ns`. The JSON
/// exists only in a zeroizing buffer.
pub(crate) fn seal<T: SealedRecord>(vault: &Vault, ns: &Namespace, record: &T) -> Result<Vec<u8>, AuthError> {
    let versioned = Versioned {
        v: T::VERSION,
        record,
    };
    let unserializable = |_| AuthError::Protocol {
        message: format!("the {} record cannot be serialized", T::NAME),
    };
    let mut size = ByteCount(0);
    serde_json::to_writer(&mut size, &versioned).map_err(unserializable)?;
    let mut json = Zeroizing::new(Vec::with_capacity(size.0));
    serde_json::to_writer(&mut *json, &versioned).map_err(unserializable)?;
    vault.seal(&ns.canonical(), T::NAME, &json).map_err(vault_error)
}

/// Opens `blob` as record `T::NAME` of `ns` and reads it, upgrading an older version.
pub(crate) fn unseal<T: SealedRecord>(vault: &Vault, ns: &Namespace, blob: &[u8]) -> Result<T, UnsealError> {
    let json = vault
        .open(&ns.canonical(), T::NAME, blob)
        .map_err(UnsealError::Vault)?;
    let version = serde_json::from_slice::<VersionOf>(&json)
        .map_err(|error| malformed::<T>(&error))?
        .v;
    if version > T::VERSION {
        return Err(UnsealError::Newer {
            name: T::NAME,
            found: version,
            known: T::VERSION,
        });
    }
    T::upgrade(version, &json).map_err(|error| malformed::<T>(&error))
}

/// serde's messages quote the values they reject: keep only where and what kind.
fn malformed<T: SealedRecord>(error: &serde_json::Error) -> UnsealError {
    UnsealError::Malformed(format!(
        "the decrypted record is not a valid {} ({:?} error at line {}, column {})",
        T::NAME,
        error.classify(),
        error.line(),
        error.column()
    ))
}

/// A sealed record as read from the store.
pub(crate) enum Sealed<T> {
    /// The value and the record's version in the store (for a later compare-and-write).
    Found(T, i64),
    Missing,
    /// It could not be opened or read, and was moved to the quarantine.
    Quarantined,
}

/// Reads and unseals the record `T::NAME` of `ns`. One that cannot be read (damaged, not a
/// valid record, or from a newer build) is moved to the quarantine with the reason, which
/// names the failure but never quotes the decrypted bytes. When the vault's key no longer
/// matches the store's key check (another process changed the passphrase), every record is
/// unreadable to this process and none is damaged: that is an error, and nothing is
/// quarantined.
pub(crate) fn read_sealed<T: SealedRecord>(
    store: &ClientStore,
    vault: &Vault,
    ns: &Namespace,
    now_ms: i64,
) -> Result<Sealed<T>, AuthError> {
    let Some(record) = store.get(ns, T::NAME)? else {
        return Ok(Sealed::Missing);
    };
    let error = match unseal::<T>(vault, ns, &record.blob) {
        Ok(value) => return Ok(Sealed::Found(value, record.version)),
        Err(error) => error,
    };
    ensure_key_unchanged(store, vault)?;
    let reason = error.to_string();
    tracing::warn!(record = T::NAME, %reason, "a stored record cannot be read; quarantining it");
    store.quarantine(ns, T::NAME, record.version, &reason, now_ms)?;
    Ok(Sealed::Quarantined)
}

/// Fails when `vault`'s key no longer opens the store's key check: another process changed
/// the passphrase, so what this vault cannot open is not damaged, only sealed under the new
/// key, and must be neither quarantined nor dropped.
pub(crate) fn ensure_key_unchanged(store: &ClientStore, vault: &Vault) -> Result<(), AuthError> {
    if let Some(check) = store.meta(META_KEY_CHECK)?
        && vault.verify_key_check(&check).is_err()
    {
        return Err(AuthError::StorageUnavailable {
            message: "the vault key was changed by another process: initialize again".to_owned(),
        });
    }
    Ok(())
}

/// The app-facing error for a vault failure.
pub(crate) fn vault_error(error: VaultError) -> AuthError {
    match error {
        VaultError::WrongKey => AuthError::WrongPassphrase,
        other => AuthError::StorageUnavailable {
            message: other.to_string(),
        },
    }
}

#[cfg(test)]
#[path = "sealed_tests.rs"]
mod tests;
