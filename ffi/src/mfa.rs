//! The second factor (PROTOCOL 9) for the app: enrolling a TOTP authenticator app
//! ([`MfaEnrollment`]), finishing a sign-in with a code (a sign-in that needs one ends in
//! [`SignInOutcome::SecondFactorRequired`](crate::SignInOutcome)), step-up, recovery codes.
//!
//! The enrolment and the recovery codes are secrets: like [`SyncCredentials`](crate::SyncCredentials)
//! they print (`Debug`, `Display`, and in every binding `str`/`repr`/`toString`/
//! `description`) with their secrets redacted, so they cannot end up in a log by accident.
//! Codes the user types are never logged nor repeated in an error.

use holdfast_core::session as core;

use crate::client::AuthClient;
use crate::error::HoldfastError;
use crate::records::User;

const REDACTED: &str = "<redacted>";

/// A second factor being set up, shown to the user once: the QR code to scan (SVG text or
/// PNG bytes), the secret to type in by hand instead, and the recovery codes to keep
/// somewhere safe. Then confirm with `confirm_mfa` and a code from the app. Every field is
/// secret: it prints with all of them redacted.
#[derive(Clone, PartialEq, Eq, uniffi::Record)]
#[uniffi::export(Debug, Display)]
pub struct MfaEnrollment {
    /// The `otpauth://totp/…` URI the QR code holds.
    pub uri: String,
    /// The shared secret, base32, for typing into an authenticator app.
    pub secret: String,
    /// The single-use recovery codes.
    pub recovery_codes: Vec<String>,
    /// The URI as a QR code: an SVG document.
    pub qr_svg: String,
    /// The URI as a QR code: a PNG image.
    pub qr_png: Vec<u8>,
}

impl std::fmt::Debug for MfaEnrollment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MfaEnrollment")
            .field("uri", &REDACTED)
            .field("secret", &REDACTED)
            .field("recovery_codes", &RedactedCodes(self.recovery_codes.len()))
            .field("qr_svg", &REDACTED)
            .field("qr_png", &REDACTED)
            .finish()
    }
}

impl std::fmt::Display for MfaEnrollment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

impl MfaEnrollment {
    fn from_core(enrollment: &core::MfaEnrollment) -> Result<MfaEnrollment, HoldfastError> {
        Ok(MfaEnrollment {
            uri: enrollment.uri().to_owned(),
            secret: enrollment.secret().to_owned(),
            recovery_codes: enrollment.recovery_codes(),
            qr_svg: enrollment.qr_svg()?,
            qr_png: enrollment.qr_png()?,
        })
    }
}

/// New recovery codes, shown once (the old ones no longer work). Secret: prints redacted.
#[derive(Clone, PartialEq, Eq, uniffi::Record)]
#[uniffi::export(Debug, Display)]
pub struct RecoveryCodes {
    /// The single-use codes.
    pub codes: Vec<String>,
}

impl std::fmt::Debug for RecoveryCodes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecoveryCodes")
            .field("codes", &RedactedCodes(self.codes.len()))
            .finish()
    }
}

impl std::fmt::Display for RecoveryCodes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

/// Whether the second factor is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct MfaStatus {
    /// Whether a second factor is on (enrolled and confirmed).
    pub enabled: bool,
    /// Recovery codes not used yet (0 when it is off).
    pub remaining_recovery_codes: u32,
}

/// `<N redacted>` in a `Debug`.
struct RedactedCodes(usize);

impl std::fmt::Debug for RedactedCodes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<{} {REDACTED}>", self.0)
    }
}

