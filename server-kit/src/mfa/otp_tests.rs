//! Unit tests of `otp.rs`: the RFC vectors, the skew window, replays and malformed codes.

use super::*;

/// RFC 4226 appendix D and RFC 6238 appendix B's SHA-1 seed.
const SEED_SHA1: &[u8] = b"12345678901234567890";
/// RFC 6238 appendix B's SHA-256 seed (32 bytes).
const SEED_SHA256: &[u8] = b"12345678901234567890123456789012";
/// RFC 6238 appendix B's SHA-512 seed (64 bytes).
const SEED_SHA512: &[u8] = b"1234567890123456789012345678901234567890123456789012345678901234";

fn period(secs: u32) -> NonZeroU32 {
    NonZeroU32::new(secs).unwrap()
}

fn config(algorithm: OtpAlgorithm, digits: OtpDigits, period_secs: u32, skew_steps: u8) -> TotpConfig {
    TotpConfig {
        algorithm,
        digits,
        period_secs: period(period_secs),
        skew_steps,
    }
}

fn sha1_secret() -> OtpSecret {
    OtpSecret::new(SEED_SHA1)
}

#[test]
fn rfc6238_appendix_b() {
    // (time, T as in the RFC's table, SHA-1, SHA-256, SHA-512)
    let table: [(i64, u64, &str, &str, &str); 6] = [
        (59, 0x1, "94287082", "46119246", "90693936"),
        (1111111109, 0x023523EC, "07081804", "68084774", "25091201"),
        (1111111111, 0x023523ED, "14050471", "67062674", "99943326"),
        (1234567890, 0x0273EF07, "89005924", "91819424", "93441116"),
        (2000000000, 0x03F940AA, "69279037", "90698825", "38618901"),
        (20000000000, 0x27BC86AA, "65353130", "77737706", "47863826"),
    ];
    let seeds = [
        (OtpAlgorithm::Sha1, SEED_SHA1),
        (OtpAlgorithm::Sha256, SEED_SHA256),
        (OtpAlgorithm::Sha512, SEED_SHA512),
    ];
    for (time, step, sha1, sha256, sha512) in table {
        for ((algorithm, seed), expected) in seeds.into_iter().zip([sha1, sha256, sha512]) {
            let cfg = config(algorithm, OtpDigits::Eight, 30, 1);
            assert_eq!(cfg.step(time), step, "T at {time}");
            let secret = OtpSecret::new(seed);
            assert_eq!(totp_at(&secret, time, &cfg), expected, "{algorithm:?} at {time}");
            assert_eq!(
                verify_totp(&secret, expected, time, &cfg, None),
                Some(step),
                "{algorithm:?} at {time} verifies"
            );
        }
    }
}

#[test]
fn rfc4226_appendix_d() {
    let expected = [
        "755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489",
    ];
    let secret = sha1_secret();
    for (counter, code) in (0u64..).zip(expected) {
        assert_eq!(
            hotp(&secret, counter, OtpAlgorithm::Sha1, OtpDigits::Six),
            code,
            "counter {counter}"
        );
    }
}

#[test]
fn seven_and_eight_digits_truncate_the_same_value() {
    // RFC 4226 appendix D's decimal values: 1284755224 (counter 0), 82162583 (counter 7).
    let secret = sha1_secret();
    assert_eq!(hotp(&secret, 0, OtpAlgorithm::Sha1, OtpDigits::Eight), "84755224");
    assert_eq!(hotp(&secret, 0, OtpAlgorithm::Sha1, OtpDigits::Seven), "4755224");
    assert_eq!(hotp(&secret, 7, OtpAlgorithm::Sha1, OtpDigits::Eight), "82162583");
    assert_eq!(hotp(&secret, 7, OtpAlgorithm::Sha1, OtpDigits::Seven), "2162583");
}

#[test]
fn codes_keep_leading_zeros() {
    // RFC 6238: "07081804" at 1111111109; its last six digits are "081804".
    let secret = sha1_secret();
    let six = TotpConfig::default();
    let code = totp_at(&secret, 1111111109, &six);
    assert_eq!(code, "081804");
    assert_eq!(
        verify_totp(&secret, "081804", 1111111109, &six, None),
        Some(0x023523EC)
    );
    assert_eq!(verify_totp(&secret, "81804", 1111111109, &six, None), None);
}

#[test]
fn defaults_are_sha1_six_digits_thirty_seconds_one_step() {
    let cfg = TotpConfig::default();
    assert_eq!(cfg.algorithm, OtpAlgorithm::Sha1);
    assert_eq!(cfg.digits, OtpDigits::Six);
    assert_eq!(cfg.period_secs.get(), 30);
    assert_eq!(cfg.skew_steps, 1);
    assert_eq!(
        [OtpAlgorithm::Sha1, OtpAlgorithm::Sha256, OtpAlgorithm::Sha512].map(|a| (a.name(), a.secret_len())),
        [("SHA1", 20), ("SHA256", 32), ("SHA512", 64)]
    );
    assert_eq!(OtpDigits::new(5), None);
    assert_eq!(OtpDigits::new(9), None);
    for count in 6..=8 {
        assert_eq!(OtpDigits::new(count).map(OtpDigits::count), Some(count));
    }
}

