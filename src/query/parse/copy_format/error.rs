//! [`CopyError`], the one error of COPY data parsing, and the helpers that word its context.

/// An error that aborts the COPY, shaped like the PostgreSQL `ErrorResponse` it becomes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct CopyError {
    /// The SQLSTATE, e.g. `22P02`.
    pub sqlstate: &'static str,
    /// The primary message, worded as PostgreSQL words it.
    pub message: String,
    /// PostgreSQL's CONTEXT line, e.g. `COPY t, line 3, column b: "abc"`.
    pub context: Option<String>,
}

impl CopyError {
    pub(super) fn new(
        sqlstate: &'static str,
        message: impl Into<String>,
        context: Option<String>,
    ) -> Self {
        Self {
            sqlstate,
            message: message.into(),
            context,
        }
    }
}

pub(super) fn internal_error(error: impl std::fmt::Display) -> CopyError {
    CopyError::new("XX000", format!("COPY internal error: {error}"), None)
}

/// PostgreSQL's `limit_printout_length`: at most 100 bytes, cut at a character boundary and
/// marked with `...`.
pub(super) fn printable(bytes: &[u8]) -> String {
    const MAX: usize = 100;
    let text = String::from_utf8_lossy(bytes);
    if text.len() <= MAX {
        return text.into_owned();
    }
    let mut cut = MAX;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}...", &text[..cut])
}

/// Bad COPY data: the same again fails alike.
impl crate::sqlstate::ErrorCode for CopyError {
    fn sqlstate(&self) -> crate::sqlstate::SqlState {
        crate::sqlstate::SqlState::from_static(self.sqlstate)
    }

    fn retryable(&self) -> bool {
        false
    }
}
