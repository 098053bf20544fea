//! Protected mode: a node reachable from other machines does not serve while `admin` still
//! has the default password 123456, unless `protectedMode=false` says so; on loopback the
//! default stays, so `porpoise standalone` works without configuration.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::common::cluster::TestCluster;
use crate::common::{first_value, TestServer};

/// How a `porpoise standalone` run went.
enum Run {
    Listening(Child),
    Exited(ExitStatus, String),
}

/// Starts `porpoise standalone` with `args` on a free port and waits (with a deadline) until
/// it prints its listening line or exits.
fn standalone(home: &Path, args: &[&str]) -> Run {
    let log = home.with_extension("log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_porpoise"))
        .arg("standalone")
        .args(["--port", "0", "--home"])
        .arg(home)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).expect("create the log"))
        .spawn()
        .expect("start the porpoise binary");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(50)) {
            if line.contains(" listening on ") {
                return Run::Listening(child);
            }
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Run::Exited(status, std::fs::read_to_string(&log).unwrap_or_default());
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("porpoise standalone neither listened nor exited within a minute");
        }
    }
}

fn stop(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn a_standalone_on_a_public_address_refuses_the_default_password() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    match standalone(&home, &["--host", "0.0.0.0"]) {
        Run::Listening(child) => {
            stop(child);
            panic!("a standalone on 0.0.0.0 with admin/123456 started");
        }
        Run::Exited(status, log) => {
            assert!(!status.success(), "{log}");
            for says in [
                "refusing to serve on 0.0.0.0:",
                "admin still has the default password",
                "--host 127.0.0.1",
                "ALTER USER admin PASSWORD",
                "protectedMode=false",
            ] {
                assert!(log.contains(says), "the message lacks {says:?}: {log}");
            }
        }
    }
    // On loopback the same home starts (the README's zero-configuration start).
    match standalone(&home, &["--host", "127.0.0.1"]) {
        Run::Listening(child) => stop(child),
        Run::Exited(status, log) => panic!("loopback start failed ({status}): {log}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protected_mode_off_or_a_changed_password_lets_a_public_node_start() {
    // Said explicitly in porpoise.cfg.
    let server =
        TestServer::start_with_config(&[("listenHost", "0.0.0.0"), ("protectedMode", "false")]);
    let client = server.client().await;
    assert_eq!(first_value(&client, "select 1").await, "1");
    drop(client);
    drop(server);
    // What the message says to do: change the password on loopback, start public again.
    let mut server = TestServer::start();
    let client = server.client().await;
    client
        .batch_execute("alter user admin with password 'a-better-one'")
        .await
        .unwrap();
    drop(client);
    server.kill9();
    match standalone(&server.home(), &["--host", "0.0.0.0"]) {
        Run::Listening(child) => stop(child),
        Run::Exited(status, log) => {
            panic!("start after the password change failed ({status}): {log}")
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_nodes_on_a_public_address_refuse_the_default_password() {
    let mut cluster = TestCluster::builder()
        .prefix("public")
        .host("0.0.0.0")
        .controllers(1)
        .datanodes(1)
        .spawn();
    let nodes: Vec<String> = cluster
        .controllers()
        .into_iter()
        .chain(cluster.datanodes())
        .collect();
    // The controller serves raft until its group knows the users, the data node until its
    // copy of the metadata does; then both stop.
    let deadline = Instant::now() + Duration::from_secs(90);
    while nodes.iter().any(|n| cluster.is_running(n)) {
        assert!(
            Instant::now() < deadline,
            "nodes on 0.0.0.0 with admin/123456 kept running\n{}",
            cluster.logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    for node in &nodes {
        let log = cluster.log(node);
        for says in [
            "refusing to serve on 0.0.0.0:",
            "ALTER USER admin PASSWORD",
            "protectedMode=false in controller.cfg and cluster.cfg",
        ] {
            assert!(log.contains(says), "{node}'s message lacks {says:?}: {log}");
        }
    }
    // Said explicitly, the same cluster serves.
    let cluster = TestCluster::builder()
        .prefix("public")
        .host("0.0.0.0")
        .controllers(1)
        .datanodes(1)
        .controller_cfg("protectedMode", "false")
        .cluster_cfg("protectedMode", "false")
        .build();
    let client = cluster.client(0).await;
    assert_eq!(first_value(&client, "select 1").await, "1");
}
