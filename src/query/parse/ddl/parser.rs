//! The DDL parser's token cursor, its syntax errors, and the dispatch from a statement's
//! leading keywords to the rule that parses the rest.

use super::ast::DdlStatement;
use super::error::DdlError;
use crate::query::parse::lexer::{Grammar, Lexer, Token, TokenKind};

/// A cursor over the tokens of one statement; the grammar rules are its methods, one file
/// per part of the grammar.
pub(super) struct Parser<'a> {
    sql: &'a str,
    /// Every token except the final `Eof`, which is kept apart so `peek` never runs out.
    tokens: Vec<Token>,
    eof: Token,
    pos: usize,
    /// Elements produced by range vectors so far, against [`MAX_RANGE_ELEMENTS`](super::MAX_RANGE_ELEMENTS).
    pub(super) range_elements: u64,
}

impl<'a> Parser<'a> {
    pub(super) fn new(sql: &'a str) -> Result<Self, DdlError> {
        let (tokens, eof) = Lexer::new(sql, Grammar::Ddl).tokenize()?;
        Ok(Parser {
            sql,
            tokens,
            eof,
            pos: 0,
            range_elements: 0,
        })
    }

    // ----- token access ---------------------------------------------------------------

    pub(super) fn peek(&self) -> &Token {
        self.peek_nth(0)
    }

    pub(super) fn peek_nth(&self, n: usize) -> &Token {
        self.tokens.get(self.pos + n).unwrap_or(&self.eof)
    }

    pub(super) fn advance(&mut self) -> Token {
        let token = self.peek().clone();
        if self.pos < self.tokens.len() {
            self.pos += 1;
        }
        token
    }

    pub(super) fn text(&self, token: &Token) -> &'a str {
        self.sql.get(token.start..token.end).unwrap_or("")
    }

    pub(super) fn is_keyword(&self, keyword: &str) -> bool {
        self.peek().is_keyword(keyword)
    }

    pub(super) fn eat_keyword(&mut self, keyword: &str) -> bool {
        let found = self.is_keyword(keyword);
        if found {
            self.advance();
        }
        found
    }

    pub(super) fn expect_keyword(&mut self, keyword: &str, expected: &str) -> Result<(), DdlError> {
        if self.eat_keyword(keyword) {
            Ok(())
        } else {
            Err(self.unexpected(expected))
        }
    }

    pub(super) fn eat(&mut self, kind: &TokenKind) -> bool {
        let found = &self.peek().kind == kind;
        if found {
            self.advance();
        }
        found
    }

    pub(super) fn expect(&mut self, kind: &TokenKind, expected: &str) -> Result<(), DdlError> {
        if self.eat(kind) {
            Ok(())
        } else {
            Err(self.unexpected(expected))
        }
    }

    // ----- errors ---------------------------------------------------------------------

    /// `syntax error at or near "x": expected ...`, positioned at `token`.
    pub(super) fn syntax_error(&self, token: &Token, expected: &str) -> DdlError {
        let near = if token.kind == TokenKind::Eof {
            "syntax error at end of input".to_string()
        } else {
            // Quote at most 40 chars, so a runaway string does not flood the message.
            let text = self.text(token);
            let mut shown: String = text.chars().take(40).collect();
            if shown.len() < text.len() {
                shown.push_str("...");
            }
            format!("syntax error at or near \"{shown}\"")
        };
        DdlError::new(format!("{near}: expected {expected}"), token.start)
    }

    /// A syntax error at the next token.
    pub(super) fn unexpected(&self, expected: &str) -> DdlError {
        self.syntax_error(self.peek(), expected)
    }

    // ----- statements -----------------------------------------------------------------

    pub(super) fn statement(&mut self) -> Result<DdlStatement, DdlError> {
        if self.eat_keyword("create") {
            if self.eat_keyword("database") {
                return self.create_database();
            }
            self.expect_keyword("table", "DATABASE or TABLE after CREATE")?;
            return self.create_table();
        }
        if self.eat_keyword("drop") {
            return self.drop();
        }
        if self.eat_keyword("truncate") {
            return self.truncate();
        }
        self.expect_keyword("alter", "CREATE, DROP, TRUNCATE or ALTER")?;
        self.expect_keyword("table", "TABLE after ALTER")?;
        self.alter_table()
    }

    /// After the statement: any number of `;`, then the end of the input.
    pub(super) fn end_of_statement(&mut self) -> Result<(), DdlError> {
        while self.eat(&TokenKind::Semicolon) {}
        if self.peek().kind == TokenKind::Eof {
            Ok(())
        } else {
            Err(self.unexpected("end of statement"))
        }
    }

    /// `[IF NOT EXISTS]`. `IF` alone is left for the name (a table may be called `if`).
    pub(super) fn if_not_exists(&mut self) -> Result<bool, DdlError> {
        if !(self.is_keyword("if") && self.peek_nth(1).is_keyword("not")) {
            return Ok(false);
        }
        self.advance();
        self.advance();
        self.expect_keyword("exists", "EXISTS after IF NOT")?;
        Ok(true)
    }

    /// `[IF EXISTS]`.
    pub(super) fn if_exists(&mut self) -> Result<bool, DdlError> {
        let found = self.is_keyword("if") && self.peek_nth(1).is_keyword("exists");
        if found {
            self.advance();
            self.advance();
        }
        Ok(found)
    }
}
