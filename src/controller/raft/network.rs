//! The controller group's raft transport: how a member sends `append_entries`, `vote` and
//! `install_snapshot` to another member.
//!
//! Not implemented yet: the group has a single member, which never sends an RPC. Every call
//! answers [`Unreachable`] ("controller network transport not implemented yet"), which openraft
//! treats as a peer that is down: it backs off and retries, and nothing is lost. The cluster
//! work replaces the bodies of [`ControllerConnection`]'s methods with Arrow Flight `do_action`
//! calls to the target's address; [`ControllerNetwork`] is where the client pool will live.
//! The message types are openraft's, serialised with serde, so the wire format is theirs plus
//! a version envelope to be defined with the transport.

use openraft::error::{InstallSnapshotError, RPCError, RaftError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::BasicNode;

use super::types::TypeConfig;
use crate::catalog::NodeId;

/// Why an RPC to another controller could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error(
        "controller network transport not implemented yet (cannot reach node {target} at {addr})"
    )]
    NotImplemented { target: NodeId, addr: String },
}

/// Creates a connection per peer for openraft.
#[derive(Clone, Debug, Default)]
pub struct ControllerNetwork {}

impl ControllerNetwork {
    /// A network for a controller group.
    pub fn new() -> Self {
        ControllerNetwork {}
    }
}

impl RaftNetworkFactory<TypeConfig> for ControllerNetwork {
    type Network = ControllerConnection;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> Self::Network {
        ControllerConnection {
            target,
            addr: node.addr.clone(),
        }
    }
}

/// A connection to one peer controller.
#[derive(Clone, Debug)]
pub struct ControllerConnection {
    target: NodeId,
    addr: String,
}

impl ControllerConnection {
    /// The error every RPC returns until a transport exists.
    fn unreachable<E: std::error::Error>(&self) -> RPCError<NodeId, BasicNode, E> {
        let err = TransportError::NotImplemented {
            target: self.target,
            addr: self.addr.clone(),
        };
        tracing::debug!(error = %err, "controller raft RPC not sent");
        RPCError::Unreachable(Unreachable::new(&err))
    }
}

impl RaftNetwork<TypeConfig> for ControllerConnection {
    async fn append_entries(
        &mut self,
        _rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        Err(self.unreachable())
    }

    async fn install_snapshot(
        &mut self,
        _rpc: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        Err(self.unreachable())
    }

    async fn vote(
        &mut self,
        _rpc: VoteRequest<NodeId>,
        _option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        Err(self.unreachable())
    }
}
