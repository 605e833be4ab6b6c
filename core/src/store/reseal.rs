//! Re-encrypting every sealed blob at once, for a passphrase or key change.

use super::ClientStore;
use super::error::{ResealError, sql};
use super::meta::upsert_meta;
use super::namespace::Namespace;
use super::records::upsert_record;
use rusqlite::{TransactionBehavior, params};

/// Where a blob handed to the `reseal_all` closure lives, so the vault can rebuild the
/// associated data it was sealed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobSlot<'a> {
    /// The record of this name.
    Record {
        /// The record's name.
        name: &'a str,
    },
    /// The payload of an outbox item.
    OutboxPayload {
        /// The item's id.
        id: i64,
        /// The item's kind.
        kind: &'a str,
    },
}

impl ClientStore {
    /// Re-encrypts every record and outbox payload of every namespace with `reseal` (which
    /// opens a blob with the old key and seals it with the new one), and stores `new_meta`
    /// (the new salt and key check), all in ONE transaction: if `reseal` fails or panics for
    /// any blob, or the process dies midway, nothing has changed and the old key still opens
    /// everything. Returns the number of blobs resealed.
    ///
    /// Resealed records get new versions, so a process still holding a blob sealed with the
    /// old key cannot write it back with `compare_and_put`. Quarantined records are left as
    /// they were: the vault could not open them in the first place.
    ///
    /// Holds the store for the whole operation; `reseal` must not call back into it.
    ///
    /// # Errors
    ///
    /// [`ResealError::Seal`] with the closure's error, or [`ResealError::Store`]; either
    /// way nothing changed.
    pub fn reseal_all<E>(
        &self,
        new_meta: &[(&str, &[u8])],
        mut reseal: impl FnMut(&Namespace, BlobSlot<'_>, &[u8]) -> Result<Vec<u8>, E>,
    ) -> Result<usize, ResealError<E>> {
        const OP: &str = "reseal_all";
        let mut conn = self.connection();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql(OP))?;

        let records: Vec<(String, String, String, Vec<u8>)> = tx
            .prepare("SELECT server, account, name, blob FROM records ORDER BY server, account, name")
            .and_then(|mut rows| {
                rows.query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)))?
                    .collect()
            })
            .map_err(sql(OP))?;
        let outbox: Vec<(i64, String, String, String, Vec<u8>)> = tx
            .prepare("SELECT id, server, account, kind, payload FROM outbox ORDER BY id")
            .and_then(|mut rows| {
                rows.query_map([], |row| {
                    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?))
                })?
                .collect()
            })
            .map_err(sql(OP))?;
        let resealed = records.len() + outbox.len();

        for (server, account, name, blob) in records {
            let ns = Namespace::from_columns(server, account);
            let sealed = reseal(&ns, BlobSlot::Record { name: &name }, &blob).map_err(ResealError::Seal)?;
            upsert_record(&tx, &ns, &name, &sealed).map_err(sql(OP))?;
        }
        for (id, server, account, kind, payload) in outbox {
            let ns = Namespace::from_columns(server, account);
            let sealed = reseal(&ns, BlobSlot::OutboxPayload { id, kind: &kind }, &payload)
                .map_err(ResealError::Seal)?;
            tx.execute(
                "UPDATE outbox SET payload = ?2 WHERE id = ?1",
                params![id, sealed],
            )
            .map_err(sql(OP))?;
        }
        for (key, value) in new_meta {
            upsert_meta(&tx, key, value).map_err(sql(OP))?;
        }
        // An early return above drops `tx`, which rolls everything back.
        tx.commit().map_err(sql(OP))?;
        Ok(resealed)
    }
}
