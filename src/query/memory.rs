//! What a query may take of its node's memory ([`crate::config::Limits`]).
//!
//! - Every query of a node draws on one DataFusion memory pool of `maxMemSize` bytes (a
//!   [`FairSpillPool`] in the node's `RuntimeEnv`: operators that can spill share it fairly).
//! - Each client session has a [`QueryPool`] in front of it that lets the running statement
//!   hold at most `memLimitOfQueryResult` bytes. A statement that needs more fails with
//!   SQLSTATE 53200 and frees what it held; the node and the other sessions go on.
//! - DataFusion's pool sees only what operators reserve (hash tables, sort buffers, join
//!   build sides), not the value a scalar function builds. The functions that build a value
//!   much larger than their arguments (`repeat`, `lpad`, `rpad`, `replace`, `array_repeat`,
//!   `array_resize`, `range`, `generate_series`) are wrapped by [`Capped`], which computes
//!   an upper bound of the result from the arguments before calling the function and refuses
//!   (54000, PostgreSQL's "requested length too large") a call that would build more than one
//!   query may hold, or more than PostgreSQL's 1 GB limit of a value ([`MAX_CALL_BYTES`]).
//!   Not covered: operators (`a || b`) and functions whose result is linear in their inputs
//!   (`concat`) build at most a few times what their capped inputs hold, and `regexp_replace`
//!   with backreferences is not bounded.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, FieldRef, Int64Type};
use datafusion::common::{DataFusionError, Result, ScalarValue};
use datafusion::execution::memory_pool::{
    FairSpillPool, MemoryConsumer, MemoryLimit, MemoryPool, MemoryReservation,
};
use datafusion::execution::FunctionRegistry;
use datafusion::logical_expr::simplify::{ExprSimplifyResult, SimplifyContext};
use datafusion::logical_expr::udf_eq::UdfEq;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, Expr, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF,
    ScalarUDFImpl, Signature,
};
use datafusion::prelude::SessionContext;

use super::QueryError;
use crate::sqlstate::SqlState;

/// The pool every query of a node shares.
pub fn node_pool(bytes: usize) -> Arc<dyn MemoryPool> {
    Arc::new(FairSpillPool::new(bytes))
}

/// Bytes as an operator reads them in a message: `256 MB`, `1.5 GB`.
pub fn human(bytes: u128) -> String {
    const MB: f64 = (1u64 << 20) as f64;
    const GB: f64 = (1u64 << 30) as f64;
    let b = bytes as f64;
    if b >= GB {
        format!("{:.2} GB", b / GB)
    } else {
        format!("{:.0} MB", (b / MB).max(1.0))
    }
}

/// One session's share of its node's pool: a statement may hold at most `limit` bytes.
#[derive(Debug)]
pub struct QueryPool {
    node: Arc<dyn MemoryPool>,
    limit: usize,
    used: AtomicUsize,
}

impl QueryPool {
    pub fn new(node: Arc<dyn MemoryPool>, limit: usize) -> Self {
        QueryPool {
            node,
            limit,
            used: AtomicUsize::new(0),
        }
    }
}

impl fmt::Display for QueryPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "query pool of {} in {}", self.limit, self.node)
    }
}

impl MemoryPool for QueryPool {
    fn name(&self) -> &str {
        "porpoise query"
    }

    fn register(&self, consumer: &MemoryConsumer) {
        self.node.register(consumer)
    }

    fn unregister(&self, consumer: &MemoryConsumer) {
        self.node.unregister(consumer)
    }

    fn grow(&self, reservation: &MemoryReservation, additional: usize) {
        self.used.fetch_add(additional, Ordering::Relaxed);
        self.node.grow(reservation, additional)
    }

    fn shrink(&self, reservation: &MemoryReservation, shrink: usize) {
        self.used.fetch_sub(shrink, Ordering::Relaxed);
        self.node.shrink(reservation, shrink)
    }

    fn try_grow(&self, reservation: &MemoryReservation, additional: usize) -> Result<()> {
        let before = self.used.fetch_add(additional, Ordering::Relaxed);
        if before.saturating_add(additional) > self.limit {
            self.used.fetch_sub(additional, Ordering::Relaxed);
            return Err(DataFusionError::ResourcesExhausted(format!(
                "out of memory: this query needs more than the {} one query may use \
                 (memLimitOfQueryResult); it was stopped, and the node goes on serving",
                human(self.limit as u128)
            )));
        }
        if let Err(e) = self.node.try_grow(reservation, additional) {
            self.used.fetch_sub(additional, Ordering::Relaxed);
            tracing::debug!(error = %e, "node memory pool refused a query");
            return Err(DataFusionError::ResourcesExhausted(format!(
                "out of memory: the node's queries already hold its {} (maxMemSize); \
                 this query was stopped, try again when fewer queries run",
                match self.node.memory_limit() {
                    MemoryLimit::Finite(n) => human(n as u128),
                    _ => "memory".into(),
                }
            )));
        }
        Ok(())
    }

