//! Cross-cluster replication through real processes: master and slave clusters from
//! [`TestCluster`], driven with the SQL functions a DolphinDB user knows.

mod batch;
mod check;
#[path = "../common/mod.rs"]
mod common;
mod faults;
mod files;
mod functions;
mod ops;
mod reads;
mod seed;
mod slaves;
mod tls;

use std::time::{Duration, Instant};

use common::cluster::TestCluster;
use common::wait_for;

/// `"dfs://testDB"`, replicated, with `testTB(day, id, v)` partitioned by day.
const TESTDB: &str = r#"create database "dfs://testDB" partitioned by VALUE(2023.01.01..2023.12.31);
    select setDatabaseForClusterReplication('dfs://testDB', true);
    create table "dfs://testDB"."testTB"(day DATE, id LONG, v DOUBLE) partitioned by day;"#;

/// Two rows for testTB, in two partitions.
const TWO_ROWS: &str = r#"insert into "dfs://testDB"."testTB" values (date '2023-01-01', 1, 1.5), (date '2023-01-02', 2, 2.5);"#;

/// A slave of `master`, once TESTDB and TWO_ROWS were committed on the master: the slave and
/// clients of the master and the slave (their first data nodes).
async fn slave_with_two_rows(
    master: &TestCluster,
) -> (TestCluster, tokio_postgres::Client, tokio_postgres::Client) {
    let slave = slave_of(master);
    let m = master.client(0).await;
    let s = slave.client(0).await;
    wait_for_role(&m).await;
    m.batch_execute(&[TESTDB, TWO_ROWS].concat()).await.unwrap();
    (slave, m, s)
}

/// A master cluster (1 controller, 2 data nodes).
fn master(sync_persistence: bool) -> TestCluster {
    master_builder(sync_persistence).build()
}

/// A master cluster's builder, for tests that configure more.
fn master_builder(sync_persistence: bool) -> common::cluster::TestClusterBuilder {
    TestCluster::builder()
        .prefix("m")
        .controllers(1)
        .datanodes(2)
        .cluster_cfg("clusterReplicationMode", "master")
        .cluster_cfg(
            "clusterReplicationSyncPersistence",
            if sync_persistence { "true" } else { "false" },
        )
}

/// One row of `getMasterReplicationStatus()`.
#[derive(Debug, Clone, PartialEq)]
struct Task {
    task_id: i64,
    tid: i64,
    group_id: i64,
    op: String,
    db: String,
    table: String,
    src: String,
    truncated: bool,
}

async fn master_tasks(client: &tokio_postgres::Client) -> Vec<Task> {
    client
        .query("select * from getMasterReplicationStatus()", &[])
        .await
        .expect("getMasterReplicationStatus")
        .iter()
        .map(|r| Task {
            task_id: r.get("taskId"),
            tid: r.get("tid"),
            group_id: r.get("groupId"),
            op: r.get("operationType"),
            db: r.get("dbName"),
            table: r.get("tableName"),
            src: format!(
                "{}:{}",
                r.get::<_, String>("srcIP"),
                r.get::<_, i32>("srcPort")
            ),
            truncated: r.get("isTruncated"),
        })
        .collect()
}

