//! `getRecentSlaveReplicationInfo()`: one row per slave cluster that pulled from this master:
//! `connectedController`, `allControllersInRaft`, `lastFinishedTaskId`, `lastPullTime`, and
//! beyond DolphinDB `tasksBehind` (queued tasks it has not finished), `slaveClusterId` (the
//! cluster id its certificate carries, which `removeClusterReplicationSlave` takes), `status`
//! (`ATTACHED`, or `REFUSED` when its latest pull was refused) and `error` (why it was
//! refused; NULL while attached). Master, admin only.

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, Int64Array, RecordBatch, StringArray, TimestampNanosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::common::ScalarValue;

use crate::support::{at_most, Pending, TableFn};
use crate::{Cluster, FunctionError};

/// DolphinDB's name, and the one PostgreSQL clients fold unquoted names to.
pub const NAMES: [&str; 2] = [
    "getRecentSlaveReplicationInfo",
    "getrecentslavereplicationinfo",
];

const NAME: &str = NAMES[0];

/// One slave cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlaveInfo {
    pub connected_controller: String,
    pub all_controllers: String,
    pub last_finished_task_id: i64,
    pub last_pull_time_ns: i64,
    pub tasks_behind: i64,
    pub cluster_id: String,
    /// `ATTACHED` or `REFUSED`.
    pub status: String,
    /// Why its latest pull was refused.
    pub error: Option<String>,
}

pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("connectedController", DataType::Utf8, false),
        Field::new("allControllersInRaft", DataType::Utf8, false),
        Field::new("lastFinishedTaskId", DataType::Int64, false),
        Field::new(
            "lastPullTime",
            DataType::Timestamp(TimeUnit::Nanosecond, None),
            false,
        ),
        Field::new("tasksBehind", DataType::Int64, false),
        Field::new("slaveClusterId", DataType::Utf8, false),
        Field::new("status", DataType::Utf8, false),
        Field::new("error", DataType::Utf8, true),
    ]))
}

pub fn function(cluster: Arc<dyn Cluster>) -> Arc<TableFn> {
    TableFn::new(cluster, schema(), run)
}

fn run(cluster: Arc<dyn Cluster>, args: Vec<ScalarValue>) -> Pending<RecordBatch> {
    Box::pin(async move {
        at_most(NAME, &args, 0)?;
        let rows = cluster.slaves().await?;
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| r.connected_controller.as_str()),
            )),
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| r.all_controllers.as_str()),
            )),
            Arc::new(Int64Array::from_iter_values(
                rows.iter().map(|r| r.last_finished_task_id),
            )),
            Arc::new(TimestampNanosecondArray::from_iter_values(
                rows.iter().map(|r| r.last_pull_time_ns),
            )),
            Arc::new(Int64Array::from_iter_values(
                rows.iter().map(|r| r.tasks_behind),
            )),
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| r.cluster_id.as_str()),
            )),
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| r.status.as_str()),
            )),
            Arc::new(StringArray::from_iter(
                rows.iter().map(|r| r.error.as_deref()),
            )),
        ];
        RecordBatch::try_new(schema(), columns).map_err(FunctionError::internal)
    })
}
