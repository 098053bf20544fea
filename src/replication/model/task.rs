//! Replication tasks: what a master queues for each replicated change, and what a slave
//! records of it.
//!
//! Format: tasks travel in raft entries and snapshots of both clusters and in pull replies
//! (JSON, see [`crate::replication::protocol`]); fields added later carry `#[serde(default)]`.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::catalog::NodeId;

/// `operationType`: what a task replays.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OpType {
    Append,
    SqlUpdate,
    SqlDelete,
    DropTable,
    DropDb,
    AddValuePartition,
    /// `addRangePartitions`.
    AddRangePartition,
    CreateTable,
    CreatePartitionedTable,
    AddColumn,
    DropColumn,
    TruncateTable,
    RenameColumn,
    /// `ALTER TABLE ... RENAME TO` (DolphinDB's `renameTable`).
    RenameTable,
    /// `ALTER TABLE ... DROP PARTITION` (DolphinDB's `dropPartition`).
    DropPartition,
    CreateDomain,
    /// `setDatabaseForClusterReplication(db, false)`: the slave stops treating the database
    /// as replicated (no DolphinDB counterpart: DolphinDB's slave never learns of it).
    DisableReplication,
}

impl OpType {
    /// DolphinDB's name.
    pub fn name(self) -> &'static str {
        match self {
            OpType::Append => "APPEND",
            OpType::SqlUpdate => "SQL_UPDATE",
            OpType::SqlDelete => "SQL_DELETE",
            OpType::DropTable => "DROP_TABLE",
            OpType::DropDb => "DROP_DB",
            OpType::AddValuePartition => "ADD_VALUE_PARTITION",
            OpType::AddRangePartition => "ADD_RANGE_PARTITION",
            OpType::CreateTable => "CREATE_TABLE",
            OpType::CreatePartitionedTable => "CREATE_PARTITIONED_TABLE",
            OpType::AddColumn => "ADD_COLUMN",
            OpType::DropColumn => "DROP_COLUMN",
            OpType::TruncateTable => "TRUNCATE_TABLE",
            OpType::RenameColumn => "RENAME_COLUMN",
            OpType::RenameTable => "RENAME_TABLE",
            OpType::DropPartition => "DROP_PARTITION",
            OpType::CreateDomain => "CREATE_DOMAIN",
            OpType::DisableReplication => "DISABLE_REPLICATION",
        }
    }

    /// Whether the task ends the database's replication on the slave once finished.
    pub fn ends_replication(self) -> bool {
        matches!(self, OpType::DropDb | OpType::DisableReplication)
    }
}

/// What a task touches, for conflict detection.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chunks {
    /// Changes the schema: conflicts with every other task.
    pub ddl: bool,
    /// Tables changed as a whole (UPDATE and DELETE may touch any partition), as `db/table`.
    pub tables: BTreeSet<String>,
    /// Partitions written, as `db/table/partition`.
    pub partitions: BTreeSet<String>,
}

impl Chunks {
    pub fn ddl() -> Self {
        Chunks {
            ddl: true,
            ..Chunks::default()
        }
    }

    fn touches_table(&self, table: &str) -> bool {
        self.tables.contains(table)
            || self
                .partitions
                .range(format!("{table}/")..)
                .next()
                .is_some_and(|p| p.starts_with(&format!("{table}/")))
    }

    /// Whether two tasks may not run concurrently.
    pub fn conflicts(&self, other: &Chunks) -> bool {
        self.ddl
            || other.ddl
            || self.tables.iter().any(|t| other.touches_table(t))
            || other.tables.iter().any(|t| self.touches_table(t))
            || !self.partitions.is_disjoint(&other.partitions)
    }
}

