//! A slave applies consecutive APPEND tasks of a table together, in one transaction, and
//! falls back to one task at a time when such a batch fails, so the failure lands on the task
//! that caused it.

use super::*;

/// (taskId, state, details, finishTime as text, executionNode) of the slave's APPEND tasks.
async fn appends(s: &tokio_postgres::Client) -> Vec<(i64, String, String, String, String)> {
    s.query(
        "select taskId, state, details, cast(finishTime as varchar), executionNode \
         from getSlaveReplicationStatus() where operationType = 'APPEND' order by taskId",
        &[],
    )
    .await
    .expect("getSlaveReplicationStatus")
    .iter()
    .map(|r| {
        (
            r.get(0),
            r.get(1),
            r.get(2),
            r.get::<_, Option<String>>(3).unwrap_or_default(),
            r.get(4),
        )
    })
    .collect()
}

/// Ten one-row INSERTs into the same partition: ten APPEND tasks, each in a group of its own.
async fn ten_inserts(m: &tokio_postgres::Client, first_id: i64) {
    let sql: String = (first_id..first_id + 10)
        .map(|id| {
            format!(r#"insert into "dfs://testDB"."testTB" values (date '2023-05-01', {id}, 1.5);"#)
        })
        .collect();
    m.batch_execute(&sql).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_apply_together_and_a_failing_one_is_singled_out() {
    let master = master(true);
    let slave = slave_of(&master);
    let m = master.client(0).await;
    let s = slave.client(0).await;
    wait_for_role(&m).await;
    m.batch_execute(TESTDB).await.unwrap();
    wait_for("the tables on the slave", || async {
        let tasks = slave_task_states(&s).await;
        tasks.len() == 2 && tasks.iter().all(|(_, state, _)| state == "FINISHED")
    })
    .await;

    // Pulling stopped, ten APPEND tasks wait on the master; started again, the slave pulls
    // them at once and applies them in one transaction: one finish time, one node.
    s.batch_execute("select stopClusterReplication()")
        .await
        .unwrap();
    ten_inserts(&m, 1).await;
    let groups: std::collections::BTreeSet<i64> = master_tasks(&m)
        .await
        .iter()
        .filter(|t| t.op == "APPEND")
        .map(|t| t.group_id)
        .collect();
    assert_eq!(
        groups.len(),
        10,
        "each insert conflicts with the one before"
    );
    s.batch_execute("select startClusterReplication()")
        .await
        .unwrap();
    let want = content(&m).await.unwrap();
    assert_eq!(want.len(), 10);
    wait_for_content(&s, &want).await;
    let done = appends(&s).await;
    assert_eq!(done.len(), 10);
    assert!(done.iter().all(|t| t.1 == "FINISHED"), "{done:?}");
    assert!(
        done.iter().all(|t| t.3 == done[0].3 && t.4 == done[0].4),
        "the ten tasks finished in one transaction on one node: {done:?}"
    );

    // Ten more, the task data of the fourth gone from the master: the batch fails, its tasks
    // run one by one, and only the fourth is FAILED, with the reason.
    s.batch_execute("select stopClusterReplication()")
        .await
        .unwrap();
    ten_inserts(&m, 11).await;
    let tasks = master_tasks(&m).await;
    let lost = tasks
        .iter()
        .filter(|t| t.op == "APPEND")
        .nth(13)
        .expect("the fourth new APPEND")
        .clone();
    let file = master
        .datanodes()
        .iter()
        .map(|dn| {
            master
                .home()
                .join(dn)
                .join("clusterReplication")
                .join(format!("{}.task", lost.tid))
        })
        .find(|p| p.exists())
        .expect("the task data file on the master");
    std::fs::remove_file(&file).unwrap();
    s.batch_execute("select startClusterReplication()")
        .await
        .unwrap();
    wait_for("the three tasks before the lost one", || async {
        let t = appends(&s).await;
        t.len() == 20
            && t[10..13].iter().all(|t| t.1 == "FINISHED")
            && t[13].1 == "FAILED"
            && t[13].2.contains("Missing taskData")
    })
    .await;
    let t = appends(&s).await;
    assert_eq!(t[13].0, lost.task_id);
    assert!(
        t[14..].iter().all(|t| t.1 == "WAITING" && t.2.is_empty()),
        "later tasks wait and carry no failure of the batch: {t:?}"
    );

    // Skipped, the rest follow; the lost task's row is the only one missing.
    let id = lost.task_id;
    s.batch_execute(&format!(
        "select stopClusterReplication(); select skipClusterReplicationTask({id}); select startClusterReplication();"
    ))
    .await
    .unwrap();
    let want: Vec<_> = content(&m)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.0 != 14)
        .collect();
    assert_eq!(want.len(), 19);
    wait_for_content(&s, &want).await;
    let t = appends(&s).await;
    assert!(t.iter().all(|t| t.1 == "FINISHED"), "{t:?}");
    assert!(t[13].2.contains("skipped"), "{:?}", t[13]);
}
