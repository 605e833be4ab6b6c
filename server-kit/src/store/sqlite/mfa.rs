//! Second factors (PROTOCOL 9) on SQLite.
//!
//! Every change runs on the writer; the two "at most once" methods are one statement each
//! (a conditional `UPDATE`, a `DELETE`), and the others that read before they write run in
//! a `BEGIN IMMEDIATE` transaction, which also holds against another process sharing the
//! file.

use super::{Fail, SqliteStore};
use crate::store::{MfaStore, StoreError, TotpFactor};
use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Row, Transaction, TransactionBehavior, params};

const SELECT_TOTP: &str = "SELECT user_id, sealed_secret, algorithm, digits, period_secs, created_at_ms,
        enabled_at_ms, last_step
     FROM mfa_totp WHERE user_id = ?1";
/// Whether the user's factor (if any) is confirmed.
const TOTP_ENABLED: &str = "SELECT enabled_at_ms IS NOT NULL FROM mfa_totp WHERE user_id = ?1";
/// A new enrolment: unconfirmed, no step accepted yet.
const UPSERT_TOTP: &str = "INSERT INTO mfa_totp
        (user_id, sealed_secret, algorithm, digits, period_secs, created_at_ms, enabled_at_ms, last_step)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, NULL, NULL)
     ON CONFLICT (user_id) DO UPDATE SET sealed_secret = excluded.sealed_secret,
        algorithm = excluded.algorithm, digits = excluded.digits,
        period_secs = excluded.period_secs, created_at_ms = excluded.created_at_ms,
        enabled_at_ms = NULL, last_step = NULL";
const CONFIRM_TOTP: &str = "UPDATE mfa_totp SET enabled_at_ms = ?3, last_step = ?2
     WHERE user_id = ?1 AND enabled_at_ms IS NULL AND sealed_secret = ?4";
/// The one conditional write that makes a code good once.
const ACCEPT_STEP: &str = "UPDATE mfa_totp SET last_step = ?2
     WHERE user_id = ?1 AND enabled_at_ms IS NOT NULL AND (last_step IS NULL OR last_step < ?2)";
const RESEAL_TOTP: &str = "UPDATE mfa_totp SET sealed_secret = ?2 WHERE user_id = ?1";
const DELETE_TOTP: &str = "DELETE FROM mfa_totp WHERE user_id = ?1";
const USE_CODE: &str = "DELETE FROM mfa_recovery_codes WHERE user_id = ?1 AND hash = ?2";
const DELETE_CODES: &str = "DELETE FROM mfa_recovery_codes WHERE user_id = ?1";
/// A hash given twice is one code.
const INSERT_CODE: &str =
    "INSERT INTO mfa_recovery_codes (user_id, hash) VALUES (?1, ?2) ON CONFLICT DO NOTHING";
const COUNT_CODES: &str = "SELECT count(*) FROM mfa_recovery_codes WHERE user_id = ?1";

fn totp_from_row(row: &Row<'_>) -> Result<TotpFactor, Fail> {
    Ok(TotpFactor {
        user_id: row.get(0)?,
        sealed_secret: row.get(1)?,
        algorithm: row.get(2)?,
        digits: row.get(3)?,
        period_secs: row.get(4)?,
        created_at_ms: row.get(5)?,
        enabled_at_ms: row.get(6)?,
        last_step: row.get(7)?,
    })
}

/// Whether the user has a factor, and whether it is confirmed.
fn enabled(tx: &Transaction<'_>, user_id: &str) -> Result<Option<bool>, Fail> {
    Ok(tx
        .prepare_cached(TOTP_ENABLED)?
        .query_row([user_id], |row| row.get(0))
        .optional()?)
}

/// Makes `hashes` the user's only recovery codes, in the caller's transaction.
fn set_codes(conn: &Connection, user_id: &str, hashes: &[String]) -> Result<(), Fail> {
    conn.prepare_cached(DELETE_CODES)?.execute([user_id])?;
    let mut insert = conn.prepare_cached(INSERT_CODE)?;
    for hash in hashes {
        insert.execute(params![user_id, hash])?;
    }
    Ok(())
}

