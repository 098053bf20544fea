//! Rewrites that let DataFusion run the catalog queries PostgreSQL clients send, on top of the
//! ones `datafusion-pg-catalog` applies.
//!
//! - `ARRAY(SELECT x FROM ...)` (psql's `\du`) becomes the scalar subquery
//!   `(SELECT array_agg(x) FROM ...)`.
//! - A number with an exponent (`1e300`) is a double: DataFusion reads numbers with a
//!   fraction as decimals (PostgreSQL's `numeric`), which cannot hold such exponents.
//! - An unnamed function call in a select list is named as PostgreSQL names it
//!   (`count(*)` is `count`), so an outer query can refer to it by that name.
//! - `LIKE p ESCAPE 'c'` with another escape than the backslash (SQLAlchemy escapes with
//!   `/`): the pattern is translated to backslash escapes at run time by
//!   `porpoise_like_escape(p, 'c')`, which DataFusion's LIKE understands.
//! - `unnest(v)` and `generate_subscripts(v, 1)` over the vector columns of `pg_index` and
//!   `pg_constraint` (`indkey`, `conkey`, ..., text in the catalog emulation) unnest the
//!   numbers of the text (SQLAlchemy reflects keys and indexes with them).
//! - A scalar subquery over catalog tables only (`pg_catalog`, `information_schema`)
//!   selecting one plain expression (no aggregate, no GROUP BY, no ORDER BY) selects its
//!   `max`: DataFusion plans correlated scalar subqueries only when aggregated, and
//!   SQLAlchemy's column reflection has several (one row each, or none). Subqueries over
//!   databases are left alone, so more than one row stays an error there.
//!   One over `pg_attrdef`, `pg_sequence` or `pg_collation` is NULL: porpoise columns have
//!   no defaults, identity sequences or collations of their own, and DataFusion cannot
//!   decorrelate such a subquery inside a CASE.
//! - `reloptions` and the ACL columns (`relacl`, `nspacl`, ...) of the catalog (named with
//!   their table or its alias) are a NULL `text[]`: the catalog emulation lacks them or has
//!   them as text, and porpoise objects have no storage options or PostgreSQL ACLs (psql's `\d+` and `\dp`, SQLAlchemy's index reflection); `unnest` in a
//!   FROM clause loses its `pg_catalog.` qualifier, which DataFusion's planner does not take.
//! - `localtimestamp` and `localtime` are calls of the functions of those names.
//! - A `regproc` column of `pg_type` (`typreceive`, ...), text in the catalog emulation,
//!   compared with the number 0 (no function) is compared with `-`, how PostgreSQL prints
//!   oid 0 as a regproc (the ADBC driver's type query does this).
//! - An integer literal that fits in 32 bits, selected as it is (`select 1`), is PostgreSQL's
//!   `integer` (int4), not DataFusion's Int64: drivers such as node-postgres decode an int8
//!   as a string. Literals inside expressions keep DataFusion's typing.
//! - A timestamp literal without seconds (`'2024-01-10 00:00'::timestamp`) gets `:00`, as
//!   PostgreSQL reads it; DataFusion's parser wants the seconds.
//! - `information_schema.columns` names types as PostgreSQL does (`data_type` is `integer`,
//!   `timestamp without time zone`, `text`, ...; `udt_name` is `int4`, ...), which BI tools
//!   match on, instead of Arrow's names.
//! - `current_user`, `session_user`, `user` and `current_role` in a select list are named
//!   after themselves ([`name_special_functions`]), before `datafusion-pg-catalog` turns
//!   `current_user` into `session_user` (which would make `select current_user,
//!   session_user` name two columns alike).

use std::ops::ControlFlow;

use sqlparser::ast::{
    Expr, FunctionArg, FunctionArgExpr, FunctionArgumentList, FunctionArguments, Ident, ObjectName,
    SelectItem, SetExpr, Statement, VisitMut, VisitorMut,
};

