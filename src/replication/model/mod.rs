//! The pure state of cross-cluster replication: the master's send queue, the slaves it
//! serves, and a slave's pulled tasks with their execution queues.
//!
//! The state lives inside the controller's replicated metadata and changes only through
//! [`ReplicationCommand`]s applied by [`Replication::apply`] (and the few transitions the
//! controller calls for entries that cross the catalog and the queues: queueing a task with a
//! commit, finishing tasks with the commit that applies them). Every transition is
//! deterministic: what it needs of the world comes in a [`Context`] (the clock of the raft
//! entry, the number of data nodes, a read-only view of the databases), so every controller
//! and every data node's copy agree on the result.
//!
//! - [`task`]: what a task is, on either side;
//! - [`master`]: the send queue, grouping, slave progress and truncation;
//! - [`slave`]: pulled tasks, execution queues and task states.
//!
//! Format: serialised inside the controller's snapshots and log entries (JSON); fields added
//! later carry `#[serde(default)]`.

pub mod error;
pub mod master;
pub mod seed;
pub mod slave;
pub mod task;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use error::ReplicationError;
pub use master::{Lag, MasterQueue, RefusedSlave, SlaveProgress, REFUSED_KEPT, TRUNCATED_KEPT};
pub use seed::{
    merge_scope, PulledSeed, Repair, Scope, SeedCatalog, SeedCut, SeedState, SeedStep, SlaveSeed,
    TableScope,
};
pub use slave::{SlaveQueue, MAX_ATTEMPTS};
pub use task::{
    Applies, Chunks, MasterTask, OpType, PulledTask, ReadPoint, SlaveTask, TaskPayload, TaskState,
    TxnTask,
};

/// A cluster's replication role (`clusterReplicationMode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReplicationRole {
    Master,
    Slave,
}

impl ReplicationRole {
    pub fn name(self) -> &'static str {
        match self {
            ReplicationRole::Master => "master",
            ReplicationRole::Slave => "slave",
        }
    }
}

/// The state of a queue: DolphinDB's `ENABLED`, `DISABLED` (stopped by
/// `stopClusterReplication`) and `STOPPED` (a slave task failed too often).
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

/// The replication part of the controller's metadata.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Replication {
    /// `None` until the controller leader records the configured role (and when replication
    /// is not configured).
    pub role: Option<ReplicationRole>,
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
    /// Slaves whose last pull was refused, by cluster id, with the reason (master). An
    /// attached slave may be here too (its progress did not match); an admitted pull
    /// removes it.
    #[serde(default)]
    pub refused: BTreeMap<String, RefusedSlave>,
    #[serde(default)]
    pub slave: SlaveQueue,
    /// Cuts each slave has still to install, by slave cluster id and database (master; see
    /// [`seed`]).
    #[serde(default)]
    pub cuts: BTreeMap<String, BTreeMap<String, Arc<SeedCut>>>,
}

/// The settings of [`ReplicationCommand::ConfigureReplication`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ReplicationConfig {
    pub role: Option<ReplicationRole>,
    pub slave_num: u32,
    pub queues: u32,
    pub db_scope: Option<Vec<String>>,
    /// The cluster's id, from its certificate.
    pub cluster_id: String,
}

/// The databases as the replication state sees them: read-only.
pub trait Databases {
    /// The replication settings of `db`, while replication is on for it.
    fn replication(&self, db: &str) -> Option<&DbReplication>;
    /// The databases replication is on for.
    fn replicated(&self) -> Vec<&str>;
    /// The catalog of `db` now (for a seed's cut).
    fn catalog(&self, db: &str) -> Option<SeedCatalog>;
}

/// What a transition may know of the world besides the replication state.
pub struct Context<'a> {
    /// The clock of the raft entry being applied (ns since the epoch).
    pub now_ns: i64,
    /// The log index of the raft entry being applied.
    pub index: u64,
    /// The data nodes of this cluster.
    pub data_nodes: usize,
    pub databases: &'a dyn Databases,
}

