//! Delivering the outbox: server calls queued while offline (sign-outs), sent now or once
//! the network is back, with a backoff per item.

use holdfast_protocol::endpoint::SignOut;
use holdfast_protocol::wire::SignOutRequest;

use super::inner::Inner;
use super::records::{SIGN_OUT, SignOutCall};
use super::sealed::UnsealError;
use crate::error::AuthError;

impl Inner {
    /// Delivers outbox items: the due ones, or with `now_or_never` every one, whatever its
    /// backoff (the app says the network is back). Returns how many are still waiting.
    pub(super) async fn deliver_outbox(&self, now_or_never: bool) -> Result<usize, AuthError> {
        let ns = self.namespace.clone();
        let now = self.clock.now_ms();
        let horizon = if now_or_never { i64::MAX } else { now };
        let due = self
            .blocking(move |opened| Ok(opened.store.outbox_due(&ns, horizon)?))
            .await?;
        let mut waiting = 0;
        for item in due {
            let delivered = if item.kind == SIGN_OUT {
                match self.open_queued_sign_out(item.payload.clone()).await? {
                    Ok(call) => self.send_sign_out(&call).await,
                    // Written by a newer build, which can deliver it: kept for it, neither
                    // sent with a shape this build does not know nor dropped.
                    Err(error @ UnsealError::Newer { .. }) => {
                        tracing::warn!(%error, "a queued sign-out waits for a newer build");
                        false
                    }
                    // Unreadable (damaged): it cannot ever be delivered, and dropping it
                    // loses nothing the server would accept.
                    Err(error) => {
                        tracing::warn!(%error, "a queued sign-out cannot be read; dropping it");
                        true
                    }
                }
            } else {
                tracing::warn!(kind = %item.kind, "an outbox item of an unknown kind; dropping it");
                true
            };
            let id = item.id;
            let retry_at = now + backoff_ms(item.attempts);
            let result = self
                .blocking(move |opened| {
                    if delivered {
                        opened.store.outbox_done(id)?;
                    } else {
                        opened.store.outbox_retry_later(id, retry_at)?;
                    }
                    Ok(())
                })
                .await;
            if let Err(error) = result {
                tracing::warn!(%error, "could not update the outbox");
            }
            if !delivered {
                waiting += 1;
            }
        }
        Ok(waiting)
    }

    /// Sends a queued sign-out; whether it is done with (sent, or refused for good).
    async fn send_sign_out(&self, call: &SignOutCall) -> bool {
        // The proof is made now, not when the sign-out was queued: it is good for 60 s.
        // Without the device key (revoked, wiped) it goes without one, and the server's
        // refusal is as definitive as the revocation.
        let body = SignOutRequest {
            refresh_token: Some(call.refresh_token.clone()),
        };
        let outcome = self.send_bearer(&call.access_token, &SignOut, &body).await;
        match outcome {
            Ok(Ok(_)) => true,
            // Already revoked, expired for good, or unknown: nothing left to do.
            Ok(Err(failure)) if failure.is_definitive() => true,
            Ok(Err(_)) => false,
            // The device key cannot sign now (e.g. a locked device): later.
            Err(error) => {
                tracing::info!(%error, "the queued sign-out waits for the device key");
                false
            }
        }
    }
}

/// Retry delay after `attempts` failed deliveries: exponential from 5 s, capped at 10 min.
fn backoff_ms(attempts: i64) -> i64 {
    let exponent = u32::try_from(attempts.clamp(0, 7)).unwrap_or(7);
    (5_000_i64 << exponent).min(600_000)
}
