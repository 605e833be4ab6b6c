//! The second factor (PROTOCOL 9) from the client, against the real server kit on
//! loopback: enrolment (with its QR code) and confirmation, a sign-in that needs a code (an
//! outcome and a state, never an error), kept across a restart and finished without the
//! password, by a code or a recovery code; a verified session staying verified through
//! refresh, restart, a lost network and a device re-login; step-up before a sensitive call;
//! and the errors (a wrong or replayed code) that never sign out.
//!
//! Codes are computed here by `totp-lite` (an implementation independent of the server's)
//! from the secret the enrolment handed out, at the server's clock, each for a time step
//! not used yet (the server takes a step's code once, within one step of its clock:
//! [`Scene::code`]).

mod support;

use std::cell::Cell;

use holdfast_core::{AuthClient, AuthError, AuthEvent, AuthState, SignInOutcome};
use holdfast_protocol::Claims;
use holdfast_protocol::clock::Clock;
use support::{Device, Events, Fault, FaultProxy, PASSWORD, Server, clock, email};

/// A user with a second factor on, signed in on one device.
struct Scene {
    server: Server,
    _device: Device,
    client: AuthClient,
    address: String,
    secret: Vec<u8>,
    recovery_codes: Vec<String>,
    /// The first time step whose code has not been used ([`Scene::code`]).
    next_step: Cell<u64>,
}

impl Scene {
    /// A server (manual clock; no attempt limit; step-up window of `step_up_secs`), a user
    /// signed up, with TOTP enrolled and confirmed.
    async fn enrolled(label: &str, step_up_secs: i64) -> Scene {
        let server = Server::start_clocked(|config| {
            config.mfa.attempts = None;
            config.mfa.step_up_window_secs = step_up_secs;
        })
        .await;
        let device = Device::new();
        let client = device.client(&server.url(), &clock());
        client.initialize().await;
        let address = email(label);
        client.sign_up(&address, PASSWORD, None).await.unwrap();
        let enrollment = client.enroll_mfa(None).await.unwrap();
        assert!(enrollment.uri().starts_with("otpauth://totp/"));
        let secret = data_encoding::BASE32_NOPAD
            .decode(enrollment.secret().as_bytes())
            .expect("a base32 secret");
        let mut scene = Scene {
            server,
            _device: device,
            client,
            address,
            secret,
            recovery_codes: enrollment.recovery_codes(),
            next_step: Cell::new(0),
        };
        assert_eq!(scene.recovery_codes.len(), 8);
        let status = scene.client.mfa_status().await.unwrap();
        assert!(!status.enabled, "on only once confirmed");
        let code = scene.code();
        scene.client.confirm_mfa(&code).await.unwrap();
        let status = scene.client.mfa_status().await.unwrap();
        assert!(status.enabled);
        assert_eq!(status.remaining_recovery_codes, 8);
        scene.recovery_codes.reverse(); // pop() takes them in order
        scene
    }

    /// The authenticator app's next code: for the oldest time step the server still takes
    /// (its clock's step, give or take one) and has not seen yet. Three per clock position;
    /// move the clock for more (by less than a minute in all: the server dates its answers
    /// by the real time, and the client holds the two to within a minute).
    fn code(&self) -> String {
        let current = u64::try_from(self.server.clock().now_ms() / 30_000).unwrap();
        let step = self.next_step.get().max(current - 1);
        assert!(step <= current + 1, "no unused step left at this time");
        self.next_step.set(step + 1);
        totp_lite::totp_custom::<totp_lite::Sha1>(30, 6, &self.secret, step * 30)
    }

    /// A code the server refuses (the current one, changed by one digit).
    fn wrong_code(&self) -> String {
        let secs = u64::try_from(self.server.clock().now_ms() / 1000).unwrap();
        let right = totp_lite::totp_custom::<totp_lite::Sha1>(30, 6, &self.secret, secs);
        let last = (right.as_bytes()[5] - b'0' + 1) % 10;
        format!("{}{last}", &right[..5])
    }

    /// A client of this scene's server on `device`, initialized.
    async fn client_on(&self, device: &Device) -> AuthClient {
        let client = device.client(&self.server.url(), &clock());
        client.initialize().await;
        client
    }
}

