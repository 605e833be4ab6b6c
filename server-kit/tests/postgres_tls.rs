//! PostgreSQL over TLS (`sslmode`, `sslrootcert`), against a PostgreSQL server of the test's
//! own: the machine's shared server has no TLS and is not reconfigured.
//!
//! The server is started from `initdb` and `pg_ctl` (`HOLDFAST_PG_BIN_DIR`, else `PATH`,
//! else `/usr/lib/postgresql/*/bin`), as the `postgres` OS user when the test runs as root
//! (PostgreSQL refuses root), in a temporary directory, on a free loopback port, with a
//! certificate for `localhost` and `127.0.0.1` signed by a CA made here (`rcgen`), and a
//! `pg_hba.conf` that refuses any connection without TLS. Missing binaries or user fail
//! the test loudly: it is never skipped. One server serves every case of
//! [`connections_over_tls`], in order (initdb is the slow part), and is stopped when the
//! test ends, passing or not.

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use holdfast_server_kit::store::postgres::PostgresStore;
use holdfast_server_kit::store::{NewUser, StoreError, StoredPassword, UserStore};
use holdfast_server_kit::sync::{SharedCollection, Update};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use serde_json::json;

const SECRET: &str = "tls-test-secret-tls-test-secret-tls-test-secret";
/// How long the server, the binary or a delivery may take (debug build, shared cores).
const BOUND: Duration = Duration::from_secs(60);
const DELIVERY_BOUND: Duration = Duration::from_secs(5);

/// A CA made for the test.
struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

impl TestCa {
    fn new(name: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().expect("CA key");
        let pem = params.self_signed(&key).expect("CA certificate").pem();
        TestCa {
            issuer: Issuer::new(params, key),
            pem,
        }
    }

    /// A server certificate for `names` and its key, both PEM.
    fn server_certificate(&self, names: &[&str]) -> (String, String) {
        let names: Vec<String> = names.iter().map(|name| name.to_string()).collect();
        let mut params = CertificateParams::new(names.clone()).expect("server parameters");
        params
            .distinguished_name
            .push(DnType::CommonName, names[0].clone());
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().expect("server key");
        let cert = params.signed_by(&key, &self.issuer).expect("server certificate");
        (cert.pem(), key.serialize_pem())
    }
}

/// Where the PostgreSQL binaries are: `HOLDFAST_PG_BIN_DIR`, the directory of `initdb` on
/// `PATH`, or the newest `/usr/lib/postgresql/*/bin`.
fn postgres_bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("HOLDFAST_PG_BIN_DIR") {
        let dir = PathBuf::from(dir);
        assert!(
            dir.join("initdb").is_file() && dir.join("pg_ctl").is_file(),
            "HOLDFAST_PG_BIN_DIR={} has no initdb and pg_ctl",
            dir.display()
        );
        return dir;
    }
    let on_path = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default();
    if let Some(dir) = on_path
        .into_iter()
        .find(|dir| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file())
    {
        return dir;
    }
    let mut installed: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    installed.sort();
    match installed.pop() {
        Some((_, bin)) => bin,
        None => panic!(
            "PostgreSQL's initdb and pg_ctl were not found (HOLDFAST_PG_BIN_DIR, PATH, /usr/lib/postgresql/*/bin): \
             this test needs them to start a PostgreSQL with TLS (it is never skipped)"
        ),
    }
}

/// The OS user PostgreSQL runs as when the test runs as root (PostgreSQL refuses root).
struct RunAs {
    uid: u32,
    gid: u32,
    runuser: PathBuf,
}