/// The SQL text `sql` with every unnamed `current_user`-like keyword of a select list named
/// after itself; `sql` itself when there is none (or it does not parse: the real parse
/// reports the error).
pub fn name_special_functions(sql: &str) -> std::borrow::Cow<'_, str> {
    const NAMES: [&str; 4] = ["current_user", "session_user", "current_role", "user"];
    // Parsed a second time only when one of the names stands as a word: `users` or
    // `user_id` are not worth a parse.
    let mentioned = sql
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .any(|w| NAMES.iter().any(|n| w.eq_ignore_ascii_case(n)));
    if !mentioned {
        return sql.into();
    }
    let dialect = sqlparser::dialect::PostgreSqlDialect {};
    let Ok(mut stmts) = sqlparser::parser::Parser::parse_sql(&dialect, sql) else {
        return sql.into();
    };
    let mut changed = false;
    for stmt in &mut stmts {
        let Statement::Query(q) = stmt else { continue };
        let SetExpr::Select(select) = q.body.as_mut() else {
            continue;
        };
        for item in &mut select.projection {
            let SelectItem::UnnamedExpr(Expr::Function(f)) = item else {
                continue;
            };
            let Some(name) = f.name.0.last().and_then(|p| p.as_ident()) else {
                continue;
            };
            let name = name.value.to_ascii_lowercase();
            if matches!(f.args, FunctionArguments::None) && NAMES.contains(&name.as_str()) {
                *item = SelectItem::ExprWithAlias {
                    expr: Expr::Function(f.clone()),
                    alias: Ident::with_quote('"', name),
                };
                changed = true;
            }
        }
    }
    if !changed || stmts.len() != 1 {
        return sql.into();
    }
    stmts[0].to_string().into()
}

