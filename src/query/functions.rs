//! What the built-in functions of `porpoise-functions` reach through this node, acting as the
//! session's user: the controller (routed to its leader) and the metadata copy.
//!
//! Replication functions are for admins (42501 otherwise) and for the cluster role they belong
//! to: on a cluster without replication configured they fail with DolphinDB's "Replication is
//! not enabled. Specify the configuration parameters first.", and on the other role with
//! "`<function>` must be executed on the controller of the master cluster. RefId:S01024"
//! (both SQLSTATE 55000). A function called on a data node runs on the controller leader
//! through the data node's controller client; no `rpc` is needed.

use std::sync::Arc;

use porpoise_functions::get_cluster_replication_metrics::Metrics;
use porpoise_functions::get_database_cluster_replication_status::DatabaseReplication;
use porpoise_functions::get_master_replication_status::MasterTask;
use porpoise_functions::get_recent_slave_replication_info::SlaveInfo;
use porpoise_functions::get_slave_replication_execution_status::Execution;
use porpoise_functions::get_slave_replication_status::SlaveTask;
use porpoise_functions::FunctionError;

use crate::controller::client::ControllerClient;
use crate::controller::metadata::{now_ns, Command, CommandResult, Metadata, MetadataError};
use crate::controller::raft::ControllerError;
use crate::controller::replication::{ReplicationState, Role, TaskState};
use crate::query::replica::Replica;

/// `host:port` as (host, port).
fn split_addr(addr: &str) -> (String, i32) {
    addr.rsplit_once(':')
        .map_or((String::new(), 0), |(ip, port)| {
            (ip.to_string(), port.parse().unwrap_or(0))
        })
}

/// The cluster as one session's user sees it.
pub struct ClusterAccess {
    controller: Arc<dyn ControllerClient>,
    user: String,
    /// This node's replication workers (a data node's sessions).
    replica: Option<Arc<Replica>>,
}

impl std::fmt::Debug for ClusterAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterAccess")
            .field("user", &self.user)
            .finish()
    }
}

fn metadata_error(function: &str, e: MetadataError) -> FunctionError {
    let e = match e {
        MetadataError::WrongRole { role, .. } => MetadataError::WrongRole {
            function: function.to_string(),
            role,
        },
        e => e,
    };
    FunctionError {
        sqlstate: e.sqlstate().to_string(),
        message: e.to_string(),
    }
}

fn controller_error(e: ControllerError) -> FunctionError {
    FunctionError {
        sqlstate: e.sqlstate().to_string(),
        message: e.to_string(),
    }
}

impl ClusterAccess {
    pub fn new(controller: Arc<dyn ControllerClient>, user: &str) -> Self {
        ClusterAccess {
            controller,
            user: user.to_string(),
            replica: None,
        }
    }

    /// Sessions of a data node also see its replication workers.
    pub fn with_replica(mut self, replica: Arc<Replica>) -> Self {
        self.replica = Some(replica);
        self
    }

    /// The metadata, if the user is an admin and this cluster has replication `role`.
    fn replication(&self, function: &str, role: Role) -> Result<Arc<Metadata>, FunctionError> {
        let metadata = self.controller.metadata();
        if !metadata.users.get(&self.user).is_some_and(|u| u.is_admin) {
            return Err(FunctionError {
                sqlstate: "42501".into(),
                message: format!("only administrators may call {function}"),
            });
        }
        metadata
            .require_role(role)
            .map_err(|e| metadata_error(function, e))?;
        Ok(metadata)
    }

    /// Proposes `cmd`, turning a refusal into the function's error.
    async fn write(&self, function: &str, cmd: Command) -> Result<(), FunctionError> {
        match self.controller.write(cmd).await.map_err(controller_error)? {
            CommandResult::Err(e) => Err(metadata_error(function, e)),
            _ => Ok(()),
        }
    }
}

#[async_trait::async_trait]
impl porpoise_functions::Cluster for ClusterAccess {
    async fn controller_alias(&self) -> Result<String, FunctionError> {
        self.controller
            .leader_alias()
            .await
            .map_err(controller_error)
    }

    async fn set_database_replication(&self, db: &str, enabled: bool) -> Result<(), FunctionError> {
        const F: &str = "setDatabaseForClusterReplication";
        self.replication(F, Role::Master)?;
        let cmd = Command::SetDatabaseReplication {
            db: db.to_string(),
            enabled,
        };
        self.write(F, cmd).await
    }