fn run_as() -> Option<RunAs> {
    let euid = std::fs::metadata("/proc/self").expect("/proc/self").uid();
    if euid != 0 {
        return None;
    }
    let id = |flag: &str| -> u32 {
        let output = Command::new("id")
            .args([flag, "postgres"])
            .output()
            .expect("run id");
        assert!(
            output.status.success(),
            "running as root, PostgreSQL must run as the `postgres` OS user, which does not exist: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout)
            .trim()
            .parse()
            .expect("numeric id")
    };
    let runuser = [
        "/usr/sbin/runuser",
        "/sbin/runuser",
        "/usr/bin/runuser",
        "/bin/runuser",
    ]
    .into_iter()
    .map(PathBuf::from)
    .find(|path| path.is_file())
    .expect("running as root, `runuser` is needed to start PostgreSQL as the postgres user");
    Some(RunAs {
        uid: id("-u"),
        gid: id("-g"),
        runuser,
    })
}

/// A PostgreSQL server with TLS only, stopped (and its files removed) when dropped.
struct TlsServer {
    dir: tempfile::TempDir,
    data: PathBuf,
    bin: PathBuf,
    run_as: Option<RunAs>,
    port: u16,
    ca: TestCa,
    /// The CA certificate (PEM) that signed the server's certificate.
    ca_file: PathBuf,
}

impl TlsServer {
    fn start() -> TlsServer {
        let started = Instant::now();
        let bin = postgres_bin_dir();
        let run_as = run_as();
        let dir = tempfile::Builder::new()
            .prefix("holdfast-pg-tls-")
            .tempdir()
            .expect("temporary directory");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).expect("chmod");
        if let Some(user) = &run_as {
            std::os::unix::fs::chown(dir.path(), Some(user.uid), Some(user.gid)).expect("chown to postgres");
        }
        let ca = TestCa::new("Holdfast test CA");
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, &ca.pem).expect("write ca.pem");
        let mut server = TlsServer {
            data: dir.path().join("data"),
            dir,
            bin,
            run_as,
            port: 0,
            ca,
            ca_file,
        };
        server.write_server_certificate(&["localhost", "127.0.0.1"]);
        server.run(
            "initdb",
            &[
                "-D",
                server.data.to_str().expect("UTF-8 path"),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
        );
        let conf = format!(
            "\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{dir}'\nssl = on\n\
             ssl_cert_file = '{dir}/server.crt'\nssl_key_file = '{dir}/server.key'\nfsync = off\n\
             max_connections = 50\n",
            dir = server.dir.path().display()
        );
        append(&server.data.join("postgresql.conf"), &conf);
        std::fs::write(
            server.data.join("pg_hba.conf"),
            "local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostnossl all all 127.0.0.1/32 reject\n",
        )
        .expect("write pg_hba.conf");
        // A free port; another process may take it before the server does: try a few.
        let mut last_failure = String::new();
        for _ in 0..3 {
            server.port = free_port();
            let log = server.dir.path().join("postgres.log");
            let output = server.try_run(
                "pg_ctl",
                &[
                    "start",
                    "-w",
                    "-t",
                    "60",
                    "-D",
                    server.data.to_str().expect("UTF-8 path"),
                    "-l",
                    log.to_str().expect("UTF-8 path"),
                    "-o",
                    &format!("-c port={}", server.port),
                ],
            );
            if output.status.success() {
                println!(
                    "PostgreSQL with TLS on port {} in {:?}",
                    server.port,
                    started.elapsed()
                );
                return server;
            }
            last_failure = format!(
                "{}{}\nlog:\n{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr),
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        panic!("PostgreSQL with TLS did not start:\n{last_failure}");
    }

    /// Writes `server.crt` and `server.key` (mode 0600, the server's user's) for `names`,
    /// signed by the test CA.
    fn write_server_certificate(&self, names: &[&str]) {
        let (cert, key) = self.ca.server_certificate(names);
        let cert_file = self.dir.path().join("server.crt");
        let key_file = self.dir.path().join("server.key");
        std::fs::write(&cert_file, cert).expect("write server.crt");
        std::fs::write(&key_file, key).expect("write server.key");
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600))
            .expect("chmod server.key");
        if let Some(user) = &self.run_as {
            for file in [&cert_file, &key_file] {
                std::os::unix::fs::chown(file, Some(user.uid), Some(user.gid)).expect("chown");
            }
        }
    }

    /// Replaces the server's certificate with one for `names` and reloads it.
    fn reload_certificate(&self, names: &[&str]) {
        self.write_server_certificate(names);
        self.run(
            "pg_ctl",
            &["reload", "-D", self.data.to_str().expect("UTF-8 path")],
        );
    }

    /// Runs the PostgreSQL program `program` (as the postgres user when root).
    fn try_run(&self, program: &str, args: &[&str]) -> Output {
        let program = self.bin.join(program);
        let mut command = match &self.run_as {
            Some(user) => {
                let mut command = Command::new(&user.runuser);
                command.args(["-u", "postgres", "--"]).arg(&program);
                command
            }
            None => Command::new(&program),
        };
        command
            .args(args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()))
    }

    fn run(&self, program: &str, args: &[&str]) {
        let output = self.try_run(program, args);
        assert!(
            output.status.success(),
            "{program} {args:?} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// A URL for the database `postgres` on this server, with `params`.
    fn url(&self, host: &str, params: &str) -> String {
        let separator = if params.is_empty() { "" } else { "?" };
        format!(
            "postgres://postgres@{host}:{}/postgres{separator}{params}",
            self.port
        )
    }

    /// The path of a file written in the server's directory.
    fn file(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, contents).expect("write file");
        path
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        if self.port == 0 {
            return;
        }
        let data = self.data.to_str().unwrap_or_default().to_owned();
        let stopped = self.try_run(
            "pg_ctl",
            &["stop", "-D", &data, "-m", "immediate", "-w", "-t", "30"],
        );
        if !stopped.status.success() {
            // The postmaster's pid is the first line of postmaster.pid.
            if let Some(pid) = std::fs::read_to_string(self.data.join("postmaster.pid"))
                .ok()
                .and_then(|text| text.lines().next().map(str::to_owned))
            {
                let _ = Command::new("kill").args(["-KILL", &pid]).status();
            }
        }
    }
}

