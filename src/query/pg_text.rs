//! Timestamps cast to text read as PostgreSQL prints them: `ts::varchar` is
//! `2024-01-10 09:30:00` (a space, fractional seconds only when there are some, without
//! trailing zeros), not Arrow's ISO `2024-01-10T09:30:00`.
//!
//! [`TimestampText`] is an analyzer rule, run after type coercion (when every cast's input
//! type is known): it replaces each cast of a `timestamp without time zone` to a string type by
//! `porpoise_timestamp_text(x)` ([`udf`]), keeping the expression's name.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, StringBuilder};
use arrow::datatypes::{DataType, TimeUnit, TimestampMicrosecondType};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DFSchema, Result};
use datafusion::functions::utils::make_scalar_function;
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::{
    create_udf, Expr, ExprSchemable, LogicalPlan, ScalarUDF, Volatility,
};
use datafusion::optimizer::AnalyzerRule;

const NAME: &str = "porpoise_timestamp_text";

/// `porpoise_timestamp_text(timestamp)`: PostgreSQL's text of a timestamp.
pub fn udf() -> ScalarUDF {
    create_udf(
        NAME,
        vec![DataType::Timestamp(TimeUnit::Microsecond, None)],
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(make_scalar_function(
            |arrays: &[ArrayRef]| {
                let times = arrays[0].as_primitive::<TimestampMicrosecondType>();
                let mut out = StringBuilder::new();
                for i in 0..times.len() {
                    match (!times.is_null(i))
                        .then(|| chrono::DateTime::from_timestamp_micros(times.value(i)))
                        .flatten()
                    {
                        Some(t) => out.append_value(text(&t.naive_utc())),
                        None => out.append_null(),
                    }
                }
                Ok(Arc::new(out.finish()) as ArrayRef)
            },
            vec![],
        )),
    )
}

/// `2024-01-10 09:30:00`, or `2024-01-10 09:30:00.5` with a fraction.
pub fn text(t: &chrono::NaiveDateTime) -> String {
    let base = t.format("%Y-%m-%d %H:%M:%S").to_string();
    let micros = t.and_utc().timestamp_subsec_micros();
    if micros == 0 {
        return base;
    }
    let fraction = format!("{micros:06}");
    format!("{base}.{}", fraction.trim_end_matches('0'))
}

/// The analyzer rule; see the module documentation.
#[derive(Debug)]
pub struct TimestampText {
    udf: Arc<ScalarUDF>,
}

impl Default for TimestampText {
    fn default() -> Self {
        Self::new()
    }
}

impl TimestampText {
    pub fn new() -> Self {
        TimestampText {
            udf: Arc::new(udf()),
        }
    }

    fn rewrite(&self, e: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
        let (inner, target) = match &e {
            Expr::Cast(c) => (&c.expr, c.field.data_type().clone()),
            Expr::TryCast(c) => (&c.expr, c.field.data_type().clone()),
            _ => return Ok(Transformed::no(e)),
        };
        if !matches!(
            target,
            DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8
        ) {
            return Ok(Transformed::no(e));
        }
        let Ok(DataType::Timestamp(unit, None)) = inner.get_type(schema) else {
            return Ok(Transformed::no(e));
        };
        let mut arg = inner.as_ref().clone();
        if unit != TimeUnit::Microsecond {
            arg = arg.cast_to(&DataType::Timestamp(TimeUnit::Microsecond, None), schema)?;
        }
        let mut call = Expr::ScalarFunction(ScalarFunction::new_udf(self.udf.clone(), vec![arg]));
        if target != DataType::Utf8 {
            call = call.cast_to(&target, schema)?;
        }
        Ok(Transformed::yes(call))
    }
}

impl AnalyzerRule for TimestampText {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        plan.transform_up_with_subqueries(|plan| {
            let inputs = plan.inputs();
            let Some((first, rest)) = inputs.split_first() else {
                return Ok(Transformed::no(plan));
            };
            let mut schema = first.schema().as_ref().clone();
            for other in rest {
                schema.merge(other.schema());
            }
            let names = NamePreserver::new(&plan);
            plan.map_expressions(|e| {
                let saved = names.save(&e);
                let t = e.transform_up(|e| self.rewrite(e, &schema))?;
                Ok(if t.transformed {
                    t.update_data(|e| saved.restore(e))
                } else {
                    t
                })
            })
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "porpoise_timestamp_text"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_print_like_postgres() {
        let t =
            chrono::NaiveDateTime::parse_from_str("2024-01-10 09:30:00.5", "%Y-%m-%d %H:%M:%S%.f")
                .unwrap();
        assert_eq!(text(&t), "2024-01-10 09:30:00.5");
        let t = chrono::NaiveDateTime::parse_from_str("2024-01-10 09:30:00", "%Y-%m-%d %H:%M:%S")
            .unwrap();
        assert_eq!(text(&t), "2024-01-10 09:30:00");
    }
}
