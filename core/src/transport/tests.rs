use super::*;
use crate::error::TransientCause;
use holdfast_protocol::endpoint::{Me, NoBody, RevokeDevice};

#[test]
fn debug_shows_the_url_only() {
    let transport = Transport::new(TransportConfig::new("https://auth.example/")).unwrap();
    assert_eq!(
        format!("{transport:?}"),
        r#"Transport { url: "https://auth.example/auth" }"#
    );
    assert_eq!(transport.base_url(), "https://auth.example/auth");
}

#[test]
fn urls_for_proofs_are_the_urls_requested() {
    let transport = Transport::new(TransportConfig::new("HTTPS://Auth.Example:443/api/")).unwrap();
    assert_eq!(transport.url_of(&Me), "https://auth.example/api/auth/me");
    let revoke = RevokeDevice::new("a b/c#%2e").unwrap();
    assert_eq!(
        transport.url_of(&revoke),
        "https://auth.example/api/auth/device/a%20b%2Fc%23%252e"
    );
}

#[tokio::test]
async fn an_unsendable_proof_is_an_invalid_request() {
    let transport = Transport::new(TransportConfig::new("http://127.0.0.1:9")).unwrap();
    match transport
        .send(&Me, &NoBody, Some("token"), Some("bad\nproof-secret"))
        .await
    {
        Err(Failure::InvalidRequest { message }) => assert!(!message.contains("secret"), "{message}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn invalid_urls_are_refused_at_construction() {
    assert!(matches!(
        Transport::new(TransportConfig::new("not a url")),
        Err(AuthError::InvalidInput { .. })
    ));
}

/// A resolver that fails like a phone without DNS; no name is looked up for real, so the
/// test sends nothing beyond this process.
struct NoDns;

impl reqwest::dns::Resolve for NoDns {
    fn resolve(&self, _name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        Box::pin(async {
            Err::<reqwest::dns::Addrs, _>(Box::new(std::io::Error::other("no DNS server reachable")).into())
        })
    }
}

#[tokio::test]
async fn dns_failure_is_transient_network() {
    let transport = Transport::with_client(TransportConfig::new("http://auth.invalid"), |builder| {
        builder.dns_resolver(std::sync::Arc::new(NoDns))
    })
    .unwrap();
    match transport.send(&Me, &NoBody, Some("token"), None).await {
        Err(Failure::Transient {
            cause: TransientCause::Network(message),
            server_time_ms: None,
        }) => assert!(message.contains("no DNS server reachable"), "{message}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn unsendable_ids_and_tokens_are_invalid_requests() {
    // A closed port: nothing may be sent, so nothing must be listening either.
    let transport = Transport::new(TransportConfig::new("http://127.0.0.1:9")).unwrap();
    match transport
        .send(&Me, &NoBody, Some("bad\ntoken-secret"), None)
        .await
    {
        Err(Failure::InvalidRequest { message }) => assert!(!message.contains("secret"), "{message}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn the_http_client_is_built_at_the_first_request_only() {
    let transport = Transport::new(TransportConfig::new("http://127.0.0.1:9")).unwrap();
    let clone = transport.clone();
    assert!(
        !transport.has_http_client(),
        "making a transport builds no HTTP client"
    );
    assert_eq!(transport.url_of(&Me), "http://127.0.0.1:9/auth/me");
    assert!(!transport.has_http_client(), "naming a URL builds none either");
    // A bad token: refused before anything is sent, after the client is built.
    let _ = transport.send(&Me, &NoBody, Some("bad\ntoken"), None).await;
    assert!(transport.has_http_client());
    assert!(clone.has_http_client(), "clones share the one client");
}

/// Whether [`unbuildable_once`] has failed its build yet.
static FAILED_ONCE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Makes the first build fail as TLS that cannot be set up does (a TLS configuration
/// reqwest does not know), and the next ones succeed.
fn unbuildable_once(builder: reqwest::ClientBuilder) -> reqwest::ClientBuilder {
    if FAILED_ONCE.swap(true, std::sync::atomic::Ordering::SeqCst) {
        builder
    } else {
        builder.tls_backend_preconfigured(())
    }
}

#[tokio::test]
async fn a_client_that_cannot_be_built_fails_its_request_and_is_built_again_later() {
    let transport = Transport::with_client(TransportConfig::new("http://127.0.0.1:9"), unbuildable_once)
        .expect("building the HTTP client is not construction's business");
    match transport.send(&Me, &NoBody, Some("bad\ntoken"), None).await {
        Err(Failure::Transient {
            cause: TransientCause::Network(message),
            server_time_ms: None,
        }) => assert!(message.starts_with("TLS is unavailable"), "{message}"),
        other => panic!("{other:?}"),
    }
    assert!(!transport.has_http_client(), "a failed build is not kept");
    // The next request builds it (and then refuses the token, as it should).
    match transport.send(&Me, &NoBody, Some("bad\ntoken"), None).await {
        Err(Failure::InvalidRequest { .. }) => {}
        other => panic!("{other:?}"),
    }
    assert!(transport.has_http_client());
}
