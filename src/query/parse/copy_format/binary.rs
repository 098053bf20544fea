//! [`BinaryParser`]: `COPY ... FROM STDIN (FORMAT binary)` data, PostgreSQL's binary COPY
//! format, into record batches; and the binary receive functions of the column types.
//!
//! The stream is the 11-byte signature `PGCOPY\n\377\r\n\0`, a 32-bit flags word, a 32-bit
//! header-extension length and that many bytes, then one tuple per row: a 16-bit field count
//! and, per field, a 32-bit length (-1 for NULL) and the value in its type's binary send
//! format; a field count of -1 ends the data. Integers are big-endian. The client may cut the
//! stream into `CopyData` messages anywhere; a tuple is decoded once all of it has arrived.
//!
//! Errors follow PostgreSQL: a bad signature, header, field count or field length is
//! `bad_copy_file_format` (22P04); a value whose bytes do not fit its type is
//! `invalid_binary_representation` (22P03, `incorrect binary data format`); a value its column
//! cannot hold gets the code the text format gives it (22003, 22008, 22021, 0A000).

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;

use super::column::{self, Column};
use super::error::CopyError;

/// The first bytes of every binary COPY stream.
pub const SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";

/// Parses the data of one `COPY <table> FROM STDIN (FORMAT binary)` into record batches.
///
/// Feed every `CopyData` payload to [`push`](Self::push) and call [`finish`](Self::finish) on
/// `CopyDone`. The first error aborts the COPY: every later call returns it again.
pub struct BinaryParser {
    table: String,
    schema: SchemaRef,
    batch_rows: usize,
    columns: Vec<Column>,
    /// Bytes of an incomplete header or tuple.
    pending: Vec<u8>,
    /// How many bytes the pending item needs at least (see [`Self::parse`]).
    need: usize,
    header_read: bool,
    /// The end-of-data field count (-1) was read.
    ended: bool,
    /// Tuples started so far: PostgreSQL's line number of binary COPY.
    line: u64,
    rows_in_batch: usize,
    error: Option<CopyError>,
    /// The largest tuple (in bytes) taken; a larger one fails with 54000 instead of being
    /// buffered.
    max_tuple: usize,
}

impl BinaryParser {
    /// A parser for `COPY <table> FROM STDIN (FORMAT binary)` into `schema`, emitting batches
    /// of `batch_rows` rows. A column type COPY cannot fill makes the first call fail.
    pub fn new(table: &str, schema: SchemaRef, batch_rows: usize) -> Self {
        let batch_rows = batch_rows.max(1);
        let (columns, error) = column::columns(&schema, batch_rows);
        Self {
            table: table.to_owned(),
            schema,
            batch_rows,
            columns,
            pending: Vec::new(),
            need: 0,
            header_read: false,
            ended: false,
            line: 0,
            rows_in_batch: 0,
            error,
            max_tuple: usize::MAX,
        }
    }

    /// Refuses tuples longer than `bytes` (`maxCopyLineSize`).
    pub fn with_max_tuple(mut self, bytes: usize) -> Self {
        self.max_tuple = bytes.max(1);
        self
    }

    /// Feeds the next `CopyData` payload. Returns the batches that filled up.
    pub fn push(&mut self, data: &[u8]) -> Result<Vec<RecordBatch>, CopyError> {
        if let Some(error) = &self.error {
            return Err(error.clone());
        }
        let mut batches = Vec::new();
        match self.push_inner(data, &mut batches) {
            Ok(()) => Ok(batches),
            Err(e) => {
                self.error = Some(e.clone());
                Err(e)
            }
        }
    }

