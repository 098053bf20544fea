//! The openraft type configuration of the controller group and short aliases for the generic
//! openraft types instantiated with it.
//!
//! The log entry payload is [`Command`] and the state machine's answer is [`CommandResult`];
//! a raft member is identified by the cluster-wide [`NodeId`] and described by its address
//! ([`BasicNode`]). Snapshots travel as an in-memory byte buffer: the controller's metadata is
//! small (catalog, users, live transactions), so streaming it from a file is not worth it.

use std::io::Cursor;

use openraft::BasicNode;

use crate::catalog::NodeId;
use crate::controller::metadata::{Command, CommandResult};

openraft::declare_raft_types!(
    /// The controller group's raft type configuration.
    pub TypeConfig:
        D = Command,
        R = CommandResult,
        NodeId = NodeId,
        Node = BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

/// A running raft member of the controller group.
pub type Raft = openraft::Raft<TypeConfig>;
/// A log entry of the controller group.
pub type Entry = openraft::Entry<TypeConfig>;
/// The id of a log entry: (term, leader) and index.
pub type LogId = openraft::LogId<NodeId>;
/// A persisted vote.
pub type Vote = openraft::Vote<NodeId>;
/// A membership configuration and the log id that introduced it.
pub type StoredMembership = openraft::StoredMembership<NodeId, BasicNode>;
/// What a snapshot covers.
pub type SnapshotMeta = openraft::SnapshotMeta<NodeId, BasicNode>;
/// A snapshot with its data.
pub type Snapshot = openraft::Snapshot<TypeConfig>;
/// The error storage code reports to openraft; openraft stops the node on it.
pub type StorageError = openraft::StorageError<NodeId>;
/// Raft metrics of one member.
pub type RaftMetrics = openraft::RaftMetrics<NodeId, BasicNode>;
