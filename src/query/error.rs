//! Errors of the query layer, each with its PostgreSQL SQLSTATE ([`ErrorCode`]), and the
//! classification of DataFusion's errors.

use datafusion::arrow::error::ArrowError;
use datafusion::common::{DataFusionError, SchemaError};

use porpoise_functions::FunctionError;

use crate::controller::error::{ControllerError, MetadataError};
use crate::datanode::DataNodeError;
use crate::query::parse::copy_format::CopyError;
use crate::query::parse::ddl::DdlError;
use crate::rpc::{RemoteError, RpcError};
use crate::sqlstate::{ErrorCode, SqlState};
use crate::storage::StorageError;

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
    Other { sqlstate: SqlState, message: String },
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
    pub fn other(sqlstate: SqlState, message: impl Into<String>) -> Self {
        QueryError::Other {
            sqlstate,
            message: message.into(),
        }
    }

    /// An error of another layer with its SQLSTATE and message.
    pub fn coded(e: &(impl ErrorCode + ?Sized)) -> Self {
        QueryError::other(e.sqlstate(), e.client_message())
    }

    /// Extra context for the client (PostgreSQL's CONTEXT field), e.g. the COPY line.
    pub fn context(&self) -> Option<&str> {
        match self {
            QueryError::Copy { error, .. } => error.context.as_deref(),
            _ => None,
        }
    }
}

impl ErrorCode for QueryError {
    fn sqlstate(&self) -> SqlState {
        match self {
            QueryError::Syntax(_) => SqlState::SYNTAX_ERROR,
            QueryError::Ddl(e) => e.sqlstate(),
            QueryError::Metadata(e) => e.sqlstate(),
            QueryError::DataNode(e) => e.sqlstate(),
            QueryError::Controller(e) => e.sqlstate(),
            QueryError::DataFusion(e) => e.sqlstate(),
            QueryError::Copy { error, .. } => error.sqlstate(),
            QueryError::Unsupported(_) => SqlState::FEATURE_NOT_SUPPORTED,
            QueryError::Other { sqlstate, .. } => *sqlstate,
        }
    }

    fn retryable(&self) -> bool {
        match self {
            QueryError::Ddl(e) => e.retryable(),
            QueryError::Metadata(e) => e.retryable(),
            QueryError::DataNode(e) => e.retryable(),
            QueryError::Controller(e) => e.retryable(),
            QueryError::DataFusion(e) => e.retryable(),
            QueryError::Copy { error, .. } => error.retryable(),
            QueryError::Syntax(_) | QueryError::Unsupported(_) | QueryError::Other { .. } => false,
        }
    }

    /// DataFusion's wrappers and prefixes stripped.
    fn client_message(&self) -> String {
        match self {
            QueryError::DataFusion(e) => e.client_message(),
            other => other.to_string(),
        }
    }
}

/// DataFusion's errors, classified as PostgreSQL would classify the same mistake. An error of
/// porpoise's that DataFusion carries (`External`) keeps its own code and retryability: a
/// remote scan's [`crate::rpc::RpcError`] among them, so an error raised on another data node
/// reaches the client as it was raised there.
impl ErrorCode for DataFusionError {
    fn sqlstate(&self) -> SqlState {
        datafusion_sqlstate(self)
    }

    fn retryable(&self) -> bool {
        carried(self).is_some_and(|e| e.retryable())
    }

    fn client_message(&self) -> String {
        datafusion_message(self)
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

/// The error of porpoise's (or DataFusion's, nested) that a DataFusion error carries, if any.
fn carried(e: &DataFusionError) -> Option<&dyn ErrorCode> {
    match innermost(e) {
        DataFusionError::External(inner) => as_error_code(inner.as_ref()),
        DataFusionError::ArrowError(a, _) => match a.as_ref() {
            ArrowError::ExternalError(inner) => as_error_code(inner.as_ref()),
            _ => None,
        },
        _ => None,
    }
}

/// `e` as an error that knows its SQLSTATE: every error type that DataFusion may carry out of
/// porpoise's plans, UDFs and table providers.
fn as_error_code<'a>(
    e: &'a (dyn std::error::Error + Send + Sync + 'static),
) -> Option<&'a dyn ErrorCode> {
    if let Some(e) = e.downcast_ref::<DataNodeError>() {
        return Some(e);
    }
    if let Some(e) = e.downcast_ref::<QueryError>() {
        return Some(e);
    }
    if let Some(e) = e.downcast_ref::<MetadataError>() {
        return Some(e);
    }
    if let Some(e) = e.downcast_ref::<ControllerError>() {
        return Some(e);
    }
    if let Some(e) = e.downcast_ref::<StorageError>() {
        return Some(e);
    }
    if let Some(e) = e.downcast_ref::<DataFusionError>() {
        return Some(e);
    }
    if let Some(e) = e.downcast_ref::<RpcError>() {
        return Some(e);
    }
    if let Some(e) = e.downcast_ref::<RemoteError>() {
        return Some(e);
    }
    if let Some(e) = e.downcast_ref::<FunctionError>() {
        return Some(e);
    }
    if let Some(e) = e.downcast_ref::<CopyError>() {
        return Some(e);
    }
    None
}

