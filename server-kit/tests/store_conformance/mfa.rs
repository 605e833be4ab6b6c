//! Second factors ([`MfaStore`](holdfast_server_kit::store::MfaStore)): enrolment,
//! confirmation, the "at most once" rules for TOTP steps and recovery codes, and what
//! deleting removes. Concurrent uses are in `mfa_races.rs`.

use super::*;
use holdfast_server_kit::store::TotpFactor;

/// An unconfirmed factor of `user_id`, sealed as `sealed`.
pub fn factor(user_id: &str, sealed: &str) -> TotpFactor {
    TotpFactor {
        user_id: user_id.into(),
        sealed_secret: sealed.into(),
        algorithm: "SHA1".into(),
        digits: 6,
        period_secs: 30,
        created_at_ms: 1_700_000_000_000,
        enabled_at_ms: None,
        last_step: None,
    }
}

pub fn hashes(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}

pub async fn find_totp(stores: &Stores, user_id: &str) -> Option<TotpFactor> {
    stores.mfa.find_totp(user_id).await.expect("find_totp")
}

pub async fn begin(stores: &Stores, factor: TotpFactor, codes: Vec<String>) -> bool {
    stores.mfa.begin_totp(factor, codes).await.expect("begin_totp")
}

/// Confirms the user's current enrolment (whatever is stored now).
pub async fn confirm(stores: &Stores, user_id: &str, step: i64, now_ms: i64) -> bool {
    let sealed = find_totp(stores, user_id)
        .await
        .map(|factor| factor.sealed_secret)
        .unwrap_or_default();
    stores
        .mfa
        .confirm_totp(user_id, &sealed, step, now_ms)
        .await
        .expect("confirm_totp")
}

pub async fn accept(stores: &Stores, user_id: &str, step: i64) -> bool {
    stores
        .mfa
        .accept_totp_step(user_id, step)
        .await
        .expect("accept_totp_step")
}

pub async fn use_code(stores: &Stores, user_id: &str, hash: &str) -> bool {
    stores
        .mfa
        .use_recovery_code(user_id, hash)
        .await
        .expect("use_recovery_code")
}

pub async fn codes_left(stores: &Stores, user_id: &str) -> u32 {
    stores
        .mfa
        .count_recovery_codes(user_id)
        .await
        .expect("count_recovery_codes")
}

/// A confirmed factor of `user_id` (last step 100) with codes `<user_id>-0..n`.
pub async fn enrolled(stores: &Stores, user_id: &str, n: usize) {
    assert!(begin(stores, factor(user_id, "sealed"), hashes(user_id, n)).await);
    assert!(confirm(stores, user_id, 100, 5_000).await);
}

