//! Encoding of Arrow result sets as PostgreSQL rows (text or binary, with the right type OIDs,
//! via `arrow-pg`), and PostgreSQL's names for unnamed result columns: `count(*)` is named
//! `count`, an expression without a name `?column?`.

use std::sync::Arc;

use arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::physical_plan::SendableRecordBatchStream;
use futures::StreamExt;
use pgwire::api::portal::Format;
use pgwire::api::results::{FieldInfo, QueryResponse};
use pgwire::error::PgWireResult;
use sqlparser::ast::{Expr, SelectItem, SetExpr, Statement};

use super::error::pg_error;
use crate::query::QueryError;
use crate::sqlstate::SqlState;

/// The result column names PostgreSQL would give `stmt`'s select list: `None` keeps
/// DataFusion's name (columns a wildcard expands to). `None` overall when the list cannot be
/// matched to the result (more than one wildcard, or not a plain SELECT).
pub fn pg_column_names(stmt: &Statement, fields: usize) -> Option<Vec<Option<String>>> {
    let Statement::Query(q) = stmt else {
        return None;
    };
    let SetExpr::Select(select) = q.body.as_ref() else {
        return None;
    };
    let wildcards = select
        .projection
        .iter()
        .filter(|i| {
            matches!(
                i,
                SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..)
            )
        })
        .count();
    if wildcards > 1 {
        return None;
    }
    let named = select.projection.len() - wildcards;
    let expanded = fields.checked_sub(named)?;
    if wildcards == 0 && expanded != 0 {
        return None;
    }
    let mut names = Vec::with_capacity(fields);
    for item in &select.projection {
        match item {
            SelectItem::ExprWithAlias { alias, .. } => names.push(Some(alias.value.clone())),
            SelectItem::UnnamedExpr(e) => names.push(Some(expr_name(e))),
            _ => names.extend(std::iter::repeat_n(None, expanded)),
        }
    }
    Some(names)
}

fn expr_name(e: &Expr) -> String {
    match e {
        Expr::Identifier(i) => i.value.clone(),
        Expr::CompoundIdentifier(parts) => {
            parts.last().map(|p| p.value.clone()).unwrap_or_default()
        }
        Expr::Function(f) => f
            .name
            .0
            .last()
            .and_then(|p| p.as_ident())
            .map(|i| {
                if i.quote_style.is_some() {
                    i.value.clone()
                } else {
                    i.value.to_lowercase()
                }
            })
            .unwrap_or_else(|| "?column?".into()),
        Expr::Cast { expr, .. } | Expr::Nested(expr) => expr_name(expr),
        _ => "?column?".into(),
    }
}

/// Renames the fields of `schema` to `names` when they line up one to one.
pub fn rename(schema: &SchemaRef, names: Option<&[Option<String>]>) -> SchemaRef {
    match names {
        Some(names) if names.len() == schema.fields().len() => Arc::new(Schema::new(
            schema
                .fields()
                .iter()
                .zip(names)
                .map(|(f, n)| {
                    Field::new(
                        n.as_deref().unwrap_or(f.name()),
                        f.data_type().clone(),
                        f.is_nullable(),
                    )
                })
                .collect::<Vec<_>>(),
        )),
        _ => schema.clone(),
    }
}

/// The RowDescription of a result schema.
pub fn fields(schema: &Schema, format: &Format) -> PgWireResult<Vec<FieldInfo>> {
    let schema = super::numeric::wire_schema(schema);
    arrow_pg::datatypes::arrow_schema_to_pg_fields(&schema, format, None)
}

/// PostgreSQL's text form of a float8/float4: the shortest digits that round-trip, positional
/// for decimal exponents -4..15, otherwise `1e+20` style.
pub fn pg_float_text(v: f64, shortest: impl Fn() -> String) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        };
    }
    if v == 0.0 {
        return if v.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    // `shortest` is the `{:e}` form of the value at its own precision, e.g. "1.5e-7".
    let sci = shortest();
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..15).contains(&exp) {
        let digits: String = mantissa.chars().filter(|c| c.is_ascii_digit()).collect();
        let negative = mantissa.starts_with('-');
        let point = exp + 1; // digits before the decimal point
        let mut out = String::new();
        if negative {
            out.push('-');
        }
        if point <= 0 {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', (-point) as usize));
            out.push_str(&digits);
        } else if point as usize >= digits.len() {
            out.push_str(&digits);
            out.extend(std::iter::repeat_n('0', point as usize - digits.len()));
        } else {
            out.push_str(&digits[..point as usize]);
            out.push('.');
            out.push_str(&digits[point as usize..]);
        }
        out
    } else {
        format!(
            "{mantissa}e{}{:02}",
            if exp < 0 { '-' } else { '+' },
            exp.abs()
        )
    }
}

