//! One admitted sync connection: welcome, snapshot, then puts in and items out until the
//! client leaves or the gate says the connection must close.

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use holdfast_protocol::ErrorCode;
use holdfast_protocol::clock::{Clock, SystemClock};

use super::messages::{self, ClientMessage, ServerMessage};
use super::subscription::{Subscription, Update};
use super::{AUTH_REFUSED, ConnectionSlot, Endpoint, MAX_MESSAGE_BYTES};
use crate::gate::{Closed, Handshake, Principal};
use crate::store::sync_items::{CollectionError, SnapshotPage};
use serde_json::Value;

/// How long the server waits for the client's answer to its close frame.
const CLOSE_WAIT: Duration = Duration::from_secs(2);
/// Close codes of RFC 6455 used here.
const GOING_AWAY: u16 = 1001;
const PROTOCOL_ERROR: u16 = 1002;
const INVALID_PAYLOAD: u16 = 1007;
const MESSAGE_TOO_BIG: u16 = 1009;
const INTERNAL_ERROR: u16 = 1011;
/// The reason sent with [`GOING_AWAY`].
const SHUTTING_DOWN: &str = "SERVER_SHUTTING_DOWN";

/// A connection that upgraded without credentials: its first text message must be an
/// `auth` message, within the endpoint's `auth_timeout`.
pub(super) async fn serve_after_auth_message(mut socket: WebSocket, endpoint: Endpoint, url: String) {
    let going_away = endpoint.options.going_away.clone();
    let _open = going_away.track();
    let first = tokio::select! {
        first = tokio::time::timeout(endpoint.options.auth_timeout, next_text(&mut socket)) => first,
        () = going_away.stopping() => return close(&mut socket, GOING_AWAY, SHUTTING_DOWN).await,
    };
    let text = match first {
        Ok(Ok(Some(text))) => text,
        // The client left.
        Ok(Ok(None)) => return,
        Ok(Err(())) => {
            return refuse(socket, ErrorCode::ValidationError, "Send an auth message first.").await;
        }
        Err(_) => {
            return refuse(
                socket,
                ErrorCode::TokenInvalid,
                "No auth message arrived in time.",
            )
            .await;
        }
    };
    let (access_token, proof) = match messages::parse(&text) {
        Ok(ClientMessage::Auth { access_token, proof }) => (access_token, proof),
        Ok(_) => return refuse(socket, ErrorCode::ValidationError, "Send an auth message first.").await,
        Err(message) => return refuse(socket, ErrorCode::ValidationError, message).await,
    };
    let handshake = Handshake {
        access_token: &access_token,
        proof: proof.as_deref(),
        method: "GET",
        url: &url,
    };
    match endpoint.gate.admit(&handshake).await {
        Ok(principal) => match endpoint.connections.take(&principal.user_id) {
            Ok(slot) => serve(socket, endpoint, principal, url, slot).await,
            Err(refused) => refuse(socket, refused.code, &refused.message).await,
        },
        Err(refused) => refuse(socket, refused.code, &refused.message).await,
    }
}

/// The next text message before the handshake: `Ok(None)` when the client left, `Err` for
/// a binary message.
async fn next_text(socket: &mut WebSocket) -> Result<Option<String>, ()> {
    loop {
        match socket.recv().await {
            Some(Ok(Message::Text(text))) => return Ok(Some(text.as_str().to_owned())),
            Some(Ok(Message::Binary(_))) => return Err(()),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            Some(Ok(Message::Close(_)) | Err(_)) | None => return Ok(None),
        }
    }
}

/// Tells a Kora-style client why it was refused, then closes with 4401 and the code.
async fn refuse(mut socket: WebSocket, code: ErrorCode, message: &str) {
    let error = ServerMessage::Error { code, message }.to_text();
    if socket.send(Message::text(error)).await.is_ok() {
        close(&mut socket, AUTH_REFUSED, code.as_str()).await;
    }
}

/// What the connection sends next from its subscription.
enum Outgoing {
    /// A page of the snapshot being sent.
    Page(Result<SnapshotPage, CollectionError>),
    /// A change, once the snapshot is sent.
    Update(Update),
}

/// The next page while a snapshot is being sent, otherwise the next change. Cancel-safe.
async fn outgoing(updates: &mut Subscription, paging: bool) -> Outgoing {
    if paging {
        Outgoing::Page(updates.snapshot_page().await)
    } else {
        Outgoing::Update(updates.recv().await)
    }
}

/// Sends `message` within `limit`: `false` when the connection failed or the client did
/// not take it in time (a client that stopped reading: the connection is then dropped, so
/// what the server holds for it stays bounded).
async fn send(socket: &mut WebSocket, message: Message, limit: Duration) -> bool {
    match tokio::time::timeout(limit, socket.send(message)).await {
        Ok(sent) => sent.is_ok(),
        Err(_) => {
            tracing::debug!("dropping a sync connection that stopped reading");
            false
        }
    }
}

