//! [`TestCluster`]: a real cluster of `porpoise controller` and `porpoise datanode` processes on
//! free loopback ports, described by a cluster directory written into a temporary directory
//! (`cfg/` with `controller.cfg`, `cluster.nodes`, `cluster.cfg`; `home/` with each node's
//! files; `<alias>.log` with each node's stderr).
//!
//! ```ignore
//! let cluster = TestCluster::builder().controllers(3).datanodes(2).build();
//! let client = cluster.client(0).await;       // psql-equivalent to the first data node
//! cluster.kill9(&cluster.leader().unwrap());  // a real SIGKILL
//! ```
//!
//! Every node is its own process, so tests can `kill -9` and restart any one of them on the same
//! home. Nothing waits by sleeping: every wait polls with a deadline. Dropping the cluster kills
//! every process and removes the directory.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub use super::ports::free_port;
use porpoise::rpc::identity::CertificateAuthority;

/// The file of slave CAs a test cluster trusts, in its directory.
const TRUSTED_SLAVES: &str = "trusted-slaves.crt";

/// Adds a CA certificate to a file of trusted CAs, replacing the file whole (a node may be
/// reading it).
fn trust(file: &std::path::Path, pem: &str) {
    let mut all = std::fs::read_to_string(file).unwrap_or_default();
    all.push_str(pem);
    let tmp = file.with_extension("tmp");
    std::fs::write(&tmp, all).expect("write the trusted CAs");
    std::fs::rename(&tmp, file).expect("replace the trusted CAs");
}
use super::{connect, url, ADMIN_PASSWORD, ADMIN_USER};

/// How long a node may take to print its listening line.
const START_TIMEOUT: Duration = Duration::from_secs(120);

/// Node roles in `cluster.nodes`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Controller,
    DataNode,
}

/// One node of the cluster.
#[derive(Debug)]
pub struct TestNode {
    pub alias: String,
    pub role: Role,
    pub port: u16,
    child: Option<Child>,
}

/// Builds a [`TestCluster`].
#[derive(Clone, Debug)]
pub struct TestClusterBuilder {
    controllers: usize,
    datanodes: usize,
    prefix: String,
    controller_cfg: Vec<(String, String)>,
    cluster_cfg: Vec<(String, String)>,
    env: Vec<(String, String)>,
    /// The host of every node in `cluster.nodes` (127.0.0.1 unless set).
    host: Option<String>,
    /// The master's CA certificate and its file of trusted slave CAs, for a slave cluster.
    master: Option<(PathBuf, PathBuf)>,
}

impl TestClusterBuilder {
    /// Makes this cluster able to replicate from `master`: its nodes know the master's CA
    /// (`clusterReplicationSSLCAFile`) and the master is told to trust this cluster's CA
    /// (added to the master's `clusterReplicationSlaveCAFile` when the cluster is built).
    /// The master's controller address is still for the caller to set.
    pub fn replicates_from(mut self, master: &TestCluster) -> Self {
        let ca = master.ca_cert();
        let ca_str = ca.to_str().expect("a UTF-8 path").to_string();
        self.master = Some((ca, master.trusted_slaves()));
        self.controller_cfg("clusterReplicationSSLCAFile", &ca_str)
            .cluster_cfg("clusterReplicationSSLCAFile", &ca_str)
    }

    /// Undoes the trust half of [`replicates_from`](Self::replicates_from): the master is not
    /// told of this cluster's CA, so its calls to the master are refused.
    pub fn untrusted(mut self) -> Self {
        self.master = None;
        self
    }

    /// Nodes listen on `host` (e.g. `0.0.0.0`) instead of 127.0.0.1; clients still connect to
    /// 127.0.0.1.
    pub fn host(mut self, host: &str) -> Self {
        self.host = Some(host.to_string());
        self
    }

    /// Starts every node without waiting for them to listen (for nodes expected to refuse to
    /// start).
    pub fn spawn(self) -> TestCluster {
        self.start(false)
    }

    pub fn controllers(mut self, n: usize) -> Self {
        self.controllers = n;
        self
    }

    pub fn datanodes(mut self, n: usize) -> Self {
        self.datanodes = n;
        self
    }

    /// Aliases are `<prefix>_ctl<i>` and `<prefix>_dn<i>`.
    pub fn prefix(mut self, p: &str) -> Self {
        self.prefix = p.to_string();
        self
    }

    /// A `controller.cfg` line (replacing an earlier one of the same key).
    pub fn controller_cfg(mut self, key: &str, value: &str) -> Self {
        self.controller_cfg.retain(|(k, _)| k != key);
        self.controller_cfg.push((key.into(), value.into()));
        self
    }

