//! Unit tests of `passwords.rs`.

use super::*;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Counts the workers running at once, to prove the permit bound without timing.
#[derive(Default)]
pub(crate) struct Probe {
    active: AtomicUsize,
    high_water: AtomicUsize,
    runs: AtomicUsize,
}

pub(crate) struct ProbeGuard<'a>(&'a Probe);

impl Probe {
    pub(crate) fn enter(&self) -> ProbeGuard<'_> {
        let now = self.active.fetch_add(1, Ordering::SeqCst) + 1;
        self.high_water.fetch_max(now, Ordering::SeqCst);
        self.runs.fetch_add(1, Ordering::SeqCst);
        ProbeGuard(self)
    }
}

impl Drop for ProbeGuard<'_> {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Cheap Argon2id parameters so debug-build tests stay fast.
const CHEAP: Argon2Params = Argon2Params {
    memory_kib: 64,
    iterations: 1,
    parallelism: 1,
};

#[tokio::test]
async fn argon2id_round_trip() {
    let hasher = PasswordHasher::new(2, CHEAP);
    let stored = hasher.hash("correct horse battery").await.unwrap();
    assert!(
        stored.hash.starts_with("$argon2id$v=19$m=64,t=1,p=1$"),
        "{}",
        stored.hash
    );
    assert_eq!(stored.salt, "");
    let check = hasher
        .verify("correct horse battery", Some(&stored))
        .await
        .unwrap();
    assert_eq!(
        check,
        PasswordCheck {
            matches: true,
            needs_rehash: false
        }
    );
    let wrong = hasher
        .verify("correct horse battery!", Some(&stored))
        .await
        .unwrap();
    assert_eq!(wrong, PasswordCheck::NO_MATCH);
    // Fresh salt every time.
    assert_ne!(hasher.hash("correct horse battery").await.unwrap(), stored);
}

#[tokio::test]
async fn default_params_hash_and_verify() {
    let hasher = PasswordHasher::new(1, Argon2Params::default());
    let stored = hasher.hash("hunter2hunter2").await.unwrap();
    assert!(
        stored.hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{}",
        stored.hash
    );
    let check = hasher.verify("hunter2hunter2", Some(&stored)).await.unwrap();
    assert_eq!(
        check,
        PasswordCheck {
            matches: true,
            needs_rehash: false
        }
    );
}

#[tokio::test]
async fn other_argon2_params_need_rehash() {
    let old = PasswordHasher::new(1, CHEAP).hash("password-1").await.unwrap();
    let current = PasswordHasher::new(
        1,
        Argon2Params {
            memory_kib: 128,
            ..CHEAP
        },
    );
    let check = current.verify("password-1", Some(&old)).await.unwrap();
    assert_eq!(
        check,
        PasswordCheck {
            matches: true,
            needs_rehash: true
        }
    );
    let wrong = current.verify("password-2", Some(&old)).await.unwrap();
    assert_eq!(
        wrong,
        PasswordCheck::NO_MATCH,
        "a mismatch never asks for a rehash"
    );
}

#[tokio::test]
async fn kora_hash_matches_and_needs_rehash() {
    let stored = hash_pbkdf2_kora("legacy-password", &[7u8; 32]);
    assert_eq!(stored.hash.len(), 128);
    assert_eq!(stored.salt, "07".repeat(32));
    let hasher = PasswordHasher::new(1, CHEAP);
    let check = hasher.verify("legacy-password", Some(&stored)).await.unwrap();
    assert_eq!(
        check,
        PasswordCheck {
            matches: true,
            needs_rehash: true
        }
    );
    let wrong = hasher.verify("legacy-passwore", Some(&stored)).await.unwrap();
    assert_eq!(wrong, PasswordCheck::NO_MATCH);
    // Upper-case hex is still Kora's format.
    let upper = StoredPassword {
        hash: stored.hash.to_uppercase(),
        salt: stored.salt.to_uppercase(),
    };
    assert!(verify_pbkdf2_kora("legacy-password", &upper));
}