/// The changes to the replication state that touch nothing else. In the controller's log
/// each is encoded as a command of its own name (`{"SkipTasks": {...}}`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ReplicationCommand {
    /// Records the cluster's configured replication settings (sent by the controller leader).
    ConfigureReplication(ReplicationConfig),
    /// A slave pulled (master): its progress.
    SlaveProgress {
        slave: String,
        progress: SlaveProgress,
    },
    /// Tasks pulled from the master (slave), and the seeds it sent: every task up to
    /// `start_after` is covered by them.
    PulledTasks {
        tasks: Vec<PulledTask>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        seeds: Vec<PulledSeed>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        start_after: Option<u64>,
    },
    /// The size of a seed, once the files of every table of its cut were listed (slave).
    SeedTotals {
        db: String,
        cut_task: u64,
        partitions: u64,
        bytes: u64,
    },
    /// A try of a seed failed; it is tried again (slave).
    SeedFailed {
        db: String,
        cut_task: u64,
        error: String,
    },
    /// Every table of a seed is installed (slave).
    SeedDone { db: String, cut_task: u64 },
    /// A repair that cannot be installed (a table it names differs from the master's) is
    /// given up, so the database's later tasks run again (slave).
    RepairAbandoned {
        db: String,
        cut_task: u64,
        error: String,
    },
    /// The master's data nodes changed (slave).
    MasterNodes { nodes: Vec<String> },
    /// Why the slave's pulls fail (the master refuses it, cannot be reached or verified), or
    /// `None` once a pull succeeds again (slave).
    SlavePullError { error: Option<String> },
    /// The slave's scheduler sent tasks to a data node.
    TaskStarted { task_ids: Vec<u64>, node: String },
    /// Tasks sent together failed together; they wait to run one by one.
    TasksRequeued { task_ids: Vec<u64> },
    /// A slave task failed on a data node.
    TaskFailed {
        task_id: u64,
        node: String,
        details: String,
    },
    /// `skipClusterReplicationTask(ids)`.
    SkipTasks { ids: Vec<u64> },
    /// `startClusterReplication()` / `stopClusterReplication()` on a slave.
    SetSlaveState { state: ReplicationState },
    /// `startClusterReplication()` / `stopClusterReplication()` on a master.
    SetMasterState { state: ReplicationState },
    /// A slave's pull was refused (master): why, for the slave listing.
    SlaveRefused {
        slave: String,
        progress: SlaveProgress,
        reason: String,
    },
    /// `removeClusterReplicationSlave(id)` (master).
    RemoveSlave { slave: String },
    /// `repairClusterReplication(db, ...)` (slave): ask the master to replace `tables` of
    /// `db` by their state at a new cut.
    RequestRepair { db: String, tables: Scope },
}

impl Replication {
    /// Applies one command. Deterministic; a refused command changes nothing.
    pub fn apply(
        &mut self,
        cmd: &ReplicationCommand,
        ctx: &Context,
    ) -> Result<(), ReplicationError> {
        match cmd {
            ReplicationCommand::ConfigureReplication(config) => {
                self.configure(config);
                Ok(())
            }
            ReplicationCommand::SlaveProgress { slave, progress } => {
                self.record_slave(slave, progress.clone(), ctx)
            }
            ReplicationCommand::PulledTasks {
                tasks,
                seeds,
                start_after,
            } => self.record_pulled(tasks, seeds, *start_after, ctx),
            ReplicationCommand::SeedTotals {
                db,
                cut_task,
                partitions,
                bytes,
            } => self.seed_totals(db, *cut_task, *partitions, *bytes),
            ReplicationCommand::SeedFailed {
                db,
                cut_task,
                error,
            } => self.seed_failed(db, *cut_task, error),
            ReplicationCommand::SeedDone { db, cut_task } => self.seed_done(db, *cut_task, ctx),
            ReplicationCommand::RepairAbandoned {
                db,
                cut_task,
                error,
            } => self.abandon_repair(db, *cut_task, error, ctx),
            ReplicationCommand::MasterNodes { nodes } => {
                self.slave.master_nodes = nodes.clone();
                Ok(())
            }
            ReplicationCommand::SlavePullError { error } => {
                self.slave.pull_error = error.clone();
                Ok(())
            }
            ReplicationCommand::TaskStarted { task_ids, node } => {
                self.start_tasks(task_ids, node);
                Ok(())
            }
            ReplicationCommand::TasksRequeued { task_ids } => {
                self.requeue_tasks(task_ids);
                Ok(())
            }
            ReplicationCommand::TaskFailed {
                task_id,
                node,
                details,
            } => self.fail_task(*task_id, node, details),
            ReplicationCommand::SkipTasks { ids } => self.skip_tasks(ids, ctx),
            ReplicationCommand::SetSlaveState { state } => self.set_slave_state(*state),
            ReplicationCommand::SetMasterState { state } => {
                self.require_role(ReplicationRole::Master)?;
                self.master.state = *state;
                Ok(())
            }
            ReplicationCommand::SlaveRefused {
                slave,
                progress,
                reason,
            } => self.record_refusal(slave, progress, reason, ctx),
            ReplicationCommand::RemoveSlave { slave } => self.remove_slave(slave),
            ReplicationCommand::RequestRepair { db, tables } => {
                self.request_repair(db, tables, ctx)
            }
        }
    }

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

    /// Fails unless replication is configured with `role`.
    pub fn require_role(&self, role: ReplicationRole) -> Result<(), ReplicationError> {
        match self.role {
            None => Err(ReplicationError::NotConfigured),
            Some(r) if r == role => Ok(()),
            Some(_) => Err(ReplicationError::WrongRole { role }),
        }
    }
}
