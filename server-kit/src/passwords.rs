//! Password hashing: Argon2id for new hashes, Kora's PBKDF2-SHA512 for existing ones.
//!
//! A stored hash is recognised by its shape: a PHC string starting with `$argon2id$` is
//! Argon2id; 128 hex characters with a hex salt is Kora's PBKDF2-HMAC-SHA512 (600,000
//! iterations, 64-byte key). A Kora hash that matches reports `needs_rehash`, so sign-in
//! moves accounts to Argon2id transparently.
//!
//! Both algorithms cost tens to hundreds of milliseconds of CPU, so [`PasswordHasher`] runs
//! them on tokio's blocking pool, at most `max_concurrent` at a time: a burst of sign-ins
//! queues for a permit instead of occupying every blocking thread and starving the rest of
//! the server.

use std::num::NonZeroU32;
use std::sync::Arc;

use argon2::{Algorithm, Argon2, PasswordHash, PasswordHasher as _, PasswordVerifier as _, Version};
use ring::pbkdf2;
use ring::rand::{SecureRandom, SystemRandom};
use tokio::sync::Semaphore;
use zeroize::Zeroizing;

use crate::store::StoredPassword;

/// Argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Params {
    /// Memory, KiB.
    pub memory_kib: u32,
    /// Iterations.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl Default for Argon2Params {
    /// OWASP's recommendation: 19 MiB, 2 iterations, 1 lane.
    fn default() -> Self {
        Argon2Params {
            memory_kib: 19 * 1024,
            iterations: 2,
            parallelism: 1,
        }
    }
}

/// Kora's PBKDF2 iteration count.
pub const KORA_PBKDF2_ITERATIONS: u32 = 600_000;
/// Kora's PBKDF2 key length in bytes (stored as 128 hex characters).
pub const KORA_PBKDF2_KEY_LEN: usize = 64;
/// Salt length of new Argon2id hashes, bytes.
const ARGON2_SALT_LEN: usize = 16;
/// The PHC prefix of the only Argon2 variant accepted.
const ARGON2ID_PREFIX: &str = "$argon2id$";

const KORA_ITERATIONS: NonZeroU32 = match NonZeroU32::new(KORA_PBKDF2_ITERATIONS) {
    Some(n) => n,
    None => panic!("iteration count is not zero"),
};

/// Why hashing or verifying could not be carried out (a wrong password is not an error).
/// The messages hold neither the password nor the stored hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    /// The hash could not be computed (invalid Argon2 parameters, RNG failure).
    #[error("password hashing failed")]
    Hashing,
    /// The blocking worker panicked or the runtime is shutting down.
    #[error("password worker failed")]
    Worker,
    /// No hashing slot came free within the hasher's deadline: too many sign-ins at once.
    #[error("every password hashing slot stayed busy past the deadline")]
    Busy,
}

/// The outcome of [`PasswordHasher::verify`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordCheck {
    /// The password is correct.
    pub matches: bool,
    /// It matched, but the stored hash is a Kora PBKDF2 hash or uses other Argon2
    /// parameters than the current ones: store a fresh [`PasswordHasher::hash`].
    pub needs_rehash: bool,
}

impl PasswordCheck {
    const NO_MATCH: PasswordCheck = PasswordCheck {
        matches: false,
        needs_rehash: false,
    };
}

/// Hashes and verifies passwords off the async executor, with bounded concurrency.
///
/// Cheap to clone: clones share the permits.
#[derive(Clone)]
pub struct PasswordHasher {
    inner: Arc<Inner>,
}

struct Inner {
    permits: Arc<Semaphore>,
    max_concurrent: usize,
    /// How long a caller may wait for a slot; `None` waits as long as it takes.
    max_wait: Option<std::time::Duration>,
    params: Argon2Params,
    /// An Argon2id PHC string with the current parameters that no password matches; an
    /// unknown account is verified against it so that it costs what a real one does.
    dummy_hash: String,
    #[cfg(test)]
    probe: tests::Probe,
}

impl std::fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHasher")
            .field("max_concurrent", &self.inner.max_concurrent)
            .field("max_wait", &self.inner.max_wait)
            .field("params", &self.inner.params)
            .finish_non_exhaustive()
    }
}

/// What a stored hash turned out to be.
enum Scheme {
    Argon2id(String),
    Kora(StoredPassword),
    /// Unknown account or unreadable hash: burn the same time, never match.
    Dummy,
}

