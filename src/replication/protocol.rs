//! The messages of replication between nodes, each defined once: the slave controller's pull
//! from the master controller, the slave controller's apply requests to its data nodes, and
//! the slave data nodes' requests for task data and data files on the master's data nodes.
//!
//! Format: every message travels in [`crate::rpc`]'s JSON envelope, which carries the wire
//! version (`rpc::WIRE_VERSION`); fields added later carry `#[serde(default)]`, so older
//! nodes on either side keep reading them. `do_get` tickets are `{"<kind>": <body>}`
//! (`rpc::encode_ticket`), routed to the service that answers that kind.

use std::time::Duration;

use arrow::datatypes::SchemaRef;
use serde::{Deserialize, Serialize};

use super::model::{PulledSeed, PulledTask, SlaveProgress, SlaveTask};
use crate::rpc::RemoteError;
use crate::sqlstate::SqlState;
use crate::storage::{FileRecord, TableKey};

/// The slave's long-poll for tasks, answered by the master's controller leader.
pub const PULL: &str = "repl.pull";

/// The longest a pull may wait for new tasks.
pub const MAX_PULL_WAIT: Duration = Duration::from_secs(10);

/// A slave's pull.
#[derive(Debug, Serialize, Deserialize)]
pub struct PullRequest {
    /// The slave cluster's id (the master takes it from the caller's certificate instead).
    pub slave: String,
    /// Where it is (`finished`: every task up to it is done there).
    pub progress: SlaveProgress,
    /// The last task it holds.
    pub after: u64,
    /// The cut (the master's log index it was taken at) of each database whose seed it
    /// holds, in whatever state: the master sends only the cuts it does not hold yet, not
    /// every pending cut's catalog with every pull.
    #[serde(default)]
    pub seeds: std::collections::BTreeMap<String, u64>,
    pub wait_ms: u64,
    pub max: u32,
}

/// Tasks after `PullRequest::after`, in order, and the master's controllers (to fail over);
/// the cuts the slave has still to install, and, when the master started the slave afresh,
/// the task the slave starts after (every task up to it is in those cuts).
#[derive(Debug, Serialize, Deserialize)]
pub struct PullReply {
    pub tasks: Vec<PulledTask>,
    pub controllers: Vec<String>,
    #[serde(default)]
    pub seeds: Vec<PulledSeed>,
    #[serde(default)]
    pub start_after: Option<u64>,
    /// The master's data nodes (`host:port`, as slaves reach them).
    #[serde(default)]
    pub data_nodes: Vec<String>,
}

/// The slave controller's request to one of its data nodes to apply tasks.
pub const APPLY: &str = "repl.apply";

/// How long one apply request may take.
pub const APPLY_TIMEOUT: Duration = Duration::from_secs(600);

/// `repl.apply`: one task, or consecutive APPEND tasks of one table.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ApplyRequest {
    pub tasks: Vec<SlaveTask>,
    /// The applied index of the slave controller's metadata when it sent the request: the
    /// data node waits for its copy to get there, so it sees what earlier groups' tasks did.
    /// Serialised as `min_version`, the name older nodes send and expect.
    #[serde(default, rename = "min_version")]
    pub min_applied_index: u64,
}

/// How an apply request ended on the data node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Applied {
    Done,
    /// Finished before (S01039): nothing was applied this time.
    AlreadyDone,
}

/// The `do_get` ticket kind of a task's data (the rows of `<tid>.task`), asked of the master
/// data node that coordinated the write.
pub const TASK_DATA: &str = "TaskData";

/// The body of a [`TASK_DATA`] ticket.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TaskDataTicket {
    pub tid: u64,
}

/// The SQLSTATE of "task data does not exist" (undefined_file).
pub const MISSING_SQLSTATE: SqlState = SqlState::UNDEFINED_FILE;

/// The SQLSTATE of "task data not persisted yet" (S01044; object_not_in_prerequisite_state):
/// the slave asks again later.
pub const PENDING_SQLSTATE: SqlState = SqlState::OBJECT_NOT_IN_PREREQUISITE_STATE;

/// Whether a data node's answer is "not persisted yet" (see [`PENDING_SQLSTATE`]).
pub fn is_pending_error(e: &RemoteError) -> bool {
    e.retryable && e.sqlstate == PENDING_SQLSTATE
}

/// The action listing a transaction's files on a master data node.
pub const TASK_FILES: &str = "dn.task_files";

/// `dn.task_files`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TaskFilesRequest {
    pub tid: u64,
    pub db: String,
    pub table: String,
    /// Whether this node is the task's source: it answers only once the task data is in
    /// place (not persisted yet: S01044; lost: the row path reports "Missing taskData").
    pub source: bool,
}

/// A master data file of a transaction.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShippedFile {
    /// The master's table generation (to find the file there).
    pub table: TableKey,
    pub partition: String,
    pub record: FileRecord,
}

/// The answer to `dn.task_files`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TaskFiles {
    /// The table's physical columns as the master stores them: name and Arrow type.
    pub columns: Vec<(String, String)>,
    pub files: Vec<ShippedFile>,
}

/// Physical columns as [`TaskFiles::columns`] lists them.
pub fn columns(schema: &SchemaRef) -> Vec<(String, String)> {
    schema
        .fields()
        .iter()
        .map(|f| (f.name().clone(), f.data_type().to_string()))
        .collect()
}

/// The `do_get` ticket kind of one data file's bytes.
pub const FILE: &str = "File";

/// The body of a [`FILE`] ticket.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FileTicket {
    pub table: TableKey,
    pub partition: String,
    pub name: String,
    /// A file of a seed: sent at most at `clusterReplicationSeedRateMB`.
    #[serde(default)]
    pub seed: bool,
}

/// The action listing a table's files at a seed's cut on a master data node.
pub const SEED_FILES: &str = "dn.seed_files";

/// `dn.seed_files`: the files of the master's table generation `table` visible at `at`, the
/// controller log index of a pending cut.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SeedFilesRequest {
    pub table: TableKey,
    pub at: u64,
}

/// The action installing a seed on a slave data node, sent by the slave's scheduler.
pub const SEED: &str = "repl.seed";

/// The SQLSTATE of "this seed is being installed already" (a data node asked again while it
/// runs it): the scheduler asks again later.
pub const SEED_BUSY_SQLSTATE: SqlState = SqlState::OBJECT_IN_USE;

/// How long one seed request may take.
pub const SEED_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// `repl.seed`: install the seed of `db` at `cut_task`, as the slave controller's metadata has
/// it at `min_applied_index`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SeedRequest {
    pub db: String,
    pub cut_task: u64,
    pub min_applied_index: u64,
}
