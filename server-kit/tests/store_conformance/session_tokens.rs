//! Sessions over time: rotation moves a session's last use, the limits end idle and
//! over-age ones, renewal (a password change) replaces their tokens, and purging forgets
//! old ones.

use super::sessions::{
    NO_LIMITS, REVOKE_UNTIL, end, ended, find_session, live_ids, rotate_in, session, start, token_of,
};
use super::*;
use holdfast_server_kit::protocol::EndReason;
use holdfast_server_kit::store::{SessionEnding, SessionLimits, SessionScope};
use holdfast_server_kit::tokens::Assurance;

async fn last_used(stores: &Stores, id: &str) -> i64 {
    find_session(stores, id).await.expect("session").last_used_at_ms
}

pub async fn rotation_moves_last_use_forward_only(stores: &Stores) {
    start(stores, session("s", "u1", "d1", 1_000)).await;
    start(stores, session("other", "u1", "d2", 1_000)).await;
    assert_eq!(
        rotate_in(stores, "s", "s-r0", "s-r1", 5_000).await,
        RotateOutcome::Rotated
    );
    let record = find_session(stores, "s").await.expect("session");
    assert_eq!((record.created_at_ms, record.last_used_at_ms), (1_000, 5_000));
    assert_eq!(
        last_used(stores, "other").await,
        1_000,
        "only the token's own session"
    );

    // A refresh that committed later but started earlier does not move it back.
    assert_eq!(
        rotate_in(stores, "s", "s-r1", "s-r2", 4_000).await,
        RotateOutcome::Rotated
    );
    assert_eq!(last_used(stores, "s").await, 5_000);
    assert_eq!(
        rotate_in(stores, "s", "s-r2", "s-r3", 7_000).await,
        RotateOutcome::Rotated
    );
    assert_eq!(last_used(stores, "s").await, 7_000);

    // A refused rotation touches nothing.
    let reused = rotate_in(stores, "s", "s-r0", "s-r1-bis", 9_000).await;
    assert!(
        matches!(reused, RotateOutcome::AlreadyRotated { .. }),
        "{reused:?}"
    );
    assert_eq!(
        rotate_in(stores, "s", "never", "x", 9_000).await,
        RotateOutcome::Unknown
    );
    end(stores, "u1", SessionScope::One("s"), EndReason::SignedOut).await;
    let revoked = rotate_in(stores, "s", "s-r3", "s-r4", 9_500).await;
    assert_eq!(revoked, RotateOutcome::FamilyRevoked);
    assert_eq!(last_used(stores, "s").await, 7_000);
}

pub async fn end_expired_sessions_ends_idle_and_over_age_ones(stores: &Stores) {
    let limits = SessionLimits {
        idle_timeout_ms: Some(1_000),
        max_lifetime_ms: Some(10_000),
        max_per_user: None,
    };
    start(stores, session("x-idle", "u1", "d1", 0)).await;
    start(stores, session("x-old", "u1", "d2", 0)).await;
    assert_eq!(
        rotate_in(stores, "x-old", "x-old-r0", "x-old-r1", 9_500).await,
        RotateOutcome::Rotated
    );
    start(stores, session("x-live", "u1", "d3", 9_500)).await;
    start(stores, session("y-ended", "u2", "d1", 0)).await;
    end(stores, "u2", SessionScope::All, EndReason::SignedOut).await;
    start(stores, session("w-live", "u2", "d2", 9_600)).await;

    let none = stores
        .sessions
        .end_expired_sessions(NO_LIMITS, i64::MAX / 2, REVOKE_UNTIL)
        .await;
    assert_eq!(none.expect("end expired"), [], "no limits, nothing expires");
    let at = |now_ms: i64| stores.sessions.end_expired_sessions(limits, now_ms, REVOKE_UNTIL);
    assert_eq!(at(10_000).await.expect("end expired"), ended("u1", &["x-idle"]));
    assert_eq!(at(10_000).await.expect("end expired"), []);
    assert_eq!(at(10_001).await.expect("end expired"), ended("u1", &["x-old"]));
    let both = at(20_000).await.expect("end expired");
    let mut expected = ended("u2", &["w-live"]);
    expected.extend(ended("u1", &["x-live"]));
    assert_eq!(both, expected, "in id order, whoever's they are");

    for (id, at_ms) in [
        ("x-idle", 10_000),
        ("x-old", 10_001),
        ("x-live", 20_000),
        ("w-live", 20_000),
    ] {
        let ending = find_session(stores, id).await.and_then(|s| s.ended);
        let reason = EndReason::Expired;
        assert_eq!(ending, Some(SessionEnding { at_ms, reason }), "{id}");
        assert!(is_revoked(stores, "any", Some(id)).await, "{id}");
    }
    let signed_out = find_session(stores, "y-ended").await.and_then(|s| s.ended);
    assert_eq!(signed_out.map(|e| e.reason), Some(EndReason::SignedOut));
}

