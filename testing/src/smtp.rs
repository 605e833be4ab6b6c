//! [`SmtpSink`]: a real SMTP server for tests, keeping what it receives.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

/// The environment variable naming the Python interpreter that has `aiosmtpd`.
pub const SMTP_PYTHON_ENV: &str = "HOLDFAST_TEST_SMTP_PYTHON";

/// How long [`SmtpSink::start`] waits for the server to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// An SMTP server on a free loopback port (Python's `aiosmtpd` with its `Mailbox` handler),
/// writing each mail it receives to a Maildir in a temporary folder. The process is killed
/// when the sink is dropped.
///
/// The interpreter is the one `HOLDFAST_TEST_SMTP_PYTHON` names. `scripts/smtp-venv.sh`
/// makes a virtual environment with `aiosmtpd` (once, in `target/smtp-venv`, or under
/// `$CARGO_TARGET_DIR`) and prints its interpreter; `scripts/test.sh` runs it and sets the
/// variable. By hand, from the workspace root:
///
/// ```text
/// HOLDFAST_TEST_SMTP_PYTHON=$(scripts/smtp-venv.sh) cargo test -p holdfast-server-kit --test smtp
/// ```
///
/// or `export HOLDFAST_TEST_SMTP_PYTHON=$(scripts/smtp-venv.sh)` once per shell. Without
/// it, or when it cannot `import aiosmtpd`, [`SmtpSink::start`] panics saying so: these
/// tests are never skipped.
///
/// ```no_run
/// # async fn run() {
/// use std::time::Duration;
/// use holdfast_testing::SmtpSink;
///
/// let sink = SmtpSink::start();
/// let url = sink.url(); // smtp://127.0.0.1:PORT
/// // ... send a mail through `url` ...
/// let mails = sink.wait_for(1, Duration::from_secs(10)).await;
/// assert_eq!(mails[0].subject, "Reset your Holdfast password");
/// # }
/// ```
pub struct SmtpSink {
    child: Child,
    address: SocketAddr,
    dir: tempfile::TempDir,
}

/// One mail the sink received, its headers decoded (RFC 2047) and its text parts decoded
/// (quoted-printable or base64, to UTF-8).
#[derive(Debug, Clone)]
pub struct ReceivedMail {
    /// The `From` header.
    pub from: String,
    /// The `To` header.
    pub to: String,
    /// The `Subject` header.
    pub subject: String,
    /// The envelope's recipients (`RCPT TO`), comma-separated, as the server saw them.
    pub envelope_to: String,
    /// The first `text/plain` part.
    pub text: Option<String>,
    /// The first `text/html` part.
    pub html: Option<String>,
    /// Every header, in order, decoded.
    pub headers: Vec<(String, String)>,
    /// The `Content-Type` of the whole message, like `multipart/alternative`.
    pub content_type: String,
}

