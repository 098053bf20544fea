//! COPY data: rows of a table with one column of each common type (LONG, INT, DOUBLE, SYMBOL,
//! STRING, DATE, TIMESTAMP, BOOL), written in text or CSV, with fields swapped for garbage,
//! the stream cut or spliced, and sent in random chunks (splitting lines, escapes, quotes and
//! UTF-8 characters).
//!
//! Properties: over pgwire a COPY whose rows are all valid is accepted and exactly those rows
//! are visible; any other COPY is either accepted whole (as many rows visible as it reported)
//! or refused with a data-error SQLSTATE and none of its rows visible; the connection and the
//! server survive either way. In process, the COPY parser never panics and its result does not
//! depend on how the data was chunked.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Field as ArrowField, Schema, TimeUnit};
use bytes::Bytes;
use chrono::{NaiveDate, NaiveDateTime};
use futures::SinkExt;
use porpoise::query::parse::copy_format::{CopyOptions, CopyParser};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestCaseError;

use super::{check, runner, runtime, still_answers, Fuzzed, CASE_TIMEOUT};

/// A field: a value (None = NULL) written the way the format wants, or text that may not parse.
#[derive(Debug, Clone)]
enum Field<T> {
    Value(Option<T>),
    Garbage(Vec<u8>),
}

/// One data row; `id` is its position.
#[derive(Debug, Clone)]
struct Row {
    k: Field<i32>,
    d: Field<f64>,
    s: Field<String>,
    v: Field<String>,
    dt: Field<NaiveDate>,
    ts: Field<NaiveDateTime>,
    b: Field<bool>,
    /// A number picking among the spellings of each value.
    spelling: u8,
}

/// Table columns, after `id LONG` (the row number, always sent).
const COLUMNS: &[&str] = &["k", "d", "s", "v", "dt", "ts", "b"];

fn field<T: std::fmt::Debug + Clone + 'static>(
    value: impl Strategy<Value = T> + 'static,
    garbage: impl Strategy<Value = Vec<u8>> + 'static,
) -> BoxedStrategy<Field<T>> {
    prop_oneof![
        12 => value.prop_map(|v| Field::Value(Some(v))),
        2 => Just(Field::Value(None)),
        1 => garbage.prop_map(Field::Garbage),
    ]
    .boxed()
}

fn text(s: &'static [&'static str]) -> impl Strategy<Value = Vec<u8>> {
    prop::sample::select(s).prop_map(|s| s.as_bytes().to_vec())
}

/// Garbage any column may get: odd text, delimiters and quotes, invalid UTF-8, NUL.
fn any_garbage() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        "\\PC{0,8}".prop_map(String::into_bytes),
        text(&["", " ", "\\", "\\N", "\"", "\"\"", ",", "\t", "\n", "\r", "\\.", "\\x", "\\777"]),
        prop::collection::vec(any::<u8>(), 0..8),
        Just(vec![0xff, 0xfe]),
        Just(vec![0xe2, 0x82]),
        Just(b"a\0b".to_vec()),
    ]
    .boxed()
}

fn int_garbage() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        text(&[
            "abc",
            "1.5",
            "2147483648",
            "-2147483649",
            "99999999999999999999",
            "0x",
            "0x1g",
            "1_",
            "_1",
            "--1",
            "+",
            "1e3",
            " 1 2 ",
        ]),
        any_garbage(),
    ]
    .boxed()
}

fn float_garbage() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        text(&[
            "1e400",
            "-1e400",
            "1e-400",
            "1.2.3",
            "e5",
            "inf inity",
            "0x1p3",
            ".",
            "-"
        ]),
        any_garbage(),
    ]
    .boxed()
}

fn date_garbage() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        text(&[
            "2023-02-29",
            "2023-13-01",
            "2023-00-10",
            "2023-01-32",
            "10000-01-01",
            "2023.1.1x",
            "2023/01/01",
            "today",
            "2023-01",
            "-2023-01-01",
            "99999999-01-01",
        ]),
        any_garbage(),
    ]
    .boxed()
}

fn timestamp_garbage() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        text(&[
            "2023-01-01 24:00:01",
            "2023-01-01 23:60:00",
            "2023-01-01 12:00:00+25",
            "2023-01-01 12:00:00.9999999999999",
            "2023-01-01T",
            "2023-01-01 12",
            "275760-09-13 00:00:00",
            "9999999-01-01 00:00:00",
            "2023-01-01 12:00:00 Europe/Paris",
        ]),
        any_garbage(),
    ]
    .boxed()
}

