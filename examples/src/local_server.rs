//! The server kit on a temporary SQLite database and a free loopback port: the auth routes
//! and the WebSocket sync endpoint (`/sync`, items in memory), with a fresh secret and the
//! kit's own defaults. It is the shared test-server fixture (`holdfast_testing`), as every
//! test and example starts it.

use holdfast_server_kit::sync::{SharedCollection, SyncOptions};
use holdfast_server_kit::{ServerConfig, tokens};
use holdfast_testing::TestServer;

/// A running server; stops (gracefully) and deletes its database when dropped.
pub struct LocalServer {
    server: TestServer,
}

impl LocalServer {
    /// Starts a server with a fresh secret; `configure` adjusts the defaults.
    pub async fn start(
        configure: impl FnOnce(&mut ServerConfig),
    ) -> Result<LocalServer, Box<dyn std::error::Error>> {
        let server = TestServer::builder()
            .secrets(vec![tokens::generate_secret()])
            .configure(configure)
            .sync(SharedCollection::memory(), SyncOptions::default())
            .try_start()
            .await
            .map_err(|error| -> Box<dyn std::error::Error> { error })?;
        Ok(LocalServer { server })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    /// `http://127.0.0.1:PORT/sync`: the sync endpoint, as device proofs name it.
    pub fn sync_url(&self) -> String {
        self.server.url("/sync")
    }

    /// Stops the server and waits until it has finished its requests in flight.
    pub async fn stop(self) {
        self.server.stop().await;
    }
}
