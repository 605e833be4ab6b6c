//! The server's memory under a heavy sync user (issue: one user with 3,000 items of 16 KB
//! and 20 connections that never read took a server from 200 MiB to 1,315 MiB).
//!
//! Starts the `holdfast-server` binary (release build beside this one, or `--server PATH`)
//! on a temporary SQLite database, signs one user up, writes 3,000 items of 16 KB over one
//! sync connection, then opens 20 more connections that never read. It samples the
//! server's resident memory (`/proc/PID/status`) every 50 ms and prints it before the
//! silent connections, at their peak, and after they are gone. Arguments after `--` go to
//! the server (e.g. `-- --sync-max-connections-per-user 32`).
//!
//! ```text
//! cargo build --release -p holdfast-server-kit --bin holdfast-server
//! cargo run --release -p holdfast-examples --bin sync_memory
//! ```

use std::io::BufRead;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;
type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

const ITEMS: usize = 3_000;
const VALUE_BYTES: usize = 16 * 1024;
const SILENT_CONNECTIONS: usize = 20;

/// The server process; killed when dropped.
struct Server {
    child: Child,
    address: String,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start(binary: &PathBuf, extra: &[String]) -> Result<Server> {
        let dir = tempfile::tempdir()?;
        let database = format!("sqlite:{}", dir.path().join("holdfast.db").display());
        let secret: String = (0..64).map(|n| char::from(b'a' + (n % 26) as u8)).collect();
        let mut child = Command::new(binary)
            .args(["--listen", "127.0.0.1:0", "--database", &database])
            .args(extra)
            .env("HOLDFAST_SECRET", secret)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut line = String::new();
        std::io::BufReader::new(stdout).read_line(&mut line)?;
        let address = line
            .trim()
            .strip_prefix("listening on http://")
            .ok_or_else(|| format!("unexpected first line: {line}"))?
            .to_owned();
        Ok(Server {
            child,
            address,
            _dir: dir,
        })
    }

    /// `(VmRSS, VmHWM)` in MiB.
    fn memory(&self) -> Result<(f64, f64)> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        let field = |name: &str| -> Result<f64> {
            let line = status
                .lines()
                .find(|line| line.starts_with(name))
                .ok_or_else(|| format!("no {name}"))?;
            let kib: f64 = line.split_whitespace().nth(1).ok_or("no value")?.parse()?;
            Ok(kib / 1024.0)
        };
        Ok((field("VmRSS:")?, field("VmHWM:")?))
    }

    async fn connect(&self, access: &str) -> Result<Socket> {
        let mut request = format!("ws://{}/sync", self.address).into_client_request()?;
        request
            .headers_mut()
            .insert("authorization", format!("Bearer {access}").parse()?);
        // No message-size limit on this side: the measurement is of the server.
        let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
            .max_message_size(None)
            .max_frame_size(None);
        let (socket, _) = tokio_tungstenite::connect_async_with_config(request, Some(config), false).await?;
        Ok(socket)
    }
}

async fn next_json(socket: &mut Socket) -> Result<Value> {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(30), socket.next())
            .await?
            .ok_or("connection ended")??;
        if let Message::Text(text) = frame {
            return Ok(serde_json::from_str(text.as_str())?);
        }
    }
}

/// Reads the welcome and every snapshot page: how many items.
async fn read_snapshot(socket: &mut Socket) -> Result<usize> {
    let welcome = next_json(socket).await?;
    if welcome["type"] != "welcome" {
        return Err(format!("expected a welcome, got {welcome}").into());
    }
    let mut items = 0;
    loop {
        let page = next_json(socket).await?;
        items += page["items"].as_array().map_or(0, Vec::len);
        if page["complete"] != json!(false) {
            return Ok(items);
        }
    }
}

#[tokio::main]
async fn main() {
    if let Err(error) = run().await {
        eprintln!("sync_memory failed: {error}");
        std::process::exit(1);
    }
}

async fn run() -> Result<()> {
    holdfast_examples::ensure_crypto_provider();
    let mut args = std::env::args().skip(1);
    let mut binary = std::env::current_exe()?.with_file_name("holdfast-server");
    let mut extra = Vec::new();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--server" => binary = PathBuf::from(args.next().ok_or("--server needs a path")?),
            "--" => extra.extend(args.by_ref()),
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let server = Server::start(&binary, &extra)?;
    println!(
        "server flags: {}",
        if extra.is_empty() {
            "(defaults)".to_owned()
        } else {
            extra.join(" ")
        }
    );
    let (idle, _) = server.memory()?;

    let http = reqwest::Client::new();
    let signup: Value = http
        .post(format!("http://{}/auth/signup", server.address))
        .json(&json!({"email": "heavy@example.com", "password": "correct horse battery"}))
        .send()
        .await?
        .json()
        .await?;
    let access = signup["data"]["tokens"]["accessToken"]
        .as_str()
        .ok_or_else(|| format!("no access token in {signup}"))?
        .to_owned();

    // 3,000 items of 16 KB, each acknowledged before the next.
    let mut writer = server.connect(&access).await?;
    read_snapshot(&mut writer).await?;
    let value = "x".repeat(VALUE_BYTES - 2);
    let started = Instant::now();
    for n in 0..ITEMS {
        let put = json!({"type": "put", "key": format!("item-{n:05}"), "value": value});
        writer.send(Message::text(put.to_string())).await?;
        let answer = next_json(&mut writer).await?;
        if answer["type"] != "item" {
            return Err(format!("put {n} refused: {answer}").into());
        }
    }
    let (before, puts_peak) = server.memory()?;
    println!(
        "{ITEMS} items of {} KiB written in {:.1} s",
        VALUE_BYTES / 1024,
        started.elapsed().as_secs_f64()
    );

    // 20 connections that never read after their handshake.
    let mut silent = Vec::new();
    let mut refused = 0;
    for _ in 0..SILENT_CONNECTIONS {
        match server.connect(&access).await {
            Ok(socket) => silent.push(socket),
            Err(_) => refused += 1,
        }
    }
    let mut peak = before;
    let sampling = Instant::now();
    // Until the server has dropped them (its send timeout) or 60 s.
    let mut last_change = Instant::now();
    let mut last = before;
    while sampling.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let (rss, _) = server.memory()?;
        peak = peak.max(rss);
        if (rss - last).abs() > 1.0 {
            last_change = Instant::now();
            last = rss;
        }
        if last_change.elapsed() > Duration::from_secs(5) && sampling.elapsed() > Duration::from_secs(10) {
            break;
        }
    }
    drop(silent);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (after, hwm) = server.memory()?;
    // The writer still gets its whole collection.
    let mut reader = server.connect(&access).await?;
    let count = read_snapshot(&mut reader).await?;

    println!(
        "silent connections: {} admitted, {refused} refused (per-user cap)",
        SILENT_CONNECTIONS - refused
    );
    println!(
        "server RSS, MiB: idle {idle:.0}; after the writes {before:.0} (peak during writes {puts_peak:.0})"
    );
    println!(
        "server RSS, MiB: peak with the silent connections {peak:.0}; after they closed {after:.0}; high-water mark {hwm:.0}"
    );
    println!("a new connection's snapshot: {count} items");
    if count != ITEMS {
        return Err(format!("expected {ITEMS} items, got {count}").into());
    }
    Ok(())
}
