//! Session limits, stored session fields and one-time token kinds.

use super::*;

#[test]
fn limits_bound_idleness_and_age_without_overflow() {
    let limits = SessionLimits {
        idle_timeout_ms: Some(1_000),
        max_lifetime_ms: Some(10_000),
        max_per_user: None,
    };
    assert!(!limits.expired(0, 0, 1_000));
    assert!(limits.expired(0, 0, 1_001));
    assert!(!limits.expired(0, 9_500, 10_000));
    assert!(limits.expired(0, 9_500, 10_001));
    assert!(!SessionLimits::default().expired(i64::MIN, i64::MIN, i64::MAX));
    assert_eq!(limits.live_bounds(i64::MIN), (i64::MIN, i64::MIN));
    assert_eq!(SessionLimits::default().live_bounds(5), (i64::MIN, i64::MIN));
    assert_eq!(limits.live_bounds(20_000), (19_000, 10_000));
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
#[test]
fn stored_endings_kinds_and_levels_read_back_or_are_corrupt() {
    for reason in EndReason::ALL {
        let ending = read_ending(Some(7), Some(reason.as_str().to_owned()));
        assert_eq!(ending.ok(), Some(Some(SessionEnding { at_ms: 7, reason })));
    }
    assert!(matches!(read_ending(None, None), Ok(None)));
    let corrupt =
        |result: Result<Option<SessionEnding>, StoreError>| matches!(result, Err(StoreError::Corrupt(_)));
    assert!(corrupt(read_ending(Some(7), Some("raptured".into()))));
    assert!(corrupt(read_ending(Some(7), None)));
    assert!(corrupt(read_ending(None, Some("signed_out".into()))));
    assert!(matches!(
        read_kind("password_reset"),
        Ok(OneTimeKind::PasswordReset)
    ));
    assert!(matches!(read_kind("magic_link"), Err(StoreError::Corrupt(_))));
    assert!(matches!(read_aal(2), Ok(2)));
    assert!(matches!(read_aal(256), Err(StoreError::Corrupt(_))));
    assert!(matches!(read_aal(-1), Err(StoreError::Corrupt(_))));
}

#[test]
fn kinds_round_trip() {
    for kind in [OneTimeKind::PasswordReset, OneTimeKind::EmailVerification] {
        assert_eq!(OneTimeKind::parse(kind.as_str()), Some(kind));
    }
    assert_eq!(OneTimeKind::parse("other"), None);
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
#[test]
fn methods_round_trip_through_their_stored_text() {
    for amr in [
        vec![],
        vec!["pwd".to_owned()],
        vec!["pwd".to_owned(), "otp".to_owned()],
    ] {
        assert_eq!(read_amr(&write_amr(&amr)), amr);
    }
    assert_eq!(write_amr(&["pwd".to_owned(), "rec".to_owned()]), "pwd,rec");
    assert!(read_amr("").is_empty());
    assert_eq!(read_amr(",otp,"), ["otp"]);
}
