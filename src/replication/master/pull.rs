//! The master controller's answer to a slave's pull (`repl.pull`): it records the slave's
//! progress through raft (when it changed, or every few seconds for `lastPullTime`), then
//! waits up to the pull's `wait_ms` for tasks after the last one the slave holds, and sends
//! them with where their data is. Only the leader answers; a follower names the leader.
//! A refused pull (one slave too many, a progress that does not match) is recorded with its
//! reason too, for the master's slave listing (`getRecentSlaveReplicationInfo`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::controller::client::MetadataView;
use crate::controller::error::MetadataError;
use crate::controller::metadata::{now_ns, Command, CommandResult};
use crate::controller::raft::RaftController;
use crate::controller::service::remote;
use crate::replication::model::{
    MasterTask, PulledSeed, PulledTask, ReplicationCommand, ReplicationRole, SeedCut,
};
use crate::replication::protocol::{PullReply, PullRequest, MAX_PULL_WAIT, PULL};
use crate::rpc::server::{reply, Call, Caller, Service};
use crate::rpc::tls::Peer;
use crate::rpc::{decode, RemoteError};
use crate::sqlstate::SqlState;

/// A slave's unchanged progress is still recorded this often (its `lastPullTime`).
const PROGRESS_EVERY_NS: i64 = 5_000_000_000;

/// A slave's finished tasks are recorded at most this often. Under a steady stream the slave
/// pulls after every task it is sent, so recording each pull's progress would cost the master
/// a raft entry per task; what waits for the record is only the truncation of finished tasks
/// (their task data is deleted a moment later) and the status functions' view of the slave.
const PROGRESS_MIN_NS: i64 = 200_000_000;

/// The pull service of a master controller.
pub struct PullService {
    raft: Arc<RaftController>,
    /// `clusterReplicationPublicSites`: the address a slave uses for a node, by its address.
    public_addrs: HashMap<String, String>,
}

impl PullService {
    pub fn new(raft: Arc<RaftController>, public_addrs: HashMap<String, String>) -> Self {
        PullService { raft, public_addrs }
    }

    /// The address a slave reaches the node at `addr` by.
    fn public(&self, addr: String) -> String {
        self.public_addrs.get(&addr).cloned().unwrap_or(addr)
    }

