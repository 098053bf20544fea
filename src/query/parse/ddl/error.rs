//! [`DdlError`]: the one error of the DDL parser, with its SQLSTATE and position.

use crate::query::parse::lexer::LexError;

/// A syntax error, with a lowercase PostgreSQL-style message and the byte offset into the
/// statement where it was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DdlError {
    pub message: String,
    /// Byte offset into the statement text (always at a char boundary).
    pub position: usize,
    /// The SQLSTATE: 42601 (syntax) unless the statement is well-formed but invalid.
    pub sqlstate: &'static str,
}

/// SQLSTATE of a well-formed but invalid partition scheme or table definition.
pub(super) const INVALID_DEFINITION: &str = "42P16";

impl DdlError {
    pub(super) fn new(message: impl Into<String>, position: usize) -> Self {
        DdlError {
            message: message.into(),
            position,
            sqlstate: "42601",
        }
    }

    /// A well-formed statement that defines something invalid.
    pub(super) fn invalid(
        message: impl Into<String>,
        position: usize,
        sqlstate: &'static str,
    ) -> Self {
        DdlError {
            sqlstate,
            ..DdlError::new(message, position)
        }
    }
}

/// Lexing errors keep the lexer's wording and the position of the offending token.
impl From<LexError> for DdlError {
    fn from(error: LexError) -> Self {
        DdlError::new(error.to_string(), error.position())
    }
}

/// A syntax error or an invalid definition: the same again fails alike.
impl crate::sqlstate::ErrorCode for DdlError {
    fn sqlstate(&self) -> crate::sqlstate::SqlState {
        crate::sqlstate::SqlState::from_static(self.sqlstate)
    }

    fn retryable(&self) -> bool {
        false
    }
}