impl PasswordHasher {
    /// A hasher running at most `max_concurrent` hashes at once (at least 1), producing
    /// Argon2id hashes with `params`.
    pub fn new(max_concurrent: usize, params: Argon2Params) -> PasswordHasher {
        PasswordHasher::with_max_wait(max_concurrent, params, None)
    }

    /// [`PasswordHasher::new`], where a caller that waited `max_wait` for a slot (behind a
    /// flood of sign-ins) gives up with [`PasswordError::Busy`] instead of waiting on.
    pub fn with_max_wait(
        max_concurrent: usize,
        params: Argon2Params,
        max_wait: Option<std::time::Duration>,
    ) -> PasswordHasher {
        let max_concurrent = max_concurrent.clamp(1, Semaphore::MAX_PERMITS);
        PasswordHasher {
            inner: Arc::new(Inner {
                permits: Arc::new(Semaphore::new(max_concurrent)),
                max_concurrent,
                max_wait,
                params,
                dummy_hash: dummy_hash(params),
                #[cfg(test)]
                probe: tests::Probe::default(),
            }),
        }
    }

    /// Hashes a new password with Argon2id (16 random salt bytes). The PHC string goes in
    /// `hash`; `salt` is empty because the PHC string carries its own.
    pub async fn hash(&self, password: &str) -> Result<StoredPassword, PasswordError> {
        let password = Zeroizing::new(password.to_owned());
        let params = self.inner.params;
        self.run(move || hash_argon2id(&password, params)).await?
    }

    /// Checks `password` against a stored hash. `None` means the account is unknown: a dummy
    /// Argon2id hash is verified anyway so that the answer takes as long as for a real
    /// account, and the result is a mismatch.
    ///
    /// A stored hash in no known format, or one that cannot be parsed, is a mismatch and a
    /// warning in the log (without the hash), never a panic or an error.
    pub async fn verify(
        &self,
        password: &str,
        stored: Option<&StoredPassword>,
    ) -> Result<PasswordCheck, PasswordError> {
        let scheme = match stored {
            None => Scheme::Dummy,
            Some(stored) if stored.hash.starts_with(ARGON2ID_PREFIX) => Scheme::Argon2id(stored.hash.clone()),
            Some(stored) if is_kora_pbkdf2(stored) => Scheme::Kora(stored.clone()),
            Some(_) => {
                tracing::warn!("stored password hash is in no known format; refusing the password");
                Scheme::Dummy
            }
        };
        let password = Zeroizing::new(password.to_owned());
        let inner = Arc::clone(&self.inner);
        self.run(move || match scheme {
            Scheme::Argon2id(hash) => verify_argon2id(&password, &hash, &inner),
            Scheme::Kora(stored) => {
                let matches = verify_pbkdf2_kora(&password, &stored);
                PasswordCheck {
                    matches,
                    needs_rehash: matches,
                }
            }
            Scheme::Dummy => {
                burn_dummy(&password, &inner);
                PasswordCheck::NO_MATCH
            }
        })
        .await
    }

    /// Runs `job` on the blocking pool once a permit is free. The permit is taken before the
    /// task is spawned, so waiting callers hold no thread, and it moves into the task, so it
    /// is released only when the work is done even if the caller was cancelled meanwhile.
    async fn run<T, F>(&self, job: F) -> Result<T, PasswordError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let acquire = Arc::clone(&self.inner.permits).acquire_owned();
        let permit = match self.inner.max_wait {
            Some(max_wait) => tokio::time::timeout(max_wait, acquire)
                .await
                .map_err(|_| PasswordError::Busy)?,
            None => acquire.await,
        }
        .map_err(|_| PasswordError::Worker)?;
        #[cfg(test)]
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            #[cfg(test)]
            let _active = inner.probe.enter();
            job()
        })
        .await
        .map_err(|_| PasswordError::Worker)
    }
}

fn argon2id(params: Argon2Params) -> Result<Argon2<'static>, PasswordError> {
    let params = argon2::Params::new(params.memory_kib, params.iterations, params.parallelism, None)
        .map_err(|_| PasswordError::Hashing)?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

fn hash_argon2id(password: &str, params: Argon2Params) -> Result<StoredPassword, PasswordError> {
    let mut salt = [0u8; ARGON2_SALT_LEN];
    SystemRandom::new()
        .fill(&mut salt)
        .map_err(|_| PasswordError::Hashing)?;
    let hash = argon2id(params)?
        .hash_password_with_salt(password.as_bytes(), &salt)
        .map_err(|_| PasswordError::Hashing)?;
    Ok(StoredPassword {
        hash: hash.to_string(),
        salt: String::new(),
    })
}

