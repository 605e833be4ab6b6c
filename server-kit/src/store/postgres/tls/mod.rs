//! How connections to PostgreSQL are opened: the URL's `sslmode` and `sslrootcert`, read
//! once into a [`Connector`] that both the pool and the sync collection's `LISTEN`
//! connection use, so every connection of a store is secured the same way.
//!
//! - no `sslmode` (as before TLS was supported) and `sslmode=disable`: no TLS;
//! - `sslmode=require`, `verify-ca` and `verify-full`: TLS (rustls, ring), the server's
//!   certificate chain verified against `sslrootcert` (a PEM file of CA certificates) or,
//!   without it (or with `sslrootcert=system`), the system's root certificates, and its
//!   name verified against the host connected to, for all three. That is stricter than
//!   libpq, whose `require` checks nothing and `verify-ca` not the name; there is no mode
//!   that skips verification;
//! - `sslmode=prefer` and `allow`: refused, as they fall back to an unencrypted
//!   connection when the server (or whoever answers in its place) does not offer TLS.
//!
//! Client certificates (`sslcert`, `sslkey`) are not supported: tokio-postgres refuses the
//! URL as having an unknown option.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use deadpool_postgres::{Manager, ManagerConfig};
use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio_postgres::config::SslMode;
use tokio_postgres::{AsyncMessage, Client, Config, NoTls};
use tokio_postgres_rustls::MakeRustlsConnect;

mod params;

use params::{TlsParams, take_tls_params};

/// The protocol announced in the handshake (ALPN), as libpq 17 does; PostgreSQL 17 requires
/// it of direct TLS connections (`sslnegotiation=direct`), older servers ignore it.
const ALPN_POSTGRESQL: &[u8] = b"postgresql";

/// What the `sslmode=prefer` and `allow` refusals say.
const NO_FALLBACK: &str = "it falls back to an unencrypted connection when the server does not offer TLS, \
     which an auth server must not do: use sslmode=require (TLS, the certificate and host name verified) \
     or sslmode=disable (no TLS)";

/// The settings of a store's connections and how they are secured.
#[derive(Clone)]
pub(crate) struct Connector {
    config: Config,
    tls: Tls,
}

/// How a connection is secured.
#[derive(Clone)]
enum Tls {
    /// No TLS (`sslmode=disable`, or no `sslmode`).
    Plain,
    /// TLS, the server's certificate and name verified against the root certificates of
    /// `sslrootcert` (`None`: the system's).
    Verified {
        connect: MakeRustlsConnect,
        sslrootcert: Option<String>,
    },
}

/// Drives a connection opened by [`Connector::connect`] and yields its asynchronous
/// messages (notifications); `None` once it closed.
pub(crate) type Messages =
    Box<dyn FnMut(&mut Context<'_>) -> Poll<Option<Result<AsyncMessage, tokio_postgres::Error>>> + Send>;

impl Connector {
    /// Reads a URL (or a `key=value` connection string): its settings, and its `sslmode`
    /// and `sslrootcert` (see the module documentation). Messages never quote the URL, so
    /// never its password.
    pub(crate) fn from_url(url: &str) -> Result<Connector, String> {
        let TlsParams {
            rest,
            sslmode,
            sslrootcert,
        } = take_tls_params(url)?;
        let mut config: Config = rest
            .parse()
            .map_err(|e| format!("invalid PostgreSQL URL: {}", super::with_causes(&e)))?;
        if config.get_ssl_mode() != SslMode::Prefer {
            // An sslmode tokio-postgres read but the split above did not find: refuse
            // rather than guess which applies.
            return Err("sslmode could not be read from the URL".to_owned());
        }
        let tls = match (sslmode.as_deref(), sslrootcert.as_deref()) {
            (None | Some("disable"), Some(_)) => {
                return Err(
                    "sslrootcert is given but TLS is not: add sslmode=verify-full (or require) to use it"
                        .to_owned(),
                );
            }
            (None | Some("disable"), None) => Tls::Plain,
            (Some("require" | "verify-ca" | "verify-full"), None | Some("system")) => Tls::Verified {
                connect: rustls_connector(system_roots()?)?,
                sslrootcert: None,
            },
            (Some("require" | "verify-ca" | "verify-full"), Some(path)) => Tls::Verified {
                connect: rustls_connector(file_roots(path)?)?,
                sslrootcert: Some(path.to_owned()),
            },
            (Some(mode @ ("prefer" | "allow")), _) => {
                return Err(format!("sslmode={mode} is not supported: {NO_FALLBACK}"));
            }
            (Some(other), _) => {
                return Err(format!(
                    "invalid sslmode `{other}`: use disable, require, verify-ca or verify-full"
                ));
            }
        };
        config.ssl_mode(match tls {
            Tls::Plain => SslMode::Disable,
            Tls::Verified { .. } => SslMode::Require,
        });
        Ok(Connector { config, tls })
    }

    /// Connections with `config` as given: TLS (verified against the system's root
    /// certificates) when its `ssl_mode` is `Require`, none otherwise (tokio-postgres's
    /// default `Prefer` included, as with no `sslmode` in a URL).
    pub(crate) fn from_config(mut config: Config) -> Result<Connector, String> {
        let tls = match config.get_ssl_mode() {
            SslMode::Require => Tls::Verified {
                connect: rustls_connector(system_roots()?)?,
                sslrootcert: None,
            },
            _ => Tls::Plain,
        };
        if matches!(tls, Tls::Plain) {
            config.ssl_mode(SslMode::Disable);
        }
        Ok(Connector { config, tls })
    }

    /// The connection settings.
    #[cfg(test)]
    fn config(&self) -> &Config {
        &self.config
    }

    /// The connection settings, to adjust before the first connection.
    pub(crate) fn config_mut(&mut self) -> &mut Config {
        &mut self.config
    }

    /// Whether connections use TLS.
    pub(crate) fn uses_tls(&self) -> bool {
        matches!(self.tls, Tls::Verified { .. })
    }

    /// A pool manager opening connections this way.
    pub(crate) fn manager(&self, manager_config: ManagerConfig) -> Manager {
        match &self.tls {
            Tls::Plain => Manager::from_config(self.config.clone(), NoTls, manager_config),
            Tls::Verified { connect, .. } => {
                Manager::from_config(self.config.clone(), connect.clone(), manager_config)
            }
        }
    }

    /// Opens a connection outside the pool: its client, and what drives it (poll it until
    /// it yields `None`, or the client gets no answers).
    pub(crate) async fn connect(&self) -> Result<(Client, Messages), tokio_postgres::Error> {
        match &self.tls {
            Tls::Plain => {
                let (client, mut connection) = self.config.connect(NoTls).await?;
                Ok((client, Box::new(move |cx| connection.poll_message(cx))))
            }
            Tls::Verified { connect, .. } => {
                let (client, mut connection) = self.config.connect(connect.clone()).await?;
                Ok((client, Box::new(move |cx| connection.poll_message(cx))))
            }
        }
    }
}

impl fmt::Debug for Connector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Config's Debug leaves the password out.
        f.debug_struct("Connector")
            .field("config", &self.config)
            .field("tls", &self.uses_tls())
            .finish()
    }
}

