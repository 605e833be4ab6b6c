//! Second factors (PROTOCOL 9) on PostgreSQL.
//!
//! The two "at most once" methods are one statement each: accepting a step is a conditional
//! `UPDATE` (of two instances given the same code at once, the second waits for the first's
//! row lock, then finds the step no longer later than the stored one: READ COMMITTED
//! re-checks the WHERE clause), and using a recovery code a `DELETE`. The changes that
//! touch the factor and its codes together take the factor's row lock first (an upsert
//! that changes only an unconfirmed factor, or `SELECT ... FOR UPDATE`), so they are
//! serialized per user.

use super::{Fail, PostgresStore, get};
use crate::store::{MfaStore, StoreError, TotpFactor};
use async_trait::async_trait;
use deadpool_postgres::Transaction;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

const SELECT_TOTP: &str = "SELECT user_id, sealed_secret, algorithm, digits, period_secs, created_at_ms,
        enabled_at_ms, last_step
     FROM mfa_totp WHERE user_id = $1";
/// A new enrolment (unconfirmed, no step accepted yet), written only over an unconfirmed
/// one: no row comes back when the user has a confirmed factor.
const UPSERT_UNCONFIRMED_TOTP: &str = "INSERT INTO mfa_totp
        (user_id, sealed_secret, algorithm, digits, period_secs, created_at_ms, enabled_at_ms, last_step)
     VALUES ($1, $2, $3, $4, $5, $6, NULL, NULL)
     ON CONFLICT (user_id) DO UPDATE SET sealed_secret = excluded.sealed_secret,
        algorithm = excluded.algorithm, digits = excluded.digits,
        period_secs = excluded.period_secs, created_at_ms = excluded.created_at_ms,
        enabled_at_ms = NULL, last_step = NULL
     WHERE mfa_totp.enabled_at_ms IS NULL
     RETURNING user_id";
const CONFIRM_TOTP: &str = "UPDATE mfa_totp SET enabled_at_ms = $3, last_step = $2
     WHERE user_id = $1 AND enabled_at_ms IS NULL AND sealed_secret = $4";
/// The one conditional write that makes a code good once.
const ACCEPT_STEP: &str = "UPDATE mfa_totp SET last_step = $2
     WHERE user_id = $1 AND enabled_at_ms IS NOT NULL AND (last_step IS NULL OR last_step < $2)";
const RESEAL_TOTP: &str = "UPDATE mfa_totp SET sealed_secret = $2 WHERE user_id = $1";
const LOCK_CONFIRMED_TOTP: &str =
    "SELECT 1 FROM mfa_totp WHERE user_id = $1 AND enabled_at_ms IS NOT NULL FOR UPDATE";
const DELETE_TOTP: &str = "DELETE FROM mfa_totp WHERE user_id = $1";
const USE_CODE: &str = "DELETE FROM mfa_recovery_codes WHERE user_id = $1 AND hash = $2";
const DELETE_CODES: &str = "DELETE FROM mfa_recovery_codes WHERE user_id = $1";
/// A hash given twice is one code.
const INSERT_CODES: &str = "INSERT INTO mfa_recovery_codes (user_id, hash)
     SELECT $1, hash FROM unnest($2::TEXT[]) AS hash
     ON CONFLICT DO NOTHING";
const COUNT_CODES: &str = "SELECT count(*) FROM mfa_recovery_codes WHERE user_id = $1";

fn totp_from_row(row: &Row) -> Result<TotpFactor, Fail> {
    let digits: i32 = get(row, 3)?;
    let period_secs: i64 = get(row, 4)?;
    Ok(TotpFactor {
        user_id: get(row, 0)?,
        sealed_secret: get(row, 1)?,
        algorithm: get(row, 2)?,
        digits: u8::try_from(digits)
            .map_err(|_| StoreError::Corrupt(format!("TOTP digits {digits} out of range")))?,
        period_secs: u32::try_from(period_secs)
            .map_err(|_| StoreError::Corrupt(format!("TOTP period {period_secs} out of range")))?,
        created_at_ms: get(row, 5)?,
        enabled_at_ms: get(row, 6)?,
        last_step: get(row, 7)?,
    })
}

/// Makes `hashes` the user's only recovery codes, in the caller's transaction.
async fn set_codes(tx: &Transaction<'_>, user_id: &str, hashes: &[String]) -> Result<(), Fail> {
    tx.execute(&tx.prepare_cached(DELETE_CODES).await?, &[&user_id])
        .await?;
    tx.execute(&tx.prepare_cached(INSERT_CODES).await?, &[&user_id, &hashes])
        .await?;
    Ok(())
}

