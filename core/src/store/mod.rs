//! The client's persistence: one SQLite file per app, holding sealed blobs.
//!
//! # What it holds
//!
//! - **records**: blobs sealed by the vault (the session, the device key or a reference
//!   to a hardware key, the device credential, the cached user, the clock offset). The
//!   store never sees plaintext secrets. Each record has a version, drawn from one counter
//!   for the whole file and never reused, for optimistic concurrency
//!   ([`ClientStore::compare_and_put`]).
//! - **meta**: settings that are not secret (the passphrase key's salt, the vault's key
//!   check), by key.
//! - **quarantine**: records the vault could not open, moved aside with their blob, a
//!   reason and a time ([`ClientStore::quarantine`]). Nothing is ever deleted silently.
//! - **outbox**: server calls to make once the network is back (sign-out, device
//!   revocation), delivered at least once: their server side must be idempotent.
//!
//! # Namespaces
//!
//! Records, quarantined records and outbox items belong to a [`Namespace`]: a normalized
//! server URL, optionally narrowed to an account. The account is a column of its own
//! (never folded into the record name), so record names are the same fixed set
//! everywhere (`session`, `user`, ...) and one account's records can be listed or wiped
//! without parsing names.
//!
//! # Blocking, threads and processes
//!
//! Every call blocks on file I/O (and, at worst, up to five seconds on another process's
//! write lock). From async code, run them with `tokio::task::spawn_blocking` or on a
//! dedicated thread. [`ClientStore`] is `Send + Sync`: share it in an `Arc`.
//!
//! Several processes may open the same file (an app and its extension): each write is one
//! SQLite transaction, and the read-then-write operations ([`ClientStore::compare_and_put`],
//! [`ClientStore::set_meta_if_absent`], [`ClientStore::quarantine`]) take the write lock
//! before reading. Token refresh is made single-flight across processes with
//! [`RefreshLock`], a lock file beside the database: hold it, re-read the stored session,
//! refresh only if it is still the one you had, persist the new pair with
//! [`ClientStore::put_many`], then drop the guard.
//!
//! # Durability and damage
//!
//! The file is in WAL mode with `synchronous=FULL`: once a write call returns, its data
//! survives a crash or a power loss. The schema is versioned (see `schema.rs`); a file
//! from a newer build is refused without being touched ([`StoreError::NewerSchema`]), and a
//! file that is not a database is reported ([`StoreError::Corrupt`]) and never
//! overwritten.

mod connection;
mod error;
mod lock;
mod meta;
mod namespace;
mod outbox;
mod quarantine;
mod records;
mod reseal;
mod schema;

pub use error::{ResealError, StoreError};
pub use lock::{RefreshGuard, RefreshLock};
pub use namespace::{InvalidNamespace, Namespace};
pub use outbox::OutboxItem;
pub use quarantine::QuarantinedRecord;
pub use records::Record;
pub use reseal::BlobSlot;
pub use schema::SCHEMA_VERSION;

use rusqlite::Connection;
use std::fmt;
use std::path::PathBuf;
use std::sync::Mutex;

/// The client's database: records, meta, quarantine and outbox in one SQLite file.
///
/// Open it once per process with [`ClientStore::open`] and share it; every method blocks
/// (see the module documentation).
pub struct ClientStore {
    conn: Mutex<Connection>,
    path: PathBuf,
}

impl fmt::Debug for ClientStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// Shows a blob's length, never its bytes, in `Debug` output (logs, panics).
struct BlobLen(usize);

impl fmt::Debug for BlobLen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{} bytes>", self.0)
    }
}
