//! The controller's raft group (openraft 0.9): a replicated log of metadata
//! [`Command`]s whose state machine is the cluster [`Metadata`].
//!
//! Entry point: [`RaftController`], the handle the rest of the server uses to propose commands
//! ([`RaftController::write`]) and read the applied metadata ([`RaftController::metadata`],
//! [`RaftController::subscribe`]). One file per raft contract:
//! - [`types`]: the openraft type configuration.
//! - [`log_store`]: the durable log (redb), vote, committed and purged log ids.
//! - [`state_machine`]: the metadata in memory, its snapshots on disk.
//! - [`network`]: the transport between members (Arrow Flight actions).
//!
//! On-disk layout of a controller directory:
//! ```text
//! <dir>/raft-log.redb       log entries, vote, committed log id, last purged log id (format 1)
//! <dir>/snapshot.json       the latest snapshot: metadata + last applied + membership (format 1)
//! <dir>/snapshot.json.tmp   a snapshot being written; removed on open
//! ```
//!
//! Durability: a command is acknowledged by [`RaftController::write`] only after its log entry
//! was fsynced to a quorum and applied. The metadata itself lives in memory; a restart rebuilds
//! it from the snapshot and the committed log entries after it.
//!
//! The group has 1, 3 or 5 members, listed in `cluster.nodes`. [`RaftController::open`]
//! initialises a fresh directory with that membership (every member does it with the same
//! list, which openraft allows) and, in a group of one, waits until the node leads again after
//! a restart.

pub mod log_store;
pub mod network;
pub mod state_machine;
pub mod store_error;
pub mod types;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{Fatal, InitializeError, RaftError};
use openraft::{BasicNode, Config, ServerState, SnapshotPolicy};
use tokio::sync::watch;

use self::log_store::LogStore;
use self::network::ControllerNetwork;
use self::state_machine::StateMachineStore;
pub use self::store_error::StoreError;
use self::types::{Raft, RaftMetrics};
use crate::catalog::NodeId;
use crate::controller::error::ControllerError;
use crate::controller::metadata::{Command, CommandResult};
use crate::controller::view::MetadataView;

/// Name of the controller raft group (openraft uses it in logs and metrics).
const CLUSTER_NAME: &str = "porpoise-controller";

/// A snapshot is built after this many log entries since the last one; the log is then purged
/// up to the snapshot.
pub const SNAPSHOT_EVERY_LOGS: u64 = 5000;

/// How long [`RaftController::open`] waits for a single-node group to elect itself and
/// re-apply its log.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);

/// How long [`RaftController::write`] waits for its command to be committed and applied. A
/// leader that loses its leadership may never answer a command it appended: when the new
/// leader's log overwrites the entry the caller hears of it, but not when a snapshot replaces
/// it.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// The raft configuration of the controller group.
fn raft_config() -> Result<Config, ControllerError> {
    Config {
        cluster_name: CLUSTER_NAME.to_string(),
        heartbeat_interval: 100,
        election_timeout_min: 300,
        election_timeout_max: 600,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(SNAPSHOT_EVERY_LOGS),
        // Purge everything a snapshot covers: the metadata snapshot is small, so a lagging
        // follower is better served by it than by thousands of entries.
        max_in_snapshot_log_to_keep: 0,
        ..Default::default()
    }
    .validate()
    .map_err(|source| ControllerError::Config {
        source: Box::new(source),
    })
}

/// A running controller raft member and the handle to its metadata.
pub struct RaftController {
    raft: Raft,
    node_id: NodeId,
    dir: PathBuf,
    metadata: watch::Receiver<MetadataView>,
    metrics: watch::Receiver<RaftMetrics>,
    feed: Arc<std::sync::Mutex<crate::controller::feed::Feed>>,
}

