//! Cross-cluster replication state in the controller's metadata (DolphinDB's asynchronous
//! cluster replication; `reference/dolphindb-replication.md`).
//!
//! Master side: one [`MasterTask`] per committed transaction or DDL command on a database with
//! replication enabled, numbered in commit order (`taskId`) and grouped (`groupId`): a task
//! joins the newest group when it touches none of that group's partitions; DDL is a group of
//! its own. A write's rows (the task data) stay on the data node that coordinated it, in
//! `<clusterReplicationWorkDir>/<tid>.task`; DDL and UPDATE/DELETE carry their whole payload in
//! the task.
//!
//! Everything here changes only through [`Command`]s applied by [`Metadata::apply`], so every
//! controller and every data node's copy agree on it.

use imbl::OrdMap;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::error::MetadataError;
use super::metadata::{Command, Metadata};
use crate::catalog::{fnv1a, NodeId};

/// A cluster's replication role (`clusterReplicationMode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    Master,
    Slave,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Master => "master",
            Role::Slave => "slave",
        }
    }
}

/// The cluster's replication state (§5.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReplicationState {
    #[default]
    Enabled,
    Disabled,
    Stopped,
}

impl ReplicationState {
    pub fn name(self) -> &'static str {
        match self {
            ReplicationState::Enabled => "ENABLED",
            ReplicationState::Disabled => "DISABLED",
            ReplicationState::Stopped => "STOPPED",
        }
    }
}

/// A database's replication settings; present while replication is enabled on it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DbReplication {
    /// Execution set 0 or 1 (`setDatabaseClusterReplicationExecutionSet`).
    pub execution_set: u8,
}

/// `operationType` (§5.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OpType {
    Append,
    SqlUpdate,
    SqlDelete,
    DropTable,
    DropDb,
    AddValuePartition,
    CreateTable,
    CreatePartitionedTable,
    AddColumn,
    DropColumn,
    TruncateTable,
    RenameColumn,
    CreateDomain,
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
            OpType::CreateTable => "CREATE_TABLE",
            OpType::CreatePartitionedTable => "CREATE_PARTITIONED_TABLE",
            OpType::AddColumn => "ADD_COLUMN",
            OpType::DropColumn => "DROP_COLUMN",
            OpType::TruncateTable => "TRUNCATE_TABLE",
            OpType::RenameColumn => "RENAME_COLUMN",
            OpType::CreateDomain => "CREATE_DOMAIN",
        }
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
    /// The controller command the master applied (DDL).
    Command(Box<Command>),
    /// Rows appended; they are in `<tid>.task` on the task's source data node.
    Append,
    /// UPDATE or DELETE, replayed as the statement: the filters and (for UPDATE) the
    /// assignments, in DataFusion's expression encoding.
    Rewrite {
        filters: Vec<Vec<u8>>,
        update: Option<Vec<(String, Vec<u8>)>>,
    },
}

/// The slave tasks a transaction applies, and the data node applying them (see
/// [`Metadata::finish_tasks`]).
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
    pub db: String,
    /// Empty for database-level operations.
    pub table: String,
    /// The data node holding the task data (its coordinator); `None` for DDL, whose payload
    /// is in the task.
    pub src: Option<NodeId>,
    /// APPEND: the data nodes that wrote the transaction's Parquet files (its participants).
    /// A slave takes those files as they are when it can ([`crate::query::replica`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub holders: Vec<NodeId>,
    pub execution_set: u8,
    pub chunks: Chunks,
    pub payload: TaskPayload,
    pub rows: u64,
    /// Finished by every attached slave and dropped from the queue (its payload too).
    pub truncated: bool,
}

/// The master's send queue and its state.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MasterQueue {
    pub state: ReplicationState,
    pub last_task_id: u64,
    pub last_group_id: u64,
    /// Queued tasks, and the most recent truncated ones (at most [`TRUNCATED_KEPT`]).
    ///
    /// The metadata is copied for every applied raft batch, so both task lists are persistent
    /// maps (a copy shares them) of `Arc`s (a change copies one path of map nodes, whose
    /// entries are then pointers, not whole tasks).
    pub tasks: OrdMap<u64, Arc<MasterTask>>,
}

