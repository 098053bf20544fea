//! Carries out DDL: validates a parsed [`DdlStatement`] against the catalog model and proposes
//! the change to the controller. Every DDL statement is one raft command, so it is atomic and
//! durable once acknowledged.
//!
//! Privileges, checked first: DDL on the database for CREATE/DROP/ALTER TABLE and DROP
//! DATABASE, WRITE for TRUNCATE (it changes rows, not the schema), and DDL on `*` (or being an
//! admin) for CREATE DATABASE. A new database is owned by the user who created it.

use std::collections::BTreeSet;

use super::parse::ddl::{AlterOp, ColumnDef as DdlColumn, DdlStatement, PartitionSpec, TableName};
use super::parse::literal::Literal;
use super::{QueryError, Session};
use crate::catalog::types::TypeError;
use crate::catalog::{ColumnDef, ColumnType, DatabaseDef, KeyValue, PartitionLevel, TableDef};
use crate::controller::error::MetadataError;
use crate::controller::metadata::{now_ms, Command, CommandResult, Privilege, ALL_DATABASES};
use crate::sqlstate::SqlState;

/// Runs one DDL statement; returns its command tag.
pub async fn execute(session: &Session, stmt: &DdlStatement) -> Result<String, QueryError> {
    let now = now_ms();
    let (cmd, tag) = match stmt {
        DdlStatement::CreateDatabase {
            path,
            if_not_exists,
            levels,
            options,
        } => {
            session.require(ALL_DATABASES, Privilege::Ddl)?;
            let mut engine = "OLAP".to_string();
            for (key, value) in options {
                let text = literal_text(value);
                match key.to_ascii_lowercase().as_str() {
                    "engine" => {
                        let v = text.to_ascii_uppercase();
                        if !["OLAP", "TSDB", "PKEY"].contains(&v.as_str()) {
                            return Err(invalid(format!(
                                "unknown engine '{text}' (OLAP, TSDB or PKEY)"
                            )));
                        }
                        engine = v;
                    }
                    "atomic" => {
                        if !text.eq_ignore_ascii_case("TRANS") {
                            return Err(QueryError::Unsupported(format!(
                                "atomic='{text}': every statement is one all-or-nothing transaction (atomic='TRANS')"
                            )));
                        }
                    }
                    "chunkgranularity" => {
                        if !["TABLE", "DATABASE"].contains(&text.to_ascii_uppercase().as_str()) {
                            return Err(invalid(format!("unknown chunkGranularity '{text}'")));
                        }
                    }
                    _ => return Err(invalid(format!("unknown database option \"{key}\""))),
                }
            }
            if levels.is_empty() || levels.len() > 3 {
                return Err(invalid("a database has 1 to 3 partition levels".into()));
            }
            let levels = levels.iter().map(level).collect::<Result<Vec<_>, _>>()?;
            let def = DatabaseDef {
                name: path.clone(),
                id: 0,
                levels,
                engine,
                owner: session.user().to_string(),
                created_ms: now,
                placement: Vec::new(),
            };
            (
                Command::CreateDatabase {
                    def,
                    if_not_exists: *if_not_exists,
                },
                "CREATE DATABASE",
            )
        }
        DdlStatement::CreateTable {
            name,
            if_not_exists,
            columns,
            partitioned_by,
            options,
        } => {
            let db = database_of(name)?;
            session.require(&db, Privilege::Ddl)?;
            let metadata = session.engine().controller().metadata();
            let database = metadata
                .database(&db)
                .ok_or_else(|| MetadataError::DatabaseNotFound(db.clone()))?;
            let mut sort_columns = Vec::new();
            for (key, value) in options {
                match key.to_ascii_lowercase().as_str() {
                    "sortcolumns" => {
                        sort_columns = value.name_list().ok_or_else(|| {
                            invalid("sortColumns takes column names, e.g. sortColumns=`a`b".into())
                        })?;
                    }
                    // Other options of DolphinDB's TSDB/PKEY engines: accepted, no effect here.
                    "keepduplicates"
                    | "sortkeymappingfunction"
                    | "primarykey"
                    | "softdelete"
                    | "comment"
                    | "encryptmode"
                    | "indexes" => {}
                    _ => return Err(invalid(format!("unknown table option \"{key}\""))),
                }
            }
            let mut def = table_def(
                &name.table,
                columns,
                partitioned_by,
                &database.def,
                session.user(),
                now,
            )?;
            for c in &sort_columns {
                let column = def.column(c).ok_or_else(|| {
                    QueryError::other(
                        SqlState::UNDEFINED_COLUMN,
                        format!("sort column \"{c}\" is not a column of the table"),
                    )
                })?;
                def.sort_columns.push(column.name.clone());
            }
            (
                Command::CreateTable {
                    db,
                    def,
                    if_not_exists: *if_not_exists,
                },
                "CREATE TABLE",
            )
        }
        DdlStatement::DropDatabase { path, if_exists } => {
            match session.require(path, Privilege::Ddl) {
                // Nothing to drop, nothing to check: the command is skipped.
                Err(QueryError::Metadata(MetadataError::DatabaseNotFound(_))) if *if_exists => {}
                other => other?,
            }
            (
                Command::DropDatabase {
                    name: path.clone(),
                    if_exists: *if_exists,
                },
                "DROP DATABASE",
            )
        }
        DdlStatement::DropTable { name, if_exists } => {
            let db = database_of(name)?;
            session.require(&db, Privilege::Ddl)?;
            (
                Command::DropTable {
                    db,
                    table: name.table.clone(),
                    if_exists: *if_exists,
                },
                "DROP TABLE",
            )
        }
        DdlStatement::TruncateTable { name } => {
            let db = database_of(name)?;
            session.require(&db, Privilege::Write)?;
            (
                Command::TruncateTable {
                    db,
                    table: name.table.clone(),
                },
                "TRUNCATE TABLE",
            )
        }
        DdlStatement::AlterTable { name, op } => {
            let db = database_of(name)?;
            session.require(&db, Privilege::Ddl)?;
            let table = name.table.clone();
            let cmd = match op {
                AlterOp::AddColumn(c) if c.not_null => {
                    // The files already written have no value for the column, and scans
                    // declare a NOT NULL column as never NULL: its rows would be unreadable.
                    // PostgreSQL refuses it too unless the table is empty or a default fills
                    // it; porpoise has no defaults, and no row count in the metadata.
                    return Err(QueryError::other(
                        SqlState::FEATURE_NOT_SUPPORTED,
                        format!(
                            "cannot add NOT NULL column \"{}\" to an existing table: its rows have no value for it; add it without NOT NULL",
                            c.name
                        ),
                    ));
                }
                AlterOp::AddColumn(c) => Command::AddColumn {
                    db,
                    table,
                    column: column(0, c)?,
                },
                AlterOp::DropColumn(c) => Command::DropColumn {
                    db,
                    table,
                    column: c.clone(),
                },
                AlterOp::RenameColumn { from, to } => Command::RenameColumn {
                    db,
                    table,
                    from: from.clone(),
                    to: to.clone(),
                },
                AlterOp::RenameTable { to } => Command::RenameTable {
                    db,
                    table,
                    to: to.clone(),
                },
                AlterOp::DropPartitions(partitions) => {
                    // Not a catalog change: a write transaction that removes the rows.
                    let mut txn = session.engine().node().begin(&db, &table).await?;
                    txn.drop_partitions(partitions.iter().cloned().collect())
                        .await?;
                    txn.commit().await?;
                    return Ok("ALTER TABLE".to_string());
                }
            };
            (cmd, "ALTER TABLE")
        }
    };
    match session.engine().controller().write(cmd).await? {
        CommandResult::Err(e) => Err(e.into()),
        _ => Ok(tag.to_string()),
    }
}

