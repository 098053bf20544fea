//! `porpoise playground`, the README's first command: it starts a master and a slave cluster,
//! prints the psql command of each side, the three-line demo works as printed (a replicated
//! database created and written on the master is read on the slave), and SIGTERM (as Ctrl-C)
//! stops every node.

#[path = "../common/mod.rs"]
mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::ports::free_port;
use common::{connect, url, wait_for, ADMIN_PASSWORD, ADMIN_USER};

/// Six consecutive free ports: the playground's `--base-port`.
fn six_free_ports() -> u16 {
    loop {
        let base = free_port();
        if base < u16::MAX - 6
            && (1..6).all(|i| std::net::TcpListener::bind(("127.0.0.1", base + i)).is_ok())
        {
            return base;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn playground_replicates_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let base = six_free_ports();
    let out_path = dir.path().join("stdout");
    let err_path = dir.path().join("stderr");
    let mut child = Command::new(env!("CARGO_BIN_EXE_porpoise"))
        .arg("playground")
        .arg("--home")
        .arg(dir.path().join("pg"))
        .arg("--base-port")
        .arg(base.to_string())
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).expect("stdout file"))
        .stderr(std::fs::File::create(&err_path).expect("stderr file"))
        .spawn()
        .expect("start porpoise playground");
    let (master, slave) = (
        url(base + 1, ADMIN_USER, ADMIN_PASSWORD),
        url(base + 4, ADMIN_USER, ADMIN_PASSWORD),
    );
    let logs = || {
        format!(
            "--- stdout ---\n{}\n--- stderr ---\n{}",
            std::fs::read_to_string(&out_path).unwrap_or_default(),
            std::fs::read_to_string(&err_path).unwrap_or_default()
        )
    };

    wait_for("the master to answer", || async {
        connect(&master).await.is_ok()
    })
    .await;
    let stdout = std::fs::read_to_string(&out_path).unwrap_or_default();
    for side in [&master, &slave] {
        assert!(
            stdout.contains(&format!("psql \"{side}\"")),
            "no psql command for {side}\n{}",
            logs()
        );
    }
    assert!(
        stdout.contains("setDatabaseForClusterReplication('dfs://demo', true)"),
        "{}",
        logs()
    );

    // The demo, as printed.
    let m = connect(&master)
        .await
        .unwrap_or_else(|e| panic!("master: {e}\n{}", logs()));
    m.batch_execute(r#"create database "dfs://demo" partitioned by VALUE(1..10)"#)
        .await
        .unwrap();
    m.batch_execute("select setDatabaseForClusterReplication('dfs://demo', true)")
        .await
        .unwrap();
    m.batch_execute(r#"create table "dfs://demo"."t"(id INT, v DOUBLE) partitioned by id"#)
        .await
        .unwrap();
    m.batch_execute(r#"insert into "dfs://demo"."t" values (1, 1.5), (2, 2.5)"#)
        .await
        .unwrap();
    let slave_rows = || async {
        let Ok(s) = connect(&slave).await else {
            return false;
        };
        match s
            .query(r#"select id, v from "dfs://demo"."t" order by id"#, &[])
            .await
        {
            Ok(rows) => {
                let got: Vec<(i32, f64)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
                got == vec![(1, 1.5), (2, 2.5)]
            }
            Err(_) => false,
        }
    };
    wait_for("the rows to reach the slave", slave_rows).await;

    // SIGTERM (what Ctrl-C does) stops the playground and every node.
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .expect("kill");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(60);
    let exit = loop {
        if let Some(s) = child.try_wait().expect("poll the playground") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the playground did not stop on SIGTERM\n{}", logs());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        exit.success(),
        "the playground exited with {exit}\n{}",
        logs()
    );
    for port in [base, base + 1, base + 2, base + 3, base + 4, base + 5] {
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            assert!(
                Instant::now() < deadline,
                "port {port} still answers\n{}",
                logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
