//! Errors of the query layer, each with its PostgreSQL SQLSTATE.

use datafusion::arrow::error::ArrowError;
use datafusion::common::{DataFusionError, SchemaError};

use crate::controller::metadata::MetadataError;
use crate::controller::raft::ControllerError;
use crate::datanode::DataNodeError;
use crate::query::parse::copy_format::CopyError;
use crate::query::parse::ddl::DdlError;

/// Why a statement failed.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("{0}")]
    Syntax(String),
    #[error("{0}")]
    Ddl(#[from] DdlError),
    #[error(transparent)]
    Metadata(#[from] MetadataError),
    #[error(transparent)]
    DataNode(#[from] DataNodeError),
    #[error(transparent)]
    Controller(#[from] ControllerError),
    #[error(transparent)]
    DataFusion(#[from] DataFusionError),
    #[error("{message}")]
    Copy {
        #[source]
        error: CopyError,
        message: String,
    },
    #[error("{0}")]
    Unsupported(String),
    /// Anything else with an explicit SQLSTATE.
    #[error("{message}")]
    Other {
        sqlstate: &'static str,
        message: String,
    },
}

impl From<CopyError> for QueryError {
    fn from(error: CopyError) -> Self {
        QueryError::Copy {
            message: error.message.clone(),
            error,
        }
    }
}

impl QueryError {
    pub fn other(sqlstate: &'static str, message: impl Into<String>) -> Self {
        QueryError::Other {
            sqlstate,
            message: message.into(),
        }
    }

    /// The PostgreSQL SQLSTATE of this error.
    pub fn sqlstate(&self) -> &'static str {
        match self {
            QueryError::Syntax(_) => "42601",
            QueryError::Ddl(e) => e.sqlstate,
            QueryError::Metadata(e) => e.sqlstate(),
            QueryError::DataNode(e) => e.sqlstate(),
            QueryError::Controller(e) => e.sqlstate(),
            QueryError::DataFusion(e) => datafusion_sqlstate(e),
            QueryError::Copy { error, .. } => error.sqlstate,
            QueryError::Unsupported(_) => "0A000",
            QueryError::Other { sqlstate, .. } => sqlstate,
        }
    }

    /// Extra context for the client (PostgreSQL's CONTEXT field), e.g. the COPY line.
    pub fn context(&self) -> Option<&str> {
        match self {
            QueryError::Copy { error, .. } => error.context.as_deref(),
            _ => None,
        }
    }

    /// The message for the client: DataFusion's wrappers and prefixes stripped.
    pub fn client_message(&self) -> String {
        match self {
            QueryError::DataFusion(e) => datafusion_message(e),
            other => other.to_string(),
        }
    }
}

/// The innermost DataFusion error (contexts and shared wrappers removed).
fn innermost(e: &DataFusionError) -> &DataFusionError {
    match e {
        DataFusionError::Context(_, inner) => innermost(inner),
        DataFusionError::Shared(inner) => innermost(inner),
        DataFusionError::Diagnostic(_, inner) => innermost(inner),
        DataFusionError::Collection(errors) if !errors.is_empty() => innermost(&errors[0]),
        other => other,
    }
}

fn external_sqlstate(e: &(dyn std::error::Error + Send + Sync + 'static)) -> Option<&'static str> {
    if let Some(e) = e.downcast_ref::<DataNodeError>() {
        return Some(e.sqlstate());
    }
    if let Some(e) = e.downcast_ref::<QueryError>() {
        return Some(e.sqlstate());
    }
    if let Some(e) = e.downcast_ref::<MetadataError>() {
        return Some(e.sqlstate());
    }
    if let Some(e) = e.downcast_ref::<DataFusionError>() {
        return Some(datafusion_sqlstate(e));
    }
    if let Some(e) = e.downcast_ref::<crate::rpc::RpcError>() {
        return Some(crate::rpc::static_sqlstate(e.sqlstate()));
    }
    if let Some(e) = e.downcast_ref::<porpoise_functions::FunctionError>() {
        return Some(crate::rpc::static_sqlstate(&e.sqlstate));
    }
    None
}

fn arrow_sqlstate(e: &ArrowError) -> &'static str {
    match e {
        ArrowError::DivideByZero => "22012",
        ArrowError::CastError(m)
        | ArrowError::ParseError(m)
        | ArrowError::InvalidArgumentError(m) => {
            if m.contains("overflow")
                || m.contains("too large")
                || m.contains("out of range")
                || m.contains("Can't cast value")
            {
                "22003"
            } else {
                "22P02"
            }
        }
        ArrowError::ArithmeticOverflow(_) => "22003",
        // A DataFusion function's error carried through an arrow kernel (`sqrt(-1)`).
        ArrowError::ComputeError(m) if m.starts_with(EXECUTION_PREFIX) => {
            execution_sqlstate(&m[EXECUTION_PREFIX.len()..])
        }
        // `abs(-9223372036854775808)`, `round(9223372036854775807, -1)`, `date + 2147483648`.
        ArrowError::ComputeError(m) if m.to_ascii_lowercase().contains("overflow") => {
            overflow_sqlstate(m)
        }
        ArrowError::ExternalError(inner) => external_sqlstate(inner.as_ref()).unwrap_or("XX000"),
        ArrowError::IoError(..) => "58030",
        ArrowError::MemoryError(_) => "53200",
        _ => "XX000",
    }
}

/// Maps a DataFusion error to the SQLSTATE PostgreSQL would use for the same mistake.
pub fn datafusion_sqlstate(e: &DataFusionError) -> &'static str {
    match innermost(e) {
        DataFusionError::SQL(..) => "42601",
        DataFusionError::SchemaError(s, _) => match s.as_ref() {
            SchemaError::FieldNotFound { .. } => "42703",
            SchemaError::AmbiguousReference { .. } => "42702",
            SchemaError::DuplicateQualifiedField { .. }
            | SchemaError::DuplicateUnqualifiedField { .. } => "42701",
        },
        DataFusionError::Plan(m) => plan_sqlstate(m),
        DataFusionError::NotImplemented(m) if m.contains("Unsupported SQL type") => "42704",
        DataFusionError::NotImplemented(_) => "0A000",
        DataFusionError::ArrowError(a, _) => arrow_sqlstate(a),
        DataFusionError::ParquetError(_) | DataFusionError::ObjectStore(_) => "58030",
        DataFusionError::IoError(_) => "58030",
        DataFusionError::ResourcesExhausted(_) => "53200",
        DataFusionError::External(inner) => external_sqlstate(inner.as_ref()).unwrap_or("XX000"),
        // DataFusion reports some type mismatches as internal errors
        // (`ts between 'x' and 0`); to the user they are a type mismatch.
        DataFusionError::Internal(m) if m.contains("Failed to coerce") => "42804",
        DataFusionError::Execution(m) => execution_sqlstate(m),
        _ => "XX000",
    }
}

/// How arrow's `ComputeError` shows a DataFusion execution error it carries.
const EXECUTION_PREFIX: &str = "Execution error: ";

/// The SQLSTATE of a DataFusion execution error. DataFusion raises these for malformed input
/// found while running (its documented contract; its own invariant failures are `Internal`),
/// so what no rule below names is a data exception (22000) rather than an internal error.
fn execution_sqlstate(m: &str) -> &'static str {
    let lower = m.to_ascii_lowercase();
    if lower.contains("divide by zero") || lower.contains("division by zero") {
        "22012"
    } else if lower.contains("overflow")
        || m.contains("Can't cast value")
        || m.contains("too large to store")
        // `round(0, 2147483648)`
        || m.contains("out of supported")
    {
        overflow_sqlstate(m)
    } else if m.contains("Cast error") || m.contains("Cannot cast") {
        "22P02"
    } else if m.starts_with("[return_type]") {
        // A function with no version for its argument types (`sum($1)` of an
        // untyped parameter): PostgreSQL's "function sum(unknown) does not exist".
        "42883"
    } else if lower.contains("unsupported data type") || m.contains("Accumulator for (") {
        // A function called with an argument type it does not take, found when it
        // runs (`to_timestamp(0, NULL)`, `avg(NULL)`).
        "42804"
    } else if m.starts_with("Placeholder") && m.contains("not provided a value") {
        // `select $1` without parameters: PostgreSQL's "there is no parameter $1".
        "42P02"
    } else if m.starts_with("negative count not allowed") {
        // `substr('x', 1, -1)`: PostgreSQL's "negative substring length not allowed".
        "22011"
    } else if m.contains("square root of a negative number") {
        // PostgreSQL's code for the same message.
        "2201F"
    } else if m.starts_with("Error parsing timestamp") || lower.contains("invalid timestamp") {
        // `to_timestamp('x', 'y')`: PostgreSQL's invalid_datetime_format.
        "22007"
    } else if lower.contains("granularity") || lower.contains("must be") {
        // `date_trunc('x', ts)`: PostgreSQL's `unit "x" not recognized`.
        "22023"
    } else {
        "22000"
    }
}

/// The SQLSTATE of an overflow: of a date or time (22008) or of a number (22003).
fn overflow_sqlstate(m: &str) -> &'static str {
    if m.contains("Interval") || m.contains("Timestamp") || m.contains("Date") {
        "22008"
    } else {
        "22003"
    }
}

fn plan_sqlstate(m: &str) -> &'static str {
    if m.contains("Inconsistent data length")
        || m.contains("Column count doesn't match")
        || m.contains("more expressions than target columns")
        || m.contains("Insert has more")
    {
        "42601"
    } else if m.contains("table") && (m.contains("not found") || m.contains("does not exist")) {
        "42P01"
    } else if m.contains("function") && (m.contains("not found") || m.contains("Invalid function"))
    {
        "42883"
    } else if m.contains("No function matches")
        || m.contains("coercion")
        || m.contains("Cannot infer common")
        || m.contains("does not support") && m.contains("type")
    {
        "42804"
    } else if m.contains("column") && m.contains("does not exist") {
        "42703"
    } else if m.contains("must appear in the GROUP BY") || m.contains("GROUP BY") {
        "42803"
    } else {
        "42000"
    }
}

/// DataFusion's message without its "Error during planning: " style prefixes and the
/// contexts it adds.
fn datafusion_message(e: &DataFusionError) -> String {
    match innermost(e) {
        DataFusionError::Plan(m)
        | DataFusionError::Execution(m)
        | DataFusionError::NotImplemented(m) => m.clone(),
        DataFusionError::SQL(p, _) => p
            .to_string()
            .trim_start_matches("sql parser error: ")
            .to_string(),
        DataFusionError::SchemaError(s, _) => s.to_string(),
        DataFusionError::ArrowError(a, _) => match a.as_ref() {
            ArrowError::ExternalError(inner) => inner.to_string(),
            ArrowError::ComputeError(m) => m.trim_start_matches(EXECUTION_PREFIX).to_string(),
            other => other.to_string(),
        },
        DataFusionError::External(inner) => inner.to_string(),
        DataFusionError::ResourcesExhausted(m) => m.clone(),
        other => other.to_string(),
    }
}
