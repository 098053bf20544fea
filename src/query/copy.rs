//! `COPY table [(columns)] FROM STDIN`: the options of the statement, and the sink that parses
//! the client's data and writes it as one transaction. Nothing of a COPY is visible until its
//! last row has arrived and the transaction has committed; a COPY that fails or is cut off
//! leaves no row behind.

use std::sync::Arc;

use arrow::array::{new_null_array, ArrayRef, RecordBatch};
use arrow::datatypes::{Schema, SchemaRef};
use sqlparser::ast::{CopyLegacyCsvOption, CopyLegacyOption, CopyOption};

use super::block::{changed_in_block, txn_for, BlockWrites, Held, WriteKind};
use super::parse::copy_format::{BinaryParser, CopyError, CopyFormat, CopyOptions, CopyParser};
use super::{CopyIn, QueryError, Session};
use crate::catalog::TableDef;
use crate::datanode::WriteTxn;
use crate::sqlstate::SqlState;

/// Rows per batch handed from the parser to the write transaction.
const BATCH_ROWS: usize = 64 * 1024;

/// The options of a COPY statement: how its data is read or written, and (`COPY ... TO`,
/// CSV) the columns whose values are always quoted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopySpec {
    pub options: CopyOptions,
    /// `FORCE_QUOTE (a, b)`: these columns' non-NULL values are quoted.
    pub force_quote: Vec<String>,
}

