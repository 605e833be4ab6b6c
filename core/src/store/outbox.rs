//! Server calls that must happen once the network is back (sign-out, device revocation).
//!
//! Delivery is at least once: a process may crash after the call succeeded and before
//! [`ClientStore::outbox_done`], and two processes may send the same item. Every kind
//! queued here must therefore be idempotent on the server (revoking twice is harmless).

use super::error::StoreError;
use super::namespace::Namespace;
use super::{BlobLen, ClientStore};
use rusqlite::{Transaction, params};
use std::fmt;

/// A queued server call.
#[derive(Clone, PartialEq, Eq)]
pub struct OutboxItem {
    /// Identifies the item (never reused).
    pub id: i64,
    /// What call to make, in the session layer's words (e.g. `revoke_refresh_token`).
    pub kind: String,
    /// The call's arguments, sealed by the vault (they may hold a token).
    pub payload: Vec<u8>,
    /// Failed attempts so far.
    pub attempts: i64,
    /// When it was queued, in milliseconds since the epoch.
    pub created_at_ms: i64,
    /// Not to be tried before this time, in milliseconds since the epoch.
    pub next_attempt_at_ms: i64,
}

impl fmt::Debug for OutboxItem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutboxItem")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("payload", &BlobLen(self.payload.len()))
            .field("attempts", &self.attempts)
            .field("created_at_ms", &self.created_at_ms)
            .field("next_attempt_at_ms", &self.next_attempt_at_ms)
            .finish()
    }
}

impl ClientStore {
    /// Queues a call of `kind` with its sealed `payload` in `ns`'s outbox, due at once, and
    /// returns its id. Queue what must outlive an account's local data (sign-out) in the
    /// server-wide namespace: after sign-out the app no longer knows the account.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the database cannot be written.
    pub fn outbox_push(
        &self,
        ns: &Namespace,
        kind: &str,
        payload_blob: &[u8],
        now_ms: i64,
    ) -> Result<i64, StoreError> {
        self.write("outbox_push", |tx| {
            insert_outbox_item(tx, ns, kind, payload_blob, now_ms)
        })
    }

    /// The items of `ns`'s outbox due at `now_ms`, in the order they were queued (a call
    /// queued earlier is sent first, also after it was retried).
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the database cannot be read.
    pub fn outbox_due(&self, ns: &Namespace, now_ms: i64) -> Result<Vec<OutboxItem>, StoreError> {
        self.read("outbox_due", |conn| {
            conn.prepare_cached(
                "SELECT id, kind, payload, attempts, created_at_ms, next_attempt_at_ms FROM outbox
                 WHERE server = ?1 AND account = ?2 AND next_attempt_at_ms <= ?3 ORDER BY id",
            )?
            .query_map(params![ns.server_url(), ns.account_column(), now_ms], |row| {
                Ok(OutboxItem {
                    id: row.get(0)?,
                    kind: row.get(1)?,
                    payload: row.get(2)?,
                    attempts: row.get(3)?,
                    created_at_ms: row.get(4)?,
                    next_attempt_at_ms: row.get(5)?,
                })
            })?
            .collect()
        })
    }

    /// Removes the item `id`: its call succeeded, or the server refused it for good. An
    /// unknown id (done by another process) is not an error.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the database cannot be written.
    pub fn outbox_done(&self, id: i64) -> Result<(), StoreError> {
        self.write("outbox_done", |tx| {
            tx.prepare_cached("DELETE FROM outbox WHERE id = ?1")?
                .execute([id])?;
            Ok(())
        })
    }

    /// Records a failed attempt of the item `id` and postpones it to `next_attempt_at_ms`
    /// (the caller chooses the backoff). An unknown id is not an error.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the database cannot be written.
    pub fn outbox_retry_later(&self, id: i64, next_attempt_at_ms: i64) -> Result<(), StoreError> {
        self.write("outbox_retry_later", |tx| {
            tx.prepare_cached(
                "UPDATE outbox SET attempts = attempts + 1, next_attempt_at_ms = ?2 WHERE id = ?1",
            )?
            .execute([id, next_attempt_at_ms])?;
            Ok(())
        })
    }
}

/// Queues an item within `tx` and returns its id (also used by `delete_and_outbox_push`).
pub(super) fn insert_outbox_item(
    tx: &Transaction<'_>,
    ns: &Namespace,
    kind: &str,
    payload: &[u8],
    now_ms: i64,
) -> rusqlite::Result<i64> {
    tx.prepare_cached(
        "INSERT INTO outbox (server, account, kind, payload, attempts, created_at_ms, next_attempt_at_ms)
         VALUES (?1, ?2, ?3, ?4, 0, ?5, ?5) RETURNING id",
    )?
    .query_row(
        params![ns.server_url(), ns.account_column(), kind, payload, now_ms],
        |row| row.get(0),
    )
}
