//! Sealed records: read, write, compare-and-write, delete.

use super::error::StoreError;
use super::namespace::Namespace;
use super::outbox::insert_outbox_item;
use super::{BlobLen, ClientStore};
use rusqlite::{OptionalExtension, Transaction, params};
use std::fmt;

/// A stored record: its sealed blob and its version.
#[derive(Clone, PartialEq, Eq)]
pub struct Record {
    /// The sealed bytes, as the vault wrote them.
    pub blob: Vec<u8>,
    /// Changes on every write of the record, to a value never used before in this file
    /// (not even by a record since deleted); pass it to
    /// [`ClientStore::compare_and_put`] or [`ClientStore::quarantine`].
    pub version: i64,
}

impl fmt::Debug for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Record")
            .field("blob", &BlobLen(self.blob.len()))
            .field("version", &self.version)
            .finish()
    }
}

impl ClientStore {
    /// The record `name` of `ns`, if any. Always read from the file, so it sees what
    /// another process wrote (re-read the session under the [`RefreshLock`](super::RefreshLock)).
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the database cannot be read.
    pub fn get(&self, ns: &Namespace, name: &str) -> Result<Option<Record>, StoreError> {
        self.read("get", |conn| {
            conn.prepare_cached(
                "SELECT blob, version FROM records WHERE server = ?1 AND account = ?2 AND name = ?3",
            )?
            .query_row(params![ns.server_url(), ns.account_column(), name], |row| {
                Ok(Record {
                    blob: row.get(0)?,
                    version: row.get(1)?,
                })
            })
            .optional()
        })
    }

    /// Writes the record `name` of `ns`, replacing any, and returns its new version. Durable
    /// once it returns.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the database cannot be written.
    pub fn put(&self, ns: &Namespace, name: &str, blob: &[u8]) -> Result<i64, StoreError> {
        self.write("put", |tx| upsert_record(tx, ns, name, blob))
    }

    /// Writes several records of `ns` in one transaction (e.g. a rotated access and refresh
    /// token pair): after a crash either all are stored or none. Returns their new versions
    /// in the order given.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the database cannot be written; then nothing was written.
    pub fn put_many(&self, ns: &Namespace, records: &[(&str, &[u8])]) -> Result<Vec<i64>, StoreError> {
        self.write("put_many", |tx| {
            records
                .iter()
                .map(|(name, blob)| upsert_record(tx, ns, name, blob))
                .collect()
        })
    }

    /// Writes the record only if its version is still `expected_version` (`None`: only if
    /// there is no such record). Returns the new version, or `None` when the record had
    /// changed meanwhile and nothing was written: read it again and decide.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the database cannot be written.
    pub fn compare_and_put(
        &self,
        ns: &Namespace,
        name: &str,
        expected_version: Option<i64>,
        blob: &[u8],
    ) -> Result<Option<i64>, StoreError> {
        self.write("compare_and_put", |tx| {
            if record_version(tx, ns, name)? != expected_version {
                return Ok(None);
            }
            upsert_record(tx, ns, name, blob).map(Some)
        })
    }

    /// Deletes the record `name` of `ns`; deleting a missing record is not an error.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the database cannot be written.
    pub fn delete(&self, ns: &Namespace, name: &str) -> Result<(), StoreError> {
        self.write("delete", |tx| delete_record(tx, ns, name))
    }

    /// Deletes the records `names` of `ns` in one transaction (sign-out wipes the session,
    /// the cached user, ... together). Missing records are skipped.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the database cannot be written; then nothing was deleted.
    pub fn delete_namespace_secrets(&self, ns: &Namespace, names: &[&str]) -> Result<(), StoreError> {
        self.write("delete_namespace_secrets", |tx| {
            names.iter().try_for_each(|name| delete_record(tx, ns, name))
        })
    }

    /// Sign-out in one transaction: deletes the records `names` of `ns` and queues the
    /// server call (e.g. the revocation of the refresh token just deleted) in `outbox_ns`'s
    /// outbox. A crash between the two can then neither leave the secrets behind nor lose
    /// the revocation. Returns the outbox item's id.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the database cannot be written; then nothing changed.
    pub fn delete_and_outbox_push(
        &self,
        ns: &Namespace,
        names: &[&str],
        outbox_ns: &Namespace,
        kind: &str,
        payload: &[u8],
        now_ms: i64,
    ) -> Result<i64, StoreError> {
        self.write("delete_and_outbox_push", |tx| {
            names.iter().try_for_each(|name| delete_record(tx, ns, name))?;
            insert_outbox_item(tx, outbox_ns, kind, payload, now_ms)
        })
    }
}

/// The record's current version, if it exists.
fn record_version(tx: &Transaction<'_>, ns: &Namespace, name: &str) -> rusqlite::Result<Option<i64>> {
    tx.prepare_cached("SELECT version FROM records WHERE server = ?1 AND account = ?2 AND name = ?3")?
        .query_row(params![ns.server_url(), ns.account_column(), name], |row| {
            row.get(0)
        })
        .optional()
}

/// Takes the next version from the file-wide counter.
fn next_version(tx: &Transaction<'_>) -> rusqlite::Result<i64> {
    tx.prepare_cached("UPDATE record_versions SET last = last + 1 WHERE singleton = 1 RETURNING last")?
        .query_row([], |row| row.get(0))
}

/// Writes the record with a fresh version and returns it.
pub(super) fn upsert_record(
    tx: &Transaction<'_>,
    ns: &Namespace,
    name: &str,
    blob: &[u8],
) -> rusqlite::Result<i64> {
    let version = next_version(tx)?;
    tx.prepare_cached(
        "INSERT INTO records (server, account, name, blob, version) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (server, account, name) DO UPDATE SET blob = excluded.blob, version = excluded.version",
    )?
    .execute(params![ns.server_url(), ns.account_column(), name, blob, version])?;
    Ok(version)
}

fn delete_record(tx: &Transaction<'_>, ns: &Namespace, name: &str) -> rusqlite::Result<()> {
    tx.prepare_cached("DELETE FROM records WHERE server = ?1 AND account = ?2 AND name = ?3")?
        .execute(params![ns.server_url(), ns.account_column(), name])?;
    Ok(())
}