    fn push_inner(&mut self, data: &[u8], batches: &mut Vec<RecordBatch>) -> Result<(), CopyError> {
        let mut at = 0;
        // First complete the header or tuple left over from the previous message, copying
        // only about as much as it is: a tuple cut by a message boundary costs a copy of that
        // tuple, not of the whole message. Taking at least as much again as is pending keeps
        // the rescans of a tuple whose field lengths are still unknown logarithmic.
        while !self.pending.is_empty() {
            let old = self.pending.len();
            let take = (self.need - old).max(old).min(data.len() - at);
            self.pending.extend_from_slice(&data[at..at + take]);
            let pending = std::mem::take(&mut self.pending);
            let parsed = self.parse(&pending, batches);
            self.pending = pending;
            let (used, need) = parsed?;
            if used >= old {
                // The left-over item is complete: what the copy took beyond the items used
                // is read in place below.
                at += take - (self.pending.len() - used);
                self.pending.clear();
                break;
            }
            // Still incomplete.
            self.pending.drain(..used);
            at += take;
            self.need = need;
            if at == data.len() {
                return self.check_pending_size();
            }
        }
        let (used, need) = self.parse(&data[at..], batches)?;
        self.pending.extend_from_slice(&data[at + used..]);
        self.need = need;
        self.check_pending_size()
    }

    /// Refuses to buffer an item (a header) larger than the largest tuple taken.
    fn check_pending_size(&self) -> Result<(), CopyError> {
        if self.pending.is_empty() || self.need <= self.max_tuple {
            return Ok(());
        }
        Err(self.too_long())
    }

    /// The error for a tuple longer than [`Self::with_max_tuple`].
    fn too_long(&self) -> CopyError {
        CopyError::new(
            "54000",
            format!(
                "COPY row is longer than {} bytes (maxCopyLineSize): raise maxCopyLineSize",
                self.max_tuple
            ),
            Some(self.context()),
        )
    }

    /// `CopyDone`: the rows not yet handed out, if any.
    pub fn finish(&mut self) -> Result<Option<RecordBatch>, CopyError> {
        if let Some(error) = &self.error {
            return Err(error.clone());
        }
        let error = if !self.header_read {
            Some(bad_format("COPY file signature not recognized", None))
        } else if !self.pending.is_empty() {
            Some(bad_format(
                "unexpected EOF in COPY data",
                Some(self.context()),
            ))
        } else {
            None
        };
        if let Some(e) = error {
            self.error = Some(e.clone());
            return Err(e);
        }
        if self.rows_in_batch == 0 {
            return Ok(None);
        }
        self.flush().map(Some)
    }

    fn context(&self) -> String {
        format!("COPY {}, line {}", self.table, self.line.max(1))
    }

    /// Reads the complete header and tuples at the start of `buf`. Returns how many bytes were
    /// used, and how many bytes, counted from there, the incomplete item after them needs at
    /// least before it can be read further (all that is known of its length so far).
    fn parse(
        &mut self,
        buf: &[u8],
        batches: &mut Vec<RecordBatch>,
    ) -> Result<(usize, usize), CopyError> {
        let mut pos = 0;
        if !self.header_read {
            let seen = buf.len().min(SIGNATURE.len());
            if buf[..seen] != SIGNATURE[..seen] {
                return Err(bad_format("COPY file signature not recognized", None));
            }
            let fixed_len = SIGNATURE.len() + 8;
            let Some(fixed) = buf.get(..fixed_len) else {
                return Ok((0, fixed_len));
            };
            let flags = be_u32(&fixed[11..15]);
            if flags & (1 << 16) != 0 {
                return Err(bad_format("invalid COPY file header (WITH OIDS)", None));
            }
            if flags & 0xFFFE_0000 != 0 {
                return Err(bad_format(
                    "unrecognized critical flags in COPY file header",
                    None,
                ));
            }
            let extension = be_u32(&fixed[15..19]) as i32;
            if extension < 0 {
                return Err(bad_format(
                    "invalid COPY file header (missing length)",
                    None,
                ));
            }
            let end = fixed_len + extension as usize;
            if buf.len() < end {
                return Ok((0, end));
            }
            pos = end;
            self.header_read = true;
        }
        loop {
            if self.ended {
                if pos < buf.len() {
                    return Err(bad_format("received copy data after EOF marker", None));
                }
                return Ok((pos, 0));
            }
            let Some(count) = buf.get(pos..pos + 2) else {
                return Ok((pos, 2));
            };
            let count = i16::from_be_bytes([count[0], count[1]]);
            if count == -1 {
                self.ended = true;
                pos += 2;
                continue;
            }
            self.line += 1;
            if count as i64 != self.columns.len() as i64 {
                return Err(bad_format(
                    &format!(
                        "row field count is {count}, expected {}",
                        self.columns.len()
                    ),
                    Some(self.context()),
                ));
            }
            // First make sure the whole tuple is here, then decode it.
            let mut end = pos + 2;
            let mut complete = true;
            for _ in 0..count {
                let Some(len) = buf.get(end..end + 4) else {
                    end += 4;
                    complete = false;
                    break;
                };
                let len = be_u32(len) as i32;
                end += 4;
                if len < -1 {
                    return Err(bad_format("invalid field size", Some(self.context())));
                }
                if len > 0 {
                    end += len as usize;
                }
            }
            // Refused before it is buffered, and also when it came whole.
            if end - pos > self.max_tuple {
                return Err(self.too_long());
            }
            if !complete || end > buf.len() {
                // Counted again when the rest arrives.
                self.line -= 1;
                return Ok((pos, end - pos));
            }
            self.decode_tuple(&buf[pos + 2..end])?;
            pos = end;
            if self.rows_in_batch == self.batch_rows {
                batches.push(self.flush()?);
            }
        }
    }