/// Truncated tasks still listed by `getMasterReplicationStatus` (DolphinDB shows the 10,000
/// most recent finished ones).
pub const TRUNCATED_KEPT: usize = 10_000;

/// Removes the lowest task of a queue.
fn pop_first<T: Clone>(tasks: &mut OrdMap<u64, T>) {
    if let Some(id) = tasks.get_min().map(|(id, _)| *id) {
        tasks.remove(&id);
    }
}

/// What a master knows of one slave cluster.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlaveProgress {
    /// The slave controller that pulled last (`host:port`).
    pub connected: String,
    /// The slave's controllers.
    pub controllers: Vec<String>,
    /// Every task up to this one is finished on the slave.
    pub finished: u64,
    /// The master's clock at the last recorded pull.
    pub last_pull_ns: i64,
}

/// A slave task's state (§5.2).
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

/// A slave's pulled tasks and their progress.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SlaveQueue {
    pub state: ReplicationState,
    /// The last task pulled from the master.
    pub last_pulled: u64,
    /// Pulled tasks: unfinished ones, and the most recent finished ones (at most
    /// [`TRUNCATED_KEPT`]). Shared between metadata copies as [`MasterQueue::tasks`] is.
    pub tasks: OrdMap<u64, Arc<SlaveTask>>,
    /// Every task below this one is finished (0 until a task finished): where the scheduler
    /// and the trimming of finished tasks start, instead of walking the finished tasks kept
    /// for the status functions. Tasks never become unfinished again and later pulls bring
    /// higher ids, so it only moves up.
    #[serde(default)]
    pub open_from: u64,
    /// Databases replication writes to: clients may not (S01023).
    pub databases: BTreeSet<String>,
    /// Why pulls from the master fail, while they do (`getClusterReplicationMetrics`'s
    /// `pullError`): a refusal (an untrusted certificate, `clusterReplicationSlaveNum`), an
    /// unreachable or unverifiable master.
    #[serde(default)]
    pub pull_error: Option<String>,
}

/// After this many failed executions of one task a slave stops (state STOPPED).
pub const MAX_ATTEMPTS: u32 = 30;

/// The replication part of the metadata.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Replication {
    /// `None` until the controller leader records the configured role (and when replication
    /// is not configured).
    pub role: Option<Role>,
    /// This cluster's identity towards the other cluster: the id its CA certificate carries
    /// (a random one recorded by builds before certificates is replaced by it).
    #[serde(default)]
    pub cluster_id: String,
    /// `clusterReplicationSlaveNum` (master).
    pub slave_num: u32,
    /// `clusterReplicationQueue` (slave): execution queues per execution set.
    #[serde(default)]
    pub queues: u32,
    /// `slaveReplicationDBScope` (slave): the databases replayed; all when `None`.
    #[serde(default)]
    pub db_scope: Option<Vec<String>>,
    pub master: MasterQueue,
    /// Attached slaves by cluster id (master).
    #[serde(default)]
    pub slaves: BTreeMap<String, SlaveProgress>,
    #[serde(default)]
    pub slave: SlaveQueue,
}

/// One slave's lag on one database (see [`Metadata::replication_lag`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Lag {
    pub slave: String,
    pub connected: String,
    pub db: String,
    pub tasks_behind: u64,
    pub seconds_behind: f64,
}

/// The settings of [`Command::ConfigureReplication`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ReplicationConfig {
    pub role: Option<Role>,
    pub slave_num: u32,
    pub queues: u32,
    pub db_scope: Option<Vec<String>>,
    /// The cluster's id, from its certificate.
    pub cluster_id: String,
}

impl Replication {
    /// Whether `config` is what is recorded.
    pub fn configured_as(&self, config: &ReplicationConfig) -> bool {
        self.role == config.role
            && self.slave_num == config.slave_num
            && self.queues == config.queues
            && self.db_scope == config.db_scope
            && !self.cluster_id.is_empty()
            && (config.cluster_id.is_empty() || self.cluster_id == config.cluster_id)
    }

    fn configure(&mut self, config: &ReplicationConfig) {
        self.role = config.role;
        self.slave_num = config.slave_num;
        self.queues = config.queues;
        self.db_scope = config.db_scope.clone();
        if !config.cluster_id.is_empty() {
            self.cluster_id = config.cluster_id.clone();
        }
    }

