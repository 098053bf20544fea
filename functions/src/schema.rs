//! `schema(db)`: DolphinDB's `schema(dbHandle)` dictionary as a table of (`key`, `value`) text
//! rows, called as `select * from schema('dfs://testDB')`. Any user holding a privilege on the
//! database may call it (not only admins); a missing database fails with 3F000.
//!
//! Keys, in DolphinDB's printed order (only those porpoise's metadata can fill):
//! `databaseDir`, `partitionSchema`, `partitionSites`, `atomic`, `chunkGranularity`,
//! `partitionType`, `partitionTypeName`, `partitionColumnType`, `clusterReplicationEnabled`,
//! `databaseOwner`, then `engineType` (DolphinDB 2.00 has it too). Values are printed as
//! DolphinDB prints a dictionary: booleans as `1`/`0` (`clusterReplicationEnabled->1`), vectors
//! as `[a,b]`. A COMPO database (2–3 levels) shows `partitionType` 4 and `COMPO`, its levels'
//! schemes as a tuple `(scheme1,scheme2)` and their column types as a vector `[6,17]`.

use std::sync::Arc;

use datafusion::arrow::array::{RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::ScalarValue;

use crate::support::{at_most, text_arg, Pending, TableFn};
use crate::{Cluster, FunctionError};

/// DolphinDB's name (already lower case).
pub const NAMES: [&str; 2] = ["schema", "schema"];

const NAME: &str = NAMES[0];

/// DolphinDB's `partitionType` of a multi-level database.
const COMPO: i32 = 4;

/// What the metadata says about a database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DatabaseSchema {
    /// `dfs://name`.
    pub database_dir: String,
    /// One entry per partition level (2–3 for COMPO).
    pub levels: Vec<PartitionLevel>,
    /// `partitionSites`: the sites given at creation; porpoise places partitions itself, so
    /// this is empty, as in DolphinDB without `locations`.
    pub partition_sites: Vec<String>,
    /// `atomic`: `TRANS` (every write is one all-or-nothing transaction).
    pub atomic: String,
    /// `chunkGranularity`.
    pub chunk_granularity: String,
    pub cluster_replication_enabled: bool,
    pub owner: String,
    /// `OLAP`, `TSDB` or `PKEY`.
    pub engine: String,
}

/// One level of a partition scheme.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionLevel {
    /// DolphinDB's id: VALUE 1, RANGE 2, LIST 3, HASH 5.
    pub type_id: i32,
    /// `VALUE`, `RANGE`, `LIST` or `HASH`.
    pub type_name: String,
    /// DolphinDB's type id of the partition column (DATE 6, SYMBOL 17, ...).
    pub column_type: i32,
    /// The scheme as DolphinDB prints it: `[0,5,10]`, `[2023.01.01,2023.01.02]`, the bucket
    /// count of a HASH level, `(["A","B"],["C"])` for LIST.
    pub scheme: String,
}

pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("key", DataType::Utf8, false),
        Field::new("value", DataType::Utf8, false),
    ]))
}

pub fn function(cluster: Arc<dyn Cluster>) -> Arc<TableFn> {
    TableFn::new(cluster, schema(), run)
}

fn run(cluster: Arc<dyn Cluster>, args: Vec<ScalarValue>) -> Pending<RecordBatch> {
    Box::pin(async move {
        at_most(NAME, &args, 1)?;
        let db = text_arg(NAME, &args, 0, "database")?;
        let s = cluster.database_schema(&db).await?;
        let rows = entries(&s);
        let columns = vec![
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0))) as _,
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| r.1.as_str()),
            )) as _,
        ];
        RecordBatch::try_new(schema(), columns).map_err(FunctionError::internal)
    })
}

/// The dictionary's entries, in order.
fn entries(s: &DatabaseSchema) -> Vec<(&'static str, String)> {
    let vector = |items: Vec<String>| format!("[{}]", items.join(","));
    let (scheme, type_id, type_name, column_type) = match s.levels.as_slice() {
        [one] => (
            one.scheme.clone(),
            one.type_id.to_string(),
            one.type_name.clone(),
            one.column_type.to_string(),
        ),
        levels => (
            format!(
                "({})",
                levels
                    .iter()
                    .map(|l| l.scheme.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            COMPO.to_string(),
            "COMPO".to_string(),
            vector(levels.iter().map(|l| l.column_type.to_string()).collect()),
        ),
    };
    vec![
        ("databaseDir", s.database_dir.clone()),
        ("partitionSchema", scheme),
        ("partitionSites", s.partition_sites.join(",")),
        ("atomic", s.atomic.clone()),
        ("chunkGranularity", s.chunk_granularity.clone()),
        ("partitionType", type_id),
        ("partitionTypeName", type_name),
        ("partitionColumnType", column_type),
        (
            "clusterReplicationEnabled",
            if s.cluster_replication_enabled {
                "1"
            } else {
                "0"
            }
            .to_string(),
        ),
        ("databaseOwner", s.owner.clone()),
        ("engineType", s.engine.clone()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn level(type_id: i32, name: &str, column_type: i32, scheme: &str) -> PartitionLevel {
        PartitionLevel {
            type_id,
            type_name: name.into(),
            column_type,
            scheme: scheme.into(),
        }
    }

    fn db(levels: Vec<PartitionLevel>) -> DatabaseSchema {
        DatabaseSchema {
            database_dir: "dfs://rangedb101".into(),
            levels,
            partition_sites: vec![],
            atomic: "TRANS".into(),
            chunk_granularity: "TABLE".into(),
            cluster_replication_enabled: true,
            owner: "admin".into(),
            engine: "OLAP".into(),
        }
    }

    #[test]
    fn one_level_prints_like_dolphindb() {
        let rows = entries(&db(vec![level(2, "RANGE", 4, "[0,5,10]")]));
        let text: Vec<String> = rows.iter().map(|(k, v)| format!("{k}->{v}")).collect();
        assert_eq!(
            text,
            [
                "databaseDir->dfs://rangedb101",
                "partitionSchema->[0,5,10]",
                "partitionSites->",
                "atomic->TRANS",
                "chunkGranularity->TABLE",
                "partitionType->2",
                "partitionTypeName->RANGE",
                "partitionColumnType->4",
                "clusterReplicationEnabled->1",
                "databaseOwner->admin",
                "engineType->OLAP",
            ]
        );
    }

    #[test]
    fn compo_levels_are_a_tuple() {
        let rows = entries(&db(vec![
            level(1, "VALUE", 6, "[2023.01.01,2023.01.02]"),
            level(5, "HASH", 17, "25"),
        ]));
        let get = |k: &str| rows.iter().find(|r| r.0 == k).map(|r| r.1.clone());
        assert_eq!(
            get("partitionSchema").as_deref(),
            Some("([2023.01.01,2023.01.02],25)")
        );
        assert_eq!(get("partitionType").as_deref(), Some("4"));
        assert_eq!(get("partitionTypeName").as_deref(), Some("COMPO"));
        assert_eq!(get("partitionColumnType").as_deref(), Some("[6,17]"));
    }
}
