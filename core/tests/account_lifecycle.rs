//! The sessions and account lifecycle API (PROTOCOL 8) against the real server kit on
//! loopback: listing and ending sessions, signing out everywhere, changing and resetting the
//! password, verifying the email, deleting the account, and sign-up metadata; with the
//! errors the client surfaces for each (a wrong current password, an invalid reset or
//! verification token, an unknown session) and none of them signing out.

mod support;

use holdfast_core::error::TransientCause;
use holdfast_core::{AuthClient, AuthError, AuthState, SignOutReason, SignUpOptions};
use holdfast_protocol::{Claims, EndReason, ErrorCode};
use serde_json::json;
use support::{Device, Fault, FaultProxy, PASSWORD, Server, clock, email, stored_record};

const NEW_PASSWORD: &str = "a brand new passphrase";

/// A client of `url` on a fresh device, initialized.
async fn client_on(device: &Device, url: &str) -> AuthClient {
    let client = device.client(url, &clock());
    client.initialize().await;
    client
}

fn session_of(client_token: &str) -> String {
    Claims::decode_unverified(client_token).unwrap().fam.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_are_listed_and_ended_one_by_one() {
    let server = Server::start().await;
    let (here, there) = (Device::new(), Device::new());
    let client = client_on(&here, &server.url()).await;
    let other = client_on(&there, &server.url()).await;
    let address = email("sessions");
    client.sign_up(&address, PASSWORD, None).await.unwrap();
    other.sign_in(&address, PASSWORD).await.unwrap();

    let sessions = client.sessions().await.unwrap();
    assert_eq!(sessions.len(), 2, "{sessions:?}");
    let own = session_of(&client.access_token().await.unwrap());
    let current: Vec<_> = sessions.iter().filter(|s| s.current).collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0].id, own);
    assert_eq!(current[0].device_id, client.device_id().await.unwrap());
    let theirs = session_of(&other.access_token().await.unwrap());
    assert!(sessions.iter().any(|s| s.id == theirs && !s.current));

    // An unknown id, or one that cannot be a path segment: refused, nothing ends.
    assert!(matches!(
        client.revoke_session("no-such-session").await,
        Err(AuthError::Refused {
            code: ErrorCode::NotFound,
            ..
        })
    ));
    assert!(matches!(
        client.revoke_session("..").await,
        Err(AuthError::InvalidInput { .. })
    ));
    assert!(client.state().is_signed_in());

    client.revoke_session(&theirs).await.unwrap();
    let left = client.sessions().await.unwrap();
    assert_eq!(
        left.iter().map(|s| s.id.clone()).collect::<Vec<_>>(),
        vec![own.clone()]
    );

    // Ending its own session signs this client out, as the server recorded it.
    client.revoke_session(&own).await.unwrap();
    assert_eq!(
        client.state(),
        AuthState::SignedOut {
            reason: SignOutReason::SessionEnded {
                reason: EndReason::Revoked
            }
        }
    );
    assert_eq!(client.access_token().await, Err(AuthError::NotSignedIn));
}

