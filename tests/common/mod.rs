//! Test support shared by the integration-test binaries: [`TestServer`] runs the real
//! `porpoise standalone` binary on a free port in a temporary home directory.
//!
//! Invariants: the server is a separate process (so tests can `kill -9` it and restart it on the
//! same home), nothing waits by sleeping — every wait polls with a deadline — and dropping a
//! `TestServer` kills the process and removes its directory.
//!
//! Each test binary includes this module with `mod common;` and uses part of it.
#![allow(dead_code)] // each test binary uses a different subset

pub mod cluster;
pub mod ports;

use std::fs::OpenOptions;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The user the server creates on first start.
pub const ADMIN_USER: &str = "admin";
/// Its password.
pub const ADMIN_PASSWORD: &str = "123456";

/// How long a server may take to print its listening line.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a client may take to connect.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// The line `porpoise standalone` prints on stdout once it listens.
const LISTENING_PREFIX: &str = "porpoise standalone listening on ";

/// A `porpoise standalone` process serving pgwire on 127.0.0.1.
pub struct TestServer {
    child: Option<Child>,
    /// Extra environment of the next start (e.g. a crash point).
    env: Vec<(String, String)>,
    /// `porpoise.cfg` lines, if the server gets a config directory.
    config: Vec<(String, String)>,
    port: u16,
    /// Holds `home/` (the server's data) and `server.log` (its stderr, across restarts).
    dir: tempfile::TempDir,
}

impl TestServer {
    /// Starts a server in a fresh temporary home. Blocks until it listens (or panics after
    /// [`START_TIMEOUT`] with the server's log).
    pub fn start() -> TestServer {
        Self::start_with_config(&[])
    }

    /// Starts a server whose `porpoise.cfg` holds `config` (`key=value` lines).
    pub fn start_with_config(config: &[(&str, &str)]) -> TestServer {
        Self::start_in(config, None)
    }

    /// Starts a server on a copy of the home directory `home` (e.g. a fixture written by an
    /// older build); `home` itself is left as it is.
    pub fn start_from_copy(home: &Path) -> TestServer {
        Self::start_in(&[], Some(home))
    }

    fn start_in(config: &[(&str, &str)], copy_of: Option<&Path>) -> TestServer {
        let dir = tempfile::Builder::new()
            .prefix("porpoise-test-")
            .tempdir()
            .expect("create a temporary directory");
        let home = dir.path().join("home");
        match copy_of {
            Some(from) => copy_tree(from, &home),
            None => std::fs::create_dir(&home).expect("create the home directory"),
        }
        let mut server = TestServer {
            child: None,
            env: Vec::new(),
            config: config
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            port: 0,
            dir,
        };
        server.spawn();
        server
    }

    /// The pgwire port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A connection URL for the admin user.
    pub fn url(&self) -> String {
        self.url_for(ADMIN_USER, ADMIN_PASSWORD)
    }

    /// A connection URL for any user.
    pub fn url_for(&self, user: &str, password: &str) -> String {
        url(self.port, user, password)
    }

    /// The server's `--home`.
    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    /// Everything the server wrote on stderr so far (its tracing log), across restarts.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// The process id of the running server.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// `Some(status)` once the process has exited (crashed or was killed), `None` while it runs.
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        match self.child.as_mut() {
            None => None,
            Some(child) => child.try_wait().expect("poll the server process"),
        }
    }

    /// A client connected as admin; its connection runs on a spawned task.
    pub async fn client(&self) -> tokio_postgres::Client {
        self.client_as(ADMIN_USER, ADMIN_PASSWORD)
            .await
            .unwrap_or_else(|e| panic!("cannot connect as {ADMIN_USER}: {e}\n{}", self.log()))
    }

    /// A client connected as `user`, or the connection error (e.g. a wrong password).
    pub async fn client_as(
        &self,
        user: &str,
        password: &str,
    ) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
        connect(&self.url_for(user, password)).await
    }

    /// Kills the server with SIGKILL and waits until it is gone. The home directory is kept.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            // `Child::kill` sends SIGKILL on unix.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills the server (SIGKILL) if it runs and starts it again on the same home. The port may
    /// change: use [`TestServer::port`] / [`TestServer::url`] afterwards.
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    /// Restarts the server with `PORPOISE_CRASH_AT=<point>` (`None`: without a crash point).
    pub fn restart_with_crash_point(&mut self, point: Option<&str>) {
        self.env.retain(|(k, _)| k != "PORPOISE_CRASH_AT");
        if let Some(p) = point {
            self.env.push(("PORPOISE_CRASH_AT".into(), p.into()));
        }
        self.restart();
    }

    /// Waits (with a deadline) until the process has exited by itself; its exit status.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.exit_status() {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    fn spawn(&mut self) {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("open the server log");
        let mut command = Command::new(env!("CARGO_BIN_EXE_porpoise"));
        command.arg("standalone");
        if !self.config.is_empty() {
            let cfg = self.dir.path().join("cfg");
            std::fs::create_dir_all(&cfg).expect("create cfg/");
            let lines: String = self
                .config
                .iter()
                .map(|(k, v)| format!("{k}={v}\n"))
                .collect();
            std::fs::write(cfg.join("porpoise.cfg"), lines).expect("write porpoise.cfg");
            command.arg("--config").arg(cfg);
        }
        let mut child = command
            .arg("--port")
            .arg("0")
            .arg("--home")
            .arg(self.home())
            .env(
                "RUST_LOG",
                std::env::var("PORPOISE_TEST_LOG").unwrap_or_else(|_| "info,openraft=warn".into()),
            )
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start the porpoise binary");
        let stdout = child.stdout.take().expect("piped stdout");
        self.child = Some(child);
        self.port = match wait_for_port(stdout, START_TIMEOUT) {
            Ok(port) => port,
            Err(why) => {
                let status = self.exit_status();
                self.kill9();
                panic!(
                    "porpoise standalone did not start ({why}; exit status {status:?})\n--- server log ---\n{}",
                    self.log()
                );
            }
        };
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill9();
        // `dir` is removed when it drops, after the process is gone.
    }
}

