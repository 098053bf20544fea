//! PostgreSQL's configuration functions that drivers call: `current_setting(name [, missing_ok])`
//! and `pg_advisory_unlock_all()`.
//!
//! porpoise has no `SET`-able PostgreSQL settings; [`SETTINGS`] holds the fixed values of the
//! ones drivers read (asyncpg's type introspection reads `jit`). Any other name is 42704
//! `unrecognized configuration parameter "x"`, as in PostgreSQL, or NULL with `missing_ok`.
//!
//! porpoise takes no advisory locks, so `pg_advisory_unlock_all()` (which asyncpg's pool calls
//! on every connection it takes back) has nothing to release and returns NULL (PostgreSQL's
//! `void`).

use std::sync::Arc;

use arrow::datatypes::DataType;
use datafusion::common::{DataFusionError, Result, ScalarValue};
use datafusion::logical_expr::{
    create_udf, ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    TypeSignature, Volatility,
};

use super::QueryError;
use crate::sqlstate::SqlState;

/// The settings `current_setting` knows, by lower-case name, with their fixed values (the
/// same as the parameters reported at connection start where both exist).
const SETTINGS: &[(&str, &str)] = &[
    ("client_encoding", "UTF8"),
    ("integer_datetimes", "on"),
    ("jit", "off"),
    ("max_identifier_length", "63"),
    ("search_path", "public"),
    ("server_encoding", "UTF8"),
    ("standard_conforming_strings", "on"),
];

/// `current_setting` and `pg_advisory_unlock_all`.
pub fn udfs() -> Vec<ScalarUDF> {
    vec![
        ScalarUDF::new_from_impl(CurrentSetting::new()),
        create_udf(
            "pg_advisory_unlock_all",
            vec![],
            DataType::Utf8,
            Volatility::Volatile,
            Arc::new(|_: &[ColumnarValue]| Ok(ColumnarValue::Scalar(ScalarValue::Utf8(None)))),
        ),
    ]
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct CurrentSetting {
    signature: Signature,
}

impl CurrentSetting {
    fn new() -> Self {
        Self {
            signature: Signature::one_of(
                vec![
                    TypeSignature::Exact(vec![DataType::Utf8]),
                    TypeSignature::Exact(vec![DataType::Utf8, DataType::Boolean]),
                ],
                Volatility::Stable,
            ),
        }
    }
}

/// The value of setting `name`; `None` if there is no such setting.
fn setting(name: &str) -> Option<&'static str> {
    let name = name.to_ascii_lowercase();
    SETTINGS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, value)| *value)
}

impl ScalarUDFImpl for CurrentSetting {
    fn name(&self) -> &str {
        "current_setting"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        use arrow::array::{Array, AsArray};
        let names = arrays[0].as_string::<i32>();
        let missing_ok = arrays.get(1).map(|a| a.as_boolean().clone());
        let mut values = arrow::array::StringBuilder::new();
        for i in 0..names.len() {
            if names.is_null(i) {
                values.append_null();
                continue;
            }
            let name = names.value(i);
            match setting(name) {
                Some(v) => values.append_value(v),
                None if missing_ok.as_ref().is_some_and(|m| m.value(i)) => values.append_null(),
                None => {
                    return Err(DataFusionError::External(Box::new(QueryError::other(
                        SqlState::UNDEFINED_OBJECT,
                        format!("unrecognized configuration parameter \"{name}\""),
                    ))))
                }
            }
        }
        let array: arrow::array::ArrayRef = Arc::new(values.finish());
        Ok(
            if args
                .args
                .iter()
                .all(|a| matches!(a, ColumnarValue::Scalar(_)))
            {
                ColumnarValue::Scalar(ScalarValue::try_from_array(&array, 0)?)
            } else {
                ColumnarValue::Array(array)
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_found_by_any_case() {
        assert_eq!(setting("JIT"), Some("off"));
        assert_eq!(setting("nosuch"), None);
    }
}
