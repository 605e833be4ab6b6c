//! The standing cache's memory bounds.

use std::sync::Arc;

use super::{Standing, StandingCache};
use crate::config::ServerConfig;
use crate::store::UserRecord;
use crate::tokens::TokenManager;

fn user(id: &str) -> UserRecord {
    UserRecord {
        id: id.into(),
        email: format!("{id}@example.com"),
        name: None,
        email_verified: false,
        created_at_ms: 0,
        password: crate::store::StoredPassword {
            hash: String::new(),
            salt: String::new(),
        },
        metadata: None,
        disabled_at_ms: None,
    }
}

#[test]
fn memory_stays_bounded_whatever_tokens_arrive() {
    let config = ServerConfig::new(vec!["a-test-secret-of-at-least-32-characters!".into()]);
    let tokens = TokenManager::from_config(&config).expect("tokens");
    let capacity = 64;
    let cache = StandingCache::new(capacity);
    for n in 0..2_000 {
        // Every token of another user, each with its standing kept.
        let user_id = format!("u{n}");
        let token = tokens
            .issue_pair(&user_id, "d", &format!("f{n}"), None, 1_000)
            .access;
        let signed = tokens.keys().verify_signature(&token).expect("signed");
        let entry = cache.entry(&signed).expect("entry");
        let user_cell = cache.user_cell(&user_id);
        let epoch = user_cell.epoch();
        let standing = Arc::new(Standing::new(user(&user_id), None, user_cell, epoch, 0));
        cache.keep_standing(&signed, &entry, standing);
        let (held_tokens, held_users) = cache.sizes();
        assert!(held_tokens <= capacity, "{held_tokens} tokens held");
        assert!(held_users <= 2 * capacity + 1, "{held_users} user cells held");
    }
}

#[test]
fn an_entry_is_served_only_while_fresh_and_unrevoked() {
    let config = ServerConfig::new(vec!["a-test-secret-of-at-least-32-characters!".into()]);
    let tokens = TokenManager::from_config(&config).expect("tokens");
    let cache = StandingCache::new(16);
    let token = tokens.issue_pair("u1", "d", "f", None, 1_000).access;
    let signed = tokens.keys().verify_signature(&token).expect("signed");
    let entry = cache.entry(&signed).expect("entry");
    let user_cell = cache.user_cell("u1");
    let epoch = user_cell.epoch();
    let standing = Arc::new(Standing::new(user("u1"), None, user_cell, epoch, 10_000));
    cache.keep_standing(&signed, &entry, standing);
    let entry = cache.entry(&signed).expect("entry");
    let ttl = std::time::Duration::from_secs(5);
    assert!(cache.fresh_standing(&entry, 14_999, ttl).is_some());
    assert!(cache.fresh_standing(&entry, 15_000, ttl).is_none(), "max age");
    assert!(
        cache.fresh_standing(&entry, 9_999, ttl).is_none(),
        "a clock gone back"
    );
    cache.invalidate_user("u2");
    assert!(cache.fresh_standing(&entry, 12_000, ttl).is_some());
    cache.invalidate_user("u1");
    assert!(cache.fresh_standing(&entry, 12_000, ttl).is_none(), "revoked");
}
