//! Device-key costs on the client: proof creation (DESIGN target: under 100 µs), challenge
//! signing, and loading the key from its stored PKCS#8 bytes.
//!
//! Run: `cargo bench -p holdfast-core --bench device`

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use holdfast_core::device::{SoftwareSigner, device_proof, sign_challenge};

const TOKEN: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJqdGkiOiIxIiwic3ViIjoidSIsImRldiI6ImQiLCJ0eXBlIjoiYWNjZXNzIiwiaWF0IjoxLCJleHAiOjJ9.c2lnbmF0dXJl";
const CHALLENGE: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn device(c: &mut Criterion) {
    let Ok((signer, pkcs8)) = SoftwareSigner::generate() else {
        return;
    };
    c.bench_function("device_proof", |b| {
        b.iter(|| {
            device_proof(
                &signer,
                black_box("GET"),
                black_box("wss://sync.example.com/sync?room=1"),
                black_box(TOKEN),
                None,
                black_box(1_700_000_000),
            )
        })
    });
    c.bench_function("sign_challenge", |b| {
        b.iter(|| sign_challenge(&signer, black_box(CHALLENGE)))
    });
    c.bench_function("from_pkcs8", |b| {
        b.iter(|| SoftwareSigner::from_pkcs8(black_box(&pkcs8)))
    });
}

criterion_group!(benches, device);
criterion_main!(benches);
