//! What a second factor reads from outside: a code or a recovery code typed by anyone,
//! base32 from an authenticator app's export, and a sealed secret read back from the
//! database. None may panic, and a code is accepted only for a step after the last one
//! accepted.
#![no_main]

use holdfast_server_kit::mfa::{
    OtpSecret, RecoveryHasher, SecretSealer, TotpConfig, base32_decode, totp_at, verify_totp,
};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn sealer() -> &'static SecretSealer {
    static SEALER: OnceLock<SecretSealer> = OnceLock::new();
    SEALER.get_or_init(|| SecretSealer::new(&[7u8; 32], &[&[9u8; 32]]).expect("sealer"))
}

fn recovery() -> &'static RecoveryHasher {
    static HASHER: OnceLock<RecoveryHasher> = OnceLock::new();
    HASHER.get_or_init(|| RecoveryHasher::new(&[5u8; 32]).expect("hasher"))
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = base32_decode(text);
    let _ = OtpSecret::from_base32(text);
    let _ = sealer().open(text, "user-1");
    // A recovery code as typed: a hash only for a code's shape, the same however it is
    // cased or spaced.
    if let Some(hash) = recovery().hash("user-1", text) {
        assert_eq!(hash.len(), 64);
        assert_eq!(recovery().hash("user-1", &text.to_lowercase()), Some(hash));
    }

    let secret = OtpSecret::new(b"12345678901234567890".to_vec());
    let config = TotpConfig::default();
    let now = 1_700_000_000;
    if let Some(step) = verify_totp(&secret, text, now, &config, None) {
        // A code that verified is the code of that step, and never verifies again once its
        // step is the last accepted one.
        assert_eq!(verify_totp(&secret, text, now, &config, Some(step)), None);
        let _ = totp_at(&secret, now, &config);
    }
});
