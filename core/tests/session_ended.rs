//! A session ended elsewhere (PROTOCOL 8) signs this client out at its next refresh, with
//! the server's reason, its secrets wiped (the device key too only for a revoked device or
//! a deleted account), and without a silent device re-login, which would bring back what
//! the user or an operator ended. Each way a session ends, against the real server kit on
//! loopback, through a proxy that counts the re-login requests; and a server that sends no
//! reason (Kora) still gets the re-login first.

mod support;

use holdfast_core::transport::{Failure, Transport, TransportConfig};
use holdfast_core::{AuthClient, AuthError, AuthEvent, AuthState, SignOutReason};
use holdfast_protocol::endpoint::{Refresh, SignIn};
use holdfast_protocol::wire::{RefreshRequest, SignInRequest};
use holdfast_protocol::{Claims, EndReason, ErrorCode};
use holdfast_server_kit::clock::ManualClock;
use support::proxy::with_body;
use support::{Device, Events, Fault, FaultProxy, PASSWORD, PAST_ACCESS_EXPIRY_MS, Server, email};

const REFRESH: &str = "/auth/refresh";
const CHALLENGE: &str = "/auth/device/challenge";

/// How the session of the client under test ends, from elsewhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// Another session of the user ends it by id (`DELETE /sessions/:id`).
    RevokedById,
    /// Another session ends every other one.
    RevokedByOthers,
    /// Another session signs out everywhere.
    SignedOutEverywhere,
    /// Another session changes the password.
    PasswordChanged,
    /// The password is reset with a mailed token.
    PasswordReset,
    /// An operator disables the account.
    AccountDisabled,
    /// Nobody refreshes it for longer than the server's idle timeout.
    IdleExpiry,
    /// Two newer sign-ins go past the server's maximum of two sessions.
    SessionLimit,
    /// Another session deletes the account.
    AccountDeleted,
    /// Another session revokes this device.
    DeviceRevoked,
}

impl Ending {
    /// What the client under test should say and answer.
    fn expected(self) -> (SignOutReason, ErrorCode) {
        let ended = |reason| (SignOutReason::SessionEnded { reason }, ErrorCode::TokenRevoked);
        match self {
            Ending::RevokedById => ended(EndReason::Revoked),
            Ending::RevokedByOthers => ended(EndReason::RevokedByOtherSession),
            Ending::SignedOutEverywhere => ended(EndReason::SignedOutEverywhere),
            Ending::PasswordChanged => ended(EndReason::PasswordChanged),
            Ending::PasswordReset => ended(EndReason::PasswordReset),
            Ending::SessionLimit => ended(EndReason::SessionLimit),
            Ending::IdleExpiry => (
                SignOutReason::SessionEnded {
                    reason: EndReason::Expired,
                },
                ErrorCode::SessionExpired,
            ),
            Ending::AccountDisabled => (SignOutReason::AccountDisabled, ErrorCode::AccountDisabled),
            Ending::AccountDeleted => (SignOutReason::AccountDeleted, ErrorCode::UserNotFound),
            Ending::DeviceRevoked => (SignOutReason::DeviceRevoked, ErrorCode::DeviceRevoked),
        }
    }
}

/// The client under test (through a counting proxy) and another session of the same user,
/// both on one manual clock. The server reads it too where the ending needs its time moved
/// (idle expiry, the least recently used session); elsewhere it runs on the real clock,
/// which its `Date` headers always tell, so device proofs the client dates by them pass.
struct Scene {
    server: Server,
    proxy: FaultProxy,
    clock: ManualClock,
    device: Device,
    client: AuthClient,
    other: AuthClient,
    _other_device: Device,
    address: String,
}