/// Applies every rewrite to `stmt`.
pub fn rewrite(stmt: &mut Statement) {
    let _ = stmt.visit(&mut LikeEscape);
    let _ = stmt.visit(&mut VectorColumns);
    let _ = stmt.visit(&mut MissingCatalogColumns);
    let _ = stmt.visit(&mut RegprocZero);
    let _ = stmt.visit(&mut TimestampLiterals);
    let _ = stmt.visit(&mut IntegerLiterals);
    let _ = stmt.visit(&mut InformationSchemaColumns);
    let _ = stmt.visit(&mut AggregatedScalarSubqueries);
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

/// The call `name(args...)`.
pub(super) fn call(name: &str, args: Vec<Expr>) -> Expr {
    Expr::Function(sqlparser::ast::Function {
        name: ObjectName::from(vec![Ident::new(name)]),
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::List(FunctionArgumentList {
            duplicate_treatment: None,
            args: args
                .into_iter()
                .map(|a| FunctionArg::Unnamed(FunctionArgExpr::Expr(a)))
                .collect(),
            clauses: vec![],
        }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: vec![],
    })
}

fn string(s: &str) -> Expr {
    Expr::value(sqlparser::ast::Value::SingleQuotedString(s.to_string()))
}

struct LikeEscape;

impl VisitorMut for LikeEscape {
    type Break = ();

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        let (Expr::Like {
            pattern,
            escape_char,
            ..
        }
        | Expr::ILike {
            pattern,
            escape_char,
            ..
        }) = expr
        else {
            return ControlFlow::Continue(());
        };
        let Some(escape) = escape_char.as_ref() else {
            return ControlFlow::Continue(());
        };
        let escape = match &escape.value {
            sqlparser::ast::Value::SingleQuotedString(s) => s.clone(),
            _ => return ControlFlow::Continue(()),
        };
        if escape == "\\" {
            return ControlFlow::Continue(());
        }
        let inner = std::mem::replace(pattern.as_mut(), Expr::value(sqlparser::ast::Value::Null));
        **pattern = call("porpoise_like_escape", vec![inner, string(&escape)]);
        *escape_char = None;
        ControlFlow::Continue(())
    }
}

/// Columns of the catalog emulation that PostgreSQL types as vectors of numbers.
const VECTOR_COLUMNS: [&str; 6] = [
    "indkey",
    "indoption",
    "indclass",
    "indcollation",
    "conkey",
    "confkey",
];

struct VectorColumns;

impl VectorColumns {
    /// `v` as an `INT[]` when it is a vector column.
    fn as_array(e: &Expr) -> Option<Expr> {
        let name = match e {
            Expr::Identifier(i) => &i.value,
            Expr::CompoundIdentifier(p) => &p.last()?.value,
            _ => return None,
        };
        if !VECTOR_COLUMNS.contains(&name.to_ascii_lowercase().as_str()) {
            return None;
        }
        let digits = call(
            "regexp_replace",
            vec![e.clone(), string("[^0-9-]+"), string(" "), string("g")],
        );
        let list = call(
            "string_to_array",
            vec![call("btrim", vec![digits]), string(" ")],
        );
        Some(Expr::Cast {
            kind: sqlparser::ast::CastKind::Cast,
            expr: Box::new(list),
            data_type: sqlparser::ast::DataType::Array(
                sqlparser::ast::ArrayElemTypeDef::SquareBracket(
                    Box::new(sqlparser::ast::DataType::Int(None)),
                    None,
                ),
            ),
            array: false,
            format: None,
        })
    }
}

impl VisitorMut for VectorColumns {
    type Break = ();

    fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        let Expr::Function(f) = expr else {
            return ControlFlow::Continue(());
        };
        let Some(name) = f.name.0.last().and_then(|p| p.as_ident()) else {
            return ControlFlow::Continue(());
        };
        let name = name.value.to_ascii_lowercase();
        let FunctionArguments::List(list) = &f.args else {
            return ControlFlow::Continue(());
        };
        let Some(FunctionArg::Unnamed(FunctionArgExpr::Expr(arg))) = list.args.first() else {
            return ControlFlow::Continue(());
        };
        let Some(array) = Self::as_array(arg) else {
            return ControlFlow::Continue(());
        };
        match name.as_str() {
            "unnest" => *expr = call("unnest", vec![array]),
            "generate_subscripts" => {
                let length = call(
                    "coalesce",
                    vec![
                        call(
                            "array_length",
                            vec![
                                array,
                                Expr::value(sqlparser::ast::Value::Number("1".into(), false)),
                            ],
                        ),
                        Expr::value(sqlparser::ast::Value::Number("0".into(), false)),
                    ],
                );
                let length = Expr::Cast {
                    kind: sqlparser::ast::CastKind::Cast,
                    expr: Box::new(length),
                    data_type: sqlparser::ast::DataType::BigInt(None),
                    array: false,
                    format: None,
                };
                // The dimension (only 1 is meaningful) stays in the expression: it may be a
                // `$n` parameter, and parameters are described by position.
                let one = Expr::value(sqlparser::ast::Value::Number("1".into(), false));
                let start = match list.args.get(1) {
                    Some(FunctionArg::Unnamed(FunctionArgExpr::Expr(dim))) => call(
                        "least",
                        vec![
                            one.clone(),
                            Expr::Cast {
                                kind: sqlparser::ast::CastKind::Cast,
                                expr: Box::new(dim.clone()),
                                data_type: sqlparser::ast::DataType::BigInt(None),
                                array: false,
                                format: None,
                            },
                        ],
                    ),
                    _ => one,
                };
                let series = call("generate_series", vec![start, length]);
                *expr = call("unnest", vec![series]);
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }
}

/// `porpoise_like_escape(pattern, escape)`: a LIKE pattern written with escape character
/// `escape` (none if empty), rewritten with backslash escapes.
pub fn like_escape_udf() -> datafusion::logical_expr::ScalarUDF {
    use arrow::array::{Array, AsArray, StringBuilder};
    use arrow::datatypes::DataType;
    use datafusion::functions::utils::make_scalar_function;
    use datafusion::logical_expr::{create_udf, Volatility};
    create_udf(
        "porpoise_like_escape",
        vec![DataType::Utf8, DataType::Utf8],
        DataType::Utf8,
        Volatility::Immutable,
        std::sync::Arc::new(make_scalar_function(
            |arrays: &[arrow::array::ArrayRef]| {
                let patterns = arrays[0].as_string::<i32>();
                let escapes = arrays[1].as_string::<i32>();
                let mut out = StringBuilder::new();
                for i in 0..patterns.len() {
                    if patterns.is_null(i) || escapes.is_null(i) {
                        out.append_null();
                        continue;
                    }
                    out.append_value(backslash_escaped(
                        patterns.value(i),
                        escapes.value(i).chars().next(),
                    ));
                }
                Ok(std::sync::Arc::new(out.finish()) as arrow::array::ArrayRef)
            },
            vec![],
        )),
    )
}

fn backslash_escaped(pattern: &str, escape: Option<char>) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if Some(c) == escape {
            match chars.next() {
                Some(n @ ('%' | '_' | '\\')) => {
                    out.push('\\');
                    out.push(n);
                }
                Some(n) => out.push(n),
                None => {}
            }
        } else if c == '\\' {
            out.push_str("\\\\");
        } else {
            out.push(c);
        }
    }
    out
}