fn arrow_sqlstate(e: &ArrowError) -> SqlState {
    match e {
        ArrowError::DivideByZero => SqlState::DIVISION_BY_ZERO,
        ArrowError::CastError(m)
        | ArrowError::ParseError(m)
        | ArrowError::InvalidArgumentError(m) => {
            // A batch built with a NOT NULL column's declared nullability got a NULL (an
            // INSERT's VALUES computed one); the literal NULLs are caught before planning.
            if m.contains("declared as non-nullable but contains null values") {
                SqlState::NOT_NULL_VIOLATION
            } else if m.contains("overflow")
                || m.contains("too large")
                || m.contains("out of range")
                || m.contains("Can't cast value")
            {
                SqlState::NUMERIC_VALUE_OUT_OF_RANGE
            } else {
                SqlState::INVALID_TEXT_REPRESENTATION
            }
        }
        ArrowError::ArithmeticOverflow(_) => SqlState::NUMERIC_VALUE_OUT_OF_RANGE,
        // A DataFusion function's error carried through an arrow kernel (`sqrt(-1)`).
        ArrowError::ComputeError(m) if m.starts_with(EXECUTION_PREFIX) => {
            execution_sqlstate(&m[EXECUTION_PREFIX.len()..])
        }
        // `abs(-9223372036854775808)`, `round(9223372036854775807, -1)`, `date + 2147483648`.
        ArrowError::ComputeError(m) if m.to_ascii_lowercase().contains("overflow") => {
            overflow_sqlstate(m)
        }
        ArrowError::ExternalError(inner) => {
            as_error_code(inner.as_ref()).map_or(SqlState::INTERNAL_ERROR, |e| e.sqlstate())
        }
        ArrowError::IoError(..) => SqlState::IO_ERROR,
        ArrowError::MemoryError(_) => SqlState::OUT_OF_MEMORY,
        _ => SqlState::INTERNAL_ERROR,
    }
}

/// Maps a DataFusion error to the SQLSTATE PostgreSQL would use for the same mistake.
fn datafusion_sqlstate(e: &DataFusionError) -> SqlState {
    match innermost(e) {
        DataFusionError::SQL(..) => SqlState::SYNTAX_ERROR,
        DataFusionError::SchemaError(s, _) => match s.as_ref() {
            SchemaError::FieldNotFound { .. } => SqlState::UNDEFINED_COLUMN,
            SchemaError::AmbiguousReference { .. } => SqlState::AMBIGUOUS_COLUMN,
            SchemaError::DuplicateQualifiedField { .. }
            | SchemaError::DuplicateUnqualifiedField { .. } => SqlState::DUPLICATE_COLUMN,
        },
        DataFusionError::Plan(m) => plan_sqlstate(m),
        DataFusionError::NotImplemented(m) if m.contains("Unsupported SQL type") => {
            SqlState::UNDEFINED_OBJECT
        }
        DataFusionError::NotImplemented(_) => SqlState::FEATURE_NOT_SUPPORTED,
        DataFusionError::ArrowError(a, _) => arrow_sqlstate(a),
        DataFusionError::ParquetError(_) | DataFusionError::ObjectStore(_) => SqlState::IO_ERROR,
        DataFusionError::IoError(_) => SqlState::IO_ERROR,
        DataFusionError::ResourcesExhausted(_) => SqlState::OUT_OF_MEMORY,
        DataFusionError::External(inner) => {
            as_error_code(inner.as_ref()).map_or(SqlState::INTERNAL_ERROR, |e| e.sqlstate())
        }
        // DataFusion reports some type mismatches as internal errors
        // (`ts between 'x' and 0`); to the user they are a type mismatch.
        DataFusionError::Internal(m) if m.contains("Failed to coerce") => {
            SqlState::DATATYPE_MISMATCH
        }
        DataFusionError::Execution(m) => execution_sqlstate(m),
        _ => SqlState::INTERNAL_ERROR,
    }
}

