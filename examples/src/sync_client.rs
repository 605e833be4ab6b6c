//! A client of the server kit's WebSocket sync endpoint (`holdfast_server_kit::sync`).
//!
//! It connects with a device's [`SyncCredentials`] (from
//! [`AuthClient::sync_credentials`](holdfast_core::AuthClient::sync_credentials)): the
//! access token as `Authorization: Bearer` and the device proof as `DPoP` on the upgrade
//! request, so a refusal comes back as an HTTP error whose code says why. It then turns the
//! endpoint's messages into [`SyncEvent`]s.
//!
//! A connection opened with [`SyncClient::connect_renewing`] keeps itself alive: when the
//! server says its token is about to expire (`reauth-required`, PROTOCOL 5) it sends a
//! `reauth` with [`AuthClient::sync_renewal`]'s credentials, so it does not drop at every
//! access-token expiry; and when the server refuses or closes it for a reason the session
//! must follow (a revoked device, an ended session, a deleted account), it tells the
//! [`AuthClient`] at once ([`AuthClient::handle_sync_refusal`]).
//!
//! ```no_run
//! # async fn run(auth: holdfast_core::AuthClient) -> Result<(), Box<dyn std::error::Error>> {
//! use holdfast_examples::sync_client::{SyncClient, SyncEvent};
//! let url = "http://127.0.0.1:8080/sync";
//! let mut sync = SyncClient::connect_renewing(&auth, url).await?;
//! sync.put("settings", serde_json::json!({"theme": "dark"})).await?;
//! while let Some(event) = sync.next_event().await {
//!     if let SyncEvent::Closed { code, reason } = event {
//!         println!("closed: {code} {reason}");
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! Loopback and plain `http`/`ws` URLs only: this example is built without TLS.

use std::fmt;

use futures_util::{SinkExt, StreamExt};
use std::time::Duration;

use holdfast_core::{AuthClient, SyncCredentials, SyncRefusal};
use holdfast_protocol::Claims;
use holdfast_protocol::error::ErrorBody;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// One item of the user's collection.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncItem {
    /// The key.
    pub key: String,
    /// The value (any JSON).
    pub value: Value,
    /// 1 for the first write of the key, one more for each later write.
    pub version: i64,
    /// The device that wrote it last.
    pub device_id: String,
    /// When it was written last, ms since the epoch.
    pub updated_at: i64,
}

/// What the server said.
#[derive(Debug, Clone, PartialEq)]
pub enum SyncEvent {
    /// The connection was admitted.
    Welcome {
        /// The user.
        user_id: String,
        /// This device.
        device_id: String,
    },
    /// The user's whole collection (after the welcome, or after falling behind), gathered
    /// from the server's snapshot pages.
    Snapshot(Vec<SyncItem>),
    /// An item was written, by this connection (its acknowledgement) or another device.
    Item(SyncItem),
    /// The server asks for a renewal before the token expires at `expires_at` (ms since the
    /// epoch): send [`SyncClient::reauth`] with [`AuthClient::sync_renewal`]'s credentials.
    /// A connection opened with [`SyncClient::connect_renewing`] does this itself and
    /// reports [`SyncEvent::Renewed`] instead.
    ReauthRequired {
        /// When the connection's token expires, ms since the epoch.
        expires_at: i64,
    },
    /// The connection renewed its credentials in place; it now lives until `expires_at` (ms
    /// since the epoch), unless renewed again.
    Renewed {
        /// When the new token expires, ms since the epoch.
        expires_at: i64,
    },
    /// Renewing failed on this side (the network, say) and is tried again in a few
    /// seconds; the connection stays open until its token expires.
    RenewalFailed {
        /// What failed.
        message: String,
    },
    /// A message of this client was refused; the connection stays open.
    Error {
        /// The protocol code, e.g. `VALIDATION_ERROR`.
        code: String,
        /// What was wrong.
        message: String,
    },
    /// The connection ended: 4001 `DEVICE_REVOKED`, 4002 `TOKEN_REVOKED`, 4003
    /// `USER_NOT_FOUND`, 4004 `TOKEN_EXPIRED` (reconnect with fresh credentials), 1006 when
    /// it dropped without a close frame.
    Closed {
        /// The close code.
        code: u16,
        /// The close reason (the protocol code for 4001-4004).
        reason: String,
    },
}

