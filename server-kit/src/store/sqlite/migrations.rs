//! The schema, as an ordered list of migrations tracked by `PRAGMA user_version`.
//!
//! A migration is never edited once released: a change is a new entry at the end. Column
//! names follow Kora's (`password_hash`, `salt`, `public_key`, ...) so its data can be
//! copied over as is.

use super::Fail;
use crate::store::StoreError;
use rusqlite::{Connection, TransactionBehavior};

/// `(version, SQL)`, versions strictly increasing from 1.
const MIGRATIONS: &[(i64, &str)] = &[(1, V1), (2, V2), (3, V3), (4, V4), (5, V5)];

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

/// Sessions and the account lifecycle (PROTOCOL 8): disabled accounts, one row per session
/// (token family) with why it ended, and hashed single-use reset and verification tokens.
///
/// Every family already issued becomes a session: its user and device (`min()`: a family
/// has one of each), signed in at its first token's `iat` and last used at its last one's.
/// A revoked family is recorded as ended (`signed_out`, the most common way one was
/// revoked) at its last token's `iat` rather than at the migration's time: the revocation
/// happened at or after it, the value does not depend on when the upgrade ran, and a
/// family revoked long ago is purged on the schedule its last use sets instead of surviving
/// a whole retention period from the upgrade. Seconds become milliseconds saturating at the
/// 64-bit bounds, as SQLite would otherwise turn an overflowing product into a float.
const V4: &str = "
ALTER TABLE users ADD COLUMN disabled_at INTEGER;

CREATE TABLE sessions (
    id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    last_used_at_ms INTEGER NOT NULL,
    ip_address TEXT,
    user_agent TEXT,
    aal INTEGER NOT NULL DEFAULT 1,
    ended_at_ms INTEGER,
    end_reason TEXT
);
CREATE INDEX sessions_by_user ON sessions (user_id, created_at_ms);
-- A device's latest session decides whether it may sign in again with its key alone.
CREATE INDEX sessions_by_device ON sessions (device_id, created_at_ms);
-- Expiry scans read live sessions only; purging reads when each stopped mattering (its
-- end, or else its last use).
CREATE INDEX sessions_live_by_last_use ON sessions (last_used_at_ms) WHERE ended_at_ms IS NULL;
CREATE INDEX sessions_live_by_creation ON sessions (created_at_ms) WHERE ended_at_ms IS NULL;
CREATE INDEX sessions_by_purge_time ON sessions (coalesce(ended_at_ms, last_used_at_ms));

CREATE TABLE one_time_tokens (
    hash TEXT PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL,
    user_id TEXT NOT NULL,
    email TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX one_time_tokens_by_user ON one_time_tokens (user_id, kind);
CREATE INDEX one_time_tokens_by_expiry ON one_time_tokens (expires_at_ms);

-- Renewing a session revokes its family's tokens, found by family. Nothing finds tokens by
-- user any more: ending a user's sessions goes through `sessions`.
DROP INDEX refresh_tokens_by_user;
CREATE INDEX refresh_tokens_by_family ON refresh_tokens (family);

INSERT INTO sessions (id, user_id, device_id, created_at_ms, last_used_at_ms, ended_at_ms, end_reason)
SELECT family, user_id, device_id, first_ms, last_ms,
       CASE WHEN revoked THEN last_ms END,
       CASE WHEN revoked THEN 'signed_out' END
FROM (
    SELECT r.family AS family, min(r.user_id) AS user_id, min(r.device_id) AS device_id,
        CASE WHEN min(r.issued_at) > 9223372036854775 THEN 9223372036854775807
             WHEN min(r.issued_at) < -9223372036854775 THEN -9223372036854775807 - 1
             ELSE min(r.issued_at) * 1000 END AS first_ms,
        CASE WHEN max(r.issued_at) > 9223372036854775 THEN 9223372036854775807
             WHEN max(r.issued_at) < -9223372036854775 THEN -9223372036854775807 - 1
             ELSE max(r.issued_at) * 1000 END AS last_ms,
        EXISTS (SELECT 1 FROM revoked_families f WHERE f.family = r.family) AS revoked
    FROM refresh_tokens r
    GROUP BY r.family
);
";

/// Second factors (PROTOCOL 9): how each session's user proved who they are (`amr`: the
/// methods joined by `,`; `auth_time` in seconds, a session from before taken as proved at
/// its sign-in), each user's TOTP factor (its secret sealed) and recovery codes (keyed
/// hashes only). No foreign key to users, as for devices: deleting a user deletes its
/// factor and codes explicitly.
const V5: &str = "
ALTER TABLE sessions ADD COLUMN amr TEXT NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN auth_time INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN mfa_pending INTEGER NOT NULL DEFAULT 0;
UPDATE sessions SET auth_time = created_at_ms / 1000;

CREATE TABLE mfa_totp (
    user_id TEXT PRIMARY KEY NOT NULL,
    sealed_secret TEXT NOT NULL,
    algorithm TEXT NOT NULL,
    digits INTEGER NOT NULL,
    period_secs INTEGER NOT NULL,
    created_at_ms INTEGER NOT NULL,
    enabled_at_ms INTEGER,
    last_step INTEGER
) WITHOUT ROWID;

CREATE TABLE mfa_recovery_codes (
    user_id TEXT NOT NULL,
    hash TEXT NOT NULL,
    PRIMARY KEY (user_id, hash)
) WITHOUT ROWID;
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
    migrate_to(conn, SCHEMA_VERSION)
}

/// [`migrate`], stopping at version `target` (an older build's schema, for migration tests).
pub fn migrate_to(conn: &mut Connection, target: i64) -> Result<(), Fail> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // Read again under the write lock: another process may have migrated meanwhile.
    let current = schema_version(&tx)?;
    check_not_newer(current)?;
    let missing = MIGRATIONS
        .iter()
        .filter(|(version, _)| *version > current && *version <= target);
    for (version, sql) in missing {
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
