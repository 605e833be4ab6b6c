//! Every route of PROTOCOL section 2, declared once: its method, its path under the route
//! prefix, its request and response bodies, its success status and what authorizes it.
//!
//! The client core sends an [`Endpoint`] through one generic call (its transport) and one
//! generic authorized call (its session: a fresh token, the device proof for the URL
//! actually sent, the clock-corrected retry); the server kit builds its route table from
//! [`ROUTES`]. Adding a route is a declaration here, a handler, and a thin method on each
//! side; a device proof's URL cannot drift from the URL sent, because both come from
//! [`Endpoint::path`].
//!
//! ```
//! use holdfast_protocol::endpoint::{Endpoint, Me, Method, RevokeDevice};
//!
//! assert_eq!((Me::ROUTE.method, Me.path().as_ref()), (Method::Get, "/me"));
//! let revoke = RevokeDevice::new("phone 2").expect("a usable id");
//! assert_eq!(revoke.path(), "/device/phone%202");
//! assert_eq!(RevokeDevice::ROUTE.matches(Method::Delete, "/device/phone-2"), Some(Some("phone-2")));
//! ```

use std::borrow::Cow;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::wire::{
    AuthSession, ChallengeRequest, ChallengeResponse, DeleteAccountRequest, Device, DeviceRegisterRequest,
    DeviceRegistration, Empty, MailSent, MfaChanged, MfaCodeRequest, MfaEnableRequest, MfaEnrollment,
    MfaRecoverRequest, MfaStatus, PasswordChangeRequest, PasswordResetRequest, RecoveryCodes, RefreshRequest,
    ResetRequest, Revoked, Session, SignInRequest, SignOutRequest, SignUpRequest, Success, TokenPair, Tokens,
    User, UserBody, VerifyConfirmRequest, VerifyRequest, VerifyResponse, VerifySendRequest,
};

/// An HTTP method the routes use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// `GET` (no request body).
    Get,
    /// `POST` (a JSON body).
    Post,
    /// `DELETE` (no request body).
    Delete,
}

impl Method {
    /// The method as HTTP spells it (and as a device proof's `htm` names it).
    pub const fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Delete => "DELETE",
        }
    }

    /// The method named `text`, exactly as HTTP spells it.
    pub fn parse(text: &str) -> Option<Method> {
        match text {
            "GET" => Some(Method::Get),
            "POST" => Some(Method::Post),
            "DELETE" => Some(Method::Delete),
            _ => None,
        }
    }

    /// Whether a request of this method carries a JSON body unless its route says
    /// otherwise ([`Route::body`]).
    pub const fn has_body(self) -> bool {
        matches!(self, Method::Post)
    }
}

/// What authorizes a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Authorization {
    /// A token request (sign-up, sign-in, refresh, device verify): no bearer token; a
    /// device proof with no `ath` asks for tokens bound to that key (PROTOCOL 3), and a
    /// bound refresh token needs one.
    TokenRequest,
    /// `Authorization: Bearer` with an access token, and a device proof for this method
    /// and URL when the token is bound to a device key (PROTOCOL 3 and 6.1).
    Bearer,
    /// As [`Authorization::Bearer`] when a token is sent; without one, nothing (a device
    /// challenge for a silent re-login, PROTOCOL 6.4).
    OptionalBearer,
    /// Nothing: the body carries what authorizes it (a reset or verification token), or
    /// nothing needs authorizing (a reset request).
    Public,
}

/// A route: method, path pattern (a `{id}` segment is a parameter), authorization and
/// success status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// The method.
    pub method: Method,
    /// The path under the route prefix, e.g. `/device/{id}`.
    pub pattern: &'static str,
    /// What authorizes it.
    pub authorization: Authorization,
    /// The status of a success (200, or 201 for what creates something).
    pub status: u16,
    /// Whether the request carries a JSON body (`POST`, and `DELETE /me`).
    pub body: bool,
}

impl Route {
    /// Whether `method` and `path` (under the prefix) are this route: `Some` with the
    /// parameter's raw segment, if the pattern has one. A parameter is one non-empty path
    /// segment.
    pub fn matches<'p>(&self, method: Method, path: &'p str) -> Option<Option<&'p str>> {
        if method != self.method {
            return None;
        }
        match self.pattern.split_once("{id}") {
            None => (path == self.pattern).then_some(None),
            Some((before, after)) => {
                let segment = path.strip_prefix(before)?.strip_suffix(after)?;
                (!segment.is_empty() && !segment.contains('/')).then_some(Some(segment))
            }
        }
    }
}

/// A declared route with its bodies.
pub trait Endpoint {
    /// What the client sends ([`NoBody`] for `GET` and `DELETE`).
    type Request: Serialize + DeserializeOwned;
    /// The `data` of a success.
    type Response: Serialize + DeserializeOwned;
    /// The route.
    const ROUTE: Route;