/// Deletes the user's factor and codes, in the caller's transaction (also for
/// [`crate::store::UserStore::delete_user`]). Returns whether there was a factor.
pub(super) fn delete_factors(conn: &Connection, user_id: &str) -> Result<bool, Fail> {
    conn.prepare_cached(DELETE_CODES)?.execute([user_id])?;
    Ok(conn.prepare_cached(DELETE_TOTP)?.execute([user_id])? > 0)
}

#[async_trait]
impl MfaStore for SqliteStore {
    async fn find_totp(&self, user_id: &str) -> Result<Option<TotpFactor>, StoreError> {
        let user_id = user_id.to_owned();
        self.read("find_totp", move |conn| {
            conn.prepare_cached(SELECT_TOTP)?
                .query_and_then([user_id], totp_from_row)?
                .next()
                .transpose()
        })
        .await
    }

    async fn begin_totp(&self, factor: TotpFactor, recovery_hashes: Vec<String>) -> Result<bool, StoreError> {
        self.write("begin_totp", move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            if enabled(&tx, &factor.user_id)? == Some(true) {
                return Ok(false);
            }
            tx.prepare_cached(UPSERT_TOTP)?.execute(params![
                factor.user_id,
                factor.sealed_secret,
                factor.algorithm,
                factor.digits,
                factor.period_secs,
                factor.created_at_ms
            ])?;
            set_codes(&tx, &factor.user_id, &recovery_hashes)?;
            tx.commit()?;
            Ok(true)
        })
        .await
    }

    async fn confirm_totp(
        &self,
        user_id: &str,
        sealed_secret: &str,
        step: i64,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let (user_id, sealed_secret) = (user_id.to_owned(), sealed_secret.to_owned());
        self.write("confirm_totp", move |conn| {
            Ok(conn
                .prepare_cached(CONFIRM_TOTP)?
                .execute(params![user_id, step, now_ms, sealed_secret])?
                == 1)
        })
        .await
    }

    async fn accept_totp_step(&self, user_id: &str, step: i64) -> Result<bool, StoreError> {
        let user_id = user_id.to_owned();
        self.write("accept_totp_step", move |conn| {
            Ok(conn
                .prepare_cached(ACCEPT_STEP)?
                .execute(params![user_id, step])?
                == 1)
        })
        .await
    }

    async fn reseal_totp(&self, user_id: &str, sealed_secret: &str) -> Result<bool, StoreError> {
        let (user_id, sealed_secret) = (user_id.to_owned(), sealed_secret.to_owned());
        self.write("reseal_totp", move |conn| {
            Ok(conn
                .prepare_cached(RESEAL_TOTP)?
                .execute(params![user_id, sealed_secret])?
                > 0)
        })
        .await
    }

    async fn use_recovery_code(&self, user_id: &str, hash: &str) -> Result<bool, StoreError> {
        let (user_id, hash) = (user_id.to_owned(), hash.to_owned());
        self.write("use_recovery_code", move |conn| {
            Ok(conn.prepare_cached(USE_CODE)?.execute(params![user_id, hash])? == 1)
        })
        .await
    }

    async fn replace_recovery_codes(&self, user_id: &str, hashes: Vec<String>) -> Result<bool, StoreError> {
        let user_id = user_id.to_owned();
        self.write("replace_recovery_codes", move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            if enabled(&tx, &user_id)? != Some(true) {
                return Ok(false);
            }
            set_codes(&tx, &user_id, &hashes)?;
            tx.commit()?;
            Ok(true)
        })
        .await
    }

    async fn count_recovery_codes(&self, user_id: &str) -> Result<u32, StoreError> {
        let user_id = user_id.to_owned();
        self.read("count_recovery_codes", move |conn| {
            let count: i64 = conn
                .prepare_cached(COUNT_CODES)?
                .query_row([user_id], |row| row.get(0))?;
            Ok(u32::try_from(count).unwrap_or(u32::MAX))
        })
        .await
    }

    async fn delete_totp(&self, user_id: &str) -> Result<bool, StoreError> {
        let user_id = user_id.to_owned();
        self.write("delete_totp", move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let existed = delete_factors(&tx, &user_id)?;
            tx.commit()?;
            Ok(existed)
        })
        .await
    }
}
