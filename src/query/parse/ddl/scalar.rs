//! One literal value: numbers, DolphinDB temporal literals, strings, symbols, booleans, NULL
//! and PostgreSQL typed literals.

use super::error::DdlError;
use super::parser::Parser;
use crate::query::parse::lexer::TokenKind;
use crate::query::parse::literal::{self, Literal, LiteralError};

impl Parser<'_> {
    /// Whether the next token starts a scalar, i.e. continues a juxtaposed vector.
    pub(super) fn starts_scalar(&self) -> bool {
        let token = self.peek();
        match &token.kind {
            TokenKind::Number
            | TokenKind::Str(_)
            | TokenKind::QuotedIdent(_)
            | TokenKind::Symbol(_) => true,
            TokenKind::Minus => self.peek_nth(1).kind == TokenKind::Number,
            TokenKind::Word(_) => {
                ["true", "false", "null"]
                    .iter()
                    .any(|kw| token.is_keyword(kw))
                    || (["date", "time", "timestamp"]
                        .iter()
                        .any(|kw| token.is_keyword(kw))
                        && matches!(self.peek_nth(1).kind, TokenKind::Str(_)))
            }
            _ => false,
        }
    }

    /// One literal: a number (optionally negative), a DolphinDB temporal literal, a string
    /// (`'x'` or `"x"`), a symbol, `true`/`false`/`null`, or a PostgreSQL typed literal
    /// (`DATE '...'`, `TIME '...'`, `TIMESTAMP '...'`). With `allow_ident`, any other bare
    /// word is an [`Literal::Ident`].
    pub(super) fn scalar(&mut self, allow_ident: bool) -> Result<Literal, DdlError> {
        let token = self.peek().clone();
        let at = |e: LiteralError| DdlError::new(e.0, token.start);
        let literal = match &token.kind {
            TokenKind::Number => {
                literal::parse_numeric_literal(self.text(&token), false).map_err(at)?
            }
            TokenKind::Minus => {
                let number = self.peek_nth(1).clone();
                if number.kind != TokenKind::Number {
                    self.advance();
                    return Err(self.unexpected("a number after \"-\""));
                }
                self.advance();
                literal::parse_numeric_literal(self.text(&number), true).map_err(at)?
            }
            TokenKind::Str(text) | TokenKind::QuotedIdent(text) => Literal::String(text.clone()),
            TokenKind::Symbol(name) => Literal::Symbol(name.clone()),
            TokenKind::Word(word) => {
                let typed = match &self.peek_nth(1).kind {
                    TokenKind::Str(value) => match word.to_ascii_lowercase().as_str() {
                        "date" => Some(literal::parse_sql_date(value)),
                        "time" => Some(literal::parse_sql_time(value)),
                        "timestamp" => Some(literal::parse_sql_timestamp(value)),
                        _ => None,
                    },
                    _ => None,
                };
                if let Some(typed) = typed {
                    let value_start = self.peek_nth(1).start;
                    self.advance();
                    typed.map_err(|e| DdlError::new(e.0, value_start))?
                } else if word.eq_ignore_ascii_case("true") {
                    Literal::Bool(true)
                } else if word.eq_ignore_ascii_case("false") {
                    Literal::Bool(false)
                } else if word.eq_ignore_ascii_case("null") {
                    Literal::Null
                } else if allow_ident {
                    Literal::Ident(word.clone())
                } else {
                    return Err(self.unexpected("a literal"));
                }
            }
            _ => return Err(self.unexpected("a literal")),
        };
        self.advance();
        Ok(literal)
    }
}