pub async fn totp_enrolment_replaces_an_unconfirmed_one_until_confirmed(stores: &Stores) {
    assert_eq!(find_totp(stores, "u1").await, None);
    assert!(!confirm(stores, "u1", 7, 1_000).await, "nothing to confirm");

    // What a caller passes as confirmation state is not taken: an enrolment starts
    // unconfirmed.
    let mut first = factor("u1", "sealed-a");
    first.enabled_at_ms = Some(1);
    first.last_step = Some(1);
    assert!(begin(stores, first, hashes("a", 3)).await);
    let found = find_totp(stores, "u1").await.expect("stored");
    assert_eq!(found, factor("u1", "sealed-a"));
    assert!(!found.enabled());
    assert_eq!(codes_left(stores, "u1").await, 3);

    // A second enrolment replaces the unconfirmed one and every one of its codes.
    let mut second = factor("u1", "sealed-b");
    second.algorithm = "SHA256".into();
    second.digits = 8;
    second.period_secs = 60;
    second.created_at_ms = 1_700_000_000_500;
    assert!(begin(stores, second.clone(), hashes("b", 2)).await);
    assert_eq!(find_totp(stores, "u1").await, Some(second.clone()));
    assert_eq!(codes_left(stores, "u1").await, 2);
    assert!(!use_code(stores, "u1", "a-0").await, "the old codes are gone");

    // A confirmation for the replaced secret (a code checked against it while the second
    // enrolment happened) confirms nothing.
    assert!(
        !stores
            .mfa
            .confirm_totp("u1", "sealed-a", 56_000_000, 9_000)
            .await
            .expect("confirm_totp"),
        "the replaced enrolment is not confirmed"
    );
    assert!(!find_totp(stores, "u1").await.expect("stored").enabled());

    // Confirmed once, at its first step.
    assert!(confirm(stores, "u1", 56_000_000, 9_000).await);
    assert!(
        !confirm(stores, "u1", 56_000_001, 9_500).await,
        "confirmed already"
    );
    let confirmed = find_totp(stores, "u1").await.expect("stored");
    let expected = TotpFactor {
        enabled_at_ms: Some(9_000),
        last_step: Some(56_000_000),
        ..second.clone()
    };
    assert_eq!(confirmed, expected);
    assert!(confirmed.enabled());

    // Once on, a new enrolment is refused and changes nothing.
    assert!(!begin(stores, factor("u1", "sealed-c"), hashes("c", 5)).await);
    assert_eq!(find_totp(stores, "u1").await, Some(expected));
    assert_eq!(codes_left(stores, "u1").await, 2);
    assert!(use_code(stores, "u1", "b-0").await);

    // Another user's enrolment is their own.
    assert!(begin(stores, factor("u2", "sealed-z"), Vec::new()).await);
    assert_eq!(codes_left(stores, "u2").await, 0);
    assert_eq!(codes_left(stores, "u1").await, 1);
}

pub async fn accepted_totp_steps_only_move_forward(stores: &Stores) {
    assert!(!accept(stores, "u1", 5).await, "no factor");
    assert!(begin(stores, factor("u1", "sealed"), Vec::new()).await);
    assert!(!accept(stores, "u1", 5).await, "not confirmed yet");
    assert_eq!(find_totp(stores, "u1").await.and_then(|f| f.last_step), None);

    assert!(confirm(stores, "u1", 100, 5_000).await);
    assert!(!accept(stores, "u1", 100).await, "the confirming code is used");
    assert!(!accept(stores, "u1", 99).await, "an older step");
    assert!(accept(stores, "u1", 101).await);
    assert!(!accept(stores, "u1", 101).await, "a replay");
    assert!(!accept(stores, "u1", 100).await);
    assert!(accept(stores, "u1", 150).await, "steps may skip");
    assert!(!accept(stores, "u1", 120).await);
    assert_eq!(find_totp(stores, "u1").await.and_then(|f| f.last_step), Some(150));
    assert!(!accept(stores, "u2", 151).await, "another user has no factor");
}

pub async fn recovery_codes_are_single_use_and_replaceable(stores: &Stores) {
    assert_eq!(codes_left(stores, "u1").await, 0);
    assert!(!use_code(stores, "u1", "u1-0").await, "no codes");
    assert!(
        !stores
            .mfa
            .replace_recovery_codes("u1", hashes("new", 2))
            .await
            .expect("replace"),
        "no factor"
    );
    assert!(begin(stores, factor("u1", "sealed"), hashes("u1", 4)).await);
    assert!(
        !stores
            .mfa
            .replace_recovery_codes("u1", hashes("new", 2))
            .await
            .expect("replace"),
        "not confirmed"
    );
    assert_eq!(codes_left(stores, "u1").await, 4);
    assert!(confirm(stores, "u1", 100, 5_000).await);

    assert!(!use_code(stores, "u2", "u1-0").await, "another user's code");
    assert!(use_code(stores, "u1", "u1-0").await);
    assert!(!use_code(stores, "u1", "u1-0").await, "used up");
    assert!(!use_code(stores, "u1", "nope").await);
    assert_eq!(codes_left(stores, "u1").await, 3);

    let replaced = stores.mfa.replace_recovery_codes("u1", hashes("new", 10)).await;
    assert!(replaced.expect("replace"));
    assert_eq!(codes_left(stores, "u1").await, 10);
    assert!(
        !use_code(stores, "u1", "u1-1").await,
        "the old codes stop working"
    );
    assert!(use_code(stores, "u1", "new-9").await);
    assert_eq!(codes_left(stores, "u1").await, 9);
    let emptied = stores.mfa.replace_recovery_codes("u1", Vec::new()).await;
    assert!(emptied.expect("replace"));
    assert_eq!(codes_left(stores, "u1").await, 0);
    assert!(
        find_totp(stores, "u1").await.is_some_and(|f| f.enabled()),
        "the factor stays"
    );
}