    /// The path of this call under the route prefix: the pattern, its parameter filled in.
    fn path(&self) -> Cow<'_, str> {
        Cow::Borrowed(Self::ROUTE.pattern)
    }
}

/// The body of a request that has none.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoBody;

macro_rules! endpoint {
    ($(#[$doc:meta])* $name:ident, $method:ident $pattern:literal, $auth:ident, $status:literal, $request:ty => $response:ty) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        pub struct $name;

        impl Endpoint for $name {
            type Request = $request;
            type Response = $response;
            const ROUTE: Route = Route {
                method: Method::$method,
                pattern: $pattern,
                authorization: Authorization::$auth,
                status: $status,
                body: Method::$method.has_body(),
            };
        }
    };
}

endpoint!(
    /// `POST /signup`: a new account and its first session.
    SignUp, Post "/signup", TokenRequest, 201, SignUpRequest => AuthSession
);
endpoint!(
    /// `POST /signin`: a new session with a password.
    SignIn, Post "/signin", TokenRequest, 200, SignInRequest => AuthSession
);
endpoint!(
    /// `POST /refresh`: the refresh token for a new pair (both rotate).
    Refresh, Post "/refresh", TokenRequest, 200, RefreshRequest => TokenPair
);
endpoint!(
    /// `POST /signout`: ends the session (and the refresh token's, when given).
    SignOut, Post "/signout", Bearer, 200, SignOutRequest => Success
);
endpoint!(
    /// `GET /me`: the signed-in user.
    Me, Get "/me", Bearer, 200, NoBody => User
);
endpoint!(
    /// `GET /devices`: the user's devices, revoked ones included.
    Devices, Get "/devices", Bearer, 200, NoBody => Vec<Device>
);
endpoint!(
    /// `POST /device/register`: registers this device's public key.
    RegisterDevice, Post "/device/register", Bearer, 201, DeviceRegisterRequest => DeviceRegistration
);
endpoint!(
    /// `POST /device/challenge`: a challenge for the device key to sign.
    Challenge, Post "/device/challenge", OptionalBearer, 200, ChallengeRequest => ChallengeResponse
);
endpoint!(
    /// `POST /device/verify`: a signed challenge for fresh tokens (silent device re-login).
    Verify, Post "/device/verify", TokenRequest, 200, VerifyRequest => VerifyResponse
);

endpoint!(
    /// `GET /sessions`: the user's live sessions, newest first (PROTOCOL 8).
    Sessions, Get "/sessions", Bearer, 200, NoBody => Vec<Session>
);
endpoint!(
    /// `POST /sessions/revoke-others`: ends every session of the user but the caller's.
    RevokeOtherSessions, Post "/sessions/revoke-others", Bearer, 200, Empty => Revoked
);
endpoint!(
    /// `POST /signout-all`: ends every session of the user, the caller's included.
    SignOutAll, Post "/signout-all", Bearer, 200, Empty => Revoked
);
endpoint!(
    /// `POST /password/change`: a new password; the caller's session gets a fresh pair and
    /// every other session ends.
    ChangePassword, Post "/password/change", Bearer, 200, PasswordChangeRequest => Tokens
);
endpoint!(
    /// `POST /password/reset-request`: mails a reset link when the account exists (the
    /// answer is the same either way).
    RequestPasswordReset, Post "/password/reset-request", Public, 200, ResetRequest => MailSent
);
endpoint!(
    /// `POST /password/reset`: a reset token for a new password; every session ends.
    ResetPassword, Post "/password/reset", Public, 200, PasswordResetRequest => Success
);
endpoint!(
    /// `POST /verify/send`: mails a verification link for the account's email.
    SendVerification, Post "/verify/send", Bearer, 200, VerifySendRequest => MailSent
);
endpoint!(
    /// `POST /verify/resend`: mails the verification link again.
    ResendVerification, Post "/verify/resend", Bearer, 200, Empty => MailSent
);
endpoint!(
    /// `POST /verify/confirm`: a verification token marks the email verified.
    ConfirmEmail, Post "/verify/confirm", Public, 200, VerifyConfirmRequest => UserBody
);

endpoint!(
    /// `POST /mfa/enable`: starts enrolment in a TOTP second factor (PROTOCOL 9); MFA is on
    /// only once `/mfa/verify-setup` confirms a code.
    MfaEnable, Post "/mfa/enable", Bearer, 200, MfaEnableRequest => MfaEnrollment
);
endpoint!(
    /// `POST /mfa/verify-setup`: a code from the new authenticator turns MFA on.
    MfaVerifySetup, Post "/mfa/verify-setup", Bearer, 200, MfaCodeRequest => MfaChanged
);
endpoint!(
    /// `GET /mfa/status`: whether MFA is on, and how many recovery codes are left.
    GetMfaStatus, Get "/mfa/status", Bearer, 200, NoBody => MfaStatus
);
endpoint!(
    /// `POST /mfa/regenerate-codes`: new recovery codes for a TOTP code; the old ones die.
    MfaRegenerateCodes, Post "/mfa/regenerate-codes", Bearer, 200, MfaCodeRequest => RecoveryCodes
);
endpoint!(
    /// `POST /mfa/disable`: turns MFA off, with a TOTP or a recovery code.
    MfaDisable, Post "/mfa/disable", Bearer, 200, MfaCodeRequest => MfaChanged
);
endpoint!(
    /// `POST /mfa/verify`: a pending session's TOTP code for `aal: 2` tokens.
    MfaVerify, Post "/mfa/verify", Bearer, 200, MfaCodeRequest => Tokens
);
endpoint!(
    /// `POST /mfa/recover`: a pending session's recovery code for `aal: 2` tokens.
    MfaRecover, Post "/mfa/recover", Bearer, 200, MfaRecoverRequest => Tokens
);
endpoint!(
    /// `POST /mfa/step-up`: a code (TOTP or recovery) renews the session's `auth_time` for
    /// the sensitive routes.
    MfaStepUp, Post "/mfa/step-up", Bearer, 200, MfaCodeRequest => Tokens
);

/// `DELETE /me`: deletes the account (its sessions, devices and data), with its password.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeleteAccount;

impl Endpoint for DeleteAccount {
    type Request = DeleteAccountRequest;
    type Response = Success;
    const ROUTE: Route = Route {
        method: Method::Delete,
        pattern: "/me",
        authorization: Authorization::Bearer,
        status: 200,
        body: true,
    };
}

/// `id` percent-encoded as one path segment; `None` for an id that cannot be one (empty,
/// `.` or `..`, which URL parsers resolve as directories).
fn path_segment(id: &str) -> Option<String> {
    if matches!(id, "" | "." | "..") {
        return None;
    }
    let mut segment = String::with_capacity(id.len());
    crate::percent::encode_into(id, &mut segment);
    Some(segment)
}

/// A route with one `{id}` segment: `new` percent-encodes the id (see [`path_segment`]).
macro_rules! endpoint_with_id {
    ($(#[$doc:meta])* $name:ident, $method:ident $prefix:literal, $response:ty) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name {
            segment: String,
        }

        impl $name {
            /// The call for `id`, percent-encoded as a path segment; `None` for an id that
            /// cannot be one (empty, `.` or `..`).
            pub fn new(id: &str) -> Option<$name> {
                path_segment(id).map(|segment| $name { segment })
            }
        }

        impl Endpoint for $name {
            type Request = NoBody;
            type Response = $response;
            const ROUTE: Route = Route {
                method: Method::$method,
                pattern: concat!($prefix, "{id}"),
                authorization: Authorization::Bearer,
                status: 200,
                body: false,
            };

            fn path(&self) -> Cow<'_, str> {
                Cow::Owned(format!(concat!($prefix, "{}"), self.segment))
            }
        }
    };
}

