//! The slave controller's scheduler (every controller runs it; only the leader acts): for
//! each execution queue, runs the tasks of its first unfinished group, in parallel, on the
//! queue's data node (`repl.apply`, [`super::apply`]), consecutive APPEND tasks of one table
//! together in one transaction (see [`runnable`]); a failed task is recorded and retried until
//! it has failed [`MAX_ATTEMPTS`] times, when the state becomes STOPPED and only
//! `startClusterReplication()` resumes. Later groups of a queue wait for earlier ones.
//!
//! Queues are mapped onto the data nodes registered now (queue id modulo their number), so a
//! data node that joins takes queues too.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::IDLE;
use crate::catalog::fnv1a;
use crate::controller::client::MetadataView;
use crate::controller::metadata::Command;
use crate::controller::raft::RaftController;
use crate::replication::model::{
    OpType, Replication, ReplicationCommand, ReplicationRole, ReplicationState, SeedState,
    SlaveTask, TaskState, MAX_ATTEMPTS,
};
use crate::replication::protocol::{
    is_pending_error, Applied, ApplyRequest, SeedRequest, APPLY, APPLY_TIMEOUT, SEED,
    SEED_BUSY_SQLSTATE, SEED_TIMEOUT,
};
use crate::rpc::client::Peers;
use crate::rpc::RpcError;
use crate::sqlstate::{ErrorCode, SqlState};

/// How long a failed task waits before it runs again.
const RETRY_AFTER: Duration = Duration::from_millis(250);

/// At most this many APPEND tasks, and this many rows, are applied in one transaction.
const MAX_BATCH_TASKS: usize = 64;
const MAX_BATCH_ROWS: u64 = 2_000_000;

/// A request running on a data node; its task ends with whether it was a request of several
/// tasks that failed.
struct Running {
    tasks: Vec<u64>,
    handle: JoinHandle<bool>,
}

pub(super) async fn schedule_loop(raft: Arc<RaftController>, peers: Arc<Peers>) {
    let mut running: Vec<Running> = Vec::new();
    // Seeds being installed, by database and cut, and when a failed one is tried again.
    let mut seeding: HashMap<(String, u64), JoinHandle<()>> = HashMap::new();
    let mut seed_retry_at: HashMap<(String, u64), Instant> = HashMap::new();
    let mut retry_at: HashMap<u64, Instant> = HashMap::new();
    // Tasks that failed together, to run one by one until they finished: so a failure is
    // recorded against the task that caused it.
    let mut alone: HashSet<u64> = HashSet::new();
    let mut rx = raft.subscribe();
    loop {
        let _ = tokio::time::timeout(IDLE, rx.changed()).await;
        running.retain_mut(|r| match (&mut r.handle).now_or_never() {
            None => true,
            Some(failed_together) => {
                if failed_together.unwrap_or(false) {
                    alone.extend(&r.tasks);
                }
                false
            }
        });
        let metadata = raft.metadata();
        let r = metadata.replication();
        if !raft.is_leader()
            || r.role != Some(ReplicationRole::Slave)
            || r.slave.state != ReplicationState::Enabled
        {
            continue;
        }
        let now = Instant::now();
        seeding.retain(|_, h| !h.is_finished());
        for (db, seed) in &r.slave.seeds {
            let key = (db.clone(), seed.cut.task_id);
            if seed.state == SeedState::Done
                || !r.seed_ready(db)
                || seeding.contains_key(&key)
                || seed_retry_at.get(&key).is_some_and(|at| *at > now)
            {
                continue;
            }
            let queue = (fnv1a(db.as_bytes()) % u64::from(u32::MAX)) as u32;
            let Some(node) = queue_node(&metadata, queue) else {
                continue;
            };
            let backoff = SEED_RETRY_AFTER * seed.attempts.clamp(1, 30);
            seed_retry_at.insert(key.clone(), now + backoff);
            let req = SeedRequest {
                db: db.clone(),
                cut_task: seed.cut.task_id,
                min_applied_index: metadata.applied_index(),
            };
            let handle = tokio::spawn(run_seed(raft.clone(), peers.clone(), node, req));
            seeding.insert(key, handle);
        }
        seed_retry_at.retain(|(db, cut), _| {
            r.slave
                .seeds
                .get(db)
                .is_some_and(|s| s.cut.task_id == *cut && s.state != SeedState::Done)
        });
        let busy: HashSet<u64> = running.iter().flat_map(|r| r.tasks.clone()).collect();
        for batch in runnable(r, &alone) {
            let blocked = batch.iter().any(|t| {
                let id = t.task.task_id;
                busy.contains(&id) || retry_at.get(&id).is_some_and(|at| *at > now)
            });
            if blocked || batch.iter().any(|t| gave_up(t)) {
                continue;
            }
            let Some(node) = queue_node(&metadata, batch[0].queue_id) else {
                continue;
            };
            let tasks: Vec<u64> = batch.iter().map(|t| t.task.task_id).collect();
            for id in &tasks {
                retry_at.insert(*id, now + RETRY_AFTER);
            }
            let batch = batch.into_iter().cloned().collect();
            let handle = tokio::spawn(run_batch(raft.clone(), peers.clone(), node, batch));
            running.push(Running { tasks, handle });
        }
        let open = |id: &u64| {
            r.slave
                .tasks
                .get(id)
                .is_some_and(|t| t.state != TaskState::Finished)
        };
        retry_at.retain(|id, _| open(id));
        alone.retain(open);
    }
}

