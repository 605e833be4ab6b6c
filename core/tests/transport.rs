//! The transport against the real server kit on loopback, and against tiny fake servers
//! that answer each case a real network can produce (a captive portal, a proxy, a dying
//! server, a silent one).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use holdfast_core::device::{DeviceSigner, SoftwareSigner, device_proof, sign_challenge};
use holdfast_core::error::TransientCause;
use holdfast_core::transport::{Failure, Transport, TransportConfig};
use holdfast_examples::local_server::LocalServer;
use holdfast_protocol::ErrorCode;
use holdfast_protocol::endpoint::{
    Challenge, Devices, Endpoint, Me, NoBody, Refresh, RegisterDevice, RevokeDevice, SignIn, SignOut, SignUp,
    Verify,
};
use holdfast_protocol::wire::{
    ChallengeRequest, DeviceRegisterRequest, RefreshRequest, SignInRequest, SignOutRequest, SignUpRequest,
    VerifyRequest,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

const PASSWORD: &str = "correct horse battery";

fn transport(base_url: &str) -> Transport {
    Transport::new(TransportConfig {
        request_timeout: Duration::from_secs(10),
        ..TransportConfig::new(base_url)
    })
    .unwrap()
}

fn now_ms() -> i64 {
    i64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis()).unwrap()
}

fn sign_up_request(email: &str, device_id: &str, signer: &SoftwareSigner) -> SignUpRequest {
    SignUpRequest {
        email: email.into(),
        password: PASSWORD.into(),
        name: Some("Ada".into()),
        device_id: Some(device_id.into()),
        device_public_key: Some(signer.public_jwk().unwrap().to_wire_string()),
        device_name: Some("Test phone".into()),
        metadata: None,
    }
}

