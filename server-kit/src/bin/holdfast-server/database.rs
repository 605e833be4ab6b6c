//! The `--database` URL: a SQLite file or a PostgreSQL URL.

use std::path::PathBuf;

use holdfast_server_kit::store::redact_url_password;

/// Where the stores live.
pub(crate) enum Database {
    Sqlite(PathBuf),
    /// The URL as given.
    Postgres(String),
}

impl Database {
    /// For logs: the path, or the URL without its password.
    pub(crate) fn describe(&self) -> String {
        match self {
            Database::Sqlite(path) => path.display().to_string(),
            Database::Postgres(url) => redact_url_password(url),
        }
    }
}

pub(crate) fn parse_database(database: &str) -> Result<Database, String> {
    if database.starts_with("postgres://") || database.starts_with("postgresql://") {
        return Ok(Database::Postgres(database.to_owned()));
    }
    sqlite_path(database).map(Database::Sqlite)
}

fn sqlite_path(database: &str) -> Result<PathBuf, String> {
    let path = database
        .strip_prefix("sqlite://")
        .or_else(|| database.strip_prefix("sqlite:"))
        .ok_or_else(|| {
            format!(
                "unsupported database `{}`: this build supports sqlite:PATH and postgres://URL",
                redact_url_password(database)
            )
        })?;
    if path.is_empty() {
        return Err("the database path is empty".into());
    }
    if path == ":memory:" {
        // Each connection would get its own empty database, and nothing would survive a
        // restart (PROTOCOL 6.2 needs the grace window state to).
        return Err("an in-memory database is not supported: give a file, like sqlite:./holdfast.db".into());
    }
    Ok(PathBuf::from(path))
}
