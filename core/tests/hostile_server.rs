//! The client against a server that lies (a fake server in front of the real one, see
//! `support::proxy`): answers dated 1970, tokens the server could never take back, tokens
//! already expired on arrival, and `exp` values at the ends of `i64`. The client refuses
//! what it knows is bad instead of storing it or handing it out.

mod support;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use holdfast_core::{AuthError, AuthState};
use support::proxy::{with_body, with_header};
use support::{Device, Fault, FaultProxy, PASSWORD, Server, clock, email};

const EPOCH_DATE: &str = "Thu, 01 Jan 1970 00:00:00 GMT";

fn dated_1970(answer: &[u8]) -> Vec<u8> {
    with_header(answer, "Date", EPOCH_DATE)
}

fn portal_dated_1970(_: &[u8]) -> Vec<u8> {
    let page = "<html><body>Sign in to the Wi-Fi</body></html>";
    format!(
        "HTTP/1.1 200 OK\r\nDate: {EPOCH_DATE}\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\r\n{page}",
        page.len()
    )
    .into_bytes()
}

fn now_ms() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

/// A JWT-shaped token with these claims (the client cannot check HS256; the shape is all
/// it reads).
fn forged_access(exp: i64, iat: i64) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let claims = serde_json::json!({
        "jti": "00000000-0000-4000-8000-000000000009", "sub": "u", "dev": "d",
        "type": "access", "iat": iat, "exp": exp,
    });
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{header}.{payload}.{}", URL_SAFE_NO_PAD.encode([7u8; 32]))
}

