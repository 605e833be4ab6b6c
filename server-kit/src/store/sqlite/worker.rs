//! Connection threads: each connection lives on its own thread and runs the calls queued
//! for it, so SQLite's blocking I/O never runs on the async executor.
//!
//! This replaces a `spawn_blocking` per call, which measured four to five times slower here
//! (each call woke a pool thread; under load the threads then queued on the connection
//! locks): a busy connection thread drains its queue without sleeping, and a caller pays
//! one channel send and one wake-up.
//!
//! Group commit: a write queued with [`Worker::run_grouped`] runs inside a transaction it
//! shares with the grouped writes queued right behind it. The thread takes what is already
//! waiting (never waiting for more: a lone write commits at once), runs each in its own
//! savepoint, so one that fails is undone alone, commits once, and only then answers each
//! caller. A failed commit fails every write of the group. A call queued with
//! [`Worker::run`] ends the group before it and runs alone, in queue order.

use super::Fail;
use crate::store::StoreError;
use rusqlite::Connection;
use std::panic::{self, AssertUnwindSafe};
use std::thread::{self, JoinHandle};
use tokio::sync::{mpsc, oneshot};

/// Calls waiting per connection before callers wait (asynchronously) to queue more.
const QUEUE: usize = 1024;

/// Most writes committed together: bounds a group's transaction and its callers' wait.
const MAX_GROUP: usize = 256;

/// How a grouped write's caller is answered once the group's commit is known (`Err`: why
/// the commit failed).
type Answer = Box<dyn FnOnce(Result<(), &str>) + Send>;

/// A grouped write: runs on the open transaction (`None` when it could not begin) and says
/// whether the transaction is still sound (`false` once a savepoint could not be undone).
type GroupedJob = Box<dyn FnOnce(Option<&Connection>) -> (Answer, bool) + Send>;

enum Job {
    /// Runs alone; it may open its own transaction.
    Alone(Box<dyn FnOnce(&mut Connection) + Send>),
    /// Runs in a group commit.
    Grouped(GroupedJob),
}

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
                let mut next = None;
                // Ends when every sender is gone, that is when the store is dropped.
                while let Some(job) = next.take().or_else(|| queue.blocking_recv()) {
                    match job {
                        // A panicking call must not take the connection down for every later
                        // one; its open transaction, if any, rolled back as it unwound, and its
                        // caller learns of it from the dropped reply.
                        Job::Alone(job) => {
                            let _ = panic::catch_unwind(AssertUnwindSafe(|| job(&mut conn)));
                        }
                        Job::Grouped(first) => next = run_group(&mut conn, first, &mut queue),
                    }
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
        let job = Job::Alone(Box::new(move |conn| {
            // The caller may have gone; then nobody needs the answer.
            let _ = reply.send(call(conn));
        }));
        self.queue(operation, job, answer).await
    }

    /// Runs `change` in a group commit (see the module's documentation) and returns its
    /// answer once the group is durable. `change` must not open a transaction: it runs in
    /// a savepoint of the group's, undone alone when it fails.
    pub(super) async fn run_grouped<T, F>(&self, operation: &'static str, change: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, Fail> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = Job::Grouped(Box::new(move |conn: Option<&Connection>| {
            let (result, sound) = match conn {
                Some(conn) => in_savepoint(conn, change),
                None => (None, true),
            };
            let deliver: Answer = Box::new(move |commit| {
                let answer = match (commit, result) {
                    (Ok(()), Some(result)) => result,
                    (Err(why), _) => Err(Fail::Store(StoreError::backend(operation, why))),
                    // The change panicked: drop the reply, as for a call run alone.
                    (Ok(()), None) => return,
                };
                let _ = reply.send(answer);
            });
            (deliver, sound)
        }));
        self.queue(operation, job, answer).await
    }

    async fn queue<T>(
        &self,
        operation: &'static str,
        job: Job,
        answer: oneshot::Receiver<Result<T, Fail>>,
    ) -> Result<T, StoreError> {
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

/// Runs `change` in a savepoint, released when it succeeds and undone when it fails or
/// panics (then its result is `None`). The flag is `false` when undoing failed, which
/// leaves the transaction unfit to commit.
fn in_savepoint<T, F>(conn: &Connection, change: F) -> (Option<Result<T, Fail>>, bool)
where
    F: FnOnce(&Connection) -> Result<T, Fail>,
{
    if let Err(error) = conn.execute_batch("SAVEPOINT grouped") {
        return (Some(Err(error.into())), true);
    }
    let result = panic::catch_unwind(AssertUnwindSafe(|| change(conn))).ok();
    let end = match &result {
        Some(Ok(_)) => "RELEASE grouped",
        _ => "ROLLBACK TO grouped; RELEASE grouped",
    };
    match conn.execute_batch(end) {
        Ok(()) => (result, true),
        Err(error) => (Some(Err(error.into())), false),
    }
}

/// Runs `first` and the grouped writes queued behind it in one transaction, commits, then
/// answers them. Returns the call that ended the group by running alone, if any.
fn run_group(conn: &mut Connection, first: GroupedJob, queue: &mut mpsc::Receiver<Job>) -> Option<Job> {
    if let Err(error) = conn.execute_batch("BEGIN IMMEDIATE") {
        let (answer, _) = first(None);
        answer(Err(&error.to_string()));
        return None;
    }
    let mut answers = Vec::new();
    let (answer, mut sound) = first(Some(conn));
    answers.push(answer);
    let mut next = None;
    while sound && answers.len() < MAX_GROUP {
        match queue.try_recv() {
            Ok(Job::Grouped(job)) => {
                let (answer, still) = job(Some(conn));
                answers.push(answer);
                sound = still;
            }
            Ok(alone) => {
                next = Some(alone);
                break;
            }
            Err(_) => break,
        }
    }
    let commit = if sound {
        conn.execute_batch("COMMIT").map_err(|error| error.to_string())
    } else {
        Err("a grouped change could not be undone".to_owned())
    };
    if commit.is_err() && !conn.is_autocommit() {
        // Nothing of the group may stay: its callers are told it failed.
        let _ = conn.execute_batch("ROLLBACK");
    }
    for answer in answers {
        answer(commit.as_ref().map(|_| ()).map_err(String::as_str));
    }
    next
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

#[cfg(test)]
#[path = "worker_tests.rs"]
mod tests;