    /// A `cluster.cfg` line (data node keys; replacing an earlier one of the same key).
    pub fn cluster_cfg(mut self, key: &str, value: &str) -> Self {
        self.cluster_cfg.retain(|(k, _)| k != key);
        self.cluster_cfg.push((key.into(), value.into()));
        self
    }

    /// An environment variable of every node process.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Writes the cluster directory and starts every node; returns once every node listens.
    pub fn build(self) -> TestCluster {
        self.start(true)
    }

    fn start(self, wait: bool) -> TestCluster {
        // PORPOISE_TEST_KEEP=1 keeps the directory (homes and logs) for a post-mortem.
        let dir = tempfile::Builder::new()
            .prefix("porpoise-cluster-")
            .disable_cleanup(std::env::var_os("PORPOISE_TEST_KEEP").is_some())
            .tempdir()
            .expect("create a temporary directory");
        let cfg = dir.path().join("cfg");
        std::fs::create_dir_all(&cfg).expect("create cfg/");
        std::fs::create_dir_all(dir.path().join("home")).expect("create home/");
        // The cluster's CA, made before any node starts (as `porpoise up` does), so that a
        // master can be told to trust it; the nodes sign their certificates with it.
        let ca = CertificateAuthority::load_or_create_in(&dir.path().join("home").join("ca"))
            .expect("make the cluster's CA");
        if let Some((_, trusted)) = &self.master {
            trust(trusted, ca.cert_pem());
        }
        let insecure = self
            .controller_cfg
            .iter()
            .chain(&self.cluster_cfg)
            .any(|(k, v)| k == "insecure" && v == "true");
        let slaves = dir.path().join(TRUSTED_SLAVES);
        let slaves = slaves.to_str().expect("a UTF-8 path");
        let mut controller_cfg = self.controller_cfg.clone();
        let mut cluster_cfg = self.cluster_cfg.clone();
        for cfg in [&mut controller_cfg, &mut cluster_cfg] {
            if !insecure
                && !cfg
                    .iter()
                    .any(|(k, _)| k == "clusterReplicationSlaveCAFile")
            {
                cfg.push(("clusterReplicationSlaveCAFile".into(), slaves.into()));
            }
        }
        let mut nodes = Vec::new();
        for i in 1..=self.controllers {
            nodes.push(TestNode {
                alias: format!("{}_ctl{i}", self.prefix),
                role: Role::Controller,
                port: free_port(),
                child: None,
            });
        }
        for i in 1..=self.datanodes {
            nodes.push(TestNode {
                alias: format!("{}_dn{i}", self.prefix),
                role: Role::DataNode,
                port: free_port(),
                child: None,
            });
        }
        let mut list = String::from("localSite,mode\n");
        for n in &nodes {
            let role = match n.role {
                Role::Controller => "controller",
                Role::DataNode => "datanode",
            };
            let host = self.host.as_deref().unwrap_or("127.0.0.1");
            list.push_str(&format!("{host}:{}:{},{role}\n", n.port, n.alias));
        }
        std::fs::write(cfg.join("cluster.nodes"), list).expect("write cluster.nodes");
        let lines = |kv: &[(String, String)]| -> String {
            kv.iter().map(|(k, v)| format!("{k}={v}\n")).collect()
        };
        std::fs::write(
            cfg.join("controller.cfg"),
            format!("mode=controller\n{}", lines(&controller_cfg)),
        )
        .expect("write controller.cfg");
        std::fs::write(cfg.join("cluster.cfg"), lines(&cluster_cfg)).expect("write cluster.cfg");
        let mut cluster = TestCluster {
            dir,
            nodes,
            env: self.env,
        };
        let pending: Vec<(String, mpsc::Receiver<String>)> = (0..cluster.nodes.len())
            .map(|i| {
                let alias = cluster.nodes[i].alias.clone();
                let rx = cluster.spawn(i);
                (alias, rx)
            })
            .collect();
        for (alias, rx) in pending.into_iter().filter(|_| wait) {
            cluster.wait_listening(&alias, rx);
        }
        cluster
    }
}

/// A running cluster. See the module documentation.
pub struct TestCluster {
    dir: tempfile::TempDir,
    pub nodes: Vec<TestNode>,
    env: Vec<(String, String)>,
}

impl TestCluster {
    pub fn builder() -> TestClusterBuilder {
        TestClusterBuilder {
            controllers: 1,
            datanodes: 2,
            prefix: "t".into(),
            controller_cfg: Vec::new(),
            cluster_cfg: Vec::new(),
            env: Vec::new(),
            master: None,
            host: None,
        }
    }

