//! Real PostgreSQL clients against a real server: SQLAlchemy with pandas (over psycopg),
//! psycopg, asyncpg, pg8000, the ADBC PostgreSQL driver, node-postgres and psql, each running
//! a script of this directory that asserts what a user of that client would check, on
//! `porpoise standalone` and on a cluster of two data nodes.
//!
//! The Python clients live in a virtual environment and node-postgres in a `node_modules`
//! directory, both under `$PORPOISE_CLIENTS` (default `$HOME/.cache/porpoise-clients`:
//! `venv/` and `node/node_modules/`), which `.ci/run` fills with the versions pinned in
//! `requirements.txt` and `package.json`. Without them a test prints why it is skipped and
//! passes — except under `CI=true`, where a missing client fails the test.
//!
//! A script gets the URL of a data node (and of a second one, the same on a standalone
//! server), exits non-zero with its assertion on failure, and prints `ok <scenario>` last.

#[path = "../common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::cluster::TestCluster;
use common::TestServer;

/// A script that has not finished after this long is killed and the test fails.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(180);

/// Where `.ci/run` installs the clients.
fn clients_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("PORPOISE_CLIENTS") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/tmp"), PathBuf::from);
    home.join(".cache").join("porpoise-clients")
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// `Some(path)` if `path` exists; otherwise fails under CI, or says the test is skipped.
fn required(path: PathBuf, test: &str, what: &str) -> Option<PathBuf> {
    if path.exists() {
        return Some(path);
    }
    let message = format!(
        "{what} is not installed at {} (run .ci/run, or set PORPOISE_CLIENTS)",
        path.display()
    );
    assert!(!in_ci(), "{test}: {message}");
    eprintln!("SKIPPED {test}: {message}");
    None
}

/// The scripts of this directory.
fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("clients")
        .join(name)
}

/// How to run one client's script.
enum Client {
    Python,
    Node,
    Psql,
}

impl Client {
    /// The program and the environment it needs, or `None` (skipped) if not installed.
    fn program(&self, test: &str) -> Option<(PathBuf, Vec<(String, String)>)> {
        let dir = clients_dir();
        match self {
            Client::Python => required(
                dir.join("venv/bin/python"),
                test,
                "the Python clients' venv",
            )
            .map(|p| (p, vec![])),
            Client::Node => {
                let modules = required(dir.join("node/node_modules/pg"), test, "node-postgres")?;
                let node = which("node")
                    .or_else(|| required(PathBuf::from("/usr/bin/node"), test, "node"))?;
                let path = modules.parent().map(Path::to_path_buf).unwrap_or_default();
                Some((node, vec![("NODE_PATH".into(), path.display().to_string())]))
            }
            Client::Psql => which("psql")
                .or_else(|| required(PathBuf::from("/usr/bin/psql"), test, "psql"))
                .map(|p| (p, vec![])),
        }
    }
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}

/// Runs `args` with the client's program and returns its stdout; panics with both streams
/// (and the server's log) unless it succeeds and prints `ok <scenario>`.
fn run(
    client: Client,
    test: &str,
    args: &[String],
    scenario: &str,
    log: &dyn Fn() -> String,
) -> Option<String> {
    let (program, env) = client.program(test)?;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let out_path = dir.path().join("stdout");
    let err_path = dir.path().join("stderr");
    let mut child = Command::new(&program)
        .args(args)
        .envs(env)
        .env("PGCONNECT_TIMEOUT", "30")
        .env("HOME", dir.path())
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).expect("stdout file"))
        .stderr(std::fs::File::create(&err_path).expect("stderr file"))
        .spawn()
        .unwrap_or_else(|e| panic!("{test}: cannot start {}: {e}", program.display()));
    let deadline = Instant::now() + SCRIPT_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("poll the client") {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stdout = std::fs::read_to_string(&out_path).unwrap_or_default();
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    let ok = status.is_some_and(|s| s.success())
        && stdout.lines().any(|l| l.trim() == format!("ok {scenario}"));
    assert!(
        ok,
        "{test}: {scenario} failed (status {status:?})\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}\n--- server log (tail) ---\n{}",
        tail(&log(), 60)
    );
    Some(stdout)
}

