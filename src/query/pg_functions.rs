//! PostgreSQL functions that drivers, ORMs and BI tools call and DataFusion lacks (or has with
//! another meaning):
//!
//! - `to_regtype(name)`: the oid of a built-in type by any of its names (`integer`, `int4`,
//!   `character varying`, `int4[]`), NULL for a type porpoise does not have (psycopg looks up
//!   `hstore` with it).
//! - `pg_get_serial_sequence(table, column)`: NULL, porpoise has no sequences.
//! - `to_char(timestamp, pattern)` with PostgreSQL's template patterns (`YYYY-MM-DD HH24:MI`),
//!   replacing DataFusion's chrono-pattern `to_char`.
//! - `json_build_object(k, v, ...)` as JSON text, and `pg_collation_is_visible(oid)` (true):
//!   SQLAlchemy's column reflection selects them (for identity columns and collations,
//!   which porpoise does not have).
//! - `pg_get_indexdef(...)`: NULL, porpoise has no indexes (there is never a row to ask
//!   about, but SQLAlchemy's index reflection names it).
//! - psql's `\dt+ \dn+ \df \dT \db`: `pg_size_pretty(bytes)`, `obj_description`,
//!   `col_description`, `shobj_description` (NULL: porpoise keeps no comments),
//!   `pg_function_is_visible`, `pg_type_is_visible` (true), `pg_tablespace_location` (empty),
//!   `pg_table_size` (0), `pg_get_function_result`/`_arguments` (NULL).
//! - `pg_typeof(x)`: PostgreSQL's name of the type of `x`.
//! - `localtimestamp`, `localtime`: the time now in UTC, without time zone.
//! - `clock_timestamp()`, `statement_timestamp()`, `transaction_timestamp()` and
//!   `localtimestamp`: the last three agree with `now()`, the statement's time (inside a
//!   transaction block too, where PostgreSQL would give the block's start).

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int32Builder, StringBuilder};
use arrow::datatypes::{DataType, TimeUnit};
use chrono::{Datelike, NaiveDateTime, Timelike};
use datafusion::common::{DataFusionError, Result, ScalarValue};
use datafusion::functions::utils::make_scalar_function;
use datafusion::logical_expr::{
    create_udf, ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    TypeSignature, Volatility,
};

use super::QueryError;
use crate::sqlstate::SqlState;

/// Built-in types by name: `(oid, array oid, names)`.
const TYPES: &[(i32, i32, &[&str])] = &[
    (16, 1000, &["bool", "boolean"]),
    (17, 1001, &["bytea"]),
    (18, 1002, &["\"char\""]),
    (19, 1003, &["name"]),
    (20, 1016, &["int8", "bigint"]),
    (21, 1005, &["int2", "smallint"]),
    (23, 1007, &["int4", "integer", "int"]),
    (24, 1008, &["regproc"]),
    (25, 1009, &["text"]),
    (26, 1028, &["oid"]),
    (114, 199, &["json"]),
    (142, 143, &["xml"]),
    (700, 1021, &["float4", "real"]),
    (701, 1022, &["float8", "double precision"]),
    (1042, 1014, &["bpchar", "character", "char"]),
    (1043, 1015, &["varchar", "character varying"]),
    (1082, 1182, &["date"]),
    (1083, 1183, &["time", "time without time zone"]),
    (1114, 1115, &["timestamp", "timestamp without time zone"]),
    (1184, 1185, &["timestamptz", "timestamp with time zone"]),
    (1186, 1187, &["interval"]),
    (1266, 1270, &["timetz", "time with time zone"]),
    (1700, 1231, &["numeric", "decimal"]),
    (2205, 2210, &["regclass"]),
    (2206, 2211, &["regtype"]),
    (2950, 2951, &["uuid"]),
    (3802, 3807, &["jsonb"]),
];

/// The oid of type `name`, if porpoise knows it.
fn type_oid(name: &str) -> Option<i32> {
    let name = name.trim().to_ascii_lowercase();
    let name = name.strip_prefix("pg_catalog.").unwrap_or(&name);
    let (base, array) = match name.strip_suffix("[]") {
        Some(b) => (b.trim(), true),
        None => match name.strip_prefix('_') {
            Some(b) => (b, true),
            None => (name, false),
        },
    };
    // `varchar(10)`, `numeric(10,2)`: the modifier does not change the type.
    let base = base.split('(').next().unwrap_or(base).trim();
    let (oid, array_oid, _) = TYPES.iter().find(|(_, _, names)| names.contains(&base))?;
    Some(if array { *array_oid } else { *oid })
}

