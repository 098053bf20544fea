//! `getSlaveReplicationExecutionStatus()`: the replication tasks on this slave data node's
//! workers (`clusterReplicationWorkerNum` of them), one row per task. Slave data node, admin
//! only. Columns: `executionSet`, `worker` (the worker's number), `taskId`, `state`
//! (TRANSMITTED: its data has arrived and it waits for its turn; EXECUTING: being applied).

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Int32Array, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::ScalarValue;

use crate::support::{at_most, Pending, TableFn};
use crate::{Cluster, FunctionError};

/// DolphinDB's name, and the one PostgreSQL clients fold unquoted names to.
pub const NAMES: [&str; 2] = [
    "getSlaveReplicationExecutionStatus",
    "getslavereplicationexecutionstatus",
];

const NAME: &str = NAMES[0];

/// One task on a worker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Execution {
    pub execution_set: i32,
    pub worker: i32,
    pub task_id: i64,
    pub state: String,
}

pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("executionSet", DataType::Int32, false),
        Field::new("worker", DataType::Int32, false),
        Field::new("taskId", DataType::Int64, false),
        Field::new("state", DataType::Utf8, false),
    ]))
}

pub fn function(cluster: Arc<dyn Cluster>) -> Arc<TableFn> {
    TableFn::new(cluster, schema(), run)
}

fn run(cluster: Arc<dyn Cluster>, args: Vec<ScalarValue>) -> Pending<RecordBatch> {
    Box::pin(async move {
        at_most(NAME, &args, 0)?;
        let rows = cluster.slave_executions().await?;
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int32Array::from_iter_values(
                rows.iter().map(|r| r.execution_set),
            )),
            Arc::new(Int32Array::from_iter_values(rows.iter().map(|r| r.worker))),
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.task_id))),
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| r.state.as_str()),
            )),
        ];
        RecordBatch::try_new(schema(), columns).map_err(FunctionError::internal)
    })
}
