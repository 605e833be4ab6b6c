//! The per-user change broadcast a [`SyncItemStore`](super::SyncItemStore) publishes into,
//! and what places a change relative to a snapshot: its [`Stamp`], the snapshot page's
//! [`Floor`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::broadcast;

use super::Item;

/// Changes a slow subscriber may fall behind before it is told it lagged (it then reads a
/// fresh snapshot).
pub const CHANGES_PER_USER: usize = 256;

/// Where a change stands in its store's commit order, to compare it with a snapshot's
/// [`Floor`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stamp {
    /// The count of the store's commits, this one included (a store that commits one write
    /// at a time in this process, as SQLite).
    Commit(u64),
    /// The id of the PostgreSQL transaction that wrote it.
    Xid(u64),
}

/// What goes through a user's broadcast.
#[derive(Debug, Clone)]
pub enum Change {
    /// An item was written.
    Item {
        /// The item as written.
        item: Arc<Item>,
        /// Where its write stands in the commit order.
        stamp: Stamp,
    },
    /// Changes may have been missed: every subscriber reads a fresh snapshot.
    Resync,
}

/// The changes a snapshot page already holds: a subscription skips them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Floor {
    /// The commits counted when the page was read (see [`Stamp::Commit`]).
    Commits(u64),
    /// The PostgreSQL transactions the page's statement saw (see [`Stamp::Xid`]).
    Transactions(TxSnapshot),
}

impl Floor {
    /// Whether the page holds the change stamped `stamp` (or a later write of its key). A
    /// stamp of another kind than the floor is never held.
    pub fn holds(&self, stamp: Stamp) -> bool {
        match (self, stamp) {
            (Floor::Commits(commits), Stamp::Commit(commit)) => commit <= *commits,
            (Floor::Transactions(snapshot), Stamp::Xid(xid)) => snapshot.sees(xid),
            _ => false,
        }
    }
}

/// The transactions a PostgreSQL snapshot sees: `pg_current_snapshot()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxSnapshot {
    xmin: u64,
    xmax: u64,
    in_progress: Vec<u64>,
}

impl TxSnapshot {
    /// Parses `xmin:xmax:xip,xip,...` (the text form of `pg_snapshot`); `None` for anything
    /// else.
    pub fn parse(text: &str) -> Option<TxSnapshot> {
        let mut parts = text.split(':');
        let xmin = parts.next()?.parse().ok()?;
        let xmax = parts.next()?.parse().ok()?;
        let in_progress = match parts.next()? {
            "" => Vec::new(),
            list => list
                .split(',')
                .map(|xid| xid.parse().ok())
                .collect::<Option<Vec<u64>>>()?,
        };
        if parts.next().is_some() {
            return None;
        }
        Some(TxSnapshot {
            xmin,
            xmax,
            in_progress,
        })
    }

    /// Whether the transaction `xid` had committed when the snapshot was taken, i.e.
    /// whether the snapshot holds its write or a later one. (A transaction that aborted
    /// sends no notification, so "visible" here means "committed before".)
    pub fn sees(&self, xid: u64) -> bool {
        xid < self.xmin || (xid < self.xmax && !self.in_progress.contains(&xid))
    }
}

/// One broadcast per user with at least one subscriber in this process, of
/// [`CHANGES_PER_USER`] changes; removed with the last subscriber.
#[derive(Default)]
pub struct Channels {
    senders: Mutex<HashMap<String, broadcast::Sender<Change>>>,
}

impl std::fmt::Debug for Channels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channels").field("users", &self.len()).finish()
    }
}

impl Channels {
    /// Sends `change` to the user's subscribers, if any.
    pub fn publish(&self, user_id: &str, change: Change) {
        if let Some(sender) = lock(&self.senders).get(user_id) {
            // An error only means nobody listens any more.
            let _ = sender.send(change);
        }
    }

    /// Whether the user has a subscriber here.
    pub fn is_subscribed(&self, user_id: &str) -> bool {
        lock(&self.senders).contains_key(user_id)
    }