fn verify_argon2id(password: &str, hash: &str, inner: &Inner) -> PasswordCheck {
    let Ok(parsed) = PasswordHash::new(hash) else {
        tracing::warn!("stored Argon2id hash cannot be parsed; refusing the password");
        burn_dummy(password, inner);
        return PasswordCheck::NO_MATCH;
    };
    // The parameters come from the PHC string, not from the `Argon2` value.
    match Argon2::default().verify_password(password.as_bytes(), &parsed) {
        Ok(()) => PasswordCheck {
            matches: true,
            needs_rehash: !has_params(&parsed, inner.params),
        },
        Err(argon2::password_hash::Error::PasswordInvalid) => PasswordCheck::NO_MATCH,
        Err(_) => {
            tracing::warn!("stored Argon2id hash has invalid parameters; refusing the password");
            burn_dummy(password, inner);
            PasswordCheck::NO_MATCH
        }
    }
}

/// Whether a hash was made with exactly the current cost and version.
fn has_params(hash: &PasswordHash, current: Argon2Params) -> bool {
    let Ok(params) = argon2::Params::try_from(hash) else {
        return false;
    };
    hash.version == Some(Version::V0x13.into())
        && params.m_cost() == current.memory_kib
        && params.t_cost() == current.iterations
        && params.p_cost() == current.parallelism
}

/// Verifies against the dummy hash purely for its cost; the outcome is ignored.
fn burn_dummy(password: &str, inner: &Inner) {
    if let Ok(parsed) = PasswordHash::new(&inner.dummy_hash) {
        let _ = Argon2::default().verify_password(password.as_bytes(), &parsed);
    }
}

/// An Argon2id PHC string with `params`, a fixed salt and a fixed output. Verifying costs a
/// full Argon2id computation with those parameters whatever the output holds, so it need not
/// be the hash of anything (and nothing realistic hashes to it).
fn dummy_hash(params: Argon2Params) -> String {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD_NO_PAD;
    format!(
        "$argon2id$v=19$m={},t={},p={}${}${}",
        params.memory_kib,
        params.iterations,
        params.parallelism,
        STANDARD_NO_PAD.encode([0x5a_u8; ARGON2_SALT_LEN]),
        STANDARD_NO_PAD.encode([0xa5_u8; 32]),
    )
}

fn is_kora_pbkdf2(stored: &StoredPassword) -> bool {
    let hex = |text: &str| text.bytes().all(|b| b.is_ascii_hexdigit());
    stored.hash.len() == KORA_PBKDF2_KEY_LEN * 2
        && hex(&stored.hash)
        && !stored.salt.is_empty()
        && stored.salt.len().is_multiple_of(2)
        && hex(&stored.salt)
}

/// Hashes a password the way Kora does: PBKDF2-HMAC-SHA512, 600,000 iterations, a 64-byte
/// key stored as lowercase hex, and the salt stored as hex (Kora uses 32 random bytes).
///
/// New accounts get Argon2id ([`PasswordHasher::hash`]); this exists for tests, tools and
/// deployments that must write hashes a Kora server can read. It blocks for a few hundred
/// milliseconds: do not call it on the async executor.
pub fn hash_pbkdf2_kora(password: &str, salt: &[u8]) -> StoredPassword {
    let mut key = Zeroizing::new([0u8; KORA_PBKDF2_KEY_LEN]);
    // ring's PBKDF2 precomputes the keyed HMAC pads once and uses its assembly SHA-512, so
    // it runs near the machine's raw SHA-512 speed (see benches/crypto.rs).
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA512,
        KORA_ITERATIONS,
        salt,
        password.as_bytes(),
        key.as_mut(),
    );
    StoredPassword {
        hash: hex::encode(key.as_ref()),
        salt: hex::encode(salt),
    }
}

/// Checks a password against a Kora PBKDF2 hash, comparing in constant time. A hash or salt
/// that is not hex, or a hash that is not 64 bytes, never matches.
pub fn verify_pbkdf2_kora(password: &str, stored: &StoredPassword) -> bool {
    let mut expected = [0u8; KORA_PBKDF2_KEY_LEN];
    if hex::decode_to_slice(&stored.hash, &mut expected).is_err() {
        return false;
    }
    let Ok(salt) = hex::decode(&stored.salt) else {
        return false;
    };
    pbkdf2::verify(
        pbkdf2::PBKDF2_HMAC_SHA512,
        KORA_ITERATIONS,
        &salt,
        password.as_bytes(),
        &expected,
    )
    .is_ok()
}

#[cfg(test)]
#[path = "passwords_tests.rs"]
pub(crate) mod tests;