#[tokio::test]
async fn unknown_account_verifies_the_dummy_and_fails() {
    let hasher = PasswordHasher::new(1, CHEAP);
    assert!(
        PasswordHash::new(&hasher.inner.dummy_hash).is_ok(),
        "the dummy must parse to cost anything"
    );
    let check = hasher.verify("whatever-password", None).await.unwrap();
    assert_eq!(check, PasswordCheck::NO_MATCH);
    assert_eq!(
        hasher.inner.probe.runs.load(Ordering::SeqCst),
        1,
        "the dummy ran on a worker"
    );
}

#[tokio::test]
async fn unreadable_hashes_are_mismatches() {
    let hasher = PasswordHasher::new(1, CHEAP);
    let cases = [
        StoredPassword {
            hash: String::new(),
            salt: String::new(),
        },
        StoredPassword {
            hash: "plaintext-password".into(),
            salt: String::new(),
        },
        StoredPassword {
            hash: "$argon2id$garbage".into(),
            salt: String::new(),
        },
        StoredPassword {
            hash: "$argon2id$v=19$m=1,t=1,p=1$AAAAAAAAAAA$AAAAAAAAAAA".into(),
            salt: String::new(),
        },
        StoredPassword {
            hash: "$argon2i$v=19$m=64,t=1,p=1$WlpaWlpaWlpaWlpaWlpaWg$pQ".into(),
            salt: String::new(),
        },
        StoredPassword {
            hash: "ab".repeat(64),
            salt: String::new(),
        },
        StoredPassword {
            hash: "ab".repeat(64),
            salt: "abc".into(),
        },
        StoredPassword {
            hash: "zz".repeat(64),
            salt: "00".into(),
        },
        StoredPassword {
            hash: "ab".repeat(63),
            salt: "00".into(),
        },
    ];
    for stored in &cases {
        let check = hasher.verify("password", Some(stored)).await.unwrap();
        assert_eq!(check, PasswordCheck::NO_MATCH, "{:?}", stored.hash);
    }
    for stored in &cases[5..] {
        assert!(!verify_pbkdf2_kora("password", stored));
    }
}

#[tokio::test]
async fn invalid_params_are_an_error_not_a_panic() {
    let hasher = PasswordHasher::new(
        1,
        Argon2Params {
            memory_kib: 1,
            iterations: 0,
            parallelism: 0,
        },
    );
    assert_eq!(hasher.hash("password").await.unwrap_err(), PasswordError::Hashing);
    assert_eq!(
        hasher.verify("password", None).await.unwrap(),
        PasswordCheck::NO_MATCH
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permits_bound_concurrent_hashing() {
    for max_concurrent in [1, 2] {
        // Default cost: each hash lasts long enough that unbounded workers would overlap.
        let hasher = PasswordHasher::new(max_concurrent, Argon2Params::default());
        let tasks: Vec<_> = (0..4)
            .map(|i| {
                let hasher = hasher.clone();
                tokio::spawn(async move { hasher.hash(&format!("password-{i}")).await })
            })
            .collect();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        let probe = &hasher.inner.probe;
        assert_eq!(probe.runs.load(Ordering::SeqCst), 4);
        let high_water = probe.high_water.load(Ordering::SeqCst);
        assert!(
            (1..=max_concurrent).contains(&high_water),
            "{high_water} > {max_concurrent}"
        );
        assert_eq!(
            hasher.inner.permits.available_permits(),
            max_concurrent,
            "permits returned"
        );
    }
}

#[tokio::test]
async fn zero_concurrency_means_one() {
    let hasher = PasswordHasher::new(0, CHEAP);
    assert!(hasher.hash("password").await.is_ok());
}

#[test]
fn debug_and_errors_hold_no_secrets() {
    let stored = StoredPassword {
        hash: "ab".repeat(64),
        salt: "cd".repeat(32),
    };
    assert_eq!(format!("{stored:?}"), "StoredPassword(<redacted>)");
    let hasher = PasswordHasher::new(1, CHEAP);
    assert!(!format!("{hasher:?}").contains("argon2id$"));
    assert_eq!(PasswordError::Hashing.to_string(), "password hashing failed");
}
