//! What the benchmarks share: the testTB rows and clusters of real processes started with
//! `porpoise up`.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[path = "../../tests/common/ports.rs"]
mod ports;
pub use ports::free_port;

pub const SECURITIES: usize = 5000;

/// The 242 trading minutes of 2023-01-08: 09:30–11:30 and 13:00–15:00 (inclusive ends).
pub fn minutes() -> Vec<(u32, u32)> {
    let mut out = Vec::with_capacity(242);
    for m in (9 * 60 + 30)..=(11 * 60 + 30) {
        out.push((m / 60, m % 60));
    }
    for m in (13 * 60)..=(15 * 60) {
        out.push((m / 60, m % 60));
    }
    out
}

/// The whole table as CSV (deterministic: prices derive from the row's position).
pub fn testtb_csv() -> Vec<u8> {
    let minutes = minutes();
    assert_eq!(minutes.len(), 242);
    let mut out = Vec::with_capacity(SECURITIES * minutes.len() * 90);
    for s in 0..SECURITIES {
        let base = 10.0 + (s % 97) as f64;
        for (i, (h, m)) in minutes.iter().enumerate() {
            let wiggle = ((s * 31 + i * 17) % 100) as f64 / 100.0;
            let open = base + wiggle;
            let _ = writeln!(
                out,
                "{:06},2023-01-08 {:02}:{:02}:00,{:.2},{:.2},{:.2},{:.2},{:.2},{},{:.2}",
                s + 1,
                h,
                m,
                base,
                open,
                open + 0.5,
                open - 0.5,
                open + 0.1,
                100 + (s + i) % 1000,
                (open + 0.1) * (100 + (s + i) % 1000) as f64
            );
        }
    }
    out
}

pub struct Server {
    pub child: Child,
    /// pgwire ports of the data nodes.
    pub ports: Vec<u16>,
    /// The controller's port (clusters).
    pub controller: u16,
    pub home: std::path::PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        // SIGTERM lets `porpoise up` stop its nodes; SIGKILL if it does not exit.
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline && matches!(self.child.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.home);
    }
}

pub fn start_server() -> Server {
    let home = std::env::temp_dir().join(format!("porpoise-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    let mut child = Command::new(env!("CARGO_BIN_EXE_porpoise"))
        .args(["standalone", "--port", "0", "--home"])
        .arg(&home)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start porpoise");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read port line");
    let port = line
        .split("listening on ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|a| a.rsplit(':').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"));
    Server {
        child,
        ports: vec![port],
        controller: 0,
        home,
    }
}

/// COPYs `csv` into `table` of `dfs://testDB` through tokio-postgres, in 64 KiB CopyData
/// messages; returns the row count the server reports.
pub async fn copy_csv(client: &tokio_postgres::Client, table: &str, csv: &[u8]) -> u64 {
    use futures::SinkExt;
    let sink = client
        .copy_in(&format!(
            r#"COPY "dfs://testDB"."{table}" FROM STDIN WITH (FORMAT csv)"#
        ))
        .await
        .expect("copy_in");
    futures::pin_mut!(sink);
    for chunk in csv.chunks(64 * 1024) {
        sink.send(bytes::Bytes::copy_from_slice(chunk))
            .await
            .expect("copy data");
    }
    sink.finish().await.expect("copy finish")
}

/// One controller and two data nodes under `porpoise up`.
pub async fn start_cluster() -> Server {
    start_cluster_with("cluster", "", "").await
}

/// Where the bench cluster `name` of this process keeps its files (its CA in `data/ca`).
pub fn bench_home(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("porpoise-bench-{name}-{}", std::process::id()))
}

/// `PORPOISE_BENCH_INSECURE=1`: nodes started `--insecure` (plain text between nodes), to
/// measure what mutual TLS costs.
pub fn insecure() -> bool {
    std::env::var("PORPOISE_BENCH_INSECURE").is_ok_and(|v| v == "1")
}

/// The config line naming cluster `name`'s CA (made by `porpoise up` in its home) under
/// `key`, so the other cluster trusts it; nothing when insecure.
fn trusted_ca(name: &str, key: &str) -> String {
    if insecure() {
        return String::new();
    }
    let ca = bench_home(name).join("data").join("ca").join("ca.crt");
    format!("{key}={}\n", ca.display())
}

