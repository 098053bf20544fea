//! `COPY ... FROM STDIN` data: PostgreSQL's text and CSV formats parsed into Arrow batches.
//!
//! This module owns the byte-level half of `COPY FROM`. The session hands [`CopyParser`] the
//! payload of every `CopyData` message exactly as the client chunked it (a chunk may end in the
//! middle of a line, a field, a quoted section or a multi-byte UTF-8 character); the parser
//! splits the stream into records and fields the way PostgreSQL's `copyfromparse.c` does,
//! converts every field with the input rules of the PostgreSQL type that corresponds to the
//! target Arrow column, and returns [`RecordBatch`]es of a fixed number of rows. It knows
//! nothing of the wire protocol, the catalog or storage.
//!
//! # PostgreSQL rules it follows
//!
//! * **Text format.** Fields are separated by the delimiter (default tab), records end at `\n`
//!   or `\r\n`. A field whose *raw* bytes equal the NULL string (default `\N`) is NULL. Backslash
//!   escapes are `\b \f \n \r \t \v`, `\ddd` (one to three octal digits), `\xh`/`\xhh` (one or
//!   two hex digits) and `\c` for any other byte `c` (so `\\` and `\<delimiter>`); a backslash
//!   followed by a line break makes the break part of the value. `\.` ends the data when it is
//!   alone on its line, anything after it is ignored, and anywhere else it is an error
//!   (PostgreSQL 18). A blank line is a record with one empty field.
//! * **CSV format.** RFC 4180 quoting with the configured quote (default `"`); inside quotes the
//!   escape character (default: the quote itself, i.e. doubled quotes) escapes a quote or
//!   itself; quoted sections may hold delimiters and line breaks and may appear anywhere in a
//!   field (`a"b,c"d` is `ab,cd`). Only an *unquoted* field equal to the NULL string (default
//!   empty) is NULL, so `""` is an empty string. A line holding only `\.` ends the data, as
//!   psql treats it. A quote still open at the end of the data is `unterminated CSV quoted
//!   field`.
//! * **Header.** With `header` the first record is skipped (PostgreSQL 15+ allows it in both
//!   formats). Line numbers in error contexts count from 1, the header included, one per
//!   record plus one per line feed inside quoted CSV fields, as PostgreSQL's `cur_lineno` does.
//! * **Fields and errors.** More fields than columns is `extra data after last expected column`
//!   and is detected before any conversion; fewer is `missing data for column "c"` once the
//!   conversion reaches that column (both `22P04`). Conversion errors use PostgreSQL's SQLSTATEs
//!   and wording (`22P02`, `22003`, `22008`, `22021`, ...) and its CONTEXT line,
//!   `COPY t, line 3, column c: "value"` (values longer than 100 bytes are cut and marked
//!   `...`). A NULL in a non-nullable column is reported (`23502`) only after the whole row
//!   converted, as PostgreSQL checks constraints after input conversion.
//! * **Values.** Integers follow PostgreSQL 16 (surrounding whitespace, `+`/`-`, `0x`/`0o`/`0b`
//!   prefixes, `_` between digits); floats accept `NaN`, `Infinity`, `-Infinity` and report
//!   overflow and underflow to zero as out of range; booleans accept the unique prefixes
//!   PostgreSQL accepts; `bytea` takes the hex (`\x0a0b`) and escape forms; numerics are rounded
//!   half away from zero to the column's scale.
//!
//! # Where it deliberately differs
//!
//! * `\n` and `\r\n` line endings may be mixed (PostgreSQL fixes the style from the first line);
//!   a bare `\r` outside a quoted CSV field is still rejected.
//! * Dates and timestamps accept ISO forms plus DolphinDB's `2023.01.08`; PostgreSQL's many
//!   other spellings (month names, two-digit years, `BC`) are syntax errors.
//! * A UTC offset (`Z`, `+08`, `+05:30`, `-0800`) on a timestamp is applied: the stored value is
//!   UTC. PostgreSQL silently drops it for `timestamp without time zone`.
//! * Fractional seconds finer than the column's unit are **rounded half up** on the dropped
//!   digits (`09:30:00.5` into a seconds column is `09:30:01`), which is what PostgreSQL does
//!   for `timestamp(p)` after 2000-01-01. A time that rounds up to `24:00:00`, or is `24:00:00`,
//!   does not fit an Arrow time column and is `date/time field value out of range`.
//! * Arrow `Int8` reports itself as `smallint`, the type arrow-pg shows clients for it.
//!
//! # Performance
//!
//! A record is split in one pass: the bytes that matter (delimiter, line breaks, quote or
//! backslash) are searched for eight at a time with word-wide bit tricks. Fields are borrowed
//! from the input unless an escape or a quote forces a copy into a reusable scratch buffer, and
//! values go straight into typed column buffers (`Vec<T>` plus a validity bitmap that only
//! materialises once a NULL appears) through hand-written parsers with fast paths for the
//! common shapes: plain decimal integers, short plain decimal floats (exact by Clinger's
//! argument: an integer below 2^53 divided by a power of ten up to 10^22), and ISO timestamps.
//! Nothing allocates per field. Chunks are parsed in place; only the incomplete record at the
//! end of a chunk is copied, and a resumable scan finds where it ends, so a long record spread
//! over many chunks is parsed once.

use std::sync::Arc;

use crate::catalog::calendar::{days_from_civil, is_leap_year};
use arrow::array::{
    ArrayRef, BinaryBuilder, BooleanArray, BooleanBufferBuilder, LargeStringBuilder,
    NullBufferBuilder, PrimitiveArray, StringBuilder,
};
use arrow::buffer::{NullBuffer, ScalarBuffer};
use arrow::compute::concat_batches;
use arrow::datatypes::{
    ArrowPrimitiveType, DataType, Date32Type, Decimal128Type, Field, Float32Type, Float64Type,
    Int16Type, Int32Type, Int64Type, Int8Type, SchemaRef, Time32MillisecondType, Time32SecondType,
    Time64MicrosecondType, Time64NanosecondType, TimeUnit, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType,
};
use arrow::record_batch::{RecordBatch, RecordBatchOptions};

/// The textual formats of `COPY FROM STDIN`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyFormat {
    /// PostgreSQL's default `text` format: delimiter-separated fields, backslash escapes.
    Text,
    /// `FORMAT csv`: RFC 4180 quoting.
    Csv,
}

/// The options of a `COPY FROM` statement that affect how the data is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyOptions {
    /// Text or CSV.
    pub format: CopyFormat,
    /// The field separator: `b'\t'` for text, `b','` for CSV by default.
    pub delimiter: u8,
    /// The raw field content that means NULL: `\N` for text, the empty string for CSV.
    pub null: String,
    /// Skip the first record.
    pub header: bool,
    /// CSV only: the quote character, `b'"'` by default.
    pub quote: u8,
    /// CSV only: the character that escapes a quote inside a quoted field; the quote itself
    /// (so quotes are doubled) by default.
    pub escape: u8,
}

impl CopyOptions {
    /// PostgreSQL's defaults for `FORMAT text`.
    pub fn text() -> Self {
        Self {
            format: CopyFormat::Text,
            delimiter: b'\t',
            null: "\\N".to_owned(),
            header: false,
            quote: b'"',
            escape: b'"',
        }
    }

    /// PostgreSQL's defaults for `FORMAT csv`.
    pub fn csv() -> Self {
        Self {
            format: CopyFormat::Csv,
            delimiter: b',',
            null: String::new(),
            header: false,
            quote: b'"',
            escape: b'"',
        }
    }

    /// The checks PostgreSQL's `ProcessCopyOptions` makes on the options this parser uses.
    fn validate(&self) -> Result<(), CopyError> {
        let invalid = |message: String| Err(CopyError::new("22023", message, None));
        for (byte, what) in [
            (self.delimiter, "delimiter"),
            (self.quote, "quote"),
            (self.escape, "escape"),
        ] {
            if !byte.is_ascii() {
                return Err(CopyError::new(
                    "0A000",
                    format!("COPY {what} must be a single one-byte character"),
                    None,
                ));
            }
        }
        let null = self.null.as_bytes();
        if matches!(self.delimiter, b'\n' | b'\r') {
            return invalid("COPY delimiter cannot be newline or carriage return".into());
        }
        if null.contains(&b'\n') || null.contains(&b'\r') {
            return invalid(
                "COPY null representation cannot use newline or carriage return".into(),
            );
        }
        match self.format {
            CopyFormat::Text => {
                // These would be read as (part of) a backslash escape instead.
                if b"\\.abcdefghijklmnopqrstuvwxyz0123456789".contains(&self.delimiter) {
                    return invalid(format!(
                        "COPY delimiter cannot be \"{}\"",
                        char::from(self.delimiter)
                    ));
                }
            }
            CopyFormat::Csv => {
                if self.quote == self.delimiter {
                    return invalid("COPY delimiter and quote must be different".into());
                }
                if null.contains(&self.quote) {
                    return invalid(
                        "CSV quote character must not appear in the NULL specification".into(),
                    );
                }
            }
        }
        if null.contains(&self.delimiter) {
            return invalid(
                "COPY delimiter character must not appear in the NULL specification".into(),
            );
        }
        Ok(())
    }
}

impl Default for CopyOptions {
    fn default() -> Self {
        Self::text()
    }
}

/// An error that aborts the COPY, shaped like the PostgreSQL `ErrorResponse` it becomes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct CopyError {
    /// The SQLSTATE, e.g. `22P02`.
    pub sqlstate: &'static str,
    /// The primary message, worded as PostgreSQL words it.
    pub message: String,
    /// PostgreSQL's CONTEXT line, e.g. `COPY t, line 3, column b: "abc"`.
    pub context: Option<String>,
}

impl CopyError {
    fn new(sqlstate: &'static str, message: impl Into<String>, context: Option<String>) -> Self {
        Self {
            sqlstate,
            message: message.into(),
            context,
        }
    }
}

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
        let capacity = preallocated_rows(batch_rows);
        let mut error = options.validate().err();
        let mut columns = Vec::with_capacity(schema.fields().len());
        for field in schema.fields() {
            match Column::new(field, capacity) {
                Ok(column) => columns.push(column),
                Err(e) => {
                    error.get_or_insert(e);
                }
            }
        }
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
        let capacity = preallocated_rows(self.batch_rows);
        let arrays: Vec<ArrayRef> = self
            .columns
            .iter_mut()
            .map(|column| column.finish(capacity))
            .collect();
        let options = RecordBatchOptions::new().with_row_count(Some(rows));
        RecordBatch::try_new_with_options(self.schema.clone(), arrays, &options)
            .map_err(internal_error)
    }
}

/// Rows to reserve column buffers for: a full batch, but not absurdly much for a huge one.
fn preallocated_rows(batch_rows: usize) -> usize {
    batch_rows.min(64 * 1024)
}

fn internal_error(error: impl std::fmt::Display) -> CopyError {
    CopyError::new("XX000", format!("COPY internal error: {error}"), None)
}

/// PostgreSQL's `limit_printout_length`: at most 100 bytes, cut at a character boundary and
/// marked with `...`.
fn printable(bytes: &[u8]) -> String {
    const MAX: usize = 100;
    let text = String::from_utf8_lossy(bytes);
    if text.len() <= MAX {
        return text.into_owned();
    }
    let mut cut = MAX;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}...", &text[..cut])
}

// ---------------------------------------------------------------------------------------------
// Splitting records into fields
// ---------------------------------------------------------------------------------------------

/// Where one field's value lies after splitting.
#[derive(Debug, Clone, Copy)]
struct FieldSpan {
    start: usize,
    end: usize,
    /// The value was de-escaped into the scanner's scratch buffer rather than borrowed from the
    /// input.
    in_scratch: bool,
    /// The field is NULL: its raw bytes equal the NULL string (and, in CSV, it had no quotes).
    null: bool,
}

/// The outcome of scanning for one record.
enum Scanned {
    /// A complete record: its line ends at `line_end` (terminator excluded), the next record
    /// starts at `next`.
    Record { line_end: usize, next: usize },
    /// The end-of-data marker.
    EndOfData,
    /// The input ends before the record does.
    Incomplete,
}

/// A malformed record (always `22P04`).
struct ScanError {
    message: &'static str,
    /// The context shows the line itself (PostgreSQL does once it has the whole line).
    shows_line: bool,
}

impl ScanError {
    const fn new(message: &'static str) -> Self {
        Self {
            message,
            shows_line: false,
        }
    }
}

const LITERAL_CR: ScanError = ScanError::new("literal carriage return found in data");
const UNQUOTED_CR: ScanError = ScanError::new("unquoted carriage return found in data");
const MARKER_NOT_ALONE: ScanError = ScanError::new("end-of-copy marker is not alone on its line");
const UNTERMINATED: ScanError = ScanError {
    message: "unterminated CSV quoted field",
    shows_line: true,
};

/// Where a field's terminator was found.
enum FieldEnd {
    /// A delimiter; the next field starts at the given offset.
    Delimiter(usize),
    /// The end of the record.
    Record { line_end: usize, next: usize },
}

/// Splits records into fields for one format and set of options.
struct Scanner {
    csv: bool,
    delimiter: u8,
    quote: u8,
    escape: u8,
    null: Vec<u8>,
    /// Bytes that end a run of ordinary bytes outside quotes.
    stop: ByteSet,
    /// Bytes that end a run of ordinary bytes inside a quoted CSV section.
    quoted_stop: ByteSet,
    /// The fields of the record scanned last.
    fields: Vec<FieldSpan>,
    /// De-escaped values of the record scanned last.
    scratch: Vec<u8>,
    /// Line feeds inside quoted CSV fields of the record scanned last: PostgreSQL counts them
    /// as lines.
    quoted_newlines: u64,
    /// State of [`Self::find_record_end`] over a pending partial record.
    end_state: EndState,
}

/// Quote and escape state carried across chunks while looking for the end of a record.
#[derive(Debug, Default, Clone, Copy)]
struct EndState {
    in_quote: bool,
    last_was_escape: bool,
    after_backslash: bool,
}

impl Scanner {
    fn new(options: &CopyOptions) -> Self {
        let csv = options.format == CopyFormat::Csv;
        let special = if csv { options.quote } else { b'\\' };
        let stop = ByteSet::new([options.delimiter, b'\n', b'\r', special]);
        let quoted_stop =
            ByteSet::new([options.quote, options.escape, options.quote, options.quote]);
        Self {
            csv,
            delimiter: options.delimiter,
            quote: options.quote,
            escape: options.escape,
            null: options.null.as_bytes().to_vec(),
            stop,
            quoted_stop,
            fields: Vec::new(),
            scratch: Vec::new(),
            quoted_newlines: 0,
            end_state: EndState::default(),
        }
    }