/// Why connecting or sending failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncError {
    /// The URL is not an `http`, `https`, `ws` or `wss` URL this build can reach.
    InvalidUrl(String),
    /// The credentials cannot travel in an HTTP header.
    InvalidCredentials,
    /// The server refused the connection (the sync gate's answer).
    Refused {
        /// HTTP status.
        status: u16,
        /// The protocol code, when the server sent one.
        code: Option<String>,
        /// The server's message.
        message: String,
    },
    /// The network or the WebSocket failed.
    Transport(String),
    /// The auth client could not give credentials (signed out, offline with an expired
    /// token, ...).
    Credentials(String),
    /// The connection is closed.
    Closed,
}

impl fmt::Display for SyncError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SyncError::InvalidUrl(why) => write!(f, "invalid sync URL: {why}"),
            SyncError::InvalidCredentials => f.write_str("the sync credentials are not valid header values"),
            SyncError::Refused {
                status,
                code,
                message,
            } => write!(
                f,
                "the sync server refused the connection: {status} {} {message}",
                code.as_deref().unwrap_or("-")
            ),
            SyncError::Transport(why) => write!(f, "sync connection failed: {why}"),
            SyncError::Credentials(why) => write!(f, "no sync credentials: {why}"),
            SyncError::Closed => f.write_str("the sync connection is closed"),
        }
    }
}

impl std::error::Error for SyncError {}

/// How long a renewal that failed on this side waits before it is tried again.
const RENEWAL_RETRY: Duration = Duration::from_secs(5);

/// An open sync connection.
pub struct SyncClient {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
    closed: bool,
    /// The pages of a snapshot read so far.
    snapshot: Vec<SyncItem>,
    /// Set by [`SyncClient::connect_renewing`].
    renewal: Option<Renewal>,
}

/// What a self-renewing connection needs.
struct Renewal {
    auth: AuthClient,
    url: String,
    /// A renewal to try (again) at this instant, for the token expiring at the `i64` (ms).
    retry: Option<(tokio::time::Instant, i64)>,
}

impl fmt::Debug for SyncClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SyncClient")
            .field("closed", &self.closed)
            .field("renewing", &self.renewal.is_some())
            .finish_non_exhaustive()
    }
}

impl SyncClient {
    /// Connects to `url`, the same URL the credentials' proof was made for (`http://` or
    /// `https://`, which the WebSocket reaches as `ws://` or `wss://`).
    pub async fn connect(url: &str, credentials: &SyncCredentials) -> Result<SyncClient, SyncError> {
        let mut request = websocket_url(url)?
            .into_client_request()
            .map_err(|error| SyncError::InvalidUrl(error.to_string()))?;
        let bearer = HeaderValue::from_str(&format!("Bearer {}", credentials.access_token))
            .map_err(|_| SyncError::InvalidCredentials)?;
        let proof = HeaderValue::from_str(&credentials.proof).map_err(|_| SyncError::InvalidCredentials)?;
        request.headers_mut().insert("authorization", bearer);
        request.headers_mut().insert("dpop", proof);
        match tokio_tungstenite::connect_async(request).await {
            Ok((stream, _)) => Ok(SyncClient {
                stream,
                closed: false,
                snapshot: Vec::new(),
                renewal: None,
            }),
            Err(tungstenite::Error::Http(response)) => {
                let status = response.status().as_u16();
                let body = response
                    .body()
                    .as_deref()
                    .and_then(|body| serde_json::from_slice::<ErrorBody>(body).ok());
                Err(match body {
                    Some(body) => SyncError::Refused {
                        status,
                        code: body.code_text,
                        message: body.error,
                    },
                    None => SyncError::Refused {
                        status,
                        code: None,
                        message: String::new(),
                    },
                })
            }
            Err(tungstenite::Error::Url(error)) => Err(SyncError::InvalidUrl(error.to_string())),
            Err(error) => Err(SyncError::Transport(error.to_string())),
        }
    }