impl Scene {
    async fn start(label: &str, ending: Ending) -> Scene {
        let (server, clock) = match ending {
            Ending::IdleExpiry | Ending::SessionLimit => {
                let server = Server::start_clocked(|config| {
                    if ending == Ending::IdleExpiry {
                        config.sessions.idle_timeout_ms = Some(10 * 60_000);
                    } else {
                        config.sessions.max_per_user = Some(2);
                    }
                })
                .await;
                let clock = server.clock().clone();
                (server, clock)
            }
            _ => (Server::start().await, support::clock()),
        };
        let proxy = FaultProxy::start(server.addr).await;
        let device = Device::new();
        let client = device.client(&proxy.url(), &clock);
        client.initialize().await;
        let address = email(label);
        client.sign_up(&address, PASSWORD, None).await.unwrap();
        let other_device = Device::new();
        let other = other_device.client(&server.url(), &clock);
        other.initialize().await;
        // A second later: the least recently used session is the client's, unambiguously.
        clock.advance_ms(1_000);
        other.sign_in(&address, PASSWORD).await.unwrap();
        Scene {
            server,
            proxy,
            clock,
            device,
            client,
            other,
            _other_device: other_device,
            address,
        }
    }

    /// The client's session id (its token family).
    async fn session_id(&self) -> String {
        let token = self.client.access_token().await.unwrap();
        Claims::decode_unverified(&token).unwrap().fam.unwrap()
    }

    async fn end(&self, ending: Ending) {
        let other = &self.other;
        match ending {
            Ending::RevokedById => other.revoke_session(&self.session_id().await).await.unwrap(),
            Ending::RevokedByOthers => assert_eq!(other.revoke_other_sessions().await.unwrap(), 1),
            Ending::SignedOutEverywhere => assert_eq!(other.sign_out_everywhere().await.unwrap(), 2),
            Ending::PasswordChanged => other
                .change_password(PASSWORD, "a brand new passphrase")
                .await
                .unwrap(),
            Ending::PasswordReset => {
                let token = other
                    .request_password_reset(&self.address)
                    .await
                    .unwrap()
                    .unwrap();
                other
                    .reset_password(&token, "a brand new passphrase")
                    .await
                    .unwrap();
            }
            Ending::AccountDisabled => {
                let user = other.current_user().unwrap();
                assert!(self.server.service().disable_user(&user.id).await.unwrap());
            }
            Ending::IdleExpiry => {}
            Ending::SessionLimit => {
                self.clock.advance_ms(1_000);
                let third = Device::new();
                let newest = third.client(&self.server.url(), &self.clock);
                newest.initialize().await;
                newest.sign_in(&self.address, PASSWORD).await.unwrap();
            }
            Ending::AccountDeleted => other.delete_account(PASSWORD).await.unwrap(),
            Ending::DeviceRevoked => other
                .revoke_device(&self.client.device_id().await.unwrap())
                .await
                .unwrap(),
        }
    }
}

/// Ends the client's session as `ending` says, then checks that its next refresh signs it
/// out with the reason, wipes its secrets (its device key only when `ending` says so) and
/// makes no device re-login request.
async fn signs_out_at_the_next_refresh(label: &str, ending: Ending) {
    let scene = Scene::start(label, ending).await;
    let device_id = scene.client.device_id().await.unwrap();
    scene.end(ending).await;
    let events = Events::record(&scene.client);
    // Past the access token's lifetime (and the idle timeout, for that case).
    scene.clock.advance_ms(PAST_ACCESS_EXPIRY_MS);

    let (reason, code) = ending.expected();
    assert_eq!(
        scene.client.access_token().await,
        Err(AuthError::SignInRequired { code }),
        "{ending:?}"
    );
    let signed_out = AuthState::SignedOut { reason };
    assert_eq!(scene.client.state(), signed_out, "{ending:?}");
    assert_eq!(scene.proxy.count(REFRESH), 1, "{ending:?}");
    assert_eq!(scene.proxy.count(CHALLENGE), 0, "{ending:?}: no device re-login");
    assert_eq!(
        events.count(|e| *e == AuthEvent::StateChanged(signed_out.clone())),
        1
    );
    assert_eq!(scene.client.current_user(), None);
    assert_eq!(scene.client.access_token().await, Err(AuthError::NotSignedIn));

    // Wiped: a restart finds no session; the device key is kept unless the device is gone.
    let restarted = scene.device.client(&scene.proxy.url(), &scene.clock);
    assert_eq!(
        restarted.initialize().await,
        AuthState::SignedOut {
            reason: SignOutReason::NoStoredSession
        }
    );
    let wipes_device = matches!(ending, Ending::AccountDeleted | Ending::DeviceRevoked);
    assert_eq!(
        restarted.device_id().await.unwrap() != device_id,
        wipes_device,
        "{ending:?}: the device key is wiped only with the device"
    );
}

