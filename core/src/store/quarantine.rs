//! Records the vault could not open, moved aside with everything needed to investigate or
//! recover them later.

use super::error::StoreError;
use super::namespace::Namespace;
use super::{BlobLen, ClientStore};
use rusqlite::params;
use std::fmt;

/// A record moved out of the way by [`ClientStore::quarantine`].
#[derive(Clone, PartialEq, Eq)]
pub struct QuarantinedRecord {
    /// Identifies this quarantine entry (never reused).
    pub id: i64,
    /// The record's name.
    pub name: String,
    /// The sealed bytes, exactly as they were stored.
    pub blob: Vec<u8>,
    /// The record's version when it was moved.
    pub version: i64,
    /// Why it was moved, as the caller said.
    pub reason: String,
    /// When, in milliseconds since the epoch.
    pub quarantined_at_ms: i64,
}

impl fmt::Debug for QuarantinedRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QuarantinedRecord")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("blob", &BlobLen(self.blob.len()))
            .field("version", &self.version)
            .field("reason", &self.reason)
            .field("quarantined_at_ms", &self.quarantined_at_ms)
            .finish()
    }
}

impl ClientStore {
    /// Moves the record `name` of `ns`, blob included, to the quarantine with `reason` and
    /// `now_ms`, in one transaction: it is never both gone and unsaved. The reason must not
    /// contain secrets.
    ///
    /// Only the version the caller failed to open is moved: if the record changed since it
    /// was read as `version` (another process wrote a fresh one), nothing moves and `false`
    /// is returned; read it again.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the database cannot be written; then nothing moved.
    pub fn quarantine(
        &self,
        ns: &Namespace,
        name: &str,
        version: i64,
        reason: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        self.write("quarantine", |tx| {
            let copied = tx
                .prepare_cached(
                    "INSERT INTO quarantine (server, account, name, blob, version, reason, quarantined_at_ms)
                     SELECT server, account, name, blob, version, ?5, ?6 FROM records
                     WHERE server = ?1 AND account = ?2 AND name = ?3 AND version = ?4",
                )?
                .execute(params![
                    ns.server_url(),
                    ns.account_column(),
                    name,
                    version,
                    reason,
                    now_ms
                ])?;
            if copied == 0 {
                return Ok(false);
            }
            tx.prepare_cached(
                "DELETE FROM records WHERE server = ?1 AND account = ?2 AND name = ?3 AND version = ?4",
            )?
            .execute(params![ns.server_url(), ns.account_column(), name, version])?;
            Ok(true)
        })
    }

    /// The quarantined records of `ns`, oldest first.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the database cannot be read.
    pub fn quarantined(&self, ns: &Namespace) -> Result<Vec<QuarantinedRecord>, StoreError> {
        self.read("quarantined", |conn| {
            conn.prepare_cached(
                "SELECT id, name, blob, version, reason, quarantined_at_ms FROM quarantine
                 WHERE server = ?1 AND account = ?2 ORDER BY id",
            )?
            .query_map(params![ns.server_url(), ns.account_column()], |row| {
                Ok(QuarantinedRecord {
                    id: row.get(0)?,
                    name: row.get(1)?,
                    blob: row.get(2)?,
                    version: row.get(3)?,
                    reason: row.get(4)?,
                    quarantined_at_ms: row.get(5)?,
                })
            })?
            .collect()
        })
    }
}
