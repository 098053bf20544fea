//! The queues' transitions, on the replication state alone.

use std::sync::Arc;

use super::*;

/// No databases: the transitions tested here do not look at them.
struct NoDatabases;

impl Databases for NoDatabases {
    fn replication(&self, _db: &str) -> Option<&DbReplication> {
        None
    }
    fn replicated(&self) -> Vec<&str> {
        Vec::new()
    }
}

fn ctx() -> Context<'static> {
    Context {
        now_ns: 0,
        data_nodes: 1,
        databases: &NoDatabases,
    }
}

fn chunks(tables: &[&str], partitions: &[&str]) -> Chunks {
    Chunks {
        ddl: false,
        tables: tables.iter().map(|s| s.to_string()).collect(),
        partitions: partitions.iter().map(|s| s.to_string()).collect(),
    }
}

fn task(c: Chunks) -> MasterTask {
    MasterTask {
        task_id: 0,
        tid: 1,
        group_id: 0,
        op: OpType::Append,
        submit_ns: 0,
        db: "dfs://d".into(),
        table: "t".into(),
        src: None,
        holders: Vec::new(),
        execution_set: 0,
        chunks: c,
        payload: TaskPayload::Append,
        rows: 0,
        truncated: false,
    }
}

#[test]
fn a_stopped_slave_records_no_pulled_task() {
    let mut m = Replication {
        role: Some(ReplicationRole::Slave),
        ..Replication::default()
    };
    let pulled = |id| PulledTask {
        task: MasterTask {
            task_id: id,
            ..task(chunks(&[], &["d/t/1"]))
        },
        src_addr: "127.0.0.1:1".into(),
        holder_addrs: Vec::new(),
    };
    m.record_pulled(&[pulled(1)], &ctx()).unwrap();
    m.set_slave_state(ReplicationState::Disabled).unwrap();
    // A pull that was under way when replication stopped.
    m.record_pulled(&[pulled(2)], &ctx()).unwrap();
    assert_eq!(m.slave.last_pulled, 1);
    assert_eq!(m.slave.tasks.len(), 1);
    // Pulled again after startClusterReplication().
    m.set_slave_state(ReplicationState::Enabled).unwrap();
    m.record_pulled(&[pulled(2)], &ctx()).unwrap();
    assert_eq!(m.slave.last_pulled, 2);
    assert_eq!(m.slave.tasks.len(), 2);
}

#[test]
fn tasks_share_a_group_until_they_touch_the_same_partition() {
    let mut q = MasterQueue::default();
    q.push(task(Chunks::ddl()));
    q.push(task(chunks(&[], &["d/t/1"])));
    q.push(task(chunks(&[], &["d/t/2"])));
    q.push(task(chunks(&[], &["d/t/2", "d/t/3"])));
    q.push(task(chunks(&["d/u"], &[])));
    q.push(task(chunks(&[], &["d/u/9"])));
    q.push(task(Chunks::ddl()));
    q.push(task(chunks(&[], &["d/t/1"])));
    let groups: Vec<u64> = q.tasks.values().map(|t| t.group_id).collect();
    assert_eq!(groups, [1, 2, 2, 3, 3, 4, 5, 6]);
    let ids: Vec<u64> = q.tasks.keys().copied().collect();
    assert_eq!(ids, (1..=8).collect::<Vec<_>>());
}

#[test]
fn a_task_is_truncated_once_every_slave_finished_it_and_at_most_so_many_are_kept() {
    let mut m = Replication {
        role: Some(ReplicationRole::Master),
        ..Replication::default()
    };
    m.slave_num = 2;
    let n = TRUNCATED_KEPT as u64 + 5;
    for _ in 0..n {
        m.master.push(task(chunks(&[], &["d/t/1"])));
    }
    let at = |finished| SlaveProgress {
        finished,
        ..SlaveProgress::default()
    };
    let truncated = |m: &Replication| -> Vec<u64> {
        let q = &m.master.tasks;
        q.values()
            .filter(|t| t.truncated)
            .map(|t| t.task_id)
            .collect()
    };
    m.record_slave("a", at(10), &ctx()).unwrap();
    assert_eq!(truncated(&m), (1..=10).collect::<Vec<_>>());
    // A second slave attaches behind: nothing more until it catches up.
    m.record_slave("b", at(3), &ctx()).unwrap();
    m.record_slave("a", at(20), &ctx()).unwrap();
    assert_eq!(truncated(&m), (1..=10).collect::<Vec<_>>());
    m.record_slave("b", at(15), &ctx()).unwrap();
    assert_eq!(truncated(&m), (1..=15).collect::<Vec<_>>());
    assert!(m.master.tasks[&15].chunks.partitions.is_empty());
    assert!(!m.master.tasks[&16].chunks.partitions.is_empty());
    // All finished: the oldest truncated tasks beyond the kept number are dropped.
    m.record_slave("a", at(n), &ctx()).unwrap();
    m.record_slave("b", at(n), &ctx()).unwrap();
    let q = &m.master.tasks;
    assert_eq!(q.len(), TRUNCATED_KEPT);
    assert_eq!(q.keys().next(), Some(&6));
    assert!(q.values().all(|t| t.truncated));
}

