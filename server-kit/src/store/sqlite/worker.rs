//! Connection threads: each connection lives on its own thread and runs the calls queued
//! for it, so SQLite's blocking I/O never runs on the async executor.
//!
//! This replaces a `spawn_blocking` per call, which measured four to five times slower here
//! (each call woke a pool thread; under load the threads then queued on the connection
//! locks): a busy connection thread drains its queue without sleeping, and a caller pays
//! one channel send and one wake-up.

use super::Fail;
use crate::store::StoreError;
use rusqlite::Connection;
use std::panic::{self, AssertUnwindSafe};
use std::thread::{self, JoinHandle};
use tokio::sync::{mpsc, oneshot};

/// Calls waiting per connection before callers wait (asynchronously) to queue more.
const QUEUE: usize = 1024;

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// The queue of one connection's thread.
#[derive(Clone)]
pub(super) struct Worker {
    jobs: mpsc::Sender<Job>,
}

impl Worker {
    /// Moves `conn` onto a new thread named `name`, whose handle goes to `threads`.
    pub(super) fn spawn(name: String, mut conn: Connection, threads: &mut Threads) -> Result<Worker, Fail> {
        let (jobs, mut queue) = mpsc::channel::<Job>(QUEUE);
        let thread = thread::Builder::new()
            .name(name)
            .spawn(move || {
                // Ends when every sender is gone, that is when the store is dropped.
                while let Some(job) = queue.blocking_recv() {
                    // A panicking call must not take the connection down for every later one;
                    // its open transaction, if any, rolled back as it unwound, and its caller
                    // learns of it from the dropped reply.
                    let _ = panic::catch_unwind(AssertUnwindSafe(|| job(&mut conn)));
                }
            })
            .map_err(|error| StoreError::backend("open", error))?;
        threads.0.push(thread);
        Ok(Worker { jobs })
    }

    /// Calls waiting on this connection.
    pub(super) fn backlog(&self) -> usize {
        self.jobs.max_capacity() - self.jobs.capacity()
    }

    /// Runs `call` on this connection and returns its answer. Once queued, the call runs to
    /// its end even if the caller's future is dropped, so a transaction is never torn by
    /// a client going away.
    pub(super) async fn run<T, F>(&self, operation: &'static str, call: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, Fail> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            // The caller may have gone; then nobody needs the answer.
            let _ = reply.send(call(conn));
        });
        self.jobs
            .send(job)
            .await
            .map_err(|_| StoreError::backend(operation, "the database connection is closed"))?;
        match answer.await {
            Ok(result) => result.map_err(|fail| fail.into_store(operation)),
            Err(_) => Err(StoreError::backend(
                operation,
                "the database call failed without an answer",
            )),
        }
    }
}

/// The connection threads, joined on drop so the file is closed when the store is gone
/// (a restart in the same process, a test deleting its directory).
///
/// Must be dropped after every [`Worker`]: their threads end only once their queues close.
#[derive(Default)]
pub(super) struct Threads(Vec<JoinHandle<()>>);

impl Drop for Threads {
    fn drop(&mut self) {
        for thread in self.0.drain(..) {
            // A thread's panics are caught per call; a join error has nothing left to clean.
            let _ = thread.join();
        }
    }
}
