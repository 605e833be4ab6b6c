//! [`StandingStore`] on PostgreSQL: one statement (one snapshot, one round trip).

use async_trait::async_trait;
use tokio_postgres::Row;

use super::accounts::{device_at, user_at};
use super::{Fail, PostgresStore, get};
use crate::store::{StandingQuery, StandingRecord, StandingStore, StoreError};

/// The revocation flag, then the user's nine columns (NULL when absent), then the device's
/// eight (NULL when absent), in the orders of `SELECT_USER_BY_ID` and `SELECT_DEVICE`.
pub(super) const SELECT_STANDING: &str = "SELECT
       EXISTS (SELECT 1 FROM revoked_tokens WHERE jti = $3)
         OR EXISTS (SELECT 1 FROM revoked_families WHERE family = $4::TEXT),
       u.id, u.email, u.name, u.email_verified, u.created_at, u.password_hash, u.salt,
       u.metadata, u.disabled_at,
       d.id, d.user_id, d.public_key, d.thumbprint, d.name, d.revoked, d.created_at,
       d.last_seen_at
     FROM (SELECT 1) AS one
     LEFT JOIN users u ON u.id = $1::TEXT
     LEFT JOIN devices d ON d.id = $2::TEXT";

const USER_AT: usize = 1;
const DEVICE_AT: usize = 10;

/// The record in a row of [`SELECT_STANDING`].
pub(super) fn standing_from_row(row: &Row) -> Result<StandingRecord, Fail> {
    let user_id: Option<String> = get(row, USER_AT)?;
    let device_id: Option<String> = get(row, DEVICE_AT)?;
    Ok(StandingRecord {
        revoked: get(row, 0)?,
        user: user_id.map(|_| user_at(row, USER_AT)).transpose()?,
        device: device_id.map(|_| device_at(row, DEVICE_AT)).transpose()?,
    })
}

#[async_trait]
impl StandingStore for PostgresStore {
    async fn standing(&self, query: StandingQuery<'_>) -> Result<StandingRecord, StoreError> {
        async {
            let conn = self.conn().await?;
            let statement = conn.prepare_cached(SELECT_STANDING).await?;
            // A NULL family matches no row.
            let row = conn
                .query_one(
                    &statement,
                    &[&query.user_id, &query.device_id, &query.jti, &query.family],
                )
                .await?;
            standing_from_row(&row)
        }
        .await
        .map_err(|fail: Fail| fail.into_store("standing"))
    }
}
