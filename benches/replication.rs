//! Replication benchmark: a master and a slave cluster (one controller and two data nodes
//! each, started with `porpoise up`) on this machine.
//!
//! 1. The testTB APPEND: 1,210,000 rows COPYed into the master in one transaction; the time
//!    from the COPY's acknowledgement until the slave answers `count(*)` with every row, and
//!    the task's own `finishTime - masterCommitTime` on the slave.
//! 2. Lag under a steady writer: 100k rows/s in transactions of `PORPOISE_BENCH_TXN_ROWS` rows
//!    (default 1,000: 100 a second), shared by `PORPOISE_BENCH_WRITERS` connections (default 4,
//!    spread over the master's data nodes), for `PORPOISE_BENCH_LAG_SECS` seconds (default 60);
//!    rows arrive at that rate whatever the server does, so a writer whose COPY took longer
//!    than its slot sends the next one at once to catch up (`PORPOISE_BENCH_CATCH_UP=0`: it
//!    waits a whole slot instead, and the time lost is never made up);
//!    p50/p99/max of each task's `finishTime - masterCommitTime` (both clocks are this
//!    machine's).
//!
//! Run: `cargo bench --bench replication`. Figures go to `benches/README.md`.

#[path = "common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{
    connect, copy_csv, node_cpu, start_master, start_slave, testtb_csv, wait_for_master_role,
};

