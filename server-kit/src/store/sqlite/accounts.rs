//! Users and devices on SQLite.

use super::{Fail, SqliteStore};
use crate::store::records::read_metadata;
use crate::store::{
    DeviceKey, DeviceRecord, DeviceStore, NewDevice, NewUser, RegistrationPlan, StoreError, StoredPassword,
    UserQuery, UserRecord, UserStore, plan_registration,
};
use async_trait::async_trait;
use rusqlite::{Connection, ErrorCode, OptionalExtension, Row, TransactionBehavior, params};

// Whole statements as constants: the statement cache is keyed by the SQL text.
pub(super) const SELECT_USER_BY_ID: &str =
    "SELECT id, email, name, email_verified, created_at, password_hash, salt, metadata, disabled_at
     FROM users WHERE id = ?1";
const SELECT_USER_BY_EMAIL: &str =
    "SELECT id, email, name, email_verified, created_at, password_hash, salt, metadata, disabled_at
     FROM users WHERE email = ?1";
/// Email order and `>` are bytewise (BINARY), as Rust compares strings; `instr` matches the
/// text literally, where LIKE would read `%` and `_` as wildcards.
const LIST_USERS: &str =
    "SELECT id, email, name, email_verified, created_at, password_hash, salt, metadata, disabled_at
     FROM users
     WHERE (?1 IS NULL OR email > ?1) AND (?2 IS NULL OR instr(email, ?2) > 0)
     ORDER BY email LIMIT ?3";

fn user_from_row(row: &Row<'_>) -> rusqlite::Result<UserRecord> {
    Ok(UserRecord {
        id: row.get(0)?,
        email: row.get(1)?,
        name: row.get(2)?,
        email_verified: row.get(3)?,
        created_at_ms: row.get(4)?,
        password: StoredPassword {
            hash: row.get(5)?,
            salt: row.get(6)?,
        },
        metadata: read_metadata(row.get(7)?),
        disabled_at_ms: row.get(8)?,
    })
}

pub(super) fn find_user_where(conn: &Connection, sql: &str, value: &str) -> Result<Option<UserRecord>, Fail> {
    Ok(conn
        .prepare_cached(sql)?
        .query_row([value], user_from_row)
        .optional()?)
}

/// The user `id`.
pub(super) fn find_user_by_id(conn: &Connection, id: &str) -> Result<Option<UserRecord>, Fail> {
    find_user_where(conn, SELECT_USER_BY_ID, id)
}

/// Whether the insert hit the unique index on `users.email`, as opposed to another
/// constraint (a reused user id is a caller bug, not a taken email).
fn is_email_taken(error: &rusqlite::Error) -> bool {
    matches!(error, rusqlite::Error::SqliteFailure(failure, Some(message))
        if failure.code == ErrorCode::ConstraintViolation && message.contains("users.email"))
}

#[async_trait]
impl UserStore for SqliteStore {
    async fn create_user(&self, user: NewUser) -> Result<UserRecord, StoreError> {
        // One INSERT is its own write transaction; the unique index makes it atomic with
        // respect to concurrent creations, here or in another process.
        self.write("create_user", move |conn| {
            let inserted = conn
                .prepare_cached(
                    "INSERT INTO users (id, email, name, email_verified, created_at, password_hash, salt, metadata)
                     VALUES (?1, ?2, ?3, 0, ?4, ?5, ?6, ?7)",
                )?
                .execute(params![
                    user.id,
                    user.email,
                    user.name,
                    user.created_at_ms,
                    user.password.hash,
                    user.password.salt,
                    user.metadata.as_ref().map(|metadata| metadata.to_string())
                ]);
            match inserted {
                Ok(_) => Ok(user.to_record()),
                Err(error) if is_email_taken(&error) => Err(StoreError::EmailTaken.into()),
                Err(error) => Err(error.into()),
            }
        })
        .await
    }

    async fn find_user_by_email(&self, email: &str) -> Result<Option<UserRecord>, StoreError> {
        let email = email.to_owned();
        self.read("find_user_by_email", move |conn| {
            find_user_where(conn, SELECT_USER_BY_EMAIL, &email)
        })
        .await
    }