/// Whether a FROM item is a table of `pg_catalog` or `information_schema`.
fn is_catalog_table(factor: &sqlparser::ast::TableFactor) -> bool {
    let sqlparser::ast::TableFactor::Table { name, .. } = factor else {
        return false;
    };
    let parts: Vec<String> = name
        .0
        .iter()
        .filter_map(|p| p.as_ident().map(|i| i.value.to_ascii_lowercase()))
        .collect();
    match parts.as_slice() {
        [.., schema, _] => schema == "pg_catalog" || schema == "information_schema",
        [table] => table.starts_with("pg_"),
        [] => false,
    }
}

struct AggregatedScalarSubqueries;

/// Aggregate functions (and functions that are not per row) a scalar subquery may already
/// select.
const AGGREGATES: [&str; 14] = [
    "count",
    "max",
    "min",
    "sum",
    "avg",
    "array_agg",
    "string_agg",
    "bool_and",
    "bool_or",
    "every",
    "json_agg",
    "first_value",
    "last_value",
    "array_to_string",
];

impl VisitorMut for AggregatedScalarSubqueries {
    type Break = ();

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        let Expr::Subquery(query) = expr else {
            return ControlFlow::Continue(());
        };
        if query.order_by.is_some() || query.with.is_some() {
            return ControlFlow::Continue(());
        }
        let SetExpr::Select(select) = query.body.as_mut() else {
            return ControlFlow::Continue(());
        };
        let about_nothing = !select.from.is_empty()
            && select.from.iter().all(|t| match &t.relation {
                sqlparser::ast::TableFactor::Table { name, .. } => {
                    name.0.last().and_then(|p| p.as_ident()).is_some_and(|i| {
                        ["pg_attrdef", "pg_sequence", "pg_collation"]
                            .contains(&i.value.to_ascii_lowercase().as_str())
                    })
                }
                _ => false,
            });
        if about_nothing {
            *expr = null_keeping_parameters(expr);
            return ControlFlow::Continue(());
        }
        let catalog_only = !select.from.is_empty()
            && select.from.iter().all(|t| {
                std::iter::once(&t.relation)
                    .chain(t.joins.iter().map(|j| &j.relation))
                    .all(is_catalog_table)
            });
        if !catalog_only {
            return ControlFlow::Continue(());
        }
        let no_group = match &select.group_by {
            sqlparser::ast::GroupByExpr::Expressions(e, _) => e.is_empty(),
            sqlparser::ast::GroupByExpr::All(_) => false,
        };
        if !no_group || select.having.is_some() || select.distinct.is_some() {
            return ControlFlow::Continue(());
        }
        let [item] = select.projection.as_mut_slice() else {
            return ControlFlow::Continue(());
        };
        let (SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. }) = item else {
            return ControlFlow::Continue(());
        };
        if let Expr::Function(f) = e {
            let name = f
                .name
                .0
                .last()
                .and_then(|p| p.as_ident())
                .map(|i| i.value.to_ascii_lowercase())
                .unwrap_or_default();
            if AGGREGATES.contains(&name.as_str()) || f.over.is_some() {
                return ControlFlow::Continue(());
            }
        }
        let inner = e.clone();
        *e = call("max", vec![inner]);
        ControlFlow::Continue(())
    }
}