/// A slave that pulled tasks 1..=n, all waiting.
fn slave_with(n: u64) -> Replication {
    let mut m = Replication {
        role: Some(ReplicationRole::Slave),
        ..Replication::default()
    };
    let pulled: Vec<PulledTask> = (1..=n)
        .map(|id| PulledTask {
            task: MasterTask {
                task_id: id,
                ..task(chunks(&[], &["d/t/1"]))
            },
            src_addr: "127.0.0.1:1".into(),
            holder_addrs: Vec::new(),
        })
        .collect();
    m.record_pulled(&pulled, &ctx()).unwrap();
    m
}

#[test]
fn tasks_finish_together_or_not_at_all_and_at_most_so_many_are_kept() {
    let n = TRUNCATED_KEPT as u64 + 5;
    let mut m = slave_with(n);
    m.finish_tasks(&[1, 2], "dn1", &ctx()).unwrap();
    // Task 2 is finished already: 3 is not finished with it.
    assert!(matches!(
        m.finish_tasks(&[2, 3], "dn1", &ctx()),
        Err(ReplicationError::TaskDone { task_id: 2, .. })
    ));
    assert_eq!(m.slave.tasks[&3].state, TaskState::Waiting);
    let rest: Vec<u64> = (3..=n).collect();
    m.finish_tasks(&rest, "dn2", &ctx()).unwrap();
    let tasks = &m.slave.tasks;
    assert_eq!(tasks.len(), TRUNCATED_KEPT);
    assert_eq!(tasks.keys().next(), Some(&6));
    assert_eq!(tasks[&n].execution_node, "dn2");
}

#[test]
fn open_from_follows_the_first_unfinished_task() {
    let mut m = slave_with(6);
    assert_eq!(m.slave.open_from, 0);
    m.finish_tasks(&[2, 3], "dn1", &ctx()).unwrap();
    assert_eq!(m.slave.open_from, 1, "task 1 is still open");
    m.finish_tasks(&[1], "dn1", &ctx()).unwrap();
    assert_eq!(m.slave.open_from, 4);
    m.fail_task(4, "dn1", "no").unwrap();
    m.skip_tasks(&[5], &ctx()).unwrap();
    assert_eq!(m.slave.open_from, 4, "a failed task is open");
    m.skip_tasks(&[4, 6], &ctx()).unwrap();
    assert_eq!(m.slave.open_from, 7, "all finished: the next to be pulled");
    assert_eq!(m.slave.tasks.len(), 6, "finished tasks are kept");
}

/// The metadata is copied for every applied raft batch while readers hold the previous
/// version: the copy must share what the batch does not change, not clone it.
#[test]
fn a_metadata_copy_shares_the_tasks_a_change_leaves_alone() {
    let before = Arc::new(slave_with(1000));
    let mut after = before.clone();
    Arc::make_mut(&mut after)
        .finish_tasks(&[1], "dn1", &ctx())
        .unwrap();
    let (old, new) = (&before.slave.tasks, &after.slave.tasks);
    assert_eq!(old[&1].state, TaskState::Waiting);
    assert_eq!(new[&1].state, TaskState::Finished);
    for id in 2..=1000 {
        assert!(Arc::ptr_eq(&old[&id], &new[&id]), "task {id} was cloned");
    }
}

/// A master with `n` queued tasks, letting `slaves` slaves attach.
fn master_with(n: u64, slaves: u32) -> Replication {
    let mut m = Replication {
        role: Some(ReplicationRole::Master),
        slave_num: slaves,
        ..Replication::default()
    };
    for _ in 0..n {
        m.master.push(task(chunks(&[], &["d/t/1"])));
    }
    m
}

fn at(finished: u64) -> SlaveProgress {
    SlaveProgress {
        finished,
        ..SlaveProgress::default()
    }
}

fn truncated(m: &Replication) -> Vec<u64> {
    m.master
        .tasks
        .values()
        .filter(|t| t.truncated)
        .map(|t| t.task_id)
        .collect()
}

#[test]
fn a_removed_slave_no_longer_holds_back_truncation() {
    let mut m = master_with(10, 2);
    m.record_slave("b", at(2), &ctx()).unwrap();
    m.record_slave("a", at(8), &ctx()).unwrap();
    assert_eq!(truncated(&m), [1, 2]);
    m.apply(
        &ReplicationCommand::RemoveSlave { slave: "b".into() },
        &ctx(),
    )
    .unwrap();
    assert_eq!(truncated(&m), (1..=8).collect::<Vec<_>>());
    assert_eq!(
        m.remove_slave("b"),
        Err(ReplicationError::UnknownSlave("b".into()))
    );
    // Without slaves nothing is truncated: the tasks wait for the next one.
    m.remove_slave("a").unwrap();
    assert_eq!(truncated(&m), (1..=8).collect::<Vec<_>>());
    // Removed, it attaches again as a new slave, whatever it reports.
    m.record_slave("b", at(0), &ctx()).unwrap();
    assert_eq!(m.slaves["b"].finished, 0);
}

