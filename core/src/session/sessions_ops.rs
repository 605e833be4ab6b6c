//! The sessions API (PROTOCOL 8): the user's sessions (one per sign-in on a device), ending
//! one, every other one, or all of them.
//!
//! ```no_run
//! # async fn settings(client: &holdfast_core::AuthClient) -> Result<(), holdfast_core::AuthError> {
//! for session in client.sessions().await? {
//!     let label = session.user_agent.as_deref().unwrap_or("unknown device");
//!     println!("{label}{}", if session.current { " (this one)" } else { "" });
//! }
//! let ended = client.revoke_other_sessions().await?; // "sign out my other devices"
//! # Ok(()) }
//! ```
//!
//! A session ended here ends on the server at once; the clients holding it learn it at
//! their next refresh and sign out with the reason (`SignOutReason::SessionEnded`).

use holdfast_protocol::endpoint::{NoBody, RevokeOtherSessions, RevokeSession, Sessions, SignOutAll};
use holdfast_protocol::wire::{Empty, Session};
use holdfast_protocol::{Claims, EndReason};

use super::AuthClient;
use super::state::SignOutReason;
use crate::error::AuthError;

impl AuthClient {
    /// The user's live sessions, newest sign-in first; this client's own is marked
    /// `current`.
    pub async fn sessions(&self) -> Result<Vec<Session>, AuthError> {
        self.authorized(&Sessions, &NoBody).await
    }

    /// Ends one of the user's sessions (`id` as [`AuthClient::sessions`] lists it): its
    /// refresh fails from now on, and its client signs out saying it was revoked. Ending
    /// this client's own session signs it out here too, with the same reason, secrets
    /// wiped. An id that is not one of the user's live sessions is
    /// [`AuthError::Refused`] with `NOT_FOUND`.
    pub async fn revoke_session(&self, id: &str) -> Result<(), AuthError> {
        let revoke = RevokeSession::new(id).ok_or_else(|| AuthError::InvalidInput {
            message: "this session id cannot be used in a URL".to_owned(),
        })?;
        let access = self.access_token().await?;
        self.authorized_with(&access, &revoke, &NoBody).await?;
        let own = Claims::decode_unverified(&access)
            .ok()
            .and_then(|claims| claims.fam)
            .is_some_and(|session| session == id);
        if own {
            self.inner
                .sign_out_locally(SignOutReason::ended(EndReason::Revoked))
                .await;
        }
        Ok(())
    }

    /// Ends every session of the user but this one ("sign out my other devices"). Returns
    /// how many ended.
    pub async fn revoke_other_sessions(&self) -> Result<u64, AuthError> {
        Ok(self.authorized(&RevokeOtherSessions, &Empty {}).await?.revoked)
    }

    /// Ends every session of the user, this one included, then signs out here as the
    /// server recorded it: [`SignOutReason::SessionEnded`] with
    /// [`EndReason::SignedOutEverywhere`], secrets wiped (the device key is kept). Returns
    /// how many sessions ended. A failure (offline, say) changes nothing: the user is
    /// still signed in everywhere, here too.
    pub async fn sign_out_everywhere(&self) -> Result<u64, AuthError> {
        let revoked = self.authorized(&SignOutAll, &Empty {}).await?.revoked;
        self.inner
            .sign_out_locally(SignOutReason::ended(EndReason::SignedOutEverywhere))
            .await;
        Ok(revoked)
    }
}
