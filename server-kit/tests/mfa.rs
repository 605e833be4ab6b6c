//! Multi-factor authentication over real loopback HTTP (PROTOCOL 9), every case on SQLite
//! and on PostgreSQL: enrolment and its confirmation, pending tokens and the routes they
//! may use, completing a sign-in with a code or a recovery code, recovery codes, step-up,
//! disabling, attempt limits, device re-login, the sync gate; and on two PostgreSQL
//! instances, one code submitted to both at once is accepted exactly once.
//!
//! Codes are computed here by an implementation of RFC 6238 of this file's own (ring's
//! HMAC-SHA1 and the RFC's truncation), from the secret the server handed out, at the
//! server's manual clock. The PostgreSQL runs need a reachable server
//! (`HOLDFAST_TEST_POSTGRES_URL`, see `postgres_support`): they fail, never skip, without one.

#[path = "both_backends/mod.rs"]
mod both_backends;
#[path = "postgres_support/mod.rs"]
mod postgres_support;
mod support;

#[path = "mfa/enrolment.rs"]
mod enrolment;
#[path = "mfa/pending.rs"]
mod pending;
#[path = "mfa/step_up.rs"]
mod step_up;

use both_backends::on_both;
pub use both_backends::{Backend, Kind};
use holdfast_server_kit::clock::{Clock, ManualClock, SystemClock};
use holdfast_server_kit::{ServerConfig, Stores};
use postgres_support::TestSchema;
use serde_json::{Value, json};
use support::{PASSWORD, Reply, Session, TestServer};

/// The TOTP code of the base32 `secret` at `unix_secs` (SHA-1, 6 digits, 30 s), computed
/// from RFC 6238 and RFC 4226 directly, not with the server kit's code.
pub fn code_at(secret: &str, unix_secs: i64) -> String {
    let key = base32(secret);
    let counter = (unix_secs / 30) as u64;
    let tag = ring::hmac::sign(
        &ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &key),
        &counter.to_be_bytes(),
    );
    let mac = tag.as_ref();
    let offset = usize::from(mac[19] & 0x0f);
    let value = u32::from_be_bytes([
        mac[offset] & 0x7f,
        mac[offset + 1],
        mac[offset + 2],
        mac[offset + 3],
    ]);
    format!("{:06}", value % 1_000_000)
}

fn base32(text: &str) -> Vec<u8> {
    let mut bits = 0u64;
    let mut count = 0;
    let mut out = Vec::new();
    for c in text.bytes().filter(|c| *c != b'=') {
        let value = match c {
            b'A'..=b'Z' => c - b'A',
            b'2'..=b'7' => c - b'2' + 26,
            _ => panic!("not base32: {text}"),
        };
        bits = (bits << 5) | u64::from(value);
        count += 5;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
        }
    }
    out
}

/// What enrolment handed out.
pub struct Enrolled {
    pub secret: String,
    pub uri: String,
    pub recovery_codes: Vec<String>,
}

impl Enrolled {
    /// The code of the next time step: the clock moves 30 s first, so no code is a replay
    /// of the last one accepted.
    pub fn next_code(&self, server: &TestServer) -> String {
        server.clock.advance_ms(30_000);
        code_at(&self.secret, server.now_secs())
    }
}

/// `POST /mfa/enable` for `session`; panics unless 200.
pub async fn begin(server: &TestServer, session: &Session) -> Enrolled {
    let reply = server
        .post_auth("/auth/mfa/enable", &session.access, json!({}))
        .await
        .expect_status(200);
    let data = reply.data();
    Enrolled {
        secret: data["secret"].as_str().expect("secret").to_owned(),
        uri: data["uri"].as_str().expect("uri").to_owned(),
        recovery_codes: data["recoveryCodes"]
            .as_array()
            .expect("recoveryCodes")
            .iter()
            .map(|code| code.as_str().expect("a code").to_owned())
            .collect(),
    }
}

/// Enrols and confirms (MFA on) for `session`.
pub async fn enable(server: &TestServer, session: &Session) -> Enrolled {
    let enrolled = begin(server, session).await;
    let code = code_at(&enrolled.secret, server.now_secs());
    server
        .post_auth("/auth/mfa/verify-setup", &session.access, json!({ "code": code }))
        .await
        .expect_status(200);
    enrolled
}

/// Signs in with the password (no device, no proof, as Kora's web client).
pub async fn sign_in(server: &TestServer, address: &str) -> Session {
    Session::from_reply(
        server
            .post_unproven("/auth/signin", json!({ "email": address, "password": PASSWORD }))
            .await
            .expect_status(200),
    )
}

/// `{tokens}` of a reply as (access, refresh).
pub fn tokens_of(reply: &Reply) -> (String, String) {
    let tokens: &Value = &reply.data()["tokens"];
    (
        tokens["accessToken"].as_str().expect("access").to_owned(),
        tokens["refreshToken"].as_str().expect("refresh").to_owned(),
    )
}

on_both!(
    enrolment::enrolment_turns_mfa_on_only_after_a_code,
    enrolment::the_secret_is_sealed_and_codes_are_hashed_at_rest,
    enrolment::recovery_codes_work_once_and_regeneration_replaces_them,
    enrolment::disabling_needs_a_code_and_turns_pending_sign_ins_off,
    pending::a_sign_in_with_mfa_is_pending_until_a_code,
    pending::a_recovery_code_completes_a_sign_in,
    pending::a_code_is_accepted_once_and_wrong_codes_are_limited,
    pending::the_sync_gate_refuses_pending_tokens,
    pending::device_relogin_keeps_a_verified_session_verified,
    pending::a_password_reset_works_with_mfa_on_and_keeps_it,
    step_up::the_sensitive_routes_need_a_recent_check,
    step_up::assurance_survives_refresh_and_restart,
);

/// Two instances on one PostgreSQL schema (each with its own pool), one code submitted by
/// several pending sessions to both at once, round after round: exactly one acceptance per
/// code, because the last accepted step advances in one conditional write.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_code_on_two_postgres_instances_is_accepted_exactly_once() {
    let schema = TestSchema::new();
    let clock = ManualClock::new(SystemClock.now_ms());
    let connect = || async {
        Stores::postgres(&schema.url, Some(&schema.name))
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at {} (never skipped): {e}", schema.url))
    };
    // Only the single acceptance is under test here, not the attempt limits.
    let unlimited = |config: &mut ServerConfig| config.mfa.attempts = None;
    let a = TestServer::start_with_stores(connect().await, clock.clone(), unlimited).await;
    let b = TestServer::start_with_stores(connect().await, clock.clone(), unlimited).await;
    let address = support::email("race");
    let first = a.sign_up(&address).await;
    let enrolled = enable(&a, &first).await;
    const ROUNDS: usize = 8;
    const RACERS: usize = 6;
    for round in 0..ROUNDS {
        let mut pending = Vec::new();
        for _ in 0..RACERS {
            pending.push(sign_in(&a, &address).await);
        }
        let code = enrolled.next_code(&a);
        let submissions = pending.iter().enumerate().map(|(index, session)| {
            let server = if index % 2 == 0 { &a } else { &b };
            server.post_auth("/auth/mfa/verify", &session.access, json!({ "code": code }))
        });
        let replies = futures_util::future::join_all(submissions).await;
        let accepted = replies.iter().filter(|reply| reply.status == 200).count();
        for reply in replies.iter().filter(|reply| reply.status != 200) {
            reply.expect_error(400, "MFA_CODE_INVALID");
        }
        assert_eq!(accepted, 1, "round {round}: {accepted} acceptances of one code");
    }
}
