//! `CREATE DATABASE path PARTITIONED BY level [, level]... [, name = value]...`.

use super::ast::DdlStatement;
use super::error::{DdlError, INVALID_DEFINITION};
use super::parser::Parser;
use super::MAX_PARTITION_LEVELS;
use crate::query::parse::lexer::TokenKind;

impl Parser<'_> {
    pub(super) fn create_database(&mut self) -> Result<DdlStatement, DdlError> {
        let if_not_exists = self.if_not_exists()?;
        let path = self.database_path()?;
        self.expect_keyword("partitioned", "PARTITIONED BY after the database path")?;
        self.expect_keyword("by", "BY after PARTITIONED")?;
        let mut levels = vec![self.partition_level()?];
        let mut options = Vec::new();
        while self.peek().kind == TokenKind::Comma {
            // `, WORD(` is another level, `, name = value` an option; levels come first.
            let is_level = options.is_empty()
                && matches!(self.peek_nth(1).kind, TokenKind::Word(_))
                && self.peek_nth(2).kind == TokenKind::LParen;
            self.advance();
            if !is_level {
                self.option(&mut options)?;
            } else if levels.len() == MAX_PARTITION_LEVELS {
                return Err(DdlError::invalid(
                    format!("a database has at most {MAX_PARTITION_LEVELS} partition levels"),
                    self.peek().start,
                    INVALID_DEFINITION,
                ));
            } else {
                levels.push(self.partition_level()?);
            }
        }
        Ok(DdlStatement::CreateDatabase {
            path,
            if_not_exists,
            levels,
            options,
        })
    }
}