    /// The cluster's CA certificate (`<home>/ca/ca.crt`).
    pub fn ca_cert(&self) -> PathBuf {
        self.home().join("ca").join("ca.crt")
    }

    /// The file of slave CAs this cluster trusts (its `clusterReplicationSlaveCAFile`).
    pub fn trusted_slaves(&self) -> PathBuf {
        self.dir.path().join(TRUSTED_SLAVES)
    }

    /// A node's certificate directory.
    pub fn certs_dir(&self, alias: &str) -> PathBuf {
        self.home().join(alias).join("certs")
    }

    /// Calls to this cluster's nodes as its node `alias` (with that node's certificate).
    pub fn peers_as(&self, alias: &str) -> porpoise::rpc::client::Peers {
        use porpoise::rpc::identity::NodeIdentity;
        use porpoise::rpc::tls::{client_config, ServerTrust};
        let identity = NodeIdentity::load(&self.certs_dir(alias))
            .unwrap_or_else(|e| panic!("{alias}'s certificate: {e}"));
        let config =
            client_config(&identity, ServerTrust::Cluster).expect("a TLS client configuration");
        porpoise::rpc::client::Peers::with_tls(config)
    }

    /// The cluster directory (`controller.cfg`, `cluster.nodes`, `cluster.cfg`).
    pub fn config_dir(&self) -> PathBuf {
        self.dir.path().join("cfg")
    }

    /// Where the nodes keep their files (`<home>/<alias>/`).
    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    fn index(&self, alias: &str) -> usize {
        self.nodes
            .iter()
            .position(|n| n.alias == alias)
            .unwrap_or_else(|| panic!("no node {alias}"))
    }

    /// The data nodes' aliases, in order.
    pub fn datanodes(&self) -> Vec<String> {
        self.role(Role::DataNode)
    }

    /// The controllers' aliases, in order.
    pub fn controllers(&self) -> Vec<String> {
        self.role(Role::Controller)
    }

