//! Where the auth server is, how long to wait for it, and the HTTP client built from that.

use std::sync::Arc;
use std::time::Duration;

use rustls_platform_verifier::BuilderVerifierExt;

use crate::error::{AuthError, TransientCause};

/// Where the auth server is and how long to wait for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportConfig {
    /// The server's base URL, `http` or `https`, e.g. `https://api.example.com`. A path is
    /// kept (`https://example.com/api`); a query, fragment or user info is refused.
    pub server_url: String,
    /// The routes' prefix, `/auth` by default (PROTOCOL section 1); `""` for none.
    pub route_prefix: String,
    /// How long to wait for a connection (DNS, TCP and TLS).
    pub connect_timeout: Duration,
    /// How long a whole request may take, reading the answer included.
    pub request_timeout: Duration,
}

impl TransportConfig {
    /// A configuration for `server_url` with the default prefix and timeouts (10 s to
    /// connect, 30 s per request: a mobile network on a bad day, not a dead one).
    pub fn new(server_url: impl Into<String>) -> TransportConfig {
        TransportConfig {
            server_url: server_url.into(),
            route_prefix: "/auth".to_owned(),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
        }
    }

    /// Checks the configuration and returns the base of every route URL (server URL plus
    /// prefix, without a trailing slash) and whether it is HTTPS.
    pub(crate) fn base_url(&self) -> Result<(String, bool), AuthError> {
        let invalid = |message: &str| AuthError::InvalidInput {
            message: message.to_owned(),
        };
        let url = reqwest::Url::parse(self.server_url.trim())
            .map_err(|_| invalid("the server URL is not a valid URL"))?;
        let https = match url.scheme() {
            "https" => true,
            "http" => false,
            _ => return Err(invalid("the server URL must start with http:// or https://")),
        };
        if url.host_str().is_none_or(str::is_empty) {
            return Err(invalid("the server URL has no host"));
        }
        // User info would be sent to the server and shown in `Debug`; a query or fragment
        // would end up in the middle of every route.
        if !url.username().is_empty() || url.password().is_some() {
            return Err(invalid("the server URL must not contain a user name or password"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(invalid("the server URL must not have a query or fragment"));
        }
        let prefix = self.route_prefix.trim_end_matches('/');
        if !(prefix.is_empty() || prefix.starts_with('/'))
            || prefix.contains(['?', '#', '%', '\\'])
            || prefix.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(invalid("the route prefix must be empty or a path such as /auth"));
        }
        if self.connect_timeout.is_zero() || self.request_timeout.is_zero() {
            return Err(invalid("timeouts must be longer than zero"));
        }
        let base = format!("{}{prefix}", url.as_str().trim_end_matches('/'));
        Ok((base, https))
    }

    /// The HTTP client for this configuration; `customize` lets tests add what the app
    /// cannot set (a failing DNS resolver).
    pub(crate) fn client(
        &self,
        https_only: bool,
        customize: impl FnOnce(reqwest::ClientBuilder) -> reqwest::ClientBuilder,
    ) -> Result<reqwest::Client, TransientCause> {
        let builder = reqwest::Client::builder()
            .tls_backend_preconfigured(tls_config()?)
            .https_only(https_only)
            .connect_timeout(self.connect_timeout)
            .timeout(self.request_timeout)
            // The API never redirects; following one would re-send a password (307) or a
            // bearer token to wherever a captive portal points. A 3xx is "not the server".
            .redirect(reqwest::redirect::Policy::none())
            .referer(false)
            .user_agent(concat!("holdfast-core/", env!("CARGO_PKG_VERSION")));
        customize(builder)
            .build()
            .map_err(|error| tls_unavailable(&error))
    }
}

/// Makes ring rustls's process-wide default crypto provider, unless the app installed one.
///
/// Cargo unifies reqwest's features across the app: once holdfast-core brings
/// `rustls-no-provider`, any other reqwest client in the process panics when it is built
/// without a process-wide default provider. So ring becomes that default, but only when
/// the app installed none: an app's own choice always wins. Done when a transport is made
/// (it is cheap), not when its HTTP client is built at the first request: the app's own
/// clients may be built before that.
pub(super) fn install_default_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// rustls with ring as its crypto provider, and the platform's certificate verifier (the
/// OS trust store, as the system's own HTTP stack would use).
///
/// ring rather than reqwest's default aws-lc-rs: the device key already uses ring, and
/// aws-lc-rs would add a second crypto library (and a C build with CMake) to every mobile
/// build. The provider is passed in explicitly for this client.
fn tls_config() -> Result<rustls::ClientConfig, TransientCause> {
    install_default_provider();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|builder| builder.with_platform_verifier())
        .map_err(|error| tls_unavailable(&error))?
        .with_no_client_auth();
    // reqwest is built for HTTP/1.1 only (no `http2` feature): say so in the handshake.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// TLS cannot be set up on this device (e.g. Android before the platform verifier is
/// initialised): nothing the user typed is wrong, so it is reported as the network being
/// unavailable.
fn tls_unavailable(error: &dyn std::fmt::Display) -> TransientCause {
    TransientCause::Network(format!("TLS is unavailable: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(url: &str, prefix: &str) -> Result<String, AuthError> {
        TransportConfig {
            route_prefix: prefix.to_owned(),
            ..TransportConfig::new(url)
        }
        .base_url()
        .map(|(base, _)| base)
    }

    #[test]
    fn base_urls_are_normalised() {
        assert_eq!(
            base("https://h.example", "/auth").unwrap(),
            "https://h.example/auth"
        );
        assert_eq!(
            base("https://h.example/", "/auth/").unwrap(),
            "https://h.example/auth"
        );
        assert_eq!(
            base("http://127.0.0.1:8080/api/", "/auth").unwrap(),
            "http://127.0.0.1:8080/api/auth"
        );
        assert_eq!(base("https://h.example", "").unwrap(), "https://h.example");
    }

    #[test]
    fn bad_configurations_are_invalid_input() {
        for (url, prefix) in [
            ("", "/auth"),
            ("h.example", "/auth"),
            ("ftp://h.example", "/auth"),
            ("file:///etc/passwd", "/auth"),
            ("https://user:pw@h.example", "/auth"),
            ("https://h.example?x=1", "/auth"),
            ("https://h.example#f", "/auth"),
            ("https://h.example", "auth"),
            ("https://h.example", "/a b"),
            ("https://h.example", "/a?b"),
        ] {
            assert!(
                matches!(base(url, prefix), Err(AuthError::InvalidInput { .. })),
                "{url} {prefix}"
            );
        }
        let zero = TransportConfig {
            request_timeout: Duration::ZERO,
            ..TransportConfig::new("https://h.example")
        };
        assert!(matches!(zero.base_url(), Err(AuthError::InvalidInput { .. })));
    }
}
