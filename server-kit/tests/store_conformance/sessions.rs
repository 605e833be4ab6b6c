//! Sessions ([`SessionStore`]): starting, listing, the session limit, ending them and what
//! ending revokes. Rotation, expiry, renewal and purging are in `session_tokens.rs`.

use super::*;
use holdfast_server_kit::protocol::EndReason;
use holdfast_server_kit::store::{EndedSession, NewSession, SessionEnding, SessionLimits, SessionScope};
use holdfast_server_kit::tokens::Assurance;

/// How long the families of ended sessions stay revoked (seconds).
pub const REVOKE_UNTIL: i64 = 50_000;

pub const NO_LIMITS: SessionLimits = SessionLimits {
    idle_timeout_ms: None,
    max_lifetime_ms: None,
    max_per_user: None,
};

pub fn session(id: &str, user_id: &str, device_id: &str, created_at_ms: i64) -> NewSession {
    NewSession {
        id: id.into(),
        user_id: user_id.into(),
        device_id: device_id.into(),
        created_at_ms,
        ip_address: Some("203.0.113.7".into()),
        user_agent: Some(format!("agent of {id}")),
        assurance: Assurance::password(created_at_ms / 1_000, false),
    }
}

/// A refresh token `jti` of the session `family` (user `u1`), issued at `issued_at` (s).
pub fn token_of(family: &str, jti: &str, issued_at: i64, expires_at: i64) -> RefreshRecord {
    RefreshRecord {
        jti: jti.into(),
        family: family.into(),
        user_id: "u1".into(),
        device_id: "d1".into(),
        issued_at,
        expires_at,
        jkt: None,
    }
}

/// Starts `session` under `limits` with its first refresh token `<id>-r0`.
pub async fn start_with(stores: &Stores, session: NewSession, limits: SessionLimits) -> Vec<EndedSession> {
    let mut first = token_of(&session.id, &format!("{}-r0", session.id), 1_000, 9_000);
    first.user_id = session.user_id.clone();
    stores
        .sessions
        .start_session(session, first, limits, REVOKE_UNTIL)
        .await
        .expect("start session")
}

pub async fn start(stores: &Stores, session: NewSession) -> Vec<EndedSession> {
    start_with(stores, session, NO_LIMITS).await
}

/// Rotates `parent` into `child` within the session `family`, at `now_ms`.
pub async fn rotate_in(
    stores: &Stores,
    family: &str,
    parent: &str,
    child: &str,
    now_ms: i64,
) -> RotateOutcome {
    stores
        .tokens
        .rotate_refresh(parent, token_of(family, child, 2_000, 9_000), pair(child), now_ms)
        .await
        .expect("rotate")
}

pub async fn find_session(stores: &Stores, id: &str) -> Option<holdfast_server_kit::store::SessionRecord> {
    stores.sessions.find_session(id).await.expect("find session")
}

pub async fn live_ids(stores: &Stores, user_id: &str, limits: SessionLimits, now_ms: i64) -> Vec<String> {
    let listed = stores
        .sessions
        .list_sessions(user_id, limits, now_ms)
        .await
        .expect("list sessions");
    listed.into_iter().map(|s| s.id).collect()
}

pub fn ended(user_id: &str, ids: &[&str]) -> Vec<EndedSession> {
    ids.iter()
        .map(|id| EndedSession {
            user_id: user_id.into(),
            id: (*id).into(),
        })
        .collect()
}

pub async fn end(
    stores: &Stores,
    user_id: &str,
    scope: SessionScope<'_>,
    reason: EndReason,
) -> Vec<EndedSession> {
    stores
        .sessions
        .end_sessions(user_id, scope, reason, 7_000, REVOKE_UNTIL)
        .await
        .expect("end sessions")
}

