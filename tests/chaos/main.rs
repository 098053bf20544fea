//! The chaos run: a master and a slave cluster (3 controllers and 2 data nodes each, real
//! processes), writers committing INSERTs, COPYs, UPDATEs, DELETEs and DDL on two replicated
//! databases, and faults at random moments: `kill -9` and restart of any process (a
//! controller leader or follower, a data node, on either side), SIGSTOP/SIGCONT of one, and
//! network faults between the clusters from proxies in front of every master node (the
//! slave reaches the master only through them: `clusterReplicationPublicSites`).
//!
//! At the end every fault is healed, replication drains, and the run checks that every
//! acknowledged row is on the master exactly once with its last acknowledged value, that the
//! slave's databases equal the master's row for row, and that the status functions agree:
//! every task finished, none failed, nothing behind.
//!
//! `chaos_short` is CI's run (a dozen faults). The long run is by hand:
//! `PORPOISE_CHAOS_FAULTS=250 cargo test --release --test chaos -- --ignored --nocapture`.
//! `PORPOISE_CHAOS_SEED=<n>` repeats a run's fault schedule and writes; every run prints its
//! seed and schedule first.

#[path = "../common/mod.rs"]
mod common;
mod faults;
mod proxy;
mod workload;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::cluster::TestCluster;
use common::wait_for;
use faults::World;
use proxy::FaultProxy;
use workload::{History, WriterKind};

/// How long replication may take to drain once every fault is healed.
const CONVERGE_TIMEOUT: Duration = Duration::from_secs(300);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn chaos_short() {
    chaos(12).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "the long chaos run (minutes); run by hand with --ignored"]
async fn chaos_long() {
    chaos(250).await;
}

fn env_u64(key: &str) -> Option<u64> {
    std::env::var(key).ok().map(|v| {
        v.parse()
            .unwrap_or_else(|_| panic!("{key} must be a number, not {v:?}"))
    })
}

