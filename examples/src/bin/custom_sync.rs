//! Runs the custom sync endpoint example (`holdfast_examples::custom_sync`) on a temporary
//! SQLite database: `cargo run -p holdfast-examples --bin custom_sync [-- PORT]`.

use holdfast_examples::custom_sync::app;
use holdfast_server_kit::{Kit, ServerConfig, Stores, server, tokens};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = std::env::args()
        .nth(1)
        .map(|p| p.parse())
        .transpose()?
        .unwrap_or(0);
    let dir = tempfile::tempdir()?;
    let config = ServerConfig::new(vec![tokens::generate_secret()]);
    let kit = Kit::builder(config, Stores::sqlite(dir.path().join("auth.db"))?)
        .build()
        .await?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!(
        "listening on http://{} (WebSocket at /live)",
        listener.local_addr()?
    );
    let mut signals = server::ShutdownSignals::register()?;
    let going_away = kit.going_away().clone();
    server::serve(listener, app(&kit), async move {
        signals.recv().await;
        going_away.trigger();
    })
    .await?;
    Ok(())
}