fn bool_garbage() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![text(&["maybe", "o", "2", "tr ue", "yesno"]), any_garbage()].boxed()
}

/// Strings with the characters COPY must escape or quote.
fn copy_string() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,12}",
        "[a-z\\\\\t\n\r\",. ]{0,8}",
        Just(String::new()),
        Just("\\N".to_owned()),
        Just("\\.".to_owned()),
    ]
}

fn date() -> impl Strategy<Value = NaiveDate> {
    (1i32..=9999, 1u32..=12, 1u32..=31)
        .prop_filter_map("a real day", |(y, m, d)| NaiveDate::from_ymd_opt(y, m, d))
}

fn timestamp() -> impl Strategy<Value = NaiveDateTime> {
    (date(), 0u32..24, 0u32..60, 0u32..60, 0u32..1000)
        .prop_filter_map("a real time", |(d, h, m, s, ms)| {
            d.and_hms_milli_opt(h, m, s, ms)
        })
}

fn double() -> impl Strategy<Value = f64> {
    prop_oneof![
        4 => any::<f64>(),
        2 => (-1_000_000i64..1_000_000).prop_map(|n| n as f64 / 8.0),
        1 => prop::sample::select(vec![
            0.0, -0.0, f64::MAX, f64::MIN, f64::MIN_POSITIVE, 5e-324, f64::INFINITY,
            f64::NEG_INFINITY, f64::NAN,
        ]),
    ]
}

fn row() -> impl Strategy<Value = Row> {
    (
        field(any::<i32>(), int_garbage()),
        field(double(), float_garbage()),
        field(copy_string(), any_garbage()),
        field(copy_string(), any_garbage()),
        field(date(), date_garbage()),
        field(timestamp(), timestamp_garbage()),
        field(any::<bool>(), bool_garbage()),
        any::<u8>(),
    )
        .prop_map(|(k, d, s, v, dt, ts, b, spelling)| Row {
            k,
            d,
            s,
            v,
            dt,
            ts,
            b,
            spelling,
        })
}

/// Edits of the whole byte stream.
#[derive(Debug, Clone)]
enum StreamEdit {
    Cut(Index),
    Splice(Index, Vec<u8>),
}

/// One COPY: the format, the columns named (a permutation of a subset, `id` always among
/// them), the rows, a CSV header, an end-of-data marker, stream edits and chunk boundaries.
#[derive(Debug, Clone)]
struct CopyCase {
    csv: bool,
    columns: Option<Vec<&'static str>>,
    rows: Vec<Row>,
    header: bool,
    end_marker: bool,
    edits: Vec<StreamEdit>,
    chunks: Vec<Index>,
}

fn copy_case() -> impl Strategy<Value = CopyCase> {
    let columns = prop::option::of(
        prop::sample::subsequence(COLUMNS.to_vec(), 0..=COLUMNS.len()).prop_flat_map(|cols| {
            let mut all = vec!["id"];
            all.extend(cols);
            Just(all).prop_shuffle()
        }),
    );
    let edit = prop_oneof![
        any::<Index>().prop_map(StreamEdit::Cut),
        (
            any::<Index>(),
            prop_oneof![any_garbage(), text(&["\n", "\\.\n", "\t", ",", "\""])]
        )
            .prop_map(|(i, b)| StreamEdit::Splice(i, b)),
    ];
    (
        any::<bool>(),
        columns,
        prop::collection::vec(row(), 0..24),
        any::<bool>(),
        prop::bool::weighted(0.2),
        prop_oneof![3 => Just(Vec::new()), 1 => prop::collection::vec(edit, 1..3)],
        prop::collection::vec(any::<Index>(), 0..6),
    )
        .prop_map(
            |(csv, columns, rows, header, end_marker, edits, chunks)| CopyCase {
                csv,
                columns,
                rows,
                header: header && csv,
                end_marker,
                edits,
                chunks,
            },
        )
}

/// The raw bytes of one field in `csv` or text format (`None`: NULL).
fn render_field<T>(f: &Field<T>, csv: bool, spell: impl Fn(&T) -> String) -> Vec<u8> {
    match f {
        Field::Garbage(g) => g.clone(),
        Field::Value(None) if csv => Vec::new(),
        Field::Value(None) => b"\\N".to_vec(),
        Field::Value(Some(v)) => escape(&spell(v), csv).into_bytes(),
    }
}