fn append(path: &Path, text: &str) {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    file.write_all(text.as_bytes()).expect("append");
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("free port")
        .port()
}

fn user(email: &str) -> NewUser {
    NewUser {
        id: uuid::Uuid::new_v4().to_string(),
        email: email.to_owned(),
        name: Some("TLS".to_owned()),
        created_at_ms: 1_700_000_000_000,
        password: StoredPassword {
            hash: "00".repeat(32),
            salt: "11".repeat(16),
        },
        metadata: None,
    }
}

/// The message of a connection that must fail, checked for a leaked password.
async fn refused(url: &str) -> String {
    match PostgresStore::connect(url, None).await {
        Ok(_) => panic!("connected with {url}"),
        Err(error @ StoreError::Backend { .. }) => {
            let message = error.to_string();
            assert!(!message.contains("hunter2"), "the password leaked: {message}");
            message
        }
        Err(other) => panic!("unexpected error for {url}: {other:?}"),
    }
}

/// The `holdfast-server` binary, killed and reaped when dropped.
struct Binary {
    child: Child,
    stdout: mpsc::Receiver<String>,
    stderr: Arc<std::sync::Mutex<String>>,
}

impl Binary {
    fn spawn(args: &[&str]) -> Binary {
        let mut child = Command::new(env!("CARGO_BIN_EXE_holdfast-server"))
            .args(args)
            .env("HOLDFAST_SECRET", SECRET)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn holdfast-server");
        let (lines, stdout) = mpsc::channel();
        let out = child.stdout.take().expect("stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(std::sync::Mutex::new(String::new()));
        let mut err = child.stderr.take().expect("stderr");
        let sink = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            while let Ok(n @ 1..) = err.read(&mut buffer) {
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buffer[..n]));
            }
        });
        Binary {
            child,
            stdout,
            stderr,
        }
    }

    /// The address from the first stdout line.
    fn address(&mut self) -> String {
        let Ok(line) = self.stdout.recv_timeout(BOUND) else {
            let _ = self.child.kill();
            let _ = self.child.wait();
            std::thread::sleep(Duration::from_millis(100));
            panic!(
                "holdfast-server printed no line; stderr:\n{}",
                self.stderr.lock().unwrap()
            );
        };
        line.strip_prefix("listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned()
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every connection case on one server with TLS, in order; see the module documentation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_tls() {
    let server = TlsServer::start();
    let ca = server.ca_file.to_str().expect("UTF-8 path").to_owned();

    // sslmode=require with the CA: the store migrates and works, on TLS connections only.
    let step = Instant::now();
    let url = server.url(
        "127.0.0.1",
        &format!("sslmode=require&sslrootcert={ca}&application_name=holdfast-tls-store"),
    );
    let store = PostgresStore::connect(&url, Some("tls_store"))
        .await
        .unwrap_or_else(|e| panic!("sslmode=require with the CA: {e}"));
    let created = store
        .create_user(user("tls@example.com"))
        .await
        .expect("create a user");
    let found = store
        .find_user_by_email("tls@example.com")
        .await
        .expect("read it back")
        .expect("the user exists");
    assert_eq!(found.id, created.id);

    // The sync collection's LISTEN connection, opened the same way: a put is delivered.
    let collection = SharedCollection::postgres(&store).await.expect("LISTEN over TLS");
    let mut subscription = collection.subscribe(&created.id);
    subscription.snapshot().await.expect("snapshot");
    collection
        .put(
            &created.id,
            "settings",
            json!({"theme": "dark"}),
            "device-1",
            1_700_000_000_000,
        )
        .await
        .expect("put");
    match tokio::time::timeout(DELIVERY_BOUND, subscription.recv()).await {
        Ok(Update::Item(item)) => {
            assert_eq!(
                (item.key.as_str(), &item.value),
                ("settings", &json!({"theme": "dark"}))
            );
        }
        other => panic!("the put was not delivered through the TLS LISTEN connection: {other:?}"),
    }
    let listen_pid = collection.listen_backend_pid().expect("LISTEN connection open");

    // Every connection of the store (pool and LISTEN) is encrypted, as PostgreSQL sees it.
    let probe = PostgresStore::connect(&url, Some("tls_probe"))
        .await
        .expect("probe");
    drop(probe);
    let rows = ssl_rows(&server, &ca).await;
    let ours: Vec<_> = rows
        .iter()
        .filter(|(_, name, _, _)| name == "holdfast-tls-store")
        .collect();
    assert!(!ours.is_empty(), "no connection of the store seen: {rows:?}");
    assert!(
        ours.iter()
            .all(|(_, _, ssl, version)| *ssl && version.starts_with("TLSv1.")),
        "a connection without TLS: {rows:?}"
    );
    assert!(
        ours.iter().any(|(pid, _, ssl, _)| *pid == listen_pid && *ssl),
        "the LISTEN connection ({listen_pid}) is not among the TLS ones: {rows:?}"
    );
    println!("store, sync and pg_stat_ssl over TLS: {:?}", step.elapsed());
    drop(collection);
    drop(store);

    // verify-full and sslrootcert given URL-encoded, with other parameters around it.
    let encoded = ca.replace('/', "%2F");
    let url = server.url(
        "localhost",
        &format!(
            "application_name=holdfast-tls&sslrootcert={encoded}&sslmode=verify-full&connect_timeout=10"
        ),
    );
    PostgresStore::connect(&url, Some("tls_store"))
        .await
        .unwrap_or_else(|e| panic!("verify-full to localhost: {e}"));

    // The binary: `--database postgres://...?sslmode=require&sslrootcert=...` serves.
    let step = Instant::now();
    let database = server.url("127.0.0.1", &format!("sslmode=require&sslrootcert={ca}"));
    let mut binary = Binary::spawn(&[
        "--listen",
        "127.0.0.1:0",
        "--database",
        &database,
        "--database-schema",
        "tls_binary",
    ]);
    let address = binary.address();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("HTTP client");
    let response = client
        .post(format!("http://{address}/auth/signup"))
        .json(&json!({"email": "binary-tls@example.com", "password": "correct horse battery"}))
        .send()
        .await
        .expect("sign-up");
    let status = response.status().as_u16();
    let body = response.text().await.unwrap_or_default();
    assert_eq!(status, 201, "sign-up through the binary on TLS: {body}");
    drop(binary);
    println!("the binary on TLS: {:?}", step.elapsed());

    // No sslmode: no TLS, as before; this server refuses it, and says so.
    let step = Instant::now();
    let message = refused(&server.url("127.0.0.1", "")).await;
    assert!(
        message.contains("pg_hba.conf rejects connection") && message.contains("add sslmode=verify-full"),
        "plain connection: {message}"
    );
    println!("without sslmode: {message}");

    // sslmode=require without sslrootcert: the system's roots do not know the test CA.
    let message = refused(&server.url("127.0.0.1", "sslmode=require")).await;
    assert!(
        message.contains("sslrootcert=PATH")
            && (message.contains("UnknownIssuer") || message.contains("no system root certificate")),
        "system roots: {message}"
    );
    println!("require, system roots: {message}");

    // The CA file of another CA.
    let other = server.file("other-ca.pem", &TestCa::new("Another CA").pem);
    let message = refused(&server.url(
        "127.0.0.1",
        &format!("sslmode=verify-ca&sslrootcert={}", other.display()),
    ))
    .await;
    assert!(
        message.contains("UnknownIssuer") && message.contains("other-ca.pem"),
        "another CA: {message}"
    );
    println!("another CA: {message}");

    // A host name the certificate does not name (connecting to 127.0.0.1 all the same).
    let message = refused(&server.url(
        "db.example.com",
        &format!("hostaddr=127.0.0.1&sslmode=require&sslrootcert={ca}"),
    ))
    .await;
    assert!(
        message.contains("not valid for name") && message.contains("db.example.com"),
        "another name: {message}"
    );
    println!("another host name: {message}");

    // A password never shows, whatever fails.
    let message = refused(&format!(
        "postgres://postgres:hunter2@127.0.0.1:{}/postgres?sslmode=require",
        server.port
    ))
    .await;
    assert!(message.contains("sslrootcert=PATH"), "{message}");

    // A certificate only for another name, connecting to 127.0.0.1: refused.
    server.reload_certificate(&["db.example.com"]);
    let url = server.url("127.0.0.1", &format!("sslmode=require&sslrootcert={ca}"));
    let deadline = Instant::now() + DELIVERY_BOUND;
    let message = loop {
        match PostgresStore::connect(&url, None).await {
            // The reload is asynchronous: the old certificate may still be served.
            Ok(_) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(50)).await,
            Ok(_) => panic!("connected to 127.0.0.1 with a certificate for db.example.com"),
            Err(error) => break error.to_string(),
        }
    };
    assert!(
        message.contains("not valid for name") && message.contains("127.0.0.1"),
        "a certificate for another name: {message}"
    );
    println!("a certificate for another name: {message}");
    println!("refusals: {:?}", step.elapsed());
}

/// `(pid, application_name, ssl, version)` of every client connection, read over TLS.
async fn ssl_rows(server: &TlsServer, ca: &str) -> Vec<(i32, String, bool, String)> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    let pem = std::fs::read(ca).expect("read CA");
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(&pem) {
        roots.add(cert.expect("PEM")).expect("CA certificate");
    }
    let config =
        rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
    let tls = tokio_postgres_rustls::MakeRustlsConnect::new(config);
    let (client, connection) = tokio_postgres::connect(
        &format!(
            "host=127.0.0.1 port={} user=postgres dbname=postgres sslmode=require application_name=probe",
            server.port
        ),
        tls,
    )
    .await
    .expect("probe connection");
    tokio::spawn(connection);
    client
        .query(
            "SELECT a.pid, a.application_name, s.ssl, coalesce(s.version, '') \
             FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) WHERE a.backend_type = 'client backend'",
            &[],
        )
        .await
        .expect("pg_stat_ssl")
        .into_iter()
        .map(|row| (row.get(0), row.get(1), row.get(2), row.get(3)))
        .collect()
}

