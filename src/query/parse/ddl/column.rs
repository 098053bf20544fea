//! Column definitions: `name TYPE [NOT NULL | NULL] [[option = value, ...]]`.

use super::ast::ColumnDef;
use super::error::DdlError;
use super::parser::Parser;
use crate::query::parse::lexer::TokenKind;
use crate::query::parse::literal::Literal;

/// Words that end a column's type name: `NOT NULL`, `NULL`, and the PostgreSQL column
/// constraints porpoise rejects with a clear message instead of reading them as type words.
const TYPE_STOP_WORDS: &[&str] = &[
    "not",
    "null",
    "default",
    "primary",
    "unique",
    "references",
    "check",
    "constraint",
    "collate",
    "generated",
];

/// Words that start a PostgreSQL table constraint where a column definition is expected.
const TABLE_CONSTRAINT_WORDS: &[&str] = &["primary", "unique", "constraint", "check", "foreign"];

impl Parser<'_> {
    /// `name TYPE [NOT NULL | NULL] [[option = value, ...]]`; the last two in either order.
    pub(super) fn column_def(&mut self) -> Result<ColumnDef, DdlError> {
        let token = self.peek().clone();
        if TABLE_CONSTRAINT_WORDS.iter().any(|kw| token.is_keyword(kw)) {
            return Err(DdlError::new(
                format!(
                    "table constraints such as {} are not supported",
                    self.text(&token)
                ),
                token.start,
            ));
        }
        let name = self.identifier("a column name")?;
        let (type_name, type_args) = self.column_type(&name)?;
        let mut not_null = None;
        let mut options = None;
        loop {
            let token = self.peek().clone();
            let nullability = if token.is_keyword("not") {
                self.advance();
                self.expect_keyword("null", "NULL after NOT")?;
                Some(true)
            } else if token.is_keyword("null") {
                self.advance();
                Some(false)
            } else {
                None
            };
            if let Some(value) = nullability {
                if not_null.replace(value).is_some() {
                    return Err(DdlError::new(
                        format!(
                            "conflicting or redundant NULL / NOT NULL declarations for column \"{name}\""
                        ),
                        token.start,
                    ));
                }
            } else if token.kind == TokenKind::LBracket {
                if options.is_some() {
                    return Err(DdlError::new(
                        format!("column \"{name}\" has more than one option list"),
                        token.start,
                    ));
                }
                options = Some(self.column_options()?);
            } else if TYPE_STOP_WORDS.iter().any(|kw| token.is_keyword(kw)) {
                return Err(DdlError::new(
                    format!("column constraint {} is not supported", self.text(&token)),
                    token.start,
                ));
            } else {
                break;
            }
        }
        Ok(ColumnDef {
            name,
            type_name,
            type_args,
            not_null: not_null.unwrap_or(false),
            options: options.unwrap_or_default(),
        })
    }

    /// The type of column `column`: words with at most one `(n[, m]...)` among them, as in
    /// `varchar(20)`, `double precision`, `timestamp(3) with time zone`.
    pub(super) fn column_type(&mut self, column: &str) -> Result<(String, Vec<i64>), DdlError> {
        let mut words: Vec<String> = Vec::new();
        let mut args = None;
        loop {
            let token = self.peek().clone();
            match token.kind {
                TokenKind::Word(word) if !TYPE_STOP_WORDS.iter().any(|kw| token.is_keyword(kw)) => {
                    if word.eq_ignore_ascii_case("array") {
                        return Err(array_error(token.start));
                    }
                    self.advance();
                    words.push(word);
                }
                TokenKind::LParen if !words.is_empty() && args.is_none() => {
                    args = Some(self.type_args()?);
                }
                _ => break,
            }
        }
        if words.is_empty() {
            return Err(self.unexpected(&format!("a type for column \"{column}\"")));
        }
        // `INT[]` / `INT[10]`; a `[` followed by anything else starts the column options.
        if self.peek().kind == TokenKind::LBracket
            && matches!(
                self.peek_nth(1).kind,
                TokenKind::RBracket | TokenKind::Number
            )
        {
            return Err(array_error(self.peek().start));
        }
        Ok((words.join(" "), args.unwrap_or_default()))
    }

    /// `(n[, m]...)` after a type name: integers only.
    pub(super) fn type_args(&mut self) -> Result<Vec<i64>, DdlError> {
        self.expect(&TokenKind::LParen, "\"(\"")?;
        let mut args = Vec::new();
        loop {
            if !matches!(self.peek().kind, TokenKind::Number | TokenKind::Minus) {
                return Err(self.unexpected("an integer type modifier"));
            }
            let start = self.peek().start;
            match self.scalar(false)? {
                Literal::Int(value) => args.push(value),
                other => {
                    return Err(DdlError::new(
                        format!("type modifiers must be integers, got {other}"),
                        start,
                    ))
                }
            }
            if !self.eat(&TokenKind::Comma) {
                break;
            }
        }
        self.expect(&TokenKind::RParen, "\",\" or \")\" in the type modifiers")?;
        Ok(args)
    }

    /// `[name = value, ...]` after a column type.
    pub(super) fn column_options(&mut self) -> Result<Vec<(String, Literal)>, DdlError> {
        self.expect(&TokenKind::LBracket, "\"[\"")?;
        let mut options = Vec::new();
        loop {
            self.option(&mut options)?;
            if !self.eat(&TokenKind::Comma) {
                break;
            }
        }
        self.expect(&TokenKind::RBracket, "\",\" or \"]\" in the column options")?;
        Ok(options)
    }
}

/// The error for `INT[]`, `INT[10]` and `INT ARRAY` column types.
pub(super) fn array_error(position: usize) -> DdlError {
    DdlError::new("array column types are not supported", position)
}