/// NULL, as an expression that still mentions every `$n` parameter of `expr` (with its
/// casts): the parameters of a statement are described by position, so none may vanish.
fn null_keeping_parameters(expr: &Expr) -> Expr {
    struct Params(Vec<Expr>);
    impl sqlparser::ast::Visitor for Params {
        type Break = ();
        fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
            let is_param = |e: &Expr| matches!(e, Expr::Value(v) if matches!(v.value, sqlparser::ast::Value::Placeholder(_)));
            match e {
                Expr::Cast { expr, .. } if is_param(expr) => self.0.push(e.clone()),
                e if is_param(e) => self.0.push(e.clone()),
                _ => {}
            }
            ControlFlow::Continue(())
        }
    }
    let mut params = Params(Vec::new());
    let _ = sqlparser::ast::Visit::visit(expr, &mut params);
    if params.0.is_empty() {
        return Expr::value(sqlparser::ast::Value::Null);
    }
    let mut condition = Expr::value(sqlparser::ast::Value::Boolean(false));
    for p in params.0 {
        condition = Expr::BinaryOp {
            left: Box::new(condition),
            op: sqlparser::ast::BinaryOperator::And,
            right: Box::new(Expr::IsNull(Box::new(p))),
        };
    }
    Expr::Case {
        case_token: sqlparser::ast::helpers::attached_token::AttachedToken::empty(),
        end_token: sqlparser::ast::helpers::attached_token::AttachedToken::empty(),
        operand: None,
        conditions: vec![sqlparser::ast::CaseWhen {
            condition,
            result: Expr::value(sqlparser::ast::Value::Null),
        }],
        else_result: None,
    }
}

struct MissingCatalogColumns;