/// Deletes the user's factor and codes, in the caller's transaction (also for
/// [`crate::store::UserStore::delete_user`]). Returns whether there was a factor.
pub(super) async fn delete_factors(tx: &Transaction<'_>, user_id: &str) -> Result<bool, Fail> {
    let existed = tx
        .execute(&tx.prepare_cached(DELETE_TOTP).await?, &[&user_id])
        .await?
        > 0;
    tx.execute(&tx.prepare_cached(DELETE_CODES).await?, &[&user_id])
        .await?;
    Ok(existed)
}

impl PostgresStore {
    async fn begin(&self, factor: &TotpFactor, hashes: &[String]) -> Result<bool, Fail> {
        let mut conn = self.conn().await?;
        let tx = conn.transaction().await?;
        let (digits, period_secs) = (i32::from(factor.digits), i64::from(factor.period_secs));
        let written = tx
            .query_opt(
                &tx.prepare_cached(UPSERT_UNCONFIRMED_TOTP).await?,
                &[
                    &factor.user_id,
                    &factor.sealed_secret,
                    &factor.algorithm,
                    &digits,
                    &period_secs,
                    &factor.created_at_ms,
                ],
            )
            .await?;
        if written.is_none() {
            return Ok(false);
        }
        set_codes(&tx, &factor.user_id, hashes).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn replace_codes(&self, user_id: &str, hashes: &[String]) -> Result<bool, Fail> {
        let mut conn = self.conn().await?;
        let tx = conn.transaction().await?;
        let locked = tx
            .query_opt(&tx.prepare_cached(LOCK_CONFIRMED_TOTP).await?, &[&user_id])
            .await?;
        if locked.is_none() {
            return Ok(false);
        }
        set_codes(&tx, user_id, hashes).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn delete_factor(&self, user_id: &str) -> Result<bool, Fail> {
        let mut conn = self.conn().await?;
        let tx = conn.transaction().await?;
        let existed = delete_factors(&tx, user_id).await?;
        tx.commit().await?;
        Ok(existed)
    }

    /// Runs one statement on its own: whether it changed exactly one row.
    async fn changed_one(
        &self,
        operation: &'static str,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<bool, StoreError> {
        self.execute_one(sql, params)
            .await
            .map(|changed| changed == 1)
            .map_err(|fail| fail.into_store(operation))
    }
}

#[async_trait]
impl MfaStore for PostgresStore {
    async fn find_totp(&self, user_id: &str) -> Result<Option<TotpFactor>, StoreError> {
        async {
            let conn = self.conn().await?;
            let statement = conn.prepare_cached(SELECT_TOTP).await?;
            conn.query_opt(&statement, &[&user_id])
                .await?
                .as_ref()
                .map(totp_from_row)
                .transpose()
        }
        .await
        .map_err(|fail: Fail| fail.into_store("find_totp"))
    }

    async fn begin_totp(&self, factor: TotpFactor, recovery_hashes: Vec<String>) -> Result<bool, StoreError> {
        self.begin(&factor, &recovery_hashes)
            .await
            .map_err(|fail| fail.into_store("begin_totp"))
    }

    async fn confirm_totp(
        &self,
        user_id: &str,
        sealed_secret: &str,
        step: i64,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        self.changed_one(
            "confirm_totp",
            CONFIRM_TOTP,
            &[&user_id, &step, &now_ms, &sealed_secret],
        )
        .await
    }

    async fn accept_totp_step(&self, user_id: &str, step: i64) -> Result<bool, StoreError> {
        self.changed_one("accept_totp_step", ACCEPT_STEP, &[&user_id, &step])
            .await
    }

    async fn reseal_totp(&self, user_id: &str, sealed_secret: &str) -> Result<bool, StoreError> {
        self.changed_one("reseal_totp", RESEAL_TOTP, &[&user_id, &sealed_secret])
            .await
    }

    async fn use_recovery_code(&self, user_id: &str, hash: &str) -> Result<bool, StoreError> {
        self.changed_one("use_recovery_code", USE_CODE, &[&user_id, &hash])
            .await
    }

    async fn replace_recovery_codes(&self, user_id: &str, hashes: Vec<String>) -> Result<bool, StoreError> {
        self.replace_codes(user_id, &hashes)
            .await
            .map_err(|fail| fail.into_store("replace_recovery_codes"))
    }

    async fn count_recovery_codes(&self, user_id: &str) -> Result<u32, StoreError> {
        async {
            let conn = self.conn().await?;
            let statement = conn.prepare_cached(COUNT_CODES).await?;
            let row = conn.query_one(&statement, &[&user_id]).await?;
            let count: i64 = get(&row, 0)?;
            Ok(u32::try_from(count).unwrap_or(u32::MAX))
        }
        .await
        .map_err(|fail: Fail| fail.into_store("count_recovery_codes"))
    }

    async fn delete_totp(&self, user_id: &str) -> Result<bool, StoreError> {
        self.delete_factor(user_id)
            .await
            .map_err(|fail| fail.into_store("delete_totp"))
    }
}