/// Serves an admitted connection until the client leaves or the gate closes it. `url` is
/// the sync URL that proofs name (for renewals); `_slot` counts the connection against its
/// user's cap until it ends.
pub(super) async fn serve(
    mut socket: WebSocket,
    endpoint: Endpoint,
    mut principal: Principal,
    url: String,
    _slot: ConnectionSlot,
) {
    let Endpoint {
        gate,
        collection,
        options,
        ..
    } = endpoint;
    let going_away = options.going_away.clone();
    let _open = going_away.track();
    let stopping = going_away.stopping();
    tokio::pin!(stopping);
    let limit = options.send_timeout;
    let mut watch = gate.watch(&principal);
    // `reauth-required` is sent once per token, `reauth_notice` before it expires.
    let mut renewal_due = Box::pin(gate.renewal_due(&principal, options.reauth_notice));
    let mut notice_sent = false;
    // Subscribed before the snapshot is read, so no write falls between the two; the
    // subscription skips the writes its snapshot holds.
    let mut updates = collection.subscribe(&principal.user_id);
    let welcome = ServerMessage::Welcome {
        user_id: &principal.user_id,
        device_id: &principal.device_id,
    };
    if !send(&mut socket, Message::text(welcome.to_text()), limit).await {
        return;
    }
    // The snapshot goes out page by page, between the other work of the connection: only
    // one page is ever held for it, and a revocation still closes it at once.
    let mut paging = true;
    let mut heartbeat =
        tokio::time::interval_at(tokio::time::Instant::now() + options.heartbeat, options.heartbeat);
    loop {
        tokio::select! {
            // Revocation wins over anything else that is ready.
            biased;
            closed = &mut watch => {
                tracing::debug!(user = %principal.user_id, device = %principal.device_id, reason = closed.reason(), "closing a sync connection");
                return close(&mut socket, closed.close_code(), closed.reason()).await;
            }
            () = &mut stopping => return close(&mut socket, GOING_AWAY, SHUTTING_DOWN).await,
            () = &mut renewal_due, if !notice_sent => {
                notice_sent = true;
                let notice = ServerMessage::ReauthRequired {
                    expires_at: principal.expires_at.saturating_mul(1000),
                };
                if !send(&mut socket, Message::text(notice.to_text()), limit).await {
                    return;
                }
            }
            incoming = socket.recv() => {
                let text = match incoming {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Binary(_))) => {
                        let refused = error_text(ErrorCode::ValidationError, "Binary messages are not supported.");
                        if !send(&mut socket, Message::text(refused), limit).await {
                            return;
                        }
                        continue;
                    }
                    // Pongs to pings are sent by the WebSocket layer.
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    // Reading once more sends the answer to the client's close frame.
                    Some(Ok(Message::Close(_))) => return drain(&mut socket).await,
                    Some(Err(error)) => return close_after_error(&mut socket, error).await,
                    None => return,
                };
                let answer = match messages::parse(text.as_str()) {
                    Ok(ClientMessage::Reauth { access_token, proof }) => {
                        match renew(&gate, &principal, &url, &access_token, proof.as_deref()).await {
                            Renewal::Renewed(renewed) => {
                                principal = renewed;
                                watch = gate.watch(&principal);
                                renewal_due = Box::pin(gate.renewal_due(&principal, options.reauth_notice));
                                notice_sent = false;
                                None
                            }
                            Renewal::Failed(answer) => Some(answer),
                            Renewal::Refused(code) => {
                                return close(&mut socket, refusal_close_code(code), code.as_str()).await;
                            }
                        }
                    }
                    Ok(ClientMessage::Put { key, value }) => put(&collection, &principal, key, value).await,
                    Ok(ClientMessage::Auth { .. }) => Some(error_text(
                        ErrorCode::ValidationError,
                        "This connection is already authenticated: renew it with a reauth message.",
                    )),
                    Err(message) => Some(error_text(ErrorCode::ValidationError, message)),
                };
                if let Some(answer) = answer
                    && !send(&mut socket, Message::text(answer), limit).await
                {
                    return;
                }
            }
            next = outgoing(&mut updates, paging) => match next {
                Outgoing::Page(Ok(page)) => {
                    paging = !page.complete;
                    let message = ServerMessage::Snapshot {
                        items: &page.items,
                        complete: page.complete,
                    };
                    if !send(&mut socket, Message::text(message.to_text()), limit).await {
                        return;
                    }
                }
                Outgoing::Page(Err(error)) => {
                    tracing::error!(%error, "could not read a sync snapshot");
                    return close(&mut socket, INTERNAL_ERROR, "INTERNAL").await;
                }
                Outgoing::Update(Update::Item(item)) => {
                    if !send(&mut socket, Message::text(ServerMessage::Item(&item).to_text()), limit).await {
                        return;
                    }
                }
                Outgoing::Update(Update::Lagged) => paging = true,
            },
            _ = heartbeat.tick() => {
                if !send(&mut socket, Message::Ping(Default::default()), limit).await {
                    return;
                }
            }
        }
    }
}