    /// Every task up to this one is finished here (slave).
    pub fn finished_watermark(&self) -> u64 {
        let s = &self.slave;
        s.first_unfinished().map_or(s.last_pulled, |id| id - 1)
    }
}

impl SlaveQueue {
    /// The first task that is not finished, looked for from [`Self::open_from`] on.
    fn first_unfinished(&self) -> Option<u64> {
        self.tasks
            .range(self.open_from..)
            .find(|(_, t)| t.state != TaskState::Finished)
            .map(|(id, _)| *id)
    }
}

impl MasterQueue {
    /// Queues a task at the end, in the newest group if it conflicts with none of that
    /// group's tasks.
    fn push(&mut self, mut task: MasterTask) -> u64 {
        self.last_task_id += 1;
        task.task_id = self.last_task_id;
        let current = self
            .tasks
            .values()
            .rev()
            .take_while(|t| t.group_id == self.last_group_id && !t.truncated);
        let mut joins = self.last_group_id > 0 && !task.chunks.ddl;
        let mut seen = false;
        for t in current {
            seen = true;
            if t.chunks.conflicts(&task.chunks) {
                joins = false;
                break;
            }
        }
        if !(joins && seen) {
            self.last_group_id += 1;
        }
        task.group_id = self.last_group_id;
        self.tasks.insert(task.task_id, Arc::new(task));
        self.last_task_id
    }
}

impl Metadata {
    /// The replication settings of `db` if a change to it must become a task now: this is an
    /// enabled master and replication is on for the database.
    pub fn replicated_db(&self, db: &str) -> Option<&DbReplication> {
        let r = &self.replication;
        if r.role != Some(Role::Master) || r.master.state != ReplicationState::Enabled {
            return None;
        }
        self.databases.get(db)?.replication.as_ref()
    }

    /// The database a DDL command changes, with its operation type, if it is replicated.
    pub(super) fn ddl_task_of(&self, cmd: &Command) -> Option<(String, String, OpType)> {
        let (db, table, op) = match cmd {
            Command::DropDatabase { name, .. } => (name.clone(), String::new(), OpType::DropDb),
            Command::CreateTable { db, def, .. } => (
                db.clone(),
                def.name.clone(),
                if def.is_dimension() {
                    OpType::CreateTable
                } else {
                    OpType::CreatePartitionedTable
                },
            ),
            Command::DropTable { db, table, .. } => (db.clone(), table.clone(), OpType::DropTable),
            Command::TruncateTable { db, table } => {
                (db.clone(), table.clone(), OpType::TruncateTable)
            }
            Command::AddColumn { db, table, .. } => (db.clone(), table.clone(), OpType::AddColumn),
            Command::DropColumn { db, table, .. } => {
                (db.clone(), table.clone(), OpType::DropColumn)
            }
            Command::RenameColumn { db, table, .. } => {
                (db.clone(), table.clone(), OpType::RenameColumn)
            }
            Command::AddValuePartitions { db, .. } => {
                (db.clone(), String::new(), OpType::AddValuePartition)
            }
            _ => return None,
        };
        self.replicated_db(&db)?;
        Some((db, table, op))
    }

    /// Queues the task of a DDL command just applied (see [`ddl_task_of`]).
    pub(super) fn queue_ddl(&mut self, db: String, table: String, op: OpType, cmd: &Command) {
        let execution_set = self
            .databases
            .get(&db)
            .and_then(|d| d.replication.as_ref())
            .map_or(0, |r| r.execution_set);
        self.last_tid += 1;
        let task = MasterTask {
            task_id: 0,
            tid: self.last_tid,
            group_id: 0,
            op,
            submit_ns: self.clock_ns,
            db,
            table,
            src: None,
            holders: Vec::new(),
            execution_set,
            chunks: Chunks::ddl(),
            payload: TaskPayload::Command(Box::new(cmd.clone())),
            rows: 0,
            truncated: false,
        };
        self.replication.master.push(task);
    }

