//! A TCP proxy owned by a test, between the client and a real server, that can pass
//! traffic through or inject the faults real networks produce: a dropped connection, a
//! stall, a reset, a 503, a 429 or a captive portal's HTML page. It counts the requests it
//! sees per path, so a test can assert "exactly one `/auth/refresh`".

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the proxy does with the next connections.
#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// Forward to the server.
    Pass,
    /// Refuse service: accept, then close at once without answering.
    Drop,
    /// Accept and read, never answer (the client's timeout fires).
    Stall,
    /// Close with a TCP reset after reading the request.
    Reset,
    /// Answer 503 with `Retry-After: 1`.
    Unavailable,
    /// Answer 429 with `Retry-After: 2`.
    RateLimited,
    /// Answer 200 with a captive portal's HTML page.
    CaptivePortal,
    /// Forward to the server, then hold its answer this long (a slow network: the server
    /// has acted before the client hears of it).
    HoldAnswers(std::time::Duration),
    /// Forward to the server, then give the client `rewrite(answer)` instead (a hostile or
    /// broken server; see [`with_body`] and [`with_header`]).
    Rewrite(fn(&[u8]) -> Vec<u8>),
}

/// `response` with its JSON body changed by `change` (and its `Content-Length` fixed).
pub fn with_body(response: &[u8], change: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    let end = find(response, b"\r\n\r\n").expect("a complete answer") + 4;
    let mut body: serde_json::Value = serde_json::from_slice(&response[end..]).expect("a JSON answer");
    change(&mut body);
    let body = body.to_string();
    let head = String::from_utf8_lossy(&response[..end - 4]);
    let mut out = String::new();
    for line in head.split("\r\n") {
        if !line.to_ascii_lowercase().starts_with("content-length:") {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    format!("{out}Content-Length: {}\r\n\r\n{body}", body.len()).into_bytes()
}

/// `response` with header `name` set to `value` (replacing any it had).
pub fn with_header(response: &[u8], name: &str, value: &str) -> Vec<u8> {
    let end = find(response, b"\r\n\r\n").expect("a complete answer") + 4;
    let head = String::from_utf8_lossy(&response[..end - 4]);
    let prefix = format!("{}:", name.to_ascii_lowercase());
    let mut out = String::new();
    for line in head.split("\r\n") {
        if !line.to_ascii_lowercase().starts_with(&prefix) {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    let mut bytes = format!("{out}{name}: {value}\r\n\r\n").into_bytes();
    bytes.extend_from_slice(&response[end..]);
    bytes
}

/// A running proxy; stops when dropped.
pub struct FaultProxy {
    addr: SocketAddr,
    state: Arc<Mutex<ProxyState>>,
    task: tokio::task::JoinHandle<()>,
}

struct ProxyState {
    fault: Fault,
    upstream: SocketAddr,
    seen: HashMap<String, usize>,
}

impl FaultProxy {
    /// A proxy on a free loopback port in front of `upstream`.
    pub async fn start(upstream: SocketAddr) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let state = Arc::new(Mutex::new(ProxyState {
            fault: Fault::Pass,
            upstream,
            seen: HashMap::new(),
        }));
        let shared = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(serve(client, shared.clone()));
            }
        });
        FaultProxy { addr, state, task }
    }

    /// `http://127.0.0.1:PORT`, to give the client as its server URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Sets what happens to the next requests.
    pub fn set(&self, fault: Fault) {
        self.state.lock().expect("proxy state").fault = fault;
    }

    /// Points the proxy at another upstream (a restarted server).
    pub fn set_upstream(&self, upstream: SocketAddr) {
        self.state.lock().expect("proxy state").upstream = upstream;
    }

    /// How many requests for `path` the proxy has seen (forwarded or not).
    pub fn count(&self, path: &str) -> usize {
        self.state
            .lock()
            .expect("proxy state")
            .seen
            .get(path)
            .copied()
            .unwrap_or(0)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One client connection: requests are read one at a time (the client uses keep-alive),
/// counted, then forwarded or answered with the configured fault.
async fn serve(mut client: TcpStream, state: Arc<Mutex<ProxyState>>) {
    let _ = client.set_nodelay(true);
    let mut upstream: Option<TcpStream> = None;
    loop {
        let Some(request) = read_request(&mut client).await else {
            return;
        };
        let path = request_path(&request);
        let (fault, target) = {
            let mut state = state.lock().expect("proxy state");
            *state.seen.entry(path).or_default() += 1;
            (state.fault, state.upstream)
        };
        let canned = match fault {
            Fault::Pass | Fault::HoldAnswers(_) | Fault::Rewrite(_) => None,
            Fault::Drop => return,
            Fault::Stall => {
                std::future::pending::<()>().await;
                return;
            }
            Fault::Reset => {
                // SO_LINGER 0 makes the close a TCP reset, which is the point here.
                #[allow(deprecated)]
                let _ = client.set_linger(Some(std::time::Duration::ZERO));
                return;
            }
            Fault::Unavailable => Some(canned_response(
                "503 Service Unavailable",
                "text/plain",
                "Retry-After: 1\r\n",
                "upstream unavailable",
            )),
            Fault::RateLimited => Some(canned_response(
                "429 Too Many Requests",
                "text/plain",
                "Retry-After: 2\r\n",
                "slow down",
            )),
            Fault::CaptivePortal => Some(canned_response(
                "200 OK",
                "text/html",
                "",
                "<html><body><h1>Welcome to Airport Wi-Fi</h1><a href=\"/login\">Accept terms</a></body></html>",
            )),
        };
        if let Some(response) = canned {
            if client.write_all(response.as_bytes()).await.is_err() {
                return;
            }
            continue;
        }
        if upstream.is_none() {
            match TcpStream::connect(target).await {
                Ok(stream) => {
                    let _ = stream.set_nodelay(true);
                    upstream = Some(stream);
                }
                // The server is down: the client sees its connection closed.
                Err(_) => return,
            }
        }
        let Some(server) = upstream.as_mut() else { return };
        if server.write_all(&request).await.is_err() {
            return;
        }
        let Some(response) = read_response(server).await else {
            return;
        };
        if let Fault::HoldAnswers(delay) = fault {
            tokio::time::sleep(delay).await;
        }
        let response = match fault {
            Fault::Rewrite(rewrite) => rewrite(&response),
            _ => response,
        };
        if client.write_all(&response).await.is_err() {
            return;
        }
    }
}

fn canned_response(status: &str, content_type: &str, extra: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n{extra}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

fn request_path(request: &[u8]) -> String {
    let line = request.split(|&b| b == b'\r').next().unwrap_or_default();
    let text = String::from_utf8_lossy(line);
    let target = text.split(' ').nth(1).unwrap_or_default();
    target.split('?').next().unwrap_or_default().to_owned()
}

/// Reads one HTTP/1.1 message (headers plus a `Content-Length` body; the client and the
/// server kit never use chunked bodies for these small JSON messages).
async fn read_message(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut buffer = Vec::with_capacity(2048);
    let mut chunk = [0u8; 4096];
    let header_end = loop {
        if let Some(end) = find(&buffer, b"\r\n\r\n") {
            break end + 4;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    };
    let headers = String::from_utf8_lossy(&buffer[..header_end]).to_ascii_lowercase();
    let length = headers
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|value| value.trim().parse::<usize>().ok())
        .unwrap_or(0);
    while buffer.len() < header_end + length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
    Some(buffer)
}

async fn read_request(stream: &mut TcpStream) -> Option<Vec<u8>> {
    read_message(stream).await
}

async fn read_response(stream: &mut TcpStream) -> Option<Vec<u8>> {
    read_message(stream).await
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|window| window == needle)
}
