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
use porpoise_functions::check_cluster_replication_consistency::Partition;
use porpoise_functions::get_cluster_replication_lag::Lag;
use porpoise_functions::get_cluster_replication_metrics::Metrics;
use porpoise_functions::get_cluster_replication_seed_status::Seed;
use porpoise_functions::get_database_cluster_replication_status::DatabaseReplication;
use porpoise_functions::get_master_replication_status::MasterTask;
use porpoise_functions::get_recent_slave_replication_info::SlaveInfo;
use porpoise_functions::get_slave_replication_execution_status::Execution;
use porpoise_functions::get_slave_replication_queue_status::Queue;
use porpoise_functions::get_slave_replication_status::SlaveTask;
use porpoise_functions::repair_cluster_replication::Repaired;
use porpoise_functions::rpc::Node;
use porpoise_functions::schema::DatabaseSchema;
use porpoise_functions::FunctionError;

use super::parse::literal::Literal;
use super::Engine;
use crate::catalog::{ColumnType, KeyValue, PartitionLevel};
use crate::controller::client::{ControllerClient, MetadataView};
use crate::controller::error::{ControllerError, MetadataError};
use crate::controller::metadata::{now_ns, Command, CommandResult, Privilege};
use crate::datanode::DataNode;
use crate::replication::model::{ReplicationCommand, ReplicationRole, ReplicationState};
use crate::replication::slave::executions::Replica;
use crate::replication::status;
use crate::rpc::{RemoteError, RpcError};
use crate::sqlstate::{ErrorCode, SqlState};
use serde::{Deserialize, Serialize};

/// What `getNodeAlias()` answers on a standalone server, whose one data node has no alias.
const STANDALONE_NODE_ALIAS: &str = "datanode";

/// The `do_get` ticket kind of a built-in function to run here for another node's `rpc`
/// ([`CallRequest`]).
pub const CALL: &str = "Call";