    /// Queues the task of a committed write transaction; returns its task id.
    pub(super) fn queue_txn(
        &mut self,
        tid: u64,
        src: NodeId,
        holders: &[NodeId],
        task: &TxnTask,
    ) -> Option<u64> {
        let execution_set = self.replicated_db(&task.db)?.execution_set;
        let task = MasterTask {
            task_id: 0,
            tid,
            group_id: 0,
            op: task.op,
            submit_ns: self.clock_ns,
            db: task.db.clone(),
            table: task.table.clone(),
            src: Some(src),
            holders: match task.payload {
                TaskPayload::Append => holders.to_vec(),
                _ => Vec::new(),
            },
            execution_set,
            chunks: task.chunks.clone(),
            payload: task.payload.clone(),
            rows: task.rows,
            truncated: false,
        };
        Some(self.replication.master.push(task))
    }

    /// `setDatabaseForClusterReplication`: switches replication of `db` on or off. Switching
    /// it on queues the database's creation (CREATE_DOMAIN) and that of its tables, so a slave
    /// can replay what follows; rows already there are not copied.
    pub(super) fn set_db_replication(
        &mut self,
        db: &str,
        enabled: bool,
    ) -> Result<(), MetadataError> {
        self.require_role(Role::Master)?;
        let meta = self.database_mut(db)?;
        if !enabled {
            meta.replication = None;
            return Ok(());
        }
        if meta.replication.is_some() {
            return Ok(());
        }
        meta.replication = Some(DbReplication::default());
        if self.replicated_db(db).is_none() {
            return Ok(());
        }
        let Some(meta) = self.databases.get(db).cloned() else {
            return Ok(());
        };
        // Switched on again after a pause, the database is there on the slave already.
        let create = Command::CreateDatabase {
            def: meta.def.clone(),
            if_not_exists: true,
        };
        self.queue_ddl(db.to_string(), String::new(), OpType::CreateDomain, &create);
        for def in meta.tables.values() {
            let cmd = Command::CreateTable {
                db: db.to_string(),
                def: def.clone(),
                if_not_exists: false,
            };
            if let Some((db, table, op)) = self.ddl_task_of(&cmd) {
                self.queue_ddl(db, table, op, &cmd);
            }
        }
        Ok(())
    }

    /// `setDatabaseClusterReplicationExecutionSet`.
    pub(super) fn set_execution_set(&mut self, db: &str, set: u8) -> Result<(), MetadataError> {
        self.require_role(Role::Master)?;
        let meta = self.database_mut(db)?;
        match meta.replication.as_mut() {
            Some(r) => {
                r.execution_set = set;
                Ok(())
            }
            None => Err(MetadataError::NotReplicated(db.to_string())),
        }
    }

    /// Records the configured replication settings (the controller leader sends them).
    pub(super) fn configure_replication(&mut self, config: &ReplicationConfig) {
        self.replication.configure(config);
    }

    /// A slave's pull (master): records its progress and truncates what every slave has
    /// finished.
    pub(super) fn record_slave(
        &mut self,
        slave: &str,
        progress: SlaveProgress,
    ) -> Result<(), MetadataError> {
        self.require_role(Role::Master)?;
        let r = &mut self.replication;
        if !r.slaves.contains_key(slave) && r.slaves.len() >= r.slave_num as usize {
            return Err(MetadataError::TooManySlaves(r.slave_num));
        }
        r.slaves.insert(
            slave.to_string(),
            SlaveProgress {
                last_pull_ns: self.clock_ns,
                ..progress
            },
        );
        let done = r.slaves.values().map(|s| s.finished).min().unwrap_or(0);
        let q = &mut r.master;
        // Truncated tasks are a prefix of the queue (each truncation covers `..=done`): only
        // the newly finished ones are visited, and the excess is popped from the front.
        let newly: Vec<u64> = q
            .tasks
            .range(..=done)
            .rev()
            .take_while(|(_, t)| !t.truncated)
            .map(|(id, _)| *id)
            .collect();
        for id in newly {
            if let Some(t) = q.tasks.get_mut(&id) {
                let t = Arc::make_mut(t);
                t.truncated = true;
                // The slaves need it no more.
                t.payload = TaskPayload::Append;
                t.chunks = Chunks::default();
            }
        }
        // Every task up to `done` is truncated now: the (few) queued ones after it are
        // counted, not the truncated ones kept for the status functions. (Should a slave
        // attached later have pulled `done` below tasks already truncated, those count as
        // queued: fewer are dropped, never a queued one.)
        let truncated = q.tasks.len() - q.tasks.range(done.saturating_add(1)..).count();
        for _ in TRUNCATED_KEPT..truncated {
            pop_first(&mut q.tasks);
        }
        Ok(())
    }

