//! One output column: the Arrow type it fills, its buffers, and the error a rejected value
//! becomes.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BinaryBuilder, BooleanArray, BooleanBufferBuilder, LargeStringBuilder,
    NullBufferBuilder, PrimitiveArray, RecordBatch, RecordBatchOptions, StringBuilder,
};
use arrow::buffer::{NullBuffer, ScalarBuffer};
use arrow::datatypes::{
    ArrowPrimitiveType, DataType, Date32Type, Decimal128Type, Field, Float32Type, Float64Type,
    Int16Type, Int32Type, Int64Type, Int8Type, SchemaRef, Time32MillisecondType, Time32SecondType,
    Time64MicrosecondType, Time64NanosecondType, TimeUnit, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType,
};

use super::error::{internal_error, printable, CopyError};
use super::value::{
    invalid_encoding, parse_bool, parse_bytea, parse_date, parse_decimal, parse_f32, parse_f64,
    parse_int, parse_time, parse_timestamp, text, Bad,
};

/// Rows to reserve column buffers for: a full batch, but not absurdly much for a huge one.
fn preallocated_rows(batch_rows: usize) -> usize {
    batch_rows.min(64 * 1024)
}

/// The columns of `schema`, with room for a batch of `batch_rows` rows; the error is the first
/// column type COPY cannot fill (the parsers report it on their first call).
pub(super) fn columns(schema: &SchemaRef, batch_rows: usize) -> (Vec<Column>, Option<CopyError>) {
    let capacity = preallocated_rows(batch_rows);
    let mut error = None;
    let mut columns = Vec::with_capacity(schema.fields().len());
    for field in schema.fields() {
        match Column::new(field, capacity) {
            Ok(column) => columns.push(column),
            Err(e) => {
                error.get_or_insert(e);
            }
        }
    }
    (columns, error)
}

/// The `rows` rows the columns hold as a batch of `schema`; the columns start over with room
/// for the next batch of `batch_rows`.
pub(super) fn take_batch(
    schema: &SchemaRef,
    columns: &mut [Column],
    rows: usize,
    batch_rows: usize,
) -> Result<RecordBatch, CopyError> {
    let capacity = preallocated_rows(batch_rows);
    let arrays: Vec<ArrayRef> = columns
        .iter_mut()
        .map(|column| column.finish(capacity))
        .collect();
    let options = RecordBatchOptions::new().with_row_count(Some(rows));
    RecordBatch::try_new_with_options(schema.clone(), arrays, &options).map_err(internal_error)
}

/// One output column: its buffers and how its text is read.
pub(super) struct Column {
    pub(super) name: String,
    pub(super) nullable: bool,
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
    pub(super) fn new(field: &Field, capacity: usize) -> Result<Self, CopyError> {
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

    #[inline]
    pub(super) fn append_null(&mut self) {
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
    #[inline]
    pub(super) fn append(&mut self, value: &[u8]) -> Result<(), Bad> {
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

    /// Reads `value` in the PostgreSQL binary send format of the column's type (`int2` for
    /// Arrow `Int8`, as clients are told) and appends it; on error nothing is appended.
    pub(super) fn append_binary(&mut self, value: &[u8]) -> Result<(), Bad> {
        use super::value::recv as b;
        match &mut self.values {
            Values::Boolean(values) => values.append(b::fixed::<1>(value)?[0] != 0),
            Values::Int8(values) => {
                let v = i16::from_be_bytes(b::fixed(value)?);
                values.push(i8::try_from(v).map_err(|_| {
                    Bad::Other(
                        "22003",
                        format!("value \"{v}\" is out of range for type smallint"),
                    )
                })?)
            }
            Values::Int16(values) => values.push(i16::from_be_bytes(b::fixed(value)?)),
            Values::Int32(values) => values.push(i32::from_be_bytes(b::fixed(value)?)),
            Values::Int64(values) => values.push(i64::from_be_bytes(b::fixed(value)?)),
            Values::Float32(values) => values.push(f32::from_be_bytes(b::fixed(value)?)),
            Values::Float64(values) => values.push(f64::from_be_bytes(b::fixed(value)?)),
            Values::Utf8(builder) => {
                builder.append_value(b::text(value)?);
                return Ok(());
            }
            Values::LargeUtf8(builder) => {
                builder.append_value(b::text(value)?);
                return Ok(());
            }
            Values::Binary(builder, _) => {
                builder.append_value(value);
                return Ok(());
            }
            Values::Date32(values) => values.push(b::date(value)?),
            Values::Timestamp(values, digits) => values.push(b::timestamp(value, *digits)?),
            Values::Time32(values, digits) => {
                let time = b::time(value, *digits)?;
                values.push(i32::try_from(time).map_err(|_| Bad::FieldRange)?)
            }
            Values::Time64(values, digits) => values.push(b::time(value, *digits)?),
            Values::Decimal128(values, precision, scale) => {
                values.push(b::numeric(value, *precision, *scale)?)
            }
        }
        self.nulls.append_non_null();
        Ok(())
    }

    /// The error for a binary value this column rejected (PostgreSQL's CONTEXT names the
    /// column but not the value).
    pub(super) fn describe_binary(&self, bad: Bad, table: &str, line: u64) -> CopyError {
        let ty = self.type_name;
        let (sqlstate, message) = match bad {
            Bad::Other(sqlstate, message) => (sqlstate, message),
            Bad::Encoding => (
                "22021",
                "invalid byte sequence for encoding \"UTF8\"".into(),
            ),
            Bad::NumericOverflow => ("22003", "numeric field overflow".into()),
            Bad::DateRange => ("22008", "date out of range".into()),
            Bad::TimestampRange => ("22008", "timestamp out of range".into()),
            Bad::FieldRange => ("22008", "time out of range".into()),
            Bad::IntRange | Bad::FloatRange => {
                ("22003", format!("value out of range for type {ty}"))
            }
            Bad::Syntax | Bad::TimeZoneRange => (
                "22P03",
                format!("incorrect binary data format for type {ty}"),
            ),
        };
        let context = format!("COPY {table}, line {line}, column {}", self.name);
        CopyError::new(sqlstate, message, Some(context))
    }

    /// The error for a value this column rejected.
    pub(super) fn describe(&self, bad: Bad, value: &[u8], table: &str, line: u64) -> CopyError {
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
    pub(super) fn finish(&mut self, capacity: usize) -> ArrayRef {
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
