//! The account lifecycle on [`UserStore`]: verification, disabling, listing for operators.

use super::sessions::{find_session, session, start};
use super::*;
use holdfast_server_kit::store::{OneTimeKind, OneTimeToken, UserQuery, UserRecord};

async fn find_user(stores: &Stores, id: &str) -> UserRecord {
    stores.users.find_user(id).await.expect("find").expect("exists")
}

pub async fn email_verification_and_disabling_are_recorded(stores: &Stores) {
    let created = stores
        .users
        .create_user(new_user("u1", "a@example.com"))
        .await
        .expect("create");
    assert_eq!(created.disabled_at_ms, None);
    assert!(stores.users.set_email_verified("u1").await.expect("verify"));
    assert!(find_user(stores, "u1").await.email_verified);
    assert!(stores.users.set_email_verified("u1").await.expect("verify again"));
    assert!(!stores.users.set_email_verified("nobody").await.expect("verify"));

    assert!(
        stores
            .users
            .set_disabled("u1", Some(5_000))
            .await
            .expect("disable")
    );
    assert_eq!(find_user(stores, "u1").await.disabled_at_ms, Some(5_000));
    let by_email = stores
        .users
        .find_user_by_email("a@example.com")
        .await
        .expect("find")
        .expect("exists");
    assert_eq!(by_email.disabled_at_ms, Some(5_000));
    assert!(by_email.email_verified);
    assert!(stores.users.set_disabled("u1", None).await.expect("enable"));
    let enabled = find_user(stores, "u1").await;
    assert_eq!(enabled.disabled_at_ms, None);
    assert_eq!(enabled.password, password(1), "nothing else changed");
    assert!(
        !stores
            .users
            .set_disabled("nobody", Some(1))
            .await
            .expect("disable")
    );
}

async fn list(stores: &Stores, contains: Option<&str>, after: Option<&str>, limit: u32) -> Vec<String> {
    let query = UserQuery {
        email_contains: contains.map(str::to_owned),
        after: after.map(str::to_owned),
        limit,
    };
    let users = stores.users.list_users(&query).await.expect("list users");
    users.into_iter().map(|user| user.email).collect()
}

pub async fn list_users_pages_in_bytewise_email_order(stores: &Stores) {
    let emails = [
        "b@x.io", "ab@x.io", "a.c@x.io", "Zed@x.io", "a_b@x.io", "a%b@x.io", "axb@x.io",
    ];
    for (n, email) in emails.iter().enumerate() {
        stores
            .users
            .create_user(new_user(&format!("u{n}"), email))
            .await
            .expect("create");
    }
    stores.users.set_disabled("u0", Some(7)).await.expect("disable");
    let sorted = [
        "Zed@x.io", "a%b@x.io", "a.c@x.io", "a_b@x.io", "ab@x.io", "axb@x.io", "b@x.io",
    ];
    assert_eq!(list(stores, None, None, 100).await, sorted);
    let all = stores
        .users
        .list_users(&UserQuery {
            limit: 100,
            ..UserQuery::default()
        })
        .await
        .expect("list");
    assert_eq!(
        all[6],
        find_user(stores, "u0").await,
        "whole records, disabled ones too"
    );

    // Pages of two, each after the last email of the one before.
    let mut pages = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = list(stores, None, after.as_deref(), 2).await;
        let Some(last) = page.last().cloned() else { break };
        pages.push(page);
        after = Some(last);
    }
    assert_eq!(pages.concat(), sorted);
    assert_eq!(pages.len(), 4);
    assert_eq!(list(stores, None, Some("a_b@x.io"), 100).await, sorted[4..]);
    assert_eq!(
        list(stores, None, Some("a_"), 100).await,
        sorted[3..],
        "after needs no exact email"
    );
    assert!(list(stores, None, None, 0).await.is_empty());

    // The filter is a plain substring: `%` and `_` are no wildcards.
    assert_eq!(list(stores, Some("_"), None, 100).await, ["a_b@x.io"]);
    assert_eq!(list(stores, Some("%"), None, 100).await, ["a%b@x.io"]);
    assert_eq!(list(stores, Some("a%b"), None, 100).await, ["a%b@x.io"]);
    assert_eq!(
        list(stores, Some("b@"), None, 100).await,
        ["a%b@x.io", "a_b@x.io", "ab@x.io", "axb@x.io", "b@x.io"]
    );
    assert_eq!(
        list(stores, Some("b@"), Some("a_b@x.io"), 2).await,
        ["ab@x.io", "axb@x.io"]
    );
    assert_eq!(
        list(stores, Some("zed"), None, 100).await,
        Vec::<String>::new(),
        "case counts"
    );
    assert_eq!(list(stores, Some(""), None, 100).await, sorted);
}

pub async fn delete_user_with_sessions_and_tokens(stores: &Stores) {
    stores
        .users
        .create_user(new_user("u1", "a@example.com"))
        .await
        .expect("create");
    start(stores, session("s1", "u1", "d1", 1_000)).await;
    let token = OneTimeToken {
        hash: "h1".into(),
        kind: OneTimeKind::EmailVerification,
        user_id: "u1".into(),
        email: "a@example.com".into(),
        created_at_ms: 1_000,
        expires_at_ms: 9_000,
    };
    assert!(
        stores
            .one_time
            .put_one_time_token(token, 3, 1_000)
            .await
            .expect("put")
    );
    assert!(stores.users.delete_user("u1").await.expect("delete"));
    assert!(stores.users.find_user("u1").await.expect("find").is_none());
    assert!(!stores.users.delete_user("u1").await.expect("delete again"));
    // Sessions end through the session store, with their reason; deleting leaves them to it.
    assert!(find_session(stores, "s1").await.is_some());
    let listed = stores
        .users
        .list_users(&UserQuery {
            limit: 10,
            ..UserQuery::default()
        })
        .await
        .expect("list");
    assert!(listed.is_empty());
}
