//! The user's sessions (PROTOCOL 8) as the app sees them: a [`Session`] per sign-in on a
//! device, and [`SessionEndReason`], why the server ended one (what a `SignedOut` state's
//! `SessionEnded` reason carries).

use holdfast_protocol::{EndReason, wire};

/// One of the user's sessions: one sign-in on one device. Holds no secret.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
#[uniffi::export(Display)]
pub struct Session {
    /// The session's id (for `revoke_session`).
    pub id: String,
    /// The device it was signed in on.
    pub device_id: String,
    /// Sign-in time, ms since the epoch.
    pub created_at_ms: i64,
    /// Last refresh, ms since the epoch (the sign-in time until the first).
    pub last_used_at_ms: i64,
    /// The client address of the sign-in, when known.
    pub ip_address: Option<String>,
    /// The user agent of the sign-in, when known.
    pub user_agent: Option<String>,
    /// Authentication assurance level: 1, or 2 after a second factor.
    pub aal: u8,
    /// Whether this is this client's own session.
    pub current: bool,
}

impl From<wire::Session> for Session {
    fn from(session: wire::Session) -> Session {
        Session {
            id: session.id,
            device_id: session.device_id,
            created_at_ms: session.created_at,
            last_used_at_ms: session.last_used_at,
            ip_address: session.ip_address,
            user_agent: session.user_agent,
            aal: session.aal,
            current: session.current,
        }
    }
}

impl std::fmt::Display for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

/// Why the server ended a session (PROTOCOL 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, uniffi::Enum)]
#[uniffi::export(Display)]
pub enum SessionEndReason {
    /// The session signed out.
    SignedOut,
    /// Another session of the user ended this one.
    Revoked,
    /// Another session ended every other one.
    RevokedByOtherSession,
    /// The user signed out everywhere (here or in another session), or an operator ended
    /// every session.
    SignedOutEverywhere,
    /// The password was changed in another session.
    PasswordChanged,
    /// The password was reset.
    PasswordReset,
    /// A copy of the refresh token was used (theft suspected).
    RefreshReused,
    /// A newer sign-in went past the number of sessions allowed.
    SessionLimit,
    /// Idle longer than the server allows, or older than its lifetime.
    Expired,
    /// The device was revoked.
    DeviceRevoked,
    /// An operator disabled the account.
    AccountDisabled,
    /// The account was deleted.
    AccountDeleted,
}

impl From<EndReason> for SessionEndReason {
    fn from(reason: EndReason) -> SessionEndReason {
        match reason {
            EndReason::SignedOut => SessionEndReason::SignedOut,
            EndReason::Revoked => SessionEndReason::Revoked,
            EndReason::RevokedByOtherSession => SessionEndReason::RevokedByOtherSession,
            EndReason::SignedOutEverywhere => SessionEndReason::SignedOutEverywhere,
            EndReason::PasswordChanged => SessionEndReason::PasswordChanged,
            EndReason::PasswordReset => SessionEndReason::PasswordReset,
            EndReason::RefreshReused => SessionEndReason::RefreshReused,
            EndReason::SessionLimit => SessionEndReason::SessionLimit,
            EndReason::Expired => SessionEndReason::Expired,
            EndReason::DeviceRevoked => SessionEndReason::DeviceRevoked,
            EndReason::AccountDisabled => SessionEndReason::AccountDisabled,
            EndReason::AccountDeleted => SessionEndReason::AccountDeleted,
        }
    }
}

impl std::fmt::Display for SessionEndReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_crosses_under_its_own_name() {
        for reason in EndReason::ALL {
            let crossed = SessionEndReason::from(reason);
            let wire_name: String = reason.as_str().split('_').map(capitalized).collect();
            assert_eq!(crossed.to_string(), wire_name, "{reason}");
        }
    }

    fn capitalized(word: &str) -> String {
        let mut chars = word.chars();
        chars
            .next()
            .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
            .unwrap_or_default()
    }

    #[test]
    fn a_session_prints_its_fields() {
        let session = Session::from(wire::Session {
            id: "s1".into(),
            device_id: "dev-1".into(),
            created_at: 1,
            last_used_at: 2,
            ip_address: Some("127.0.0.1".into()),
            user_agent: None,
            aal: 1,
            current: true,
        });
        assert_eq!(session.last_used_at_ms, 2);
        assert!(session.to_string().contains("current: true"));
    }
}