pub async fn sessions_start_find_and_list_newest_first(stores: &Stores) {
    let mut stepped_up = session("s-new", "u1", "d2", 3_000);
    stepped_up.assurance = Assurance {
        aal: 2,
        amr: vec!["pwd".into(), "otp".into()],
        auth_time: 1_700_000_123,
        mfa_pending: false,
    };
    stepped_up.user_agent = None;
    let mut anonymous = session("s-old", "u1", "d1", 1_000);
    anonymous.ip_address = None;
    // No methods at all, and a second factor still to present.
    anonymous.assurance = Assurance {
        aal: 1,
        amr: Vec::new(),
        auth_time: 0,
        mfa_pending: true,
    };
    for started in [
        anonymous.clone(),
        stepped_up.clone(),
        session("s-tie-b", "u1", "d1", 2_000),
        session("s-tie-a", "u1", "d3", 2_000),
        session("theirs", "u2", "d9", 5_000),
    ] {
        assert_eq!(start(stores, started).await, []);
    }
    assert_eq!(find_session(stores, "s-old").await, Some(anonymous.to_record()));
    assert_eq!(find_session(stores, "s-new").await, Some(stepped_up.to_record()));
    assert_eq!(find_session(stores, "nope").await, None);

    let listed = stores
        .sessions
        .list_sessions("u1", NO_LIMITS, 10_000)
        .await
        .expect("list");
    let ids: Vec<&str> = listed.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(
        ids,
        ["s-new", "s-tie-a", "s-tie-b", "s-old"],
        "newest first, then by id"
    );
    assert_eq!(listed[0], stepped_up.to_record());
    assert_eq!(listed[3], anonymous.to_record());
    assert_eq!(live_ids(stores, "u2", NO_LIMITS, 10_000).await, ["theirs"]);
    assert!(live_ids(stores, "nobody", NO_LIMITS, 10_000).await.is_empty());

    // The first refresh token went in with the session.
    assert_eq!(
        rotate_in(stores, "s-old", "s-old-r0", "s-old-r1", 4_000).await,
        RotateOutcome::Rotated
    );

    // A session id that exists fails, and its first token is not kept either.
    let mut first = token_of("s-old", "dup-r0", 1_000, 9_000);
    first.user_id = "u1".into();
    let duplicate = stores
        .sessions
        .start_session(
            session("s-old", "u1", "d1", 6_000),
            first,
            NO_LIMITS,
            REVOKE_UNTIL,
        )
        .await;
    assert!(
        matches!(duplicate, Err(StoreError::Backend { .. })),
        "{duplicate:?}"
    );
    assert_eq!(
        rotate_in(stores, "s-old", "dup-r0", "dup-r1", 6_000).await,
        RotateOutcome::Unknown
    );
    assert_eq!(
        find_session(stores, "s-old").await.map(|s| s.created_at_ms),
        Some(1_000)
    );

    // Ended sessions are found, with why, but not listed.
    let signed_out = end(stores, "u1", SessionScope::One("s-tie-a"), EndReason::SignedOut).await;
    assert_eq!(signed_out, ended("u1", &["s-tie-a"]));
    assert_eq!(
        live_ids(stores, "u1", NO_LIMITS, 10_000).await,
        ["s-new", "s-tie-b", "s-old"]
    );
    let found = find_session(stores, "s-tie-a").await.expect("still found");
    assert_eq!(
        found.ended,
        Some(SessionEnding {
            at_ms: 7_000,
            reason: EndReason::SignedOut
        })
    );
}

pub async fn listing_applies_the_idle_and_lifetime_bounds_at_their_edge(stores: &Stores) {
    let idle = SessionLimits {
        idle_timeout_ms: Some(1_000),
        ..NO_LIMITS
    };
    let lifetime = SessionLimits {
        max_lifetime_ms: Some(10_000),
        ..NO_LIMITS
    };
    start(stores, session("s", "u1", "d1", 0)).await;
    assert_eq!(
        live_ids(stores, "u1", idle, 1_000).await,
        ["s"],
        "idle exactly the timeout"
    );
    assert!(live_ids(stores, "u1", idle, 1_001).await.is_empty());
    assert!(idle.expired(0, 0, 1_001) && !idle.expired(0, 0, 1_000));

    assert_eq!(
        rotate_in(stores, "s", "s-r0", "s-r1", 900).await,
        RotateOutcome::Rotated
    );
    assert_eq!(live_ids(stores, "u1", idle, 1_900).await, ["s"]);
    assert!(live_ids(stores, "u1", idle, 1_901).await.is_empty());

    assert_eq!(
        live_ids(stores, "u1", lifetime, 10_000).await,
        ["s"],
        "exactly the lifetime"
    );
    assert!(live_ids(stores, "u1", lifetime, 10_001).await.is_empty());
    // However recently used.
    assert_eq!(
        rotate_in(stores, "s", "s-r1", "s-r2", 9_999).await,
        RotateOutcome::Rotated
    );
    assert!(live_ids(stores, "u1", lifetime, 10_001).await.is_empty());
    let both = SessionLimits {
        idle_timeout_ms: Some(1_000),
        max_lifetime_ms: Some(10_000),
        max_per_user: None,
    };
    assert_eq!(live_ids(stores, "u1", both, 10_000).await, ["s"]);
    // Listing ends nothing.
    assert_eq!(find_session(stores, "s").await.and_then(|s| s.ended), None);
    assert_eq!(live_ids(stores, "u1", NO_LIMITS, i64::MAX).await, ["s"]);
}

