//! The server's clock as this device knows it: the offset from the local clock, learned
//! from the server's `Date` headers and confirmed by the `iat` of tokens it issues, and
//! kept across restarts in the store's meta.

use std::sync::atomic::Ordering;

use super::inner::Inner;
use super::state::AuthEvent;
use crate::error::AuthError;
use crate::store::{ClientStore, Namespace};

/// Largest clock offset a `Date` header alone can set (see [`Inner::observe_server_time`]).
const MAX_UNCONFIRMED_OFFSET_MS: i64 = 24 * 60 * 60 * 1000;

impl Inner {
    /// The server's time as this client estimates it (local clock plus the learned offset).
    pub(super) fn server_now_ms(&self) -> i64 {
        self.clock.now_ms() + self.clock_offset_ms.load(Ordering::Relaxed)
    }

    /// Learns the clock offset from a server `Date`. `Date` has one-second precision (the
    /// server's clock read somewhere in the second it names, so the middle of that second is
    /// the best estimate), and differences under two seconds are noise and ignored.
    ///
    /// A `Date` alone never moves the offset by more than [`MAX_UNCONFIRMED_OFFSET_MS`]: one
    /// answer dated 1970 must not make the client hand out expired tokens and date its
    /// proofs 56 years back. Larger offsets are learned from the `iat` of tokens just issued
    /// ([`Inner::confirm_clock`]), and only a confirmed offset is kept across restarts.
    pub(super) fn observe_server_time(&self, server_time_ms: Option<i64>) {
        let Some(server) = server_time_ms else { return };
        let Some(offset) = self.date_offset(server) else {
            tracing::debug!("ignoring a server Date too far from this device's clock");
            return;
        };
        self.set_clock_offset(offset);
    }

    /// The offset a server time read to the second gives (the middle of that second), if
    /// it is computable at all.
    fn offset_of(&self, server_ms: i64) -> Option<i64> {
        server_ms.checked_add(500)?.checked_sub(self.clock.now_ms())
    }

    /// The offset a `Date` gives, when within [`MAX_UNCONFIRMED_OFFSET_MS`].
    fn date_offset(&self, date_ms: i64) -> Option<i64> {
        self.offset_of(date_ms)
            .filter(|offset| offset.unsigned_abs() <= MAX_UNCONFIRMED_OFFSET_MS.unsigned_abs())
    }

    /// Cross-checks the clock against the `iat` of an access token the server just issued
    /// (its time when it answered, to the second). When the answer's `Date` was usable
    /// ([`Inner::observe_server_time`]) the two must agree within a minute, else the token
    /// is a protocol error (a server does not issue tokens dated long ago or ahead); when it
    /// was not (none, or too far off to trust alone), the `iat` sets the offset.
    pub(super) fn confirm_clock(
        &self,
        access_token: &str,
        answer_date_ms: Option<i64>,
    ) -> Result<(), AuthError> {
        let Ok(claims) = holdfast_protocol::Claims::decode_unverified(access_token) else {
            // `Tokens::received` refuses it next, with the reason.
            return Ok(());
        };
        let Some(iat_offset) = claims.iat.checked_mul(1000).and_then(|iat| self.offset_of(iat)) else {
            return Ok(());
        };
        match answer_date_ms.and_then(|date| self.date_offset(date)) {
            Some(date_offset) if date_offset.abs_diff(iat_offset) > 60_000 => Err(AuthError::Protocol {
                message: "the server sent an access token whose issue time disagrees with its clock"
                    .to_owned(),
            }),
            Some(_) => Ok(()),
            None => {
                self.set_clock_offset(iat_offset);
                Ok(())
            }
        }
    }

    fn set_clock_offset(&self, offset: i64) {
        let previous = self.clock_offset_ms.load(Ordering::Relaxed);
        if offset.abs_diff(previous) < 2_000 {
            return;
        }
        self.clock_offset_ms.store(offset, Ordering::Relaxed);
        if offset.unsigned_abs() > 60_000
            && (previous.unsigned_abs() <= 60_000 || offset.abs_diff(previous) > 60_000)
        {
            self.emit(AuthEvent::ClockSkew { offset_ms: offset });
        }
    }

    /// Takes the offset kept in `store` (by [`Inner::save_clock_offset`]), if any.
    pub(super) fn load_clock_offset(&self, store: &ClientStore) -> Result<(), AuthError> {
        let stored = store.meta(&clock_meta_key(&self.namespace))?;
        if let Some(bytes) = stored.and_then(|offset| <[u8; 8]>::try_from(offset.as_slice()).ok()) {
            self.clock_offset_ms
                .store(i64::from_be_bytes(bytes), Ordering::Relaxed);
        }
        Ok(())
    }

    /// Keeps the current offset in the store (after it was confirmed by a token's `iat`).
    pub(super) async fn save_clock_offset(&self) {
        let key = clock_meta_key(&self.namespace);
        let offset = self.clock_offset_ms.load(Ordering::Relaxed);
        let result = self
            .blocking(move |opened| Ok(opened.store.set_meta(&key, &offset.to_be_bytes())?))
            .await;
        if let Err(error) = result {
            tracing::debug!(%error, "could not keep the clock offset");
        }
    }
}

fn clock_meta_key(ns: &Namespace) -> String {
    format!("clock_offset:{}", ns.canonical())
}
