//! `SET` statements and PostgreSQL's `search_path`: schemas are databases here, so
//! `set search_path to "dfs://db"` makes plain table names (`select * from t`) name tables of
//! `dfs://db`, and `current_schema()` / `SHOW search_path` say so.
//!
//! The database of plain names is the first entry of `search_path` that is an existing
//! database, looked up when a statement is planned (so a database created after the `SET`
//! counts); without one, plain names are looked up in the empty `public` schema, as before.

use std::sync::Arc;

use arrow::array::{ListBuilder, StringBuilder};
use arrow::datatypes::{DataType, Field};
use datafusion::common::ScalarValue;
use datafusion::logical_expr::{create_udf, ColumnarValue, ScalarUDF, Volatility};
use sqlparser::ast::{Expr, Set, Value};

use super::catalog::PUBLIC;
use super::settings::{self, Settings};
use super::{QueryError, Session};
use crate::datanode::DataNode;

/// Carries out a `SET` statement on the session's settings.
pub fn set(session: &Session, set: &Set) -> Result<(), QueryError> {
    let settings = &session.settings;
    match set {
        Set::SingleAssignment {
            variable, values, ..
        } => settings.set(&name_of(variable), &value_list(values)),
        Set::MultipleAssignments { assignments } => {
            for a in assignments {
                settings.set(
                    &name_of(&a.name),
                    &value_list(std::slice::from_ref(&a.value)),
                )?;
            }
            Ok(())
        }
        Set::ParenthesizedAssignments { variables, values } => {
            for (v, e) in variables.iter().zip(values) {
                settings.set(&name_of(v), &value_list(std::slice::from_ref(e)))?;
            }
            Ok(())
        }
        Set::SetTimeZone { value, .. } => {
            settings.set("TimeZone", &value_list(std::slice::from_ref(value)))
        }
        Set::SetNames { charset_name, .. } => {
            settings.set("client_encoding", std::slice::from_ref(&charset_name.value))
        }
        Set::SetNamesDefault {} => settings.reset("client_encoding"),
        Set::SetTransaction {
            modes,
            session: characteristics,
            ..
        } => {
            for mode in modes {
                if let sqlparser::ast::TransactionMode::IsolationLevel(level) = mode {
                    let name = if *characteristics {
                        "default_transaction_isolation"
                    } else {
                        "transaction_isolation"
                    };
                    settings.set(name, &[level.to_string().to_ascii_lowercase()])?;
                }
            }
            Ok(())
        }
        // Roles and session authorization have nothing to switch to: every session is its
        // user's.
        Set::SetRole { .. } | Set::SetSessionAuthorization(_) | Set::SetSessionParam(_) => Ok(()),
    }
}

fn name_of(name: &sqlparser::ast::ObjectName) -> String {
    name.0
        .iter()
        .filter_map(|p| p.as_ident().map(|i| i.value.clone()))
        .collect::<Vec<_>>()
        .join(".")
}

/// A `SET`'s values as strings: a quoted identifier keeps its quotes (so `search_path` can
/// tell `"dfs://db"` apart from a list), `DEFAULT` is no value at all.
fn value_list(values: &[Expr]) -> Vec<String> {
    if let [Expr::Identifier(i)] = values {
        if i.quote_style.is_none() && i.value.eq_ignore_ascii_case("default") {
            return vec![];
        }
    }
    values
        .iter()
        .map(|e| match e {
            Expr::Identifier(i) if i.quote_style == Some('"') => {
                format!("\"{}\"", i.value.replace('"', "\"\""))
            }
            Expr::Identifier(i) => i.value.to_ascii_lowercase(),
            Expr::Value(v) => match &v.value {
                Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => s.clone(),
                Value::Number(n, _) => n.clone(),
                Value::Boolean(b) => if *b { "on" } else { "off" }.to_string(),
                other => other.to_string(),
            },
            other => other.to_string(),
        })
        .collect()
}

/// The database plain table names name: the first entry of `search_path` that is a database.
pub fn database(session: &Session) -> Option<String> {
    let metadata = session.engine.controller().metadata();
    session
        .settings
        .search_path()
        .into_iter()
        .find(|s| metadata.database(s).is_some())
}

/// Points DataFusion's default schema at the database of plain names (or `public`).
pub fn apply(session: &Session) {
    let schema = database(session).unwrap_or_else(|| PUBLIC.to_string());
    let state = session.ctx.state_ref();
    let mut state = state.write();
    let options = state.config_mut().options_mut();
    if options.catalog.default_schema != schema {
        options.catalog.default_schema = schema;
    }
}

/// The schemas of `search_path` that exist (`public`, `pg_catalog`, `information_schema` and
/// the databases).
fn existing(node: &DataNode, settings: &Settings) -> Vec<String> {
    let metadata = node.controller().metadata();
    settings
        .search_path()
        .into_iter()
        .filter(|s| {
            [PUBLIC, "pg_catalog", "information_schema"].contains(&s.as_str())
                || metadata.database(s).is_some()
        })
        .collect()
}

/// `current_schema()` and `current_schemas(include_implicit)` over the session's `search_path`.
pub fn udfs(node: Arc<DataNode>, settings: Arc<Settings>) -> Vec<ScalarUDF> {
    let (n, s) = (node.clone(), settings.clone());
    let current_schema = create_udf(
        "current_schema",
        vec![],
        DataType::Utf8,
        Volatility::Volatile,
        Arc::new(move |_: &[ColumnarValue]| {
            Ok(ColumnarValue::Scalar(ScalarValue::Utf8(
                existing(&n, &s).into_iter().next(),
            )))
        }),
    );
    let current_schemas = create_udf(
        "current_schemas",
        vec![DataType::Boolean],
        DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
        Volatility::Volatile,
        Arc::new(move |args: &[ColumnarValue]| {
            let implicit = matches!(
                args.first(),
                Some(ColumnarValue::Scalar(ScalarValue::Boolean(Some(true))))
            );
            let mut names = existing(&node, &settings);
            if implicit && !names.iter().any(|n| n == "pg_catalog") {
                names.insert(0, "pg_catalog".to_string());
            }
            let mut list = ListBuilder::new(StringBuilder::new());
            for n in names {
                list.values().append_value(n);
            }
            list.append(true);
            let array = list.finish();
            Ok(ColumnarValue::Scalar(ScalarValue::List(Arc::new(array))))
        }),
    );
    vec![current_schema, current_schemas]
}

/// `SHOW name` as the query PostgreSQL's answer is: one row, one column named after the
/// setting; `SHOW ALL` as name, setting, description rows. `None` for DataFusion's own
/// settings (`SHOW datafusion.x`), which DataFusion answers.
pub fn show_query(session: &Session, words: &[String]) -> Result<Option<String>, QueryError> {
    let joined = words.join(" ");
    if joined.to_ascii_lowercase().starts_with("datafusion.") {
        return Ok(None);
    }
    if joined.eq_ignore_ascii_case("all") {
        let rows: Vec<String> = session
            .settings
            .all()
            .into_iter()
            .map(|(n, v, d)| format!("({}, {}, {})", literal(&n), literal(&v), literal(&d)))
            .collect();
        return Ok(Some(format!(
            "SELECT column1 AS name, column2 AS setting, column3 AS description FROM (VALUES {})",
            rows.join(", ")
        )));
    }
    let name = settings::show_name(&joined)?;
    Ok(Some(format!(
        "SELECT current_setting({}) AS \"{}\"",
        literal(&name),
        name.replace('"', "\"\"")
    )))
}

fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}