    /// Tasks pulled from the master (slave): queued by execution set and database.
    pub(super) fn record_pulled(&mut self, tasks: &[PulledTask]) -> Result<(), MetadataError> {
        self.require_role(Role::Slave)?;
        // Stopped by stopClusterReplication(): a pull that was under way then brings nothing
        // in; its tasks are pulled again once replication starts.
        if self.replication.slave.state == ReplicationState::Disabled {
            return Ok(());
        }
        let queues = self.slave_queues();
        let now = self.clock_ns;
        let r = &mut self.replication;
        for p in tasks {
            let id = p.task.task_id;
            if id <= r.slave.last_pulled {
                continue;
            }
            r.slave.last_pulled = id;
            if r.db_scope
                .as_ref()
                .is_some_and(|scope| !scope.contains(&p.task.db))
            {
                continue;
            }
            let set = u32::from(p.task.execution_set.min(1));
            let queue_id = set * queues + (fnv1a(p.task.db.as_bytes()) % u64::from(queues)) as u32;
            r.slave.databases.insert(p.task.db.clone());
            r.slave.tasks.insert(
                id,
                Arc::new(SlaveTask {
                    task: p.task.clone(),
                    src_addr: p.src_addr.clone(),
                    holder_addrs: p.holder_addrs.clone(),
                    create_ns: now,
                    queue_id,
                    state: TaskState::Waiting,
                    attempts: 0,
                    details: String::new(),
                    finish_ns: 0,
                    execution_node: String::new(),
                }),
            );
        }
        Ok(())
    }

    /// Execution queues per execution set: `clusterReplicationQueue`, by default 4 per data
    /// node.
    pub fn slave_queues(&self) -> u32 {
        match self.replication.queues {
            0 => 4 * (self.nodes.len().max(1) as u32),
            n => n,
        }
    }

    /// The slave task `task_id`, unless it is finished (S01025).
    fn open_task(&mut self, task_id: u64, node: &str) -> Result<&mut SlaveTask, MetadataError> {
        match self.replication.slave.tasks.get_mut(&task_id) {
            Some(t) if t.state != TaskState::Finished => Ok(Arc::make_mut(t)),
            _ => Err(MetadataError::TaskDone {
                task_id,
                node: node.to_string(),
            }),
        }
    }

    /// Fails unless task `task_id` may still be applied (before applying a DDL task).
    pub(super) fn check_task_open(
        &mut self,
        task_id: u64,
        node: &str,
    ) -> Result<(), MetadataError> {
        self.open_task(task_id, node).map(|_| ())
    }

    /// Marks tasks finished by `node`, in the same log entry as their effect (exactly once):
    /// all of them, or none if one is finished already (a transaction applying several APPEND
    /// tasks).
    pub(super) fn finish_tasks(
        &mut self,
        task_ids: &[u64],
        node: &str,
    ) -> Result<(), MetadataError> {
        for id in task_ids {
            self.open_task(*id, node)?;
        }
        let now = self.clock_ns;
        for id in task_ids {
            let t = self.open_task(*id, node)?;
            t.state = TaskState::Finished;
            t.finish_ns = now;
            t.execution_node = node.to_string();
            t.details.clear();
        }
        self.trim_finished();
        Ok(())
    }

    /// The scheduler sent `task_ids` to data node `node`; those finished meanwhile are left
    /// as they are.
    pub(super) fn start_tasks(
        &mut self,
        task_ids: &[u64],
        node: &str,
    ) -> Result<(), MetadataError> {
        for id in task_ids {
            if let Ok(t) = self.open_task(*id, node) {
                t.state = TaskState::Executing;
                t.execution_node = node.to_string();
            }
        }
        Ok(())
    }

