//! The `holdfast-server` binary as a process: its command line, its first stdout line,
//! secrets, restarts on the same database, signals and flags.
//!
//! Every test spawns the real binary on `--listen 127.0.0.1:0` with a database in a temp
//! dir and talks HTTP to it. A [`harness::Proc`] kills its child when dropped, so a failing
//! test leaves no server behind.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use harness::{Launch, Reply, Server};
use holdfast_protocol::{Claims, TokenType};
use serde_json::json;

/// How long a signalled server may take to exit (generous: debug build, shared cores).
const EXIT_BOUND: Duration = Duration::from_secs(10);

const SECRET_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const SECRET_B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const PASSWORD: &str = "correct horse battery";

mod harness {
    use std::io::{BufRead, BufReader, Read};
    use std::path::Path;
    use std::process::{Child, Command, ExitStatus, Stdio};
    use std::sync::mpsc;
    use std::sync::{Arc, Mutex};
    use std::thread;
    use std::time::{Duration, Instant};

    use serde_json::Value;

    /// How long the binary may take to print its first line or to exit on its own.
    const START_BOUND: Duration = Duration::from_secs(60);

    /// A spawned binary, killed (SIGKILL) and reaped on drop.
    pub struct Proc {
        child: Child,
        stderr: Arc<Mutex<String>>,
        stdout_lines: mpsc::Receiver<String>,
    }

    /// The binary with `args`, `HOLDFAST_SECRET` = `secret` or unset, `RUST_LOG` unset
    /// whatever the test runner's environment says, stdout and stderr piped.
    fn command(secret: Option<&str>, args: &[String]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_holdfast-server"));
        command
            .args(args)
            .env_remove("HOLDFAST_SECRET")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(secret) = secret {
            command.env("HOLDFAST_SECRET", secret);
        }
        command
    }

    impl Drop for Proc {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    impl Proc {
        /// Spawns the binary with `args`; `HOLDFAST_SECRET` is `secret` or unset, and
        /// `RUST_LOG` is unset whatever the test runner's environment says.
        pub fn spawn(secret: Option<&str>, args: &[String]) -> Proc {
            Proc::adopt(command(secret, args).spawn().expect("spawn holdfast-server"))
        }

        /// Spawns the binary with its stdout connected to a shell that sends it `signal`
        /// the instant the first line appears (no test-side latency), then echoes that line
        /// and the rest: `(server, signaller)`; the signaller's stdout lines are the server's.
        pub fn spawn_signalled_on_first_line(
            secret: Option<&str>,
            args: &[String],
            signal: &str,
        ) -> (Proc, Proc) {
            let mut server = command(secret, args).spawn().expect("spawn holdfast-server");
            let stdout = server.stdout.take().expect("piped stdout");
            let script =
                format!("IFS= read -r line; kill -{signal} \"$1\"; printf '%s\\n' \"$line\"; exec cat");
            let server = Proc::adopt(server);
            let signaller = Command::new("sh")
                .args(["-c", &script, "sh", &server.pid().to_string()])
                .stdin(Stdio::from(stdout))
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn sh");
            (server, Proc::adopt(signaller))
        }

        /// Takes charge of `child`, reading whichever of its stdout and stderr are piped.
        fn adopt(mut child: Child) -> Proc {
            let (lines, stdout_lines) = mpsc::channel();
            if let Some(stdout) = child.stdout.take() {
                thread::spawn(move || {
                    for line in BufReader::new(stdout).lines() {
                        let Ok(line) = line else { break };
                        if lines.send(line).is_err() {
                            break;
                        }
                    }
                });
            }
            let collected = Arc::new(Mutex::new(String::new()));
            if let Some(mut stderr) = child.stderr.take() {
                let sink = Arc::clone(&collected);
                thread::spawn(move || {
                    let mut buffer = [0u8; 4096];
                    loop {
                        match stderr.read(&mut buffer) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => sink
                                .lock()
                                .unwrap()
                                .push_str(&String::from_utf8_lossy(&buffer[..n])),
                        }
                    }
                });
            }
            Proc {
                child,
                stderr: collected,
                stdout_lines,
            }
        }

        pub fn pid(&self) -> u32 {
            self.child.id()
        }

        /// Everything written to stderr so far.
        pub fn stderr(&self) -> String {
            self.stderr.lock().unwrap().clone()
        }

        /// Waits until stderr contains `needle` (it is read on another thread), or `bound`.
        pub fn stderr_eventually_contains(&self, needle: &str, bound: Duration) -> bool {
            let deadline = Instant::now() + bound;
            loop {
                if self.stderr().contains(needle) {
                    return true;
                }
                if Instant::now() > deadline {
                    return false;
                }
                thread::sleep(Duration::from_millis(20));
            }
        }

        /// The next stdout line, or `None` when stdout closed or `bound` passed.
        pub fn next_line(&self, bound: Duration) -> Option<String> {
            self.stdout_lines.recv_timeout(bound).ok()
        }

        /// Sends `signal` (`TERM`, `INT`, `KILL`) with the `kill` command.
        pub fn signal(&self, signal: &str) {
            let status = Command::new("kill")
                .arg(format!("-{signal}"))
                .arg(self.pid().to_string())
                .status()
                .expect("run kill");
            assert!(status.success(), "kill -{signal} {} failed: {status}", self.pid());
        }

        /// Whether the process is still running.
        pub fn running(&mut self) -> bool {
            self.child.try_wait().expect("try_wait").is_none()
        }

        /// The exit status, or `None` if the process is still running after `bound`.
        pub fn wait_for_exit(&mut self, bound: Duration) -> Option<ExitStatus> {
            let deadline = Instant::now() + bound;
            loop {
                if let Some(status) = self.child.try_wait().expect("try_wait") {
                    return Some(status);
                }
                if Instant::now() > deadline {
                    return None;
                }
                thread::sleep(Duration::from_millis(10));
            }
        }