pub async fn renew_session_revokes_the_family_s_unexpired_tokens(stores: &Stores) {
    start(stores, session("s", "u1", "d1", 1_000_000)).await;
    assert_eq!(
        rotate_in(stores, "s", "s-r0", "s-r1", 2_000_000).await,
        RotateOutcome::Rotated
    );
    for (jti, expires_at) in [("s-old", 2_999), ("s-edge", 3_000)] {
        let record = token_of("s", jti, 1_500, expires_at);
        stores.tokens.insert_refresh(record).await.expect("insert");
    }
    start(stores, session("t", "u1", "d2", 1_000_000)).await;

    let next = token_of("s", "s-n1", 3_000, 12_000);
    let before = find_session(stores, "s").await.expect("started").assurance;
    assert_eq!(before, Assurance::password(1_000, false));
    let stepped_up = before.with_second_factor("otp", 3_000);
    let renewed = stores.sessions.renew_session(next, &stepped_up, 12_000).await;
    assert!(renewed.expect("renew"));
    // The session now says how it was proved, wherever it is read.
    assert_eq!(
        find_session(stores, "s").await.map(|s| s.assurance),
        Some(stepped_up.clone())
    );
    let listed = stores.sessions.list_sessions("u1", NO_LIMITS, 3_000_000).await;
    let listed: Vec<_> = listed
        .expect("list")
        .into_iter()
        .map(|s| (s.id, s.assurance))
        .collect();
    assert_eq!(
        listed,
        [
            ("s".to_owned(), stepped_up),
            ("t".to_owned(), Assurance::password(1_000, false))
        ]
    );
    for jti in ["s-r0", "s-r1", "s-edge"] {
        assert!(is_revoked(stores, jti, None).await, "{jti} is revoked");
    }
    assert!(
        !is_revoked(stores, "s-old", None).await,
        "expired before the renewal"
    );
    assert!(!is_revoked(stores, "s-n1", None).await);
    // The superseded unrotated token cannot rotate any more (a refresh that raced the
    // renewal gets nothing).
    assert_eq!(
        rotate_in(stores, "s", "s-r1", "s-late", 3_500_000).await,
        RotateOutcome::FamilyRevoked
    );
    assert!(!is_revoked(stores, "t-r0", None).await, "another session's token");
    assert!(!is_revoked(stores, "any", Some("s")).await, "the session goes on");
    assert_eq!(live_ids(stores, "u1", NO_LIMITS, 3_000_000).await, ["s", "t"]);
    assert_eq!(
        rotate_in(stores, "s", "s-n1", "s-n2", 4_000_000).await,
        RotateOutcome::Rotated
    );
    assert_eq!(last_used(stores, "s").await, 4_000_000);
    // Revoked until `revoke_until`.
    stores.tokens.purge_expired_tokens(12_000).await.expect("purge");
    assert!(is_revoked(stores, "s-r1", None).await);
    stores.tokens.purge_expired_tokens(12_001).await.expect("purge");
    assert!(!is_revoked(stores, "s-r1", None).await);
}

pub async fn renew_session_refuses_unknown_ended_foreign_and_revoked_sessions(stores: &Stores) {
    for id in ["ended", "foreign", "revoked"] {
        start(stores, session(id, "u1", "d1", 1_000)).await;
    }
    end(stores, "u1", SessionScope::One("ended"), EndReason::SignedOut).await;
    stores
        .tokens
        .revoke_family("revoked", 9_000)
        .await
        .expect("revoke");

    let mut foreign = token_of("foreign", "foreign-n1", 3_000, 12_000);
    foreign.user_id = "u2".into();
    let attempts = [
        token_of("unknown", "unknown-n1", 3_000, 12_000),
        token_of("ended", "ended-n1", 3_000, 12_000),
        foreign,
        token_of("revoked", "revoked-n1", 3_000, 12_000),
    ];
    for next in attempts {
        let (family, jti) = (next.family.clone(), next.jti.clone());
        let raised = Assurance::password(1, false).with_second_factor("otp", 3_000);
        let renewed = stores.sessions.renew_session(next, &raised, 12_000).await;
        assert!(!renewed.expect("renew"), "{family}");
        if let Some(session) = find_session(stores, &family).await {
            assert_eq!(
                session.assurance,
                Assurance::password(1, false),
                "{family}: assurance unchanged"
            );
        }
        assert!(
            !is_revoked(stores, &format!("{family}-r0"), None).await,
            "{family}: nothing revoked"
        );
        assert_eq!(
            rotate_in(stores, &family, &jti, "child", 4_000).await,
            RotateOutcome::Unknown,
            "{family}: nothing inserted"
        );
    }
    assert_eq!(
        rotate_in(stores, "foreign", "foreign-r0", "f-r1", 4_000).await,
        RotateOutcome::Rotated
    );
}

pub async fn purge_sessions_forgets_sessions_ended_or_idle_before(stores: &Stores) {
    for id in ["idle", "used", "ended-early", "ended-late"] {
        start(stores, session(id, "u1", "d1", 1_000)).await;
    }
    assert_eq!(
        rotate_in(stores, "used", "used-r0", "used-r1", 5_000).await,
        RotateOutcome::Rotated
    );
    let end_at = |id: &'static str, at_ms: i64| {
        stores.sessions.end_sessions(
            "u1",
            SessionScope::One(id),
            EndReason::SignedOut,
            at_ms,
            REVOKE_UNTIL,
        )
    };
    end_at("ended-early", 3_000).await.expect("end");
    end_at("ended-late", 6_000).await.expect("end");

    let purge = |before_ms: i64| stores.sessions.purge_sessions(before_ms);
    assert_eq!(
        purge(1_000).await.expect("purge"),
        0,
        "last used exactly then stays"
    );
    assert_eq!(purge(3_000).await.expect("purge"), 1);
    assert_eq!(find_session(stores, "idle").await, None);
    assert!(
        find_session(stores, "ended-early").await.is_some(),
        "ended exactly then"
    );
    assert_eq!(purge(3_001).await.expect("purge"), 1);
    assert_eq!(purge(5_001).await.expect("purge"), 1);
    assert_eq!(find_session(stores, "used").await, None);
    assert!(
        find_session(stores, "ended-late").await.is_some(),
        "its end counts, not its last use"
    );
    assert_eq!(purge(i64::MAX).await.expect("purge"), 1);
    assert_eq!(purge(i64::MAX).await.expect("purge"), 0);
}
