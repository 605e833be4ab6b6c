//! The client vault: the envelope of sealed records and Kora's stored-value format.
#![no_main]

use holdfast_core::vault::{Vault, VaultKey, kora};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let key = || VaultKey::from_bytes(&[7u8; 32]).expect("a 32-byte key");
    let vault = Vault::new(key());
    let _ = vault.open("session", "tokens", data);
    let _ = vault.verify_key_check(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = kora::decrypt(&key(), text);
    }
    // Whatever is sealed opens again, and only under its own name.
    let sealed = vault.seal("session", "tokens", data).expect("seal");
    assert_eq!(&vault.open("session", "tokens", &sealed).expect("open")[..], data);
    assert!(vault.open("session", "other", &sealed).is_err());
});
