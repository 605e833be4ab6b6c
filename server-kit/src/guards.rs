//! Guards in front of the routes: sliding-window rate limits, temporary blocking of client
//! addresses after repeated failures, the password policy, and the client address itself.

use std::net::IpAddr;
use std::sync::Arc;

use http::HeaderMap;

use crate::clock::Clock;
use crate::config::{AccountLockout, IpBlockPolicy, PasswordPolicy};
use crate::exchange::ApiError;
use crate::store::{RateLimit, RateLimitStore};

/// Rate limiting and blocking over a [`RateLimitStore`].
#[derive(Clone)]
pub struct Guards {
    store: Arc<dyn RateLimitStore>,
    clock: Arc<dyn Clock>,
    ip_block: Option<IpBlockPolicy>,
    lockout: Option<AccountLockout>,
}

impl Guards {
    /// Guards over `store`.
    pub fn new(
        store: Arc<dyn RateLimitStore>,
        clock: Arc<dyn Clock>,
        ip_block: Option<IpBlockPolicy>,
        lockout: Option<AccountLockout>,
    ) -> Guards {
        Guards {
            store,
            clock,
            ip_block,
            lockout,
        }
    }

    /// Whether a sign-in for `account` (a [`digest_key`]) from `address` (an
    /// [`address_key`]) may check its password, under the account lockout policy:
    ///
    /// - an address that made `per_address` failures for this account within the window is
    ///   refused for this account until the window passes;
    /// - once the account collected `per_account` failures from all addresses within the
    ///   window, only an address with no failure for it in the window, or a device proving
    ///   its registered key (`proves_device_key`, asked only then), may try.
    ///
    /// Nothing is stored here; failures are stored by [`Guards::record_sign_in_failure`].
    pub async fn check_account(
        &self,
        account: &str,
        address: &str,
        proves_device_key: impl std::future::Future<Output = bool>,
    ) -> Result<(), ApiError> {
        if self.lockout.is_none() {
            return Ok(());
        }
        let now = self.clock.now_ms();
        if let Some(until) = self
            .blocked_until(&account_address_wait_key(account, address))
            .await?
        {
            return Err(ApiError::rate_limited(until.saturating_sub(now)));
        }
        let Some(until) = self.blocked_until(&account_guard_key(account)).await? else {
            return Ok(());
        };
        let clean = self
            .blocked_until(&account_address_failed_key(account, address))
            .await?
            .is_none();
        if clean || proves_device_key.await {
            return Ok(());
        }
        Err(ApiError::rate_limited(until.saturating_sub(now)))
    }

    /// Records a wrong password for `account` from `address` (see [`Guards::check_account`]).
    pub async fn record_sign_in_failure(&self, account: &str, address: &str) {
        let Some(policy) = self.lockout else {
            return;
        };
        let now = self.clock.now_ms();
        let until = now.saturating_add(policy.window_ms);
        let result = async {
            let store = &self.store;
            store
                .block(&store_key(&account_address_failed_key(account, address)), until)
                .await?;
            // As in `record_failure`: the `n`-th failure is the one that is refused.
            let per_address = RateLimit {
                max: policy.per_address.saturating_sub(1),
                window_ms: policy.window_ms,
            };
            let key = store_key(&format!("signin:fail:{account}:{address}")).into_owned();
            if !store.hit(&key, per_address, now).await?.allowed {
                store
                    .block(&store_key(&account_address_wait_key(account, address)), until)
                    .await?;
            }
            let per_account = RateLimit {
                max: policy.per_account.saturating_sub(1),
                window_ms: policy.window_ms,
            };
            if !store
                .hit(&format!("signin:fail:{account}"), per_account, now)
                .await?
                .allowed
            {
                tracing::warn!("an account collected repeated failed sign-ins; guarding it");
                store.block(&account_guard_key(account), until).await?;
            }
            Ok::<_, crate::store::StoreError>(())
        };
        if let Err(error) = result.await {
            tracing::warn!(%error, "could not record a failed sign-in");
        }
    }

    /// Refuses a blocked client address with 429 and the time left.
    pub async fn check_not_blocked(&self, client: Option<IpAddr>) -> Result<(), ApiError> {
        let (Some(client), Some(_)) = (client, self.ip_block) else {
            return Ok(());
        };
        let now = self.clock.now_ms();
        match self.store.blocked_until(&block_key(client), now).await? {
            Some(until) => Err(ApiError::rate_limited(until.saturating_sub(now))),
            None => Ok(()),
        }
    }