    fn role(&self, role: Role) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|n| n.role == role)
            .map(|n| n.alias.clone())
            .collect()
    }

    /// A node's port.
    pub fn port(&self, alias: &str) -> u16 {
        self.nodes[self.index(alias)].port
    }

    /// The admin URL of the `i`-th data node.
    pub fn url(&self, i: usize) -> String {
        url(self.port(&self.datanodes()[i]), ADMIN_USER, ADMIN_PASSWORD)
    }

    /// An admin client of the `i`-th data node.
    pub async fn client(&self, i: usize) -> tokio_postgres::Client {
        connect(&self.url(i))
            .await
            .unwrap_or_else(|e| panic!("cannot connect to data node {i}: {e}\n{}", self.logs()))
    }

    /// A node's stderr, across restarts.
    pub fn log(&self, alias: &str) -> String {
        std::fs::read_to_string(self.log_path(alias)).unwrap_or_default()
    }

    /// Every node's log, for failure messages.
    pub fn logs(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("--- {} ---\n{}", n.alias, tail(&self.log(&n.alias), 60)))
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn log_path(&self, alias: &str) -> PathBuf {
        self.dir.path().join(format!("{alias}.log"))
    }

    /// Kills a node with SIGKILL and waits until it is gone; its files stay.
    pub fn kill9(&mut self, alias: &str) {
        let i = self.index(alias);
        if let Some(mut child) = self.nodes[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops a node with SIGSTOP (it keeps its sockets and answers nothing) until
    /// [`resume`](Self::resume).
    pub fn pause(&mut self, alias: &str) {
        self.signal(alias, "-STOP");
    }

    /// Continues a node stopped by [`pause`](Self::pause) (SIGCONT).
    pub fn resume(&mut self, alias: &str) {
        self.signal(alias, "-CONT");
    }

    fn signal(&mut self, alias: &str, signal: &str) {
        let i = self.index(alias);
        let Some(child) = self.nodes[i].child.as_ref() else {
            return;
        };
        let status = Command::new("kill")
            .arg(signal)
            .arg(child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {signal} {alias} failed");
    }

    /// Starts a stopped node again on the same port and home; waits until it listens.
    pub fn start(&mut self, alias: &str) {
        self.start_with_env(alias, &[]);
    }

    /// Like [`start`](Self::start), with extra environment (e.g. `PORPOISE_CRASH_AT`).
    pub fn start_with_env(&mut self, alias: &str, env: &[(&str, &str)]) {
        let started = self.restart(alias, env);
        self.wait_listening(alias, started);
    }

    /// Starts a stopped node again without waiting for it to listen; pass the result to
    /// [`wait_started`](Self::wait_started).
    pub fn start_in_background(&mut self, alias: &str) -> mpsc::Receiver<String> {
        self.restart(alias, &[])
    }

    fn restart(&mut self, alias: &str, env: &[(&str, &str)]) -> mpsc::Receiver<String> {
        let i = self.index(alias);
        assert!(self.nodes[i].child.is_none(), "{alias} is running");
        self.spawn_with(i, env)
    }

    /// Waits until a node started by [`start_in_background`](Self::start_in_background)
    /// listens.
    pub fn wait_started(&mut self, alias: &str, started: mpsc::Receiver<String>) {
        self.wait_listening(alias, started);
    }

    /// Rebuilds the whole cluster from empty homes: every process is killed with `kill -9`,
    /// everything in its home but its certificates (so it is the same cluster, with the same
    /// id) is deleted, and after `down` every process starts again.
    #[allow(dead_code)]
    pub fn rebuild(&mut self, down: std::time::Duration) {
        let aliases: Vec<String> = self.nodes.iter().map(|n| n.alias.clone()).collect();
        for alias in &aliases {
            self.kill9(alias);
        }
        for alias in &aliases {
            let dir = self.home().join(alias);
            for entry in std::fs::read_dir(&dir).expect("a node's home") {
                let path = entry.expect("a node's home").path();
                if path.file_name().is_some_and(|n| n == "certs") {
                    continue;
                }
                let removed = if path.is_dir() {
                    std::fs::remove_dir_all(&path)
                } else {
                    std::fs::remove_file(&path)
                };
                removed.unwrap_or_else(|e| panic!("cannot delete {}: {e}", path.display()));
            }
        }
        std::thread::sleep(down);
        let started: Vec<_> = aliases
            .iter()
            .map(|alias| (alias, self.start_in_background(alias)))
            .collect();
        for (alias, started) in started {
            self.wait_started(alias, started);
        }
    }

    /// Whether a node's process is running.
    pub fn is_running(&mut self, alias: &str) -> bool {
        let i = self.index(alias);
        match self.nodes[i].child.as_mut() {
            None => false,
            Some(c) => c.try_wait().ok().flatten().is_none(),
        }
    }

    /// `GET path` on a node's port: status code and body.
    pub fn http_get(&self, alias: &str, path: &str) -> (u16, String) {
        http_get(self.port(alias), path)
    }

    /// The controller leader's alias as the controllers report it in `/metrics` (which needs
    /// no credentials): of the running controllers that say they lead, the one of the
    /// highest term (a deposed leader that has not heard of the new term yet may still say
    /// so).
    pub fn leader(&self) -> Option<String> {
        let mut best: Option<(f64, String)> = None;
        for c in self.controllers() {
            if self.nodes[self.index(&c)].child.is_none() {
                continue;
            }
            let (code, body) = http_get(self.port(&c), "/metrics");
            if code != 200 {
                continue;
            }
            let gauge = |name: &str| {
                body.lines()
                    .find(|l| l.starts_with(&format!("{name}{{")))
                    .and_then(|l| l.rsplit(' ').next())
                    .and_then(|v| v.parse::<f64>().ok())
            };
            if gauge("porpoise_raft_is_leader") != Some(1.0) {
                continue;
            }
            let term = gauge("porpoise_raft_term").unwrap_or(0.0);
            if best.as_ref().is_none_or(|(t, _)| term > *t) {
                best = Some((term, c));
            }
        }
        best.map(|(_, c)| c)
    }

    /// `GET path` over TLS as admin (HTTP Basic), for the pages that show the cluster.
    pub fn admin_get(&self, alias: &str, path: &str) -> (u16, String) {
        https_get(
            self.port(alias),
            &self.ca_cert(),
            path,
            Some((ADMIN_USER, ADMIN_PASSWORD)),
        )
    }

    /// The controllers other than the current leader.
    pub fn followers(&self) -> Vec<String> {
        let leader = self.leader().expect("a controller leader");
        self.controllers()
            .into_iter()
            .filter(|c| *c != leader)
            .collect()
    }

    /// Polls until `f` holds or `timeout` passes; the time it took.
    pub fn wait_until(
        &self,
        what: &str,
        timeout: Duration,
        mut f: impl FnMut() -> bool,
    ) -> Duration {
        let start = Instant::now();
        loop {
            if f() {
                return start.elapsed();
            }
            if start.elapsed() > timeout {
                panic!(
                    "timed out after {timeout:?} waiting for {what}\n{}",
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn spawn(&mut self, i: usize) -> mpsc::Receiver<String> {
        self.spawn_with(i, &[])
    }

    fn spawn_with(&mut self, i: usize, env: &[(&str, &str)]) -> mpsc::Receiver<String> {
        let node = &self.nodes[i];
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(&node.alias))
            .expect("open the node log");
        let role = match node.role {
            Role::Controller => "controller",
            Role::DataNode => "datanode",
        };
        let mut child = Command::new(env!("CARGO_BIN_EXE_porpoise"))
            .arg(role)
            .arg(self.config_dir())
            .arg("--alias")
            .arg(&node.alias)
            .arg("--home")
            .arg(self.home())
            // The node stops if this test process dies without dropping the cluster.
            .arg("--stop-on-stdin-eof")
            // Whatever a node resolves against its working directory stays in the test's.
            .current_dir(self.dir.path())
            .env(
                "RUST_LOG",
                std::env::var("PORPOISE_TEST_LOG").unwrap_or_else(|_| "info,openraft=warn".into()),
            )
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start the porpoise binary");
        let stdout = child.stdout.take().expect("piped stdout");
        self.nodes[i].child = Some(child);
        let (tx, rx) = mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        rx
    }

    fn wait_listening(&mut self, alias: &str, rx: mpsc::Receiver<String>) {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) if line.contains(" listening on ") => return,
                Ok(_) => {}
                Err(_) => {
                    let running = self.is_running(alias);
                    panic!(
                        "node {alias} did not start (running: {running})\n{}",
                        self.logs()
                    );
                }
            }
        }
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            if let Some(mut c) = n.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

/// A minimal HTTP/1.1 GET on 127.0.0.1:`port`: status code and body (code 0 when the node does
/// not answer).
pub fn http_get(port: u16, path: &str) -> (u16, String) {
    http_get_as(port, path, None)
}

/// [`http_get`] with HTTP Basic credentials, over plain TCP.
pub fn http_get_as(port: u16, path: &str, auth: Option<(&str, &str)>) -> (u16, String) {
    let Some(mut s) = tcp_connect(port) else {
        return (0, String::new());
    };
    exchange(&mut s, path, auth)
}

/// `GET path` over TLS on 127.0.0.1:`port`, verifying the node against `ca` (its cluster's CA
/// certificate), with HTTP Basic credentials when given.
pub fn https_get(port: u16, ca: &Path, path: &str, auth: Option<(&str, &str)>) -> (u16, String) {
    https_get_with(port, super::tls_client_trusting(ca), path, auth)
}

/// [`https_get`] with a TLS client configuration of the caller's (a client certificate, say).
pub fn https_get_with(
    port: u16,
    config: std::sync::Arc<rustls::ClientConfig>,
    path: &str,
    auth: Option<(&str, &str)>,
) -> (u16, String) {
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").expect("a server name");
    let conn = rustls::ClientConnection::new(config, name).expect("a TLS client");
    let Some(socket) = tcp_connect(port) else {
        return (0, String::new());
    };
    let mut tls = rustls::StreamOwned::new(conn, socket);
    exchange(&mut tls, path, auth)
}

fn tcp_connect(port: u16) -> Option<TcpStream> {
    let s = TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_secs(2),
    )
    .ok()?;
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    Some(s)
}

/// Sends one GET on `s` and reads the answer: status code and body.
fn exchange(s: &mut (impl Read + Write), path: &str, auth: Option<(&str, &str)>) -> (u16, String) {
    use base64::Engine as _;
    let authorization = auth.map_or_else(String::new, |(user, password)| {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        format!("Authorization: Basic {token}\r\n")
    });
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{authorization}Connection: close\r\n\r\n"
    );
    if s.write_all(req.as_bytes()).is_err() {
        return (0, String::new());
    }
    let mut raw = Vec::new();
    // A TLS peer that closes without close_notify ends the read with an error after the data.
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).to_string();
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = match text.split_once("\r\n\r\n") {
        Some((head, body))
            if head
                .to_ascii_lowercase()
                .contains("transfer-encoding: chunked") =>
        {
            dechunk(body)
        }
        Some((_, body)) => body.to_string(),
        None => String::new(),
    };
    (code, body)
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

fn tail(s: &str, lines: usize) -> String {
    let all: Vec<&str> = s.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Files of each node's home, for tests that check where data went.
pub fn parquet_files_by_node(cluster: &TestCluster) -> BTreeMap<String, usize> {
    cluster
        .datanodes()
        .into_iter()
        .map(|a| {
            let n = super::parquet_files(&cluster.home().join(&a));
            (a, n)
        })
        .collect()
}
