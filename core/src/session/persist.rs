//! The state machine's sealed records in the store: the session, the device identity and
//! queued sign-outs, each read and written through [`super::sealed`]'s one typed pair
//! ([`seal`], and [`unseal`] or [`read_sealed`], which quarantines what it cannot read).
//! Each call runs off the async executor ([`Inner::blocking`]).

use super::inner::Inner;
use super::records::{DEVICE, DeviceRecord, SESSION, SIGN_OUT, SessionRecord, SignOutCall};
use super::sealed::{Sealed, UnsealError, ensure_key_unchanged, read_sealed, seal, unseal};
use super::state::{AuthState, SignOutReason};
use crate::error::AuthError;

impl Inner {
    /// Reads and opens the stored session, with its record version. An unreadable record
    /// (damaged, or from a newer build) is quarantined (kept, never deleted), reported as
    /// no session, and the state says so.
    pub(super) async fn load_session(&self) -> Result<Option<(SessionRecord, i64)>, AuthError> {
        let ns = self.namespace.clone();
        let now = self.clock.now_ms();
        let read = self
            .blocking(move |opened| read_sealed::<SessionRecord>(&opened.store, &opened.vault, &ns, now))
            .await?;
        match read {
            Sealed::Found(record, version) => Ok(Some((record, version))),
            Sealed::Missing => Ok(None),
            Sealed::Quarantined => {
                self.set_state(AuthState::SignedOut {
                    reason: SignOutReason::StoredSessionUnreadable,
                });
                Ok(None)
            }
        }
    }

    /// Seals and writes the session. Returns once it is durable.
    pub(super) async fn save_session(&self, record: SessionRecord) -> Result<(), AuthError> {
        self.write_session(record, None).await.map(|_| ())
    }

    /// Seals and writes the session only if the stored one is still at `expected_version`
    /// (`None`: nothing stored); `false` when it changed meanwhile (a sign-out or sign-in,
    /// here or in another process) and nothing was written.
    pub(super) async fn replace_session(
        &self,
        record: SessionRecord,
        expected_version: Option<i64>,
    ) -> Result<bool, AuthError> {
        self.write_session(record, Some(expected_version)).await
    }

    /// `expected`: `None` writes whatever is stored; `Some(version)` compares first.
    async fn write_session(
        &self,
        record: SessionRecord,
        expected: Option<Option<i64>>,
    ) -> Result<bool, AuthError> {
        let ns = self.namespace.clone();
        self.blocking(move |opened| {
            let blob = seal(&opened.vault, &ns, &record)?;
            Ok(match expected {
                None => {
                    opened.store.put(&ns, SESSION, &blob)?;
                    true
                }
                Some(version) => opened
                    .store
                    .compare_and_put(&ns, SESSION, version, &blob)?
                    .is_some(),
            })
        })
        .await
    }

    /// The stored session's record version, if one is stored.
    pub(super) async fn session_version(&self) -> Result<Option<i64>, AuthError> {
        let ns = self.namespace.clone();
        self.blocking(move |opened| Ok(opened.store.get(&ns, SESSION)?.map(|record| record.version)))
            .await
    }

    /// The stored device identity; `None` when there is none, or when it was unreadable
    /// and has just been quarantined.
    pub(super) async fn read_device_record(&self) -> Result<Option<DeviceRecord>, AuthError> {
        let ns = self.namespace.clone();
        let now = self.clock.now_ms();
        let read = self
            .blocking(move |opened| read_sealed::<DeviceRecord>(&opened.store, &opened.vault, &ns, now))
            .await?;
        Ok(match read {
            Sealed::Found(device, _) => Some(device),
            Sealed::Missing | Sealed::Quarantined => None,
        })
    }

    pub(super) async fn write_device_record(&self, record: DeviceRecord) -> Result<(), AuthError> {
        let ns = self.namespace.clone();
        self.blocking(move |opened| {
            let blob = seal(&opened.vault, &ns, &record)?;
            opened.store.put(&ns, DEVICE, &blob)?;
            Ok(())
        })
        .await
    }

    /// Sign-out in the store, in one transaction: the session is deleted and `call` (its
    /// revocation) is queued in the outbox, sealed.
    pub(super) async fn delete_session_and_queue(&self, call: SignOutCall) -> Result<(), AuthError> {
        let ns = self.namespace.clone();
        let now = self.clock.now_ms();
        self.blocking(move |opened| {
            let payload = seal(&opened.vault, &ns, &call)?;
            opened
                .store
                .delete_and_outbox_push(&ns, &[SESSION], &ns, SIGN_OUT, &payload, now)?;
            Ok(())
        })
        .await
    }

    /// Opens a queued sign-out's sealed `payload`. The inner error says why this payload
    /// cannot be read; the outer one that nothing can be now (the store is not open, or its
    /// key was changed by another process), which says nothing about the payload.
    pub(super) async fn open_queued_sign_out(
        &self,
        payload: Vec<u8>,
    ) -> Result<Result<SignOutCall, UnsealError>, AuthError> {
        let ns = self.namespace.clone();
        self.blocking(move |opened| {
            let read = unseal::<SignOutCall>(&opened.vault, &ns, &payload);
            if let Err(UnsealError::Vault(_)) = read {
                ensure_key_unchanged(&opened.store, &opened.vault)?;
            }
            Ok(read)
        })
        .await
    }
}