    /// Decodes the fields of one complete tuple (after its field count).
    fn decode_tuple(&mut self, mut fields: &[u8]) -> Result<(), CopyError> {
        let mut null_violation = None;
        for (index, column) in self.columns.iter_mut().enumerate() {
            let len = be_u32(&fields[..4]) as i32;
            fields = &fields[4..];
            if len == -1 {
                if !column.nullable {
                    null_violation.get_or_insert(index);
                }
                column.append_null();
                continue;
            }
            let (value, rest) = fields.split_at(len as usize);
            fields = rest;
            if let Err(bad) = column.append_binary(value) {
                return Err(column.describe_binary(bad, &self.table, self.line));
            }
        }
        if let Some(index) = null_violation {
            return Err(CopyError::new(
                "23502",
                format!(
                    "null value in column \"{}\" violates not-null constraint",
                    self.columns[index].name
                ),
                Some(self.context()),
            ));
        }
        self.rows_in_batch += 1;
        Ok(())
    }

    fn flush(&mut self) -> Result<RecordBatch, CopyError> {
        let rows = std::mem::take(&mut self.rows_in_batch);
        column::take_batch(&self.schema, &mut self.columns, rows, self.batch_rows)
    }
}

fn bad_format(message: &str, context: Option<String>) -> CopyError {
    CopyError::new("22P04", message, context)
}

