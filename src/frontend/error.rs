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
    use datafusion::arrow::error::ArrowError;
    use datafusion::error::DataFusionError;

    use super::*;
    use crate::controller::error::ControllerError;
    use crate::datanode::DataNodeError;
    use crate::rpc::client::status_error;
    use crate::rpc::server::{stream_error, stream_status, to_status};
    use crate::rpc::{RemoteError, RpcError};
    use crate::storage::StorageError;

    /// `e` raised on another data node: sent in a status (before a stream or in the middle of
    /// one), decoded by the caller and carried by DataFusion, as a remote scan carries it.
    fn raised_remotely(e: &QueryError, midway: bool) -> QueryError {
        let status = if midway {
            stream_status(stream_error(e))
        } else {
            to_status(RemoteError::from_error(e))
        };
        let received: RpcError = status_error("127.0.0.1:1", "do_get", status);
        QueryError::DataFusion(DataFusionError::External(Box::new(received)))
    }

    #[test]
    fn an_error_of_another_node_reaches_the_client_as_raised_there() {
        let in_doubt = DataNodeError::InDoubt {
            tid: 7,
            source: ControllerError::Unavailable {
                reason: "no answer".into(),
            },
        };
        let local = [
            QueryError::DataNode(in_doubt),
            QueryError::DataNode(DataNodeError::Storage(StorageError::Claimed { holder: 3 })),
            QueryError::DataFusion(DataFusionError::ArrowError(
                Box::new(ArrowError::DivideByZero),
                None,
            )),
            QueryError::DataFusion(DataFusionError::Execution(
                "Month value '13' is out of range".into(),
            )),
            QueryError::other(SqlState::STATEMENT_TOO_COMPLEX, "statement too complex"),
        ];
        for e in &local {
            let here = error_info(e);
            for midway in [false, true] {
                let there = error_info(&raised_remotely(e, midway));
                assert_eq!(
                    (&there.code, &there.message, &there.hint),
                    (&here.code, &here.message, &here.hint),
                    "{e:?}"
                );
            }
        }
        let in_doubt = error_info(&local[0]);
        assert_eq!((in_doubt.code.as_str(), in_doubt.hint), ("08007", None));
        assert_eq!(error_info(&local[1]).hint.as_deref(), Some(RETRY_HINT));
    }

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
