//! The device identity: loaded from the vault, or created (and stored) on first use; a new
//! one when the server refuses the old; the device credential the server issues.

use super::inner::Inner;
use super::records::{DEVICE, DeviceIdentity, DeviceRecord};
use super::state::AuthEvent;
use crate::error::AuthError;

impl Inner {
    /// The device identity, loaded from the vault or created (and stored) on first use.
    pub(super) async fn device_identity(&self) -> Result<DeviceIdentity, AuthError> {
        let mut slot = self.device.lock().await;
        if let Some(device) = slot.as_ref() {
            return Ok(device.clone());
        }
        let identity = match self.read_device_record().await? {
            Some(record) => match record.identity(self.host_signer.as_ref()) {
                Ok(identity) => identity,
                Err(error) => {
                    tracing::warn!(%error, "the stored device key is unusable; creating a new identity");
                    self.emit(AuthEvent::DeviceKeyLost);
                    self.create_device().await?
                }
            },
            None => self.create_device().await?,
        };
        *slot = Some(identity.clone());
        Ok(identity)
    }

    /// The stored device identity, without creating one.
    pub(super) async fn stored_device(&self) -> Result<Option<DeviceIdentity>, AuthError> {
        if let Some(device) = self.device.lock().await.as_ref() {
            return Ok(Some(device.clone()));
        }
        match self.read_device_record().await? {
            Some(record) => Ok(Some(record.identity(self.host_signer.as_ref())?)),
            None => Ok(None),
        }
    }

    async fn create_device(&self) -> Result<DeviceIdentity, AuthError> {
        let (record, identity) = match &self.host_signer {
            Some(host) => {
                let id = format!("dev-{}", uuid::Uuid::new_v4());
                let record = DeviceRecord {
                    device_id: id.clone(),
                    pkcs8: None,
                    credential: None,
                };
                (
                    record,
                    DeviceIdentity {
                        id,
                        signer: host.clone(),
                    },
                )
            }
            None => DeviceRecord::generate()?,
        };
        self.write_device_record(record).await?;
        Ok(identity)
    }

    pub(super) async fn forget_device(&self) -> Result<(), AuthError> {
        let ns = self.namespace.clone();
        self.blocking(move |opened| Ok(opened.store.delete(&ns, DEVICE)?))
            .await?;
        *self.device.lock().await = None;
        Ok(())
    }

    /// Keeps the device credential the server issued (Kora discards it).
    pub(super) async fn store_device_credential(&self, credential: String) {
        let result = async {
            let Some(mut record) = self.read_device_record().await? else {
                return Ok(());
            };
            record.credential = Some(credential);
            self.write_device_record(record).await
        };
        if let Err(error) = result.await {
            tracing::warn!(%error, "could not keep the device credential");
        }
    }
}
