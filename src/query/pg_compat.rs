//! Rewrites that let DataFusion run the catalog queries PostgreSQL clients send, on top of the
//! ones `datafusion-pg-catalog` applies.
//!
//! - `ARRAY(SELECT x FROM ...)` (psql's `\du`) becomes the scalar subquery
//!   `(SELECT array_agg(x) FROM ...)`.
//! - A number with an exponent (`1e300`) is a double: DataFusion reads numbers with a
//!   fraction as decimals (PostgreSQL's `numeric`), which cannot hold such exponents.
//! - An unnamed function call in a select list is named as PostgreSQL names it
//!   (`count(*)` is `count`), so an outer query can refer to it by that name.

use std::ops::ControlFlow;

use sqlparser::ast::{
    Expr, FunctionArg, FunctionArgExpr, FunctionArgumentList, FunctionArguments, Ident, ObjectName,
    SelectItem, SetExpr, Statement, VisitMut, VisitorMut,
};

/// Applies every rewrite to `stmt`.
pub fn rewrite(stmt: &mut Statement) {
    let _ = stmt.visit(&mut ArraySubquery);
    let _ = stmt.visit(&mut FunctionNames);
    let _ = stmt.visit(&mut ExponentLiterals);
}

struct ExponentLiterals;

impl VisitorMut for ExponentLiterals {
    type Break = ();

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        if let Expr::Value(v) = expr {
            if let sqlparser::ast::Value::Number(n, _) = &v.value {
                if n.contains(['e', 'E']) {
                    *expr = Expr::Cast {
                        kind: sqlparser::ast::CastKind::DoubleColon,
                        expr: Box::new(Expr::value(sqlparser::ast::Value::SingleQuotedString(
                            n.clone(),
                        ))),
                        data_type: sqlparser::ast::DataType::DoublePrecision,
                        array: false,
                        format: None,
                    };
                }
            }
        }
        ControlFlow::Continue(())
    }
}

struct FunctionNames;

impl VisitorMut for FunctionNames {
    type Break = ();

    fn pre_visit_query(&mut self, query: &mut sqlparser::ast::Query) -> ControlFlow<()> {
        let SetExpr::Select(select) = query.body.as_mut() else {
            return ControlFlow::Continue(());
        };
        let name_of = |item: &SelectItem| -> Option<String> {
            match item {
                SelectItem::ExprWithAlias { alias, .. } => Some(alias.value.clone()),
                SelectItem::UnnamedExpr(Expr::Identifier(i)) => Some(i.value.clone()),
                SelectItem::UnnamedExpr(Expr::CompoundIdentifier(p)) => {
                    p.last().map(|i| i.value.clone())
                }
                SelectItem::UnnamedExpr(Expr::Function(f)) => f
                    .name
                    .0
                    .last()
                    .and_then(|p| p.as_ident())
                    .map(|i| i.value.to_lowercase()),
                _ => None,
            }
        };
        let names: Vec<Option<String>> = select.projection.iter().map(name_of).collect();
        for (i, item) in select.projection.iter_mut().enumerate() {
            let SelectItem::UnnamedExpr(expr @ Expr::Function(_)) = item else {
                continue;
            };
            let Some(name) = &names[i] else { continue };
            let unique = names
                .iter()
                .enumerate()
                .all(|(j, n)| j == i || n.as_deref() != Some(name.as_str()));
            // Functions of the pg_catalog emulation keep their own names.
            if unique && !name.starts_with("pg_") {
                *item = SelectItem::ExprWithAlias {
                    expr: expr.clone(),
                    alias: Ident::with_quote('"', name.clone()),
                };
            }
        }
        ControlFlow::Continue(())
    }
}

struct ArraySubquery;

impl VisitorMut for ArraySubquery {
    type Break = ();

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        let Expr::Function(f) = expr else {
            return ControlFlow::Continue(());
        };
        let is_array = f.name.0.len() == 1
            && f.name.0[0]
                .as_ident()
                .is_some_and(|i| i.value.eq_ignore_ascii_case("array"));
        let FunctionArguments::Subquery(query) = &f.args else {
            return ControlFlow::Continue(());
        };
        if !is_array {
            return ControlFlow::Continue(());
        }
        let mut query = query.clone();
        if let SetExpr::Select(select) = query.body.as_mut() {
            if let [SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. }] =
                select.projection.as_mut_slice()
            {
                let inner = e.clone();
                *e = Expr::Function(sqlparser::ast::Function {
                    name: ObjectName::from(vec![Ident::new("array_agg")]),
                    uses_odbc_syntax: false,
                    parameters: FunctionArguments::None,
                    args: FunctionArguments::List(FunctionArgumentList {
                        duplicate_treatment: None,
                        args: vec![FunctionArg::Unnamed(FunctionArgExpr::Expr(inner))],
                        clauses: vec![],
                    }),
                    filter: None,
                    null_treatment: None,
                    over: None,
                    within_group: vec![],
                });
                *expr = Expr::Subquery(query);
            }
        }
        ControlFlow::Continue(())
    }
}