/// How long a failed seed waits before it is tried again, times its failures so far (at most
/// 30).
const SEED_RETRY_AFTER: Duration = Duration::from_secs(1);

/// Installs a seed on a data node (see [`crate::replication::slave::seed`]); a failure is
/// recorded, unless the seed could not be tried (its data node, or the master data node it
/// fetches from, out of reach; or installing it already).
async fn run_seed(
    raft: Arc<RaftController>,
    peers: Arc<Peers>,
    (alias, addr): (String, String),
    req: SeedRequest,
) {
    let result = peers.call::<_, ()>(&addr, SEED, &req, SEED_TIMEOUT).await;
    let error = match result {
        Ok(()) => return,
        Err(RpcError::Remote(e)) if e.sqlstate == SEED_BUSY_SQLSTATE => return,
        Err(e) => e,
    };
    tracing::warn!(db = %req.db, cut_task = req.cut_task, node = %alias, error = %error, "a seed failed; trying again");
    let cmd = Command::Replication(ReplicationCommand::SeedFailed {
        db: req.db.clone(),
        cut_task: req.cut_task,
        error: match &error {
            RpcError::Remote(e) => e.message.clone(),
            other => other.to_string(),
        },
    });
    if let Err(e) = raft.write(cmd).await {
        tracing::debug!(db = %req.db, error = %e, "cannot record a failed seed");
    }
}

/// A task that failed [`MAX_ATTEMPTS`] times waits for `startClusterReplication()`.
fn gave_up(t: &SlaveTask) -> bool {
    t.state == TaskState::Failed && t.attempts >= MAX_ATTEMPTS
}

/// The requests that may run now, each one task or several applied together. In each queue,
/// the tasks of its first unfinished group may run, in parallel. Its first task, when an
/// APPEND, takes the APPEND tasks of the same table that follow it in the queue along, even
/// from later groups: appends commute with each other, and every task between them comes
/// along too. Tasks that failed, or in `alone`, run by themselves.
fn runnable<'m>(r: &'m Replication, alone: &HashSet<u64>) -> Vec<Vec<&'m SlaveTask>> {
    let slave = &r.slave;
    let mut queues: BTreeMap<u32, Vec<&SlaveTask>> = BTreeMap::new();
    // A database being seeded: its tasks after the cut wait (those of other databases in the
    // same queue go on, which no task of it conflicts with).
    for (id, t) in slave.tasks.range(slave.open_from..) {
        if t.state != TaskState::Finished && !r.held_by_seed(&t.task.db, *id) {
            queues.entry(t.queue_id).or_default().push(t);
        }
    }
    let batchable = |t: &SlaveTask| {
        t.task.op == OpType::Append
            && t.state != TaskState::Failed
            && !alone.contains(&t.task.task_id)
    };
    let mut out = Vec::new();
    for tasks in queues.values() {
        let head = tasks[0];
        let mut batch = vec![head];
        if batchable(head) {
            let mut rows = head.task.rows;
            for t in &tasks[1..] {
                let same_table = t.task.db == head.task.db && t.task.table == head.task.table;
                if batch.len() >= MAX_BATCH_TASKS
                    || !batchable(t)
                    || !same_table
                    || rows + t.task.rows > MAX_BATCH_ROWS
                {
                    break;
                }
                rows += t.task.rows;
                batch.push(t);
            }
        }
        let taken = batch.len();
        out.push(batch);
        out.extend(
            tasks[taken..]
                .iter()
                .take_while(|t| t.task.group_id == head.task.group_id)
                .map(|t| vec![*t]),
        );
    }
    out
}

