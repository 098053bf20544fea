//! Bound parameters of the extended protocol as DataFusion values.
//!
//! Invariant: every parameter of a Bind gets a value at its own position, and a NULL is a NULL
//! of the parameter's type: the planned type (see [`crate::query::params`]), else the type
//! the client named in Parse, else text. arrow-pg's decoder drops a NULL whose type it cannot
//! decode (an `unknown` parameter), which shifted the later parameters and left the last one
//! without a value ("No value found for placeholder"); so NULLs never reach it.
//!
//! Entry points: [`client_type`] (a Parse type as an Arrow type), [`parameter_values`].

use std::sync::Arc;

use arrow::datatypes::{DataType, TimeUnit};
use datafusion::common::{ParamValues, ScalarValue};
use pgwire::api::portal::{Format, Portal};
use pgwire::api::stmt::StoredStatement;
use pgwire::api::Type;
use pgwire::error::{PgWireError, PgWireResult};

use super::error::pg_error;
use crate::query::QueryError;

/// The Arrow type of a parameter type a client named in Parse, for the types whose Arrow form
/// is unambiguous; `None` leaves the parameter to DataFusion's inference.
pub fn client_type(t: &Type) -> Option<DataType> {
    Some(match *t {
        Type::BOOL => DataType::Boolean,
        Type::INT2 => DataType::Int16,
        Type::INT4 => DataType::Int32,
        Type::INT8 => DataType::Int64,
        Type::FLOAT4 => DataType::Float32,
        Type::FLOAT8 => DataType::Float64,
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => DataType::Utf8,
        Type::BYTEA => DataType::Binary,
        Type::DATE => DataType::Date32,
        Type::TIMESTAMP => DataType::Timestamp(TimeUnit::Microsecond, None),
        _ => return None,
    })
}

/// The values of a portal's parameters, `types` being the planned types by position.
pub fn parameter_values<S: Clone>(
    portal: &Portal<S>,
    types: &[Option<&DataType>],
) -> PgWireResult<ParamValues> {
    // Without a NULL nothing can shift: one call decodes them all, as it did before NULLs
    // were handled here (a Bind of many parameters pays no portal per parameter).
    if portal.parameters.iter().all(Option::is_some) {
        return arrow_pg::datatypes::df::deserialize_parameters(portal, types);
    }
    let mut values = Vec::with_capacity(portal.parameters.len());
    for (i, bytes) in portal.parameters.iter().enumerate() {
        let planned = types.get(i).copied().flatten();
        // `unknown` from the client says nothing: the value is decoded as the planned type.
        let given = portal
            .statement
            .parameter_types
            .get(i)
            .cloned()
            .flatten()
            .filter(|t| *t != Type::UNKNOWN);
        let value = match bytes {
            None => {
                let t = planned
                    .cloned()
                    .or_else(|| given.as_ref().and_then(client_type))
                    .unwrap_or(DataType::Utf8);
                ScalarValue::try_from(&t).map_err(|e| pg_error(&QueryError::DataFusion(e)))?
            }
            Some(bytes) => {
                // One parameter at a time, so that positions cannot shift.
                let stmt = StoredStatement::new(String::new(), (), vec![given]);
                let mut one = Portal::new_cursor(String::new(), Arc::new(stmt));
                one.parameter_format = if portal.parameter_format.is_binary(i) {
                    Format::UnifiedBinary
                } else {
                    Format::UnifiedText
                };
                one.parameters = vec![Some(bytes.clone())];
                let decoded =
                    match arrow_pg::datatypes::df::deserialize_parameters(&one, &[planned])? {
                        ParamValues::List(list) => list.into_iter().next(),
                        ParamValues::Map(_) => None,
                    };
                decoded
                    .ok_or(PgWireError::ParameterIndexOutOfBound(i))?
                    .into_inner()
                    .0
            }
        };
        values.push(value);
    }
    Ok(ParamValues::from(values))
}
