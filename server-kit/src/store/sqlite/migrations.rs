//! The schema, as an ordered list of migrations tracked by `PRAGMA user_version`.
//!
//! A migration is never edited once released: a change is a new entry at the end. Column
//! names follow Kora's (`password_hash`, `salt`, `public_key`, ...) so its data can be
//! copied over as is.

use super::Fail;
use crate::store::StoreError;
use rusqlite::{Connection, TransactionBehavior};

/// `(version, SQL)`, versions strictly increasing from 1.
const MIGRATIONS: &[(i64, &str)] = &[(1, V1), (2, V2), (3, V3)];

/// The schema version this build writes; a database with a newer one is refused.
pub const SCHEMA_VERSION: i64 = MIGRATIONS[MIGRATIONS.len() - 1].0;

const V1: &str = "
CREATE TABLE users (
    id TEXT PRIMARY KEY NOT NULL,
    email TEXT NOT NULL UNIQUE,
    name TEXT,
    email_verified INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    password_hash TEXT NOT NULL,
    salt TEXT NOT NULL DEFAULT ''
);

-- No foreign key to users: a deployment may keep users on another backend.
CREATE TABLE devices (
    id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL,
    public_key TEXT NOT NULL DEFAULT '',
    thumbprint TEXT,
    name TEXT NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL
);
CREATE INDEX devices_by_user ON devices (user_id, created_at);

-- The child_* columns stay NULL until the token is rotated.
CREATE TABLE refresh_tokens (
    jti TEXT PRIMARY KEY NOT NULL,
    family TEXT NOT NULL,
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    issued_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    jkt TEXT,
    rotated_at_ms INTEGER,
    child_access_jti TEXT,
    child_refresh_jti TEXT,
    child_issued_at INTEGER,
    child_access_expires_at INTEGER,
    child_refresh_expires_at INTEGER
);
CREATE INDEX refresh_tokens_by_expiry ON refresh_tokens (expires_at);

CREATE TABLE revoked_tokens (
    jti TEXT PRIMARY KEY NOT NULL,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX revoked_tokens_by_expiry ON revoked_tokens (expires_at);

CREATE TABLE revoked_families (
    family TEXT PRIMARY KEY NOT NULL,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX revoked_families_by_expiry ON revoked_families (expires_at);

CREATE TABLE challenges (
    challenge TEXT PRIMARY KEY NOT NULL,
    device_id TEXT NOT NULL,
    expires_at_ms INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX challenges_by_expiry ON challenges (expires_at_ms);

-- hits: the counted attempts' timestamps (ms), little-endian i64s back to back.
CREATE TABLE rate_limits (
    key TEXT PRIMARY KEY NOT NULL,
    hits BLOB NOT NULL,
    expires_at_ms INTEGER NOT NULL
);
CREATE INDEX rate_limits_by_expiry ON rate_limits (expires_at_ms);

CREATE TABLE blocks (
    key TEXT PRIMARY KEY NOT NULL,
    until_ms INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX blocks_by_expiry ON blocks (until_ms);
";

/// Signing out everywhere finds a user's sessions by user.
const V2: &str = "
CREATE INDEX refresh_tokens_by_user ON refresh_tokens (user_id, family);
";

/// The application's data about each user (JSON text), given at sign-up.
const V3: &str = "
ALTER TABLE users ADD COLUMN metadata TEXT;
";

/// The database's schema version, read without writing anything.
pub fn schema_version(conn: &Connection) -> Result<i64, Fail> {
    Ok(conn.pragma_query_value(None, "user_version", |row| row.get(0))?)
}

/// Refuses a schema newer than this build knows: its data is left untouched.
pub fn check_not_newer(version: i64) -> Result<(), Fail> {
    if version > SCHEMA_VERSION {
        return Err(Fail::Store(StoreError::backend(
            "open",
            format!(
                "the database has schema version {version}, newer than this build supports \
                 ({SCHEMA_VERSION}); upgrade holdfast-server-kit"
            ),
        )));
    }
    Ok(())
}

/// Applies the migrations the database lacks, all in one transaction, so a crash leaves
/// it at its old version rather than half-migrated.
pub fn migrate(conn: &mut Connection) -> Result<(), Fail> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // Read again under the write lock: another process may have migrated meanwhile.
    let current = schema_version(&tx)?;
    check_not_newer(current)?;
    for (version, sql) in MIGRATIONS.iter().filter(|(version, _)| *version > current) {
        tx.execute_batch(sql)?;
        // PRAGMA takes no bound parameters; the version is an integer from the list above.
        tx.execute_batch(&format!("PRAGMA user_version = {version}"))?;
    }
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_strictly_increase_from_one() {
        let versions: Vec<i64> = MIGRATIONS.iter().map(|(version, _)| *version).collect();
        let expected: Vec<i64> = (1..=MIGRATIONS.len() as i64).collect();
        assert_eq!(versions, expected);
    }

    #[test]
    fn migrating_twice_is_a_no_op() -> Result<(), Fail> {
        let mut conn = Connection::open_in_memory()?;
        migrate(&mut conn)?;
        migrate(&mut conn)?;
        assert_eq!(schema_version(&conn)?, SCHEMA_VERSION);
        Ok(())
    }
}
