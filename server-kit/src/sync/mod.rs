//! A WebSocket sync endpoint behind the [sync gate](crate::gate): `GET /sync`.
//!
//! It serves a per-user key/value collection ([`SharedCollection`]) to every device of the
//! user, and closes a connection the moment the gate says its device or session was
//! revoked (PROTOCOL 6.5).
//!
//! # Handshake
//!
//! - A native client sends `Authorization: Bearer <access token>` and, from a Holdfast
//!   client, `DPoP: <device proof>` on the upgrade request. The gate decides before the
//!   upgrade: a refusal is an ordinary HTTP error (`{"error", "code"}` with the code's
//!   status), so the client sees why.
//! - A Kora-style client upgrades without credentials and sends
//!   `{"type":"auth","authToken":"…","proof":"…"?}` as its first message within
//!   [`SyncOptions::auth_timeout`]; a refusal is an `error` message and then a close
//!   frame with code [`AUTH_REFUSED`] (4401) and the code as the reason (`TOKEN_INVALID`).
//!
//! A proof names `GET` and the sync URL: the configuration's
//! [`public_url`](crate::config::ServerConfig::public_url) followed by the path the client
//! sent (the mount prefix included, under `Router::nest`), or `http://` + the `Host`
//! header + that path (no query).
//!
//! # Messages (JSON text frames)
//!
//! Server to client: `{"type":"welcome","userId","deviceId"}` once admitted, then the
//! user's collection in pages, `{"type":"snapshot","items":[{key, value, version, deviceId,
//! updatedAt}…],"complete":false}` and last `…,"complete":true}` (by key; at most
//! [`PAGE_MAX_ITEMS`] items and about [`PAGE_BUDGET_BYTES`] per page), then an
//! `{"type":"item", key, value, version, deviceId, updatedAt}` for every write of the user's
//! items by any of their connections (the writer's own included, as its acknowledgement),
//! and `{"type":"error","code","message"}` for a refused message (the connection stays
//! open). A connection too slow to keep up gets a fresh snapshot; one that stops reading
//! is dropped after [`SyncOptions::send_timeout`].
//!
//! # Quotas
//!
//! Per user: [`Quota`] on the collection (10,000 items and 64 MiB of keys and values by
//! default, [`SharedCollection::set_quota`]) and [`SyncOptions::max_connections_per_user`]
//! (16 per instance). A put over the quota gets
//! `{"type":"error","code":"QUOTA_EXCEEDED"}` (the connection stays open; overwriting with
//! a smaller value or another write that frees bytes still works); a connection over the
//! cap is refused with `QUOTA_EXCEEDED` (HTTP 429, or 4401 after a first-message
//! handshake). On memory: a connection holds one snapshot page at a time and at most one
//! unsent message, and a user's pending changes are one bounded broadcast
//! shared by their connections, so a user's connections cost the server little whatever
//! their collection's size.
//!
//! A connection gets every write of its user in commit order (across keys, so a key's
//! versions only increase), none twice, and after a snapshot only the writes it does not
//! hold.
//!
//! Client to server: `{"type":"put","key":"<1 to 128 characters>","value":<JSON of at most
//! 16 KiB>}`, and `{"type":"reauth","authToken":"…","proof":"…"?}` to renew the connection
//! in place (below). Binary messages are refused with an error message; a message over 64 KiB
//! closes the connection with 1009.
//!
//! # Renewal (PROTOCOL 5)
//!
//! [`SyncOptions::reauth_notice`] (60 s) before its access token expires, a connection is
//! sent `{"type":"reauth-required","expiresAt":<ms>}`. The client answers with `reauth`
//! and a newer access token of the same user and device (and a proof for the sync URL when
//! it is bound); the gate checks it exactly as at admission
//! ([`SyncGate::renew`](crate::gate::SyncGate::renew)) and the connection then lives by the
//! new token, without reconnecting. A refused renewal closes the connection: 4001-4004 for
//! a revoked device, ended session, deleted account or expired token, 4401 with the code
//! as the reason otherwise. When the stores cannot answer, the client gets an `error`
//! message (`SERVICE_UNAVAILABLE`) and the connection keeps its token.
//!
//! # Close codes
//!
//! 4001 `DEVICE_REVOKED`, 4002 `TOKEN_REVOKED` (signed out, here or everywhere, or refresh
//! token reuse), 4003 `USER_NOT_FOUND` (account deleted), 4004 `TOKEN_EXPIRED` (reconnect
//! with a fresh token): see [`Closed`](crate::gate::Closed). 4401 for a refused Kora-style
//! handshake; 1009 for an oversized message; 1011 when the collection cannot be read.
//!
//! # Several instances
//!
//! With [`SharedCollection::postgres`] on each instance (the same database schema), an item
//! written through any instance is stored in PostgreSQL and pushed to the user's
//! connections on every instance through `LISTEN`/`NOTIFY`: no Redis needed, and any load
//! balancer in front. An instance whose `LISTEN` connection drops reopens it and sends
//! every connection a fresh snapshot, since it may have missed writes meanwhile: a
//! connection is at most that outage (plus up to 2 s of back-off) behind, and a `LISTEN`
//! connection that died silently is found within 10 s by a heartbeat; see
//! [`SharedCollection::postgres`] and [`PostgresSyncItems`](crate::store::postgres::PostgresSyncItems)
//! for the details.
//!
//! # Stores
//!
//! The collection keeps its items in a [`SyncItemStore`]: SQLite
//! ([`SharedCollection::open`], [`SharedCollection::memory`]), PostgreSQL
//! ([`SharedCollection::postgres`]), or any store given to
//! [`SharedCollection::with_store`].

