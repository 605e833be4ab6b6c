//! A start that needs no request builds no HTTP client: the client's transport builds it
//! at the first request (`transport/lazy.rs`), so a restored session with a fresh token
//! costs nothing for the network.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use super::{AuthClient, AuthState, ClientConfig};
use crate::vault::{KeyProvider, KeyProviderError, KeySource};

/// The host app's key keeper, in memory.
#[derive(Default)]
struct MemoryKey(Mutex<Option<Vec<u8>>>);

impl KeyProvider for MemoryKey {
    fn load_key(&self) -> Result<Option<Vec<u8>>, KeyProviderError> {
        Ok(self.0.lock().unwrap_or_else(PoisonError::into_inner).clone())
    }

    fn store_key(&self, key: &[u8]) -> Result<(), KeyProviderError> {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(key.to_vec());
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_start_that_needs_no_request_builds_no_http_client_until_a_request() {
    let server = holdfast_testing::TestServer::builder()
        .secrets(vec!["holdfast-core-cold-start-secret-0123456789".into()])
        .quick()
        .start()
        .await;
    let dir = tempfile::tempdir().unwrap();
    let key = Arc::new(MemoryKey::default());
    let client = || {
        let config = ClientConfig::new(
            server.base_url(),
            dir.path().join("holdfast.db"),
            KeySource::Provided(key.clone()),
        );
        AuthClient::new(config).unwrap()
    };
    let first = client();
    first.initialize().await;
    first
        .sign_up("cold-start@example.com", "correct horse battery", None)
        .await
        .unwrap();
    assert!(first.inner.transport.has_http_client());
    drop(first);

    let restarted = client();
    assert!(!restarted.inner.transport.has_http_client());
    let state = restarted.initialize().await;
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
    restarted.access_token().await.unwrap();
    // What the start left running (the outbox delivery, the background refresh, not due
    // for minutes) has had time to send, had it anything to send.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !restarted.inner.transport.has_http_client(),
        "a start with a fresh token made an HTTP client"
    );
    restarted.refresh().await.unwrap();
    assert!(restarted.inner.transport.has_http_client());
}