/// Seconds and a nanosecond fraction as PostgreSQL prints times: `09:30:00`, `09:30:00.5`.
fn pg_fraction(nanos: u32) -> String {
    if nanos == 0 {
        return String::new();
    }
    // PostgreSQL keeps microseconds; finer digits are rounded away.
    let micros = (nanos as u64 + 500) / 1000;
    let text = format!(".{:06}", micros.min(999_999));
    text.trim_end_matches('0').to_string()
}

/// Rewrites the columns whose arrow-pg form differs from PostgreSQL's: text-format floats,
/// timestamps and times into PostgreSQL's text, and decimals (and lists of them) in either
/// format (see [`super::numeric`]). The RowDescription keeps their real types.
pub(super) fn pg_wire_columns(
    batch: &arrow::array::RecordBatch,
    format: &Format,
) -> Result<arrow::array::RecordBatch, arrow::error::ArrowError> {
    use arrow::array::{Array, ArrayRef, AsArray, StringArray};
    use arrow::datatypes::{DataType, Float32Type, Float64Type, TimeUnit};
    use pgwire::api::results::FieldFormat;

    let mut columns: Vec<ArrayRef> = Vec::with_capacity(batch.num_columns());
    let mut changed = false;
    for (i, col) in batch.columns().iter().enumerate() {
        let is_text = matches!(format.format_for(i), FieldFormat::Text);
        if let Some(decimals) = super::numeric::wire_decimals(col, is_text)? {
            changed = true;
            columns.push(decimals);
            continue;
        }
        if !is_text {
            columns.push(col.clone());
            continue;
        }
        let text: Option<StringArray> = match col.data_type() {
            DataType::Float64 => Some(
                col.as_primitive::<Float64Type>()
                    .iter()
                    .map(|v| v.map(|v| pg_float_text(v, || format!("{v:e}"))))
                    .collect(),
            ),
            DataType::Float32 => Some(
                col.as_primitive::<Float32Type>()
                    .iter()
                    .map(|v| v.map(|v| pg_float_text(v as f64, || format!("{v:e}"))))
                    .collect(),
            ),
            DataType::Timestamp(_, None) => {
                let nanos =
                    arrow::compute::cast(col, &DataType::Timestamp(TimeUnit::Nanosecond, None))?;
                let nanos = nanos.as_primitive::<arrow::datatypes::TimestampNanosecondType>();
                Some(
                    nanos
                        .iter()
                        .map(|v| {
                            v.map(|v| {
                                let t = chrono::DateTime::from_timestamp_nanos(v).naive_utc();
                                format!(
                                    "{}{}",
                                    t.format("%Y-%m-%d %H:%M:%S"),
                                    pg_fraction(chrono::Timelike::nanosecond(&t))
                                )
                            })
                        })
                        .collect(),
                )
            }
            DataType::Time32(_) | DataType::Time64(_) => {
                let nanos = arrow::compute::cast(col, &DataType::Time64(TimeUnit::Nanosecond))?;
                let nanos = nanos.as_primitive::<arrow::datatypes::Time64NanosecondType>();
                Some(
                    nanos
                        .iter()
                        .map(|v| {
                            v.map(|v| {
                                let secs = v.div_euclid(1_000_000_000);
                                format!(
                                    "{:02}:{:02}:{:02}{}",
                                    secs / 3600,
                                    secs / 60 % 60,
                                    secs % 60,
                                    pg_fraction(v.rem_euclid(1_000_000_000) as u32)
                                )
                            })
                        })
                        .collect(),
                )
            }
            _ => None,
        };
        match text {
            Some(t) => {
                changed = true;
                columns.push(std::sync::Arc::new(t) as ArrayRef);
            }
            None => columns.push(col.clone()),
        }
    }
    if !changed {
        return Ok(batch.clone());
    }
    let schema = Schema::new(
        batch
            .schema()
            .fields()
            .iter()
            .zip(&columns)
            .map(|(f, c)| Field::new(f.name(), c.data_type().clone(), true))
            .collect::<Vec<_>>(),
    );
    arrow::array::RecordBatch::try_new(Arc::new(schema), columns)
}

