//! A sync endpoint of the application's own on axum, behind the kit's gate: `GET /live`
//! takes WebSocket connections from admitted devices only, echoes each text message back
//! tagged with its device, and closes the connection the moment its device or session is
//! revoked (4001-4004 with the code as reason) or the server stops (1001).

use axum::Router;
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use axum::routing::get;
use holdfast_server_kit::Kit;
use holdfast_server_kit::gate::Principal;
use holdfast_server_kit::server::Admitted;
use serde_json::json;

/// The application's routes: `/live` beside the kit's auth routes.
pub fn app(kit: &Kit) -> Router {
    Router::new()
        .route("/live", get(live))
        .with_state(kit.clone())
        .merge(kit.standalone_router())
}

/// The upgrade: the `Admitted` extractor refused it already (401/403 with the kit's error
/// body) unless the token, its device proof and the device are good.
async fn live(State(kit): State<Kit>, Admitted(principal): Admitted, upgrade: WebSocketUpgrade) -> Response {
    upgrade.on_upgrade(move |socket| serve(kit, principal, socket))
}

async fn serve(kit: Kit, principal: Principal, mut socket: WebSocket) {
    let _open = kit.going_away().track();
    let watch = kit.gate().watch(&principal);
    tokio::pin!(watch);
    let hello = json!({"type": "hello", "userId": principal.user_id, "deviceId": principal.device_id});
    if socket
        .send(Message::Text(hello.to_string().into()))
        .await
        .is_err()
    {
        return;
    }
    let (code, reason) = loop {
        tokio::select! {
            closed = &mut watch => break (closed.close_code(), closed.reason()),
            () = kit.going_away().stopping() => break (1001, "GOING_AWAY"),
            message = socket.recv() => match message {
                Some(Ok(Message::Text(text))) => {
                    let echo = json!({"type": "echo", "deviceId": principal.device_id, "text": text.as_str()});
                    if socket.send(Message::Text(echo.to_string().into())).await.is_err() {
                        return;
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return,
            },
        }
    };
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    let _ = socket.send(Message::Close(Some(frame))).await;
}