    /// Connects to `url` with `auth`'s [`AuthClient::sync_credentials`] and keeps the
    /// connection alive: see the module documentation. A refused handshake is also handed to
    /// [`AuthClient::handle_sync_refusal`] before it is returned.
    pub async fn connect_renewing(auth: &AuthClient, url: &str) -> Result<SyncClient, SyncError> {
        let credentials = auth
            .sync_credentials(url)
            .await
            .map_err(|error| SyncError::Credentials(error.to_string()))?;
        match SyncClient::connect(url, &credentials).await {
            Ok(mut client) => {
                client.renewal = Some(Renewal {
                    auth: auth.clone(),
                    url: url.to_owned(),
                    retry: None,
                });
                Ok(client)
            }
            Err(error) => {
                if let SyncError::Refused { status, code, .. } = &error {
                    let refusal = SyncRefusal::Http {
                        status: *status,
                        code: code.clone(),
                    };
                    // The session's own error (e.g. offline during the refresh) is for its
                    // next caller; this one gets the refusal.
                    let _ = auth.handle_sync_refusal(refusal).await;
                }
                Err(error)
            }
        }
    }

    /// Renews the connection's credentials in place (PROTOCOL 5): `credentials` must carry a
    /// newer access token of the same user and device, with a proof for this connection's
    /// URL. The server closes the connection if it refuses them.
    pub async fn reauth(&mut self, credentials: &SyncCredentials) -> Result<(), SyncError> {
        self.send(serde_json::json!({
            "type": "reauth",
            "authToken": credentials.access_token,
            "proof": credentials.proof,
        }))
        .await
    }

    /// Writes `value` under `key`; the server answers with an [`SyncEvent::Item`] (or an
    /// [`SyncEvent::Error`]).
    pub async fn put(&mut self, key: &str, value: Value) -> Result<(), SyncError> {
        self.send(serde_json::json!({"type": "put", "key": key, "value": value}))
            .await
    }

    async fn send(&mut self, message: Value) -> Result<(), SyncError> {
        if self.closed {
            return Err(SyncError::Closed);
        }
        self.stream
            .send(Message::text(message.to_string()))
            .await
            .map_err(|error| SyncError::Transport(error.to_string()))
    }

    /// The next event; after [`SyncEvent::Closed`], `None`.
    pub async fn next_event(&mut self) -> Option<SyncEvent> {
        while !self.closed {
            let retry_at = self.renewal.as_ref().and_then(|renewal| renewal.retry);
            let frame = tokio::select! {
                frame = self.stream.next() => frame,
                () = sleep_until(retry_at) => {
                    let expires_at = retry_at.map_or(0, |(_, expires_at)| expires_at);
                    if let Some(event) = self.renew(expires_at).await {
                        return Some(event);
                    }
                    continue;
                }
            };
            let frame = match frame {
                Some(Ok(frame)) => frame,
                Some(Err(_)) | None => return Some(self.ended(1006, "").await),
            };
            match frame {
                Message::Text(text) => match parse_event(text.as_str()) {
                    Some(Incoming::Page { items, complete }) => {
                        self.snapshot.extend(items);
                        if complete {
                            return Some(SyncEvent::Snapshot(std::mem::take(&mut self.snapshot)));
                        }
                    }
                    Some(Incoming::Event(SyncEvent::ReauthRequired { expires_at }))
                        if self.renewal.is_some() =>
                    {
                        if let Some(event) = self.renew(expires_at).await {
                            return Some(event);
                        }
                    }
                    Some(Incoming::Event(event)) => return Some(event),
                    None => {}
                },
                Message::Close(Some(frame)) => {
                    return Some(self.ended(u16::from(frame.code), frame.reason.as_str()).await);
                }
                Message::Close(None) => return Some(self.ended(1005, "").await),
                // Pongs are sent by the WebSocket layer; binary frames are not part of the
                // protocol.
                Message::Binary(_) | Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
            }
        }
        None
    }

