//! [`StandingStore`]: revocation, user and device read together, exactly as the three
//! separate reads answer them.

use super::*;
use holdfast_server_kit::store::{StandingQuery, StandingRecord};

async fn standing(
    stores: &Stores,
    user: &str,
    device: &str,
    jti: &str,
    family: Option<&str>,
) -> StandingRecord {
    stores
        .standing
        .standing(StandingQuery {
            user_id: user,
            device_id: device,
            jti,
            family,
        })
        .await
        .expect("standing")
}

/// The combined read agrees with `find_user`, `find_device` and `is_revoked`.
async fn agrees_with_the_separate_reads(
    stores: &Stores,
    user: &str,
    device: &str,
    jti: &str,
    family: Option<&str>,
) {
    let record = standing(stores, user, device, jti, family).await;
    let user_record = stores.users.find_user(user).await.expect("find user");
    assert_eq!(record.user, user_record);
    assert_eq!(record.device, find_device(stores, device).await);
    assert_eq!(record.revoked, is_revoked(stores, jti, family).await);
}

pub async fn standing_reads_revocation_user_and_device_together(stores: &Stores) {
    // Nothing stored: no user, no device, not revoked.
    let empty = standing(stores, "u1", "d1", "j1", Some("f1")).await;
    assert_eq!(
        empty,
        StandingRecord {
            revoked: false,
            user: None,
            device: None
        }
    );

    let mut user = new_user("u1", "one@example.com");
    user.metadata = Some(serde_json::json!({"plan": "pro"}));
    stores.users.create_user(user).await.expect("create u1");
    stores
        .users
        .create_user(new_user("u2", "two@example.com"))
        .await
        .expect("create u2");
    register(stores, new_device("d1", "u1", Some(key(1)), 1_000)).await;
    register(stores, new_device("d2", "u1", None, 2_000)).await;
    register(stores, new_device("d3", "u2", None, 3_000)).await;

    let record = standing(stores, "u1", "d1", "j1", Some("f1")).await;
    assert!(!record.revoked);
    assert_eq!(
        record.user.as_ref().map(|user| user.email.as_str()),
        Some("one@example.com")
    );
    assert_eq!(record.device.as_ref().and_then(|d| d.key.clone()), Some(key(1)));
    agrees_with_the_separate_reads(stores, "u1", "d1", "j1", Some("f1")).await;
    // A keyless device, a device of another user, an unknown device, no family.
    agrees_with_the_separate_reads(stores, "u1", "d2", "j1", None).await;
    agrees_with_the_separate_reads(stores, "u1", "d3", "j1", None).await;
    agrees_with_the_separate_reads(stores, "u1", "nope", "j1", None).await;
    agrees_with_the_separate_reads(stores, "nobody", "d1", "j1", None).await;

    // Revoked by jti, then by family (and only that family).
    stores
        .tokens
        .revoke_token("j1", 9_000)
        .await
        .expect("revoke token");
    assert!(standing(stores, "u1", "d1", "j1", None).await.revoked);
    assert!(!standing(stores, "u1", "d1", "j2", Some("f1")).await.revoked);
    stores
        .tokens
        .revoke_family("f1", 9_000)
        .await
        .expect("revoke family");
    assert!(standing(stores, "u1", "d1", "j2", Some("f1")).await.revoked);
    assert!(!standing(stores, "u1", "d1", "j2", Some("f2")).await.revoked);
    agrees_with_the_separate_reads(stores, "u1", "d1", "j2", Some("f1")).await;

    // Changes show: a revoked device, a disabled account, a deleted account.
    assert!(
        stores
            .devices
            .revoke_device("d2", "u1")
            .await
            .expect("revoke device")
    );
    assert!(
        standing(stores, "u1", "d2", "j3", None)
            .await
            .device
            .expect("d2")
            .revoked
    );
    assert!(
        stores
            .users
            .set_disabled("u2", Some(5_000))
            .await
            .expect("disable")
    );
    let disabled = standing(stores, "u2", "d3", "j3", None).await;
    assert_eq!(disabled.user.expect("u2").disabled_at_ms, Some(5_000));
    agrees_with_the_separate_reads(stores, "u2", "d3", "j3", None).await;
    assert!(stores.users.delete_user("u1").await.expect("delete"));
    let gone = standing(stores, "u1", "d1", "j2", Some("f1")).await;
    assert_eq!((gone.user, gone.device), (None, None));
    assert!(gone.revoked);
}
