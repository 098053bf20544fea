//! `getDatabaseClusterReplicationStatus()`: whether each database has replication enabled, and
//! its execution set. Master cluster, admin only. Columns: `dbName`, `enabled`,
//! `executionSet`. Unlike DolphinDB, a database is listed from its creation, not only once it
//! holds data.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, BooleanArray, Int32Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::ScalarValue;

use crate::support::{at_most, Pending, TableFn};
use crate::{Cluster, FunctionError};

/// DolphinDB's name, and the one PostgreSQL clients fold unquoted names to.
pub const NAMES: [&str; 2] = [
    "getDatabaseClusterReplicationStatus",
    "getdatabaseclusterreplicationstatus",
];

const NAME: &str = NAMES[0];

/// One database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DatabaseReplication {
    pub db_name: String,
    pub enabled: bool,
    pub execution_set: i32,
}

pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("dbName", DataType::Utf8, false),
        Field::new("enabled", DataType::Boolean, false),
        Field::new("executionSet", DataType::Int32, false),
    ]))
}

pub fn function(cluster: Arc<dyn Cluster>) -> Arc<TableFn> {
    TableFn::new(cluster, schema(), run)
}

fn run(cluster: Arc<dyn Cluster>, args: Vec<ScalarValue>) -> Pending<RecordBatch> {
    Box::pin(async move {
        at_most(NAME, &args, 0)?;
        let rows = cluster.database_replication().await?;
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| r.db_name.as_str()),
            )),
            Arc::new(BooleanArray::from_iter(
                rows.iter().map(|r| Some(r.enabled)),
            )),
            Arc::new(Int32Array::from_iter_values(
                rows.iter().map(|r| r.execution_set),
            )),
        ];
        RecordBatch::try_new(schema(), columns).map_err(FunctionError::internal)
    })
}
