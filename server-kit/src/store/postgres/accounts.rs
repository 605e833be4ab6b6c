//! Users and devices on PostgreSQL.

use super::{Fail, PostgresStore, get, is_unique_violation};
use crate::store::records::read_metadata;
use crate::store::{
    DeviceKey, DeviceRecord, DeviceStore, NewDevice, NewUser, RegistrationPlan, StoreError, StoredPassword,
    UserQuery, UserRecord, UserStore, plan_registration,
};
use async_trait::async_trait;
use tokio_postgres::Row;

const SELECT_USER_BY_ID: &str =
    "SELECT id, email, name, email_verified, created_at, password_hash, salt, metadata, disabled_at
     FROM users WHERE id = $1";
const SELECT_USER_BY_EMAIL: &str =
    "SELECT id, email, name, email_verified, created_at, password_hash, salt, metadata, disabled_at
     FROM users WHERE email = $1";
/// Email order and `>` are bytewise (COLLATE "C", the `users_by_email_bytes` index), as the
/// other backends compare; `strpos` matches the text literally, where LIKE would read `%`
/// and `_` as wildcards.
const LIST_USERS: &str =
    "SELECT id, email, name, email_verified, created_at, password_hash, salt, metadata, disabled_at
     FROM users
     WHERE ($1::TEXT IS NULL OR email COLLATE \"C\" > $1) AND ($2::TEXT IS NULL OR strpos(email, $2) > 0)
     ORDER BY email COLLATE \"C\" LIMIT $3";
const INSERT_USER: &str =
    "INSERT INTO users (id, email, name, email_verified, created_at, password_hash, salt, metadata)
     VALUES ($1, $2, $3, FALSE, $4, $5, $6, $7)";

fn user_from_row(row: &Row) -> Result<UserRecord, Fail> {
    user_at(row, 0)
}

/// The user in the nine columns of `row` from `base` on (as [`SELECT_USER_BY_ID`] has them).
pub(super) fn user_at(row: &Row, base: usize) -> Result<UserRecord, Fail> {
    Ok(UserRecord {
        id: get(row, base)?,
        email: get(row, base + 1)?,
        name: get(row, base + 2)?,
        email_verified: get(row, base + 3)?,
        created_at_ms: get(row, base + 4)?,
        password: StoredPassword {
            hash: get(row, base + 5)?,
            salt: get(row, base + 6)?,
        },
        metadata: read_metadata(get(row, base + 7)?),
        disabled_at_ms: get(row, base + 8)?,
    })
}

impl PostgresStore {
    async fn find_user_where(&self, sql: &str, value: &str) -> Result<Option<UserRecord>, Fail> {
        let conn = self.conn().await?;
        let statement = conn.prepare_cached(sql).await?;
        conn.query_opt(&statement, &[&value])
            .await?
            .as_ref()
            .map(user_from_row)
            .transpose()
    }
}

#[async_trait]
impl UserStore for PostgresStore {
    async fn create_user(&self, user: NewUser) -> Result<UserRecord, StoreError> {
        // One INSERT: the unique constraint makes it atomic against concurrent creations,
        // on this instance or another.
        let metadata = user.metadata.as_ref().map(|metadata| metadata.to_string());
        let inserted = async {
            let conn = self.conn().await?;
            let statement = conn.prepare_cached(INSERT_USER).await?;
            match conn
                .execute(
                    &statement,
                    &[
                        &user.id,
                        &user.email,
                        &user.name,
                        &user.created_at_ms,
                        &user.password.hash,
                        &user.password.salt,
                        &metadata,
                    ],
                )
                .await
            {
                Ok(_) => Ok(()),
                // Another constraint (a reused user id) is a caller bug, not a taken email.
                Err(error) if is_unique_violation(&error, "users_email_key") => {
                    Err(Fail::Store(StoreError::EmailTaken))
                }
                Err(error) => Err(error.into()),
            }
        };
        inserted.await.map_err(|fail| fail.into_store("create_user"))?;
        Ok(user.to_record())
    }

    async fn find_user_by_email(&self, email: &str) -> Result<Option<UserRecord>, StoreError> {
        self.find_user_where(SELECT_USER_BY_EMAIL, email)
            .await
            .map_err(|fail| fail.into_store("find_user_by_email"))
    }

    async fn find_user(&self, id: &str) -> Result<Option<UserRecord>, StoreError> {
        self.find_user_where(SELECT_USER_BY_ID, id)
            .await
            .map_err(|fail| fail.into_store("find_user"))
    }

    async fn set_password(&self, id: &str, password: StoredPassword) -> Result<(), StoreError> {
        async {
            let conn = self.conn().await?;
            let statement = conn
                .prepare_cached("UPDATE users SET password_hash = $2, salt = $3 WHERE id = $1")
                .await?;
            conn.execute(&statement, &[&id, &password.hash, &password.salt])
                .await?;
            Ok(())
        }
        .await
        .map_err(|fail: Fail| fail.into_store("set_password"))
    }

    async fn delete_user(&self, id: &str) -> Result<bool, StoreError> {
        async {
            let mut conn = self.conn().await?;
            let tx = conn.transaction().await?;
            let existed = tx
                .execute(
                    &tx.prepare_cached("DELETE FROM users WHERE id = $1").await?,
                    &[&id],
                )
                .await?
                > 0;
            if existed {
                tx.execute(
                    &tx.prepare_cached("DELETE FROM devices WHERE user_id = $1")
                        .await?,
                    &[&id],
                )
                .await?;
                super::mfa::delete_factors(&tx, id).await?;
            }
            tx.commit().await?;
            Ok(existed)
        }
        .await
        .map_err(|fail: Fail| fail.into_store("delete_user"))
    }

    async fn set_email_verified(&self, id: &str) -> Result<bool, StoreError> {
        self.execute_one("UPDATE users SET email_verified = TRUE WHERE id = $1", &[&id])
            .await
            .map(|changed| changed > 0)
            .map_err(|fail| fail.into_store("set_email_verified"))
    }

    async fn set_disabled(&self, id: &str, disabled_at_ms: Option<i64>) -> Result<bool, StoreError> {
        self.execute_one(
            "UPDATE users SET disabled_at = $2 WHERE id = $1",
            &[&id, &disabled_at_ms],
        )
        .await
        .map(|changed| changed > 0)
        .map_err(|fail| fail.into_store("set_disabled"))
    }

    async fn list_users(&self, query: &UserQuery) -> Result<Vec<UserRecord>, StoreError> {
        let limit = i64::from(query.capped_limit());
        async {
            let conn = self.conn().await?;
            let statement = conn.prepare_cached(LIST_USERS).await?;
            conn.query(&statement, &[&query.after, &query.email_contains, &limit])
                .await?
                .iter()
                .map(user_from_row)
                .collect::<Result<Vec<_>, _>>()
        }
        .await
        .map_err(|fail: Fail| fail.into_store("list_users"))
    }
}

const SELECT_DEVICE: &str =
    "SELECT id, user_id, public_key, thumbprint, name, revoked, created_at, last_seen_at
     FROM devices WHERE id = $1";
const SELECT_DEVICE_FOR_UPDATE: &str =
    "SELECT id, user_id, public_key, thumbprint, name, revoked, created_at, last_seen_at
     FROM devices WHERE id = $1 FOR UPDATE";
// seq breaks ties in insertion order, as the in-memory store does.
const SELECT_DEVICES_OF_USER: &str =
    "SELECT id, user_id, public_key, thumbprint, name, revoked, created_at, last_seen_at
     FROM devices WHERE user_id = $1 ORDER BY created_at, seq";
const INSERT_DEVICE: &str =
    "INSERT INTO devices (id, user_id, public_key, thumbprint, name, revoked, created_at, last_seen_at)
     VALUES ($1, $2, $3, $4, $5, FALSE, $6, $6)
     ON CONFLICT (id) DO NOTHING";
// GREATEST: concurrent requests finishing out of order must not move it back.
const TOUCH_DEVICE: &str = "UPDATE devices SET last_seen_at = GREATEST(last_seen_at, $2) WHERE id = $1";

fn device_from_row(row: &Row) -> Result<DeviceRecord, Fail> {
    device_at(row, 0)
}

/// The device in the eight columns of `row` from `base` on (as [`SELECT_DEVICE`] has them).
pub(super) fn device_at(row: &Row, base: usize) -> Result<DeviceRecord, Fail> {
    let public_key: String = get(row, base + 2)?;
    let thumbprint: Option<String> = get(row, base + 3)?;
    let key = match (public_key.is_empty(), thumbprint) {
        (true, None) => None,
        (false, Some(thumbprint)) => Some(DeviceKey {
            jwk: public_key,
            thumbprint,
        }),
        // Kora's schema has no thumbprint: a copied keyed row needs one computed first.
        _ => {
            return Err(StoreError::Corrupt("a device's public_key and thumbprint disagree".into()).into());
        }
    };
    Ok(DeviceRecord {
        id: get(row, base)?,
        user_id: get(row, base + 1)?,
        key,
        name: get(row, base + 4)?,
        revoked: get(row, base + 5)?,
        created_at_ms: get(row, base + 6)?,
        last_seen_at_ms: get(row, base + 7)?,
    })
}

impl PostgresStore {
    async fn register(&self, device: NewDevice) -> Result<DeviceRecord, Fail> {
        let mut conn = self.conn().await?;
        let tx = conn.transaction().await?;
        let (jwk, thumbprint) = match &device.key {
            Some(key) => (key.jwk.as_str(), Some(key.thumbprint.as_str())),
            None => ("", None),
        };
        let select = tx.prepare_cached(SELECT_DEVICE_FOR_UPDATE).await?;
        // The second round runs only when a concurrent registration inserted the id between
        // this one's lookup and insert: it then sees (and locks) that row.
        for _ in 0..2 {
            let existing = tx
                .query_opt(&select, &[&device.id])
                .await?
                .as_ref()
                .map(device_from_row)
                .transpose()?;
            let record = match (plan_registration(existing.as_ref(), &device)?, existing) {
                (RegistrationPlan::Keep, Some(existing)) => existing,
                (RegistrationPlan::AttachKey, Some(mut existing)) => {
                    let update = tx
                        .prepare_cached(
                            "UPDATE devices SET public_key = $2, thumbprint = $3, name = $4 WHERE id = $1",
                        )
                        .await?;
                    tx.execute(&update, &[&device.id, &jwk, &thumbprint, &device.name])
                        .await?;
                    existing.key = device.key;
                    existing.name = device.name;
                    existing
                }
                (RegistrationPlan::Insert, _) => {
                    let insert = tx.prepare_cached(INSERT_DEVICE).await?;
                    let inserted = tx
                        .execute(
                            &insert,
                            &[
                                &device.id,
                                &device.user_id,
                                &jwk,
                                &thumbprint,
                                &device.name,
                                &device.now_ms,
                            ],
                        )
                        .await?;
                    if inserted == 0 {
                        continue;
                    }
                    device.into_record()
                }
                // plan_registration plans Keep and AttachKey only for an existing record.
                (plan, None) => {
                    return Err(
                        StoreError::backend("register_device", format!("{plan:?} without a record")).into(),
                    );
                }
            };
            tx.commit().await?;
            return Ok(record);
        }
        Err(StoreError::backend("register_device", "the device row changed during registration").into())
    }
}

#[async_trait]
impl DeviceStore for PostgresStore {
    async fn register_device(&self, device: NewDevice) -> Result<DeviceRecord, StoreError> {
        self.register(device)
            .await
            .map_err(|fail| fail.into_store("register_device"))
    }

    async fn find_device(&self, id: &str) -> Result<Option<DeviceRecord>, StoreError> {
        async {
            let conn = self.conn().await?;
            let statement = conn.prepare_cached(SELECT_DEVICE).await?;
            conn.query_opt(&statement, &[&id])
                .await?
                .as_ref()
                .map(device_from_row)
                .transpose()
        }
        .await
        .map_err(|fail: Fail| fail.into_store("find_device"))
    }

    async fn list_devices(&self, user_id: &str) -> Result<Vec<DeviceRecord>, StoreError> {
        async {
            let conn = self.conn().await?;
            let statement = conn.prepare_cached(SELECT_DEVICES_OF_USER).await?;
            conn.query(&statement, &[&user_id])
                .await?
                .iter()
                .map(device_from_row)
                .collect::<Result<Vec<_>, _>>()
        }
        .await
        .map_err(|fail: Fail| fail.into_store("list_devices"))
    }

    async fn revoke_device(&self, id: &str, user_id: &str) -> Result<bool, StoreError> {
        async {
            let conn = self.conn().await?;
            let statement = conn
                .prepare_cached("UPDATE devices SET revoked = TRUE WHERE id = $1 AND user_id = $2")
                .await?;
            Ok(conn.execute(&statement, &[&id, &user_id]).await? > 0)
        }
        .await
        .map_err(|fail: Fail| fail.into_store("revoke_device"))
    }

    async fn touch_device(&self, id: &str, now_ms: i64) -> Result<(), StoreError> {
        async {
            let conn = self.conn().await?;
            let statement = conn.prepare_cached(TOUCH_DEVICE).await?;
            conn.execute(&statement, &[&id, &now_ms]).await?;
            Ok(())
        }
        .await
        .map_err(|fail: Fail| fail.into_store("touch_device"))
    }

    async fn touch_devices(&self, seen: &[(String, i64)]) -> Result<(), StoreError> {
        // Rows are locked in id order, so two instances flushing overlapping sets cannot
        // deadlock on each other.
        let mut seen: Vec<&(String, i64)> = seen.iter().collect();
        seen.sort();
        async {
            let mut conn = self.conn().await?;
            let tx = conn.transaction().await?;
            let statement = tx.prepare_cached(TOUCH_DEVICE).await?;
            for (id, now_ms) in seen {
                tx.execute(&statement, &[id, now_ms]).await?;
            }
            tx.commit().await?;
            Ok(())
        }
        .await
        .map_err(|fail: Fail| fail.into_store("touch_devices"))
    }
}
