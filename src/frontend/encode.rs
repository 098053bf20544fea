//! Encoding of Arrow result sets as PostgreSQL rows (text or binary, with the right type OIDs,
//! via `arrow-pg`), and PostgreSQL's names for unnamed result columns: `count(*)` is named
//! `count`, an expression without a name `?column?`.

use std::sync::Arc;

use arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::physical_plan::SendableRecordBatchStream;
use futures::StreamExt;
use pgwire::api::results::{FieldInfo, QueryResponse};
use pgwire::api::portal::Format;
use pgwire::error::PgWireResult;
use sqlparser::ast::{Expr, SelectItem, SetExpr, Statement};

use super::error::pg_error;
use crate::query::QueryError;

/// The result column names PostgreSQL would give `stmt`'s select list, if it can be told
/// without expanding wildcards.
pub fn pg_column_names(stmt: &Statement) -> Option<Vec<String>> {
    let Statement::Query(q) = stmt else {
        return None;
    };
    let SetExpr::Select(select) = q.body.as_ref() else {
        return None;
    };
    select
        .projection
        .iter()
        .map(|item| match item {
            SelectItem::ExprWithAlias { alias, .. } => Some(alias.value.clone()),
            SelectItem::UnnamedExpr(e) => Some(expr_name(e)),
            _ => None,
        })
        .collect()
}

fn expr_name(e: &Expr) -> String {
    match e {
        Expr::Identifier(i) => i.value.clone(),
        Expr::CompoundIdentifier(parts) => parts.last().map(|p| p.value.clone()).unwrap_or_default(),
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
pub fn rename(schema: &SchemaRef, names: Option<&[String]>) -> SchemaRef {
    match names {
        Some(names) if names.len() == schema.fields().len() => Arc::new(Schema::new(
            schema
                .fields()
                .iter()
                .zip(names)
                .map(|(f, n)| Field::new(n, f.data_type().clone(), f.is_nullable()))
                .collect::<Vec<_>>(),
        )),
        _ => schema.clone(),
    }
}

/// The RowDescription of a result schema.
pub fn fields(schema: &Schema, format: &Format) -> PgWireResult<Vec<FieldInfo>> {
    arrow_pg::datatypes::arrow_schema_to_pg_fields(schema, format, None)
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
    let rows = stream
        .map(move |batch| {
            let rows: Box<dyn Iterator<Item = PgWireResult<_>> + Send + Sync> = match batch {
                Ok(b) => Box::new(arrow_pg::datatypes::encode_recordbatch(row_fields.clone(), b)),
                Err(e) => Box::new(std::iter::once(Err(pg_error(&QueryError::DataFusion(e))))),
            };
            futures::stream::iter(rows)
        })
        .flatten();
    Ok(QueryResponse::new(fields, rows))
}
