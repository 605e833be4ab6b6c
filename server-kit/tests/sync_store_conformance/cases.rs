//! The cases of `sync_store_conformance.rs`, each run on every backend.

use std::collections::HashMap;
use std::sync::Arc;

use holdfast_server_kit::store::sync_items::CHANGES_PER_USER;
use holdfast_server_kit::sync::{
    CollectionError, Item, MAX_VALUE_BYTES, PAGE_BUDGET_BYTES, PAGE_MAX_ITEMS, Quota, SharedCollection,
    Update,
};
use serde_json::{Value, json};

use super::{Backend, RECEIVE_BOUND, expect_silence, id, next_item};

fn invalid(result: Result<Arc<Item>, CollectionError>) -> bool {
    matches!(result, Err(CollectionError::Invalid(_)))
}

fn refused(result: Result<Arc<Item>, CollectionError>, says: &str) -> bool {
    matches!(result, Err(CollectionError::QuotaExceeded(message)) if message.contains(says))
}

/// Puts `count` items `{prefix}{n:03}` of `value` for `user`.
async fn fill(collection: &SharedCollection, user: &str, prefix: &str, count: usize, value: &Value) {
    for n in 0..count {
        let key = format!("{prefix}{n:03}");
        collection
            .put(user, &key, value.clone(), "d", 0)
            .await
            .expect("put");
    }
}

pub async fn versions_count_writes_per_user_and_key(backend: &Backend) {
    let collection = backend.collection().await;
    let first = collection.put("u1", "k", json!(1), "d1", 10).await.unwrap();
    let second = collection
        .put("u1", "k", json!({"a": 2}), "d2", 20)
        .await
        .unwrap();
    let other = collection.put("u2", "k", json!(3), "d3", 30).await.unwrap();
    assert_eq!((first.version, second.version, other.version), (1, 2, 1));
    let items = collection.snapshot("u1").await.unwrap();
    assert_eq!(items, vec![(*second).clone()]);
    assert_eq!((items[0].device_id.as_str(), items[0].updated_at), ("d2", 20));
    assert!(collection.snapshot("nobody").await.unwrap().is_empty());
}

pub async fn limits_on_keys_and_values(backend: &Backend) {
    let collection = backend.collection().await;
    assert!(invalid(collection.put("u", "", json!(1), "d", 0).await));
    assert!(invalid(
        collection.put("u", &"é".repeat(129), json!(1), "d", 0).await
    ));
    let big = json!("x".repeat(MAX_VALUE_BYTES));
    assert!(invalid(collection.put("u", "big", big, "d", 0).await));
    assert_eq!(
        collection.usage("u").await.unwrap(),
        (0, 0),
        "refusals store nothing"
    );
    let longest = "é".repeat(128);
    assert!(collection.put("u", &longest, json!(1), "d", 0).await.is_ok());
    let fits = json!("x".repeat(MAX_VALUE_BYTES - 2));
    assert!(collection.put("u", "fits", fits.clone(), "d", 0).await.is_ok());
    let items = collection.snapshot("u").await.unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0].value, fits, "a value of 16 KiB comes back whole");
    assert_eq!(items[1].key, longest);
}

pub async fn usage_counts_the_utf8_bytes_of_keys_and_values(backend: &Backend) {
    let collection = backend.collection().await;
    assert_eq!(collection.usage("u").await.unwrap(), (0, 0));
    // "é" is 2 bytes, "\"ab\"" 4, "k" 1, "1" 1.
    collection.put("u", "é", json!("ab"), "d", 0).await.unwrap();
    collection.put("u", "k", json!(1), "d", 0).await.unwrap();
    assert_eq!(collection.usage("u").await.unwrap(), (2, 8));
    // Overwriting counts the new size, not one more item.
    collection.put("u", "k", json!(22), "d", 0).await.unwrap();
    assert_eq!(collection.usage("u").await.unwrap(), (2, 9));
    collection.put("other", "k", json!("ü"), "d", 0).await.unwrap();
    assert_eq!(collection.usage("other").await.unwrap(), (1, 5));
    assert_eq!(collection.usage("u").await.unwrap(), (2, 9), "per user");
}

