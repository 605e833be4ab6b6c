//! What a sign-in ended in: signed in, or waiting for the second factor (PROTOCOL 9).

use holdfast_core::session as core;

use crate::records::User;

/// What a sign-in ended in.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
#[uniffi::export(Display)]
pub enum SignInOutcome {
    /// Signed in: the session is complete.
    SignedIn {
        /// The user.
        user: User,
    },
    /// The password was right and the account has a second factor: show the code screen,
    /// then call `complete_sign_in_with_code` (or `complete_sign_in_with_recovery_code`).
    /// The session is kept until then, across restarts too (the state is
    /// `SecondFactorRequired`); the password is not needed again.
    SecondFactorRequired {
        /// The user signing in.
        user: User,
    },
}

impl std::fmt::Display for SignInOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

impl From<core::SignInOutcome> for SignInOutcome {
    fn from(outcome: core::SignInOutcome) -> SignInOutcome {
        match outcome {
            core::SignInOutcome::SignedIn(user) => SignInOutcome::SignedIn { user: user.into() },
            core::SignInOutcome::SecondFactorRequired(user) => {
                SignInOutcome::SecondFactorRequired { user: user.into() }
            }
        }
    }
}