pub async fn a_sign_in_past_the_limit_ends_the_least_recently_used(stores: &Stores) {
    start(stores, session("s-b", "u1", "d1", 1_000)).await;
    start(stores, session("s-a", "u1", "d2", 1_000)).await;
    start(stores, session("s-c", "u1", "d3", 500)).await;
    assert_eq!(
        rotate_in(stores, "s-c", "s-c-r0", "s-c-r1", 1_000).await,
        RotateOutcome::Rotated
    );
    start(stores, session("s-d", "u1", "d4", 2_000)).await;
    start(stores, session("theirs", "u2", "d9", 100)).await;
    start(stores, session("s-gone", "u1", "d5", 10)).await;
    end(stores, "u1", SessionScope::One("s-gone"), EndReason::SignedOut).await;

    let two = SessionLimits {
        max_per_user: Some(2),
        ..NO_LIMITS
    };
    // Last used, then signed in, then id: s-c (1 000, 500), s-a and s-b (1 000, 1 000).
    let evicted = start_with(stores, session("s-new", "u1", "d6", 3_000), two).await;
    assert_eq!(evicted, ended("u1", &["s-c", "s-a", "s-b"]));
    assert_eq!(live_ids(stores, "u1", NO_LIMITS, 3_000).await, ["s-new", "s-d"]);
    assert_eq!(live_ids(stores, "u2", NO_LIMITS, 3_000).await, ["theirs"]);
    for id in ["s-c", "s-a", "s-b"] {
        let record = find_session(stores, id).await.expect("kept");
        assert_eq!(
            record.ended,
            Some(SessionEnding {
                at_ms: 3_000,
                reason: EndReason::SessionLimit
            })
        );
        assert!(
            is_revoked(stores, "any-jti", Some(id)).await,
            "{id}'s family is revoked"
        );
    }
    for id in ["s-new", "s-d", "theirs"] {
        assert!(
            !is_revoked(stores, "any-jti", Some(id)).await,
            "{id} stays usable"
        );
    }
    assert_eq!(
        rotate_in(stores, "s-new", "s-new-r0", "s-new-r1", 3_500).await,
        RotateOutcome::Rotated
    );
    assert_eq!(
        rotate_in(stores, "s-a", "s-a-r0", "s-a-r1", 3_500).await,
        RotateOutcome::FamilyRevoked
    );

    // Sessions past a limit at the new sign-in's time are not counted, and not ended.
    let idle_two = SessionLimits {
        idle_timeout_ms: Some(1_000),
        max_per_user: Some(2),
        ..NO_LIMITS
    };
    start(stores, session("idle", "u3", "d1", 0)).await;
    start(stores, session("recent", "u3", "d2", 4_500)).await;
    assert_eq!(
        start_with(stores, session("newer", "u3", "d3", 5_000), idle_two).await,
        []
    );
    assert_eq!(find_session(stores, "idle").await.and_then(|s| s.ended), None);
    let one = SessionLimits {
        max_per_user: Some(1),
        ..idle_two
    };
    let evicted = start_with(stores, session("newest", "u3", "d4", 5_100), one).await;
    assert_eq!(evicted, ended("u3", &["recent", "newer"]));
}

