//! The types of a prepared statement's `$n` parameters.
//!
//! DataFusion infers a parameter's type only from what it is compared with or inserted into;
//! `$1::int`, `coalesce($1::text, 'x')` or a bare `select $1` leave it untyped. PostgreSQL
//! types them from the type the client named in Parse, else from the cast applied to the
//! parameter. [`assign_parameter_types`] does the same on a planned statement, so Describe
//! reports the type (clients such as tokio-postgres refuse to bind a value to an `unknown`
//! parameter) and a NULL bound to it becomes a NULL of that type.
//!
//! Invariant: a type DataFusion inferred is never replaced, and a parameter cast to two
//! different types stays untyped rather than making the plan conflict with itself.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field};
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::Result;
use datafusion::logical_expr::expr::{Cast, Placeholder, TryCast};
use datafusion::logical_expr::{Expr, LogicalPlan};

/// Gives each untyped `$n` of `plan` the type `given[n - 1]` (the client's, from Parse), or
/// else the one type it is cast to. Parameters that are already typed, or that neither
/// names, are left as they are.
pub fn assign_parameter_types(
    plan: LogicalPlan,
    given: &[Option<DataType>],
) -> Result<LogicalPlan> {
    let mut assigned: HashMap<String, DataType> = HashMap::new();
    let mut casts: HashMap<String, Option<DataType>> = HashMap::new();
    for (id, ty) in plan.get_parameter_types()? {
        if ty.is_some() {
            continue;
        }
        let client = id
            .strip_prefix('$')
            .and_then(|n| n.parse::<usize>().ok())
            .and_then(|n| n.checked_sub(1))
            .and_then(|i| given.get(i).cloned().flatten());
        match client {
            Some(t) => {
                assigned.insert(id, t);
            }
            None => {
                casts.insert(id, None);
            }
        }
    }
    if !casts.is_empty() {
        let mut conflicting = Vec::new();
        plan.apply_with_subqueries(|node| {
            node.apply_expressions(|e| {
                e.apply(|e| {
                    if let Some((id, to)) = cast_placeholder(e) {
                        match casts.get_mut(id) {
                            Some(slot @ None) => *slot = Some(to.clone()),
                            Some(Some(prev)) if prev != to => conflicting.push(id.to_owned()),
                            _ => {}
                        }
                    }
                    Ok(TreeNodeRecursion::Continue)
                })
            })
        })?;
        for id in conflicting {
            casts.remove(&id);
        }
        assigned.extend(casts.into_iter().filter_map(|(id, t)| Some((id, t?))));
    }
    if assigned.is_empty() {
        return Ok(plan);
    }
    plan.transform_up_with_subqueries(|node| {
        node.map_expressions(|e| {
            e.transform_up(|e| match e {
                Expr::Placeholder(Placeholder { id, field: None }) => match assigned.get(&id) {
                    Some(t) => {
                        let field = Arc::new(Field::new(id.clone(), t.clone(), true));
                        Ok(Transformed::yes(Expr::Placeholder(
                            Placeholder::new_with_field(id, Some(field)),
                        )))
                    }
                    None => Ok(Transformed::no(Expr::Placeholder(Placeholder {
                        id,
                        field: None,
                    }))),
                },
                other => Ok(Transformed::no(other)),
            })
        })?
        .map_data(|node| node.recompute_schema())
    })
    .map(|t| t.data)
}

/// `$n::type` (or `try_cast($n as type)`) with `$n` untyped: the parameter and the type.
fn cast_placeholder(e: &Expr) -> Option<(&str, &DataType)> {
    let (inner, to) = match e {
        Expr::Cast(Cast { expr, field }) => (expr, field.data_type()),
        Expr::TryCast(TryCast { expr, field }) => (expr, field.data_type()),
        _ => return None,
    };
    match inner.as_ref() {
        Expr::Placeholder(Placeholder { id, field: None }) => Some((id, to)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::SessionContext;

    async fn plan(sql: &str) -> LogicalPlan {
        SessionContext::new()
            .state()
            .create_logical_plan(sql)
            .await
            .unwrap()
    }

    fn types(plan: &LogicalPlan) -> Vec<(String, Option<DataType>)> {
        let mut v: Vec<_> = plan.get_parameter_types().unwrap().into_iter().collect();
        v.sort();
        v
    }

    #[tokio::test]
    async fn a_cast_types_its_parameter_and_the_client_type_wins() {
        let p = plan("select $1::int, coalesce($2::double, 1), $3").await;
        let p = assign_parameter_types(p, &[Some(DataType::Int64), None, None]).unwrap();
        assert_eq!(
            types(&p),
            vec![
                ("$1".into(), Some(DataType::Int64)),
                ("$2".into(), Some(DataType::Float64)),
                ("$3".into(), None),
            ]
        );
    }

    #[tokio::test]
    async fn two_different_casts_leave_the_parameter_untyped() {
        let p = plan("select $1::int as a, $1::varchar as b").await;
        let p = assign_parameter_types(p, &[]).unwrap();
        assert_eq!(types(&p), vec![("$1".into(), None)]);
    }
}