pub async fn the_quota_refuses_growth_and_lets_shrinking_writes_pass(backend: &Backend) {
    let collection = backend.collection().await;
    collection.set_quota(Quota { items: 3, bytes: 100 });
    let mut updates = collection.subscribe("u");
    // Sizes are key bytes plus value JSON bytes: "a" + "1" = 2, and so on.
    for key in ["a", "b", "c"] {
        collection
            .put("u", key, json!(1), "d", 0)
            .await
            .expect("within the quota");
    }
    assert!(refused(
        collection.put("u", "d", json!(1), "d", 0).await,
        "3 items"
    ));
    // Overwriting adds no item; past the bytes it is refused.
    collection
        .put("u", "a", json!("x".repeat(90)), "d", 0)
        .await
        .expect("93 + 4 bytes");
    assert!(refused(
        collection.put("u", "b", json!("x".repeat(10)), "d", 0).await,
        "bytes"
    ));
    assert_eq!(collection.usage("u").await.unwrap(), (3, 93 + 2 + 2));
    // Under a quota lowered below what the user holds, a write that shrinks still works, one
    // that grows does not.
    collection.set_quota(Quota { items: 3, bytes: 10 });
    collection.put("u", "a", json!(0), "d", 0).await.expect("shrinks");
    assert_eq!(collection.usage("u").await.unwrap(), (3, 6));
    assert!(refused(
        collection.put("u", "c", json!("xxxxxxx"), "d", 0).await,
        "bytes"
    ));
    // The refused writes left nothing, and were not published.
    let items = collection.snapshot("u").await.unwrap();
    let kept: Vec<(String, i64)> = items.iter().map(id).collect();
    assert_eq!(kept, [("a".into(), 3), ("b".into(), 1), ("c".into(), 1)]);
    assert_eq!((&items[0].value, &items[1].value), (&json!(0), &json!(1)));
    let mut seen = Vec::new();
    for _ in 0..5 {
        seen.push(id(&*next_item(&mut updates).await));
    }
    let expected = [("a", 1), ("b", 1), ("c", 1), ("a", 2), ("a", 3)];
    assert_eq!(seen, expected.map(|(key, version)| (key.to_owned(), version)));
    expect_silence(&mut updates, "a refused write is not published").await;
}

pub async fn snapshot_pages_are_bounded_and_in_bytewise_key_order(backend: &Backend) {
    let collection = backend.collection().await;
    // Nothing: one empty, complete page.
    let page = collection.subscribe("empty").snapshot_page().await.unwrap();
    assert!(page.complete && page.items.is_empty());
    // By count: PAGE_MAX_ITEMS + 44 small items, in two pages.
    fill(&collection, "many", "n", PAGE_MAX_ITEMS + 44, &json!(1)).await;
    let mut updates = collection.subscribe("many");
    let first = updates.snapshot_page().await.unwrap();
    assert_eq!((first.items.len(), first.complete), (PAGE_MAX_ITEMS, false));
    let second = updates.snapshot_page().await.unwrap();
    assert_eq!((second.items.len(), second.complete), (44, true));
    let keys: Vec<String> = first
        .items
        .iter()
        .chain(&second.items)
        .map(|item| item.key.clone())
        .collect();
    let expected: Vec<String> = (0..PAGE_MAX_ITEMS + 44).map(|n| format!("n{n:03}")).collect();
    assert_eq!(keys, expected);
    // Exactly a page's worth: one complete page.
    fill(&collection, "full", "n", PAGE_MAX_ITEMS, &json!(1)).await;
    let page = collection.subscribe("full").snapshot_page().await.unwrap();
    assert_eq!((page.items.len(), page.complete), (PAGE_MAX_ITEMS, true));
    // By bytes: 40 items of 8 KiB, pages of 16 (the one that reaches 128 KiB is the last).
    fill(&collection, "big", "k", 40, &json!("x".repeat(8 * 1024))).await;
    let mut updates = collection.subscribe("big");
    let mut sizes = Vec::new();
    loop {
        let page = updates.snapshot_page().await.unwrap();
        let bytes: usize = page
            .items
            .iter()
            .map(|item| item.key.len() + item.value.to_string().len())
            .sum();
        let last = page
            .items
            .last()
            .map_or(0, |item| item.key.len() + item.value.to_string().len());
        assert!(bytes - last < PAGE_BUDGET_BYTES, "a page of {bytes} bytes");
        sizes.push((page.items.len(), page.complete));
        if page.complete {
            break;
        }
    }
    assert_eq!(sizes, [(16, false), (16, false), (8, true)]);
    // Keys sort bytewise, whatever the database's collation.
    for key in ["é", "a", "B", "Z", "b"] {
        collection.put("order", key, json!(key), "d", 0).await.unwrap();
    }
    let keys: Vec<String> = collection
        .snapshot("order")
        .await
        .unwrap()
        .into_iter()
        .map(|item| item.key)
        .collect();
    assert_eq!(keys, ["B", "Z", "a", "b", "é"]);
}

