//! [`SyncGate::watch`](super::SyncGate::watch): when an open connection must close.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use holdfast_protocol::ErrorCode;

use super::{GateInner, Principal};
use crate::store::StoreError;

/// Why an open connection must close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    /// The device was revoked.
    DeviceRevoked,
    /// The session ended: signed out (here or everywhere), or its refresh token was reused.
    SessionEnded,
    /// The account was deleted.
    AccountDeleted,
    /// The access token expired: reconnect with a fresh one.
    TokenExpired,
}

impl Closed {
    /// The WebSocket close code (application range 4000-4999).
    pub fn close_code(self) -> u16 {
        match self {
            Closed::DeviceRevoked => 4001,
            Closed::SessionEnded => 4002,
            Closed::AccountDeleted => 4003,
            Closed::TokenExpired => 4004,
        }
    }

    /// The protocol code, which is also the close reason.
    pub fn code(self) -> ErrorCode {
        match self {
            Closed::DeviceRevoked => ErrorCode::DeviceRevoked,
            Closed::SessionEnded => ErrorCode::TokenRevoked,
            Closed::AccountDeleted => ErrorCode::UserNotFound,
            Closed::TokenExpired => ErrorCode::TokenExpired,
        }
    }

    /// The close reason: the protocol code as text (`DEVICE_REVOKED`, ...).
    pub fn reason(self) -> &'static str {
        self.code().as_str()
    }

    /// Whether the client should reconnect (with a fresh token) rather than sign in again.
    pub fn may_reconnect(self) -> bool {
        self == Closed::TokenExpired
    }
}

/// A future that resolves when a connection must close (see
/// [`SyncGate::watch`](super::SyncGate::watch)).
pub struct Watch {
    future: Pin<Box<dyn Future<Output = Closed> + Send>>,
}

impl Future for Watch {
    type Output = Closed;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Closed> {
        self.future.as_mut().poll(cx)
    }
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Watch")
    }
}

pub(super) fn watch(gate: Arc<GateInner>, principal: Principal) -> Watch {
    Watch {
        future: Box::pin(run(gate, principal)),
    }
}

async fn run(gate: Arc<GateInner>, principal: Principal) -> Closed {
    let cell = gate.caches.user_cell(&principal.user_id);
    let leeway = gate.authn.tokens().policy().leeway_secs;
    let expires_ms = principal.expires_at.saturating_add(leeway).saturating_mul(1000);
    // Admission just checked the stores; only a revocation since then needs a re-check now.
    let mut check_now = cell.epoch() != principal.admitted_epoch;
    loop {
        let changed = cell.changed.notified();
        tokio::pin!(changed);
        // Registered before checking, so an event during the check is not missed.
        changed.as_mut().enable();
        if check_now {
            match recheck(&gate, &principal).await {
                Ok(Some(closed)) => return closed,
                Ok(None) => {}
                // The stores are unreachable: keep the connection, try again later.
                Err(error) => tracing::warn!(%error, "could not re-check a sync connection"),
            }
        }
        check_now = true;
        let remaining = expires_ms.saturating_sub(gate.clock.now_ms());
        if remaining <= 0 {
            return Closed::TokenExpired;
        }
        let until_expiry = Duration::from_millis(u64::try_from(remaining).unwrap_or(u64::MAX));
        tokio::select! {
            () = &mut changed => {}
            () = tokio::time::sleep(gate.config.recheck_interval) => {}
            () = tokio::time::sleep(until_expiry) => {}
        }
    }
}

/// Rules 2-4 against the stores (never the cache): why the connection must close, if it
/// must.
async fn recheck(gate: &GateInner, principal: &Principal) -> Result<Option<Closed>, StoreError> {
    let stores = gate.authn.stores();
    // Deleting an account also revokes its sessions: the account is checked first so the
    // client learns the account is gone (4003), not merely signed out.
    if stores.users.find_user(&principal.user_id).await?.is_none() {
        return Ok(Some(Closed::AccountDeleted));
    }
    // The device before the session: revoking a device ends its sessions too, and the
    // client must learn the device is gone (4001), not merely signed out.
    match stores.devices.find_device(&principal.device_id).await? {
        Some(device) if device.revoked || device.user_id != principal.user_id => {
            return Ok(Some(Closed::DeviceRevoked));
        }
        Some(_) => {}
        None if gate.config.allow_unregistered_devices => {}
        None => return Ok(Some(Closed::DeviceRevoked)),
    }
    if stores
        .tokens
        .is_revoked(&principal.token_id, principal.family.as_deref())
        .await?
    {
        return Ok(Some(Closed::SessionEnded));
    }
    Ok(None)
}