mod collection;
mod connection;
mod messages;
mod subscription;

/// The message parser, for the fuzz targets.
#[cfg(fuzzing)]
pub(crate) fn fuzz_parse(text: &str) -> bool {
    messages::parse(text).is_ok()
}

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ws::{WebSocketUpgrade, rejection::WebSocketUpgradeRejection};
use axum::extract::{OriginalUri, State};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use http::{HeaderMap, Method, StatusCode};

pub use crate::store::sync_items::{
    CollectionError, Item, MAX_KEY_CHARS, MAX_VALUE_BYTES, PAGE_BUDGET_BYTES, PAGE_MAX_ITEMS, Quota,
    SnapshotPage, SyncItemStore,
};
pub use collection::SharedCollection;
pub use subscription::{Subscription, Update};

use crate::exchange::{ApiError, bearer_token, request_url};
use crate::gate::{Handshake, SyncGate};
use crate::server::GoingAway;

/// Where the endpoint is mounted.
pub const SYNC_PATH: &str = "/sync";
/// Largest message a client may send (bytes); a larger one closes the connection with 1009.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// Close code of a refused Kora-style (first message) handshake.
pub const AUTH_REFUSED: u16 = 4401;

/// How the endpoint behaves.
#[derive(Debug, Clone)]
pub struct SyncOptions {
    /// How long a client that upgraded without credentials has to send its auth message.
    pub auth_timeout: Duration,
    /// How often the server pings an open connection (keeps proxies and NATs from dropping
    /// it, and finds dead peers).
    pub heartbeat: Duration,
    /// How long before its access token expires a connection is sent
    /// `{"type":"reauth-required","expiresAt":<ms>}` (PROTOCOL 5 asks for at least 60 s; a
    /// connection admitted with less left is told at once). A token that lives less than
    /// twice this long is renewed halfway through its life instead. Default 60 s.
    pub reauth_notice: Duration,
    /// Most connections one user may have open on this instance (all their devices and
    /// tabs); one more is refused with `QUOTA_EXCEEDED` (HTTP 429 before the upgrade, or
    /// 4401 after a first-message handshake). Default 16.
    pub max_connections_per_user: usize,
    /// How long one message may take to reach a client's socket; a client that stops
    /// reading is dropped after this, so it holds at most one message of the server's
    /// memory meanwhile. Default 30 s.
    pub send_timeout: Duration,
    /// Tells open connections the server is stopping: each is closed with 1001 (going
    /// away), so clients reconnect at once, to another instance behind a load balancer.
    /// HTTP servers do not wait for upgraded connections when they shut down gracefully;
    /// trigger this first and wait with [`GoingAway::all_closed`].
    pub going_away: GoingAway,
}

impl Default for SyncOptions {
    fn default() -> Self {
        SyncOptions {
            auth_timeout: Duration::from_secs(10),
            heartbeat: Duration::from_secs(30),
            reauth_notice: Duration::from_secs(60),
            max_connections_per_user: 16,
            send_timeout: Duration::from_secs(30),
            going_away: GoingAway::default(),
        }
    }
}