async fn chaos(default_faults: usize) {
    let seed = env_u64("PORPOISE_CHAOS_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("a clock after 1970")
            .as_nanos() as u64
    });
    let n_faults = env_u64("PORPOISE_CHAOS_FAULTS").map_or(default_faults, |n| n as usize);
    let mut steps = faults::schedule(seed, n_faults, 5, 5);
    // Every run rebuilds the slave once, halfway: it is seeded while the master writes and
    // the other faults go on.
    if let Some(step) = steps.get_mut(n_faults / 2) {
        step.fault = faults::Fault::RebuildSlave {
            down: std::time::Duration::from_secs(1),
        };
    }
    eprintln!("chaos: seed {seed} (PORPOISE_CHAOS_SEED={seed} repeats it), {n_faults} faults:");
    for (i, s) in steps.iter().enumerate() {
        eprintln!("chaos:   {i}: after {:?}: {}", s.gap, s.fault);
    }

    // The proxies in front of the master's controllers and data nodes, in node order.
    let mut proxies = Vec::new();
    for _ in 0..5 {
        proxies.push(FaultProxy::bind().await);
    }
    let aliases = ["m_ctl1", "m_ctl2", "m_ctl3", "m_dn1", "m_dn2"];
    let sites: Vec<String> = aliases
        .iter()
        .zip(&proxies)
        .map(|(a, p)| format!("127.0.0.1:{}:{a}", p.port))
        .collect();
    let master = tokio::task::block_in_place(|| {
        TestCluster::builder()
            .prefix("m")
            .controllers(3)
            .datanodes(2)
            .cluster_cfg("clusterReplicationMode", "master")
            .cluster_cfg("clusterReplicationSyncPersistence", "true")
            .controller_cfg("clusterReplicationPublicSites", &sites.join(","))
            .build()
    });
    for ((node, p), alias) in master.nodes.iter().zip(&proxies).zip(aliases) {
        assert_eq!(node.alias, alias);
        p.set_target(node.port);
    }
    let slave = tokio::task::block_in_place(|| {
        TestCluster::builder()
            .prefix("s")
            .controllers(3)
            .datanodes(2)
            .cluster_cfg("clusterReplicationMode", "slave")
            .controller_cfg(
                "clusterReplicationMasterCtl",
                &format!("127.0.0.1:{}", proxies[0].port),
            )
            .replicates_from(&master)
            .build()
    });
    let m = master.client(0).await;
    wait_for("the master's replication role", || async {
        m.query("select * from getDatabaseClusterReplicationStatus()", &[])
            .await
            .is_ok()
    })
    .await;
    m.batch_execute(workload::SETUP).await.expect("set up");
    drop(m);

    // Writers on the master's data nodes, and the faults.
    let urls: Vec<String> = (0..2).map(|i| master.url(i)).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let history: History = Arc::new(Mutex::new(Vec::new()));
    let kinds = [
        WriterKind::Insert,
        WriterKind::Insert,
        WriterKind::Copy,
        WriterKind::Mutate,
        WriterKind::Ddl,
    ];
    let writers: Vec<_> = kinds
        .iter()
        .enumerate()
        .map(|(w, kind)| {
            tokio::spawn(workload::writer(
                w,
                *kind,
                urls.clone(),
                seed,
                stop.clone(),
                history.clone(),
            ))
        })
        .collect();
    let mut world = World {
        master,
        slave,
        proxies,
    };
    let started = Instant::now();
    let (mut world, by_kind) = tokio::task::spawn_blocking(move || {
        let by_kind = faults::run(&mut world, &steps);
        (world, by_kind)
    })
    .await
    .expect("the fault injector");
    let chaos_time = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.expect("a writer");
    }
    for cluster in [&mut world.master, &mut world.slave] {
        for alias in cluster.controllers().into_iter().chain(cluster.datanodes()) {
            assert!(cluster.is_running(&alias), "{alias} is down after healing");
        }
    }
    let history = std::mem::take(&mut *history.lock().unwrap());
    let acked = history.iter().filter(|t| t.acked).count();

    // Replication drains: the slave holds what the master holds, and every status says so.
    let healed = Instant::now();
    let names = workload::table_names(&history);
    let (m, s) = (world.master.client(0).await, world.slave.client(1).await);
    let mut last: String;
    let (events, tables) = loop {
        match converged(&m, &s, &names).await {
            Ok(Ok(found)) => break found,
            Ok(Err(why)) | Err(why) => last = why,
        }
        assert!(
            healed.elapsed() < CONVERGE_TIMEOUT,
            "seed {seed}: replication did not drain in {CONVERGE_TIMEOUT:?}: {last}\n{}\n{}",
            world.master.logs(),
            world.slave.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let converge = healed.elapsed();

    let verdict = workload::check(&history, &events, &tables);
    assert!(
        verdict.is_clean(),
        "seed {seed}: the master's data does not match the acknowledged history: {verdict:?}"
    );
    let statuses = status_check(&m, &s).await;
    assert!(statuses.is_empty(), "seed {seed}: {statuses}");

    // What the rebuilt slave was seeded with (nothing if the master still held every task
    // then: it replayed them instead).
    let seeded = s
        .query(
            "select dbName, state, cutTaskId from getClusterReplicationSeedStatus() order by 1",
            &[],
        )
        .await
        .expect("getClusterReplicationSeedStatus");
    let seeded: Vec<String> = seeded
        .iter()
        .map(|r| {
            let (db, state, cut): (String, String, i64) = (r.get(0), r.get(1), r.get(2));
            assert_eq!(state, "DONE", "seed {seed}: the seed of {db} is {state}");
            format!("{db} at task {cut}")
        })
        .collect();

    let faults: usize = by_kind.values().sum();
    let mut summary = format!(
        "chaos summary (seed {seed}): {faults} faults in {:.0?}",
        chaos_time
    );
    for (kind, n) in &by_kind {
        summary.push_str(&format!("\n  {kind}: {n}"));
    }
    summary.push_str(&format!(
        "\n  transactions: {} sent, {acked} acknowledged, {} not (outcome unknown)\
         \n  rows compared: {} on the master and the slave each ({} acknowledged inserts), \
         {} tables of dfs://chaos2\
         \n  lost {}, duplicated {}, wrong {}\
         \n  converged {:.1?} after healing\
         \n  seeded: {}",
        history.len(),
        history.len() - acked,
        events.len(),
        verdict.acked_rows,
        tables.len(),
        verdict.lost.len(),
        verdict.duplicated.len(),
        verdict.wrong_value.len() + verdict.resurrected.len() + verdict.phantom.len(),
        converge,
        if seeded.is_empty() {
            "nothing (the rebuilt slave replayed the queue)".to_string()
        } else {
            seeded.join(", ")
        },
    ));
    eprintln!("{summary}");
    assert!(
        acked > n_faults,
        "seed {seed}: the writers got almost nothing through ({acked} acknowledged)"
    );
}

/// The master's and the slave's content once they are equal and the slave finished every
/// task the master has; otherwise why not yet. An `Err` is a query that failed (a node
/// still recovering).
async fn converged(
    m: &tokio_postgres::Client,
    s: &tokio_postgres::Client,
    names: &std::collections::BTreeSet<u32>,
) -> Result<Result<(Vec<workload::Row>, BTreeMap<u32, Vec<i64>>), String>, String> {
    let e = |e: tokio_postgres::Error| e.to_string();
    let last_task: i64 = m
        .query_one("select max(taskId) from getMasterReplicationStatus()", &[])
        .await
        .map_err(e)?
        .get(0);
    let slave_done: Option<i64> = s
        .query_one(
            "select max(taskId) from getSlaveReplicationStatus() where state = 'FINISHED'",
            &[],
        )
        .await
        .map_err(e)?
        .get(0);
    if slave_done != Some(last_task) {
        return Ok(Err(format!(
            "the slave finished up to task {slave_done:?} of {last_task}"
        )));
    }
    let master = (
        workload::read_events(m).await.map_err(e)?,
        workload::read_tables(m, names).await.map_err(e)?,
    );
    let slave = (
        workload::read_events(s).await.map_err(e)?,
        workload::read_tables(s, names).await.map_err(e)?,
    );
    if master != slave {
        return Ok(Err(format!(
            "the slave has {} rows and {} tables, the master {} and {}",
            slave.0.len(),
            slave.1.len(),
            master.0.len(),
            master.1.len()
        )));
    }
    Ok(Ok(master))
}

/// What the status functions say that disagrees with a drained replication (empty: nothing).
async fn status_check(m: &tokio_postgres::Client, s: &tokio_postgres::Client) -> String {
    let mut wrong = Vec::new();
    let not_finished = s
        .query(
            "select taskId, state, details from getSlaveReplicationStatus() where state <> 'FINISHED'",
            &[],
        )
        .await
        .expect("getSlaveReplicationStatus");
    for r in &not_finished {
        wrong.push(format!(
            "slave task {} is {}: {}",
            r.get::<_, i64>(0),
            r.get::<_, String>(1),
            r.get::<_, String>(2)
        ));
    }
    let skipped = one_number(
        s,
        "select count(*) from getSlaveReplicationStatus() where details like '%skip%'",
    )
    .await;
    if skipped > 0 {
        wrong.push(format!("{skipped} tasks were skipped"));
    }
    let last_task = one_number(m, "select max(taskId) from getMasterReplicationStatus()").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    // The master hears of the slave's progress on its next pull.
    loop {
        let info = m
            .query(
                "select lastFinishedTaskId, tasksBehind from getRecentSlaveReplicationInfo()",
                &[],
            )
            .await
            .expect("getRecentSlaveReplicationInfo");
        let seen: Vec<(i64, i64)> = info.iter().map(|r| (r.get(0), r.get(1))).collect();
        if seen == [(last_task, 0)] {
            break;
        }
        if Instant::now() > deadline {
            wrong.push(format!(
                "getRecentSlaveReplicationInfo says {seen:?}, the last task is {last_task}"
            ));
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let behind = one_number(
        m,
        "select coalesce(sum(tasksBehind), 0) from getClusterReplicationLag()",
    )
    .await;
    if behind != 0 {
        wrong.push(format!(
            "getClusterReplicationLag says {behind} tasks behind"
        ));
    }
    let unfinished = one_number(
        s,
        "select coalesce(sum(unfinishedTasks), 0) from getSlaveReplicationQueueStatus()",
    )
    .await;
    if unfinished != 0 {
        wrong.push(format!(
            "getSlaveReplicationQueueStatus says {unfinished} unfinished"
        ));
    }
    wrong.join("\n")
}

/// The one bigint `sql` returns.
async fn one_number(client: &tokio_postgres::Client, sql: &str) -> i64 {
    client
        .query_one(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .get(0)
}