    /// When `key` is blocked now, until when (ms).
    pub async fn blocked_until(&self, key: &str) -> Result<Option<i64>, ApiError> {
        let now = self.clock.now_ms();
        Ok(self.store.blocked_until(&store_key(key), now).await?)
    }

    /// Counts an attempt against `key` under `limit`; refuses with 429 beyond it.
    pub async fn limit(&self, limit: Option<RateLimit>, key: &str) -> Result<(), ApiError> {
        let Some(limit) = limit else {
            return Ok(());
        };
        let decision = self
            .store
            .hit(&store_key(key), limit, self.clock.now_ms())
            .await?;
        if decision.allowed {
            Ok(())
        } else {
            Err(ApiError::rate_limited(decision.retry_after_ms))
        }
    }

    /// Forgets the attempts of `key` (a successful sign-in clears its account's budget).
    pub async fn reset(&self, key: &str) {
        if let Err(error) = self.store.reset(&store_key(key)).await {
            tracing::warn!(%error, "could not reset a rate limit");
        }
    }

    /// Records a failure (wrong password, bad signature, reused refresh token) from
    /// `client`, and blocks the address once it passes the policy's threshold.
    pub async fn record_failure(&self, client: Option<IpAddr>) {
        let (Some(client), Some(policy)) = (client, self.ip_block) else {
            return;
        };
        let now = self.clock.now_ms();
        // The store refuses the attempt after `max` counted ones, so counting up to
        // `max_failures - 1` makes the `max_failures`-th failure the one that blocks.
        let limit = RateLimit {
            max: policy.max_failures.saturating_sub(1),
            window_ms: policy.window_ms,
        };
        let result = async {
            let decision = self.store.hit(&failure_key(client), limit, now).await?;
            if !decision.allowed {
                tracing::warn!(%client, "blocking a client address after repeated failures");
                self.store
                    .block(&block_key(client), now.saturating_add(policy.block_ms))
                    .await?;
            }
            Ok::<_, crate::store::StoreError>(())
        };
        if let Err(error) = result.await {
            tracing::warn!(%error, "could not record an authentication failure");
        }
    }
}

/// The rate-limit key of `route` for a client address (`"unknown"` when the server knows
/// none).
pub fn ip_key(route: &str, client: Option<IpAddr>) -> String {
    match client {
        Some(address) => format!("{route}:ip:{address}"),
        None => format!("{route}:ip:unknown"),
    }
}

/// Longest key stored as it is; a longer one is stored as its hash, so a key built from
/// request input (an email, a device id) takes a bounded amount of storage.
pub const MAX_STORED_KEY_LEN: usize = 96;

/// The key a store sees for `key`: `key` itself when short, else `h:` and the hex SHA-256
/// of `key` (66 bytes).
pub fn store_key(key: &str) -> std::borrow::Cow<'_, str> {
    if key.len() <= MAX_STORED_KEY_LEN {
        std::borrow::Cow::Borrowed(key)
    } else {
        std::borrow::Cow::Owned(format!("h:{}", hex::encode(sha256(key.as_bytes()))))
    }
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// A short, fixed-size stand-in for a value from a request (an account's email, a device
/// id) inside rate-limit keys: 32 hex characters of its SHA-256.
pub fn digest_key(value: &str) -> String {
    hex::encode(&sha256(value.as_bytes())[..16])
}