impl SmtpSink {
    /// Starts the server and waits (at most 20 s) until it accepts connections.
    ///
    /// # Panics
    ///
    /// Without an interpreter that can `import aiosmtpd` (see [`SmtpSink`]), or when the
    /// server does not start.
    pub fn start() -> SmtpSink {
        let python = python();
        let dir = tempfile::tempdir().expect("a temporary folder for the SMTP sink");
        let port = free_port();
        let address = SocketAddr::from(([127, 0, 0, 1], port));
        let log = std::fs::File::create(dir.path().join("server.log")).expect("the SMTP sink's log file");
        let child = Command::new(&python)
            .args(["-m", "aiosmtpd", "-n", "-l", &address.to_string()])
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(dir.path().join("maildir"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {} -m aiosmtpd: {e}", python.display()));
        let mut sink = SmtpSink { child, address, dir };
        sink.wait_until_listening();
        sink
    }

    /// `smtp://127.0.0.1:PORT`: plain SMTP, no authentication.
    pub fn url(&self) -> String {
        format!("smtp://{}", self.address)
    }

    /// The address the server listens on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The mails received so far, oldest first.
    ///
    /// # Panics
    ///
    /// When a stored mail cannot be read or parsed.
    pub fn messages(&self) -> Vec<ReceivedMail> {
        let new = self.dir.path().join("maildir").join("new");
        let entries = match std::fs::read_dir(&new) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
            Err(e) => panic!("cannot read {}: {e}", new.display()),
        };
        let mut files: Vec<(SystemTime, PathBuf)> = entries
            .map(|entry| {
                let entry = entry.expect("a Maildir entry");
                let modified = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .expect("a Maildir file's time");
                (modified, entry.path())
            })
            .collect();
        files.sort();
        files.iter().map(|(_, path)| read_mail(path)).collect()
    }

    /// The mails received, once there are at least `count`, polling for at most `timeout`.
    ///
    /// # Panics
    ///
    /// When fewer than `count` arrive in time.
    pub async fn wait_for(&self, count: usize, timeout: Duration) -> Vec<ReceivedMail> {
        let deadline = Instant::now() + timeout;
        loop {
            let mails = self.messages();
            if mails.len() >= count {
                return mails;
            }
            if Instant::now() >= deadline {
                panic!(
                    "the SMTP sink received {} mail(s) within {timeout:?}, not {count}; its log:\n{}",
                    mails.len(),
                    self.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// What the server wrote to stderr.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    fn wait_until_listening(&mut self) {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if TcpStream::connect_timeout(&self.address, Duration::from_millis(200)).is_ok() {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "the SMTP sink (aiosmtpd) exited at start ({status}); its log:\n{}",
                    self.log()
                );
            }
            if Instant::now() >= deadline {
                panic!(
                    "the SMTP sink (aiosmtpd) did not accept connections on {} within {START_TIMEOUT:?}; its log:\n{}",
                    self.address,
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl std::fmt::Debug for SmtpSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSink")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

/// The interpreter `HOLDFAST_TEST_SMTP_PYTHON` names, checked to import `aiosmtpd`.
fn python() -> PathBuf {
    let how = "run `scripts/smtp-venv.sh` (it makes a virtual environment with aiosmtpd and \
               prints its python) and set HOLDFAST_TEST_SMTP_PYTHON to what it prints: \
               `HOLDFAST_TEST_SMTP_PYTHON=$(scripts/smtp-venv.sh) cargo test ...`; the SMTP \
               tests are never skipped";
    let python = match std::env::var_os(SMTP_PYTHON_ENV) {
        Some(python) if !python.is_empty() => PathBuf::from(python),
        _ => {
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("target"));
            let made = target.join("smtp-venv").join("bin").join("python");
            let hint = if made.exists() {
                format!(" (the script already made {})", made.display())
            } else {
                String::new()
            };
            panic!("{SMTP_PYTHON_ENV} is unset: {how}{hint}");
        }
    };
    match Command::new(&python).args(["-c", "import aiosmtpd"]).output() {
        Ok(output) if output.status.success() => python,
        Ok(output) => panic!(
            "{SMTP_PYTHON_ENV}={} cannot import aiosmtpd ({}): {how}",
            python.display(),
            String::from_utf8_lossy(&output.stderr)
                .lines()
                .last()
                .unwrap_or_default()
        ),
        Err(e) => panic!(
            "{SMTP_PYTHON_ENV}={} cannot be run ({e}): {how}",
            python.display()
        ),
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
    listener.local_addr().expect("the free port").port()
}

fn read_mail(path: &Path) -> ReceivedMail {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let parsed =
        mailparse::parse_mail(&bytes).unwrap_or_else(|e| panic!("cannot parse {}: {e}", path.display()));
    let header = |name: &str| {
        parsed
            .headers
            .iter()
            .find(|h| h.get_key().eq_ignore_ascii_case(name))
            .map(|h| h.get_value())
    };
    let mut text = None;
    let mut html = None;
    collect_parts(&parsed, &mut text, &mut html);
    ReceivedMail {
        from: header("From").unwrap_or_default(),
        to: header("To").unwrap_or_default(),
        subject: header("Subject").unwrap_or_default(),
        envelope_to: header("X-RcptTo").unwrap_or_default(),
        text,
        html,
        headers: parsed
            .headers
            .iter()
            .map(|h| (h.get_key(), h.get_value()))
            .collect(),
        content_type: parsed.ctype.mimetype.clone(),
    }
}

fn collect_parts(part: &mailparse::ParsedMail<'_>, text: &mut Option<String>, html: &mut Option<String>) {
    if part.subparts.is_empty() {
        let slot = match part.ctype.mimetype.as_str() {
            "text/plain" => text,
            "text/html" => html,
            _ => return,
        };
        if slot.is_none() {
            *slot = Some(part.get_body().expect("a decodable text part"));
        }
        return;
    }
    for sub in &part.subparts {
        collect_parts(sub, text, html);
    }
}