    async fn pull(&self, caller: &Caller, mut req: PullRequest) -> Result<PullReply, RemoteError> {
        // A slave is who its certificate says, whatever the request claims.
        match caller {
            Caller::Peer(Peer::Slave { cluster, .. }) => req.slave = cluster.clone(),
            Caller::Unverified => {}
            Caller::Peer(Peer::Member { .. }) => {
                return Err(RemoteError::new(
                    SqlState::INSUFFICIENT_PRIVILEGE,
                    "a node of this cluster cannot pull its own tasks as a slave",
                ))
            }
        }
        if !self.raft.is_leader() {
            let mut e = RemoteError::retryable(
                SqlState::CANNOT_CONNECT_NOW,
                "this controller is not the leader",
            );
            e.leader = self.raft.leader().map(|(_, addr)| self.public(addr));
            return Err(e);
        }
        let metadata = self.raft.metadata();
        if metadata.replication().role != Some(ReplicationRole::Master) {
            return Err(RemoteError::new(
                SqlState::OBJECT_NOT_IN_PREREQUISITE_STATE,
                "the cluster clusterReplicationMasterCtl names is not a master cluster",
            ));
        }
        let stale = match metadata.replication().slaves.get(&req.slave) {
            Some(known) => {
                let age = now_ns() - known.last_pull_ns;
                known.connected != req.progress.connected
                    || known.controllers != req.progress.controllers
                    || known.seeded != req.progress.seeded
                    || known.repairs != req.progress.repairs
                    || ((known.finished != req.progress.finished
                        || known.replicated != req.progress.replicated)
                        && age >= PROGRESS_MIN_NS)
                    // Less than recorded: the record decides whether it may pull at all.
                    || req.progress.finished < known.finished
                    || !(0..=PROGRESS_EVERY_NS).contains(&age)
            }
            None => true,
        };
        if stale {
            let cmd = Command::Replication(ReplicationCommand::SlaveProgress {
                slave: req.slave.clone(),
                progress: req.progress.clone(),
            });
            match self.raft.write(cmd).await {
                Ok(CommandResult::Err(e)) => {
                    self.record_refusal(&metadata, &req, &e).await;
                    return Err(RemoteError::from_error(&e));
                }
                Ok(_) => {}
                Err(e) => return Err(remote(&e)),
            }
        }
        let mut rx = self.raft.subscribe();
        let wait = Duration::from_millis(req.wait_ms).min(MAX_PULL_WAIT);
        let newer = |m: &MetadataView| m.replication().master.last_task_id > req.after;
        let _ = tokio::time::timeout(wait, rx.wait_for(newer)).await;
        let metadata = rx.borrow().clone();
        let r = metadata.replication();
        // Started afresh: it skips what its cuts hold.
        let start_after = r
            .slaves
            .get(&req.slave)
            .map(|s| s.start_after)
            .filter(|s| *s > req.after);
        let after = start_after.unwrap_or(req.after);
        let data_nodes: Vec<String> = metadata
            .nodes()
            .map(|n| self.public(n.addr.clone()))
            .collect();
        let seeds = r
            .cuts
            .get(&req.slave)
            .into_iter()
            .flat_map(|cuts| cuts.values())
            .filter(|cut| req.seeds.get(&cut.db) != Some(&cut.commit_index))
            .map(|cut| PulledSeed {
                cut: SeedCut::clone(cut),
                nodes: data_nodes.clone(),
            })
            .collect();
        let tasks = r
            .master
            .tasks
            .range(after + 1..)
            .map(|(_, t)| t)
            .filter(|t| !t.truncated)
            .take(req.max.max(1) as usize)
            .map(|t| {
                let addr = |id: crate::catalog::NodeId| {
                    metadata.node(id).map(|n| self.public(n.addr.clone()))
                };
                PulledTask {
                    src_addr: t.src.and_then(addr).unwrap_or_default(),
                    holder_addrs: t.holders.iter().filter_map(|id| addr(*id)).collect(),
                    task: MasterTask::clone(t),
                }
            })
            .collect();
        let controllers = self
            .raft
            .member_addrs()
            .into_iter()
            .map(|a| self.public(a))
            .collect();
        Ok(PullReply {
            tasks,
            controllers,
            seeds,
            start_after,
            data_nodes,
        })
    }
}

impl PullService {
    /// Records why `req` was refused, for the master's slave listing: when the reason is new
    /// or changed, and as often as an admitted slave's progress (its `lastPullTime`).
    async fn record_refusal(&self, metadata: &MetadataView, req: &PullRequest, e: &MetadataError) {
        let reason = e.to_string();
        let recorded = metadata.replication().refused.get(&req.slave);
        if recorded.is_some_and(|r| {
            r.reason == reason
                && r.progress.connected == req.progress.connected
                && (0..=PROGRESS_EVERY_NS).contains(&(now_ns() - r.progress.last_pull_ns))
        }) {
            return;
        }
        if recorded.is_none_or(|r| r.reason != reason) {
            tracing::warn!(slave = %req.slave, controller = %req.progress.connected, %reason, "refused a slave's pull");
        }
        let cmd = Command::Replication(ReplicationCommand::SlaveRefused {
            slave: req.slave.clone(),
            progress: req.progress.clone(),
            reason,
        });
        if let Err(e) = self.raft.write(cmd).await {
            tracing::debug!(error = %e, slave = %req.slave, "cannot record a slave's refusal");
        }
    }
}

#[async_trait]
impl Service for PullService {
    fn handles(&self, call: &str) -> bool {
        call == PULL
    }

    fn is_slave_call(&self, call: Call<'_>) -> bool {
        matches!(call, Call::Action(PULL))
    }

    async fn action(&self, caller: &Caller, call: &str, body: Bytes) -> Bytes {
        match (call, decode::<PullRequest>(&body)) {
            (PULL, Ok(req)) => reply(self.pull(caller, req).await),
            (PULL, Err(e)) => reply::<()>(Err(RemoteError::new(
                SqlState::PROTOCOL_VIOLATION,
                format!("malformed request: {e}"),
            ))),
            (other, _) => reply::<()>(Err(RemoteError::new(
                SqlState::FEATURE_NOT_SUPPORTED,
                format!("unknown replication call {other}"),
            ))),
        }
    }
}
