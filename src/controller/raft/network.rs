//! The controller group's raft transport: `append_entries`, `vote` and `install_snapshot` sent
//! to a peer controller as Arrow Flight actions (`raft.append`, `raft.vote`, `raft.snapshot`),
//! answered by [`crate::controller::service`].
//!
//! The messages are openraft's own types, serialised with serde inside the versioned RPC
//! envelope ([`crate::rpc`]). A peer that cannot be reached is reported as
//! [`Unreachable`], which makes openraft back off and retry; nothing is lost.

use std::sync::Arc;

use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::BasicNode;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::types::TypeConfig;
use crate::catalog::NodeId;
use crate::rpc::client::Peers;
use crate::rpc::RpcError;
use crate::sqlstate::ErrorCode;

/// Action names of the raft messages.
pub const APPEND: &str = "raft.append";
pub const VOTE: &str = "raft.vote";
pub const SNAPSHOT: &str = "raft.snapshot";

/// Creates a connection per peer for openraft.
#[derive(Clone, Debug, Default)]
pub struct ControllerNetwork {
    peers: Arc<Peers>,
}

impl ControllerNetwork {
    /// A network sending through `peers`.
    pub fn new(peers: Arc<Peers>) -> Self {
        ControllerNetwork { peers }
    }
}

impl RaftNetworkFactory<TypeConfig> for ControllerNetwork {
    type Network = ControllerConnection;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> Self::Network {
        ControllerConnection {
            target,
            node: node.clone(),
            peers: self.peers.clone(),
        }
    }
}

/// A connection to one peer controller.
#[derive(Clone, Debug)]
pub struct ControllerConnection {
    target: NodeId,
    node: BasicNode,
    peers: Arc<Peers>,
}

impl ControllerConnection {
    async fn send<Req, Resp, E>(
        &self,
        call: &str,
        req: &Req,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<NodeId, BasicNode, RaftError<NodeId, E>>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let answer: Result<Result<Resp, RaftError<NodeId, E>>, RpcError> = self
            .peers
            .call(&self.node.addr, call, req, option.hard_ttl())
            .await;
        match answer {
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(e)) => Err(RPCError::RemoteError(RemoteError::new_with_node(
                self.target,
                self.node.clone(),
                e,
            ))),
            Err(e) if e.retryable() => {
                tracing::debug!(target = self.target, error = %e, "controller peer unreachable");
                Err(RPCError::Unreachable(Unreachable::new(&e)))
            }
            Err(e) => Err(RPCError::Network(NetworkError::new(&e))),
        }
    }
}

impl RaftNetwork<TypeConfig> for ControllerConnection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        self.send(APPEND, &rpc, &option).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        self.send(SNAPSHOT, &rpc, &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        self.send(VOTE, &rpc, &option).await
    }
}
