//! `COPY table [(columns)] FROM STDIN`: the options of the statement, and the sink that parses
//! the client's data and writes it as one transaction. Nothing of a COPY is visible until its
//! last row has arrived and the transaction has committed; a COPY that fails or is cut off
//! leaves no row behind.

use std::sync::Arc;

use arrow::array::{new_null_array, ArrayRef, RecordBatch};
use arrow::datatypes::{Schema, SchemaRef};
use sqlparser::ast::{CopyLegacyCsvOption, CopyLegacyOption, CopyOption};

use super::parse::copy_format::{CopyFormat, CopyOptions, CopyParser};
use super::{CopyIn, QueryError, Session};
use crate::datanode::WriteTxn;
use crate::sqlstate::SqlState;

/// Rows per batch handed from the parser to the write transaction.
const BATCH_ROWS: usize = 64 * 1024;

/// Builds parser options from both the modern `WITH (...)` and the legacy option syntax
/// (psql's `\copy ... csv header` sends the legacy one).
pub fn options(
    modern: &[CopyOption],
    legacy: &[CopyLegacyOption],
) -> Result<CopyOptions, QueryError> {
    let csv = modern
        .iter()
        .any(|o| matches!(o, CopyOption::Format(f) if f.value.eq_ignore_ascii_case("csv")))
        || legacy.iter().any(|o| matches!(o, CopyLegacyOption::Csv(_)));
    for o in modern {
        if let CopyOption::Format(f) = o {
            match f.value.to_ascii_lowercase().as_str() {
                "csv" | "text" => {}
                other => {
                    return Err(QueryError::Unsupported(format!("COPY format {other}")));
                }
            }
        }
    }
    let mut opts = if csv {
        CopyOptions::csv()
    } else {
        CopyOptions::text()
    };
    let byte = |c: char, what: &str| -> Result<u8, QueryError> {
        if c.is_ascii() {
            Ok(c as u8)
        } else {
            Err(QueryError::other(
                SqlState::FEATURE_NOT_SUPPORTED,
                format!("COPY {what} must be a single one-byte character"),
            ))
        }
    };
    for o in modern {
        match o {
            CopyOption::Format(_) | CopyOption::Freeze(_) | CopyOption::Encoding(_) => {}
            CopyOption::Delimiter(c) => opts.delimiter = byte(*c, "delimiter")?,
            CopyOption::Null(s) => opts.null = s.clone(),
            CopyOption::Header(h) => opts.header = *h,
            CopyOption::Quote(c) => opts.quote = byte(*c, "quote")?,
            CopyOption::Escape(c) => opts.escape = byte(*c, "escape")?,
            other => return Err(QueryError::Unsupported(format!("COPY option {other}"))),
        }
    }
    for o in legacy {
        match o {
            CopyLegacyOption::Csv(csv_options) => {
                for c in csv_options {
                    match c {
                        CopyLegacyCsvOption::Header => opts.header = true,
                        CopyLegacyCsvOption::Quote(q) => opts.quote = byte(*q, "quote")?,
                        CopyLegacyCsvOption::Escape(e) => opts.escape = byte(*e, "escape")?,
                        other => {
                            return Err(QueryError::Unsupported(format!("COPY option {other}")))
                        }
                    }
                }
            }
            CopyLegacyOption::Delimiter(c) => opts.delimiter = byte(*c, "delimiter")?,
            CopyLegacyOption::Null(s) => opts.null = s.clone(),
            CopyLegacyOption::Header => opts.header = true,
            CopyLegacyOption::Binary => return Err(QueryError::Unsupported("COPY BINARY".into())),
            other => return Err(QueryError::Unsupported(format!("COPY option {other}"))),
        }
    }
    if opts.header && matches!(opts.format, CopyFormat::Text) {
        return Err(QueryError::other(
            SqlState::FEATURE_NOT_SUPPORTED,
            "COPY HEADER available only in CSV mode",
        ));
    }
    Ok(opts)
}

/// Receives the data of one COPY.
pub struct CopySink {
    txn: WriteTxn,
    parser: CopyParser,
    /// For each table column, its position in the COPY data, if it has one.
    positions: Vec<Option<usize>>,
    /// The batches handed to the transaction (`TableDef::input_schema`).
    input_schema: SchemaRef,
}

impl CopySink {
    /// Begins the transaction of a COPY.
    pub async fn start(session: &Session, copy: &CopyIn) -> Result<Self, QueryError> {
        let txn = session.engine().node().begin(&copy.db, &copy.table).await?;
        let table = txn.table().clone();
        let table_schema = table.logical_schema();
        let names: Vec<String> = if copy.columns.is_empty() {
            table.columns.iter().map(|c| c.name.clone()).collect()
        } else {
            copy.columns.clone()
        };
        let mut fields = Vec::with_capacity(names.len());
        let mut positions = vec![None; table.columns.len()];
        for (pos, name) in names.iter().enumerate() {
            let index = table
                .columns
                .iter()
                .position(|c| &c.name == name)
                .or_else(|| {
                    table
                        .columns
                        .iter()
                        .position(|c| c.name.eq_ignore_ascii_case(name))
                })
                .ok_or_else(|| {
                    QueryError::other(
                        SqlState::UNDEFINED_COLUMN,
                        format!(
                            "column \"{name}\" of relation \"{}\" does not exist",
                            table.name
                        ),
                    )
                })?;
            if positions[index].is_some() {
                return Err(QueryError::other(
                    SqlState::DUPLICATE_COLUMN,
                    format!("column \"{name}\" specified more than once"),
                ));
            }
            positions[index] = Some(pos);
            fields.push(table_schema.field(index).clone());
        }
        let data_schema = Arc::new(Schema::new(fields));
        let parser = CopyParser::new(&table.name, data_schema, copy.options.clone(), BATCH_ROWS)
            .with_max_line(session.engine().node().options().limits.copy_line);
        Ok(CopySink {
            txn,
            parser,
            positions,
            input_schema: table.input_schema(),
        })
    }

    /// One CopyData message.
    pub async fn push(&mut self, data: &[u8]) -> Result<(), QueryError> {
        for batch in self.parser.push(data)? {
            self.append(batch).await?;
        }
        Ok(())
    }

    /// CopyDone: commit. Returns the number of rows.
    pub async fn finish(mut self) -> Result<u64, QueryError> {
        if let Some(batch) = self.parser.finish()? {
            self.append(batch).await?;
        }
        Ok(self.txn.commit().await?)
    }

    async fn append(&mut self, data: RecordBatch) -> Result<(), QueryError> {
        let rows = data.num_rows();
        let columns: Vec<ArrayRef> = self
            .positions
            .iter()
            .zip(self.input_schema.fields())
            .map(|(p, f)| match p {
                Some(i) => data.column(*i).clone(),
                None => new_null_array(f.data_type(), rows),
            })
            .collect();
        let batch = RecordBatch::try_new(self.input_schema.clone(), columns)
            .map_err(|e| QueryError::other(SqlState::INTERNAL_ERROR, e.to_string()))?;
        self.txn.append(batch).await?;
        Ok(())
    }
}
