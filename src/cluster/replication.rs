//! The slave side of replication on the controller leader (every controller runs these loops;
//! only the leader acts):
//! - **pull**: long-polls the master's controller leader (`repl.pull`, starting from
//!   `clusterReplicationMasterCtl` and following leader changes and the master's other
//!   controllers), reporting how far this cluster got, and records pulled tasks through raft;
//! - **schedule**: for each execution queue, runs the tasks of its first unfinished group,
//!   in parallel, on the queue's data node (`repl.apply`); a failed task is recorded and
//!   retried until it has failed [`MAX_ATTEMPTS`] times, when the state becomes STOPPED and
//!   only `startClusterReplication()` resumes. Later groups of a queue wait for earlier ones.
//!
//! Queues are mapped onto the data nodes registered now (queue id modulo their number), so a
//! data node that joins takes queues too.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::controller::metadata::{Command, Metadata};
use crate::controller::raft::RaftController;
use crate::controller::replication::{
    ReplicationState, Role, SlaveProgress, SlaveTask, TaskState, MAX_ATTEMPTS,
};
use crate::controller::service::{PullReply, PullRequest, PULL};
use crate::query::replica::{Applied, ApplyRequest, APPLY, APPLY_TIMEOUT};
use crate::rpc::client::Peers;
use crate::rpc::RpcError;

/// How long a failed task waits before it runs again.
const RETRY_AFTER: Duration = Duration::from_millis(250);

/// How long the loops wait when there is nothing to do (not leader, stopped, unreachable).
const IDLE: Duration = Duration::from_millis(200);

/// Settings of the slave loops.
#[derive(Clone, Debug)]
pub struct SlaveOptions {
    pub master_ctl: String,
    /// This controller's address (`connectedController` on the master).
    pub addr: String,
    pub wait_ms: u64,
    pub batch: u32,
}

/// Runs the pull and schedule loops until the task is dropped.
pub async fn run_slave(raft: Arc<RaftController>, peers: Arc<Peers>, options: SlaveOptions) {
    let pull = tokio::spawn(pull_loop(raft.clone(), peers.clone(), options));
    schedule_loop(raft, peers).await;
    pull.abort();
}

async fn pull_loop(raft: Arc<RaftController>, peers: Arc<Peers>, options: SlaveOptions) {
    let mut masters = vec![options.master_ctl.clone()];
    let mut target = 0;
    loop {
        let metadata = raft.metadata();
        let r = &metadata.replication;
        if !raft.is_leader()
            || r.role != Some(Role::Slave)
            || r.cluster_id.is_empty()
            || r.slave.state == ReplicationState::Disabled
        {
            tokio::time::sleep(IDLE).await;
            continue;
        }
        let controllers = raft.member_addrs();
        let req = PullRequest {
            slave: r.cluster_id.clone(),
            progress: SlaveProgress {
                connected: options.addr.clone(),
                controllers,
                finished: r.finished_watermark(),
                last_pull_ns: 0,
            },
            after: r.slave.last_pulled,
            wait_ms: options.wait_ms,
            max: options.batch,
        };
        let addr = masters[target % masters.len()].clone();
        let timeout = Duration::from_millis(options.wait_ms) + Duration::from_secs(5);
        match peers.call::<_, PullReply>(&addr, PULL, &req, timeout).await {
            Ok(reply) => {
                if !reply.controllers.is_empty() {
                    masters = reply.controllers;
                    target = masters.iter().position(|m| *m == addr).unwrap_or(0);
                }
                if reply.tasks.is_empty() {
                    continue;
                }
                if let Err(e) = raft
                    .write(Command::PulledTasks { tasks: reply.tasks })
                    .await
                {
                    tracing::warn!(error = %e, "cannot record pulled tasks");
                    tokio::time::sleep(IDLE).await;
                }
            }
            Err(e) => {
                match leader_hint(&e) {
                    Some(leader) => {
                        if !masters.contains(&leader) {
                            masters.push(leader.clone());
                        }
                        target = masters.iter().position(|m| *m == leader).unwrap_or(0);
                    }
                    None => target += 1,
                }
                tracing::debug!(master = %addr, error = %e, "cannot pull from the master");
                tokio::time::sleep(IDLE).await;
            }
        }
    }
}