pub async fn a_subscriber_sees_its_user_s_changes_in_commit_order(backend: &Backend) {
    let collection = backend.collection().await;
    let mut a = collection.subscribe("u1");
    let mut b = collection.subscribe("u1");
    let mut other = collection.subscribe("u2");
    assert_eq!(collection.subscribed_users(), 2);
    for (key, value) in [("k", 1), ("j", 1), ("k", 2), ("a", 1)] {
        collection.put("u1", key, json!(value), "phone", 7).await.unwrap();
    }
    let expected = [("k", 1), ("j", 1), ("k", 2), ("a", 1)].map(|(key, version)| (key.to_owned(), version));
    for subscriber in [&mut a, &mut b] {
        let mut seen = Vec::new();
        for _ in 0..expected.len() {
            let item = next_item(subscriber).await;
            assert_eq!((item.device_id.as_str(), item.updated_at), ("phone", 7));
            seen.push(id(&item));
        }
        assert_eq!(seen, expected, "every subscriber, in commit order");
    }
    expect_silence(&mut other, "another user's subscriber hears nothing").await;
    drop((a, b));
    assert_eq!(
        collection.subscribed_users(),
        1,
        "a user's broadcast goes with its last subscriber"
    );
    drop(other);
    assert_eq!(collection.subscribed_users(), 0);
}