/// What every connection shares.
#[derive(Clone)]
struct Endpoint {
    gate: SyncGate,
    collection: SharedCollection,
    options: Arc<SyncOptions>,
    connections: Arc<UserConnections>,
}

/// The open connections of each user on this instance, against
/// [`SyncOptions::max_connections_per_user`].
#[derive(Debug)]
struct UserConnections {
    max: usize,
    open: std::sync::Mutex<std::collections::HashMap<String, usize>>,
}

impl UserConnections {
    /// Counts one more connection of `user_id`, unless they have the most allowed.
    fn take(self: &Arc<Self>, user_id: &str) -> Result<ConnectionSlot, ApiError> {
        let mut open = self
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let count = open.entry(user_id.to_owned()).or_insert(0);
        if *count >= self.max {
            return Err(ApiError::new(
                holdfast_protocol::ErrorCode::QuotaExceeded,
                format!(
                    "This account already has {} sync connections open, the most this server allows; close one first.",
                    self.max
                ),
            ));
        }
        *count += 1;
        Ok(ConnectionSlot {
            connections: self.clone(),
            user_id: user_id.to_owned(),
        })
    }
}

/// One counted connection; uncounted when dropped.
#[derive(Debug)]
struct ConnectionSlot {
    connections: Arc<UserConnections>,
    user_id: String,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut open = self
            .connections
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.user_id) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.user_id);
            }
        }
    }
}

/// A router serving `GET /sync` (see the module documentation); `merge` it with the auth
/// router (`crate::server::router`).
///
/// It also deletes a user's items when this process deletes the account
/// ([`SharedCollection::delete_items_of_deleted_accounts`]); call it on a tokio runtime.
pub fn sync_router(gate: SyncGate, collection: SharedCollection, options: SyncOptions) -> Router {
    collection.delete_items_of_deleted_accounts(gate.revocations());
    let connections = Arc::new(UserConnections {
        max: options.max_connections_per_user,
        open: Default::default(),
    });
    let endpoint = Endpoint {
        gate,
        collection,
        options: Arc::new(options),
        connections,
    };
    Router::new().route(SYNC_PATH, any(upgrade)).with_state(endpoint)
}

async fn upgrade(
    State(endpoint): State<Endpoint>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    if method != Method::GET {
        return refuse(ApiError::route_not_found());
    }
    let Ok(upgrade) = upgrade else {
        let mut response = refuse(ApiError {
            status_override: Some(StatusCode::UPGRADE_REQUIRED),
            ..ApiError::validation("This endpoint takes WebSocket connections.")
        });
        response
            .headers_mut()
            .insert(http::header::UPGRADE, http::HeaderValue::from_static("websocket"));
        return response;
    };
    // The server sends one message at a time and waits for it to be written (at most
    // `send_timeout`), so its write buffer holds at most one message.
    let upgrade = upgrade
        .max_message_size(MAX_MESSAGE_BYTES)
        .max_frame_size(MAX_MESSAGE_BYTES);
    // Without a usable Host the URL is empty, which no proof names: a proof is refused, a
    // proofless connection does not need the URL.
    let public_url = endpoint.gate.authenticator().config().public_url.as_deref();
    let url = request_url(public_url, &headers, uri.path()).unwrap_or_default();
    if !headers.contains_key(http::header::AUTHORIZATION) {
        return upgrade.on_upgrade(move |socket| connection::serve_after_auth_message(socket, endpoint, url));
    }
    let Some(access_token) = bearer_token(&headers) else {
        return refuse(ApiError::new(
            holdfast_protocol::ErrorCode::TokenInvalid,
            "Missing bearer token.",
        ));
    };
    let proof = headers
        .get("dpop")
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
        .filter(|proof| !proof.is_empty());
    let handshake = Handshake {
        access_token,
        proof,
        method: "GET",
        url: &url,
    };
    match endpoint.gate.admit(&handshake).await {
        Ok(principal) => match endpoint.connections.take(&principal.user_id) {
            Ok(slot) => {
                upgrade.on_upgrade(move |socket| connection::serve(socket, endpoint, principal, url, slot))
            }
            Err(refused) => refuse(refused),
        },
        Err(refused) => refuse(refused.into()),
    }
}

fn refuse(error: ApiError) -> Response {
    error.into_response()
}
