//! The controller's errors as clients see them: [`MetadataError`], a command the metadata
//! refuses (committed like any other, so every replica refuses it alike), and
//! [`ControllerError`], a command that could not be proposed or answered (no leader, raft
//! stopped, the remote controller failed). Each knows its SQLSTATE and whether a retry may get
//! past it ([`ErrorCode`]).
//!
//! The errors of the controller's own storage (its directory, raft log and snapshots) stay
//! with that storage ([`super::raft::StoreError`]); a [`ControllerError`] carries one when
//! opening a controller fails.
//!
//! Format: [`MetadataError`] is part of [`super::metadata::CommandResult`], so it is written
//! into raft log entries and snapshots: its variants and fields only ever grow.

use openraft::error::{ClientWriteError, Fatal, RaftError};
use openraft::BasicNode;
use serde::{Deserialize, Serialize};

use super::privilege::{Privilege, ALL_DATABASES};
use super::raft::store_error::StoreError;
use crate::catalog::NodeId;
use crate::replication::model::{ReplicationError, ReplicationRole};
use crate::rpc::{RemoteError, RpcError};
use crate::sqlstate::{ErrorCode, SqlState};

/// Why a command was refused. Each variant knows its SQLSTATE.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum MetadataError {
    #[error("database \"{0}\" already exists")]
    DatabaseExists(String),
    #[error("database \"{0}\" does not exist")]
    DatabaseNotFound(String),
    #[error("table \"{table}\" already exists in database \"{db}\"")]
    TableExists { db: String, table: String },
    #[error("table \"{table}\" does not exist in database \"{db}\"")]
    TableNotFound { db: String, table: String },
    #[error("column \"{column}\" of table \"{table}\" already exists")]
    ColumnExists { table: String, column: String },
    #[error("column \"{column}\" of table \"{table}\" does not exist")]
    ColumnNotFound { table: String, column: String },
    #[error("cannot drop column \"{column}\": {reason}")]
    CannotDropColumn { column: String, reason: String },
    #[error("role \"{0}\" already exists")]
    UserExists(String),
    #[error("role \"{0}\" does not exist")]
    UserNotFound(String),
    #[error("cannot drop the admin user \"{0}\"")]
    CannotDropAdmin(String),
    #[error("transaction {0} is not active")]
    TxnNotActive(u64),
    #[error("table \"{table}\" of \"{db}\" was changed by a concurrent statement; retry")]
    Conflict { db: String, table: String },
    #[error("partition level {level} of database \"{db}\" is not a VALUE level")]
    NotValueLevel { db: String, level: usize },
    #[error("partition level {level} of database \"{db}\" is not a RANGE level")]
    NotRangeLevel { db: String, level: usize },
    #[error("new boundaries of RANGE level {level} of database \"{db}\" must be strictly increasing and above its last boundary")]
    RangeBounds { db: String, level: usize },
    #[error("permission denied for {}: user \"{user}\" lacks {privilege}", database_phrase(.db))]
    PermissionDenied {
        user: String,
        privilege: Privilege,
        db: String,
    },
    #[error("Replication is not enabled. Specify the configuration parameters first.")]
    ReplicationNotConfigured,
    #[error("{} must be executed on the controller of the {} cluster. RefId:S01024", if .function.is_empty() { "this function" } else { .function.as_str() }, .role.name())]
    WrongRole {
        function: String,
        role: ReplicationRole,
    },
    #[error("cluster replication is not enabled on database \"{0}\"; call setDatabaseForClusterReplication first")]
    NotReplicated(String),
    #[error("cluster replication of database \"{0}\" was switched on while the transaction ran; retry it")]
    ReplicationSwitchedOn(String),
    #[error("at most {0} slave clusters may attach (clusterReplicationSlaveNum)")]
    TooManySlaves(u32),
    #[error("The task with ID {task_id} on node {node} is finished or invalid. RefId:S01025")]
    TaskDone { task_id: u64, node: String },
    #[error("The chunk {0} is being replicated in the slave cluster for cluster replication. Please stop cluster replication first. RefId:S01023")]
    Replica(String),
    #[error("skipClusterReplicationTask: this slave has no task with ID {}; see getSlaveReplicationStatus()", ids_text(.ids))]
    UnknownTasks { ids: Vec<u64> },
    #[error(
        "slave cluster \"{0}\" is not attached to this master; see getRecentSlaveReplicationInfo()"
    )]
    UnknownSlave(String),
    /// No longer raised (a slave that lost truncated tasks is seeded afresh); kept so session
    /// results of earlier builds in the controller's snapshots still read.
    #[error("slave cluster {slave} reports task {reported} as its last finished, but this master recorded {recorded} and has truncated the tasks up to {truncated}: the slave lost them (rebuilt from an empty home?). Remove it with removeClusterReplicationSlave('{slave}') to attach it again as a new slave")]
    ProgressMismatch {
        slave: String,
        reported: u64,
        recorded: u64,
        truncated: u64,
    },
    #[error("the seed of database \"{db}\" at task {cut_task} is installed already or was replaced by a newer cut")]
    SeedDone { db: String, cut_task: u64 },
    #[error("database \"{0}\" is being seeded from the master; it can be read once getClusterReplicationSeedStatus() shows its seed DONE")]
    Seeding(String),
    #[error("the seed of database \"{db}\" cannot be finished: tables {} are not installed", .tables.join(", "))]
    SeedIncomplete { db: String, tables: Vec<String> },
    /// A repair names a table whose columns here differ from the master's, or that one side
    /// lacks: replacing some of its partitions cannot mend it.
    #[error("table \"{table}\" of database \"{db}\" differs from the master's in its columns or exists on one side only: a repair replaces partitions, not tables; switch replication of the database off and on again on the master to seed it whole")]
    RepairCatalog { db: String, table: String },
}