endpoint_with_id!(
    /// `DELETE /device/{id}`: revokes one of the user's devices.
    RevokeDevice, Delete "/device/", Success
);
endpoint_with_id!(
    /// `DELETE /sessions/{id}`: ends one of the user's sessions.
    RevokeSession, Delete "/sessions/", Success
);

/// Every route, for a server's route table.
pub const ROUTES: [Route; 29] = [
    SignUp::ROUTE,
    SignIn::ROUTE,
    Refresh::ROUTE,
    SignOut::ROUTE,
    Me::ROUTE,
    Devices::ROUTE,
    RegisterDevice::ROUTE,
    Challenge::ROUTE,
    Verify::ROUTE,
    RevokeDevice::ROUTE,
    Sessions::ROUTE,
    RevokeSession::ROUTE,
    RevokeOtherSessions::ROUTE,
    SignOutAll::ROUTE,
    ChangePassword::ROUTE,
    RequestPasswordReset::ROUTE,
    ResetPassword::ROUTE,
    SendVerification::ROUTE,
    ResendVerification::ROUTE,
    ConfirmEmail::ROUTE,
    DeleteAccount::ROUTE,
    MfaEnable::ROUTE,
    MfaVerifySetup::ROUTE,
    GetMfaStatus::ROUTE,
    MfaRegenerateCodes::ROUTE,
    MfaDisable::ROUTE,
    MfaVerify::ROUTE,
    MfaRecover::ROUTE,
    MfaStepUp::ROUTE,
];

#[cfg(test)]
#[path = "endpoint_tests.rs"]
mod tests;
