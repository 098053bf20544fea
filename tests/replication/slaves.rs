//! Slaves as objects of the master: it lists them by cluster id, attached or refused with
//! the reason (which the slave shows too), and `removeClusterReplicationSlave` detaches one.
//! And the slave's write lock on a replicated database follows the master: released when
//! the master stops replicating or drops it, kept while replication is merely stopped.

use std::time::{Duration, Instant};

use super::common::cluster::TestCluster;
use super::common::wait_for;
use super::{
    content, master_builder, master_tasks, slave_builder, slave_named, task_data_kept,
    wait_for_content, wait_for_role, TESTDB, TWO_ROWS,
};

/// One row of `getRecentSlaveReplicationInfo()`.
#[derive(Clone, Debug)]
struct Slave {
    id: String,
    controller: String,
    status: String,
    error: Option<String>,
    finished: i64,
}

async fn slaves(m: &tokio_postgres::Client) -> Vec<Slave> {
    m.query("select * from getRecentSlaveReplicationInfo()", &[])
        .await
        .expect("getRecentSlaveReplicationInfo")
        .iter()
        .map(|r| Slave {
            id: r.get("slaveClusterId"),
            controller: r.get("connectedController"),
            status: r.get("status"),
            error: r.get("error"),
            finished: r.get("lastFinishedTaskId"),
        })
        .collect()
}

/// The address of a cluster's (first) controller, as a master lists its slave.
fn controller_addr(c: &TestCluster) -> String {
    format!("127.0.0.1:{}", c.port(&c.controllers()[0]))
}

