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
}
