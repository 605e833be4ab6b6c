//! The server kit's cryptographic hot paths against the targets in DESIGN.md ("Targets"):
//! HS256 verification (about 1.2 µs, of which the MAC is 0.35 µs), P-256 verification with
//! ring versus the pure-Rust `p256` crate (and aws-lc-rs with `--features bench-aws-lc`),
//! PBKDF2-SHA512 600k within 1.2x of the machine's raw SHA-512 speed, and Argon2id at the
//! default cost.
//!
//! Run: `cargo bench -p holdfast-server-kit --bench crypto -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use holdfast_protocol::{PublicJwk, TokenType};
use holdfast_server_kit::devices::verify_challenge;
use holdfast_server_kit::passwords::{Argon2Params, PasswordHasher, hash_pbkdf2_kora};
use holdfast_server_kit::tokens::{PayloadBuffer, TokenKeys, TokenManager, TokenPolicy};
use p256::ecdsa::signature::Verifier;

const SECRET: &str = "kora-peer-dev-secret-0123456789abcdef0123456789abcdef";
const NOW: i64 = 1_700_000_000;

/// The Kora golden device key and challenge signature (`conformance/kora-vectors.json`).
const KORA_JWK: &str = r#"{"key_ops":["verify"],"ext":true,"kty":"EC","x":"ZYzwMY_MCfMzjxD22VzsCuJBuLTmQjhuV9RiGQBcWlU","y":"lhwrvLNBvms_cxvvzO7zCQjcrAQE3A-AVZS9TnpvCtc","crv":"P-256"}"#;
const KORA_CHALLENGE: &str = "a3f1c2d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90";
const KORA_SIGNATURE: &str =
    "LH1JRR-ui_7zCmeqFFKcM0uuKRTi8-8vxu9SPCZjrtxXceWUD38TvDMoNzyNUnqPCZM285dNM8R27_Pf32F7Hg";

fn manager() -> TokenManager {
    let policy = TokenPolicy {
        access_ttl_secs: 900,
        refresh_ttl_secs: 90 * 86_400,
        device_credential_ttl_secs: 90 * 86_400,
        leeway_secs: 5,
    };
    TokenManager::new(TokenKeys::new(&[SECRET]).unwrap(), policy)
}

fn hs256(c: &mut Criterion) {
    let tokens = manager();
    // A realistic access token: UUID jti and family, device-key binding.
    let pair = tokens.issue_pair(
        "5f0c6a1e-2b7d-4c1f-9a3e-8d2b6c4e1f70",
        "device-3c9e0b2a",
        "0b7e9d4a-6c2f-4e8b-a1d3-5f9c2e7b4a60",
        Some("VfgaAVYfO1paNyhrn-87ShJMMRBGtlxiFWr4uWfJzI4"),
        NOW,
    );
    let access = pair.access.clone();
    let claims = pair.access_claims.clone();
    let signing_input = access.rsplit_once('.').unwrap().0.to_owned();
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, SECRET.as_bytes());

    let mut group = c.benchmark_group("hs256");
    // What a verifier that reads the claims costs: the claims borrow from a payload buffer
    // (made fresh each time here, as a caller on its stack would).
    group.bench_function("verify_access_token", |b| {
        b.iter(|| {
            let mut buffer = PayloadBuffer::new();
            let claims = tokens
                .verify_borrowed(black_box(&access), TokenType::Access, NOW, &mut buffer)
                .unwrap();
            black_box(claims.exp);
        })
    });
    // The same with the claims made owned (`TokenManager::verify`), for a caller that keeps
    // them.
    group.bench_function("verify_access_token_owned", |b| {
        b.iter(|| tokens.verify(black_box(&access), TokenType::Access, NOW).unwrap())
    });
    group.bench_function("sign_access_token", |b| {
        b.iter(|| tokens.keys().sign(black_box(&claims)))
    });
    // The floor under verification: the MAC alone over the same signing input.
    group.bench_function("hmac_sha256_only", |b| {
        b.iter(|| ring::hmac::sign(&key, black_box(signing_input.as_bytes())))
    });
    group.finish();
}