    /// Tasks sent together that failed together wait again, to run one by one.
    pub(super) fn requeue_tasks(&mut self, task_ids: &[u64]) -> Result<(), MetadataError> {
        for id in task_ids {
            if let Some(t) = self.replication.slave.tasks.get_mut(id) {
                if t.state == TaskState::Executing {
                    Arc::make_mut(t).state = TaskState::Waiting;
                }
            }
        }
        Ok(())
    }

    /// A failed execution: after [`MAX_ATTEMPTS`] the slave stops.
    pub(super) fn fail_task(
        &mut self,
        task_id: u64,
        node: &str,
        details: &str,
    ) -> Result<(), MetadataError> {
        let t = self.open_task(task_id, node)?;
        t.state = TaskState::Failed;
        t.attempts += 1;
        t.details = details.to_string();
        t.execution_node = node.to_string();
        if t.attempts >= MAX_ATTEMPTS {
            self.replication.slave.state = ReplicationState::Stopped;
        }
        Ok(())
    }

    /// `skipClusterReplicationTask`: the tasks count as finished without running.
    pub(super) fn skip_tasks(&mut self, ids: &[u64]) -> Result<(), MetadataError> {
        self.require_role(Role::Slave)?;
        let now = self.clock_ns;
        for id in ids {
            if let Some(t) = self.replication.slave.tasks.get_mut(id) {
                if t.state != TaskState::Finished {
                    let t = Arc::make_mut(t);
                    t.state = TaskState::Finished;
                    t.finish_ns = now;
                    t.details = "skipped by skipClusterReplicationTask".into();
                }
            }
        }
        self.trim_finished();
        Ok(())
    }

    /// `startClusterReplication` / `stopClusterReplication` on a slave. Starting re-runs
    /// failed tasks from a fresh count.
    pub(super) fn set_slave_state(&mut self, state: ReplicationState) -> Result<(), MetadataError> {
        self.require_role(Role::Slave)?;
        let s = &mut self.replication.slave;
        s.state = state;
        if state == ReplicationState::Enabled {
            let failed: Vec<u64> = s
                .tasks
                .iter()
                .filter(|(_, t)| t.state == TaskState::Failed)
                .map(|(id, _)| *id)
                .collect();
            for id in failed {
                if let Some(t) = s.tasks.get_mut(&id) {
                    Arc::make_mut(t).attempts = 0;
                }
            }
        }
        Ok(())
    }

    /// Moves [`SlaveQueue::open_from`] up to the first unfinished task, and keeps at most
    /// [`TRUNCATED_KEPT`] finished tasks below it. Each finished task is stepped over once.
    fn trim_finished(&mut self) {
        let s = &mut self.replication.slave;
        s.open_from = s.first_unfinished().unwrap_or(s.last_pulled + 1);
        let finished = s.tasks.len() - s.tasks.range(s.open_from..).count();
        for _ in TRUNCATED_KEPT..finished {
            pop_first(&mut s.tasks);
        }
    }

    /// How far each attached slave is behind, per database with queued tasks it has not
    /// finished (master): tasks behind, and the age at `now_ns` of the oldest of them.
    pub fn replication_lag(&self, now_ns: i64) -> Vec<Lag> {
        let r = &self.replication;
        let mut out = Vec::new();
        for (id, slave) in &r.slaves {
            let mut per_db: BTreeMap<&str, (u64, i64)> = BTreeMap::new();
            for t in r.master.tasks.range(slave.finished + 1..).map(|(_, t)| t) {
                let e = per_db.entry(t.db.as_str()).or_insert((0, t.submit_ns));
                e.0 += 1;
                e.1 = e.1.min(t.submit_ns);
            }
            for (db, meta) in &self.databases {
                if meta.replication.is_some() {
                    per_db.entry(db.as_str()).or_insert((0, now_ns));
                }
            }
            for (db, (tasks, oldest)) in per_db {
                out.push(Lag {
                    slave: id.clone(),
                    connected: slave.connected.clone(),
                    db: db.to_string(),
                    tasks_behind: tasks,
                    seconds_behind: (now_ns - oldest).max(0) as f64 / 1e9,
                });
            }
        }
        out
    }