#[test]
fn steps_at_the_edges_of_time() {
    let cfg = TotpConfig::default();
    assert_eq!(cfg.step(0), 0);
    assert_eq!(cfg.step(29), 0);
    assert_eq!(cfg.step(30), 1);
    assert_eq!(cfg.step(-1), 0, "before the epoch counts as step 0");
    assert_eq!(cfg.step(i64::MIN), 0);
    assert_eq!(cfg.step(i64::MAX), i64::MAX as u64 / 30);
    let every_second = config(OtpAlgorithm::Sha1, OtpDigits::Six, 1, 1);
    assert_eq!(every_second.step(i64::MAX), i64::MAX as u64);
    let longest = config(OtpAlgorithm::Sha1, OtpDigits::Six, u32::MAX, 1);
    assert_eq!(longest.step(i64::MAX), i64::MAX as u64 / u64::from(u32::MAX));

    let secret = sha1_secret();
    assert_eq!(totp_at(&secret, i64::MIN, &cfg), totp_at(&secret, 0, &cfg));
    assert_eq!(totp_at(&secret, 0, &cfg), "755224", "step 0 is HOTP counter 0");
    assert_eq!(totp_at(&secret, -1, &cfg), "755224");
    assert_eq!(totp_at(&secret, i64::MAX, &every_second).len(), 6);
}

#[test]
fn verification_at_the_edges_of_time() {
    let secret = sha1_secret();
    let cfg = TotpConfig::default();
    // At time 0 the window is steps 0 and 1; nothing below 0 wraps around.
    assert_eq!(verify_totp(&secret, "755224", 0, &cfg, None), Some(0));
    assert_eq!(verify_totp(&secret, "287082", 0, &cfg, None), Some(1));
    assert_eq!(verify_totp(&secret, "755224", i64::MIN, &cfg, None), Some(0));
    let wide = config(OtpAlgorithm::Sha1, OtpDigits::Six, 30, u8::MAX);
    assert_eq!(verify_totp(&secret, "520489", 0, &wide, None), Some(9));

    // At the last representable second, step + skew still fits.
    let every_second = config(OtpAlgorithm::Sha1, OtpDigits::Six, 1, 1);
    let top = i64::MAX as u64;
    let next = hotp(&secret, top + 1, OtpAlgorithm::Sha1, OtpDigits::Six);
    assert_eq!(
        verify_totp(&secret, &next, i64::MAX, &every_second, None),
        Some(top + 1)
    );
    assert_eq!(
        verify_totp(&secret, &next, i64::MAX, &every_second, Some(top + 1)),
        None
    );
    assert_eq!(
        verify_totp(&secret, &next, i64::MAX, &every_second, Some(u64::MAX)),
        None
    );
}

#[test]
fn the_window_is_skew_steps_either_side() {
    let secret = sha1_secret();
    let cfg = TotpConfig::default();
    let code_of = |step: u64| hotp(&secret, step, OtpAlgorithm::Sha1, OtpDigits::Six);
    let k = 1_000_000u64;
    let start = (k * 30) as i64; // first second of step k
    let end = start + 29; // last second of step k

    assert_eq!(verify_totp(&secret, &code_of(k), start, &cfg, None), Some(k));
    assert_eq!(
        verify_totp(&secret, &code_of(k - 1), start, &cfg, None),
        Some(k - 1)
    );
    assert_eq!(
        verify_totp(&secret, &code_of(k + 1), end, &cfg, None),
        Some(k + 1)
    );
    assert_eq!(verify_totp(&secret, &code_of(k - 2), start, &cfg, None), None);
    assert_eq!(verify_totp(&secret, &code_of(k + 2), end, &cfg, None), None);
    // One second later, the window has moved.
    assert_eq!(verify_totp(&secret, &code_of(k - 1), end + 1, &cfg, None), None);
    assert_eq!(
        verify_totp(&secret, &code_of(k + 2), end + 1, &cfg, None),
        Some(k + 2)
    );

    let strict = TotpConfig { skew_steps: 0, ..cfg };
    assert_eq!(verify_totp(&secret, &code_of(k), end, &strict, None), Some(k));
    assert_eq!(verify_totp(&secret, &code_of(k - 1), start, &strict, None), None);
    assert_eq!(verify_totp(&secret, &code_of(k + 1), end, &strict, None), None);

    let lenient = TotpConfig { skew_steps: 2, ..cfg };
    assert_eq!(
        verify_totp(&secret, &code_of(k - 2), start, &lenient, None),
        Some(k - 2)
    );
    assert_eq!(
        verify_totp(&secret, &code_of(k + 2), end, &lenient, None),
        Some(k + 2)
    );
    assert_eq!(verify_totp(&secret, &code_of(k + 3), end, &lenient, None), None);
}