    async fn find_user(&self, id: &str) -> Result<Option<UserRecord>, StoreError> {
        let id = id.to_owned();
        self.read("find_user", move |conn| {
            find_user_where(conn, SELECT_USER_BY_ID, &id)
        })
        .await
    }

    async fn set_password(&self, id: &str, password: StoredPassword) -> Result<(), StoreError> {
        let id = id.to_owned();
        self.write("set_password", move |conn| {
            conn.prepare_cached("UPDATE users SET password_hash = ?2, salt = ?3 WHERE id = ?1")?
                .execute(params![id, password.hash, password.salt])?;
            Ok(())
        })
        .await
    }

    async fn delete_user(&self, id: &str) -> Result<bool, StoreError> {
        let id = id.to_owned();
        self.write("delete_user", move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let existed = tx
                .prepare_cached("DELETE FROM users WHERE id = ?1")?
                .execute([&id])?
                > 0;
            if existed {
                tx.prepare_cached("DELETE FROM devices WHERE user_id = ?1")?
                    .execute([&id])?;
                super::mfa::delete_factors(&tx, &id)?;
            }
            tx.commit()?;
            Ok(existed)
        })
        .await
    }

    async fn set_email_verified(&self, id: &str) -> Result<bool, StoreError> {
        let id = id.to_owned();
        self.write("set_email_verified", move |conn| {
            Ok(conn
                .prepare_cached("UPDATE users SET email_verified = 1 WHERE id = ?1")?
                .execute([id])?
                > 0)
        })
        .await
    }

    async fn set_disabled(&self, id: &str, disabled_at_ms: Option<i64>) -> Result<bool, StoreError> {
        let id = id.to_owned();
        self.write("set_disabled", move |conn| {
            Ok(conn
                .prepare_cached("UPDATE users SET disabled_at = ?2 WHERE id = ?1")?
                .execute(params![id, disabled_at_ms])?
                > 0)
        })
        .await
    }

    async fn list_users(&self, query: &UserQuery) -> Result<Vec<UserRecord>, StoreError> {
        let query = query.clone();
        self.read("list_users", move |conn| {
            let limit = query.capped_limit();
            Ok(conn
                .prepare_cached(LIST_USERS)?
                .query_map(params![query.after, query.email_contains, limit], user_from_row)?
                .collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }
}

const SELECT_DEVICE: &str =
    "SELECT id, user_id, public_key, thumbprint, name, revoked, created_at, last_seen_at
     FROM devices WHERE id = ?1";
// rowid breaks ties in insertion order, as the in-memory store does.
const SELECT_DEVICES_OF_USER: &str =
    "SELECT id, user_id, public_key, thumbprint, name, revoked, created_at, last_seen_at
     FROM devices WHERE user_id = ?1 ORDER BY created_at, rowid";

/// A `devices` row as stored: the key is two columns that must agree.
struct DeviceRow {
    record: DeviceRecord,
    public_key: String,
    thumbprint: Option<String>,
}

fn device_from_row(row: &Row<'_>) -> rusqlite::Result<DeviceRow> {
    Ok(DeviceRow {
        record: DeviceRecord {
            id: row.get(0)?,
            user_id: row.get(1)?,
            key: None,
            name: row.get(4)?,
            revoked: row.get(5)?,
            created_at_ms: row.get(6)?,
            last_seen_at_ms: row.get(7)?,
        },
        public_key: row.get(2)?,
        thumbprint: row.get(3)?,
    })
}

impl DeviceRow {
    fn into_record(self) -> Result<DeviceRecord, Fail> {
        let DeviceRow {
            mut record,
            public_key,
            thumbprint,
        } = self;
        record.key = match (public_key.is_empty(), thumbprint) {
            (true, None) => None,
            (false, Some(thumbprint)) => Some(DeviceKey {
                jwk: public_key,
                thumbprint,
            }),
            // Kora's schema has no thumbprint: a copied keyed row needs one computed first.
            _ => {
                return Err(
                    StoreError::Corrupt("a device's public_key and thumbprint disagree".into()).into(),
                );
            }
        };
        Ok(record)
    }
}

pub(super) fn find_device(conn: &Connection, id: &str) -> Result<Option<DeviceRecord>, Fail> {
    conn.prepare_cached(SELECT_DEVICE)?
        .query_row([id], device_from_row)
        .optional()?
        .map(DeviceRow::into_record)
        .transpose()
}

#[async_trait]
impl DeviceStore for SqliteStore {
    async fn register_device(&self, device: NewDevice) -> Result<DeviceRecord, StoreError> {
        self.write("register_device", move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let existing = find_device(&tx, &device.id)?;
            let (jwk, thumbprint) = match &device.key {
                Some(key) => (key.jwk.as_str(), Some(key.thumbprint.as_str())),
                None => ("", None),
            };
            let record = match (plan_registration(existing.as_ref(), &device)?, existing) {
                (RegistrationPlan::Keep, Some(existing)) => existing,
                (RegistrationPlan::AttachKey, Some(mut existing)) => {
                    tx.prepare_cached("UPDATE devices SET public_key = ?2, thumbprint = ?3, name = ?4 WHERE id = ?1")?
                        .execute(params![device.id, jwk, thumbprint, device.name])?;
                    existing.key = device.key;
                    existing.name = device.name;
                    existing
                }
                (RegistrationPlan::Insert, _) => {
                    tx.prepare_cached(
                        "INSERT INTO devices (id, user_id, public_key, thumbprint, name, revoked, created_at, last_seen_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6, ?6)",
                    )?
                    .execute(params![device.id, device.user_id, jwk, thumbprint, device.name, device.now_ms])?;
                    device.into_record()
                }
                // plan_registration plans Keep and AttachKey only for an existing record.
                (plan, None) => {
                    return Err(StoreError::backend("register_device", format!("{plan:?} without a record")).into());
                }
            };
            tx.commit()?;
            Ok(record)
        })
        .await
    }

    async fn find_device(&self, id: &str) -> Result<Option<DeviceRecord>, StoreError> {
        let id = id.to_owned();
        self.read("find_device", move |conn| find_device(conn, &id)).await
    }

    async fn list_devices(&self, user_id: &str) -> Result<Vec<DeviceRecord>, StoreError> {
        let user_id = user_id.to_owned();
        self.read("list_devices", move |conn| {
            let rows = conn
                .prepare_cached(SELECT_DEVICES_OF_USER)?
                .query_map([user_id], device_from_row)?
                .collect::<Result<Vec<_>, _>>()?;
            rows.into_iter().map(DeviceRow::into_record).collect()
        })
        .await
    }

    async fn revoke_device(&self, id: &str, user_id: &str) -> Result<bool, StoreError> {
        let (id, user_id) = (id.to_owned(), user_id.to_owned());
        self.write("revoke_device", move |conn| {
            let changed = conn
                .prepare_cached("UPDATE devices SET revoked = 1 WHERE id = ?1 AND user_id = ?2")?
                .execute([id, user_id])?;
            Ok(changed > 0)
        })
        .await
    }

    async fn touch_devices(&self, seen: &[(String, i64)]) -> Result<(), StoreError> {
        let seen = seen.to_vec();
        self.write("touch_devices", move |conn| {
            let tx = conn.transaction()?;
            for (id, now_ms) in &seen {
                tx.prepare_cached("UPDATE devices SET last_seen_at = max(last_seen_at, ?2) WHERE id = ?1")?
                    .execute(params![id, now_ms])?;
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn touch_device(&self, id: &str, now_ms: i64) -> Result<(), StoreError> {
        let id = id.to_owned();
        self.write("touch_device", move |conn| {
            // max(): concurrent requests finishing out of order must not move it back.
            conn.prepare_cached("UPDATE devices SET last_seen_at = max(last_seen_at, ?2) WHERE id = ?1")?
                .execute(params![id, now_ms])?;
            Ok(())
        })
        .await
    }
}