impl VisitorMut for MissingCatalogColumns {
    type Break = ();

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        let Expr::CompoundIdentifier(parts) = expr else {
            return ControlFlow::Continue(());
        };
        let n = parts.len();
        if n >= 2
            && [
                "reloptions",
                "relacl",
                "nspacl",
                "datacl",
                "spcacl",
                "proacl",
                "typacl",
                "lanacl",
                "attacl",
            ]
            .iter()
            .any(|c| parts[n - 1].value.eq_ignore_ascii_case(c))
        {
            *expr = Expr::Cast {
                kind: sqlparser::ast::CastKind::Cast,
                expr: Box::new(Expr::value(sqlparser::ast::Value::Null)),
                data_type: sqlparser::ast::DataType::Array(
                    sqlparser::ast::ArrayElemTypeDef::SquareBracket(
                        Box::new(sqlparser::ast::DataType::Text),
                        None,
                    ),
                ),
                array: false,
                format: None,
            };
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        if let Expr::Identifier(i) = expr {
            let name = i.value.to_ascii_lowercase();
            if i.quote_style.is_none() && (name == "localtimestamp" || name == "localtime") {
                *expr = call(&name, vec![]);
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(
        &mut self,
        factor: &mut sqlparser::ast::TableFactor,
    ) -> ControlFlow<()> {
        if let sqlparser::ast::TableFactor::Table {
            name,
            args: Some(_),
            ..
        } = factor
        {
            let unnest = name
                .0
                .last()
                .and_then(|p| p.as_ident())
                .is_some_and(|i| i.value.eq_ignore_ascii_case("unnest"));
            if unnest && name.0.len() == 2 {
                name.0.remove(0);
            }
        }
        ControlFlow::Continue(())
    }
}

struct RegprocZero;

const REGPROC_COLUMNS: [&str; 7] = [
    "typinput",
    "typoutput",
    "typreceive",
    "typsend",
    "typmodin",
    "typmodout",
    "typanalyze",
];

impl VisitorMut for RegprocZero {
    type Break = ();

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        let Expr::BinaryOp { left, op, right } = expr else {
            return ControlFlow::Continue(());
        };
        if !matches!(
            op,
            sqlparser::ast::BinaryOperator::Eq | sqlparser::ast::BinaryOperator::NotEq
        ) {
            return ControlFlow::Continue(());
        }
        let is_regproc = |e: &Expr| {
            let name = match e {
                Expr::Identifier(i) => &i.value,
                Expr::CompoundIdentifier(p) => match p.last() {
                    Some(i) => &i.value,
                    None => return false,
                },
                _ => return false,
            };
            REGPROC_COLUMNS.contains(&name.to_ascii_lowercase().as_str())
        };
        let is_zero = |e: &Expr| matches!(e, Expr::Value(v) if matches!(&v.value, sqlparser::ast::Value::Number(n, _) if n == "0"));
        if is_regproc(left) && is_zero(right) {
            **right = string("-");
        } else if is_zero(left) && is_regproc(right) {
            **left = string("-");
        }
        ControlFlow::Continue(())
    }
}

struct TimestampLiterals;

/// `YYYY-MM-DD HH:MM` (also with `T`): a timestamp without seconds.
pub fn without_seconds(s: &str) -> bool {
    let b = s.trim().as_bytes();
    b.len() == 16
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b' ' || *c == b'T',
            13 => *c == b':',
            _ => c.is_ascii_digit(),
        })
}

impl VisitorMut for TimestampLiterals {
    type Break = ();

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        let value = match expr {
            Expr::Cast {
                expr: inner,
                data_type: sqlparser::ast::DataType::Timestamp(..),
                ..
            } => match inner.as_mut() {
                Expr::Value(v) => &mut v.value,
                _ => return ControlFlow::Continue(()),
            },
            Expr::TypedString(t)
                if matches!(t.data_type, sqlparser::ast::DataType::Timestamp(..)) =>
            {
                &mut t.value.value
            }
            _ => return ControlFlow::Continue(()),
        };
        if let sqlparser::ast::Value::SingleQuotedString(s) = value {
            if without_seconds(s) {
                *s = format!("{}:00", s.trim());
            }
        }
        ControlFlow::Continue(())
    }
}

struct IntegerLiterals;

impl IntegerLiterals {
    fn fits_int4(e: &Expr) -> bool {
        match e {
            Expr::Value(v) => {
                matches!(&v.value, sqlparser::ast::Value::Number(n, false) if n.parse::<i32>().is_ok())
            }
            Expr::UnaryOp {
                op: sqlparser::ast::UnaryOperator::Minus,
                expr,
            } => {
                matches!(expr.as_ref(), Expr::Value(v) if matches!(&v.value, sqlparser::ast::Value::Number(n, false) if format!("-{n}").parse::<i32>().is_ok()))
            }
            _ => false,
        }
    }
}

impl VisitorMut for IntegerLiterals {
    type Break = ();

    fn pre_visit_query(&mut self, query: &mut sqlparser::ast::Query) -> ControlFlow<()> {
        let SetExpr::Select(select) = query.body.as_mut() else {
            return ControlFlow::Continue(());
        };
        // Only a SELECT without FROM: a literal there cannot meet a column it would be
        // compared or combined with (and GROUP BY 1 means a position).
        if !select.from.is_empty() {
            return ControlFlow::Continue(());
        }
        for item in &mut select.projection {
            let (SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. }) = item
            else {
                continue;
            };
            if Self::fits_int4(e) {
                *e = Expr::Cast {
                    kind: sqlparser::ast::CastKind::DoubleColon,
                    expr: Box::new(e.clone()),
                    data_type: sqlparser::ast::DataType::Int(None),
                    array: false,
                    format: None,
                };
            }
        }
        ControlFlow::Continue(())
    }
}

