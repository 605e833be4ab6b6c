//! Changes to the stored session that are not refreshes but must never cross one: a
//! password change, a second factor's check (`/mfa/verify`, `/mfa/recover`, `/mfa/step-up`),
//! each answering the session's next token pair, and a newer copy of the
//! signed-in user. All run as a refresh runs (`refresh.rs`): under this process's refresh
//! gate and the store's refresh lock, so no refresh is in flight here or in another process
//! sharing the store, against the session read under the lock, and written only if it is
//! still that version. A refresh that adopted the stored pair after such a write would
//! otherwise drop its own rotated pair, and the next refresh would present a spent token.

use std::sync::PoisonError;

use holdfast_protocol::Claims;
use holdfast_protocol::endpoint::Endpoint;
use holdfast_protocol::wire::{TokenPair, User};

use super::inner::Inner;
use crate::error::AuthError;
use crate::transport::Failure;

impl Inner {
    /// Sends a bearer call with `access` whose answer is this session's next token pair
    /// (`pair_of` finds it: a password change, a second factor's check), and persists that pair exactly as a
    /// refresh persists its own ([`Inner::adopt_pair`]: on disk before anyone sees it, and
    /// only over the session the call was made for). Returns the new access token.
    ///
    /// A failure of the call changes nothing here: a transient one leaves the old pair in
    /// use, a rejection (a wrong current password) is the caller's error, not a sign-out.
    /// The caller runs this detached, so a cancelled caller cannot lose a pair the server
    /// has already issued.
    pub(super) async fn renew_session<E: Endpoint>(
        &self,
        access: &str,
        endpoint: &E,
        body: &E::Request,
        pair_of: fn(E::Response) -> TokenPair,
    ) -> Result<String, AuthError> {
        let _gate = self.refresh_gate.lock().await;
        let _lock = self.refresh_lock().await?;
        let Some((stored, version)) = self.load_session().await? else {
            return Err(self.signed_out_meanwhile());
        };
        // `access` was taken before the lock: if another user has signed in since, the
        // call would renew a session that is no longer the stored one.
        let subject = Claims::decode_unverified(access).ok().map(|claims| claims.sub);
        if subject.as_deref() != Some(stored.user.id.as_str()) {
            return Err(AuthError::NotSignedIn);
        }
        let answer = self
            .send_bearer(access, endpoint, body)
            .await?
            .map_err(Failure::into_auth_error)?;
        self.adopt_pair(
            stored.user.clone(),
            Some(version),
            pair_of(answer.value),
            answer.server_time_ms,
        )
        .await
    }

    /// Keeps a newer copy of the signed-in user (e.g. its email just verified), in the
    /// store and in memory, if `user` is the one signed in; otherwise does nothing.
    pub(super) async fn update_user(&self, user: User) -> Result<(), AuthError> {
        let _gate = self.refresh_gate.lock().await;
        let _lock = self.refresh_lock().await?;
        let _write = self.session_write.lock().await;
        let Some((mut record, version)) = self.load_session().await? else {
            return Ok(());
        };
        if record.user.id != user.id {
            return Ok(());
        }
        record.user = user.clone();
        // Under the lock and the write gate nothing else writes the session here; a
        // sign-in or sign-out in another process since the read wins.
        if self.replace_session(record, Some(version)).await? {
            self.set_user(user);
        }
        Ok(())
    }

    /// The signed-in user, newer copy, in memory (the caller stored it first).
    fn set_user(&self, user: User) {
        *self.user.write().unwrap_or_else(PoisonError::into_inner) = Some(user);
        self.restate_session();
    }
}