    fn reserved(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    fn memory_limit(&self) -> MemoryLimit {
        MemoryLimit::Finite(self.limit)
    }
}

/// How a [`Capped`] function's result size is bounded from its arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Bound {
    /// `repeat(s, n)`: len(s) × n.
    Repeat,
    /// `lpad(s, n [, fill])`, `rpad`: n characters of up to 4 bytes.
    Pad,
    /// `replace(s, from, to)`: len(s) + len(s) / len(from) × len(to).
    Replace,
    /// `array_repeat(e, n)`: size(e) × n.
    ArrayRepeat,
    /// `array_resize(a, n [, fill])`: n elements.
    ArrayResize,
    /// `range([start,] stop [, step])`, `generate_series`: (stop − start) / step elements.
    Range,
}

/// The functions wrapped, with how each is bounded.
const CAPPED: &[(&str, Bound)] = &[
    ("repeat", Bound::Repeat),
    ("lpad", Bound::Pad),
    ("rpad", Bound::Pad),
    ("replace", Bound::Replace),
    ("array_repeat", Bound::ArrayRepeat),
    ("array_resize", Bound::ArrayResize),
    ("range", Bound::Range),
    ("generate_series", Bound::Range),
];

/// The most one function call may build whatever the query's limit: PostgreSQL's 1 GB limit
/// of a value.
pub const MAX_CALL_BYTES: usize = 1 << 30;

/// Replaces the functions of [`CAPPED`] registered in `ctx` with versions that refuse to build
/// more than `query_limit` bytes (and never more than [`MAX_CALL_BYTES`]) in one call.
pub fn cap_functions(ctx: &SessionContext, query_limit: usize) {
    let limit = query_limit.min(MAX_CALL_BYTES);
    for (name, bound) in CAPPED {
        let Ok(udf) = ctx.udf(name) else {
            tracing::warn!(function = name, "no such function to cap");
            continue;
        };
        ctx.register_udf(ScalarUDF::new_from_impl(Capped {
            inner: udf.inner().clone().into(),
            bound: *bound,
            limit,
        }));
    }
}

/// A scalar function that refuses calls whose result could exceed `limit` bytes.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Capped {
    inner: UdfEq<Arc<dyn ScalarUDFImpl>>,
    bound: Bound,
    limit: usize,
}

/// Per-row numbers of one argument: byte lengths of strings or values of integers.
enum PerRow {
    Same(i128),
    Each(Vec<i128>),
}

impl PerRow {
    fn at(&self, i: usize) -> i128 {
        match self {
            PerRow::Same(v) => *v,
            PerRow::Each(v) => v.get(i).copied().unwrap_or(0),
        }
    }
}

/// Byte lengths of a string (or binary, or list) argument; `None` for other types.
fn lengths(arg: &ColumnarValue) -> Option<PerRow> {
    match arg {
        ColumnarValue::Scalar(v) => Some(PerRow::Same(match v {
            ScalarValue::Utf8(Some(s))
            | ScalarValue::LargeUtf8(Some(s))
            | ScalarValue::Utf8View(Some(s)) => s.len() as i128,
            ScalarValue::Binary(Some(b))
            | ScalarValue::LargeBinary(Some(b))
            | ScalarValue::BinaryView(Some(b)) => b.len() as i128,
            other => other.size() as i128,
        })),
        ColumnarValue::Array(a) => {
            let l = arrow::compute::kernels::length::length(a).ok()?;
            let l = arrow::compute::cast(&l, &DataType::Int64).ok()?;
            Some(PerRow::Each(
                l.as_primitive::<Int64Type>()
                    .iter()
                    .map(|v| i128::from(v.unwrap_or(0)))
                    .collect(),
            ))
        }
    }
}

/// The values of an integer argument; `None` for other types.
fn integers(arg: &ColumnarValue) -> Option<PerRow> {
    if !arg.data_type().is_integer() {
        return None;
    }
    match arg {
        ColumnarValue::Scalar(v) => match v.cast_to(&DataType::Int64).ok()? {
            ScalarValue::Int64(n) => Some(PerRow::Same(i128::from(n.unwrap_or(0)))),
            _ => None,
        },
        ColumnarValue::Array(a) => {
            let a = arrow::compute::cast(a, &DataType::Int64).ok()?;
            Some(PerRow::Each(
                a.as_primitive::<Int64Type>()
                    .iter()
                    .map(|v| i128::from(v.unwrap_or(0)))
                    .collect(),
            ))
        }
    }
}

/// Bytes one element of `arg` takes (at least 8).
fn element_size(arg: &ColumnarValue) -> i128 {
    let size = match arg {
        ColumnarValue::Scalar(v) => match v.data_type().primitive_width() {
            Some(width) => width,
            None => v.size(),
        },
        ColumnarValue::Array(a) => a.get_array_memory_size() / a.len().max(1),
    };
    size.max(8) as i128
}