fn tail(s: &str, lines: usize) -> String {
    let all: Vec<&str> = s.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Runs a scenario on a standalone server; what the client printed (`None`: skipped).
fn standalone(client: Client, test: &str, file: &str, scenario: &str) -> Option<String> {
    client.program(test)?;
    let server = TestServer::start();
    let url = server.url();
    let log = || server.log();
    run(client, test, &args(file, &url, &url), scenario, &log)
}

/// Runs a scenario on a cluster of two data nodes: written through the first, read through
/// the second.
fn cluster(client: Client, test: &str, file: &str, scenario: &str) -> Option<String> {
    client.program(test)?;
    let cluster = TestCluster::builder().datanodes(2).build();
    let (first, second) = (cluster.url(0), cluster.url(1));
    let log = || cluster.logs();
    run(client, test, &args(file, &first, &second), scenario, &log)
}

/// Panics unless `out` has each of `lines` (whole lines), in this order.
fn assert_lines(out: &str, lines: &[&str]) {
    let mut rest = out.lines();
    for want in lines {
        assert!(
            rest.any(|l| l == *want),
            "missing line {want:?} (in order) in:\n{out}"
        );
    }
}

fn args(file: &str, first: &str, second: &str) -> Vec<String> {
    if file.ends_with(".sql") {
        // psql: no psqlrc, stop at the first error, unaligned output.
        return vec![
            "-X".into(),
            "-A".into(),
            "-v".into(),
            "ON_ERROR_STOP=1".into(),
            "-f".into(),
            script(file).display().to_string(),
            first.to_string(),
        ];
    }
    vec![
        script(file).display().to_string(),
        first.to_string(),
        second.to_string(),
    ]
}

#[test]
fn sqlalchemy_pandas_standalone() {
    standalone(
        Client::Python,
        "sqlalchemy_pandas_standalone",
        "sqlalchemy_pandas.py",
        "sqlalchemy_pandas",
    );
}

#[test]
fn sqlalchemy_pandas_cluster() {
    cluster(
        Client::Python,
        "sqlalchemy_pandas_cluster",
        "sqlalchemy_pandas.py",
        "sqlalchemy_pandas",
    );
}

#[test]
fn psycopg_settings_standalone() {
    standalone(
        Client::Python,
        "psycopg_settings_standalone",
        "psycopg_settings.py",
        "psycopg_settings",
    );
}

#[test]
fn psycopg_settings_cluster() {
    cluster(
        Client::Python,
        "psycopg_settings_cluster",
        "psycopg_settings.py",
        "psycopg_settings",
    );
}

#[test]
fn node_pg_standalone() {
    standalone(Client::Node, "node_pg_standalone", "node_pg.js", "node_pg");
}

#[test]
fn node_pg_cluster() {
    cluster(Client::Node, "node_pg_cluster", "node_pg.js", "node_pg");
}

/// What psql prints for SHOW, the special user names and a plain table name on search_path.
const PSQL_SETTINGS: &[&str] = &[
    "TimeZone",
    "UTC",
    "integer_datetimes",
    "on",
    "current_user|session_user",
    "admin|admin",
    "search_path",
    "\"dfs://psqlset\", public",
    "current_schema",
    "dfs://psqlset",
    "k|v",
    "1|1.5",
    "2|",
    "dfs://psqlset|t|table|admin",
];

#[test]
fn psql_settings_standalone() {
    if let Some(out) = standalone(
        Client::Psql,
        "psql_settings_standalone",
        "psql_settings.sql",
        "psql_settings",
    ) {
        assert_lines(&out, PSQL_SETTINGS);
    }
}

#[test]
fn psql_settings_cluster() {
    if let Some(out) = cluster(
        Client::Psql,
        "psql_settings_cluster",
        "psql_settings.sql",
        "psql_settings",
    ) {
        assert_lines(&out, PSQL_SETTINGS);
    }
}

#[test]
fn psycopg_values_standalone() {
    standalone(
        Client::Python,
        "psycopg_values_standalone",
        "psycopg_values.py",
        "psycopg_values",
    );
}

#[test]
fn psycopg_values_cluster() {
    cluster(
        Client::Python,
        "psycopg_values_cluster",
        "psycopg_values.py",
        "psycopg_values",
    );
}

#[test]
fn adbc_connect_standalone() {
    standalone(
        Client::Python,
        "adbc_connect_standalone",
        "adbc_connect.py",
        "adbc_connect",
    );
}

#[test]
fn adbc_connect_cluster() {
    cluster(
        Client::Python,
        "adbc_connect_cluster",
        "adbc_connect.py",
        "adbc_connect",
    );
}

#[test]
fn asyncpg_pg8000_standalone() {
    standalone(
        Client::Python,
        "asyncpg_pg8000_standalone",
        "asyncpg_pg8000.py",
        "asyncpg_pg8000",
    );
}

#[test]
fn asyncpg_pg8000_cluster() {
    cluster(
        Client::Python,
        "asyncpg_pg8000_cluster",
        "asyncpg_pg8000.py",
        "asyncpg_pg8000",
    );
}

/// What psql prints for `\\dt+ \\dn+ \\df \\dT \\db`.
const PSQL_CATALOG: &[&str] = &[
    "dfs://psqlcat|t|table|admin|permanent||0 bytes|",
    "dfs://psqlcat|admin||",
    "public|admin||",
    "List of functions",
    "List of data types",
    "pg_default|admin|",
    "lt|size",
    "t|118 MB",
];

#[test]
fn psql_catalog_standalone() {
    if let Some(out) = standalone(
        Client::Psql,
        "psql_catalog_standalone",
        "psql_catalog.sql",
        "psql_catalog",
    ) {
        assert_lines(&out, PSQL_CATALOG);
    }
}

#[test]
fn psql_catalog_cluster() {
    if let Some(out) = cluster(
        Client::Psql,
        "psql_catalog_cluster",
        "psql_catalog.sql",
        "psql_catalog",
    ) {
        assert_lines(&out, PSQL_CATALOG);
    }
}
