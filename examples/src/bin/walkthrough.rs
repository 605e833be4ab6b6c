//! A narrated tour of the Holdfast protocol against a server kit on a temporary SQLite
//! database: sign-up with a device key, refresh rotation and its grace window, silent device
//! re-login, a second device revoking the first, reuse detection, and sign-out.
//!
//! `cargo run --release -p holdfast-examples --bin walkthrough` (add `-- --server URL` to
//! run it against a server that is already running).

use std::time::Instant;

use holdfast_examples::local_server::LocalServer;
use holdfast_examples::narrator::Narrator;
use holdfast_examples::protocol_client::{CallError, ProtocolClient, SoftwareDeviceKey, text};
use serde_json::Value;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn refused(result: std::result::Result<Value, CallError>) -> Result<String> {
    match result {
        Ok(_) => Err("the server accepted what it should have refused".into()),
        Err(CallError::Refused(r)) => Ok(format!(
            "refused: {} {} ({})",
            r.status,
            r.code.unwrap_or_default(),
            r.error
        )),
        Err(other) => Err(other.into()),
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let external = args
        .iter()
        .position(|a| a == "--server")
        .and_then(|i| args.get(i + 1))
        .cloned();
    let mut narrator = Narrator::new();

    let t = Instant::now();
    let local = match &external {
        Some(_) => None,
        None => Some(LocalServer::start(|_| {}).await?),
    };
    let base = external
        .clone()
        .unwrap_or_else(|| local.as_ref().map(LocalServer::base_url).unwrap_or_default());
    narrator.step(
        "start the server kit (SQLite in a temporary folder)",
        t,
        format!("serving {base}/auth"),
    );
    let client = ProtocolClient::new(&base);

    let laptop_key = SoftwareDeviceKey::generate().map_err(|_| "key generation failed")?;
    // Tokens of a device with a key are bound to it: bearer calls carry its proof.
    client.hold_device_key(&laptop_key);
    let laptop = "laptop-01";
    let email = format!("walkthrough-{}@example.com", std::process::id());

    let t = Instant::now();
    let session = client
        .sign_up(
            &email,
            "correct horse battery",
            Some("Ada"),
            Some((laptop, &laptop_key.public_jwk())),
        )
        .await?;
    let mut access = text(&session, "/tokens/accessToken")?;
    let refresh0 = text(&session, "/tokens/refreshToken")?;
    narrator.step(
        "sign up with a device key (Argon2id hash)",
        t,
        format!("user {} on device {laptop}", text(&session, "/user/id")?),
    );

    let t = Instant::now();
    let me = client.me(&access).await?;
    narrator.step(
        "GET /auth/me with the access token",
        t,
        format!("{} ({})", text(&me, "/email")?, text(&me, "/name")?),
    );

    let t = Instant::now();
    let registered = client
        .register_device(&access, laptop, &laptop_key.public_jwk(), "Ada's laptop")
        .await?;
    let credential = text(&registered, "/deviceCredential")?;
    narrator.step(
        "register the device, get a device credential",
        t,
        format!("credential of {} bytes kept by the client", credential.len()),
    );

    let t = Instant::now();
    let rotated = client.refresh(&refresh0).await?;
    let refresh1 = text(&rotated, "/refreshToken")?;
    narrator.step(
        "refresh: both tokens rotate",
        t,
        "the old refresh token is now consumed",
    );

    let t = Instant::now();
    let replay = client.refresh(&refresh0).await?;
    let same = text(&replay, "/refreshToken")? == refresh1;
    narrator.step(
        "crash-safe: the consumed token again, within 30 s",
        t,
        format!("same pair returned: {same} (grace window, not reuse)"),
    );

    let t = Instant::now();
    let challenge = text(&client.challenge(None, laptop).await?, "/challenge")?;
    let signature = laptop_key
        .sign_challenge(&challenge)
        .map_err(|_| "signing failed")?;
    let relogin = client.verify(laptop, &challenge, &signature).await?;
    access = text(&relogin, "/tokens/accessToken")?;
    narrator.step(
        "silent device re-login: challenge + P-256 signature",
        t,
        "fresh tokens without a password",
    );

    let t = Instant::now();
    let outcome = refused(client.verify(laptop, &challenge, &signature).await)?;
    narrator.step("replay the same signed challenge", t, outcome);

    let phone_key = SoftwareDeviceKey::generate().map_err(|_| "key generation failed")?;
    client.hold_device_key(&phone_key);
    let t = Instant::now();
    let phone = client
        .sign_in(
            &email,
            "correct horse battery",
            Some(("phone-01", &phone_key.public_jwk())),
        )
        .await?;
    let phone_access = text(&phone, "/tokens/accessToken")?;
    let devices = client.devices(&phone_access).await?;
    narrator.step(
        "sign in on a second device and list devices",
        t,
        format!("{} devices", devices.as_array().map_or(0, Vec::len)),
    );

    let t = Instant::now();
    client.revoke_device(&phone_access, laptop).await?;
    let outcome = refused(client.me(&access).await)?;
    narrator.step("the phone revokes the laptop; the laptop calls /me", t, outcome);

    let t = Instant::now();
    let outcome = refused(client.challenge(None, laptop).await)?;
    narrator.step("the revoked laptop tries a silent re-login", t, outcome);

    let t = Instant::now();
    let phone_refresh0 = text(&phone, "/tokens/refreshToken")?;
    let step1 = client.refresh(&phone_refresh0).await?;
    client.refresh(&text(&step1, "/refreshToken")?).await?;
    let outcome = refused(client.refresh(&phone_refresh0).await)?;
    narrator.step("a stolen, older refresh token is replayed", t, outcome);

    let t = Instant::now();
    let outcome = refused(client.me(&phone_access).await)?;
    narrator.step("after reuse the whole session is revoked", t, outcome);

    let t = Instant::now();
    let again = client
        .sign_in(
            &email,
            "correct horse battery",
            Some(("phone-01", &phone_key.public_jwk())),
        )
        .await?;
    let again_access = text(&again, "/tokens/accessToken")?;
    client
        .sign_out(&again_access, Some(&text(&again, "/tokens/refreshToken")?))
        .await?;
    let outcome = refused(client.me(&again_access).await)?;
    narrator.step("sign in again, sign out; the old access token on /me", t, outcome);

    if let Some(server) = local {
        server.stop().await;
    }
    narrator.summary();
    Ok(())
}
