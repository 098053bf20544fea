//! `getMasterReplicationStatus([limit])`: the master's send queue, one row per task. Master
//! cluster, admin only.
//!
//! Rows: finished (truncated) tasks first, then unfinished ones from the earliest; at most the
//! 10,000 most recent finished tasks; `limit` (-1 or absent: no limit) caps the rows, filled
//! with finished tasks first, as DolphinDB does. Columns: `taskId`, `tid`, `groupId`,
//! `operationType`, `submitTime` (NANOTIMESTAMP), `dbName`, `tableName`, `srcIP`, `srcPort`,
//! `isTruncated`.

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Int32Array, Int64Array, RecordBatch, StringArray,
    TimestampNanosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::common::ScalarValue;

use crate::support::{at_most, finished_first, limit_arg, Pending, TableFn};
use crate::{Cluster, FunctionError};

/// DolphinDB's name, and the one PostgreSQL clients fold unquoted names to.
pub const NAMES: [&str; 2] = ["getMasterReplicationStatus", "getmasterreplicationstatus"];

const NAME: &str = NAMES[0];

/// One task of the send queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MasterTask {
    pub task_id: i64,
    pub tid: i64,
    pub group_id: i64,
    pub operation_type: String,
    pub submit_time_ns: i64,
    pub db_name: String,
    pub table_name: String,
    pub src_ip: String,
    pub src_port: i32,
    pub is_truncated: bool,
}

pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("taskId", DataType::Int64, false),
        Field::new("tid", DataType::Int64, false),
        Field::new("groupId", DataType::Int64, false),
        Field::new("operationType", DataType::Utf8, false),
        Field::new(
            "submitTime",
            DataType::Timestamp(TimeUnit::Nanosecond, None),
            false,
        ),
        Field::new("dbName", DataType::Utf8, false),
        Field::new("tableName", DataType::Utf8, false),
        Field::new("srcIP", DataType::Utf8, false),
        Field::new("srcPort", DataType::Int32, false),
        Field::new("isTruncated", DataType::Boolean, false),
    ]))
}

pub fn function(cluster: Arc<dyn Cluster>) -> Arc<TableFn> {
    TableFn::new(cluster, schema(), run)
}

/// Orders and caps the rows as DolphinDB does (see the module documentation).
pub fn select(tasks: Vec<MasterTask>, limit: Option<usize>) -> Vec<MasterTask> {
    finished_first(tasks, |t| t.task_id, |t| t.is_truncated, limit)
}

fn run(cluster: Arc<dyn Cluster>, args: Vec<ScalarValue>) -> Pending<RecordBatch> {
    Box::pin(async move {
        at_most(NAME, &args, 1)?;
        let limit = limit_arg(NAME, &args, 0)?;
        let rows = select(cluster.master_tasks(NAME).await?, limit);
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.task_id))),
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.tid))),
            Arc::new(Int64Array::from_iter_values(
                rows.iter().map(|r| r.group_id),
            )),
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| r.operation_type.as_str()),
            )),
            Arc::new(TimestampNanosecondArray::from_iter_values(
                rows.iter().map(|r| r.submit_time_ns),
            )),
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| r.db_name.as_str()),
            )),
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| r.table_name.as_str()),
            )),
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| r.src_ip.as_str()),
            )),
            Arc::new(Int32Array::from_iter_values(
                rows.iter().map(|r| r.src_port),
            )),
            Arc::new(BooleanArray::from_iter(
                rows.iter().map(|r| Some(r.is_truncated)),
            )),
        ];
        RecordBatch::try_new(schema(), columns).map_err(FunctionError::internal)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(id: i64, truncated: bool) -> MasterTask {
        MasterTask {
            task_id: id,
            tid: id,
            group_id: id,
            operation_type: "APPEND".into(),
            submit_time_ns: 0,
            db_name: "dfs://d".into(),
            table_name: "t".into(),
            src_ip: "127.0.0.1".into(),
            src_port: 1,
            is_truncated: truncated,
        }
    }

    #[test]
    fn finished_tasks_come_first_and_the_limit_keeps_the_earliest_rows() {
        let tasks = vec![task(3, false), task(1, true), task(4, false), task(2, true)];
        let ids = |rows: Vec<MasterTask>| rows.iter().map(|t| t.task_id).collect::<Vec<_>>();
        assert_eq!(ids(select(tasks.clone(), None)), [1, 2, 3, 4]);
        assert_eq!(ids(select(tasks.clone(), Some(3))), [1, 2, 3]);
        assert_eq!(ids(select(tasks, Some(0))), Vec::<i64>::new());
    }
}