impl RaftController {
    /// Opens (creating if needed) the controller stored in `dir`; a fresh directory is
    /// initialised as a group of `members` (which must include `node_id`).
    ///
    /// When this node is the group's only voter, returns once it is leader and has re-applied
    /// its whole log, so [`metadata`](Self::metadata) is complete and
    /// [`write`](Self::write) works. The directory stays locked until
    /// [`shutdown`](Self::shutdown).
    pub async fn open(
        dir: &Path,
        node_id: NodeId,
        members: BTreeMap<NodeId, BasicNode>,
        peers: Arc<crate::rpc::client::Peers>,
    ) -> Result<Self, ControllerError> {
        let owned_dir = dir.to_path_buf();
        let (log_store, state_machine) = tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&owned_dir).map_err(|source| StoreError::CreateDir {
                path: owned_dir.clone(),
                source,
            })?;
            Ok::<_, StoreError>((
                LogStore::open(&owned_dir)?,
                StateMachineStore::open(&owned_dir)?,
            ))
        })
        .await
        .map_err(|e| ControllerError::Internal {
            reason: format!("opening the controller stores panicked: {e}"),
        })??;
        let metadata = state_machine.subscribe();
        let feed = state_machine.feed();
        let config = Arc::new(raft_config()?);
        let raft = Raft::new(
            node_id,
            config,
            ControllerNetwork::new(peers),
            log_store,
            state_machine,
        )
        .await?;
        let controller = RaftController {
            metrics: raft.metrics(),
            raft,
            node_id,
            dir: dir.to_path_buf(),
            metadata,
            feed,
        };
        match controller.start(members).await {
            Ok(()) => Ok(controller),
            Err(e) => {
                // Release the log store before reporting, so the caller may retry the open.
                if let Err(join) = controller.raft.shutdown().await {
                    tracing::warn!(error = %join, "controller raft did not shut down cleanly");
                }
                Err(e)
            }
        }
    }

    /// Opens a group of one (a standalone server, tests).
    pub async fn open_single(
        dir: &Path,
        node_id: NodeId,
        addr: String,
    ) -> Result<Self, ControllerError> {
        let members = BTreeMap::from([(node_id, BasicNode::new(addr))]);
        Self::open(dir, node_id, members, Arc::default()).await
    }

    /// Initialises a pristine directory, then waits until this node serves.
    async fn start(&self, members: BTreeMap<NodeId, BasicNode>) -> Result<(), ControllerError> {
        let addr = members
            .get(&self.node_id)
            .map(|n| n.addr.clone())
            .unwrap_or_default();
        if !self.raft.is_initialized().await? {
            let size = members.len();
            match self.raft.initialize(members).await {
                Ok(()) => tracing::info!(
                    node_id = self.node_id,
                    dir = %self.dir.display(),
                    size,
                    "initialised a new controller group"
                ),
                // Someone initialised it meanwhile: the goal is reached.
                Err(RaftError::APIError(InitializeError::NotAllowed(_))) => {}
                Err(RaftError::APIError(e)) => {
                    return Err(ControllerError::Internal {
                        reason: e.to_string(),
                    })
                }
                Err(RaftError::Fatal(source)) => return Err(source.into()),
            }
        } else {
            let m = self.metrics.borrow().membership_config.clone();
            if let Some(node) = m.membership().get_node(&self.node_id) {
                if node.addr != addr {
                    // Changing an address is a membership change; until the cluster work
                    // supports it, the stored address stays in force.
                    tracing::warn!(
                        node_id = self.node_id,
                        stored = %node.addr,
                        given = %addr,
                        "controller address differs from the one stored in the raft membership"
                    );
                }
            }
        }
        self.wait_until_serving().await
    }

    /// Waits, with a deadline, until the membership is known and, in a single-voter group,
    /// until this node leads and has applied its whole log.
    async fn wait_until_serving(&self) -> Result<(), ControllerError> {
        let wait = self.raft.wait(Some(STARTUP_TIMEOUT));
        let m = wait
            .metrics(
                |m| {
                    m.running_state.is_err()
                        || m.membership_config
                            .membership()
                            .voter_ids()
                            .next()
                            .is_some()
                },
                "controller membership known",
            )
            .await
            .map_err(wait_error)?;
        if let Err(source) = m.running_state {
            return Err(source.into());
        }
        let voters: Vec<NodeId> = m.membership_config.membership().voter_ids().collect();
        if !voters.contains(&self.node_id) {
            return Err(StoreError::NotMember {
                dir: self.dir.clone(),
                node_id: self.node_id,
                voters,
            }
            .into());
        }
        if voters != [self.node_id] {
            // In a multi-node group the election involves the peers; do not block on it.
            return Ok(());
        }
        let me = self.node_id;
        let m = wait
            .metrics(
                move |m| {
                    m.running_state.is_err()
                        || (m.state == ServerState::Leader
                            && m.current_leader == Some(me)
                            && m.last_applied.map(|l| l.index) >= m.last_log_index)
                },
                "controller leader with its log applied",
            )
            .await
            .map_err(wait_error)?;
        if let Err(source) = m.running_state {
            return Err(source.into());
        }
        tracing::info!(
            node_id = me,
            term = m.current_term,
            last_applied = ?m.last_applied,
            "controller is leader"
        );
        Ok(())
    }

    /// Proposes a command, waits until it is committed and applied, returns its result.
    ///
    /// A command the metadata refuses is still committed and answers
    /// [`CommandResult::Err`]; an `Err` here means the command may not have been applied
    /// (e.g. [`ControllerError::ForwardToLeader`] on a follower), or that it was not applied
    /// within [`WRITE_TIMEOUT`] ([`ControllerError::Unavailable`]; it may still be).
    pub async fn write(&self, cmd: Command) -> Result<CommandResult, ControllerError> {
        Ok(self.write_at(cmd).await?.0)
    }

    /// Like [`write`](Self::write), also returning the log index the command was applied at
    /// (metadata whose applied index is at least this includes it).
    pub async fn write_at(&self, cmd: Command) -> Result<(CommandResult, u64), ControllerError> {
        // The leader's clock travels in the entry, so applying it stays deterministic.
        let cmd = Command::Stamped {
            at_ns: crate::controller::metadata::now_ns(),
            cmd: Box::new(cmd),
        };
        let resp = tokio::time::timeout(WRITE_TIMEOUT, self.raft.client_write(cmd))
            .await
            .map_err(|_| ControllerError::Unavailable {
                reason: format!(
                    "a write was not applied within {} s; it may still be",
                    WRITE_TIMEOUT.as_secs()
                ),
            })??;
        Ok((resp.data, resp.log_id.index))
    }

    /// The entries applied recently (see [`crate::controller::feed`]).
    pub fn feed(&self) -> &Arc<std::sync::Mutex<crate::controller::feed::Feed>> {
        &self.feed
    }

    /// This node's latest raft metrics.
    pub fn metrics(&self) -> RaftMetrics {
        self.metrics.borrow().clone()
    }

    /// The addresses of the group's members.
    pub fn member_addrs(&self) -> Vec<String> {
        self.metrics
            .borrow()
            .membership_config
            .membership()
            .nodes()
            .map(|(_, n)| n.addr.clone())
            .collect()
    }

    /// The current leader's id and address, as far as this node knows.
    pub fn leader(&self) -> Option<(NodeId, String)> {
        let m = self.metrics.borrow();
        let id = m.current_leader?;
        let addr = m.membership_config.membership().get_node(&id)?.addr.clone();
        Some((id, addr))
    }

    /// The latest applied metadata (cheap).
    pub fn metadata(&self) -> MetadataView {
        self.metadata.borrow().clone()
    }

    /// A receiver notified on every applied change. Like any [`watch`] receiver it sees the
    /// latest metadata, possibly skipping intermediate ones.
    pub fn subscribe(&self) -> watch::Receiver<MetadataView> {
        self.metadata.clone()
    }

    /// Whether this node is the leader, as far as it knows.
    pub fn is_leader(&self) -> bool {
        let m = self.metrics.borrow();
        m.state == ServerState::Leader && m.current_leader == Some(self.node_id)
    }

    /// This node's id in the controller group.
    pub fn node_id(&self) -> NodeId {
        self.node_id
    }

    /// The underlying openraft handle, for administration (metrics, triggering snapshots) and
    /// tests.
    pub fn raft(&self) -> &Raft {
        &self.raft
    }

    /// Stops the raft member and releases its directory. Idempotent.
    pub async fn shutdown(&self) -> Result<(), ControllerError> {
        self.raft
            .shutdown()
            .await
            .map_err(|e| ControllerError::Internal {
                reason: format!("controller raft task failed: {e}"),
            })?;
        tracing::info!(node_id = self.node_id, "controller raft shut down");
        Ok(())
    }
}

fn wait_error(e: openraft::metrics::WaitError) -> ControllerError {
    match e {
        openraft::metrics::WaitError::Timeout(..) => ControllerError::ForwardToLeader {
            leader_id: None,
            leader_addr: None,
        },
        openraft::metrics::WaitError::ShuttingDown => ControllerError::Fatal {
            source: Box::new(Fatal::Stopped),
        },
    }
}