#[tokio::test(flavor = "multi_thread")]
async fn an_answer_dated_1970_does_not_move_the_clock_or_outlive_a_restart() {
    let server = Server::start().await;
    let proxy = FaultProxy::start(server.addr).await;
    let device = Device::new();
    let clock = clock();
    let client = device.client(&proxy.url(), &clock);
    client.initialize().await;
    // The auth server's own JSON answers, each dated 1970 by the fake server.
    proxy.set(Fault::Rewrite(dated_1970));
    client.sign_up(&email("epoch"), PASSWORD, None).await.unwrap();
    client.list_devices().await.unwrap();
    let offset = client.server_now_ms() - now_ms();
    assert!(offset.abs() < 5_000, "offset after a 1970 Date: {offset} ms");
    // A captive portal's page dated 1970.
    proxy.set(Fault::Rewrite(portal_dated_1970));
    assert!(client.list_devices().await.is_err());
    let offset = client.server_now_ms() - now_ms();
    assert!(
        offset.abs() < 5_000,
        "offset after a portal dated 1970: {offset} ms"
    );
    // The token it hands out is the fresh one, and the server takes its proofs.
    proxy.set(Fault::Pass);
    assert_eq!(client.list_devices().await.unwrap().len(), 1);
    // A restart keeps no 1970 offset either.
    drop(client);
    let restarted = device.client(&proxy.url(), &clock);
    assert!(matches!(restarted.initialize().await, AuthState::SignedIn { .. }));
    let offset = restarted.server_now_ms() - now_ms();
    assert!(offset.abs() < 5_000, "offset after a restart: {offset} ms");
    assert_eq!(restarted.list_devices().await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refresh_token_the_server_could_never_take_back_is_refused_and_the_session_kept() {
    let server = Server::start().await;
    let proxy = FaultProxy::start(server.addr).await;
    let device = Device::new();
    let clock = clock();
    let client = device.client(&proxy.url(), &clock);
    client.initialize().await;
    client.sign_up(&email("huge"), PASSWORD, None).await.unwrap();
    let before = client.access_token().await.unwrap();
    fn huge_refresh_token(answer: &[u8]) -> Vec<u8> {
        with_body(answer, |body| {
            body["data"]["refreshToken"] = format!("a.{}.c", "b".repeat(100 * 1024)).into();
        })
    }
    fn spaced_refresh_token(answer: &[u8]) -> Vec<u8> {
        with_body(answer, |body| {
            let token = body["data"]["refreshToken"]
                .as_str()
                .unwrap()
                .replacen('.', " .", 1);
            body["data"]["refreshToken"] = token.into();
        })
    }
    for rewrite in [huge_refresh_token as fn(&[u8]) -> Vec<u8>, spaced_refresh_token] {
        proxy.set(Fault::Rewrite(rewrite));
        match client.refresh().await {
            Err(AuthError::Protocol { message }) => assert!(message.contains("refresh token"), "{message}"),
            other => panic!("expected a protocol error, got {other:?}"),
        }
        // Nothing was stored: still signed in with the previous pair.
        assert!(matches!(client.state(), AuthState::SignedIn { .. }));
        assert_eq!(client.access_token().await.unwrap(), before);
    }
    // A restart finds the previous pair too, and a real refresh (within the grace window,
    // the server gives the same children) works.
    proxy.set(Fault::Pass);
    let restarted = device.client(&proxy.url(), &clock);
    assert!(matches!(restarted.initialize().await, AuthState::SignedIn { .. }));
    assert_eq!(restarted.access_token().await.unwrap(), before);
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_expired_on_arrival_or_with_absurd_times_are_protocol_errors() {
    let server = Server::start().await;
    let proxy = FaultProxy::start(server.addr).await;
    let clock = clock();
    fn expired(answer: &[u8]) -> Vec<u8> {
        with_body(answer, |body| {
            let now = body_now();
            body["data"]["tokens"]["accessToken"] = forged_access(now - 60, now - 960).into();
        })
    }
    fn exp_min(answer: &[u8]) -> Vec<u8> {
        with_body(answer, |body| {
            body["data"]["tokens"]["accessToken"] = forged_access(i64::MIN, body_now()).into();
        })
    }
    fn exp_max(answer: &[u8]) -> Vec<u8> {
        with_body(answer, |body| {
            body["data"]["tokens"]["accessToken"] = forged_access(i64::MAX, body_now()).into();
        })
    }
    fn body_now() -> i64 {
        now_ms() / 1000
    }
    for (case, rewrite) in [
        ("expired", expired as fn(&[u8]) -> Vec<u8>),
        ("exp = i64::MIN", exp_min),
        ("exp = i64::MAX", exp_max),
    ] {
        let device = Device::new();
        let client = device.client(&proxy.url(), &clock);
        client.initialize().await;
        proxy.set(Fault::Rewrite(rewrite));
        match client.sign_up(&email("forged"), PASSWORD, None).await {
            Err(AuthError::Protocol { .. }) => {}
            other => panic!("{case}: expected a protocol error, got {other:?}"),
        }
        assert!(!matches!(client.state(), AuthState::SignedIn { .. }), "{case}");
        proxy.set(Fault::Pass);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_verify_refused_for_its_challenge_is_retried_once_then_the_session_is_kept() {
    fn challenge_refused(answer: &[u8]) -> Vec<u8> {
        if !String::from_utf8_lossy(answer).contains("deviceCredential") {
            return answer.to_vec();
        }
        let body = r#"{"error":"Invalid or expired challenge.","code":"CHALLENGE_INVALID"}"#;
        format!(
            "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }
    let server = Server::start().await;
    let proxy = FaultProxy::start(server.addr).await;
    let device = Device::new();
    let clock = clock();
    let client = device.client(&proxy.url(), &clock);
    client.initialize().await;
    client
        .sign_up(&email("verify-retry"), PASSWORD, None)
        .await
        .unwrap();
    proxy.set(Fault::Rewrite(challenge_refused));
    let verifies = proxy.count("/auth/device/verify");
    match client.reauthenticate_with_device().await {
        Err(AuthError::Refused { code, .. }) => {
            assert_eq!(code, holdfast_protocol::ErrorCode::ChallengeInvalid)
        }
        other => panic!("expected the refusal, got {other:?}"),
    }
    assert_eq!(
        proxy.count("/auth/device/verify") - verifies,
        2,
        "one retry with a fresh challenge"
    );
    assert!(
        matches!(client.state(), AuthState::SignedIn { .. }),
        "the session is kept"
    );
    // With the server answering again, the device signs in again.
    proxy.set(Fault::Pass);
    client.reauthenticate_with_device().await.unwrap();
    assert!(matches!(
        client.state(),
        AuthState::SignedIn {
            token_fresh: true,
            ..
        }
    ));
}
