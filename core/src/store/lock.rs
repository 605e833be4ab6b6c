//! The refresh lock: single-flight token refresh across threads and processes.
//!
//! An exclusive advisory lock on `<database>.lock`, beside the database. Each acquisition
//! opens the file anew, and the lock belongs to that open file (BSD `flock` semantics,
//! which std uses on Linux, macOS and iOS, and `LockFileEx` on Windows): two threads of one
//! process exclude each other exactly like two processes do. POSIX `fcntl` locks would not
//! (they belong to the process, and closing any descriptor of the file drops them all).
//! The kernel drops the lock when the guard's file is closed, including when the process
//! dies, even by SIGKILL, so a crashed refresh never blocks the next one.
//!
//! The lock file is never deleted: removing it while another process waits on it would
//! let a third process lock a new file of the same name.

use super::error::StoreError;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

/// Acquires the cross-process refresh lock of a database.
///
/// Not re-entrant: acquiring it again on a thread that holds it waits forever (or times
/// out with [`RefreshLock::acquire_within`]).
#[derive(Debug, Clone, Copy)]
pub struct RefreshLock;

/// Holds the refresh lock until dropped.
#[must_use = "the lock is released as soon as the guard is dropped"]
#[derive(Debug)]
pub struct RefreshGuard {
    file: File,
}

/// Polling bounds for [`RefreshLock::acquire_within`]: a refresh takes tens of milliseconds
/// to seconds, so a waiter checks often at first and then backs off.
const FIRST_POLL: Duration = Duration::from_millis(1);
const MAX_POLL: Duration = Duration::from_millis(50);

impl RefreshLock {
    /// The lock file of the database at `db_path`: its path with `.lock` appended.
    pub fn lock_path(db_path: &Path) -> PathBuf {
        let mut path = db_path.as_os_str().to_owned();
        path.push(".lock");
        PathBuf::from(path)
    }

    /// Waits as long as it takes for the lock. Blocks the thread: call it from
    /// `spawn_blocking` or a dedicated thread. Prefer [`RefreshLock::acquire_within`], which
    /// cannot hang behind a stuck process.
    ///
    /// # Errors
    ///
    /// [`StoreError::Open`] when the lock file cannot be created or opened,
    /// [`StoreError::Io`] when the platform refuses to lock it.
    pub fn acquire(db_path: &Path) -> Result<RefreshGuard, StoreError> {
        let file = open_lock_file(db_path)?;
        os::lock(&file).map_err(lock_failed)?;
        Ok(RefreshGuard { file })
    }

    /// Takes the lock if it is free now; `None` if a thread or process holds it.
    ///
    /// # Errors
    ///
    /// As [`RefreshLock::acquire`].
    pub fn try_acquire(db_path: &Path) -> Result<Option<RefreshGuard>, StoreError> {
        let file = open_lock_file(db_path)?;
        Ok(os::try_lock(&file)
            .map_err(lock_failed)?
            .then_some(RefreshGuard { file }))
    }

    /// Waits up to `timeout` for the lock.
    ///
    /// # Errors
    ///
    /// [`StoreError::Busy`] when it is still held after `timeout`; otherwise as
    /// [`RefreshLock::acquire`].
    pub fn acquire_within(db_path: &Path, timeout: Duration) -> Result<RefreshGuard, StoreError> {
        let file = open_lock_file(db_path)?;
        let deadline = Instant::now() + timeout;
        let mut pause = FIRST_POLL;
        loop {
            if os::try_lock(&file).map_err(lock_failed)? {
                return Ok(RefreshGuard { file });
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(StoreError::Busy {
                    operation: "refresh lock",
                });
            }
            thread::sleep(pause.min(left));
            pause = (pause * 2).min(MAX_POLL);
        }
    }
}

impl Drop for RefreshGuard {
    fn drop(&mut self) {
        // Closing the file would release the lock too, but only once every copy of the
        // descriptor is closed (a child forked meanwhile holds one); unlocking releases it
        // now. If unlocking fails, closing the file below still releases it.
        let _ = os::unlock(&self.file);
    }
}

fn open_lock_file(db_path: &Path) -> Result<File, StoreError> {
    let path = RefreshLock::lock_path(db_path);
    // Never truncated: the file has no content, only a lock.
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|error| StoreError::Open {
            message: format!("refresh lock {}: {error}", path.display()),
        })
}

fn lock_failed(error: std::io::Error) -> StoreError {
    StoreError::Io {
        operation: "refresh lock",
        message: error.to_string(),
    }
}

/// std's file locks everywhere std implements them with `flock` or `LockFileEx`.
#[cfg(not(target_os = "android"))]
mod os {
    use std::fs::{File, TryLockError};
    use std::io;

    pub(super) fn lock(file: &File) -> io::Result<()> {
        file.lock()
    }

    /// `Ok(false)` when another open file holds the lock.
    pub(super) fn try_lock(file: &File) -> io::Result<bool> {
        match file.try_lock() {
            Ok(()) => Ok(true),
            Err(TryLockError::WouldBlock) => Ok(false),
            Err(TryLockError::Error(error)) => Err(error),
        }
    }

    pub(super) fn unlock(file: &File) -> io::Result<()> {
        file.unlock()
    }
}

/// Android: std's file locks return `Unsupported` there before Rust 1.98
/// (rust-lang/rust#148325), though bionic and the kernel support `flock`; rustix calls it
/// safely. Also compiled into Linux test builds, where a test checks that it excludes std's
/// locks (same system call, same semantics).
#[cfg(any(target_os = "android", all(test, target_os = "linux")))]
mod flock {
    use rustix::fs::{FlockOperation, flock};
    use rustix::io::Errno;
    use std::fs::File;
    use std::io;

    /// Retries when a signal interrupts the wait.
    fn call(file: &File, operation: FlockOperation) -> Result<(), Errno> {
        loop {
            match flock(file, operation) {
                Err(Errno::INTR) => continue,
                result => return result,
            }
        }
    }

    pub(super) fn lock(file: &File) -> io::Result<()> {
        Ok(call(file, FlockOperation::LockExclusive)?)
    }

    /// `Ok(false)` when another open file holds the lock.
    pub(super) fn try_lock(file: &File) -> io::Result<bool> {
        match call(file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(true),
            Err(Errno::WOULDBLOCK) => Ok(false),
            Err(error) => Err(error.into()),
        }
    }

    pub(super) fn unlock(file: &File) -> io::Result<()> {
        Ok(call(file, FlockOperation::Unlock)?)
    }
}

#[cfg(target_os = "android")]
use flock as os;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_file_sits_beside_the_database() {
        assert_eq!(
            RefreshLock::lock_path(Path::new("/data/app/holdfast.db")),
            PathBuf::from("/data/app/holdfast.db.lock")
        );
    }

    /// The Android implementation, run on Linux: it excludes, and is excluded by, std's.
    #[cfg(target_os = "linux")]
    #[test]
    fn rustix_flock_and_std_locks_exclude_each_other() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let db = dir.path().join("client.db");
        let rustix_file = open_lock_file(&db)?;
        flock::lock(&rustix_file)?;
        assert!(RefreshLock::try_acquire(&db)?.is_none());
        assert!(!flock::try_lock(&open_lock_file(&db)?)?);
        flock::unlock(&rustix_file)?;

        let guard = RefreshLock::try_acquire(&db)?;
        assert!(guard.is_some());
        assert!(!flock::try_lock(&rustix_file)?);
        drop(guard);
        assert!(flock::try_lock(&rustix_file)?);
        Ok(())
    }
}