    /// Fails with S01023 if `db` is written by replication on this slave (unless replication
    /// is stopped with `stopClusterReplication`): clients may only read it.
    pub fn check_not_replica(&self, db: &str) -> Result<(), MetadataError> {
        let r = &self.replication;
        if r.role == Some(Role::Slave)
            && r.slave.state != ReplicationState::Disabled
            && r.slave.databases.contains(db)
        {
            return Err(MetadataError::Replica(db.to_string()));
        }
        Ok(())
    }

    /// Fails unless replication is configured with `role`.
    pub fn require_role(&self, role: Role) -> Result<(), MetadataError> {
        match self.replication.role {
            None => Err(MetadataError::ReplicationNotConfigured),
            Some(r) if r == role => Ok(()),
            Some(_) => Err(MetadataError::WrongRole {
                function: String::new(),
                role,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(tables: &[&str], partitions: &[&str]) -> Chunks {
        Chunks {
            ddl: false,
            tables: tables.iter().map(|s| s.to_string()).collect(),
            partitions: partitions.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn task(c: Chunks) -> MasterTask {
        MasterTask {
            task_id: 0,
            tid: 1,
            group_id: 0,
            op: OpType::Append,
            submit_ns: 0,
            db: "dfs://d".into(),
            table: "t".into(),
            src: None,
            holders: Vec::new(),
            execution_set: 0,
            chunks: c,
            payload: TaskPayload::Append,
            rows: 0,
            truncated: false,
        }
    }

    #[test]
    fn a_stopped_slave_records_no_pulled_task() {
        let mut m = Metadata::default();
        m.replication.role = Some(Role::Slave);
        let pulled = |id| PulledTask {
            task: MasterTask {
                task_id: id,
                ..task(chunks(&[], &["d/t/1"]))
            },
            src_addr: "127.0.0.1:1".into(),
            holder_addrs: Vec::new(),
        };
        m.record_pulled(&[pulled(1)]).unwrap();
        m.set_slave_state(ReplicationState::Disabled).unwrap();
        // A pull that was under way when replication stopped.
        m.record_pulled(&[pulled(2)]).unwrap();
        assert_eq!(m.replication.slave.last_pulled, 1);
        assert_eq!(m.replication.slave.tasks.len(), 1);
        // Pulled again after startClusterReplication().
        m.set_slave_state(ReplicationState::Enabled).unwrap();
        m.record_pulled(&[pulled(2)]).unwrap();
        assert_eq!(m.replication.slave.last_pulled, 2);
        assert_eq!(m.replication.slave.tasks.len(), 2);
    }

    #[test]
    fn tasks_share_a_group_until_they_touch_the_same_partition() {
        let mut q = MasterQueue::default();
        q.push(task(Chunks::ddl()));
        q.push(task(chunks(&[], &["d/t/1"])));
        q.push(task(chunks(&[], &["d/t/2"])));
        q.push(task(chunks(&[], &["d/t/2", "d/t/3"])));
        q.push(task(chunks(&["d/u"], &[])));
        q.push(task(chunks(&[], &["d/u/9"])));
        q.push(task(Chunks::ddl()));
        q.push(task(chunks(&[], &["d/t/1"])));
        let groups: Vec<u64> = q.tasks.values().map(|t| t.group_id).collect();
        assert_eq!(groups, [1, 2, 2, 3, 3, 4, 5, 6]);
        let ids: Vec<u64> = q.tasks.keys().copied().collect();
        assert_eq!(ids, (1..=8).collect::<Vec<_>>());
    }

    #[test]
    fn a_task_is_truncated_once_every_slave_finished_it_and_at_most_so_many_are_kept() {
        let mut m = Metadata::default();
        m.replication.role = Some(Role::Master);
        m.replication.slave_num = 2;
        let n = TRUNCATED_KEPT as u64 + 5;
        for _ in 0..n {
            m.replication.master.push(task(chunks(&[], &["d/t/1"])));
        }
        let at = |finished| SlaveProgress {
            finished,
            ..SlaveProgress::default()
        };
        let truncated = |m: &Metadata| -> Vec<u64> {
            let q = &m.replication.master.tasks;
            q.values()
                .filter(|t| t.truncated)
                .map(|t| t.task_id)
                .collect()
        };
        m.record_slave("a", at(10)).unwrap();
        assert_eq!(truncated(&m), (1..=10).collect::<Vec<_>>());
        // A second slave attaches behind: nothing more until it catches up.
        m.record_slave("b", at(3)).unwrap();
        m.record_slave("a", at(20)).unwrap();
        assert_eq!(truncated(&m), (1..=10).collect::<Vec<_>>());
        m.record_slave("b", at(15)).unwrap();
        assert_eq!(truncated(&m), (1..=15).collect::<Vec<_>>());
        assert!(m.replication.master.tasks[&15].chunks.partitions.is_empty());
        assert!(!m.replication.master.tasks[&16].chunks.partitions.is_empty());
        // All finished: the oldest truncated tasks beyond the kept number are dropped.
        m.record_slave("a", at(n)).unwrap();
        m.record_slave("b", at(n)).unwrap();
        let q = &m.replication.master.tasks;
        assert_eq!(q.len(), TRUNCATED_KEPT);
        assert_eq!(q.keys().next(), Some(&6));
        assert!(q.values().all(|t| t.truncated));
    }

    /// A slave that pulled tasks 1..=n, all waiting.
    fn slave_with(n: u64) -> Metadata {
        let mut m = Metadata::default();
        m.replication.role = Some(Role::Slave);
        let pulled: Vec<PulledTask> = (1..=n)
            .map(|id| PulledTask {
                task: MasterTask {
                    task_id: id,
                    ..task(chunks(&[], &["d/t/1"]))
                },
                src_addr: "127.0.0.1:1".into(),
                holder_addrs: Vec::new(),
            })
            .collect();
        m.record_pulled(&pulled).unwrap();
        m
    }

    #[test]
    fn tasks_finish_together_or_not_at_all_and_at_most_so_many_are_kept() {
        let n = TRUNCATED_KEPT as u64 + 5;
        let mut m = slave_with(n);
        m.finish_tasks(&[1, 2], "dn1").unwrap();
        // Task 2 is finished already: 3 is not finished with it.
        assert!(matches!(
            m.finish_tasks(&[2, 3], "dn1"),
            Err(MetadataError::TaskDone { task_id: 2, .. })
        ));
        assert_eq!(m.replication.slave.tasks[&3].state, TaskState::Waiting);
        let rest: Vec<u64> = (3..=n).collect();
        m.finish_tasks(&rest, "dn2").unwrap();
        let tasks = &m.replication.slave.tasks;
        assert_eq!(tasks.len(), TRUNCATED_KEPT);
        assert_eq!(tasks.keys().next(), Some(&6));
        assert_eq!(tasks[&n].execution_node, "dn2");
    }

    #[test]
    fn open_from_follows_the_first_unfinished_task() {
        let mut m = slave_with(6);
        assert_eq!(m.replication.slave.open_from, 0);
        m.finish_tasks(&[2, 3], "dn1").unwrap();
        assert_eq!(m.replication.slave.open_from, 1, "task 1 is still open");
        m.finish_tasks(&[1], "dn1").unwrap();
        assert_eq!(m.replication.slave.open_from, 4);
        m.fail_task(4, "dn1", "no").unwrap();
        m.skip_tasks(&[5]).unwrap();
        assert_eq!(m.replication.slave.open_from, 4, "a failed task is open");
        m.skip_tasks(&[4, 6]).unwrap();
        assert_eq!(
            m.replication.slave.open_from, 7,
            "all finished: the next to be pulled"
        );
        assert_eq!(
            m.replication.slave.tasks.len(),
            6,
            "finished tasks are kept"
        );
    }

    /// The metadata is copied for every applied raft batch while readers hold the previous
    /// version: the copy must share what the batch does not change, not clone it.
    #[test]
    fn a_metadata_copy_shares_the_tasks_a_change_leaves_alone() {
        let before = Arc::new(slave_with(1000));
        let mut after = before.clone();
        Arc::make_mut(&mut after).finish_tasks(&[1], "dn1").unwrap();
        let (old, new) = (
            &before.replication.slave.tasks,
            &after.replication.slave.tasks,
        );
        assert_eq!(old[&1].state, TaskState::Waiting);
        assert_eq!(new[&1].state, TaskState::Finished);
        for id in 2..=1000 {
            assert!(Arc::ptr_eq(&old[&id], &new[&id]), "task {id} was cloned");
        }
    }
}