    /// Renews a self-renewing connection whose token expires at `expires_at`; the event to
    /// report, if any.
    async fn renew(&mut self, expires_at: i64) -> Option<SyncEvent> {
        let renewal = self.renewal.as_mut()?;
        renewal.retry = None;
        let credentials = match renewal.auth.sync_renewal(&renewal.url, expires_at).await {
            Ok(credentials) => credentials,
            Err(error) => {
                // Signed out meanwhile: nothing to renew; the server closes the connection.
                if !matches!(renewal.auth.state(), holdfast_core::AuthState::SignedOut { .. }) {
                    renewal.retry = Some((tokio::time::Instant::now() + RENEWAL_RETRY, expires_at));
                }
                return Some(SyncEvent::RenewalFailed {
                    message: error.to_string(),
                });
            }
        };
        let renewed_until = Claims::decode_unverified(&credentials.access_token)
            .map(|claims| claims.exp.saturating_mul(1000))
            .unwrap_or(expires_at);
        match self.reauth(&credentials).await {
            Ok(()) => Some(SyncEvent::Renewed {
                expires_at: renewed_until,
            }),
            // The connection is failing: the next read reports how it ended.
            Err(_) => None,
        }
    }
    /// Closes the connection normally and waits for the server's answer.
    pub async fn close(mut self) {
        if self.closed {
            return;
        }
        let frame = CloseFrame {
            code: CloseCode::Normal,
            reason: "".into(),
        };
        if self.stream.send(Message::Close(Some(frame))).await.is_ok() {
            while let Some(Ok(_)) = self.stream.next().await {}
        }
    }

    /// The connection ended: tells a self-renewing connection's client why.
    async fn ended(&mut self, code: u16, reason: &str) -> SyncEvent {
        self.closed = true;
        if let Some(renewal) = &self.renewal {
            let refusal = SyncRefusal::Close {
                code,
                reason: reason.to_owned(),
            };
            // The session's own error (offline during the refresh, say) is for its next
            // caller; this connection only reports how it ended.
            let _ = renewal.auth.handle_sync_refusal(refusal).await;
        }
        SyncEvent::Closed {
            code,
            reason: reason.to_owned(),
        }
    }
}

