//! The slave controller's puller (every controller runs it; only the leader acts): long-polls
//! the master's controller leader (`repl.pull`, [`crate::replication::master::pull`]),
//! starting from `clusterReplicationMasterCtl` and following leader changes and the master's
//! other controllers, reporting how far this cluster got, and records pulled tasks through
//! raft. Why pulls fail is recorded too, for `getClusterReplicationMetrics().pullError`.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::IDLE;
use crate::controller::metadata::Command;
use crate::controller::raft::RaftController;
use crate::replication::model::{
    ReplicationCommand, ReplicationRole, ReplicationState, SlaveProgress,
};
use crate::replication::protocol::{PullReply, PullRequest, PULL};
use crate::rpc::client::Peers;
use crate::rpc::group::Group;
use crate::rpc::RpcError;
use crate::sqlstate::ErrorCode;

/// How often a master that cannot be pulled from is logged as a warning.
const WARN_EVERY: Duration = Duration::from_secs(30);

/// A changed reason for failing pulls is recorded at most this often (a new failure, and the
/// return to success, at once).
const ERROR_RECORD_EVERY: Duration = Duration::from_secs(5);

pub(super) async fn pull_loop(
    raft: Arc<RaftController>,
    peers: Arc<Peers>,
    options: super::SlaveOptions,
) {
    let masters = Group::new(vec![options.master_ctl.clone()]);
    let mut last_warning: Option<Instant> = None;
    let mut last_error_record: Option<Instant> = None;
    let mut confirmed_term: Option<u64> = None;
    loop {
        // A new leader may not have applied every committed entry yet: it would report less
        // finished than its cluster has, which the master takes for a slave that lost its
        // state (and seeds afresh). Once a term, before its first report, the leader waits
        // until its state holds every commit; from then on it applies what it commits itself.
        if raft.is_leader() {
            let term = raft.metrics().current_term;
            if confirmed_term != Some(term) {
                if raft.raft().ensure_linearizable().await.is_err() {
                    tokio::time::sleep(IDLE).await;
                    continue;
                }
                confirmed_term = Some(term);
            }
        }
        let metadata = raft.metadata();
        let r = metadata.replication();
        if !raft.is_leader()
            || r.role != Some(ReplicationRole::Slave)
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
                seeded: r.seeded(),
                replicated: r.slave.read_points.clone(),
                start_after: 0,
                repairs: r.slave.repairs.clone(),
            },
            after: r.slave.last_pulled,
            seeds: r
                .slave
                .seeds
                .iter()
                .map(|(db, s)| (db.clone(), s.cut.commit_index))
                .collect(),
            wait_ms: options.wait_ms,
            max: options.batch,
        };
        let addr = masters.target();
        let timeout = Duration::from_millis(options.wait_ms) + Duration::from_secs(5);
        let answer = peers.call::<_, PullReply>(&addr, PULL, &req, timeout).await;
        // The reason pulls fail goes into the metadata, for SQL on this side: when it
        // appears, changes (at most every few seconds) and clears.
        let error = match &answer {
            Ok(_) => None,
            Err(e) if leader_hint(e).is_some() => r.slave.pull_error.clone(),
            Err(e) => Some(format!("{e} (SQLSTATE {})", e.sqlstate())),
        };
        let due = last_error_record.is_none_or(|t: Instant| t.elapsed() >= ERROR_RECORD_EVERY)
            || r.slave.pull_error.is_none()
            || error.is_none();
        if error != r.slave.pull_error && due {
            if let Err(e) = raft
                .write(Command::Replication(ReplicationCommand::SlavePullError {
                    error,
                }))
                .await
            {
                tracing::debug!(error = %e, "cannot record why pulls fail");
            }
            last_error_record = Some(Instant::now());
        }
        match answer {
            Ok(reply) => {
                masters.set_leader(Some(addr));
                masters.set_members(reply.controllers);
                if !reply.data_nodes.is_empty() && reply.data_nodes != r.slave.master_nodes {
                    let cmd = Command::Replication(ReplicationCommand::MasterNodes {
                        nodes: reply.data_nodes,
                    });
                    if let Err(e) = raft.write(cmd).await {
                        tracing::debug!(error = %e, "cannot record the master's data nodes");
                    }
                }
                // The master sends only cuts this slave does not hold (`PullRequest::seeds`).
                let seeds = reply.seeds;
                let start_after = reply.start_after.filter(|s| *s > r.slave.last_pulled);
                if reply.tasks.is_empty() && seeds.is_empty() && start_after.is_none() {
                    continue;
                }
                if let Err(e) = raft
                    .write(Command::Replication(ReplicationCommand::PulledTasks {
                        tasks: reply.tasks,
                        seeds,
                        start_after,
                    }))
                    .await
                {
                    tracing::warn!(error = %e, "cannot record pulled tasks");
                    tokio::time::sleep(IDLE).await;
                }
            }
            Err(e) => {
                // A follower named the leader: asked next, no warning. Unreachable or refused:
                // worth an operator's eye, once in a while.
                let redirected = masters.failed(&e);
                if !redirected && last_warning.is_none_or(|t| t.elapsed() >= WARN_EVERY) {
                    tracing::warn!(master = %addr, error = %e, "cannot pull from the master");
                    last_warning = Some(Instant::now());
                } else {
                    tracing::debug!(master = %addr, error = %e, "cannot pull from the master");
                }
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