#[uniffi::export(async_runtime = "tokio")]
impl AuthClient {
    /// Starts setting up a second factor: the QR code, secret and recovery codes to show
    /// once. It is on only after `confirm_mfa`. `account_name`: the name the authenticator
    /// app shows (the account's email only; none: the email). `MfaAlreadyEnabled` if it
    /// is on already.
    #[uniffi::method(default(account_name = None))]
    pub async fn enroll_mfa(&self, account_name: Option<String>) -> Result<MfaEnrollment, HoldfastError> {
        self.ready()?;
        let enrollment = self.core.enroll_mfa(account_name.as_deref()).await?;
        MfaEnrollment::from_core(&enrollment)
    }

    /// Turns the second factor on with a first code from the authenticator app. A wrong
    /// code is `InvalidCode`.
    pub async fn confirm_mfa(&self, code: String) -> Result<(), HoldfastError> {
        self.ready()?;
        Ok(self.core.confirm_mfa(&code).await?)
    }

    /// Whether the second factor is on, and how many recovery codes are left.
    pub async fn mfa_status(&self) -> Result<MfaStatus, HoldfastError> {
        self.ready()?;
        let status = self.core.mfa_status().await?;
        Ok(MfaStatus {
            enabled: status.enabled,
            remaining_recovery_codes: status.remaining_recovery_codes,
        })
    }

    /// New recovery codes, with a code from the app (the old ones stop working). May need
    /// a recent `step_up` (`StepUpRequired`).
    pub async fn regenerate_recovery_codes(&self, code: String) -> Result<RecoveryCodes, HoldfastError> {
        self.ready()?;
        let codes = self.core.regenerate_recovery_codes(&code).await?;
        Ok(RecoveryCodes {
            codes: codes.recovery_codes,
        })
    }

    /// Turns the second factor off, with a code from the app or a recovery code. May need
    /// a recent `step_up` (`StepUpRequired`).
    pub async fn disable_mfa(&self, code: String) -> Result<(), HoldfastError> {
        self.ready()?;
        Ok(self.core.disable_mfa(&code).await?)
    }

    /// Finishes a sign-in waiting for its second factor (state `SecondFactorRequired`)
    /// with a code from the authenticator app: the state becomes `SignedIn`. A wrong,
    /// expired or used code is `InvalidCode` and the sign-in still waits; offline nothing
    /// changes.
    pub async fn complete_sign_in_with_code(&self, code: String) -> Result<User, HoldfastError> {
        self.ready()?;
        Ok(self.core.complete_sign_in_with_code(&code).await?.into())
    }

    /// `complete_sign_in_with_code` with one of the recovery codes (spent by this).
    pub async fn complete_sign_in_with_recovery_code(
        &self,
        recovery_code: String,
    ) -> Result<User, HoldfastError> {
        self.ready()?;
        Ok(self
            .core
            .complete_sign_in_with_recovery_code(&recovery_code)
            .await?
            .into())
    }

    /// Proves again who the user is (a code from the app or a recovery code) after a
    /// sensitive action answered `StepUpRequired`; then try the action again.
    pub async fn step_up(&self, code: String) -> Result<(), HoldfastError> {
        self.ready()?;
        Ok(self.core.step_up(&code).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_print_redacted() {
        let enrollment = MfaEnrollment {
            uri: "otpauth://totp/x?secret=JBSWY3DPEHPK3PXP".into(),
            secret: "JBSWY3DPEHPK3PXP".into(),
            recovery_codes: vec!["aaaa-bbbb".into(), "cccc-dddd".into()],
            qr_svg: "<svg>secret drawing</svg>".into(),
            qr_png: vec![1, 2, 3],
        };
        let codes = RecoveryCodes {
            codes: vec!["aaaa-bbbb".into()],
        };
        for text in [
            format!("{enrollment:?}"),
            enrollment.to_string(),
            format!("{codes:?}"),
            codes.to_string(),
        ] {
            for secret in [
                "JBSWY3DPEHPK3PXP",
                "otpauth",
                "aaaa-bbbb",
                "cccc-dddd",
                "secret drawing",
            ] {
                assert!(!text.contains(secret), "{text}");
            }
            assert!(text.contains(REDACTED), "{text}");
        }
    }
}