    async fn set_execution_set(&self, db: &str, set: u8) -> Result<(), FunctionError> {
        const F: &str = "setDatabaseClusterReplicationExecutionSet";
        self.replication(F, Role::Master)?;
        let cmd = Command::SetExecutionSet {
            db: db.to_string(),
            set,
        };
        self.write(F, cmd).await
    }

    async fn database_replication(&self) -> Result<Vec<DatabaseReplication>, FunctionError> {
        let metadata = self.replication("getDatabaseClusterReplicationStatus", Role::Master)?;
        Ok(metadata
            .databases
            .values()
            .map(|d| DatabaseReplication {
                db_name: d.def.name.clone(),
                enabled: d.replication.is_some(),
                execution_set: d
                    .replication
                    .as_ref()
                    .map_or(0, |r| i32::from(r.execution_set)),
            })
            .collect())
    }

    async fn master_tasks(&self, function: &str) -> Result<Vec<MasterTask>, FunctionError> {
        let metadata = self.replication(function, Role::Master)?;
        Ok(metadata
            .replication
            .master
            .tasks
            .values()
            .map(|t| {
                let (ip, port) = t
                    .src
                    .and_then(|id| metadata.node(id))
                    .map_or((String::new(), 0), |n| split_addr(&n.addr));
                MasterTask {
                    task_id: t.task_id as i64,
                    tid: t.tid as i64,
                    group_id: t.group_id as i64,
                    operation_type: t.op.name().to_string(),
                    submit_time_ns: t.submit_ns,
                    db_name: t.db.clone(),
                    table_name: t.table.clone(),
                    src_ip: ip,
                    src_port: port,
                    is_truncated: t.truncated,
                }
            })
            .collect())
    }

    async fn set_replication_running(
        &self,
        function: &str,
        running: bool,
    ) -> Result<(), FunctionError> {
        let metadata = self.controller.metadata();
        let state = if running {
            ReplicationState::Enabled
        } else {
            ReplicationState::Disabled
        };
        match metadata.replication.role {
            Some(Role::Slave) => {
                self.replication(function, Role::Slave)?;
                self.write(function, Command::SetSlaveState { state }).await
            }
            _ => {
                self.replication(function, Role::Master)?;
                self.write(function, Command::SetMasterState { state })
                    .await
            }
        }
    }

    async fn slave_tasks(&self, function: &str) -> Result<Vec<SlaveTask>, FunctionError> {
        let metadata = self.replication(function, Role::Slave)?;
        let s = &metadata.replication.slave;
        Ok(s.tasks
            .values()
            .map(|t| {
                let (ip, port) = split_addr(&t.src_addr);
                SlaveTask {
                    task_id: t.task.task_id as i64,
                    master_tid: t.task.tid as i64,
                    group_id: t.task.group_id as i64,
                    execution_set: i32::from(t.task.execution_set),
                    queue_id: t.queue_id as i32,
                    operation_type: t.task.op.name().to_string(),
                    create_time_ns: t.create_ns,
                    db_name: t.task.db.clone(),
                    table_name: t.task.table.clone(),
                    src_ip: ip,
                    src_port: port,
                    finish_time_ns: (t.state == TaskState::Finished).then_some(t.finish_ns),
                    execution_node: t.execution_node.clone(),
                    state: t.state.name().to_string(),
                    details: t.details.clone(),
                    master_commit_time_ns: t.task.submit_ns,
                }
            })
            .collect())
    }

    async fn skip_tasks(&self, ids: &[u64]) -> Result<(), FunctionError> {
        const F: &str = "skipClusterReplicationTask";
        self.replication(F, Role::Slave)?;
        self.write(F, Command::SkipTasks { ids: ids.to_vec() })
            .await
    }

    async fn slaves(&self) -> Result<Vec<SlaveInfo>, FunctionError> {
        let metadata = self.replication("getRecentSlaveReplicationInfo", Role::Master)?;
        let r = &metadata.replication;
        Ok(r.slaves
            .values()
            .map(|s| SlaveInfo {
                connected_controller: s.connected.clone(),
                all_controllers: s.controllers.join(","),
                last_finished_task_id: s.finished as i64,
                last_pull_time_ns: s.last_pull_ns,
                tasks_behind: r.master.last_task_id.saturating_sub(s.finished) as i64,
            })
            .collect())
    }

