//! Where the token secrets come from: `HOLDFAST_SECRET`, a file beside the SQLite database,
//! or a new secret kept there.

use std::io::Write;
use std::path::{Path, PathBuf};

use holdfast_server_kit::{ConfigError, ServerConfig, tokens};

/// Where the token secrets come from.
pub(crate) enum Secrets {
    /// `HOLDFAST_SECRET`.
    Env(Vec<String>),
    /// The file beside the database, written by an earlier run.
    File(PathBuf, String),
    /// Generated now, to be kept in the file beside the database.
    Generated(PathBuf, String),
}

impl Secrets {
    pub(crate) fn list(&self) -> Vec<String> {
        match self {
            Secrets::Env(secrets) => secrets.clone(),
            Secrets::File(_, secret) | Secrets::Generated(_, secret) => vec![secret.clone()],
        }
    }
}

/// Secrets from `HOLDFAST_SECRET`, or from the file beside the database, or new ones
/// (not yet written: see [`persist_secret`]).
pub(crate) fn find_secrets(database: &Path) -> Result<Secrets, String> {
    if let Some(secrets) = env_secrets()? {
        return Ok(secrets);
    }
    let mut file = database.as_os_str().to_owned();
    file.push(".secret");
    let file = PathBuf::from(file);
    match std::fs::read_to_string(&file) {
        Ok(text) => {
            holdfast_server_kit::files::warn_if_exposed([file.as_path()]);
            Ok(Secrets::File(file, text.trim().to_owned()))
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            Ok(Secrets::Generated(file, tokens::generate_secret()))
        }
        Err(error) => Err(format!("cannot read the secret file {}: {error}", file.display())),
    }
}

/// Secrets from `HOLDFAST_SECRET`, when it is set.
pub(crate) fn env_secrets() -> Result<Option<Secrets>, String> {
    match std::env::var("HOLDFAST_SECRET") {
        Ok(value) => {
            let secrets: Vec<String> = value
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
            if secrets.is_empty() {
                return Err("HOLDFAST_SECRET is set but holds no secret".into());
            }
            Ok(Some(Secrets::Env(secrets)))
        }
        Err(std::env::VarError::NotUnicode(_)) => Err("HOLDFAST_SECRET is not valid UTF-8".into()),
        Err(std::env::VarError::NotPresent) => Ok(None),
    }
}

/// [`ServerConfig::validate`], with messages that say which secret is wrong.
pub(crate) fn check_config(config: &ServerConfig, secrets: &Secrets) -> Result<(), String> {
    match (config.validate(), secrets) {
        (Ok(()), _) => Ok(()),
        (Err(ConfigError::SecretTooShort(n)), Secrets::Env(list)) => Err(format!(
            "HOLDFAST_SECRET: secret {n} of {} is shorter than 32 characters (generate one with `openssl rand -base64 32`)",
            list.len()
        )),
        (Err(ConfigError::SecretTooShort(_)), Secrets::File(file, _) | Secrets::Generated(file, _)) => {
            Err(format!(
                "the secret in {} is shorter than 32 characters; set HOLDFAST_SECRET, or delete the file to generate a new secret (tokens signed with the old one stop working)",
                file.display()
            ))
        }
        (Err(error), _) => Err(format!("invalid configuration: {error}")),
    }
}

/// Keeps a generated secret in `file` (mode 0600) unless another process did first, and
/// returns the secret the file holds. The file appears complete or not at all: the secret
/// is written to a temporary file that is then linked into place.
pub(crate) fn persist_secret(file: &Path, secret: &str) -> Result<String, String> {
    let failed = |e: std::io::Error| format!("cannot create the secret file {}: {e}", file.display());
    let mut temp = file.as_os_str().to_owned();
    temp.push(format!(".tmp-{}", std::process::id()));
    let temp = PathBuf::from(temp);
    // A leftover of a run that crashed with the same process id.
    let _ = std::fs::remove_file(&temp);
    write_private(&temp, secret).map_err(failed)?;
    let linked = std::fs::hard_link(&temp, file);
    let _ = std::fs::remove_file(&temp);
    match linked {
        Ok(()) => Ok(secret.to_owned()),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => std::fs::read_to_string(file)
            .map(|text| text.trim().to_owned())
            .map_err(|e| format!("cannot read the secret file {}: {e}", file.display())),
        // A file system without hard links: create the file in place.
        Err(_) => match write_private(file, secret) {
            Ok(()) => Ok(secret.to_owned()),
            Err(error) => Err(failed(error)),
        },
    }
}

pub(crate) fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()
}
