//! [`CopyParser`]: the COPY data stream cut into records, converted row by row into column
//! buffers, and handed out as record batches of a fixed size.

use arrow::compute::concat_batches;
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;

use super::column::{self, Column};
use super::error::{internal_error, printable, CopyError};
use super::options::CopyOptions;
use super::scanner::{ScanError, Scanned, Scanner};

/// Parses the data of one `COPY table FROM STDIN` into record batches of a given schema.
///
/// Feed every `CopyData` payload to [`push`](Self::push) and call [`finish`](Self::finish) on
/// `CopyDone`. The first error aborts the COPY: every later call returns it again.
pub struct CopyParser {
    table: String,
    schema: SchemaRef,
    batch_rows: usize,
    scanner: Scanner,
    columns: Vec<Column>,
    /// The start of a record that the data so far leaves incomplete.
    pending: Vec<u8>,
    skip_header: bool,
    /// Lines read so far, the header included: PostgreSQL's line number (records, plus line
    /// feeds inside quoted CSV fields).
    line: u64,
    rows: u64,
    rows_in_batch: usize,
    /// The end-of-data marker was read; later data is ignored.
    done: bool,
    /// `finish` was called.
    finished: bool,
    error: Option<CopyError>,
    /// The longest record (in bytes) the parser takes; a longer one fails the COPY with
    /// 54000 as soon as that many bytes of it have arrived, instead of buffering the rest.
    max_line: usize,
}

impl CopyParser {
    /// A parser for `COPY <table> FROM STDIN` into `schema`, emitting batches of `batch_rows`
    /// rows (at least one). `table` is used in error contexts
    /// (`COPY <table>, line N, column <col>: ...`). Invalid options or a column type that COPY
    /// cannot fill make the first `push` or `finish` fail.
    pub fn new(table: &str, schema: SchemaRef, options: CopyOptions, batch_rows: usize) -> Self {
        let batch_rows = batch_rows.max(1);
        let (columns, unfillable) = column::columns(&schema, batch_rows);
        let error = options.validate().err().or(unfillable);
        Self {
            table: table.to_owned(),
            schema,
            batch_rows,
            skip_header: options.header,
            scanner: Scanner::new(&options),
            columns,
            pending: Vec::new(),
            line: 0,
            rows: 0,
            rows_in_batch: 0,
            done: false,
            finished: false,
            error,
            max_line: usize::MAX,
        }
    }

    /// Refuses records longer than `bytes` (`maxCopyLineSize`).
    pub fn with_max_line(mut self, bytes: usize) -> Self {
        self.max_line = bytes.max(1);
        self
    }

    /// The error for a record longer than [`Self::with_max_line`].
    fn line_too_long(&self) -> CopyError {
        CopyError::new(
            "54000",
            format!(
                "COPY line is longer than {} bytes (maxCopyLineSize = {} MB): split the data \
                 into shorter records, or raise maxCopyLineSize",
                self.max_line,
                self.max_line.div_ceil(1 << 20)
            ),
            Some(format!(
                "COPY {}, line {}",
                self.table,
                self.line + 1 + self.scanner.quoted_newlines
            )),
        )
    }

    /// Feeds the next `CopyData` payload. Returns the batches (each exactly `batch_rows` rows)
    /// that filled up.
    pub fn push(&mut self, data: &[u8]) -> Result<Vec<RecordBatch>, CopyError> {
        if let Some(error) = &self.error {
            return Err(error.clone());
        }
        if self.finished {
            return Err(CopyError::new(
                "08P01",
                "COPY data received after the end of the COPY stream",
                None,
            ));
        }
        let mut batches = Vec::new();
        if let Err(error) = self.push_inner(data, &mut batches) {
            self.error = Some(error.clone());
            return Err(error);
        }
        Ok(batches)
    }

    /// Ends the data (`CopyDone`): parses a final record that has no line break after it and
    /// returns the remaining rows, if any.
    pub fn finish(&mut self) -> Result<Option<RecordBatch>, CopyError> {
        if let Some(error) = &self.error {
            return Err(error.clone());
        }
        if self.finished {
            return Ok(None);
        }
        self.finished = true;
        let result = self.finish_inner();
        if let Err(error) = &result {
            self.error = Some(error.clone());
        }
        result
    }

    /// Data rows parsed so far (the header excluded).
    pub fn rows(&self) -> u64 {
        self.rows
    }