#[tokio::test]
async fn every_route_succeeds_against_the_server_kit() {
    let server = LocalServer::start(|_| {}).await.unwrap();
    let api = transport(&server.base_url());
    let (signer, _) = SoftwareSigner::generate().unwrap();
    // A token request's proof (no access token yet, no `ath`): the server binds the tokens
    // it issues to the signer's key (PROTOCOL 3).
    let token_proof =
        |route: &str| device_proof(&signer, "POST", &api.url_for(route), "", None, now_ms() / 1000).unwrap();

    let signed_up = api
        .send(
            &SignUp,
            &sign_up_request("Ada@Example.com", "phone-1", &signer),
            None,
            Some(&token_proof("/signup")),
        )
        .await
        .unwrap();
    assert_eq!(signed_up.value.user.email, "ada@example.com");
    let server_time = signed_up.server_time_ms.expect("the server sends Date");
    assert!((server_time - now_ms()).abs() < 5_000, "{server_time}");

    let signed_in = api
        .send(
            &SignIn,
            &SignInRequest {
                email: "ada@example.com".into(),
                password: PASSWORD.into(),
                device_id: Some("phone-1".into()),
                device_public_key: Some(signer.public_jwk().unwrap().to_wire_string()),
                device_name: None,
            },
            None,
            Some(&token_proof("/signin")),
        )
        .await
        .unwrap()
        .value;
    assert_eq!(signed_in.user.id, signed_up.value.user.id);

    let refresh = RefreshRequest {
        refresh_token: signed_in.tokens.refresh_token.clone(),
    };
    let refreshed = api
        .send(&Refresh, &refresh, None, Some(&token_proof("/refresh")))
        .await
        .unwrap()
        .value;
    assert_ne!(refreshed.refresh_token, signed_in.tokens.refresh_token);
    let access = refreshed.access_token.clone();

    // The tokens are bound to the device key: every bearer call carries a device proof for
    // the URL the transport requests (PROTOCOL 6.1).
    let proof = |method: &str, route: &str| {
        device_proof(
            &signer,
            method,
            &api.url_for(route),
            &access,
            None,
            now_ms() / 1000,
        )
        .unwrap()
    };
    let unproven = api.send(&Me, &NoBody, Some(&access), None).await.unwrap_err();
    assert!(
        matches!(
            unproven,
            Failure::Rejected {
                status: 401,
                code: Some(ErrorCode::ProofInvalid),
                ..
            }
        ),
        "{unproven:?}"
    );
    let me = api
        .send(&Me, &NoBody, Some(&access), Some(&proof("GET", "/me")))
        .await
        .unwrap()
        .value;
    assert_eq!(me.id, signed_up.value.user.id);

    let (tablet, _) = SoftwareSigner::generate().unwrap();
    let registered = api
        .send(
            &RegisterDevice,
            &DeviceRegisterRequest {
                device_id: "tablet/1".into(),
                public_key: tablet.public_jwk().unwrap().to_wire_string(),
                name: "Tablet".into(),
            },
            Some(&access),
            Some(&proof("POST", "/device/register")),
        )
        .await
        .unwrap()
        .value;
    assert_eq!(registered.device.id, "tablet/1");
    assert!(!registered.device_credential.is_empty());

    let devices = api
        .send(&Devices, &NoBody, Some(&access), Some(&proof("GET", "/devices")))
        .await
        .unwrap()
        .value;
    let mut ids: Vec<&str> = devices.iter().map(|d| d.id.as_str()).collect();
    ids.sort_unstable();
    assert_eq!(ids, ["phone-1", "tablet/1"]);

    // Silent device re-login: a challenge without a bearer token, signed by the device key.
    let phone = ChallengeRequest {
        device_id: "phone-1".into(),
    };
    let challenge = api
        .send(&Challenge, &phone, None, None)
        .await
        .unwrap()
        .value
        .challenge;
    let verified = api
        .send(
            &Verify,
            &VerifyRequest {
                device_id: "phone-1".into(),
                signature: sign_challenge(&signer, &challenge).unwrap(),
                challenge,
            },
            None,
            Some(&token_proof("/device/verify")),
        )
        .await
        .unwrap()
        .value;
    assert!(!verified.tokens.access_token.is_empty());
    // With a bearer token too.
    let tablet_challenge = ChallengeRequest {
        device_id: "tablet/1".into(),
    };
    let challenge = api
        .send(
            &Challenge,
            &tablet_challenge,
            Some(&access),
            Some(&proof("POST", "/device/challenge")),
        )
        .await
        .unwrap()
        .value;
    assert_eq!(challenge.challenge.len(), 64);

    // The id has a '/': it must travel percent-encoded as one path segment.
    let revoke = RevokeDevice::new("tablet/1").unwrap();
    assert_eq!(api.url_of(&revoke), api.url_for("/device/tablet%2F1"));
    assert!(
        api.send(
            &revoke,
            &NoBody,
            Some(&access),
            Some(&proof("DELETE", &revoke.path()))
        )
        .await
        .unwrap()
        .value
        .success
    );
    let devices = api
        .send(&Devices, &NoBody, Some(&access), Some(&proof("GET", "/devices")))
        .await
        .unwrap()
        .value;
    assert!(devices.iter().any(|d| d.id == "tablet/1" && d.revoked));

    let sign_out = SignOutRequest {
        refresh_token: Some(refreshed.refresh_token.clone()),
    };
    let signed_out = api
        .send(
            &SignOut,
            &sign_out,
            Some(&access),
            Some(&proof("POST", "/signout")),
        )
        .await
        .unwrap();
    assert!(signed_out.value.success);
    // The server checks revocation on every bearer route.
    let after = api
        .send(&Me, &NoBody, Some(&access), Some(&proof("GET", "/me")))
        .await
        .unwrap_err();
    assert!(after.is_definitive(), "{after:?}");
    server.stop().await;
}

