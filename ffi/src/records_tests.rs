//! Unit tests of `records.rs`.

use super::*;
use holdfast_protocol::ErrorCode;

fn wire_user() -> wire::User {
    wire::User {
        id: "u1".into(),
        email: "ada@example.com".into(),
        name: Some("Ada".into()),
        email_verified: true,
        created_at: 1_700_000_000_000,
        metadata: None,
    }
}

#[test]
fn request_headers_print_no_secret_and_refusals_convert() {
    let headers = RequestHeaders::from(core::RequestHeaders {
        authorization: "DPoP secret-token".into(),
        dpop: Some("secret-proof".into()),
    });
    assert_eq!(headers.authorization, "DPoP secret-token");
    for printed in [format!("{headers:?}"), headers.to_string()] {
        assert!(!printed.contains("secret"), "{printed}");
        assert!(printed.contains("<redacted>"), "{printed}");
    }
    assert_eq!(
        core::SyncRefusal::from(SyncRefusal::Close {
            code: 4401,
            reason: "PROOF_INVALID".into()
        }),
        core::SyncRefusal::Close {
            code: 4401,
            reason: "PROOF_INVALID".into()
        }
    );
    assert_eq!(
        core::SyncRefusal::from(SyncRefusal::Http {
            status: 403,
            code: None
        }),
        core::SyncRefusal::Http {
            status: 403,
            code: None
        }
    );
}

#[test]
fn a_signed_in_state_carries_the_user_and_freshness() {
    let state = AuthState::from(core::AuthState::SignedIn {
        user: wire_user(),
        token_fresh: false,
    });
    let AuthState::SignedIn { user, token_fresh } = state else {
        panic!("expected SignedIn, got {state:?}");
    };
    assert!(!token_fresh);
    assert_eq!(user.email, "ada@example.com");
    assert_eq!(user.name.as_deref(), Some("Ada"));
    assert_eq!(user.created_at_ms, 1_700_000_000_000);
}

#[test]
fn sign_out_reasons_and_unavailable_keep_their_meaning() {
    assert_eq!(
        AuthState::from(core::AuthState::SignedOut {
            reason: core::SignOutReason::SessionRejected {
                code: ErrorCode::DeviceNotFound
            }
        }),
        AuthState::SignedOut {
            reason: SignOutReason::SessionRejected {
                code: "DEVICE_NOT_FOUND".into()
            }
        }
    );
    assert_eq!(
        AuthState::from(core::AuthState::Unavailable {
            reason: "keychain locked".into()
        }),
        AuthState::Unavailable {
            reason: "keychain locked".into()
        }
    );
    assert_eq!(AuthState::from(core::AuthState::Restoring), AuthState::Restoring);
    assert_eq!(
        SignOutReason::from(core::SignOutReason::SessionEnded {
            reason: holdfast_protocol::EndReason::PasswordChanged
        }),
        SignOutReason::SessionEnded {
            reason: SessionEndReason::PasswordChanged
        }
    );
    assert_eq!(
        SignOutReason::from(core::SignOutReason::AccountDisabled),
        SignOutReason::AccountDisabled
    );
    assert_eq!(
        AuthState::SignedOut {
            reason: SignOutReason::SessionEnded {
                reason: SessionEndReason::Revoked
            }
        }
        .to_string(),
        "SignedOut { reason: SessionEnded { reason: Revoked } }"
    );
}

#[test]
fn a_users_metadata_crosses_as_json_text() {
    let user = User::from(wire::User {
        metadata: Some(serde_json::json!({"plan": "pro"})),
        ..wire_user()
    });
    assert_eq!(user.metadata_json.as_deref(), Some(r#"{"plan":"pro"}"#));
    assert_eq!(User::from(wire_user()).metadata_json, None);
}

#[test]
fn events_convert_with_their_details() {
    assert_eq!(
        AuthEvent::from(&core::AuthEvent::RefreshFailed {
            cause: TransientCause::ServerError { status: 503 }
        }),
        AuthEvent::RefreshFailed {
            message: "the server failed (HTTP 503)".into(),
            retry_after_secs: None
        }
    );
    assert_eq!(
        AuthEvent::from(&core::AuthEvent::ClockSkew { offset_ms: -90_000 }),
        AuthEvent::ClockSkew { offset_ms: -90_000 }
    );
    assert_eq!(
        AuthEvent::from(&core::AuthEvent::StateChanged(core::AuthState::SignedOut {
            reason: core::SignOutReason::UserSignedOut
        })),
        AuthEvent::StateChanged {
            state: AuthState::SignedOut {
                reason: SignOutReason::UserSignedOut
            }
        }
    );
}