/// How arrow's `ComputeError` shows a DataFusion execution error it carries.
const EXECUTION_PREFIX: &str = "Execution error: ";

/// The SQLSTATE of a DataFusion execution error. DataFusion raises these for malformed input
/// found while running (its documented contract; its own invariant failures are `Internal`),
/// so what no rule below names is a data exception (22000) rather than an internal error.
fn execution_sqlstate(m: &str) -> SqlState {
    let lower = m.to_ascii_lowercase();
    if lower.contains("divide by zero") || lower.contains("division by zero") {
        SqlState::DIVISION_BY_ZERO
    } else if lower.contains("overflow")
        || m.contains("Can't cast value")
        || m.contains("too large to store")
        // `round(0, 2147483648)`
        || m.contains("out of supported")
    {
        overflow_sqlstate(m)
    } else if m.contains("Cast error") || m.contains("Cannot cast") {
        SqlState::INVALID_TEXT_REPRESENTATION
    } else if m.starts_with("[return_type]") {
        // A function with no version for its argument types (`sum($1)` of an
        // untyped parameter): PostgreSQL's "function sum(unknown) does not exist".
        SqlState::UNDEFINED_FUNCTION
    } else if lower.contains("unsupported data type") || m.contains("Accumulator for (") {
        // A function called with an argument type it does not take, found when it
        // runs (`to_timestamp(0, NULL)`, `avg(NULL)`).
        SqlState::DATATYPE_MISMATCH
    } else if m.starts_with("Placeholder") && m.contains("not provided a value") {
        // `select $1` without parameters: PostgreSQL's "there is no parameter $1".
        SqlState::UNDEFINED_PARAMETER
    } else if m.starts_with("negative count not allowed") {
        // `substr('x', 1, -1)`: PostgreSQL's "negative substring length not allowed".
        SqlState::SUBSTRING_ERROR
    } else if m.contains("square root of a negative number") {
        // PostgreSQL's code for the same message.
        SqlState::INVALID_ARGUMENT_FOR_POWER_FUNCTION
    } else if m.starts_with("Error parsing timestamp") || lower.contains("invalid timestamp") {
        // `to_timestamp('x', 'y')`: PostgreSQL's invalid_datetime_format.
        SqlState::INVALID_DATETIME_FORMAT
    } else if lower.contains("granularity") || lower.contains("must be") {
        // `date_trunc('x', ts)`: PostgreSQL's `unit "x" not recognized`.
        SqlState::INVALID_PARAMETER_VALUE
    } else {
        SqlState::DATA_EXCEPTION
    }
}

/// The SQLSTATE of an overflow: of a date or time (22008) or of a number (22003).
fn overflow_sqlstate(m: &str) -> SqlState {
    if m.contains("Interval") || m.contains("Timestamp") || m.contains("Date") {
        SqlState::DATETIME_FIELD_OVERFLOW
    } else {
        SqlState::NUMERIC_VALUE_OUT_OF_RANGE
    }
}

fn plan_sqlstate(m: &str) -> SqlState {
    if m.contains("Inconsistent data length")
        || m.contains("Column count doesn't match")
        || m.contains("more expressions than target columns")
        || m.contains("Insert has more")
    {
        SqlState::SYNTAX_ERROR
    } else if m.contains("table") && (m.contains("not found") || m.contains("does not exist")) {
        SqlState::UNDEFINED_TABLE
    } else if m.contains("function") && (m.contains("not found") || m.contains("Invalid function"))
    {
        SqlState::UNDEFINED_FUNCTION
    } else if m.contains("No function matches")
        || m.contains("coercion")
        || m.contains("Cannot infer common")
        || m.contains("does not support") && m.contains("type")
    {
        SqlState::DATATYPE_MISMATCH
    } else if m.contains("column") && m.contains("does not exist") {
        SqlState::UNDEFINED_COLUMN
    } else if m.contains("must appear in the GROUP BY") || m.contains("GROUP BY") {
        SqlState::GROUPING_ERROR
    } else {
        SqlState::SYNTAX_ERROR_OR_ACCESS_RULE_VIOLATION
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

/// The functions crate cannot know this trait (it imports nothing from the server); its error
/// carries its code as text.
impl ErrorCode for FunctionError {
    fn sqlstate(&self) -> SqlState {
        self.sqlstate.parse().unwrap_or(SqlState::INTERNAL_ERROR)
    }

    fn retryable(&self) -> bool {
        false
    }
}
