//! PostgreSQL failures as [`CollectionError`]s.

use deadpool_postgres::PoolError;

use crate::store::postgres::describe_sql_error;
use crate::store::sync_items::CollectionError;

/// The server's message and SQLSTATE only (its detail may quote row values), or the
/// error and its causes (a TLS handshake's reason, say).
pub(super) fn sql_error(error: tokio_postgres::Error) -> CollectionError {
    CollectionError::Postgres(describe_sql_error(&error))
}

pub(super) fn pool_error(error: PoolError) -> CollectionError {
    match error {
        PoolError::Backend(error) => sql_error(error),
        other => CollectionError::Postgres(other.to_string()),
    }
}
