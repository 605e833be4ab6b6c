//! Sessions changed concurrently: the limit holds and each session ends once.

use super::sessions::{NO_LIMITS, REVOKE_UNTIL, live_ids, session, start, token_of};
use super::*;
use holdfast_server_kit::protocol::EndReason;
use holdfast_server_kit::store::{SessionLimits, SessionScope};

pub async fn concurrent_sign_ins_keep_to_the_session_limit(stores: &Stores) {
    let limits = SessionLimits {
        max_per_user: Some(2),
        ..NO_LIMITS
    };
    let attempts: Vec<_> = (0..12)
        .map(|n| {
            let sessions = stores.sessions.clone();
            let id = format!("s{n:02}");
            let first = token_of(&id, &format!("{id}-r0"), 1_000, 9_000);
            let started = session(&id, "u1", "d1", 1_000 + n);
            tokio::spawn(async move { sessions.start_session(started, first, limits, REVOKE_UNTIL).await })
        })
        .collect();
    let mut ended = Vec::new();
    for attempt in attempts {
        ended.extend(attempt.await.expect("task").expect("start"));
    }
    let live = live_ids(stores, "u1", NO_LIMITS, 5_000).await;
    assert_eq!(live.len(), 2, "{live:?}");
    ended.sort_by(|a, b| a.id.cmp(&b.id));
    ended.dedup();
    assert_eq!(ended.len(), 10, "every other session ended, once: {ended:?}");
    for id in live {
        assert!(!ended.iter().any(|e| e.id == id), "{id} is live and ended");
    }
}

pub async fn concurrent_endings_end_each_session_once(stores: &Stores) {
    for n in 0..8 {
        start(
            stores,
            session(&format!("s{n}"), "u1", &format!("d{}", n % 2), 1_000 + n),
        )
        .await;
    }
    let attempts: Vec<_> = (0..12)
        .map(|n| {
            let sessions = stores.sessions.clone();
            tokio::spawn(async move {
                let scope = match n % 3 {
                    0 => SessionScope::All,
                    1 => SessionScope::Device("d1"),
                    _ => SessionScope::AllBut("s0"),
                };
                let reason = EndReason::SignedOutEverywhere;
                sessions
                    .end_sessions("u1", scope, reason, 2_000, REVOKE_UNTIL)
                    .await
            })
        })
        .collect();
    let mut ended = Vec::new();
    for attempt in attempts {
        ended.extend(attempt.await.expect("task").expect("end"));
    }
    let mut ids: Vec<String> = ended.into_iter().map(|e| e.id).collect();
    ids.sort();
    let expected: Vec<String> = (0..8).map(|n| format!("s{n}")).collect();
    assert_eq!(ids, expected, "each session ended exactly once");
    assert!(live_ids(stores, "u1", NO_LIMITS, 3_000).await.is_empty());
}
