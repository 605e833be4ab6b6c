//! Every store on PostgreSQL: the backend for several server instances sharing one database.
//!
//! Connections come from a [`deadpool_postgres`] pool; each keeps its prepared statements
//! (`prepare_cached`). A connection is verified with a query before it is handed out again,
//! so one the server closed (a restart, `pg_terminate_backend`, a failover) is discarded and
//! replaced rather than failing the next call.
//!
//! Operations that must be atomic run in one transaction (READ COMMITTED) and lock the row
//! they decide on (`SELECT ... FOR UPDATE`) before reading the state they decide from, so
//! two instances rotating the same refresh token, consuming the same challenge or counting
//! against the same rate limit are serialized by PostgreSQL itself. A row that may not
//! exist yet (a first registration, a first rate-limit hit) is created with
//! `INSERT ... ON CONFLICT DO NOTHING` first, so there is always a row to lock.
//!
//! The schema is versioned (see `migrations.rs`): connecting applies what is missing, in
//! one transaction under a transaction-level advisory lock (two instances starting
//! together migrate once), and refuses a schema written by a newer build. With a `schema`
//! option every connection's `search_path` is that schema, created if absent, so several
//! deployments (or tests) can share one database.
//!
//! Connections use TLS as the URL's `sslmode` and `sslrootcert` say (see `tls.rs`): none
//! without `sslmode` or with `sslmode=disable`; with `require`, `verify-ca` or
//! `verify-full`, TLS with the server's certificate and host name verified.

mod accounts;
mod limits;
mod mfa;
mod migrations;
mod one_time;
mod refresh;
mod sessions;
mod standing;
mod sync_items;
mod tls;
mod tokens;

pub use migrations::SCHEMA_VERSION;
pub use sync_items::PostgresSyncItems;

use super::StoreError;
use deadpool_postgres::{ManagerConfig, Object, Pool, PoolError, RecyclingMethod, Runtime};
use std::fmt;
use std::time::Duration;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Config, Row};

pub(crate) use tls::Connector;

/// Connections per store: enough for the concurrent requests of one instance; PostgreSQL's
/// own limit (100 by default) is shared by every instance.
const POOL_SIZE: usize = 16;

/// How long connecting may take before the call fails.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a call waits for a free connection before failing.
const WAIT_TIMEOUT: Duration = Duration::from_secs(30);

/// The `application_name` of the connections, unless the URL names one.
pub const DEFAULT_APPLICATION_NAME: &str = "holdfast-server";

/// The schema the kit's tables go in when none is named.
pub const DEFAULT_SCHEMA: &str = "holdfast";

