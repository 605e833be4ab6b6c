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
    AuthSession, ChallengeRequest, ChallengeResponse, Device, DeviceRegisterRequest, DeviceRegistration,
    RefreshRequest, SignInRequest, SignOutRequest, SignUpRequest, Success, TokenPair, User, VerifyRequest,
    VerifyResponse,
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

    /// Whether a request of this method carries a JSON body.
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

/// `DELETE /device/{id}`: revokes one of the user's devices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokeDevice {
    segment: String,
}

impl RevokeDevice {
    /// The call for `device_id`, percent-encoded as a path segment; `None` for an id that
    /// cannot be one (empty, `.` or `..`, which URL parsers resolve as directories).
    pub fn new(device_id: &str) -> Option<RevokeDevice> {
        if matches!(device_id, "" | "." | "..") {
            return None;
        }
        const HEX: &[u8; 16] = b"0123456789ABCDEF";
        let mut segment = String::with_capacity(device_id.len());
        for byte in device_id.bytes() {
            if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
                segment.push(char::from(byte));
            } else {
                segment.push('%');
                segment.push(char::from(HEX[usize::from(byte >> 4)]));
                segment.push(char::from(HEX[usize::from(byte & 0x0f)]));
            }
        }
        Some(RevokeDevice { segment })
    }
}

impl Endpoint for RevokeDevice {
    type Request = NoBody;
    type Response = Success;
    const ROUTE: Route = Route {
        method: Method::Delete,
        pattern: "/device/{id}",
        authorization: Authorization::Bearer,
        status: 200,
    };

    fn path(&self) -> Cow<'_, str> {
        Cow::Owned(format!("/device/{}", self.segment))
    }
}

/// Every route, for a server's route table.
pub const ROUTES: [Route; 10] = [
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
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_match_their_own_paths_only() {
        for route in ROUTES {
            let path = route.pattern.replace("{id}", "phone");
            assert!(route.matches(route.method, &path).is_some(), "{route:?}");
            let others = ROUTES
                .iter()
                .filter(|other| other.matches(route.method, &path).is_some())
                .count();
            assert_eq!(others, 1, "exactly one route is {} {path}", route.method.as_str());
        }
        let revoke = RevokeDevice::ROUTE;
        assert_eq!(revoke.matches(Method::Delete, "/device/"), None);
        assert_eq!(revoke.matches(Method::Delete, "/device/a/b"), None);
        assert_eq!(revoke.matches(Method::Get, "/device/a"), None);
        assert_eq!(Me::ROUTE.matches(Method::Get, "/me/"), None);
    }

    #[test]
    fn device_ids_become_one_path_segment() {
        assert_eq!(
            RevokeDevice::new("a/b?c").expect("id").path(),
            "/device/a%2Fb%3Fc"
        );
        assert_eq!(RevokeDevice::new("é").expect("id").path(), "/device/%C3%A9");
        assert_eq!(
            RevokeDevice::new("dev-1.x_~").expect("id").path(),
            "/device/dev-1.x_~"
        );
        for unusable in ["", ".", ".."] {
            assert_eq!(RevokeDevice::new(unusable), None);
        }
    }

    #[test]
    fn methods_round_trip() {
        for method in [Method::Get, Method::Post, Method::Delete] {
            assert_eq!(Method::parse(method.as_str()), Some(method));
        }
        assert_eq!(Method::parse("get"), None);
    }
}