/// The data node running queue `queue_id`, by position among the registered data nodes.
fn queue_node(metadata: &MetadataView, queue_id: u32) -> Option<(String, String)> {
    let mut nodes: Vec<_> = metadata.nodes().collect();
    nodes.sort_by_key(|n| n.id);
    if nodes.is_empty() {
        return None;
    }
    let n = nodes[queue_id as usize % nodes.len()];
    Some((n.alias.clone(), n.addr.clone()))
}

/// Tasks are shown EXECUTING (a raft entry) only once their request has run this long: most
/// requests of a steady stream finish sooner, and their commit records them FINISHED.
const SHOW_STARTED_AFTER: Duration = Duration::from_millis(100);

/// Runs tasks on a data node, recording that they started (once they have run for
/// [`SHOW_STARTED_AFTER`]) and a failure. A failed request of several tasks is not recorded:
/// its tasks wait again and it returns true, for them to run one by one, so the failure is
/// recorded against the task that causes it.
async fn run_batch(
    raft: Arc<RaftController>,
    peers: Arc<Peers>,
    (alias, addr): (String, String),
    tasks: Vec<SlaveTask>,
) -> bool {
    let ids: Vec<u64> = tasks.iter().map(|t| t.task.task_id).collect();
    let started = || async {
        let cmd = Command::Replication(ReplicationCommand::TaskStarted {
            task_ids: ids.clone(),
            node: alias.clone(),
        });
        if let Err(e) = raft.write(cmd).await {
            tracing::debug!(tasks = ?ids, error = %e, "cannot record started tasks");
        }
    };
    // Everything the scheduler has seen finished (the DDL of earlier groups above all) must be
    // in the data node's metadata before it runs these tasks.
    let req = ApplyRequest {
        tasks,
        min_applied_index: raft.metadata().applied_index(),
    };
    let apply = peers.call::<_, Applied>(&addr, APPLY, &req, APPLY_TIMEOUT);
    tokio::pin!(apply);
    let (result, shown) = tokio::select! {
        r = &mut apply => (r, false),
        () = tokio::time::sleep(SHOW_STARTED_AFTER) => (tokio::join!(started(), apply).1, true),
    };
    let details = match result {
        Ok(_) => return false,
        // The tasks could not be tried, which is no failure of theirs: tried again after
        // RETRY_AFTER without using up an attempt, and shown EXECUTING meanwhile (they are on
        // their way, waiting for their data or their data node).
        Err(e) if not_tried(&e) => {
            tracing::info!(tasks = ?ids, node = %alias, error = %e, "cannot run replication tasks now; trying again");
            if !shown {
                started().await;
            }
            return false;
        }
        Err(RpcError::Remote(e)) => e.message,
        Err(e) => e.to_string(),
    };
    if ids.len() > 1 {
        tracing::info!(tasks = ?ids, node = %alias, error = %details, "tasks applied together failed; running them one by one");
        if let Err(e) = raft
            .write(Command::Replication(ReplicationCommand::TasksRequeued {
                task_ids: ids,
            }))
            .await
        {
            tracing::debug!(error = %e, "cannot record requeued tasks");
        }
        return true;
    }
    let task_id = ids[0];
    tracing::warn!(
        task_id,
        node = %alias,
        "[asyncReplication] Failed to execute task with taskId {task_id} on the slave cluster, with error: {details}. RefId:S01038"
    );
    let cmd = Command::Replication(ReplicationCommand::TaskFailed {
        task_id,
        node: alias,
        details,
    });
    if let Err(e) = raft.write(cmd).await {
        tracing::debug!(task_id, error = %e, "cannot record a failed task");
    }
    false
}

