//! Files that hold secrets (SQLite databases with password hashes and emails, the token
//! secret file): created readable by their owner only, and a warning when one is readable
//! by group or others.

use std::path::{Path, PathBuf};

/// Creates `path` empty with mode 0600 if it does not exist (SQLite then creates its
/// `-wal` and `-shm` files with the database's mode). An existing file is left as it is.
pub fn create_private(path: &Path) -> std::io::Result<()> {
    if is_special(path) {
        return Ok(());
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(error) => Err(error),
    }
}

/// Logs a warning for each of `paths` that exists and is readable or writable by group or
/// others. Returns those paths.
pub fn warn_if_exposed<'a>(paths: impl IntoIterator<Item = &'a Path>) -> Vec<PathBuf> {
    let mut exposed = Vec::new();
    for path in paths {
        if let Some(mode) = exposed_mode(path) {
            tracing::warn!(
                path = %path.display(),
                mode = format_args!("{mode:o}"),
                "a file holding secrets is readable by group or others; chmod 600 it"
            );
            exposed.push(path.to_owned());
        }
    }
    exposed
}

/// A SQLite database and its `-wal` and `-shm` files.
pub fn sqlite_files(path: &Path) -> Vec<PathBuf> {
    if is_special(path) {
        return Vec::new();
    }
    let with = |suffix: &str| {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    };
    vec![path.to_owned(), with("-wal"), with("-shm")]
}

/// [`create_private`] before SQLite opens `path`.
pub fn prepare_sqlite(path: &Path) {
    if let Err(error) = create_private(path) {
        // SQLite's own open reports what is wrong with the path.
        tracing::debug!(%error, "could not create the database file beforehand");
    }
}

/// [`warn_if_exposed`] over a SQLite database's files once it is open.
pub fn check_sqlite(path: &Path) -> Vec<PathBuf> {
    let files = sqlite_files(path);
    warn_if_exposed(files.iter().map(PathBuf::as_path))
}

/// `:memory:`, the empty path (a temporary database) and `file:` URIs are SQLite's own.
fn is_special(path: &Path) -> bool {
    let text = path.to_string_lossy();
    text.is_empty() || text == ":memory:" || text.starts_with("file:")
}

#[cfg(unix)]
fn exposed_mode(path: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
    (mode & 0o077 != 0).then_some(mode)
}

#[cfg(not(unix))]
fn exposed_mode(_path: &Path) -> Option<u32> {
    None
}
