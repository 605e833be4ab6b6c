//! The client session against the real server kit on loopback, with faults injected by a
//! proxy the test owns: single-flight refresh, offline start, transient failures, device
//! re-login, revocation, cancellation, sign-out while offline, and late refresh answers,
//! which never bring back a session ended meanwhile (here or elsewhere).

mod support;

use std::sync::Arc;
use std::time::Duration;

use holdfast_core::error::TransientCause;
use holdfast_core::{AuthError, AuthEvent, AuthState, SignOutReason};
use holdfast_protocol::{EndReason, ErrorCode};
use support::{Device, Events, Fault, FaultProxy, PAST_ACCESS_EXPIRY_MS, Server, clock, email};

const REFRESH: &str = "/auth/refresh";

/// Whether a transient cause is the one a fault should produce.
type CauseCheck = fn(&TransientCause) -> bool;

#[tokio::test(flavor = "multi_thread")]
async fn a_thousand_concurrent_callers_cause_exactly_one_refresh() {
    // A really expired token (two-second lifetime, real time): moving only the client's
    // clock would be corrected by the server's `Date` header, which then says the old
    // token is still good.
    let server = Server::start_with(|config| config.access_ttl_secs = 2).await;
    let proxy = FaultProxy::start(server.addr).await;
    let device = Device::new();
    let clock = holdfast_core::clock::SystemClock;
    let client = device.client_with_clock(&proxy.url(), Arc::new(clock));
    assert_eq!(
        client.initialize().await,
        AuthState::SignedOut {
            reason: SignOutReason::NoStoredSession
        }
    );
    client
        .sign_up(&email("flight"), support::PASSWORD, Some("Ada"))
        .await
        .unwrap();
    let first = client.access_token().await.unwrap();
    assert_eq!(client.fresh_access_token().as_deref(), Some(first.as_str()));
    let expires_ms = holdfast_protocol::Claims::decode_unverified(&first).unwrap().exp * 1000;
    let wait = expires_ms - holdfast_core::clock::Clock::now_ms(&clock) + 50;
    tokio::time::sleep(Duration::from_millis(u64::try_from(wait.max(0)).unwrap())).await;

    let mut callers = Vec::new();
    for _ in 0..1000 {
        let client = client.clone();
        callers.push(tokio::spawn(async move { client.access_token().await }));
    }
    let mut tokens = std::collections::HashSet::new();
    for caller in callers {
        tokens.insert(caller.await.unwrap().unwrap());
    }
    assert_eq!(proxy.count(REFRESH), 1, "exactly one refresh request");
    assert_eq!(tokens.len(), 1, "every caller got the same new token");
    assert!(!tokens.contains(&first));
    assert!(client.state().is_signed_in());
}

