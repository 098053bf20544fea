//! `schema(db)` and `rpc(alias, 'function', args...)` through pgwire against real clusters.

use std::time::{Duration, Instant};

use tokio_postgres::{Client, Row};

use super::common::{self, cluster::TestCluster};
use super::{master, wait_for, wait_for_role, TESTDB};

/// SQLSTATE and message of a refused statement.
async fn refused(client: &Client, sql: &str) -> (String, String) {
    let e = client
        .query(sql, &[])
        .await
        .expect_err(&format!("{sql} is refused"));
    let db = e
        .as_db_error()
        .unwrap_or_else(|| panic!("{sql}: not a server error: {e}"));
    (db.code().code().to_string(), db.message().to_string())
}

/// A client of data node `node` logged in as `user`.
pub(super) async fn connect_as(
    cluster: &TestCluster,
    node: usize,
    user: &str,
    password: &str,
) -> Client {
    let port = cluster.port(&cluster.datanodes()[node]);
    common::connect(&common::url(port, user, password))
        .await
        .unwrap_or_else(|e| panic!("{user} connects: {e}"))
}

/// `schema(db)` as `key->value` lines, the way DolphinDB prints the dictionary.
async fn schema_lines(client: &Client, db: &str) -> Vec<String> {
    client
        .query(&format!("select * from schema('{db}')"), &[])
        .await
        .unwrap_or_else(|e| panic!("schema('{db}'): {e}"))
        .iter()
        .map(|r| {
            format!(
                "{}->{}",
                r.get::<_, String>("key"),
                r.get::<_, String>("value")
            )
        })
        .collect()
}

async fn replication_flag(client: &Client, db: &str) -> String {
    client
        .query_one(
            &format!("select value from schema('{db}') where key = 'clusterReplicationEnabled'"),
            &[],
        )
        .await
        .expect("clusterReplicationEnabled")
        .get(0)
}

