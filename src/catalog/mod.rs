//! The data model every layer shares: databases (`"dfs://x"`), their partition schemes, tables
//! and columns. These definitions are persisted in the controller's raft log and snapshots, so
//! their serde form is a stable format: new fields get `#[serde(default)]`.
//!
//! Columns have a stable numeric id; Parquet files name their columns `c<id>`, so renaming or
//! dropping a column never rewrites data and a file written before `add column` reads the new
//! column as NULL.

pub mod calendar;
pub mod scheme;
pub mod types;

use std::sync::Arc;

use arrow::datatypes::{Field, Schema, SchemaRef};
use serde::{Deserialize, Serialize};

pub use scheme::{KeyValue, NewValuePolicy, PartitionLevel};
pub use types::ColumnType;

/// Identifies a data node (and, in the controller, a raft member).
pub type NodeId = u64;

/// A DFS database: a partition scheme shared by its tables.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DatabaseDef {
    /// `dfs://name`.
    pub name: String,
    /// A small integer unique in the cluster, used as the PostgreSQL namespace oid.
    pub id: u32,
    /// 1 level, or 2–3 levels for COMPO.
    pub levels: Vec<PartitionLevel>,
    /// `engine=` as given (`OLAP` by default); informational.
    #[serde(default = "default_engine")]
    pub engine: String,
    pub owner: String,
    pub created_ms: i64,
    /// The data nodes its partitions are spread over, set by the controller when the database
    /// is created (every data node of the cluster then). Empty: the only data node (a
    /// standalone server).
    #[serde(default)]
    pub placement: Vec<NodeId>,
}

impl DatabaseDef {
    /// The data node that owns `partition`, or `None` when the database has no placement
    /// (everything is local). The choice is a stable hash of the partition name, so every
    /// node computes the same owner without asking.
    pub fn owner(&self, partition: &str) -> Option<NodeId> {
        if self.placement.is_empty() {
            return None;
        }
        let h = fnv1a(partition.as_bytes());
        Some(self.placement[(h % self.placement.len() as u64) as usize])
    }

    /// Whether `partition` (level components joined by `/`) is in the domain now.
    pub fn has_partition(&self, partition: &str) -> bool {
        let components: Vec<&str> = partition.split('/').collect();
        components.len() == self.levels.len()
            && self
                .levels
                .iter()
                .zip(components)
                .all(|(level, c)| level.names_partition(c))
    }
}

/// FNV-1a: stable across builds and platforms (unlike std's hasher), so every node and every
/// replica of the metadata computes the same placement from the same name.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

fn default_engine() -> String {
    "OLAP".into()
}

/// A table of a database. A table without partition columns is a dimension table: it has one
/// partition, named [`DIMENSION_PARTITION`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TableDef {
    pub name: String,
    /// Unique in the cluster; also the PostgreSQL relation oid.
    pub id: u32,
    pub columns: Vec<ColumnDef>,
    /// One column name per partition level, empty for a dimension table.
    pub partition_columns: Vec<String>,
    /// Columns each data file is sorted by (`sortColumns`; the partition columns when not given).
    #[serde(default)]
    pub sort_columns: Vec<String>,
    /// Next column id to hand out.
    pub next_column_id: u32,
    /// Bumped by TRUNCATE: data of an older generation is garbage.
    #[serde(default)]
    pub generation: u64,
    pub owner: String,
    pub created_ms: i64,
}

/// The partition name of a dimension (unpartitioned) table.
pub const DIMENSION_PARTITION: &str = "0";

/// A column of a table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ColumnDef {
    pub id: u32,
    pub name: String,
    pub ty: ColumnType,
    #[serde(default)]
    pub not_null: bool,
}

impl ColumnDef {
    /// The column's name inside Parquet files.
    pub fn physical_name(&self) -> String {
        format!("c{}", self.id)
    }
}

impl TableDef {
    pub fn is_dimension(&self) -> bool {
        self.partition_columns.is_empty()
    }

    /// Case-insensitive column lookup (DolphinDB matches column names that way), preferring an
    /// exact match.
    pub fn column(&self, name: &str) -> Option<&ColumnDef> {
        self.columns.iter().find(|c| c.name == name).or_else(|| {
            self.columns
                .iter()
                .find(|c| c.name.eq_ignore_ascii_case(name))
        })
    }

    /// The schema users see: logical names.
    pub fn logical_schema(&self) -> SchemaRef {
        Arc::new(Schema::new(
            self.columns
                .iter()
                .map(|c| Field::new(&c.name, c.ty.arrow_type(), !c.not_null))
                .collect::<Vec<_>>(),
        ))
    }

    /// The logical schema with every column nullable: the form rows take on their way into the
    /// table (a write transaction checks NOT NULL itself, with PostgreSQL's error).
    pub fn input_schema(&self) -> SchemaRef {
        Arc::new(Schema::new(
            self.columns
                .iter()
                .map(|c| Field::new(&c.name, c.ty.arrow_type(), true))
                .collect::<Vec<_>>(),
        ))
    }

    /// The schema of the Parquet files: `c<id>` names.
    pub fn physical_schema(&self) -> SchemaRef {
        Arc::new(Schema::new(
            self.columns
                .iter()
                .map(|c| Field::new(c.physical_name(), c.ty.arrow_type(), true))
                .collect::<Vec<_>>(),
        ))
    }

    /// The schema scans read files with: the physical names of [`Self::physical_schema`] and
    /// the declared nullability of [`Self::logical_schema`]. Files are written with every
    /// column nullable, but a write refuses NULL in a NOT NULL column, so the declaration
    /// holds for their rows; a scan must declare it, as every plan reading the table has to
    /// agree with the table's schema.
    pub fn scan_schema(&self) -> SchemaRef {
        Arc::new(Schema::new(
            self.columns
                .iter()
                .map(|c| Field::new(c.physical_name(), c.ty.arrow_type(), !c.not_null))
                .collect::<Vec<_>>(),
        ))
    }

    /// Indices (into `columns`) of the columns files are sorted by: `sort_columns`, or the
    /// partition columns.
    pub fn sort_column_indices(&self) -> Vec<usize> {
        let names = if self.sort_columns.is_empty() {
            &self.partition_columns
        } else {
            &self.sort_columns
        };
        names
            .iter()
            .filter_map(|p| self.columns.iter().position(|c| &c.name == p))
            .collect()
    }

    /// Indices (into `columns`) of the partition columns, one per level.
    pub fn partition_column_indices(&self) -> Vec<usize> {
        self.partition_columns
            .iter()
            .filter_map(|p| self.columns.iter().position(|c| &c.name == p))
            .collect()
    }
}
