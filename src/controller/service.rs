//! What a controller answers over Arrow Flight ([`crate::rpc`]):
//! - `raft.append`, `raft.vote`, `raft.snapshot`: raft messages from peer controllers;
//! - `ctl.write` ([`WriteRequest`] → [`WriteReply`]): propose a command (the leader only;
//!   others answer with the leader's address);
//! - `ctl.watch` ([`WatchRequest`] → [`MetadataUpdate`]): long-poll for metadata newer than an
//!   applied index (any member; a follower's metadata is a prefix of the leader's);
//! - `ctl.status` (→ [`ControllerStatus`]): raft state for the HTTP status pages.
//!
//! A master controller also answers slaves' pulls, in its own service
//! ([`crate::replication::master::pull`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use openraft::raft::{AppendEntriesRequest, InstallSnapshotRequest, VoteRequest};
use serde::{Deserialize, Serialize};

use super::error::ControllerError;
use super::feed::MetadataUpdate;
use super::metadata::{Command, CommandResult};
use super::raft::network::{APPEND, SNAPSHOT, VOTE};
use super::raft::types::TypeConfig;
use super::raft::RaftController;
use super::view::MetadataView;
use crate::catalog::NodeId;
use crate::rpc::server::{reply, Caller, Service};
use crate::rpc::tls::Peer;
use crate::rpc::{decode, RemoteError};
use crate::sqlstate::SqlState;

pub const WRITE: &str = "ctl.write";
pub const WATCH: &str = "ctl.watch";
pub const STATUS: &str = "ctl.status";

/// The highest raft term a message may carry. An election raises the term by one, so a group
/// reaches this only after 2^40 elections (centuries at one a second); a message beyond it is
/// forged or corrupt, and taking it would save a term that openraft's next election overflows.
pub const MAX_TERM: u64 = 1 << 40;

/// The longest a watch may wait for a change.
pub const MAX_WATCH_WAIT: Duration = Duration::from_secs(10);

/// `ctl.write`.
#[derive(Debug, Serialize, Deserialize)]
pub struct WriteRequest {
    pub cmd: Command,
}

/// The answer to `ctl.write`: the command's result and the log index of its entry (metadata
/// whose applied index is at least this includes it).
#[derive(Debug, Serialize, Deserialize)]
pub struct WriteReply {
    pub result: CommandResult,
    /// Serialised as `version`, the name older nodes send and expect.
    #[serde(rename = "version")]
    pub log_index: u64,
}

/// `ctl.watch`: wait up to `wait_ms` for metadata newer than `since`.
#[derive(Debug, Serialize, Deserialize)]
pub struct WatchRequest {
    pub since: u64,
    pub wait_ms: u64,
}

/// One controller's view of the raft group.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ControllerStatus {
    pub node_id: NodeId,
    pub alias: String,
    pub addr: String,
    /// Leader, Follower, Candidate, Learner or Shutdown.
    pub state: String,
    pub term: u64,
    pub leader: Option<NodeId>,
    pub leader_addr: Option<String>,
    pub last_log_index: Option<u64>,
    pub last_applied: Option<u64>,
    /// Voters: id and address.
    pub members: Vec<(NodeId, String)>,
    /// On the leader: the last log index each member is known to hold.
    #[serde(default)]
    pub replication: Vec<(NodeId, Option<u64>)>,
    /// The applied index of this controller's metadata. Serialised as `metadata_version`, the
    /// name older nodes and the status pages use.
    #[serde(rename = "metadata_version")]
    pub applied_index: u64,
}

/// The controller role of a node.
pub struct ControllerService {
    raft: Arc<RaftController>,
    alias: String,
    addr: String,
    /// The raft group's members: raft node id by alias.
    members: HashMap<String, NodeId>,
}

impl ControllerService {
    pub fn new(raft: Arc<RaftController>, alias: String, addr: String) -> Self {
        ControllerService {
            raft,
            alias,
            addr,
            members: HashMap::new(),
        }
    }

    /// The group's members, whose raft messages this controller takes: raft node id by alias.
    pub fn with_members(mut self, members: HashMap<String, NodeId>) -> Self {
        self.members = members;
        self
    }

    /// Refuses a raft message unless it comes from the member whose node id it carries, with a
    /// term below [`MAX_TERM`]: nothing else may vote, lead or move this member's term.
    fn check_raft(
        &self,
        caller: &Caller,
        vote: &openraft::Vote<NodeId>,
    ) -> Result<(), RemoteError> {
        let (term, node_id) = (vote.leader_id.term, vote.leader_id.node_id);
        if term >= MAX_TERM {
            return Err(RemoteError::new(
                SqlState::PROTOCOL_VIOLATION,
                format!("raft term {term} is beyond any this group can reach; message refused"),
            ));
        }
        match caller {
            Caller::Unverified => Ok(()),
            Caller::Peer(Peer::Member { alias }) if self.members.get(alias) == Some(&node_id) => {
                Ok(())
            }
            other => {
                tracing::warn!(caller = ?other, node_id, "raft message from a non-member refused");
                Err(RemoteError::new(
                    SqlState::INVALID_AUTHORIZATION_SPECIFICATION,
                    format!(
                        "raft messages of node {node_id} are taken only from that member of the \
                         controller group"
                    ),
                ))
            }
        }
    }

