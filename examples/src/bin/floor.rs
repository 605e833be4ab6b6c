//! `floor`: the HTTP floor of this machine for the `/auth/me` figures (issue 16).
//!
//! A bare axum handler answering `GET /auth/me` with a constant JSON body as long as
//! holdfast-server's answer for a typical user (147 bytes: the account of
//! `bench-user@example.com`, the address `scripts/bench.sh` signs up), with the same
//! `content-type` and `cache-control` headers, on a multi-threaded tokio runtime like
//! holdfast-server's. No token check, no store, no middleware: what `wrk` measures against it
//! is what the machine, hyper and axum can do, so each `/auth/me` figure can be given as a
//! ratio to it.
//!
//! ```sh
//! cargo build --release -p holdfast-examples --bin floor
//! target/release/floor --listen 127.0.0.1:0   # prints `listening on http://ADDR`
//! wrk -t2 -c16 -d5s http://ADDR/auth/me
//! ```
//!
//! The first line on stdout is exactly `listening on http://ADDR`, as holdfast-server's.
//! SIGINT or SIGTERM stops it.

use std::net::SocketAddr;
use std::process::ExitCode;

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use clap::Parser;

/// The length of holdfast-server's `GET /auth/me` body for `bench-user@example.com`.
const DEFAULT_BODY_BYTES: usize = 147;

/// Answers GET /auth/me with a constant JSON body: the floor for the /auth/me figures.
#[derive(Debug, Parser)]
#[command(name = "floor")]
struct Args {
    /// Address to listen on (port 0 picks a free port; the first stdout line says which).
    #[arg(long, default_value = "127.0.0.1:0", value_name = "ADDR")]
    listen: SocketAddr,

    /// Length of the body in bytes (the email address is padded or cut to fit; at least 140).
    #[arg(long, default_value_t = DEFAULT_BODY_BYTES, value_name = "N", value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(140..=65_536))]
    body_bytes: usize,
}

/// A `/auth/me`-shaped body of exactly `length` bytes (at least 140).
fn body(length: usize) -> String {
    let before = "{\"data\":{\"id\":\"00000000-0000-4000-8000-000000000000\",\"email\":\"";
    let after = "@example.com\",\"name\":null,\"emailVerified\":false,\"createdAt\":1796512201450}}";
    let local = length.saturating_sub(before.len() + after.len()).max(1);
    let mut body = String::with_capacity(length);
    body.push_str(before);
    body.push_str(
        &"bench-user"
            .chars()
            .chain(std::iter::repeat('x'))
            .take(local)
            .collect::<String>(),
    );
    body.push_str(after);
    body
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("floor: cannot start the runtime: {error}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(serve(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("floor: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: Args) -> Result<(), String> {
    let body = bytes::Bytes::from(body(args.body_bytes));
    let me = move || {
        let body = body.clone();
        async move { constant(body) }
    };
    let router = axum::Router::new().route("/auth/me", get(me));
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let address = listener
        .local_addr()
        .map_err(|e| format!("cannot read the bound address: {e}"))?;
    {
        use std::io::Write;
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "listening on http://{address}").map_err(|e| e.to_string())?;
        stdout.flush().map_err(|e| e.to_string())?;
    }
    axum::serve(listener, router)
        .with_graceful_shutdown(stop_signal())
        .await
        .map_err(|e| format!("serving: {e}"))
}

fn constant(body: bytes::Bytes) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("application/json")),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        body,
    )
        .into_response()
}

/// SIGINT or SIGTERM.
async fn stop_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(_) => {
                let _ = interrupt.await;
                return;
            }
        };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_has_the_asked_length_and_is_json() {
        for length in [140, 147, 200, 1000] {
            let body = body(length);
            assert_eq!(body.len(), length);
            let value: serde_json::Value = serde_json::from_str(&body).expect("JSON");
            assert!(value["data"]["email"].as_str().unwrap().ends_with("@example.com"));
        }
        assert!(body(DEFAULT_BODY_BYTES).contains("\"email\":\"bench-user@example.com\""));
    }
}