/// Every function of this module.
pub fn udfs() -> Vec<ScalarUDF> {
    vec![
        create_udf(
            "to_regtype",
            vec![DataType::Utf8],
            DataType::Int32,
            Volatility::Stable,
            Arc::new(make_scalar_function(
                |arrays: &[ArrayRef]| {
                    let names = arrays[0].as_string::<i32>();
                    let mut out = Int32Builder::new();
                    for i in 0..names.len() {
                        out.append_option(
                            (!names.is_null(i))
                                .then(|| type_oid(names.value(i)))
                                .flatten(),
                        );
                    }
                    Ok(Arc::new(out.finish()) as ArrayRef)
                },
                vec![],
            )),
        ),
        create_udf(
            "pg_get_serial_sequence",
            vec![DataType::Utf8, DataType::Utf8],
            DataType::Utf8,
            Volatility::Stable,
            Arc::new(|_: &[ColumnarValue]| Ok(ColumnarValue::Scalar(ScalarValue::Utf8(None)))),
        ),
        ScalarUDF::new_from_impl(ToChar::new()),
        ScalarUDF::new_from_impl(JsonBuildObject::new()),
        null_text("pg_get_indexdef"),
        null_text("obj_description"),
        null_text("col_description"),
        null_text("shobj_description"),
        ScalarUDF::new_from_impl(Constant::new(
            "pg_function_is_visible",
            ScalarValue::Boolean(Some(true)),
        )),
        ScalarUDF::new_from_impl(Constant::new(
            "pg_type_is_visible",
            ScalarValue::Boolean(Some(true)),
        )),
        ScalarUDF::new_from_impl(Constant::new(
            "pg_tablespace_location",
            ScalarValue::Utf8(Some(String::new())),
        )),
        ScalarUDF::new_from_impl(PgTypeof::new()),
        null_text("pg_get_function_result"),
        null_text("pg_get_function_arguments"),
        // Sizes are not tracked per table: psql's `\dt+` shows 0 bytes.
        ScalarUDF::new_from_impl(Constant::new("pg_table_size", ScalarValue::Int64(Some(0)))),
        create_udf(
            "pg_size_pretty",
            vec![DataType::Int64],
            DataType::Utf8,
            Volatility::Immutable,
            Arc::new(make_scalar_function(
                |arrays: &[ArrayRef]| {
                    let sizes = arrays[0].as_primitive::<arrow::datatypes::Int64Type>();
                    let mut out = StringBuilder::new();
                    for i in 0..sizes.len() {
                        if sizes.is_null(i) {
                            out.append_null();
                        } else {
                            out.append_value(size_pretty(sizes.value(i)));
                        }
                    }
                    Ok(Arc::new(out.finish()) as ArrayRef)
                },
                vec![],
            )),
        ),
        local_now(
            "localtimestamp",
            DataType::Timestamp(TimeUnit::Microsecond, None),
        ),
        local_now("localtime", DataType::Time64(TimeUnit::Microsecond)),
        // No temporary schemas: PostgreSQL's 0 when the session has none.
        create_udf(
            "pg_my_temp_schema",
            vec![],
            DataType::Int32,
            Volatility::Stable,
            Arc::new(|_: &[ColumnarValue]| Ok(ColumnarValue::Scalar(ScalarValue::Int32(Some(0))))),
        ),
        create_udf(
            "pg_collation_is_visible",
            vec![DataType::Int32],
            DataType::Boolean,
            Volatility::Stable,
            Arc::new(|_: &[ColumnarValue]| {
                Ok(ColumnarValue::Scalar(ScalarValue::Boolean(Some(true))))
            }),
        ),
        now_udf("clock_timestamp", Volatility::Volatile),
        now_udf("statement_timestamp", Volatility::Stable),
        now_udf("transaction_timestamp", Volatility::Stable),
    ]
}

/// PostgreSQL's `pg_size_pretty`: bytes below 10 kB, then kB, MB, GB, TB, keeping one
/// extra bit to round half away from zero.
fn size_pretty(bytes: i64) -> String {
    const LIMIT: i64 = 10 * 1024;
    const LIMIT2: i64 = LIMIT * 2 - 1;
    let half_rounded = |x: i64| (x + if x < 0 { -1 } else { 1 }) / 2;
    if bytes.abs() < LIMIT {
        return format!("{bytes} bytes");
    }
    let mut size = bytes >> 9;
    for unit in ["kB", "MB", "GB"] {
        if size.abs() < LIMIT2 {
            return format!("{} {unit}", half_rounded(size));
        }
        size >>= 10;
    }
    format!("{} TB", half_rounded(size))
}