    /// Tells every subscriber of every user to read a fresh snapshot.
    pub fn resync_all(&self) {
        for sender in lock(&self.senders).values() {
            let _ = sender.send(Change::Resync);
        }
    }

    /// How many users have a subscriber here.
    pub fn len(&self) -> usize {
        lock(&self.senders).len()
    }

    /// Whether no user has a subscriber here.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A receiver of the user's changes from now on; pair it with [`Channels::release`].
    pub(crate) fn subscribe(&self, user_id: &str) -> broadcast::Receiver<Change> {
        let mut senders = lock(&self.senders);
        match senders.get(user_id) {
            Some(sender) => sender.subscribe(),
            None => {
                let (sender, receiver) = broadcast::channel(CHANGES_PER_USER);
                senders.insert(user_id.to_owned(), sender);
                receiver
            }
        }
    }

    /// Removes the user's broadcast if its last receiver is gone.
    pub(crate) fn release(&self, user_id: &str) {
        let mut senders = lock(&self.senders);
        // Subscribing also holds this lock, so no receiver appears while we look.
        if senders
            .get(user_id)
            .is_some_and(|sender| sender.receiver_count() == 0)
        {
            senders.remove(user_id);
        }
    }
}

/// The map is only ever inserted into or removed from, so a lock poisoned by a panic
/// elsewhere still guards consistent data.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_see_what_committed_before_them() {
        let snapshot = TxSnapshot::parse("100:110:100,104,107").expect("parses");
        assert!(snapshot.sees(99));
        assert!(!snapshot.sees(100), "in progress");
        assert!(snapshot.sees(101));
        assert!(!snapshot.sees(104), "in progress");
        assert!(snapshot.sees(109));
        assert!(!snapshot.sees(110), "started after");
        assert!(!snapshot.sees(500));
        let quiet = TxSnapshot::parse("7:7:").expect("parses");
        assert!(quiet.sees(6));
        assert!(!quiet.sees(7));
        for bad in ["", "1:2", "1:2:x", "a:2:", "1:2:3:4", "1:2:3,"] {
            assert_eq!(TxSnapshot::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn floors_hold_the_changes_of_their_own_kind_up_to_their_point() {
        let commits = Floor::Commits(5);
        assert!(commits.holds(Stamp::Commit(5)));
        assert!(!commits.holds(Stamp::Commit(6)));
        assert!(!commits.holds(Stamp::Xid(1)), "another kind is never held");
        let transactions = Floor::Transactions(TxSnapshot::parse("10:12:").expect("parses"));
        assert!(transactions.holds(Stamp::Xid(11)));
        assert!(!transactions.holds(Stamp::Xid(12)));
        assert!(!transactions.holds(Stamp::Commit(1)));
    }

    #[test]
    fn a_user_s_broadcast_goes_with_its_last_receiver() {
        let channels = Channels::default();
        let item = Arc::new(Item {
            key: "k".to_owned(),
            value: serde_json::json!(1),
            version: 1,
            device_id: "d".to_owned(),
            updated_at: 0,
        });
        // Nobody listens: nothing is kept.
        channels.publish("u", Change::Resync);
        assert!(channels.is_empty());
        let mut first = channels.subscribe("u");
        let second = channels.subscribe("u");
        assert!(channels.is_subscribed("u") && !channels.is_subscribed("v"));
        channels.publish(
            "u",
            Change::Item {
                item,
                stamp: Stamp::Commit(1),
            },
        );
        channels.resync_all();
        assert!(matches!(
            first.try_recv(),
            Ok(Change::Item {
                stamp: Stamp::Commit(1),
                ..
            })
        ));
        assert!(matches!(first.try_recv(), Ok(Change::Resync)));
        drop(second);
        channels.release("u");
        assert_eq!(channels.len(), 1, "one receiver is left");
        drop(first);
        channels.release("u");
        assert!(channels.is_empty());
    }
}