/// Every store on one PostgreSQL database (or one schema of it). Cloning shares the pool.
#[derive(Clone)]
pub struct PostgresStore {
    pool: Pool,
    /// The pool's connection settings (search path included) and TLS, for connections of
    /// its own (the sync collection's LISTEN connection).
    connector: Connector,
    schema: Option<String>,
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user[:password]@host[:port]/database[?param=value]`,
    /// as libpq takes it; `application_name` and `options` are honoured) and migrates the
    /// schema. Every connection works in one schema (its `search_path`), created if absent:
    /// `schema`, or without it [`DEFAULT_SCHEMA`] (`holdfast`), so the kit's tables never
    /// meet an application's own `users` table. Without `schema`, a URL that sets its own
    /// `search_path`, or a database whose search path already holds the kit's tables (a
    /// deployment from before the default schema), keeps its search path. A schema name is
    /// lower-case ASCII letters, digits and underscores, not starting with a digit.
    ///
    /// TLS, as libpq's parameters say, but never unverified:
    /// - no `sslmode`, or `sslmode=disable`: no TLS (a private network only);
    /// - `sslmode=require`, `verify-ca` or `verify-full`: TLS, the server's certificate
    ///   chain verified against the CA certificates of `sslrootcert=PATH` (PEM) or, without
    ///   it (or with `sslrootcert=system`), the system's root certificates, and its name
    ///   against the host connected to. All three are libpq's `verify-full`.
    /// - `sslmode=prefer` and `allow` are refused: they fall back to no TLS.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when the URL, its TLS parameters (an unreadable `sslrootcert`
    /// or one without a certificate) or the schema name are invalid, the database cannot be
    /// reached (a TLS handshake that fails included) or fails to migrate, and when it holds
    /// a newer schema version (left untouched then). Messages never quote the password.
    pub async fn connect(url: &str, schema: Option<&str>) -> Result<PostgresStore, StoreError> {
        let connector = Connector::from_url(url).map_err(|e| StoreError::backend("connect", e))?;
        PostgresStore::connect_connector(connector, schema, SCHEMA_VERSION).await
    }

    /// [`PostgresStore::connect`], migrating the schema up to `version` only: the schema an
    /// older build left, for migration tests. The store's own calls expect the current one.
    #[doc(hidden)]
    pub async fn connect_at_version(
        url: &str,
        schema: Option<&str>,
        version: i64,
    ) -> Result<PostgresStore, StoreError> {
        let connector = Connector::from_url(url).map_err(|e| StoreError::backend("connect", e))?;
        PostgresStore::connect_connector(connector, schema, version).await
    }

    /// [`PostgresStore::connect`] with a parsed configuration: TLS when its `ssl_mode` is
    /// `Require` (verified against the system's root certificates, as `sslmode=require`
    /// without `sslrootcert`), none otherwise (tokio-postgres's default `Prefer` included,
    /// as a URL without `sslmode`).
    pub async fn connect_with(config: Config, schema: Option<&str>) -> Result<PostgresStore, StoreError> {
        let connector = Connector::from_config(config).map_err(|e| StoreError::backend("connect", e))?;
        PostgresStore::connect_connector(connector, schema, SCHEMA_VERSION).await
    }

    async fn connect_connector(
        mut connector: Connector,
        schema: Option<&str>,
        version: i64,
    ) -> Result<PostgresStore, StoreError> {
        let config = connector.config_mut();
        if config.get_application_name().is_none() {
            config.application_name(DEFAULT_APPLICATION_NAME);
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        let schema = match schema {
            Some(schema) => Some(schema.to_owned()),
            None => default_schema(&connector).await?,
        };
        if let Some(schema) = &schema {
            check_schema_name(schema)?;
            let config = connector.config_mut();
            let options = match config.get_options() {
                Some(existing) if !existing.trim().is_empty() => {
                    format!("{existing} -c search_path={schema}")
                }
                _ => format!("-c search_path={schema}"),
            };
            config.options(&options);
        }
        let pool = pool(&connector)?;
        let store = PostgresStore {
            pool,
            connector,
            schema,
        };
        let mut conn = store
            .conn()
            .await
            .map_err(|fail| fail.into_connect_error(&store.connector))?;
        migrations::migrate_to(&mut conn, store.schema.as_deref(), version)
            .await
            .map_err(|fail| fail.into_store("migrate"))?;
        Ok(store)
    }

    /// The schema this store works in, when one was given.
    pub fn schema(&self) -> Option<&str> {
        self.schema.as_deref()
    }

    /// The schema version the database holds.
    pub async fn schema_version(&self) -> Result<i64, StoreError> {
        let conn = self
            .conn()
            .await
            .map_err(|fail| fail.into_store("schema_version"))?;
        migrations::schema_version(&conn)
            .await
            .map_err(|fail| fail.into_store("schema_version"))
    }

    /// The connection pool (the sync collection shares it).
    pub(crate) fn pool(&self) -> &Pool {
        &self.pool
    }

    /// How every connection of the pool is opened (settings and TLS).
    pub(crate) fn connector(&self) -> &Connector {
        &self.connector
    }

    /// A pooled connection.
    async fn conn(&self) -> Result<Object, Fail> {
        Ok(self.pool.get().await?)
    }

    /// Runs one statement on its own (its own transaction): the rows it changed.
    async fn execute_one(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, Fail> {
        let conn = self.conn().await?;
        let statement = conn.prepare_cached(sql).await?;
        Ok(conn.execute(&statement, params).await?)
    }
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = self.pool.status();
        f.debug_struct("PostgresStore")
            .field("schema", &self.schema)
            .field("connections", &status.size)
            .finish_non_exhaustive()
    }
}

/// The connection pool over `connector`'s settings.
fn pool(connector: &Connector) -> Result<Pool, StoreError> {
    let manager = connector.manager(ManagerConfig {
        // A query before reuse: a connection the server closed is replaced, not used.
        recycling_method: RecyclingMethod::Verified,
    });
    Pool::builder(manager)
        .max_size(POOL_SIZE)
        .runtime(Runtime::Tokio1)
        .create_timeout(Some(CONNECT_TIMEOUT))
        .wait_timeout(Some(WAIT_TIMEOUT))
        .recycle_timeout(Some(CONNECT_TIMEOUT))
        .build()
        .map_err(|e| StoreError::backend("connect", e))
}

/// The schema when none is given: [`DEFAULT_SCHEMA`], so the kit's tables (`users`,
/// `devices`, ...) never meet an application's own; none (the connection's search path)
/// when the URL sets a `search_path` itself, or when the search path already holds the
/// kit's tables, as a deployment made before the default schema has them (it keeps working
/// there, with a warning saying how to move).
async fn default_schema(connector: &Connector) -> Result<Option<String>, StoreError> {
    let mut probe = connector.clone();
    if probe
        .config_mut()
        .get_options()
        .is_some_and(|options| options.contains("search_path"))
    {
        return Ok(None);
    }
    let pool = pool(&probe)?;
    let conn = pool
        .get()
        .await
        .map_err(|error| Fail::Pool(error).into_connect_error(connector))?;
    let row = conn
        .query_one(
            "SELECT to_regclass('holdfast_schema_migrations') IS NOT NULL,
                    to_regclass($1 || '.holdfast_schema_migrations') IS NOT NULL,
                    current_schema()",
            &[&DEFAULT_SCHEMA],
        )
        .await
        .map_err(|error| Fail::Sql(error).into_store("connect"))?;
    let read = |index| get::<Option<String>>(&row, index).map_err(|f| f.into_store("connect"));
    let flag = |index| get::<bool>(&row, index).map_err(|f| f.into_store("connect"));
    let (in_search_path, in_default) = (flag(0)?, flag(1)?);
    if in_search_path && !in_default {
        let current = read(2)?;
        tracing::warn!(
            schema = current.as_deref().unwrap_or("?"),
            "the server kit's tables are in this schema, as before it had a schema of its own; \
             they stay there. New deployments use the `holdfast` schema: to move, run \
             ALTER TABLE ... SET SCHEMA holdfast for each of its tables, or name the schema \
             explicitly (--database-schema) to silence this"
        );
        return Ok(None);
    }
    Ok(Some(DEFAULT_SCHEMA.to_owned()))
}

/// Schema names go into the connection options unquoted, so only plain identifiers pass.
fn check_schema_name(schema: &str) -> Result<(), StoreError> {
    let valid = !schema.is_empty()
        && schema.len() <= 63
        && !schema.starts_with(|c: char| c.is_ascii_digit())
        && schema
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if valid {
        Ok(())
    } else {
        Err(StoreError::backend(
            "connect",
            format!(
                "invalid schema name `{schema}`: use lower-case ASCII letters, digits and underscores, \
                 not starting with a digit (at most 63)"
            ),
        ))
    }
}

/// Why a database call failed, before it is named after its operation.
#[derive(Debug)]
enum Fail {
    Sql(tokio_postgres::Error),
    Pool(PoolError),
    Store(StoreError),
}

impl From<tokio_postgres::Error> for Fail {
    fn from(error: tokio_postgres::Error) -> Self {
        Fail::Sql(error)
    }
}

impl From<PoolError> for Fail {
    fn from(error: PoolError) -> Self {
        Fail::Pool(error)
    }
}

impl From<StoreError> for Fail {
    fn from(error: StoreError) -> Self {
        Fail::Store(error)
    }
}

impl Fail {
    /// A failure to connect, with a hint when TLS is the likely reason (see
    /// [`tls::connect_hint`]).
    fn into_connect_error(self, connector: &Connector) -> StoreError {
        let hint = match &self {
            Fail::Pool(PoolError::Backend(error)) | Fail::Sql(error) => tls::connect_hint(connector, error),
            _ => None,
        };
        match (self.into_store("connect"), hint) {
            (StoreError::Backend { operation, message }, Some(hint)) => StoreError::Backend {
                operation,
                message: format!("{message} ({hint})"),
            },
            (error, _) => error,
        }
    }

    fn into_store(self, operation: &'static str) -> StoreError {
        match self {
            Fail::Store(error) => error,
            Fail::Sql(error) | Fail::Pool(PoolError::Backend(error)) => {
                StoreError::backend(operation, describe_sql_error(&error))
            }
            Fail::Pool(error) => StoreError::backend(operation, error),
        }
    }
}

/// What went wrong, for a message: for an error from the server, its message and code only
/// (its detail may quote row values); otherwise the error and its causes, as tokio-postgres
/// displays only the kind ("error performing TLS handshake", "invalid connection string").
pub(crate) fn describe_sql_error(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => with_causes(error),
    }
}

/// `error` and its causes, `: `-separated.
pub(crate) fn with_causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Whether `error` is a unique violation of the constraint named `constraint`.
fn is_unique_violation(error: &tokio_postgres::Error, constraint: &str) -> bool {
    error
        .as_db_error()
        .is_some_and(|db| *db.code() == SqlState::UNIQUE_VIOLATION && db.constraint() == Some(constraint))
}

/// Column `index` of `row`; a value of the wrong type or shape is corrupt data.
fn get<'a, T: tokio_postgres::types::FromSql<'a>>(row: &'a Row, index: usize) -> Result<T, Fail> {
    row.try_get(index)
        .map_err(|e| Fail::Store(StoreError::Corrupt(format!("column {index}: {e}"))))
}