/// Waits until the controller leader has recorded the cluster's replication role.
async fn wait_for_role(client: &tokio_postgres::Client) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match client
            .query("select * from getDatabaseClusterReplicationStatus()", &[])
            .await
        {
            Ok(_) => return,
            Err(e) => assert!(
                Instant::now() < deadline,
                "the replication role was never recorded: {e}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn ops(tasks: &[Task]) -> Vec<&str> {
    tasks.iter().map(|t| t.op.as_str()).collect()
}

/// Rows of the Arrow IPC stream in a task data file.
fn rows_in_task_file(path: &std::path::Path) -> usize {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    arrow::ipc::reader::StreamReader::try_new(file, None)
        .expect("an Arrow IPC stream")
        .map(|b| b.expect("a batch").num_rows())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_queues_one_task_per_committed_transaction() {
    let cluster = master(true);
    let dn1 = cluster.datanodes()[0].clone();
    let client = cluster.client(0).await;
    wait_for_role(&client).await;

    client
        .batch_execute(
            r#"create database "dfs://testDB" partitioned by VALUE(2023.01.01..2023.12.31)"#,
        )
        .await
        .unwrap();
    // Not replicated yet: nothing is queued.
    assert!(master_tasks(&client).await.is_empty());
    client
        .batch_execute("select setDatabaseForClusterReplication('dfs://testDB', true)")
        .await
        .unwrap();
    client
        .batch_execute(
            r#"create table "dfs://testDB"."testTB"(day DATE, id LONG, v DOUBLE) partitioned by day"#,
        )
        .await
        .unwrap();
    let values: Vec<String> = (0..1000)
        .map(|i| format!("(date '2023-01-{:02}', {i}, {i}.5)", i % 20 + 1))
        .collect();
    client
        .batch_execute(&format!(
            r#"insert into "dfs://testDB"."testTB" values {}"#,
            values.join(",")
        ))
        .await
        .unwrap();

    let tasks = master_tasks(&client).await;
    assert_eq!(
        ops(&tasks),
        ["CREATE_DOMAIN", "CREATE_PARTITIONED_TABLE", "APPEND"]
    );
    assert_eq!(
        tasks
            .iter()
            .map(|t| (t.task_id, t.group_id))
            .collect::<Vec<_>>(),
        [(1, 1), (2, 2), (3, 3)]
    );
    assert!(tasks.iter().all(|t| t.db == "dfs://testDB" && !t.truncated));
    assert_eq!(tasks[0].table, "");
    assert_eq!(tasks[2].table, "testTB");
    // The APPEND's data is on the data node that ran it, durable (sync persistence).
    assert_eq!(tasks[2].src, format!("127.0.0.1:{}", cluster.port(&dn1)));
    let task_file = cluster
        .home()
        .join(&dn1)
        .join("clusterReplication")
        .join(format!("{}.task", tasks[2].tid));
    assert_eq!(rows_in_task_file(&task_file), 1000);

    let status = client
        .query("select * from getdatabaseclusterreplicationstatus()", &[])
        .await
        .unwrap();
    assert_eq!(status.len(), 1);
    assert_eq!(status[0].get::<_, String>("dbName"), "dfs://testDB");
    assert!(status[0].get::<_, bool>("enabled"));
    assert_eq!(status[0].get::<_, i32>("executionSet"), 0);

    // Appends to other partitions join the newest group (the first APPEND's); an UPDATE may
    // touch any partition, so it starts a new one, and so does the DELETE after it.
    client
        .batch_execute(
            r#"insert into "dfs://testDB"."testTB" values (date '2023-03-01', 5000, 1.0);
               insert into "dfs://testDB"."testTB" values (date '2023-03-02', 5001, 1.0);
               update "dfs://testDB"."testTB" set v = v + 1 where id < 10;
               delete from "dfs://testDB"."testTB" where id = 5000;"#,
        )
        .await
        .unwrap();
    let tasks = master_tasks(&client).await;
    assert_eq!(
        ops(&tasks[3..]),
        ["APPEND", "APPEND", "SQL_UPDATE", "SQL_DELETE"]
    );
    let groups: Vec<i64> = tasks[3..].iter().map(|t| t.group_id).collect();
    assert_eq!(groups, [3, 3, 4, 5]);
    // Task ids follow commit order; transaction ids are the master's.
    assert!(tasks.windows(2).all(|w| w[0].task_id + 1 == w[1].task_id));
    assert!(tasks.windows(2).all(|w| w[0].tid < w[1].tid));

    // Stopped (DISABLED): what commits meanwhile is never queued.
    client
        .batch_execute(
            r#"select stopClusterReplication();
               insert into "dfs://testDB"."testTB" values (date '2023-04-01', 6000, 1.0);
               select startClusterReplication();
               insert into "dfs://testDB"."testTB" values (date '2023-04-02', 6001, 1.0);"#,
        )
        .await
        .unwrap();
    let tasks = master_tasks(&client).await;
    assert_eq!(tasks.len(), 8, "{tasks:?}");
    // Replication switched off for the database: one task tells the slaves (so they let
    // clients write it again), and nothing more is queued.
    client
        .batch_execute(
            r#"select setDatabaseForClusterReplication('dfs://testDB', false);
               insert into "dfs://testDB"."testTB" values (date '2023-04-03', 6002, 1.0);
               alter table "dfs://testDB"."testTB" add column w INT;"#,
        )
        .await
        .unwrap();
    let tasks = master_tasks(&client).await;
    assert_eq!(tasks.len(), 9, "{tasks:?}");
    assert_eq!(tasks[8].op, "DISABLE_REPLICATION");
    // Every transaction of the database is there on the master itself.
    let n: i64 = client
        .query_one(r#"select count(*) from "dfs://testDB"."testTB""#, &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1004);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replication_functions_check_the_caller_and_the_cluster() {
    let cluster = master(false);
    let client = cluster.client(0).await;
    wait_for_role(&client).await;
    client
        .batch_execute(
            r#"create database "dfs://d" partitioned by VALUE(1..3);
               create user alice with password 'alice_pw';"#,
        )
        .await
        .unwrap();
    let err = |r: Result<Vec<tokio_postgres::Row>, tokio_postgres::Error>| {
        let e = r.expect_err("refused");
        let db = e.as_db_error().expect("a server error").clone();
        (db.code().code().to_string(), db.message().to_string())
    };
    let (code, message) = err(client
        .query(
            "select setDatabaseClusterReplicationExecutionSet('dfs://d', 1)",
            &[],
        )
        .await);
    assert_eq!(code, "55000");
    assert!(message.contains("not enabled on database"), "{message}");
    let (code, _) = err(client
        .query(
            "select setDatabaseClusterReplicationExecutionSet('dfs://d', 2)",
            &[],
        )
        .await);
    assert_eq!(code, "22023");
    let (code, _) = err(client
        .query(
            "select setDatabaseForClusterReplication('dfs://nope', true)",
            &[],
        )
        .await);
    assert_eq!(code, "3F000");
    let (code, _) = err(client
        .query("select setDatabaseForClusterReplication('dfs://d')", &[])
        .await);
    assert_eq!(code, "22023");

    let alice = tokio_postgres::connect(
        &common::url(cluster.port(&cluster.datanodes()[0]), "alice", "alice_pw"),
        tokio_postgres::NoTls,
    )
    .await
    .map(|(c, conn)| {
        tokio::spawn(conn);
        c
    })
    .expect("alice connects");
    let (code, message) = err(alice
        .query("select * from getMasterReplicationStatus()", &[])
        .await);
    assert_eq!(code, "42501", "{message}");
    for f in [
        "getClusterReplicationSeedStatus()",
        "getClusterReplicationLag()",
        "checkClusterReplicationConsistency('dfs://d')",
        "repairClusterReplication('dfs://d')",
    ] {
        let (code, message) = err(alice.query(&format!("select * from {f}"), &[]).await);
        assert_eq!(code, "42501", "{f}: {message}");
    }
    // The check runs on a slave, with a database's name.
    let (code, message) = err(client
        .query(
            "select * from checkClusterReplicationConsistency('dfs://d')",
            &[],
        )
        .await);
    assert_eq!(code, "55000");
    assert!(message.contains("slave cluster. RefId:S01024"), "{message}");
    let (code, _) = err(client
        .query("select * from checkClusterReplicationConsistency()", &[])
        .await);
    assert_eq!(code, "22023");
    let (code, _) = err(client
        .query("select * from checkClusterReplicationConsistency(1)", &[])
        .await);
    assert_eq!(code, "22023");
    // So does a repair.
    let (code, message) = err(client
        .query("select * from repairClusterReplication('dfs://d')", &[])
        .await);
    assert_eq!(code, "55000");
    assert!(message.contains("slave cluster. RefId:S01024"), "{message}");
    for bad in [
        "repairClusterReplication()",
        "repairClusterReplication('dfs://d', 5)",
        "repairClusterReplication('dfs://d', '/p')",
        "repairClusterReplication('dfs://d', 't/')",
        "repairClusterReplication('dfs://d', 't', 'u')",
    ] {
        let (code, message) = err(client.query(&format!("select * from {bad}"), &[]).await);
        assert_eq!(code, "22023", "{bad}: {message}");
    }

    // A master calling a slave data node's function.
    let (code, message) = err(client
        .query("select * from getSlaveReplicationExecutionStatus()", &[])
        .await);
    assert_eq!(code, "55000");
    assert_eq!(
        message,
        "getSlaveReplicationExecutionStatus must be executed on the controller of the slave cluster. RefId:S01024"
    );

    // A cluster without replication configured.
    let plain = TestCluster::builder()
        .prefix("p")
        .controllers(1)
        .datanodes(1)
        .build();
    let client = plain.client(0).await;
    let (code, message) = err(client
        .query("select * from getMasterReplicationStatus()", &[])
        .await);
    assert_eq!(code, "55000");
    assert_eq!(
        message,
        "Replication is not enabled. Specify the configuration parameters first."
    );
    let (code, message) = err(client
        .query("select * from getClusterReplicationSeedStatus()", &[])
        .await);
    assert_eq!(code, "55000", "{message}");

    // A slave calling a master function.
    let slave = slave_builder(&cluster).datanodes(1).build();
    let client = slave.client(0).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let message = loop {
        let (code, message) = err(client
            .query("select * from getMasterReplicationStatus()", &[])
            .await);
        if message.contains("S01024") || Instant::now() > deadline {
            assert_eq!(code, "55000");
            break message;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        message,
        "getMasterReplicationStatus must be executed on the controller of the master cluster. RefId:S01024"
    );
    // A database the slave does not replicate cannot be compared.
    let (code, message) = err(client
        .query(
            "select * from checkClusterReplicationConsistency('dfs://d')",
            &[],
        )
        .await);
    assert_eq!(code, "55000");
    assert!(message.contains("no read point"), "{message}");
    // Nor repaired.
    let (code, message) = err(client
        .query(
            "select * from repairClusterReplication('dfs://d', 't')",
            &[],
        )
        .await);
    assert_eq!(code, "55000", "{message}");
    assert!(message.contains("dfs://d"), "{message}");
}

/// A slave cluster (1 controller, 2 data nodes) pulling from `master`'s controller.
fn slave_of(master: &TestCluster) -> TestCluster {
    slave_builder(master).build()
}

/// The builder of [`slave_of`]'s cluster, for tests that configure more.
fn slave_builder(master: &TestCluster) -> common::cluster::TestClusterBuilder {
    TestCluster::builder()
        .prefix("s")
        .controllers(1)
        .datanodes(2)
        .cluster_cfg("clusterReplicationMode", "slave")
        .controller_cfg(
            "clusterReplicationMasterCtl",
            &format!("127.0.0.1:{}", master.port(&master.controllers()[0])),
        )
        .replicates_from(master)
}

/// Every row of testTB, sorted (an order-independent comparison).
async fn content(
    client: &tokio_postgres::Client,
) -> Result<Vec<(i64, String, f64)>, tokio_postgres::Error> {
    let rows = client
        .query(
            r#"select id, cast(day as varchar), v from "dfs://testDB"."testTB" order by id"#,
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect())
}

/// Polls until the slave's testTB equals `want`.
async fn wait_for_content(slave: &tokio_postgres::Client, want: &[(i64, String, f64)]) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got = content(slave).await;
        if got.as_deref().is_ok_and(|g| g == want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the slave never caught up: it has {:?} rows, the master {}",
            got.map(|g| g.len()),
            want.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slave_replays_the_masters_database() {
    let master = master(true);
    let slave = slave_of(&master);
    let m = master.client(0).await;
    let s = slave.client(1).await;
    wait_for_role(&m).await;
    m.batch_execute(TESTDB).await.unwrap();
    let values: Vec<String> = (0..2000)
        .map(|i| format!("(date '2023-02-{:02}', {i}, {i}.5)", i % 28 + 1))
        .collect();
    m.batch_execute(&format!(
        r#"insert into "dfs://testDB"."testTB" values {}"#,
        values.join(",")
    ))
    .await
    .unwrap();
    let want = content(&m).await.unwrap();
    assert_eq!(want.len(), 2000);
    wait_for_content(&s, &want).await;

    // The slave's view of the three tasks, and the master's once the slave reported back.
    let deadline = Instant::now() + Duration::from_secs(30);
    let slave_rows = loop {
        let rows = s
            .query("select * from getSlaveReplicationStatus()", &[])
            .await
            .unwrap();
        if rows
            .iter()
            .all(|r| r.get::<_, String>("state") == "FINISHED")
            || Instant::now() > deadline
        {
            break rows;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let ops: Vec<String> = slave_rows.iter().map(|r| r.get("operationType")).collect();
    assert_eq!(ops, ["CREATE_DOMAIN", "CREATE_PARTITIONED_TABLE", "APPEND"]);
    for r in &slave_rows {
        assert_eq!(r.get::<_, String>("state"), "FINISHED");
        assert!(slave
            .datanodes()
            .contains(&r.get::<_, String>("executionNode")));
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let tasks = master_tasks(&m).await;
        if tasks.iter().all(|t| t.truncated) {
            break;
        }
        assert!(Instant::now() < deadline, "never truncated: {tasks:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Truncated tasks drop their data on the master.
    let workdir = master
        .home()
        .join(&master.datanodes()[0])
        .join("clusterReplication");
    master.wait_until("task data deleted", Duration::from_secs(30), || {
        std::fs::read_dir(&workdir).map_or(0, |d| d.count()) == 0
    });
    let info = m
        .query("select * from getRecentSlaveReplicationInfo()", &[])
        .await
        .unwrap();
    assert_eq!(info.len(), 1);
    assert_eq!(info[0].get::<_, i64>("lastFinishedTaskId"), 3);
    assert_eq!(info[0].get::<_, i64>("tasksBehind"), 0);
    let lag = m
        .query("select * from getClusterReplicationLag()", &[])
        .await
        .unwrap();
    assert_eq!(lag.len(), 1);
    assert_eq!(lag[0].get::<_, String>("dbName"), "dfs://testDB");
    assert_eq!(lag[0].get::<_, i64>("tasksBehind"), 0);
    assert_eq!(lag[0].get::<_, f64>("secondsBehind"), 0.0);
    let (code, metrics) = master.http_get(&master.controllers()[0], "/metrics");
    assert_eq!(code, 200);
    assert!(
        metrics.contains("porpoise_replication_tasks_behind{")
            && metrics.contains("db=\"dfs://testDB\"} 0"),
        "{metrics}"
    );

    // UPDATE and DELETE replay as statements; the slave converges again.
    m.batch_execute(
        r#"update "dfs://testDB"."testTB" set v = v * 2 where id % 3 = 0;
           delete from "dfs://testDB"."testTB" where id % 7 = 0;
           insert into "dfs://testDB"."testTB" values (date '2023-05-05', 9999, 1.25);"#,
    )
    .await
    .unwrap();
    let want = content(&m).await.unwrap();
    wait_for_content(&s, &want).await;

    // Execution set 1: the database's next tasks run in set 1's queues on the slave (ids 8..15
    // with 2 data nodes: 4 queues per data node per set).
    m.batch_execute(
        r#"select setDatabaseClusterReplicationExecutionSet('dfs://testDB', 1);
           insert into "dfs://testDB"."testTB" values (date '2023-05-07', 10000, 2.5);"#,
    )
    .await
    .unwrap();
    let want = content(&m).await.unwrap();
    wait_for_content(&s, &want).await;
    let last = s
        .query_one(
            "select executionSet, queueId from getSlaveReplicationStatus() order by taskId desc limit 1",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(last.get::<_, i32>(0), 1);
    assert!((8..16).contains(&last.get::<_, i32>(1)));
    let status = m
        .query_one(
            "select executionSet from getDatabaseClusterReplicationStatus()",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(status.get::<_, i32>(0), 1);

    // Clients may read the replicated database on the slave, not write it, nor change its
    // partitions.
    for write in [
        r#"insert into "dfs://testDB"."testTB" values (date '2023-05-06', 1, 1.0)"#,
        r#"alter table "dfs://testDB"."testTB" drop partition '20230506'"#,
        "select addRangePartitions('dfs://testDB', 5)",
    ] {
        let e = s
            .batch_execute(write)
            .await
            .expect_err("a slave refuses writes to a replicated database");
        let e = e.as_db_error().expect("a server error");
        assert_eq!(e.code().code(), "25006", "{write}: {}", e.message());
        assert!(e.message().contains("RefId:S01023"), "{}", e.message());
    }
}

/// One task's row in `getSlaveReplicationStatus()`: operation, state, details.
async fn slave_task_states(client: &tokio_postgres::Client) -> Vec<(String, String, String)> {
    client
        .query("select * from getSlaveReplicationStatus()", &[])
        .await
        .expect("getSlaveReplicationStatus")
        .iter()
        .map(|r| (r.get("operationType"), r.get("state"), r.get("details")))
        .collect()
}

async fn slave_status(client: &tokio_postgres::Client) -> String {
    client
        .query_one("select status from getClusterReplicationMetrics(-1)", &[])
        .await
        .expect("getClusterReplicationMetrics")
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_task_stops_replication_until_it_is_repaired_or_skipped() {
    let master = master(false);
    // The slave replays as `repl`, who may create databases and tables but not write rows.
    let slave = slave_builder(&master)
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
    m.batch_execute(
        &[
            TESTDB,
            r#"
           insert into "dfs://testDB"."testTB" values (date '2023-01-01', 1, 1.5);
           alter table "dfs://testDB"."testTB" add column w INT;"#,
        ]
        .concat(),
    )
    .await
    .unwrap();

    // The APPEND fails for want of WRITE, 30 times, and replication stops; the ADD_COLUMN
    // after it (a later group) waits.
    wait_for("replication to stop", || async {
        slave_status(&s).await == "STOPPED"
    })
    .await;
    let states = slave_task_states(&s).await;
    assert_eq!(states.len(), 4, "{states:?}");
    assert_eq!(states[0].1, "FINISHED");
    assert_eq!(states[1].1, "FINISHED");
    assert_eq!(states[2].0, "APPEND");
    assert_eq!(states[2].1, "FAILED");
    assert!(states[2].2.contains("WRITE"), "details: {}", states[2].2);
    assert_eq!(states[3].0, "ADD_COLUMN");
    assert_eq!(states[3].1, "WAITING");
    let stopped: i64 = s
        .query_one(
            "select count(*) from getSlaveReplicationQueueStatus() where status = 'STOPPED' and unfinishedTasks = 2",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        stopped, 1,
        "the queue of testDB is STOPPED with two tasks left"
    );

    // Repaired: the privilege, then startClusterReplication() re-runs the failed task.
    s.batch_execute(
        r#"grant write on all databases to repl;
           select startClusterReplication();"#,
    )
    .await
    .unwrap();
    wait_for("the tasks to finish", || async {
        slave_task_states(&s)
            .await
            .iter()
            .all(|t| t.1 == "FINISHED")
    })
    .await;
    assert_eq!(slave_status(&s).await, "ENABLED");
    let n: i64 = s
        .query_one(
            r#"select count(*) from "dfs://testDB"."testTB" where w is null"#,
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1);

    // A task that cannot be repaired is skipped: stop, skip, start.
    s.batch_execute("revoke write on all databases from repl")
        .await
        .unwrap();
    m.batch_execute(r#"insert into "dfs://testDB"."testTB" values (date '2023-01-02', 2, 2.5, 7)"#)
        .await
        .unwrap();
    wait_for("the new task to fail", || async {
        slave_task_states(&s)
            .await
            .last()
            .is_some_and(|t| t.1 == "FAILED")
    })
    .await;
    let id: i64 = s
        .query_one(
            "select taskId from getSlaveReplicationStatus() where state = 'FAILED'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    s.batch_execute(&format!(
        "select stopClusterReplication(); select skipClusterReplicationTask({id}); select startClusterReplication();"
    ))
    .await
    .unwrap();
    let states = slave_task_states(&s).await;
    let skipped = states.last().unwrap();
    assert_eq!(skipped.1, "FINISHED");
    assert!(skipped.2.contains("skipped"), "{skipped:?}");
    // One data node, the default 4 queues per set: 8 queues, all done.
    let queues = s
        .query("select * from getSlaveReplicationQueueStatus()", &[])
        .await
        .unwrap();
    assert_eq!(queues.len(), 8);
    assert!(queues
        .iter()
        .all(|q| q.get::<_, String>("status") == "FINISHED"
            && q.get::<_, i64>("executionGroupId") == -1));
    // Skipped: its row never arrives.
    let n: i64 = s
        .query_one(r#"select count(*) from "dfs://testDB"."testTB""#, &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
}

/// The one row of `sql`, as text.
async fn summary_text(client: &tokio_postgres::Client, sql: &str) -> Option<Vec<String>> {
    let messages = client.simple_query(sql).await.ok()?;
    messages.iter().find_map(|m| match m {
        tokio_postgres::SimpleQueryMessage::Row(r) => Some(
            (0..r.len())
                .map(|i| r.get(i).unwrap_or("").to_string())
                .collect(),
        ),
        _ => None,
    })
}

/// Runs a script with psql from the repository root; returns (success, stdout, stderr).
fn psql(port: u16, script: &str, stop_on_error: bool) -> (bool, String, String) {
    let mut cmd = std::process::Command::new("psql");
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .arg(common::url(port, "admin", "123456"))
        .args(["-X", "-f", script]);
    if stop_on_error {
        cmd.args(["-v", "ON_ERROR_STOP=1"]);
    }
    let out = cmd.output().expect("run psql");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_scripts_replicate_testtb_through_psql() {
    let master = master(false);
    let slave = slave_of(&master);
    let m = master.client(0).await;
    wait_for_role(&m).await;
    let (ok, out, err) = psql(
        master.port(&master.datanodes()[0]),
        "sql/demo/master.sql",
        true,
    );
    assert!(ok, "master.sql failed:\n{out}\n{err}");
    assert!(out.contains("1210000"), "{out}");
    let s = slave.client(0).await;
    let summary = r#"select count(*), sum(Volume), round(sum(Amount), 2), count(distinct SecurityID)
                     from "dfs://testDB"."testTB""#;
    let want = summary_text(&m, summary)
        .await
        .expect("the master's summary");
    assert_eq!(want[0], "1210000");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got = summary_text(&s, summary).await;
        if got.as_ref() == Some(&want) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the slave has {got:?}, the master {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, out, err) = psql(
        slave.port(&slave.datanodes()[0]),
        "sql/demo/slave.sql",
        false,
    );
    assert!(out.contains("1210000"), "{out}");
    assert_eq!(out.matches("FINISHED").count(), 3, "{out}");
    assert!(err.contains("RefId:S01023"), "{err}");
    // Every task is truncated on the master once the slave reported back.
    wait_for("the master to truncate", || async {
        master_tasks(&m).await.iter().all(|t| t.truncated)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slave_data_node_killed_while_applying_applies_the_task_once() {
    // Each data file takes a second to be served: the slave is still applying the APPEND
    // when it is killed.
    let master = master_builder(true)
        .env("PORPOISE_DELAY_AT", "file-served:1000")
        .build();
    let mut slave = slave_of(&master);
    let m = master.client(0).await;
    wait_for_role(&m).await;
    m.batch_execute(TESTDB).await.unwrap();
    // One large APPEND over 28 partitions, so both slave data nodes take part in applying it.
    let sink = m
        .copy_in(r#"copy "dfs://testDB"."testTB" from stdin"#)
        .await
        .unwrap();
    let data: String = (0..300_000)
        .map(|i| format!("2023-02-{:02}\t{i}\t{i}.5\n", i % 28 + 1))
        .collect();
    {
        use futures::SinkExt;
        futures::pin_mut!(sink);
        sink.send(bytes::Bytes::from(data)).await.unwrap();
        sink.finish().await.unwrap();
    }
    // Kill the data node applying it as soon as it starts.
    let status = slave.client(0).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let node = loop {
        let rows = status
            .query(
                "select executionNode from getSlaveReplicationStatus() where operationType = 'APPEND' and state = 'EXECUTING'",
                &[],
            )
            .await
            .unwrap_or_default();
        if let Some(r) = rows.first() {
            break r.get::<_, String>(0);
        }
        assert!(Instant::now() < deadline, "the APPEND never started");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    // The node shows the task on one of its workers.
    let executing = slave
        .client(slave.datanodes().iter().position(|n| *n == node).unwrap())
        .await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let rows = executing
            .query("select * from getSlaveReplicationExecutionStatus()", &[])
            .await
            .unwrap();
        if let Some(r) = rows.first() {
            assert_eq!(rows.len(), 1);
            assert_eq!(r.get::<_, i32>("executionSet"), 0);
            assert_eq!(r.get::<_, i32>("worker"), 0);
            assert_eq!(r.get::<_, String>("state"), "EXECUTING");
            break;
        }
        assert!(Instant::now() < deadline, "no worker shows the APPEND");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    slave.kill9(&node);
    slave.start(&node);
    let other = slave
        .datanodes()
        .into_iter()
        .position(|n| n != node)
        .unwrap();
    let s = slave.client(other).await;
    wait_for("the APPEND to finish on the slave", || async {
        slave_task_states(&s)
            .await
            .iter()
            .all(|t| t.1 == "FINISHED")
    })
    .await;
    let rows = s
        .query(r#"select id from "dfs://testDB"."testTB""#, &[])
        .await
        .unwrap();
    let mut ids: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
    ids.sort_unstable();
    assert_eq!(ids.len(), 300_000, "every row exactly once");
    let idle = s
        .query("select * from getSlaveReplicationExecutionStatus()", &[])
        .await
        .unwrap();
    assert!(idle.is_empty(), "no task left on a worker");
    assert!(
        ids.iter().enumerate().all(|(i, id)| i as i64 == *id),
        "no duplicate, no gap"
    );
}

/// A slave cluster named `prefix` (1 controller, 1 data node) pulling from `master`.
fn slave_named(master: &TestCluster, prefix: &str) -> TestCluster {
    slave_builder(master).prefix(prefix).datanodes(1).build()
}

/// Whether the master still holds task data `<tid>.task` on any data node.
fn task_data_kept(master: &TestCluster, tid: i64) -> bool {
    master.datanodes().iter().any(|dn| {
        master
            .home()
            .join(dn)
            .join("clusterReplication")
            .join(format!("{tid}.task"))
            .exists()
    })
}
