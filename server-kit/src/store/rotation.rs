//! How the SQL backends read a refresh token's rotation state and decide from it.

use super::{ChildPair, RotateOutcome};

/// A refresh token's rotation state as the backends read it: family revoked, rotated at
/// (ms), the recorded children (access jti, refresh jti, issued at, access and refresh
/// expiry) and whether the child was rotated in turn.
pub(crate) type RotationState = (
    bool,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<bool>,
);

/// The outcome when the parent cannot be rotated, or `None` when it can.
pub(crate) fn rotation_refusal(state: RotationState) -> Result<Option<RotateOutcome>, super::StoreError> {
    let (
        family_revoked,
        rotated_at_ms,
        access_jti,
        refresh_jti,
        issued_at,
        access_expires_at,
        refresh_expires_at,
        child_rotated,
    ) = state;
    if family_revoked {
        return Ok(Some(RotateOutcome::FamilyRevoked));
    }
    let Some(rotated_at_ms) = rotated_at_ms else {
        return Ok(None);
    };
    let (
        Some(access_jti),
        Some(refresh_jti),
        Some(issued_at),
        Some(access_expires_at),
        Some(refresh_expires_at),
    ) = (
        access_jti,
        refresh_jti,
        issued_at,
        access_expires_at,
        refresh_expires_at,
    )
    else {
        return Err(super::StoreError::Corrupt(
            "a rotated refresh token has no recorded children".into(),
        ));
    };
    Ok(Some(RotateOutcome::AlreadyRotated {
        rotated_at_ms,
        pair: ChildPair {
            access_jti,
            refresh_jti,
            issued_at,
            access_expires_at,
            refresh_expires_at,
        },
        child_rotated: child_rotated.unwrap_or(false),
    }))
}