/// An address as rate limits and failure counts see it: an IPv4 address as it is, an
/// IPv6 address as its /64 network (one subscriber's usual allocation, which it can fill
/// with addresses at will).
pub fn address_key(client: Option<IpAddr>) -> String {
    match client {
        Some(IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_none() => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        Some(IpAddr::V6(v6)) => v6.to_ipv4_mapped().map_or_else(String::new, |v4| v4.to_string()),
        Some(IpAddr::V4(v4)) => v4.to_string(),
        None => "unknown".to_owned(),
    }
}

fn account_guard_key(account: &str) -> String {
    format!("signin:guard:{account}")
}

fn account_address_failed_key(account: &str, address: &str) -> String {
    format!("signin:failed:{account}:{address}")
}

fn account_address_wait_key(account: &str, address: &str) -> String {
    format!("signin:wait:{account}:{address}")
}

fn failure_key(client: IpAddr) -> String {
    format!("fail:ip:{client}")
}

fn block_key(client: IpAddr) -> String {
    format!("block:ip:{client}")
}

/// The client's address: the socket peer, unless the peer is a trusted proxy, in which case
/// the right-most `X-Forwarded-For` entry that is not itself a trusted proxy. A client can
/// write anything into that header, so it is only believed from a proxy the deployment named.
pub fn client_address(
    peer: Option<IpAddr>,
    headers: &HeaderMap,
    trusted_proxies: &[IpAddr],
) -> Option<IpAddr> {
    let peer = peer?;
    if !trusted_proxies.contains(&peer) {
        return Some(peer);
    }
    let forwarded = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .collect::<Vec<_>>();
    for entry in forwarded.iter().rev() {
        match entry.parse::<IpAddr>() {
            Ok(address) if trusted_proxies.contains(&address) => continue,
            Ok(address) => return Some(address),
            // An unparsable hop means the chain cannot be trusted past it.
            Err(_) => return Some(peer),
        }
    }
    Some(peer)
}

/// Checks a new password against the deployment's policy (the protocol's 8 to 128
/// characters are checked separately).
pub fn check_password_policy(policy: &PasswordPolicy, password: &str) -> Result<(), String> {
    let length = password.encode_utf16().count();
    if length < policy.min_length {
        return Err(format!(
            "Password must be at least {} characters long.",
            policy.min_length
        ));
    }
    let mut missing = Vec::new();
    if policy.require_lowercase && !password.chars().any(char::is_lowercase) {
        missing.push("a lower-case letter");
    }
    if policy.require_uppercase && !password.chars().any(char::is_uppercase) {
        missing.push("an upper-case letter");
    }
    if policy.require_digit && !password.chars().any(|c| c.is_ascii_digit()) {
        missing.push("a digit");
    }
    if policy.require_symbol && !password.chars().any(|c| !c.is_alphanumeric()) {
        missing.push("a symbol");
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!("Password must contain {}.", missing.join(", ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", HeaderValue::from_static("1.1.1.1, 2.2.2.2"));
        let proxy = ip("10.0.0.1");
        assert_eq!(
            client_address(Some(ip("9.9.9.9")), &headers, &[proxy]),
            Some(ip("9.9.9.9"))
        );
        assert_eq!(
            client_address(Some(proxy), &headers, &[proxy]),
            Some(ip("2.2.2.2"))
        );
        // A chain of two trusted proxies: skip both.
        headers.insert("x-forwarded-for", HeaderValue::from_static("1.1.1.1, 10.0.0.2"));
        assert_eq!(
            client_address(Some(proxy), &headers, &[proxy, ip("10.0.0.2")]),
            Some(ip("1.1.1.1"))
        );
        headers.insert("x-forwarded-for", HeaderValue::from_static("garbage"));
        assert_eq!(client_address(Some(proxy), &headers, &[proxy]), Some(proxy));
        assert_eq!(client_address(None, &headers, &[proxy]), None);
    }

    #[test]
    fn keys_from_request_input_have_a_bounded_size() {
        assert_eq!(store_key("signin:ip:1.2.3.4"), "signin:ip:1.2.3.4");
        let long = format!("signin:account:{}", "a".repeat(60_000));
        let stored = store_key(&long);
        assert_eq!(stored.len(), 66);
        assert!(stored.starts_with("h:"));
        assert_ne!(store_key(&format!("{long}b")), stored);
        assert_eq!(digest_key(&"x".repeat(60_000)).len(), 32);
    }

    #[test]
    fn an_ipv6_client_counts_as_its_64() {
        assert_eq!(address_key(Some(ip("2001:db8:1:2:aaaa::1"))), "2001:db8:1:2::/64");
        assert_eq!(
            address_key(Some(ip("2001:db8:1:2:bbbb::9"))),
            address_key(Some(ip("2001:db8:1:2::1")))
        );
        assert_ne!(
            address_key(Some(ip("2001:db8:1:3::1"))),
            address_key(Some(ip("2001:db8:1:2::1")))
        );
        assert_eq!(address_key(Some(ip("::ffff:10.0.0.1"))), "10.0.0.1");
        assert_eq!(address_key(Some(ip("10.0.0.1"))), "10.0.0.1");
        assert_eq!(address_key(None), "unknown");
    }

    #[test]
    fn password_policy() {
        let strict = PasswordPolicy {
            min_length: 10,
            require_lowercase: true,
            require_uppercase: true,
            require_digit: true,
            require_symbol: true,
        };
        assert!(
            check_password_policy(&strict, "Short1!")
                .unwrap_err()
                .contains("at least 10")
        );
        let message = check_password_policy(&strict, "alllowercase").unwrap_err();
        assert!(message.contains("upper-case") && message.contains("digit") && message.contains("symbol"));
        assert!(check_password_policy(&strict, "Correct-Horse-9").is_ok());
        assert!(check_password_policy(&PasswordPolicy::default(), "abcdefgh").is_ok());
    }
}