fn escape(s: &str, csv: bool) -> String {
    if csv {
        let special = s.is_empty() || s == "\\." || s.contains([',', '"', '\n', '\r', '\\']);
        if special {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_owned()
        }
    } else {
        let mut out = String::with_capacity(s.len());
        for c in s.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\t' => out.push_str("\\t"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                c => out.push(c),
            }
        }
        out
    }
}

fn spell_bool(b: bool, spelling: u8) -> String {
    let (t, f) = [
        ("true", "false"),
        ("t", "f"),
        ("TRUE", "FALSE"),
        ("yes", "no"),
        ("on", "off"),
        ("1", "0"),
        (" True ", " fAlse"),
    ][spelling as usize % 7];
    (if b { t } else { f }).to_owned()
}

fn spell_double(d: f64, spelling: u8) -> String {
    if d.is_nan() {
        ["NaN", "nan"][spelling as usize % 2].to_owned()
    } else if d.is_infinite() {
        let s = ["Infinity", "inf"][spelling as usize % 2];
        if d < 0.0 {
            format!("-{s}")
        } else {
            s.to_owned()
        }
    } else if spelling.is_multiple_of(2) {
        format!("{d:?}")
    } else {
        format!("{d:e}")
    }
}

impl Row {
    /// The fields in the order of `columns`.
    fn render(&self, id: usize, columns: &[&str], csv: bool) -> Vec<u8> {
        let sp = self.spelling;
        let delimiter = if csv { b',' } else { b'\t' };
        let mut line = Vec::new();
        for (i, c) in columns.iter().enumerate() {
            if i > 0 {
                line.push(delimiter);
            }
            line.extend(match *c {
                "id" => id.to_string().into_bytes(),
                "k" => render_field(&self.k, csv, |k| {
                    if sp.is_multiple_of(3) && *k >= 0 {
                        format!("+{k}")
                    } else {
                        k.to_string()
                    }
                }),
                "d" => render_field(&self.d, csv, |d| spell_double(*d, sp)),
                "s" => render_field(&self.s, csv, String::clone),
                "v" => render_field(&self.v, csv, String::clone),
                "dt" => render_field(&self.dt, csv, |d| {
                    d.format(if sp.is_multiple_of(2) {
                        "%Y-%m-%d"
                    } else {
                        "%Y.%m.%d"
                    })
                    .to_string()
                }),
                "ts" => render_field(&self.ts, csv, |t| {
                    t.format(if sp.is_multiple_of(2) {
                        "%Y-%m-%d %H:%M:%S%.3f"
                    } else {
                        "%Y-%m-%dT%H:%M:%S%.f"
                    })
                    .to_string()
                }),
                _ => render_field(&self.b, csv, |b| spell_bool(*b, sp)),
            });
        }
        line.push(b'\n');
        line
    }

    fn is_clean(&self) -> bool {
        fn clean<T>(f: &Field<T>) -> bool {
            matches!(f, Field::Value(_))
        }
        clean(&self.k)
            && clean(&self.d)
            && clean(&self.s)
            && clean(&self.v)
            && clean(&self.dt)
            && clean(&self.ts)
            && clean(&self.b)
    }
}

