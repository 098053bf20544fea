//! What the built-in functions of `porpoise-functions` reach through this node, acting as the
//! session's user: the controller (routed to its leader) and the metadata copy.
//!
//! Replication functions are for admins (42501 otherwise) and for the cluster role they belong
//! to: on a cluster without replication configured they fail with DolphinDB's "Replication is
//! not enabled. Specify the configuration parameters first.", and on the other role with
//! "`<function>` must be executed on the controller of the master cluster. RefId:S01024"
//! (both SQLSTATE 55000). A function called on a data node runs on the controller leader
//! through the data node's controller client; no `rpc` is needed.
//!
//! `schema(db)` is open to every user holding a privilege on the database (42501 otherwise,
//! 3F000 if there is no such database). `rpc` to another data node runs the function there
//! ([`serve_call`], through a Flight `do_get`) as this session's user.

use std::sync::Arc;

use arrow::array::RecordBatch;
use datafusion::common::ScalarValue;
use datafusion::logical_expr::{lit, Expr};
use datafusion_proto::bytes::Serializeable;
use futures::StreamExt;
use porpoise_functions::get_cluster_replication_metrics::Metrics;
use porpoise_functions::get_database_cluster_replication_status::DatabaseReplication;
use porpoise_functions::get_master_replication_status::MasterTask;
use porpoise_functions::get_recent_slave_replication_info::SlaveInfo;
use porpoise_functions::get_slave_replication_execution_status::Execution;
use porpoise_functions::get_slave_replication_status::SlaveTask;
use porpoise_functions::rpc::Node;
use porpoise_functions::schema::DatabaseSchema;
use porpoise_functions::FunctionError;

use super::literal::Literal;
use super::service::{CallRequest, DataTicket};
use super::Engine;
use crate::catalog::{ColumnType, KeyValue, PartitionLevel};
use crate::controller::client::ControllerClient;
use crate::controller::error::{ControllerError, MetadataError};
use crate::controller::metadata::{now_ns, Command, CommandResult, Metadata, Privilege};
use crate::controller::replication::{ReplicationState, Role, TaskState};
use crate::datanode::DataNode;
use crate::query::replica::Replica;
use crate::rpc::{RemoteError, RpcError};
use crate::sqlstate::{ErrorCode, SqlState};

/// What `getNodeAlias()` answers on a standalone server, whose one data node has no alias.
const STANDALONE_NODE_ALIAS: &str = "datanode";

/// `host:port` as (host, port).
fn split_addr(addr: &str) -> (String, i32) {
    addr.rsplit_once(':')
        .map_or((String::new(), 0), |(ip, port)| {
            (ip.to_string(), port.parse().unwrap_or(0))
        })
}