#[tokio::test]
async fn server_rejections_carry_status_and_code() {
    let server = LocalServer::start(|_| {}).await.unwrap();
    let api = transport(&server.base_url());
    let (signer, _) = SoftwareSigner::generate().unwrap();
    api.send(
        &SignUp,
        &sign_up_request("bob@example.com", "b-1", &signer),
        None,
        None,
    )
    .await
    .unwrap();

    let wrong = api
        .send(
            &SignIn,
            &SignInRequest {
                email: "bob@example.com".into(),
                password: "not the password".into(),
                device_id: None,
                device_public_key: None,
                device_name: None,
            },
            None,
            None,
        )
        .await
        .unwrap_err();
    match &wrong {
        Failure::Rejected {
            status: 401,
            code: Some(ErrorCode::InvalidCredentials),
            server_time_ms: Some(_),
            ..
        } => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(
        wrong.into_sign_in_error(),
        holdfast_core::AuthError::InvalidCredentials
    );

    let taken = api
        .send(
            &SignUp,
            &sign_up_request("bob@example.com", "b-2", &signer),
            None,
            None,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            taken,
            Failure::Rejected {
                status: 409,
                code: Some(ErrorCode::EmailTaken),
                ..
            }
        ),
        "{taken:?}"
    );

    let bad_token = api
        .send(&Me, &NoBody, Some("not.a.token"), None)
        .await
        .unwrap_err();
    assert!(
        matches!(
            bad_token,
            Failure::Rejected {
                status: 401,
                code: Some(ErrorCode::TokenInvalid),
                ..
            }
        ),
        "{bad_token:?}"
    );
    let bad_refresh = api
        .send(
            &Refresh,
            &RefreshRequest {
                refresh_token: "not.a.token".into(),
            },
            None,
            None,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(bad_refresh, Failure::Rejected { status: 401, .. }),
        "{bad_refresh:?}"
    );

    let missing = api
        .send(
            &Challenge,
            &ChallengeRequest {
                device_id: "no-such-device".into(),
            },
            None,
            None,
        )
        .await
        .unwrap_err();
    assert!(missing.is_definitive(), "{missing:?}");

    let invalid = api
        .send(
            &SignUp,
            &SignUpRequest {
                email: "no-at-sign".into(),
                ..sign_up_request("x@example.com", "x", &signer)
            },
            None,
            None,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            invalid,
            Failure::Rejected {
                status: 400,
                code: Some(ErrorCode::ValidationError),
                ..
            }
        ),
        "{invalid:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_wrong_route_prefix_is_a_rejection_from_the_server_not_a_portal() {
    let server = LocalServer::start(|_| {}).await.unwrap();
    let api = Transport::new(TransportConfig {
        route_prefix: "/nope".into(),
        ..TransportConfig::new(server.base_url())
    })
    .unwrap();
    // The server's own 404 carries the protocol's error envelope.
    let failure = api.send(&Me, &NoBody, Some("t"), None).await.unwrap_err();
    assert!(
        matches!(failure, Failure::Rejected { status: 404, .. }),
        "{failure:?}"
    );
    server.stop().await;
}

// ---- Fake servers -------------------------------------------------------------------

/// What a fake server does with each connection, after reading the whole request.
#[derive(Clone, Copy)]
enum Behaviour {
    /// Writes this raw HTTP response and closes.
    Answer(&'static str),
    /// Closes without a byte.
    Close,
    /// Resets the connection (RST).
    Reset,
    /// Keeps the connection open and never answers.
    Silent,
    /// Answers plain HTTP at once, as an HTTP server does to a TLS handshake.
    PlainHttpToTls,
}

/// Starts a fake server on loopback; returns its base URL and the requests it received
/// (head and body as text).
async fn fake(behaviour: Behaviour) -> (String, mpsc::UnboundedReceiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (seen, requests) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                if let Behaviour::PlainHttpToTls = behaviour {
                    let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
                    return;
                }
                let request = read_request(&mut stream).await;
                let _ = seen.send(request);
                match behaviour {
                    Behaviour::Answer(raw) => {
                        let _ = stream.write_all(raw.as_bytes()).await;
                        let _ = stream.shutdown().await;
                    }
                    Behaviour::Close => drop(stream),
                    Behaviour::Reset => {
                        let _ = stream.set_zero_linger();
                        drop(stream);
                    }
                    Behaviour::Silent => {
                        tokio::time::sleep(Duration::from_secs(30)).await;
                    }
                    Behaviour::PlainHttpToTls => {}
                }
            });
        }
    });
    (format!("http://{address}"), requests)
}