fn invalid(message: String) -> QueryError {
    QueryError::other(SqlState::INVALID_TABLE_DEFINITION, message)
}

fn database_of(name: &TableName) -> Result<String, QueryError> {
    name.db.clone().ok_or_else(|| {
        QueryError::other(
            SqlState::INVALID_SCHEMA_NAME,
            format!(
                "table \"{}\" must be named with its database, e.g. \"dfs://db\".\"{}\"",
                name.table, name.table
            ),
        )
    })
}

fn literal_text(l: &Literal) -> String {
    match l {
        Literal::String(s) | Literal::Symbol(s) | Literal::Ident(s) => s.clone(),
        other => format!("{other:?}"),
    }
}

/// The key type and value of one scheme literal.
pub(crate) fn key_of(l: &Literal) -> Result<(ColumnType, KeyValue), QueryError> {
    Ok(match l {
        Literal::Int(v) => (ColumnType::Long, KeyValue::Int(*v)),
        Literal::String(s) | Literal::Symbol(s) => (ColumnType::Symbol, KeyValue::Str(s.clone())),
        Literal::Date(d) => (ColumnType::Date, KeyValue::Int(*d as i64)),
        Literal::Month(m) => (ColumnType::Month, KeyValue::Int(*m as i64)),
        Literal::Time(ms) => (ColumnType::Time, KeyValue::Int(*ms)),
        Literal::Minute(m) => (ColumnType::Minute, KeyValue::Int(*m as i64)),
        Literal::Second(s) => (ColumnType::Second, KeyValue::Int(*s as i64)),
        Literal::DateTime(s) => (ColumnType::DateTime, KeyValue::Int(*s)),
        Literal::Timestamp(ms) => (ColumnType::Timestamp, KeyValue::Int(*ms)),
        Literal::NanoTimestamp(ns) => (ColumnType::NanoTimestamp, KeyValue::Int(*ns)),
        other => {
            return Err(invalid(format!(
                "{other:?} cannot be a partition scheme value (use integers, strings, symbols or temporal values)"
            )))
        }
    })
}