fn leader_hint(e: &RpcError) -> Option<String> {
    match e {
        RpcError::Remote(r) => r.leader.clone(),
        _ => None,
    }
}

/// A task running on a data node.
struct Running {
    handle: JoinHandle<()>,
}

async fn schedule_loop(raft: Arc<RaftController>, peers: Arc<Peers>) {
    let mut running: HashMap<u64, Running> = HashMap::new();
    let mut retry_at: HashMap<u64, Instant> = HashMap::new();
    let mut rx = raft.subscribe();
    loop {
        let _ = tokio::time::timeout(IDLE, rx.changed()).await;
        running.retain(|_, r| !r.handle.is_finished());
        let metadata = raft.metadata();
        let r = &metadata.replication;
        if !raft.is_leader()
            || r.role != Some(Role::Slave)
            || r.slave.state != ReplicationState::Enabled
        {
            continue;
        }
        let now = Instant::now();
        for task in runnable(&metadata) {
            let id = task.task.task_id;
            if running.contains_key(&id) || retry_at.get(&id).is_some_and(|t| *t > now) {
                continue;
            }
            if task.state == TaskState::Failed && task.attempts >= MAX_ATTEMPTS {
                continue;
            }
            let Some(addr) = queue_node(&metadata, task.queue_id) else {
                continue;
            };
            retry_at.insert(id, now + RETRY_AFTER);
            let handle = tokio::spawn(run_task(raft.clone(), peers.clone(), addr, task.clone()));
            running.insert(id, Running { handle });
        }
        retry_at.retain(|id, _| {
            r.slave
                .tasks
                .get(id)
                .is_some_and(|t| t.state != TaskState::Finished)
        });
    }
}

/// The tasks that may run now: in each queue, the unfinished tasks of its first unfinished
/// group.
fn runnable(metadata: &Metadata) -> Vec<&SlaveTask> {
    let mut first_group: BTreeMap<u32, u64> = BTreeMap::new();
    let mut out = Vec::new();
    for t in metadata.replication.slave.tasks.values() {
        if t.state == TaskState::Finished {
            continue;
        }
        let group = *first_group.entry(t.queue_id).or_insert(t.task.group_id);
        if t.task.group_id == group {
            out.push(t);
        }
    }
    out
}

/// The data node running queue `queue_id`, by position among the registered data nodes.
fn queue_node(metadata: &Metadata, queue_id: u32) -> Option<(String, String)> {
    let mut nodes: Vec<_> = metadata.nodes.values().collect();
    nodes.sort_by_key(|n| n.id);
    if nodes.is_empty() {
        return None;
    }
    let n = nodes[queue_id as usize % nodes.len()];
    Some((n.alias.clone(), n.addr.clone()))
}

/// Runs one task on a data node and records a failure.
async fn run_task(
    raft: Arc<RaftController>,
    peers: Arc<Peers>,
    (alias, addr): (String, String),
    task: SlaveTask,
) {
    let task_id = task.task.task_id;
    let result: Result<Applied, RpcError> = peers
        .call(&addr, APPLY, &ApplyRequest { task }, APPLY_TIMEOUT)
        .await;
    let details = match result {
        Ok(_) => return,
        Err(RpcError::Remote(e)) => e.message,
        Err(e) => e.to_string(),
    };
    tracing::warn!(
        task_id,
        node = %alias,
        "[asyncReplication] Failed to execute task with taskId {task_id} on the slave cluster, with error: {details}. RefId:S01038"
    );
    let cmd = Command::TaskFailed {
        task_id,
        node: alias,
        details,
    };
    if let Err(e) = raft.write(cmd).await {
        tracing::debug!(task_id, error = %e, "cannot record a failed task");
    }
}