/// Sleeps until the retry instant, or forever without one.
async fn sleep_until(retry: Option<(tokio::time::Instant, i64)>) {
    match retry {
        Some((at, _)) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// `ws://` or `wss://` for an `http(s)://` or `ws(s)://` URL.
fn websocket_url(url: &str) -> Result<String, SyncError> {
    for (from, to) in [
        ("http://", "ws://"),
        ("https://", "wss://"),
        ("ws://", "ws://"),
        ("wss://", "wss://"),
    ] {
        if let Some(rest) = url.strip_prefix(from) {
            return Ok(format!("{to}{rest}"));
        }
    }
    Err(SyncError::InvalidUrl(
        "expected an http://, https://, ws:// or wss:// URL".to_owned(),
    ))
}

/// A server message, as this client takes it.
#[derive(Debug, PartialEq)]
enum Incoming {
    /// Reported as it is.
    Event(SyncEvent),
    /// A page of the snapshot: kept until the last one, then reported as one
    /// [`SyncEvent::Snapshot`].
    Page { items: Vec<SyncItem>, complete: bool },
}

/// A server message; `None` for a message this client does not know (a newer server),
/// which it skips.
fn parse_event(text: &str) -> Option<Incoming> {
    let message: Value = serde_json::from_str(text).ok()?;
    let string = |name: &str| message.get(name).and_then(Value::as_str).map(str::to_owned);
    let event = match message.get("type")?.as_str()? {
        "welcome" => Some(SyncEvent::Welcome {
            user_id: string("userId")?,
            device_id: string("deviceId")?,
        }),
        "snapshot" => {
            let items = message.get("items")?.as_array()?;
            let items = items.iter().map(parse_item).collect::<Option<Vec<_>>>()?;
            // A server that sends the whole collection at once names no `complete`.
            let complete = message.get("complete").and_then(Value::as_bool).unwrap_or(true);
            return Some(Incoming::Page { items, complete });
        }
        "item" => parse_item(&message).map(SyncEvent::Item),
        "reauth-required" => Some(SyncEvent::ReauthRequired {
            expires_at: message.get("expiresAt")?.as_i64()?,
        }),
        "error" => Some(SyncEvent::Error {
            code: string("code")?,
            message: string("message").unwrap_or_default(),
        }),
        _ => None,
    };
    event.map(Incoming::Event)
}

fn parse_item(item: &Value) -> Option<SyncItem> {
    Some(SyncItem {
        key: item.get("key")?.as_str()?.to_owned(),
        value: item.get("value")?.clone(),
        version: item.get("version")?.as_i64()?,
        device_id: item.get("deviceId")?.as_str()?.to_owned(),
        updated_at: item.get("updatedAt")?.as_i64()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_urls_map_to_websocket_urls() {
        assert_eq!(
            websocket_url("http://127.0.0.1:9/sync").unwrap(),
            "ws://127.0.0.1:9/sync"
        );
        assert_eq!(
            websocket_url("https://sync.example/sync").unwrap(),
            "wss://sync.example/sync"
        );
        assert_eq!(websocket_url("ws://h/sync").unwrap(), "ws://h/sync");
        assert!(websocket_url("ftp://h/sync").is_err());
    }

    #[test]
    fn server_messages_become_events() {
        assert_eq!(
            parse_event(r#"{"type":"welcome","userId":"u","deviceId":"d"}"#),
            Some(Incoming::Event(SyncEvent::Welcome {
                user_id: "u".into(),
                device_id: "d".into()
            }))
        );
        let item = r#"{"key":"k","value":{"a":1},"version":2,"deviceId":"d","updatedAt":5}"#;
        let expected = SyncItem {
            key: "k".into(),
            value: serde_json::json!({"a": 1}),
            version: 2,
            device_id: "d".into(),
            updated_at: 5,
        };
        assert_eq!(
            parse_event(&format!(r#"{{"type":"snapshot","items":[{item}]}}"#)),
            Some(Incoming::Page {
                items: vec![expected.clone()],
                complete: true
            })
        );
        assert_eq!(
            parse_event(&format!(
                r#"{{"type":"snapshot","items":[{item}],"complete":false}}"#
            )),
            Some(Incoming::Page {
                items: vec![expected.clone()],
                complete: false
            })
        );
        assert_eq!(
            parse_event(&format!(r#"{{"type":"item",{}"#, &item[1..])),
            Some(Incoming::Event(SyncEvent::Item(expected)))
        );
        assert_eq!(
            parse_event(r#"{"type":"error","code":"VALIDATION_ERROR","message":"m"}"#),
            Some(Incoming::Event(SyncEvent::Error {
                code: "VALIDATION_ERROR".into(),
                message: "m".into()
            }))
        );
        assert_eq!(
            parse_event(r#"{"type":"reauth-required","expiresAt":1700000000000}"#),
            Some(Incoming::Event(SyncEvent::ReauthRequired {
                expires_at: 1_700_000_000_000
            }))
        );
        assert_eq!(parse_event(r#"{"type":"reauth-required"}"#), None);
        assert_eq!(parse_event(r#"{"type":"presence"}"#), None);
        assert_eq!(parse_event("not json"), None);
    }
}