#[tokio::test(flavor = "multi_thread")]
async fn offline_start_with_an_expired_token_stays_signed_in_until_the_server_returns() {
    let server = Server::start().await;
    let proxy = FaultProxy::start(server.addr).await;
    let device = Device::new();
    let clock = clock();
    let first = device.client(&proxy.url(), &clock);
    first.initialize().await;
    let user = first
        .sign_up(&email("offline"), support::PASSWORD, None)
        .await
        .unwrap();
    drop(first);

    // The app restarts with the server unreachable and the token expired.
    proxy.set(Fault::Drop);
    clock.advance_ms(PAST_ACCESS_EXPIRY_MS);
    let client = device.client(&proxy.url(), &clock);
    assert_eq!(
        client.initialize().await,
        AuthState::SignedIn {
            user: user.clone(),
            token_fresh: false
        }
    );
    assert_eq!(client.fresh_access_token(), None, "a stale token is no fresh one");
    match client.access_token().await {
        Err(AuthError::Transient {
            cause: TransientCause::Network(_),
        }) => {}
        other => panic!("expected a network error, got {other:?}"),
    }
    assert_eq!(
        client.state(),
        AuthState::SignedIn {
            user: user.clone(),
            token_fresh: false
        }
    );

    // The server is back: the next call refreshes.
    proxy.set(Fault::Pass);
    client.access_token().await.unwrap();
    assert_eq!(
        client.state(),
        AuthState::SignedIn {
            user,
            token_fresh: true
        }
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn transient_failures_during_refresh_keep_the_session_and_say_why() {
    let server = Server::start().await;
    let proxy = FaultProxy::start(server.addr).await;
    let device = Device::new();
    let clock = clock();
    let client = device.client(&proxy.url(), &clock);
    client.initialize().await;
    client
        .sign_up(&email("faults"), support::PASSWORD, None)
        .await
        .unwrap();
    let events = Events::record(&client);
    clock.advance_ms(PAST_ACCESS_EXPIRY_MS);

    let cases: [(Fault, CauseCheck); 6] = [
        (Fault::Reset, |c| matches!(c, TransientCause::Network(_))),
        (Fault::Drop, |c| matches!(c, TransientCause::Network(_))),
        (Fault::Stall, |c| matches!(c, TransientCause::Timeout)),
        (Fault::Unavailable, |c| {
            // The proxy's 503 says Retry-After: 1 (PROTOCOL 6.3), which the client reports.
            matches!(c, TransientCause::Unavailable { retry_after_secs: 1 })
        }),
        (Fault::RateLimited, |c| {
            matches!(
                c,
                TransientCause::RateLimited {
                    retry_after_secs: Some(2)
                }
            )
        }),
        (Fault::CaptivePortal, |c| {
            matches!(c, TransientCause::NotTheServer { status: 200 })
        }),
    ];
    for (fault, expected) in cases {
        proxy.set(fault);
        match client.access_token().await {
            Err(AuthError::Transient { cause }) => assert!(expected(&cause), "{fault:?} gave {cause:?}"),
            other => panic!("{fault:?}: expected a transient error, got {other:?}"),
        }
        assert!(client.state().is_signed_in(), "{fault:?} must not sign out");
        let last = events
            .all()
            .into_iter()
            .rev()
            .find(|e| matches!(e, AuthEvent::RefreshFailed { .. }));
        match last {
            Some(AuthEvent::RefreshFailed { cause }) => {
                assert!(expected(&cause), "{fault:?} event {cause:?}")
            }
            other => panic!("{fault:?}: no RefreshFailed event ({other:?})"),
        }
    }
    assert_eq!(events.count(|e| matches!(e, AuthEvent::RefreshFailed { .. })), 6);
    proxy.set(Fault::Pass);
    client.access_token().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rejected_refresh_token_ends_in_a_silent_device_relogin() {
    let server = Server::start().await;
    let device = Device::new();
    let clock = clock();
    let client = device.client(&server.url(), &clock);
    client.initialize().await;
    let user = client
        .sign_up(&email("relogin"), support::PASSWORD, None)
        .await
        .unwrap();
    // An admin (or reuse elsewhere) ends every session of the user on the server.
    let token = client.access_token().await.unwrap();
    let family = holdfast_protocol::Claims::decode_unverified(&token)
        .unwrap()
        .fam
        .unwrap();
    server
        .stores
        .tokens
        .revoke_family(&family, i64::MAX / 2)
        .await
        .unwrap();

    clock.advance_ms(PAST_ACCESS_EXPIRY_MS);
    let fresh = client.access_token().await.unwrap();
    let claims = holdfast_protocol::Claims::decode_unverified(&fresh).unwrap();
    assert_ne!(
        claims.fam.as_deref(),
        Some(family.as_str()),
        "a new session family"
    );
    assert_eq!(claims.cnf.unwrap().jkt, client.device_thumbprint().await.unwrap());
    assert_eq!(
        client.state(),
        AuthState::SignedIn {
            user,
            token_fresh: true
        }
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_revoked_device_signs_out_and_wipes_its_secrets() {
    let server = Server::start().await;
    let device = Device::new();
    let clock = clock();
    let client = device.client(&server.url(), &clock);
    client.initialize().await;
    let user = client
        .sign_up(&email("revoked"), support::PASSWORD, None)
        .await
        .unwrap();
    let device_id = client.device_id().await.unwrap();
    assert!(
        server
            .stores
            .devices
            .revoke_device(&device_id, &user.id)
            .await
            .unwrap()
    );

    clock.advance_ms(PAST_ACCESS_EXPIRY_MS);
    assert_eq!(
        client.access_token().await,
        Err(AuthError::SignInRequired {
            code: ErrorCode::DeviceRevoked
        })
    );
    assert_eq!(
        client.state(),
        AuthState::SignedOut {
            reason: SignOutReason::DeviceRevoked
        }
    );
    // A restart finds nothing: the session and the device key are gone.
    let restarted = device.client(&server.url(), &clock);
    assert_eq!(
        restarted.initialize().await,
        AuthState::SignedOut {
            reason: SignOutReason::NoStoredSession
        }
    );
    assert_ne!(restarted.device_id().await.unwrap(), device_id, "a new identity");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cancelled_caller_does_not_abort_the_refresh() {
    let server = Server::start().await;
    let proxy = FaultProxy::start(server.addr).await;
    let device = Device::new();
    let clock = clock();
    let client = device.client(&proxy.url(), &clock);
    client.initialize().await;
    client
        .sign_up(&email("cancel"), support::PASSWORD, None)
        .await
        .unwrap();
    let events = Events::record(&client);
    clock.advance_ms(PAST_ACCESS_EXPIRY_MS);

    // The caller gives up almost at once, while the refresh is in flight.
    let cancelled = tokio::time::timeout(Duration::from_micros(50), client.access_token()).await;
    assert!(cancelled.is_err(), "the caller was cancelled");
    for _ in 0..200 {
        if events.count(|e| *e == AuthEvent::Refreshed) == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        events.count(|e| *e == AuthEvent::Refreshed),
        1,
        "the refresh finished anyway"
    );
    // The next caller uses the persisted pair: no second refresh. (The refresh itself may
    // have taken two requests: the test moved the client's clock 16 minutes on, which the
    // server, on real time, sees as skew, so the first proof is refused and made again.)
    let refreshes = proxy.count(REFRESH);
    assert!((1..=2).contains(&refreshes), "{refreshes}");
    client.access_token().await.unwrap();
    assert_eq!(proxy.count(REFRESH), refreshes);
    // And a restart (a new process) finds the rotated pair in the store.
    let restarted = device.client(&proxy.url(), &clock);
    assert!(matches!(
        restarted.initialize().await,
        AuthState::SignedIn {
            token_fresh: true,
            ..
        }
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_out_offline_wipes_at_once_and_revokes_when_the_network_is_back() {
    let server = Server::start().await;
    let proxy = FaultProxy::start(server.addr).await;
    let device = Device::new();
    let clock = clock();
    let client = device.client(&proxy.url(), &clock);
    client.initialize().await;
    client
        .sign_up(&email("signout"), support::PASSWORD, None)
        .await
        .unwrap();
    let access = client.access_token().await.unwrap();

    proxy.set(Fault::Drop);
    client.sign_out().await.unwrap();
    assert_eq!(
        client.state(),
        AuthState::SignedOut {
            reason: SignOutReason::UserSignedOut
        }
    );
    assert_eq!(client.access_token().await, Err(AuthError::NotSignedIn));
    let restarted = device.client(&proxy.url(), &clock);
    assert_eq!(
        restarted.initialize().await,
        AuthState::SignedOut {
            reason: SignOutReason::NoStoredSession
        }
    );
    // The server has not heard yet: the session is live there.
    let claims = holdfast_protocol::Claims::decode_unverified(&access).unwrap();
    let family = claims.fam.clone();
    assert!(
        !server
            .stores
            .tokens
            .is_revoked(&claims.jti, family.as_deref())
            .await
            .unwrap()
    );

    proxy.set(Fault::Pass);
    assert_eq!(restarted.flush_outbox().await.unwrap(), 0);
    assert!(
        server
            .stores
            .tokens
            .is_revoked(&claims.jti, family.as_deref())
            .await
            .unwrap()
    );
}

/// Starts a forced refresh that the server performs at once but whose answer the proxy
/// holds for 400 ms, and returns once the server has it (the proxy passes later calls).
async fn refresh_with_a_late_answer(
    client: &holdfast_core::AuthClient,
    proxy: &FaultProxy,
) -> tokio::task::JoinHandle<Result<String, AuthError>> {
    proxy.set(Fault::HoldAnswers(Duration::from_millis(400)));
    let refreshing = {
        let client = client.clone();
        tokio::spawn(async move { client.refresh().await })
    };
    for _ in 0..200 {
        if proxy.count(REFRESH) == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(proxy.count(REFRESH), 1, "the refresh is on its way");
    proxy.set(Fault::Pass);
    refreshing
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refresh_answered_after_a_sign_out_does_not_bring_the_session_back() {
    let server = Server::start().await;
    let proxy = FaultProxy::start(server.addr).await;
    let device = Device::new();
    let clock = clock();
    let client = device.client(&proxy.url(), &clock);
    client.initialize().await;
    client
        .sign_up(&email("late-refresh"), support::PASSWORD, None)
        .await
        .unwrap();
    let events = Events::record(&client);

    // The server rotates at once, but its answer reaches the client 400 ms later; the
    // user signs out in between.
    let refreshing = refresh_with_a_late_answer(&client, &proxy).await;
    client.sign_out().await.unwrap();

    assert_eq!(refreshing.await.unwrap(), Err(AuthError::NotSignedIn));
    let signed_out = AuthState::SignedOut {
        reason: SignOutReason::UserSignedOut,
    };
    assert_eq!(client.state(), signed_out);
    assert_eq!(client.access_token().await, Err(AuthError::NotSignedIn));
    assert_eq!(events.count(|e| *e == AuthEvent::Refreshed), 0);
    // Nothing was written back: a restart finds no session.
    let restarted = device.client(&proxy.url(), &clock);
    assert_eq!(
        restarted.initialize().await,
        AuthState::SignedOut {
            reason: SignOutReason::NoStoredSession
        }
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refresh_answered_after_another_sign_in_keeps_the_new_session() {
    let server = Server::start().await;
    let proxy = FaultProxy::start(server.addr).await;
    let device = Device::new();
    let clock = clock();
    let client = device.client(&proxy.url(), &clock);
    client.initialize().await;
    client
        .sign_up(&email("first-user"), support::PASSWORD, None)
        .await
        .unwrap();
    let second = email("second-user");
    {
        let elsewhere = Device::new();
        let other = elsewhere.client(&server.url(), &clock);
        other.initialize().await;
        other.sign_up(&second, support::PASSWORD, None).await.unwrap();
    }

    let refreshing = refresh_with_a_late_answer(&client, &proxy).await;
    client.sign_out().await.unwrap();
    let user = client
        .sign_in(&second, support::PASSWORD)
        .await
        .unwrap()
        .into_user();

    // The late pair is the first user's: the second user's session stays, in memory and
    // in the store, and the refresh's caller gets the session that is current.
    let token = refreshing.await.unwrap().unwrap();
    let claims = holdfast_protocol::Claims::decode_unverified(&token).unwrap();
    assert_eq!(claims.sub, user.id);
    assert_eq!(client.current_user().map(|u| u.id), Some(user.id.clone()));
    let restarted = device.client(&proxy.url(), &clock);
    assert!(matches!(
        restarted.initialize().await,
        AuthState::SignedIn { user: stored, .. } if stored.id == user.id
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refresh_answered_after_signing_out_everywhere_or_deleting_the_account_keeps_the_reason() {
    for deletes in [false, true] {
        let server = Server::start().await;
        let proxy = FaultProxy::start(server.addr).await;
        let device = Device::new();
        let clock = clock();
        let client = device.client(&proxy.url(), &clock);
        client.initialize().await;
        client
            .sign_up(&email("late-everywhere"), support::PASSWORD, None)
            .await
            .unwrap();
        let events = Events::record(&client);

        // The server rotates, but its answer arrives after the user ended everything here.
        let refreshing = refresh_with_a_late_answer(&client, &proxy).await;
        let reason = if deletes {
            client.delete_account(support::PASSWORD).await.unwrap();
            SignOutReason::AccountDeleted
        } else {
            client.sign_out_everywhere().await.unwrap();
            SignOutReason::SessionEnded {
                reason: EndReason::SignedOutEverywhere,
            }
        };

        assert_eq!(refreshing.await.unwrap(), Err(AuthError::NotSignedIn));
        // Neither back in, nor signed out for another reason than the one given here.
        assert_eq!(client.state(), AuthState::SignedOut { reason });
        assert_eq!(client.access_token().await, Err(AuthError::NotSignedIn));
        assert_eq!(events.count(|e| *e == AuthEvent::Refreshed), 0);
        let restarted = device.client(&proxy.url(), &clock);
        assert_eq!(
            restarted.initialize().await,
            AuthState::SignedOut {
                reason: SignOutReason::NoStoredSession
            }
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refresh_in_flight_while_the_session_is_ended_elsewhere_cannot_bring_it_back() {
    let server = Server::start().await;
    let proxy = FaultProxy::start(server.addr).await;
    let clock = clock();
    let (device, elsewhere) = (Device::new(), Device::new());
    let client = device.client(&proxy.url(), &clock);
    client.initialize().await;
    let address = email("late-ended");
    client.sign_up(&address, support::PASSWORD, None).await.unwrap();
    let other = elsewhere.client(&server.url(), &clock);
    other.initialize().await;
    other.sign_in(&address, support::PASSWORD).await.unwrap();

    // The server rotates this client's pair; before the answer arrives, another session
    // ends this one. The late pair is adopted (the server issued it), but it is dead.
    let refreshing = refresh_with_a_late_answer(&client, &proxy).await;
    let own = other
        .sessions()
        .await
        .unwrap()
        .into_iter()
        .find(|session| !session.current)
        .expect("this client's session")
        .id;
    other.revoke_session(&own).await.unwrap();
    refreshing.await.unwrap().expect("the late pair is adopted");
    assert!(matches!(
        client.list_devices().await,
        Err(AuthError::SignInRequired {
            code: ErrorCode::TokenRevoked
        })
    ));

    // Its next refresh learns why, and signs out without a device re-login.
    assert_eq!(
        client.refresh().await,
        Err(AuthError::SignInRequired {
            code: ErrorCode::TokenRevoked
        })
    );
    assert_eq!(proxy.count("/auth/device/challenge"), 0);
    assert_eq!(
        client.state(),
        AuthState::SignedOut {
            reason: SignOutReason::SessionEnded {
                reason: EndReason::Revoked
            }
        }
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_password_change_waits_for_a_refresh_in_flight_and_renews_after_it() {
    let server = Server::start().await;
    let proxy = FaultProxy::start(server.addr).await;
    let device = Device::new();
    let clock = clock();
    let client = device.client(&proxy.url(), &clock);
    client.initialize().await;
    let address = email("late-change");
    client.sign_up(&address, support::PASSWORD, None).await.unwrap();

    // The password change starts while a rotation's answer is on its way: it waits for the
    // refresh to persist its pair, then renews over it. Neither pair is lost, and no copy
    // of a spent refresh token is kept.
    let refreshing = refresh_with_a_late_answer(&client, &proxy).await;
    let changing = {
        let client = client.clone();
        tokio::spawn(async move {
            client
                .change_password(support::PASSWORD, "a new passphrase")
                .await
        })
    };
    let rotated = refreshing.await.unwrap().unwrap();
    changing.await.unwrap().unwrap();
    let renewed = client.access_token().await.unwrap();
    assert_ne!(renewed, rotated, "the change's pair came last");
    assert_eq!(proxy.count(REFRESH), 1);
    // The stored pair is the change's, and it refreshes (a spent token would be reuse).
    let restarted = device.client(&proxy.url(), &clock);
    restarted.initialize().await;
    assert_eq!(restarted.access_token().await.unwrap(), renewed);
    restarted.refresh().await.unwrap();
    assert!(restarted.state().is_signed_in());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refusal_answered_after_another_sign_in_does_not_end_the_new_session() {
    let server = Server::start().await;
    let proxy = FaultProxy::start(server.addr).await;
    let clock = clock();
    let (device, elsewhere) = (Device::new(), Device::new());
    let client = device.client(&proxy.url(), &clock);
    client.initialize().await;
    let first = email("late-refusal");
    client.sign_up(&first, support::PASSWORD, None).await.unwrap();
    let second = email("late-refusal-next");
    let other = elsewhere.client(&server.url(), &clock);
    other.initialize().await;
    other.sign_up(&second, support::PASSWORD, None).await.unwrap();
    other.sign_out().await.unwrap();
    // The first user's session is ended elsewhere: its refresh will be refused, with why.
    other.sign_in(&first, support::PASSWORD).await.unwrap();
    other.sign_out_everywhere().await.unwrap();

    // The refusal reaches the client after it signed out and in as someone else: it is a
    // verdict on the old session, and the new one stays, in memory and in the store.
    let refreshing = refresh_with_a_late_answer(&client, &proxy).await;
    client.sign_out().await.unwrap();
    let user = client
        .sign_in(&second, support::PASSWORD)
        .await
        .unwrap()
        .into_user();
    let token = refreshing.await.unwrap().expect("the session that is current");
    let claims = holdfast_protocol::Claims::decode_unverified(&token).unwrap();
    assert_eq!(claims.sub, user.id);
    assert!(matches!(client.state(), AuthState::SignedIn { user: current, .. } if current.id == user.id));
    let restarted = device.client(&proxy.url(), &clock);
    assert!(matches!(
        restarted.initialize().await,
        AuthState::SignedIn { user: stored, .. } if stored.id == user.id
    ));
}
