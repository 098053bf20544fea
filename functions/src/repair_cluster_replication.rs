//! `repairClusterReplication('dfs://db'[, partitions])`: replaces what differs on this slave by
//! the master's state at a new cut, partition by partition, while writes and replication go
//! on. Slave, admin only (no DolphinDB counterpart).
//!
//! Without `partitions` it repairs every partition `checkClusterReplicationConsistency` finds
//! not matching and everything skipped tasks left diverged. `partitions` is a text or an array
//! of texts, each `'table'` (every partition of the table) or `'table/partition'` as the check
//! names them. The master takes a cut; once the slave has applied every task of the database up
//! to it, the named partitions' rows are replaced by the master's files at the cut, one
//! transaction per table, and the database reads at the cut. Progress and failures show in
//! `getClusterReplicationSeedStatus()` (`kind` REPAIR); the database cannot be read meanwhile.
//!
//! Returns what it asked to repair: `tableName`, `partition` (NULL: the whole table) and
//! `reason` (`REQUESTED`, `DIVERGED`, or the check's status).

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::ScalarValue;

use crate::support::{at_most, bad_argument, list_arg, text_arg, Pending, TableFn};
use crate::{Cluster, FunctionError};

/// The name, in DolphinDB's style, and the one PostgreSQL clients fold unquoted names to.
pub const NAMES: [&str; 2] = ["repairClusterReplication", "repairclusterreplication"];

const NAME: &str = NAMES[0];

/// One table or partition asked to be repaired.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Repaired {
    pub table_name: String,
    /// `None`: every partition of the table.
    pub partition: Option<String>,
    pub reason: String,
}

pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("tableName", DataType::Utf8, false),
        Field::new("partition", DataType::Utf8, true),
        Field::new("reason", DataType::Utf8, false),
    ]))
}

pub fn function(cluster: Arc<dyn Cluster>) -> Arc<TableFn> {
    TableFn::new(cluster, schema(), run)
}

fn run(cluster: Arc<dyn Cluster>, args: Vec<ScalarValue>) -> Pending<RecordBatch> {
    Box::pin(async move {
        at_most(NAME, &args, 2)?;
        let db = text_arg(NAME, &args, 0, "dbUrl")?;
        let partitions = match args.get(1) {
            None | Some(ScalarValue::Null) => None,
            Some(_) => Some(partitions(&args)?),
        };
        let rows = cluster.repair(&db, partitions).await?;
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| r.table_name.as_str()),
            )),
            Arc::new(StringArray::from_iter(
                rows.iter().map(|r| r.partition.as_deref()),
            )),
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| r.reason.as_str()),
            )),
        ];
        RecordBatch::try_new(schema(), columns).map_err(FunctionError::internal)
    })
}

/// The second argument: `(table, partition)` pairs, `None` for a whole table.
fn partitions(args: &[ScalarValue]) -> Result<Vec<(String, Option<String>)>, FunctionError> {
    let wrong = || {
        bad_argument(format!(
            "{NAME}: partitions must be a text or an array of texts, each 'table' or 'table/partition'"
        ))
    };
    let values = list_arg(args, 1)
        .filter(|v| !v.is_empty())
        .ok_or_else(wrong)?;
    values
        .iter()
        .map(|v| {
            let text =
                text_arg(NAME, std::slice::from_ref(v), 0, "partitions").map_err(|_| wrong())?;
            match text.split_once('/') {
                Some((table, partition)) if !table.is_empty() && !partition.is_empty() => {
                    Ok((table.to_string(), Some(partition.to_string())))
                }
                None if !text.is_empty() => Ok((text, None)),
                _ => Err(wrong()),
            }
        })
        .collect()
}