/// Builds the options of `COPY ... FROM` (`to == false`) or `COPY ... TO` from both the modern
/// `WITH (...)` and the legacy option syntax (psql's `\copy ... csv header` sends the legacy
/// one), with the checks PostgreSQL's `ProcessCopyOptions` makes on their combination.
pub fn options(
    modern: &[CopyOption],
    legacy: &[CopyLegacyOption],
    to: bool,
) -> Result<CopySpec, QueryError> {
    let mut format = None;
    for o in modern {
        if let CopyOption::Format(f) = o {
            format = Some(match f.value.to_ascii_lowercase().as_str() {
                "csv" => CopyFormat::Csv,
                "text" => CopyFormat::Text,
                "binary" => CopyFormat::Binary,
                other => {
                    return Err(QueryError::other(
                        SqlState::INVALID_PARAMETER_VALUE,
                        format!("COPY format \"{other}\" not recognized"),
                    ));
                }
            });
        }
    }
    for o in legacy {
        match o {
            CopyLegacyOption::Csv(_) => format = Some(CopyFormat::Csv),
            CopyLegacyOption::Binary => format = Some(CopyFormat::Binary),
            _ => {}
        }
    }
    let format = format.unwrap_or(CopyFormat::Text);
    let mut opts = match format {
        CopyFormat::Csv => CopyOptions::csv(),
        CopyFormat::Text => CopyOptions::text(),
        CopyFormat::Binary => CopyOptions::binary(),
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
    // What was given, for the checks below.
    let (mut delimiter, mut null, mut quote, mut escape) = (false, false, false, false);
    let mut force_quote = None;
    for o in modern {
        match o {
            CopyOption::Format(_) | CopyOption::Freeze(_) | CopyOption::Encoding(_) => {}
            CopyOption::Delimiter(c) => {
                opts.delimiter = byte(*c, "delimiter")?;
                delimiter = true;
            }
            CopyOption::Null(s) => {
                opts.null = s.clone();
                null = true;
            }
            CopyOption::Header(h) => opts.header = *h,
            CopyOption::Quote(c) => {
                opts.quote = byte(*c, "quote")?;
                quote = true;
            }
            CopyOption::Escape(c) => {
                opts.escape = byte(*c, "escape")?;
                escape = true;
            }
            CopyOption::ForceQuote(columns) => {
                force_quote = Some(columns.iter().map(|c| c.value.clone()).collect())
            }
            other => return Err(QueryError::Unsupported(format!("COPY option {other}"))),
        }
    }
    for o in legacy {
        match o {
            CopyLegacyOption::Csv(csv_options) => {
                for c in csv_options {
                    match c {
                        CopyLegacyCsvOption::Header => opts.header = true,
                        CopyLegacyCsvOption::Quote(q) => {
                            opts.quote = byte(*q, "quote")?;
                            quote = true;
                        }
                        CopyLegacyCsvOption::Escape(e) => {
                            opts.escape = byte(*e, "escape")?;
                            escape = true;
                        }
                        CopyLegacyCsvOption::ForceQuote(columns) => {
                            force_quote = Some(columns.iter().map(|c| c.value.clone()).collect())
                        }
                        other => {
                            return Err(QueryError::Unsupported(format!("COPY option {other}")))
                        }
                    }
                }
            }
            CopyLegacyOption::Delimiter(c) => {
                opts.delimiter = byte(*c, "delimiter")?;
                delimiter = true;
            }
            CopyLegacyOption::Null(s) => {
                opts.null = s.clone();
                null = true;
            }
            CopyLegacyOption::Header => opts.header = true,
            CopyLegacyOption::Binary => {}
            other => return Err(QueryError::Unsupported(format!("COPY option {other}"))),
        }
    }
    if quote && !escape {
        // The escape defaults to the quote.
        opts.escape = opts.quote;
    }
    let syntax = |m: &str| Err(QueryError::other(SqlState::SYNTAX_ERROR, m.to_owned()));
    let unsupported = |m: &str| {
        Err(QueryError::other(
            SqlState::FEATURE_NOT_SUPPORTED,
            m.to_owned(),
        ))
    };
    if format == CopyFormat::Binary {
        if delimiter {
            return syntax("cannot specify DELIMITER in BINARY mode");
        }
        if null {
            return syntax("cannot specify NULL in BINARY mode");
        }
        if opts.header {
            return syntax("cannot specify HEADER in BINARY mode");
        }
    }
    if format != CopyFormat::Csv {
        if quote {
            return unsupported("COPY QUOTE requires CSV mode");
        }
        if escape {
            return unsupported("COPY ESCAPE requires CSV mode");
        }
        if force_quote.is_some() {
            return unsupported("COPY FORCE_QUOTE requires CSV mode");
        }
    }
    if force_quote.is_some() && !to {
        return unsupported("COPY FORCE_QUOTE cannot be used with COPY FROM");
    }
    if !to && opts.header && format == CopyFormat::Text {
        return unsupported("COPY HEADER available only in CSV mode");
    }
    if to {
        opts.validate().map_err(QueryError::from)?;
    }
    Ok(CopySpec {
        options: opts,
        force_quote: force_quote.unwrap_or_default(),
    })
}

/// The positions in `table`'s columns of a COPY's column list, in its order (every column
/// when the list is empty). A name matches exactly, else ignoring case; a name the table does
/// not have is 42703, one named twice 42701.
pub fn columns(table: &TableDef, names: &[String]) -> Result<Vec<usize>, QueryError> {
    if names.is_empty() {
        return Ok((0..table.columns.len()).collect());
    }
    let mut indices = Vec::with_capacity(names.len());
    let mut named = vec![false; table.columns.len()];
    for name in names {
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
        if std::mem::replace(&mut named[index], true) {
            return Err(QueryError::other(
                SqlState::DUPLICATE_COLUMN,
                format!("column \"{name}\" specified more than once"),
            ));
        }
        indices.push(index);
    }
    Ok(indices)
}

/// The parser of a COPY's data format.
enum Parser {
    Text(CopyParser),
    Binary(BinaryParser),
}

impl Parser {
    fn push(&mut self, data: &[u8]) -> Result<Vec<RecordBatch>, CopyError> {
        match self {
            Parser::Text(p) => p.push(data),
            Parser::Binary(p) => p.push(data),
        }
    }

    fn finish(&mut self) -> Result<Option<RecordBatch>, CopyError> {
        match self {
            Parser::Text(p) => p.finish(),
            Parser::Binary(p) => p.finish(),
        }
    }
}

/// Receives the data of one COPY.
pub struct CopySink {
    txn: WriteTxn,
    /// The session's block, when the COPY writes in it: the transaction goes back to it
    /// instead of committing.
    block: Option<Arc<BlockWrites>>,
    /// Rows the transaction held before this COPY.
    before: u64,
    parser: Parser,
    /// For each table column, its position in the COPY data, if it has one.
    positions: Vec<Option<usize>>,
    /// The batches handed to the transaction (`TableDef::input_schema`).
    input_schema: SchemaRef,
}

impl CopySink {
    /// Begins the transaction of a COPY.
    pub async fn start(session: &Session, copy: &CopyIn) -> Result<Self, QueryError> {
        let writes = session.block_writes();
        let node = session.engine().node();
        let (txn, block) = match writes.take(&copy.db, &copy.table, WriteKind::Append)? {
            Held::Own => (node.begin(&copy.db, &copy.table).await?, None),
            Held::Block(held) => (
                txn_for(node, held, &copy.db, &copy.table).await?,
                Some(writes.clone()),
            ),
        };
        let current = session.engine().controller().metadata();
        let unchanged = current
            .table(&copy.db, &copy.table)
            .is_some_and(|(_, t)| t.id == txn.table().id && t.generation == txn.table().generation);
        if block.is_some() && !unchanged {
            return Err(changed_in_block(&copy.db, &copy.table));
        }
        let before = txn.rows();
        let table = txn.table().clone();
        let table_schema = table.logical_schema();
        let indices = columns(&table, &copy.columns)?;
        let mut fields = Vec::with_capacity(indices.len());
        let mut positions = vec![None; table.columns.len()];
        for (pos, index) in indices.into_iter().enumerate() {
            positions[index] = Some(pos);
            fields.push(table_schema.field(index).clone());
        }
        let data_schema = Arc::new(Schema::new(fields));
        let max_line = session.engine().node().options().limits.copy_line;
        let parser = if copy.options.format == CopyFormat::Binary {
            Parser::Binary(
                BinaryParser::new(&table.name, data_schema, BATCH_ROWS).with_max_tuple(max_line),
            )
        } else {
            Parser::Text(
                CopyParser::new(&table.name, data_schema, copy.options.clone(), BATCH_ROWS)
                    .with_max_line(max_line),
            )
        };
        Ok(CopySink {
            txn,
            block,
            before,
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

    /// CopyDone: commit, or hand the rows to the transaction block. Returns the number of
    /// rows.
    pub async fn finish(mut self) -> Result<u64, QueryError> {
        if let Some(batch) = self.parser.finish()? {
            self.append(batch).await?;
        }
        match self.block {
            Some(block) => {
                let rows = self.txn.rows() - self.before;
                block.put(self.txn);
                Ok(rows)
            }
            None => Ok(self.txn.commit().await?),
        }
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
