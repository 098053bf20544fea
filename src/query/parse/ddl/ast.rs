//! The syntax tree of the DDL statements porpoise parses itself.

use crate::query::parse::literal::Literal;

/// A DDL statement porpoise handles itself.
#[derive(Debug, Clone, PartialEq)]
pub enum DdlStatement {
    /// `CREATE DATABASE "dfs://x" PARTITIONED BY ...`.
    CreateDatabase {
        /// The path, including `dfs://`.
        path: String,
        if_not_exists: bool,
        /// One to three levels, outermost first.
        levels: Vec<PartitionSpec>,
        /// `engine='OLAP'`, `atomic='TRANS'`, ...: names as written, unvalidated.
        options: Vec<(String, Literal)>,
    },
    /// `CREATE TABLE name (...)`.
    CreateTable {
        name: TableName,
        if_not_exists: bool,
        /// At least one column; names are unique ignoring case.
        columns: Vec<ColumnDef>,
        /// The `PARTITIONED BY` columns (zero to three), not checked against `columns`.
        partitioned_by: Vec<String>,
        /// `sortColumns=`a`b`, `keepDuplicates=ALL`, ...: names as written, unvalidated.
        options: Vec<(String, Literal)>,
    },
    /// `DROP DATABASE "dfs://x"`.
    DropDatabase { path: String, if_exists: bool },
    /// `DROP TABLE name`.
    DropTable { name: TableName, if_exists: bool },
    /// `TRUNCATE [TABLE] name`.
    TruncateTable { name: TableName },
    /// `ALTER TABLE name ...`.
    AlterTable { name: TableName, op: AlterOp },
}

/// A table name, optionally qualified by its database path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableName {
    /// `Some("dfs://x")` when qualified, `None` for a bare `t`.
    pub db: Option<String>,
    /// The table name, in the case it was written.
    pub table: String,
}

/// One column of `CREATE TABLE` or `ALTER TABLE ... ADD COLUMN`.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnDef {
    /// The column name, in the case it was written.
    pub name: String,
    /// The type as written, its words joined by single spaces: `"SYMBOL"`,
    /// `"double precision"`, `"timestamp with time zone"`, `"DECIMAL64"`.
    pub type_name: String,
    /// The type's parenthesised integers: `numeric(10,2)` → `[10, 2]`, `varchar(20)` → `[20]`.
    pub type_args: Vec<i64>,
    /// Whether `NOT NULL` was given.
    pub not_null: bool,
    /// DolphinDB column options: `[comment="x", compress="delta"]`, names as written.
    pub options: Vec<(String, Literal)>,
}

/// What `ALTER TABLE` does.
#[derive(Debug, Clone, PartialEq)]
pub enum AlterOp {
    AddColumn(ColumnDef),
    DropColumn(String),
    RenameColumn {
        from: String,
        to: String,
    },
    /// `RENAME TO name`: the table takes a new name in its database.
    RenameTable {
        to: String,
    },
    /// `DROP PARTITION 'p' [, ...]`: the rows of these partitions are removed (DolphinDB's
    /// `dropPartition`).
    DropPartitions(Vec<String>),
}

/// One partition level of `CREATE DATABASE`, with its scheme fully expanded.
#[derive(Debug, Clone, PartialEq)]
pub enum PartitionSpec {
    /// `VALUE(scheme)`: one partition per value.
    Value(Vec<Literal>),
    /// `RANGE(scheme)`: partition boundaries (at least two, ordering not checked).
    Range(Vec<Literal>),
    /// `LIST(scheme)`: one partition per group of values.
    List(Vec<Vec<Literal>>),
    /// `HASH([TYPE, buckets])`, the type name as written.
    Hash { type_name: String, buckets: i64 },
}
