//! porpoise's built-in SQL functions, one per file, in DataFusion's `ScalarUDFImpl` /
//! `TableFunctionImpl` style. The crate is pure: it reaches the cluster only through the
//! [`Cluster`] trait the server implements, and imports nothing from the server.
//!
//! Functions that need the cluster (the controller, other nodes) are async: commands are async
//! scalar functions DataFusion awaits during execution, and table functions fetch their rows
//! when the query is planned; a call never blocks a runtime thread ([`support`]).
//!
//! Names are DolphinDB's (`getControllerAlias`); each is also registered in lower case, since
//! PostgreSQL clients fold unquoted names. Who may call what (replication functions are for
//! admins) and on which cluster is the server's business, behind [`Cluster`].

pub mod add_range_partitions;
pub mod check_cluster_replication_consistency;
pub mod get_cluster_replication_lag;
pub mod get_cluster_replication_metrics;
pub mod get_cluster_replication_seed_status;
pub mod get_controller_alias;
pub mod get_database_cluster_replication_status;
pub mod get_master_replication_status;
pub mod get_node_alias;
pub mod get_recent_slave_replication_info;
pub mod get_slave_replication_execution_status;
pub mod get_slave_replication_queue_status;
pub mod get_slave_replication_status;
pub mod remove_cluster_replication_slave;
pub mod repair_cluster_replication;
pub mod rpc;
pub mod schema;
pub mod set_database_cluster_replication_execution_set;
pub mod set_database_for_cluster_replication;
pub mod skip_cluster_replication_task;
pub mod start_cluster_replication;
pub mod stop_cluster_replication;
pub mod support;

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::common::ScalarValue;
use datafusion::execution::context::SessionContext;

/// What the functions need from the cluster.
#[async_trait]
pub trait Cluster: Send + Sync + std::fmt::Debug + 'static {
    /// The alias of the controller leader (`cluster.nodes`).
    async fn controller_alias(&self) -> Result<String, FunctionError>;

    /// The alias of the data node the session is on.
    fn node_alias(&self) -> String;

    /// Where node `alias` of this cluster is, for `rpc` (42704 if there is no such node).
    fn locate(&self, alias: &str) -> Result<rpc::Node, FunctionError>;

    /// Runs built-in `function` on data node `alias` as this user ([`rpc::Builtins::call`]
    /// there) and returns its result.
    async fn call_on(
        &self,
        alias: &str,
        function: &str,
        args: Vec<datafusion::common::ScalarValue>,
    ) -> Result<datafusion::arrow::array::RecordBatch, FunctionError>;

    /// Database `db` as `schema(db)` shows it, if the user holds a privilege on it.
    async fn database_schema(&self, db: &str) -> Result<schema::DatabaseSchema, FunctionError>;

    /// Switches replication of database `db` on or off (master).
    async fn set_database_replication(&self, db: &str, enabled: bool) -> Result<(), FunctionError>;

    /// Puts a replicated database in execution set `set` (0 or 1) (master).
    async fn set_execution_set(&self, db: &str, set: u8) -> Result<(), FunctionError>;

    /// Every database's replication settings (master).
    async fn database_replication(
        &self,
    ) -> Result<Vec<get_database_cluster_replication_status::DatabaseReplication>, FunctionError>;

    /// The master's queued tasks and the most recent truncated ones, in any order; `function`
    /// names the caller for error messages.
    async fn master_tasks(
        &self,
        function: &str,
    ) -> Result<Vec<get_master_replication_status::MasterTask>, FunctionError>;

    /// The tasks this slave pulled (the most recent finished ones and every unfinished one),
    /// in any order.
    async fn slave_tasks(
        &self,
        function: &str,
    ) -> Result<Vec<get_slave_replication_status::SlaveTask>, FunctionError>;

    /// The slave's execution queues.
    async fn slave_queues(
        &self,
    ) -> Result<Vec<get_slave_replication_queue_status::Queue>, FunctionError>;

    /// The replication tasks on this slave data node's workers.
    async fn slave_executions(
        &self,
    ) -> Result<Vec<get_slave_replication_execution_status::Execution>, FunctionError>;

    /// Marks slave tasks finished without running them.
    async fn skip_tasks(&self, ids: &[u64]) -> Result<(), FunctionError>;

    /// `addRangePartitions`: appends `bounds` to RANGE level `level` of `db` (the caller needs
    /// DDL on it).
    async fn add_range_partitions(
        &self,
        db: &str,
        bounds: Vec<ScalarValue>,
        level: usize,
    ) -> Result<(), FunctionError>;

    /// Detaches slave cluster `id` from this master (attached or refused).
    async fn remove_slave(&self, id: &str) -> Result<(), FunctionError>;
    /// The slave clusters that pulled from this master: attached, or refused and why.
    async fn slaves(
        &self,
    ) -> Result<Vec<get_recent_slave_replication_info::SlaveInfo>, FunctionError>;

    /// The slave's state and throughput over the last `secs` seconds (`None`: all kept).
    async fn replication_metrics(
        &self,
        secs: Option<i64>,
    ) -> Result<get_cluster_replication_metrics::Metrics, FunctionError>;

    /// Compares replicated database `db` (or its table `table`) on this slave with the
    /// master's, partition by partition, at the database's read point.
    async fn check_consistency(
        &self,
        db: &str,
        table: Option<&str>,
    ) -> Result<Vec<check_cluster_replication_consistency::Partition>, FunctionError>;

    /// `repairClusterReplication`: asks the master to replace `partitions` of `db` (`None`:
    /// what the check and skipped tasks find differing), as `(table, partition)` with `None`
    /// for a whole table (slave).
    async fn repair(
        &self,
        db: &str,
        partitions: Option<Vec<(String, Option<String>)>>,
    ) -> Result<Vec<repair_cluster_replication::Repaired>, FunctionError>;

    /// Each database's seed (slave), or the cuts slaves have still to install (master).
    async fn seeds(&self) -> Result<Vec<get_cluster_replication_seed_status::Seed>, FunctionError>;

    /// Each attached slave's lag per replicated database (master).
    async fn replication_lag(&self)
        -> Result<Vec<get_cluster_replication_lag::Lag>, FunctionError>;

    /// `startClusterReplication()` (`running`) or `stopClusterReplication()`, on whichever role
    /// this cluster has; `function` names the caller for error messages.
    async fn set_replication_running(
        &self,
        function: &str,
        running: bool,
    ) -> Result<(), FunctionError>;
}