/// The common key type of a list of scheme values.
fn keys_of(values: &[Literal]) -> Result<(ColumnType, Vec<KeyValue>), QueryError> {
    let mut key_type = None;
    let mut keys = Vec::with_capacity(values.len());
    for v in values {
        let (t, k) = key_of(v)?;
        match key_type {
            None => key_type = Some(t),
            Some(existing) if existing != t => {
                return Err(invalid(format!(
                    "partition scheme mixes {existing} and {t} values"
                )))
            }
            _ => {}
        }
        keys.push(k);
    }
    let key_type = key_type.ok_or_else(|| invalid("partition scheme is empty".into()))?;
    Ok((key_type, keys))
}

fn level(spec: &PartitionSpec) -> Result<PartitionLevel, QueryError> {
    Ok(match spec {
        PartitionSpec::Value(values) => {
            let (key_type, keys) = keys_of(values)?;
            let set: BTreeSet<KeyValue> = keys.into_iter().collect();
            PartitionLevel::Value {
                key_type,
                values: set,
            }
        }
        PartitionSpec::Range(values) => {
            let (key_type, bounds) = keys_of(values)?;
            if bounds.len() < 2 {
                return Err(invalid("RANGE needs at least two boundaries".into()));
            }
            if bounds.windows(2).any(|w| w[0] >= w[1]) {
                return Err(invalid(
                    "RANGE boundaries must be strictly increasing".into(),
                ));
            }
            PartitionLevel::Range { key_type, bounds }
        }
        PartitionSpec::List(lists) => {
            let mut key_type = None;
            let mut out = Vec::with_capacity(lists.len());
            let mut seen = BTreeSet::new();
            for l in lists {
                let (t, keys) = keys_of(l)?;
                if key_type.is_some_and(|k| k != t) {
                    return Err(invalid("LIST partitions mix value types".into()));
                }
                key_type = Some(t);
                for k in &keys {
                    if !seen.insert(k.clone()) {
                        return Err(invalid(format!(
                            "LIST value {k} is in more than one partition"
                        )));
                    }
                }
                out.push(keys);
            }
            PartitionLevel::List {
                key_type: key_type
                    .ok_or_else(|| invalid("LIST needs at least one partition".into()))?,
                lists: out,
            }
        }
        PartitionSpec::Hash { type_name, buckets } => {
            let key_type = resolve_type(type_name, &[])?;
            if matches!(
                key_type,
                ColumnType::Float | ColumnType::Double | ColumnType::Bool
            ) {
                return Err(invalid(format!(
                    "the data type {key_type} can't be used for a partition column"
                )));
            }
            if *buckets < 1 || *buckets > 1_000_000 {
                return Err(invalid(
                    "HASH bucket count must be between 1 and 1000000".into(),
                ));
            }
            PartitionLevel::Hash {
                key_type,
                buckets: *buckets as u32,
            }
        }
    })
}

fn resolve_type(name: &str, args: &[i64]) -> Result<ColumnType, QueryError> {
    ColumnType::from_name(name, args).map_err(|e: TypeError| QueryError::coded(&e))
}

fn column(id: u32, c: &DdlColumn) -> Result<ColumnDef, QueryError> {
    Ok(ColumnDef {
        id,
        name: c.name.clone(),
        ty: resolve_type(&c.type_name, &c.type_args)?,
        not_null: c.not_null,
    })
}

fn table_def(
    name: &str,
    columns: &[DdlColumn],
    partitioned_by: &[String],
    db: &DatabaseDef,
    owner: &str,
    now: i64,
) -> Result<TableDef, QueryError> {
    let columns: Vec<ColumnDef> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| column(i as u32 + 1, c))
        .collect::<Result<_, _>>()?;
    let mut def = TableDef {
        name: name.to_string(),
        id: 0,
        next_column_id: columns.len() as u32 + 1,
        columns,
        partition_columns: Vec::new(),
        sort_columns: Vec::new(),
        generation: 0,
        owner: owner.to_string(),
        created_ms: now,
    };
    if partitioned_by.is_empty() {
        return Ok(def);
    }
    if partitioned_by.len() != db.levels.len() {
        return Err(invalid(format!(
            "database \"{}\" has {} partition level(s); partitioned by must name {} column(s)",
            db.name,
            db.levels.len(),
            db.levels.len()
        )));
    }
    for (p, level) in partitioned_by.iter().zip(&db.levels) {
        let c = def.column(p).ok_or_else(|| {
            QueryError::other(
                SqlState::UNDEFINED_COLUMN,
                format!("partition column \"{p}\" is not a column of the table"),
            )
        })?;
        level
            .check_column(&c.name, c.ty)
            .map_err(|e| QueryError::other(SqlState::DATATYPE_MISMATCH, e.to_string()))?;
        def.partition_columns.push(c.name.clone());
    }
    Ok(def)
}