/// `localtimestamp` / `localtime`: now in UTC without a time zone.
fn local_now(name: &str, ty: DataType) -> ScalarUDF {
    let time = matches!(ty, DataType::Time64(_));
    create_udf(
        name,
        vec![],
        ty,
        Volatility::Stable,
        Arc::new(move |_: &[ColumnarValue]| {
            let now = chrono::Utc::now().naive_utc();
            let micros = now.and_utc().timestamp_micros();
            Ok(ColumnarValue::Scalar(if time {
                ScalarValue::Time64Microsecond(Some(micros.rem_euclid(86_400_000_000)))
            } else {
                ScalarValue::TimestampMicrosecond(Some(micros), None)
            }))
        }),
    )
}

/// A function of any arguments that returns a NULL text.
fn null_text(name: &'static str) -> ScalarUDF {
    ScalarUDF::new_from_impl(Constant::new(name, ScalarValue::Utf8(None)))
}

/// A function of any arguments with a fixed result.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Constant {
    name: &'static str,
    value: ScalarValue,
    signature: Signature,
}

impl Constant {
    fn new(name: &'static str, value: ScalarValue) -> Self {
        Constant {
            name,
            value,
            signature: Signature::variadic_any(Volatility::Stable),
        }
    }
}

impl ScalarUDFImpl for Constant {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(self.value.data_type())
    }

    fn invoke_with_args(&self, _args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        Ok(ColumnarValue::Scalar(self.value.clone()))
    }
}

/// `pg_typeof(x)`: the PostgreSQL name of `x`'s type.
#[derive(Debug, PartialEq, Eq, Hash)]
struct PgTypeof {
    signature: Signature,
}

