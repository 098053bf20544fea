//! Seeding: a slave that lacks a database's history gets every partition's files as of a
//! cut of the master, then the tasks after it, while the master goes on writing.

use std::time::{Duration, Instant};

use super::common::cluster::TestCluster;
use super::files::copy_days;
use super::{content, master, slave_of, wait_for_content, wait_for_role, TESTDB};

/// `sql` without its `setDatabaseForClusterReplication` calls.
fn not_replicated(sql: &str) -> String {
    sql.lines()
        .filter(|l| !l.contains("setDatabaseForClusterReplication"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// One row of `getClusterReplicationSeedStatus()`.
#[derive(Clone, Debug)]
struct Seed {
    db: String,
    cut_task: i64,
    state: String,
    tables: (Option<i64>, i64),
    partitions: (Option<i64>, Option<i64>),
    bytes: (Option<i64>, Option<i64>),
    rows: Option<i64>,
}

async fn seeds(c: &tokio_postgres::Client) -> Vec<Seed> {
    try_seeds(c).await.expect("getClusterReplicationSeedStatus")
}

async fn try_seeds(c: &tokio_postgres::Client) -> Result<Vec<Seed>, tokio_postgres::Error> {
    Ok(
        c.query("select * from getClusterReplicationSeedStatus()", &[])
            .await?
            .iter()
            .map(|r| Seed {
                db: r.get("dbName"),
                cut_task: r.get("cutTaskId"),
                state: r.get("state"),
                tables: (r.get("tablesDone"), r.get("tablesTotal")),
                partitions: (r.get("partitionsDone"), r.get("partitionsTotal")),
                bytes: (r.get("bytesDone"), r.get("bytesTotal")),
                rows: r.get("rowsDone"),
            })
            .collect(),
    )
}

/// Polls until the slave shows the seed of `db` DONE.
async fn wait_for_seed(s: &tokio_postgres::Client, db: &str) -> Seed {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let all = seeds(s).await;
        if let Some(seed) = all.iter().find(|x| x.db == db && x.state == "DONE") {
            return seed.clone();
        }
        assert!(
            Instant::now() < deadline,
            "the seed of {db} never finished: {all:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls until the master holds no cut for any slave (each installed its seeds).
async fn wait_for_no_pending_cut(m: &tokio_postgres::Client) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let pending = seeds(m).await;
        if pending.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the master still holds cuts: {pending:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Inserts one row a statement into testTB from `first_id` on, until told to stop; returns
/// how many it inserted.
fn writer(
    master: &TestCluster,
    first_id: i64,
) -> (
    tokio::sync::watch::Sender<bool>,
    tokio::task::JoinHandle<i64>,
) {
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let url = master.url(0);
    let handle = tokio::spawn(async move {
        let c = super::common::connect(&url).await.unwrap();
        let mut id = first_id;
        while !*stopped.borrow_and_update() {
            c.batch_execute(&format!(
                r#"insert into "dfs://testDB"."testTB" values (date '2023-02-0{}', {id}, {id}.5)"#,
                1 + id % 5
            ))
            .await
            .expect("a write on the master during the seed");
            id += 1;
        }
        id - first_id
    });
    (stop, handle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slave_attaching_to_a_master_with_rows_is_seeded_while_the_master_writes() {
    let master = master(true);
    let m = master.client(0).await;
    wait_for_role(&m).await;
    m.batch_execute(&not_replicated(TESTDB)).await.unwrap();
    let days = [
        "2023-01-01",
        "2023-01-02",
        "2023-01-03",
        "2023-01-04",
        "2023-01-05",
        "2023-01-06",
    ];
    copy_days(&m, &days, 20_000, 1).await;
    // An update before the slave exists: only the cut can bring it.
    m.batch_execute(r#"update "dfs://testDB"."testTB" set v = -1 where id <= 10"#)
        .await
        .unwrap();
    // Switched on with rows: no task holds them, so a slave attaching now is seeded.
    m.batch_execute("select setDatabaseForClusterReplication('dfs://testDB', true)")
        .await
        .unwrap();

    let (stop, written) = writer(&master, 1_000_000);
    let slave = slave_of(&master);
    let s = slave.client(0).await;
    let seed = wait_for_seed(&s, "dfs://testDB").await;
    assert_eq!(seed.tables, (Some(1), 1), "{seed:?}");
    assert_eq!(seed.partitions.0, seed.partitions.1, "{seed:?}");
    assert!(seed.partitions.0 >= Some(6), "{seed:?}");
    assert_eq!(seed.bytes.0, seed.bytes.1, "{seed:?}");
    assert!(seed.bytes.0 > Some(0), "{seed:?}");
    assert!(seed.rows >= Some(120_000), "{seed:?}");
    assert!(seed.cut_task > 0, "{seed:?}");
    let _ = stop.send(true);
    let written = written.await.unwrap();
    assert!(written > 0, "the master went on writing");

    // Everything: the seed's rows and the writes after the cut.
    let want = content(&m).await.unwrap();
    assert_eq!(want.len() as i64, 120_000 + written);
    assert!(want.iter().take(10).all(|(_, _, v)| *v == -1.0));
    wait_for_content(&s, &want).await;
    wait_for_no_pending_cut(&m).await;

    // The seeded database is the master's: clients of the slave may not write it.
    let refused = s
        .batch_execute(r#"insert into "dfs://testDB"."testTB" values (date '2023-01-01', 0, 0)"#)
        .await
        .unwrap_err();
    let refused = refused.as_db_error().expect("a server error");
    assert_eq!(refused.code().code(), "25006", "{refused:?}");
    assert!(refused.message().contains("S01023"), "{refused:?}");

    // Tasks after the cut go on arriving.
    m.batch_execute(r#"delete from "dfs://testDB"."testTB" where id <= 100"#)
        .await
        .unwrap();
    let want = content(&m).await.unwrap();
    wait_for_content(&s, &want).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switching_replication_on_for_a_database_with_rows_seeds_the_slave_again_and_again() {
    let master = master(true);
    let slave = slave_of(&master);
    let m = master.client(0).await;
    let s = slave.client(1).await;
    wait_for_role(&m).await;
    // The slave attaches first: a new, empty database's history is its tasks.
    m.batch_execute(
        r#"create database "dfs://warm" partitioned by VALUE(1..4);
           select setDatabaseForClusterReplication('dfs://warm', true);"#,
    )
    .await
    .unwrap();
    super::common::wait_for("the slave to create dfs://warm", || async {
        super::slave_task_states(&s)
            .await
            .iter()
            .any(|(op, state, _)| op == "CREATE_DOMAIN" && state == "FINISHED")
    })
    .await;
    assert!(seeds(&s).await.is_empty());

    // A database with rows, switched on only now.
    m.batch_execute(&not_replicated(TESTDB)).await.unwrap();
    copy_days(&m, &["2023-03-01", "2023-03-02"], 5_000, 1).await;
    m.batch_execute("select setDatabaseForClusterReplication('dfs://testDB', true)")
        .await
        .unwrap();
    let first = wait_for_seed(&s, "dfs://testDB").await;
    let want = content(&m).await.unwrap();
    assert_eq!(want.len(), 10_000);
    wait_for_content(&s, &want).await;

    // Off, writes the slave never sees, and on again: seeded afresh, not re-created.
    m.batch_execute("select setDatabaseForClusterReplication('dfs://testDB', false)")
        .await
        .unwrap();
    m.batch_execute(r#"update "dfs://testDB"."testTB" set v = 7 where id > 9000"#)
        .await
        .unwrap();
    copy_days(&m, &["2023-03-03"], 1_000, 20_000).await;
    m.batch_execute("select setDatabaseForClusterReplication('dfs://testDB', true)")
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let again = seeds(&s).await;
        let done = again
            .iter()
            .any(|x| x.db == "dfs://testDB" && x.state == "DONE" && x.cut_task > first.cut_task);
        if done {
            break;
        }
        assert!(Instant::now() < deadline, "never seeded again: {again:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let want = content(&m).await.unwrap();
    assert_eq!(want.len(), 11_000);
    wait_for_content(&s, &want).await;
    assert_ne!(super::slave_status(&s).await, "STOPPED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_slave_attaching_after_truncation_is_seeded() {
    let master = TestCluster::builder()
        .prefix("m")
        .controllers(1)
        .datanodes(2)
        .controller_cfg("clusterReplicationSlaveNum", "2")
        .cluster_cfg("clusterReplicationMode", "master")
        .cluster_cfg("clusterReplicationSyncPersistence", "true")
        .build();
    let a = super::slave_named(&master, "sa");
    let m = master.client(0).await;
    let sa = a.client(0).await;
    wait_for_role(&m).await;
    m.batch_execute(TESTDB).await.unwrap();
    copy_days(&m, &["2023-04-01", "2023-04-02", "2023-04-03"], 10_000, 1).await;
    let want = content(&m).await.unwrap();
    wait_for_content(&sa, &want).await;
    super::common::wait_for(
        "the master to truncate what the first slave finished",
        || async { super::master_tasks(&m).await.iter().all(|t| t.truncated) },
    )
    .await;

    // The second slave never saw those tasks: it is seeded, and both go on together.
    let b = super::slave_named(&master, "sb");
    let sb = b.client(0).await;
    let seed = wait_for_seed(&sb, "dfs://testDB").await;
    assert_eq!(seed.rows, Some(30_000), "{seed:?}");
    wait_for_content(&sb, &want).await;
    m.batch_execute(r#"update "dfs://testDB"."testTB" set v = 0 where id % 2 = 0"#)
        .await
        .unwrap();
    let want = content(&m).await.unwrap();
    wait_for_content(&sa, &want).await;
    wait_for_content(&sb, &want).await;
    wait_for_no_pending_cut(&m).await;
    // The first slave replayed tasks and was never seeded.
    assert!(seeds(&sa).await.is_empty());
}

/// `"dfs://testDB"` with three tables of testTB's shape (`testTB`, `t2`, `t3`), each holding
/// `per_table` rows over three days; replication is switched on afterwards.
async fn three_tables(m: &tokio_postgres::Client, per_table: i64) {
    m.batch_execute(&not_replicated(TESTDB)).await.unwrap();
    for t in ["t2", "t3"] {
        m.batch_execute(&format!(
            r#"create table "dfs://testDB"."{t}"(day DATE, id LONG, v DOUBLE) partitioned by day"#
        ))
        .await
        .unwrap();
    }
    let days = ["2023-05-01", "2023-05-02", "2023-05-03"];
    copy_days(m, &days, per_table / 3, 1).await;
    for t in ["t2", "t3"] {
        m.batch_execute(&format!(
            r#"insert into "dfs://testDB"."{t}" select * from "dfs://testDB"."testTB""#
        ))
        .await
        .unwrap();
    }
    m.batch_execute("select setDatabaseForClusterReplication('dfs://testDB', true)")
        .await
        .unwrap();
}

/// Every row of table `t` of testDB, sorted.
async fn rows_of(c: &tokio_postgres::Client, t: &str) -> Vec<(i64, String, f64)> {
    c.query(
        &format!(r#"select id, cast(day as varchar), v from "dfs://testDB"."{t}" order by id, v"#),
        &[],
    )
    .await
    .map(|rows| {
        rows.iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect()
    })
    .unwrap_or_default()
}

/// Polls until the slave's seed of testDB has installed more than `tables` tables, or is done.
async fn wait_for_progress(s: &TestCluster, tables: i64) -> Seed {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let now = match super::common::connect(&s.url(0)).await {
            Ok(c) => try_seeds(&c).await.unwrap_or_default(),
            Err(_) => Vec::new(),
        };
        if let Some(seed) = now
            .iter()
            .find(|x| x.db == "dfs://testDB" && (x.tables.0 > Some(tables) || x.state == "DONE"))
        {
            return seed.clone();
        }
        assert!(
            Instant::now() < deadline,
            "the seed made no progress past {tables} tables: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seed_survives_kill_9_of_every_process_and_sends_no_file_twice() {
    // Throttled to 1 MB/s, the seed takes seconds: long enough to kill processes under it.
    let mut master = super::master_builder(true)
        .cluster_cfg("clusterReplicationSeedRateMB", "1")
        .build();
    let m = master.client(0).await;
    wait_for_role(&m).await;
    three_tables(&m, 150_000).await;

    let mut slave = slave_of(&master);
    let first = wait_for_progress(&slave, 0).await;
    assert_ne!(first.state, "DONE", "the seed was not throttled: {first:?}");
    // The slave's data nodes (one of them runs the seed, both fetch files) and its controller.
    for dn in slave.datanodes() {
        slave.kill9(&dn);
        slave.start(&dn);
    }
    let ctl = slave.controllers()[0].clone();
    slave.kill9(&ctl);
    slave.start(&ctl);
    let second = wait_for_progress(&slave, first.tables.0.unwrap_or(0)).await;
    // The master's controller.
    let mctl = master.controllers()[0].clone();
    master.kill9(&mctl);
    master.start(&mctl);
    let s = slave.client(0).await;
    let done = wait_for_seed(&s, "dfs://testDB").await;
    assert!(done.tables.0 >= second.tables.0, "{done:?}");
    assert_eq!(done.tables, (Some(3), 3), "{done:?}");
    assert_eq!(done.bytes.0, done.bytes.1, "{done:?}");
    // Every file was sent whole once, but for those cut off by a kill (at most one per
    // fetching slave data node, each smaller than the whole table).
    let sent = super::files::received(&master, "porpoise_replication_seed_bytes_sent_total");
    let total = done.bytes.1.unwrap() as u64;
    eprintln!("seed progress at the kills: {first:?}, {second:?}; sent {sent} bytes of {total}");
    assert!(sent >= total, "sent {sent} of {total}");
    assert!(
        sent < total + total / 3 * 2,
        "sent {sent} bytes for a seed of {total}: installed tables were sent again"
    );
    let m = master.client(0).await;
    for t in ["testTB", "t2", "t3"] {
        let want = rows_of(&m, t).await;
        assert_eq!(want.len(), 150_000);
        super::common::wait_for("the slave to hold the table", || async {
            rows_of(&s, t).await == want
        })
        .await;
    }

    // Seeded again (replication switched off and on), with a master data node killed under it.
    m.batch_execute(
        r#"select setDatabaseForClusterReplication('dfs://testDB', false);
           delete from "dfs://testDB"."t2" where id % 3 = 0;
           select setDatabaseForClusterReplication('dfs://testDB', true);"#,
    )
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while seeds(&s).await.iter().all(|x| x.cut_task == done.cut_task) {
        assert!(Instant::now() < deadline, "no second seed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mdn = master.datanodes()[1].clone();
    master.kill9(&mdn);
    master.start(&mdn);
    let again = wait_for_seed(&s, "dfs://testDB").await;
    assert!(again.cut_task > done.cut_task);
    for t in ["testTB", "t2", "t3"] {
        let want = rows_of(&m, t).await;
        super::common::wait_for("the slave to hold the table again", || async {
            rows_of(&s, t).await == want
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seed_needs_an_execution_user_that_may_write() {
    let master = master(true);
    // The slave replays as `repl`, who may create databases and tables but not write rows.
    let slave = super::slave_builder(&master)
        .datanodes(1)
        .cluster_cfg("clusterReplicationExecutionUsername", "repl")
        .cluster_cfg("clusterReplicationExecutionPassword", "repl_pw")
        .build();
    let s = slave.client(0).await;
    s.batch_execute(
        r#"create user repl with password 'repl_pw';
           grant ddl on all databases to repl;"#,
    )
    .await
    .unwrap();
    let m = master.client(0).await;
    wait_for_role(&m).await;
    m.batch_execute(&not_replicated(TESTDB)).await.unwrap();
    copy_days(&m, &["2023-06-01"], 1_000, 1).await;
    m.batch_execute("select setDatabaseForClusterReplication('dfs://testDB', true)")
        .await
        .unwrap();

    let deadline = Instant::now() + Duration::from_secs(60);
    let failed = loop {
        let error: Option<String> = s
            .query(
                "select error from getClusterReplicationSeedStatus() where state = 'FAILED'",
                &[],
            )
            .await
            .ok()
            .and_then(|r| r.first().map(|r| r.get(0)));
        if let Some(e) = error {
            break e;
        }
        assert!(Instant::now() < deadline, "the seed never failed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(failed.contains("WRITE"), "{failed}");
    assert_eq!(
        try_seeds(&s).await.unwrap()[0].tables.0,
        Some(0),
        "no table was installed"
    );

    s.batch_execute("grant write on all databases to repl")
        .await
        .unwrap();
    wait_for_seed(&s, "dfs://testDB").await;
    wait_for_content(&s, &content(&m).await.unwrap()).await;
}