impl CopyCase {
    fn columns(&self) -> Vec<&'static str> {
        self.columns.clone().unwrap_or_else(|| {
            let mut all = vec!["id"];
            all.extend(COLUMNS);
            all
        })
    }

    /// Whether every row is valid and the stream untouched: then the COPY must succeed.
    fn is_clean(&self) -> bool {
        self.edits.is_empty() && self.rows.iter().all(Row::is_clean)
    }

    fn data(&self) -> Vec<u8> {
        let columns = self.columns();
        let mut data = Vec::new();
        if self.header {
            data.extend(columns.join(",").into_bytes());
            data.push(b'\n');
        }
        for (id, row) in self.rows.iter().enumerate() {
            data.extend(row.render(id, &columns, self.csv));
        }
        if self.end_marker {
            data.extend(b"\\.\n");
        }
        for edit in &self.edits {
            match edit {
                StreamEdit::Cut(i) => data.truncate(i.index(data.len() + 1)),
                StreamEdit::Splice(i, bytes) => {
                    let at = i.index(data.len() + 1);
                    data.splice(at..at, bytes.iter().copied());
                }
            }
        }
        data
    }

    /// The data cut at the chunk boundaries.
    fn chunks(&self) -> Vec<Vec<u8>> {
        let data = self.data();
        let mut cuts: Vec<usize> = self
            .chunks
            .iter()
            .map(|i| i.index(data.len() + 1))
            .collect();
        cuts.push(data.len());
        cuts.sort_unstable();
        let mut out = Vec::new();
        let mut start = 0;
        for cut in cuts {
            out.push(data[start..cut].to_vec());
            start = cut;
        }
        out
    }

    fn statement(&self, table: &str) -> String {
        let columns = match &self.columns {
            Some(c) => format!(" ({})", c.join(", ")),
            None => String::new(),
        };
        let options = match (self.csv, self.header) {
            (true, true) => " (format csv, header true)",
            (true, false) => " (format csv)",
            _ => "",
        };
        format!("copy {table}{columns} from stdin{options}")
    }
}

const SCHEMA: &str =
    "(id LONG, k INT, d DOUBLE, s SYMBOL, v STRING, dt DATE, ts TIMESTAMP, b BOOL)";

/// Sends the COPY; `Ok(count)` or the server's error.
async fn copy_in(
    client: &tokio_postgres::Client,
    statement: &str,
    chunks: Vec<Vec<u8>>,
) -> Result<u64, tokio_postgres::Error> {
    let sink = client.copy_in::<_, Bytes>(statement).await?;
    futures::pin_mut!(sink);
    for chunk in chunks {
        sink.send(Bytes::from(chunk)).await?;
    }
    sink.finish().await
}

/// The rows of `table` as `(id, fields...)`, ordered by id. (A COPY cut short may store a
/// row whose id is NULL.)
type Visible = (
    Option<i64>,
    Option<i32>,
    Option<f64>,
    Option<String>,
    Option<String>,
    Option<NaiveDate>,
    Option<NaiveDateTime>,
    Option<bool>,
);

async fn visible(
    client: &tokio_postgres::Client,
    table: &str,
) -> Result<Vec<Visible>, TestCaseError> {
    let rows = client
        .query(
            &format!("select id, k, d, s, v, dt, ts, b from {table} order by id"),
            &[],
        )
        .await
        .map_err(|e| TestCaseError::fail(format!("reading the table back: {e:?}")))?;
    Ok(rows
        .iter()
        .map(|r| {
            (
                r.get(0),
                r.get(1),
                r.get(2),
                r.get(3),
                r.get(4),
                r.get(5),
                r.get(6),
                r.get(7),
            )
        })
        .collect())
}

fn same_double(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => {
            a == b && a.is_sign_negative() == b.is_sign_negative() || a.is_nan() && b.is_nan()
        }
        (a, b) => a.is_none() && b.is_none(),
    }
}

/// The row the table should hold for `row`, given the columns the COPY named.
fn expected(id: usize, row: &Row, columns: &[&str]) -> Visible {
    fn value<T: Clone>(f: &Field<T>, named: bool) -> Option<T> {
        match (f, named) {
            (Field::Value(v), true) => v.clone(),
            _ => None,
        }
    }
    let has = |c: &str| columns.contains(&c);
    (
        Some(id as i64),
        value(&row.k, has("k")),
        value(&row.d, has("d")),
        value(&row.s, has("s")),
        value(&row.v, has("v")),
        value(&row.dt, has("dt")),
        value(&row.ts, has("ts")),
        value(&row.b, has("b")),
    )
}

