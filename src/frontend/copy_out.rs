//! `COPY ... TO STDOUT`: result batches written as PostgreSQL's COPY data in its `text`, `csv`
//! or `binary` format, one `CopyData` message per row as PostgreSQL sends them (clients such
//! as rust-postgres' binary reader expect a whole row in each message).
//!
//! Values are encoded exactly as a result set encodes them ([`super::encode`]), so COPY prints
//! what SELECT shows: `t`/`f`, `2024-01-10 09:30:00.5`, PostgreSQL's float and numeric text,
//! and each type's binary send format. This module adds the framing of each format:
//!
//! * **text**: fields separated by the delimiter, rows ended by `\n`, NULL written as the NULL
//!   string (`\N`), and in values a backslash, the delimiter and the control characters
//!   `\b \f \n \r \t \v` escaped with a backslash (PostgreSQL's `CopyAttributeOut`).
//! * **csv**: a value is quoted when it contains the delimiter, the quote, `\r` or `\n`, equals
//!   the NULL string, is `\.` alone in a one-column row, or its column is in FORCE_QUOTE; in a
//!   quoted value the quote and the escape are preceded by the escape. NULL is the NULL
//!   string, unquoted (empty by default).
//! * **binary**: the signature, flags 0 and an empty header extension before the first row;
//!   per row a 16-bit field count and each field's 32-bit length (-1 for NULL) and bytes; a
//!   16-bit -1 after the last row.
//!
//! With HEADER, text and csv start with a row of the column names (PostgreSQL 15), sent as a
//! message of its own and not counted in `COPY n`.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use bytes::{BufMut, Bytes, BytesMut};
use pgwire::api::portal::Format;
use pgwire::api::results::FieldInfo;

use super::encode::{encoded_rows, fields, pg_wire_columns};
use crate::query::parse::copy_format::{CopyFormat, CopyOptions, BINARY_SIGNATURE};
use crate::query::QueryError;
use crate::sqlstate::SqlState;

/// Writes the rows of one `COPY ... TO STDOUT`.
pub struct CopyEncoder {
    options: CopyOptions,
    fields: Arc<Vec<FieldInfo>>,
    format: Format,
    names: Vec<String>,
    force_quote: Vec<bool>,
    /// Bytes to put in front of the next message (the binary header).
    prefix: Option<BytesMut>,
    rows: u64,
}

impl CopyEncoder {
    /// An encoder of rows of `schema` (whose field names are the column names). Fails with
    /// 42703 for a FORCE_QUOTE column the rows do not have, and with 0A000 for a column type
    /// that has no PostgreSQL form.
    pub fn new(
        schema: &SchemaRef,
        options: CopyOptions,
        force_quote: &[String],
    ) -> Result<Self, QueryError> {
        let format = match options.format {
            CopyFormat::Binary => Format::UnifiedBinary,
            _ => Format::UnifiedText,
        };
        let fields = fields(schema, &format).map_err(|e| {
            QueryError::other(
                SqlState::FEATURE_NOT_SUPPORTED,
                format!("cannot COPY this result: {e}"),
            )
        })?;
        let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
        let mut quoted = vec![false; names.len()];
        for wanted in force_quote {
            let index = names.iter().position(|n| n == wanted).ok_or_else(|| {
                QueryError::other(
                    SqlState::UNDEFINED_COLUMN,
                    format!("FORCE_QUOTE column \"{wanted}\" not referenced by COPY"),
                )
            })?;
            quoted[index] = true;
        }
        Ok(CopyEncoder {
            options,
            fields: Arc::new(fields),
            format,
            names,
            force_quote: quoted,
            prefix: None,
            rows: 0,
        })
    }

    /// The CopyOutResponse's overall format: 0 text, 1 binary.
    pub fn format_code(&self) -> i8 {
        match self.options.format {
            CopyFormat::Binary => 1,
            _ => 0,
        }
    }

