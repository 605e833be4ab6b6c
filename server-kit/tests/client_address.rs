//! A router served without the client's address (a plain `axum::serve`, no `ConnectInfo`)
//! still answers, and says so in the log, loudly and once: every client would otherwise
//! share one rate-limit bucket without anyone noticing.

use std::io::Write;
use std::sync::{Arc, Mutex};

use holdfast_server_kit::{Kit, ServerConfig, Stores};
use holdfast_testing::quick;

/// Log lines written by the subscriber, kept for the test to read.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_client_address_is_logged_once_as_an_error() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();

    let dir = tempfile::tempdir().unwrap();
    let mut config = ServerConfig::new(vec![holdfast_testing::SECRET.to_owned()]);
    quick(&mut config);
    let kit = Kit::builder(config, Stores::sqlite(dir.path().join("auth.db")).unwrap())
        .build()
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/auth/me", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, kit.router()).await });

    // reqwest is built with rustls and no provider in this workspace (holdfast-core).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    for _ in 0..3 {
        let answer = client.get(&url).send().await.expect("answered");
        assert_eq!(answer.status(), 401, "the routes work, addresses or not");
    }
    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let warnings: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("without the client's address"))
        .collect();
    assert_eq!(warnings.len(), 1, "{log}");
    assert!(warnings[0].contains("ERROR"), "{}", warnings[0]);
    assert!(
        warnings[0].contains("into_make_service_with_connect_info"),
        "{}",
        warnings[0]
    );
}
