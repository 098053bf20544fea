//! What each replicated operation does to a slave, and how replication is steered from SQL:
//! every operation type arrives with the master's content and schema, two slaves both have to
//! finish a task before the master truncates it, and a stopped slave pulls nothing.

use std::time::{Duration, Instant};

use super::common::cluster::TestCluster;
use super::{
    master, master_tasks, ops, slave_named, slave_of, slave_task_states, wait_for, wait_for_role,
    TESTDB,
};

/// Every row of a query, as text (`None` for NULL): compares tables of any schema.
async fn rows(
    client: &tokio_postgres::Client,
    sql: &str,
) -> Result<Vec<Vec<Option<String>>>, tokio_postgres::Error> {
    Ok(client
        .simple_query(sql)
        .await?
        .iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => {
                Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect())
            }
            _ => None,
        })
        .collect())
}

/// What a user sees of a database: each table's columns (name and type) and rows (sorted).
async fn snapshot(
    client: &tokio_postgres::Client,
    db: &str,
) -> Result<Vec<(String, Vec<Vec<Option<String>>>)>, tokio_postgres::Error> {
    let mut out = Vec::new();
    let schemas = rows(
        client,
        &format!("select schema_name from information_schema.schemata where schema_name = '{db}'"),
    )
    .await?;
    out.push(("<database exists>".to_string(), schemas));
    let tables = rows(
        client,
        &format!(
            "select table_name from information_schema.tables where table_schema = '{db}' order by table_name"
        ),
    )
    .await?;
    for t in tables {
        let Some(table) = t.into_iter().next().flatten() else {
            continue;
        };
        let columns = rows(
            client,
            &format!(
                "select column_name, data_type from information_schema.columns
                 where table_schema = '{db}' and table_name = '{table}' order by ordinal_position"
            ),
        )
        .await?;
        out.push((format!("{table} columns"), columns));
        let mut content = rows(client, &format!(r#"select * from "{db}"."{table}""#)).await?;
        content.sort();
        out.push((format!("{table} rows"), content));
    }
    Ok(out)
}

/// `(taskId, operationType, state)` of every task the slave pulled.
async fn slave_tasks(client: &tokio_postgres::Client) -> Vec<(i64, String, String)> {
    client
        .query(
            "select taskId, operationType, state from getSlaveReplicationStatus() order by taskId",
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

/// Runs `sql` on the master, checks that it queued the tasks `want_ops` (in order), and waits
/// until the slave finished every task and shows the same database: tables, columns, rows.
async fn replicate_step(
    m: &tokio_postgres::Client,
    s: &tokio_postgres::Client,
    db: &str,
    sql: &str,
    want_ops: &[&str],
) {
    let before = master_tasks(m).await.len();
    m.batch_execute(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let tasks = master_tasks(m).await;
    assert_eq!(
        ops(&tasks[before..]),
        want_ops,
        "the master's tasks of {sql}"
    );
    let want_tasks: Vec<(i64, String, String)> = tasks
        .iter()
        .map(|t| (t.task_id, t.op.clone(), "FINISHED".to_string()))
        .collect();
    let want = snapshot(m, db).await.expect("the master's database");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got_tasks = slave_tasks(s).await;
        let got = snapshot(s, db).await;
        if got_tasks == want_tasks && got.as_ref().is_ok_and(|g| *g == want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the slave never caught up with {sql}\nslave tasks {got_tasks:?}\nmaster tasks {want_tasks:?}\n\
             slave {got:?}\nmaster {want:?}\nslave details {:?}",
            slave_task_states(s).await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_type_replicates_with_content_and_schema() {
    let master = master(true);
    let slave = slave_of(&master);
    let m = master.client(0).await;
    let s = slave.client(1).await;
    wait_for_role(&m).await;
    const DB: &str = "dfs://opsDB";
    let step = |sql: &'static str, want: &'static [&'static str]| {
        let (m, s) = (&m, &s);
        async move { replicate_step(m, s, DB, sql, want).await }
    };

    step(
        r#"create database "dfs://opsDB" partitioned by VALUE(2023.01.01..2023.01.10);
           select setDatabaseForClusterReplication('dfs://opsDB', true);"#,
        &["CREATE_DOMAIN"],
    )
    .await;
    step(
        r#"create table "dfs://opsDB"."pt"(id LONG, day DATE, v DOUBLE, tag STRING) partitioned by day"#,
        &["CREATE_PARTITIONED_TABLE"],
    )
    .await;
    step(
        r#"create table "dfs://opsDB"."dim"(code SYMBOL, name STRING, lot INT)"#,
        &["CREATE_TABLE"],
    )
    .await;
    step(
        r#"insert into "dfs://opsDB"."pt" values
             (1, '2023-01-01', 1.5, 'a'), (2, '2023-01-02', 2.5, 'b'), (3, '2023-01-03', 3.5, null),
             (4, '2023-01-04', 4.5, 'd'), (5, '2023-01-05', 5.5, 'e'), (6, '2023-01-06', 6.5, 'f');
           insert into "dfs://opsDB"."dim" values ('A', 'Alpha', 100), ('B', 'Beta', 10);"#,
        &["APPEND", "APPEND"],
    )
    .await;
    // A day outside the VALUE domain grows it (newValuePartitionPolicy=add) before the rows
    // are appended.
    step(
        r#"insert into "dfs://opsDB"."pt" values (7, '2023-02-01', 7.5, 'g')"#,
        &["ADD_VALUE_PARTITION", "APPEND"],
    )
    .await;
    step(
        r#"update "dfs://opsDB"."pt" set v = v * 10, tag = 'u' where id % 2 = 0"#,
        &["SQL_UPDATE"],
    )
    .await;
    step(
        r#"delete from "dfs://opsDB"."pt" where id = 3 or day = '2023-02-01'"#,
        &["SQL_DELETE"],
    )
    .await;
    step(
        r#"alter table "dfs://opsDB"."pt" add column qty INT;
           insert into "dfs://opsDB"."pt" values (8, '2023-01-08', 8.5, 'h', 80);"#,
        &["ADD_COLUMN", "APPEND"],
    )
    .await;
    step(
        r#"alter table "dfs://opsDB"."pt" rename column v to price;
           alter table "dfs://opsDB"."dim" rename column lot to lotSize;"#,
        &["RENAME_COLUMN", "RENAME_COLUMN"],
    )
    .await;
    // A renamed table keeps its rows on the slave and takes rows under its new name.
    step(
        r#"alter table "dfs://opsDB"."dim" rename to "dim2";
           insert into "dfs://opsDB"."dim2" values ('C', 'Gamma', 1);"#,
        &["RENAME_TABLE", "APPEND"],
    )
    .await;
    step(
        r#"alter table "dfs://opsDB"."pt" drop column tag"#,
        &["DROP_COLUMN"],
    )
    .await;
    // The slave keeps taking rows in the changed schema.
    step(
        r#"insert into "dfs://opsDB"."pt" values (9, '2023-01-09', 9.5, 90)"#,
        &["APPEND"],
    )
    .await;
    // Partitions dropped (DolphinDB's dropPartition): their rows go, the others stay.
    step(
        r#"alter table "dfs://opsDB"."pt" drop partition '20230104', '20230109'"#,
        &["DROP_PARTITION"],
    )
    .await;
    let ids = rows(&s, r#"select id from "dfs://opsDB"."pt" order by id"#)
        .await
        .unwrap();
    let want: Vec<Vec<Option<String>>> = ["1", "2", "5", "6", "8"]
        .iter()
        .map(|id| vec![Some(id.to_string())])
        .collect();
    assert_eq!(ids, want, "the slave's rows");
    step(r#"truncate table "dfs://opsDB"."pt""#, &["TRUNCATE_TABLE"]).await;
    step(
        r#"insert into "dfs://opsDB"."pt" values (10, '2023-01-10', 10.5, 100)"#,
        &["APPEND"],
    )
    .await;
    step(r#"drop table "dfs://opsDB"."dim2""#, &["DROP_TABLE"]).await;
    step(r#"drop database "dfs://opsDB""#, &["DROP_DB"]).await;

    // The whole history, in commit order, on both sides.
    let tasks = master_tasks(&m).await;
    assert_eq!(
        ops(&tasks),
        [
            "CREATE_DOMAIN",
            "CREATE_PARTITIONED_TABLE",
            "CREATE_TABLE",
            "APPEND",
            "APPEND",
            "ADD_VALUE_PARTITION",
            "APPEND",
            "SQL_UPDATE",
            "SQL_DELETE",
            "ADD_COLUMN",
            "APPEND",
            "RENAME_COLUMN",
            "RENAME_COLUMN",
            "RENAME_TABLE",
            "APPEND",
            "DROP_COLUMN",
            "APPEND",
            "DROP_PARTITION",
            "TRUNCATE_TABLE",
            "APPEND",
            "DROP_TABLE",
            "DROP_DB",
        ]
    );
    let gone = rows(
        &s,
        "select schema_name from information_schema.schemata where schema_name = 'dfs://opsDB'",
    )
    .await
    .unwrap();
    assert!(gone.is_empty(), "the database is dropped on the slave too");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_range_partition_added_on_the_master_takes_rows_on_the_slave() {
    let master = master(true);
    let slave = slave_of(&master);
    let m = master.client(0).await;
    let s = slave.client(0).await;
    wait_for_role(&m).await;
    const DB: &str = "dfs://rangeDB";
    let step = |sql: &'static str, want: &'static [&'static str]| {
        let (m, s) = (&m, &s);
        async move { replicate_step(m, s, DB, sql, want).await }
    };
    step(
        r#"create database "dfs://rangeDB" partitioned by RANGE(0 10 20);
           select setDatabaseForClusterReplication('dfs://rangeDB', true);
           create table "dfs://rangeDB"."t"(k INT, v DOUBLE) partitioned by k;
           insert into "dfs://rangeDB"."t" values (1, 1.5), (15, 2.5);"#,
        &["CREATE_DOMAIN", "CREATE_PARTITIONED_TABLE", "APPEND"],
    )
    .await;
    step(
        r#"select addRangePartitions('dfs://rangeDB', [30, 40]);
           insert into "dfs://rangeDB"."t" values (25, 3.5), (39, 4.5);"#,
        &["ADD_RANGE_PARTITION", "APPEND"],
    )
    .await;
    // The slave's scheme grew too: its own copy of the rows sits in the new partitions.
    let ranges = rows(
        &s,
        "select value from schema('dfs://rangeDB') where key = 'partitionSchema'",
    )
    .await
    .unwrap();
    assert_eq!(ranges, [[Some("[0,10,20,30,40]".to_string())]]);
}

/// A master that lets two slave clusters attach.
fn master_of_two() -> TestCluster {
    TestCluster::builder()
        .prefix("m")
        .controllers(1)
        .datanodes(2)
        .controller_cfg("clusterReplicationSlaveNum", "2")
        .cluster_cfg("clusterReplicationMode", "master")
        .cluster_cfg("clusterReplicationSyncPersistence", "true")
        .build()
}

/// The master's `lastFinishedTaskId` of the slave whose controller is `controller`
/// (`host:port`), if it pulled already.
async fn last_finished(m: &tokio_postgres::Client, controller: &str) -> Option<i64> {
    m.query("select * from getRecentSlaveReplicationInfo()", &[])
        .await
        .expect("getRecentSlaveReplicationInfo")
        .iter()
        .find(|r| r.get::<_, String>("connectedController") == controller)
        .map(|r| r.get("lastFinishedTaskId"))
}

async fn truncated(m: &tokio_postgres::Client, task_id: i64) -> bool {
    master_tasks(m)
        .await
        .iter()
        .find(|t| t.task_id == task_id)
        .unwrap_or_else(|| panic!("no task {task_id} on the master"))
        .truncated
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_two_slaves_a_task_is_truncated_once_both_finished_it() {
    let master = master_of_two();
    let a = slave_named(&master, "sa");
    let b = slave_named(&master, "sb");
    let m = master.client(0).await;
    let sa = a.client(0).await;
    let sb = b.client(0).await;
    wait_for_role(&m).await;
    m.batch_execute(
        &[TESTDB, r#"
           insert into "dfs://testDB"."testTB" values
             (date '2023-01-01', 1, 1.5), (date '2023-01-02', 2, 2.5), (date '2023-01-03', 3, 3.5);"#].concat(),
    )
    .await
    .unwrap();
    let want = super::content(&m).await.unwrap();
    super::wait_for_content(&sa, &want).await;
    super::wait_for_content(&sb, &want).await;
    wait_for(
        "both slaves to report and the master to truncate",
        || async { master_tasks(&m).await.iter().all(|t| t.truncated) },
    )
    .await;
    let a_ctl = format!("127.0.0.1:{}", a.port(&a.controllers()[0]));
    let b_ctl = format!("127.0.0.1:{}", b.port(&b.controllers()[0]));
    let info = m
        .query("select * from getRecentSlaveReplicationInfo()", &[])
        .await
        .unwrap();
    assert_eq!(info.len(), 2, "both slaves attached");
    assert_eq!(last_finished(&m, &a_ctl).await, Some(3));
    assert_eq!(last_finished(&m, &b_ctl).await, Some(3));

    // B stops; A alone finishes the next task, which the master must keep for B.
    sb.batch_execute("select stopClusterReplication()")
        .await
        .unwrap();
    m.batch_execute(r#"insert into "dfs://testDB"."testTB" values (date '2023-01-04', 4, 4.5)"#)
        .await
        .unwrap();
    let task = master_tasks(&m).await.last().unwrap().task_id;
    assert_eq!(task, 4);
    let want = super::content(&m).await.unwrap();
    super::wait_for_content(&sa, &want).await;
    wait_for("A's progress to reach the master", || async {
        last_finished(&m, &a_ctl).await == Some(task)
    })
    .await;
    assert!(
        !truncated(&m, task).await,
        "task {task} truncated while slave B has not finished it"
    );
    assert_eq!(last_finished(&m, &b_ctl).await, Some(3));
    assert_eq!(super::content(&sb).await.unwrap().len(), 3);
    let tid = master_tasks(&m).await.last().unwrap().tid;
    assert!(
        super::task_data_kept(&master, tid),
        "the task data stays on the master for slave B"
    );

    // B resumes: it catches up, and only then does the master truncate.
    sb.batch_execute("select startClusterReplication()")
        .await
        .unwrap();
    super::wait_for_content(&sb, &want).await;
    wait_for(
        "the master to truncate the task both slaves finished",
        || async { truncated(&m, task).await },
    )
    .await;
    assert_eq!(last_finished(&m, &b_ctl).await, Some(task));
    for s in [&sa, &sb] {
        let states = slave_task_states(s).await;
        assert_eq!(states.len(), 4, "{states:?}");
        assert!(states.iter().all(|t| t.1 == "FINISHED"), "{states:?}");
    }
}

/// The largest task id the slave pulled (0 before any).
async fn last_pulled(s: &tokio_postgres::Client) -> i64 {
    s.query_one(
        "select coalesce(max(taskId), 0) from getSlaveReplicationStatus()",
        &[],
    )
    .await
    .expect("getSlaveReplicationStatus")
    .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_slave_pulls_nothing_and_finishes_what_it_runs() {
    // Each task's data is served 3 s late, so a task is certainly running when the slave
    // stops.
    let master = super::master_builder(true)
        .env("PORPOISE_DELAY_AT", "task-data-served:3000")
        .build();
    let (_slave, m, s) = super::slave_with_two_rows(&master).await;
    wait_for("the APPEND to run on the slave", || async {
        slave_task_states(&s)
            .await
            .get(2)
            .is_some_and(|t| t.0 == "APPEND" && t.1 == "EXECUTING")
    })
    .await;
    s.batch_execute("select stopClusterReplication()")
        .await
        .unwrap();
    assert_eq!(super::slave_status(&s).await, "DISABLED");
    m.batch_execute(r#"insert into "dfs://testDB"."testTB" values (date '2023-01-03', 3, 3.5)"#)
        .await
        .unwrap();
    let newest = master_tasks(&m).await.last().unwrap().task_id;
    assert_eq!(newest, 4);

    // Nothing proves a pull will never come; a running slave would have this task within a
    // long-poll round trip (milliseconds), so watching it stay away for longer than the pull
    // loop's wait (clusterReplicationPullWaitMs=1000) plus its idle pause shows the slave
    // stopped pulling. Meanwhile the APPEND that was running finishes.
    let window = Instant::now() + Duration::from_secs(4);
    while Instant::now() < window {
        let pulled = last_pulled(&s).await;
        assert!(
            pulled < newest,
            "the stopped slave pulled task {pulled}: {:?}",
            slave_task_states(&s).await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    wait_for("the task that was running to finish", || async {
        slave_task_states(&s)
            .await
            .get(2)
            .is_some_and(|t| t.1 == "FINISHED")
    })
    .await;
    // Still stopped, still without the new task; the rows of the finished one are there.
    assert_eq!(super::slave_status(&s).await, "DISABLED");
    assert_eq!(last_pulled(&s).await, 3);
    assert_eq!(super::content(&s).await.unwrap().len(), 2);
    let info = m
        .query_one(
            "select lastFinishedTaskId from getRecentSlaveReplicationInfo()",
            &[],
        )
        .await
        .unwrap();
    assert!(info.get::<_, i64>(0) < newest);

    // Started again: it pulls what it missed and converges.
    s.batch_execute("select startClusterReplication()")
        .await
        .unwrap();
    let want = super::content(&m).await.unwrap();
    assert_eq!(want.len(), 3);
    super::wait_for_content(&s, &want).await;
    let states = slave_task_states(&s).await;
    assert_eq!(states.len(), 4, "{states:?}");
    assert!(states.iter().all(|t| t.1 == "FINISHED"), "{states:?}");
    wait_for("the master to truncate", || async {
        master_tasks(&m).await.iter().all(|t| t.truncated)
    })
    .await;
}
