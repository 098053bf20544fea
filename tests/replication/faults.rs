//! Replication through `kill -9`: of the slave's or the master's controller leader while the
//! master keeps committing, and of the master data node holding task data, with synchronous and with
//! asynchronous task data persistence; and task data that is late rather than lost.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::common::cluster::TestCluster;
use super::{
    content, master, master_tasks, slave_builder, slave_of, slave_task_states, wait_for,
    wait_for_content, wait_for_role, TESTDB, TWO_ROWS,
};

/// Tasks the slave finished (0 while its controllers cannot answer, e.g. during an
/// election).
async fn finished(s: &tokio_postgres::Client) -> usize {
    s.query_one(
        "select count(*) from getSlaveReplicationStatus() where state = 'FINISHED'",
        &[],
    )
    .await
    .map_or(0, |r| r.get::<_, i64>(0) as usize)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_slave_controller_leader_killed_mid_stream_loses_and_repeats_nothing() {
    leader_killed_mid_stream(Side::Slave).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_master_controller_leader_killed_mid_stream_loses_and_repeats_nothing() {
    leader_killed_mid_stream(Side::Master).await;
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Master,
    Slave,
}

/// Three controllers on `side`, one on the other; writers commit small transactions on the
/// master through both its data nodes while `side`'s controller leader is killed with
/// `kill -9` and later restarted. Replication goes on under the new leader (a slave follows
/// the master's leader change to another controller than the one configured), and in the
/// end the slave holds the master's rows, every task once.
async fn leader_killed_mid_stream(side: Side) {
    let controllers = |s: Side| if s == side { 3 } else { 1 };
    let mut master = TestCluster::builder()
        .prefix("m")
        .controllers(controllers(Side::Master))
        .datanodes(2)
        .cluster_cfg("clusterReplicationMode", "master")
        .cluster_cfg("clusterReplicationSyncPersistence", "true")
        .build();
    let mut slave = super::slave_builder(&master)
        .controllers(controllers(Side::Slave))
        .build();
    let m = master.client(0).await;
    let s = slave.client(0).await;
    wait_for_role(&m).await;
    m.batch_execute(TESTDB).await.unwrap();

    // Writers commit one small transaction after another, through both master data nodes,
    // recording the first id of each acknowledged one. While the master elects a leader its
    // writes fail; a failed one may still have committed, so only acknowledged ones count.
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(std::sync::Mutex::new(Vec::<i64>::new()));
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let (stop, acked) = (stop.clone(), acked.clone());
            let url = master.url(w);
            tokio::spawn(async move {
                let client = super::common::connect(&url).await.expect("connect");
                let mut i = w as i64;
                while !stop.load(Ordering::Relaxed) {
                    let r = client
                        .batch_execute(&format!(
                            r#"insert into "dfs://testDB"."testTB" values
                                 (date '2023-03-{:02}', {i}, {i}.5), (date '2023-04-{:02}', {}, 0.25)"#,
                            i % 28 + 1,
                            i % 28 + 1,
                            i + 1_000_000
                        ))
                        .await;
                    match r {
                        Ok(()) => acked.lock().unwrap().push(i),
                        Err(e) => {
                            assert!(side == Side::Master, "the master refused a write: {e}");
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    }
                    i += 2;
                }
            })
        })
        .collect();
    let acked_now = || acked.lock().unwrap().len();

    wait_for("the slave to replicate a few transactions", || async {
        finished(&s).await >= 15
    })
    .await;
    let killed_side = if side == Side::Master {
        &mut master
    } else {
        &mut slave
    };
    let leader = killed_side.leader().expect("a controller leader");
    let at_kill = finished(&s).await;
    let acked_at_kill = acked_now();
    killed_side.kill9(&leader);
    // A new leader takes over while the master keeps committing.
    wait_for("replication to continue under a new leader", || async {
        finished(&s).await >= at_kill + 15 && acked_now() > acked_at_kill
    })
    .await;
    let killed_side = if side == Side::Master {
        &mut master
    } else {
        &mut slave
    };
    let new_leader = killed_side.leader().expect("a new controller leader");
    assert_ne!(new_leader, leader);
    killed_side.start(&leader);
    wait_for("more transactions after the restart", || async {
        finished(&s).await >= at_kill + 30
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.expect("the writer");
    }

    let want = content(&m).await.unwrap();
    // No row twice (`content` is ordered by id), every acknowledged one there.
    assert!(
        want.windows(2).all(|w| w[0].0 < w[1].0),
        "the master's ids are unique"
    );
    let ids: std::collections::BTreeSet<i64> = want.iter().map(|r| r.0).collect();
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked
            .iter()
            .all(|i| ids.contains(i) && ids.contains(&(i + 1_000_000))),
        "an acknowledged transaction is missing on the master"
    );
    if side == Side::Slave {
        assert_eq!(want.len(), 2 * acked.len());
    }
    wait_for_content(&s, &want).await;
    // Every task once, finished: the slave's ids are the master's, without repeats.
    // CREATE_DOMAIN, CREATE_PARTITIONED_TABLE, then one APPEND per committed transaction.
    // The data node answering reads its copy of the controller's metadata, which may trail
    // the other writer's last commit for a moment.
    let n = want.len() / 2;
    wait_for("the master to list every task", || async {
        master_tasks(&m).await.len() >= 2 + n
    })
    .await;
    let tasks = master_tasks(&m).await;
    assert_eq!(tasks.len(), 2 + n);
    wait_for("every task to finish", || async {
        finished(&s).await == tasks.len()
    })
    .await;
    let ids: Vec<i64> = s
        .query(
            "select taskId from getSlaveReplicationStatus() order by taskId",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        ids,
        tasks.iter().map(|t| t.task_id).collect::<Vec<_>>(),
        "each task pulled once"
    );
    assert_eq!(content(&s).await.unwrap(), want);
}

/// What the test of a killed master data node leaves: the master, the slave, their clients
/// (the master's through its second data node) and the task id of the APPEND whose data the
/// killed node held.
struct Killed {
    master: TestCluster,
    _slave: TestCluster,
    m: tokio_postgres::Client,
    s: tokio_postgres::Client,
    task_id: i64,
    rows_lost_if_missing: Vec<(i64, String, f64)>,
}

/// Replicates a table, stops the slave, commits an APPEND through the master's first data
/// node with its asynchronous task data write held back (`task-data-async-persist`), kills
/// that node with SIGKILL as soon as the commit is acknowledged, restarts it, and starts the
/// slave again.
async fn kill_the_node_holding_task_data(sync_persistence: bool) -> Killed {
    let mut master = master(sync_persistence);
    let slave = slave_of(&master);
    let dn1 = master.datanodes()[0].clone();
    // The first data node holds back every asynchronous task data write for a minute.
    master.kill9(&dn1);
    master.start_with_env(
        &dn1,
        &[("PORPOISE_DELAY_AT", "task-data-async-persist:60000")],
    );
    let m = master.client(1).await;
    let s = slave.client(0).await;
    wait_for_role(&m).await;
    m.batch_execute(&[TESTDB, super::TWO_ROWS].concat())
        .await
        .unwrap();
    wait_for_content(&s, &content(&m).await.unwrap()).await;
    // The slave waits, so the task data is needed after the kill.
    s.batch_execute("select stopClusterReplication()")
        .await
        .unwrap();

    let m1 = master.client(0).await;
    m1.batch_execute(
        r#"insert into "dfs://testDB"."testTB" values
             (date '2023-01-03', 3, 3.5), (date '2023-01-04', 4, 4.5), (date '2023-01-05', 5, 5.5)"#,
    )
    .await
    .unwrap();
    drop(m1);
    let task = master_tasks(&m).await.last().cloned().unwrap();
    assert_eq!(task.op, "APPEND");
    assert_eq!(task.src, format!("127.0.0.1:{}", master.port(&dn1)));
    let task_file = master
        .home()
        .join(&dn1)
        .join("clusterReplication")
        .join(format!("{}.task", task.tid));
    assert_eq!(
        task_file.exists(),
        sync_persistence,
        "the task data file right after the commit"
    );
    master.kill9(&dn1);
    master.start(&dn1);
    assert_eq!(
        task_file.exists(),
        sync_persistence,
        "the task data file after the restart"
    );

    let rows_lost_if_missing = content(&m)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| (3..=5).contains(&r.0))
        .collect();
    s.batch_execute("select startClusterReplication()")
        .await
        .unwrap();
    Killed {
        master,
        _slave: slave,
        m,
        s,
        task_id: task.task_id,
        rows_lost_if_missing,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_sync_persistence_a_killed_master_data_node_loses_no_task_data() {
    let k = kill_the_node_holding_task_data(true).await;
    let want = content(&k.m).await.unwrap();
    assert_eq!(want.len(), 5);
    wait_for_content(&k.s, &want).await;
    wait_for("every task to finish", || async {
        let states = slave_task_states(&k.s).await;
        states.len() == 4 && states.iter().all(|t| t.1 == "FINISHED")
    })
    .await;
    let details = slave_task_states(&k.s).await;
    assert_eq!(details[3].0, "APPEND");
    assert_eq!(details[3].2, "", "applied, not skipped");
    wait_for("the master to truncate", || async {
        master_tasks(&k.m).await.iter().all(|t| t.truncated)
    })
    .await;
    drop(k.master);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_async_persistence_lost_task_data_fails_the_task_until_it_is_skipped() {
    let k = kill_the_node_holding_task_data(false).await;
    let id = k.task_id;
    wait_for("the task to fail for its missing data", || async {
        slave_task_states(&k.s)
            .await
            .get(id as usize - 1)
            .is_some_and(|t| t.1 == "FAILED" && t.2.contains("Missing taskData"))
    })
    .await;
    let (_, _, details) = slave_task_states(&k.s).await[id as usize - 1].clone();
    assert!(details.contains("RefId:S01040"), "{details}");

    // The operator accepts the loss: stop, skip, start. Later tasks replicate again.
    k.s.batch_execute(&format!(
        "select stopClusterReplication(); select skipClusterReplicationTask({id}); select startClusterReplication();"
    ))
    .await
    .unwrap();
    k.m.batch_execute(r#"insert into "dfs://testDB"."testTB" values (date '2023-01-06', 6, 6.5)"#)
        .await
        .unwrap();
    let master_rows = content(&k.m).await.unwrap();
    assert_eq!(master_rows.len(), 6);
    let want: Vec<_> = master_rows
        .into_iter()
        .filter(|r| !k.rows_lost_if_missing.contains(r))
        .collect();
    assert_eq!(want.len(), 3);
    wait_for_content(&k.s, &want).await;
    let states = slave_task_states(&k.s).await;
    assert_eq!(states.len(), 5, "{states:?}");
    assert!(states.iter().all(|t| t.1 == "FINISHED"), "{states:?}");
    assert!(
        states[id as usize - 1].2.contains("skipped"),
        "{:?}",
        states[id as usize - 1]
    );
    wait_for("the master to truncate", || async {
        master_tasks(&k.m).await.iter().all(|t| t.truncated)
    })
    .await;
}

/// A master INSERT whose commit the controller applied but never answered (it crashed, and
/// stayed down past the data node's write deadline) is in doubt for its client (08007). With
/// asynchronous task data persistence its data node keeps the task data until it learns the
/// outcome, then writes it: the slave gets the rows, not "Missing taskData".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_in_doubt_commit_that_went_through_keeps_its_task_data() {
    let mut master = master(false);
    let (_slave, m, s) = super::slave_with_two_rows(&master).await;
    wait_for_content(&s, &content(&m).await.unwrap()).await;
    let ctl = master.controllers()[0].clone();
    master.kill9(&ctl);
    master.start_with_env(&ctl, &[("PORPOISE_CRASH_AT", "ctl-commit-applied")]);
    let err = m
        .batch_execute(
            r#"insert into "dfs://testDB"."testTB" values (date '2023-01-03', 3, 3.5), (date '2023-01-04', 4, 4.5)"#,
        )
        .await
        .expect_err("the controller crashed before answering the commit");
    assert_eq!(
        err.code(),
        Some(&tokio_postgres::error::SqlState::TRANSACTION_RESOLUTION_UNKNOWN),
        "{err:?}"
    );
    master.kill9(&ctl); // reaps it
    master.start(&ctl);
    // It committed: the master shows its rows once its data node settled it, and the slave
    // applies the task with them.
    wait_for("the master to show the settled INSERT", || async {
        content(&m).await.is_ok_and(|rows| rows.len() == 4)
    })
    .await;
    wait_for_content(&s, &content(&m).await.unwrap()).await;
    let states = slave_task_states(&s).await;
    assert!(
        states.iter().all(|t| t.1 == "FINISHED" && t.2.is_empty()),
        "{states:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_data_still_being_written_is_late_not_missing() {
    // Every asynchronous task data write on the master takes 3 s more; the slave asks at once.
    let master = super::master_builder(false)
        .env("PORPOISE_DELAY_AT", "task-data-async-persist:3000")
        .build();
    let (_slave, m, s) = super::slave_with_two_rows(&master).await;
    // While the data is on its way (S01044) the task is late, not failed: it never shows
    // FAILED, nor "Missing taskData", which tells an operator to skip the task and lose its
    // rows; once the data is persisted it finishes.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen_running = false;
    loop {
        let states = slave_task_states(&s).await;
        if let Some((op, state, details)) = states.get(2) {
            assert_eq!(op, "APPEND");
            assert!(
                state != "FAILED" && details.is_empty(),
                "{state}: {details}"
            );
            seen_running |= state == "EXECUTING";
            if state == "FINISHED" {
                break;
            }
        }
        assert!(Instant::now() < deadline, "the APPEND never finished");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        seen_running,
        "the APPEND was sent before its data was persisted"
    );
    wait_for_content(&s, &content(&m).await.unwrap()).await;
}

/// The master data node holding a task's data is down for longer than the slave's 30 tries:
/// the task could not be tried, which is no failure of the task, so replication does not
/// stop; it finishes the task once the node is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_data_node_down_for_long_does_not_stop_replication() {
    let mut master = master(true);
    let dn1 = master.datanodes()[0].clone();
    let (slave, m1, s) = super::slave_with_two_rows(&master).await;
    wait_for_content(&s, &content(&m1).await.unwrap()).await;
    s.batch_execute("select stopClusterReplication()")
        .await
        .unwrap();
    // Through the first data node, which keeps the task data.
    m1.batch_execute(r#"insert into "dfs://testDB"."testTB" values (date '2023-01-03', 3, 3.5)"#)
        .await
        .unwrap();
    drop(m1);
    let m = master.client(1).await;
    let task = master_tasks(&m).await.last().cloned().unwrap();
    assert_eq!(task.src, format!("127.0.0.1:{}", master.port(&dn1)));
    master.kill9(&dn1);
    s.batch_execute("select startClusterReplication()")
        .await
        .unwrap();

    // Every try is logged by the slave's controller; wait for more than 30.
    let ctl = slave.controllers()[0].clone();
    let tries = || {
        slave
            .log(&ctl)
            .lines()
            .filter(|l| l.contains("cannot run replication tasks now"))
            .count()
    };
    slave.wait_until("40 tries of the task", Duration::from_secs(60), || {
        tries() >= 40
    });
    let states = slave_task_states(&s).await;
    let last = states.last().unwrap();
    assert_ne!(last.1, "FAILED", "{states:?}");
    assert_eq!(last.2, "", "no failure recorded: {states:?}");
    assert_ne!(super::slave_status(&s).await, "STOPPED");

    master.start(&dn1);
    let want = content(&m).await.unwrap();
    assert_eq!(want.len(), 3);
    wait_for_content(&s, &want).await;
    wait_for("the task to finish", || async {
        slave_task_states(&s)
            .await
            .last()
            .is_some_and(|t| t.1 == "FINISHED")
    })
    .await;
}

/// The slave's controller dies while a slave data node is between preparing and committing
/// a replicated UPDATE, so the call that runs the task is cut off. The commit still runs to
/// its end: nothing stays prepared and claimed, and the task finishes once the controller is
/// back (a commit dropped halfway left the rows claimed for good, and the task failed until
/// replication stopped).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_whose_caller_went_away_still_completes() {
    let master = master(true);
    let (mut slave, m, s) = super::slave_with_two_rows(&master).await;
    wait_for_content(&s, &content(&m).await.unwrap()).await;
    // Every slave data node now waits 3 s between preparing and committing.
    for dn in slave.datanodes() {
        slave.kill9(&dn);
        slave.start_with_env(&dn, &[("PORPOISE_DELAY_AT", "txn-prepared:3000")]);
    }
    let s = slave.client(0).await;
    m.batch_execute(r#"update "dfs://testDB"."testTB" set v = -1"#)
        .await
        .unwrap();
    let delayed = |slave: &TestCluster| {
        slave
            .datanodes()
            .iter()
            .any(|dn| slave.log(dn).contains("delay point txn-prepared reached"))
    };
    slave.wait_until(
        "a slave data node to prepare the UPDATE",
        Duration::from_secs(60),
        || delayed(&slave),
    );
    let ctl = slave.controllers()[0].clone();
    slave.kill9(&ctl);
    slave.start(&ctl);

    let want = content(&m).await.unwrap();
    assert!(want.iter().all(|r| r.2 == -1.0));
    wait_for_content(&s, &want).await;
    wait_for("every task to finish", || async {
        let states = slave_task_states(&s).await;
        !states.is_empty() && states.iter().all(|t| t.1 == "FINISHED")
    })
    .await;
}

/// A data node sees the slave's metadata changes a little after the controller: a task must
/// not run there before the node has seen what earlier groups did (the table an APPEND goes
/// to, created by the task before it). It used to fail with "table does not exist" until the
/// node caught up, each try counting against the task.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_waits_for_its_data_node_to_see_the_ddl_before_it() {
    let master = master(true);
    let slave = slave_builder(&master)
        .env("PORPOISE_DELAY_AT", "metadata-received:1000")
        .build();
    let m = master.client(0).await;
    let s = slave.client(0).await;
    wait_for_role(&m).await;
    m.batch_execute(TESTDB).await.unwrap();
    m.batch_execute(TWO_ROWS).await.unwrap();
    let want = content(&m).await.unwrap();
    wait_for_content(&s, &want).await;
    let states = slave_task_states(&s).await;
    assert!(states.iter().all(|t| t.1 == "FINISHED"), "{states:?}");
    let log = slave.log(&slave.controllers()[0]);
    assert!(
        !log.contains("Failed to execute task"),
        "a task failed:\n{log}"
    );
}
