//! The Holdfast demo: a phone app on the client core against the server kit, narrated with
//! timings. It signs up, registers its device, syncs an item over a device-proven
//! connection, loses the server, restarts offline still signed in, recovers when the server
//! returns, and is cut off the moment a second device of the same user revokes it; a copy
//! of its access token is useless without its device key. A second act ends sessions from
//! another session and resets the password; a third turns on a second factor (TOTP, the QR
//! code written to files) and signs in with it, through an app restart.
//!
//! `cargo run --release -p holdfast-examples --bin demo`
//!
//! Everything runs on this machine: the server kit on SQLite in a temporary folder (in a
//! runtime of its own, so that stopping it really drops every connection, as a crashed or
//! redeployed server would), and two clients with their own encrypted stores. Exits 0 when
//! every step behaved as described, 1 otherwise.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use holdfast_core::clock::{Clock, SystemClock};
use holdfast_core::vault::Passphrase;
use holdfast_core::{AuthClient, AuthError, AuthState, ClientConfig, KeySource, SignOutReason};
use holdfast_examples::narrator::Narrator;
use holdfast_examples::sync_client::{SyncClient, SyncEvent};
use holdfast_protocol::{Claims, EndReason};
use holdfast_server_kit::sync::{SharedCollection, SyncOptions};
use holdfast_server_kit::{Kit, ServerConfig, Stores, server, tokens};
use serde_json::json;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// Access tokens live this long here, so the demo can wait for one to expire.
const ACCESS_TTL_SECS: i64 = 4;
const PASSWORD: &str = "correct horse battery staple";
const NEW_PASSWORD: &str = "a brand new passphrase for ada";