    /// Splits the record starting at `line_start` into `self.fields`. Unless `eof`, a record
    /// that the input does not complete is [`Scanned::Incomplete`] and nothing is consumed.
    fn scan(&mut self, input: &[u8], line_start: usize, eof: bool) -> Result<Scanned, ScanError> {
        self.fields.clear();
        self.scratch.clear();
        self.quoted_newlines = 0;
        if self.csv {
            self.scan_csv(input, line_start, eof)
        } else {
            self.scan_text(input, line_start, eof)
        }
    }

    #[inline]
    fn push_field(&mut self, raw: &[u8], value: Unescaped, quoted: bool) {
        let (start, end, in_scratch) = value.finish(self.scratch.len());
        self.fields.push(FieldSpan {
            start,
            end,
            in_scratch,
            null: !quoted && raw == self.null.as_slice(),
        });
    }

    fn scan_text(
        &mut self,
        input: &[u8],
        line_start: usize,
        eof: bool,
    ) -> Result<Scanned, ScanError> {
        let n = input.len();
        let mut i = line_start;
        loop {
            let field_start = i;
            let mut value = Unescaped::default();
            let mut segment = i;
            // `raw_end` is where the field's raw bytes end, for the NULL comparison.
            let (raw_end, field_end) = loop {
                i = self.stop.find(input, i);
                let Some(&c) = input.get(i) else {
                    if !eof {
                        return Ok(Scanned::Incomplete);
                    }
                    value.push_slice(input, &mut self.scratch, segment, n);
                    break (
                        n,
                        FieldEnd::Record {
                            line_end: n,
                            next: n,
                        },
                    );
                };
                if c == self.delimiter {
                    value.push_slice(input, &mut self.scratch, segment, i);
                    break (i, FieldEnd::Delimiter(i + 1));
                }
                match c {
                    b'\n' => {
                        value.push_slice(input, &mut self.scratch, segment, i);
                        break (
                            i,
                            FieldEnd::Record {
                                line_end: i,
                                next: i + 1,
                            },
                        );
                    }
                    b'\r' => {
                        let next = match input.get(i + 1) {
                            Some(b'\n') => i + 2,
                            Some(_) => return Err(LITERAL_CR),
                            None if !eof => return Ok(Scanned::Incomplete),
                            None => n,
                        };
                        value.push_slice(input, &mut self.scratch, segment, i);
                        break (i, FieldEnd::Record { line_end: i, next });
                    }
                    b'\\' => {
                        value.push_slice(input, &mut self.scratch, segment, i);
                        let Some(&letter) = input.get(i + 1) else {
                            if !eof {
                                return Ok(Scanned::Incomplete);
                            }
                            // PostgreSQL drops a backslash that ends the data.
                            break (
                                i,
                                FieldEnd::Record {
                                    line_end: n,
                                    next: n,
                                },
                            );
                        };
                        if letter == b'.' {
                            return Self::text_end_marker(input, line_start, i, eof);
                        }
                        let (byte, after) = decode_escape(input, i + 2, letter);
                        if after >= n && !eof {
                            // More octal or hex digits may follow in the next chunk.
                            return Ok(Scanned::Incomplete);
                        }
                        value.push_byte(input, &mut self.scratch, byte);
                        i = after;
                        segment = i;
                    }
                    // Only the bytes matched above stop the skip loop.
                    _ => i += 1,
                }
            };
            self.push_field(&input[field_start..raw_end], value, false);
            match field_end {
                FieldEnd::Delimiter(next) => i = next,
                FieldEnd::Record { line_end, next } => {
                    return Ok(Scanned::Record { line_end, next })
                }
            }
        }
    }

    /// `\.` at `at`: the end of the data if alone on its line, else an error (PostgreSQL 18).
    fn text_end_marker(
        input: &[u8],
        line_start: usize,
        at: usize,
        eof: bool,
    ) -> Result<Scanned, ScanError> {
        if at != line_start {
            return Err(MARKER_NOT_ALONE);
        }
        match (input.get(at + 2), input.get(at + 3)) {
            (Some(b'\n'), _) | (Some(b'\r'), Some(b'\n')) => Ok(Scanned::EndOfData),
            (None, _) | (Some(b'\r'), None) if !eof => Ok(Scanned::Incomplete),
            (Some(b'\r'), None) => Ok(Scanned::EndOfData),
            _ => Err(MARKER_NOT_ALONE),
        }
    }

    /// Whether the record at `line_start` is a CSV `\.` line; `None` if the input is too short
    /// to tell.
    fn csv_end_marker(input: &[u8], line_start: usize, eof: bool) -> Option<bool> {
        let rest = &input[line_start..];
        match rest {
            [b'\\', b'.', b'\n', ..] | [b'\\', b'.', b'\r', b'\n', ..] => Some(true),
            // The line may still turn out to be just the marker.
            [b'\\'] | [b'\\', b'.'] | [b'\\', b'.', b'\r'] if !eof => None,
            [b'\\', b'.'] | [b'\\', b'.', b'\r'] => Some(true),
            _ => Some(false),
        }
    }

    fn scan_csv(
        &mut self,
        input: &[u8],
        line_start: usize,
        eof: bool,
    ) -> Result<Scanned, ScanError> {
        match Self::csv_end_marker(input, line_start, eof) {
            None => return Ok(Scanned::Incomplete),
            Some(true) => return Ok(Scanned::EndOfData),
            Some(false) => {}
        }
        let n = input.len();
        let mut i = line_start;
        loop {
            let field_start = i;
            let mut value = Unescaped::default();
            let mut segment = i;
            let mut quoted = false;
            let (raw_end, field_end) = loop {
                i = self.stop.find(input, i);
                let Some(&c) = input.get(i) else {
                    if !eof {
                        return Ok(Scanned::Incomplete);
                    }
                    value.push_slice(input, &mut self.scratch, segment, n);
                    break (
                        n,
                        FieldEnd::Record {
                            line_end: n,
                            next: n,
                        },
                    );
                };
                if c == self.delimiter {
                    value.push_slice(input, &mut self.scratch, segment, i);
                    break (i, FieldEnd::Delimiter(i + 1));
                }
                if c == self.quote {
                    value.push_slice(input, &mut self.scratch, segment, i);
                    quoted = true;
                    i = self.scan_quoted(input, i + 1, eof, &mut value)?;
                    if i == usize::MAX {
                        return Ok(Scanned::Incomplete);
                    }
                    segment = i;
                    continue;
                }
                match c {
                    b'\n' => {
                        value.push_slice(input, &mut self.scratch, segment, i);
                        break (
                            i,
                            FieldEnd::Record {
                                line_end: i,
                                next: i + 1,
                            },
                        );
                    }
                    b'\r' => {
                        let next = match input.get(i + 1) {
                            Some(b'\n') => i + 2,
                            Some(_) => return Err(UNQUOTED_CR),
                            None if !eof => return Ok(Scanned::Incomplete),
                            None => n,
                        };
                        value.push_slice(input, &mut self.scratch, segment, i);
                        break (i, FieldEnd::Record { line_end: i, next });
                    }
                    // Only the bytes matched above stop the skip loop.
                    _ => i += 1,
                }
            };
            self.push_field(&input[field_start..raw_end], value, quoted);
            match field_end {
                FieldEnd::Delimiter(next) => i = next,
                FieldEnd::Record { line_end, next } => {
                    return Ok(Scanned::Record { line_end, next })
                }
            }
        }
    }

    /// Reads a quoted CSV section whose content starts at `i`; returns the offset just past
    /// the closing quote, or `usize::MAX` if the input ends first (and more may come).
    fn scan_quoted(
        &mut self,
        input: &[u8],
        mut i: usize,
        eof: bool,
        value: &mut Unescaped,
    ) -> Result<usize, ScanError> {
        let n = input.len();
        let content_start = i;
        let count_newlines = |end: usize| {
            let newlines = input[content_start..end].iter().filter(|&&c| c == b'\n');
            newlines.count() as u64
        };
        let mut segment = i;
        loop {
            i = self.quoted_stop.find(input, i);
            let Some(&c) = input.get(i) else {
                if eof {
                    self.quoted_newlines += count_newlines(n);
                    return Err(UNTERMINATED);
                }
                return Ok(usize::MAX);
            };
            if c == self.escape {
                match input.get(i + 1) {
                    Some(&next) if next == self.escape || next == self.quote => {
                        // Keep the escaped byte, drop the escape.
                        value.push_slice(input, &mut self.scratch, segment, i);
                        segment = i + 1;
                        i += 2;
                        continue;
                    }
                    None if !eof => return Ok(usize::MAX),
                    // An escape before anything else is an ordinary byte (or, when it is the
                    // quote too, the closing quote).
                    _ => {}
                }
            }
            if c == self.quote {
                value.push_slice(input, &mut self.scratch, segment, i);
                self.quoted_newlines += count_newlines(i);
                return Ok(i + 1);
            }
            i += 1;
        }
    }

    /// Looks for the first line break in `data` that can end the pending partial record,
    /// carrying quote and backslash state across calls. It only decides when re-parsing the
    /// pending record is worthwhile: parsing itself finds the real record ends.
    fn find_record_end(&mut self, data: &[u8]) -> Option<usize> {
        let state = &mut self.end_state;
        for (i, &c) in data.iter().enumerate() {
            if self.csv {
                if self.quote == self.escape {
                    state.in_quote ^= c == self.quote;
                } else {
                    // PostgreSQL's CopyReadLineText: an escape counts only inside quotes and
                    // only when it is not itself escaped.
                    if state.in_quote && c == self.escape {
                        state.last_was_escape = !state.last_was_escape;
                    }
                    if c == self.quote && !state.last_was_escape {
                        state.in_quote = !state.in_quote;
                    }
                    if c != self.escape {
                        state.last_was_escape = false;
                    }
                }
                if c == b'\n' && !state.in_quote {
                    return Some(i);
                }
            } else if state.after_backslash {
                state.after_backslash = false;
            } else if c == b'\\' {
                state.after_backslash = true;
            } else if c == b'\n' {
                return Some(i);
            }
        }
        None
    }

    /// Brings the record-end state up to date with bytes already in the pending record.
    fn track_record_end(&mut self, data: &[u8]) {
        let mut rest = data;
        while let Some(end) = self.find_record_end(rest) {
            rest = &rest[end + 1..];
        }
    }

    fn reset_record_end(&mut self) {
        self.end_state = EndState::default();
    }
}

/// A set of up to four bytes, searched for eight bytes at a time: fields are short, so this
/// mostly finds the end of a field with one word load and a few ALU operations instead of a
/// loop with a data-dependent exit per byte.
#[derive(Debug, Clone, Copy)]
struct ByteSet([u64; 4]);

impl ByteSet {
    /// The set of `bytes` (repeat one to have fewer).
    fn new(bytes: [u8; 4]) -> Self {
        Self(bytes.map(|b| u64::from_le_bytes([b; 8])))
    }

    /// The high bit of every byte of `word` that is in the set.
    #[inline]
    fn matches(self, word: u64) -> u64 {
        /// The high bit of every zero byte of `x`, exactly (no false positives from borrows).
        fn zero_bytes(x: u64) -> u64 {
            const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
            !(((x & LOW7) + LOW7) | x | LOW7)
        }
        self.0
            .iter()
            .fold(0, |hits, &pattern| hits | zero_bytes(word ^ pattern))
    }

    /// The offset of the first byte at or after `start` that is in the set, or `input.len()`.
    #[inline]
    fn find(self, input: &[u8], start: usize) -> usize {
        let rest = input.get(start..).unwrap_or_default();
        let (words, tail) = rest.as_chunks::<8>();
        for (k, word) in words.iter().enumerate() {
            let hits = self.matches(u64::from_le_bytes(*word));
            if hits != 0 {
                return start + k * 8 + (hits.trailing_zeros() / 8) as usize;
            }
        }
        // The last bytes, padded; padding positions are masked off (tail.len() < 8).
        let mut last = [0; 8];
        last[..tail.len()].copy_from_slice(tail);
        let hits = self.matches(u64::from_le_bytes(last)) & ((1 << (tail.len() * 8)) - 1);
        if hits == 0 {
            return input.len();
        }
        start + words.len() * 8 + (hits.trailing_zeros() / 8) as usize
    }
}