/// Stores one item; returns the error message to send back, if any. A stored item reaches
/// this connection through its subscription, like every other.
async fn put(
    collection: &super::SharedCollection,
    principal: &Principal,
    key: String,
    value: Value,
) -> Option<String> {
    let now_ms = SystemClock.now_ms();
    match collection
        .put(&principal.user_id, &key, value, &principal.device_id, now_ms)
        .await
    {
        Ok(_) => None,
        Err(CollectionError::Invalid(message)) => Some(error_text(ErrorCode::ValidationError, message)),
        Err(CollectionError::QuotaExceeded(message)) => Some(error_text(ErrorCode::QuotaExceeded, &message)),
        Err(error) => {
            tracing::error!(%error, "could not store a sync item");
            Some(error_text(ErrorCode::Internal, "The item could not be stored."))
        }
    }
}

/// How a `reauth` went.
enum Renewal {
    /// The connection lives by this principal from now on.
    Renewed(Principal),
    /// The stores could not answer: not a refusal. The connection keeps its token and the
    /// client gets this error message; it may try again.
    Failed(String),
    /// Refused: the connection closes with this code.
    Refused(ErrorCode),
}

/// Checks a `reauth` of the connection of `principal` (PROTOCOL 5) at the gate.
async fn renew(
    gate: &crate::gate::SyncGate,
    principal: &Principal,
    url: &str,
    access_token: &str,
    proof: Option<&str>,
) -> Renewal {
    let handshake = Handshake {
        access_token,
        proof,
        method: "GET",
        url,
    };
    match gate.renew(principal, &handshake).await {
        Ok(renewed) => Renewal::Renewed(renewed),
        Err(failed) if matches!(failed.code, ErrorCode::Internal | ErrorCode::ServiceUnavailable) => {
            Renewal::Failed(error_text(failed.code, &failed.message))
        }
        Err(refused) => {
            tracing::debug!(user = %principal.user_id, device = %principal.device_id, code = refused.code.as_str(), "refused a sync renewal");
            Renewal::Refused(refused.code)
        }
    }
}

/// The close code of a refused renewal (PROTOCOL 5): the code of the matching revocation,
/// or 4401 (with the refusal's code as the reason) as for a refused handshake.
fn refusal_close_code(code: ErrorCode) -> u16 {
    match code {
        ErrorCode::DeviceRevoked => Closed::DeviceRevoked.close_code(),
        ErrorCode::TokenRevoked | ErrorCode::RefreshReused => Closed::SessionEnded.close_code(),
        ErrorCode::UserNotFound => Closed::AccountDeleted.close_code(),
        ErrorCode::TokenExpired => Closed::TokenExpired.close_code(),
        _ => AUTH_REFUSED,
    }
}

fn error_text(code: ErrorCode, message: &str) -> String {
    ServerMessage::Error { code, message }.to_text()
}

/// Sends a close frame, then waits (briefly) for the client's answer.
async fn close(socket: &mut WebSocket, code: u16, reason: &str) {
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    if socket.send(Message::Close(Some(frame))).await.is_ok() {
        drain(socket).await;
    }
}

/// Reads until the client's close frame (or its disconnection), at most [`CLOSE_WAIT`].
async fn drain(socket: &mut WebSocket) {
    let _ = tokio::time::timeout(CLOSE_WAIT, async {
        while let Some(Ok(_)) = socket.recv().await {}
    })
    .await;
}

/// Closes with the code that names a read error, when there is one to send.
async fn close_after_error(socket: &mut WebSocket, error: axum::Error) {
    use tungstenite::Error;
    let Ok(error) = error.into_inner().downcast::<Error>() else {
        return;
    };
    match *error {
        Error::Capacity(_) => {
            let reason = format!("message exceeds {MAX_MESSAGE_BYTES} bytes");
            close(socket, MESSAGE_TOO_BIG, &reason).await;
        }
        Error::Utf8(_) => close(socket, INVALID_PAYLOAD, "invalid UTF-8").await,
        Error::Protocol(_) => close(socket, PROTOCOL_ERROR, "protocol error").await,
        // The connection is gone (reset, I/O error): nothing to send.
        _ => {}
    }
}