/// The system's root certificates (`rustls-native-certs`: the OpenSSL locations, honouring
/// `SSL_CERT_FILE` and `SSL_CERT_DIR`, on Linux).
fn system_roots() -> Result<RootCertStore, String> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        let errors: Vec<String> = found.errors.iter().map(ToString::to_string).collect();
        return Err(format!(
            "sslmode asks for TLS but no system root certificate was found{}: give the server's CA \
             certificate with sslrootcert=PATH",
            if errors.is_empty() {
                String::new()
            } else {
                format!(" ({})", errors.join("; "))
            }
        ));
    }
    tracing::debug!(
        roots = added,
        "PostgreSQL TLS: trusting the system's root certificates"
    );
    Ok(roots)
}

/// The CA certificates of the PEM file at `path`.
fn file_roots(path: &str) -> Result<RootCertStore, String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read sslrootcert {path}: {e}"))?;
    let mut roots = RootCertStore::empty();
    for (index, cert) in CertificateDer::pem_slice_iter(&pem).enumerate() {
        let cert = cert.map_err(|e| format!("sslrootcert {path} is not valid PEM: {e}"))?;
        roots
            .add(cert)
            .map_err(|e| format!("sslrootcert {path}: certificate {} is invalid: {e}", index + 1))?;
    }
    if roots.is_empty() {
        return Err(format!(
            "sslrootcert {path} holds no certificate (expected PEM: -----BEGIN CERTIFICATE-----)"
        ));
    }
    Ok(roots)
}

/// A rustls connector on ring (whatever the process's default provider), trusting `roots`.
fn rustls_connector(roots: RootCertStore) -> Result<MakeRustlsConnect, String> {
    let mut config =
        rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS configuration: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
    config.alpn_protocols = vec![ALPN_POSTGRESQL.to_vec()];
    Ok(MakeRustlsConnect::new(config))
}

/// A hint for a connection that failed: a server that wants TLS where there is none, or a
/// certificate that rustls refused as not signed by a trusted CA.
pub(crate) fn connect_hint(connector: &Connector, error: &tokio_postgres::Error) -> Option<String> {
    let Tls::Verified { sslrootcert, .. } = &connector.tls else {
        let refused_plain = error.as_db_error().is_some_and(|db| {
            *db.code() == tokio_postgres::error::SqlState::INVALID_AUTHORIZATION_SPECIFICATION
                && db.message().contains("no encryption")
        });
        return refused_plain
            .then(|| "the server wants TLS: add sslmode=verify-full (or require) to the URL".to_owned());
    };
    let error: &(dyn std::error::Error + 'static) = error;
    let mut source = Some(error);
    while let Some(mut current) = source {
        // An io::Error's `source` skips the error it wraps (tokio-rustls wraps rustls's).
        if let Some(inner) = current
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            current = inner;
        }
        if let Some(rustls::Error::InvalidCertificate(certificate)) = current.downcast_ref::<rustls::Error>()
        {
            return Some(match certificate {
                rustls::CertificateError::UnknownIssuer => match sslrootcert {
                    Some(path) => {
                        format!("the server's certificate is not signed by a CA of sslrootcert {path}")
                    }
                    None => "the server's certificate is not signed by a CA among the system's root \
                             certificates: give its CA certificate with sslrootcert=PATH"
                        .to_owned(),
                },
                _ => return None,
            });
        }
        source = current.source();
    }
    None
}

#[cfg(test)]
mod tests;