#[test]
fn a_slave_that_lost_truncated_tasks_is_refused_until_removed() {
    let mut m = master_with(10, 1);
    m.record_slave("a", at(6), &ctx()).unwrap();
    assert_eq!(m.master.truncated_through(), 6);
    // Behind what was recorded but not behind truncation: it may pull them again.
    m.record_slave("a", at(6), &ctx()).unwrap();
    // Rebuilt from an empty home: tasks 1..=6 are gone for it.
    let refused = m.record_slave("a", at(0), &ctx());
    assert!(matches!(
        refused,
        Err(ReplicationError::ProgressMismatch {
            reported: 0,
            recorded: 6,
            truncated: 6,
            ..
        })
    ));
    assert_eq!(m.slaves["a"].finished, 6, "a refused pull changes nothing");
    // A second slave is over clusterReplicationSlaveNum.
    assert_eq!(
        m.record_slave("b", at(0), &ctx()),
        Err(ReplicationError::TooManySlaves(1))
    );
    m.record_refusal("b", &at(0), "full", &ctx()).unwrap();
    m.record_refusal("a", &at(0), "lost", &ctx()).unwrap();
    assert_eq!(m.refused.len(), 2);
    m.remove_slave("a").unwrap();
    assert!(!m.refused.contains_key("a"));
    // The slot is free: b is admitted, and its refusal forgotten.
    m.record_slave("b", at(0), &ctx()).unwrap();
    assert!(m.refused.is_empty());
}

#[test]
fn refusals_kept_are_bounded() {
    let mut m = master_with(0, 0);
    for i in 0..REFUSED_KEPT as i64 + 3 {
        let ctx = Context { now_ns: i, ..ctx() };
        m.record_refusal(&format!("s{i}"), &at(0), "full", &ctx)
            .unwrap();
    }
    assert_eq!(m.refused.len(), REFUSED_KEPT);
    assert!(!m.refused.contains_key("s0"), "the oldest is dropped");
}

#[test]
fn skipping_a_task_the_slave_does_not_hold_is_refused_whole() {
    let mut m = slave_with(3);
    assert_eq!(
        m.skip_tasks(&[2, 99999], &ctx()),
        Err(ReplicationError::UnknownTasks { ids: vec![99999] })
    );
    assert_eq!(m.slave.tasks[&2].state, TaskState::Waiting);
    m.skip_tasks(&[2], &ctx()).unwrap();
    // A finished task held may be skipped again: nothing changes.
    m.skip_tasks(&[2], &ctx()).unwrap();
    assert_eq!(m.slave.tasks[&2].state, TaskState::Finished);
}

/// A slave with tasks of `ops` on database `d` (ids 1..), all waiting.
fn slave_of(ops: &[OpType]) -> Replication {
    let mut m = Replication {
        role: Some(ReplicationRole::Slave),
        ..Replication::default()
    };
    let pulled: Vec<PulledTask> = ops
        .iter()
        .enumerate()
        .map(|(i, op)| PulledTask {
            task: MasterTask {
                task_id: i as u64 + 1,
                op: *op,
                ..task(chunks(&[], &["d/t/1"]))
            },
            src_addr: String::new(),
            holder_addrs: Vec::new(),
        })
        .collect();
    m.record_pulled(&pulled, &ctx()).unwrap();
    m
}

#[test]
fn a_replica_is_read_only_until_the_master_ends_its_replication() {
    let db = "dfs://d";
    let mut m = slave_of(&[OpType::CreateDomain, OpType::DisableReplication]);
    assert!(m.check_not_replica(db).is_err());
    // Stopped, still refused: a client's write would diverge from the master.
    m.set_slave_state(ReplicationState::Disabled).unwrap();
    assert_eq!(
        m.check_not_replica(db),
        Err(ReplicationError::Replica(db.into()))
    );
    m.finish_tasks(&[1], "dn1", &ctx()).unwrap();
    assert!(m.check_not_replica(db).is_err());
    m.finish_tasks(&[2], "dn1", &ctx()).unwrap();
    assert_eq!(m.check_not_replica(db), Ok(()));

    // Dropped, then recreated before the drop ran here: the recreation keeps it replicated.
    let mut m = slave_of(&[OpType::DropDb, OpType::CreateDomain]);
    m.finish_tasks(&[1], "dn1", &ctx()).unwrap();
    assert!(m.check_not_replica(db).is_err());
    // A skipped drop releases it as well: the master no longer replicates it.
    let mut m = slave_of(&[OpType::Append, OpType::DropDb]);
    m.skip_tasks(&[1, 2], &ctx()).unwrap();
    assert_eq!(m.check_not_replica(db), Ok(()));
}
