//! `getClusterReplicationMetrics([secs])`: the slave's replication state and throughput over
//! the last `secs` seconds (default 30; -1: since replication began). Slave, admin only.
//! Columns (DolphinDB's): `status` (ENABLED, DISABLED, STOPPED), `finishedTasks`,
//! `unfinishedTasks`, `finishedTasksPerSec`, `maxCostPerTask`, `avgCostPerTask` (TIME: from
//! the slave recording a task to finishing it), `averageGroupSize`; beyond DolphinDB,
//! `pullError`: why pulls from the master fail (a refusal such as an untrusted certificate or
//! `clusterReplicationSlaveNum`, an unreachable or unverifiable master), NULL while they work.

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray, Time64NanosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::common::ScalarValue;

use crate::support::{at_most, bad_argument, int_arg, Pending, TableFn};
use crate::{Cluster, FunctionError};

/// DolphinDB's name, and the one PostgreSQL clients fold unquoted names to.
pub const NAMES: [&str; 2] = [
    "getClusterReplicationMetrics",
    "getclusterreplicationmetrics",
];

const NAME: &str = NAMES[0];

/// The metrics over a window.
#[derive(Clone, Debug, PartialEq)]
pub struct Metrics {
    pub status: String,
    pub finished_tasks: i64,
    pub unfinished_tasks: i64,
    pub finished_tasks_per_sec: f64,
    pub max_cost_ns: i64,
    pub avg_cost_ns: i64,
    pub average_group_size: f64,
    pub pull_error: Option<String>,
}

pub fn schema() -> SchemaRef {
    let time = DataType::Time64(TimeUnit::Nanosecond);
    Arc::new(Schema::new(vec![
        Field::new("status", DataType::Utf8, false),
        Field::new("finishedTasks", DataType::Int64, false),
        Field::new("unfinishedTasks", DataType::Int64, false),
        Field::new("finishedTasksPerSec", DataType::Float64, false),
        Field::new("maxCostPerTask", time.clone(), false),
        Field::new("avgCostPerTask", time, false),
        Field::new("averageGroupSize", DataType::Float64, false),
        Field::new("pullError", DataType::Utf8, true),
    ]))
}

pub fn function(cluster: Arc<dyn Cluster>) -> Arc<TableFn> {
    TableFn::new(cluster, schema(), run)
}

fn run(cluster: Arc<dyn Cluster>, args: Vec<ScalarValue>) -> Pending<RecordBatch> {
    Box::pin(async move {
        at_most(NAME, &args, 1)?;
        let secs = match int_arg(NAME, &args, 0, "secs")? {
            None => Some(30),
            Some(-1) => None,
            Some(n) if n > 0 => Some(n),
            Some(_) => return Err(bad_argument(format!("{NAME}: secs must be -1 or positive"))),
        };
        let m = cluster.replication_metrics(secs).await?;
        // TIME is a time of day: costs of a day or more show as 23:59:59.999999999.
        let time = |ns: i64| ns.clamp(0, 86_400_000_000_000 - 1);
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(vec![m.status])),
            Arc::new(Int64Array::from(vec![m.finished_tasks])),
            Arc::new(Int64Array::from(vec![m.unfinished_tasks])),
            Arc::new(Float64Array::from(vec![m.finished_tasks_per_sec])),
            Arc::new(Time64NanosecondArray::from(vec![time(m.max_cost_ns)])),
            Arc::new(Time64NanosecondArray::from(vec![time(m.avg_cost_ns)])),
            Arc::new(Float64Array::from(vec![m.average_group_size])),
            Arc::new(StringArray::from(vec![m.pull_error])),
        ];
        RecordBatch::try_new(schema(), columns).map_err(FunctionError::internal)
    })
}
