//! `getSlaveReplicationQueueStatus()`: one row per execution queue of the slave (queue ids are
//! global: set 0's queues first, then set 1's). Slave, admin only. Columns: `executionSet`,
//! `queueId`, `unfinishedTasks`, `executionGroupId` (-1 when idle), `executionNode`,
//! `executionTime` (TIME: how long ago the running group's first task was recorded),
//! `status` (EXECUTING, FAILED, STOPPED, FINISHED).

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, Int32Array, Int64Array, RecordBatch, StringArray, Time64NanosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::common::ScalarValue;

use crate::support::{at_most, Pending, TableFn};
use crate::{Cluster, FunctionError};

/// DolphinDB's name, and the one PostgreSQL clients fold unquoted names to.
pub const NAMES: [&str; 2] = [
    "getSlaveReplicationQueueStatus",
    "getslavereplicationqueuestatus",
];

const NAME: &str = NAMES[0];

/// One execution queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Queue {
    pub execution_set: i32,
    pub queue_id: i32,
    pub unfinished_tasks: i64,
    pub execution_group_id: i64,
    pub execution_node: String,
    pub execution_time_ns: i64,
    pub status: String,
}

pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("executionSet", DataType::Int32, false),
        Field::new("queueId", DataType::Int32, false),
        Field::new("unfinishedTasks", DataType::Int64, false),
        Field::new("executionGroupId", DataType::Int64, false),
        Field::new("executionNode", DataType::Utf8, false),
        Field::new(
            "executionTime",
            DataType::Time64(TimeUnit::Nanosecond),
            false,
        ),
        Field::new("status", DataType::Utf8, false),
    ]))
}

pub fn function(cluster: Arc<dyn Cluster>) -> Arc<TableFn> {
    TableFn::new(cluster, schema(), run)
}

fn run(cluster: Arc<dyn Cluster>, args: Vec<ScalarValue>) -> Pending<RecordBatch> {
    Box::pin(async move {
        at_most(NAME, &args, 0)?;
        let rows = cluster.slave_queues().await?;
        // TIME is a time of day: a day or more shows as 23:59:59.999999999.
        let time = |ns: i64| ns.clamp(0, 86_400_000_000_000 - 1);
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int32Array::from_iter_values(
                rows.iter().map(|r| r.execution_set),
            )),
            Arc::new(Int32Array::from_iter_values(
                rows.iter().map(|r| r.queue_id),
            )),
            Arc::new(Int64Array::from_iter_values(
                rows.iter().map(|r| r.unfinished_tasks),
            )),
            Arc::new(Int64Array::from_iter_values(
                rows.iter().map(|r| r.execution_group_id),
            )),
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| r.execution_node.as_str()),
            )),
            Arc::new(Time64NanosecondArray::from_iter_values(
                rows.iter().map(|r| time(r.execution_time_ns)),
            )),
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| r.status.as_str()),
            )),
        ];
        RecordBatch::try_new(schema(), columns).map_err(FunctionError::internal)
    })
}