/// The cluster as one session's user sees it.
pub struct ClusterAccess {
    node: Arc<DataNode>,
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
    pub fn new(node: Arc<DataNode>, user: &str) -> Self {
        ClusterAccess {
            controller: node.controller().clone(),
            node,
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
                sqlstate: SqlState::INSUFFICIENT_PRIVILEGE.to_string(),
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

/// An `rpc` that failed on its way to data node `alias` or there.
fn rpc_error(alias: &str, e: RpcError) -> FunctionError {
    match e {
        // The function's own error, as it would be here.
        RpcError::Remote(e) => FunctionError {
            sqlstate: e.sqlstate.to_string(),
            message: e.message,
        },
        e => FunctionError {
            sqlstate: e.sqlstate().to_string(),
            message: format!("rpc on {alias}: {e}"),
        },
    }
}

/// A node alias this cluster does not have (42704, undefined_object).
fn unknown_node(alias: &str) -> FunctionError {
    FunctionError {
        sqlstate: SqlState::UNDEFINED_OBJECT.to_string(),
        message: format!("rpc: node \"{alias}\" is not a node of this cluster (see cluster.nodes)"),
    }
}

/// A partition key as DolphinDB prints it in a vector: `2023.01.01`, `2023.01M`, `5`, `"A"`.
fn key_text(key: ColumnType, value: &KeyValue) -> String {
    let v = match value {
        KeyValue::Str(s) => return format!("{s:?}"),
        KeyValue::Int(v) => *v,
    };
    let narrow = |v: i64| i32::try_from(v).ok();
    let literal = match key {
        ColumnType::Date => narrow(v).map(Literal::Date),
        ColumnType::Month => narrow(v).map(Literal::Month),
        ColumnType::Minute => narrow(v).map(Literal::Minute),
        ColumnType::Second => narrow(v).map(Literal::Second),
        ColumnType::Time => Some(Literal::Time(v)),
        ColumnType::DateTime => Some(Literal::DateTime(v)),
        ColumnType::Timestamp => Some(Literal::Timestamp(v)),
        ColumnType::NanoTimestamp => Some(Literal::NanoTimestamp(v)),
        _ => None,
    };
    literal.map_or_else(|| v.to_string(), |l| l.to_string())
}

/// A partition level as `schema(db)` shows it.
fn level_schema(level: &PartitionLevel) -> porpoise_functions::schema::PartitionLevel {
    let key = level.key_type();
    let vector = |keys: &mut dyn Iterator<Item = &KeyValue>| {
        format!(
            "[{}]",
            keys.map(|k| key_text(key, k)).collect::<Vec<_>>().join(",")
        )
    };
    let (type_id, scheme) = match level {
        PartitionLevel::Value { values, .. } => (1, vector(&mut values.iter())),
        PartitionLevel::Range { bounds, .. } => (2, vector(&mut bounds.iter())),
        PartitionLevel::List { lists, .. } => (
            3,
            format!(
                "({})",
                lists
                    .iter()
                    .map(|l| vector(&mut l.iter()))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        ),
        PartitionLevel::Hash { buckets, .. } => (5, buckets.to_string()),
    };
    porpoise_functions::schema::PartitionLevel {
        type_id,
        type_name: level.type_name().to_string(),
        column_type: key.dolphin_id(),
        scheme,
    }
}

/// Runs a built-in function for another data node's `rpc` ([`CallRequest`]), as the user it
/// names.
pub async fn serve_call(
    engine: &Arc<Engine>,
    req: CallRequest,
) -> Result<RecordBatch, RemoteError> {
    let error = |e: FunctionError| RemoteError::from_error(&e);
    if !engine.controller().metadata().users.contains_key(&req.user) {
        let e = MetadataError::UserNotFound(req.user.clone());
        return Err(RemoteError::from_error(&e));
    }
    let ctx = engine.base_state().task_ctx();
    let args = req
        .args
        .iter()
        .map(|b| match Expr::from_bytes_with_ctx(b, &ctx) {
            Ok(Expr::Literal(v, _)) => Ok(v),
            _ => Err(RemoteError::new(
                SqlState::PROTOCOL_VIOLATION,
                "rpc: an argument is not a constant",
            )),
        })
        .collect::<Result<Vec<ScalarValue>, _>>()?;
    let cluster = Arc::new(ClusterAccess::new(engine.node().clone(), &req.user));
    porpoise_functions::builtins(cluster)
        .call(&req.function, args)
        .await
        .map_err(error)
}

#[async_trait::async_trait]
impl porpoise_functions::Cluster for ClusterAccess {
    async fn controller_alias(&self) -> Result<String, FunctionError> {
        self.controller
            .leader_alias()
            .await
            .map_err(controller_error)
    }

    fn node_alias(&self) -> String {
        self.controller
            .metadata()
            .node(self.node.id)
            .map_or_else(|| STANDALONE_NODE_ALIAS.to_string(), |n| n.alias.clone())
    }

    fn locate(&self, alias: &str) -> Result<Node, FunctionError> {
        if self
            .controller
            .controller_aliases()
            .iter()
            .any(|a| a == alias)
        {
            return Ok(Node::Controller);
        }
        if alias == self.node_alias() {
            return Ok(Node::Local);
        }
        match self.controller.metadata().nodes.get(alias) {
            Some(_) => Ok(Node::Remote),
            None => Err(unknown_node(alias)),
        }
    }

    async fn call_on(
        &self,
        alias: &str,
        function: &str,
        args: Vec<ScalarValue>,
    ) -> Result<RecordBatch, FunctionError> {
        let addr = self
            .controller
            .metadata()
            .nodes
            .get(alias)
            .map(|n| n.addr.clone())
            .ok_or_else(|| unknown_node(alias))?;
        let args = args
            .into_iter()
            .map(|v| lit(v).to_bytes().map(|b| b.to_vec()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(FunctionError::internal)?;
        let ticket = crate::rpc::encode(&DataTicket::Call(CallRequest {
            user: self.user.clone(),
            function: function.to_string(),
            args,
        }))
        .map_err(|e| rpc_error(alias, e))?;
        let mut stream = self
            .node
            .peers()
            .get(&addr, ticket)
            .await
            .map_err(|e| rpc_error(alias, e))?;
        let mut batches = Vec::new();
        while let Some(b) = stream.next().await {
            let b = b.map_err(|e| {
                rpc_error(alias, crate::rpc::client::flight_error(&addr, "do_get", e))
            })?;
            batches.push(b);
        }
        let schema = match (batches.first(), stream.schema()) {
            (Some(b), _) => b.schema(),
            (None, Some(s)) => s.clone(),
            (None, None) => {
                return Err(FunctionError::internal(format!(
                    "rpc on {alias}: empty answer"
                )))
            }
        };
        arrow::compute::concat_batches(&schema, &batches).map_err(FunctionError::internal)
    }

    async fn database_schema(&self, db: &str) -> Result<DatabaseSchema, FunctionError> {
        const F: &str = "schema";
        let metadata = self.controller.metadata();
        let Some(database) = metadata.databases.get(db) else {
            return Err(metadata_error(
                F,
                MetadataError::DatabaseNotFound(db.to_string()),
            ));
        };
        // Any privilege on the database will do: it describes the database, not its rows.
        let mut refused = None;
        for p in Privilege::ALL {
            match metadata.check_privilege(&self.user, db, p) {
                Ok(()) => {
                    refused = None;
                    break;
                }
                Err(e) => {
                    refused.get_or_insert(e);
                }
            }
        }
        if let Some(e) = refused {
            return Err(metadata_error(F, e));
        }
        let def = &database.def;
        Ok(DatabaseSchema {
            database_dir: def.name.clone(),
            levels: def.levels.iter().map(level_schema).collect(),
            partition_sites: Vec::new(),
            atomic: "TRANS".into(),
            // Concurrent writes conflict per table, never per partition across tables.
            chunk_granularity: "TABLE".into(),
            cluster_replication_enabled: database.replication.is_some(),
            owner: def.owner.clone(),
            engine: def.engine.clone(),
        })
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
            .iter()
            .map(|(id, s)| SlaveInfo {
                cluster_id: id.clone(),
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
                .range(s.open_from..)
                .filter(|(_, t)| t.state != TaskState::Finished)
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
            pull_error: s.pull_error.clone(),
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
                    .range(s.open_from..)
                    .map(|(_, t)| t)
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