struct InformationSchemaColumns;

/// `information_schema.columns` with PostgreSQL's type names; reads DataFusion's table
/// through its three-part name, which this rewrite leaves alone.
const PG_COLUMNS: &str = "SELECT table_catalog, table_schema, table_name, column_name, \
     ordinal_position, column_default, is_nullable, porpoise_pg_type_name(data_type) AS data_type, \
     character_maximum_length, character_octet_length, numeric_precision, \
     numeric_precision_radix, numeric_scale, datetime_precision, interval_type, \
     porpoise_pg_udt_name(data_type) AS udt_name \
     FROM porpoise.information_schema.columns";

impl VisitorMut for InformationSchemaColumns {
    type Break = ();

    fn pre_visit_table_factor(
        &mut self,
        factor: &mut sqlparser::ast::TableFactor,
    ) -> ControlFlow<()> {
        let sqlparser::ast::TableFactor::Table { name, alias, .. } = factor else {
            return ControlFlow::Continue(());
        };
        let parts: Vec<String> = name
            .0
            .iter()
            .filter_map(|p| p.as_ident().map(|i| i.value.to_ascii_lowercase()))
            .collect();
        if parts != ["information_schema", "columns"] {
            return ControlFlow::Continue(());
        }
        let Some(mut derived) = PG_COLUMNS_TABLE.clone() else {
            return ControlFlow::Continue(());
        };
        if let (
            Some(given),
            sqlparser::ast::TableFactor::Derived {
                alias: Some(alias), ..
            },
        ) = (alias.as_ref(), &mut derived)
        {
            alias.name = given.name.clone();
        }
        *factor = derived;
        ControlFlow::Continue(())
    }
}

/// [`PG_COLUMNS`] as a FROM item aliased `columns`, parsed once.
static PG_COLUMNS_TABLE: std::sync::LazyLock<Option<sqlparser::ast::TableFactor>> =
    std::sync::LazyLock::new(|| {
        let sql = format!("SELECT * FROM ({PG_COLUMNS}) AS columns");
        let dialect = sqlparser::dialect::PostgreSqlDialect {};
        let Some(Statement::Query(q)) = sqlparser::parser::Parser::parse_sql(&dialect, &sql)
            .ok()?
            .pop()
        else {
            return None;
        };
        let SetExpr::Select(mut select) = *q.body else {
            return None;
        };
        select.from.pop().map(|from| from.relation)
    });

/// PostgreSQL's `information_schema` name and `udt_name` of a type, from Arrow's display
/// of it (`Int32`, `Timestamp(ms)`, `Decimal128(10, 2)`).
pub fn pg_type_names(arrow: &str) -> (&'static str, &'static str) {
    let base = arrow.split('(').next().unwrap_or(arrow);
    match base {
        "Boolean" => ("boolean", "bool"),
        "Int8" | "Int16" | "UInt8" => ("smallint", "int2"),
        "Int32" | "UInt16" => ("integer", "int4"),
        "Int64" | "UInt32" => ("bigint", "int8"),
        "UInt64" | "Decimal32" | "Decimal64" | "Decimal128" | "Decimal256" => {
            ("numeric", "numeric")
        }
        "Float16" | "Float32" => ("real", "float4"),
        "Float64" => ("double precision", "float8"),
        "Utf8" | "LargeUtf8" | "Utf8View" | "Dictionary" => ("text", "text"),
        "Binary" | "LargeBinary" | "BinaryView" | "FixedSizeBinary" => ("bytea", "bytea"),
        "Date32" | "Date64" => ("date", "date"),
        "Time32" | "Time64" => ("time without time zone", "time"),
        "Timestamp" if arrow.contains(',') => ("timestamp with time zone", "timestamptz"),
        "Timestamp" => ("timestamp without time zone", "timestamp"),
        "Interval" | "Duration" => ("interval", "interval"),
        "List" | "LargeList" | "FixedSizeList" | "ListView" => ("ARRAY", "_text"),
        _ => ("USER-DEFINED", "unknown"),
    }
}

