//! Calls from Holdfast's own threads into the app's code, and how they stop before the
//! process exits.
//!
//! Listeners, key providers and device signers the app implements are called on tokio's
//! threads. Some hosts cannot take such a call while they shut down: CPython, from the
//! moment it starts finalizing, ends any thread that asks for the interpreter lock with
//! `pthread_exit`, and the unwind that follows through Rust's frames aborts the process
//! ("FATAL: exception not rethrown"). [`quiesce_for_exit`] closes the door first: calls
//! already in progress finish, later ones are not made (a listener misses the event; a key
//! provider or signer call fails with an error that never signs anyone out), and handles
//! released after that point are leaked instead of being handed back to the host, whose
//! objects are about to go anyway. The Python package calls it from `atexit`.

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Whether calls into the app may still start, and how many are running.
struct Calls {
    state: Mutex<CallState>,
    idle: Condvar,
}

struct CallState {
    closed: bool,
    running: usize,
}

static CALLS: Calls = Calls::new();

impl Calls {
    const fn new() -> Calls {
        Calls {
            state: Mutex::new(CallState {
                closed: false,
                running: 0,
            }),
            idle: Condvar::new(),
        }
    }

    fn enter(&self) -> Option<CallGuard<'_>> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.closed {
            return None;
        }
        state.running += 1;
        Some(CallGuard(self))
    }

    fn close_and_wait(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.closed = true;
        while state.running > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            state = self
                .idle
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }
}

/// A call into the app in progress; dropping it ends the call.
pub(crate) struct CallGuard<'a>(&'a Calls);

impl Drop for CallGuard<'_> {
    fn drop(&mut self) {
        let mut state = self.0.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.running -= 1;
        if state.running == 0 {
            self.0.idle.notify_all();
        }
    }
}

/// Starts a call into the app, or `None` once [`quiesce_for_exit`] has run.
pub(crate) fn enter() -> Option<CallGuard<'static>> {
    CALLS.enter()
}

/// An object the app implemented, held by Holdfast. Releasing it is a call into the app
/// too, so after [`quiesce_for_exit`] the last reference is leaked instead.
pub(crate) struct Foreign<T: ?Sized>(Option<Arc<T>>);

impl<T: ?Sized> Foreign<T> {
    pub(crate) fn new(object: Arc<T>) -> Foreign<T> {
        Foreign(Some(object))
    }

    /// Runs `call` on the object, or returns `None` when calls into the app have stopped.
    pub(crate) fn call<R>(&self, call: impl FnOnce(&T) -> R) -> Option<R> {
        let _call = enter()?;
        self.0.as_deref().map(call)
    }
}

impl<T: ?Sized> Drop for Foreign<T> {
    fn drop(&mut self) {
        let Some(object) = self.0.take() else { return };
        match enter() {
            Some(_call) => drop(object),
            None => std::mem::forget(object),
        }
    }
}

/// Stops every call from Holdfast's threads into the app's code (listeners, key providers,
/// device signers) and waits up to `timeout_ms` for the calls in progress to return.
/// Returns whether none is left. Meant for the moment the process exits, and cannot be
/// undone: afterwards listeners get no events and operations that need the app's key
/// provider or signer fail (without signing anyone out). The Python package calls it from
/// `atexit`; Kotlin and Swift apps have no need to.
#[uniffi::export]
pub fn quiesce_for_exit(timeout_ms: u32) -> bool {
    CALLS.close_and_wait(Duration::from_millis(u64::from(timeout_ms)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::thread;

    #[test]
    fn closing_waits_for_calls_in_progress_and_refuses_new_ones() {
        static LOCAL: Calls = Calls::new();
        let (started, running) = mpsc::channel();
        let (finish, finished) = mpsc::channel::<()>();
        let caller = thread::spawn(move || {
            let _call = LOCAL.enter().expect("open before closing");
            started.send(()).unwrap();
            finished.recv().unwrap();
        });
        running.recv().unwrap();
        // The call in progress holds the door open past a short deadline...
        assert!(!LOCAL.close_and_wait(Duration::from_millis(30)));
        assert!(LOCAL.enter().is_none(), "a call started after closing");
        // ...and closing completes as soon as it returns.
        finish.send(()).unwrap();
        assert!(LOCAL.close_and_wait(Duration::from_secs(5)));
        caller.join().unwrap();
    }
}