/// Task ids as a message lists them: `7`, `7, 9`.
fn ids_text(ids: &[u64]) -> String {
    ids.iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A refusal of the replication state, as the metadata reports it (the variants of the
/// same name, which keep DolphinDB's messages).
impl From<ReplicationError> for MetadataError {
    fn from(e: ReplicationError) -> Self {
        match e {
            ReplicationError::NotConfigured => MetadataError::ReplicationNotConfigured,
            ReplicationError::WrongRole { role } => MetadataError::WrongRole {
                function: String::new(),
                role,
            },
            ReplicationError::TooManySlaves(n) => MetadataError::TooManySlaves(n),
            ReplicationError::TaskDone { task_id, node } => {
                MetadataError::TaskDone { task_id, node }
            }
            ReplicationError::Replica(db) => MetadataError::Replica(db),
            ReplicationError::UnknownTasks { ids } => MetadataError::UnknownTasks { ids },
            ReplicationError::UnknownSlave(id) => MetadataError::UnknownSlave(id),
            ReplicationError::SeedDone { db, cut_task } => MetadataError::SeedDone { db, cut_task },
            ReplicationError::Seeding(db) => MetadataError::Seeding(db),
            ReplicationError::NotReplicated(db) => MetadataError::NotReplicated(db),
            ReplicationError::SeedIncomplete { db, tables } => {
                MetadataError::SeedIncomplete { db, tables }
            }
        }
    }
}

/// `database "dfs://x"`, or `all databases` for [`ALL_DATABASES`].
fn database_phrase(db: &str) -> String {
    if db == ALL_DATABASES {
        "all databases".to_string()
    } else {
        format!("database \"{db}\"")
    }
}

impl ErrorCode for MetadataError {
    fn sqlstate(&self) -> SqlState {
        match self {
            MetadataError::DatabaseExists(_) => SqlState::DUPLICATE_SCHEMA,
            MetadataError::DatabaseNotFound(_) => SqlState::INVALID_SCHEMA_NAME,
            MetadataError::TableExists { .. } => SqlState::DUPLICATE_TABLE,
            MetadataError::TableNotFound { .. } => SqlState::UNDEFINED_TABLE,
            MetadataError::ColumnExists { .. } => SqlState::DUPLICATE_COLUMN,
            MetadataError::ColumnNotFound { .. } => SqlState::UNDEFINED_COLUMN,
            MetadataError::CannotDropColumn { .. } => SqlState::DEPENDENT_OBJECTS_STILL_EXIST,
            MetadataError::UserExists(_) => SqlState::DUPLICATE_OBJECT,
            MetadataError::UserNotFound(_) => SqlState::UNDEFINED_OBJECT,
            MetadataError::CannotDropAdmin(_) => SqlState::INSUFFICIENT_PRIVILEGE,
            MetadataError::TxnNotActive(_) => SqlState::IN_FAILED_SQL_TRANSACTION,
            MetadataError::Conflict { .. } => SqlState::SERIALIZATION_FAILURE,
            MetadataError::NotValueLevel { .. }
            | MetadataError::NotRangeLevel { .. }
            | MetadataError::RangeBounds { .. } => SqlState::INVALID_TABLE_DEFINITION,
            MetadataError::PermissionDenied { .. } => SqlState::INSUFFICIENT_PRIVILEGE,
            MetadataError::ReplicationNotConfigured
            | MetadataError::WrongRole { .. }
            | MetadataError::NotReplicated(_)
            | MetadataError::TooManySlaves(_)
            | MetadataError::TaskDone { .. } => SqlState::OBJECT_NOT_IN_PREREQUISITE_STATE,
            MetadataError::ReplicationSwitchedOn(_) => SqlState::SERIALIZATION_FAILURE,
            MetadataError::Replica(_) => SqlState::READ_ONLY_SQL_TRANSACTION,
            MetadataError::UnknownTasks { .. } | MetadataError::UnknownSlave(_) => {
                SqlState::UNDEFINED_OBJECT
            }
            MetadataError::ProgressMismatch { .. }
            | MetadataError::SeedDone { .. }
            | MetadataError::Seeding(_)
            | MetadataError::SeedIncomplete { .. }
            | MetadataError::RepairCatalog { .. } => SqlState::OBJECT_NOT_IN_PREREQUISITE_STATE,
        }
    }

    /// A concurrent change the statement ran into; anything else the metadata refuses again.
    fn retryable(&self) -> bool {
        matches!(
            self,
            MetadataError::Conflict { .. } | MetadataError::ReplicationSwitchedOn(_)
        )
    }
}

/// Why a controller operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    /// The controller's directory, raft log or snapshot (opening a controller).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// This node cannot accept writes: another node leads (forward there), or no leader is
    /// known yet (retry later).
    #[error("{}", forward_message(*.leader_id, .leader_addr.as_deref()))]
    ForwardToLeader {
        leader_id: Option<NodeId>,
        leader_addr: Option<String>,
    },
    /// The raft node stopped: shut down, a storage failure, or a panic in raft.
    #[error("controller raft stopped")]
    Fatal {
        // Boxed to keep `Result<_, ControllerError>` small.
        #[source]
        source: Box<Fatal<NodeId>>,
    },
    #[error("invalid controller raft configuration")]
    Config {
        #[source]
        source: Box<openraft::ConfigError>,
    },
    #[error("controller raft failed: {reason}")]
    Internal { reason: String },
    /// No controller could be reached, or the leader could not commit in time.
    #[error("the controller is unavailable: {reason}")]
    Unavailable { reason: String },
    /// The controller reported an error: its SQLSTATE and retryability are the remote
    /// controller's.
    #[error("controller: {0}")]
    Remote(RemoteError),
}

impl ControllerError {
    /// A failed call to a remote controller.
    pub fn from_rpc(e: &RpcError) -> Self {
        match e {
            RpcError::Remote(r) => ControllerError::Remote(r.clone()),
            other if other.retryable() => ControllerError::Unavailable {
                reason: other.to_string(),
            },
            other => ControllerError::Remote(RemoteError::from_error(other)),
        }
    }
}

fn forward_message(leader_id: Option<NodeId>, leader_addr: Option<&str>) -> String {
    match (leader_id, leader_addr) {
        (Some(id), Some(addr)) => {
            format!("this node is not the controller leader; the leader is node {id} at {addr}")
        }
        (Some(id), None) => {
            format!("this node is not the controller leader; the leader is node {id}")
        }
        _ => "no controller leader is elected yet".to_string(),
    }
}

impl ErrorCode for ControllerError {
    fn sqlstate(&self) -> SqlState {
        match self {
            ControllerError::Store(e) => e.sqlstate(),
            ControllerError::ForwardToLeader { .. } => SqlState::CANNOT_CONNECT_NOW,
            ControllerError::Fatal { source } => match source.as_ref() {
                Fatal::StorageError(_) => SqlState::IO_ERROR,
                Fatal::Stopped => SqlState::ADMIN_SHUTDOWN,
                Fatal::Panicked => SqlState::INTERNAL_ERROR,
            },
            ControllerError::Config { .. } | ControllerError::Internal { .. } => {
                SqlState::INTERNAL_ERROR
            }
            ControllerError::Unavailable { .. } => SqlState::CANNOT_CONNECT_NOW,
            ControllerError::Remote(e) => e.sqlstate,
        }
    }

    /// Retryable after forwarding to the leader, or once one is elected; a remote
    /// controller's error when it was there.
    fn retryable(&self) -> bool {
        match self {
            ControllerError::ForwardToLeader { .. } | ControllerError::Unavailable { .. } => true,
            ControllerError::Remote(e) => e.retryable,
            _ => false,
        }
    }
}

impl From<Fatal<NodeId>> for ControllerError {
    fn from(source: Fatal<NodeId>) -> Self {
        ControllerError::Fatal {
            source: Box::new(source),
        }
    }
}

impl From<RaftError<NodeId, ClientWriteError<NodeId, BasicNode>>> for ControllerError {
    fn from(e: RaftError<NodeId, ClientWriteError<NodeId, BasicNode>>) -> Self {
        match e {
            RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => {
                ControllerError::ForwardToLeader {
                    leader_id: f.leader_id,
                    leader_addr: f.leader_node.map(|n| n.addr),
                }
            }
            // Only membership changes can fail this way, and `write` proposes none.
            RaftError::APIError(ClientWriteError::ChangeMembershipError(e)) => {
                ControllerError::Internal {
                    reason: e.to_string(),
                }
            }
            RaftError::Fatal(source) => source.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permission_denied_reads_like_postgres() {
        let e = MetadataError::PermissionDenied {
            user: "alice".into(),
            privilege: Privilege::Read,
            db: "dfs://x".into(),
        };
        assert_eq!(e.sqlstate(), SqlState::INSUFFICIENT_PRIVILEGE);
        assert_eq!(
            e.to_string(),
            r#"permission denied for database "dfs://x": user "alice" lacks READ"#
        );
        let e = MetadataError::PermissionDenied {
            user: "alice".into(),
            privilege: Privilege::Ddl,
            db: "*".into(),
        };
        assert_eq!(
            e.to_string(),
            r#"permission denied for all databases: user "alice" lacks DDL"#
        );
    }

    #[test]
    fn a_remote_controller_error_keeps_its_code_and_retryability() {
        let remote = RemoteError::retryable(SqlState::CANNOT_CONNECT_NOW, "not the leader");
        let e = ControllerError::from_rpc(&RpcError::Remote(remote));
        assert_eq!(e.sqlstate(), SqlState::CANNOT_CONNECT_NOW);
        assert!(e.retryable());
        let remote = RemoteError::new(SqlState::DUPLICATE_SCHEMA, "database exists");
        let e = ControllerError::from_rpc(&RpcError::Remote(remote));
        assert_eq!(e.sqlstate(), SqlState::DUPLICATE_SCHEMA);
        assert!(!e.retryable());
    }
}
