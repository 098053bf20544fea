//! Why a replication command is refused.

/// Why a command of [`super::ReplicationCommand`] (or a check of the queues) is refused. The
/// controller carries each as the like-named variant of its own error, whose messages keep
/// DolphinDB's text and `RefId` codes.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReplicationError {
    #[error("replication is not configured")]
    NotConfigured,
    #[error("must be executed on the controller of the {} cluster", .role.name())]
    WrongRole { role: super::ReplicationRole },
    #[error("at most {0} slave clusters may attach (clusterReplicationSlaveNum)")]
    TooManySlaves(u32),
    #[error("task {task_id} on node {node} is finished or invalid")]
    TaskDone { task_id: u64, node: String },
    #[error("database {0} is written by replication")]
    Replica(String),
    /// `skipClusterReplicationTask` with ids this slave does not hold.
    #[error("no tasks {ids:?} on this slave")]
    UnknownTasks { ids: Vec<u64> },
    /// `removeClusterReplicationSlave` with an id that is neither attached nor refused.
    #[error("no slave cluster {0}")]
    UnknownSlave(String),
    /// A seed step for a seed that is installed, replaced by a newer cut, or whose table is
    /// installed already.
    #[error("the seed of {db} at task {cut_task} is installed or replaced")]
    SeedDone { db: String, cut_task: u64 },
    /// A seed marked done before every table of its cut was installed.
    #[error("the seed of {db} has tables not installed: {tables:?}")]
    SeedIncomplete { db: String, tables: Vec<String> },
    /// A read of a database whose seed is not installed yet.
    #[error("database {0} is being seeded")]
    Seeding(String),
    /// A repair of a database this slave does not replicate.
    #[error("database {0} is not replicated here")]
    NotReplicated(String),
}