        /// The exit status and stderr of a run expected to end on its own.
        pub fn finish(mut self) -> (ExitStatus, String) {
            let status = self
                .wait_for_exit(START_BOUND)
                .unwrap_or_else(|| panic!("holdfast-server did not exit; stderr:\n{}", self.stderr()));
            // The reader thread sees end of file once the process is gone.
            let deadline = Instant::now() + Duration::from_secs(5);
            while Arc::strong_count(&self.stderr) > 1 && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(10));
            }
            let stderr = self.stderr();
            (status, stderr)
        }
    }

    /// How to start a server.
    pub struct Launch<'a> {
        pub database: &'a Path,
        pub secret: Option<&'a str>,
        pub args: Vec<String>,
    }

    impl<'a> Launch<'a> {
        /// A server on `database` (a file path), with `HOLDFAST_SECRET` = `secret`.
        pub fn new(database: &'a Path, secret: Option<&'a str>) -> Launch<'a> {
            Launch {
                database,
                secret,
                args: Vec::new(),
            }
        }

        /// Adds command-line arguments.
        pub fn args(mut self, args: &[&str]) -> Launch<'a> {
            self.args.extend(args.iter().map(|a| a.to_string()));
            self
        }

        /// The full argument list.
        pub fn command_line(&self) -> Vec<String> {
            let mut args = vec![
                "--listen".to_owned(),
                "127.0.0.1:0".to_owned(),
                "--database".to_owned(),
                format!("sqlite:{}", self.database.display()),
            ];
            args.extend(self.args.iter().cloned());
            args
        }

        /// Starts the server and waits for its first stdout line.
        pub fn start(self) -> Server {
            let proc = Proc::spawn(self.secret, &self.command_line());
            let Some(first_line) = proc.next_line(START_BOUND) else {
                let (status, stderr) = proc.finish();
                panic!("holdfast-server printed no line (exit {status}); stderr:\n{stderr}");
            };
            let address = first_line
                .strip_prefix("listening on http://")
                .unwrap_or_else(|| panic!("unexpected first line {first_line:?}"))
                .to_owned();
            let client = {
                // reqwest is built with rustls and no provider in this workspace (holdfast-core).
                let _ = rustls::crypto::ring::default_provider().install_default();
                reqwest::Client::builder()
            }
            .no_proxy()
            .build()
            .expect("HTTP client");
            Server {
                proc,
                first_line,
                address,
                client,
            }
        }

        /// Runs the binary expecting it to fail before listening: its exit status and stderr.
        pub fn fail(self) -> (ExitStatus, String) {
            let proc = Proc::spawn(self.secret, &self.command_line());
            if let Some(line) = proc.next_line(START_BOUND) {
                panic!("holdfast-server started ({line}) where it should have refused to");
            }
            proc.finish()
        }
    }

    /// A running server.
    pub struct Server {
        pub proc: Proc,
        pub first_line: String,
        /// `127.0.0.1:PORT`.
        pub address: String,
        client: reqwest::Client,
    }

    /// An HTTP answer.
    #[derive(Debug)]
    pub struct Reply {
        pub status: u16,
        pub headers: reqwest::header::HeaderMap,
        pub text: String,
    }

    impl Reply {
        pub fn json(&self) -> Value {
            serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
        }

        /// The `code` of an error reply.
        pub fn code(&self) -> String {
            self.json()["code"].as_str().unwrap_or_default().to_owned()
        }

        /// Asserts an error reply with `status` and `code`.
        #[track_caller]
        pub fn assert_error(&self, status: u16, code: &str) {
            assert_eq!(
                (self.status, self.code().as_str()),
                (status, code),
                "reply: {}",
                self.text
            );
        }
    }

    impl Server {
        pub fn url(&self, path: &str) -> String {
            format!("http://{}{path}", self.address)
        }

        pub async fn call(
            &self,
            method: &str,
            path: &str,
            bearer: Option<&str>,
            body: Option<&Value>,
        ) -> Reply {
            let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
            let mut request = self.client.request(method, self.url(path));
            if let Some(token) = bearer {
                request = request.bearer_auth(token);
            }
            if let Some(body) = body {
                request = request.json(body);
            }
            let response = request.send().await.unwrap_or_else(|e| panic!("{path}: {e}"));
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let text = response.text().await.expect("body");
            Reply {
                status,
                headers,
                text,
            }
        }

        pub async fn post(&self, path: &str, body: &Value) -> Reply {
            self.call("POST", path, None, Some(body)).await
        }

        pub async fn me(&self, access_token: &str) -> Reply {
            self.call("GET", "/auth/me", Some(access_token), None).await
        }

        /// Sends SIGTERM and waits for a clean exit.
        pub fn stop(mut self) {
            self.proc.signal("TERM");
            let status = self.proc.wait_for_exit(super::EXIT_BOUND);
            assert!(
                status.is_some_and(|s| s.success()),
                "exit after SIGTERM: {status:?}; stderr:\n{}",
                self.proc.stderr()
            );
        }

        /// Kills the server with SIGKILL (a crash) and reaps it.
        pub fn crash(mut self) {
            self.proc.signal("KILL");
            assert!(
                self.proc.wait_for_exit(super::EXIT_BOUND).is_some(),
                "SIGKILL did not end the server"
            );
        }
    }
}

fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

/// Signs up `email`: the tokens `(access, refresh)`.
async fn sign_up(server: &Server, email: &str) -> (String, String) {
    let reply = server
        .post("/auth/signup", &json!({"email": email, "password": PASSWORD}))
        .await;
    assert_eq!(reply.status, 201, "sign-up: {}", reply.text);
    let tokens = &reply.json()["data"]["tokens"];
    (
        tokens["accessToken"].as_str().expect("accessToken").to_owned(),
        tokens["refreshToken"].as_str().expect("refreshToken").to_owned(),
    )
}

async fn wrong_sign_in(server: &Server, email: &str) -> Reply {
    server
        .post(
            "/auth/signin",
            &json!({"email": email, "password": "not the password"}),
        )
        .await
}

fn assert_no_panic(stderr: &str) {
    assert!(!stderr.contains("panicked"), "the binary panicked:\n{stderr}");
}

/// The files in `dir`, sorted.
fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|entry| entry.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

// 1. The first stdout line, and the port it names answers.

#[tokio::test]
async fn first_stdout_line_names_the_bound_address_and_it_answers() {
    let dir = temp_dir();
    let server = Launch::new(&dir.path().join("db"), Some(SECRET_A)).start();

    let port = server
        .first_line
        .strip_prefix("listening on http://127.0.0.1:")
        .unwrap_or_else(|| panic!("first line {:?}", server.first_line));
    let port: u16 = port
        .parse()
        .unwrap_or_else(|_| panic!("first line {:?}", server.first_line));
    assert_ne!(port, 0, "the line must name the port actually bound");
    assert_eq!(server.first_line, format!("listening on http://127.0.0.1:{port}"));

    let reply = server.call("GET", "/auth/me", None, None).await;
    reply.assert_error(401, "TOKEN_INVALID");
    let content_type = reply
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    assert!(
        content_type.starts_with("application/json"),
        "content type {content_type:?}"
    );
    assert!(reply.json()["error"].is_string(), "reply: {}", reply.text);

    let reply = server.call("GET", "/nowhere", None, None).await;
    assert_eq!(reply.status, 404, "reply: {}", reply.text);

    // Logs go to stderr, never after the address line on stdout.
    assert_eq!(server.proc.next_line(Duration::from_millis(200)), None);
    server.stop();
}

// 2. --help.

#[test]
fn help_documents_every_flag_and_the_secret_variable() {
    let proc = harness::Proc::spawn(None, &["--help".to_owned()]);
    let mut help = String::new();
    while let Some(line) = proc.next_line(Duration::from_secs(30)) {
        help.push_str(&line);
        help.push('\n');
    }
    let (status, stderr) = proc.finish();
    assert!(status.success(), "--help exit {status}; stderr:\n{stderr}");
    for flag in [
        "--listen",
        "--database",
        "--database-schema",
        "--access-ttl",
        "--refresh-ttl",
        "--device-credential-ttl",
        "--grace-window",
        "--rate-limit",
        "--ip-block",
        "--trusted-proxy",
        "--prefix",
        "--public-url",
        "--max-body-bytes",
        "--password-min-length",
        "--password-require",
        "--hashing-concurrency",
        "--shutdown-timeout",
        "--session-idle-timeout",
        "--session-lifetime",
        "--max-sessions-per-user",
        "--smtp-url",
        "--mail-from",
        "--reset-link",
        "--verify-link",
        "users",
        "HOLDFAST_SECRET",
        "listening on http://",
    ] {
        assert!(help.contains(flag), "--help does not mention {flag}:\n{help}");
    }
}

