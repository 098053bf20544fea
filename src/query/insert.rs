//! PostgreSQL's assignment rules for the literals of `INSERT ... VALUES`, which DataFusion
//! would otherwise cast silently:
//! - a number or boolean goes only into a column whose type takes it (`true` into a DOUBLE
//!   column, or `5` into a DATE column, is SQLSTATE 42804, not a stored value);
//! - a number with a fraction going into an integer column is rounded half away from zero, as
//!   PostgreSQL's numeric-to-integer cast does (DataFusion would truncate);
//! - a `'\x...'` string going into a bytea column is hex, as PostgreSQL reads it;
//! - a `'YYYY-MM-DD HH:MI'` string (no seconds) going into a timestamp column gets `:00`;
//! - a NULL going into a NOT NULL column is SQLSTATE 23502 naming the column (DataFusion plans
//!   the VALUES with the table's nullability and would fail building them, as 22P02 naming
//!   `column<i>`).
//!
//! Anything that is not a plain literal is left to DataFusion.

use sqlparser::ast::{Expr, ObjectName, SetExpr, Statement, TableObject, UnaryOperator, Value};

use super::pg_compat::call;
use super::{QueryError, Session};
use crate::catalog::{ColumnDef, ColumnType};
use crate::sqlstate::SqlState;

/// Applies the rules to an INSERT statement's VALUES rows, in place.
pub fn apply(session: &Session, stmt: &mut Statement) -> Result<(), QueryError> {
    let Statement::Insert(insert) = stmt else {
        return Ok(());
    };
    let TableObject::TableName(name) = &insert.table else {
        return Ok(());
    };
    // An unknown table is DataFusion's to report.
    let Ok((db, table)) = session.resolve_table(name) else {
        return Ok(());
    };
    let metadata = session.engine().controller().metadata();
    let Some((_, def)) = metadata.table(&db, &table) else {
        return Ok(());
    };
    let targets: Vec<Option<&ColumnDef>> = if insert.columns.is_empty() {
        def.columns.iter().map(Some).collect()
    } else {
        insert
            .columns
            .iter()
            .map(|n| def.column(&object_name(n)))
            .collect()
    };
    let Some(source) = insert.source.as_mut() else {
        return Ok(());
    };
    let SetExpr::Values(values) = source.body.as_mut() else {
        return Ok(());
    };
    for row in &mut values.rows {
        for (expr, target) in row.iter_mut().zip(&targets) {
            if let Some(c) = target {
                if c.not_null && is_null(expr) {
                    return Err(QueryError::other(
                        SqlState::NOT_NULL_VIOLATION,
                        format!(
                            "null value in column \"{}\" violates not-null constraint",
                            c.name
                        ),
                    ));
                }
                assign(expr, &c.name, c.ty)?;
            }
        }
    }
    Ok(())
}

fn object_name(n: &ObjectName) -> String {
    n.0.last()
        .and_then(|p| p.as_ident())
        .map(|i| i.value.clone())
        .unwrap_or_default()
}

fn is_integer(t: ColumnType) -> bool {
    matches!(
        t,
        ColumnType::Char | ColumnType::Short | ColumnType::Int | ColumnType::Long
    )
}

fn takes_numbers(t: ColumnType) -> bool {
    is_integer(t)
        || matches!(
            t,
            ColumnType::Float
                | ColumnType::Double
                | ColumnType::Decimal { .. }
                | ColumnType::String
                | ColumnType::Symbol
        )
}

fn mismatch(column: &str, ty: ColumnType, what: &str) -> QueryError {
    QueryError::other(
        SqlState::DATATYPE_MISMATCH,
        format!("column \"{column}\" is of type {ty} but expression is of type {what}"),
    )
}

/// A NULL literal, also cast to a type (`NULL::int`, `cast(NULL as int)`) or in parentheses.
fn is_null(expr: &Expr) -> bool {
    match expr {
        Expr::Value(v) => matches!(v.value, Value::Null),
        Expr::Cast { expr, .. } | Expr::Nested(expr) => is_null(expr),
        _ => false,
    }
}

/// A numeric literal, with its sign folded in.
fn number(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Value(v) => match &v.value {
            Value::Number(n, _) => Some(n.clone()),
            _ => None,
        },
        Expr::UnaryOp {
            op: UnaryOperator::Minus,
            expr,
        } => number(expr).map(|n| format!("-{n}")),
        Expr::UnaryOp {
            op: UnaryOperator::Plus,
            expr,
        } => number(expr),
        _ => None,
    }
}

fn assign(expr: &mut Expr, column: &str, ty: ColumnType) -> Result<(), QueryError> {
    if let Some(n) = number(expr) {
        if !takes_numbers(ty) {
            let what = if n.contains(['.', 'e', 'E']) {
                "numeric"
            } else {
                "integer"
            };
            return Err(mismatch(column, ty, what));
        }
        if is_integer(ty) && n.contains(['.', 'e', 'E']) {
            if let Ok(v) = n.parse::<f64>() {
                // f64::round rounds half away from zero, as PostgreSQL does.
                let rounded = v.round();
                if rounded.abs() < 9.2e18 {
                    *expr = Expr::value(Value::Number((rounded as i64).to_string(), false));
                }
            }
        }
        return Ok(());
    }
    let Expr::Value(v) = expr else {
        return Ok(());
    };
    match &v.value {
        Value::Boolean(_)
            if !matches!(
                ty,
                ColumnType::Bool | ColumnType::String | ColumnType::Symbol
            ) =>
        {
            return Err(mismatch(column, ty, "boolean"));
        }
        Value::SingleQuotedString(s) if ty == ColumnType::Blob => {
            if let Some(hex) = s.strip_prefix("\\x") {
                if hex.len() % 2 != 0 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(QueryError::other(
                        SqlState::INVALID_TEXT_REPRESENTATION,
                        format!("invalid hexadecimal data for type bytea: \"{s}\""),
                    ));
                }
                *expr = call(
                    "decode",
                    vec![
                        Expr::value(Value::SingleQuotedString(hex.to_string())),
                        Expr::value(Value::SingleQuotedString("hex".into())),
                    ],
                );
            }
        }
        Value::SingleQuotedString(s)
            if matches!(
                ty,
                ColumnType::Timestamp
                    | ColumnType::TimestampMicros
                    | ColumnType::NanoTimestamp
                    | ColumnType::DateTime
            ) && super::pg_compat::without_seconds(s) =>
        {
            *expr = Expr::value(Value::SingleQuotedString(format!("{}:00", s.trim())));
        }
        _ => {}
    }
    Ok(())
}
