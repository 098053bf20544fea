//! Turning errors into PostgreSQL ErrorResponses: the only place where an error becomes a
//! client's. Internal details are logged; the client gets the message, the SQLSTATE, where
//! there is one PostgreSQL's CONTEXT line, and, when the statement may succeed if simply run
//! again ([`ErrorCode::retryable`]), PostgreSQL's hint saying so ([`RETRY_HINT`]).

use pgwire::error::{ErrorInfo, PgWireError};

use crate::query::QueryError;
use crate::sqlstate::{ErrorCode, SqlState};

/// The HINT of a retryable error: PostgreSQL's words for its serialization failures.
pub const RETRY_HINT: &str = "The transaction might succeed if retried.";

/// The ErrorResponse for a failed statement.
pub fn error_info(e: &QueryError) -> ErrorInfo {
    let code = e.sqlstate();
    if code.is_internal() {
        tracing::warn!(sqlstate = %code, error = ?e, "statement failed with an internal error");
    } else {
        tracing::debug!(sqlstate = %code, error = %e, "statement failed");
    }
    let mut info = ErrorInfo::new("ERROR".to_owned(), code.to_string(), e.client_message());
    info.where_context = e.context().map(str::to_owned);
    if e.retryable() {
        info.hint = Some(RETRY_HINT.to_owned());
    }
    info
}

/// The same, as a pgwire error (for errors raised inside pgwire callbacks).
pub fn pg_error(e: &QueryError) -> PgWireError {
    PgWireError::UserError(Box::new(error_info(e)))
}

/// A FATAL ErrorResponse, which ends the connection (a refused login).
pub fn fatal(code: SqlState, message: String) -> ErrorInfo {
    ErrorInfo::new("FATAL".to_owned(), code.to_string(), message)
}

/// What a caught panic said, for the internal error that replaces it.
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datanode::DataNodeError;

    #[test]
    fn retryable_errors_carry_postgres_retry_hint_and_others_none() {
        let retry = QueryError::DataNode(DataNodeError::TableGone {
            db: "dfs://x".into(),
            table: "t".into(),
        });
        let info = error_info(&retry);
        assert_eq!(info.code, "40001");
        assert_eq!(info.hint.as_deref(), Some(RETRY_HINT));
        let info = error_info(&QueryError::other(
            SqlState::DIVISION_BY_ZERO,
            "division by zero",
        ));
        assert_eq!((info.code.as_str(), info.hint), ("22012", None));
    }
}