/// A function's failure, with the SQLSTATE the client sees.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FunctionError {
    pub sqlstate: String,
    pub message: String,
}

impl std::fmt::Display for FunctionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for FunctionError {}

impl FunctionError {
    /// A failure that is the server's fault (XX000).
    pub fn internal(e: impl std::fmt::Display) -> Self {
        FunctionError {
            sqlstate: "XX000".into(),
            message: e.to_string(),
        }
    }
}

/// A function's names: DolphinDB's, and in lower case.
type Names = [&'static str; 2];
type ScalarCtor = fn(Arc<dyn Cluster>, &'static str) -> datafusion::logical_expr::ScalarUDF;
type TableCtor = fn(Arc<dyn Cluster>) -> Arc<support::TableFn>;

fn scalars() -> [(Names, ScalarCtor); 9] {
    [
        (add_range_partitions::NAMES, add_range_partitions::udf),
        (get_controller_alias::NAMES, get_controller_alias::udf),
        (get_node_alias::NAMES, get_node_alias::udf),
        (
            set_database_for_cluster_replication::NAMES,
            set_database_for_cluster_replication::udf,
        ),
        (
            set_database_cluster_replication_execution_set::NAMES,
            set_database_cluster_replication_execution_set::udf,
        ),
        (
            start_cluster_replication::NAMES,
            start_cluster_replication::udf,
        ),
        (
            stop_cluster_replication::NAMES,
            stop_cluster_replication::udf,
        ),
        (
            skip_cluster_replication_task::NAMES,
            skip_cluster_replication_task::udf,
        ),
        (
            remove_cluster_replication_slave::NAMES,
            remove_cluster_replication_slave::udf,
        ),
    ]
}

fn tables() -> [(Names, TableCtor); 12] {
    [
        (
            check_cluster_replication_consistency::NAMES,
            check_cluster_replication_consistency::function,
        ),
        (
            repair_cluster_replication::NAMES,
            repair_cluster_replication::function,
        ),
        (
            get_cluster_replication_seed_status::NAMES,
            get_cluster_replication_seed_status::function,
        ),
        (
            get_slave_replication_execution_status::NAMES,
            get_slave_replication_execution_status::function,
        ),
        (
            get_slave_replication_queue_status::NAMES,
            get_slave_replication_queue_status::function,
        ),
        (
            get_cluster_replication_lag::NAMES,
            get_cluster_replication_lag::function,
        ),
        (
            get_cluster_replication_metrics::NAMES,
            get_cluster_replication_metrics::function,
        ),
        (
            get_database_cluster_replication_status::NAMES,
            get_database_cluster_replication_status::function,
        ),
        (
            get_master_replication_status::NAMES,
            get_master_replication_status::function,
        ),
        (
            get_slave_replication_status::NAMES,
            get_slave_replication_status::function,
        ),
        (
            get_recent_slave_replication_info::NAMES,
            get_recent_slave_replication_info::function,
        ),
        (schema::NAMES, schema::function),
    ]
}

/// Every built-in function (but `rpc`) acting through `cluster`, by name: what `rpc` calls,
/// here or, for another node's `rpc`, on that node.
pub fn builtins(cluster: Arc<dyn Cluster>) -> rpc::Builtins {
    let mut builtins = rpc::Builtins::new(cluster.clone());
    for (names, udf) in scalars() {
        builtins.add_scalar(udf(cluster.clone(), names[0]));
    }
    for (names, function) in tables() {
        builtins.add_table(names[0], function(cluster.clone()));
    }
    builtins
}

/// Registers every function on `ctx`, under its name and in lower case.
pub fn register(ctx: &SessionContext, cluster: Arc<dyn Cluster>) {
    for (names, udf) in scalars() {
        for name in names {
            ctx.register_udf(udf(cluster.clone(), name));
        }
    }
    for (names, function) in tables() {
        let f = function(cluster.clone());
        for name in names {
            ctx.register_udtf(name, f.clone());
        }
    }
    let builtins = Arc::new(builtins(cluster));
    ctx.register_udf(rpc::udf(builtins.clone()));
    ctx.register_udtf(rpc::NAMES[0], rpc::RpcTable::new(builtins.clone()));
    ctx.add_analyzer_rule(rpc::ControllerTarget::new(builtins));
}
