//! [`StandingStore`] in memory: one lock, so the three reads are consistent.

use async_trait::async_trait;

use super::MemoryStore;
use crate::store::{StandingQuery, StandingRecord, StandingStore, StoreError};

#[async_trait]
impl StandingStore for MemoryStore {
    async fn standing(&self, query: StandingQuery<'_>) -> Result<StandingRecord, StoreError> {
        let state = self.state();
        let revoked = state.revoked_tokens.contains_key(query.jti)
            || query
                .family
                .is_some_and(|family| state.revoked_families.contains_key(family));
        Ok(StandingRecord {
            revoked,
            user: state.users.get(query.user_id).cloned(),
            device: state
                .devices
                .get(query.device_id)
                .map(|(_, record)| record.clone()),
        })
    }
}
