//! The bearer path's yardstick (docs/PERFORMANCE.md): a bare axum handler on the same
//! server loop as `holdfast-server` ([`holdfast_server_kit::server::serve`]), answering
//! `GET /auth/me` with a fixed body of the real one's shape and checking nothing.
//!
//! `cargo run --release -p holdfast-server-kit --example bare_me` prints its address.

use axum::Router;
use axum::http::header;
use axum::routing::get;

const BODY: &str = r#"{"data":{"id":"0193f7a2-5b7c-7d4e-9f1a-2b3c4d5e6f70","email":"bench@example.com","name":null,"emailVerified":false,"createdAt":"2026-12-05T23:00:00.000Z"}}"#;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let router = Router::new().route(
        "/auth/me",
        get(|| async { ([(header::CONTENT_TYPE, "application/json")], BODY) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("listening on {}", listener.local_addr()?);
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    holdfast_server_kit::server::serve(listener, router, shutdown).await
}