// 3. Signals.

#[test]
fn a_signal_right_after_the_first_line_stops_gracefully() {
    // A supervisor may signal as soon as it has read the address: the handlers must already
    // be installed then, or the default disposition kills the process. Several rounds, as
    // the window is short.
    for round in 0..5 {
        for signal in ["TERM", "INT"] {
            let dir = temp_dir();
            let database = dir.path().join("db");
            let launch = Launch::new(&database, Some(SECRET_A));
            let (mut server, signaller) =
                harness::Proc::spawn_signalled_on_first_line(launch.secret, &launch.command_line(), signal);
            let line = signaller.next_line(Duration::from_secs(60));
            assert!(
                line.as_deref()
                    .is_some_and(|l| l.starts_with("listening on http://127.0.0.1:")),
                "first line {line:?}; stderr:\n{}",
                server.stderr()
            );
            let status = server.wait_for_exit(EXIT_BOUND);
            assert_eq!(
                status.map(|s| s.code()),
                Some(Some(0)),
                "round {round}, SIG{signal}: {status:?}; stderr:\n{}",
                server.stderr()
            );
        }
    }
}

#[tokio::test]
async fn sigint_after_serving_exits_zero_and_frees_the_port() {
    let dir = temp_dir();
    let mut server = Launch::new(&dir.path().join("db"), Some(SECRET_A)).start();
    sign_up(&server, "sigint@example.com").await;
    server.proc.signal("INT");
    let status = server.proc.wait_for_exit(EXIT_BOUND);
    assert_eq!(
        status.map(|s| s.code()),
        Some(Some(0)),
        "stderr:\n{}",
        server.proc.stderr()
    );
    assert!(
        TcpStream::connect(&server.address).is_err(),
        "still listening after exit"
    );
}

/// Opens a connection and sends a sign-up request whose body stops after `sent` bytes.
fn half_sent_sign_up(server: &Server, email: &str, sent: usize) -> (TcpStream, Vec<u8>) {
    let body = json!({"email": email, "password": PASSWORD})
        .to_string()
        .into_bytes();
    let mut stream = TcpStream::connect(&server.address).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let head = format!(
        "POST /auth/signup HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        server.address,
        body.len()
    );
    stream.write_all(head.as_bytes()).expect("send head");
    stream.write_all(&body[..sent]).expect("send part of the body");
    (stream, body[sent..].to_vec())
}

#[test]
fn sigterm_lets_a_request_in_flight_finish() {
    let dir = temp_dir();
    let mut server = Launch::new(&dir.path().join("db"), Some(SECRET_A)).start();
    let (mut stream, rest) = half_sent_sign_up(&server, "inflight@example.com", 10);
    // Let the server read the head and start the handler before the signal.
    std::thread::sleep(Duration::from_millis(500));
    server.proc.signal("TERM");
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        server.proc.running(),
        "exited with a request in flight; stderr:\n{}",
        server.proc.stderr()
    );

    stream.write_all(&rest).expect("send the rest of the body");
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let response = String::from_utf8_lossy(&response);
    assert!(
        response.starts_with("HTTP/1.1 201"),
        "response to the request in flight:\n{response}"
    );
    assert!(response.contains("accessToken"), "response:\n{response}");

    let status = server.proc.wait_for_exit(EXIT_BOUND);
    assert_eq!(
        status.map(|s| s.code()),
        Some(Some(0)),
        "stderr:\n{}",
        server.proc.stderr()
    );
}

#[test]
fn a_half_sent_request_cannot_hold_the_shutdown_forever() {
    let dir = temp_dir();
    let mut server = Launch::new(&dir.path().join("db"), Some(SECRET_A))
        .args(&["--shutdown-timeout", "1"])
        .start();
    let (_stream, _rest) = half_sent_sign_up(&server, "stalled@example.com", 5);
    std::thread::sleep(Duration::from_millis(300));
    let sent = Instant::now();
    server.proc.signal("TERM");
    let status = server.proc.wait_for_exit(EXIT_BOUND);
    assert_eq!(
        status.map(|s| s.code()),
        Some(Some(0)),
        "stderr:\n{}",
        server.proc.stderr()
    );
    assert!(
        sent.elapsed() >= Duration::from_millis(900),
        "did not wait for the request in flight"
    );
}

#[test]
fn a_second_signal_stops_at_once() {
    let dir = temp_dir();
    // The default shutdown timeout (10 s) is longer than the bound below.
    let mut server = Launch::new(&dir.path().join("db"), Some(SECRET_A)).start();
    let (_stream, _rest) = half_sent_sign_up(&server, "stalled@example.com", 5);
    std::thread::sleep(Duration::from_millis(300));
    let sent = Instant::now();
    server.proc.signal("TERM");
    std::thread::sleep(Duration::from_millis(500));
    assert!(server.proc.running(), "did not wait for the request in flight");
    server.proc.signal("INT");
    let status = server.proc.wait_for_exit(Duration::from_secs(5));
    assert_eq!(
        status.map(|s| s.code()),
        Some(Some(0)),
        "stderr:\n{}",
        server.proc.stderr()
    );
    assert!(sent.elapsed() < Duration::from_secs(8));
}

// 4. The generated secret.

#[tokio::test]
async fn without_holdfast_secret_a_private_secret_file_is_kept_and_reused() {
    let dir = temp_dir();
    let database = dir.path().join("auth.db");
    let secret_file = dir.path().join("auth.db.secret");

    let server = Launch::new(&database, None).start();
    assert!(
        server
            .proc
            .stderr_eventually_contains("HOLDFAST_SECRET", Duration::from_secs(5)),
        "no warning about HOLDFAST_SECRET; stderr:\n{}",
        server.proc.stderr()
    );
    let secret = std::fs::read_to_string(&secret_file).expect("the secret file beside the database");
    assert!(
        secret.trim().len() >= 32,
        "secret of {} characters",
        secret.trim().len()
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&secret_file)
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "secret file mode {:o}", mode & 0o777);
    }
    let (access, _) = sign_up(&server, "keeper@example.com").await;
    server.stop();
    // Nothing else is left beside the database (no temporary secret file).
    assert!(
        files_in(dir.path()).iter().all(|f| f.starts_with("auth.db")),
        "{:?}",
        files_in(dir.path())
    );

    let server = Launch::new(&database, None).start();
    assert!(
        server
            .proc
            .stderr_eventually_contains("HOLDFAST_SECRET", Duration::from_secs(5)),
        "no warning about HOLDFAST_SECRET on the second run; stderr:\n{}",
        server.proc.stderr()
    );
    let reply = server.me(&access).await;
    assert_eq!(
        reply.status, 200,
        "token of the first run after the restart: {}",
        reply.text
    );
    assert_eq!(reply.json()["data"]["email"], "keeper@example.com");
    assert_eq!(
        std::fs::read_to_string(&secret_file).expect("secret file"),
        secret,
        "the secret changed"
    );
    server.stop();
}