/// Polls until `schema(db)` on `client` shows `flag` (another data node's copy of the
/// metadata follows the controller a moment later).
async fn wait_for_flag(client: &Client, db: &str, flag: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = replication_flag(client, db).await;
        if got == flag {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "clusterReplicationEnabled stayed {got}, expected {flag}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_shows_the_database_and_whether_it_is_replicated() {
    let cluster = master(false);
    let client = cluster.client(0).await;
    let other = cluster.client(1).await;
    wait_for_role(&client).await;
    client
        .batch_execute(
            r#"create database "dfs://testDB" partitioned by VALUE(2023.01.01..2023.01.03);
               create database "dfs://compo" partitioned by RANGE(0 5 10), HASH([SYMBOL, 4]), engine='TSDB';
               create database "dfs://secret" partitioned by VALUE(1..3);
               create user alice with password 'alice_pw';
               grant read on database "dfs://testDB" to alice;"#,
        )
        .await
        .unwrap();

    // DolphinDB's keys in DolphinDB's order; new databases are not replicated.
    assert_eq!(
        schema_lines(&client, "dfs://testDB").await,
        [
            "databaseDir->dfs://testDB",
            "partitionSchema->[2023.01.01,2023.01.02,2023.01.03]",
            "partitionSites->",
            "atomic->TRANS",
            "chunkGranularity->TABLE",
            "partitionType->1",
            "partitionTypeName->VALUE",
            "partitionColumnType->6",
            "clusterReplicationEnabled->0",
            "databaseOwner->admin",
            "engineType->OLAP",
        ]
    );
    let compo = schema_lines(&client, "dfs://compo").await;
    for line in [
        "partitionSchema->([0,5,10],4)",
        "partitionType->4",
        "partitionTypeName->COMPO",
        "partitionColumnType->[5,17]",
        "engineType->TSDB",
    ] {
        assert!(compo.iter().any(|l| l == line), "{line} in {compo:?}");
    }

    // The flag follows setDatabaseForClusterReplication, here and on the other data node.
    client
        .batch_execute("select setDatabaseForClusterReplication('dfs://testDB', true)")
        .await
        .unwrap();
    assert_eq!(replication_flag(&client, "dfs://testDB").await, "1");
    wait_for_flag(&other, "dfs://testDB", "1").await;
    assert_eq!(replication_flag(&client, "dfs://compo").await, "0");
    // DolphinDB's `schema(db).clusterReplicationEnabled`, as SQL: the text casts to a boolean.
    let enabled: bool = client
        .query_one(
            "select cast(value as boolean) from schema('dfs://testDB') where key = 'clusterReplicationEnabled'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(enabled);
    client
        .batch_execute("select setDatabaseForClusterReplication('dfs://testDB', false)")
        .await
        .unwrap();
    assert_eq!(replication_flag(&client, "dfs://testDB").await, "0");
    wait_for_flag(&other, "dfs://testDB", "0").await;

    // A missing database: PostgreSQL's invalid_catalog_name, as everywhere else.
    let (code, message) = refused(&client, "select * from schema('dfs://nope')").await;
    assert_eq!(code, "3F000");
    assert_eq!(message, r#"database "dfs://nope" does not exist"#);
    let (code, _) = refused(&client, "select * from schema(42)").await;
    assert_eq!(code, "22023");

    // Not only for admins: any privilege on the database will do.
    let alice = connect_as(&cluster, 1, "alice", "alice_pw").await;
    assert_eq!(replication_flag(&alice, "dfs://testDB").await, "0");
    let (code, message) = refused(&alice, "select * from schema('dfs://secret')").await;
    assert_eq!(code, "42501");
    assert!(message.contains(r#""dfs://secret""#), "{message}");
    let (code, _) = refused(&alice, "select * from schema('dfs://nope')").await;
    assert_eq!(code, "3F000");
}

/// (taskId, operationType, state) of each task.
fn tasks(rows: &[Row]) -> Vec<(i64, String, String)> {
    rows.iter()
        .map(|r| (r.get("taskId"), r.get("operationType"), r.get("state")))
        .collect()
}

async fn query(client: &Client, sql: &str) -> Vec<Row> {
    client
        .query(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

async fn text(client: &Client, sql: &str) -> Option<String> {
    query(client, sql).await[0].get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpc_runs_functions_on_the_controller_and_on_other_data_nodes() {
    let master = master(false);
    // The slave replays as `repl`, who lacks WRITE: the APPEND fails until it is skipped.
    let mut slave = super::slave_builder(&master)
        .cluster_cfg("clusterReplicationExecutionUsername", "repl")
        .cluster_cfg("clusterReplicationExecutionPassword", "repl_pw")
        .build();
    let (ctl, dn1, dn2) = (
        slave.controllers()[0].clone(),
        slave.datanodes()[0].clone(),
        slave.datanodes()[1].clone(),
    );
    let s = slave.client(0).await;
    s.batch_execute(
        r#"create user repl with password 'repl_pw';
           grant ddl on all databases to repl;
           create user alice with password 'alice_pw';"#,
    )
    .await
    .unwrap();
    let m = master.client(0).await;
    wait_for_role(&m).await;
    m.batch_execute(
        &[
            TESTDB,
            r#"
           insert into "dfs://testDB"."testTB" values (date '2023-01-01', 1, 1.5);"#,
        ]
        .concat(),
    )
    .await
    .unwrap();

    // DolphinDB's idioms, from a slave data node.
    let metrics = "select * from rpc(getControllerAlias(), 'getClusterReplicationMetrics', 30)";
    wait_for("the failing APPEND to stop replication", || async {
        s.query(metrics, &[])
            .await
            .is_ok_and(|r| r[0].get::<_, String>("status") == "STOPPED")
    })
    .await;
    let via_rpc = tasks(
        &query(
            &s,
            "select * from rpc(getControllerAlias(), 'getSlaveReplicationStatus')",
        )
        .await,
    );
    let direct = tasks(&query(&s, "select * from getSlaveReplicationStatus()").await);
    assert_eq!(via_rpc, direct);
    assert_eq!(
        via_rpc
            .iter()
            .map(|t| (t.1.as_str(), t.2.as_str()))
            .collect::<Vec<_>>(),
        [
            ("CREATE_DOMAIN", "FINISHED"),
            ("CREATE_PARTITIONED_TABLE", "FINISHED"),
            ("APPEND", "FAILED"),
        ]
    );
    let failed = via_rpc[2].0;
    // The controller named by its alias, and the columns of the function called.
    let rows = query(
        &s,
        &format!("select * from rpc('{ctl}', 'getSlaveReplicationStatus', 2)"),
    )
    .await;
    assert_eq!(tasks(&rows), direct[..2]);
    assert_eq!(rows[0].columns()[0].name(), "taskId");
    // Another data node runs it (and reaches the same controller).
    let via_dn2 = tasks(
        &query(
            &s,
            &format!("select * from rpc('{dn2}', 'getSlaveReplicationStatus')"),
        )
        .await,
    );
    assert_eq!(via_dn2, direct);

    // Commands: run once, return NULL, as `select f(...)` does.
    assert_eq!(
        text(
            &s,
            &format!("select rpc(getControllerAlias(), 'skipClusterReplicationTask', {failed})")
        )
        .await,
        None
    );
    // A task id the slave does not hold is a mistake, told as such; nothing is skipped.
    let e = s
        .query(
            "select rpc(getControllerAlias(), 'skipClusterReplicationTask', 938)",
            &[],
        )
        .await
        .expect_err("task 938 is not on this slave");
    let e = e.as_db_error().expect("a server error");
    assert_eq!(e.code().code(), "42704", "{}", e.message());
    assert!(
        e.message().contains("no task with ID 938"),
        "{}",
        e.message()
    );
    assert_eq!(
        text(
            &s,
            "select rpc(getControllerAlias(), 'startClusterReplication')"
        )
        .await,
        None
    );
    wait_for("replication to resume", || async {
        s.query(metrics, &[])
            .await
            .is_ok_and(|r| r[0].get::<_, String>("status") == "ENABLED")
    })
    .await;
    let rows = query(
        &s,
        "select * from rpc(getControllerAlias(), 'getSlaveReplicationStatus')",
    )
    .await;
    assert!(
        tasks(&rows).iter().all(|t| t.2 == "FINISHED"),
        "{:?}",
        tasks(&rows)
    );
    let details: String = rows[2].get("details");
    assert!(details.contains("skipped"), "{details}");
    // Stopped and started again through a data node's rpc.
    for (command, state) in [("stop", "DISABLED"), ("start", "ENABLED")] {
        let sql = format!("select rpc('{dn2}', '{command}ClusterReplication')");
        assert_eq!(text(&s, &sql).await, None);
        wait_for(state, || async {
            s.query(metrics, &[])
                .await
                .is_ok_and(|r| r[0].get::<_, String>("status") == state)
        })
        .await;
    }

    // Values: getControllerAlias() through rpc is the controller's alias; getNodeAlias() on
    // another data node is that node's.
    for sql in [
        "select rpc(getControllerAlias(), 'getControllerAlias')",
        &format!("select rpc('{dn2}', 'getControllerAlias')"),
    ] {
        assert_eq!(text(&s, sql).await.as_deref(), Some(ctl.as_str()), "{sql}");
    }
    assert_eq!(
        text(&s, "select getNodeAlias()").await.as_deref(),
        Some(dn1.as_str())
    );
    assert_eq!(
        text(&s, &format!("select rpc('{dn2}', 'getNodeAlias')"))
            .await
            .as_deref(),
        Some(dn2.as_str())
    );
    assert_eq!(
        text(&s, "select rpc(getNodeAlias(), 'getNodeAlias')")
            .await
            .as_deref(),
        Some(dn1.as_str())
    );
    // A scalar function in the table form: one row, one column named after it.
    let rows = query(&s, &format!("select * from rpc('{dn2}', 'getNodeAlias')")).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].columns()[0].name(), "getNodeAlias");
    assert_eq!(rows[0].get::<_, String>(0), dn2);

    // Mistakes.
    let (code, message) = refused(
        &s,
        "select * from rpc('nowhere', 'getSlaveReplicationStatus')",
    )
    .await;
    assert_eq!(code, "42704");
    assert_eq!(
        message,
        r#"rpc: node "nowhere" is not a node of this cluster (see cluster.nodes)"#
    );
    let (code, message) = refused(&s, "select rpc('nowhere', 'startClusterReplication')").await;
    assert_eq!(code, "42704", "{message}");
    for sql in [
        "select * from rpc(getControllerAlias(), 'noSuchFunction')",
        "select rpc(getControllerAlias(), 'noSuchFunction')",
    ] {
        let (code, message) = refused(&s, sql).await;
        assert_eq!(code, "42883", "{sql}");
        assert!(
            message.contains("noSuchFunction does not exist"),
            "{message}"
        );
    }
    let (code, message) = refused(
        &s,
        "select rpc(getControllerAlias(), 'getSlaveReplicationStatus')",
    )
    .await;
    assert_eq!(code, "42809");
    assert!(message.contains("select * from rpc("), "{message}");
    let (code, _) = refused(&s, "select * from rpc(getControllerAlias())").await;
    assert_eq!(code, "22023");

    // The inner function checks its caller, on whichever node it runs.
    let alice = connect_as(&slave, 0, "alice", "alice_pw").await;
    for sql in [
        "select * from rpc(getControllerAlias(), 'getSlaveReplicationStatus')".to_string(),
        format!("select * from rpc('{dn2}', 'getSlaveReplicationStatus')"),
        format!("select rpc('{dn2}', 'startClusterReplication')"),
    ] {
        let (code, message) = refused(&alice, &sql).await;
        assert_eq!(code, "42501", "{sql}: {message}");
    }
    // ... and the wrong cluster role is still DolphinDB's error.
    let (code, message) = refused(
        &s,
        "select * from rpc(getControllerAlias(), 'getMasterReplicationStatus')",
    )
    .await;
    assert_eq!(code, "55000");
    assert_eq!(
        message,
        "getMasterReplicationStatus must be executed on the controller of the master cluster. RefId:S01024"
    );

    // It really goes to the other data node: with that node down, the call fails.
    slave.kill9(&dn2);
    let (code, message) = refused(&s, &format!("select rpc('{dn2}', 'getNodeAlias')")).await;
    assert_eq!(code, "08006", "{message}");
    assert!(message.starts_with(&format!("rpc on {dn2}: ")), "{message}");
    assert_eq!(
        text(&s, "select rpc(getControllerAlias(), 'getControllerAlias')")
            .await
            .as_deref(),
        Some(ctl.as_str())
    );
}
