//! [`TokenStore::rotate_checked`]: a refresh's checks and rotation in one call, answering
//! what the separate calls answer, in their order (session, standing, rotation), and
//! writing only when it rotates. A backend that does not offer it (memory) says so.

use super::sessions::{NO_LIMITS, end, find_session, session, start, token_of};
use super::*;
use holdfast_server_kit::protocol::EndReason;
use holdfast_server_kit::store::{CheckedRefresh, RefreshVerdict, SessionLimits, SessionScope};

/// Rotating `parent` of `family` into `child` at `now_ms`, for user `u1` on `d1`.
fn check(family: &str, parent: &str, child: &str, now_ms: i64, limits: SessionLimits) -> CheckedRefresh {
    CheckedRefresh {
        parent_jti: parent.into(),
        family: family.into(),
        user_id: "u1".into(),
        device_id: "d1".into(),
        child: token_of(family, child, 2_000, 9_000),
        pair: pair(child),
        now_ms,
        limits,
    }
}

async fn verdict(stores: &Stores, check: &CheckedRefresh) -> Option<RefreshVerdict> {
    stores.tokens.rotate_checked(check).await.expect("rotate_checked")
}

pub async fn rotate_checked_answers_as_the_separate_checks(stores: &Stores) {
    if verdict(stores, &check("s", "s-r0", "s-r1", 5_000, NO_LIMITS))
        .await
        .is_none()
    {
        // Not offered (memory): the route asks the stores one by one, which the other
        // cases cover.
        return;
    }
    stores
        .users
        .create_user(new_user("u1", "one@example.com"))
        .await
        .expect("create u1");
    register(stores, new_device("d1", "u1", None, 1_000)).await;
    start(stores, session("s", "u1", "d1", 1_000)).await;

    // An unknown parent in a live session: unknown, nothing written.
    let unknown = verdict(stores, &check("s", "never", "x", 5_000, NO_LIMITS)).await;
    assert_eq!(
        unknown,
        Some(RefreshVerdict::Rotation {
            outcome: RotateOutcome::Unknown,
            child_revoked: false
        })
    );

    // Rotated: the child is recorded and the session's last use moves.
    let rotated = verdict(stores, &check("s", "s-r0", "s-r1", 5_000, NO_LIMITS)).await;
    assert_eq!(
        rotated,
        Some(RefreshVerdict::Rotation {
            outcome: RotateOutcome::Rotated,
            child_revoked: false
        })
    );
    assert_eq!(
        find_session(stores, "s").await.expect("session").last_used_at_ms,
        5_000
    );
    // The child is a real token: the separate call rotates it in turn.
    assert_eq!(
        rotate(stores, "s-r1", "s-r2", 6_000).await,
        RotateOutcome::Rotated
    );

    // The parent again: rotated before, with its recorded children, whose own child
    // exists; not revoked.
    let again = verdict(stores, &check("s", "s-r0", "s-r1-bis", 7_000, NO_LIMITS)).await;
    assert_eq!(
        again,
        Some(RefreshVerdict::Rotation {
            outcome: RotateOutcome::AlreadyRotated {
                rotated_at_ms: 5_000,
                pair: pair("s-r1"),
                child_rotated: true,
            },
            child_revoked: false
        })
    );
    // A refused rotation writes nothing: the bis child does not exist.
    assert_eq!(
        rotate(stores, "s-r1-bis", "y", 7_000).await,
        RotateOutcome::Unknown
    );

    // The session past its idle timeout: expired, before anything else is looked at.
    let idle = SessionLimits {
        idle_timeout_ms: Some(1_000),
        ..NO_LIMITS
    };
    assert_eq!(
        verdict(stores, &check("s", "s-r2", "s-r3", 60_000, idle)).await,
        Some(RefreshVerdict::SessionExpired)
    );

    // The device revoked: refused with the record the bearer routes judge.
    stores
        .devices
        .revoke_device("d1", "u1")
        .await
        .expect("revoke device");
    let Some(RefreshVerdict::Refused(standing)) =
        verdict(stores, &check("s", "s-r2", "s-r3", 8_000, NO_LIMITS)).await
    else {
        panic!("a revoked device is refused");
    };
    assert!(standing.device.is_some_and(|device| device.revoked));
    assert_eq!(rotate(stores, "s-r3", "z", 8_000).await, RotateOutcome::Unknown);

    // Ended: the reason, first.
    end(stores, "u1", SessionScope::One("s"), EndReason::SignedOut).await;
    assert_eq!(
        verdict(stores, &check("s", "s-r2", "s-r3", 9_000, NO_LIMITS)).await,
        Some(RefreshVerdict::SessionEnded(EndReason::SignedOut))
    );
    assert!(is_revoked(stores, "s-r2", Some("s")).await);
}
