//! Proactive refresh: one background task per client refreshes the tokens at about 80% of
//! the access token's lifetime, so callers of `access_token()` rarely wait on the network,
//! and keeps retrying with exponential backoff and jitter while the server is unreachable,
//! so a device coming back online is refreshed without the app asking.
//!
//! The task holds only a weak reference to the client between attempts: dropping the last
//! [`AuthClient`](super::AuthClient) wakes it and it ends. It goes through the same
//! single-flight refresh as every caller, so it never adds a second request next to one in
//! flight, in this process or another one sharing the store.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use super::inner::{Inner, Schedule};
use super::records::Tokens;
use super::refresh::Want;
use crate::error::{AuthError, TransientCause};

/// First retry after a failed background refresh; doubles per failure.
const BACKOFF_BASE: Duration = Duration::from_secs(2);
/// The longest wait between background attempts while offline.
const BACKOFF_CAP: Duration = Duration::from_secs(300);
/// The shortest wait between two background refreshes, whatever the token's lifetime says
/// (a server issuing very short tokens, or a clock estimate off by a second, must not turn
/// this into a loop).
const MIN_INTERVAL: Duration = Duration::from_secs(1);

/// The fraction of the lifetime, in tenths, after which the token is refreshed ahead.
const REFRESH_AT_TENTHS: i64 = 8;

impl Tokens {
    /// When (server time, ms) the background task refreshes this token.
    pub fn refresh_due_ms(&self) -> i64 {
        let lifetime = (self.access_expires_ms - self.access_issued_ms).max(0);
        self.access_issued_ms + lifetime * REFRESH_AT_TENTHS / 10
    }
}

impl Inner {
    /// Starts the background task, once per client.
    pub(super) fn start_auto_refresh(self: &Arc<Self>) {
        if !self.auto_refresh || self.auto_refresh_started.swap(true, Ordering::SeqCst) {
            return;
        }
        let schedule = self.schedule.clone();
        tokio::spawn(run(Arc::downgrade(self), schedule));
    }
}

/// The background task.
async fn run(client: Weak<Inner>, schedule: Arc<Schedule>) {
    let mut failures: u32 = 0;
    let mut retry_after = Duration::ZERO;
    let mut last_attempt: Option<tokio::time::Instant> = None;
    loop {
        let wait = {
            let Some(inner) = client.upgrade() else { return };
            let Some(tokens) = inner.current_tokens() else {
                drop(inner);
                // Signed out or not yet signed in: wait for tokens (or the drop).
                schedule.wake.notified().await;
                failures = 0;
                continue;
            };
            let until_due = u64::try_from(tokens.refresh_due_ms() - inner.server_now_ms()).unwrap_or(0);
            let mut wait = Duration::from_millis(until_due);
            if failures > 0 {
                wait = wait.max(backoff(failures, random_unit())).max(retry_after);
            }
            if let Some(last) = last_attempt {
                wait = wait.max(MIN_INTERVAL.saturating_sub(last.elapsed()));
            }
            wait
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = schedule.wake.notified() => {
                failures = 0;
                retry_after = Duration::ZERO;
                continue;
            }
        }
        let Some(inner) = client.upgrade() else { return };
        last_attempt = Some(tokio::time::Instant::now());
        match inner.clone().refresh_single_flight(Want::Ahead).await {
            Ok(_) => {
                failures = 0;
                retry_after = Duration::ZERO;
            }
            Err(AuthError::Transient { cause }) => {
                failures = failures.saturating_add(1);
                retry_after = match &cause {
                    TransientCause::RateLimited {
                        retry_after_secs: Some(secs),
                    }
                    | TransientCause::Unavailable {
                        retry_after_secs: secs,
                    } => Duration::from_secs((*secs).min(BACKOFF_CAP.as_secs())),
                    _ => Duration::ZERO,
                };
                tracing::debug!(failures, %cause, "background refresh failed; retrying later");
            }
            // Signed out (the state says why), or the store cannot be read now: back off too,
            // the loop waits for tokens if there are none.
            Err(error) => {
                failures = failures.saturating_add(1);
                retry_after = Duration::ZERO;
                tracing::debug!(%error, "background refresh did not complete");
            }
        }
    }
}

/// The wait after `failures` consecutive failures: exponential from [`BACKOFF_BASE`],
/// capped at [`BACKOFF_CAP`], with "equal jitter" (half fixed, half random, from `unit` in
/// [0, 1)) so that many devices coming back online together do not refresh in lockstep.
pub(super) fn backoff(failures: u32, unit: f64) -> Duration {
    let exponent = failures.saturating_sub(1).min(16);
    let full = BACKOFF_BASE.saturating_mul(1 << exponent).min(BACKOFF_CAP);
    let half = full / 2;
    half + half.mul_f64(unit.clamp(0.0, 1.0))
}

/// A uniform number in [0, 1) for jitter (not a secret).
fn random_unit() -> f64 {
    let mut bytes = [0u8; 8];
    // The system RNG does not fail on supported platforms; without it, no jitter.
    if ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes).is_err() {
        return 0.5;
    }
    (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_base_and_stops_at_the_cap() {
        let lows: Vec<Duration> = (1..=12).map(|failures| backoff(failures, 0.0)).collect();
        assert_eq!(lows[0], Duration::from_secs(1));
        assert_eq!(lows[1], Duration::from_secs(2));
        assert_eq!(lows[2], Duration::from_secs(4));
        assert!(lows.windows(2).all(|pair| pair[0] <= pair[1]));
        assert_eq!(backoff(12, 0.0), BACKOFF_CAP / 2);
        assert_eq!(backoff(u32::MAX, 0.0), BACKOFF_CAP / 2);
    }

    #[test]
    fn jitter_spreads_each_step_over_its_upper_half() {
        for failures in 1..8 {
            let low = backoff(failures, 0.0);
            let high = backoff(failures, 1.0);
            assert_eq!(high, low * 2, "step {failures}");
            let middle = backoff(failures, 0.5);
            assert!(low < middle && middle < high);
        }
        let draws: Vec<f64> = (0..64).map(|_| random_unit()).collect();
        assert!(draws.iter().all(|unit| (0.0..1.0).contains(unit)));
        let distinct: std::collections::HashSet<u64> = draws.iter().map(|unit| unit.to_bits()).collect();
        assert!(distinct.len() > 60, "the jitter is random");
    }

    #[test]
    fn the_refresh_is_due_at_eight_tenths_of_the_lifetime() {
        let tokens = Tokens {
            access: String::new().into(),
            refresh: String::new().into(),
            access_issued_ms: 1_000_000,
            access_expires_ms: 1_000_000 + 900_000,
            mfa_pending: false,
        };
        assert_eq!(tokens.refresh_due_ms(), 1_000_000 + 720_000);
        let inverted = Tokens {
            access: String::new().into(),
            refresh: String::new().into(),
            access_issued_ms: 5_000,
            access_expires_ms: 1_000,
            mfa_pending: false,
        };
        assert_eq!(inverted.refresh_due_ms(), 5_000);
    }
}