pub async fn deleting_totp_or_the_user_removes_factor_and_codes(stores: &Stores) {
    assert!(
        !stores.mfa.delete_totp("u1").await.expect("delete"),
        "nothing to delete"
    );
    enrolled(stores, "u1", 3).await;
    enrolled(stores, "u2", 2).await;
    assert!(stores.mfa.delete_totp("u1").await.expect("delete"));
    assert_eq!(find_totp(stores, "u1").await, None);
    assert_eq!(codes_left(stores, "u1").await, 0);
    assert!(!use_code(stores, "u1", "u1-0").await);
    assert!(!accept(stores, "u1", 200).await);
    assert!(!stores.mfa.delete_totp("u1").await.expect("delete"));
    // Off, MFA can be set up again.
    assert!(begin(stores, factor("u1", "again"), hashes("u1", 1)).await);
    assert!(stores.mfa.delete_totp("u1").await.expect("delete unconfirmed"));
    assert_eq!(codes_left(stores, "u1").await, 0);

    // Deleting the account deletes its second factors, and no one else's.
    stores
        .users
        .create_user(new_user("u2", "b@example.com"))
        .await
        .expect("create");
    stores
        .users
        .create_user(new_user("u3", "c@example.com"))
        .await
        .expect("create");
    enrolled(stores, "u3", 1).await;
    assert!(stores.users.delete_user("u2").await.expect("delete user"));
    assert_eq!(find_totp(stores, "u2").await, None);
    assert_eq!(codes_left(stores, "u2").await, 0);
    assert!(!use_code(stores, "u2", "u2-0").await);
    assert!(find_totp(stores, "u3").await.is_some());
    assert_eq!(codes_left(stores, "u3").await, 1);
    // A user created again under the id starts without them.
    stores
        .users
        .create_user(new_user("u2", "b@example.com"))
        .await
        .expect("create again");
    assert_eq!(find_totp(stores, "u2").await, None);
}

pub async fn resealing_replaces_only_the_secret(stores: &Stores) {
    let resealed = stores.mfa.reseal_totp("u1", "new-seal").await;
    assert!(!resealed.expect("reseal"), "no factor");
    assert_eq!(find_totp(stores, "u1").await, None);

    assert!(begin(stores, factor("u1", "old-seal"), Vec::new()).await);
    assert!(stores.mfa.reseal_totp("u1", "mid-seal").await.expect("reseal"));
    assert_eq!(find_totp(stores, "u1").await, Some(factor("u1", "mid-seal")));

    assert!(confirm(stores, "u1", 100, 5_000).await);
    assert!(accept(stores, "u1", 101).await);
    assert!(stores.mfa.reseal_totp("u1", "new-seal").await.expect("reseal"));
    let expected = TotpFactor {
        enabled_at_ms: Some(5_000),
        last_step: Some(101),
        ..factor("u1", "new-seal")
    };
    assert_eq!(find_totp(stores, "u1").await, Some(expected));
    assert!(
        !accept(stores, "u1", 101).await,
        "the last step survives a reseal"
    );
}