/// Reads a request's head and its `Content-Length` body: closing with unread bytes would
/// make the kernel reset the connection and hide the answer under test.
async fn read_request(stream: &mut TcpStream) -> String {
    let mut data = Vec::new();
    let mut buffer = [0u8; 4096];
    while let Ok(read) = stream.read(&mut buffer).await {
        if read == 0 {
            break;
        }
        data.extend_from_slice(&buffer[..read]);
        let text = String::from_utf8_lossy(&data);
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())
                        .flatten()
                })
                .unwrap_or(0);
            if data.len() >= end + 4 + length {
                break;
            }
        }
    }
    String::from_utf8_lossy(&data).into_owned()
}

fn quick(base_url: &str) -> Transport {
    Transport::new(TransportConfig {
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_millis(500),
        ..TransportConfig::new(base_url)
    })
    .unwrap()
}

fn sign_in_body() -> SignInRequest {
    SignInRequest {
        email: "a@example.com".into(),
        password: "secret-password".into(),
        device_id: None,
        device_public_key: None,
        device_name: None,
    }
}

/// Signs in against a fake server answering `raw` and returns the failure.
async fn sign_in_failure(raw: &'static str) -> Failure {
    let (url, _) = fake(Behaviour::Answer(raw)).await;
    quick(&url)
        .send(&SignIn, &sign_in_body(), None, None)
        .await
        .unwrap_err()
}

fn transient(failure: &Failure) -> &TransientCause {
    match failure {
        Failure::Transient { cause, .. } => cause,
        other => panic!("expected a transient failure, got {other:?}"),
    }
}

const DATE: &str = "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n";

/// A raw HTTP/1.1 response: `head` is the status line and any headers (each ending in
/// CRLF); the length is computed here.
fn http(head: &str, body: &str) -> &'static str {
    let raw = format!(
        "HTTP/1.1 {head}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    Box::leak(raw.into_boxed_str())
}

#[tokio::test]
async fn a_503_is_transient_server_error() {
    let failure = sign_in_failure(http(
        &format!("503 Service Unavailable\r\n{DATE}Retry-After: 5\r\nContent-Type: application/json\r\n"),
        r#"{"error":"Maintenance","code":"INTERNAL"}"#,
    ))
    .await;
    // Its Retry-After is reported, for the background refresh to honour.
    assert_eq!(
        transient(&failure),
        &TransientCause::Unavailable { retry_after_secs: 5 }
    );
    // A 5xx may come from any proxy: its Date teaches the client nothing.
    assert_eq!(failure.server_time_ms(), None);
    assert!(!failure.is_definitive());
}

#[tokio::test]
async fn a_500_html_page_is_transient_server_error() {
    let failure = sign_in_failure(http(
        "500 Internal Server Error\r\nContent-Type: text/html\r\n",
        "<html><h1>Oops</h1></html>",
    ))
    .await;
    assert_eq!(transient(&failure), &TransientCause::ServerError { status: 500 });
}

#[tokio::test]
async fn a_429_is_rate_limited_with_retry_after() {
    let failure = sign_in_failure(http(
        "429 Too Many Requests\r\nRetry-After: 7\r\nContent-Type: application/json\r\n",
        r#"{"error":"Slow down","code":"RATE_LIMITED"}"#,
    ))
    .await;
    assert_eq!(
        transient(&failure),
        &TransientCause::RateLimited {
            retry_after_secs: Some(7)
        }
    );
}

#[tokio::test]
async fn a_captive_portal_200_page_is_never_a_success() {
    let failure = sign_in_failure(http(
        &format!("200 OK\r\n{DATE}Content-Type: text/html\r\n"),
        "<html><head><title>Hotel WiFi</title></head><body>Accept the terms</body></html>",
    ))
    .await;
    assert_eq!(transient(&failure), &TransientCause::NotTheServer { status: 200 });
    assert!(!failure.is_definitive());
    // Nor does a portal's page: only the auth server's JSON answers set the clock.
    assert_eq!(failure.server_time_ms(), None);
}

#[tokio::test]
async fn json_without_data_is_not_the_server() {
    let failure = sign_in_failure(http(
        "200 OK\r\nContent-Type: application/json\r\n",
        r#"{"ok":true}"#,
    ))
    .await;
    assert_eq!(transient(&failure), &TransientCause::NotTheServer { status: 200 });
}