fn be_u32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{
        DataType, Date32Type, Decimal128Type, Field, Int32Type, Schema, TimeUnit,
        TimestampMillisecondType,
    };

    use super::*;
    use crate::query::parse::copy_format::value::recv::numeric;
    use crate::query::parse::copy_format::value::Bad;

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("i", DataType::Int32, false),
            Field::new("s", DataType::Utf8, true),
            Field::new("ts", DataType::Timestamp(TimeUnit::Millisecond, None), true),
            Field::new("d", DataType::Date32, true),
            Field::new("n", DataType::Decimal128(10, 2), true),
            Field::new("b", DataType::Boolean, true),
        ]))
    }

    fn field(out: &mut Vec<u8>, value: Option<&[u8]>) {
        match value {
            Some(v) => {
                out.extend_from_slice(&(v.len() as i32).to_be_bytes());
                out.extend_from_slice(v);
            }
            None => out.extend_from_slice(&(-1i32).to_be_bytes()),
        }
    }

    /// `-12.5` as PostgreSQL sends a numeric: digits 12 and 5000, weight 0, scale 1.
    fn numeric_bytes() -> Vec<u8> {
        let mut n = Vec::new();
        for w in [2u16, 0, 0x4000, 1, 12, 5000] {
            n.extend_from_slice(&w.to_be_bytes());
        }
        n
    }

    fn stream() -> Vec<u8> {
        let mut out = SIGNATURE.to_vec();
        out.extend_from_slice(&0i32.to_be_bytes());
        out.extend_from_slice(&4i32.to_be_bytes());
        out.extend_from_slice(b"ext!");
        // 2024-01-10 09:30:00.5 is 758_194_200_500_000 µs after 2000-01-01.
        let ts = 758_194_200_500_000i64;
        for (i, s) in [(1i32, Some("héllo")), (2, None)] {
            out.extend_from_slice(&6i16.to_be_bytes());
            field(&mut out, Some(&i.to_be_bytes()));
            field(&mut out, s.map(str::as_bytes));
            field(&mut out, Some(&ts.to_be_bytes()));
            field(&mut out, Some(&8775i32.to_be_bytes()));
            field(&mut out, Some(&numeric_bytes()));
            field(&mut out, Some(&[1]));
        }
        out.extend_from_slice(&(-1i16).to_be_bytes());
        out
    }

    fn parse_in(chunks: &[&[u8]]) -> Result<Vec<RecordBatch>, CopyError> {
        let mut p = BinaryParser::new("t", schema(), 1000);
        let mut batches = Vec::new();
        for c in chunks {
            batches.extend(p.push(c)?);
        }
        batches.extend(p.finish()?);
        Ok(batches)
    }

    #[test]
    fn values_decode_at_every_split() {
        let data = stream();
        let whole = parse_in(&[&data]).unwrap();
        assert_eq!(whole.len(), 1);
        let b = &whole[0];
        assert_eq!(b.num_rows(), 2);
        assert_eq!(b.column(0).as_primitive::<Int32Type>().value(1), 2);
        assert_eq!(b.column(1).as_string::<i32>().value(0), "héllo");
        assert!(b.column(1).is_null(1));
        assert_eq!(
            b.column(2)
                .as_primitive::<TimestampMillisecondType>()
                .value(0),
            1_704_879_000_500
        );
        assert_eq!(b.column(3).as_primitive::<Date32Type>().value(0), 19_732);
        assert_eq!(b.column(4).as_primitive::<Decimal128Type>().value(0), -1250);
        assert!(b.column(5).as_boolean().value(0));
        for cut in 0..data.len() {
            let split = parse_in(&[&data[..cut], &data[cut..]]).unwrap();
            assert_eq!(split, whole, "split at {cut}");
        }
        let bytes: Vec<&[u8]> = data.chunks(1).collect();
        assert_eq!(parse_in(&bytes).unwrap(), whole);
    }

    #[test]
    fn values_decode_in_messages_of_every_size() {
        let data = stream();
        let whole = parse_in(&[&data]).unwrap();
        for size in 1..=data.len() {
            let chunks: Vec<&[u8]> = data.chunks(size).collect();
            assert_eq!(
                parse_in(&chunks).unwrap(),
                whole,
                "messages of {size} bytes"
            );
        }
    }

    #[test]
    fn a_tuple_longer_than_the_limit_is_refused_whole_or_cut() {
        let data = stream();
        // The first tuple: count, 6 lengths, 4 + 6 + 8 + 4 + 12 + 1 value bytes.
        let tuple = 2 + 6 * 4 + 35;
        for size in [data.len(), 7, 1] {
            let mut p = BinaryParser::new("t", schema(), 1000).with_max_tuple(tuple - 1);
            let e = data
                .chunks(size)
                .map(|c| p.push(c))
                .find_map(Result::err)
                .expect("a tuple over the limit was taken");
            assert_eq!(e.sqlstate, "54000", "messages of {size} bytes");
            let mut p = BinaryParser::new("t", schema(), 1000).with_max_tuple(tuple);
            for c in data.chunks(size) {
                p.push(c).unwrap();
            }
            assert_eq!(p.finish().unwrap().unwrap().num_rows(), 2);
        }
    }

    fn code(data: &[u8]) -> (&'static str, String) {
        let e = parse_in(&[data]).expect_err("bad data accepted");
        (e.sqlstate, e.message)
    }

    #[test]
    fn bad_streams_get_postgres_errors() {
        let data = stream();
        assert_eq!(code(b"").0, "22P04");
        assert_eq!(code(b"PGCOPY\nX").1, "COPY file signature not recognized");
        // Truncated inside the second tuple.
        assert_eq!(
            code(&data[..data.len() - 10]).1,
            "unexpected EOF in COPY data"
        );
        // Without the trailer the data simply ends.
        assert_eq!(
            parse_in(&[&data[..data.len() - 2]]).unwrap()[0].num_rows(),
            2
        );
        let mut after = data.clone();
        after.push(0);
        assert_eq!(after.len(), data.len() + 1);
        assert_eq!(code(&after).1, "received copy data after EOF marker");
        // A field count that is not the table's.
        let header = 19 + 4;
        let mut count = data.clone();
        count[header..header + 2].copy_from_slice(&5i16.to_be_bytes());
        assert_eq!(
            code(&count),
            ("22P04", "row field count is 5, expected 6".into())
        );
        // An int4 of 3 bytes.
        let mut short = data[..header + 2].to_vec();
        field(&mut short, Some(&[0, 0, 1]));
        assert_eq!(code(&short).0, "22P04");
        let mut wrong = data[..header + 2].to_vec();
        field(&mut wrong, Some(&[0, 0, 1]));
        wrong.extend_from_slice(&data[header + 2 + 8..]);
        let e = parse_in(&[&wrong]).expect_err("a 3-byte int4");
        assert_eq!(e.sqlstate, "22P03");
        assert_eq!(e.context.as_deref(), Some("COPY t, line 1, column i"));
        // Invalid UTF-8 in text.
        let mut utf8 = data[..header + 2].to_vec();
        field(&mut utf8, Some(&1i32.to_be_bytes()));
        field(&mut utf8, Some(&[0xff]));
        utf8.extend_from_slice(&data[header + 2 + 8 + 10..]);
        assert_eq!(code(&utf8).0, "22021");
        // NULL into the NOT NULL column.
        let mut null = data[..header + 2].to_vec();
        field(&mut null, None);
        null.extend_from_slice(&data[header + 2 + 8..]);
        assert_eq!(code(&null).0, "23502");
        // A negative length other than -1.
        let mut size = data[..header + 2].to_vec();
        size.extend_from_slice(&(-7i32).to_be_bytes());
        assert_eq!(code(&size).1, "invalid field size");
    }

    #[test]
    fn damaged_streams_never_panic() {
        let data = stream();
        // A small deterministic generator: the same cases on every run.
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..5000 {
            let mut damaged = data.clone();
            for _ in 0..1 + next() % 4 {
                let at = (next() % damaged.len() as u64) as usize;
                match next() % 3 {
                    0 => damaged[at] = next() as u8,
                    1 => damaged.truncate(at),
                    _ => damaged.insert(at, next() as u8),
                }
                if damaged.is_empty() {
                    break;
                }
            }
            let cut = (next() % (damaged.len() as u64 + 1)) as usize;
            // Ok or Err, never a panic.
            let _ = parse_in(&[&damaged[..cut], &damaged[cut..]]);
        }
    }

    #[test]
    fn numerics_round_to_the_column_scale() {
        let words = |w: &[u16]| w.iter().flat_map(|w| w.to_be_bytes()).collect::<Vec<u8>>();
        // 1.005 → 1.01 (half away from zero), 0.0001 → 0.00, 123456789.5 overflows (10,2).
        assert_eq!(numeric(&words(&[2, 0, 0, 3, 1, 50]), 10, 2), Ok(101));
        assert_eq!(numeric(&words(&[1, 0xffff, 0, 4, 1]), 10, 2), Ok(0));
        assert_eq!(
            numeric(&words(&[3, 2, 0, 1, 1, 2345, 6789]), 10, 2),
            Err(Bad::NumericOverflow)
        );
        assert_eq!(numeric(&words(&[0, 0, 0, 0]), 10, 2), Ok(0));
        // 50000 (zeros after the digits) and -12.5 (a point inside them).
        assert_eq!(numeric(&words(&[1, 1, 0, 0, 5]), 10, 2), Ok(5_000_000));
        assert_eq!(
            numeric(&words(&[2, 0, 0x4000, 1, 12, 5000]), 10, 2),
            Ok(-1250)
        );
        assert!(numeric(&words(&[1, 0, 0x1234, 0, 1]), 10, 2).is_err());
    }
}
