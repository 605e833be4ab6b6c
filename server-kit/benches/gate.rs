//! Sync-gate admissions on one core: with warm caches (signature checked every time,
//! claims and standing from memory), and with a device proof (the P-256 verification and
//! the replay store added).
//!
//! `cargo bench -p holdfast-server-kit --bench gate -- --warm-up-time 1 --measurement-time 3`
//! (figures in docs/PERFORMANCE.md; admissions per second per core = 1 / time).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use holdfast_protocol::jwk::PublicJwk;
use holdfast_protocol::proof::{ProofClaims, access_token_hash, assemble, signing_input};
use holdfast_server_kit::gate::Handshake;
use holdfast_server_kit::passwords::Argon2Params;
use holdfast_server_kit::{AuthRequest, AuthService, Kit, ServerConfig, Stores};
use http::Method;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde_json::{Value, json};

const SYNC_URL: &str = "https://sync.example.com/sync";

struct Device {
    key: EcdsaKeyPair,
    jwk: String,
}

impl Device {
    fn generate() -> Device {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
        let point = key.public_key().as_ref();
        let jwk = format!(
            r#"{{"kty":"EC","crv":"P-256","x":"{}","y":"{}"}}"#,
            URL_SAFE_NO_PAD.encode(&point[1..33]),
            URL_SAFE_NO_PAD.encode(&point[33..65])
        );
        Device { key, jwk }
    }

    fn proof(&self, access: &str, now_secs: i64, jti: u64) -> String {
        let claims = ProofClaims {
            jti: format!("bench-{jti}"),
            htm: "GET".into(),
            htu: SYNC_URL.into(),
            iat: now_secs,
            ath: access_token_hash(access),
            nonce: None,
        };
        let input = signing_input(&PublicJwk::parse(&self.jwk).unwrap(), &claims);
        let signature = self.key.sign(&SystemRandom::new(), input.as_bytes()).unwrap();
        assemble(&input, signature.as_ref().try_into().unwrap())
    }
}

async fn sign_up(service: &AuthService, body: Value) -> String {
    let request = AuthRequest::new(Method::POST, "/auth/signup").with_json(body.to_string());
    let response = service.handle(request).await;
    let body: Value = serde_json::from_slice(&response.body).unwrap();
    body["data"]["tokens"]["accessToken"].as_str().unwrap().to_owned()
}

fn admissions(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut config = ServerConfig::new(vec!["holdfast-bench-secret-0123456789abcdef-0123".into()]);
    config.argon2 = Argon2Params {
        memory_kib: 1024,
        iterations: 1,
        parallelism: 1,
    };
    let device = Device::generate();
    let (gate, unbound, bound) = rt.block_on(async {
        let kit = Kit::builder(config, Stores::sqlite(dir.path().join("auth.db")).unwrap())
            .build()
            .await
            .unwrap();
        let (service, gate) = (kit.service().clone(), kit.gate().clone());
        let unbound = sign_up(
            &service,
            json!({"email": "web@example.com", "password": "correct horse battery", "deviceId": "web-1"}),
        )
        .await;
        let bound = sign_up(
            &service,
            json!({"email": "phone@example.com", "password": "correct horse battery",
                   "deviceId": "phone-1", "devicePublicKey": device.jwk}),
        )
        .await;
        (gate, unbound, bound)
    });
    let now_secs =
        || holdfast_server_kit::clock::Clock::now_ms(&holdfast_server_kit::clock::SystemClock) / 1000;

    let mut group = c.benchmark_group("gate");
    group.bench_function("admit/warm_unbound", |b| {
        b.to_async(&rt).iter(|| async {
            let handshake = Handshake {
                access_token: &unbound,
                proof: None,
                method: "GET",
                url: SYNC_URL,
            };
            gate.admit(&handshake).await.unwrap()
        })
    });
    let mut jti = 0u64;
    group.bench_function("admit/warm_with_proof", |b| {
        b.to_async(&rt).iter_batched(
            || {
                jti += 1;
                device.proof(&bound, now_secs(), jti)
            },
            |proof| {
                let (gate, bound) = (&gate, &bound);
                async move {
                    let handshake = Handshake {
                        access_token: bound,
                        proof: Some(&proof),
                        method: "GET",
                        url: SYNC_URL,
                    };
                    gate.admit(&handshake).await.unwrap()
                }
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, admissions);
criterion_main!(benches);
