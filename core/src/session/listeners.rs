//! Subscribers to [`AuthEvent`]s. A subscriber that panics (or, through the bindings,
//! throws) is isolated: the others still get the event, and the client carries on.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, PoisonError, Weak};

use super::state::AuthEvent;

/// A function called with every event, on the task that produced it: keep it short.
pub type Listener = Arc<dyn Fn(&AuthEvent) + Send + Sync>;

#[derive(Default)]
pub(crate) struct Listeners {
    inner: Arc<Mutex<Registry>>,
}

#[derive(Default)]
struct Registry {
    next_id: u64,
    listeners: BTreeMap<u64, Listener>,
}

/// Keeps a subscription alive; dropping it (or calling [`Subscription::cancel`]) ends it.
pub struct Subscription {
    id: u64,
    registry: Weak<Mutex<Registry>>,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Subscription({})", self.id)
    }
}

impl Subscription {
    /// Ends the subscription now.
    pub fn cancel(self) {}
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(registry) = self.registry.upgrade() {
            registry
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .listeners
                .remove(&self.id);
        }
    }
}

impl Listeners {
    pub(crate) fn subscribe(&self, listener: Listener) -> Subscription {
        let mut registry = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let id = registry.next_id;
        registry.next_id += 1;
        registry.listeners.insert(id, listener);
        Subscription {
            id,
            registry: Arc::downgrade(&self.inner),
        }
    }

    pub(crate) fn emit(&self, event: &AuthEvent) {
        // Snapshot first: a listener may subscribe or unsubscribe while being called.
        let listeners: Vec<Listener> = self
            .inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .listeners
            .values()
            .cloned()
            .collect();
        for listener in listeners {
            if catch_unwind(AssertUnwindSafe(|| listener(event))).is_err() {
                tracing::warn!("an auth event listener panicked; it was skipped");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::state::AuthEvent;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn a_panicking_listener_harms_nobody_and_dropping_unsubscribes() {
        let listeners = Listeners::default();
        let calls = Arc::new(AtomicUsize::new(0));
        let _bad = listeners.subscribe(Arc::new(|_| panic!("listener bug")));
        let counter = calls.clone();
        let good = listeners.subscribe(Arc::new(move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
        }));
        listeners.emit(&AuthEvent::Refreshed);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        drop(good);
        listeners.emit(&AuthEvent::Refreshed);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