#[test]
fn a_code_is_accepted_at_most_once() {
    let secret = sha1_secret();
    let cfg = TotpConfig::default();
    let now = 1_700_000_000;
    let code = totp_at(&secret, now, &cfg);
    let step = verify_totp(&secret, &code, now, &cfg, None).unwrap();
    assert_eq!(step, cfg.step(now));

    // The same code again, even a second later in the same step: refused.
    assert_eq!(verify_totp(&secret, &code, now, &cfg, Some(step)), None);
    assert_eq!(verify_totp(&secret, &code, now + 1, &cfg, Some(step)), None);
    // An older code still inside the window: refused once a newer one was accepted.
    let previous = hotp(&secret, step - 1, OtpAlgorithm::Sha1, OtpDigits::Six);
    assert_eq!(verify_totp(&secret, &previous, now, &cfg, Some(step)), None);
    // The next step's code is new.
    let next = hotp(&secret, step + 1, OtpAlgorithm::Sha1, OtpDigits::Six);
    assert_eq!(verify_totp(&secret, &next, now, &cfg, Some(step)), Some(step + 1));
    // A last step from long ago does not restrict the window.
    assert_eq!(verify_totp(&secret, &code, now, &cfg, Some(0)), Some(step));
}

#[test]
fn a_code_matching_two_steps_counts_as_the_later() {
    // Counters 2386 and 2394 of the RFC 4226 secret share the 6-digit code 709847. If the
    // earlier step were returned and stored, the same code would be accepted again at the
    // later step.
    let secret = sha1_secret();
    let code = hotp(&secret, 2386, OtpAlgorithm::Sha1, OtpDigits::Six);
    assert_eq!(code, "709847");
    assert_eq!(hotp(&secret, 2394, OtpAlgorithm::Sha1, OtpDigits::Six), code);
    let cfg = config(OtpAlgorithm::Sha1, OtpDigits::Six, 1, 4);
    assert_eq!(verify_totp(&secret, &code, 2390, &cfg, None), Some(2394));
    assert_eq!(verify_totp(&secret, &code, 2390, &cfg, Some(2394)), None);
}

#[test]
fn malformed_codes_are_refused_without_panicking() {
    let secret = sha1_secret();
    let cfg = TotpConfig::default();
    let now = 59;
    let good = totp_at(&secret, now, &cfg);
    assert_eq!(good, "287082");
    for code in [
        "",
        "28708",
        "2870820",
        " 287082",
        "287082 ",
        "287082\n",
        "287 082",
        "+28708",
        "-28708",
        "28708a",
        "28708A",
        "２８７０８２",
        "٢٨٧٠٨٢",
        "28708\u{0}",
        "0x1234",
        "99999999999999999999",
    ] {
        assert_eq!(verify_totp(&secret, code, now, &cfg, None), None, "{code:?}");
    }
    // An 8-digit code against a 6-digit configuration, and the other way round.
    let eight = TotpConfig {
        digits: OtpDigits::Eight,
        ..cfg
    };
    assert_eq!(verify_totp(&secret, "94287082", now, &cfg, None), None);
    assert_eq!(verify_totp(&secret, "287082", now, &eight, None), None);
    assert_eq!(verify_totp(&secret, "94287082", now, &eight, None), Some(1));
}

#[test]
fn periods_and_digits_vary() {
    let secret = sha1_secret();
    let minute = config(OtpAlgorithm::Sha1, OtpDigits::Six, 60, 1);
    assert_eq!(totp_at(&secret, 59, &minute), "755224", "still step 0");
    assert_eq!(totp_at(&secret, 60, &minute), "287082");
    assert_eq!(verify_totp(&secret, "287082", 60, &minute, None), Some(1));

    let seven = config(OtpAlgorithm::Sha1, OtpDigits::Seven, 30, 1);
    assert_eq!(totp_at(&secret, 0, &seven), "4755224");
    assert_eq!(verify_totp(&secret, "4755224", 0, &seven, None), Some(0));

    for (algorithm, seed) in [
        (OtpAlgorithm::Sha256, SEED_SHA256),
        (OtpAlgorithm::Sha512, SEED_SHA512),
    ] {
        let cfg = config(algorithm, OtpDigits::Six, 45, 1);
        let secret = OtpSecret::new(seed);
        let now = 1_700_000_000;
        let code = totp_at(&secret, now, &cfg);
        assert_eq!(code.len(), 6);
        assert_eq!(verify_totp(&secret, &code, now, &cfg, None), Some(cfg.step(now)));
        // Another algorithm over the same secret makes another code (for these inputs).
        let sha1 = TotpConfig {
            algorithm: OtpAlgorithm::Sha1,
            ..cfg
        };
        assert_eq!(
            verify_totp(&secret, &code, now, &sha1, None),
            None,
            "{algorithm:?}"
        );
    }
}
