//! The testTB benchmark (DESIGN §1): 5000 securities × 242 one-minute bars of 2023-01-08,
//! 1,210,000 rows, loaded through COPY into a standalone server, then three queries over pgwire.
//!
//! Run: `cargo bench --bench testtb` (release build; starts the real `porpoise` binary on a free
//! port with a temporary home). Prints one line per figure; the latest figures are kept in
//! `benches/README.md`.
//!
//! `PORPOISE_BENCH_CLUSTER=1 cargo bench --bench testtb` runs the same load and queries on a
//! cluster started with `porpoise up` (one controller, two data nodes), through each data node
//! in turn: the one that owns testTB's partition (all rows are of one day) and the one that
//! does not, which streams every row it scans from the owner over Arrow Flight.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::SinkExt;

const SECURITIES: usize = 5000;

/// The 242 trading minutes of 2023-01-08: 09:30–11:30 and 13:00–15:00 (inclusive ends).
fn minutes() -> Vec<(u32, u32)> {
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
fn testtb_csv() -> Vec<u8> {
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

struct Server {
    child: Child,
    /// pgwire ports of the data nodes.
    ports: Vec<u16>,
    home: std::path::PathBuf,
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

fn start_server() -> Server {
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
        home,
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// One controller and two data nodes under `porpoise up`.
async fn start_cluster() -> Server {
    let home = std::env::temp_dir().join(format!("porpoise-bench-cluster-{}", std::process::id()));
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
    std::fs::write(cfg.join("controller.cfg"), "mode=controller\n").expect("controller.cfg");
    std::fs::write(cfg.join("cluster.cfg"), "").expect("cluster.cfg");
    let child = Command::new(env!("CARGO_BIN_EXE_porpoise"))
        .arg("up")
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

async fn time_query(client: &tokio_postgres::Client, name: &str, sql: &str, runs: usize) {
    // One warm-up run, then the median of `runs`.
    client.simple_query(sql).await.expect(name);
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        client.simple_query(sql).await.expect(name);
        times.push(t.elapsed());
    }
    times.sort();
    let median = times[runs / 2];
    println!(
        "{name}: median {:.1} ms over {runs} runs (min {:.1} ms)",
        ms(median),
        ms(times[0])
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() {
    let csv = testtb_csv();
    println!(
        "testTB: {} rows, {:.1} MB of CSV",
        SECURITIES * 242,
        csv.len() as f64 / 1e6
    );
    let cluster = std::env::var("PORPOISE_BENCH_CLUSTER").is_ok_and(|v| v == "1");
    let server = if cluster {
        start_cluster().await
    } else {
        start_server()
    };
    let url = format!(
        "host=127.0.0.1 port={} user=admin password=123456 dbname=porpoise",
        server.ports[0]
    );
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    client
        .batch_execute(
            r#"create database "dfs://testDB" partitioned by VALUE(2023.01.01..2023.12.31);
               create table "dfs://testDB"."testTB"(SecurityID SYMBOL, DateTime DATETIME, PreClosePx DOUBLE,
                 OpenPx DOUBLE, HighPx DOUBLE, LowPx DOUBLE, LastPx DOUBLE, Volume INT, Amount DOUBLE)
                 partitioned by DateTime;
               create table "dfs://testDB"."viaPsql"(SecurityID SYMBOL, DateTime DATETIME, PreClosePx DOUBLE,
                 OpenPx DOUBLE, HighPx DOUBLE, LowPx DOUBLE, LastPx DOUBLE, Volume INT, Amount DOUBLE)
                 partitioned by DateTime;"#,
        )
        .await
        .expect("create");

    // COPY through tokio-postgres, 64 KiB CopyData messages.
    let t = Instant::now();
    let sink = client
        .copy_in(r#"COPY "dfs://testDB"."testTB" FROM STDIN WITH (FORMAT csv)"#)
        .await
        .expect("copy_in");
    futures::pin_mut!(sink);
    for chunk in csv.chunks(64 * 1024) {
        sink.send(Bytes::copy_from_slice(chunk))
            .await
            .expect("copy data");
    }
    let rows = sink.finish().await.expect("copy finish");
    let copy = t.elapsed();
    println!(
        "COPY (tokio-postgres) of {rows} rows: {:.0} ms ({:.2} M rows/s)",
        ms(copy),
        rows as f64 / copy.as_secs_f64() / 1e6
    );

    // COPY through psql's \copy, end to end as a user runs it.
    let file = server.home.join("testTB.csv");
    std::fs::write(&file, &csv).expect("write csv");
    let t = Instant::now();
    let status = Command::new("psql")
        .arg(format!(
            "postgres://admin@127.0.0.1:{}/porpoise",
            server.ports[0]
        ))
        .arg("-c")
        .arg(format!(
            r#"\copy "dfs://testDB"."viaPsql" from '{}' csv"#,
            file.display()
        ))
        .env("PGPASSWORD", "123456")
        .stdout(Stdio::null())
        .status();
    match status {
        Ok(s) if s.success() => println!(
            "COPY (psql \\copy) of {rows} rows: {:.0} ms",
            ms(t.elapsed())
        ),
        other => println!("COPY (psql \\copy): not measured ({other:?})"),
    }

    for (i, port) in server.ports.iter().enumerate() {
        if server.ports.len() > 1 {
            let url =
                format!("host=127.0.0.1 port={port} user=admin password=123456 dbname=porpoise");
            let (c, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .expect("connect");
            tokio::spawn(conn);
            println!("--- queries through data node {} ---", i + 1);
            queries(&c).await;
        } else {
            queries(&client).await;
        }
    }
}

async fn queries(client: &tokio_postgres::Client) {
    time_query(
        client,
        "select count(*)",
        r#"select count(*) from "dfs://testDB"."testTB""#,
        21,
    )
    .await;
    time_query(
        client,
        "group by SecurityID",
        r#"select SecurityID, avg(LastPx), sum(Volume) from "dfs://testDB"."testTB" group by SecurityID"#,
        21,
    )
    .await;
    time_query(
        client,
        "range max-min",
        r#"select max(HighPx) - min(LowPx) from "dfs://testDB"."testTB" where DateTime between '2023-01-08T10:00:00' and '2023-01-08T11:00:00'"#,
        21,
    )
    .await;
}
