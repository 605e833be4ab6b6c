//! The server kit on a temporary SQLite database and a free loopback port: the auth routes
//! and the WebSocket sync endpoint (`/sync`, items in memory).

use std::net::SocketAddr;

use holdfast_server_kit::sync::{SharedCollection, SyncOptions};
use holdfast_server_kit::{Kit, ServerConfig, Stores, server, tokens};
use tokio::sync::oneshot;

/// A running server; stops (gracefully) and deletes its database when dropped.
pub struct LocalServer {
    address: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    _dir: tempfile::TempDir,
}

impl LocalServer {
    /// Starts a server with a fresh secret; `configure` adjusts the defaults.
    pub async fn start(
        configure: impl FnOnce(&mut ServerConfig),
    ) -> Result<LocalServer, Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let stores = Stores::sqlite(dir.path().join("holdfast.db"))?;
        let mut config = ServerConfig::new(vec![tokens::generate_secret()]);
        configure(&mut config);
        let kit = Kit::builder(config, stores)
            .sync(SharedCollection::memory(), SyncOptions::default())
            .build()
            .await?;
        let router = kit.standalone_router();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server::serve(listener, router, async move {
            let _ = stopped.await;
        }));
        Ok(LocalServer {
            address,
            stop: Some(stop),
            task: Some(task),
            _dir: dir,
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// `http://127.0.0.1:PORT/sync`: the sync endpoint, as device proofs name it.
    pub fn sync_url(&self) -> String {
        format!("http://{}/sync", self.address)
    }

    /// Stops the server and waits until it has finished its requests in flight.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