#[tokio::test(flavor = "multi_thread")]
async fn revoke_others_keeps_this_session_and_sign_out_everywhere_ends_it_too() {
    let server = Server::start().await;
    let devices = [Device::new(), Device::new(), Device::new()];
    let address = email("everywhere");
    let mut clients = Vec::new();
    for (i, device) in devices.iter().enumerate() {
        let client = client_on(device, &server.url()).await;
        if i == 0 {
            client.sign_up(&address, PASSWORD, None).await.unwrap();
        } else {
            client.sign_in(&address, PASSWORD).await.unwrap();
        }
        clients.push(client);
    }
    assert_eq!(clients[0].revoke_other_sessions().await.unwrap(), 2);
    assert_eq!(clients[0].sessions().await.unwrap().len(), 1);
    clients[0].refresh().await.expect("this session lives on");

    clients[1].sign_in(&address, PASSWORD).await.unwrap();
    let device_id = clients[0].device_id().await.unwrap();
    assert_eq!(clients[0].sign_out_everywhere().await.unwrap(), 2);
    assert_eq!(
        clients[0].state(),
        AuthState::SignedOut {
            reason: SignOutReason::SessionEnded {
                reason: EndReason::SignedOutEverywhere
            }
        }
    );
    // The session's secrets are wiped, the device key is kept.
    let restarted = devices[0].client(&server.url(), &clock());
    assert_eq!(
        restarted.initialize().await,
        AuthState::SignedOut {
            reason: SignOutReason::NoStoredSession
        }
    );
    assert_eq!(restarted.device_id().await.unwrap(), device_id);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_password_change_renews_this_session_on_disk() {
    let server = Server::start().await;
    let proxy = FaultProxy::start(server.addr).await;
    let device = Device::new();
    let client = client_on(&device, &proxy.url()).await;
    let address = email("change");
    let user = client.sign_up(&address, PASSWORD, None).await.unwrap();
    let before = client.access_token().await.unwrap();
    let (blob, version) = stored_record(&device.path(), "session").unwrap();

    // Refused or unsent changes leave the session exactly as it was, and signed in.
    assert_eq!(
        client.change_password("not the password", NEW_PASSWORD).await,
        Err(AuthError::InvalidCredentials)
    );
    assert!(matches!(
        client.change_password(PASSWORD, "short").await,
        Err(AuthError::InvalidInput { .. })
    ));
    proxy.set(Fault::Drop);
    assert!(matches!(
        client.change_password(PASSWORD, NEW_PASSWORD).await,
        Err(AuthError::Transient {
            cause: TransientCause::Network(_)
        })
    ));
    proxy.set(Fault::Pass);
    assert_eq!(stored_record(&device.path(), "session"), Some((blob, version)));
    assert!(client.state().is_signed_in());

    client.change_password(PASSWORD, NEW_PASSWORD).await.unwrap();
    let after = client.access_token().await.unwrap();
    assert_ne!(after, before, "a fresh pair");
    assert_eq!(session_of(&after), session_of(&before), "the same session");
    assert_eq!(client.current_user().map(|u| u.id), Some(user.id.clone()));
    let (_, renewed) = stored_record(&device.path(), "session").unwrap();
    assert!(renewed > version, "the new pair is on disk");
    // A restart (another process) reads the new pair, and it refreshes.
    let restarted = device.client(&proxy.url(), &clock());
    restarted.initialize().await;
    assert_eq!(restarted.access_token().await.unwrap(), after);
    restarted.refresh().await.unwrap();

    // The new password signs in; the old one no longer does.
    let elsewhere = Device::new();
    let other = client_on(&elsewhere, &server.url()).await;
    assert_eq!(
        other.sign_in(&address, PASSWORD).await,
        Err(AuthError::InvalidCredentials)
    );
    assert_eq!(
        other.sign_in(&address, NEW_PASSWORD).await.unwrap().user().id,
        user.id
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_password_is_reset_with_the_mailed_token_once() {
    let server = Server::start().await;
    let device = Device::new();
    let client = client_on(&device, &server.url()).await;
    let address = email("reset");
    let user = client.sign_up(&address, PASSWORD, None).await.unwrap();
    client.sign_out().await.unwrap();

    // Development mode: the token comes back; an unknown address gets the same answer.
    let token = client
        .request_password_reset(&address.to_uppercase())
        .await
        .unwrap()
        .expect("a server without a mailer answers the token");
    assert_eq!(client.request_password_reset(&email("nobody")).await, Ok(None));
    assert!(matches!(
        client.request_password_reset("not an email").await,
        Err(AuthError::InvalidInput { .. })
    ));

    assert!(matches!(
        client.reset_password("not-a-reset-token", NEW_PASSWORD).await,
        Err(AuthError::Refused {
            code: ErrorCode::ResetTokenInvalid,
            ..
        })
    ));
    assert!(matches!(
        client.reset_password(&token, "short").await,
        Err(AuthError::InvalidInput { .. })
    ));
    client.reset_password(&token, NEW_PASSWORD).await.unwrap();
    assert!(matches!(
        client.reset_password(&token, "yet another passphrase").await,
        Err(AuthError::Refused {
            code: ErrorCode::ResetTokenInvalid,
            ..
        })
    ));
    assert_eq!(
        client.sign_in(&address, PASSWORD).await,
        Err(AuthError::InvalidCredentials)
    );
    assert_eq!(
        client.sign_in(&address, NEW_PASSWORD).await.unwrap().user().id,
        user.id
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_email_is_verified_and_the_stored_user_follows() {
    let server = Server::start().await;
    let device = Device::new();
    let client = client_on(&device, &server.url()).await;
    let address = email("verify");
    let user = client.sign_up(&address, PASSWORD, None).await.unwrap();
    assert!(!user.email_verified);

    let first = client.send_verification(None).await.unwrap().expect("a token");
    let second = client
        .send_verification(Some(&address))
        .await
        .unwrap()
        .expect("a token");
    let third = client.resend_verification().await.unwrap().expect("a token");
    assert_ne!(first, second);
    assert_ne!(second, third);
    assert!(matches!(
        client.send_verification(Some(&email("someone-else"))).await,
        Err(AuthError::InvalidInput { .. })
    ));
    assert!(matches!(
        client.confirm_email("not-a-verification-token").await,
        Err(AuthError::Refused {
            code: ErrorCode::VerifyTokenInvalid,
            ..
        })
    ));

    let verified = client.confirm_email(&second).await.unwrap();
    assert_eq!(verified.id, user.id);
    assert!(verified.email_verified);
    assert!(client.current_user().unwrap().email_verified);
    assert!(matches!(
        client.state(),
        AuthState::SignedIn { user, .. } if user.email_verified
    ));
    assert!(matches!(
        client.confirm_email(&second).await,
        Err(AuthError::Refused {
            code: ErrorCode::VerifyTokenInvalid,
            ..
        })
    ));
    // Verified: nothing more is sent.
    assert_eq!(client.resend_verification().await, Ok(None));
    // The stored copy was updated (a restart reads it), and refreshes keep it.
    client.refresh().await.unwrap();
    let restarted = device.client(&server.url(), &clock());
    restarted.initialize().await;
    assert!(restarted.current_user().unwrap().email_verified);

    // A link opened on a device that is not signed in works too.
    let elsewhere = Device::new();
    let other = client_on(&elsewhere, &server.url()).await;
    let address = email("verify-elsewhere");
    other.sign_up(&address, PASSWORD, None).await.unwrap();
    let token = other.send_verification(None).await.unwrap().unwrap();
    let anonymous = client_on(&Device::new(), &server.url()).await;
    assert!(anonymous.confirm_email(&token).await.unwrap().email_verified);
    assert_eq!(anonymous.current_user(), None);
}

#[tokio::test(flavor = "multi_thread")]
async fn deleting_the_account_needs_its_password_and_wipes_everything() {
    let server = Server::start().await;
    let device = Device::new();
    let client = client_on(&device, &server.url()).await;
    let address = email("delete");
    client.sign_up(&address, PASSWORD, None).await.unwrap();
    let device_id = client.device_id().await.unwrap();

    assert_eq!(
        client.delete_account("not the password").await,
        Err(AuthError::InvalidCredentials)
    );
    assert!(matches!(
        client.delete_account("").await,
        Err(AuthError::InvalidInput { .. })
    ));
    assert!(client.state().is_signed_in());

    client.delete_account(PASSWORD).await.unwrap();
    assert_eq!(
        client.state(),
        AuthState::SignedOut {
            reason: SignOutReason::AccountDeleted
        }
    );
    let restarted = device.client(&server.url(), &clock());
    assert_eq!(
        restarted.initialize().await,
        AuthState::SignedOut {
            reason: SignOutReason::NoStoredSession
        }
    );
    assert_ne!(restarted.device_id().await.unwrap(), device_id, "a new identity");
    assert_eq!(
        restarted.sign_in(&address, PASSWORD).await,
        Err(AuthError::InvalidCredentials)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_up_carries_the_applications_metadata() {
    let server = Server::start().await;
    let device = Device::new();
    let client = client_on(&device, &server.url()).await;
    let metadata = json!({"plan": "pro", "referrer": {"campaign": "spring"}});
    let options = SignUpOptions {
        name: Some("Ada".into()),
        metadata: Some(metadata.clone()),
    };
    let user = client
        .sign_up_with(&email("metadata"), PASSWORD, options)
        .await
        .unwrap();
    assert_eq!(user.name.as_deref(), Some("Ada"));
    assert_eq!(user.metadata, Some(metadata.clone()));
    let restarted = device.client(&server.url(), &clock());
    restarted.initialize().await;
    assert_eq!(restarted.current_user().unwrap().metadata, Some(metadata));

    // Refused before anything is sent: not an object, or too large.
    for metadata in [json!(["a list"]), json!({"big": "x".repeat(5000)})] {
        let options = SignUpOptions {
            name: None,
            metadata: Some(metadata),
        };
        assert!(matches!(
            client
                .sign_up_with(&email("bad-metadata"), PASSWORD, options)
                .await,
            Err(AuthError::InvalidInput { .. })
        ));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn offline_no_session_or_account_call_signs_out() {
    let server = Server::start().await;
    let proxy = FaultProxy::start(server.addr).await;
    let device = Device::new();
    let client = client_on(&device, &proxy.url()).await;
    client.sign_up(&email("offline"), PASSWORD, None).await.unwrap();
    let stored = stored_record(&device.path(), "session");

    proxy.set(Fault::Drop);
    let offline = |result: Result<(), AuthError>| {
        assert!(matches!(result, Err(AuthError::Transient { .. })), "{result:?}")
    };
    offline(client.sessions().await.map(|_| ()));
    offline(client.revoke_other_sessions().await.map(|_| ()));
    offline(client.sign_out_everywhere().await.map(|_| ()));
    offline(client.delete_account(PASSWORD).await);
    offline(client.send_verification(None).await.map(|_| ()));
    offline(client.request_password_reset("ada@example.com").await.map(|_| ()));
    offline(client.confirm_email("some-token").await.map(|_| ()));
    assert!(client.state().is_signed_in());
    assert_eq!(stored_record(&device.path(), "session"), stored);
    proxy.set(Fault::Pass);
    assert_eq!(client.sessions().await.unwrap().len(), 1);
}
