//! Names: identifiers, database paths (`"dfs://db"`) and the table name forms.

use super::ast::TableName;
use super::error::DdlError;
use super::parser::Parser;
use crate::query::parse::lexer::TokenKind;

/// Every database path starts with this.
pub(super) const DFS_PREFIX: &str = "dfs://";

impl Parser<'_> {
    /// A column name (or other identifier): an unquoted word or a `"quoted"` one.
    pub(super) fn identifier(&mut self, what: &str) -> Result<String, DdlError> {
        let token = self.peek().clone();
        match token.kind {
            TokenKind::Word(word) => {
                self.advance();
                Ok(word)
            }
            TokenKind::QuotedIdent(name) => {
                if name.is_empty() {
                    return Err(DdlError::new(
                        "zero-length delimited identifier",
                        token.start,
                    ));
                }
                self.advance();
                Ok(name)
            }
            _ => Err(self.unexpected(what)),
        }
    }

    /// `"dfs://db"` or `'dfs://db'`.
    pub(super) fn database_path(&mut self) -> Result<String, DdlError> {
        let token = self.peek().clone();
        match token.kind {
            TokenKind::Str(path) | TokenKind::QuotedIdent(path) => {
                self.advance();
                check_database_path(path, token.start)
            }
            _ => Err(self.unexpected("a quoted database path such as \"dfs://db\"")),
        }
    }

    /// Any of the table name forms listed in the module docs.
    pub(super) fn table_name(&mut self) -> Result<TableName, DdlError> {
        let token = self.peek().clone();
        match &token.kind {
            TokenKind::Word(word)
                if word.eq_ignore_ascii_case("loadtable")
                    && self.peek_nth(1).kind == TokenKind::LParen =>
            {
                self.advance();
                self.advance();
                let db = self.database_path()?;
                self.expect(
                    &TokenKind::Comma,
                    "\",\" after the database path in loadTable",
                )?;
                let table = self.table_part()?;
                self.expect(&TokenKind::RParen, "\")\" to close loadTable")?;
                Ok(TableName {
                    db: Some(db),
                    table,
                })
            }
            TokenKind::Word(table) => {
                self.advance();
                if self.peek().kind == TokenKind::Dot {
                    return Err(self.syntax_error(
                        &token,
                        "a quoted database path such as \"dfs://db\" before \".\"",
                    ));
                }
                Ok(TableName {
                    db: None,
                    table: table.clone(),
                })
            }
            TokenKind::Str(text) | TokenKind::QuotedIdent(text) => {
                self.advance();
                if self.eat(&TokenKind::Dot) {
                    let db = check_database_path(text.clone(), token.start)?;
                    let table = self.table_part()?;
                    return Ok(TableName {
                        db: Some(db),
                        table,
                    });
                }
                if text.starts_with(DFS_PREFIX) {
                    return Err(self.unexpected("\".\" and a table name after the database path"));
                }
                if matches!(token.kind, TokenKind::Str(_)) {
                    // 'abc' is a string, not a name, unless it qualifies a table.
                    return Err(self.syntax_error(&token, "a table name"));
                }
                if text.is_empty() {
                    return Err(DdlError::new(
                        "zero-length delimited identifier",
                        token.start,
                    ));
                }
                Ok(TableName {
                    db: None,
                    table: text.clone(),
                })
            }
            _ => Err(self.unexpected("a table name")),
        }
    }

    /// The table part of a qualified name: `t`, `"t"` or `'t'`.
    pub(super) fn table_part(&mut self) -> Result<String, DdlError> {
        let token = self.peek().clone();
        match token.kind {
            TokenKind::Word(table) => {
                self.advance();
                Ok(table)
            }
            TokenKind::Str(table) | TokenKind::QuotedIdent(table) => {
                if table.is_empty() {
                    return Err(DdlError::new(
                        "zero-length delimited identifier",
                        token.start,
                    ));
                }
                self.advance();
                Ok(table)
            }
            _ => Err(self.unexpected("a table name")),
        }
    }
}

/// Checks that a database path starts with `dfs://` and names a database.
pub(super) fn check_database_path(path: String, position: usize) -> Result<String, DdlError> {
    if !path.starts_with(DFS_PREFIX) {
        return Err(DdlError::new(
            format!("database path must start with dfs://, got \"{path}\""),
            position,
        ));
    }
    if path.len() == DFS_PREFIX.len() {
        return Err(DdlError::new(
            "database path dfs:// has no database name",
            position,
        ));
    }
    Ok(path)
}
