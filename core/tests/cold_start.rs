//! A start that needs no request, then the first request after it: the HTTP client is
//! built only then (core/src/transport/lazy.rs), and with the configuration the app gave.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use holdfast_core::error::TransientCause;
use holdfast_core::{AuthClient, AuthError, AuthState};
use support::{Device, Fault, FaultProxy, PASSWORD, Server, clock, email};

#[tokio::test(flavor = "multi_thread")]
async fn the_first_request_after_a_start_without_one_has_the_configured_timeout() {
    let server = Server::start().await;
    let proxy = FaultProxy::start(server.addr).await;
    let clock = clock();
    let device = Device::new();
    let first = device.client(&proxy.url(), &clock);
    first.initialize().await;
    first.sign_up(&email("cold"), PASSWORD, None).await.unwrap();
    drop(first);

    // A restart while the server is silent, with a request timeout far below the default
    // 30 s: the start sends nothing, so the client's HTTP client is built by the refresh.
    proxy.set(Fault::Stall);
    let mut config = device.config(&proxy.url(), Arc::new(clock.clone()));
    config.request_timeout = Duration::from_millis(300);
    let client = AuthClient::new(config).unwrap();
    let state = client.initialize().await;
    assert!(
        matches!(
            state,
            AuthState::SignedIn {
                token_fresh: true,
                ..
            }
        ),
        "{state:?}"
    );
    client.access_token().await.unwrap();
    assert_eq!(proxy.count("/auth/refresh"), 0, "the start sent nothing");

    let started = Instant::now();
    let error = client.refresh().await.unwrap_err();
    let waited = started.elapsed();
    assert!(
        matches!(
            error,
            AuthError::Transient {
                cause: TransientCause::Timeout
            }
        ),
        "{error:?}"
    );
    assert!(
        waited >= Duration::from_millis(300) && waited < Duration::from_secs(5),
        "the request timeout of 300 ms applied, not the default: {waited:?}"
    );
    assert_eq!(proxy.count("/auth/refresh"), 1);
    assert!(client.state().is_signed_in(), "a timeout is no sign-out");

    // The same client, its HTTP client built, goes on once the server answers.
    proxy.set(Fault::Pass);
    client.refresh().await.unwrap();
}
