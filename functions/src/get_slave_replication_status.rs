//! `getSlaveReplicationStatus([limit])`: the tasks a slave pulled and how they ran. Slave
//! cluster, admin only; filtered by `slaveReplicationDBScope`.
//!
//! Rows: finished tasks first, then unfinished ones from the earliest, capped like
//! `getMasterReplicationStatus`. Columns: `taskId`, `masterTid`, `groupId`, `executionSet`,
//! `queueId`, `operationType`, `createTime`, `dbName`, `tableName`, `srcIP`, `srcPort`,
//! `finishTime`, `executionNode`, `state` (WAITING, EXECUTING, FINISHED, FAILED), `details`,
//! and beyond DolphinDB `masterCommitTime` (when the master queued it: the lag is
//! `finishTime - masterCommitTime`).

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, Int32Array, Int64Array, RecordBatch, StringArray, TimestampNanosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::common::ScalarValue;

use crate::support::{at_most, finished_first, limit_arg, Pending, TableFn};
use crate::{Cluster, FunctionError};

/// DolphinDB's name, and the one PostgreSQL clients fold unquoted names to.
pub const NAMES: [&str; 2] = ["getSlaveReplicationStatus", "getslavereplicationstatus"];

const NAME: &str = NAMES[0];

/// One task on the slave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlaveTask {
    pub task_id: i64,
    pub master_tid: i64,
    pub group_id: i64,
    pub execution_set: i32,
    pub queue_id: i32,
    pub operation_type: String,
    pub create_time_ns: i64,
    pub db_name: String,
    pub table_name: String,
    pub src_ip: String,
    pub src_port: i32,
    /// `None` until finished.
    pub finish_time_ns: Option<i64>,
    pub execution_node: String,
    pub state: String,
    pub details: String,
    pub master_commit_time_ns: i64,
}

fn timestamp() -> DataType {
    DataType::Timestamp(TimeUnit::Nanosecond, None)
}

pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("taskId", DataType::Int64, false),
        Field::new("masterTid", DataType::Int64, false),
        Field::new("groupId", DataType::Int64, false),
        Field::new("executionSet", DataType::Int32, false),
        Field::new("queueId", DataType::Int32, false),
        Field::new("operationType", DataType::Utf8, false),
        Field::new("createTime", timestamp(), false),
        Field::new("dbName", DataType::Utf8, false),
        Field::new("tableName", DataType::Utf8, false),
        Field::new("srcIP", DataType::Utf8, false),
        Field::new("srcPort", DataType::Int32, false),
        Field::new("finishTime", timestamp(), true),
        Field::new("executionNode", DataType::Utf8, false),
        Field::new("state", DataType::Utf8, false),
        Field::new("details", DataType::Utf8, false),
        Field::new("masterCommitTime", timestamp(), false),
    ]))
}

pub fn function(cluster: Arc<dyn Cluster>) -> Arc<TableFn> {
    TableFn::new(cluster, schema(), run)
}

/// Finished tasks first (the most recent 10,000), then unfinished ones, capped at `limit`.
pub fn select(tasks: Vec<SlaveTask>, limit: Option<usize>) -> Vec<SlaveTask> {
    finished_first(tasks, |t| t.task_id, |t| t.state == "FINISHED", limit)
}

fn run(cluster: Arc<dyn Cluster>, args: Vec<ScalarValue>) -> Pending<RecordBatch> {
    Box::pin(async move {
        at_most(NAME, &args, 1)?;
        let limit = limit_arg(NAME, &args, 0)?;
        let rows = select(cluster.slave_tasks(NAME).await?, limit);
        let text = |f: fn(&SlaveTask) -> &str| -> ArrayRef {
            Arc::new(StringArray::from_iter_values(rows.iter().map(f)))
        };
        let long = |f: fn(&SlaveTask) -> i64| -> ArrayRef {
            Arc::new(Int64Array::from_iter_values(rows.iter().map(f)))
        };
        let int = |f: fn(&SlaveTask) -> i32| -> ArrayRef {
            Arc::new(Int32Array::from_iter_values(rows.iter().map(f)))
        };
        let columns: Vec<ArrayRef> = vec![
            long(|r| r.task_id),
            long(|r| r.master_tid),
            long(|r| r.group_id),
            int(|r| r.execution_set),
            int(|r| r.queue_id),
            text(|r| &r.operation_type),
            Arc::new(TimestampNanosecondArray::from_iter_values(
                rows.iter().map(|r| r.create_time_ns),
            )),
            text(|r| &r.db_name),
            text(|r| &r.table_name),
            text(|r| &r.src_ip),
            int(|r| r.src_port),
            Arc::new(TimestampNanosecondArray::from_iter(
                rows.iter().map(|r| r.finish_time_ns),
            )),
            text(|r| &r.execution_node),
            text(|r| &r.state),
            text(|r| &r.details),
            Arc::new(TimestampNanosecondArray::from_iter_values(
                rows.iter().map(|r| r.master_commit_time_ns),
            )),
        ];
        RecordBatch::try_new(schema(), columns).map_err(FunctionError::internal)
    })
}
