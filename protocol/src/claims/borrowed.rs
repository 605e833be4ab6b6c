//! [`ClaimsRef`]: the claims of a token as a view into its decoded payload, for a verifier
//! that only reads them.
//!
//! Parsing into [`Claims`] allocates a string per member (`jti`, `sub`, `dev`, `fam`,
//! `cnf.jkt`, each `amr` method), which is most of what HS256 verification costs after the
//! MAC. A `ClaimsRef` borrows those strings from the payload bytes instead; a member
//! written with JSON escapes (never by Holdfast or Kora, but legal) is unescaped into an
//! owned string, so both forms accept exactly the same payloads. [`ClaimsRef::into_owned`]
//! gives the [`Claims`] for a caller that keeps them.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

use super::{Claims, Cnf, MfaClaim, TokenType};

/// The claims of a token, borrowing their strings from the payload they were parsed from.
///
/// The same members, types and rules as [`Claims`] (unknown members ignored, a repeated
/// member refused); `ext`, the application's claims, is parsed owned, as it is absent
/// unless an application adds some.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ClaimsRef<'a> {
    /// Unique token id (UUID v4).
    #[serde(borrow)]
    pub jti: Cow<'a, str>,
    /// User id.
    #[serde(borrow)]
    pub sub: Cow<'a, str>,
    /// Device id.
    #[serde(borrow)]
    pub dev: Cow<'a, str>,
    /// Token type.
    #[serde(rename = "type")]
    pub token_type: TokenType,
    /// Issued at, seconds since the epoch.
    pub iat: i64,
    /// Expires at, seconds since the epoch.
    pub exp: i64,
    /// Device credential only: thumbprint of the device key.
    #[serde(borrow, default, deserialize_with = "optional_str")]
    pub dpk: Option<Cow<'a, str>>,
    /// Device credential only: the time by which the device must check in (= `exp`).
    #[serde(rename = "mustCheckinBy", default)]
    pub must_checkin_by: Option<i64>,
    /// Holdfast: the token family (one sign-in session).
    #[serde(borrow, default, deserialize_with = "optional_str")]
    pub fam: Option<Cow<'a, str>>,
    /// Holdfast: the thumbprint of the device key the token is bound to (`cnf.jkt`).
    #[serde(borrow, default)]
    pub cnf: Option<CnfRef<'a>>,
    /// Holdfast: authentication assurance level (PROTOCOL 9).
    #[serde(default)]
    pub aal: Option<u8>,
    /// Holdfast: the authentication methods of the session.
    #[serde(borrow, default, deserialize_with = "optional_strs")]
    pub amr: Option<Vec<Cow<'a, str>>>,
    /// Holdfast: when the session's user last proved who they are, seconds.
    #[serde(default)]
    pub auth_time: Option<i64>,
    /// Holdfast: `pending` while the session still owes its second factor.
    #[serde(default)]
    pub mfa: Option<MfaClaim>,
    /// Holdfast: the application's own claims.
    #[serde(default)]
    pub ext: Option<serde_json::Map<String, serde_json::Value>>,
}

/// [`Cnf`] borrowing its thumbprint.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CnfRef<'a> {
    /// RFC 7638 thumbprint of the device's public key.
    #[serde(borrow)]
    pub jkt: Cow<'a, str>,
}

impl<'a> ClaimsRef<'a> {
    /// Parses a decoded payload (JSON bytes); `None` when it is not UTF-8 JSON of the
    /// claims' shape.
    pub fn from_json(json: &'a [u8]) -> Option<ClaimsRef<'a>> {
        // One UTF-8 check of the whole payload, then parsing a `str`, is cheaper than
        // checking each string member as it is borrowed (what parsing bytes does).
        let json = std::str::from_utf8(json).ok()?;
        serde_json::from_str(json).ok()
    }

    /// Whether the session still owes its second factor (`mfa: "pending"`).
    pub fn mfa_pending(&self) -> bool {
        self.mfa == Some(MfaClaim::Pending)
    }

    /// The assurance level, 1 when the token says none (a Kora token).
    pub fn assurance(&self) -> u8 {
        self.aal.unwrap_or(1)
    }

    /// The owned claims.
    pub fn into_owned(self) -> Claims {
        Claims {
            jti: self.jti.into_owned(),
            sub: self.sub.into_owned(),
            dev: self.dev.into_owned(),
            token_type: self.token_type,
            iat: self.iat,
            exp: self.exp,
            dpk: self.dpk.map(Cow::into_owned),
            must_checkin_by: self.must_checkin_by,
            fam: self.fam.map(Cow::into_owned),
            cnf: self.cnf.map(|cnf| Cnf {
                jkt: cnf.jkt.into_owned(),
            }),
            aal: self.aal,
            amr: self.amr.map(|amr| amr.into_iter().map(Cow::into_owned).collect()),
            auth_time: self.auth_time,
            mfa: self.mfa,
            ext: self.ext,
        }
    }
}

impl From<ClaimsRef<'_>> for Claims {
    fn from(claims: ClaimsRef<'_>) -> Claims {
        claims.into_owned()
    }
}

/// A JSON string, borrowed where it has no escapes. `Cow<str>` alone borrows only as a
/// direct `#[serde(borrow)]` field, not inside an `Option` or a `Vec`.
struct BorrowedStr<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for BorrowedStr<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(BorrowedStrVisitor)
    }
}

struct BorrowedStrVisitor;

impl<'de> Visitor<'de> for BorrowedStrVisitor {
    type Value = BorrowedStr<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E: de::Error>(self, value: &'de str) -> Result<Self::Value, E> {
        Ok(BorrowedStr(Cow::Borrowed(value)))
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Self::Value, E> {
        Ok(BorrowedStr(Cow::Owned(value.to_owned())))
    }

    fn visit_string<E: de::Error>(self, value: String) -> Result<Self::Value, E> {
        Ok(BorrowedStr(Cow::Owned(value)))
    }
}

fn optional_str<'de: 'a, 'a, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Cow<'a, str>>, D::Error> {
    Ok(Option::<BorrowedStr<'a>>::deserialize(deserializer)?.map(|value| value.0))
}

fn optional_strs<'de: 'a, 'a, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Vec<Cow<'a, str>>>, D::Error> {
    let values = Option::<Vec<BorrowedStr<'a>>>::deserialize(deserializer)?;
    Ok(values.map(|values| values.into_iter().map(|value| value.0).collect()))
}

#[cfg(test)]
#[path = "borrowed_tests.rs"]
mod tests;
