//! `getClusterReplicationLag()` (porpoise's own): per slave cluster and replicated database,
//! how many queued tasks the slave has not finished (`tasksBehind`) and how long ago the
//! oldest of them committed on the master (`secondsBehind`; 0 when caught up), and where
//! the slave's reads of the database are: `replicatedTaskId`, the master task every task up to
//! which is applied (and none after it), and `replicatedTime`, when the master committed it
//! (NULL until the slave has a read point). On a master one row per attached slave and
//! database; on a slave one row per replicated database (`slave` is this cluster's id and
//! `connectedController` empty; the counts are of the tasks pulled). Admin only. The master's
//! figures are Prometheus gauges on `/metrics` too.

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray, TimestampNanosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::common::ScalarValue;

use crate::support::{at_most, Pending, TableFn};
use crate::{Cluster, FunctionError};

/// The name, and the one PostgreSQL clients fold unquoted names to.
pub const NAMES: [&str; 2] = ["getClusterReplicationLag", "getclusterreplicationlag"];

const NAME: &str = NAMES[0];

/// One slave's lag on one database.
#[derive(Clone, Debug, PartialEq)]
pub struct Lag {
    pub slave: String,
    pub connected_controller: String,
    pub db_name: String,
    pub tasks_behind: i64,
    pub seconds_behind: f64,
    pub replicated_task_id: Option<i64>,
    pub replicated_time_ns: Option<i64>,
}

pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("slave", DataType::Utf8, false),
        Field::new("connectedController", DataType::Utf8, false),
        Field::new("dbName", DataType::Utf8, false),
        Field::new("tasksBehind", DataType::Int64, false),
        Field::new("secondsBehind", DataType::Float64, false),
        Field::new("replicatedTaskId", DataType::Int64, true),
        Field::new(
            "replicatedTime",
            DataType::Timestamp(TimeUnit::Nanosecond, None),
            true,
        ),
    ]))
}

pub fn function(cluster: Arc<dyn Cluster>) -> Arc<TableFn> {
    TableFn::new(cluster, schema(), run)
}

fn run(cluster: Arc<dyn Cluster>, args: Vec<ScalarValue>) -> Pending<RecordBatch> {
    Box::pin(async move {
        at_most(NAME, &args, 0)?;
        let rows = cluster.replication_lag().await?;
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| r.slave.as_str()),
            )),
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| r.connected_controller.as_str()),
            )),
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| r.db_name.as_str()),
            )),
            Arc::new(Int64Array::from_iter_values(
                rows.iter().map(|r| r.tasks_behind),
            )),
            Arc::new(Float64Array::from_iter_values(
                rows.iter().map(|r| r.seconds_behind),
            )),
            Arc::new(Int64Array::from_iter(
                rows.iter().map(|r| r.replicated_task_id),
            )),
            Arc::new(TimestampNanosecondArray::from_iter(
                rows.iter().map(|r| r.replicated_time_ns),
            )),
        ];
        RecordBatch::try_new(schema(), columns).map_err(FunctionError::internal)
    })
}