/// The server kit in a runtime of its own, on a thread of its own.
struct DemoServer {
    address: SocketAddr,
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl DemoServer {
    /// Serves the auth routes and `/sync` over the SQLite files in `dir`, on `port` (0 for
    /// any free one).
    fn start(dir: &Path, secret: &str, port: u16) -> Result<DemoServer> {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<std::result::Result<SocketAddr, String>>();
        let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
        let dir = dir.to_path_buf();
        let secret = secret.to_owned();
        let thread = std::thread::spawn(move || {
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(error) => {
                    let _ = ready_tx.send(Err(error.to_string()));
                    return;
                }
            };
            let started = runtime.block_on(async {
                let stores = Stores::sqlite(dir.join("holdfast.db")).map_err(|e| e.to_string())?;
                let mut config = ServerConfig::new(vec![secret]);
                config.access_ttl_secs = ACCESS_TTL_SECS;
                let collection = SharedCollection::open(dir.join("sync.db")).map_err(|e| e.to_string())?;
                let kit = Kit::builder(config, stores)
                    .sync(collection, SyncOptions::default())
                    .build()
                    .await
                    .map_err(|e| e.to_string())?;
                let router = kit.standalone_router();
                let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
                    .await
                    .map_err(|e| e.to_string())?;
                let address = listener.local_addr().map_err(|e| e.to_string())?;
                tokio::spawn(server::serve(listener, router, std::future::pending()));
                Ok::<_, String>(address)
            });
            let ok = started.is_ok();
            let _ = ready_tx.send(started);
            if ok {
                // Serve until told to stop; dropping the runtime then ends every task and
                // closes every socket, open sync connections included.
                let _ = stop_rx.recv();
            }
            runtime.shutdown_timeout(Duration::from_millis(200));
        });
        let address = ready_rx.recv()??;
        Ok(DemoServer {
            address,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Stops the server: gone, as a crash would leave it (its files stay).
    async fn stop(mut self) {
        self.shut_down().await;
    }

    async fn shut_down(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

impl Drop for DemoServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A phone or laptop app: its own encrypted store, the user's passphrase as vault key.
fn app(server_url: &str, store: PathBuf, name: &str) -> Result<AuthClient> {
    let mut config = ClientConfig::new(
        server_url,
        store,
        KeySource::Passphrase(Passphrase::new("ada's vault passphrase")),
    );
    config.device_name = Some(name.to_owned());
    config.connect_timeout = Duration::from_secs(1);
    config.request_timeout = Duration::from_secs(3);
    Ok(AuthClient::new(config)?)
}

fn check(condition: bool, what: &str) -> Result<()> {
    if condition {
        Ok(())
    } else {
        Err(format!("unexpected: {what}").into())
    }
}

fn state_text(state: &AuthState) -> String {
    match state {
        AuthState::SignedIn { user, token_fresh } => {
            format!("SignedIn as {} (token fresh: {token_fresh})", user.email)
        }
        AuthState::SecondFactorRequired { user } => {
            format!("SecondFactorRequired for {} (waiting for a code)", user.email)
        }
        other => format!("{other:?}"),
    }
}

/// The next event within `limit`. The demo's connections live for a second or so and do
/// not renew, so the server's `reauth-required` notices are skipped.
async fn next_event(connection: &mut SyncClient, limit: Duration) -> Result<SyncEvent> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, connection.next_event()).await {
            Ok(Some(SyncEvent::ReauthRequired { .. })) => continue,
            Ok(Some(event)) => return Ok(event),
            Ok(None) => return Err("the sync connection had already ended".into()),
            Err(_) => return Err(format!("no sync event within {limit:?}").into()),
        }
    }
}

/// Connects with fresh credentials and reads the welcome and the snapshot.
async fn connect(client: &AuthClient, sync_url: &str) -> Result<(SyncClient, Vec<String>)> {
    let credentials = client.sync_credentials(sync_url).await?;
    let mut connection = SyncClient::connect(sync_url, &credentials).await?;
    let welcome = next_event(&mut connection, Duration::from_secs(5)).await?;
    check(matches!(welcome, SyncEvent::Welcome { .. }), "a welcome first")?;
    match next_event(&mut connection, Duration::from_secs(5)).await? {
        SyncEvent::Snapshot(items) => {
            let keys = items.into_iter().map(|item| item.key).collect();
            Ok((connection, keys))
        }
        other => Err(format!("expected a snapshot, got {other:?}").into()),
    }
}

#[tokio::main]
async fn main() {
    match run().await {
        Ok(()) => {}
        Err(error) => {
            eprintln!("\ndemo failed: {error}");
            std::process::exit(1);
        }
    }
}

async fn run() -> Result<()> {
    holdfast_examples::ensure_crypto_provider();
    let mut narrator = Narrator::new();
    let folder = tempfile::tempdir()?;
    let server_dir = folder.path().join("server");
    std::fs::create_dir_all(&server_dir)?;
    let secret = tokens::generate_secret();

    // 1. The server kit.
    let t = Instant::now();
    let server = DemoServer::start(&server_dir, &secret, 0)?;
    let base = server.url();
    let sync_url = format!("{base}/sync");
    narrator.step(
        "start the server kit (SQLite in a temporary folder)",
        t,
        format!("listening on {base}; access tokens live {ACCESS_TTL_SECS} s here"),
    );

    // 2. Sign up on the phone.
    let t = Instant::now();
    let phone_store = folder.path().join("phone.db");
    let phone = app(&base, phone_store.clone(), "Ada's phone")?;
    let restored = phone.initialize().await;
    check(
        restored
            == AuthState::SignedOut {
                reason: SignOutReason::NoStoredSession,
            },
        "a fresh install is signed out",
    )?;
    let email = format!("ada-{}@example.com", std::process::id());
    let user = phone.sign_up(&email, PASSWORD, Some("Ada")).await?;
    let token = phone.access_token().await?;
    let thumbprint = phone.device_thumbprint().await?;
    let bound = Claims::decode_unverified(&token)?.cnf.map(|cnf| cnf.jkt);
    check(
        bound.as_deref() == Some(thumbprint.as_str()),
        "the token is bound to the device key",
    )?;
    narrator.step(
        "phone: sign up (vault key from a passphrase, PBKDF2 600k)",
        t,
        format!(
            "user {}; token bound to device key {}…",
            user.id,
            &thumbprint[..12]
        ),
    );

    // 3. Register the device.
    let t = Instant::now();
    let device = phone.register_device("Ada's phone").await?;
    let devices = phone.list_devices().await?;
    check(
        devices.iter().any(|d| d.id == device.id && !d.revoked),
        "the phone is registered",
    )?;
    narrator.step(
        "phone: register the device",
        t,
        format!(
            "device {} \"{}\", P-256 key in the encrypted vault",
            device.id, device.name
        ),
    );

    // 4. A proven sync connection, and an item.
    let t = Instant::now();
    let (mut phone_sync, keys) = connect(&phone, &sync_url).await?;
    phone_sync.put("shopping", json!(["oat milk", "lemons"])).await?;
    let ack = next_event(&mut phone_sync, Duration::from_secs(5)).await?;
    check(
        matches!(&ack, SyncEvent::Item(item) if item.key == "shopping"),
        "the put is acknowledged",
    )?;
    narrator.step(
        "phone: open a device-proven sync connection, sync an item",
        t,
        format!(
            "admitted (snapshot of {} items); \"shopping\" stored, version 1",
            keys.len()
        ),
    );

    // 5. The server goes away.
    let t = Instant::now();
    server.stop().await;
    let ended = next_event(&mut phone_sync, Duration::from_secs(5)).await?;
    let ended = match ended {
        SyncEvent::Closed { code, .. } => format!("sync connection dropped (code {code})"),
        other => return Err(format!("expected the connection to drop, got {other:?}").into()),
    };
    narrator.step("the server goes away", t, ended);

    // 6. The app restarts offline.
    let t = Instant::now();
    drop(phone_sync);
    drop(phone);
    let phone = app(&base, phone_store.clone(), "Ada's phone")?;
    let state = phone.initialize().await;
    check(state.is_signed_in(), "restarted offline, still signed in")?;
    narrator.step(
        "the app restarts offline",
        t,
        format!("{} (restored from the vault, no network)", state_text(&state)),
    );

    // 7. Offline long enough for the access token to expire.
    let t = Instant::now();
    let expires_ms = Claims::decode_unverified(&token)?.exp * 1000;
    let wait = expires_ms + 300 - SystemClock.now_ms();
    tokio::time::sleep(Duration::from_millis(u64::try_from(wait).unwrap_or(0))).await;
    let offline = phone.access_token().await;
    let outcome = match &offline {
        Err(error @ AuthError::Transient { .. }) => error.to_string(),
        other => return Err(format!("expected a network error, got {other:?}").into()),
    };
    check(phone.state().is_signed_in(), "a network error is not a sign-out")?;
    narrator.step(
        "offline until the access token expires; ask for a token",
        t,
        format!("{outcome}; {}", state_text(&phone.state())),
    );

    // 8. The server comes back on the same address, with the same database.
    let t = Instant::now();
    let port = server_port(&base)?;
    let server = DemoServer::start(&server_dir, &secret, port)?;
    narrator.step(
        "the server comes back",
        t,
        format!("listening on {}", server.url()),
    );

    // 9. Refresh.
    let t = Instant::now();
    phone.refresh_if_needed().await?;
    let fresh = phone.access_token().await?;
    check(fresh != token, "a new access token")?;
    narrator.step(
        "phone: refresh (the rotated pair is on disk before use)",
        t,
        state_text(&phone.state()),
    );

    // 10. Reconnect: the item is still there.
    let t = Instant::now();
    let (mut phone_sync, keys) = connect(&phone, &sync_url).await?;
    check(keys.contains(&"shopping".to_owned()), "the item survived")?;
    narrator.step(
        "phone: reconnect the sync connection",
        t,
        format!("snapshot: {keys:?}"),
    );

    // 11. A second device of the same user.
    let t = Instant::now();
    let laptop = app(&base, folder.path().join("laptop.db"), "Ada's laptop")?;
    laptop.initialize().await;
    laptop.sign_in(&email, PASSWORD).await?;
    let (mut laptop_sync, keys) = connect(&laptop, &sync_url).await?;
    laptop_sync.put("todo", json!("book the train")).await?;
    let seen_on_phone = loop {
        match next_event(&mut phone_sync, Duration::from_secs(5)).await? {
            SyncEvent::Item(item) if item.key == "todo" => break item,
            SyncEvent::Item(_) => continue,
            other => return Err(format!("expected the laptop's item on the phone, got {other:?}").into()),
        }
    };
    narrator.step(
        "laptop: sign in, connect, sync an item to the phone",
        t,
        format!(
            "laptop saw {keys:?}; phone received \"todo\" from {}",
            seen_on_phone.device_id
        ),
    );

    // 12. A copy of the phone's token, without the phone's key.
    let t = Instant::now();
    let stolen = phone.access_token().await?;
    let me = reqwest::Client::builder()
        .no_proxy()
        .build()?
        .get(format!("{base}/auth/me"))
        .bearer_auth(&stolen)
        .send()
        .await?;
    let me_status = me.status().as_u16();
    let me_body: serde_json::Value = me.json().await?;
    check(me_status == 401, "/auth/me refuses a bound token without a proof")?;
    let forged = holdfast_core::SyncCredentials {
        access_token: stolen,
        device_id: device.id.clone(),
        proof: String::new(),
    };
    let sync_refusal = match SyncClient::connect(&sync_url, &forged).await {
        Ok(_) => return Err("the sync gate admitted a token without its device key".into()),
        Err(error) => error.to_string(),
    };
    narrator.step(
        "a copy of the phone's token, used without its device key",
        t,
        format!(
            "/auth/me: {me_status} {}; sync: {sync_refusal}",
            me_body["code"].as_str().unwrap_or("-")
        ),
    );

    // 13. Second act: sessions. The laptop lists the user's sessions and ends the phone's.
    let t = Instant::now();
    let sessions = laptop.sessions().await?;
    let phone_session = sessions
        .iter()
        .find(|session| session.device_id == device.id && !session.current)
        .ok_or("the laptop lists the phone's session")?
        .clone();
    laptop.revoke_session(&phone_session.id).await?;
    let ended_at = Instant::now();
    let closed = closed_connection(&mut phone_sync).await?;
    let cut_off = ended_at.elapsed();
    check(
        closed.0 == 4002,
        "the phone's connection closes with 4002 TOKEN_REVOKED",
    )?;
    narrator.step(
        "laptop: list the sessions, end the phone's",
        t,
        format!(
            "{} sessions listed; the phone's live connection closed with {} {} {:.1} ms after",
            sessions.len(),
            closed.0,
            closed.1,
            cut_off.as_secs_f64() * 1000.0
        ),
    );

    // 14. The phone learns why at its next refresh, and signs out without a device re-login.
    let t = Instant::now();
    let _ = phone.refresh().await;
    let state = phone.state();
    let expected = SignOutReason::SessionEnded {
        reason: EndReason::Revoked,
    };
    check(
        state
            == AuthState::SignedOut {
                reason: expected.clone(),
            },
        "the phone is signed out: its session was ended elsewhere",
    )?;
    narrator.step(
        "phone: next refresh",
        t,
        format!("signed out: \"{}\"", EndReason::Revoked.message()),
    );

    // 15. A password reset (the demo's server has no mailer: development mode hands the
    // token back instead of mailing it) ends every session; the laptop's connection closes.
    let t = Instant::now();
    phone.sign_in(&email, PASSWORD).await?;
    let (phone_again, _) = connect(&phone, &sync_url).await?;
    drop(phone_again);
    let token = phone
        .request_password_reset(&email)
        .await?
        .ok_or("a development-mode server answers the reset token")?;
    phone.reset_password(&token, NEW_PASSWORD).await?;
    let reset_at = Instant::now();
    let closed = closed_connection(&mut laptop_sync).await?;
    let cut_off = reset_at.elapsed();
    check(closed.0 == 4002, "the laptop's connection closes with 4002")?;
    let _ = laptop.refresh().await;
    let _ = phone.refresh().await;
    let reset_reason = AuthState::SignedOut {
        reason: SignOutReason::SessionEnded {
            reason: EndReason::PasswordReset,
        },
    };
    check(
        laptop.state() == reset_reason,
        "the laptop is signed out: password reset",
    )?;
    check(
        phone.state() == reset_reason,
        "the phone is signed out: password reset",
    )?;
    narrator.step(
        "phone: reset the password",
        t,
        format!(
            "laptop's connection closed {:.1} ms after; both signed out: \"{}\"",
            cut_off.as_secs_f64() * 1000.0,
            EndReason::PasswordReset.message()
        ),
    );

    // 16. Both sign in with the new password and connect again.
    let t = Instant::now();
    laptop.sign_in(&email, NEW_PASSWORD).await?;
    phone.sign_in(&email, NEW_PASSWORD).await?;
    let (laptop_sync, _) = connect(&laptop, &sync_url).await?;
    let (mut phone_sync, keys) = connect(&phone, &sync_url).await?;
    check(keys.contains(&"todo".to_owned()), "the items are still there")?;
    narrator.step(
        "laptop and phone: sign in with the new password",
        t,
        format!(
            "{} live sessions; snapshot {keys:?}",
            laptop.sessions().await?.len()
        ),
    );

    // 17. The laptop revokes the phone; its live connection is closed.
    let t = Instant::now();
    laptop.revoke_device(&device.id).await?;
    let revoked_at = Instant::now();
    let closed = closed_connection(&mut phone_sync).await?;
    let cut_off = revoked_at.elapsed();
    check(closed.0 == 4001, "closed with 4001 DEVICE_REVOKED")?;
    narrator.step(
        "laptop revokes the phone; the phone's live connection",
        t,
        format!(
            "closed with {} {} {:.1} ms after the revocation returned",
            closed.0,
            closed.1,
            cut_off.as_secs_f64() * 1000.0
        ),
    );

    // 18. The phone learns it at its next request and wipes its secrets.
    let t = Instant::now();
    let _ = phone.refresh().await;
    let state = phone.state();
    check(
        state
            == AuthState::SignedOut {
                reason: SignOutReason::DeviceRevoked,
            },
        "the phone is signed out as revoked",
    )?;
    narrator.step(
        "phone: next refresh",
        t,
        format!("{state:?}; session and device key wiped"),
    );

    laptop_sync.close().await;
    second_factor_act(&mut narrator, laptop, &base, folder.path(), &email).await?;
    server.stop().await;
    narrator.summary();
    Ok(())
}

/// The code an authenticator app shows at `unix_secs` for `secret` (SHA-1, 6 digits, 30 s).
fn authenticator_code(secret: &str, unix_secs: i64) -> Result<String> {
    use holdfast_server_kit::mfa::{OtpSecret, TotpConfig, totp_at};
    let secret = OtpSecret::from_base32(secret)?;
    Ok(totp_at(&secret, unix_secs, &TotpConfig::default()))
}

/// What the laptop's current access token says of how the user proved who they are.
async fn assurance(client: &AuthClient) -> Result<(u8, Vec<String>)> {
    let claims = Claims::decode_unverified(&client.access_token().await?)?;
    Ok((claims.assurance(), claims.amr.unwrap_or_default()))
}

/// Third act (steps 19 to 22): the laptop turns on a second factor, and its next sign-in
/// waits for a code, through an app restart, without asking for the password again.
async fn second_factor_act(
    narrator: &mut Narrator,
    laptop: AuthClient,
    base: &str,
    folder: &Path,
    email: &str,
) -> Result<()> {
    // 19. Enrolment: the QR code an authenticator app scans, written to files.
    let t = Instant::now();
    let enrollment = laptop.enroll_mfa(None).await?;
    let qr_dir = std::env::temp_dir().join(format!("holdfast-demo-{}", std::process::id()));
    std::fs::create_dir_all(&qr_dir)?;
    let (svg_path, png_path) = (qr_dir.join("mfa-qr.svg"), qr_dir.join("mfa-qr.png"));
    std::fs::write(&svg_path, enrollment.qr_svg()?)?;
    let png = enrollment.qr_png()?;
    std::fs::write(&png_path, &png)?;
    // The user scans it; the app showed this code in the previous 30-second step, which the
    // server still accepts (±1 step).
    let now = SystemClock.now_ms() / 1000;
    laptop
        .confirm_mfa(&authenticator_code(enrollment.secret(), now - 30)?)
        .await?;
    let status = laptop.mfa_status().await?;
    check(status.enabled, "MFA is on")?;
    narrator.step(
        "laptop: turn on a second factor (TOTP)",
        t,
        format!(
            "QR code written to {} and {} ({} bytes); confirmed with a code; {} recovery codes",
            svg_path.display(),
            png_path.file_name().and_then(|n| n.to_str()).unwrap_or_default(),
            png.len(),
            status.remaining_recovery_codes
        ),
    );

    // 20. A sign-in with the password alone is pending.
    let t = Instant::now();
    laptop.sign_out().await?;
    let outcome = laptop.sign_in(email, NEW_PASSWORD).await?;
    check(
        outcome.needs_second_factor(),
        "the sign-in asks for a second factor",
    )?;
    let refused = laptop.list_devices().await;
    check(
        matches!(refused, Err(AuthError::SecondFactorRequired)),
        "a pending session reaches no account data",
    )?;
    narrator.step(
        "laptop: sign out, sign in with the password",
        t,
        format!("{}; other calls refused until then", state_text(&laptop.state())),
    );

    // 21. The app restarts before the code is typed: still waiting, no password needed.
    let t = Instant::now();
    drop(laptop);
    let laptop = app(base, folder.join("laptop.db"), "Ada's laptop")?;
    let state = laptop.initialize().await;
    check(
        matches!(state, AuthState::SecondFactorRequired { .. }),
        "the pending sign-in survives a restart",
    )?;
    narrator.step("the laptop app restarts", t, state_text(&state));

    // 22. The code from the authenticator completes the sign-in; a refresh keeps it.
    let t = Instant::now();
    let now = SystemClock.now_ms() / 1000;
    laptop
        .complete_sign_in_with_code(&authenticator_code(enrollment.secret(), now)?)
        .await?;
    check(laptop.state().is_signed_in(), "signed in after the code")?;
    let (aal, amr) = assurance(&laptop).await?;
    laptop.refresh().await?;
    check(
        assurance(&laptop).await? == (aal, amr.clone()),
        "a refresh keeps aal 2",
    )?;
    check(aal == 2, "the session is at aal 2")?;
    narrator.step(
        "laptop: type the code from the authenticator",
        t,
        format!("signed in, aal {aal}, amr {amr:?}; unchanged after a refresh"),
    );
    Ok(())
}

/// Waits for the server to close `connection`: its close code and reason.
async fn closed_connection(connection: &mut SyncClient) -> Result<(u16, String)> {
    loop {
        if let SyncEvent::Closed { code, reason } = next_event(connection, Duration::from_secs(5)).await? {
            return Ok((code, reason));
        }
    }
}

fn server_port(base: &str) -> Result<u16> {
    Ok(base.rsplit(':').next().ok_or("no port")?.parse()?)
}
