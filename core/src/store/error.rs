//! What can go wrong in the client store. Messages name the operation and the cause, never
//! a blob, a record's contents or a meta value.

use crate::error::AuthError;
use rusqlite::ErrorCode;

/// A client-store failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The database (or the refresh lock file) cannot be opened or created: a missing folder,
    /// no permission, a read-only file or file system, a path that is a folder.
    #[error("cannot open the client store: {message}")]
    Open {
        /// What failed and why.
        message: String,
    },
    /// Reading or writing failed after the store was opened (disk full, I/O error).
    #[error("client store {operation} failed: {message}")]
    Io {
        /// The store operation, e.g. `put`.
        operation: &'static str,
        /// Why.
        message: String,
    },
    /// The file is not a SQLite database, or a page or row of it is damaged. The file is
    /// left as it is, for the app to move aside or report.
    #[error("the client store is damaged ({operation}): {message}")]
    Corrupt {
        /// The store operation that found it.
        operation: &'static str,
        /// What SQLite reported.
        message: String,
    },
    /// The database was written by a newer build of Holdfast; it is left untouched.
    #[error(
        "the client store has schema version {found}, newer than this build supports ({supported}); \
         upgrade the app"
    )]
    NewerSchema {
        /// The file's schema version.
        found: i64,
        /// The newest version this build knows.
        supported: i64,
    },
    /// Another connection or process kept the database (or the refresh lock) locked longer
    /// than the store waits.
    #[error("client store {operation}: still locked by another connection or process after waiting")]
    Busy {
        /// The store operation, e.g. `put`.
        operation: &'static str,
    },
}

impl StoreError {
    /// Classifies a SQLite failure of `operation`.
    pub(super) fn from_sql(operation: &'static str, error: rusqlite::Error) -> StoreError {
        use rusqlite::Error as E;
        match error.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
                return StoreError::Busy { operation };
            }
            Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => {
                return StoreError::Corrupt {
                    operation,
                    message: error.to_string(),
                };
            }
            _ => {}
        }
        match error {
            // A stored value of the wrong type or shape: the row is bad, not the call.
            E::InvalidColumnType(..)
            | E::FromSqlConversionFailure(..)
            | E::IntegralValueOutOfRange(..)
            | E::Utf8Error(..) => StoreError::Corrupt {
                operation,
                message: error.to_string(),
            },
            error => StoreError::Io {
                operation,
                message: error.to_string(),
            },
        }
    }

    /// The same failure reported while opening: an I/O failure there means the file cannot
    /// be used at all, which is what [`StoreError::Open`] tells the app.
    pub(super) fn while_opening(self) -> StoreError {
        match self {
            StoreError::Io { operation, message } => StoreError::Open {
                message: format!("{operation}: {message}"),
            },
            other => other,
        }
    }
}

/// Maps SQLite failures of `operation`, for `map_err`.
pub(super) fn sql(operation: &'static str) -> impl Fn(rusqlite::Error) -> StoreError {
    move |error| StoreError::from_sql(operation, error)
}

/// Why [`ClientStore::reseal_all`](super::ClientStore::reseal_all) failed. Either way nothing
/// was changed.
#[derive(Debug, thiserror::Error)]
pub enum ResealError<E> {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The caller's reseal function refused a blob (e.g. it could not be opened with the old
    /// key).
    #[error("resealing a blob failed; nothing was changed")]
    Seal(#[source] E),
}

/// The app sees any store failure as storage it cannot use right now: the session is not
/// lost, and signing out would be wrong.
impl From<StoreError> for AuthError {
    fn from(error: StoreError) -> Self {
        AuthError::StorageUnavailable {
            message: error.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::Connection;

    #[test]
    fn a_locked_database_is_busy() {
        let error =
            rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY), None);
        assert_eq!(
            StoreError::from_sql("put", error),
            StoreError::Busy { operation: "put" }
        );
    }

    #[test]
    fn a_value_of_the_wrong_type_is_corrupt() -> Result<(), rusqlite::Error> {
        let conn = Connection::open_in_memory()?;
        let error = conn.query_row("SELECT 'text'", [], |row| row.get::<_, i64>(0));
        let Err(error) = error else {
            panic!("a text read as an integer")
        };
        assert!(matches!(
            StoreError::from_sql("get", error),
            StoreError::Corrupt { operation: "get", .. }
        ));
        Ok(())
    }

    #[test]
    fn io_failures_while_opening_become_open_failures() {
        let error = StoreError::Io {
            operation: "migrate",
            message: "disk I/O error".into(),
        };
        assert_eq!(
            error.while_opening(),
            StoreError::Open {
                message: "migrate: disk I/O error".into()
            }
        );
        assert_eq!(
            StoreError::Busy { operation: "open" }.while_opening(),
            StoreError::Busy { operation: "open" }
        );
    }
}