    fn push_inner(&mut self, mut data: &[u8], out: &mut Vec<RecordBatch>) -> Result<(), CopyError> {
        // First complete the record left over from the previous chunk, copying only as far as
        // a line break that can end it.
        while !self.pending.is_empty() && !self.done {
            let Some(end) = self.scanner.find_record_end(data) else {
                if self.pending.len().saturating_add(data.len()) > self.max_line {
                    return Err(self.line_too_long());
                }
                self.pending.extend_from_slice(data);
                return Ok(());
            };
            if self.pending.len().saturating_add(end) > self.max_line {
                return Err(self.line_too_long());
            }
            self.pending.extend_from_slice(&data[..=end]);
            data = &data[end + 1..];
            let pending = std::mem::take(&mut self.pending);
            let parsed = self.parse_records(&pending, false, out);
            self.pending = pending;
            let consumed = parsed?;
            self.pending.drain(..consumed);
            self.scanner.reset_record_end();
            self.scanner.track_record_end(&self.pending);
        }
        if self.done {
            return Ok(());
        }
        // Then parse the rest of the chunk in place.
        let consumed = self.parse_records(data, false, out)?;
        if !self.done {
            let rest = &data[consumed..];
            if rest.len() > self.max_line {
                return Err(self.line_too_long());
            }
            self.pending.extend_from_slice(rest);
            self.scanner.reset_record_end();
            self.scanner.track_record_end(rest);
        }
        Ok(())
    }

    fn finish_inner(&mut self) -> Result<Option<RecordBatch>, CopyError> {
        let mut batches = Vec::new();
        if !self.done {
            let pending = std::mem::take(&mut self.pending);
            self.parse_records(&pending, true, &mut batches)?;
        }
        if self.rows_in_batch > 0 {
            batches.push(self.flush()?);
        }
        match batches.len() {
            0 => Ok(None),
            1 => Ok(batches.pop()),
            // Only the one record `push` left incomplete is parsed here, so this is not
            // expected; stay correct anyway.
            _ => concat_batches(&self.schema, &batches)
                .map(Some)
                .map_err(internal_error),
        }
    }

    /// Parses the complete records of `input` (all of it when `eof`); returns how many bytes
    /// they took.
    fn parse_records(
        &mut self,
        input: &[u8],
        eof: bool,
        out: &mut Vec<RecordBatch>,
    ) -> Result<usize, CopyError> {
        let mut pos = 0;
        while pos < input.len() {
            let scanned = match self.scanner.scan(input, pos, eof) {
                Ok(scanned) => scanned,
                Err(error) => return Err(self.scan_error(error, input, pos)),
            };
            match scanned {
                Scanned::Incomplete => break,
                Scanned::EndOfData => {
                    self.done = true;
                    return Ok(input.len());
                }
                Scanned::Record { line_end, next } => {
                    if line_end - pos > self.max_line {
                        return Err(self.line_too_long());
                    }
                    self.line += 1 + self.scanner.quoted_newlines;
                    if self.skip_header {
                        self.skip_header = false;
                    } else {
                        self.convert_row(input, pos, line_end)?;
                        if self.rows_in_batch >= self.batch_rows {
                            out.push(self.flush()?);
                        }
                    }
                    pos = next;
                }
            }
        }
        Ok(pos)
    }

    fn scan_error(&self, error: ScanError, input: &[u8], line_start: usize) -> CopyError {
        let line = self.line + 1 + self.scanner.quoted_newlines;
        let context = if error.shows_line {
            format!(
                "COPY {}, line {line}: \"{}\"",
                self.table,
                printable(&input[line_start..])
            )
        } else {
            format!("COPY {}, line {line}", self.table)
        };
        CopyError::new("22P04", error.message, Some(context))
    }

    /// Converts the fields the scanner just split into one row of the column buffers.
    fn convert_row(
        &mut self,
        input: &[u8],
        line_start: usize,
        line_end: usize,
    ) -> Result<(), CopyError> {
        let Self {
            table,
            scanner,
            columns,
            line,
            ..
        } = self;
        let fields = &scanner.fields;
        let line_error = |sqlstate, message: String| {
            let context = format!(
                "COPY {table}, line {line}: \"{}\"",
                printable(&input[line_start..line_end])
            );
            CopyError::new(sqlstate, message, Some(context))
        };
        let extra = match columns.len() {
            // A table without columns takes empty lines only.
            0 => line_end > line_start,
            n => fields.len() > n,
        };
        if extra {
            return Err(line_error(
                "22P04",
                "extra data after last expected column".into(),
            ));
        }
        let mut null_violation = None;
        for (index, column) in columns.iter_mut().enumerate() {
            let Some(field) = fields.get(index) else {
                return Err(line_error(
                    "22P04",
                    format!("missing data for column \"{}\"", column.name),
                ));
            };
            if field.null {
                if !column.nullable {
                    null_violation.get_or_insert(index);
                }
                column.append_null();
                continue;
            }
            let value = if field.in_scratch {
                &scanner.scratch[field.start..field.end]
            } else {
                &input[field.start..field.end]
            };
            if let Err(bad) = column.append(value) {
                return Err(column.describe(bad, value, table, *line));
            }
        }
        if let Some(index) = null_violation {
            return Err(line_error(
                "23502",
                format!(
                    "null value in column \"{}\" violates not-null constraint",
                    columns[index].name
                ),
            ));
        }
        self.rows += 1;
        self.rows_in_batch += 1;
        Ok(())
    }

    /// Turns the buffered rows into a batch and starts the next one.
    fn flush(&mut self) -> Result<RecordBatch, CopyError> {
        let rows = std::mem::take(&mut self.rows_in_batch);
        column::take_batch(&self.schema, &mut self.columns, rows, self.batch_rows)
    }
}