fn p256_verify(c: &mut Criterion) {
    let jwk = PublicJwk::parse(KORA_JWK).unwrap();
    let signature = holdfast_protocol::signature::decode_signature(KORA_SIGNATURE).unwrap();
    let sec1 = jwk.sec1_uncompressed();
    assert!(verify_challenge(&jwk, KORA_CHALLENGE, &signature));

    let mut group = c.benchmark_group("p256_p1363_verify");
    // Both include parsing the public key, as a server verifying a stored key does.
    group.bench_function("ring", |b| {
        b.iter(|| {
            assert!(verify_challenge(
                black_box(&jwk),
                KORA_CHALLENGE,
                black_box(&signature)
            ))
        })
    });
    #[cfg(feature = "bench-aws-lc")]
    aws_lc_rs_verify(&mut group, &sec1, &signature);
    group.bench_function("p256_crate", |b| {
        b.iter(|| {
            let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(black_box(&sec1)).unwrap();
            let sig = p256::ecdsa::Signature::from_slice(black_box(&signature)).unwrap();
            assert!(key.verify(KORA_CHALLENGE.as_bytes(), &sig).is_ok());
        })
    });
    group.finish();
}

fn password_hashing(c: &mut Criterion) {
    let mut group = c.benchmark_group("passwords");
    group.sample_size(10);

    let salt = [0x11_u8; 32];
    group.bench_function("pbkdf2_sha512_600k_ring", |b| {
        b.iter(|| hash_pbkdf2_kora(black_box("correct horse battery"), &salt))
    });

    // The machine's SHA-512 limit for the same work. PBKDF2-HMAC-SHA512 with a 64-byte key
    // (one output block) runs 600,000 HMACs; with the inner and outer keyed pads hashed once
    // up front, each HMAC costs two compressions (inner: the 64-byte U plus padding fits one
    // 128-byte block; outer: the 64-byte inner digest plus padding, one block). So 1.2M
    // compressions is the floor, measured here as ring's SHA-512 over 1.2M 128-byte blocks
    // streamed through one context (no per-hash finalization overhead).
    const BLOCKS: usize = 1_200_000;
    const CHUNK_BLOCKS: usize = 1024;
    let chunk = vec![0x5c_u8; CHUNK_BLOCKS * 128];
    group.bench_function("sha512_1_2m_blocks_ring", |b| {
        b.iter(|| {
            let mut context = ring::digest::Context::new(&ring::digest::SHA512);
            for _ in 0..BLOCKS / CHUNK_BLOCKS {
                context.update(black_box(&chunk));
            }
            context.update(&chunk[..(BLOCKS % CHUNK_BLOCKS) * 128]);
            context.finish()
        })
    });

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let hasher = PasswordHasher::new(1, Argon2Params::default());
    group.bench_function("argon2id_default_hash", |b| {
        b.iter(|| {
            runtime
                .block_on(hasher.hash(black_box("correct horse battery")))
                .unwrap()
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    targets = hs256, p256_verify, password_hashing
}
criterion_main!(benches);

/// aws-lc-rs beside ring (`--features bench-aws-lc`: its C build adds minutes to every
/// build, so the comparison is opt-in).
#[cfg(feature = "bench-aws-lc")]
fn aws_lc_rs_verify(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    sec1: &[u8],
    signature: &[u8],
) {
    // aws-lc-rs (AWS-LC's assembly P-256) side by side with ring, the same work: the SEC1
    // point parsed and checked on every verification.
    group.bench_function("aws_lc_rs", |b| {
        b.iter(|| {
            let key = aws_lc_rs::signature::UnparsedPublicKey::new(
                &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED,
                black_box(sec1),
            );
            assert!(
                key.verify(KORA_CHALLENGE.as_bytes(), black_box(signature))
                    .is_ok()
            );
        })
    });
    // aws-lc-rs with the key parsed once (kept per device thumbprint): the verification
    // alone.
    let parsed =
        aws_lc_rs::signature::ParsedPublicKey::new(&aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED, sec1)
            .unwrap();
    group.bench_function("aws_lc_rs_parsed_key", |b| {
        b.iter(|| {
            assert!(
                black_box(&parsed)
                    .verify_sig(KORA_CHALLENGE.as_bytes(), black_box(signature))
                    .is_ok()
            );
        })
    });
}
