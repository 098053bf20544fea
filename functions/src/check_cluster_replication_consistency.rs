//! `checkClusterReplicationConsistency('dfs://db'[, 'table'])`: compares a replicated database
//! on this slave with the master's, at the same point, partition by partition, while writes
//! and replication go on. Slave, admin only. One row per partition that holds rows on either
//! side: `tableName`, `partition`, `masterRows`, `slaveRows` (NULL where the side has none),
//! `status` (`MATCH`; `DIFFER`: the row counts or the rows' contents differ; `MISSING_ON_SLAVE`;
//! `EXTRA_ON_SLAVE`), and the point compared: `replicatedTaskId` (every task of the database
//! up to it applied on the slave, none after it) and `replicatedTime` (when the master committed
//! it). Contents are compared by an order-independent hash of every row's values. `diverged`
//! is true where a skipped task (`skipClusterReplicationTask`) would have changed the
//! partition, whatever its contents show, until `repairClusterReplication` replaces it.

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Int64Array, RecordBatch, StringArray, TimestampNanosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::common::ScalarValue;

use crate::support::{at_most, text_arg, Pending, TableFn};
use crate::{Cluster, FunctionError};

/// The name, in DolphinDB's style, and the one PostgreSQL clients fold unquoted names to.
pub const NAMES: [&str; 2] = [
    "checkClusterReplicationConsistency",
    "checkclusterreplicationconsistency",
];

const NAME: &str = NAMES[0];

/// One partition compared.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Partition {
    pub table_name: String,
    pub partition: String,
    pub master_rows: Option<i64>,
    pub slave_rows: Option<i64>,
    pub status: String,
    pub replicated_task_id: i64,
    pub replicated_time_ns: i64,
    pub diverged: bool,
}

pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("tableName", DataType::Utf8, false),
        Field::new("partition", DataType::Utf8, false),
        Field::new("masterRows", DataType::Int64, true),
        Field::new("slaveRows", DataType::Int64, true),
        Field::new("status", DataType::Utf8, false),
        Field::new("replicatedTaskId", DataType::Int64, false),
        Field::new(
            "replicatedTime",
            DataType::Timestamp(TimeUnit::Nanosecond, None),
            false,
        ),
        Field::new("diverged", DataType::Boolean, false),
    ]))
}

pub fn function(cluster: Arc<dyn Cluster>) -> Arc<TableFn> {
    TableFn::new(cluster, schema(), run)
}

fn run(cluster: Arc<dyn Cluster>, args: Vec<ScalarValue>) -> Pending<RecordBatch> {
    Box::pin(async move {
        at_most(NAME, &args, 2)?;
        let db = text_arg(NAME, &args, 0, "dbUrl")?;
        let table = match args.get(1) {
            None | Some(ScalarValue::Null) => None,
            Some(_) => Some(text_arg(NAME, &args, 1, "tableName")?),
        };
        let rows = cluster.check_consistency(&db, table.as_deref()).await?;
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| r.table_name.as_str()),
            )),
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| r.partition.as_str()),
            )),
            Arc::new(Int64Array::from_iter(rows.iter().map(|r| r.master_rows))),
            Arc::new(Int64Array::from_iter(rows.iter().map(|r| r.slave_rows))),
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| r.status.as_str()),
            )),
            Arc::new(Int64Array::from_iter_values(
                rows.iter().map(|r| r.replicated_task_id),
            )),
            Arc::new(TimestampNanosecondArray::from_iter_values(
                rows.iter().map(|r| r.replicated_time_ns),
            )),
            Arc::new(BooleanArray::from_iter(
                rows.iter().map(|r| Some(r.diverged)),
            )),
        ];
        RecordBatch::try_new(schema(), columns).map_err(FunctionError::internal)
    })
}