/// How a slave replays a task.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum TaskPayload {
    /// A DDL change: the controller command the master applied, in the controller's command
    /// encoding. The queues never read it; the slave's controller applies it as it is.
    Command(Box<serde_json::Value>),
    /// Rows appended; they are in `<tid>.task` on the task's source data node.
    Append,
    /// UPDATE or DELETE, replayed as the statement: the filters and (for UPDATE) the
    /// assignments, in DataFusion's expression encoding.
    Rewrite {
        filters: Vec<Vec<u8>>,
        update: Option<Vec<(String, Vec<u8>)>>,
    },
    /// `ALTER TABLE ... DROP PARTITION`: the partitions whose rows are removed.
    DropPartitions { partitions: Vec<String> },
}

/// The slave tasks a transaction applies, and the data node applying them: the commit that
/// writes their rows finishes them in the same raft entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applies {
    pub task_ids: Vec<u64>,
    pub node: String,
}

/// What a committing write transaction tells the controller for its replication task.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TxnTask {
    pub op: OpType,
    pub db: String,
    pub table: String,
    pub chunks: Chunks,
    pub payload: TaskPayload,
    /// Rows appended (APPEND) or changed (UPDATE/DELETE).
    pub rows: u64,
}

/// One task of the master's send queue.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MasterTask {
    pub task_id: u64,
    pub tid: u64,
    pub group_id: u64,
    pub op: OpType,
    /// When the controller queued it (ns since the epoch).
    pub submit_ns: i64,
    /// The master's controller log index of the entry that queued it (its commit): the
    /// master's state right after the task is the one visible there. 0 for tasks queued by
    /// builds before it was recorded.
    #[serde(default)]
    pub commit_index: u64,
    pub db: String,
    /// Empty for database-level operations.
    pub table: String,
    /// The data node holding the task data (its coordinator); `None` for DDL, whose payload
    /// is in the task.
    pub src: Option<NodeId>,
    /// APPEND: the data nodes that wrote the transaction's Parquet files (its participants).
    /// A slave takes those files as they are when it can ([`crate::replication::slave::files`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub holders: Vec<NodeId>,
    pub execution_set: u8,
    pub chunks: Chunks,
    pub payload: TaskPayload,
    pub rows: u64,
    /// Finished by every attached slave and dropped from the queue (its payload too).
    pub truncated: bool,
}

/// A slave task's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TaskState {
    Waiting,
    Executing,
    Finished,
    Failed,
}

impl TaskState {
    pub fn name(self) -> &'static str {
        match self {
            TaskState::Waiting => "WAITING",
            TaskState::Executing => "EXECUTING",
            TaskState::Finished => "FINISHED",
            TaskState::Failed => "FAILED",
        }
    }
}

/// A task pulled from the master, with where its data is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PulledTask {
    pub task: MasterTask,
    /// The master data node holding the task data (`host:port`; empty for DDL).
    pub src_addr: String,
    /// The master data nodes holding an APPEND's Parquet files (`host:port`).
    #[serde(default)]
    pub holder_addrs: Vec<String>,
}

/// A task as the slave runs it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SlaveTask {
    pub task: MasterTask,
    pub src_addr: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub holder_addrs: Vec<String>,
    /// When the slave recorded it.
    pub create_ns: i64,
    pub queue_id: u32,
    pub state: TaskState,
    /// Failed executions so far.
    pub attempts: u32,
    /// Why it failed, or a note on how it finished.
    pub details: String,
    pub finish_ns: i64,
    /// The data node that ran it last.
    pub execution_node: String,
}

/// Where reads of a replicated database on a slave are: every task of the database up to
/// `task_id` is applied and none after it, as of this cluster's controller log index `index`
/// (the master's state right after that task; YugabyteDB's safe time, CockroachDB's
/// replicated time). Tasks of one group apply in parallel, each in its own commit; a read
/// at the latest index could see a later task without an earlier one, a state the master
/// never had. Queries on the slave read the database at its read point instead.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadPoint {
    pub task_id: u64,
    /// When the master queued that task, i.e. committed it (ns since the epoch); for a seed,
    /// when it took the cut.
    pub master_ns: i64,
    /// This cluster's controller log index the state is visible at.
    pub index: u64,
    /// The master's controller log index the same state is visible at (0 when unknown: a
    /// task queued by an earlier build).
    #[serde(default)]
    pub master_index: u64,
}
