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
    fn catalog(&self, _db: &str) -> Option<SeedCatalog> {
        None
    }
}

fn ctx() -> Context<'static> {
    Context {
        now_ns: 0,
        index: 0,
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
        commit_index: 0,
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
    m.record_pulled(&[pulled(1)], &[], None, &ctx()).unwrap();
    m.set_slave_state(ReplicationState::Disabled).unwrap();
    // A pull that was under way when replication stopped.
    m.record_pulled(&[pulled(2)], &[], None, &ctx()).unwrap();
    assert_eq!(m.slave.last_pulled, 1);
    assert_eq!(m.slave.tasks.len(), 1);
    // Pulled again after startClusterReplication().
    m.set_slave_state(ReplicationState::Enabled).unwrap();
    m.record_pulled(&[pulled(2)], &[], None, &ctx()).unwrap();
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
    let n = TRUNCATED_KEPT as u64 + 5;
    let mut m = master_with_slaves(n, &["a", "b"]);
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
    m.record_slave("b", at(10), &ctx()).unwrap();
    m.record_slave("a", at(10), &ctx()).unwrap();
    assert_eq!(truncated(&m), (1..=10).collect::<Vec<_>>());
    // The second slave falls behind: nothing more until it catches up.
    m.record_slave("b", at(10), &ctx()).unwrap();
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
    m.record_pulled(&pulled, &[], None, &ctx()).unwrap();
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
    assert_eq!(m.slave.open_from, 1);
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

/// A master whose slaves `names` attached before any task was queued, with `n` tasks.
fn master_with_slaves(n: u64, names: &[&str]) -> Replication {
    let mut m = master_with(0, names.len() as u32);
    for name in names {
        m.record_slave(name, at(0), &ctx()).unwrap();
    }
    for _ in 0..n {
        m.master.push(task(chunks(&[], &["d/t/1"])));
    }
    m
}

#[test]
fn a_removed_slave_no_longer_holds_back_truncation() {
    let mut m = master_with_slaves(10, &["a", "b"]);
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
    // Removed, it attaches again as a new slave: it starts after the last task, seeded with
    // what came before.
    m.record_slave("b", at(0), &ctx()).unwrap();
    assert_eq!(m.slaves["b"].start_after, 10);
    assert_eq!(truncated(&m), (1..=10).collect::<Vec<_>>());
}

#[test]
fn a_slave_that_lost_truncated_tasks_is_started_afresh() {
    let mut m = master_with_slaves(10, &["a"]);
    m.record_slave("a", at(6), &ctx()).unwrap();
    assert_eq!(m.master.truncated_through(), 6);
    // Behind what was recorded but not behind truncation: it may pull them again.
    m.record_slave("a", at(6), &ctx()).unwrap();
    assert_eq!(m.slaves["a"].start_after, 0);
    // Rebuilt from an empty home: tasks 1..=6 are gone for it. It starts after task 10, and
    // its cuts bring it the rest.
    m.record_slave("a", at(0), &ctx()).unwrap();
    assert_eq!(m.slaves["a"].start_after, 10);
    assert_eq!(m.master.truncated_through(), 10);
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

/// One replicated database, `d`, with one table `t`.
struct OneDatabase(DbReplication);

impl Databases for OneDatabase {
    fn replication(&self, db: &str) -> Option<&DbReplication> {
        (db == "d").then_some(&self.0)
    }
    fn replicated(&self) -> Vec<&str> {
        vec!["d"]
    }
    fn catalog(&self, db: &str) -> Option<SeedCatalog> {
        (db == "d").then(|| SeedCatalog {
            def: crate::catalog::DatabaseDef {
                name: "d".into(),
                id: 1,
                levels: Vec::new(),
                engine: "OLAP".into(),
                owner: "admin".into(),
                created_ms: 0,
                placement: Vec::new(),
            },
            tables: vec![crate::catalog::TableDef {
                name: "t".into(),
                id: 7,
                columns: Vec::new(),
                partition_columns: Vec::new(),
                sort_columns: Vec::new(),
                next_column_id: 0,
                generation: 2,
                owner: "admin".into(),
                created_ms: 0,
            }],
        })
    }
}

#[test]
fn a_new_slave_gets_a_cut_that_pins_files_until_it_reports_it_installed() {
    let dbs = OneDatabase(DbReplication::default());
    let ctx = Context {
        index: 40,
        databases: &dbs,
        ..ctx()
    };
    // While the queue holds every database's history, a new slave replays it.
    let mut m = master_with(5, 1);
    m.record_slave("a", at(0), &ctx).unwrap();
    assert!(m.cuts.is_empty());
    assert_eq!(m.slaves["a"].start_after, 0);
    // Once it does not, a new slave is seeded.
    let mut m = master_with(5, 1);
    m.master.incomplete = true;
    m.record_slave("a", at(0), &ctx).unwrap();
    let cut = m.cuts["a"]["d"].clone();
    assert_eq!((cut.task_id, cut.commit_index), (5, 40));
    assert_eq!(m.pinned_indexes(), [40].into());
    assert_eq!(m.pinned_tables(), [(7, 2)].into());
    assert!(m.cut_reads(Some("a"), 40, (7, 2)));
    assert!(!m.cut_reads(Some("b"), 40, (7, 2)), "another slave's cut");
    assert!(!m.cut_reads(Some("a"), 39, (7, 2)));
    assert!(!m.cut_reads(Some("a"), 40, (8, 0)));
    // Not installed yet: still pending.
    m.record_slave("a", at(5), &ctx).unwrap();
    assert!(m.cuts.contains_key("a"));
    // A cut is known by the master's log index it was taken at.
    let installed = SlaveProgress {
        seeded: [("d".to_string(), 40)].into(),
        ..at(5)
    };
    m.record_slave("a", installed.clone(), &ctx).unwrap();
    assert!(m.cuts.is_empty());
    assert!(m.pinned_indexes().is_empty());
    // The master index a slave's read point stands for stays readable for its checks.
    let reading = SlaveProgress {
        replicated: [(
            "d".to_string(),
            ReadPoint {
                task_id: 5,
                master_ns: 0,
                index: 7,
                master_index: 45,
            },
        )]
        .into(),
        ..installed
    };
    m.record_slave("a", reading, &ctx).unwrap();
    assert_eq!(m.pinned_indexes(), [45].into());
    // Switching replication on again cuts for every attached slave.
    m.cut_for_slaves("d", &Context { index: 50, ..ctx });
    assert_eq!(m.cuts["a"]["d"].commit_index, 50);
    m.remove_slave("a").unwrap();
    assert!(m.cuts.is_empty());
}

#[test]
fn a_slave_covers_the_tasks_of_a_seed_and_holds_the_later_ones_until_it_is_installed() {
    let dbs = OneDatabase(DbReplication::default());
    let ctx = Context {
        databases: &dbs,
        ..ctx()
    };
    let mut s = Replication {
        role: Some(ReplicationRole::Slave),
        ..Replication::default()
    };
    let pull = |ids: std::ops::RangeInclusive<u64>| -> Vec<PulledTask> {
        ids.map(|id| PulledTask {
            task: MasterTask {
                task_id: id,
                db: "d".into(),
                ..task(chunks(&[], &["d/t/1"]))
            },
            src_addr: "127.0.0.1:1".into(),
            holder_addrs: Vec::new(),
        })
        .collect()
    };
    s.record_pulled(&pull(1..=2), &[], None, &ctx).unwrap();
    let cut = SeedCut {
        db: "d".into(),
        task_id: 3,
        commit_index: 9,
        cut_ns: 0,
        catalog: dbs.catalog("d").unwrap(),
        repair: None,
    };
    let seed = PulledSeed {
        cut,
        nodes: vec!["m:1".into()],
    };
    s.record_pulled(&pull(3..=4), std::slice::from_ref(&seed), None, &ctx)
        .unwrap();
    let state = |s: &Replication, id: u64| s.slave.tasks[&id].state;
    for id in 1..=3 {
        assert_eq!(
            state(&s, id),
            TaskState::Finished,
            "task {id} is in the seed"
        );
    }
    assert_eq!(state(&s, 4), TaskState::Waiting);
    assert!(s.seeding("d"));
    assert!(
        s.check_not_replica("d").is_err(),
        "clients may not write it"
    );
    assert_eq!(s.finished_watermark(), 3);
    // Sent again with the next pull: recorded once.
    s.record_pulled(&[], std::slice::from_ref(&seed), None, &ctx)
        .unwrap();
    assert_eq!(s.slave.seeds["d"].state, SeedState::Waiting);
    // Done only once every table is in.
    assert!(matches!(
        s.seed_done("d", 3, &ctx),
        Err(ReplicationError::SeedIncomplete { .. })
    ));
    s.seed_started("d", 3).unwrap();
    let step = SeedStep {
        db: "d".into(),
        cut_task: 3,
        table: "t".into(),
        partitions: 2,
        bytes: 100,
        rows: 10,
    };
    s.seed_step(&step).unwrap();
    assert!(
        s.seed_step(&step).is_err(),
        "a table is installed once: a second commit is refused"
    );
    s.seed_done("d", 3, &ctx).unwrap();
    assert!(!s.seeding("d"));
    assert_eq!(s.seeded(), [("d".to_string(), 9)].into());
    assert_eq!(s.slave.seeds["d"].rows_done, 10);
    // A new slave's start: every task up to it is covered.
    s.record_pulled(&pull(5..=6), &[], Some(8), &ctx).unwrap();
    assert_eq!(s.slave.last_pulled, 8);
    assert_eq!(s.finished_watermark(), 8);
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
    m.record_pulled(&pulled, &[], None, &ctx()).unwrap();
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

#[test]
fn a_database_reads_at_the_last_prefix_of_its_tasks_that_is_finished() {
    let mut m = slave_with(4);
    m.slave.databases.insert("dfs://d".into());
    let at = |index| Context { index, ..ctx() };
    let point = |m: &Replication| {
        m.slave
            .read_points
            .get("dfs://d")
            .map(|p| (p.task_id, p.index))
    };
    assert_eq!(m.read_index("dfs://d"), Ok(None));
    // Task 2 before task 1: the master never had 2 without 1.
    m.finish_tasks(&[2], "dn1", &at(10)).unwrap();
    assert_eq!(point(&m), None);
    m.finish_tasks(&[1], "dn1", &at(11)).unwrap();
    assert_eq!(point(&m), Some((2, 11)));
    m.finish_tasks(&[4], "dn1", &at(12)).unwrap();
    assert_eq!(point(&m), Some((2, 11)), "task 3 is still open");
    assert_eq!(m.read_index("dfs://d"), Ok(Some(11)));
    assert_eq!(
        m.pinned_indexes(),
        [11].into(),
        "the read point's files are kept"
    );
    m.skip_tasks(&[3], &at(13)).unwrap();
    assert_eq!(point(&m), Some((4, 13)));
    // Another database is read at the latest index.
    assert_eq!(m.read_index("dfs://other"), Ok(None));
}

#[test]
fn a_repair_runs_the_tasks_up_to_its_cut_first_and_replaces_only_its_partitions() {
    let dbs = OneDatabase(DbReplication::default());
    let ctx = Context {
        index: 20,
        databases: &dbs,
        ..ctx()
    };
    let mut s = Replication {
        role: Some(ReplicationRole::Slave),
        ..Replication::default()
    };
    let pull = |ids: std::ops::RangeInclusive<u64>, partition: &str| -> Vec<PulledTask> {
        ids.map(|id| PulledTask {
            task: MasterTask {
                task_id: id,
                db: "d".into(),
                ..task(chunks(&[], &[&format!("d/t/{partition}")]))
            },
            src_addr: "127.0.0.1:1".into(),
            holder_addrs: Vec::new(),
        })
        .collect()
    };
    s.record_pulled(&pull(1..=2, "1"), &[], None, &ctx).unwrap();
    let one = |p: &str| -> Scope {
        [(
            "t".to_string(),
            TableScope::Partitions([p.to_string()].into()),
        )]
        .into()
    };
    // Only databases replicated here may be repaired.
    assert_eq!(
        s.request_repair("e", &one("1"), &ctx),
        Err(ReplicationError::NotReplicated("e".into()))
    );
    // A skipped task leaves its partition diverged.
    s.skip_tasks(&[1], &ctx).unwrap();
    assert_eq!(s.slave.diverged["d"], one("1"));
    s.request_repair("d", &one("1"), &ctx).unwrap();
    s.request_repair("d", &one("2"), &Context { index: 21, ..ctx })
        .unwrap();
    let asked = s.slave.repairs["d"].clone();
    assert_eq!(
        asked.id, 21,
        "a second request joins the first and replaces its id"
    );
    assert_eq!(
        asked.tables["t"],
        TableScope::Partitions(["1".to_string(), "2".to_string()].into())
    );

    // The master cuts for it once, and a pending whole seed answers it already.
    let mut m = master_with(4, 1);
    let progress = SlaveProgress {
        repairs: s.slave.repairs.clone(),
        ..at(0)
    };
    m.record_slave("a", progress.clone(), &Context { index: 40, ..ctx })
        .unwrap();
    let cut = m.cuts["a"]["d"].clone();
    assert_eq!((cut.task_id, cut.commit_index), (4, 40));
    assert_eq!(cut.repair.as_ref(), Some(&asked));
    m.record_slave("a", progress.clone(), &Context { index: 41, ..ctx })
        .unwrap();
    assert_eq!(m.cuts["a"]["d"].commit_index, 40, "answered once");
    let mut whole = master_with(4, 1);
    whole.record_slave("a", at(0), &ctx).unwrap();
    whole.cut_for_slaves("d", &Context { index: 30, ..ctx });
    whole
        .record_slave("a", progress, &Context { index: 42, ..ctx })
        .unwrap();
    assert!(
        whole.cuts["a"]["d"].repair.is_none(),
        "the whole seed stays"
    );

    // On the slave the repair covers nothing: tasks up to its cut run first, later ones wait.
    let seed = PulledSeed {
        cut: SeedCut::clone(&cut),
        nodes: vec!["m:1".into()],
    };
    s.record_pulled(&pull(3..=5, "2"), std::slice::from_ref(&seed), None, &ctx)
        .unwrap();
    assert!(s.slave.repairs.is_empty(), "the cut answers the request");
    assert_eq!(s.slave.tasks[&2].state, TaskState::Waiting);
    assert!(s.seeding("d"), "not readable while it is repaired");
    assert!(!s.held_by_seed("d", 4));
    assert!(s.held_by_seed("d", 5));
    assert!(!s.seed_ready("d"), "tasks 2 to 4 are not applied yet");
    s.skip_tasks(&[2, 3], &ctx).unwrap();
    assert!(!s.seed_ready("d"));
    s.skip_tasks(&[4], &ctx).unwrap();
    assert!(s.seed_ready("d"));
    assert!(s.slave.read_points.get("d").is_none_or(|p| p.task_id < 4));

    // Installed: only its tables count, the database reads at the cut, and what it replaced
    // is no longer diverged (task 4's partition 2 was in it; nothing else was skipped).
    s.seed_started("d", 4).unwrap();
    s.seed_step(&SeedStep {
        db: "d".into(),
        cut_task: 4,
        table: "t".into(),
        partitions: 2,
        bytes: 10,
        rows: 1,
    })
    .unwrap();
    s.seed_done("d", 4, &Context { index: 50, ..ctx }).unwrap();
    assert_eq!(s.slave.read_points["d"].task_id, 4);
    assert_eq!(s.slave.read_points["d"].master_index, 40);
    assert!(s.slave.diverged.is_empty(), "{:?}", s.slave.diverged);
    assert_eq!(s.seeded(), [("d".to_string(), 40)].into());
    assert!(!s.held_by_seed("d", 5));

    // A repair that cannot be installed is given up: the later tasks run again, and what it
    // was to replace stays diverged.
    s.skip_tasks(&[5], &ctx).unwrap();
    s.request_repair("d", &one("2"), &Context { index: 60, ..ctx })
        .unwrap();
    let seed = PulledSeed {
        cut: SeedCut {
            task_id: 5,
            commit_index: 70,
            repair: Some(s.slave.repairs["d"].clone()),
            ..SeedCut::clone(&cut)
        },
        nodes: vec!["m:1".into()],
    };
    s.record_pulled(&[], std::slice::from_ref(&seed), None, &ctx)
        .unwrap();
    assert!(s.held_by_seed("d", 6));
    assert!(
        s.abandon_repair("d", 4, "stale", &ctx).is_err(),
        "only the pending repair"
    );
    s.abandon_repair("d", 5, "table t differs", &Context { index: 80, ..ctx })
        .unwrap();
    assert!(!s.seeding("d") && !s.held_by_seed("d", 6));
    assert_eq!(s.slave.seeds["d"].error, "abandoned: table t differs");
    assert_eq!(s.slave.read_points["d"].task_id, 5);
    assert_eq!(s.slave.diverged["d"], one("2"), "still diverged");
    assert_eq!(
        s.seeded(),
        [("d".to_string(), 70)].into(),
        "the master may drop the cut"
    );
}
