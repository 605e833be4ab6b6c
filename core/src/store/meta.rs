//! Settings that are not secret (the passphrase key's salt, the vault's key check), as
//! opaque bytes by key.

use super::ClientStore;
use super::error::StoreError;
use rusqlite::{OptionalExtension, Transaction, params};

impl ClientStore {
    /// The value stored under `key`, if any.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the database cannot be read.
    pub fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.read("meta", |conn| {
            conn.prepare_cached("SELECT value FROM meta WHERE key = ?1")?
                .query_row([key], |row| row.get(0))
                .optional()
        })
    }

    /// Stores `value` under `key`, replacing what was there.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the database cannot be written.
    pub fn set_meta(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.write("set_meta", |tx| upsert_meta(tx, key, value))
    }

    /// Stores `value` under `key` unless a value is already there, and returns the value
    /// stored in the end. Atomic across processes: when two race to create the passphrase
    /// salt, both get the one that won and derive the same key.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the database cannot be written.
    pub fn set_meta_if_absent(&self, key: &str, value: &[u8]) -> Result<Vec<u8>, StoreError> {
        self.write("set_meta_if_absent", |tx| {
            tx.prepare_cached("INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO NOTHING")?
                .execute(params![key, value])?;
            tx.prepare_cached("SELECT value FROM meta WHERE key = ?1")?
                .query_row([key], |row| row.get(0))
        })
    }
}

/// Stores `value` under `key` within `tx` (also used by `reseal_all`).
pub(super) fn upsert_meta(tx: &Transaction<'_>, key: &str, value: &[u8]) -> rusqlite::Result<()> {
    tx.prepare_cached("INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value")?
        .execute(params![key, value])?;
    Ok(())
}
