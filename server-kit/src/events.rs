//! Revocation events (PROTOCOL 6.5): what the routes publish when they end a device's or a
//! session's access, so that open sync connections are cut off now rather than at their
//! next reconnect.
//!
//! The bus is in-process (a tokio broadcast channel). Several instances sharing a database
//! relay events between them through Redis ([`crate::relay::RedisRelay`]): what is published
//! here goes out to the other instances, and what they publish comes back in through
//! [`RevocationBus::deliver_remote`] (hooks run, subscribers see it as
//! [`Origin::Remote`], so it is never sent out again). The sync gate also re-checks open
//! connections against the stores periodically, so an event lost on the way delays a
//! cut-off by at most that interval (see `gate`); when the relay knows it may have lost
//! events (its subscription dropped), it delivers [`Revocation::Resync`].

use std::sync::{Arc, Mutex, PoisonError, Weak};

use tokio::sync::broadcast;

/// Something that ended access. Serialized (for the relay between instances) as JSON
/// tagged by `type`: `{"type":"device","userId":"…","deviceId":"…"}`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum Revocation {
    /// A device was revoked: every token it holds is refused.
    Device {
        /// Its owner.
        user_id: String,
        /// The device.
        device_id: String,
    },
    /// A session (token family) ended: a sign-out, or refresh-token reuse.
    Family {
        /// Its user.
        user_id: String,
        /// The family (`fam`).
        family: String,
    },
    /// One access token was revoked (sign-out of a token without a family).
    Token {
        /// Its user.
        user_id: String,
        /// The token's `jti`.
        jti: String,
    },
    /// Every session of the user ended (signed out everywhere).
    UserSessions {
        /// The user.
        user_id: String,
    },
    /// The account was deleted.
    UserDeleted {
        /// The user.
        user_id: String,
    },
    /// Events may have been lost (the relay between instances lost its subscription, or a
    /// subscriber lagged): whoever caches standings must drop them all and re-check every
    /// open connection against the stores.
    Resync,
}

impl Revocation {
    /// The user the event concerns; `None` for [`Revocation::Resync`], which concerns
    /// everyone.
    pub fn user_id(&self) -> Option<&str> {
        match self {
            Revocation::Device { user_id, .. }
            | Revocation::Family { user_id, .. }
            | Revocation::Token { user_id, .. }
            | Revocation::UserSessions { user_id }
            | Revocation::UserDeleted { user_id } => Some(user_id),
            Revocation::Resync => None,
        }
    }
}

/// Where an event on the bus came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Published in this process ([`RevocationBus::publish`]).
    Local,
    /// Relayed from another instance ([`RevocationBus::deliver_remote`]).
    Remote,
}

/// An event as subscribers receive it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// The event.
    pub event: Revocation,
    /// Where it came from: a relay sends only [`Origin::Local`] events to other instances.
    pub origin: Origin,
}

/// How many events a slow subscriber may fall behind before it is told it lagged (it then
/// re-checks everything it holds against the stores).
const CAPACITY: usize = 4096;

/// Called synchronously for every event, before `publish` returns.
pub type RevocationHook = dyn Fn(&Revocation) + Send + Sync;

/// The in-process revocation bus. Cheap to clone.
#[derive(Clone)]
pub struct RevocationBus {
    sender: broadcast::Sender<Delivered>,
    hooks: Arc<Mutex<Vec<Weak<RevocationHook>>>>,
    /// How many events were published here (not relayed in), for [`RevocationBus::published`].
    published: Arc<std::sync::atomic::AtomicU64>,
}

impl RevocationBus {
    /// A bus with no subscribers yet.
    pub fn new() -> RevocationBus {
        RevocationBus {
            sender: broadcast::channel(CAPACITY).0,
            hooks: Arc::default(),
            published: Arc::default(),
        }
    }

    /// Delivers `event`: hooks run before this returns (so a cache they invalidate can
    /// never answer from before the revocation once the route has answered), then every
    /// subscriber gets it.
    pub fn publish(&self, event: Revocation) {
        self.published.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.deliver(event, Origin::Local);
    }

    /// How many events were published on this bus so far (relayed ones not counted): what
    /// a relay compares its own count with to tell that it sent them all.
    pub fn published(&self) -> u64 {
        self.published.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Delivers `event` received from another instance: as [`RevocationBus::publish`]
    /// (hooks, then subscribers), marked [`Origin::Remote`] so that no relay sends it out
    /// again.
    pub fn deliver_remote(&self, event: Revocation) {
        self.deliver(event, Origin::Remote);
    }

    fn deliver(&self, event: Revocation, origin: Origin) {
        tracing::debug!(?event, ?origin, "revocation");
        let hooks: Vec<Arc<RevocationHook>> = {
            let mut hooks = self.hooks.lock().unwrap_or_else(PoisonError::into_inner);
            hooks.retain(|hook| hook.strong_count() > 0);
            hooks.iter().filter_map(Weak::upgrade).collect()
        };
        for hook in hooks {
            hook(&event);
        }
        // An error only means nobody listens.
        let _ = self.sender.send(Delivered { event, origin });
    }

    /// Runs `hook` for every event from now on, synchronously inside `publish`, for as
    /// long as the caller keeps `hook` alive (the bus holds it weakly). Hooks must be quick
    /// and must not publish.
    pub fn add_hook(&self, hook: &Arc<RevocationHook>) {
        self.hooks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Arc::downgrade(hook));
    }

    /// Every event published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Delivered> {
        self.sender.subscribe()
    }
}

impl Default for RevocationBus {
    fn default() -> Self {
        RevocationBus::new()
    }
}

impl std::fmt::Debug for RevocationBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RevocationBus")
            .field("subscribers", &self.sender.receiver_count())
            .finish()
    }
}
