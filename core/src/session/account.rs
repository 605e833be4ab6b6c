//! The account API: sign-up, sign-in, sign-out (local first, then the server through the
//! outbox) and delivering the outbox. The state changes behind them are in `lifecycle.rs`.

use holdfast_protocol::Claims;
use holdfast_protocol::endpoint::{SignIn, SignUp};
use holdfast_protocol::validate::{check_metadata, check_password_length, normalize_email};
use holdfast_protocol::wire::{SignInRequest, SignUpRequest, User};

use super::AuthClient;
use super::state::{AuthState, SignOutReason};
use crate::error::AuthError;

/// What a sign-up may carry beyond the email and password ([`AuthClient::sign_up_with`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignUpOptions {
    /// The user's display name.
    pub name: Option<String>,
    /// The application's data about the user: a JSON object of at most
    /// [`MAX_METADATA_BYTES`](holdfast_protocol::validate::MAX_METADATA_BYTES) bytes, kept by the server and returned with the user
    /// (Holdfast; a Kora server ignores it).
    pub metadata: Option<serde_json::Value>,
}

/// What a sign-in ended in ([`AuthClient::sign_in`]): signed in, or the password was right
/// and the account has a second factor, which the user must now enter (PROTOCOL 9).
///
/// ```no_run
/// # async fn screen(client: &holdfast_core::AuthClient, code_from_user: &str) -> Result<(), holdfast_core::AuthError> {
/// use holdfast_core::SignInOutcome;
/// match client.sign_in("ada@example.com", "correct horse battery").await? {
///     SignInOutcome::SignedIn(user) => println!("welcome, {}", user.email),
///     SignInOutcome::SecondFactorRequired(_) => {
///         // Show the code screen; the password is not needed again, even after a restart.
///         client.complete_sign_in_with_code(code_from_user).await?;
///     }
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignInOutcome {
    /// Signed in: the session is complete ([`AuthState::SignedIn`]).
    SignedIn(User),
    /// The password was right and the account has a second factor: the session is kept
    /// but owes a code ([`AuthState::SecondFactorRequired`]); finish with
    /// [`AuthClient::complete_sign_in_with_code`] or
    /// [`AuthClient::complete_sign_in_with_recovery_code`].
    SecondFactorRequired(User),
}

impl SignInOutcome {
    /// The user, whichever the outcome.
    pub fn user(&self) -> &User {
        match self {
            SignInOutcome::SignedIn(user) | SignInOutcome::SecondFactorRequired(user) => user,
        }
    }

    /// The user, whichever the outcome, by value.
    pub fn into_user(self) -> User {
        match self {
            SignInOutcome::SignedIn(user) | SignInOutcome::SecondFactorRequired(user) => user,
        }
    }

    /// Whether the user must still enter a second factor.
    pub fn needs_second_factor(&self) -> bool {
        matches!(self, SignInOutcome::SecondFactorRequired(_))
    }
}

impl AuthClient {
    /// Creates an account and signs in, registering this device with its key.
    pub async fn sign_up(&self, email: &str, password: &str, name: Option<&str>) -> Result<User, AuthError> {
        let options = SignUpOptions {
            name: name.map(str::to_owned),
            metadata: None,
        };
        self.sign_up_with(email, password, options).await
    }

    /// [`AuthClient::sign_up`] with the options of [`SignUpOptions`]: a display name and
    /// the application's metadata about the user. Metadata that is not a JSON object, or
    /// is larger than
    /// [`MAX_METADATA_BYTES`](holdfast_protocol::validate::MAX_METADATA_BYTES), is [`AuthError::InvalidInput`] before
    /// anything is sent.
    pub async fn sign_up_with(
        &self,
        email: &str,
        password: &str,
        options: SignUpOptions,
    ) -> Result<User, AuthError> {
        check_credentials(email, password)?;
        if let Some(metadata) = &options.metadata {
            check_metadata(metadata).map_err(|message| AuthError::InvalidInput {
                message: message.to_owned(),
            })?;
        }
        let SignUpOptions { name, metadata } = options;
        let inner = &self.inner;
        let answer = inner
            .with_device(|device, public_key| {
                let request = SignUpRequest {
                    email: email.to_owned(),
                    password: password.to_owned(),
                    name: name.clone(),
                    device_id: Some(device.id.clone()),
                    device_public_key: Some(public_key),
                    device_name: inner.device_name.clone(),
                    metadata: metadata.clone(),
                };
                let proof = inner.token_request_proof(device, &SignUp);
                async move {
                    inner
                        .transport
                        .send(&SignUp, &request, None, proof?.as_deref())
                        .await
                }
            })
            .await?;
        inner.start_session(answer).await
    }

    /// Signs in with email and password, registering this device with its key.
    ///
    /// For an account with a second factor (PROTOCOL 9) a right password is not the end:
    /// the outcome is [`SignInOutcome::SecondFactorRequired`] (never an error), the state
    /// [`AuthState::SecondFactorRequired`], and the session is kept, across restarts too,
    /// until the user enters a code ([`AuthClient::complete_sign_in_with_code`], or a
    /// recovery code) or signs out.
    pub async fn sign_in(&self, email: &str, password: &str) -> Result<SignInOutcome, AuthError> {
        if email.trim().is_empty() || password.is_empty() {
            return Err(AuthError::InvalidInput {
                message: "email and password are required".to_owned(),
            });
        }
        let inner = &self.inner;
        let answer = inner
            .with_device(|device, public_key| {
                let request = SignInRequest {
                    email: email.to_owned(),
                    password: password.to_owned(),
                    device_id: Some(device.id.clone()),
                    device_public_key: Some(public_key),
                    device_name: inner.device_name.clone(),
                };
                let proof = inner.token_request_proof(device, &SignIn);
                async move {
                    inner
                        .transport
                        .send(&SignIn, &request, None, proof?.as_deref())
                        .await
                }
            })
            .await?;
        let inner = self.inner.clone();
        tokio::spawn(async move { inner.deliver_outbox(false).await });
        let pending = Claims::decode_unverified(&answer.value.tokens.access_token)
            .is_ok_and(|claims| claims.mfa_pending());
        let user = self.inner.start_session(answer).await?;
        Ok(if pending {
            SignInOutcome::SecondFactorRequired(user)
        } else {
            SignInOutcome::SignedIn(user)
        })
    }

    /// Signs out: local secrets are removed at once (offline too), and the server-side
    /// revocation is queued and delivered now or when the network is back.
    pub async fn sign_out(&self) -> Result<(), AuthError> {
        let Some(tokens) = self.inner.current_tokens() else {
            self.inner.set_state(AuthState::SignedOut {
                reason: SignOutReason::UserSignedOut,
            });
            return Ok(());
        };
        self.inner.sign_out_and_queue(&tokens).await?;
        let inner = self.inner.clone();
        tokio::spawn(async move { inner.deliver_outbox(false).await });
        Ok(())
    }

    /// Delivers queued server calls now, waiting for the attempt. Returns how many are
    /// still waiting (0 when everything was delivered).
    pub async fn flush_outbox(&self) -> Result<usize, AuthError> {
        self.inner.deliver_outbox(true).await
    }
}

fn check_credentials(email: &str, password: &str) -> Result<(), AuthError> {
    normalize_email(email).map_err(|message| AuthError::InvalidInput {
        message: message.to_owned(),
    })?;
    check_password_length(password).map_err(|message| AuthError::InvalidInput {
        message: message.to_owned(),
    })
}
