//! Whether `POST /auth/password/reset-request` tells a known address from an unknown one by
//! its timing (PROTOCOL 8: same answer, comparable timing). A server kit with a mailer (in
//! memory) on loopback gets reset requests for a known and an unknown address, interleaved;
//! the client-side latency of each kind is reported as median, p90 and p99.
//!
//! `cargo run --release -p holdfast-examples --bin reset_timing -- [REQUESTS]` (default 2000
//! of each kind).

use std::sync::Arc;
use std::time::{Duration, Instant};

use holdfast_server_kit::mail::{MailSettings, MemoryMailer, Outbox};
use serde_json::json;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<()> {
    let requests: usize = std::env::args()
        .nth(1)
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(2000);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mailer = MemoryMailer::new();
    let settings = MailSettings::new(
        "Holdfast <no-reply@example.com>",
        "https://app.example.com/reset",
        "https://app.example.com/verify",
    );
    let outbox = Outbox::new(Arc::new(mailer.clone()), settings)?;
    let server = holdfast_testing::TestServer::builder()
        .quick()
        .mail(Arc::new(outbox))
        .start()
        .await;
    let client = reqwest::Client::builder().no_proxy().build()?;
    let url = server.url("/auth/password/reset-request");
    let known = "known@example.com";
    let signed_up = client
        .post(server.url("/auth/signup"))
        .json(&json!({ "email": known, "password": "correct horse battery" }))
        .send()
        .await?;
    if signed_up.status() != 201 {
        return Err(format!("sign-up answered {}", signed_up.status()).into());
    }

    let mut timings: [Vec<Duration>; 2] = [Vec::with_capacity(requests), Vec::with_capacity(requests)];
    let mut bodies: [Option<String>; 2] = [None, None];
    // A warm-up, then the two kinds in alternation so drift touches both alike.
    for round in 0..(requests + 100) {
        for (kind, email) in [known, "unknown@example.com"].into_iter().enumerate() {
            let started = Instant::now();
            let answer = client.post(&url).json(&json!({ "email": email })).send().await?;
            let status = answer.status();
            let body = answer.text().await?;
            let elapsed = started.elapsed();
            if status != 200 {
                return Err(format!("{email}: {status} {body}").into());
            }
            if bodies[kind].get_or_insert_with(|| body.clone()) != &body {
                return Err("the answers differ within one kind".into());
            }
            if round >= 100 {
                timings[kind].push(elapsed);
            }
        }
    }
    if bodies[0] != bodies[1] {
        return Err(format!("the answers differ: {:?} / {:?}", bodies[0], bodies[1]).into());
    }
    let mails = mailer
        .wait_for(3, Duration::from_secs(10))
        .await
        .map_or(0, |m| m.len());
    println!(
        "{requests} requests of each kind; identical bodies: {}; mails sent: {mails} (at most 3 live reset tokens per account)",
        bodies[0].as_deref().unwrap_or_default()
    );
    for (name, times) in ["known", "unknown"].iter().zip(timings.iter_mut()) {
        times.sort();
        println!(
            "{name:>8}: median {:>7.1} µs  p90 {:>7.1} µs  p99 {:>7.1} µs",
            percentile(times, 0.5).as_secs_f64() * 1e6,
            percentile(times, 0.9).as_secs_f64() * 1e6,
            percentile(times, 0.99).as_secs_f64() * 1e6,
        );
    }
    server.stop().await;
    Ok(())
}