impl Bound {
    /// An upper bound of the bytes a call builds over its `rows` rows; `None` when the
    /// arguments are of types this does not size.
    fn bytes(self, args: &[ColumnarValue], rows: usize) -> Option<u128> {
        let arg = |i: usize| args.get(i);
        let mut total: i128 = 0;
        match self {
            Bound::Repeat => {
                let (s, n) = (lengths(arg(0)?)?, integers(arg(1)?)?);
                for i in 0..rows {
                    total = total.saturating_add(s.at(i).saturating_mul(n.at(i).max(0)));
                }
            }
            Bound::Pad => {
                let n = integers(arg(1)?)?;
                for i in 0..rows {
                    total = total.saturating_add(n.at(i).max(0).saturating_mul(4));
                }
            }
            Bound::Replace => {
                let (s, from, to) = (lengths(arg(0)?)?, lengths(arg(1)?)?, lengths(arg(2)?)?);
                for i in 0..rows {
                    let grown = match from.at(i) {
                        f if f > 0 => (s.at(i) / f).saturating_mul(to.at(i)),
                        _ => 0,
                    };
                    total = total.saturating_add(s.at(i).saturating_add(grown));
                }
            }
            Bound::ArrayRepeat => {
                let (e, n) = (element_size(arg(0)?), integers(arg(1)?)?);
                for i in 0..rows {
                    total = total.saturating_add(e.saturating_mul(n.at(i).max(0)));
                }
            }
            Bound::ArrayResize => {
                let n = integers(arg(1)?)?;
                for i in 0..rows {
                    total = total.saturating_add(n.at(i).max(0).saturating_mul(16));
                }
            }
            Bound::Range => {
                let ints: Option<Vec<PerRow>> = args.iter().map(integers).collect();
                let ints = ints?;
                for i in 0..rows {
                    let (start, stop, step) = match ints.as_slice() {
                        [stop] => (0, stop.at(i), 1),
                        [start, stop] => (start.at(i), stop.at(i), 1),
                        [start, stop, step] => (start.at(i), stop.at(i), step.at(i)),
                        _ => return None,
                    };
                    let elements = match step {
                        0 => 0,
                        s => (stop - start).abs() / s.abs() + 1,
                    };
                    total = total.saturating_add(elements.saturating_mul(8));
                }
            }
        }
        Some(total.max(0) as u128)
    }
}

impl ScalarUDFImpl for Capped {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }

    fn schema_name(&self, args: &[Expr]) -> Result<String> {
        self.inner.schema_name(args)
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.return_type(arg_types)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        self.inner.return_field_from_args(args)
    }

    fn is_strict(&self) -> bool {
        self.inner.is_strict()
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        self.inner.coerce_types(arg_types)
    }

    fn simplify(&self, args: Vec<Expr>, info: &SimplifyContext) -> Result<ExprSimplifyResult> {
        self.inner.simplify(args, info)
    }

    fn short_circuits(&self) -> bool {
        self.inner.short_circuits()
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.inner.documentation()
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        if let Some(bytes) = self.bound.bytes(&args.args, rows) {
            if bytes > self.limit as u128 {
                return Err(DataFusionError::External(Box::new(QueryError::other(
                    SqlState::PROGRAM_LIMIT_EXCEEDED,
                    format!(
                        "requested length too large: {}() would build {}, more than the {} \
                         one call may build (memLimitOfQueryResult, at most 1 GB)",
                        self.inner.name(),
                        human(bytes),
                        human(self.limit as u128)
                    ),
                ))));
            }
        }
        self.inner.invoke_with_args(args)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scalar(v: ScalarValue) -> ColumnarValue {
        ColumnarValue::Scalar(v)
    }

    #[test]
    fn bounds_grow_with_the_arguments_that_size_the_result() {
        let s = scalar(ScalarValue::Utf8(Some("ab".into())));
        let n = scalar(ScalarValue::Int64(Some(1_000)));
        assert_eq!(Bound::Repeat.bytes(&[s.clone(), n.clone()], 3), Some(6_000));
        assert_eq!(Bound::Pad.bytes(&[s.clone(), n.clone()], 1), Some(4_000));
        let to = scalar(ScalarValue::Utf8(Some("x".repeat(10))));
        let from = scalar(ScalarValue::Utf8(Some("a".into())));
        assert_eq!(Bound::Replace.bytes(&[s, from, to], 1), Some(2 + 20));
        let stop = scalar(ScalarValue::Int64(Some(1_000_000_000)));
        assert_eq!(Bound::Range.bytes(&[stop], 1), Some(8_000_000_008));
        let date = scalar(ScalarValue::Date32(Some(0)));
        assert_eq!(Bound::Range.bytes(&[date.clone(), date], 1), None);
        let counts = ColumnarValue::Array(Arc::new(arrow::array::Int64Array::from(vec![
            Some(1),
            None,
            Some(-5),
            Some(10),
        ])));
        let s = scalar(ScalarValue::Utf8(Some("abc".into())));
        assert_eq!(Bound::Repeat.bytes(&[s, counts], 4), Some(33));
    }
}
