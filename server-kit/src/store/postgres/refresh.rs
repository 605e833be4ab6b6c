//! A refresh's checks and rotation in one transaction (see
//! [`crate::store::TokenStore::rotate_checked`]): four round trips on one pooled connection
//! instead of nine on three (a session read, the standing read, then the rotation's
//! `BEGIN`, lock, state, update, insert, touch and `COMMIT`).
//!
//! 1. `BEGIN`;
//! 2. pipelined: the parent's row lock, then the session, the standing and the rotation
//!    state, each read after the lock (READ COMMITTED: every statement sees what the
//!    rotation that held the lock committed);
//! 3. decided here in the order of the separate checks (session, standing, rotation), the
//!    rotation's writes in one statement;
//! 4. `COMMIT`.

use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::sessions::{SELECT_SESSION, session_from_row};
use super::standing::{SELECT_STANDING, standing_from_row};
use super::tokens::{IS_REVOKED, LOCK_PARENT, SELECT_ROTATION_STATE, rotation_state};
use super::{Fail, PostgresStore, get};
use crate::store::rotation::rotation_refusal;
use crate::store::{CheckedRefresh, RefreshVerdict, RotateOutcome, StoreError};

/// The rotation's writes: the parent marked rotated and, only if it was, the child's row
/// inserted and the session's last use moved forward (never back). Returns how many
/// parents were marked: 1, or 0 if it was rotated already (cannot happen under the lock).
const ROTATE: &str = "WITH marked AS (
        UPDATE refresh_tokens SET rotated_at_ms = $2, child_access_jti = $3,
            child_refresh_jti = $4, child_issued_at = $5, child_access_expires_at = $6,
            child_refresh_expires_at = $7
        WHERE jti = $1 AND rotated_at_ms IS NULL
        RETURNING jti
     ), child AS (
        INSERT INTO refresh_tokens (jti, family, user_id, device_id, issued_at, expires_at, jkt)
        SELECT $8::TEXT, $9::TEXT, $10::TEXT, $11::TEXT, $12::BIGINT, $13::BIGINT, $14::TEXT
        FROM marked
     ), touched AS (
        UPDATE sessions SET last_used_at_ms = GREATEST(last_used_at_ms, $2)
        WHERE id = $9::TEXT AND EXISTS (SELECT 1 FROM marked)
     )
     SELECT count(*) FROM marked";

/// What step 2 read.
struct Reads {
    locked: bool,
    session: Option<Row>,
    standing: Row,
    state: Option<Row>,
}

impl PostgresStore {
    pub(super) async fn rotate_checked_at_once(
        &self,
        check: &CheckedRefresh,
    ) -> Result<RefreshVerdict, Fail> {
        let mut conn = self.conn().await?;
        let tx = conn.transaction().await?;
        let (lock, session, standing, state) = tokio::try_join!(
            tx.prepare_cached(LOCK_PARENT),
            tx.prepare_cached(SELECT_SESSION),
            tx.prepare_cached(SELECT_STANDING),
            tx.prepare_cached(SELECT_ROTATION_STATE),
        )?;
        let family = Some(check.family.as_str());
        let parent: [&(dyn ToSql + Sync); 1] = [&check.parent_jti];
        let of_session: [&(dyn ToSql + Sync); 1] = [&check.family];
        let of_standing: [&(dyn ToSql + Sync); 4] =
            [&check.user_id, &check.device_id, &check.parent_jti, &family];
        // One round trip: the lock is first on the wire, so every read after it waits for
        // it and then takes its own snapshot.
        let (locked, session, standing, state) = tokio::try_join!(
            tx.query_opt(&lock, &parent),
            tx.query_opt(&session, &of_session),
            tx.query_one(&standing, &of_standing),
            tx.query_opt(&state, &parent),
        )?;
        let reads = Reads {
            locked: locked.is_some(),
            session,
            standing,
            state,
        };
        let verdict = match decide(check, reads)? {
            Decision::Verdict(verdict) => verdict,
            Decision::ChildRevoked(outcome, child_jti) => {
                let statement = tx.prepare_cached(IS_REVOKED).await?;
                let no_family: Option<&str> = None;
                let row = tx.query_one(&statement, &[&child_jti, &no_family]).await?;
                RefreshVerdict::Rotation {
                    outcome,
                    child_revoked: get(&row, 0)?,
                }
            }
            Decision::Rotate => {
                let statement = tx.prepare_cached(ROTATE).await?;
                let (pair, child) = (&check.pair, &check.child);
                let row = tx
                    .query_one(
                        &statement,
                        &[
                            &check.parent_jti,
                            &check.now_ms,
                            &pair.access_jti,
                            &pair.refresh_jti,
                            &pair.issued_at,
                            &pair.access_expires_at,
                            &pair.refresh_expires_at,
                            &child.jti,
                            &child.family,
                            &child.user_id,
                            &child.device_id,
                            &child.issued_at,
                            &child.expires_at,
                            &child.jkt,
                        ],
                    )
                    .await?;
                // Cannot happen while the row is locked; refuse rather than fork the session.
                if get::<i64>(&row, 0)? != 1 {
                    return Err(
                        StoreError::backend("rotate_checked", "the parent changed while locked").into(),
                    );
                }
                tx.commit().await?;
                return Ok(RefreshVerdict::Rotation {
                    outcome: RotateOutcome::Rotated,
                    child_revoked: false,
                });
            }
        };
        // Nothing was written: the transaction ends with the connection's return.
        tx.rollback().await?;
        Ok(verdict)
    }
}

enum Decision {
    Verdict(RefreshVerdict),
    /// Rotated before: whether its child (this jti) was revoked since decides.
    ChildRevoked(RotateOutcome, String),
    Rotate,
}

/// The checks in the order the route asks them one by one: the session, the standing, then
/// the rotation.
fn decide(check: &CheckedRefresh, reads: Reads) -> Result<Decision, Fail> {
    // A family without a session record passes: the rotation decides.
    if let Some(session) = reads.session.as_ref().map(session_from_row).transpose()? {
        if let Some(ending) = session.ended {
            return Ok(Decision::Verdict(RefreshVerdict::SessionEnded(ending.reason)));
        }
        if check
            .limits
            .expired(session.created_at_ms, session.last_used_at_ms, check.now_ms)
        {
            return Ok(Decision::Verdict(RefreshVerdict::SessionExpired));
        }
    }
    let standing = standing_from_row(&reads.standing)?;
    if !standing.admits(&check.user_id) {
        return Ok(Decision::Verdict(RefreshVerdict::Refused(Box::new(standing))));
    }
    let (true, Some(state)) = (reads.locked, reads.state) else {
        return Ok(Decision::Verdict(RefreshVerdict::Rotation {
            outcome: RotateOutcome::Unknown,
            child_revoked: false,
        }));
    };
    Ok(match rotation_refusal(rotation_state(&state)?)? {
        None => Decision::Rotate,
        Some(RotateOutcome::AlreadyRotated {
            rotated_at_ms,
            pair,
            child_rotated,
        }) => {
            let child_jti = pair.refresh_jti.clone();
            let outcome = RotateOutcome::AlreadyRotated {
                rotated_at_ms,
                pair,
                child_rotated,
            };
            Decision::ChildRevoked(outcome, child_jti)
        }
        Some(outcome) => Decision::Verdict(RefreshVerdict::Rotation {
            outcome,
            child_revoked: false,
        }),
    })
}
