//! A subscription to one user's changes, with the snapshot it reads through.
//!
//! Subscribe first, then read the snapshot through [`Subscription::snapshot`] (or page by
//! page): the subscription then yields exactly the changes the snapshot does not hold, so
//! no change is missed, none comes twice, and none is older than the snapshot's version of
//! its key.

use std::sync::Arc;

use tokio::sync::broadcast;

use crate::store::sync_items::{Change, CollectionError, Floor, Item, SnapshotPage, Stamp, SyncItemStore};

/// What a [`Subscription`] receives.
#[derive(Debug, Clone)]
pub enum Update {
    /// An item was written.
    Item(Arc<Item>),
    /// Changes were missed (the subscriber was too slow, or on PostgreSQL this instance's
    /// `LISTEN` connection dropped): read a fresh snapshot.
    Lagged,
}

/// The changes of one user's items; the user's broadcast goes away with its last
/// subscription.
pub struct Subscription {
    receiver: Option<broadcast::Receiver<Change>>,
    user_id: String,
    store: Arc<dyn SyncItemStore>,
    /// What the last snapshot read through this subscription holds: for each of its pages,
    /// the last key it covers (`None`: every key after the previous page's) and what it saw.
    floors: Vec<(Option<String>, Floor)>,
    /// A snapshot being read: the last key of the pages read so far (`None` before the
    /// first page).
    paging: Option<Option<String>>,
}

impl Subscription {
    /// Subscribes to `user_id`'s changes in `store`'s broadcast.
    pub(super) fn new(store: Arc<dyn SyncItemStore>, user_id: &str) -> Subscription {
        Subscription {
            receiver: Some(store.changes().subscribe(user_id)),
            user_id: user_id.to_owned(),
            store,
            floors: Vec::new(),
            paging: None,
        }
    }

    /// The next change, skipping those the last snapshot holds. Cancel-safe. Call it once
    /// the snapshot's last page is read (changes wait in the broadcast meanwhile, up to
    /// 256; then [`Update::Lagged`]).
    pub async fn recv(&mut self) -> Update {
        use broadcast::error::RecvError;
        let Some(receiver) = self.receiver.as_mut() else {
            return std::future::pending().await;
        };
        loop {
            match receiver.recv().await {
                Ok(Change::Item { item, stamp }) => {
                    if !held(&self.floors, &item.key, stamp) {
                        return Update::Item(item);
                    }
                }
                Ok(Change::Resync) | Err(RecvError::Lagged(_)) => return Update::Lagged,
                // The map holds the sender while this receiver lives, so this cannot happen.
                Err(RecvError::Closed) => return std::future::pending().await,
            }
        }
    }

    /// The next page of a snapshot of the user's items: the first page after each
    /// [`Update::Lagged`] (or ever), then the pages after it until one is `complete`. Each
    /// page is read on its own, and [`Subscription::recv`] then skips, key by key, exactly
    /// the changes the page holding that key already saw, so no change is missed, none
    /// comes twice, and none is older than the snapshot's version of its key. A page holds
    /// at most [`PAGE_MAX_ITEMS`](super::PAGE_MAX_ITEMS) items and about
    /// [`PAGE_BUDGET_BYTES`](super::PAGE_BUDGET_BYTES). Cancel-safe: a page read but not
    /// returned is read again.
    pub async fn snapshot_page(&mut self) -> Result<SnapshotPage, CollectionError> {
        let after = match &self.paging {
            Some(after) => after.clone(),
            None => None,
        };
        let (page, floor) = self.store.snapshot_page(&self.user_id, after.as_deref()).await?;
        if after.is_none() {
            self.floors.clear();
        }
        let last = page.items.last().map(|item| item.key.clone());
        if page.complete {
            self.floors.push((None, floor));
            self.paging = None;
        } else {
            // A page that is not the last holds at least one item.
            self.floors.push((last.clone(), floor));
            self.paging = Some(last.or(after));
        }
        Ok(page)
    }

    /// Every item of the user, read as [`Subscription::snapshot_page`]s; from then on
    /// [`Subscription::recv`] skips the changes they already hold.
    pub async fn snapshot(&mut self) -> Result<Vec<Item>, CollectionError> {
        self.paging = None;
        let mut items = Vec::new();
        loop {
            let page = self.snapshot_page().await?;
            items.extend(page.items);
            if page.complete {
                return Ok(items);
            }
        }
    }
}

/// Whether the snapshot whose pages are `floors` holds the change of `key` stamped `stamp`.
fn held(floors: &[(Option<String>, Floor)], key: &str, stamp: Stamp) -> bool {
    floors
        .iter()
        .find(|(last, _)| last.as_deref().is_none_or(|last| key <= last))
        .is_some_and(|(_, floor)| floor.holds(stamp))
}

impl Drop for Subscription {
    fn drop(&mut self) {
        drop(self.receiver.take());
        self.store.changes().release(&self.user_id);
    }
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_is_held_by_the_page_covering_its_key() {
        let floors = vec![
            (Some("k".to_owned()), Floor::Commits(5)),
            (None, Floor::Commits(8)),
        ];
        assert!(held(&floors, "a", Stamp::Commit(5)));
        assert!(held(&floors, "k", Stamp::Commit(5)), "the page's last key");
        assert!(!held(&floors, "a", Stamp::Commit(6)), "after the first page");
        assert!(
            held(&floors, "z", Stamp::Commit(8)),
            "the last page covers the rest"
        );
        assert!(!held(&floors, "z", Stamp::Commit(9)));
        assert!(!held(&[], "a", Stamp::Commit(0)), "no snapshot holds nothing");
    }
}