/// Decodes the text-format escape `\<letter>` whose following bytes start at `i`; returns the
/// byte and the offset after the escape.
fn decode_escape(input: &[u8], mut i: usize, letter: u8) -> (u8, usize) {
    let byte = match letter {
        b'b' => 0x08,
        b'f' => 0x0c,
        b'n' => b'\n',
        b'r' => b'\r',
        b't' => b'\t',
        b'v' => 0x0b,
        b'0'..=b'7' => {
            let mut value = u32::from(letter - b'0');
            for _ in 0..2 {
                match input.get(i) {
                    Some(&digit @ b'0'..=b'7') => {
                        value = value * 8 + u32::from(digit - b'0');
                        i += 1;
                    }
                    _ => break,
                }
            }
            // PostgreSQL keeps the low eight bits of `\777`.
            (value & 0xff) as u8
        }
        b'x' => match input.get(i).and_then(|&c| hex_value(c)) {
            Some(high) => {
                i += 1;
                match input.get(i).and_then(|&c| hex_value(c)) {
                    Some(low) => {
                        i += 1;
                        high * 16 + low
                    }
                    None => high,
                }
            }
            // `\x` without a hex digit is just `x`.
            None => b'x',
        },
        other => other,
    };
    (byte, i)
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Builds one field's value from pieces of the input: a single piece stays a borrowed range;
/// a second piece or a decoded byte moves the value into the scratch buffer.
#[derive(Default)]
struct Unescaped {
    first: Option<(usize, usize)>,
    scratch_start: Option<usize>,
}

impl Unescaped {
    #[inline]
    fn push_slice(&mut self, input: &[u8], scratch: &mut Vec<u8>, start: usize, end: usize) {
        if start >= end {
            return;
        }
        match (self.scratch_start, self.first) {
            (Some(_), _) => scratch.extend_from_slice(&input[start..end]),
            (None, None) => self.first = Some((start, end)),
            (None, Some((a, b))) => {
                self.scratch_start = Some(scratch.len());
                scratch.extend_from_slice(&input[a..b]);
                scratch.extend_from_slice(&input[start..end]);
            }
        }
    }

    fn push_byte(&mut self, input: &[u8], scratch: &mut Vec<u8>, byte: u8) {
        if self.scratch_start.is_none() {
            self.scratch_start = Some(scratch.len());
            if let Some((a, b)) = self.first {
                scratch.extend_from_slice(&input[a..b]);
            }
        }
        scratch.push(byte);
    }

    /// `(start, end, in_scratch)` of the value; `scratch_len` is the scratch buffer's length.
    fn finish(self, scratch_len: usize) -> (usize, usize, bool) {
        match (self.scratch_start, self.first) {
            (Some(start), _) => (start, scratch_len, true),
            (None, Some((start, end))) => (start, end, false),
            (None, None) => (0, 0, false),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Columns
// ---------------------------------------------------------------------------------------------

/// One output column: its buffers and how its text is read.
struct Column {
    name: String,
    nullable: bool,
    data_type: DataType,
    /// The PostgreSQL name of the type, for error messages.
    type_name: &'static str,
    /// Validity of the `Vec`-backed variants; the Arrow builders keep their own.
    nulls: NullBufferBuilder,
    values: Values,
}

/// Column buffers, one variant per way of reading a value.
enum Values {
    Boolean(BooleanBufferBuilder),
    Int8(Vec<i8>),
    Int16(Vec<i16>),
    Int32(Vec<i32>),
    Int64(Vec<i64>),
    Float32(Vec<f32>),
    Float64(Vec<f64>),
    Utf8(StringBuilder),
    LargeUtf8(LargeStringBuilder),
    /// The builder and a reusable decode buffer.
    Binary(BinaryBuilder, Vec<u8>),
    Date32(Vec<i32>),
    /// Values and the number of decimal digits of the unit (0, 3, 6 or 9).
    Timestamp(Vec<i64>, u32),
    Time32(Vec<i32>, u32),
    Time64(Vec<i64>, u32),
    Decimal128(Vec<i128>, u8, i8),
}

/// Decimal digits of a time unit.
fn unit_digits(unit: TimeUnit) -> u32 {
    match unit {
        TimeUnit::Second => 0,
        TimeUnit::Millisecond => 3,
        TimeUnit::Microsecond => 6,
        TimeUnit::Nanosecond => 9,
    }
}

/// Time zones whose values are plain UTC: a timestamp column with one of these is filled like
/// one without a zone.
fn is_utc(tz: &str) -> bool {
    ["UTC", "Z", "+00:00", "+00", "Etc/UTC", "GMT"]
        .iter()
        .any(|utc| tz.eq_ignore_ascii_case(utc))
}

impl Column {
    fn new(field: &Field, capacity: usize) -> Result<Self, CopyError> {
        let data_type = field.data_type().clone();
        let (values, type_name) = match &data_type {
            DataType::Boolean => (
                Values::Boolean(BooleanBufferBuilder::new(capacity)),
                "boolean",
            ),
            DataType::Int8 => (Values::Int8(Vec::with_capacity(capacity)), "smallint"),
            DataType::Int16 => (Values::Int16(Vec::with_capacity(capacity)), "smallint"),
            DataType::Int32 => (Values::Int32(Vec::with_capacity(capacity)), "integer"),
            DataType::Int64 => (Values::Int64(Vec::with_capacity(capacity)), "bigint"),
            DataType::Float32 => (Values::Float32(Vec::with_capacity(capacity)), "real"),
            DataType::Float64 => (
                Values::Float64(Vec::with_capacity(capacity)),
                "double precision",
            ),
            DataType::Utf8 => (
                Values::Utf8(StringBuilder::with_capacity(capacity, capacity * 8)),
                "text",
            ),
            DataType::LargeUtf8 => (
                Values::LargeUtf8(LargeStringBuilder::with_capacity(capacity, capacity * 8)),
                "text",
            ),
            DataType::Binary => (
                Values::Binary(
                    BinaryBuilder::with_capacity(capacity, capacity * 8),
                    Vec::new(),
                ),
                "bytea",
            ),
            DataType::Date32 => (Values::Date32(Vec::with_capacity(capacity)), "date"),
            DataType::Timestamp(unit, None) => (
                Values::Timestamp(Vec::with_capacity(capacity), unit_digits(*unit)),
                "timestamp",
            ),
            DataType::Timestamp(unit, Some(tz)) if is_utc(tz) => (
                Values::Timestamp(Vec::with_capacity(capacity), unit_digits(*unit)),
                "timestamp with time zone",
            ),
            DataType::Time32(unit @ (TimeUnit::Second | TimeUnit::Millisecond)) => (
                Values::Time32(Vec::with_capacity(capacity), unit_digits(*unit)),
                "time",
            ),
            DataType::Time64(unit @ (TimeUnit::Microsecond | TimeUnit::Nanosecond)) => (
                Values::Time64(Vec::with_capacity(capacity), unit_digits(*unit)),
                "time",
            ),
            DataType::Decimal128(precision, scale) if (1..=38).contains(precision) => (
                Values::Decimal128(Vec::with_capacity(capacity), *precision, *scale),
                "numeric",
            ),
            other => {
                return Err(CopyError::new(
                    "0A000",
                    format!("COPY into a column of type {other} is not supported"),
                    None,
                ))
            }
        };
        Ok(Self {
            name: field.name().clone(),
            nullable: field.is_nullable(),
            data_type,
            type_name,
            nulls: NullBufferBuilder::new(capacity),
            values,
        })
    }

    fn append_null(&mut self) {
        match &mut self.values {
            Values::Boolean(values) => values.append(false),
            Values::Int8(values) => values.push(0),
            Values::Int16(values) => values.push(0),
            Values::Int32(values) | Values::Date32(values) | Values::Time32(values, _) => {
                values.push(0)
            }
            Values::Int64(values) | Values::Timestamp(values, _) | Values::Time64(values, _) => {
                values.push(0)
            }
            Values::Float32(values) => values.push(0.0),
            Values::Float64(values) => values.push(0.0),
            Values::Decimal128(values, _, _) => values.push(0),
            Values::Utf8(builder) => return builder.append_null(),
            Values::LargeUtf8(builder) => return builder.append_null(),
            Values::Binary(builder, _) => return builder.append_null(),
        }
        self.nulls.append_null();
    }

    /// Parses `value` and appends it; on error nothing is appended.
    fn append(&mut self, value: &[u8]) -> Result<(), Bad> {
        match &mut self.values {
            Values::Boolean(values) => values.append(parse_bool(value)?),
            Values::Int8(values) => values.push(parse_int(value)?),
            Values::Int16(values) => values.push(parse_int(value)?),
            Values::Int32(values) => values.push(parse_int(value)?),
            Values::Int64(values) => values.push(parse_int(value)?),
            Values::Float32(values) => values.push(parse_f32(value)?),
            Values::Float64(values) => values.push(parse_f64(value)?),
            // The byte builders track validity themselves.
            Values::Utf8(builder) => {
                builder.append_value(text(value)?);
                return Ok(());
            }
            Values::LargeUtf8(builder) => {
                builder.append_value(text(value)?);
                return Ok(());
            }
            Values::Binary(builder, buffer) => {
                parse_bytea(text(value)?.as_bytes(), buffer)?;
                builder.append_value(buffer.as_slice());
                return Ok(());
            }
            Values::Date32(values) => values.push(parse_date(value)?),
            Values::Timestamp(values, digits) => values.push(parse_timestamp(value, *digits)?),
            Values::Time32(values, digits) => {
                let time = parse_time(value, *digits)?;
                values.push(i32::try_from(time).map_err(|_| Bad::FieldRange)?)
            }
            Values::Time64(values, digits) => values.push(parse_time(value, *digits)?),
            Values::Decimal128(values, precision, scale) => {
                values.push(parse_decimal(value, *precision, *scale)?)
            }
        }
        self.nulls.append_non_null();
        Ok(())
    }

    /// The error for a value this column rejected.
    fn describe(&self, bad: Bad, value: &[u8], table: &str, line: u64) -> CopyError {
        // PostgreSQL checks the encoding of the whole line before looking at any field.
        if let Some(message) = invalid_encoding(value) {
            return CopyError::new("22021", message, Some(format!("COPY {table}, line {line}")));
        }
        let shown = String::from_utf8_lossy(value);
        let ty = self.type_name;
        let (sqlstate, message) = match bad {
            Bad::Syntax => (
                "22P02",
                format!("invalid input syntax for type {ty}: \"{shown}\""),
            ),
            Bad::IntRange => (
                "22003",
                format!("value \"{shown}\" is out of range for type {ty}"),
            ),
            Bad::FloatRange => (
                "22003",
                format!("\"{shown}\" is out of range for type {ty}"),
            ),
            Bad::FieldRange => (
                "22008",
                format!("date/time field value out of range: \"{shown}\""),
            ),
            Bad::DateRange => ("22008", format!("date out of range: \"{shown}\"")),
            Bad::TimestampRange => ("22008", format!("timestamp out of range: \"{shown}\"")),
            Bad::TimeZoneRange => (
                "22009",
                format!("time zone displacement out of range: \"{shown}\""),
            ),
            Bad::NumericOverflow => ("22003", "numeric field overflow".to_owned()),
            // Only reached for bytes `invalid_encoding` accepts, which cannot happen.
            Bad::Encoding => (
                "22021",
                "invalid byte sequence for encoding \"UTF8\"".into(),
            ),
            Bad::Other(sqlstate, message) => (sqlstate, message),
        };
        let context = format!(
            "COPY {table}, line {line}, column {}: \"{}\"",
            self.name,
            printable(value)
        );
        CopyError::new(sqlstate, message, Some(context))
    }

    /// Hands out the buffered values as an array and starts over.
    fn finish(&mut self, capacity: usize) -> ArrayRef {
        fn take<T>(values: &mut Vec<T>, capacity: usize) -> Vec<T> {
            std::mem::replace(values, Vec::with_capacity(capacity))
        }
        let nulls = self.nulls.finish();
        let dt = &self.data_type;
        match &mut self.values {
            Values::Boolean(values) => Arc::new(BooleanArray::new(values.finish(), nulls)),
            Values::Int8(v) => primitive::<Int8Type>(take(v, capacity), nulls, dt),
            Values::Int16(v) => primitive::<Int16Type>(take(v, capacity), nulls, dt),
            Values::Int32(v) => primitive::<Int32Type>(take(v, capacity), nulls, dt),
            Values::Int64(v) => primitive::<Int64Type>(take(v, capacity), nulls, dt),
            Values::Float32(v) => primitive::<Float32Type>(take(v, capacity), nulls, dt),
            Values::Float64(v) => primitive::<Float64Type>(take(v, capacity), nulls, dt),
            Values::Utf8(builder) => Arc::new(builder.finish()),
            Values::LargeUtf8(builder) => Arc::new(builder.finish()),
            Values::Binary(builder, _) => Arc::new(builder.finish()),
            Values::Date32(v) => primitive::<Date32Type>(take(v, capacity), nulls, dt),
            Values::Timestamp(v, digits) => {
                let v = take(v, capacity);
                match digits {
                    0 => primitive::<TimestampSecondType>(v, nulls, dt),
                    3 => primitive::<TimestampMillisecondType>(v, nulls, dt),
                    6 => primitive::<TimestampMicrosecondType>(v, nulls, dt),
                    _ => primitive::<TimestampNanosecondType>(v, nulls, dt),
                }
            }
            Values::Time32(v, digits) => match digits {
                0 => primitive::<Time32SecondType>(take(v, capacity), nulls, dt),
                _ => primitive::<Time32MillisecondType>(take(v, capacity), nulls, dt),
            },
            Values::Time64(v, digits) => match digits {
                6 => primitive::<Time64MicrosecondType>(take(v, capacity), nulls, dt),
                _ => primitive::<Time64NanosecondType>(take(v, capacity), nulls, dt),
            },
            Values::Decimal128(v, _, _) => {
                primitive::<Decimal128Type>(take(v, capacity), nulls, dt)
            }
        }
    }
}

/// A primitive array of exactly the column's data type (time zone, precision and scale
/// included).
fn primitive<T: ArrowPrimitiveType>(
    values: Vec<T::Native>,
    nulls: Option<NullBuffer>,
    data_type: &DataType,
) -> ArrayRef {
    Arc::new(
        PrimitiveArray::<T>::new(ScalarBuffer::from(values), nulls)
            .with_data_type(data_type.clone()),
    )
}

// ---------------------------------------------------------------------------------------------
// Value parsers: PostgreSQL's input functions for the types the columns stand for
// ---------------------------------------------------------------------------------------------

/// Why a field is not a valid value of its column's type.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Bad {
    /// `invalid input syntax for type T` (22P02).
    Syntax,
    /// `value "v" is out of range for type T`, for integers (22003).
    IntRange,
    /// `"v" is out of range for type T`, for floats (22003).
    FloatRange,
    /// `date/time field value out of range` (22008).
    FieldRange,
    /// `date out of range` (22008).
    DateRange,
    /// `timestamp out of range` (22008).
    TimestampRange,
    /// `time zone displacement out of range` (22009).
    TimeZoneRange,
    /// `numeric field overflow` (22003).
    NumericOverflow,
    /// Not valid UTF-8, or a NUL byte (22021).
    Encoding,
    /// Any other error, with its SQLSTATE and message.
    Other(&'static str, String),
}

/// PostgreSQL's `isspace` in the C locale.
fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

fn trim_space(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if !is_space(*first) {
            break;
        }
        s = rest;
    }
    while let [rest @ .., last] = s {
        if !is_space(*last) {
            break;
        }
        s = rest;
    }
    s
}

/// The message for bytes that are not UTF-8 text PostgreSQL accepts (which excludes NUL),
/// naming the offending bytes like `report_invalid_encoding`.
fn invalid_encoding(value: &[u8]) -> Option<String> {
    let bad_at = match std::str::from_utf8(value) {
        Ok(_) => value.iter().position(|&b| b == 0)?,
        Err(error) => {
            let valid = error.valid_up_to();
            value[..valid].iter().position(|&b| b == 0).unwrap_or(valid)
        }
    };
    let len = match value[bad_at] {
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf7 => 4,
        _ => 1,
    };
    let bytes: Vec<String> = value[bad_at..(bad_at + len).min(value.len())]
        .iter()
        .map(|b| format!("0x{b:02x}"))
        .collect();
    Some(format!(
        "invalid byte sequence for encoding \"UTF8\": {}",
        bytes.join(" ")
    ))
}

/// A text value: valid UTF-8 without NUL bytes.
fn text(value: &[u8]) -> Result<&str, Bad> {
    match std::str::from_utf8(value) {
        Ok(s) if !value.contains(&0) => Ok(s),
        _ => Err(Bad::Encoding),
    }
}

/// PostgreSQL's `boolin`: `t`, `true`, `yes`, `on`, `1` and their opposites, any case, any
/// unique prefix, surrounded by optional whitespace.
fn parse_bool(value: &[u8]) -> Result<bool, Bad> {
    let s = trim_space(value);
    let prefix_of = |word: &[u8]| s.len() <= word.len() && word[..s.len()].eq_ignore_ascii_case(s);
    let parsed = match s.first().map(u8::to_ascii_lowercase) {
        Some(b't') if prefix_of(b"true") => Some(true),
        Some(b'f') if prefix_of(b"false") => Some(false),
        Some(b'y') if prefix_of(b"yes") => Some(true),
        Some(b'n') if prefix_of(b"no") => Some(false),
        // A lone `o` could be either.
        Some(b'o') if s.len() >= 2 && prefix_of(b"on") => Some(true),
        Some(b'o') if s.len() >= 2 && prefix_of(b"off") => Some(false),
        Some(b'1') if s.len() == 1 => Some(true),
        Some(b'0') if s.len() == 1 => Some(false),
        _ => None,
    };
    parsed.ok_or(Bad::Syntax)
}

/// An integer type COPY can fill.
trait PgInt: TryFrom<i64> + Copy {
    const MIN: i64;
    const MAX: i64;
}

impl PgInt for i8 {
    const MIN: i64 = i8::MIN as i64;
    const MAX: i64 = i8::MAX as i64;
}

impl PgInt for i16 {
    const MIN: i64 = i16::MIN as i64;
    const MAX: i64 = i16::MAX as i64;
}

impl PgInt for i32 {
    const MIN: i64 = i32::MIN as i64;
    const MAX: i64 = i32::MAX as i64;
}

impl PgInt for i64 {
    const MIN: i64 = i64::MIN;
    const MAX: i64 = i64::MAX;
}

/// PostgreSQL 16's `pg_strtoint*`.
fn parse_int<T: PgInt>(value: &[u8]) -> Result<T, Bad> {
    // Fast path, as in PostgreSQL: an optional minus and up to 18 decimal digits.
    let (negative, digits) = match value {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, value),
    };
    let mut magnitude: i64 = 0;
    let mut fast = !digits.is_empty() && digits.len() <= 18;
    if fast {
        for &c in digits {
            let digit = c.wrapping_sub(b'0');
            if digit > 9 {
                fast = false;
                break;
            }
            magnitude = magnitude * 10 + i64::from(digit);
        }
    }
    let parsed = if !fast {
        parse_int_slow(value, T::MIN, T::MAX)?
    } else if negative {
        -magnitude
    } else {
        magnitude
    };
    if !(T::MIN..=T::MAX).contains(&parsed) {
        return Err(Bad::IntRange);
    }
    T::try_from(parsed).map_err(|_| Bad::IntRange)
}

/// The general integer syntax: whitespace, sign, `0x`/`0o`/`0b`, underscores between digits.
/// Overflow is reported as soon as it happens, as PostgreSQL does.
fn parse_int_slow(value: &[u8], min: i64, max: i64) -> Result<i64, Bad> {
    let limit = min.unsigned_abs();
    let mut i = 0;
    while value.get(i).is_some_and(|&c| is_space(c)) {
        i += 1;
    }
    let negative = match value.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let radix: u64 = match (value.get(i), value.get(i + 1).map(u8::to_ascii_lowercase)) {
        (Some(b'0'), Some(b'x')) => 16,
        (Some(b'0'), Some(b'o')) => 8,
        (Some(b'0'), Some(b'b')) => 2,
        _ => 10,
    };
    if radix != 10 {
        i += 2;
    }
    let digit = |c: u8| hex_value(c).map(u64::from).filter(|&d| d < radix);
    let first_digit = i;
    let mut magnitude: u64 = 0;
    while let Some(&c) = value.get(i) {
        if let Some(d) = digit(c) {
            if magnitude > limit / radix {
                return Err(Bad::IntRange);
            }
            magnitude = magnitude * radix + d;
            i += 1;
        } else if c == b'_' {
            // An underscore must separate digits (after a prefix it may come first).
            if radix == 10 && i == first_digit {
                return Err(Bad::Syntax);
            }
            i += 1;
            if value.get(i).and_then(|&c| digit(c)).is_none() {
                return Err(Bad::Syntax);
            }
        } else {
            break;
        }
    }
    if i == first_digit {
        return Err(Bad::Syntax);
    }
    while value.get(i).is_some_and(|&c| is_space(c)) {
        i += 1;
    }
    if i != value.len() {
        return Err(Bad::Syntax);
    }
    let signed = if negative {
        -i128::from(magnitude)
    } else {
        i128::from(magnitude)
    };
    i64::try_from(signed)
        .ok()
        .filter(|v| (min..=max).contains(v))
        .ok_or(Bad::IntRange)
}

/// `[-]digits[.digits]` with at most 19 characters after the sign: the sign, the digits as one
/// integer and the number of fraction digits.
fn plain_decimal(value: &[u8]) -> Option<(bool, u64, usize)> {
    let (negative, body) = match value {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, value),
    };
    if body.is_empty() || body.len() > 19 {
        return None;
    }
    let mut mantissa = 0u64;
    let mut point = None;
    for (k, &c) in body.iter().enumerate() {
        match c {
            b'0'..=b'9' => mantissa = mantissa * 10 + u64::from(c - b'0'),
            b'.' if point.is_none() => point = Some(k),
            _ => return None,
        }
    }
    let fraction_digits = point.map_or(0, |p| body.len() - p - 1);
    // "." alone has no digits.
    if body.len() == usize::from(point.is_some()) {
        return None;
    }
    Some((negative, mantissa, fraction_digits))
}

const POW10_F64: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];
const POW10_F32: [f32; 11] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10];