#[test]
fn a_damaged_secret_file_is_refused_with_its_name() {
    let dir = temp_dir();
    let database = dir.path().join("db");
    // A file cut short, say by a crash while it was written by hand.
    std::fs::write(dir.path().join("db.secret"), "short\n").expect("write");
    let (status, stderr) = Launch::new(&database, None).fail();
    assert!(!status.success());
    assert!(
        stderr.contains("db.secret") && stderr.contains("32"),
        "stderr:\n{stderr}"
    );
    assert_no_panic(&stderr);
}

// 5. Secret rotation.

#[tokio::test]
async fn holdfast_secret_rotation_across_restarts() {
    let dir = temp_dir();
    let database = dir.path().join("db");

    let server = Launch::new(&database, Some(SECRET_A)).start();
    let (signed_by_a, _) = sign_up(&server, "rotate@example.com").await;
    server.stop();
    assert!(
        !dir.path().join("db.secret").exists(),
        "a secret file was written although HOLDFAST_SECRET is set"
    );

    let rotated = format!("{SECRET_B},{SECRET_A}");
    let server = Launch::new(&database, Some(&rotated)).start();
    let reply = server.me(&signed_by_a).await;
    assert_eq!(reply.status, 200, "token signed with A under B,A: {}", reply.text);
    let reply = server
        .post(
            "/auth/signin",
            &json!({"email": "rotate@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(reply.status, 200, "sign-in: {}", reply.text);
    let signed_by_b = reply.json()["data"]["tokens"]["accessToken"]
        .as_str()
        .expect("token")
        .to_owned();
    server.stop();

    let server = Launch::new(&database, Some(SECRET_B)).start();
    server.me(&signed_by_a).await.assert_error(401, "TOKEN_INVALID");
    let reply = server.me(&signed_by_b).await;
    assert_eq!(reply.status, 200, "the first secret signs: {}", reply.text);
    server.stop();
}

#[test]
fn a_short_holdfast_secret_is_refused() {
    for secret in ["tooshort", &format!("{SECRET_A},tooshort")] {
        let dir = temp_dir();
        let (status, stderr) = Launch::new(&dir.path().join("db"), Some(secret)).fail();
        assert!(!status.success(), "HOLDFAST_SECRET={secret}");
        assert!(
            stderr.contains("HOLDFAST_SECRET") && stderr.contains("32"),
            "stderr:\n{stderr}"
        );
        assert!(
            !stderr.contains("tooshort"),
            "the secret leaked into stderr:\n{stderr}"
        );
        assert_no_panic(&stderr);
        assert_eq!(
            files_in(dir.path()),
            Vec::<String>::new(),
            "a refused start left files"
        );
    }
}

// 6. The refresh grace window survives a crash.

#[tokio::test]
async fn refresh_grace_window_survives_a_crash_and_restart() {
    let dir = temp_dir();
    let database = dir.path().join("db");
    let server = Launch::new(&database, Some(SECRET_A)).start();
    let (_, r0) = sign_up(&server, "grace@example.com").await;
    let p1 = server.post("/auth/refresh", &json!({"refreshToken": r0})).await;
    let rotated_at = Instant::now();
    assert_eq!(p1.status, 200, "first refresh: {}", p1.text);
    // A crash right after the rotation: the client never saw P1.
    server.crash();

    let server = Launch::new(&database, Some(SECRET_A))
        .args(&["--grace-window", "60"])
        .start();
    let again = server.post("/auth/refresh", &json!({"refreshToken": r0})).await;
    assert_eq!(
        again.status, 200,
        "R0 within the window after a restart: {}",
        again.text
    );
    assert_eq!(
        again.text, p1.text,
        "the grace answer must be exactly the pair issued before the crash"
    );
    server.crash();

    // The same rotation, judged later with a 1 s window: reuse.
    let server = Launch::new(&database, Some(SECRET_A))
        .args(&["--grace-window", "1"])
        .start();
    let wait = Duration::from_millis(2500).saturating_sub(rotated_at.elapsed());
    tokio::time::sleep(wait).await;
    server
        .post("/auth/refresh", &json!({"refreshToken": r0}))
        .await
        .assert_error(401, "REFRESH_REUSED");
    // Reuse ends the whole family, P1 included.
    let p1_refresh = p1.json()["data"]["refreshToken"]
        .as_str()
        .expect("refreshToken")
        .to_owned();
    let reply = server
        .post("/auth/refresh", &json!({"refreshToken": p1_refresh}))
        .await;
    assert_eq!(reply.status, 401, "P1 after reuse: {}", reply.text);
    server.stop();
}

// 7. Token lifetimes.

fn lifetime(token: &str, expected_type: TokenType) -> i64 {
    let claims = Claims::decode_unverified(token).expect("claims");
    assert_eq!(claims.token_type, expected_type);
    claims.exp - claims.iat
}

#[tokio::test]
async fn token_lifetime_flags_set_the_claims() {
    let dir = temp_dir();
    let server = Launch::new(&dir.path().join("defaults"), Some(SECRET_A)).start();
    let (access, refresh) = sign_up(&server, "ttl@example.com").await;
    assert_eq!(lifetime(&access, TokenType::Access), 900);
    assert_eq!(lifetime(&refresh, TokenType::Refresh), 90 * 24 * 3600);
    server.stop();

    let server = Launch::new(&dir.path().join("short"), Some(SECRET_A))
        .args(&["--access-ttl", "1", "--refresh-ttl", "120"])
        .start();
    let (access, refresh) = sign_up(&server, "ttl@example.com").await;
    assert_eq!(lifetime(&access, TokenType::Access), 1);
    assert_eq!(lifetime(&refresh, TokenType::Refresh), 120);
    let reply = server
        .post("/auth/refresh", &json!({"refreshToken": refresh}))
        .await;
    assert_eq!(reply.status, 200, "refresh: {}", reply.text);
    let pair = &reply.json()["data"];
    assert_eq!(
        lifetime(pair["accessToken"].as_str().expect("access"), TokenType::Access),
        1
    );
    assert_eq!(
        lifetime(
            pair["refreshToken"].as_str().expect("refresh"),
            TokenType::Refresh
        ),
        120
    );
    server.stop();
}

// 8. Rate limits and blocks.

#[tokio::test]
async fn rate_limit_flag_limits_sign_in() {
    let dir = temp_dir();
    let server = Launch::new(&dir.path().join("db"), Some(SECRET_A))
        .args(&["--rate-limit", "2/60"])
        .start();
    for attempt in 1..=2 {
        let reply = wrong_sign_in(&server, "limited@example.com").await;
        assert_eq!(reply.status, 401, "attempt {attempt}: {}", reply.text);
    }
    let reply = wrong_sign_in(&server, "limited@example.com").await;
    reply.assert_error(429, "RATE_LIMITED");
    let retry_after: u64 = reply
        .headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("Retry-After in {:?}", reply.headers));
    assert!((1..=60).contains(&retry_after), "Retry-After: {retry_after}");
    server.stop();
}

#[tokio::test]
async fn account_lockout_flag_sets_the_failures_per_account_and_address() {
    let dir = temp_dir();
    let server = Launch::new(&dir.path().join("db"), Some(SECRET_A))
        .args(&[
            "--rate-limit",
            "off",
            "--ip-block",
            "off",
            "--account-lockout",
            "2/10/60",
        ])
        .start();
    for attempt in 1..=2 {
        let reply = wrong_sign_in(&server, "guarded@example.com").await;
        assert_eq!(reply.status, 401, "attempt {attempt}: {}", reply.text);
    }
    wrong_sign_in(&server, "guarded@example.com")
        .await
        .assert_error(429, "RATE_LIMITED");
    // Another account from the same address is not affected.
    assert_eq!(wrong_sign_in(&server, "other@example.com").await.status, 401);
    server.stop();
}

#[tokio::test]
async fn rate_limit_off_never_limits() {
    let dir = temp_dir();
    let server = Launch::new(&dir.path().join("db"), Some(SECRET_A))
        .args(&[
            "--rate-limit",
            "off",
            "--ip-block",
            "off",
            "--account-lockout",
            "off",
        ])
        .start();
    for attempt in 1..=20 {
        let reply = wrong_sign_in(&server, "unlimited@example.com").await;
        assert_eq!(
            (reply.status, reply.code().as_str()),
            (401, "INVALID_CREDENTIALS"),
            "attempt {attempt}"
        );
    }
    server.stop();
}

#[tokio::test]
async fn ip_block_flag_blocks_after_repeated_failures() {
    let dir = temp_dir();
    let server = Launch::new(&dir.path().join("db"), Some(SECRET_A))
        .args(&["--rate-limit", "off", "--ip-block", "3/60"])
        .start();
    let mut statuses = Vec::new();
    for n in 0..8 {
        let reply = wrong_sign_in(&server, &format!("blocked{n}@example.com")).await;
        statuses.push(reply.status);
        if reply.status == 429 {
            reply.assert_error(429, "RATE_LIMITED");
            assert!(reply.headers.contains_key("retry-after"));
            break;
        }
    }
    assert_eq!(statuses.last(), Some(&429), "never blocked: {statuses:?}");
    assert!(statuses.len() <= 5, "blocked too late: {statuses:?}");
    server.stop();
}

#[tokio::test]
async fn trusted_proxy_flag_believes_x_forwarded_for() {
    async fn sign_in_from(server: &Server, email: &str, client: &str) -> u16 {
        let client_http = {
            // reqwest is built with rustls and no provider in this workspace (holdfast-core).
            let _ = rustls::crypto::ring::default_provider().install_default();
            reqwest::Client::builder()
        }
        .no_proxy()
        .build()
        .expect("client");
        let response = client_http
            .post(server.url("/auth/signin"))
            .header("x-forwarded-for", client)
            .json(&json!({"email": email, "password": "not the password"}))
            .send()
            .await
            .expect("send");
        response.status().as_u16()
    }
    let dir = temp_dir();
    let args = ["--rate-limit", "1/60", "--ip-block", "off"];
    let server = Launch::new(&dir.path().join("a"), Some(SECRET_A))
        .args(&args)
        .args(&["--trusted-proxy", "127.0.0.1"])
        .start();
    assert_eq!(sign_in_from(&server, "one@example.com", "10.0.0.1").await, 401);
    assert_eq!(
        sign_in_from(&server, "two@example.com", "10.0.0.2").await,
        401,
        "addresses share a limit"
    );
    assert_eq!(sign_in_from(&server, "three@example.com", "10.0.0.1").await, 429);
    server.stop();

    let server = Launch::new(&dir.path().join("b"), Some(SECRET_A))
        .args(&args)
        .start();
    assert_eq!(sign_in_from(&server, "one@example.com", "10.0.0.1").await, 401);
    assert_eq!(
        sign_in_from(&server, "two@example.com", "10.0.0.2").await,
        429,
        "spoofable header believed"
    );
    server.stop();
}

#[tokio::test]
async fn prefix_body_and_password_flags_take_effect() {
    let dir = temp_dir();
    let server = Launch::new(&dir.path().join("db"), Some(SECRET_A))
        .args(&[
            "--prefix",
            "/api/auth",
            "--max-body-bytes",
            "2048",
            "--password-min-length",
            "12",
            "--password-require",
            "upper,digit",
            "--hashing-concurrency",
            "1",
        ])
        .start();
    server
        .call("GET", "/api/auth/me", None, None)
        .await
        .assert_error(401, "TOKEN_INVALID");
    assert_eq!(server.call("GET", "/auth/me", None, None).await.status, 404);

    let big = json!({"email": "big@example.com", "password": "x".repeat(4096)});
    assert_eq!(server.post("/api/auth/signup", &big).await.status, 413);

    for password in ["Short1x", "longenough1x", "LONGENOUGHXX"] {
        let reply = server
            .post(
                "/api/auth/signup",
                &json!({"email": "p@example.com", "password": password}),
            )
            .await;
        reply.assert_error(400, "VALIDATION_ERROR");
    }
    let reply = server
        .post(
            "/api/auth/signup",
            &json!({"email": "p@example.com", "password": "Long enough 1"}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    server.stop();
}

// 9 and 10. Refusals.

#[test]
fn bad_arguments_are_refused_without_a_panic_or_files() {
    let cases: &[(&[&str], &str)] = &[
        (&["--rate-limit", "0/0"], "0/0"),
        (&["--rate-limit", "ten"], "ten"),
        (&["--ip-block", "5"], "--ip-block"),
        (&["--grace-window", "61"], "grace window"),
        (&["--access-ttl", "0"], "lifetime"),
        // Values that would overflow time arithmetic are refused at start, not wrapped.
        (&["--refresh-ttl", "9223372036854775807"], "lifetime"),
        (&["--access-ttl", "3153600001"], "lifetime"),
        (&["--rate-limit", "10/9223372036854775807"], "9223372036854775807"),
        (&["--ip-block", "5/9223372036854775807"], "9223372036854775807"),
        (
            &["--account-lockout", "5/20/9223372036854775807"],
            "9223372036854775807",
        ),
        (&["--prefix", "auth"], "prefix"),
        (&["--public-url", "ftp://api.example.com"], "public base URL"),
        (
            &["--public-url", "https://api.example.com?x=1"],
            "public base URL",
        ),
        (&["--max-body-bytes", "10"], "body"),
        (&["--password-min-length", "7"], "password"),
        (&["--password-require", "emoji"], "emoji"),
        (&["--hashing-concurrency", "0"], "concurrency"),
        (&["--trusted-proxy", "proxy.example"], "proxy.example"),
        (&["--no-such-flag"], "--no-such-flag"),
    ];
    for (args, mention) in cases {
        let dir = temp_dir();
        // Without HOLDFAST_SECRET: a refused start must not leave a generated secret either.
        let (status, stderr) = Launch::new(&dir.path().join("db"), None).args(args).fail();
        assert!(!status.success(), "{args:?} was accepted");
        assert!(status.code().is_some(), "{args:?}: killed by a signal ({status})");
        assert!(
            stderr.contains(mention),
            "{args:?}: stderr does not mention {mention:?}:\n{stderr}"
        );
        assert_no_panic(&stderr);
        assert_eq!(
            files_in(dir.path()),
            Vec::<String>::new(),
            "{args:?} left files behind"
        );
    }
}

#[test]
fn an_invalid_listen_address_is_refused() {
    let dir = temp_dir();
    let database = format!("sqlite:{}", dir.path().join("db").display());
    let args = ["--listen", "nonsense", "--database", &database].map(str::to_owned);
    let (status, stderr) = harness::Proc::spawn(None, &args).finish();
    assert!(!status.success());
    assert!(stderr.contains("nonsense"), "stderr:\n{stderr}");
    assert_no_panic(&stderr);
    assert_eq!(files_in(dir.path()), Vec::<String>::new(), "left files behind");
}

#[test]
fn unsupported_databases_are_refused() {
    for (database, mention) in [
        ("postgres://x", "postgres://x"),
        ("sqlite:", "empty"),
        ("sqlite::memory:", "memory"),
    ] {
        let args = vec![
            "--listen".to_owned(),
            "127.0.0.1:0".to_owned(),
            "--database".to_owned(),
            database.to_owned(),
        ];
        let (status, stderr) = harness::Proc::spawn(Some(SECRET_A), &args).finish();
        assert!(!status.success(), "{database} was accepted");
        assert!(stderr.contains(mention), "{database}: stderr:\n{stderr}");
        assert_no_panic(&stderr);
    }
}

#[test]
fn an_unusable_database_path_is_refused_clearly() {
    let dir = temp_dir();
    let file = dir.path().join("plain-file");
    std::fs::write(&file, "not a directory").expect("write");
    let under_a_file = file.join("db");
    for secret in [Some(SECRET_A), None] {
        let (status, stderr) = Launch::new(&under_a_file, secret).fail();
        assert!(!status.success(), "secret {secret:?}");
        assert!(
            stderr.contains(&*under_a_file.to_string_lossy()),
            "the path is not named:\n{stderr}"
        );
        assert_no_panic(&stderr);
    }
    // A directory is not a database file.
    let (status, stderr) = Launch::new(dir.path(), Some(SECRET_A)).fail();
    assert!(!status.success());
    assert!(stderr.contains("cannot open"), "stderr:\n{stderr}");
    assert_no_panic(&stderr);
    #[cfg(target_os = "linux")]
    {
        let (status, stderr) = Launch::new(Path::new("/proc/holdfast-test/db"), Some(SECRET_A)).fail();
        assert!(!status.success());
        assert!(stderr.contains("/proc/holdfast-test/db"), "stderr:\n{stderr}");
        assert_no_panic(&stderr);
    }
}

#[tokio::test]
async fn a_busy_port_is_refused_clearly() {
    let dir = temp_dir();
    let server = Launch::new(&dir.path().join("a"), Some(SECRET_A)).start();
    let args = vec![
        "--listen".to_owned(),
        server.address.clone(),
        "--database".to_owned(),
        format!("sqlite:{}", dir.path().join("b").display()),
    ];
    let (status, stderr) = harness::Proc::spawn(Some(SECRET_A), &args).finish();
    assert!(!status.success());
    assert!(
        stderr.contains("cannot listen") && stderr.contains(&server.address),
        "stderr:\n{stderr}"
    );
    assert_no_panic(&stderr);
    // The running server is unharmed.
    server
        .call("GET", "/auth/me", None, None)
        .await
        .assert_error(401, "TOKEN_INVALID");
    server.stop();
}

// PostgreSQL.

#[path = "postgres_support/mod.rs"]
mod postgres_support;

/// Starts the binary on PostgreSQL (`--database postgres://... --database-schema NAME`):
/// the process and its address.
fn start_on_postgres(args: &[String]) -> (harness::Proc, String) {
    let proc = harness::Proc::spawn(Some(SECRET_A), args);
    let Some(line) = proc.next_line(Duration::from_secs(60)) else {
        let (status, stderr) = proc.finish();
        panic!("holdfast-server on PostgreSQL printed no line (exit {status}); stderr:\n{stderr}");
    };
    let address = line
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    (proc, address)
}

async fn post_json(address: &str, path: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("HTTP client");
    let response = client
        .post(format!("http://{address}{path}"))
        .json(body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON body"))
}

/// `--database postgres://...` keeps accounts across a restart; the schema comes from
/// `--database-schema` (each test its own, dropped afterwards), and HOLDFAST_SECRET is
/// required as there is no file beside the database to keep a generated one in.
#[tokio::test]
async fn a_postgres_database_keeps_accounts_across_restarts() {
    let schema = postgres_support::TestSchema::new();
    let args: Vec<String> = [
        "--listen",
        "127.0.0.1:0",
        "--database",
        &schema.url_as("holdfast-binary-test"),
        "--database-schema",
        &schema.name,
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();

    let (status, stderr) = harness::Proc::spawn(None, &args).finish();
    assert!(!status.success(), "started on PostgreSQL without HOLDFAST_SECRET");
    assert!(stderr.contains("HOLDFAST_SECRET"), "stderr:\n{stderr}");
    assert_no_panic(&stderr);

    let credentials = json!({"email": "pg@example.com", "password": PASSWORD});
    let (mut proc, address) = start_on_postgres(&args);
    let (status, body) = post_json(&address, "/auth/signup", &credentials).await;
    assert_eq!(status, 201, "sign-up: {body}");
    proc.signal("TERM");
    assert!(
        proc.wait_for_exit(EXIT_BOUND).is_some_and(|s| s.success()),
        "stderr:\n{}",
        proc.stderr()
    );
    drop(proc);

    let (proc, address) = start_on_postgres(&args);
    let (status, body) = post_json(&address, "/auth/signin", &credentials).await;
    assert_eq!(status, 200, "sign-in after a restart: {body}");
    let (status, body) = post_json(&address, "/auth/signup", &credentials).await;
    assert_eq!(status, 409, "the account is still there: {body}");
    drop(proc);
}

#[test]
fn a_postgres_url_with_a_password_is_not_echoed() {
    let args: Vec<String> = [
        "--listen",
        "127.0.0.1:0",
        "--database",
        "postgres://someone:hunter2-secret@127.0.0.1:1/nothing",
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    let (status, stderr) = harness::Proc::spawn(Some(SECRET_A), &args).finish();
    assert!(!status.success(), "started without a reachable database");
    assert!(stderr.contains("someone:***@127.0.0.1:1"), "stderr:\n{stderr}");
    assert!(!stderr.contains("hunter2"), "the password leaked:\n{stderr}");
    assert_no_panic(&stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_closes_open_sync_connections_with_going_away() {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

    let dir = temp_dir();
    let mut server = Launch::new(&dir.path().join("db"), Some(SECRET_A)).start();
    // A Kora-style web client: a device without a key, so an unbound token and no proof.
    let (status, body) = post_json(
        &server.address,
        "/auth/signup",
        &json!({"email": "going-away@example.com", "password": PASSWORD, "deviceId": "web-1"}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let access = body["data"]["tokens"]["accessToken"]
        .as_str()
        .expect("accessToken");
    let mut request = format!("ws://{}/sync", server.address)
        .into_client_request()
        .expect("request");
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {access}").parse().expect("header"),
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.expect("admitted");
    for expected in ["welcome", "snapshot"] {
        let message = socket.next().await.expect("a message").expect("a frame");
        assert!(message.to_text().expect("text").contains(expected), "{message}");
    }

    let signalled = Instant::now();
    server.proc.signal("TERM");
    let close = tokio::time::timeout(Duration::from_secs(5), socket.next())
        .await
        .expect("a close frame before the bound");
    let Some(Ok(Message::Close(Some(frame)))) = close else {
        panic!("expected a close frame, got {close:?}");
    };
    println!("closed {:?} after SIGTERM", signalled.elapsed());
    assert_eq!(frame.code, CloseCode::Away);
    assert_eq!(frame.reason.as_str(), "SERVER_SHUTTING_DOWN");
    drop(socket);
    let status = server.proc.wait_for_exit(EXIT_BOUND);
    assert_eq!(
        status.map(|s| s.code()),
        Some(Some(0)),
        "stderr:\n{}",
        server.proc.stderr()
    );
}

// Operator commands.

/// Runs `holdfast-server --database sqlite:DB users ARGS…` to completion: its exit status,
/// stdout lines parsed as JSON, and stderr.
fn users(database: &Path, args: &[&str]) -> (std::process::ExitStatus, Vec<serde_json::Value>, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_holdfast-server"))
        .arg("--database")
        .arg(format!("sqlite:{}", database.display()))
        .arg("users")
        .args(args)
        .env("HOLDFAST_SECRET", SECRET_A)
        .env_remove("RUST_LOG")
        .output()
        .expect("run holdfast-server users");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let lines = stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("a JSON line ({e}): {line}")))
        .collect();
    (
        output.status,
        lines,
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn operators_list_find_disable_enable_and_sign_out_accounts() {
    let dir = temp_dir();
    let database = dir.path().join("db");
    let server = Launch::new(&database, Some(SECRET_A)).start();
    let (_, refresh_b) = sign_up(&server, "b@example.com").await;
    sign_up(&server, "a@example.com").await;
    sign_up(&server, "c@other.org").await;

    let (status, listed, stderr) = users(&database, &["list"]);
    assert!(status.success(), "{stderr}");
    let emails: Vec<&str> = listed
        .iter()
        .map(|u| u["email"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(emails, ["a@example.com", "b@example.com", "c@other.org"]);
    assert!(
        listed
            .iter()
            .all(|u| u.get("passwordHash").is_none() && !u.to_string().contains("argon2")),
        "no password hash is printed: {listed:?}"
    );
    let (_, page, _) = users(
        &database,
        &[
            "list",
            "--contains",
            "EXAMPLE",
            "--after",
            "a@example.com",
            "--limit",
            "5",
        ],
    );
    assert_eq!(page.len(), 1);
    assert_eq!(page[0]["email"], "b@example.com");

    let (status, found, _) = users(&database, &["find", "B@Example.com"]);
    assert!(status.success());
    let id = found[0]["id"].as_str().expect("id").to_owned();
    assert_eq!(found[0]["disabledAt"], serde_json::Value::Null);
    let (status, _, stderr) = users(&database, &["find", "nobody@example.com"]);
    assert!(!status.success());
    assert!(stderr.contains("no account"), "{stderr}");

    // Disabling ends the session the running server issued; refresh and sign-in say why.
    let (status, disabled, stderr) = users(&database, &["disable", &id]);
    assert!(status.success(), "{stderr}");
    assert!(disabled[0]["disabledAt"].is_i64(), "{disabled:?}");
    let reply = server
        .post("/auth/refresh", &json!({ "refreshToken": refresh_b }))
        .await;
    reply.assert_error(403, "ACCOUNT_DISABLED");
    assert_eq!(reply.json()["reason"], "account_disabled");
    server
        .post(
            "/auth/signin",
            &json!({ "email": "b@example.com", "password": PASSWORD }),
        )
        .await
        .assert_error(403, "ACCOUNT_DISABLED");

    let (status, _, _) = users(&database, &["enable", "b@example.com"]);
    assert!(status.success());
    let signed_in = server
        .post(
            "/auth/signin",
            &json!({ "email": "b@example.com", "password": PASSWORD }),
        )
        .await;
    assert_eq!(signed_in.status, 200, "{}", signed_in.text);
    let refresh = signed_in.json()["data"]["tokens"]["refreshToken"]
        .as_str()
        .expect("refresh")
        .to_owned();

    let (status, ended, _) = users(&database, &["sign-out", &id]);
    assert!(status.success());
    assert_eq!(ended[0]["sessionsEnded"], 1);
    let reply = server
        .post("/auth/refresh", &json!({ "refreshToken": refresh }))
        .await;
    reply.assert_error(401, "TOKEN_REVOKED");
    assert_eq!(reply.json()["reason"], "signed_out_everywhere");
    server.stop();
}

#[tokio::test]
async fn session_flags_limit_the_sessions() {
    let dir = temp_dir();
    let server = Launch::new(&dir.path().join("db"), Some(SECRET_A))
        .args(&["--max-sessions-per-user", "1", "--session-idle-timeout", "3600"])
        .start();
    let (_, first) = sign_up(&server, "limit@example.com").await;
    let second = server
        .post(
            "/auth/signin",
            &json!({ "email": "limit@example.com", "password": PASSWORD }),
        )
        .await;
    assert_eq!(second.status, 200, "{}", second.text);
    // One session allowed: the sign-in ended the first.
    let refused = server
        .post("/auth/refresh", &json!({ "refreshToken": first }))
        .await;
    refused.assert_error(401, "TOKEN_REVOKED");
    assert_eq!(refused.json()["reason"], "session_limit");
    server.stop();

    let (status, stderr) = Launch::new(&dir.path().join("db2"), Some(SECRET_A))
        .args(&["--session-lifetime=999999999999"])
        .fail();
    assert!(!status.success());
    assert!(stderr.contains("session-lifetime"), "{stderr}");
}

/// The current TOTP code of a base32 secret (the kit's RFC 6238 code, checked against the
/// RFC's vectors in its unit tests), at the real time the binary runs on.
fn current_code(secret: &str) -> String {
    use holdfast_server_kit::mfa::{OtpSecret, TotpConfig, totp_at};
    let secret = OtpSecret::from_base32(secret).expect("base32");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_secs() as i64;
    totp_at(&secret, now, &TotpConfig::default())
}

#[tokio::test]
async fn the_mfa_issuer_flag_names_the_app_and_operators_reset_a_second_factor() {
    let dir = temp_dir();
    let database = dir.path().join("db");
    let server = Launch::new(&database, Some(SECRET_A))
        .args(&["--mfa-issuer", "Acme Notes", "--step-up-window", "300"])
        .start();
    let (access, _) = sign_up(&server, "mfa@example.com").await;
    let enrolled = server
        .call("POST", "/auth/mfa/enable", Some(&access), Some(&json!({})))
        .await;
    assert_eq!(enrolled.status, 200, "{}", enrolled.text);
    let data = enrolled.json()["data"].clone();
    let uri = data["uri"].as_str().expect("uri");
    assert!(
        uri.starts_with("otpauth://totp/Acme%20Notes:mfa%40example.com?"),
        "{uri}"
    );
    assert!(uri.contains("&issuer=Acme%20Notes&"), "{uri}");
    let secret = data["secret"].as_str().expect("secret");
    let confirmed = server
        .call(
            "POST",
            "/auth/mfa/verify-setup",
            Some(&access),
            Some(&json!({ "code": current_code(secret) })),
        )
        .await;
    assert_eq!(confirmed.status, 200, "{}", confirmed.text);
    let pending = server
        .post(
            "/auth/signin",
            &json!({ "email": "mfa@example.com", "password": PASSWORD }),
        )
        .await;
    let pending_access = pending.json()["data"]["tokens"]["accessToken"]
        .as_str()
        .expect("access")
        .to_owned();
    server
        .call("GET", "/auth/devices", Some(&pending_access), None)
        .await
        .assert_error(403, "MFA_REQUIRED");

    // Lost the authenticator and the codes: the operator turns the factor off.
    let (status, reset, stderr) = users(&database, &["reset-mfa", "mfa@example.com"]);
    assert!(status.success(), "{stderr}");
    assert_eq!(reset[0]["mfaRemoved"], true);
    let (_, again, _) = users(&database, &["reset-mfa", "mfa@example.com"]);
    assert_eq!(again[0]["mfaRemoved"], false);
    let signed_in = server
        .post(
            "/auth/signin",
            &json!({ "email": "mfa@example.com", "password": PASSWORD }),
        )
        .await;
    let access = signed_in.json()["data"]["tokens"]["accessToken"]
        .as_str()
        .expect("access")
        .to_owned();
    let status = server.call("GET", "/auth/mfa/status", Some(&access), None).await;
    assert_eq!(status.json()["data"]["enabled"], false, "{}", status.text);
    server.stop();

    let (status, stderr) = Launch::new(&dir.path().join("db2"), Some(SECRET_A))
        .args(&["--step-up-window", "0"])
        .fail();
    assert!(!status.success());
    assert!(stderr.contains("step-up-window"), "{stderr}");
}

// 12. A crash in the middle of group commits: every refresh answered 200 is durable.

/// One client's chain of refreshes: the refresh tokens it holds, oldest first (the sign-up's
/// then each 200 answer's), and the text of each 200 answer.
#[derive(Default)]
struct Chain {
    tokens: Vec<String>,
    answers: Vec<String>,
}

/// Refreshes one chain until the server goes away: each 200 answer's refresh token is
/// the next one presented. A request without an answer ends the chain (it may or may not
/// have committed).
async fn drive_chain(url: String, first: String, chain: std::sync::Arc<std::sync::Mutex<Chain>>) {
    let client = reqwest::Client::builder().no_proxy().build().expect("client");
    let mut current = first;
    loop {
        let sent = client
            .post(&url)
            .json(&json!({"refreshToken": current}))
            .send()
            .await;
        let Ok(response) = sent else { return };
        let status = response.status().as_u16();
        let Ok(text) = response.text().await else { return };
        assert_eq!(status, 200, "a refresh before the crash: {text}");
        let value: serde_json::Value = serde_json::from_str(&text).expect("JSON");
        let next = value["data"]["refreshToken"]
            .as_str()
            .expect("refreshToken")
            .to_owned();
        let mut chain = chain.lock().unwrap();
        chain.tokens.push(next.clone());
        chain.answers.push(text);
        current = next;
    }
}

/// SIGKILL while many refreshes are being committed in groups, then a restart on the same
/// file (grace window 60 s). For every chain whose last acknowledged (200) rotation turned
/// T(k-1) into T(k) — a request in flight at the kill may or may not have rotated T(k):
///
/// - half the chains present T(k): 200 (its row, written by the acknowledged rotation, is
///   on disk; a lost one would be `TOKEN_INVALID`), then T(k-1): `REFRESH_REUSED` (its
///   rotation is on disk; a lost one would rotate again with 200);
/// - the other half present T(k-1): exactly the acknowledged pair again (the rotation and
///   its recorded children are on disk), or `REFRESH_REUSED` when T(k) was rotated by a
///   request in flight; after the 200, T(k) refreshes;
/// - in the file, every rotated token's recorded child exists (no half-written rotation)
///   and the integrity check passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refreshes_answered_before_a_crash_mid_group_are_durable() {
    const CHAINS: usize = 12;
    let dir = temp_dir();
    let database = dir.path().join("db");
    let limits = ["--rate-limit", "off", "--ip-block", "off", "--grace-window", "60"];
    let server = Launch::new(&database, Some(SECRET_A)).args(&limits).start();
    let mut chains = Vec::new();
    for n in 0..CHAINS {
        let (_, refresh) = sign_up(&server, &format!("crash{n}@example.com")).await;
        let chain = std::sync::Arc::new(std::sync::Mutex::new(Chain {
            tokens: vec![refresh.clone()],
            answers: Vec::new(),
        }));
        chains.push((refresh, chain));
    }
    let url = server.url("/auth/refresh");
    let drivers: Vec<_> = chains
        .iter()
        .map(|(first, chain)| tokio::spawn(drive_chain(url.clone(), first.clone(), chain.clone())))
        .collect();
    // Let the groups run, then kill while requests are in flight.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let done: usize = chains.iter().map(|(_, c)| c.lock().unwrap().answers.len()).sum();
        if done >= 30 * CHAINS || Instant::now() > deadline {
            break;
        }
    }
    server.crash();
    for driver in drivers {
        driver.await.expect("a chain saw a refusal before the crash");
    }
    let acknowledged: usize = chains.iter().map(|(_, c)| c.lock().unwrap().answers.len()).sum();
    assert!(
        acknowledged >= CHAINS,
        "too few refreshes before the crash: {acknowledged}"
    );

    let server = Launch::new(&database, Some(SECRET_A)).args(&limits).start();
    let refresh = |token: &str| {
        let body = json!({"refreshToken": token});
        let server = &server;
        async move { server.post("/auth/refresh", &body).await }
    };
    for (n, (_, chain)) in chains.iter().enumerate() {
        let (tokens, answers) = {
            let chain = chain.lock().unwrap();
            (chain.tokens.clone(), chain.answers.clone())
        };
        let k = answers.len();
        if k == 0 {
            continue;
        }
        if n % 2 == 0 {
            // T(k) first: its row is on disk (200, fresh or the grace answer of a rotation
            // in flight); then T(k-1) is reuse (its rotation is on disk, its child rotated).
            let last = refresh(&tokens[k]).await;
            assert_eq!(
                last.status, 200,
                "the last acknowledged refresh token: {}",
                last.text
            );
            refresh(&tokens[k - 1]).await.assert_error(401, "REFRESH_REUSED");
        } else {
            // T(k-1) first: exactly the acknowledged pair, unless a request in flight at
            // the kill rotated T(k) (then reuse).
            let again = refresh(&tokens[k - 1]).await;
            if again.status == 401 && again.code() == "REFRESH_REUSED" {
                continue;
            }
            assert_eq!(
                again.status, 200,
                "the parent of an acknowledged rotation: {}",
                again.text
            );
            assert_eq!(
                again.text,
                answers[k - 1],
                "the grace answer must be the acknowledged pair"
            );
            let last = refresh(&tokens[k]).await;
            assert_eq!(
                last.status, 200,
                "the last acknowledged refresh token: {}",
                last.text
            );
        }
    }
    // A crash again: opening the file then recovers its write-ahead log, as a restart would.
    server.crash();

    let conn = rusqlite::Connection::open(&database).expect("open the file");
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .expect("integrity check");
    assert_eq!(integrity, "ok");
    let orphans: i64 = conn
        .query_row(
            "SELECT count(*) FROM refresh_tokens r WHERE r.rotated_at_ms IS NOT NULL
               AND NOT EXISTS (SELECT 1 FROM refresh_tokens c WHERE c.jti = r.child_refresh_jti)",
            [],
            |row| row.get(0),
        )
        .expect("orphans");
    assert_eq!(orphans, 0, "rotations without their child");
}