pub async fn concurrent_writes_reach_a_subscriber_in_version_order(backend: &Backend) {
    let collection = backend.collection().await;
    let mut updates = collection.subscribe("u");
    let writers: Vec<_> = (0..4)
        .map(|writer| {
            let collection = collection.clone();
            tokio::spawn(async move {
                for n in 0..15 {
                    let key = ["a", "b", "c"][(writer + n) % 3];
                    collection
                        .put("u", key, json!([writer, n]), "d", 0)
                        .await
                        .expect("put");
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.expect("writer");
    }
    let mut last: HashMap<String, i64> = HashMap::new();
    for _ in 0..60 {
        let item = next_item(&mut updates).await;
        let previous = last.insert(item.key.clone(), item.version).unwrap_or(0);
        assert_eq!(
            item.version,
            previous + 1,
            "{}: every version, in order",
            item.key
        );
    }
    expect_silence(&mut updates, "each write once").await;
    let stored: HashMap<String, i64> = collection.snapshot("u").await.unwrap().iter().map(id).collect();
    assert_eq!(stored, last);
}

pub async fn a_subscription_skips_what_its_snapshot_holds(backend: &Backend) {
    let collection = backend.collection().await;
    let mut updates = collection.subscribe("u");
    collection.put("u", "k", json!(1), "d", 0).await.unwrap();
    collection.put("u", "other", json!(1), "d", 0).await.unwrap();
    let items = updates.snapshot().await.unwrap();
    assert_eq!(items.len(), 2);
    collection.put("u", "k", json!(2), "d", 0).await.unwrap();
    let item = next_item(&mut updates).await;
    assert_eq!(
        id(&item),
        ("k".into(), 2),
        "the writes before the snapshot are skipped"
    );
    expect_silence(&mut updates, "nothing else").await;
}

pub async fn a_paged_snapshot_skips_exactly_what_each_page_saw(backend: &Backend) {
    let collection = backend.collection().await;
    // 40 items of 8 KiB: pages of 16 items (128 KiB).
    let big = json!("x".repeat(8 * 1024));
    for n in 0..40 {
        collection
            .put("u", &format!("k{n:02}"), big.clone(), "d", 0)
            .await
            .unwrap();
    }
    let mut updates = collection.subscribe("u");
    let first = updates.snapshot_page().await.unwrap();
    assert!(!first.complete);
    assert_eq!(first.items.len(), 16);
    let first_last = first.items.last().unwrap().key.clone();
    // Written after the first page was read: one in its range (not in the page: must come
    // as a change), one in a later page's range (in that page: must not come again), and a
    // new key past every page.
    for key in ["k00", "k30", "z"] {
        collection.put("u", key, json!("new"), "d", 0).await.unwrap();
    }
    let mut rest = Vec::new();
    loop {
        let page = updates.snapshot_page().await.unwrap();
        assert!(page.items.iter().all(|item| item.key > first_last));
        rest.extend(page.items);
        if page.complete {
            break;
        }
    }
    assert_eq!(first.items.len() + rest.len(), 41);
    let k30 = rest.iter().find(|item| item.key == "k30").unwrap();
    assert_eq!((k30.version, &k30.value), (2, &json!("new")));
    assert!(rest.iter().any(|item| item.key == "z"));
    assert_eq!(id(&*next_item(&mut updates).await), ("k00".into(), 2));
    expect_silence(&mut updates, "k30 and z are in the pages, not sent again").await;
}

pub async fn a_slow_subscriber_is_told_it_lagged(backend: &Backend) {
    let collection = backend.collection().await;
    let mut slow = collection.subscribe("u");
    // A subscriber that keeps up tells when every change was published (or, lagging itself,
    // that more than the broadcast holds were).
    let mut reader = collection.subscribe("u");
    let writes = i64::try_from(CHANGES_PER_USER).unwrap() + 1;
    let published = tokio::spawn(async move {
        loop {
            match reader.recv().await {
                Update::Item(item) if item.version == writes => return,
                Update::Item(_) => {}
                Update::Lagged => return,
            }
        }
    });
    for n in 0..writes {
        collection.put("u", "k", json!(n), "d", 0).await.unwrap();
    }
    tokio::time::timeout(RECEIVE_BOUND * 4, published)
        .await
        .expect("every change published in time")
        .expect("reader");
    assert!(matches!(slow.recv().await, Update::Lagged));
}

pub async fn delete_user_removes_that_user_s_items_and_usage_only(backend: &Backend) {
    let collection = backend.collection().await;
    for key in ["a", "b", "c"] {
        collection.put("leaving", key, json!(1), "d", 0).await.unwrap();
    }
    collection.put("staying", "a", json!(1), "d", 0).await.unwrap();
    assert_eq!(collection.delete_user("leaving").await.unwrap(), 3);
    assert!(collection.snapshot("leaving").await.unwrap().is_empty());
    assert_eq!(collection.usage("leaving").await.unwrap(), (0, 0));
    assert_eq!(collection.snapshot("staying").await.unwrap().len(), 1);
    assert_eq!(collection.usage("staying").await.unwrap(), (1, 2));
    assert_eq!(collection.delete_user("leaving").await.unwrap(), 0);
    let again = collection.put("leaving", "a", json!(1), "d", 0).await.unwrap();
    assert_eq!(again.version, 1, "a new account starts over");
    assert_eq!(collection.usage("leaving").await.unwrap(), (1, 2));
}

pub async fn reopening_keeps_items_versions_and_usage(backend: &Backend) {
    let collection = backend.collection().await;
    collection.put("u", "k", json!({"n": 1}), "d", 5).await.unwrap();
    collection.put("u", "é", json!("ab"), "d", 6).await.unwrap();
    drop(collection);
    let reopened = backend.collection().await;
    let items = reopened.snapshot("u").await.unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(
        (&items[0].key, &items[0].value, items[0].updated_at),
        (&"k".to_owned(), &json!({"n": 1}), 5)
    );
    assert_eq!(reopened.usage("u").await.unwrap(), (2, 1 + 7 + 2 + 4));
    let next = reopened.put("u", "k", json!(2), "d", 7).await.unwrap();
    assert_eq!(next.version, 2);
}