/// A batch's rows encoded by arrow-pg. A panic in the encoder (a value it cannot represent)
/// ends the result with an internal error instead of taking the connection with it.
pub(super) fn encoded_rows(
    fields: Arc<Vec<FieldInfo>>,
    batch: arrow::array::RecordBatch,
) -> Vec<PgWireResult<pgwire::messages::data::DataRow>> {
    let encode = std::panic::AssertUnwindSafe(move || {
        arrow_pg::datatypes::encode_recordbatch(fields, batch).collect::<Vec<_>>()
    });
    std::panic::catch_unwind(encode).unwrap_or_else(|panic| {
        let what = super::error::panic_message(panic.as_ref());
        tracing::error!(panic = %what, "encoding a result row panicked");
        let e = QueryError::other(
            SqlState::INTERNAL_ERROR,
            format!("internal error encoding a row: {what}"),
        );
        vec![Err(pg_error(&e))]
    })
}

/// Streams a result set to the client. Errors raised while the rows are produced reach the
/// client with their SQLSTATE.
pub fn query_response(
    schema: &SchemaRef,
    stream: SendableRecordBatchStream,
    format: &Format,
) -> PgWireResult<QueryResponse> {
    let fields = Arc::new(fields(schema, format)?);
    let row_fields = fields.clone();
    let format = format.clone();
    let rows = stream
        .map(move |batch| {
            let batch = batch.and_then(|b| Ok(pg_wire_columns(&b, &format)?));
            let rows = match batch {
                Ok(b) => encoded_rows(row_fields.clone(), b),
                Err(e) => vec![Err(pg_error(&QueryError::DataFusion(e)))],
            };
            futures::stream::iter(rows)
        })
        .flatten();
    Ok(QueryResponse::new(fields, rows))
}

#[cfg(test)]
mod tests {
    use super::pg_float_text;

    fn f(v: f64) -> String {
        pg_float_text(v, || format!("{v:e}"))
    }

    #[test]
    fn floats_print_like_postgres() {
        assert_eq!(f(1.0), "1");
        assert_eq!(f(-2.5), "-2.5");
        assert_eq!(f(1000.5), "1000.5");
        assert_eq!(f(0.1), "0.1");
        assert_eq!(f(0.0001), "0.0001");
        assert_eq!(f(0.00001), "1e-05");
        assert_eq!(f(1e15), "1e+15");
        assert_eq!(f(123456789012345.0), "123456789012345");
        assert_eq!(f(1.5e20), "1.5e+20");
        assert_eq!(f(f64::NAN), "NaN");
        assert_eq!(f(f64::NEG_INFINITY), "-Infinity");
        assert_eq!(
            pg_float_text(0.1f32 as f64, || format!("{:e}", 0.1f32)),
            "0.1"
        );
    }

    #[test]
    fn a_panicking_encoder_ends_the_result_with_an_error() {
        use std::sync::Arc;

        use arrow::array::{Array, Decimal128Builder, ListBuilder, RecordBatch};
        use arrow::datatypes::{DataType, Field, Schema};
        use pgwire::api::portal::Format;

        // arrow-pg panics on a list of decimals beyond 28 digits (query_response rewrites
        // those first; this batch goes to arrow-pg as it is).
        let decimals = Decimal128Builder::new().with_data_type(DataType::Decimal128(38, 0));
        let mut list = ListBuilder::new(decimals);
        list.values().append_value(i128::MAX / 2);
        list.append(true);
        let list = list.finish();
        let schema = Schema::new(vec![Field::new("l", list.data_type().clone(), true)]);
        let batch = RecordBatch::try_new(Arc::new(schema), vec![Arc::new(list)]).unwrap();
        let fields = Arc::new(super::fields(&batch.schema(), &Format::UnifiedText).unwrap());
        let rows = super::encoded_rows(fields, batch);
        assert_eq!(rows.len(), 1);
        let error = rows[0].as_ref().expect_err("an error, not a row");
        assert!(
            error.to_string().contains("internal error encoding a row"),
            "{error}"
        );
    }
}