/// `porpoise_pg_type_name(arrow type)` and `porpoise_pg_udt_name(arrow type)`.
pub fn type_name_udfs() -> Vec<datafusion::logical_expr::ScalarUDF> {
    use arrow::array::{Array, AsArray, StringBuilder};
    use arrow::datatypes::DataType;
    use datafusion::functions::utils::make_scalar_function;
    use datafusion::logical_expr::{create_udf, Volatility};
    let make = |name: &str, pick: fn((&'static str, &'static str)) -> &'static str| {
        create_udf(
            name,
            vec![DataType::Utf8],
            DataType::Utf8,
            Volatility::Immutable,
            std::sync::Arc::new(make_scalar_function(
                move |arrays: &[arrow::array::ArrayRef]| {
                    let names = arrays[0].as_string::<i32>();
                    let mut out = StringBuilder::new();
                    for i in 0..names.len() {
                        if names.is_null(i) {
                            out.append_null();
                        } else {
                            out.append_value(pick(pg_type_names(names.value(i))));
                        }
                    }
                    Ok(std::sync::Arc::new(out.finish()) as arrow::array::ArrayRef)
                },
                vec![],
            )),
        )
    };
    vec![
        make("porpoise_pg_type_name", |(t, _)| t),
        make("porpoise_pg_udt_name", |(_, u)| u),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrow_types_get_postgres_names() {
        assert_eq!(pg_type_names("Int32").0, "integer");
        assert_eq!(
            pg_type_names("Timestamp(ms)").0,
            "timestamp without time zone"
        );
        assert_eq!(pg_type_names("Timestamp(ns, \"+00:00\")").1, "timestamptz");
        assert_eq!(pg_type_names("Decimal128(10, 2)").0, "numeric");
        assert!(without_seconds("2024-01-10 00:00"));
        assert!(!without_seconds("2024-01-10 00:00:00"));
    }

    #[test]
    fn only_the_special_names_as_words_are_named() {
        use std::borrow::Cow;
        let sql = "select user_id, current_username from users";
        assert!(matches!(name_special_functions(sql), Cow::Borrowed(_)));
        assert_eq!(
            name_special_functions("select current_user, SESSION_USER"),
            "SELECT current_user AS \"current_user\", SESSION_USER AS \"session_user\""
        );
    }

    #[test]
    fn information_schema_columns_keeps_its_alias() {
        let dialect = sqlparser::dialect::PostgreSqlDialect {};
        for (sql, alias) in [
            (
                "select c.udt_name from information_schema.columns c",
                "AS c",
            ),
            (
                "select udt_name from information_schema.columns",
                "AS columns",
            ),
        ] {
            let mut stmt = sqlparser::parser::Parser::parse_sql(&dialect, sql)
                .unwrap()
                .pop()
                .unwrap();
            rewrite(&mut stmt);
            let text = stmt.to_string();
            assert!(text.contains("porpoise_pg_udt_name(data_type)"), "{text}");
            assert!(
                text.contains("FROM porpoise.information_schema.columns)"),
                "{text}"
            );
            assert!(text.ends_with(alias), "{text}");
        }
    }

    #[test]
    fn like_patterns_get_backslash_escapes() {
        assert_eq!(backslash_escaped("pg/_%", Some('/')), "pg\\_%");
        assert_eq!(backslash_escaped("a\\b//", Some('/')), "a\\\\b/");
        assert_eq!(backslash_escaped("a\\b", None), "a\\\\b");
    }
}
