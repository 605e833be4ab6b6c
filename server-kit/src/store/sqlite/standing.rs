//! [`StandingStore`] on SQLite: one trip to a reader thread, one read transaction.

use async_trait::async_trait;

use super::SqliteStore;
use super::accounts::{find_device, find_user_by_id};
use super::token_rows::is_revoked;
use crate::store::{StandingQuery, StandingRecord, StandingStore, StoreError};

#[async_trait]
impl StandingStore for SqliteStore {
    async fn standing(&self, query: StandingQuery<'_>) -> Result<StandingRecord, StoreError> {
        let user_id = query.user_id.to_owned();
        let device_id = query.device_id.to_owned();
        let jti = query.jti.to_owned();
        let family = query.family.map(str::to_owned);
        self.read("standing", move |conn| {
            // One snapshot for the three reads (a deferred transaction only reads).
            let tx = conn.unchecked_transaction()?;
            let record = StandingRecord {
                revoked: is_revoked(&tx, &jti, family.as_deref())?,
                user: find_user_by_id(&tx, &user_id)?,
                device: find_device(&tx, &device_id)?,
            };
            tx.commit()?;
            Ok(record)
        })
        .await
    }
}
