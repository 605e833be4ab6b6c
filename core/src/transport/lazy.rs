//! The HTTP client of a [`Transport`](super::Transport), built at its first request.
//!
//! Building it loads and parses the system's root certificates (about 4 ms on a desktop
//! Linux, more on a slow phone): too much for a start that needs no request. So a
//! transport keeps its configuration and builds the client when a request first needs it.

use std::sync::{Mutex, OnceLock, PoisonError};

use super::config::TransportConfig;
use super::failure::Failure;

/// The configuration of an HTTP client and, after the first request, the client.
pub(super) struct LazyClient {
    config: TransportConfig,
    https_only: bool,
    /// What tests add that the app cannot set (a failing DNS resolver).
    customize: fn(reqwest::ClientBuilder) -> reqwest::ClientBuilder,
    client: OnceLock<reqwest::Client>,
    /// Held while building, so two first requests at once parse the roots once.
    building: Mutex<()>,
}

impl LazyClient {
    pub(super) fn new(
        config: TransportConfig,
        https_only: bool,
        customize: fn(reqwest::ClientBuilder) -> reqwest::ClientBuilder,
    ) -> LazyClient {
        LazyClient {
            config,
            https_only,
            customize,
            client: OnceLock::new(),
            building: Mutex::new(()),
        }
    }

    pub(super) fn is_built(&self) -> bool {
        self.client.get().is_some()
    }

    /// The client, built now if this is the first request. A client that cannot be built
    /// (TLS unavailable on this device) is a transient failure of this request and is not
    /// remembered: the next request tries again, e.g. once the platform verifier is set up.
    pub(super) fn get(&self) -> Result<&reqwest::Client, Failure> {
        if let Some(client) = self.client.get() {
            return Ok(client);
        }
        let _building = self.building.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(client) = self.client.get() {
            return Ok(client);
        }
        let client = self
            .config
            .client(self.https_only, self.customize)
            .map_err(|cause| Failure::Transient {
                cause,
                server_time_ms: None,
            })?;
        Ok(self.client.get_or_init(|| client))
    }
}