#[tokio::test]
async fn data_of_the_wrong_shape_is_not_a_success() {
    let failure = sign_in_failure(http(
        "200 OK\r\nContent-Type: application/json\r\n",
        r#"{"data":"hello"}"#,
    ))
    .await;
    assert_eq!(transient(&failure), &TransientCause::NotTheServer { status: 200 });
}

#[tokio::test]
async fn a_kora_401_without_code_is_a_rejection() {
    let failure = sign_in_failure(http(
        "401 Unauthorized\r\nContent-Type: application/json; charset=utf-8\r\n",
        r#"{"error":"Invalid email or password."}"#,
    ))
    .await;
    match &failure {
        Failure::Rejected {
            status: 401,
            code: None,
            message,
            ..
        } => assert_eq!(message, "Invalid email or password."),
        other => panic!("{other:?}"),
    }
    assert!(failure.is_definitive());
    assert_eq!(
        failure.into_sign_in_error(),
        holdfast_core::AuthError::InvalidCredentials
    );
}

#[tokio::test]
async fn an_unknown_code_from_a_newer_server_is_a_rejection_without_code() {
    let failure = sign_in_failure(http(
        "403 Forbidden\r\nContent-Type: application/json\r\n",
        r#"{"error":"Nope","code":"SOMETHING_NEWER"}"#,
    ))
    .await;
    assert!(
        matches!(
            failure,
            Failure::Rejected {
                status: 403,
                code: None,
                ..
            }
        ),
        "{failure:?}"
    );
}

#[tokio::test]
async fn a_404_html_page_is_a_configuration_error() {
    // Nothing answers the auth routes here: a wrong server URL or route prefix, which no
    // retry fixes and which is no verdict on the session either.
    let failure = sign_in_failure(http(
        "404 Not Found\r\nContent-Type: text/html\r\n",
        "<h1>404 Not Found</h1>",
    ))
    .await;
    assert!(matches!(failure, Failure::Misconfigured { .. }), "{failure:?}");
    assert!(!failure.is_definitive());
    assert!(matches!(
        failure.into_auth_error(),
        holdfast_core::AuthError::Configuration { .. }
    ));
}

#[tokio::test]
async fn an_error_object_that_is_not_the_envelope_is_not_the_server() {
    // Some gateways answer `{"error": {...}}`: JSON, 4xx, but not the protocol's envelope.
    let failure = sign_in_failure(http(
        "403 Forbidden\r\nContent-Type: application/json\r\n",
        r#"{"error":{"reason":"blocked by policy"}}"#,
    ))
    .await;
    assert_eq!(transient(&failure), &TransientCause::NotTheServer { status: 403 });
}

#[tokio::test]
async fn a_408_is_a_timeout_whatever_its_body() {
    let failure = sign_in_failure(http(
        "408 Request Timeout\r\nContent-Type: application/json\r\n",
        r#"{"error":"Too slow","code":"VALIDATION_ERROR"}"#,
    ))
    .await;
    assert_eq!(transient(&failure), &TransientCause::Timeout);
}

#[tokio::test]
async fn a_redirect_is_not_followed() {
    let (url, mut requests) = fake(Behaviour::Answer(http(
        "302 Found\r\nLocation: http://127.0.0.1:9/portal\r\n",
        "",
    )))
    .await;
    let failure = quick(&url)
        .send(&SignIn, &sign_in_body(), None, None)
        .await
        .unwrap_err();
    assert_eq!(transient(&failure), &TransientCause::NotTheServer { status: 302 });
    assert!(requests.recv().await.is_some());
    assert!(requests.try_recv().is_err(), "one request only");
}

