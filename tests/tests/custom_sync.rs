//! The custom sync endpoint example (`holdfast_examples::custom_sync`) over real loopback
//! sockets: the real client core's sync credentials are admitted by the `Admitted`
//! extractor, a token without its device proof is refused before the upgrade, and revoking
//! the device from another device closes the open connection with 4001 `DEVICE_REVOKED`.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use holdfast_core::vault::Passphrase;
use holdfast_core::{AuthClient, ClientConfig, KeySource, SyncCredentials};
use holdfast_examples::custom_sync::app;
use holdfast_server_kit::{Kit, ServerConfig, Stores, server};
use serde_json::Value;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error, Message};

const PASSWORD: &str = "correct horse battery";
const BOUND: Duration = Duration::from_secs(5);

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn device(base_url: &str) -> (AuthClient, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = ClientConfig::new(
        base_url,
        dir.path().join("holdfast.db"),
        KeySource::Passphrase(Passphrase::new("device passphrase")),
    );
    let client = AuthClient::new(config).expect("client config");
    client.initialize().await;
    (client, dir)
}

async fn connect(url: &str, credentials: &SyncCredentials, with_proof: bool) -> Result<Socket, Error> {
    let mut request = url.replace("http://", "ws://").into_client_request()?;
    let headers = request.headers_mut();
    let bearer = format!("Bearer {}", credentials.access_token);
    headers.insert("authorization", bearer.parse().expect("header"));
    if with_proof {
        headers.insert("dpop", credentials.proof.parse().expect("header"));
    }
    Ok(tokio_tungstenite::connect_async(request).await?.0)
}

async fn next(socket: &mut Socket) -> Message {
    tokio::time::timeout(BOUND, socket.next())
        .await
        .expect("a message in time")
        .expect("the connection is open")
        .expect("a frame")
}

async fn next_json(socket: &mut Socket) -> Value {
    match next(socket).await {
        Message::Text(text) => serde_json::from_str(&text).expect("JSON"),
        other => panic!("expected text, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_custom_endpoint_admits_devices_and_closes_on_revocation() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = ServerConfig::new(vec![holdfast_testing::SECRET.to_owned()]);
    holdfast_testing::quick(&mut config);
    let kit = Kit::builder(
        config,
        Stores::sqlite(dir.path().join("auth.db")).expect("SQLite"),
    )
    .build()
    .await
    .expect("kit");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base_url = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(server::serve(listener, app(&kit), std::future::pending()));
    let live = format!("{base_url}/live");

    let (phone, _phone_dir) = device(&base_url).await;
    let user = phone
        .sign_up("live@example.com", PASSWORD, None)
        .await
        .expect("sign up");
    let (laptop, _laptop_dir) = device(&base_url).await;
    laptop
        .sign_in("live@example.com", PASSWORD)
        .await
        .expect("sign in");

    // The bound token without its proof is refused before the upgrade, as the routes do.
    let credentials = phone.sync_credentials(&live).await.expect("sync credentials");
    match connect(&live, &credentials, false).await {
        Err(Error::Http(response)) => assert_eq!(response.status().as_u16(), 401),
        other => panic!("expected a 401 refusal, got {:?}", other.map(|_| "a connection")),
    }

    let credentials = phone.sync_credentials(&live).await.expect("sync credentials");
    let mut socket = connect(&live, &credentials, true).await.expect("admitted");
    let hello = next_json(&mut socket).await;
    assert_eq!(hello["type"], "hello");
    assert_eq!(hello["userId"], user.id.as_str());
    assert_eq!(hello["deviceId"], credentials.device_id.as_str());
    socket.send(Message::Text("ping".into())).await.expect("send");
    let echo = next_json(&mut socket).await;
    assert_eq!(
        (echo["type"].as_str(), echo["text"].as_str()),
        (Some("echo"), Some("ping"))
    );

    laptop
        .revoke_device(&credentials.device_id)
        .await
        .expect("revoke the phone");
    match next(&mut socket).await {
        Message::Close(Some(frame)) => {
            assert_eq!(frame.code, CloseCode::from(4001));
            assert_eq!(frame.reason.as_str(), "DEVICE_REVOKED");
        }
        other => panic!("expected a close frame, got {other:?}"),
    }
}
