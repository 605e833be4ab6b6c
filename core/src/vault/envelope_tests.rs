use ring::rand::{SecureRandom, SystemRandom};

use super::*;
use crate::vault::derive_passphrase_key;

fn vault() -> Vault {
    Vault::new(VaultKey::generate().unwrap())
}

const NS: &str = "https://auth.example.com|alice@example.com";

#[test]
fn round_trip() {
    let vault = vault();
    for plaintext in [&b""[..], b"x", b"{\"accessToken\":\"a.b.c\"}", &[0u8; 4096]] {
        let blob = vault.seal(NS, "session", plaintext).unwrap();
        assert_eq!(blob.len(), MIN_ENVELOPE_LEN + plaintext.len());
        assert_eq!(blob[0], ENVELOPE_VERSION);
        assert_eq!(vault.open(NS, "session", &blob).unwrap().as_slice(), plaintext);
    }
}

#[test]
fn a_blob_is_bound_to_its_record_and_namespace() {
    let vault = vault();
    let blob = vault.seal(NS, "session", b"token").unwrap();
    assert_eq!(vault.open(NS, "device", &blob), Err(VaultError::Tampered));
    assert_eq!(
        vault.open("https://other.example.com|alice", "session", &blob),
        Err(VaultError::Tampered)
    );
    // Without length prefixes these two names would both read "absession".
    let blob = vault.seal("ab", "session", b"token").unwrap();
    assert_eq!(vault.open("a", "bsession", &blob), Err(VaultError::Tampered));
    assert_eq!(vault.open("absession", "", &blob), Err(VaultError::Tampered));
}

#[test]
fn every_seal_has_a_fresh_nonce() {
    let vault = vault();
    let a = vault.seal(NS, "session", b"same").unwrap();
    let b = vault.seal(NS, "session", b"same").unwrap();
    assert_ne!(a, b);
    let nonces: std::collections::HashSet<Vec<u8>> = (0..1000)
        .map(|_| vault.seal(NS, "session", b"same").unwrap()[1..13].to_vec())
        .collect();
    assert_eq!(nonces.len(), 1000);
}

#[test]
fn another_key_is_tampered_for_records_and_wrong_key_for_the_check() {
    let (writer, reader) = (vault(), vault());
    let blob = writer.seal(NS, "session", b"token").unwrap();
    assert_eq!(reader.open(NS, "session", &blob), Err(VaultError::Tampered));
    let check = writer.key_check().unwrap();
    assert_eq!(writer.verify_key_check(&check), Ok(()));
    assert_eq!(reader.verify_key_check(&check), Err(VaultError::WrongKey));
}

#[test]
fn a_wrong_passphrase_is_a_wrong_key() {
    let salt = [9u8; 32];
    let right = Vault::new(derive_passphrase_key("correct horse", &salt));
    let wrong = Vault::new(derive_passphrase_key("correct horse ", &salt));
    let check = right.key_check().unwrap();
    assert_eq!(right.verify_key_check(&check), Ok(()));
    assert_eq!(wrong.verify_key_check(&check), Err(VaultError::WrongKey));
}

#[test]
fn a_damaged_key_check_keeps_its_own_error() {
    let vault = vault();
    assert_eq!(vault.verify_key_check(&[]), Err(VaultError::Truncated));
    assert_eq!(
        vault.verify_key_check(&[2; 40]),
        Err(VaultError::UnknownVersion(2))
    );
    // A record of the vault's own is authentic but is not the check.
    let record = vault
        .seal(KEY_CHECK_NAMESPACE, KEY_CHECK_RECORD, b"something else")
        .unwrap();
    assert_eq!(vault.verify_key_check(&record), Err(VaultError::Tampered));
}

#[test]
fn reseal_moves_a_record_to_the_new_key() {
    let (old, new) = (vault(), vault());
    let blob = old.seal(NS, "session", b"token").unwrap();
    let moved = old.reseal(&new, NS, "session", &blob).unwrap();
    assert_eq!(new.open(NS, "session", &moved).unwrap().as_slice(), b"token");
    assert_eq!(old.open(NS, "session", &moved), Err(VaultError::Tampered));
    // A record the old key cannot open is reported, not resealed.
    assert_eq!(new.reseal(&old, NS, "session", &blob), Err(VaultError::Tampered));
}

#[test]
fn errors_distinguish_truncated_unknown_version_and_tampered() {
    let vault = vault();
    assert_eq!(vault.open(NS, "r", &[]), Err(VaultError::Truncated));
    assert_eq!(
        vault.open(NS, "r", &[1; MIN_ENVELOPE_LEN - 1]),
        Err(VaultError::Truncated)
    );
    assert_eq!(vault.open(NS, "r", &[0]), Err(VaultError::UnknownVersion(0)));
    assert_eq!(vault.open(NS, "r", &[2; 64]), Err(VaultError::UnknownVersion(2)));
    assert_eq!(
        vault.open(NS, "r", &[1; MIN_ENVELOPE_LEN]),
        Err(VaultError::Tampered)
    );
}

#[test]
fn random_blobs_of_every_length_never_open_and_never_panic() {
    let vault = vault();
    let rng = SystemRandom::new();
    for len in 0..100 {
        for round in 0..20 {
            let mut blob = vec![0u8; len];
            rng.fill(&mut blob).unwrap();
            // Half the rounds carry the right version so they reach the cipher.
            if round % 2 == 0 && len > 0 {
                blob[0] = ENVELOPE_VERSION;
            }
            let result = vault.open(NS, "session", &blob);
            match (len, blob.first()) {
                (0, _) => assert_eq!(result, Err(VaultError::Truncated)),
                (_, Some(&v)) if v != ENVELOPE_VERSION => {
                    assert_eq!(result, Err(VaultError::UnknownVersion(v)))
                }
                (len, _) if len < MIN_ENVELOPE_LEN => assert_eq!(result, Err(VaultError::Truncated)),
                _ => assert_eq!(result, Err(VaultError::Tampered)),
            }
            assert!(vault.verify_key_check(&blob).is_err());
        }
    }
}

#[test]
fn every_single_bit_flip_is_detected() {
    let vault = vault();
    let blob = vault
        .seal(NS, "session", b"{\"refreshToken\":\"d.e.f\"}")
        .unwrap();
    for bit in 0..blob.len() * 8 {
        let mut flipped = blob.clone();
        flipped[bit / 8] ^= 1 << (bit % 8);
        let expected = if bit < 8 {
            VaultError::UnknownVersion(flipped[0])
        } else {
            VaultError::Tampered
        };
        assert_eq!(vault.open(NS, "session", &flipped), Err(expected), "bit {bit}");
    }
    // Every truncation too.
    for len in 0..blob.len() {
        assert!(vault.open(NS, "session", &blob[..len]).is_err(), "length {len}");
    }
}

#[test]
fn debug_shows_no_key() {
    let vault = Vault::new(VaultKey::from_bytes(&[0x5a; 32]).unwrap());
    assert_eq!(format!("{vault:?}"), "Vault { key: VaultKey(<redacted>) }");
}
