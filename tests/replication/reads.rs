//! Reads on a slave see a state the master had: a prefix of its commit order, even while the
//! tasks of a group (disjoint partitions) apply in parallel; and where that prefix ends is
//! shown on both sides.

use std::time::{Duration, Instant};

use super::common::wait_for;
use super::{master, master_tasks, slave_of, wait_for_role, TESTDB};

/// `replicatedTaskId` of testDB in `getClusterReplicationLag()`.
async fn replicated_task(c: &tokio_postgres::Client) -> Option<i64> {
    c.query(
        "select replicatedTaskId, replicatedTime from getClusterReplicationLag() where dbName = 'dfs://testDB'",
        &[],
    )
    .await
    .ok()?
    .first()
    .and_then(|r| {
        let time: Option<std::time::SystemTime> = r.get(1);
        r.get::<_, Option<i64>>(0).filter(|_| time.is_some())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_on_the_slave_sees_only_prefixes_of_the_masters_commits() {
    let master = master(true);
    let slave = slave_of(&master);
    let m = master.client(0).await;
    let s = slave.client(0).await;
    wait_for_role(&m).await;
    m.batch_execute(TESTDB).await.unwrap();
    m.batch_execute(
        r#"create table "dfs://testDB"."t2"(day DATE, id LONG, v DOUBLE) partitioned by day"#,
    )
    .await
    .unwrap();

    // Each transaction inserts the next id, in the next of eight partitions, into the two
    // tables in turn: consecutive ones touch disjoint partitions, share a group and (being of
    // different tables) apply in parallel on the slave, each in its own commit.
    // Written while the slave's replication is stopped, they arrive together and apply group
    // by group while the reader reads.
    const N: i64 = 200;
    wait_for("the slave to create testDB", || async {
        s.query_one(r#"select count(*) from "dfs://testDB"."t2""#, &[])
            .await
            .is_ok()
    })
    .await;
    s.batch_execute("select stopClusterReplication()")
        .await
        .unwrap();
    for id in 1..=N {
        let table = if id % 2 == 0 { "testTB" } else { "t2" };
        m.batch_execute(&format!(
            r#"insert into "dfs://testDB"."{table}" values (date '2023-01-0{}', {id}, {id})"#,
            1 + id % 8
        ))
        .await
        .unwrap();
    }
    s.batch_execute("select startClusterReplication()")
        .await
        .unwrap();
    // The reader's invariant: the ids it sees are 1..=k for some k (count = max).
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut reads = 0;
    let mut seen = 0;
    loop {
        let row = s
            .query_one(
                r#"select count(*), coalesce(max(id), 0) from
                     (select id from "dfs://testDB"."testTB" union all select id from "dfs://testDB"."t2")"#,
                &[],
            )
            .await;
        if let Ok(row) = row {
            let (count, max): (i64, i64) = (row.get(0), row.get(1));
            assert_eq!(
                count, max,
                "the slave showed {count} rows up to id {max}: a state the master never had"
            );
            assert!(max >= seen, "reads went back from {seen} to {max}");
            seen = max;
            reads += 1;
        }
        if seen == N {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the slave stopped at {seen} of {N}"
        );
    }
    assert!(reads > 10, "only {reads} reads");
    let groups: std::collections::BTreeSet<i64> =
        master_tasks(&m).await.iter().map(|t| t.group_id).collect();
    let tasks = master_tasks(&m).await.len();
    assert!(
        groups.len() < tasks,
        "the writes made groups of several tasks ({} groups of {tasks} tasks)",
        groups.len()
    );

    // Both sides show where the slave's reads are: the master's last task.
    let last = master_tasks(&m)
        .await
        .iter()
        .map(|t| t.task_id)
        .max()
        .unwrap();
    wait_for("the slave's read point to reach the last task", || async {
        replicated_task(&s).await == Some(last)
    })
    .await;
    wait_for("the master to learn the slave's read point", || async {
        replicated_task(&m).await == Some(last)
    })
    .await;
}
