//! What tells a server to stop: process signals, and the going-away signal that closes
//! upgraded connections (which an HTTP server's graceful shutdown does not wait for).

use std::sync::Arc;
use std::time::Duration;

/// SIGINT and SIGTERM (Ctrl-C where there are no Unix signals), listened for from the
/// moment [`ShutdownSignals::register`] returns: install it before announcing readiness, or
/// a supervisor's early signal kills the process instead of stopping it gracefully.
pub struct ShutdownSignals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
    #[cfg(not(unix))]
    ctrl_c: tokio::signal::windows::CtrlC,
}

impl std::fmt::Debug for ShutdownSignals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ShutdownSignals")
    }
}

impl ShutdownSignals {
    /// Starts listening for the signals. Needs a running tokio runtime.
    pub fn register() -> std::io::Result<ShutdownSignals> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(ShutdownSignals {
                interrupt: signal(SignalKind::interrupt())?,
                terminate: signal(SignalKind::terminate())?,
            })
        }
        #[cfg(not(unix))]
        {
            Ok(ShutdownSignals {
                ctrl_c: tokio::signal::windows::ctrl_c()?,
            })
        }
    }

    /// Waits for the next signal and names it.
    pub async fn recv(&mut self) -> &'static str {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.interrupt.recv() => "SIGINT",
                _ = self.terminate.recv() => "SIGTERM",
            }
        }
        #[cfg(not(unix))]
        {
            self.ctrl_c.recv().await;
            "Ctrl-C"
        }
    }
}

/// The server is stopping: long-lived connections (sync WebSockets, and a custom endpoint's
/// own) should close, with 1001 (going away) for a WebSocket, so clients reconnect at once,
/// to another instance behind a load balancer. Cheap to clone; clones share the signal and
/// the count of open connections.
///
/// A custom endpoint counts each connection with [`GoingAway::track`] and ends it when
/// [`GoingAway::stopping`] resolves; the server waits for them with
/// [`GoingAway::all_closed`].
#[derive(Debug, Clone, Default)]
pub struct GoingAway {
    inner: Arc<GoingAwayInner>,
}

#[derive(Debug)]
struct GoingAwayInner {
    /// `true` once the server is stopping.
    stopping: tokio::sync::watch::Sender<bool>,
    /// The number of connections open (admitted or waiting for their auth message).
    open: tokio::sync::watch::Sender<usize>,
}

impl Default for GoingAwayInner {
    fn default() -> Self {
        GoingAwayInner {
            stopping: tokio::sync::watch::Sender::new(false),
            open: tokio::sync::watch::Sender::new(0),
        }
    }
}

impl GoingAway {
    /// Closes every open connection with 1001, and any connection opened after this as
    /// soon as it is upgraded.
    pub fn trigger(&self) {
        self.inner.stopping.send_replace(true);
    }

    /// Waits until every connection has closed, at most `limit`; whether they all did.
    pub async fn all_closed(&self, limit: Duration) -> bool {
        let mut open = self.inner.open.subscribe();
        tokio::time::timeout(limit, open.wait_for(|open| *open == 0))
            .await
            .is_ok_and(|waited| waited.is_ok())
    }

    /// How many connections are open.
    pub fn open_connections(&self) -> usize {
        *self.inner.open.borrow()
    }

    /// Counts a connection until the guard is dropped.
    pub fn track(&self) -> OpenConnection {
        self.inner.open.send_modify(|open| *open += 1);
        OpenConnection(self.clone())
    }

    /// Resolves once the server is stopping (at once if it already is).
    pub async fn stopping(&self) {
        let mut stopping = self.inner.stopping.subscribe();
        // The sender lives in `self`, so this only ends when `true` was sent.
        let _ = stopping.wait_for(|stopping| *stopping).await;
    }
}

/// One open connection, counted by [`GoingAway`] until dropped.
#[derive(Debug)]
pub struct OpenConnection(GoingAway);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.inner.open.send_modify(|open| *open -= 1);
    }
}