pub async fn end_sessions_ends_what_its_scope_selects(stores: &Stores) {
    for (id, device, at) in [("s1", "d1", 1_000), ("s2", "d1", 2_000), ("s3", "d2", 3_000)] {
        start(stores, session(id, "u1", device, at)).await;
    }
    start(stores, session("s4", "u1", "d3", 4_000)).await;
    start(stores, session("s5", "u1", "d2", 5_000)).await;
    start(stores, session("t1", "u2", "d1", 1_000)).await;

    let theirs = end(stores, "u1", SessionScope::One("t1"), EndReason::Revoked).await;
    assert_eq!(theirs, [], "another user's session is not the caller's to end");
    assert!(!is_revoked(stores, "any", Some("t1")).await);
    assert!(
        end(stores, "u1", SessionScope::One("nope"), EndReason::Revoked)
            .await
            .is_empty()
    );
    assert_eq!(
        end(stores, "u1", SessionScope::One("s1"), EndReason::Revoked).await,
        ended("u1", &["s1"])
    );
    assert_eq!(
        end(stores, "u1", SessionScope::One("s1"), EndReason::Revoked).await,
        []
    );
    assert_eq!(
        end(stores, "u1", SessionScope::Device("d2"), EndReason::DeviceRevoked).await,
        ended("u1", &["s3", "s5"])
    );
    // A longer revocation already recorded is kept.
    stores.tokens.revoke_family("s4", 99_999).await.expect("revoke");
    assert_eq!(
        end(
            stores,
            "u1",
            SessionScope::AllBut("s4"),
            EndReason::RevokedByOtherSession
        )
        .await,
        ended("u1", &["s2"])
    );
    assert_eq!(
        end(stores, "u1", SessionScope::All, EndReason::SignedOutEverywhere).await,
        ended("u1", &["s4"])
    );
    assert_eq!(
        end(stores, "u1", SessionScope::All, EndReason::SignedOutEverywhere).await,
        []
    );
    assert!(live_ids(stores, "u1", NO_LIMITS, 8_000).await.is_empty());
    assert_eq!(live_ids(stores, "u2", NO_LIMITS, 8_000).await, ["t1"]);

    for (id, reason) in [
        ("s1", EndReason::Revoked),
        ("s2", EndReason::RevokedByOtherSession),
        ("s3", EndReason::DeviceRevoked),
        ("s4", EndReason::SignedOutEverywhere),
        ("s5", EndReason::DeviceRevoked),
    ] {
        let ending = find_session(stores, id).await.and_then(|s| s.ended);
        assert_eq!(ending, Some(SessionEnding { at_ms: 7_000, reason }), "{id}");
        assert!(is_revoked(stores, "any", Some(id)).await, "{id}");
    }
    // Revoked until REVOKE_UNTIL, or the later expiry already there.
    stores
        .tokens
        .purge_expired_tokens(REVOKE_UNTIL)
        .await
        .expect("purge");
    assert!(is_revoked(stores, "any", Some("s1")).await);
    stores
        .tokens
        .purge_expired_tokens(REVOKE_UNTIL + 1)
        .await
        .expect("purge");
    assert!(!is_revoked(stores, "any", Some("s1")).await);
    assert!(is_revoked(stores, "any", Some("s4")).await);
}

pub async fn the_latest_session_on_a_device_is_found_live_or_ended(stores: &Stores) {
    let decisive = |device: &'static str| async move {
        stores
            .sessions
            .latest_session_on_device(device)
            .await
            .expect("read")
    };
    assert_eq!(decisive("d1").await, None);
    start(stores, session("s-b", "u1", "d1", 1_000)).await;
    start(stores, session("s-a", "u1", "d1", 1_000)).await;
    start(stores, session("s-old", "u1", "d1", 500)).await;
    start(stores, session("s-other", "u1", "d2", 9_000)).await;
    // The latest sign-in; a tie goes to the greater id.
    let latest = decisive("d1").await.expect("a session");
    assert_eq!((latest.id.as_str(), latest.ended), ("s-b", None));
    // Once every session of the device ended, the latest ended one decides.
    stores
        .sessions
        .end_sessions(
            "u1",
            SessionScope::Device("d1"),
            EndReason::Revoked,
            2_000,
            REVOKE_UNTIL,
        )
        .await
        .expect("end");
    let latest = decisive("d1").await.expect("a session");
    assert_eq!(
        (latest.id.as_str(), latest.ended),
        (
            "s-b",
            Some(SessionEnding {
                at_ms: 2_000,
                reason: EndReason::Revoked
            })
        )
    );
    assert_eq!(decisive("d2").await.map(|s| s.id), Some("s-other".to_owned()));
}

pub async fn a_live_session_on_a_device_comes_before_a_later_ended_one(stores: &Stores) {
    start(stores, session("s-live", "u1", "d1", 1_000)).await;
    start(stores, session("s-late", "u1", "d1", 2_000)).await;
    stores
        .sessions
        .end_sessions(
            "u1",
            SessionScope::One("s-late"),
            EndReason::Revoked,
            3_000,
            REVOKE_UNTIL,
        )
        .await
        .expect("end");
    let decisive = stores
        .sessions
        .latest_session_on_device("d1")
        .await
        .expect("read")
        .expect("a session");
    assert_eq!(decisive.id, "s-live");
}