macro_rules! endings {
    ($($test:ident: $ending:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread")]
        async fn $test() {
            signs_out_at_the_next_refresh(stringify!($test), Ending::$ending).await;
        }
    )*};
}

endings!(
    revoked_by_another_session: RevokedById,
    revoked_with_every_other_session: RevokedByOthers,
    signed_out_everywhere_from_another_session: SignedOutEverywhere,
    password_changed_in_another_session: PasswordChanged,
    password_reset: PasswordReset,
    account_disabled_by_an_operator: AccountDisabled,
    idle_past_the_servers_timeout: IdleExpiry,
    pushed_out_by_newer_sign_ins: SessionLimit,
    account_deleted_from_another_session: AccountDeleted,
    device_revoked_from_another_session: DeviceRevoked,
);

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_refresh_keeps_the_servers_reason() {
    let scene = Scene::start("transport-reason", Ending::RevokedById).await;
    // A session of the user signed in through the transport alone (no device, no proof),
    // then ended from another session.
    let transport = Transport::new(TransportConfig::new(scene.server.url())).unwrap();
    let request = SignInRequest {
        email: scene.address.clone(),
        password: PASSWORD.into(),
        device_id: None,
        device_public_key: None,
        device_name: None,
    };
    let session = transport.send(&SignIn, &request, None, None).await.unwrap().value;
    let id = Claims::decode_unverified(&session.tokens.access_token)
        .unwrap()
        .fam
        .unwrap();
    scene.other.revoke_session(&id).await.unwrap();
    let body = RefreshRequest {
        refresh_token: session.tokens.refresh_token.clone(),
    };
    match transport.send(&Refresh, &body, None, None).await {
        Err(Failure::Rejected {
            status: 401,
            code: Some(ErrorCode::TokenRevoked),
            reason: Some(EndReason::Revoked),
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_device_re_login_refused_with_a_reason_signs_out_with_it() {
    let scene = Scene::start("relogin-refused", Ending::RevokedById).await;
    scene.end(Ending::RevokedById).await;
    // The app asks for a re-login with the device key itself: the server refuses it, for
    // the session was ended on purpose, and says why.
    assert_eq!(
        scene.client.reauthenticate_with_device().await,
        Err(AuthError::SignInRequired {
            code: ErrorCode::TokenRevoked
        })
    );
    assert_eq!(scene.proxy.count(CHALLENGE), 1);
    assert_eq!(
        scene.client.state(),
        AuthState::SignedOut {
            reason: SignOutReason::SessionEnded {
                reason: EndReason::Revoked
            }
        }
    );
}

/// The server's answers without their `reason` member: a Kora server, which never sends
/// one.
fn without_reason(answer: &[u8]) -> Vec<u8> {
    with_body(answer, |body| {
        if let Some(object) = body.as_object_mut() {
            object.remove("reason");
        }
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_reason_the_client_tries_device_re_login_first() {
    let scene = Scene::start("no-reason", Ending::RevokedById).await;
    scene.end(Ending::RevokedById).await;
    scene.proxy.set(Fault::Rewrite(without_reason));
    scene.clock.advance_ms(PAST_ACCESS_EXPIRY_MS);
    // Refused without a reason: re-login with the device key, which the server refuses
    // (also without a reason, through the proxy): the session ends as before reasons.
    assert_eq!(
        scene.client.access_token().await,
        Err(AuthError::SignInRequired {
            code: ErrorCode::TokenRevoked
        })
    );
    assert_eq!(scene.proxy.count(CHALLENGE), 1, "device re-login was tried");
    assert_eq!(
        scene.client.state(),
        AuthState::SignedOut {
            reason: SignOutReason::SessionRejected {
                code: ErrorCode::TokenRevoked
            }
        }
    );
}
