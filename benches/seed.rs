//! Seeding benchmark: a master and a slave cluster (one controller and two data nodes each,
//! started with `porpoise up`) on this machine.
//!
//! testTB ×`PORPOISE_BENCH_SEED_DAYS` (default 10 days of 1.21M rows: 12.1M rows) is COPYed
//! into the master while replication is off; the slave attaches; replication is then switched
//! on, which takes a cut for the slave, and the slave installs it. Reported: the time from
//! switching replication on until the slave's seed is DONE, as MB/s of Parquet and rows/s;
//! then `checkClusterReplicationConsistency` on the slave, as seconds per GB of data.
//!
//! Run: `cargo bench --bench seed`. Figures go to `benches/README.md`.

#[path = "common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::{connect, copy_csv, start_master, start_slave, testtb_csv, wait_for_master_role};

#[tokio::main]
async fn main() {
    let days: usize = std::env::var("PORPOISE_BENCH_SEED_DAYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let master = start_master().await;
    let m = connect(master.ports[0]).await;
    wait_for_master_role(&m).await;
    m.batch_execute(
        r#"create database "dfs://testDB" partitioned by VALUE(2023.01.01..2023.12.31);
           create table "dfs://testDB"."testTB"(SecurityID SYMBOL, DateTime DATETIME,
             PreClosePx DOUBLE, OpenPx DOUBLE, HighPx DOUBLE, LowPx DOUBLE, LastPx DOUBLE,
             Volume INT, Amount DOUBLE) partitioned by DateTime;"#,
    )
    .await
    .expect("create");
    let day = String::from_utf8(testtb_csv()).expect("utf-8");
    let mut rows = 0i64;
    let t = Instant::now();
    for d in 0..days {
        let csv = day.replace("2023-01-08", &format!("2023-02-{:02}", d + 1));
        rows += csv.lines().count() as i64;
        copy_csv(&m, "testTB", csv.as_bytes()).await;
    }
    println!(
        "loaded {rows} rows into the master in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let slave = start_slave(&master).await;
    let s = connect(slave.ports[0]).await;
    // Attached: the master lists it.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let attached = m
            .query(
                "select count(*) from getRecentSlaveReplicationInfo() where status = 'ATTACHED'",
                &[],
            )
            .await
            .ok()
            .and_then(|r| r.first().map(|r| r.get::<_, i64>(0)));
        if attached == Some(1) {
            break;
        }
        assert!(Instant::now() < deadline, "the slave never attached");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let t = Instant::now();
    m.batch_execute("select setDatabaseForClusterReplication('dfs://testDB', true)")
        .await
        .expect("enable");
    let deadline = Instant::now() + Duration::from_secs(1800);
    let (bytes, partitions) = loop {
        let done = s
            .query(
                "select bytesTotal, partitionsTotal from getClusterReplicationSeedStatus() where state = 'DONE'",
                &[],
            )
            .await
            .ok()
            .and_then(|r| r.first().map(|r| (r.get::<_, i64>(0), r.get::<_, i64>(1))));
        if let Some(done) = done {
            break done;
        }
        assert!(Instant::now() < deadline, "the seed never finished");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let seeded = t.elapsed().as_secs_f64();
    let count: i64 = s
        .query_one(r#"select count(*) from "dfs://testDB"."testTB""#, &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(count, rows, "the slave holds every row");
    let mb = bytes as f64 / (1 << 20) as f64;
    println!(
        "seed of {rows} rows, {partitions} partitions, {mb:.1} MiB of Parquet: {seeded:.2} s from switching replication on until DONE: {:.0} MiB/s, {:.0} rows/s",
        mb / seeded,
        rows as f64 / seeded
    );

    let t = Instant::now();
    let checked = s
        .query(
            "select status from checkClusterReplicationConsistency('dfs://testDB')",
            &[],
        )
        .await
        .expect("check");
    let took = t.elapsed().as_secs_f64();
    assert!(checked.iter().all(|r| r.get::<_, String>(0) == "MATCH"));
    println!(
        "checkClusterReplicationConsistency: {} partitions MATCH in {took:.2} s: {:.1} s per GiB of Parquet",
        checked.len(),
        took / (bytes as f64 / (1u64 << 30) as f64)
    );
    drop(slave);
    drop(master);
}
