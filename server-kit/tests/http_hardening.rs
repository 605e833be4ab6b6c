//! The HTTP server's defences against slow and oversized clients, over raw loopback TCP:
//! a client that never finishes its headers or its body cannot hold a connection, and a
//! declared body over the limit is refused before it is read.

use std::time::{Duration, Instant};

use holdfast_server_kit::server::ServeOptions;
use holdfast_testing::TestServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TIMEOUT: Duration = Duration::from_millis(300);
/// Generous: the machine is shared and noisy; what matters is that the wait is bounded.
const BOUND: Duration = Duration::from_secs(10);

async fn start() -> TestServer {
    start_with(ServeOptions {
        header_read_timeout: TIMEOUT,
        ..ServeOptions::default()
    })
    .await
}

async fn start_with(options: ServeOptions) -> TestServer {
    TestServer::builder()
        .quick()
        .configure(|config| {
            config.body_read_timeout = TIMEOUT;
            config.max_body_bytes = 4096;
        })
        .serve_options(options)
        .start()
        .await
}

/// Reads until the server closes the connection (or `BOUND` passes), returning the text.
async fn read_to_close(stream: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let read = tokio::time::timeout(BOUND, stream.read_to_end(&mut out)).await;
    assert!(
        read.is_ok(),
        "the server must close the connection within {BOUND:?}"
    );
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_never_finishes_its_headers_is_disconnected() {
    let server = start().await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(b"POST /auth/signin HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    read_to_close(&mut stream).await;
    assert!(
        started.elapsed() >= TIMEOUT / 2,
        "closed too early: {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_body_that_never_arrives_gets_408() {
    let server = start().await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let head = "POST /auth/signin HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                Content-Length: 50\r\nConnection: close\r\n\r\n{\"email\"";
    stream.write_all(head.as_bytes()).await.unwrap();
    let response = read_to_close(&mut stream).await;
    assert!(response.starts_with("HTTP/1.1 408"), "{response}");
    assert!(response.contains("\"code\":\"VALIDATION_ERROR\""), "{response}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_declared_length_over_the_limit_is_refused_before_reading() {
    let server = start().await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    // Nothing of the 10 MB body is ever sent: the answer must not wait for it.
    let head = "POST /auth/signup HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                Content-Length: 10000000\r\nConnection: close\r\n\r\n";
    stream.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let response = read_to_close(&mut stream).await;
    assert!(response.starts_with("HTTP/1.1 413"), "{response}");
    assert!(
        started.elapsed() < TIMEOUT,
        "answered without waiting for the body: {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_keep_alive_connection_serves_several_requests() {
    let server = start().await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let request = b"GET /auth/me HTTP/1.1\r\nHost: x\r\n\r\n";
    for _ in 0..3 {
        stream.write_all(request).await.unwrap();
        let mut buffer = vec![0u8; 4096];
        let n = tokio::time::timeout(BOUND, stream.read(&mut buffer))
            .await
            .unwrap()
            .unwrap();
        let text = String::from_utf8_lossy(&buffer[..n]);
        assert!(text.starts_with("HTTP/1.1 401"), "{text}");
    }
}

/// A connection from `source` (a loopback address other than 127.0.0.1 stands for another
/// client) that sends nothing.
async fn silent_from(source: &str, server: std::net::SocketAddr) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    socket.connect(server).await.unwrap()
}

/// A request from 127.0.0.1 on a new connection; the status line.
async fn status_line(server: std::net::SocketAddr) -> String {
    let mut stream = TcpStream::connect(server).await.unwrap();
    stream
        .write_all(b"GET /auth/me HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let text = read_to_close(&mut stream).await;
    text.lines().next().unwrap_or_default().to_owned()
}

/// How many of `streams` the server refused with `status` (answering it and closing); the
/// others are still open after a while: held. Checked all at once.
async fn count_refused(streams: &mut [TcpStream], status: &str) -> usize {
    let checks = streams.iter_mut().map(|stream| refused_with(stream, status));
    futures_util::future::join_all(checks)
        .await
        .into_iter()
        .filter(|refused| *refused)
        .count()
}

async fn refused_with(stream: &mut TcpStream, status: &str) -> bool {
    let mut out = Vec::new();
    match tokio::time::timeout(Duration::from_secs(3), stream.read_to_end(&mut out)).await {
        Ok(_) => {
            let text = String::from_utf8_lossy(&out);
            assert!(text.starts_with(&format!("HTTP/1.1 {status}")), "{text}");
            assert!(text.contains("retry-after: 1"), "{text}");
            true
        }
        Err(_) => false,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_connection_that_never_sends_a_byte_is_closed() {
    let server = start_with(ServeOptions {
        first_byte_timeout: TIMEOUT,
        ..ServeOptions::default()
    })
    .await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let started = Instant::now();
    assert_eq!(read_to_close(&mut stream).await, "");
    assert!(started.elapsed() >= TIMEOUT / 2, "closed too early");
}

#[tokio::test(flavor = "multi_thread")]
async fn silent_connections_from_one_address_do_not_shut_others_out() {
    let server = start_with(ServeOptions {
        first_byte_timeout: Duration::from_secs(120),
        max_connections: 120,
        max_connections_per_address: 100,
        ..ServeOptions::default()
    })
    .await;
    // 300 silent connections from one address: 100 are held, the rest refused with 429.
    let mut silent = Vec::new();
    for _ in 0..300 {
        silent.push(silent_from("127.0.0.2", server.addr).await);
    }
    assert_eq!(count_refused(&mut silent, "429").await, 200);
    // Another client is served meanwhile.
    assert_eq!(status_line(server.addr).await, "HTTP/1.1 401 Unauthorized");

    // A second address fills the global cap: past it, connections get 503.
    let mut more = Vec::new();
    for _ in 0..25 {
        more.push(silent_from("127.0.0.3", server.addr).await);
    }
    assert_eq!(count_refused(&mut more, "503").await, 5);
    assert!(status_line(server.addr).await.starts_with("HTTP/1.1 503"));

    // When they go, the server recovers.
    drop(silent);
    drop(more);
    let mut served = false;
    for _ in 0..100 {
        if status_line(server.addr).await == "HTTP/1.1 401 Unauthorized" {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        served,
        "the server serves again once the silent connections closed"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kept_alive_connection_that_goes_idle_is_closed() {
    let server = start().await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(b"GET /auth/me HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let text = read_to_close(&mut stream).await;
    assert!(text.starts_with("HTTP/1.1 401"), "{text}");
}