    async fn replication_metrics(&self, secs: Option<i64>) -> Result<Metrics, FunctionError> {
        let metadata = self.replication("getClusterReplicationMetrics", Role::Slave)?;
        let s = &metadata.replication.slave;
        let now = metadata.clock_ns;
        let since = secs.map_or(i64::MIN, |secs| now - secs * 1_000_000_000);
        let finished: Vec<_> = s
            .tasks
            .values()
            .filter(|t| t.state == TaskState::Finished && t.finish_ns >= since)
            .collect();
        let costs: Vec<i64> = finished.iter().map(|t| t.finish_ns - t.create_ns).collect();
        let groups: std::collections::BTreeSet<(u32, u64)> = finished
            .iter()
            .map(|t| (t.queue_id, t.task.group_id))
            .collect();
        let n = finished.len() as i64;
        let window_secs = match secs {
            Some(secs) => secs as f64,
            None => finished
                .iter()
                .map(|t| t.create_ns)
                .min()
                .map_or(1.0, |first| ((now - first) as f64 / 1e9).max(1.0)),
        };
        Ok(Metrics {
            status: s.state.name().to_string(),
            finished_tasks: n,
            unfinished_tasks: s
                .tasks
                .values()
                .filter(|t| t.state != TaskState::Finished)
                .count() as i64,
            finished_tasks_per_sec: n as f64 / window_secs,
            max_cost_ns: costs.iter().copied().max().unwrap_or(0),
            avg_cost_ns: if n > 0 {
                costs.iter().sum::<i64>() / n
            } else {
                0
            },
            average_group_size: if groups.is_empty() {
                0.0
            } else {
                n as f64 / groups.len() as f64
            },
        })
    }

    async fn replication_lag(
        &self,
    ) -> Result<Vec<porpoise_functions::get_cluster_replication_lag::Lag>, FunctionError> {
        let metadata = self.replication("getClusterReplicationLag", Role::Master)?;
        Ok(metadata
            .replication_lag(now_ns())
            .into_iter()
            .map(|l| porpoise_functions::get_cluster_replication_lag::Lag {
                slave: l.slave,
                connected_controller: l.connected,
                db_name: l.db,
                tasks_behind: l.tasks_behind as i64,
                seconds_behind: l.seconds_behind,
            })
            .collect())
    }

    async fn slave_executions(&self) -> Result<Vec<Execution>, FunctionError> {
        self.replication("getSlaveReplicationExecutionStatus", Role::Slave)?;
        let executions = self.replica.as_ref().map(|r| r.executions());
        Ok(executions
            .unwrap_or_default()
            .into_iter()
            .map(|e| Execution {
                execution_set: i32::from(e.execution_set),
                worker: e.worker as i32,
                task_id: e.task_id as i64,
                state: e.state.as_str().to_string(),
            })
            .collect())
    }

    async fn slave_queues(
        &self,
    ) -> Result<Vec<porpoise_functions::get_slave_replication_queue_status::Queue>, FunctionError>
    {
        use porpoise_functions::get_slave_replication_queue_status::Queue;
        let metadata = self.replication("getSlaveReplicationQueueStatus", Role::Slave)?;
        let s = &metadata.replication.slave;
        let per_set = metadata.slave_queues();
        let mut nodes: Vec<_> = metadata.nodes.values().collect();
        nodes.sort_by_key(|n| n.id);
        let now = now_ns();
        Ok((0..2 * per_set)
            .map(|queue_id| {
                let unfinished: Vec<_> = s
                    .tasks
                    .values()
                    .filter(|t| t.queue_id == queue_id && t.state != TaskState::Finished)
                    .collect();
                let group = unfinished.first().map(|t| t.task.group_id);
                let current: Vec<_> = unfinished
                    .iter()
                    .filter(|t| Some(t.task.group_id) == group)
                    .collect();
                let failed = current.iter().any(|t| t.state == TaskState::Failed);
                let status = match (unfinished.is_empty(), failed, s.state) {
                    (true, _, _) => "FINISHED",
                    (false, true, ReplicationState::Stopped) => "STOPPED",
                    (false, true, _) => "FAILED",
                    (false, false, _) => "EXECUTING",
                };
                Queue {
                    execution_set: (queue_id / per_set) as i32,
                    queue_id: queue_id as i32,
                    unfinished_tasks: unfinished.len() as i64,
                    execution_group_id: group.map_or(-1, |g| g as i64),
                    execution_node: if nodes.is_empty() {
                        String::new()
                    } else {
                        nodes[queue_id as usize % nodes.len()].alias.clone()
                    },
                    execution_time_ns: current.iter().map(|t| now - t.create_ns).max().unwrap_or(0),
                    status: status.to_string(),
                }
            })
            .collect())
    }
}