/// PostgreSQL's `float8in`.
fn parse_f64(value: &[u8]) -> Result<f64, Bad> {
    // Clinger's fast path: an integer mantissa below 2^53 and a power of ten up to 10^22 are
    // both exact doubles, so one correctly rounded division gives the correctly rounded value.
    if let Some((negative, mantissa, fraction_digits)) = plain_decimal(value) {
        if mantissa <= 1 << 53 {
            let v = mantissa as f64 / POW10_F64[fraction_digits];
            return Ok(if negative { -v } else { v });
        }
    }
    let s = std::str::from_utf8(trim_space(value)).map_err(|_| Bad::Syntax)?;
    let v: f64 = s.parse().map_err(|_| Bad::Syntax)?;
    check_float_range(s, v.is_infinite(), v == 0.0)?;
    Ok(v)
}

/// PostgreSQL's `float4in`.
fn parse_f32(value: &[u8]) -> Result<f32, Bad> {
    // The same fast path with single-precision limits (2^24, 10^10).
    if let Some((negative, mantissa, fraction_digits)) = plain_decimal(value) {
        if mantissa <= 1 << 24 && fraction_digits < POW10_F32.len() {
            let v = mantissa as f32 / POW10_F32[fraction_digits];
            return Ok(if negative { -v } else { v });
        }
    }
    let s = std::str::from_utf8(trim_space(value)).map_err(|_| Bad::Syntax)?;
    let v: f32 = s.parse().map_err(|_| Bad::Syntax)?;
    check_float_range(s, v.is_infinite(), v == 0.0)?;
    Ok(v)
}

/// A number that overflowed to infinity or underflowed to zero is out of range; the literals
/// `Infinity` and `0` are not.
fn check_float_range(s: &str, infinite: bool, zero: bool) -> Result<(), Bad> {
    if infinite && s.bytes().any(|c| c.is_ascii_digit()) {
        return Err(Bad::FloatRange);
    }
    let mantissa = s.split(['e', 'E']).next().unwrap_or_default();
    if zero && mantissa.bytes().any(|c| matches!(c, b'1'..=b'9')) {
        return Err(Bad::FloatRange);
    }
    Ok(())
}

/// PostgreSQL's `numeric_in` into a `Decimal128(precision, scale)`: the value scaled by
/// 10^scale, rounded half away from zero; more than `precision - scale` integer digits is
/// `numeric field overflow`.
fn parse_decimal(value: &[u8], precision: u8, scale: i8) -> Result<i128, Bad> {
    let s = trim_space(value);
    let (negative, body) = match s {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        _ => (false, s),
    };
    if body.eq_ignore_ascii_case(b"nan") {
        return Err(Bad::Other(
            "0A000",
            "NaN cannot be stored in a Decimal128 column".into(),
        ));
    }
    if body.eq_ignore_ascii_case(b"infinity") || body.eq_ignore_ascii_case(b"inf") {
        return Err(Bad::NumericOverflow);
    }
    let mut i = 0;
    let digits_from = |i: &mut usize| {
        let start = *i;
        while body.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        start..*i
    };
    let integer = digits_from(&mut i);
    let fraction = match body.get(i) {
        Some(b'.') => {
            i += 1;
            digits_from(&mut i)
        }
        _ => i..i,
    };
    if integer.is_empty() && fraction.is_empty() {
        return Err(Bad::Syntax);
    }
    let mut exponent: i64 = 0;
    if matches!(body.get(i), Some(b'e' | b'E')) {
        i += 1;
        let exponent_negative = match body.get(i) {
            Some(b'-') => {
                i += 1;
                true
            }
            Some(b'+') => {
                i += 1;
                false
            }
            _ => false,
        };
        let digits = digits_from(&mut i);
        if digits.is_empty() {
            return Err(Bad::Syntax);
        }
        for &c in &body[digits] {
            // Saturate: anything this large over- or underflows every Decimal128 anyway.
            exponent = (exponent * 10 + i64::from(c - b'0')).min(1_000_000_000);
        }
        if exponent_negative {
            exponent = -exponent;
        }
    }
    if i != body.len() {
        return Err(Bad::Syntax);
    }

    // All mantissa digits as one sequence D; the value is D * 10^(exponent - fraction digits),
    // and the stored integer is that times 10^scale, rounded.
    let digit_at = |k: usize| -> i128 {
        let c = if k < integer.len() {
            body[integer.start + k]
        } else {
            body[fraction.start + k - integer.len()]
        };
        i128::from(c - b'0')
    };
    let total = integer.len() + fraction.len();
    let first = (0..total).find(|&k| digit_at(k) != 0);
    let Some(first) = first else {
        return Ok(0);
    };
    let significant = (total - first) as i64;
    let shift = exponent - fraction.len() as i64 + i64::from(scale);
    // Digits of the scaled value before rounding; it is at least 10^(kept - 1).
    let kept = significant + shift;
    if kept > i64::from(precision) {
        return Err(Bad::NumericOverflow);
    }
    let mut scaled: i128 = 0;
    if shift >= 0 {
        for k in first..total {
            scaled = scaled * 10 + digit_at(k);
        }
        // `kept <= precision <= 38`, so this neither overflows nor loops long.
        for _ in 0..shift {
            scaled *= 10;
        }
    } else {
        // `kept < significant` here. When it is negative even the first dropped digit lies
        // left of the mantissa's first digit, so it is a zero.
        let dropped = match usize::try_from(kept) {
            Ok(kept) => {
                for k in first..first + kept {
                    scaled = scaled * 10 + digit_at(k);
                }
                digit_at(first + kept)
            }
            Err(_) => 0,
        };
        // Round half away from zero: the magnitude rounds up on a first dropped digit >= 5.
        if dropped >= 5 {
            scaled += 1;
        }
    }
    if scaled >= 10_i128.pow(u32::from(precision)) {
        return Err(Bad::NumericOverflow);
    }
    Ok(if negative { -scaled } else { scaled })
}

/// PostgreSQL's `byteain`: `\x` followed by hex pairs (whitespace allowed between pairs), or
/// the escape form where `\\` is a backslash and `\ooo` an octal byte.
fn parse_bytea(value: &[u8], out: &mut Vec<u8>) -> Result<(), Bad> {
    out.clear();
    if let Some(hex) = value.strip_prefix(b"\\x") {
        let invalid_digit = |at: usize| {
            let len = match hex[at] {
                0xc0..=0xdf => 2,
                0xe0..=0xef => 3,
                0xf0..=0xf7 => 4,
                _ => 1,
            };
            let shown = String::from_utf8_lossy(&hex[at..(at + len).min(hex.len())]).into_owned();
            Bad::Other("22023", format!("invalid hexadecimal digit: \"{shown}\""))
        };
        let mut i = 0;
        while i < hex.len() {
            if matches!(hex[i], b' ' | b'\n' | b'\t' | b'\r') {
                i += 1;
                continue;
            }
            let high = hex_value(hex[i]).ok_or_else(|| invalid_digit(i))?;
            let Some(&low) = hex.get(i + 1) else {
                return Err(Bad::Other(
                    "22023",
                    "invalid hexadecimal data: odd number of digits".into(),
                ));
            };
            let low = hex_value(low).ok_or_else(|| invalid_digit(i + 1))?;
            out.push(high << 4 | low);
            i += 2;
        }
        return Ok(());
    }
    let mut i = 0;
    while i < value.len() {
        match value[i..] {
            [b'\\', b'\\', ..] => {
                out.push(b'\\');
                i += 2;
            }
            [b'\\', a @ b'0'..=b'3', b @ b'0'..=b'7', c @ b'0'..=b'7', ..] => {
                out.push((a - b'0') << 6 | (b - b'0') << 3 | (c - b'0'));
                i += 4;
            }
            [b'\\', ..] => {
                // PostgreSQL's message for bytea does not repeat the value.
                return Err(Bad::Other(
                    "22P02",
                    "invalid input syntax for type bytea".into(),
                ));
            }
            [c, ..] => {
                out.push(c);
                i += 1;
            }
            [] => break,
        }
    }
    Ok(())
}

/// Reads up to `max` ASCII digits at `*i`: their value and how many there were.
fn read_digits(s: &[u8], i: &mut usize, max: usize) -> (i64, usize) {
    let start = *i;
    let mut value = 0;
    while *i - start < max {
        match s.get(*i) {
            Some(&c) if c.is_ascii_digit() => {
                value = value * 10 + i64::from(c - b'0');
                *i += 1;
            }
            _ => break,
        }
    }
    (value, *i - start)
}

/// A date at the start of `s`: `YYYY-MM-DD`, `YYYY.MM.DD` (DolphinDB) or `YYYYMMDD`, with a 4
/// to 7 digit year. Returns days since the Unix epoch and the bytes read.
fn parse_date_prefix(s: &[u8]) -> Result<(i64, usize), Bad> {
    let mut i = 0;
    let (year, month, day);
    let (leading, count) = read_digits(s, &mut i, 8);
    if count == 8 {
        (year, month, day) = (leading / 10_000, leading / 100 % 100, leading % 100);
    } else {
        if count < 4 {
            return Err(Bad::Syntax);
        }
        let separator = match s.get(i) {
            Some(&c @ (b'-' | b'.')) => c,
            _ => return Err(Bad::Syntax),
        };
        i += 1;
        let (m, month_digits) = read_digits(s, &mut i, 2);
        if month_digits == 0 || s.get(i) != Some(&separator) {
            return Err(Bad::Syntax);
        }
        i += 1;
        let (d, day_digits) = read_digits(s, &mut i, 2);
        if day_digits == 0 {
            return Err(Bad::Syntax);
        }
        (year, month, day) = (leading, m, d);
    }
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap_year(year) => 29,
        2 => 28,
        _ => return Err(Bad::FieldRange),
    };
    // There is no year zero.
    if year < 1 || !(1..=days_in_month).contains(&day) {
        return Err(Bad::FieldRange);
    }
    Ok((days_from_civil(year, month as u32, day as u32), i))
}

