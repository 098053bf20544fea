//! Rewrites that let DataFusion run the catalog queries PostgreSQL clients send, on top of the
//! ones `datafusion-pg-catalog` applies.
//!
//! - `ARRAY(SELECT x FROM ...)` (psql's `\du`) becomes the scalar subquery
//!   `(SELECT array_agg(x) FROM ...)`.

use std::ops::ControlFlow;

use sqlparser::ast::{
    Expr, FunctionArg, FunctionArgExpr, FunctionArgumentList, FunctionArguments, Ident, ObjectName,
    SelectItem, SetExpr, Statement, VisitMut, VisitorMut,
};

/// Applies every rewrite to `stmt`.
pub fn rewrite(stmt: &mut Statement) {
    let _ = stmt.visit(&mut ArraySubquery);
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