    /// Columns per row.
    pub fn columns(&self) -> usize {
        self.names.len()
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// The message that opens the data, if the format has one of its own (the HEADER row).
    pub fn begin(&mut self) -> Option<Bytes> {
        match self.options.format {
            CopyFormat::Binary => {
                let mut header = BytesMut::with_capacity(19);
                header.put_slice(BINARY_SIGNATURE);
                header.put_i32(0);
                header.put_i32(0);
                self.prefix = Some(header);
                None
            }
            _ if self.options.header => {
                let mut line = BytesMut::new();
                let single = self.names.len() == 1;
                for (i, name) in self.names.iter().enumerate() {
                    if i > 0 {
                        line.put_u8(self.options.delimiter);
                    }
                    self.put_value(&mut line, name.as_bytes(), false, single);
                }
                line.put_u8(b'\n');
                Some(line.freeze())
            }
            _ => None,
        }
    }

    /// One message per row of `batch`.
    pub fn batch(&mut self, batch: &RecordBatch) -> Result<Vec<Bytes>, QueryError> {
        let batch =
            pg_wire_columns(batch, &self.format).map_err(|e| QueryError::DataFusion(e.into()))?;
        let rows = encoded_rows(self.fields.clone(), batch);
        let mut out = Vec::with_capacity(rows.len());
        let single = self.names.len() == 1;
        for row in rows {
            let row = row.map_err(|e| {
                QueryError::other(
                    SqlState::INTERNAL_ERROR,
                    format!("cannot encode a row: {e}"),
                )
            })?;
            let mut message = self.prefix.take().unwrap_or_default();
            if self.options.format == CopyFormat::Binary {
                message.reserve(2 + row.data.len());
                message.put_i16(row.field_count);
                message.put_slice(&row.data);
            } else {
                message.reserve(row.data.len() + 8);
                let mut data = &row.data[..];
                for i in 0..row.field_count as usize {
                    if i > 0 {
                        message.put_u8(self.options.delimiter);
                    }
                    let len = i32::from_be_bytes([data[0], data[1], data[2], data[3]]);
                    data = &data[4..];
                    if len < 0 {
                        message.put_slice(self.options.null.as_bytes());
                        continue;
                    }
                    let (value, rest) = data.split_at(len as usize);
                    data = rest;
                    let force = self.force_quote.get(i).copied().unwrap_or(false);
                    self.put_value(&mut message, value, force, single);
                }
                message.put_u8(b'\n');
            }
            out.push(message.freeze());
            self.rows += 1;
        }
        Ok(out)
    }

    /// The message that closes the data, if the format has one (the binary trailer).
    pub fn end(&mut self) -> Option<Bytes> {
        if self.options.format != CopyFormat::Binary {
            return None;
        }
        let mut message = self.prefix.take().unwrap_or_default();
        message.put_i16(-1);
        Some(message.freeze())
    }

    /// A non-NULL value in the text or csv format.
    fn put_value(&self, out: &mut BytesMut, value: &[u8], force: bool, single: bool) {
        let o = &self.options;
        if o.format == CopyFormat::Csv {
            let quote = force
                || value == o.null.as_bytes()
                || (single && value == b"\\.")
                || value
                    .iter()
                    .any(|&c| c == o.delimiter || c == o.quote || c == b'\n' || c == b'\r');
            if !quote {
                out.put_slice(value);
                return;
            }
            out.put_u8(o.quote);
            let mut start = 0;
            for (i, &c) in value.iter().enumerate() {
                if c == o.quote || c == o.escape {
                    out.put_slice(&value[start..i]);
                    out.put_u8(o.escape);
                    start = i;
                }
            }
            out.put_slice(&value[start..]);
            out.put_u8(o.quote);
            return;
        }
        let mut start = 0;
        for (i, &c) in value.iter().enumerate() {
            let escaped = match c {
                0x08 => b'b',
                0x0c => b'f',
                b'\n' => b'n',
                b'\r' => b'r',
                b'\t' => b't',
                0x0b => b'v',
                b'\\' => b'\\',
                c if c == o.delimiter => c,
                _ => continue,
            };
            out.put_slice(&value[start..i]);
            out.put_u8(b'\\');
            out.put_u8(escaped);
            start = i + 1;
        }
        out.put_slice(&value[start..]);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, BooleanArray, Int32Array, RecordBatch, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};

    use super::*;
    use crate::sqlstate::ErrorCode;

    fn batch() -> RecordBatch {
        let schema = Schema::new(vec![
            Field::new("id", DataType::Int32, true),
            Field::new("s", DataType::Utf8, true),
            Field::new("b", DataType::Boolean, true),
        ]);
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int32Array::from(vec![Some(1), None, Some(3)])),
            Arc::new(StringArray::from(vec![
                Some("a\tb\\c\nd"),
                Some(""),
                Some("x,\"y\""),
            ])),
            Arc::new(BooleanArray::from(vec![Some(true), Some(false), None])),
        ];
        RecordBatch::try_new(Arc::new(schema), columns).unwrap()
    }

    fn text(options: CopyOptions, force: &[String]) -> String {
        let b = batch();
        let mut e = CopyEncoder::new(&b.schema(), options, force).unwrap();
        let mut out = Vec::new();
        if let Some(h) = e.begin() {
            out.extend_from_slice(&h);
        }
        for m in e.batch(&b).unwrap() {
            out.extend_from_slice(&m);
        }
        assert!(e.end().is_none());
        assert_eq!(e.rows(), 3);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn text_format_escapes_like_postgres() {
        assert_eq!(
            text(CopyOptions::text(), &[]),
            "1\ta\\tb\\\\c\\nd\tt\n\\N\t\tf\n3\tx,\"y\"\t\\N\n"
        );
        let mut o = CopyOptions::text();
        o.delimiter = b'|';
        o.null = "NULL".into();
        o.header = true;
        assert_eq!(
            text(o, &[]),
            "id|s|b\n1|a\\tb\\\\c\\nd|t\nNULL||f\n3|x,\"y\"|NULL\n"
        );
    }

    #[test]
    fn csv_format_quotes_like_postgres() {
        let mut o = CopyOptions::csv();
        o.header = true;
        assert_eq!(
            text(o.clone(), &[]),
            "id,s,b\n1,\"a\tb\\c\nd\",t\n,\"\",f\n3,\"x,\"\"y\"\"\",\n"
        );
        o.header = false;
        assert_eq!(
            text(o.clone(), &["b".into()]),
            "1,\"a\tb\\c\nd\",\"t\"\n,\"\",\"f\"\n3,\"x,\"\"y\"\"\",\n"
        );
        o.quote = b'\'';
        o.escape = b'\\';
        assert_eq!(text(o, &[]), "1,'a\tb\\\\c\nd',t\n,'',f\n3,'x,\"y\"',\n");
        let schema = Arc::new(Schema::new(vec![Field::new("s", DataType::Utf8, true)]));
        let b = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(StringArray::from(vec!["\\.", "ok"])) as ArrayRef],
        )
        .unwrap();
        let mut e = CopyEncoder::new(&schema, CopyOptions::csv(), &[]).unwrap();
        let rows = e.batch(&b).unwrap();
        assert_eq!(&rows[0][..], b"\"\\.\"\n");
        assert_eq!(&rows[1][..], b"ok\n");
    }

    #[test]
    fn binary_format_frames_rows() {
        let b = batch();
        let mut e = CopyEncoder::new(&b.schema(), CopyOptions::binary(), &[]).unwrap();
        assert!(e.begin().is_none());
        let rows = e.batch(&b).unwrap();
        assert_eq!(rows.len(), 3);
        // The first row carries the header: signature, flags, extension length.
        assert_eq!(&rows[0][..11], BINARY_SIGNATURE);
        assert_eq!(&rows[0][11..19], &[0u8; 8]);
        let row = &rows[0][19..];
        assert_eq!(&row[..2], &3i16.to_be_bytes());
        assert_eq!(&row[2..6], &4i32.to_be_bytes());
        assert_eq!(&row[6..10], &1i32.to_be_bytes());
        // Row 2: id is NULL.
        assert_eq!(&rows[1][2..6], &(-1i32).to_be_bytes());
        assert_eq!(&e.end().unwrap()[..], &(-1i16).to_be_bytes());
        // No rows at all: header and trailer in one message.
        let mut e = CopyEncoder::new(&b.schema(), CopyOptions::binary(), &[]).unwrap();
        e.begin();
        assert_eq!(e.end().unwrap().len(), 21);
        assert_eq!(e.rows(), 0);
    }

    #[test]
    fn force_quote_of_an_unknown_column_is_42703() {
        let b = batch();
        let Err(e) = CopyEncoder::new(&b.schema(), CopyOptions::csv(), &["nope".into()]) else {
            panic!("accepted an unknown FORCE_QUOTE column");
        };
        assert_eq!(e.sqlstate(), SqlState::UNDEFINED_COLUMN);
    }
}
