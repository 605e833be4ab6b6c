//! Single-use account tokens ([`OneTimeTokenStore`]): password resets and email
//! verifications.

use super::*;
use holdfast_server_kit::store::{OneTimeKind, OneTimeToken};

const RESET: OneTimeKind = OneTimeKind::PasswordReset;
const VERIFY: OneTimeKind = OneTimeKind::EmailVerification;

fn token(hash: &str, kind: OneTimeKind, user_id: &str, expires_at_ms: i64) -> OneTimeToken {
    OneTimeToken {
        hash: hash.into(),
        kind,
        user_id: user_id.into(),
        email: format!("{user_id}@example.com"),
        created_at_ms: 100,
        expires_at_ms,
    }
}

async fn put(stores: &Stores, token: OneTimeToken, max_live: u32, now_ms: i64) -> bool {
    stores
        .one_time
        .put_one_time_token(token, max_live, now_ms)
        .await
        .expect("put")
}

async fn take(stores: &Stores, kind: OneTimeKind, hash: &str, now_ms: i64) -> Option<OneTimeToken> {
    stores
        .one_time
        .take_one_time_token(kind, hash, now_ms)
        .await
        .expect("take")
}

pub async fn one_time_puts_count_only_live_tokens_of_the_kind_and_user(stores: &Stores) {
    assert!(put(stores, token("h1", RESET, "u1", 2_000), 2, 1_000).await);
    assert!(put(stores, token("h2", RESET, "u1", 1_500), 2, 1_000).await);
    assert!(!put(stores, token("h3", RESET, "u1", 3_000), 2, 1_000).await);
    assert!(
        put(stores, token("v1", VERIFY, "u1", 3_000), 2, 1_000).await,
        "another kind"
    );
    assert!(
        put(stores, token("x1", RESET, "u2", 3_000), 2, 1_000).await,
        "another user"
    );
    // h2 expires at 1 500: no longer live then.
    assert!(put(stores, token("h3", RESET, "u1", 3_000), 2, 1_500).await);
    assert!(!put(stores, token("h4", RESET, "u1", 3_000), 2, 1_500).await);
    assert!(
        !put(stores, token("z1", RESET, "u3", 3_000), 0, 1_000).await,
        "a limit of zero"
    );
    // A hash in use fails, even for another user with room to spare.
    let reused = stores
        .one_time
        .put_one_time_token(token("h1", RESET, "u3", 3_000), 5, 1_000)
        .await;
    assert!(matches!(reused, Err(StoreError::Backend { .. })), "{reused:?}");
    assert_eq!(
        take(stores, RESET, "h1", 1_000).await,
        Some(token("h1", RESET, "u1", 2_000))
    );
    // Taking one makes room.
    assert!(put(stores, token("h5", RESET, "u1", 3_000), 2, 1_500).await);
    assert!(
        take(stores, RESET, "h4", 1_500).await.is_none(),
        "refused, so never stored"
    );
}

pub async fn taking_a_one_time_token_uses_it_up(stores: &Stores) {
    let stored = token("h1", RESET, "u1", 2_000);
    assert!(put(stores, stored.clone(), 3, 1_000).await);
    assert_eq!(
        take(stores, VERIFY, "h1", 1_000).await,
        None,
        "the kind must match"
    );
    assert_eq!(
        take(stores, RESET, "h1", 1_000).await,
        Some(stored),
        "left in place by the wrong kind"
    );
    assert_eq!(take(stores, RESET, "h1", 1_000).await, None, "single use");
    assert_eq!(take(stores, RESET, "unknown", 1_000).await, None);

    assert!(put(stores, token("h2", VERIFY, "u1", 1_000), 3, 500).await);
    assert_eq!(
        take(stores, VERIFY, "h2", 1_000).await,
        None,
        "expired exactly now"
    );
    assert_eq!(take(stores, VERIFY, "h2", 0).await, None, "and removed");
    assert!(put(stores, token("h3", VERIFY, "u1", 1_001), 3, 500).await);
    assert_eq!(
        take(stores, VERIFY, "h3", 1_000).await.map(|t| t.hash),
        Some("h3".into())
    );
}

pub async fn concurrent_takes_of_one_token_take_it_once(stores: &Stores) {
    assert!(put(stores, token("h1", RESET, "u1", 9_000), 3, 1_000).await);
    let attempts: Vec<_> = (0..20)
        .map(|_| {
            let one_time = stores.one_time.clone();
            tokio::spawn(async move { one_time.take_one_time_token(RESET, "h1", 1_000).await })
        })
        .collect();
    let mut taken = 0;
    for attempt in attempts {
        if attempt.await.expect("task").expect("take").is_some() {
            taken += 1;
        }
    }
    assert_eq!(taken, 1);
}

pub async fn concurrent_puts_keep_to_the_live_limit(stores: &Stores) {
    let attempts: Vec<_> = (0..20)
        .map(|n| {
            let one_time = stores.one_time.clone();
            let token = token(&format!("h{n}"), RESET, "u1", 9_000);
            tokio::spawn(async move { one_time.put_one_time_token(token, 3, 1_000).await })
        })
        .collect();
    let mut stored = 0;
    for attempt in attempts {
        if attempt.await.expect("task").expect("put") {
            stored += 1;
        }
    }
    assert_eq!(stored, 3);
}

pub async fn discard_and_purge_one_time_tokens(stores: &Stores) {
    assert!(put(stores, token("r1", RESET, "u1", 5_000), 3, 0).await);
    assert!(put(stores, token("r2", RESET, "u1", 5_000), 3, 0).await);
    assert!(put(stores, token("v1", VERIFY, "u1", 5_000), 3, 0).await);
    assert!(put(stores, token("r3", RESET, "u2", 5_000), 3, 0).await);
    let discard = |user_id: &'static str, kind| stores.one_time.discard_one_time_tokens(user_id, kind);
    assert_eq!(discard("u1", RESET).await.expect("discard"), 2);
    assert_eq!(discard("u1", RESET).await.expect("discard"), 0);
    assert_eq!(take(stores, RESET, "r1", 0).await, None);
    assert!(
        take(stores, VERIFY, "v1", 0).await.is_some(),
        "another kind stays"
    );
    assert!(
        take(stores, RESET, "r3", 0).await.is_some(),
        "another user's stays"
    );

    assert!(put(stores, token("e1", RESET, "u1", 1_000), 3, 0).await);
    assert!(put(stores, token("e2", RESET, "u1", 1_001), 3, 0).await);
    let purge = |now_ms: i64| stores.one_time.purge_expired_one_time_tokens(now_ms);
    assert_eq!(purge(999).await.expect("purge"), 0);
    assert_eq!(purge(1_000).await.expect("purge"), 1, "expired exactly now");
    assert_eq!(purge(1_000).await.expect("purge"), 0);
    assert!(take(stores, RESET, "e2", 1_000).await.is_some());
}
