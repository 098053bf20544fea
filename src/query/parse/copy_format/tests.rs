//! Tests of COPY data parsing through [`CopyParser`], plus the few internals worth testing on
//! their own.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Instant;

use arrow::array::{Array, AsArray};
use arrow::compute::concat_batches;
use arrow::datatypes::{
    ArrowPrimitiveType, DataType, Date32Type, Decimal128Type, Field, Float32Type, Float64Type,
    Int16Type, Int32Type, Int64Type, Int8Type, Schema, SchemaRef, Time32MillisecondType,
    Time32SecondType, Time64MicrosecondType, Time64NanosecondType, TimeUnit,
    TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType,
};
use arrow::record_batch::RecordBatch;

use super::byte_set::ByteSet;
use super::value::{parse_f32, parse_f64};
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
fn one<T: ArrowPrimitiveType>(data_type: DataType, input: &str) -> Result<T::Native, CopyError> {
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
    let mut parser = CopyParser::new("t", schema.clone(), CopyOptions::text(), 10).with_max_line(8);
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
