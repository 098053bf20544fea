//! The testTB benchmark: 5000 securities × 242 one-minute bars of 2023-01-08,
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

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[path = "common/mod.rs"]
mod common;

use common::{connect, copy_csv, start_cluster, start_server, testtb_csv, SECURITIES};

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
    let client = connect(server.ports[0]).await;
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
    let rows = copy_csv(&client, "testTB", &csv).await;
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
            let c = connect(*port).await;
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
