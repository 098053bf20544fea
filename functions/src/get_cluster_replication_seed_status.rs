//! `getClusterReplicationSeedStatus()`: the seeds of slaves, one row per database (see the
//! README's "Seeding"). Admin only.
//! - On a slave: each database's last seed: `dbName`, `cutTaskId` (every task of the database
//!   up to it is in the seed), `cutTime` (the master's clock when it took the cut), `state`
//!   (WAITING, COPYING, FAILED, DONE), `tablesDone`/`tablesTotal`, `partitionsDone`/
//!   `partitionsTotal`, `bytesDone`/`bytesTotal` (the totals are NULL until every table's files
//!   were listed), `rowsDone`, `finishTime` (NULL until installed), `attempts` (failed tries)
//!   and `error` (why the last try failed). `kind` is SEED, or REPAIR for a
//!   `repairClusterReplication` (its totals count the tables and partitions it replaces; a
//!   repair the master has not cut yet shows as REQUESTED with `cutTaskId` 0).
//! - On a master: each cut a slave has still to install (`slaveClusterId`, `state` PENDING);
//!   the master keeps the files of a pending cut, so a row here explains disk held back.
//!   The progress columns are NULL there: the slave shows them.

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, Int64Array, RecordBatch, StringArray, TimestampNanosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::common::ScalarValue;

use crate::support::{at_most, Pending, TableFn};
use crate::{Cluster, FunctionError};

/// The name, in DolphinDB's style, and the one PostgreSQL clients fold unquoted names to.
pub const NAMES: [&str; 2] = [
    "getClusterReplicationSeedStatus",
    "getclusterreplicationseedstatus",
];

const NAME: &str = NAMES[0];

/// One seed (slave) or pending cut (master).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Seed {
    /// The slave the cut is for (master); this cluster's id on a slave.
    pub slave_cluster_id: String,
    pub db_name: String,
    pub cut_task_id: i64,
    pub cut_time_ns: i64,
    pub state: String,
    pub tables_done: Option<i64>,
    pub tables_total: i64,
    pub partitions_done: Option<i64>,
    pub partitions_total: Option<i64>,
    pub bytes_done: Option<i64>,
    pub bytes_total: Option<i64>,
    pub rows_done: Option<i64>,
    pub finish_time_ns: Option<i64>,
    pub attempts: Option<i64>,
    pub error: Option<String>,
    /// `SEED` or `REPAIR`.
    pub kind: String,
}

pub fn schema() -> SchemaRef {
    let time = || DataType::Timestamp(TimeUnit::Nanosecond, None);
    Arc::new(Schema::new(vec![
        Field::new("slaveClusterId", DataType::Utf8, false),
        Field::new("dbName", DataType::Utf8, false),
        Field::new("cutTaskId", DataType::Int64, false),
        Field::new("cutTime", time(), false),
        Field::new("state", DataType::Utf8, false),
        Field::new("tablesDone", DataType::Int64, true),
        Field::new("tablesTotal", DataType::Int64, false),
        Field::new("partitionsDone", DataType::Int64, true),
        Field::new("partitionsTotal", DataType::Int64, true),
        Field::new("bytesDone", DataType::Int64, true),
        Field::new("bytesTotal", DataType::Int64, true),
        Field::new("rowsDone", DataType::Int64, true),
        Field::new("finishTime", time(), true),
        Field::new("attempts", DataType::Int64, true),
        Field::new("error", DataType::Utf8, true),
        Field::new("kind", DataType::Utf8, false),
    ]))
}

pub fn function(cluster: Arc<dyn Cluster>) -> Arc<TableFn> {
    TableFn::new(cluster, schema(), run)
}

fn run(cluster: Arc<dyn Cluster>, args: Vec<ScalarValue>) -> Pending<RecordBatch> {
    Box::pin(async move {
        at_most(NAME, &args, 0)?;
        let rows = cluster.seeds().await?;
        let text = |f: fn(&Seed) -> &str| -> ArrayRef {
            Arc::new(StringArray::from_iter_values(rows.iter().map(f)))
        };
        let int = |f: fn(&Seed) -> Option<i64>| -> ArrayRef {
            Arc::new(Int64Array::from_iter(rows.iter().map(f)))
        };
        let columns: Vec<ArrayRef> = vec![
            text(|r| &r.slave_cluster_id),
            text(|r| &r.db_name),
            int(|r| Some(r.cut_task_id)),
            Arc::new(TimestampNanosecondArray::from_iter_values(
                rows.iter().map(|r| r.cut_time_ns),
            )),
            text(|r| &r.state),
            int(|r| r.tables_done),
            int(|r| Some(r.tables_total)),
            int(|r| r.partitions_done),
            int(|r| r.partitions_total),
            int(|r| r.bytes_done),
            int(|r| r.bytes_total),
            int(|r| r.rows_done),
            Arc::new(TimestampNanosecondArray::from_iter(
                rows.iter().map(|r| r.finish_time_ns),
            )),
            int(|r| r.attempts),
            Arc::new(StringArray::from_iter(
                rows.iter().map(|r| r.error.as_deref()),
            )),
            text(|r| &r.kind),
        ];
        RecordBatch::try_new(schema(), columns).map_err(FunctionError::internal)
    })
}