async fn copy_property(
    client: &tokio_postgres::Client,
    table: &str,
    case: &CopyCase,
) -> Result<(), TestCaseError> {
    client
        .batch_execute(&format!("create table {table}{SCHEMA} partitioned by k"))
        .await
        .map_err(|e| TestCaseError::fail(format!("create table: {e:?}")))?;
    let statement = case.statement(table);
    let outcome = tokio::time::timeout(CASE_TIMEOUT, copy_in(client, &statement, case.chunks()))
        .await
        .map_err(|_| TestCaseError::fail("the COPY did not end within the deadline (a hang)"))?;
    let rows = visible(client, table).await?;
    match outcome {
        Ok(count) if case.is_clean() => {
            prop_assert_eq!(count as usize, case.rows.len());
            let columns = case.columns();
            prop_assert_eq!(rows.len(), case.rows.len());
            for (id, (got, row)) in rows.iter().zip(&case.rows).enumerate() {
                let want = expected(id, row, &columns);
                let same = got.0 == want.0
                    && got.1 == want.1
                    && same_double(got.2, want.2)
                    && got.3 == want.3
                    && got.4 == want.4
                    && got.5 == want.5
                    && got.6 == want.6
                    && got.7 == want.7;
                prop_assert!(same, "row {id}: stored {got:?}, sent {want:?}");
            }
        }
        Ok(count) => prop_assert_eq!(
            count as usize,
            rows.len(),
            "the COPY reported {} rows but {} are visible",
            count,
            rows.len()
        ),
        Err(e) => {
            let Some(db) = e.as_db_error() else {
                return Err(TestCaseError::fail(format!(
                    "the COPY failed without an ErrorResponse: {e:?}"
                )));
            };
            prop_assert!(
                !case.is_clean(),
                "a valid COPY was refused: {} {} ({:?})",
                db.code().code(),
                db.message(),
                db.where_()
            );
            let code = db.code().code();
            prop_assert!(
                code.starts_with("22")
                    || code.starts_with("23")
                    || code == "08P01"
                    || code == "0A000",
                "a bad COPY was refused with SQLSTATE {}: {}",
                code,
                db.message()
            );
            prop_assert!(
                rows.is_empty(),
                "a refused COPY left {} rows behind ({} {})",
                rows.len(),
                code,
                db.message()
            );
        }
    }
    Ok(())
}

#[test]
fn copy_is_all_or_nothing() {
    let server = Fuzzed::start();
    let rt = runtime();
    let client = rt.block_on(async {
        let client = server.connect().await.expect("connect");
        client
            .batch_execute(r#"create database "dfs://cp" partitioned by HASH([INT, 4])"#)
            .await
            .expect("set up");
        client
    });
    let table = std::cell::Cell::new(0u32);
    check(&mut runner(200), &copy_case(), |case| {
        table.set(table.get() + 1);
        let name = format!("\"dfs://cp\".\"t{}\"", table.get());
        rt.block_on(async {
            let result = copy_property(&client, &name, &case).await;
            server.alive(&case)?;
            result?;
            let _ = client.batch_execute(&format!("drop table {name}")).await;
            still_answers(&client).await
        })
    });
}

/// Every Arrow type COPY can fill, plus two it cannot.
fn arrow_type() -> impl Strategy<Value = DataType> {
    prop::sample::select(vec![
        DataType::Boolean,
        DataType::Int8,
        DataType::Int16,
        DataType::Int32,
        DataType::Int64,
        DataType::Float32,
        DataType::Float64,
        DataType::Utf8,
        DataType::LargeUtf8,
        DataType::Binary,
        DataType::Date32,
        DataType::Timestamp(TimeUnit::Second, None),
        DataType::Timestamp(TimeUnit::Millisecond, None),
        DataType::Timestamp(TimeUnit::Microsecond, None),
        DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
        DataType::Time32(TimeUnit::Second),
        DataType::Time32(TimeUnit::Millisecond),
        DataType::Time64(TimeUnit::Microsecond),
        DataType::Time64(TimeUnit::Nanosecond),
        DataType::Decimal128(10, 2),
        DataType::Decimal128(38, 10),
        DataType::Decimal128(5, 0),
        DataType::UInt32,
        DataType::Float16,
    ])
}

fn copy_options() -> impl Strategy<Value = CopyOptions> {
    let special = prop::sample::select(vec![
        b',', b'\t', b'|', b'"', b'\'', b'\\', b'\n', b'a', b' ', 0u8, 0x80,
    ]);
    (
        any::<bool>(),
        prop::option::weighted(0.2, special.clone()),
        prop::option::weighted(
            0.2,
            prop_oneof![
                Just(String::new()),
                Just("NULL".to_owned()),
                Just("\\N".to_owned()),
                "\\PC{0,3}"
            ],
        ),
        prop::bool::weighted(0.2),
        prop::option::weighted(0.2, special.clone()),
        prop::option::weighted(0.2, special),
    )
        .prop_map(|(csv, delimiter, null, header, quote, escape)| {
            let mut o = if csv {
                CopyOptions::csv()
            } else {
                CopyOptions::text()
            };
            if let Some(d) = delimiter {
                o.delimiter = d;
            }
            if let Some(n) = null {
                o.null = n;
            }
            o.header = header;
            if let Some(q) = quote {
                o.quote = q;
            }
            if let Some(e) = escape {
                o.escape = e;
            }
            o
        })
}

/// Data for the parser: rendered rows of printable text mixed with raw bytes.
fn parser_data() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        4 => "[0-9a-z.:+\\- ]{0,10}".prop_map(String::into_bytes),
        2 => text(&[",", "\t", "\n", "\r\n", "\r", "\"", "\\", "\\.", "\\.\n", "\\N", "\\x4", "\\101", "1", "-0", "2023-01-02", "12:30:00.5", "2023-01-02 12:30:00", "t", "1.5e3", "NaN", "\\x0a0b"]),
        1 => "\\PC{0,4}".prop_map(String::into_bytes),
        1 => prop::collection::vec(any::<u8>(), 0..6),
    ];
    prop::collection::vec(piece, 0..40).prop_map(|p| p.concat())
}