/// The master cluster of a replication bench (`clusterReplicationSyncPersistence`), trusting
/// the slave started by [`start_slave`].
pub async fn start_master() -> Server {
    let slaves = trusted_ca("slave", "clusterReplicationSlaveCAFile");
    let cluster =
        format!("clusterReplicationMode=master\nclusterReplicationSyncPersistence=true\n{slaves}");
    start_cluster_with("master", &slaves, &cluster).await
}

/// The slave cluster of a replication bench, pulling from `master`.
pub async fn start_slave(master: &Server) -> Server {
    let master_ca = trusted_ca("master", "clusterReplicationSSLCAFile");
    let controller = format!(
        "clusterReplicationMasterCtl=127.0.0.1:{}\n{master_ca}",
        master.controller
    );
    let cluster = format!("clusterReplicationMode=slave\n{master_ca}");
    start_cluster_with("slave", &controller, &cluster).await
}

/// A client of the node serving pgwire on `port`, as the bench's admin.
pub async fn connect(port: u16) -> tokio_postgres::Client {
    let url = format!("host=127.0.0.1 port={port} user=admin password=123456 dbname=porpoise");
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    client
}

/// Waits until the controller leader behind `client` recorded the master role.
pub async fn wait_for_master_role(client: &tokio_postgres::Client) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while client
        .simple_query("select * from getDatabaseClusterReplicationStatus()")
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "the master never took its role");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One controller and two data nodes under `porpoise up`, with extra `controller.cfg` and
/// `cluster.cfg` lines; `name` tells clusters of one run apart.
pub async fn start_cluster_with(name: &str, controller_cfg: &str, cluster_cfg: &str) -> Server {
    let home = bench_home(name);
    let _ = std::fs::remove_dir_all(&home);
    let cfg = home.join("cfg");
    std::fs::create_dir_all(&cfg).expect("cfg dir");
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    std::fs::write(
        cfg.join("cluster.nodes"),
        format!(
            "localSite,mode\n127.0.0.1:{}:ctl,controller\n127.0.0.1:{}:dn1,datanode\n127.0.0.1:{}:dn2,datanode\n",
            ports[0], ports[1], ports[2]
        ),
    )
    .expect("cluster.nodes");
    std::fs::write(
        cfg.join("controller.cfg"),
        format!("mode=controller\n{controller_cfg}"),
    )
    .expect("controller.cfg");
    std::fs::write(cfg.join("cluster.cfg"), cluster_cfg).expect("cluster.cfg");
    let mut command = Command::new(env!("CARGO_BIN_EXE_porpoise"));
    command.arg("up");
    if insecure() {
        command.arg("--insecure");
    }
    let child = command
        .arg(&cfg)
        .arg("--home")
        .arg(home.join("data"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start porpoise up");
    let server = Server {
        child,
        ports: ports[1..].to_vec(),
        controller: ports[0],
        home,
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    for port in &server.ports {
        loop {
            let url =
                format!("host=127.0.0.1 port={port} user=admin password=123456 dbname=porpoise");
            if let Ok((c, conn)) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await {
                tokio::spawn(conn);
                if c.simple_query("select 1").await.is_ok() {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "the cluster did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    server
}

/// CPU time (user + system) each node process of `server` has used so far, by its alias
/// (`ctl`, `dn1`, ...): read from `/proc`, so Linux only (empty elsewhere).
pub fn node_cpu(server: &Server) -> std::collections::BTreeMap<String, Duration> {
    let mut out = std::collections::BTreeMap::new();
    let ticks_per_sec: f64 = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0);
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in procs.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // The fields after the command name, which is in parentheses and may hold spaces:
        // state ppid ... utime (14th field of the line) stime (15th).
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ppid: u32 = fields.get(1).and_then(|f| f.parse().ok()).unwrap_or(0);
        if ppid != server.child.id() {
            continue;
        }
        let ticks: f64 = fields[11..13]
            .iter()
            .filter_map(|f| f.parse::<f64>().ok())
            .sum();
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        let alias = args
            .iter()
            .position(|a| *a == b"--alias")
            .and_then(|i| args.get(i + 1))
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .unwrap_or_else(|| pid.to_string());
        out.insert(alias, Duration::from_secs_f64(ticks / ticks_per_sec));
    }
    out
}