/// Reads the server's stdout on a thread until the listening line arrives; the thread keeps
/// draining stdout afterwards so the server never writes into a closed pipe.
fn wait_for_port(stdout: std::process::ChildStdout, timeout: Duration) -> Result<u16, String> {
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            // The receiver is gone after the first line; later lines are just drained.
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                if let Some(port) = parse_listening_line(&line) {
                    return Ok(port);
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                return Err(format!("no listening line within {timeout:?}"))
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err("stdout closed before the listening line".into())
            }
        }
    }
}

/// `porpoise standalone listening on 127.0.0.1:PORT (home DIR)` → PORT.
fn parse_listening_line(line: &str) -> Option<u16> {
    let addr = line
        .strip_prefix(LISTENING_PREFIX)?
        .split_whitespace()
        .next()?;
    addr.rsplit_once(':')?.1.parse().ok()
}

/// Copies the directory tree `from` to `to`.
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap_or_else(|e| panic!("create {}: {e}", to.display()));
    let entries =
        std::fs::read_dir(from).unwrap_or_else(|e| panic!("read {}: {e}", from.display()));
    for entry in entries {
        let entry = entry.expect("a directory entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("a file type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target)
                .unwrap_or_else(|e| panic!("copy {}: {e}", entry.path().display()));
        }
    }
}

/// The connection URL of `user` on a server listening on 127.0.0.1:`port`.
pub fn url(port: u16, user: &str, password: &str) -> String {
    format!("postgres://{user}:{password}@127.0.0.1:{port}/porpoise")
}

/// Polls `f` until it returns true; panics after a minute.
pub async fn wait_for<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(60);
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Connects with a deadline and drives the connection on a spawned task.
pub async fn connect(url: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let mut config: tokio_postgres::Config = url.parse()?;
    config.connect_timeout(CONNECT_TIMEOUT);
    let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
    tokio::spawn(async move {
        // Ends when the client is dropped or the server goes away; the client reports errors.
        let _ = connection.await;
    });
    Ok(client)
}

/// The first row among a simple query's messages.
pub fn first_row(
    messages: &[tokio_postgres::SimpleQueryMessage],
) -> &tokio_postgres::SimpleQueryRow {
    messages
        .iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => Some(r),
            _ => None,
        })
        .expect("a row")
}

/// The first column of the first row `sql` returns, as text (simple query protocol).
pub async fn first_value(client: &tokio_postgres::Client, sql: &str) -> String {
    let messages = client.simple_query(sql).await.expect("the statement runs");
    first_row(&messages).get(0).expect("not NULL").to_owned()
}

/// The names of the Parquet data files under `dir` (recursively).
pub fn parquet_file_names(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "parquet") {
                out.push(e.file_name().to_string_lossy().to_string());
            }
        }
    }
    out
}

/// How many Parquet data files lie under `dir` (recursively).
pub fn parquet_files(dir: &Path) -> usize {
    parquet_file_names(dir).len()
}

/// A TLS client that checks servers against the CA certificates in `ca` and presents no
/// certificate of its own (as psql or a browser).
pub fn tls_client_trusting(ca: &std::path::Path) -> std::sync::Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in porpoise::rpc::identity::certs(ca).expect("CA certificates") {
        roots.add(cert).expect("a CA certificate");
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    std::sync::Arc::new(config)
}