/// What parsing produced: all rows, or the error.
type Parsed = Result<Vec<RecordBatch>, (String, String, Option<String>)>;

fn parse_chunks(
    schema: &Arc<Schema>,
    options: &CopyOptions,
    batch_rows: usize,
    chunks: &[&[u8]],
) -> (Parsed, u64) {
    let mut parser = CopyParser::new("t", schema.clone(), options.clone(), batch_rows);
    let mut batches = Vec::new();
    let mut run = || -> Result<(), porpoise::query::parse::copy_format::CopyError> {
        for chunk in chunks {
            batches.extend(parser.push(chunk)?);
        }
        batches.extend(parser.finish()?);
        Ok(())
    };
    let result = run();
    let rows = parser.rows();
    match result {
        Ok(()) => (Ok(batches), rows),
        Err(e) => (Err((e.sqlstate.to_owned(), e.message, e.context)), rows),
    }
}

/// All rows of some batches as one batch, so differently cut batches compare equal.
fn concat(schema: &Arc<Schema>, batches: &[RecordBatch]) -> Option<RecordBatch> {
    if batches.is_empty() {
        return None;
    }
    arrow::compute::concat_batches(schema, batches).ok()
}

#[test]
fn copy_parser_never_panics_and_ignores_chunking() {
    let case = (
        prop::collection::vec((arrow_type(), any::<bool>()), 1..5),
        copy_options(),
        1usize..5,
        parser_data(),
        prop::collection::vec(any::<Index>(), 0..8),
    );
    check(
        &mut runner(3000),
        &case,
        |(types, options, batch_rows, data, cuts)| {
            let fields: Vec<ArrowField> = types
                .iter()
                .enumerate()
                .map(|(i, (t, nullable))| ArrowField::new(format!("c{i}"), t.clone(), *nullable))
                .collect();
            let schema = Arc::new(Schema::new(fields));
            let (whole, whole_rows) = parse_chunks(&schema, &options, batch_rows, &[&data]);
            let mut cuts: Vec<usize> = cuts.iter().map(|i| i.index(data.len() + 1)).collect();
            cuts.push(data.len());
            cuts.sort_unstable();
            let mut chunks: Vec<&[u8]> = Vec::new();
            let mut start = 0;
            for cut in cuts {
                chunks.push(&data[start..cut]);
                start = cut;
            }
            let (pieces, pieces_rows) = parse_chunks(&schema, &options, batch_rows, &chunks);
            match (&whole, &pieces) {
                (Ok(a), Ok(b)) => {
                    prop_assert_eq!(concat(&schema, a), concat(&schema, b));
                    let total: usize = a.iter().map(RecordBatch::num_rows).sum();
                    prop_assert_eq!(total as u64, whole_rows);
                    prop_assert!(a.iter().all(|b| b.num_rows() <= batch_rows));
                }
                (Err(a), Err(b)) => prop_assert_eq!(a, b),
                _ => prop_assert!(
                    false,
                    "one chunk gives {:?}, chunks {:?} give {:?}",
                    whole.as_ref().map(|b| b.len()),
                    chunks,
                    pieces.as_ref().map(|b| b.len())
                ),
            }
            prop_assert_eq!(whole_rows, pieces_rows);
            Ok(())
        },
    );
}
