//! The schema, as an ordered list of migrations recorded in `holdfast_schema_migrations`.
//!
//! A migration is never edited once released: a change is a new entry at the end. Tables
//! and columns are named as in the SQLite schema (Kora's names: `password_hash`, `salt`,
//! `public_key`, ...), so data can be copied between them.

use super::Fail;
use crate::store::StoreError;
use deadpool_postgres::{GenericClient, Object};

/// `(version, SQL)`, versions strictly increasing from 1.
const MIGRATIONS: &[(i64, &str)] = &[(1, V1), (2, V2), (3, V3), (4, V4), (5, V5), (6, V6)];

/// The schema version this build writes; a database with a newer one is refused.
pub const SCHEMA_VERSION: i64 = MIGRATIONS[MIGRATIONS.len() - 1].0;

/// The table recording which migrations were applied.
const CREATE_VERSION_TABLE: &str = "CREATE TABLE IF NOT EXISTS holdfast_schema_migrations (
    version BIGINT PRIMARY KEY,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
)";

const V1: &str = "
CREATE TABLE users (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL CONSTRAINT users_email_key UNIQUE,
    name TEXT,
    email_verified BOOLEAN NOT NULL DEFAULT FALSE,
    created_at BIGINT NOT NULL,
    password_hash TEXT NOT NULL,
    salt TEXT NOT NULL DEFAULT ''
);

-- No foreign key to users: a deployment may keep users on another backend. seq keeps
-- insertion order for devices created in the same millisecond.
CREATE TABLE devices (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    public_key TEXT NOT NULL DEFAULT '',
    thumbprint TEXT,
    name TEXT NOT NULL,
    revoked BOOLEAN NOT NULL DEFAULT FALSE,
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    seq BIGINT GENERATED ALWAYS AS IDENTITY
);
CREATE INDEX devices_by_user ON devices (user_id, created_at, seq);

-- The child_* columns stay NULL until the token is rotated.
CREATE TABLE refresh_tokens (
    jti TEXT PRIMARY KEY,
    family TEXT NOT NULL,
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    issued_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    jkt TEXT,
    rotated_at_ms BIGINT,
    child_access_jti TEXT,
    child_refresh_jti TEXT,
    child_issued_at BIGINT,
    child_access_expires_at BIGINT,
    child_refresh_expires_at BIGINT
);
CREATE INDEX refresh_tokens_by_expiry ON refresh_tokens (expires_at);
CREATE INDEX refresh_tokens_by_user ON refresh_tokens (user_id, family);