#[tokio::test]
async fn an_oversized_answer_is_not_read_whole() {
    // Declared too large: refused before reading.
    let failure = sign_in_failure(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 10000000\r\nConnection: close\r\n\r\n{\"data\":",
    )
    .await;
    assert_eq!(transient(&failure), &TransientCause::NotTheServer { status: 200 });
    // Chunked, with no declared length: refused once the cap is passed (5 x 64 KiB).
    let chunk = "x".repeat(0x10000);
    let mut raw = String::from(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
    );
    for _ in 0..5 {
        raw.push_str(&format!("10000\r\n{chunk}\r\n"));
    }
    raw.push_str("0\r\n\r\n");
    let failure = sign_in_failure(Box::leak(raw.into_boxed_str())).await;
    assert_eq!(transient(&failure), &TransientCause::NotTheServer { status: 200 });
}

#[tokio::test]
async fn a_connection_closed_without_answer_is_network() {
    let (url, _) = fake(Behaviour::Close).await;
    let failure = quick(&url)
        .send(&SignIn, &sign_in_body(), None, None)
        .await
        .unwrap_err();
    match transient(&failure) {
        TransientCause::Network(message) => assert!(message.contains("connection closed"), "{message}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_reset_connection_is_network() {
    let (url, _) = fake(Behaviour::Reset).await;
    let failure = quick(&url)
        .send(&SignIn, &sign_in_body(), None, None)
        .await
        .unwrap_err();
    match transient(&failure) {
        TransientCause::Network(message) => assert!(message.to_lowercase().contains("reset"), "{message}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_silent_server_is_a_timeout() {
    let (url, _) = fake(Behaviour::Silent).await;
    let started = std::time::Instant::now();
    let failure = quick(&url)
        .send(&SignIn, &sign_in_body(), None, None)
        .await
        .unwrap_err();
    assert_eq!(transient(&failure), &TransientCause::Timeout);
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_refused_connection_is_network() {
    // Bind, note the port, close: nothing listens there any more.
    let port = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let failure = quick(&format!("http://127.0.0.1:{port}"))
        .send(&Me, &NoBody, Some("token"), None)
        .await
        .unwrap_err();
    match transient(&failure) {
        TransientCause::Network(message) => assert!(message.contains("could not connect"), "{message}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_failed_tls_handshake_is_network() {
    // Exercises the rustls + ring stack up to the handshake: the ClientHello goes out and
    // the plain-HTTP answer is refused.
    let (url, _) = fake(Behaviour::PlainHttpToTls).await;
    let failure = quick(&url.replace("http://", "https://"))
        .send(&Me, &NoBody, Some("token"), None)
        .await
        .unwrap_err();
    assert!(
        matches!(transient(&failure), TransientCause::Network(_)),
        "{failure:?}"
    );
}

#[tokio::test]
async fn requests_carry_bearer_and_json_and_no_secret_leaks_into_failures() {
    let (url, mut requests) = fake(Behaviour::Answer(http(
        "200 OK\r\nContent-Type: application/json\r\n",
        r#"{"data":{"success":true}}"#,
    )))
    .await;
    let api = quick(&url);
    let answer = api
        .send(
            &RevokeDevice::new("a b/c").unwrap(),
            &NoBody,
            Some("access-token-secret"),
            Some("proof-secret"),
        )
        .await
        .unwrap();
    assert!(answer.value.success);
    let request = requests.recv().await.unwrap();
    assert!(
        request.starts_with("DELETE /auth/device/a%20b%2Fc HTTP/1.1\r\n"),
        "{request}"
    );
    assert!(
        request.contains("authorization: Bearer access-token-secret\r\n"),
        "{request}"
    );
    assert!(request.contains("dpop: proof-secret\r\n"), "{request}");

    let sign_out = SignOutRequest {
        refresh_token: Some("refresh-token-secret".into()),
    };
    api.send(&SignOut, &sign_out, Some("access-token-secret"), None)
        .await
        .unwrap();
    let request = requests.recv().await.unwrap();
    assert!(
        request.starts_with("POST /auth/signout HTTP/1.1\r\n"),
        "{request}"
    );
    assert!(request.contains("content-type: application/json"), "{request}");
    assert!(
        request.ends_with(r#"{"refreshToken":"refresh-token-secret"}"#),
        "{request}"
    );

    // A failure's Debug never holds what was sent.
    let (url, _) = fake(Behaviour::Close).await;
    let failure = quick(&url)
        .send(&SignIn, &sign_in_body(), None, None)
        .await
        .unwrap_err();
    let shown = format!("{failure:?} {}", failure.clone().into_auth_error());
    assert!(!shown.contains("secret-password"), "{shown}");
    assert!(!format!("{api:?}").contains("secret"));
}