/// What is refused before connecting: modes that could fall back to no TLS, and root
/// certificate files that cannot be used. No server needed.
#[tokio::test]
async fn tls_parameters_are_checked_before_connecting() {
    let dir = tempfile::tempdir().expect("temporary directory");
    // Port 1: nothing listens, so only a check before connecting can explain the message.
    let base = "postgres://app:hunter2@127.0.0.1:1/auth";

    for mode in ["prefer", "allow"] {
        let message = refused(&format!("{base}?sslmode={mode}")).await;
        assert!(
            message.contains(&format!("sslmode={mode} is not supported"))
                && message.contains("falls back to an unencrypted connection")
                && message.contains("sslmode=require")
                && message.contains("sslmode=disable"),
            "{mode}: {message}"
        );
    }
    let message = refused(&format!("{base}?sslmode=verify_full")).await;
    assert!(message.contains("invalid sslmode `verify_full`"), "{message}");

    let missing = dir.path().join("missing.pem");
    let message = refused(&format!(
        "{base}?sslmode=require&sslrootcert={}",
        missing.display()
    ))
    .await;
    assert!(
        message.contains(&format!("cannot read sslrootcert {}", missing.display())),
        "{message}"
    );

    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "this is not a certificate\n").expect("write");
    let message = refused(&format!(
        "{base}?sslmode=verify-full&sslrootcert={}",
        garbage.display()
    ))
    .await;
    assert!(message.contains("holds no certificate"), "{message}");

    let broken = dir.path().join("broken.pem");
    std::fs::write(
        &broken,
        "-----BEGIN CERTIFICATE-----\nnot base64 !!!\n-----END CERTIFICATE-----\n",
    )
    .expect("write");
    let message = refused(&format!(
        "{base}?sslmode=verify-full&sslrootcert={}",
        broken.display()
    ))
    .await;
    assert!(message.contains("is not valid PEM"), "{message}");

    let not_a_cert = dir.path().join("not-a-cert.pem");
    std::fs::write(
        &not_a_cert,
        "-----BEGIN CERTIFICATE-----\nAAECAwQF\n-----END CERTIFICATE-----\n",
    )
    .expect("write");
    let message = refused(&format!(
        "{base}?sslmode=verify-full&sslrootcert={}",
        not_a_cert.display()
    ))
    .await;
    assert!(message.contains("certificate 1 is invalid"), "{message}");

    let message = refused(&format!("{base}?sslrootcert={}", garbage.display())).await;
    assert!(message.contains("add sslmode=verify-full"), "{message}");

    let message = refused(&format!("{base}?sslmode=require&sslmode=disable")).await;
    assert!(message.contains("sslmode is given more than once"), "{message}");

    // Client certificates are not supported: tokio-postgres names the option.
    let message = refused(&format!("{base}?sslmode=require&sslcert=/client.pem")).await;
    assert!(message.contains("unknown option `sslcert`"), "{message}");
}