CREATE TABLE revoked_tokens (
    jti TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE INDEX revoked_tokens_by_expiry ON revoked_tokens (expires_at);

CREATE TABLE revoked_families (
    family TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE INDEX revoked_families_by_expiry ON revoked_families (expires_at);

CREATE TABLE challenges (
    challenge TEXT PRIMARY KEY,
    device_id TEXT NOT NULL,
    expires_at_ms BIGINT NOT NULL
);
CREATE INDEX challenges_by_expiry ON challenges (expires_at_ms);

-- hits: the counted attempts' timestamps (ms).
CREATE TABLE rate_limits (
    key TEXT PRIMARY KEY,
    hits BIGINT[] NOT NULL,
    expires_at_ms BIGINT NOT NULL
);
CREATE INDEX rate_limits_by_expiry ON rate_limits (expires_at_ms);

CREATE TABLE blocks (
    key TEXT PRIMARY KEY,
    until_ms BIGINT NOT NULL
);
CREATE INDEX blocks_by_expiry ON blocks (until_ms);
";

/// The sync endpoint's items (`super::PostgresSyncItems`), as in its SQLite
/// file. `value` is the item's JSON text as written (TEXT, not JSONB, so it comes back
/// byte for byte). Keys sort bytewise (COLLATE "C"), as SQLite sorts them.
const V2: &str = "
CREATE TABLE sync_items (
    user_id TEXT NOT NULL,
    key TEXT COLLATE \"C\" NOT NULL,
    value TEXT NOT NULL,
    version BIGINT NOT NULL,
    device_id TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, key)
);
";

/// What each user holds in `sync_items`, kept with every write so a quota check reads (and
/// locks) one row. Sizes are bytes of UTF-8, as the SQLite file counts them.
const V3: &str = "
CREATE TABLE sync_usage (
    user_id TEXT PRIMARY KEY,
    items BIGINT NOT NULL,
    bytes BIGINT NOT NULL
);
INSERT INTO sync_usage (user_id, items, bytes)
    SELECT user_id, count(*), sum(octet_length(key) + octet_length(value))
    FROM sync_items GROUP BY user_id;
";

/// The application's data about each user (JSON text), given at sign-up.
const V4: &str = "
ALTER TABLE users ADD COLUMN metadata TEXT;
";

/// Sessions and the account lifecycle (PROTOCOL 8), as SQLite's version 4: disabled
/// accounts, one row per session (token family) with why it ended, and hashed single-use
/// reset and verification tokens. Session ids and emails are listed in bytewise order
/// (COLLATE "C"), as the other backends order them, whatever the database's collation.
///
/// Every family already issued becomes a session: its user and device (`min()`: a family
/// has one of each), signed in at its first token's `iat` and last used at its last one's.
/// A revoked family is recorded as ended (`signed_out`, the most common way one was
/// revoked) at its last token's `iat` rather than at the migration's time: the revocation
/// happened at or after it, the value does not depend on when the upgrade ran, and a
/// family revoked long ago is purged on the schedule its last use sets instead of surviving
/// a whole retention period from the upgrade. Seconds become milliseconds saturating at the
/// 64-bit bounds, where PostgreSQL would otherwise fail the migration on an overflow.
const V5: &str = "
ALTER TABLE users ADD COLUMN disabled_at BIGINT;
CREATE INDEX users_by_email_bytes ON users (email COLLATE \"C\");

CREATE TABLE sessions (
    id TEXT COLLATE \"C\" PRIMARY KEY,
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    last_used_at_ms BIGINT NOT NULL,
    ip_address TEXT,
    user_agent TEXT,
    aal INTEGER NOT NULL DEFAULT 1,
    ended_at_ms BIGINT,
    end_reason TEXT
);
CREATE INDEX sessions_by_user ON sessions (user_id, created_at_ms);
-- A device's latest session decides whether it may sign in again with its key alone.
CREATE INDEX sessions_by_device ON sessions (device_id, created_at_ms);
-- Expiry scans read live sessions only; purging reads when each stopped mattering (its
-- end, or else its last use).
CREATE INDEX sessions_live_by_last_use ON sessions (last_used_at_ms) WHERE ended_at_ms IS NULL;
CREATE INDEX sessions_live_by_creation ON sessions (created_at_ms) WHERE ended_at_ms IS NULL;
CREATE INDEX sessions_by_purge_time ON sessions ((coalesce(ended_at_ms, last_used_at_ms)));

CREATE TABLE one_time_tokens (
    hash TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    user_id TEXT NOT NULL,
    email TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL
);
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
) AS families;
";

/// Second factors (PROTOCOL 9), as SQLite's version 5: how each session's user proved who
/// they are (`amr`: the methods joined by `,`; `auth_time` in seconds, a session from
/// before taken as proved at its sign-in), each user's TOTP factor (its secret sealed) and
/// recovery codes (keyed hashes only). No foreign key to users, as for devices: deleting a
/// user deletes its factor and codes explicitly.
const V6: &str = "
ALTER TABLE sessions ADD COLUMN amr TEXT NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN auth_time BIGINT NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN mfa_pending BOOLEAN NOT NULL DEFAULT FALSE;
UPDATE sessions SET auth_time = created_at_ms / 1000;

CREATE TABLE mfa_totp (
    user_id TEXT PRIMARY KEY,
    sealed_secret TEXT NOT NULL,
    algorithm TEXT NOT NULL,
    digits INTEGER NOT NULL,
    period_secs BIGINT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    enabled_at_ms BIGINT,
    last_step BIGINT
);

CREATE TABLE mfa_recovery_codes (
    user_id TEXT NOT NULL,
    hash TEXT NOT NULL,
    PRIMARY KEY (user_id, hash)
);
";

/// The schema version recorded in the current schema (0 when nothing is).
pub async fn schema_version(conn: &Object) -> Result<i64, Fail> {
    read_version(conn).await
}

async fn read_version<C: GenericClient + Sync>(client: &C) -> Result<i64, Fail> {
    // Two statements: a query naming a missing table fails when parsed.
    let row = client
        .query_one(
            "SELECT to_regclass('holdfast_schema_migrations') IS NOT NULL",
            &[],
        )
        .await?;
    if !super::get::<bool>(&row, 0)? {
        return Ok(0);
    }
    let row = client
        .query_one(
            "SELECT coalesce(max(version), 0)::BIGINT FROM holdfast_schema_migrations",
            &[],
        )
        .await?;
    super::get(&row, 0)
}

/// Refuses a schema newer than this build knows: its data is left untouched.
fn check_not_newer(version: i64) -> Result<(), Fail> {
    if version > SCHEMA_VERSION {
        return Err(Fail::Store(StoreError::backend(
            "connect",
            format!(
                "the database has schema version {version}, newer than this build supports \
                 ({SCHEMA_VERSION}); upgrade holdfast-server-kit"
            ),
        )));
    }
    Ok(())
}

/// Creates the schema if need be and applies the migrations it lacks, all in one
/// transaction under an advisory lock named after the schema: instances starting together
/// wait for each other, and the later ones find nothing left to do. A crash leaves the
/// database at its old version rather than half-migrated. Stops at version `target`:
/// [`SCHEMA_VERSION`], or an older build's for migration tests.
pub async fn migrate_to(conn: &mut Object, schema: Option<&str>, target: i64) -> Result<(), Fail> {
    let tx = conn.transaction().await?;
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtext('holdfast-migrate:' || coalesce($1, current_schema(), '')))",
        &[&schema],
    )
    .await?;
    if let Some(schema) = schema {
        // The name was checked to be a plain identifier; identifiers take no parameters.
        tx.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""))
            .await?;
    }
    // Read under the lock: another instance may have migrated meanwhile. Checked before
    // anything is written, so a newer schema stays as it is.
    let current = read_version(&tx).await?;
    check_not_newer(current)?;
    if current >= target {
        tx.commit().await?;
        return Ok(());
    }
    tx.batch_execute(CREATE_VERSION_TABLE).await?;
    let missing = MIGRATIONS
        .iter()
        .filter(|(version, _)| *version > current && *version <= target);
    for (version, sql) in missing {
        tx.batch_execute(sql).await?;
        tx.execute(
            "INSERT INTO holdfast_schema_migrations (version) VALUES ($1)",
            &[version],
        )
        .await?;
    }
    tx.commit().await?;
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
}
