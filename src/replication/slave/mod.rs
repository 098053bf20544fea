//! The slave cluster's side of replication: the controller's [`puller`] and [`scheduler`]
//! (run by [`run_slave`] on every controller; only the leader acts), and on the data nodes the
//! application of tasks ([`apply`]) and seeds ([`seed`]), and the fetching of the master's
//! data files ([`files`]).

pub mod apply;
pub mod executions;
pub mod files;
mod puller;
mod scheduler;
pub mod seed;

use std::sync::Arc;
use std::time::Duration;

use crate::controller::raft::RaftController;
use crate::rpc::client::Peers;

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

/// Runs the pull and schedule loops until the task is dropped: pulls go through `master`
/// (TLS peers with `enableClusterReplicationSSL`), calls to this cluster's data nodes through
/// `peers`.
pub async fn run_slave(
    raft: Arc<RaftController>,
    peers: Arc<Peers>,
    master: Arc<Peers>,
    options: SlaveOptions,
) {
    let pull = tokio::spawn(puller::pull_loop(raft.clone(), master, options));
    scheduler::schedule_loop(raft, peers).await;
    pull.abort();
}