/// `rpc(alias, 'function', args...)` sent to the data node `alias`. The user is the one of an
/// authenticated session on the calling node, taken only from a node of this cluster (its
/// certificate proved it, [`crate::rpc::server`]); the function checks their rights as it
/// would for a local call.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CallRequest {
    pub user: String,
    pub function: String,
    /// Constant arguments, as datafusion-proto encoded literal expressions.
    pub args: Vec<Vec<u8>>,
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
    fn replication(
        &self,
        function: &str,
        role: ReplicationRole,
    ) -> Result<MetadataView, FunctionError> {
        let (metadata, _) = self.replication_role(function)?;
        metadata
            .replication()
            .require_role(role)
            .map_err(|e| metadata_error(function, e.into()))?;
        Ok(metadata)
    }

    /// The metadata for an administrator's call of `function`, which answers on either side,
    /// with this cluster's replication role (refused where replication is not configured).
    fn replication_role(
        &self,
        function: &str,
    ) -> Result<(MetadataView, ReplicationRole), FunctionError> {
        let metadata = self.controller.metadata();
        if !metadata.user(&self.user).is_some_and(|u| u.is_admin) {
            return Err(FunctionError {
                sqlstate: SqlState::INSUFFICIENT_PRIVILEGE.to_string(),
                message: format!("only administrators may call {function}"),
            });
        }
        let role = metadata
            .replication()
            .role
            .ok_or_else(|| metadata_error(function, MetadataError::ReplicationNotConfigured))?;
        Ok((metadata, role))
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

/// A new boundary of a RANGE level keyed by `key_type`, written as a number, a date, or a
/// text in DolphinDB's or SQL's form (22023 otherwise).
fn range_bound(key_type: ColumnType, v: &ScalarValue) -> Result<KeyValue, FunctionError> {
    let wrong = || FunctionError {
        sqlstate: SqlState::INVALID_PARAMETER_VALUE.code().to_string(),
        message: format!("addRangePartitions: {v} is not a boundary of a {key_type} RANGE level"),
    };
    let text = match v {
        ScalarValue::Utf8(Some(t))
        | ScalarValue::LargeUtf8(Some(t))
        | ScalarValue::Utf8View(Some(t)) => Some(t.as_str()),
        _ => None,
    };
    if matches!(key_type, ColumnType::Symbol | ColumnType::String) {
        return text.map(|t| KeyValue::Str(t.to_string())).ok_or_else(wrong);
    }
    let literal = match (v, text) {
        (_, Some(t)) => super::parse::literal::parse_numeric_literal(t, false)
            .or_else(|_| super::parse::literal::parse_sql_date(t))
            .or_else(|_| super::parse::literal::parse_sql_timestamp(t))
            .map_err(|_| wrong())?,
        (ScalarValue::Date32(Some(d)), _) => Literal::Date(*d),
        (v, _) => match v.cast_to(&arrow::datatypes::DataType::Int64) {
            Ok(ScalarValue::Int64(Some(n))) if !v.data_type().is_floating() => Literal::Int(n),
            _ => return Err(wrong()),
        },
    };
    let (t, key) = super::ddl_exec::key_of(&literal).map_err(|_| wrong())?;
    let integer_key = |t: ColumnType| {
        matches!(
            t,
            ColumnType::Long | ColumnType::Int | ColumnType::Short | ColumnType::Char
        )
    };
    if t == key_type || (t == ColumnType::Long && integer_key(key_type)) {
        Ok(key)
    } else {
        Err(wrong())
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
    if engine.controller().metadata().user(&req.user).is_none() {
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
        match self.controller.metadata().node_by_alias(alias) {
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
            .node_by_alias(alias)
            .map(|n| n.addr.clone())
            .ok_or_else(|| unknown_node(alias))?;
        let args = args
            .into_iter()
            .map(|v| lit(v).to_bytes().map(|b| b.to_vec()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(FunctionError::internal)?;
        let call = CallRequest {
            user: self.user.clone(),
            function: function.to_string(),
            args,
        };
        let ticket = crate::rpc::encode_ticket(CALL, &call).map_err(|e| rpc_error(alias, e))?;
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
        let Some(database) = metadata.database(db) else {
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
        self.replication(F, ReplicationRole::Master)?;
        let cmd = Command::SetDatabaseReplication {
            db: db.to_string(),
            enabled,
        };
        self.write(F, cmd).await
    }

    async fn set_execution_set(&self, db: &str, set: u8) -> Result<(), FunctionError> {
        const F: &str = "setDatabaseClusterReplicationExecutionSet";
        self.replication(F, ReplicationRole::Master)?;
        let cmd = Command::SetExecutionSet {
            db: db.to_string(),
            set,
        };
        self.write(F, cmd).await
    }

    async fn database_replication(&self) -> Result<Vec<DatabaseReplication>, FunctionError> {
        let metadata = self.replication(
            "getDatabaseClusterReplicationStatus",
            ReplicationRole::Master,
        )?;
        Ok(status::databases(&metadata))
    }

    async fn master_tasks(&self, function: &str) -> Result<Vec<MasterTask>, FunctionError> {
        let metadata = self.replication(function, ReplicationRole::Master)?;
        Ok(status::master_tasks(&metadata))
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
        match metadata.replication().role {
            Some(ReplicationRole::Slave) => {
                self.replication(function, ReplicationRole::Slave)?;
                self.write(
                    function,
                    Command::Replication(ReplicationCommand::SetSlaveState { state }),
                )
                .await
            }
            _ => {
                self.replication(function, ReplicationRole::Master)?;
                self.write(
                    function,
                    Command::Replication(ReplicationCommand::SetMasterState { state }),
                )
                .await
            }
        }
    }

    async fn slave_tasks(&self, function: &str) -> Result<Vec<SlaveTask>, FunctionError> {
        let metadata = self.replication(function, ReplicationRole::Slave)?;
        Ok(status::slave_tasks(&metadata))
    }

    async fn skip_tasks(&self, ids: &[u64]) -> Result<(), FunctionError> {
        const F: &str = "skipClusterReplicationTask";
        self.replication(F, ReplicationRole::Slave)?;
        self.write(
            F,
            Command::Replication(ReplicationCommand::SkipTasks { ids: ids.to_vec() }),
        )
        .await
    }

    async fn add_range_partitions(
        &self,
        db: &str,
        bounds: Vec<ScalarValue>,
        level: usize,
    ) -> Result<(), FunctionError> {
        const F: &str = "addRangePartitions";
        let metadata = self.controller.metadata();
        let refused = |e: MetadataError| metadata_error(F, e);
        metadata
            .check_privilege(&self.user, db, Privilege::Ddl)
            .map_err(refused)?;
        metadata
            .replication()
            .check_not_replica(db)
            .map_err(|e| refused(e.into()))?;
        let Some(database) = metadata.database(db) else {
            return Err(refused(MetadataError::DatabaseNotFound(db.to_string())));
        };
        let key_type = match database.def.levels.get(level) {
            Some(PartitionLevel::Range { key_type, .. }) => *key_type,
            _ => {
                let db = db.to_string();
                return Err(refused(MetadataError::NotRangeLevel { db, level }));
            }
        };
        let bounds = bounds
            .iter()
            .map(|v| range_bound(key_type, v))
            .collect::<Result<_, _>>()?;
        let db = db.to_string();
        self.write(F, Command::AddRangePartitions { db, level, bounds })
            .await
    }

    async fn remove_slave(&self, id: &str) -> Result<(), FunctionError> {
        const F: &str = "removeClusterReplicationSlave";
        self.replication(F, ReplicationRole::Master)?;
        self.write(
            F,
            Command::Replication(ReplicationCommand::RemoveSlave {
                slave: id.to_string(),
            }),
        )
        .await
    }

    async fn slaves(&self) -> Result<Vec<SlaveInfo>, FunctionError> {
        let metadata =
            self.replication("getRecentSlaveReplicationInfo", ReplicationRole::Master)?;
        Ok(status::slaves(&metadata))
    }

    async fn check_consistency(
        &self,
        db: &str,
        table: Option<&str>,
    ) -> Result<Vec<Partition>, FunctionError> {
        let metadata =
            self.replication("checkClusterReplicationConsistency", ReplicationRole::Slave)?;
        let diverged = metadata.replication().slave.diverged.get(db).cloned();
        let (point, compared) = crate::replication::check::check(&self.node, db, table)
            .await
            .map_err(|e| FunctionError {
                sqlstate: e.sqlstate.to_string(),
                message: e.message,
            })?;
        let rows = |d: Option<crate::replication::digest::Digest>| d.map(|d| d.rows as i64);
        Ok(compared
            .into_iter()
            .map(|c| Partition {
                diverged: diverged
                    .as_ref()
                    .and_then(|d| d.get(&c.table))
                    .is_some_and(|scope| scope.covers(&c.partition)),
                status: c.status().to_string(),
                master_rows: rows(c.master),
                slave_rows: rows(c.slave),
                table_name: c.table,
                partition: c.partition,
                replicated_task_id: point.task_id as i64,
                replicated_time_ns: point.master_ns,
            })
            .collect())
    }

    async fn repair(
        &self,
        db: &str,
        partitions: Option<Vec<(String, Option<String>)>>,
    ) -> Result<Vec<Repaired>, FunctionError> {
        const F: &str = "repairClusterReplication";
        self.replication(F, ReplicationRole::Slave)?;
        let (tables, items) = crate::replication::check::repair_scope(&self.node, db, partitions)
            .await
            .map_err(|e| FunctionError {
                sqlstate: e.sqlstate.to_string(),
                message: e.message,
            })?;
        if !tables.is_empty() {
            let db = db.to_string();
            let cmd = Command::Replication(ReplicationCommand::RequestRepair { db, tables });
            self.write(F, cmd).await?;
        }
        Ok(items
            .into_iter()
            .map(|(table_name, partition, reason)| Repaired {
                table_name,
                partition,
                reason,
            })
            .collect())
    }

    async fn seeds(&self) -> Result<Vec<Seed>, FunctionError> {
        match self.replication_role("getClusterReplicationSeedStatus")? {
            (metadata, ReplicationRole::Slave) => Ok(status::slave_seeds(&metadata)),
            (metadata, ReplicationRole::Master) => Ok(status::pending_cuts(&metadata)),
        }
    }

    async fn replication_metrics(&self, secs: Option<i64>) -> Result<Metrics, FunctionError> {
        let metadata = self.replication("getClusterReplicationMetrics", ReplicationRole::Slave)?;
        Ok(status::metrics(&metadata, secs))
    }

    async fn replication_lag(&self) -> Result<Vec<Lag>, FunctionError> {
        let (metadata, role) = self.replication_role("getClusterReplicationLag")?;
        Ok(status::lag(&metadata, now_ns(), role))
    }

    async fn slave_executions(&self) -> Result<Vec<Execution>, FunctionError> {
        self.replication("getSlaveReplicationExecutionStatus", ReplicationRole::Slave)?;
        Ok(self
            .replica
            .as_ref()
            .map(|r| status::executions(r))
            .unwrap_or_default())
    }

    async fn slave_queues(&self) -> Result<Vec<Queue>, FunctionError> {
        let metadata =
            self.replication("getSlaveReplicationQueueStatus", ReplicationRole::Slave)?;
        Ok(status::queues(&metadata, now_ns()))
    }
}
