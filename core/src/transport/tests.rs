use super::*;
use crate::error::TransientCause;

#[test]
fn path_segments_are_encoded_and_dot_segments_refused() {
    assert_eq!(path_segment("dev-1_a.b~c").as_deref(), Some("dev-1_a.b~c"));
    assert_eq!(path_segment("a/b?c#d e").as_deref(), Some("a%2Fb%3Fc%23d%20e"));
    assert_eq!(path_segment("é").as_deref(), Some("%C3%A9"));
    assert_eq!(path_segment("%2e%2e").as_deref(), Some("%252e%252e"));
    for refused in ["", ".", ".."] {
        assert_eq!(path_segment(refused), None);
    }
}

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
    assert_eq!(transport.url_for("/me"), "https://auth.example/api/auth/me");
    let route = Transport::device_route("a b/c").unwrap();
    assert_eq!(route, "/device/a%20b%2Fc");
    assert_eq!(
        transport.url_for(&route),
        "https://auth.example/api/auth/device/a%20b%2Fc"
    );
    assert!(matches!(
        Transport::device_route(".."),
        Err(Failure::InvalidRequest { .. })
    ));
}

#[tokio::test]
async fn an_unsendable_proof_is_an_invalid_request() {
    let transport = Transport::new(TransportConfig::new("http://127.0.0.1:9")).unwrap();
    match transport.me("token", Some("bad\nproof-secret")).await {
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
    let transport = Transport::with_client(&TransportConfig::new("http://auth.invalid"), |builder| {
        builder.dns_resolver(std::sync::Arc::new(NoDns))
    })
    .unwrap();
    match transport.me("token", None).await {
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
    assert!(matches!(
        transport.revoke_device("token", None, "..").await,
        Err(Failure::InvalidRequest { .. })
    ));
    match transport.me("bad\ntoken-secret", None).await {
        Err(Failure::InvalidRequest { message }) => assert!(!message.contains("secret"), "{message}"),
        other => panic!("{other:?}"),
    }
}
