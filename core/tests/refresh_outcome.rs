//! Callers that wait on a refresh in flight share its outcome, failures included, and
//! `access_token()` has one deadline over the whole refresh (`ClientConfig::token_deadline`).

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use holdfast_core::error::TransientCause;
use holdfast_core::{AuthClient, AuthError};
use support::{Device, Fault, FaultProxy, PASSWORD, PAST_ACCESS_EXPIRY_MS, Server, clock, email};

const REFRESH: &str = "/auth/refresh";

/// Runs `callers` concurrent `access_token()` calls; returns their results and the longest
/// wait.
async fn concurrent_callers(
    client: &AuthClient,
    callers: usize,
) -> (Vec<Result<String, AuthError>>, Duration) {
    let started = Instant::now();
    let tasks: Vec<_> = (0..callers)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move {
                let result = client.access_token().await;
                (result, started.elapsed())
            })
        })
        .collect();
    let mut results = Vec::new();
    let mut longest = Duration::ZERO;
    for task in tasks {
        let (result, waited) = task.await.unwrap();
        results.push(result);
        longest = longest.max(waited);
    }
    (results, longest)
}

#[tokio::test(flavor = "multi_thread")]
async fn callers_during_a_failing_or_stalled_refresh_share_its_outcome() {
    let server = Server::start().await;
    let proxy = FaultProxy::start(server.addr).await;
    let clock = clock();
    let device = Device::new();
    // request_timeout is 2 s in the test configuration.
    let client = device.client(&proxy.url(), &clock);
    client.initialize().await;
    client.sign_up(&email("shared"), PASSWORD, None).await.unwrap();
    clock.advance_ms(PAST_ACCESS_EXPIRY_MS);

    for (callers, fault) in [(20, Fault::Stall), (10, Fault::Stall)] {
        proxy.set(fault);
        let before = proxy.count(REFRESH);
        let (results, longest) = concurrent_callers(&client, callers).await;
        let requests = proxy.count(REFRESH) - before;
        eprintln!(
            "{callers} callers during a stalled refresh: {requests} request(s), longest wait {longest:?}"
        );
        assert_eq!(requests, 1, "{callers} callers share one refresh");
        for result in results {
            assert_eq!(
                result,
                Err(AuthError::Transient {
                    cause: TransientCause::Timeout
                })
            );
        }
    }
    // The next caller, after the failure, tries again; with the network back it works.
    proxy.set(Fault::Pass);
    client.access_token().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn access_token_gives_up_at_its_deadline_while_the_refresh_goes_on() {
    let server = Server::start().await;
    let proxy = FaultProxy::start(server.addr).await;
    let clock = clock();
    let device = Device::new();
    let mut config = device.config(&proxy.url(), Arc::new(clock.clone()));
    config.request_timeout = Duration::from_secs(60);
    config.token_deadline = Duration::from_secs(1);
    let client = AuthClient::new(config).unwrap();
    client.initialize().await;
    client.sign_up(&email("deadline"), PASSWORD, None).await.unwrap();
    clock.advance_ms(PAST_ACCESS_EXPIRY_MS);
    proxy.set(Fault::Stall);
    // Without the deadline this would wait for the 60 s request timeout.
    let result = tokio::time::timeout(Duration::from_secs(30), client.access_token())
        .await
        .expect("access_token() returned at its deadline, long before the request timeout");
    assert_eq!(
        result,
        Err(AuthError::Transient {
            cause: TransientCause::Timeout
        })
    );
    assert_eq!(proxy.count(REFRESH), 1);
}