/// Whether an apply failed before its tasks could be tried: the master has not persisted
/// their data yet (S01044), or there was no connection to the data node or, passed on by it
/// as a retryable connection failure, to the master data node holding the data (a network
/// cut or a restart must not use up the tasks' attempts).
fn not_tried(e: &RpcError) -> bool {
    match e {
        RpcError::Remote(r) => {
            is_pending_error(r)
                || (r.retryable && r.sqlstate.class() == SqlState::CONNECTION_EXCEPTION)
        }
        other => other.retryable(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replication::model::{Chunks, MasterTask, TaskPayload};

    fn task(id: u64, group: u64, op: OpType, table: &str, queue: u32) -> SlaveTask {
        SlaveTask {
            task: MasterTask {
                task_id: id,
                tid: id,
                group_id: group,
                op,
                submit_ns: 0,
                commit_index: 0,
                db: "dfs://d".into(),
                table: table.into(),
                src: Some(1),
                holders: Vec::new(),
                execution_set: 0,
                chunks: Chunks::default(),
                payload: TaskPayload::Append,
                rows: 10,
                truncated: false,
            },
            src_addr: String::new(),
            holder_addrs: Vec::new(),
            create_ns: 0,
            queue_id: queue,
            state: TaskState::Waiting,
            attempts: 0,
            details: String::new(),
            finish_ns: 0,
            execution_node: String::new(),
        }
    }

    fn ids(batches: Vec<Vec<&SlaveTask>>) -> Vec<Vec<u64>> {
        batches
            .into_iter()
            .map(|b| b.iter().map(|t| t.task.task_id).collect())
            .collect()
    }

    fn queue(tasks: Vec<SlaveTask>) -> Replication {
        let mut r = Replication::default();
        for t in tasks {
            r.slave.tasks.insert(t.task.task_id, Arc::new(t));
        }
        r
    }

    #[test]
    fn consecutive_appends_of_a_table_run_together_across_groups() {
        let m = queue(vec![
            task(1, 1, OpType::Append, "t", 0),
            task(2, 2, OpType::Append, "t", 0),
            task(3, 3, OpType::Append, "t", 0),
            task(4, 4, OpType::AddColumn, "t", 0),
            task(5, 5, OpType::Append, "t", 0),
        ]);
        assert_eq!(ids(runnable(&m, &HashSet::new())), vec![vec![1, 2, 3]]);
    }

    #[test]
    fn another_table_ends_the_batch_and_the_first_group_runs_in_parallel() {
        let m = queue(vec![
            task(1, 1, OpType::Append, "t", 0),
            task(2, 1, OpType::Append, "u", 0),
            task(3, 1, OpType::Append, "t", 0),
            task(4, 2, OpType::Append, "t", 0),
            task(7, 3, OpType::Append, "t", 1),
        ]);
        assert_eq!(
            ids(runnable(&m, &HashSet::new())),
            vec![vec![1], vec![2], vec![3], vec![7]]
        );
    }

    #[test]
    fn failed_and_singled_out_tasks_run_alone() {
        let mut tasks = vec![
            task(1, 1, OpType::Append, "t", 0),
            task(2, 2, OpType::Append, "t", 0),
            task(3, 3, OpType::Append, "t", 0),
        ];
        tasks[0].state = TaskState::Failed;
        let m = queue(tasks);
        assert_eq!(ids(runnable(&m, &HashSet::new())), vec![vec![1]]);
        let mut m = m;
        Arc::make_mut(m.slave.tasks.get_mut(&1).unwrap()).state = TaskState::Finished;
        assert_eq!(ids(runnable(&m, &HashSet::from([2]))), vec![vec![2]]);
        assert_eq!(ids(runnable(&m, &HashSet::from([3]))), vec![vec![2]]);
        assert_eq!(ids(runnable(&m, &HashSet::new())), vec![vec![2, 3]]);
    }

    #[test]
    fn a_batch_is_bounded_in_tasks_and_rows() {
        let m = queue(
            (1..=100)
                .map(|i| task(i, i, OpType::Append, "t", 0))
                .collect(),
        );
        let batches = ids(runnable(&m, &HashSet::new()));
        assert_eq!(batches.len(), 1);
        assert_eq!(batches[0].len(), MAX_BATCH_TASKS);
        let mut big = vec![
            task(1, 1, OpType::Append, "t", 0),
            task(2, 2, OpType::Append, "t", 0),
        ];
        big[0].task.rows = MAX_BATCH_ROWS - 5;
        assert_eq!(ids(runnable(&queue(big), &HashSet::new())), vec![vec![1]]);
    }
}
