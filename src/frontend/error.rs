//! Turning errors into PostgreSQL ErrorResponses. Internal details are logged; the client gets
//! the message, the SQLSTATE and, where there is one, PostgreSQL's CONTEXT line.

use pgwire::error::{ErrorInfo, PgWireError};

use crate::query::QueryError;

/// The ErrorResponse for a failed statement.
pub fn error_info(e: &QueryError) -> ErrorInfo {
    let code = e.sqlstate();
    if code.starts_with("XX") || code.starts_with("58") {
        tracing::warn!(sqlstate = code, error = ?e, "statement failed with an internal error");
    } else {
        tracing::debug!(sqlstate = code, error = %e, "statement failed");
    }
    let mut info = ErrorInfo::new("ERROR".to_owned(), code.to_owned(), e.client_message());
    info.where_context = e.context().map(str::to_owned);
    info
}

/// The same, as a pgwire error (for errors raised inside pgwire callbacks).
pub fn pg_error(e: &QueryError) -> PgWireError {
    PgWireError::UserError(Box::new(error_info(e)))
}

/// What a caught panic said, for the internal error that replaces it.
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_default()
}