/// A time of day at the start of `s`: `H[H]:MM[:SS[.fraction]]`. Returns the whole seconds, the
/// fraction digits and the bytes read. `24:00:00` and a leap second `:60` are accepted as
/// PostgreSQL accepts them.
fn parse_time_prefix(s: &[u8]) -> Result<(i64, &[u8], usize), Bad> {
    let mut i = 0;
    let (hour, hour_digits) = read_digits(s, &mut i, 2);
    if hour_digits == 0 || s.get(i) != Some(&b':') {
        return Err(Bad::Syntax);
    }
    i += 1;
    let (minute, minute_digits) = read_digits(s, &mut i, 2);
    if minute_digits != 2 {
        return Err(Bad::Syntax);
    }
    let mut second = 0;
    let mut fraction: &[u8] = &[];
    if s.get(i) == Some(&b':') {
        i += 1;
        let (sec, second_digits) = read_digits(s, &mut i, 2);
        if second_digits != 2 {
            return Err(Bad::Syntax);
        }
        second = sec;
        if s.get(i) == Some(&b'.') {
            i += 1;
            let start = i;
            while s.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            if i == start {
                return Err(Bad::Syntax);
            }
            fraction = &s[start..i];
        }
    }
    let fraction_zero = fraction.iter().all(|&c| c == b'0');
    let valid = minute <= 59
        && (second <= 59 || (second == 60 && fraction_zero))
        && (hour <= 23 || (hour == 24 && minute == 0 && second == 0 && fraction_zero));
    if !valid {
        return Err(Bad::FieldRange);
    }
    Ok((hour * 3600 + minute * 60 + second, fraction, i))
}

/// A UTC offset at the start of `s`: `Z`, `±H[H]`, `±HH:MM` or `±HHMM`. Returns seconds east of
/// UTC and the bytes read.
fn parse_offset(s: &[u8]) -> Result<(i64, usize), Bad> {
    let sign = match s.first() {
        Some(b'Z' | b'z') => return Ok((0, 1)),
        Some(b'+') => 1,
        Some(b'-') => -1,
        _ => return Err(Bad::Syntax),
    };
    let mut i = 1;
    let (hours, hour_digits) = read_digits(s, &mut i, 2);
    if hour_digits == 0 {
        return Err(Bad::Syntax);
    }
    if s.get(i) == Some(&b':') {
        i += 1;
    }
    let (minutes, minute_digits) = read_digits(s, &mut i, 2);
    if !matches!(minute_digits, 0 | 2) || (minute_digits == 0 && s.get(i - 1) == Some(&b':')) {
        return Err(Bad::Syntax);
    }
    if hours > 15 || minutes > 59 {
        return Err(Bad::TimeZoneRange);
    }
    Ok((sign * (hours * 3600 + minutes * 60), i))
}

/// The first `digits` fraction digits as an integer, rounded half up on the next digit.
fn scale_fraction(fraction: &[u8], digits: u32) -> i64 {
    let digit = |k: usize| fraction.get(k).map_or(0, |&c| i64::from(c - b'0'));
    let digits = digits as usize;
    let truncated = (0..digits).fold(0, |acc, k| acc * 10 + digit(k));
    truncated + i64::from(digit(digits) >= 5)
}

/// A date, as days since the Unix epoch.
fn parse_date(value: &[u8]) -> Result<i32, Bad> {
    let s = trim_space(value);
    if s.eq_ignore_ascii_case(b"epoch") {
        return Ok(0);
    }
    let (days, read) = parse_date_prefix(s)?;
    if read != s.len() {
        return Err(Bad::Syntax);
    }
    i32::try_from(days).map_err(|_| Bad::DateRange)
}

/// A timestamp as a count of 10^-`digits` seconds since the Unix epoch, UTC.
fn parse_timestamp(value: &[u8], digits: u32) -> Result<i64, Bad> {
    let s = trim_space(value);
    if s.eq_ignore_ascii_case(b"epoch") {
        return Ok(0);
    }
    let (days, mut i) = parse_date_prefix(s)?;
    let mut seconds = 0;
    let mut fraction: &[u8] = &[];
    let mut offset = 0;
    if let Some(&separator) = s.get(i) {
        if !matches!(separator, b' ' | b'T' | b't') {
            return Err(Bad::Syntax);
        }
        i += 1;
        let (time, time_fraction, read) = parse_time_prefix(&s[i..])?;
        (seconds, fraction) = (time, time_fraction);
        i += read;
        while s.get(i) == Some(&b' ') {
            i += 1;
        }
        if i < s.len() {
            let (east, read) = parse_offset(&s[i..])?;
            offset = east;
            i += read;
        }
    }
    if i != s.len() {
        return Err(Bad::Syntax);
    }
    let unit = 10_i64.pow(digits);
    (days * 86_400 + seconds - offset)
        .checked_mul(unit)
        .and_then(|v| v.checked_add(scale_fraction(fraction, digits)))
        .ok_or(Bad::TimestampRange)
}

