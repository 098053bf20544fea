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

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::metadata::{Command, Metadata, MetadataError};
use crate::catalog::NodeId;

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
    pub tasks: BTreeMap<u64, MasterTask>,
}

/// Truncated tasks still listed by `getMasterReplicationStatus` (DolphinDB shows the 10,000
/// most recent finished ones).
pub const TRUNCATED_KEPT: usize = 10_000;

/// The replication part of the metadata.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Replication {
    /// `None` until the controller leader records the configured role (and when replication
    /// is not configured).
    pub role: Option<Role>,
    /// `clusterReplicationSlaveNum` (master).
    pub slave_num: u32,
    pub master: MasterQueue,
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
        self.tasks.insert(task.task_id, task);
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
            execution_set,
            chunks: Chunks::ddl(),
            payload: TaskPayload::Command(Box::new(cmd.clone())),
            rows: 0,
            truncated: false,
        };
        self.replication.master.push(task);
    }

    /// Queues the task of a committed write transaction; returns its task id.
    pub(super) fn queue_txn(&mut self, tid: u64, src: NodeId, task: &TxnTask) -> Option<u64> {
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
        let meta = self
            .databases
            .get_mut(db)
            .ok_or_else(|| MetadataError::DatabaseNotFound(db.to_string()))?;
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
        let create = Command::CreateDatabase {
            def: meta.def.clone(),
            if_not_exists: false,
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
        let meta = self
            .databases
            .get_mut(db)
            .ok_or_else(|| MetadataError::DatabaseNotFound(db.to_string()))?;
        match meta.replication.as_mut() {
            Some(r) => {
                r.execution_set = set;
                Ok(())
            }
            None => Err(MetadataError::NotReplicated(db.to_string())),
        }
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
            execution_set: 0,
            chunks: c,
            payload: TaskPayload::Append,
            rows: 0,
            truncated: false,
        }
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
}