impl PgTypeof {
    fn new() -> Self {
        PgTypeof {
            signature: Signature::any(1, Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for PgTypeof {
    fn name(&self) -> &str {
        "pg_typeof"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let ty = args.args[0].data_type();
        let name = super::pg_compat::pg_type_names(&ty.to_string()).0;
        Ok(ColumnarValue::Scalar(ScalarValue::Utf8(Some(
            name.to_string(),
        ))))
    }
}

/// A function of the time now, as `timestamp with time zone` (UTC).
fn now_udf(name: &str, volatility: Volatility) -> ScalarUDF {
    create_udf(
        name,
        vec![],
        DataType::Timestamp(TimeUnit::Nanosecond, Some("+00:00".into())),
        volatility,
        Arc::new(|_: &[ColumnarValue]| {
            let now = chrono::Utc::now().timestamp_nanos_opt();
            Ok(ColumnarValue::Scalar(ScalarValue::TimestampNanosecond(
                now,
                Some("+00:00".into()),
            )))
        }),
    )
}

/// `json_build_object(key, value, ...)`: a JSON object as text.
#[derive(Debug, PartialEq, Eq, Hash)]
struct JsonBuildObject {
    signature: Signature,
}

impl JsonBuildObject {
    fn new() -> Self {
        JsonBuildObject {
            signature: Signature::variadic_any(Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for JsonBuildObject {
    fn name(&self) -> &str {
        "json_build_object"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        if !args.args.len().is_multiple_of(2) {
            return Err(DataFusionError::External(Box::new(QueryError::other(
                SqlState::INVALID_PARAMETER_VALUE,
                "argument list must have even number of elements",
            ))));
        }
        let rows = args.number_rows;
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let mut out = StringBuilder::new();
        for row in 0..rows.max(1) {
            let mut object = serde_json::Map::new();
            for pair in arrays.chunks(2) {
                let key = ScalarValue::try_from_array(&pair[0], row)?;
                let value = ScalarValue::try_from_array(&pair[1], row)?;
                object.insert(json_key(&key), json_value(&value));
            }
            out.append_value(serde_json::Value::Object(object).to_string());
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

fn json_key(v: &ScalarValue) -> String {
    match v {
        ScalarValue::Utf8(Some(s))
        | ScalarValue::LargeUtf8(Some(s))
        | ScalarValue::Utf8View(Some(s)) => s.clone(),
        other => other.to_string(),
    }
}

fn json_value(v: &ScalarValue) -> serde_json::Value {
    use serde_json::Value;
    if v.is_null() {
        return Value::Null;
    }
    match v {
        ScalarValue::Boolean(Some(b)) => Value::Bool(*b),
        ScalarValue::Int8(Some(n)) => (*n).into(),
        ScalarValue::Int16(Some(n)) => (*n).into(),
        ScalarValue::Int32(Some(n)) => (*n).into(),
        ScalarValue::Int64(Some(n)) => (*n).into(),
        ScalarValue::UInt8(Some(n)) => (*n).into(),
        ScalarValue::UInt16(Some(n)) => (*n).into(),
        ScalarValue::UInt32(Some(n)) => (*n).into(),
        ScalarValue::UInt64(Some(n)) => (*n).into(),
        ScalarValue::Float32(Some(n)) => {
            serde_json::Number::from_f64(f64::from(*n)).map_or(Value::Null, Value::Number)
        }
        ScalarValue::Float64(Some(n)) => {
            serde_json::Number::from_f64(*n).map_or(Value::Null, Value::Number)
        }
        other => Value::String(json_key(other)),
    }
}

/// `to_char(timestamp, pattern)` with PostgreSQL's template patterns.
///
/// It also takes DataFusion's alias `date_format`: a session state copies every function
/// under each of its names, so an alias left pointing at DataFusion's `to_char` could put it
/// back under `to_char` too.
#[derive(Debug, PartialEq, Eq, Hash)]
struct ToChar {
    signature: Signature,
    aliases: Vec<String>,
}

impl ToChar {
    fn new() -> Self {
        let timestamps = [
            DataType::Timestamp(TimeUnit::Second, None),
            DataType::Timestamp(TimeUnit::Millisecond, None),
            DataType::Timestamp(TimeUnit::Microsecond, None),
            DataType::Timestamp(TimeUnit::Nanosecond, None),
            DataType::Timestamp(TimeUnit::Nanosecond, Some("+00:00".into())),
            DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())),
            DataType::Timestamp(TimeUnit::Millisecond, Some("+00:00".into())),
            DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
            DataType::Date32,
        ];
        let mut sigs: Vec<TypeSignature> = timestamps
            .into_iter()
            .map(|t| TypeSignature::Exact(vec![t, DataType::Utf8]))
            .collect();
        sigs.push(TypeSignature::Exact(vec![DataType::Utf8, DataType::Utf8]));
        ToChar {
            signature: Signature::one_of(sigs, Volatility::Immutable),
            aliases: vec!["date_format".to_string()],
        }
    }
}

impl ScalarUDFImpl for ToChar {
    fn name(&self) -> &str {
        "to_char"
    }

    fn aliases(&self) -> &[String] {
        &self.aliases
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        make_scalar_function(to_char, vec![])(&args.args)
    }
}

/// `to_char` over arrays of times (or their text) and patterns.
fn to_char(arrays: &[ArrayRef]) -> Result<ArrayRef> {
    let times = arrow::compute::cast(
        &arrays[0],
        &DataType::Timestamp(TimeUnit::Microsecond, None),
    )?;
    let times = times.as_primitive::<arrow::datatypes::TimestampMicrosecondType>();
    let patterns = arrays[1].as_string::<i32>();
    let mut out = StringBuilder::new();
    for i in 0..times.len() {
        if times.is_null(i) || patterns.is_null(i) {
            out.append_null();
            continue;
        }
        let t = chrono::DateTime::from_timestamp_micros(times.value(i))
            .ok_or_else(|| {
                DataFusionError::External(Box::new(QueryError::other(
                    SqlState::DATETIME_FIELD_OVERFLOW,
                    "timestamp out of range",
                )))
            })?
            .naive_utc();
        out.append_value(format_pg(&t, patterns.value(i)));
    }
    Ok(Arc::new(out.finish()))
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

/// Cased like the pattern: `MONTH` upper, `Month` capitalised, `month` lower.
fn cased(word: &str, pattern: &str) -> String {
    if pattern.chars().all(|c| c.is_ascii_uppercase()) {
        word.to_ascii_uppercase()
    } else if pattern.starts_with(|c: char| c.is_ascii_uppercase()) {
        word.to_string()
    } else {
        word.to_ascii_lowercase()
    }
}

/// PostgreSQL's `to_char` template patterns over `t`; anything else is copied, and
/// double-quoted text is copied without its quotes. Linear in the pattern's length.
pub fn format_pg(t: &NaiveDateTime, pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 16);
    let hour12 = match t.hour() % 12 {
        0 => 12,
        h => h,
    };
    let month = t.month0() as usize;
    let day = t.weekday().num_days_from_sunday() as usize;
    let mut r = pattern;
    while let Some(c) = r.chars().next() {
        if c == '"' {
            let mut quoted = r[1..].chars();
            while let Some(q) = quoted.next() {
                match q {
                    '"' => break,
                    '\\' => out.extend(quoted.next()),
                    q => out.push(q),
                }
            }
            r = quoted.as_str();
            continue;
        }
        // `r` starts with `p`, in any case (`p` is ASCII).
        let starts = |r: &str, p: &str| r.get(..p.len()).is_some_and(|h| h.eq_ignore_ascii_case(p));
        // FM (fill mode) drops padding of the next field.
        let fill = starts(r, "FM");
        let field = if fill { &r[2..] } else { r };
        let pad = |n: i64, width: usize| {
            if fill {
                n.to_string()
            } else {
                format!("{n:0width$}")
            }
        };
        let s = |p: &str| starts(field, p);
        // Longest patterns first, so `HH24` wins over `HH` and `MONTH` over `MON`.
        let (text, used) = if s("HH24") {
            (pad(t.hour().into(), 2), 4)
        } else if s("HH12") {
            (pad(hour12.into(), 2), 4)
        } else if s("HH") {
            (pad(hour12.into(), 2), 2)
        } else if s("MI") {
            (pad(t.minute().into(), 2), 2)
        } else if s("SSSS") {
            (t.num_seconds_from_midnight().to_string(), 4)
        } else if s("SS") {
            (pad(t.second().into(), 2), 2)
        } else if s("MS") {
            (pad((t.nanosecond() / 1_000_000).into(), 3), 2)
        } else if s("US") {
            (pad((t.nanosecond() / 1_000).into(), 6), 2)
        } else if s("AM") || s("PM") {
            let word = if t.hour() < 12 { "AM" } else { "PM" };
            (cased(word, &field[..2]), 2)
        } else if s("A.M.") || s("P.M.") {
            let word = if t.hour() < 12 { "A.M." } else { "P.M." };
            (cased(word, &field[..4]), 4)
        } else if s("YYYY") {
            (pad(t.year().into(), 4), 4)
        } else if s("YYY") {
            (pad((t.year() % 1000).into(), 3), 3)
        } else if s("YY") {
            (pad((t.year() % 100).into(), 2), 2)
        } else if s("Y") {
            ((t.year() % 10).to_string(), 1)
        } else if s("MONTH") {
            let w = cased(MONTHS[month], &field[..5]);
            (if fill { w } else { format!("{w:<9}") }, 5)
        } else if s("MON") {
            (cased(&MONTHS[month][..3], &field[..3]), 3)
        } else if s("MM") {
            (pad(t.month().into(), 2), 2)
        } else if s("DAY") {
            let w = cased(DAYS[day], &field[..3]);
            (if fill { w } else { format!("{w:<9}") }, 3)
        } else if s("DY") {
            (cased(&DAYS[day][..3], &field[..2]), 2)
        } else if s("DDD") {
            (pad(t.ordinal().into(), 3), 3)
        } else if s("DD") {
            (pad(t.day().into(), 2), 2)
        } else if s("D") {
            ((day + 1).to_string(), 1)
        } else if s("IW") {
            (pad(t.iso_week().week().into(), 2), 2)
        } else if s("WW") {
            (pad((t.ordinal0() / 7 + 1).into(), 2), 2)
        } else if s("Q") {
            ((t.month0() / 3 + 1).to_string(), 1)
        } else {
            out.push(c);
            r = &r[c.len_utf8()..];
            continue;
        };
        out.push_str(&text);
        r = &field[used..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn to_char_uses_postgres_patterns() {
        let t = NaiveDateTime::parse_from_str("2024-01-10 09:30:05", "%Y-%m-%d %H:%M:%S").unwrap();
        assert_eq!(format_pg(&t, "YYYY-MM-DD HH24:MI"), "2024-01-10 09:30");
        assert_eq!(
            format_pg(&t, "DD Mon YYYY HH12:MI:SS AM"),
            "10 Jan 2024 09:30:05 AM"
        );
        assert_eq!(format_pg(&t, "FMMonth \"the\" FMDD"), "January the 10");
        assert_eq!(format_pg(&t, "Day"), "Wednesday");
        // Text that is no pattern is copied, whatever its characters.
        assert_eq!(format_pg(&t, "é YYYY ü"), "é 2024 ü");
    }

    #[test]
    fn sizes_print_like_postgres() {
        assert_eq!(size_pretty(8192), "8192 bytes");
        assert_eq!(size_pretty(10 * 1024), "10 kB");
        assert_eq!(size_pretty(123_456_789), "118 MB");
    }

    #[test]
    fn type_names_resolve_to_oids() {
        assert_eq!(type_oid("integer"), Some(23));
        assert_eq!(type_oid("int4[]"), Some(1007));
        assert_eq!(type_oid("character varying(10)"), Some(1043));
        assert_eq!(type_oid("hstore"), None);
    }
}