/// A time of day as a count of 10^-`digits` seconds since midnight.
fn parse_time(value: &[u8], digits: u32) -> Result<i64, Bad> {
    let s = trim_space(value);
    let (seconds, fraction, read) = parse_time_prefix(s)?;
    if read != s.len() {
        return Err(Bad::Syntax);
    }
    let unit = 10_i64.pow(digits);
    let time = seconds * unit + scale_fraction(fraction, digits);
    // Arrow times stop short of midnight, so 24:00:00 has no representation.
    if time >= 86_400 * unit {
        return Err(Bad::FieldRange);
    }
    Ok(time)
}

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;
    use std::time::Instant;

    use arrow::array::{Array, AsArray};
    use arrow::datatypes::Schema;

    use super::*;

    fn schema(columns: &[(&str, DataType, bool)]) -> SchemaRef {
        let fields: Vec<Field> = columns
            .iter()
            .map(|(name, data_type, nullable)| Field::new(*name, data_type.clone(), *nullable))
            .collect();
        Arc::new(Schema::new(fields))
    }

    /// Feeds `chunks` in order: every batch, or the first error.
    fn run(
        schema: &SchemaRef,
        options: &CopyOptions,
        batch_rows: usize,
        chunks: &[&[u8]],
    ) -> Result<Vec<RecordBatch>, CopyError> {
        let mut parser = CopyParser::new("t", schema.clone(), options.clone(), batch_rows);
        let mut batches = Vec::new();
        for chunk in chunks {
            batches.extend(parser.push(chunk)?);
        }
        batches.extend(parser.finish()?);
        Ok(batches)
    }

    /// Parses `data` in one chunk into one batch.
    fn parse(schema: &SchemaRef, options: &CopyOptions, data: &str) -> RecordBatch {
        let batches =
            run(schema, options, 1 << 20, &[data.as_bytes()]).unwrap_or_else(|e| panic!("{e:?}"));
        concat_batches(schema, &batches).unwrap()
    }

    fn fail(schema: &SchemaRef, options: &CopyOptions, data: &[u8]) -> CopyError {
        match run(schema, options, 1 << 20, &[data]) {
            Ok(batches) => panic!("expected an error, got {batches:?}"),
            Err(error) => error,
        }
    }

    fn strings(batch: &RecordBatch, column: usize) -> Vec<Option<String>> {
        let array = batch.column(column).as_string::<i32>();
        array.iter().map(|v| v.map(str::to_owned)).collect()
    }

    fn values<T: ArrowPrimitiveType>(batch: &RecordBatch, column: usize) -> Vec<Option<T::Native>> {
        batch.column(column).as_primitive::<T>().iter().collect()
    }

    /// One quoted CSV value into a one-column table of `data_type`.
    fn one<T: ArrowPrimitiveType>(
        data_type: DataType,
        input: &str,
    ) -> Result<T::Native, CopyError> {
        let schema = schema(&[("c", data_type, true)]);
        let data = format!("\"{}\"\n", input.replace('"', "\"\""));
        let batches = run(&schema, &CopyOptions::csv(), 16, &[data.as_bytes()])?;
        Ok(batches[0].column(0).as_primitive::<T>().value(0))
    }

    fn one_err(data_type: DataType, input: &str) -> CopyError {
        let schema = schema(&[("c", data_type, true)]);
        let data = format!("\"{}\"\n", input.replace('"', "\"\""));
        fail(&schema, &CopyOptions::csv(), data.as_bytes())
    }

    fn text_options_with(null: &str) -> CopyOptions {
        CopyOptions {
            null: null.into(),
            ..CopyOptions::text()
        }
    }

    // --- text format --------------------------------------------------------------------

    #[test]
    fn text_fields_and_nulls() {
        let schema = schema(&[
            ("a", DataType::Int32, true),
            ("b", DataType::Utf8, true),
            ("c", DataType::Float64, true),
        ]);
        let batch = parse(
            &schema,
            &CopyOptions::text(),
            "1\thello\t1.5\n2\t\\N\t\\N\n",
        );
        assert_eq!(values::<Int32Type>(&batch, 0), [Some(1), Some(2)]);
        assert_eq!(strings(&batch, 1), [Some("hello".into()), None]);
        assert_eq!(values::<Float64Type>(&batch, 2), [Some(1.5), None]);
    }

    #[test]
    fn text_escapes() {
        let schema = schema(&[("s", DataType::Utf8, true)]);
        let data = concat!(
            "\\b\\f\\n\\r\\t\\v\\\\\n", // control characters and a backslash
            "\\101\\x41\\x4a\\1234\n",  // octal and hex, three octal digits at most
            "\\xg\\q\\N.\n",            // `\x` without hex, any other letter, `\N` inside
            "a\\\tb\n",                 // an escaped delimiter
            "a\\\nb\n",                 // an escaped line feed
            "\\\\N\n",                  // not the NULL string
            "\\777\n",                  // octal keeps the low eight bits: 0o777 & 0xff = 0xff
        );
        let error = fail(&schema, &CopyOptions::text(), data.as_bytes());
        assert_eq!(error.sqlstate, "22021");
        assert_eq!(
            error.message,
            "invalid byte sequence for encoding \"UTF8\": 0xff"
        );
        assert_eq!(error.context.as_deref(), Some("COPY t, line 7"));
        let batch = parse(
            &schema,
            &CopyOptions::text(),
            data.rsplit_once("\\777").unwrap().0,
        );
        assert_eq!(
            strings(&batch, 0),
            [
                Some("\u{8}\u{c}\n\r\t\u{b}\\".into()),
                Some("AAJS4".into()),
                Some("xgqN.".into()),
                Some("a\tb".into()),
                Some("a\nb".into()),
                Some("\\N".into()),
            ]
        );
    }

    #[test]
    fn text_escaped_multibyte_bytes_form_utf8() {
        let schema = schema(&[("s", DataType::Utf8, true)]);
        let batch = parse(&schema, &CopyOptions::text(), "caf\\xc3\\xa9 \\303\\251\n");
        assert_eq!(strings(&batch, 0), [Some("café é".into())]);
    }

    #[test]
    fn text_nul_byte_is_an_encoding_error() {
        let schema = schema(&[("s", DataType::Utf8, true)]);
        let error = fail(&schema, &CopyOptions::text(), b"a\\0b\n");
        assert_eq!(error.sqlstate, "22021");
        assert_eq!(
            error.message,
            "invalid byte sequence for encoding \"UTF8\": 0x00"
        );
    }

    #[test]
    fn text_crlf_line_endings() {
        let schema = schema(&[("a", DataType::Int32, true), ("b", DataType::Utf8, true)]);
        let batch = parse(&schema, &CopyOptions::text(), "1\tx\r\n2\ty\n3\tz\r\n");
        assert_eq!(values::<Int32Type>(&batch, 0), [Some(1), Some(2), Some(3)]);
        assert_eq!(
            strings(&batch, 1),
            [Some("x".into()), Some("y".into()), Some("z".into())]
        );
        let error = fail(&schema, &CopyOptions::text(), b"1\tx\ry\n");
        assert_eq!(error.sqlstate, "22P04");
        assert_eq!(error.message, "literal carriage return found in data");
        assert_eq!(error.context.as_deref(), Some("COPY t, line 1"));
    }

    #[test]
    fn text_end_of_data_marker() {
        let schema = schema(&[("a", DataType::Utf8, true)]);
        let text = CopyOptions::text();
        let batch = parse(&schema, &text, "line1\n\\.\nline2\n");
        assert_eq!(strings(&batch, 0), [Some("line1".into())]);
        let batch = parse(&schema, &text, "line1\n\\.\r\n");
        assert_eq!(batch.num_rows(), 1);
        // Data after the marker, even in later chunks, is ignored.
        let batches = run(&schema, &text, 8, &[b"a\n\\.\nb\n", b"c\n"]).unwrap();
        assert_eq!(batches.iter().map(RecordBatch::num_rows).sum::<usize>(), 1);
        for (data, line) in [
            ("foo\\.\nbar\n", 1),
            ("line1\n\\.foo\n", 2),
            ("l1\nl2\n\\.", 3),
        ] {
            let error = fail(&schema, &text, data.as_bytes());
            assert_eq!(error.sqlstate, "22P04", "{data:?}");
            assert_eq!(error.message, "end-of-copy marker is not alone on its line");
            assert_eq!(error.context, Some(format!("COPY t, line {line}")));
        }
        // An escaped backslash before a period is data.
        let batch = parse(&schema, &text, "a\\\\.\n");
        assert_eq!(strings(&batch, 0), [Some("a\\.".into())]);
    }

    #[test]
    fn text_blank_lines() {
        // A blank line is one empty field: the first column gets "", the second nothing.
        let two = schema(&[("a", DataType::Utf8, true), ("b", DataType::Int32, true)]);
        let error = fail(&two, &CopyOptions::text(), b"x\t2\n\n");
        assert_eq!(error.sqlstate, "22P04");
        assert_eq!(error.message, "missing data for column \"b\"");
        assert_eq!(error.context.as_deref(), Some("COPY t, line 2: \"\""));
        let ints = schema(&[("a", DataType::Int32, true), ("b", DataType::Int32, true)]);
        let error = fail(&ints, &CopyOptions::text(), b"1\t2\n\n");
        assert_eq!(error.message, "invalid input syntax for type integer: \"\"");
        let one_text = schema(&[("s", DataType::Utf8, true)]);
        let batch = parse(&one_text, &CopyOptions::text(), "\n\n");
        assert_eq!(
            strings(&batch, 0),
            [Some(String::new()), Some(String::new())]
        );
        let one_int = schema(&[("i", DataType::Int32, true)]);
        let error = fail(&one_int, &CopyOptions::text(), b"\n");
        assert_eq!(error.message, "invalid input syntax for type integer: \"\"");
    }

    #[test]
    fn text_custom_null_and_delimiter() {
        let schema = schema(&[("a", DataType::Utf8, true), ("b", DataType::Utf8, true)]);
        let options = CopyOptions {
            delimiter: b'|',
            ..text_options_with("NULL")
        };
        let batch = parse(&schema, &options, "NULL|\\N\nx\\|y|NULLx\n");
        assert_eq!(strings(&batch, 0), [None, Some("x|y".into())]);
        assert_eq!(strings(&batch, 1), [Some("N".into()), Some("NULLx".into())]);
    }

    #[test]
    fn text_backslash_at_end_of_data_is_dropped() {
        let schema = schema(&[("a", DataType::Utf8, true)]);
        let batch = parse(&schema, &CopyOptions::text(), "ab\\");
        assert_eq!(strings(&batch, 0), [Some("ab".into())]);
        // The raw field before the dropped backslash is compared with the NULL string.
        let batch = parse(&schema, &CopyOptions::text(), "\\N\\");
        assert_eq!(strings(&batch, 0), [None]);
    }

    #[test]
    fn final_line_without_newline() {
        let schema = schema(&[("a", DataType::Int32, true), ("b", DataType::Utf8, true)]);
        let batch = parse(&schema, &CopyOptions::text(), "1\ta\n2\tb");
        assert_eq!(values::<Int32Type>(&batch, 0), [Some(1), Some(2)]);
        let batch = parse(&schema, &CopyOptions::csv(), "1,a\n2,\"b\"");
        assert_eq!(strings(&batch, 1), [Some("a".into()), Some("b".into())]);
    }

    // --- CSV format ---------------------------------------------------------------------

    #[test]
    fn csv_quoting() {
        let schema = schema(&[
            ("a", DataType::Int32, true),
            ("b", DataType::Utf8, true),
            ("c", DataType::Utf8, true),
        ]);
        let data = "1,\"hello, world\",\"say \"\"hi\"\"\"\n2,,\"\"\n3,\"multi\nline\",a\"b,c\"d\n";
        let batch = parse(&schema, &CopyOptions::csv(), data);
        assert_eq!(values::<Int32Type>(&batch, 0), [Some(1), Some(2), Some(3)]);
        assert_eq!(
            strings(&batch, 1),
            [
                Some("hello, world".into()),
                None,
                Some("multi\nline".into())
            ]
        );
        assert_eq!(
            strings(&batch, 2),
            [
                Some("say \"hi\"".into()),
                Some(String::new()),
                Some("ab,cd".into())
            ]
        );
    }

    #[test]
    fn csv_custom_escape_and_null() {
        let schema = schema(&[
            ("a", DataType::Utf8, true),
            ("b", DataType::Utf8, true),
            ("c", DataType::Utf8, true),
            ("d", DataType::Utf8, true),
        ]);
        let options = CopyOptions {
            escape: b'\\',
            null: "NULL".into(),
            ..CopyOptions::csv()
        };
        let data = "\"a\\\"b\",\"c\\\\d\",\"e\\f\",NULL\n\"NULL\",,\"\"\"\",\\x\n";
        let batch = parse(&schema, &options, data);
        assert_eq!(
            strings(&batch, 0),
            [Some("a\"b".into()), Some("NULL".into())]
        );
        assert_eq!(
            strings(&batch, 1),
            [Some("c\\d".into()), Some(String::new())]
        );
        // An escape before anything but a quote or an escape is literal; with an escape
        // other than the quote, `""""` is two empty quoted sections.
        assert_eq!(
            strings(&batch, 2),
            [Some("e\\f".into()), Some(String::new())]
        );
        // Outside quotes the escape is an ordinary character.
        assert_eq!(strings(&batch, 3), [None, Some("\\x".into())]);
    }

    #[test]
    fn csv_header_and_line_numbers() {
        let schema = schema(&[("a", DataType::Int32, true), ("b", DataType::Int32, true)]);
        let options = CopyOptions {
            header: true,
            ..CopyOptions::csv()
        };
        let mut parser = CopyParser::new("t", schema.clone(), options.clone(), 10);
        assert!(parser.push(b"a,b\n1,2\n").unwrap().is_empty());
        assert_eq!(parser.finish().unwrap().unwrap().num_rows(), 1);
        assert_eq!(parser.rows(), 1);
        let error = fail(&schema, &options, b"a,b\n1,2\n3,x\n");
        assert_eq!(error.sqlstate, "22P02");
        assert_eq!(
            error.message,
            "invalid input syntax for type integer: \"x\""
        );
        assert_eq!(
            error.context.as_deref(),
            Some("COPY t, line 3, column b: \"x\"")
        );
        // A line feed inside quotes counts as a line, as in PostgreSQL.
        let error = fail(&schema, &options, b"\"a\nb\",c\n1,2\n3,x\n");
        assert_eq!(
            error.context.as_deref(),
            Some("COPY t, line 4, column b: \"x\"")
        );
        // The header may itself be broken over lines.
        let batch = parse(&schema, &options, "\"a\nstill header\",b\n5,6\n");
        assert_eq!(values::<Int32Type>(&batch, 0), [Some(5)]);
    }

    #[test]
    fn text_header_is_skipped_too() {
        let schema = schema(&[("a", DataType::Int32, true)]);
        let options = CopyOptions {
            header: true,
            ..CopyOptions::text()
        };
        let batch = parse(&schema, &options, "a\n7\n");
        assert_eq!(values::<Int32Type>(&batch, 0), [Some(7)]);
    }

    #[test]
    fn csv_end_of_data_marker() {
        let schema = schema(&[("s", DataType::Utf8, true)]);
        let csv = CopyOptions::csv();
        let batch = parse(&schema, &csv, "x\n\\.\ny\n");
        assert_eq!(strings(&batch, 0), [Some("x".into())]);
        let batch = parse(&schema, &csv, "x\n\\.");
        assert_eq!(batch.num_rows(), 1);
        let batch = parse(&schema, &csv, "\"\\.\"\n\\.x\n\\\n");
        assert_eq!(
            strings(&batch, 0),
            [Some("\\.".into()), Some("\\.x".into()), Some("\\".into())]
        );
    }

    #[test]
    fn csv_unterminated_quote() {
        let schema = schema(&[("a", DataType::Int32, true), ("b", DataType::Utf8, true)]);
        let error = fail(&schema, &CopyOptions::csv(), b"1,x\n2,\"abc\ndef\n");
        assert_eq!(error.sqlstate, "22P04");
        assert_eq!(error.message, "unterminated CSV quoted field");
        assert_eq!(
            error.context.as_deref(),
            Some("COPY t, line 4: \"2,\"abc\ndef\n\"")
        );
    }

    #[test]
    fn csv_line_endings() {
        let schema = schema(&[("a", DataType::Int32, true), ("b", DataType::Utf8, true)]);
        let batch = parse(&schema, &CopyOptions::csv(), "1,a\r\n2,\"b\r\nc\"\r\n");
        assert_eq!(
            strings(&batch, 1),
            [Some("a".into()), Some("b\r\nc".into())]
        );
        let error = fail(&schema, &CopyOptions::csv(), b"1,a\rb\n");
        assert_eq!(error.message, "unquoted carriage return found in data");
    }

    // --- field counts, nullability, options ----------------------------------------------

    #[test]
    fn too_many_and_too_few_fields() {
        let schema = schema(&[("a", DataType::Int32, true), ("b", DataType::Int32, true)]);
        let error = fail(&schema, &CopyOptions::csv(), b"1,2\n1,2,3\n");
        assert_eq!(error.sqlstate, "22P04");
        assert_eq!(error.message, "extra data after last expected column");
        assert_eq!(error.context.as_deref(), Some("COPY t, line 2: \"1,2,3\""));
        // Extra data is found before any conversion.
        let error = fail(&schema, &CopyOptions::csv(), b"x,2,3\n");
        assert_eq!(error.message, "extra data after last expected column");
        let error = fail(&schema, &CopyOptions::text(), b"1\n");
        assert_eq!(error.sqlstate, "22P04");
        assert_eq!(error.message, "missing data for column \"b\"");
        assert_eq!(error.context.as_deref(), Some("COPY t, line 1: \"1\""));
        // Earlier columns convert before the missing one is noticed.
        let error = fail(&schema, &CopyOptions::text(), b"x\n");
        assert_eq!(error.sqlstate, "22P02");
    }

    #[test]
    fn null_into_not_null_column() {
        let schema = schema(&[("a", DataType::Int32, false), ("b", DataType::Int32, true)]);
        let error = fail(&schema, &CopyOptions::text(), b"1\t2\n\\N\t1\n");
        assert_eq!(error.sqlstate, "23502");
        assert_eq!(
            error.message,
            "null value in column \"a\" violates not-null constraint"
        );
        assert_eq!(error.context.as_deref(), Some("COPY t, line 2: \"\\N\t1\""));
        // Conversion errors of the same row come first.
        let error = fail(&schema, &CopyOptions::text(), b"\\N\tx\n");
        assert_eq!(error.sqlstate, "22P02");
        // A quoted empty string is not NULL.
        let text_schema = self::schema(&[("s", DataType::Utf8, false)]);
        let batch = parse(&text_schema, &CopyOptions::csv(), "\"\"\n");
        assert_eq!(strings(&batch, 0), [Some(String::new())]);
        assert_eq!(
            fail(&text_schema, &CopyOptions::csv(), b"\n").sqlstate,
            "23502"
        );
    }

    #[test]
    fn a_line_longer_than_the_limit_fails_before_it_is_buffered() {
        let schema = schema(&[("s", DataType::Utf8, true)]);
        // Across chunks: the first chunk that takes the open record past the limit fails.
        let mut parser =
            CopyParser::new("t", schema.clone(), CopyOptions::text(), 10).with_max_line(8);
        assert_eq!(parser.push(b"short\nabc").unwrap().len(), 0);
        let error = parser.push(b"defghijkl").unwrap_err();
        assert_eq!(error.sqlstate, "54000");
        assert!(
            error.message.contains("maxCopyLineSize"),
            "{}",
            error.message
        );
        assert_eq!(error.context.as_deref(), Some("COPY t, line 2"));
        // A whole long record in one chunk.
        let mut parser = CopyParser::new("t", schema, CopyOptions::text(), 10).with_max_line(8);
        assert_eq!(parser.push(b"123456789\n").unwrap_err().sqlstate, "54000");
    }

    #[test]
    fn unsupported_column_type() {
        let schema = schema(&[("a", DataType::Int32, true), ("u", DataType::UInt32, true)]);
        let mut parser = CopyParser::new("t", schema, CopyOptions::csv(), 10);
        let error = parser.push(b"1,2\n").unwrap_err();
        assert_eq!(error.sqlstate, "0A000");
        assert_eq!(
            error.message,
            "COPY into a column of type UInt32 is not supported"
        );
        assert_eq!(parser.finish().unwrap_err(), error);
        let zoned = self::schema(&[(
            "ts",
            DataType::Timestamp(TimeUnit::Second, Some("Asia/Shanghai".into())),
            true,
        )]);
        assert_eq!(fail(&zoned, &CopyOptions::csv(), b"").sqlstate, "0A000");
    }

    #[test]
    fn invalid_options() {
        let schema = schema(&[("a", DataType::Utf8, true)]);
        let cases = [
            (
                CopyOptions {
                    quote: b',',
                    ..CopyOptions::csv()
                },
                "COPY delimiter and quote must be different",
            ),
            (
                CopyOptions {
                    delimiter: b'a',
                    ..CopyOptions::text()
                },
                "COPY delimiter cannot be \"a\"",
            ),
            (
                CopyOptions {
                    delimiter: b'\n',
                    ..CopyOptions::csv()
                },
                "COPY delimiter cannot be newline or carriage return",
            ),
            (
                CopyOptions {
                    null: "a,b".into(),
                    ..CopyOptions::csv()
                },
                "COPY delimiter character must not appear in the NULL specification",
            ),
        ];
        for (options, message) in cases {
            let error = fail(&schema, &options, b"x\n");
            assert_eq!(error.sqlstate, "22023");
            assert_eq!(error.message, message);
        }
        let options = CopyOptions {
            delimiter: 0xe9,
            ..CopyOptions::csv()
        };
        assert_eq!(fail(&schema, &options, b"x\n").sqlstate, "0A000");
    }

    #[test]
    fn zero_column_table_takes_empty_lines() {
        let schema = schema(&[]);
        let batch = parse(&schema, &CopyOptions::text(), "\n\n\n");
        assert_eq!((batch.num_rows(), batch.num_columns()), (3, 0));
        let error = fail(&schema, &CopyOptions::text(), b"\nx\n");
        assert_eq!(error.message, "extra data after last expected column");
    }

    #[test]
    fn batches_fill_to_batch_rows() {
        let schema = schema(&[("a", DataType::Int64, true)]);
        let mut parser = CopyParser::new("t", schema, CopyOptions::csv(), 2);
        let batches = parser.push(b"1\n2\n3\n4\n5").unwrap();
        assert_eq!(
            batches
                .iter()
                .map(RecordBatch::num_rows)
                .collect::<Vec<_>>(),
            [2, 2]
        );
        assert_eq!(values::<Int64Type>(&batches[1], 0), [Some(3), Some(4)]);
        assert_eq!(parser.rows(), 4);
        let last = parser.finish().unwrap().unwrap();
        assert_eq!(values::<Int64Type>(&last, 0), [Some(5)]);
        assert_eq!(parser.rows(), 5);
        assert_eq!(parser.finish().unwrap(), None);
        assert_eq!(parser.push(b"6\n").unwrap_err().sqlstate, "08P01");
    }

    #[test]
    fn the_first_error_sticks() {
        let schema = schema(&[("a", DataType::Int32, true)]);
        let mut parser = CopyParser::new("t", schema, CopyOptions::csv(), 2);
        let error = parser.push(b"1\nx\n").unwrap_err();
        assert_eq!(parser.push(b"2\n").unwrap_err(), error);
        assert_eq!(parser.finish().unwrap_err(), error);
    }

    #[test]
    fn long_values_are_cut_in_the_context() {
        let schema = schema(&[("a", DataType::Int32, true)]);
        let long = "é".repeat(80);
        let error = fail(&schema, &CopyOptions::csv(), format!("{long}\n").as_bytes());
        assert_eq!(
            error.context,
            Some(format!(
                "COPY t, line 1, column a: \"{}...\"",
                "é".repeat(50)
            ))
        );
        // The message itself carries the whole value, as PostgreSQL's does.
        assert!(error.message.contains(&long));
    }

    // --- value types ----------------------------------------------------------------------

    #[test]
    fn integers() {
        for (input, expected) in [
            ("42", 42),
            ("-7", -7),
            (" 42 ", 42),
            ("+7", 7),
            ("-2147483648", i32::MIN),
            ("2147483647", i32::MAX),
            ("0x1F", 31),
            ("-0X10", -16),
            ("0o17", 15),
            ("0b101", 5),
            ("1_000_000", 1_000_000),
            ("0x_ff", 255),
            ("007", 7),
        ] {
            assert_eq!(
                one::<Int32Type>(DataType::Int32, input),
                Ok(expected),
                "{input}"
            );
        }
        for input in [
            "abc", "", " ", "1.5", "_1", "1__0", "1_", "0x", "--1", "1 2", "١",
        ] {
            let error = one_err(DataType::Int32, input);
            assert_eq!(error.sqlstate, "22P02", "{input}");
            assert_eq!(
                error.message,
                format!("invalid input syntax for type integer: \"{input}\"")
            );
            assert_eq!(
                error.context,
                Some(format!("COPY t, line 1, column c: \"{input}\""))
            );
        }
        for input in ["2147483648", "-2147483649", "99999999999x", "0x80000000"] {
            let error = one_err(DataType::Int32, input);
            assert_eq!(error.sqlstate, "22003", "{input}");
            assert_eq!(
                error.message,
                format!("value \"{input}\" is out of range for type integer")
            );
        }
        assert_eq!(one::<Int16Type>(DataType::Int16, "-32768"), Ok(i16::MIN));
        assert_eq!(
            one_err(DataType::Int16, "32768").message,
            "value \"32768\" is out of range for type smallint"
        );
        assert_eq!(one::<Int8Type>(DataType::Int8, "-128"), Ok(i8::MIN));
        assert_eq!(one_err(DataType::Int8, "128").sqlstate, "22003");
        assert_eq!(
            one::<Int64Type>(DataType::Int64, "-9223372036854775808"),
            Ok(i64::MIN)
        );
        assert_eq!(
            one::<Int64Type>(DataType::Int64, "9223372036854775807"),
            Ok(i64::MAX)
        );
        assert_eq!(
            one_err(DataType::Int64, "9223372036854775808").message,
            "value \"9223372036854775808\" is out of range for type bigint"
        );
        assert_eq!(
            one_err(DataType::Int64, "x").message,
            "invalid input syntax for type bigint: \"x\""
        );
    }

    #[test]
    fn floats() {
        for (input, expected) in [
            ("1.5", 1.5),
            ("-0.25", -0.25),
            ("1e3", 1000.0),
            (" 2.5 ", 2.5),
            ("+3", 3.0),
            (".5", 0.5),
            ("5.", 5.0),
            ("Infinity", f64::INFINITY),
            ("-Infinity", f64::NEG_INFINITY),
            ("inf", f64::INFINITY),
            ("4.9e-324", 4.9e-324),
            ("0.1", 0.1),
            ("123456789012345678901234567890", 1.2345678901234568e29),
        ] {
            assert_eq!(
                one::<Float64Type>(DataType::Float64, input),
                Ok(expected),
                "{input}"
            );
        }
        assert!(one::<Float64Type>(DataType::Float64, "NaN")
            .unwrap()
            .is_nan());
        let negative_zero = one::<Float64Type>(DataType::Float64, "-0").unwrap();
        assert!(negative_zero == 0.0 && negative_zero.is_sign_negative());
        for input in ["1e400", "-1e400", "1e-400"] {
            let error = one_err(DataType::Float64, input);
            assert_eq!(error.sqlstate, "22003");
            assert_eq!(
                error.message,
                format!("\"{input}\" is out of range for type double precision")
            );
        }
        for input in ["abc", "", "1e", "1.2.3", "0x10", "1,5"] {
            let error = one_err(DataType::Float64, input);
            assert_eq!(error.sqlstate, "22P02", "{input}");
            assert_eq!(
                error.message,
                format!("invalid input syntax for type double precision: \"{input}\"")
            );
        }
        assert_eq!(one::<Float32Type>(DataType::Float32, "1.25"), Ok(1.25));
        assert_eq!(one::<Float32Type>(DataType::Float32, "0.1"), Ok(0.1));
        assert_eq!(
            one_err(DataType::Float32, "3.5e38").message,
            "\"3.5e38\" is out of range for type real"
        );
    }

    /// The hand-written fast path must agree bit for bit with the standard library.
    #[test]
    fn float_fast_path_is_exact() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for _ in 0..100_000 {
            let digits = 1 + rng.below(19);
            let mut s = String::new();
            if rng.below(4) == 0 {
                s.push('-');
            }
            let point = rng.below(digits + 1);
            for k in 0..digits {
                if k == point && k > 0 {
                    s.push('.');
                }
                s.push(char::from(b'0' + rng.below(10) as u8));
            }
            let expected: f64 = s.parse().unwrap();
            assert_eq!(
                parse_f64(s.as_bytes()).map(f64::to_bits),
                Ok(expected.to_bits()),
                "{s}"
            );
            let expected: f32 = s.parse().unwrap();
            assert_eq!(
                parse_f32(s.as_bytes()).map(f32::to_bits),
                Ok(expected.to_bits()),
                "{s}"
            );
        }
    }

    #[test]
    fn booleans() {
        let truthy = [
            "t", "true", "TRUE", "tr", "y", "yes", "on", "ON", "1", " true ",
        ];
        let falsy = ["f", "false", "fal", "n", "no", "off", "of", "0", "False"];
        let schema = schema(&[("b", DataType::Boolean, true)]);
        for (inputs, expected) in [(&truthy[..], true), (&falsy[..], false)] {
            for input in inputs {
                let batch = parse(&schema, &CopyOptions::csv(), &format!("\"{input}\"\n"));
                assert_eq!(batch.column(0).as_boolean().value(0), expected, "{input}");
            }
        }
        for input in ["o", "2", "truee", "yess", "", "onn", "10"] {
            let error = fail(
                &schema,
                &CopyOptions::csv(),
                format!("\"{input}\"\n").as_bytes(),
            );
            assert_eq!(error.sqlstate, "22P02", "{input}");
            assert_eq!(
                error.message,
                format!("invalid input syntax for type boolean: \"{input}\"")
            );
        }
        let batch = parse(&schema, &CopyOptions::csv(), "t\n\nf\n");
        let column = batch.column(0).as_boolean();
        assert_eq!(
            column.iter().collect::<Vec<_>>(),
            [Some(true), None, Some(false)]
        );
    }

    #[test]
    fn text_columns_reject_invalid_utf8() {
        for data_type in [DataType::Utf8, DataType::LargeUtf8] {
            let schema = schema(&[("a", DataType::Int32, true), ("s", data_type, true)]);
            let error = fail(&schema, &CopyOptions::csv(), b"1,ok\n2,a\xc3(b\n");
            assert_eq!(error.sqlstate, "22021");
            assert_eq!(
                error.message,
                "invalid byte sequence for encoding \"UTF8\": 0xc3 0x28"
            );
            assert_eq!(error.context.as_deref(), Some("COPY t, line 2"));
        }
        let schema = schema(&[("s", DataType::LargeUtf8, true)]);
        let batch = parse(&schema, &CopyOptions::csv(), "日本語\n\n");
        let column = batch.column(0).as_string::<i64>();
        assert_eq!(column.iter().collect::<Vec<_>>(), [Some("日本語"), None]);
        // Invalid bytes in a number column are an encoding error too.
        let numbers = self::schema(&[("i", DataType::Int32, true)]);
        assert_eq!(
            fail(&numbers, &CopyOptions::csv(), b"1\xff\n").sqlstate,
            "22021"
        );
    }

    #[test]
    fn bytea() {
        let schema = schema(&[("b", DataType::Binary, true)]);
        let batch = parse(
            &schema,
            &CopyOptions::csv(),
            "\\x0a0B\n\"\\x 0a ff\"\nab\\\\c\\101\n\\x\n\n",
        );
        let column = batch.column(0).as_binary::<i32>();
        assert_eq!(
            column.iter().collect::<Vec<_>>(),
            [
                Some(&[0x0a, 0x0b][..]),
                Some(&[0x0a, 0xff][..]),
                Some(&b"ab\\cA"[..]),
                Some(&[][..]),
                None
            ]
        );
        // In text format the backslash itself must be escaped.
        let batch = parse(&schema, &CopyOptions::text(), "\\\\x0102\n");
        assert_eq!(batch.column(0).as_binary::<i32>().value(0), [1, 2]);
        for (input, sqlstate, message) in [
            (
                "\\x0",
                "22023",
                "invalid hexadecimal data: odd number of digits",
            ),
            ("\\xzz", "22023", "invalid hexadecimal digit: \"z\""),
            ("\\x0é", "22023", "invalid hexadecimal digit: \"é\""),
            ("a\\q", "22P02", "invalid input syntax for type bytea"),
            ("a\\", "22P02", "invalid input syntax for type bytea"),
        ] {
            let error = fail(
                &schema,
                &CopyOptions::csv(),
                format!("{input}\n").as_bytes(),
            );
            assert_eq!(
                (error.sqlstate, error.message.as_str()),
                (sqlstate, message)
            );
        }
    }

    #[test]
    fn dates() {
        let days = |input: &str| one::<Date32Type>(DataType::Date32, input);
        assert_eq!(days("1970-01-01"), Ok(0));
        assert_eq!(days("1969-12-31"), Ok(-1));
        assert_eq!(days("2023-01-08"), Ok(19365));
        assert_eq!(days("2023.01.08"), Ok(19365));
        assert_eq!(days("20230108"), Ok(19365));
        assert_eq!(days(" 2023-1-8 "), Ok(19365));
        assert_eq!(days("2024-02-29"), Ok(19782));
        assert_eq!(days("2000-03-01"), Ok(11017));
        assert_eq!(days("epoch"), Ok(0));
        assert_eq!(days("0001-01-01"), Ok(-719162));
        for input in [
            "2023-02-29",
            "2023-13-01",
            "2023-00-10",
            "2023-04-31",
            "0000-01-01",
            "1900-02-29",
        ] {
            let error = one_err(DataType::Date32, input);
            assert_eq!(error.sqlstate, "22008", "{input}");
            assert_eq!(
                error.message,
                format!("date/time field value out of range: \"{input}\"")
            );
        }
        for input in [
            "2023/01/08",
            "2023-01",
            "23-01-08",
            "2023-01-08x",
            "2023-01.08",
            "x",
            "",
        ] {
            let error = one_err(DataType::Date32, input);
            assert_eq!(error.sqlstate, "22P02", "{input}");
            assert_eq!(
                error.message,
                format!("invalid input syntax for type date: \"{input}\"")
            );
        }
    }

    #[test]
    fn timestamps() {
        let seconds = |input: &str| {
            one::<TimestampSecondType>(DataType::Timestamp(TimeUnit::Second, None), input)
        };
        let base = 1_673_170_200; // 2023-01-08 09:30:00 UTC
        for input in [
            "2023-01-08 09:30:00",
            "2023-01-08T09:30:00",
            "2023.01.08T09:30:00",
            "2023.01.08 09:30:00",
            "2023-01-08 09:30",
            "2023-01-08 9:30:00",
            "2023-01-08 09:30:00Z",
            "2023-01-08 09:30:00+00",
            "2023-01-08 09:30:00+00:00",
            "2023-01-08 09:30:00 +00:00",
            "2023-01-08 17:30:00+08",
            "2023-01-08 04:00:00-0530",
            "2023-01-08 09:30:00.4999",
            "2023-01-08 09:29:59.5",
            " 2023-01-08 09:30:00 ",
        ] {
            assert_eq!(seconds(input), Ok(base), "{input}");
        }
        assert_eq!(seconds("2023-01-08"), Ok(1_673_136_000));
        assert_eq!(seconds("epoch"), Ok(0));
        assert_eq!(seconds("1969-12-31 23:59:59"), Ok(-1));
        assert_eq!(seconds("2023-01-08 24:00:00"), Ok(1_673_222_400));
        assert_eq!(seconds("2023-01-08 23:59:60"), Ok(1_673_222_400));
        assert_eq!(seconds("2023-01-08 23:59:59.5"), Ok(1_673_222_400));

        let millis = DataType::Timestamp(TimeUnit::Millisecond, None);
        let micros = DataType::Timestamp(TimeUnit::Microsecond, None);
        let nanos = DataType::Timestamp(TimeUnit::Nanosecond, None);
        let at = "2023-01-08 09:30:00";
        assert_eq!(
            one::<TimestampMillisecondType>(millis.clone(), &format!("{at}.123")),
            Ok(base * 1000 + 123)
        );
        assert_eq!(
            one::<TimestampMillisecondType>(millis.clone(), &format!("{at}.1235")),
            Ok(base * 1000 + 124)
        );
        assert_eq!(
            one::<TimestampMillisecondType>(millis, &format!("{at}.5")),
            Ok(base * 1000 + 500)
        );
        assert_eq!(
            one::<TimestampMicrosecondType>(micros.clone(), &format!("{at}.123456")),
            Ok(base * 1_000_000 + 123_456)
        );
        assert_eq!(
            one::<TimestampMicrosecondType>(micros.clone(), "1969-12-31 23:59:59.999999"),
            Ok(-1)
        );
        assert_eq!(
            one::<TimestampNanosecondType>(nanos.clone(), &format!("{at}.123456789")),
            Ok(base * 1_000_000_000 + 123_456_789)
        );
        assert_eq!(
            one::<TimestampNanosecondType>(nanos.clone(), &format!("{at}.1234567895")),
            Ok(base * 1_000_000_000 + 123_456_790)
        );
        let error = one_err(nanos, "2300-01-01 00:00:00");
        assert_eq!(error.sqlstate, "22008");
        assert_eq!(
            error.message,
            "timestamp out of range: \"2300-01-01 00:00:00\""
        );

        for input in [
            "2023-01-08 25:00:00",
            "2023-01-08 09:60:00",
            "2023-01-08 24:00:01",
            "2023-02-30 00:00:00",
        ] {
            let error = one_err(micros.clone(), input);
            assert_eq!(error.sqlstate, "22008", "{input}");
            assert_eq!(
                error.message,
                format!("date/time field value out of range: \"{input}\"")
            );
        }
        for input in [
            "2023-01-08X09:30:00",
            "2023-01-08 09:30:00.",
            "2023-01-08 09:3",
            "2023-01-08 09:30:00 UTC",
            "2023-01-08 09:30:00+",
            "2023-01-08 09:30:00+05:",
            "2023-01-08T",
        ] {
            let error = one_err(micros.clone(), input);
            assert_eq!(error.sqlstate, "22P02", "{input}");
            assert_eq!(
                error.message,
                format!("invalid input syntax for type timestamp: \"{input}\"")
            );
        }
        assert_eq!(one_err(micros, "2023-01-08 09:30:00+16").sqlstate, "22009");

        // A UTC time zone on the column is kept on the array.
        let zoned = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
        let schema = schema(&[("ts", zoned.clone(), true)]);
        let batch = parse(&schema, &CopyOptions::csv(), "2023-01-08 09:30:00+01\n");
        assert_eq!(batch.column(0).data_type(), &zoned);
        assert_eq!(
            values::<TimestampMicrosecondType>(&batch, 0),
            [Some((base - 3600) * 1_000_000)]
        );
    }

    #[test]
    fn times() {
        let t32s = DataType::Time32(TimeUnit::Second);
        let t32ms = DataType::Time32(TimeUnit::Millisecond);
        let t64us = DataType::Time64(TimeUnit::Microsecond);
        let t64ns = DataType::Time64(TimeUnit::Nanosecond);
        assert_eq!(
            one::<Time32SecondType>(t32s.clone(), "09:30:00"),
            Ok(34_200)
        );
        assert_eq!(one::<Time32SecondType>(t32s.clone(), "9:30"), Ok(34_200));
        assert_eq!(
            one::<Time32SecondType>(t32s.clone(), "09:30:00.5"),
            Ok(34_201)
        );
        assert_eq!(
            one::<Time32MillisecondType>(t32ms, "09:30:00.25"),
            Ok(34_200_250)
        );
        assert_eq!(
            one::<Time64MicrosecondType>(t64us.clone(), "23:59:59.999999"),
            Ok(86_399_999_999)
        );
        assert_eq!(
            one::<Time64NanosecondType>(t64ns, "00:00:00.000000001"),
            Ok(1)
        );
        for input in ["24:00:00", "23:59:59.5", "12:60:00", "12:00:61"] {
            let error = one_err(t32s.clone(), input);
            assert_eq!(error.sqlstate, "22008", "{input}");
        }
        let error = one_err(t64us, "noon");
        assert_eq!(error.sqlstate, "22P02");
        assert_eq!(
            error.message,
            "invalid input syntax for type time: \"noon\""
        );
    }

    #[test]
    fn decimals() {
        let d = DataType::Decimal128(10, 2);
        let dec = |input: &str| one::<Decimal128Type>(d.clone(), input);
        for (input, expected) in [
            ("123.456", 12_346),
            ("123.455", 12_346),
            ("123.454", 12_345),
            ("-123.455", -12_346),
            ("1.5e2", 15_000),
            ("1.5E-1", 15),
            ("0.004", 0),
            ("0.005", 1),
            ("-0.005", -1),
            ("0.0049999", 0),
            (".5", 50),
            ("7.", 700),
            ("+1", 100),
            (" 42 ", 4_200),
            ("00000012.30", 1_230),
            ("12345678.99", 1_234_567_899),
            ("0e999999999999", 0),
            ("1e-999999999999", 0),
            ("-0", 0),
        ] {
            assert_eq!(dec(input), Ok(expected), "{input}");
        }
        for input in ["123456789", "99999999.995", "1e8", "Infinity", "-inf"] {
            let error = one_err(d.clone(), input);
            assert_eq!(error.sqlstate, "22003", "{input}");
            assert_eq!(error.message, "numeric field overflow");
            assert_eq!(
                error.context,
                Some(format!("COPY t, line 1, column c: \"{input}\""))
            );
        }
        for input in ["abc", "", "1.2.3", "1e", "e5", "--1", "1 2"] {
            let error = one_err(d.clone(), input);
            assert_eq!(error.sqlstate, "22P02", "{input}");
            assert_eq!(
                error.message,
                format!("invalid input syntax for type numeric: \"{input}\"")
            );
        }
        assert_eq!(one_err(d, "NaN").sqlstate, "0A000");
        let negative_scale = DataType::Decimal128(5, -2);
        assert_eq!(
            one::<Decimal128Type>(negative_scale.clone(), "12345"),
            Ok(123)
        );
        assert_eq!(one::<Decimal128Type>(negative_scale, "12350"), Ok(124));
        let wide = DataType::Decimal128(38, 0);
        let max = "9".repeat(38);
        assert_eq!(
            one::<Decimal128Type>(wide.clone(), &max),
            Ok(10_i128.pow(38) - 1)
        );
        assert_eq!(one_err(wide, &format!("{max}.5")).sqlstate, "22003");
        let schema = schema(&[("d", DataType::Decimal128(10, 2), true)]);
        let batch = parse(&schema, &CopyOptions::csv(), "1.5\n");
        assert_eq!(batch.column(0).data_type(), &DataType::Decimal128(10, 2));
    }

    // --- chunking ----------------------------------------------------------------------------

    /// Splits `data` at every byte boundary (and every pair of boundaries, and into single
    /// bytes) and checks each way gives what one chunk gives.
    fn assert_chunking_is_invisible(schema: &SchemaRef, options: &CopyOptions, data: &[u8]) {
        let expected = run(schema, options, 2, &[data]);
        let n = data.len();
        for a in 0..=n {
            let split = run(schema, options, 2, &[&data[..a], &data[a..]]);
            assert_eq!(split, expected, "split at {a}");
            for b in a..=n {
                let chunks = [&data[..a], &data[a..b], &data[b..]];
                assert_eq!(
                    run(schema, options, 2, &chunks),
                    expected,
                    "split at {a}, {b}"
                );
            }
        }
        let bytes: Vec<&[u8]> = data.chunks(1).collect();
        assert_eq!(run(schema, options, 2, &bytes), expected, "byte by byte");
    }

    #[test]
    fn csv_chunking_at_every_boundary() {
        let schema = schema(&[
            ("id", DataType::Int32, false),
            ("name", DataType::Utf8, true),
            ("note", DataType::Utf8, true),
        ]);
        let options = CopyOptions {
            header: true,
            ..CopyOptions::csv()
        };
        let data = "id,\"na\nme\",note\n1,\"Smith, John\",\"said \"\"hi\"\"\nand left\"\r\n2,,\"\"\n3,é—ü,\"\"\"\"\n4,\"a\"b,\n\\.\nignored\n";
        let batches = run(&schema, &options, 2, &[data.as_bytes()]).unwrap();
        let batch = concat_batches(&schema, &batches).unwrap();
        assert_eq!(
            strings(&batch, 1),
            [
                Some("Smith, John".into()),
                None,
                Some("é—ü".into()),
                Some("ab".into())
            ]
        );
        assert_eq!(
            strings(&batch, 2),
            [
                Some("said \"hi\"\nand left".into()),
                Some(String::new()),
                Some("\"".into()),
                None
            ]
        );
        assert_chunking_is_invisible(&schema, &options, data.as_bytes());
    }

    #[test]
    fn text_chunking_at_every_boundary() {
        let schema = schema(&[
            ("id", DataType::Int32, true),
            ("a", DataType::Utf8, true),
            ("b", DataType::Utf8, true),
        ]);
        let data = "1\tab\\tc\t\\N\n2\t\\x41\\101\\\\\tline\\nbreak\r\n3\tmulti\\\nline\tçé\n4\t\\\t\t\n5\t\\1234\\x4\tlast";
        let batches = run(&schema, &CopyOptions::text(), 2, &[data.as_bytes()]).unwrap();
        let batch = concat_batches(&schema, &batches).unwrap();
        assert_eq!(
            strings(&batch, 1),
            [
                Some("ab\tc".into()),
                Some("AA\\".into()),
                Some("multi\nline".into()),
                Some("\t".into()),
                Some("S4\u{4}".into())
            ]
        );
        assert_eq!(
            strings(&batch, 2),
            [
                None,
                Some("line\nbreak".into()),
                Some("çé".into()),
                Some(String::new()),
                Some("last".into())
            ]
        );
        assert_chunking_is_invisible(&schema, &CopyOptions::text(), data.as_bytes());
    }

    #[test]
    fn byte_set_finds_the_first_member() {
        let mut rng = Rng(3);
        for members in [*b",\n\r\"", *b"\t\n\r\\", [0, b'\n', 0x80, 0xff], [b'"'; 4]] {
            let set = ByteSet::new(members);
            for _ in 0..20_000 {
                let len = rng.below(40);
                let data: Vec<u8> = (0..len)
                    .map(|_| match rng.below(6) {
                        0 => members[rng.below(4)],
                        _ => rng.next() as u8,
                    })
                    .collect();
                let start = rng.below(len + 1);
                let expected = data[start..]
                    .iter()
                    .position(|c| members.contains(c))
                    .map_or(len, |p| start + p);
                assert_eq!(set.find(&data, start), expected, "{data:?} from {start}");
            }
        }
    }

    /// A small deterministic generator (xorshift64*), enough for fuzzing.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }

        /// Random cut points turning `data` into chunks.
        fn chunks<'a>(&mut self, data: &'a [u8]) -> Vec<&'a [u8]> {
            let mut chunks = Vec::new();
            let mut rest = data;
            while !rest.is_empty() {
                let take = 1 + self.below(rest.len().min(12));
                chunks.push(&rest[..take]);
                rest = &rest[take..];
            }
            chunks
        }
    }

    #[test]
    fn random_input_never_panics_and_chunking_never_matters() {
        let everything = schema(&[
            ("b", DataType::Boolean, true),
            ("i", DataType::Int16, true),
            ("f", DataType::Float32, true),
            ("s", DataType::Utf8, true),
            ("x", DataType::Binary, true),
            ("d", DataType::Date32, true),
            ("ts", DataType::Timestamp(TimeUnit::Nanosecond, None), true),
            ("t", DataType::Time32(TimeUnit::Millisecond), true),
            ("n", DataType::Decimal128(6, 2), true),
        ]);
        let narrow = schema(&[("a", DataType::Utf8, false), ("b", DataType::Int64, true)]);
        let wide_text = schema(&[("a", DataType::LargeUtf8, true)]);
        let schemas = [everything, narrow, wide_text, schema(&[])];
        let options = [
            CopyOptions::text(),
            CopyOptions::csv(),
            CopyOptions {
                escape: b'\\',
                header: true,
                ..CopyOptions::csv()
            },
            CopyOptions {
                delimiter: b',',
                header: true,
                ..text_options_with("")
            },
        ];
        let alphabet = b"0123456789-+.:,\t\n\r\"\\ eE_xXNTZaftnoy\xc3\xa9\xff\x00";
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        for round in 0..3000 {
            let len = rng.below(64);
            let data: Vec<u8> = (0..len)
                .map(|_| match rng.below(10) {
                    0 => rng.next() as u8,
                    _ => alphabet[rng.below(alphabet.len())],
                })
                .collect();
            let schema = &schemas[round % schemas.len()];
            let options = &options[(round / schemas.len()) % options.len()];
            let expected = run(schema, options, 3, &[&data]);
            for _ in 0..4 {
                let chunks = rng.chunks(&data);
                assert_eq!(run(schema, options, 3, &chunks), expected, "{data:?}");
            }
        }
    }

    #[test]
    fn truncated_valid_input_never_panics_and_chunking_never_matters() {
        let schema = schema(&[
            ("sym", DataType::Utf8, false),
            ("ts", DataType::Timestamp(TimeUnit::Millisecond, None), true),
            ("px", DataType::Float64, true),
            ("q", DataType::Int32, true),
        ]);
        let csv = "\"000001\",2023-01-08 09:30:00.5,10.25,100\n\"a,\"\"b\"\"\nc\",2023.01.08T09:30:00Z,-1e3,\n\"é\",,NaN,-7\n";
        let text = "000001\t2023-01-08 09:30:00.5\t10.25\t100\na\\,\\\"b\\nc\t\\N\t-1e3\t\\N\n\\303\\251\t\\N\tNaN\t-7\n";
        let mut rng = Rng(7);
        for (options, data) in [(CopyOptions::csv(), csv), (CopyOptions::text(), text)] {
            let data = data.as_bytes();
            for cut in 0..=data.len() {
                let truncated = &data[..cut];
                let expected = run(&schema, &options, 2, &[truncated]);
                for _ in 0..8 {
                    let chunks = rng.chunks(truncated);
                    assert_eq!(run(&schema, &options, 2, &chunks), expected, "cut at {cut}");
                }
            }
            let full = run(&schema, &options, 2, &[data]).unwrap();
            assert_eq!(full.iter().map(RecordBatch::num_rows).sum::<usize>(), 3);
        }
    }

    /// The benchmark's shape: a symbol, a timestamp, six floats and an integer. Debug builds
    /// are many times slower than release, so only correctness is asserted.
    #[test]
    fn benchmark_shaped_throughput() {
        const ROWS: usize = 200_000;
        let schema = schema(&[
            ("symbol", DataType::Utf8, false),
            (
                "ts",
                DataType::Timestamp(TimeUnit::Millisecond, None),
                false,
            ),
            ("open", DataType::Float64, true),
            ("high", DataType::Float64, true),
            ("low", DataType::Float64, true),
            ("close", DataType::Float64, true),
            ("vwap", DataType::Float64, true),
            ("turnover", DataType::Float64, true),
            ("volume", DataType::Int32, true),
        ]);
        let mut data = String::with_capacity(ROWS * 96);
        for i in 0..ROWS {
            let second = i % 86_400;
            let price = 10.0 + (i % 1000) as f64 / 100.0;
            writeln!(
                data,
                "{:06},2023-01-{:02} {:02}:{:02}:{:02},{price:.2},{:.2},{:.2},{:.3},{:.4},{:.2},{}",
                i % 5000,
                1 + i / 86_400,
                second / 3600,
                second / 60 % 60,
                second % 60,
                price + 0.05,
                price - 0.05,
                price + 0.001,
                price * 1.0001,
                price * 1234.5,
                i * 7 % 1_000_000,
            )
            .unwrap();
        }
        let started = Instant::now();
        let mut parser = CopyParser::new("quotes", schema.clone(), CopyOptions::csv(), 8192);
        let mut batches = Vec::new();
        for chunk in data.as_bytes().chunks(65_536) {
            batches.extend(parser.push(chunk).unwrap());
        }
        batches.extend(parser.finish().unwrap());
        let elapsed = started.elapsed().as_secs_f64();
        println!(
            "parsed {ROWS} rows ({:.1} MB) in {elapsed:.3} s: {:.0} rows/s, {:.1} MB/s (debug build)",
            data.len() as f64 / 1e6,
            ROWS as f64 / elapsed,
            data.len() as f64 / 1e6 / elapsed
        );
        assert_eq!(parser.rows(), ROWS as u64);
        assert_eq!(
            batches.iter().map(RecordBatch::num_rows).sum::<usize>(),
            ROWS
        );
        assert!(batches[..batches.len() - 1]
            .iter()
            .all(|b| b.num_rows() == 8192));
        let all = concat_batches(&schema, &batches).unwrap();
        let last = ROWS - 1;
        assert_eq!(all.column(0).as_string::<i32>().value(0), "000000");
        assert_eq!(
            all.column(0).as_string::<i32>().value(last),
            format!("{:06}", last % 5000)
        );
        let ts = all.column(1).as_primitive::<TimestampMillisecondType>();
        assert_eq!(ts.value(0), 1_672_531_200_000); // 2023-01-01 00:00:00
        assert_eq!(ts.value(90_061), 1_672_531_200_000 + 90_061_000);
        let open = all.column(2).as_primitive::<Float64Type>();
        assert_eq!(open.value(123), 11.23);
        let volume = all.column(8).as_primitive::<Int32Type>();
        assert_eq!(volume.value(last), (last * 7 % 1_000_000) as i32);
    }
}