    /// This controller's status.
    pub fn status(&self) -> ControllerStatus {
        status_of(&self.raft, &self.alias, &self.addr)
    }

    async fn write(&self, req: WriteRequest) -> Result<WriteReply, RemoteError> {
        let inner = match &req.cmd {
            Command::Once { cmd, .. } => cmd.as_ref(),
            cmd => cmd,
        };
        let commit = matches!(inner, Command::CommitTxn { .. });
        if commit {
            crate::fault::crash_point("ctl-commit-received");
        }
        match self.raft.write_at(req.cmd).await {
            Ok((result, log_index)) => {
                if commit {
                    crate::fault::crash_point("ctl-commit-applied");
                }
                Ok(WriteReply { result, log_index })
            }
            Err(e) => Err(remote(&e)),
        }
    }

    async fn watch(&self, req: WatchRequest) -> Result<MetadataUpdate, RemoteError> {
        let mut rx = self.raft.subscribe();
        let wait = Duration::from_millis(req.wait_ms).min(MAX_WATCH_WAIT);
        let newer = |m: &MetadataView| m.applied_index() > req.since;
        // Timing out is a normal answer: "nothing new".
        let _ = tokio::time::timeout(wait, rx.wait_for(newer)).await;
        let metadata = rx.borrow().clone();
        let changes = crate::lock(self.raft.feed()).since(req.since, metadata.applied_index());
        Ok(match changes {
            Some(c) => MetadataUpdate::Changes(c),
            None => MetadataUpdate::Snapshot(Box::new((**metadata.snapshot()).clone())),
        })
    }
}

/// A controller's status from its raft metrics.
pub fn status_of(raft: &RaftController, alias: &str, addr: &str) -> ControllerStatus {
    let m = raft.metrics();
    let members = m
        .membership_config
        .membership()
        .nodes()
        .map(|(id, n)| (*id, n.addr.clone()))
        .collect();
    let replication = m
        .replication
        .as_ref()
        .map(|r| r.iter().map(|(id, l)| (*id, l.map(|l| l.index))).collect())
        .unwrap_or_default();
    let leader_addr = m
        .current_leader
        .and_then(|id| m.membership_config.membership().get_node(&id))
        .map(|n| n.addr.clone());
    ControllerStatus {
        node_id: m.id,
        alias: alias.to_string(),
        addr: addr.to_string(),
        state: format!("{:?}", m.state),
        term: m.current_term,
        leader: m.current_leader,
        leader_addr,
        last_log_index: m.last_log_index,
        last_applied: m.last_applied.map(|l| l.index),
        members,
        replication,
        applied_index: raft.metadata().applied_index(),
    }
}

/// A controller error as the caller sees it.
pub fn remote(e: &ControllerError) -> RemoteError {
    let mut r = RemoteError::from_error(e);
    if let ControllerError::ForwardToLeader { leader_addr, .. } = e {
        r.leader = leader_addr.clone();
    }
    r
}

fn bad_request(e: crate::rpc::RpcError) -> RemoteError {
    RemoteError::new(
        SqlState::PROTOCOL_VIOLATION,
        format!("malformed request: {e}"),
    )
}

#[async_trait]
impl Service for ControllerService {
    fn handles(&self, call: &str) -> bool {
        call.starts_with("raft.") || call.starts_with("ctl.")
    }

    async fn action(&self, caller: &Caller, call: &str, body: Bytes) -> Bytes {
        let raft = self.raft.raft();
        match call {
            APPEND => match decode::<AppendEntriesRequest<TypeConfig>>(&body) {
                Ok(req) => match self.check_raft(caller, &req.vote) {
                    Ok(()) => reply(Ok(raft.append_entries(req).await)),
                    Err(e) => reply::<()>(Err(e)),
                },
                Err(e) => reply::<()>(Err(bad_request(e))),
            },
            VOTE => match decode::<VoteRequest<NodeId>>(&body) {
                Ok(req) => match self.check_raft(caller, &req.vote) {
                    Ok(()) => reply(Ok(raft.vote(req).await)),
                    Err(e) => reply::<()>(Err(e)),
                },
                Err(e) => reply::<()>(Err(bad_request(e))),
            },
            SNAPSHOT => match decode::<InstallSnapshotRequest<TypeConfig>>(&body) {
                Ok(req) => match self.check_raft(caller, &req.vote) {
                    Ok(()) => reply(Ok(raft.install_snapshot(req).await)),
                    Err(e) => reply::<()>(Err(e)),
                },
                Err(e) => reply::<()>(Err(bad_request(e))),
            },
            WRITE => match decode::<WriteRequest>(&body) {
                Ok(req) => reply(self.write(req).await),
                Err(e) => reply::<()>(Err(bad_request(e))),
            },
            WATCH => match decode::<WatchRequest>(&body) {
                Ok(req) => reply(self.watch(req).await),
                Err(e) => reply::<()>(Err(bad_request(e))),
            },
            STATUS => reply(Ok(self.status())),
            other => reply::<()>(Err(RemoteError::new(
                SqlState::FEATURE_NOT_SUPPORTED,
                format!("unknown controller call {other}"),
            ))),
        }
    }
}