/// Polls until the master lists the slave whose controller is `controller` with `status`.
async fn wait_for_slave(m: &tokio_postgres::Client, controller: &str, status: &str) -> Slave {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let all = slaves(m).await;
        if let Some(s) = all
            .iter()
            .find(|s| s.controller == controller && s.status == status)
        {
            return s.clone();
        }
        assert!(
            Instant::now() < deadline,
            "the master never listed {controller} as {status}: {all:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls until the slave's `pullError` says `what` (its role may not be recorded yet).
async fn pull_error(s: &tokio_postgres::Client, what: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let error = s
            .query_one("select pullError from getClusterReplicationMetrics()", &[])
            .await
            .ok()
            .and_then(|r| r.get::<_, Option<String>>(0));
        match error {
            Some(e) if e.contains(what) => return e,
            _ => assert!(
                Instant::now() < deadline,
                "the slave never said why its pulls fail ({what}): {error:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls until the slave's pulls work again (`pullError` NULL).
async fn wait_for_pulls(s: &tokio_postgres::Client) {
    wait_for("the slave's pulls to be admitted", || async {
        s.query_one("select pullError from getClusterReplicationMetrics()", &[])
            .await
            .is_ok_and(|r| r.get::<_, Option<String>>(0).is_none())
    })
    .await;
}

/// The SQLSTATE and message of a statement expected to fail.
async fn refusal(client: &tokio_postgres::Client, sql: &str) -> (String, String) {
    let e = client
        .batch_execute(sql)
        .await
        .expect_err(&format!("{sql} should fail"));
    let e = e
        .as_db_error()
        .unwrap_or_else(|| panic!("{sql}: not a server error: {e}"));
    (e.code().code().to_string(), e.message().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_slave_is_listed_on_both_sides_and_removing_a_slave_frees_its_place() {
    let master = master_builder(true)
        .controller_cfg("clusterReplicationSlaveNum", "1")
        .build();
    let m = master.client(0).await;
    wait_for_role(&m).await;
    let a = slave_named(&master, "sa");
    let sa = a.client(0).await;
    let a_ctl = controller_addr(&a);
    let attached = wait_for_slave(&m, &a_ctl, "ATTACHED").await;
    assert_eq!(attached.error, None);
    let a_id = attached.id.clone();
    assert!(!a_id.is_empty());
    // A stops pulling: its progress (nothing finished) stays recorded.
    sa.batch_execute("select stopClusterReplication()")
        .await
        .unwrap();

    // B is one slave too many: told so in its SQL, and listed as refused on the master.
    let b = slave_named(&master, "sb");
    let sb = b.client(0).await;
    pull_error(&sb, "clusterReplicationSlaveNum").await;
    let b_ctl = controller_addr(&b);
    let refused = wait_for_slave(&m, &b_ctl, "REFUSED").await;
    let reason = refused.error.clone().expect("a refused slave's reason");
    assert!(reason.contains("clusterReplicationSlaveNum"), "{reason}");
    assert_ne!(refused.id, a_id);
    assert_eq!(slaves(&m).await.len(), 2);

    // Tasks A has not finished wait for it, with their task data.
    m.batch_execute(&[TESTDB, TWO_ROWS].concat()).await.unwrap();
    let tasks = master_tasks(&m).await;
    assert_eq!(tasks.len(), 3);
    let append = tasks[2].tid;
    assert!(tasks.iter().all(|t| !t.truncated), "{tasks:?}");
    assert!(task_data_kept(&master, append));

    // Only an administrator may detach a slave.
    m.batch_execute("create user bob with password 'bob_pw'")
        .await
        .unwrap();
    let bob = super::functions::connect_as(&master, 0, "bob", "bob_pw").await;
    let (code, message) = refusal(
        &bob,
        &format!("select removeClusterReplicationSlave('{a_id}')"),
    )
    .await;
    assert_eq!(code, "42501", "{message}");
    assert_eq!(
        slaves(&m).await.len(),
        2,
        "the refused call removed nothing"
    );

    // Removing A frees its place: B attaches and replays, and what B finished is truncated
    // (task data deleted) without waiting for A.
    m.batch_execute(&format!("select removeClusterReplicationSlave('{a_id}')"))
        .await
        .unwrap();
    wait_for_pulls(&sb).await;
    let want = content(&m).await.unwrap();
    wait_for_content(&sb, &want).await;
    wait_for("the master to truncate what B finished", || async {
        master_tasks(&m).await.iter().all(|t| t.truncated)
    })
    .await;
    wait_for("the task data to be deleted", || async {
        !task_data_kept(&master, append)
    })
    .await;
    let listed = slaves(&m).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].controller, b_ctl);
    assert_eq!(listed[0].status, "ATTACHED");
    assert_eq!(listed[0].error, None);
    assert_eq!(listed[0].finished, 3);

    // An id the master does not know is an error.
    let (code, message) = refusal(
        &m,
        &format!("select removeClusterReplicationSlave('{a_id}')"),
    )
    .await;
    assert_eq!(code, "42704", "{message}");
    assert!(message.contains(&a_id), "{message}");

    // A comes back as a new slave: the place is B's now, so it is refused.
    sa.batch_execute("select startClusterReplication()")
        .await
        .unwrap();
    pull_error(&sa, "clusterReplicationSlaveNum").await;
    wait_for_slave(&m, &a_ctl, "REFUSED").await;
    // Neither a slave's removal nor the listing are for a slave cluster.
    let (code, message) = refusal(&sb, "select removeClusterReplicationSlave('x')").await;
    assert_eq!(code, "55000", "{message}");
    assert!(message.contains("RefId:S01024"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slave_rebuilt_from_an_empty_home_is_seeded_again() {
    let master = master_builder(true).build();
    let mut slave = slave_builder(&master).datanodes(1).build();
    let m = master.client(0).await;
    wait_for_role(&m).await;
    m.batch_execute(&[TESTDB, TWO_ROWS].concat()).await.unwrap();
    let s = slave.client(0).await;
    wait_for_content(&s, &content(&m).await.unwrap()).await;
    wait_for("the master to truncate the finished tasks", || async {
        master_tasks(&m).await.iter().all(|t| t.truncated)
    })
    .await;
    drop(s);

    // The slave loses everything but its certificates (so it is the same cluster id).
    slave.rebuild(Duration::ZERO);
    // The tasks it lost are truncated: it is started afresh and seeded with testDB as the
    // master has it, then gets what follows.
    let s = slave.client(0).await;
    wait_for_content(&s, &content(&m).await.unwrap()).await;
    let ctl = controller_addr(&slave);
    let attached = wait_for_slave(&m, &ctl, "ATTACHED").await;
    assert_eq!(attached.error, None);
    let seeded = s
        .query(
            "select state, tablesDone from getClusterReplicationSeedStatus() where dbName = 'dfs://testDB'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(seeded.len(), 1);
    assert_eq!(seeded[0].get::<_, String>(0), "DONE");
    assert_eq!(seeded[0].get::<_, Option<i64>>(1), Some(1));
    m.batch_execute(r#"insert into "dfs://testDB"."testTB" values (date '2023-01-03', 3, 3.5);"#)
        .await
        .unwrap();
    wait_for_content(&s, &content(&m).await.unwrap()).await;
}

/// The state of the slave's task of operation `op` on database `db`, once it has one.
async fn task_state(s: &tokio_postgres::Client, op: &str, db: &str) -> Option<String> {
    s.query(
        "select state from getSlaveReplicationStatus() where operationType = $1 and dbName = $2",
        &[&op, &db],
    )
    .await
    .expect("getSlaveReplicationStatus")
    .first()
    .map(|r| r.get(0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_slave_lets_clients_write_a_database_once_the_master_stops_replicating_it() {
    let master = master_builder(true).build();
    let slave = slave_builder(&master).datanodes(1).build();
    let m = master.client(0).await;
    let s = slave.client(0).await;
    wait_for_role(&m).await;
    m.batch_execute(&[TESTDB, TWO_ROWS].concat()).await.unwrap();
    wait_for_content(&s, &content(&m).await.unwrap()).await;
    let insert = r#"insert into "dfs://testDB"."testTB" values (date '2023-05-06', 9, 9.5)"#;
    let (code, message) = refusal(&s, insert).await;
    assert_eq!(code, "25006", "{message}");
    assert!(message.contains("RefId:S01023"), "{message}");

    // Stopped, the slave still refuses: a client's row would never be on the master.
    s.batch_execute("select stopClusterReplication()")
        .await
        .unwrap();
    let (code, message) = refusal(&s, insert).await;
    assert_eq!(code, "25006", "{message}");
    s.batch_execute("select startClusterReplication()")
        .await
        .unwrap();

    // A task the slave does not hold cannot be skipped.
    let (code, message) = refusal(&s, "select skipClusterReplicationTask(99999)").await;
    assert_eq!(code, "42704", "{message}");
    assert!(message.contains("99999"), "{message}");

    // The master switches replication of testDB off: once the slave applied that, the
    // database is its clients' again.
    m.batch_execute("select setDatabaseForClusterReplication('dfs://testDB', false)")
        .await
        .unwrap();
    wait_for("the slave to apply DISABLE_REPLICATION", || async {
        task_state(&s, "DISABLE_REPLICATION", "dfs://testDB")
            .await
            .as_deref()
            == Some("FINISHED")
    })
    .await;
    s.batch_execute(insert).await.unwrap();
    assert_eq!(content(&s).await.unwrap().len(), 3);

    // A replicated database the master drops is released too (it can be made anew here).
    m.batch_execute(
        r#"create database "dfs://gone" partitioned by VALUE(1..3);
           select setDatabaseForClusterReplication('dfs://gone', true);
           create table "dfs://gone"."t"(k INT, v DOUBLE) partitioned by k;"#,
    )
    .await
    .unwrap();
    wait_for("the slave to create dfs://gone", || async {
        task_state(&s, "CREATE_PARTITIONED_TABLE", "dfs://gone")
            .await
            .as_deref()
            == Some("FINISHED")
    })
    .await;
    let (code, _) = refusal(&s, r#"insert into "dfs://gone"."t" values (1, 1.5)"#).await;
    assert_eq!(code, "25006");
    m.batch_execute(r#"drop database "dfs://gone""#)
        .await
        .unwrap();
    wait_for("the slave to apply DROP_DB", || async {
        task_state(&s, "DROP_DB", "dfs://gone").await.as_deref() == Some("FINISHED")
    })
    .await;
    s.batch_execute(
        r#"create database "dfs://gone" partitioned by VALUE(1..3);
           create table "dfs://gone"."t"(k INT, v DOUBLE) partitioned by k;
           insert into "dfs://gone"."t" values (1, 1.5);"#,
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relative_work_dir_is_under_each_data_nodes_own_directory() {
    let master = master_builder(true)
        .cluster_cfg("clusterReplicationWorkDir", "taskData")
        .build();
    let m1 = master.client(0).await;
    let m2 = master.client(1).await;
    wait_for_role(&m1).await;
    m1.batch_execute(TESTDB).await.unwrap();
    m1.batch_execute(r#"insert into "dfs://testDB"."testTB" values (date '2023-01-01', 1, 1.5)"#)
        .await
        .unwrap();
    m2.batch_execute(r#"insert into "dfs://testDB"."testTB" values (date '2023-01-02', 2, 2.5)"#)
        .await
        .unwrap();
    let tasks = master_tasks(&m1).await;
    let appends: Vec<_> = tasks.iter().filter(|t| t.op == "APPEND").collect();
    assert_eq!(appends.len(), 2, "{tasks:?}");
    for (task, dn) in appends.iter().zip(master.datanodes()) {
        assert_eq!(task.src, format!("127.0.0.1:{}", master.port(&dn)));
        let own = master.home().join(&dn).join("taskData");
        assert!(
            own.join(format!("{}.task", task.tid)).exists(),
            "task {} of {dn} is not in {}",
            task.tid,
            own.display()
        );
        // Only its own writes are there.
        let files = std::fs::read_dir(&own).unwrap().count();
        assert_eq!(files, 1, "{}", own.display());
    }
    // Not under the nodes' working directory.
    let cwd = master.home().parent().unwrap().join("taskData");
    assert!(!cwd.exists(), "{}", cwd.display());
}
