//! The sessions and account lifecycle methods of [`AuthClient`] (PROTOCOL 8): the user's
//! sessions, signing out everywhere, the password, email verification, account deletion.
//!
//! The reset and verification tokens some methods return come only from a server in
//! development mode (no mailer); they are secrets, returned as plain strings for the
//! app's tests and demos to use, never to log.

use crate::client::AuthClient;
use crate::error::HoldfastError;
use crate::records::User;
use crate::sessions::Session;

#[uniffi::export(async_runtime = "tokio")]
impl AuthClient {
    /// The user's live sessions, newest sign-in first; this client's is marked `current`.
    pub async fn sessions(&self) -> Result<Vec<Session>, HoldfastError> {
        self.ready()?;
        let sessions = self.core.sessions().await?;
        Ok(sessions.into_iter().map(Session::from).collect())
    }

    /// Ends one of the user's sessions; its client signs out at its next refresh, saying
    /// it was revoked. Ending this client's own session signs it out now. An unknown id is
    /// `Refused` with `NOT_FOUND`.
    pub async fn revoke_session(&self, session_id: String) -> Result<(), HoldfastError> {
        self.ready()?;
        Ok(self.core.revoke_session(&session_id).await?)
    }

    /// Ends every session of the user but this one; returns how many ended.
    pub async fn revoke_other_sessions(&self) -> Result<u64, HoldfastError> {
        self.ready()?;
        Ok(self.core.revoke_other_sessions().await?)
    }

    /// Ends every session of the user, this one too (signed out with `SessionEnded
    /// { SignedOutEverywhere }`); returns how many ended. Offline, nothing changes.
    pub async fn sign_out_everywhere(&self) -> Result<u64, HoldfastError> {
        self.ready()?;
        Ok(self.core.sign_out_everywhere().await?)
    }

    /// Changes the password: every other session ends, this one goes on with a fresh token
    /// pair. A wrong current password is `InvalidCredentials` and signs nothing out.
    pub async fn change_password(
        &self,
        current_password: String,
        new_password: String,
    ) -> Result<(), HoldfastError> {
        self.ready()?;
        Ok(self
            .core
            .change_password(&current_password, &new_password)
            .await?)
    }

    /// Asks the server to mail a password reset link to `email` (the same answer whether
    /// or not the account exists). Returns the token only from a development server.
    pub async fn request_password_reset(&self, email: String) -> Result<Option<String>, HoldfastError> {
        self.ready()?;
        Ok(self.core.request_password_reset(&email).await?)
    }

    /// Sets a new password with the token of a reset link; every session of the user ends.
    /// A used, expired or unknown token is `Refused` with `RESET_TOKEN_INVALID`.
    pub async fn reset_password(&self, token: String, new_password: String) -> Result<(), HoldfastError> {
        self.ready()?;
        Ok(self.core.reset_password(&token, &new_password).await?)
    }

    /// Asks the server to mail a verification link for the user's email (`email`, when
    /// given, must be that address). Returns the token only from a development server.
    #[uniffi::method(default(email = None))]
    pub async fn send_verification(&self, email: Option<String>) -> Result<Option<String>, HoldfastError> {
        self.ready()?;
        Ok(self.core.send_verification(email.as_deref()).await?)
    }

    /// Mails the verification link again. Returns the token only from a development
    /// server.
    pub async fn resend_verification(&self) -> Result<Option<String>, HoldfastError> {
        self.ready()?;
        Ok(self.core.resend_verification().await?)
    }

    /// Marks the email verified with the token of a verification link and returns the
    /// user (the stored one too, when signed in as them). A used, expired or unknown token
    /// is `Refused` with `VERIFY_TOKEN_INVALID`.
    pub async fn confirm_email(&self, token: String) -> Result<User, HoldfastError> {
        self.ready()?;
        Ok(self.core.confirm_email(&token).await?.into())
    }

    /// Deletes the account with its password, then signs out (`AccountDeleted`, secrets
    /// and device key wiped). A wrong password is `InvalidCredentials`.
    pub async fn delete_account(&self, password: String) -> Result<(), HoldfastError> {
        self.ready()?;
        Ok(self.core.delete_account(&password).await?)
    }
}
