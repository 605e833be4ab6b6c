//! [`MemoryMailer`]: keeps the mails, for tests and development.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;

use super::{Mail, MailError, Mailer};

/// A [`Mailer`] that keeps every mail it is given, in order, for a test (or a developer)
/// to read. Clones share the same mails.
///
/// ```
/// use std::time::Duration;
/// use holdfast_server_kit::mail::{Mail, Mailer, MemoryMailer};
///
/// # async fn run() {
/// let mailer = MemoryMailer::new();
/// let handle = mailer.clone(); // e.g. given to the kit as an `Arc<dyn Mailer>`
/// # let mail = Mail { to: "ada@example.com".into(), subject: "Hi".into(), text: String::new(), html: String::new() };
/// handle.send(mail).await.unwrap();
/// let mail = mailer.next(Duration::from_secs(5)).await.expect("a mail within 5 s");
/// assert_eq!(mail.to, "ada@example.com");
/// # }
/// ```
#[derive(Clone, Default)]
pub struct MemoryMailer {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    mails: Mutex<Vec<Mail>>,
    arrived: Notify,
    failing: AtomicBool,
}

impl MemoryMailer {
    /// A mailer holding no mail.
    pub fn new() -> MemoryMailer {
        MemoryMailer::default()
    }

    /// Copies of the mails held (sent and not yet taken), oldest first.
    pub fn sent(&self) -> Vec<Mail> {
        self.mails().clone()
    }

    /// Removes and returns the mails held, oldest first.
    pub fn take(&self) -> Vec<Mail> {
        std::mem::take(&mut *self.mails())
    }

    /// Removes and returns the oldest mail held, waiting up to `timeout` for one to be sent;
    /// `None` if none came.
    pub async fn next(&self, timeout: Duration) -> Option<Mail> {
        self.wait_until(timeout, |mails| (!mails.is_empty()).then(|| mails.remove(0)))
            .await
    }

    /// Copies of the mails held once there are at least `count`, waiting up to `timeout`
    /// for them; `None` if fewer came.
    pub async fn wait_for(&self, count: usize, timeout: Duration) -> Option<Vec<Mail>> {
        self.wait_until(timeout, |mails| (mails.len() >= count).then(|| mails.clone()))
            .await
    }

    /// While `failing`, [`Mailer::send`] keeps nothing and answers [`MailError::Other`]:
    /// for testing what happens when mail cannot be sent.
    pub fn set_failing(&self, failing: bool) {
        self.inner.failing.store(failing, Ordering::SeqCst);
    }

    async fn wait_until<T>(
        &self,
        timeout: Duration,
        mut ready: impl FnMut(&mut Vec<Mail>) -> Option<T>,
    ) -> Option<T> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // Registered before looking, so that a mail sent in between still wakes us.
            let arrived = self.inner.arrived.notified();
            tokio::pin!(arrived);
            arrived.as_mut().enable();
            if let Some(found) = ready(&mut self.mails()) {
                return Some(found);
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                return ready(&mut self.mails());
            }
        }
    }

    fn mails(&self) -> MutexGuard<'_, Vec<Mail>> {
        // A panic while holding the lock cannot leave the list half-changed.
        self.inner
            .mails
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl std::fmt::Debug for MemoryMailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryMailer")
            .field("mails", &self.mails().len())
            .field("failing", &self.inner.failing.load(Ordering::SeqCst))
            .finish()
    }
}

#[async_trait]
impl Mailer for MemoryMailer {
    async fn send(&self, mail: Mail) -> Result<(), MailError> {
        if self.inner.failing.load(Ordering::SeqCst) {
            return Err(MailError::Other("the memory mailer is set to fail".into()));
        }
        self.mails().push(mail);
        self.inner.arrived.notify_waiters();
        Ok(())
    }
}
