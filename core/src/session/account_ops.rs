//! The account lifecycle API (PROTOCOL 8): changing and resetting the password, verifying
//! the email, deleting the account.
//!
//! ```no_run
//! # async fn forgot(client: &holdfast_core::AuthClient, token_from_mail: &str) -> Result<(), holdfast_core::AuthError> {
//! client.request_password_reset("ada@example.com").await?; // the server mails a link
//! client.reset_password(token_from_mail, "a new passphrase").await?;
//! client.sign_in("ada@example.com", "a new passphrase").await?;
//! # Ok(()) }
//! ```
//!
//! The reset and verification tokens travel by mail; a server without a mailer (development
//! only) answers them instead, and the methods that ask for one return it. They are
//! secrets: never log them.

use holdfast_protocol::endpoint::{
    ChangePassword, ConfirmEmail, DeleteAccount, RequestPasswordReset, ResendVerification, ResetPassword,
    SendVerification,
};
use holdfast_protocol::validate::{check_password_length, normalize_email};
use holdfast_protocol::wire::{
    DeleteAccountRequest, Empty, PasswordChangeRequest, PasswordResetRequest, ResetRequest, User,
    VerifyConfirmRequest, VerifySendRequest,
};

use super::AuthClient;
use super::state::SignOutReason;
use crate::error::AuthError;

impl AuthClient {
    /// Changes the user's password. The server ends every other session of the user (they
    /// sign out saying the password changed) and renews this one: the new token pair
    /// replaces the stored one as a refresh's would (on disk before it is used, never
    /// beside a refresh in flight), so this client stays signed in.
    ///
    /// A wrong `current` password is [`AuthError::InvalidCredentials`] (and counts as a
    /// failed sign-in on the server), a `new` one the server's rules refuse is
    /// [`AuthError::InvalidInput`]; neither signs out. Offline, nothing changes.
    pub async fn change_password(&self, current: &str, new: &str) -> Result<(), AuthError> {
        if current.is_empty() {
            return Err(AuthError::InvalidInput {
                message: "the current password is required".to_owned(),
            });
        }
        check_password(new)?;
        let access = self.access_token().await?;
        let body = PasswordChangeRequest {
            current_password: current.to_owned(),
            new_password: new.to_owned(),
        };
        // Detached: once the server has changed the password, the old pair is spent, so
        // the new one must be kept whether or not the caller is still waiting.
        let inner = self.inner.clone();
        tokio::spawn(async move {
            inner
                .renew_session(&access, &ChangePassword, &body, |answer| answer.tokens)
                .await
        })
        .await
        .map_err(|_| AuthError::Protocol {
            message: "the password change task failed".to_owned(),
        })?
        .map(|_| ())
    }

    /// Asks the server to mail a password reset link to `email`. The answer is the same
    /// whether or not an account has that address. Returns the reset token only from a
    /// server in development mode (no mailer); `None` from every real deployment.
    pub async fn request_password_reset(&self, email: &str) -> Result<Option<String>, AuthError> {
        let email = normalize_email(email.trim()).map_err(invalid)?;
        let sent = self
            .public(&RequestPasswordReset, &ResetRequest { email })
            .await?;
        Ok(sent.token)
    }

    /// Sets a new password with the `token` of a reset link. Every session of the user
    /// ends, this client's too if it is signed in as that user (it learns so at its next
    /// refresh and signs out saying the password was reset); sign in with the new
    /// password. A used, expired or unknown token is [`AuthError::Refused`] with
    /// `RESET_TOKEN_INVALID`: ask for a new link.
    pub async fn reset_password(&self, token: &str, new: &str) -> Result<(), AuthError> {
        check_token(token)?;
        check_password(new)?;
        let body = PasswordResetRequest {
            token: token.to_owned(),
            new_password: new.to_owned(),
        };
        self.public(&ResetPassword, &body).await.map(|_| ())
    }

    /// Asks the server to mail a verification link for the user's email (`email`, when
    /// given, must be that address). Nothing is sent for an address already verified.
    /// Returns the token only from a server in development mode.
    pub async fn send_verification(&self, email: Option<&str>) -> Result<Option<String>, AuthError> {
        let email = email
            .map(|email| normalize_email(email.trim()).map_err(invalid))
            .transpose()?;
        let body = VerifySendRequest { email };
        Ok(self.authorized(&SendVerification, &body).await?.token)
    }

    /// Mails the verification link again. Returns the token only from a server in
    /// development mode.
    pub async fn resend_verification(&self) -> Result<Option<String>, AuthError> {
        Ok(self.authorized(&ResendVerification, &Empty {}).await?.token)
    }

    /// Marks an email verified with the `token` of a verification link, and returns the
    /// user. When that is the signed-in user, the stored copy is updated too
    /// ([`AuthClient::current_user`] says `email_verified`). Needs no session: the link may
    /// be opened on any device. A used, expired or unknown token is [`AuthError::Refused`]
    /// with `VERIFY_TOKEN_INVALID`.
    pub async fn confirm_email(&self, token: &str) -> Result<User, AuthError> {
        check_token(token)?;
        let body = VerifyConfirmRequest {
            token: token.to_owned(),
        };
        let user = self.public(&ConfirmEmail, &body).await?.user;
        let signed_in = self
            .inner
            .current_user()
            .is_some_and(|current| current.id == user.id);
        if signed_in {
            self.inner.update_user(user.clone()).await?;
        }
        Ok(user)
    }

    /// Deletes the user's account, with its `password`: its sessions, devices and data go
    /// on the server, and this client signs out ([`SignOutReason::AccountDeleted`]) with its
    /// secrets and device key wiped. A wrong password is [`AuthError::InvalidCredentials`]
    /// and deletes nothing.
    pub async fn delete_account(&self, password: &str) -> Result<(), AuthError> {
        if password.is_empty() {
            return Err(AuthError::InvalidInput {
                message: "the password is required to delete the account".to_owned(),
            });
        }
        let body = DeleteAccountRequest {
            password: Some(password.to_owned()),
        };
        self.authorized(&DeleteAccount, &body).await?;
        self.inner.sign_out_locally(SignOutReason::AccountDeleted).await;
        Ok(())
    }
}

fn invalid(message: &str) -> AuthError {
    AuthError::InvalidInput {
        message: message.to_owned(),
    }
}

/// A new password, as the protocol bounds it (the server may ask for more).
fn check_password(password: &str) -> Result<(), AuthError> {
    check_password_length(password).map_err(invalid)
}

/// A mailed token: non-empty and short enough to be one (the server's are 43 characters).
fn check_token(token: &str) -> Result<(), AuthError> {
    if token.trim().is_empty() || token.len() > 512 {
        return Err(invalid("the token is empty or too long to be one"));
    }
    Ok(())
}