/// Polls `sql` (one bigint) on `client` until it returns `want`.
async fn wait_for(client: &tokio_postgres::Client, sql: &str, want: i64, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(row) = client.query_one(sql, &[]).await {
            if row.get::<_, i64>(0) == want {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "timed out: {sql} never gave {want}"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Lags (ms) of the finished tasks of `table`, from the slave's status.
async fn lags(slave: &tokio_postgres::Client, table: &str) -> Vec<f64> {
    slave
        .query(
            "select finishTime, masterCommitTime from getSlaveReplicationStatus() \
             where tableName = $1 and operationType = 'APPEND' and state = 'FINISHED'",
            &[&table],
        )
        .await
        .expect("getSlaveReplicationStatus")
        .iter()
        .map(|r| {
            let f: chrono::NaiveDateTime = r.get(0);
            let c: chrono::NaiveDateTime = r.get(1);
            (f - c).num_microseconds().unwrap_or(0) as f64 / 1000.0
        })
        .collect()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

#[tokio::main]
async fn main() {
    // Each cluster trusts the other's CA (made by `porpoise up` in its home), unless insecure.
    let master = start_master().await;
    let slave = start_slave(&master).await;
    let m = connect(master.ports[0]).await;
    let s = connect(slave.ports[0]).await;
    // The controller leader records the replication role shortly after start.
    wait_for_master_role(&m).await;
    m.batch_execute(
        r#"create database "dfs://testDB" partitioned by VALUE(2023.01.01..2023.12.31);
           select setDatabaseForClusterReplication('dfs://testDB', true);
           create table "dfs://testDB"."testTB"(SecurityID SYMBOL, DateTime DATETIME,
             PreClosePx DOUBLE, OpenPx DOUBLE, HighPx DOUBLE, LowPx DOUBLE, LastPx DOUBLE,
             Volume INT, Amount DOUBLE) partitioned by DateTime;
           create table "dfs://testDB"."steady"(SecurityID SYMBOL, DateTime DATETIME,
             PreClosePx DOUBLE, OpenPx DOUBLE, HighPx DOUBLE, LowPx DOUBLE, LastPx DOUBLE,
             Volume INT, Amount DOUBLE) partitioned by DateTime;"#,
    )
    .await
    .expect("create");
    wait_for(
        &s,
        "select count(*) from getSlaveReplicationStatus() where state = 'FINISHED'",
        3,
        Duration::from_secs(60),
    )
    .await;

    // CREATE_DOMAIN and the two tables are on the slave: 1. the testTB APPEND.
    let csv = testtb_csv();
    let rows = csv.iter().filter(|b| **b == b'\n').count() as i64;
    let t = Instant::now();
    copy_csv(&m, "testTB", &csv).await;
    let copied = t.elapsed();
    let acked = Instant::now();
    wait_for(
        &s,
        r#"select count(*) from "dfs://testDB"."testTB""#,
        rows,
        Duration::from_secs(300),
    )
    .await;
    let visible = acked.elapsed();
    let task_lag = lags(&s, "testTB").await;
    println!(
        "testTB APPEND ({rows} rows): COPY on the master {:.0} ms; from its acknowledgement until the slave serves every row {:.0} ms; the task's finishTime - masterCommitTime {:.0} ms",
        copied.as_secs_f64() * 1000.0,
        visible.as_secs_f64() * 1000.0,
        task_lag.first().copied().unwrap_or(f64::NAN)
    );

    // 2. Lag under a steady writer: 100k rows/s in transactions of `txn_rows` rows.
    let secs: u64 = std::env::var("PORPOISE_BENCH_LAG_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    // The writers share the rate: one connection's COPY takes longer than 10 ms here.
    let writers: usize = std::env::var("PORPOISE_BENCH_WRITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4);
    let txn_rows: usize = std::env::var("PORPOISE_BENCH_TXN_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(1000);
    let catch_up = std::env::var("PORPOISE_BENCH_CATCH_UP").map_or(true, |v| v != "0");
    let missed = if catch_up {
        tokio::time::MissedTickBehavior::Burst
    } else {
        tokio::time::MissedTickBehavior::Delay
    };
    let lines: Arc<Vec<Vec<u8>>> = Arc::new(
        csv.split_inclusive(|b| *b == b'\n')
            .map(<[u8]>::to_vec)
            .collect(),
    );
    let cpu_before = (node_cpu(&master), node_cpu(&slave));
    let start = Instant::now();
    let mut handles = Vec::new();
    for w in 0..writers {
        let client = connect(master.ports[w % master.ports.len()]).await;
        let lines = lines.clone();
        handles.push(tokio::spawn(async move {
            let mut sent = 0usize;
            let mut behind = 0u32;
            let period = Duration::from_secs_f64((writers * txn_rows) as f64 / 100_000.0);
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(missed);
            while start.elapsed() < Duration::from_secs(secs) {
                tick.tick().await;
                let first = ((sent * writers + w) * txn_rows) % lines.len();
                let batch: Vec<u8> = lines[first..]
                    .iter()
                    .chain(lines.iter())
                    .take(txn_rows)
                    .flatten()
                    .copied()
                    .collect();
                let t = Instant::now();
                copy_csv(&client, "steady", &batch).await;
                if t.elapsed() > period {
                    behind += 1;
                }
                sent += 1;
            }
            (sent, behind)
        }));
    }
    let mut sent = 0usize;
    let mut behind = 0u32;
    for h in handles {
        let (s, b) = h.await.expect("writer");
        sent += s;
        behind += b;
    }
    let written = start.elapsed();
    let txns = sent as i64;
    wait_for(
        &s,
        "select count(*) from getSlaveReplicationStatus() where tableName = 'steady' and operationType = 'APPEND' and state = 'FINISHED'",
        txns,
        Duration::from_secs(300),
    )
    .await;
    let cpu_after = (node_cpu(&master), node_cpu(&slave));
    let mut lag = lags(&s, "steady").await;
    lag.sort_by(f64::total_cmp);
    println!(
        "steady writer: {writers} connections{}, {txns} transactions of {txn_rows} rows in {:.1} s ({:.0} rows/s reached; {behind} COPYs took longer than their slot); lag commit -> visible on the slave: p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms over {} tasks",
        if catch_up { " catching up" } else { "" },
        written.as_secs_f64(),
        (txns as usize * txn_rows) as f64 / written.as_secs_f64(),
        percentile(&lag, 0.5),
        percentile(&lag, 0.99),
        lag.last().copied().unwrap_or(f64::NAN),
        lag.len()
    );
    print_cpu_per_txn(
        &[
            ("master", &cpu_before.0, &cpu_after.0),
            ("slave", &cpu_before.1, &cpu_after.1),
        ],
        txns as u32,
    );
    drop(slave);
    drop(master);
}

/// CPU time used by each node process of a cluster, by alias.
type NodeCpu = BTreeMap<String, Duration>;

/// CPU time each node process used from the steady writer's start until the slave finished
/// its last task, per transaction.
fn print_cpu_per_txn(clusters: &[(&str, &NodeCpu, &NodeCpu)], txns: u32) {
    let mut total = Duration::ZERO;
    let mut parts = Vec::new();
    for (cluster, before, after) in clusters {
        for (alias, used) in after.iter() {
            let used = used.saturating_sub(before.get(alias).copied().unwrap_or_default());
            total += used;
            parts.push(format!(
                "{cluster} {alias} {:.2}",
                used.as_secs_f64() * 1000.0 / f64::from(txns.max(1))
            ));
        }
    }
    println!(
        "CPU per transaction (ms): {}; all nodes {:.2}",
        parts.join(", "),
        total.as_secs_f64() * 1000.0 / f64::from(txns.max(1))
    );
}