fn claims(token: &str) -> Claims {
    Claims::decode_unverified(token).unwrap()
}

/// The client's current access token's claims (the session is complete).
async fn claims_of(client: &AuthClient) -> Claims {
    claims(&client.access_token().await.unwrap())
}

fn assert_pending(client: &AuthClient, user_id: &str) {
    match client.state() {
        AuthState::SecondFactorRequired { user } => assert_eq!(user.id, user_id),
        other => panic!("expected SecondFactorRequired, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sign_in_with_a_second_factor_waits_for_a_code_then_completes() {
    let scene = Scene::enrolled("mfa-sign-in", 600).await;
    let user = scene.client.current_user().unwrap();
    assert!(matches!(
        scene.client.enroll_mfa(None).await,
        Err(AuthError::MfaAlreadyEnabled)
    ));

    // Another device signs in: the password is right, and a code is owed. Not an error.
    let phone = Device::new();
    let client = scene.client_on(&phone).await;
    let events = Events::record(&client);
    let outcome = client.sign_in(&scene.address, PASSWORD).await.unwrap();
    assert!(matches!(&outcome, SignInOutcome::SecondFactorRequired(u) if u.id == user.id));
    assert!(outcome.needs_second_factor());
    assert_pending(&client, &user.id);
    assert!(!client.state().is_signed_in());

    // The pending token is never handed out, and bearer calls say what is missing.
    assert_eq!(client.access_token().await, Err(AuthError::SecondFactorRequired));
    assert_eq!(client.fresh_access_token(), None, "nor answered from memory");
    assert_eq!(client.sessions().await, Err(AuthError::SecondFactorRequired));

    // A wrong code: its own error, the sign-in still waits.
    let wrong = scene.wrong_code();
    assert_eq!(
        client.complete_sign_in_with_code(&wrong).await,
        Err(AuthError::InvalidCode)
    );
    assert!(!AuthError::InvalidCode.to_string().contains(&wrong));
    assert_pending(&client, &user.id);

    let code = scene.code();
    let completed = client.complete_sign_in_with_code(&code).await.unwrap();
    assert_eq!(completed.id, user.id);
    assert!(matches!(client.state(), AuthState::SignedIn { .. }));
    assert!(events.count(|event| matches!(event, AuthEvent::StateChanged(AuthState::SignedIn { .. }))) >= 1);
    let verified = claims_of(&client).await;
    assert_eq!(verified.aal, Some(2));
    assert!(!verified.mfa_pending());
    assert!(client.sessions().await.is_ok());

    // The same code again (another device, same step): replayed, refused.
    let third = Device::new();
    let again = scene.client_on(&third).await;
    assert!(
        again
            .sign_in(&scene.address, PASSWORD)
            .await
            .unwrap()
            .needs_second_factor()
    );
    assert_eq!(
        again.complete_sign_in_with_code(&code).await,
        Err(AuthError::InvalidCode)
    );
    assert_pending(&again, &user.id);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pending_sign_in_survives_a_restart_and_needs_only_the_code() {
    let scene = Scene::enrolled("mfa-restart", 600).await;
    let user_id = scene.client.current_user().unwrap().id;
    let phone = Device::new();
    {
        let client = scene.client_on(&phone).await;
        assert!(
            client
                .sign_in(&scene.address, PASSWORD)
                .await
                .unwrap()
                .needs_second_factor()
        );
    }

    let restarted = phone.client(&scene.server.url(), &clock());
    let state = restarted.initialize().await;
    assert!(state.needs_second_factor(), "{state:?}");
    assert_pending(&restarted, &user_id);

    // A refresh keeps it pending (and still hands nothing out).
    assert_eq!(restarted.refresh().await, Err(AuthError::SecondFactorRequired));
    assert_pending(&restarted, &user_id);
    restarted.refresh_if_needed().await.unwrap();
    assert_pending(&restarted, &user_id);

    // No password: the code alone finishes it.
    let code = scene.code();
    restarted.complete_sign_in_with_code(&code).await.unwrap();
    assert!(restarted.state().is_signed_in());
    assert_eq!(claims_of(&restarted).await.aal, Some(2));

    // And a restart now restores it verified.
    drop(restarted);
    let again = phone.client(&scene.server.url(), &clock());
    assert!(again.initialize().await.is_signed_in());
    assert_eq!(claims_of(&again).await.aal, Some(2));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_recovery_code_completes_a_sign_in_once() {
    let mut scene = Scene::enrolled("mfa-recovery", 600).await;
    let phone = Device::new();
    let client = scene.client_on(&phone).await;
    assert!(
        client
            .sign_in(&scene.address, PASSWORD)
            .await
            .unwrap()
            .needs_second_factor()
    );
    let recovery = scene.recovery_codes.pop().unwrap();
    client
        .complete_sign_in_with_recovery_code(&recovery)
        .await
        .unwrap();
    assert!(client.state().is_signed_in());
    assert_eq!(claims_of(&client).await.aal, Some(2));
    assert_eq!(client.mfa_status().await.unwrap().remaining_recovery_codes, 7);

    // Spent: a second use is refused, and that sign-in still waits.
    let tablet = Device::new();
    let other = scene.client_on(&tablet).await;
    assert!(
        other
            .sign_in(&scene.address, PASSWORD)
            .await
            .unwrap()
            .needs_second_factor()
    );
    assert_eq!(
        other.complete_sign_in_with_recovery_code(&recovery).await,
        Err(AuthError::InvalidCode)
    );
    assert!(other.state().needs_second_factor());
    let next = scene.recovery_codes.pop().unwrap();
    other.complete_sign_in_with_recovery_code(&next).await.unwrap();
    assert!(other.state().is_signed_in());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_verified_session_stays_verified_through_refresh_restart_and_lost_network() {
    let scene = Scene::enrolled("mfa-offline", 600).await;
    let proxy = FaultProxy::start(scene.server.addr).await;
    let phone = Device::new();
    let client = phone.client(&proxy.url(), &clock());
    client.initialize().await;
    assert!(
        client
            .sign_in(&scene.address, PASSWORD)
            .await
            .unwrap()
            .needs_second_factor()
    );

    // Offline, a code cannot be checked: nothing changes, nobody is signed out.
    proxy.set(Fault::Drop);
    let code = scene.code();
    assert!(matches!(
        client.complete_sign_in_with_code(&code).await,
        Err(AuthError::Transient { .. })
    ));
    assert!(client.state().needs_second_factor());
    proxy.set(Fault::Pass);
    let code = scene.code();
    client.complete_sign_in_with_code(&code).await.unwrap();

    // Refresh: still aal 2.
    let refreshed = claims(&client.refresh().await.unwrap());
    assert_eq!(refreshed.aal, Some(2));
    assert!(!refreshed.mfa_pending());

    // Lost network: a refresh fails transiently and the user stays signed in, verified.
    proxy.set(Fault::Drop);
    assert!(matches!(client.refresh().await, Err(AuthError::Transient { .. })));
    assert!(client.state().is_signed_in());
    assert!(matches!(
        client.step_up("123456").await,
        Err(AuthError::Transient { .. })
    ));
    assert!(client.state().is_signed_in());

    // Restart offline: signed in, verified; back online, the refresh keeps aal 2.
    drop(client);
    let restarted = phone.client(&proxy.url(), &clock());
    assert!(restarted.initialize().await.is_signed_in());
    assert_eq!(claims_of(&restarted).await.aal, Some(2));
    proxy.set(Fault::Pass);
    let refreshed = claims(&restarted.refresh().await.unwrap());
    assert_eq!(refreshed.aal, Some(2));
    assert!(restarted.sessions().await.is_ok());
}

#[tokio::test(flavor = "multi_thread")]
async fn step_up_lets_sensitive_calls_through_then_codes_are_renewed_and_mfa_disabled() {
    let scene = Scene::enrolled("mfa-step-up", 30).await;
    let client = &scene.client;

    // Longer ago than the window: the sensitive call asks for a step-up, and signs nobody
    // out.
    scene.server.clock().advance_ms(40_000);
    assert_eq!(
        client.revoke_other_sessions().await,
        Err(AuthError::StepUpRequired)
    );
    assert!(client.state().is_signed_in());
    assert_eq!(
        client.step_up(&scene.wrong_code()).await,
        Err(AuthError::InvalidCode)
    );

    let before = claims_of(client).await.auth_time.unwrap();
    client.step_up(&scene.code()).await.unwrap();
    let after = claims_of(client).await.auth_time.unwrap();
    assert!(after > before, "auth_time renewed: {before} -> {after}");
    assert_eq!(client.revoke_other_sessions().await, Ok(0));

    // New recovery codes: the old ones stop working.
    let old = scene.recovery_codes.clone();
    let renewed = client.regenerate_recovery_codes(&scene.code()).await.unwrap();
    assert_eq!(renewed.recovery_codes.len(), 8);
    assert!(!format!("{renewed:?}").contains(&renewed.recovery_codes[0]));
    let phone = Device::new();
    let other = scene.client_on(&phone).await;
    assert!(
        other
            .sign_in(&scene.address, PASSWORD)
            .await
            .unwrap()
            .needs_second_factor()
    );
    assert_eq!(
        other.complete_sign_in_with_recovery_code(&old[0]).await,
        Err(AuthError::InvalidCode)
    );
    other
        .complete_sign_in_with_recovery_code(&renewed.recovery_codes[0])
        .await
        .unwrap();

    // Disabling it: a sign-in is complete again at once.
    client.disable_mfa(&scene.code()).await.unwrap();
    assert!(!client.mfa_status().await.unwrap().enabled);
    let tablet = Device::new();
    let plain = scene.client_on(&tablet).await;
    assert!(matches!(
        plain.sign_in(&scene.address, PASSWORD).await,
        Ok(SignInOutcome::SignedIn(_))
    ));
    assert!(plain.state().is_signed_in());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_enrolment_draws_its_qr_code_and_prints_no_secret() {
    let server = Server::start().await;
    let device = Device::new();
    let client = device.client(&server.url(), &clock());
    client.initialize().await;
    client.sign_up(&email("mfa-qr"), PASSWORD, None).await.unwrap();
    let enrollment = client.enroll_mfa(None).await.unwrap();

    let svg = enrollment.qr_svg().unwrap();
    assert!(svg.starts_with("<?xml") || svg.starts_with("<svg"), "{svg:.60}");
    assert!(svg.trim_end().ends_with("</svg>"));
    let png = enrollment.qr_png().unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");

    let printed = format!("{enrollment:?}");
    assert!(!printed.contains(enrollment.secret()), "{printed}");
    assert!(!printed.contains("otpauth"), "{printed}");
    for code in enrollment.recovery_codes() {
        assert!(!printed.contains(&code), "{printed}");
    }
    // Not confirmed yet: the account has no second factor, a sign-in is complete.
    assert!(!client.mfa_status().await.unwrap().enabled);
    let wrong = client.confirm_mfa("000000").await;
    assert!(matches!(wrong, Err(AuthError::InvalidCode) | Ok(())), "{wrong:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_device_re_login_keeps_what_the_session_had() {
    let scene = Scene::enrolled("mfa-relogin", 600).await;
    let user_id = scene.client.current_user().unwrap().id;

    // Verified before: the silent re-login with the device key stays verified.
    let phone = Device::new();
    let verified = scene.client_on(&phone).await;
    assert!(
        verified
            .sign_in(&scene.address, PASSWORD)
            .await
            .unwrap()
            .needs_second_factor()
    );
    verified.complete_sign_in_with_code(&scene.code()).await.unwrap();
    verified.reauthenticate_with_device().await.unwrap();
    assert!(verified.state().is_signed_in());
    assert_eq!(claims_of(&verified).await.aal, Some(2));

    // Never verified: the re-login still owes the code.
    let tablet = Device::new();
    let pending = scene.client_on(&tablet).await;
    assert!(
        pending
            .sign_in(&scene.address, PASSWORD)
            .await
            .unwrap()
            .needs_second_factor()
    );
    pending.reauthenticate_with_device().await.unwrap();
    assert_pending(&pending, &user_id);
    pending.complete_sign_in_with_code(&scene.code()).await.unwrap();
    assert!(pending.state().is_signed_in());
}
