//! `CREATE TABLE name (column, ...) [PARTITIONED BY col, ...] [, name = value]...`.

use super::ast::{ColumnDef, DdlStatement};
use super::error::DdlError;
use super::parser::Parser;
use super::MAX_PARTITION_LEVELS;
use crate::query::parse::lexer::TokenKind;

impl Parser<'_> {
    pub(super) fn create_table(&mut self) -> Result<DdlStatement, DdlError> {
        let if_not_exists = self.if_not_exists()?;
        let name = self.table_name()?;
        self.expect(&TokenKind::LParen, "\"(\" to start the column list")?;
        if self.peek().kind == TokenKind::RParen {
            return Err(DdlError::new(
                "a table needs at least one column",
                self.peek().start,
            ));
        }
        let mut columns: Vec<ColumnDef> = Vec::new();
        // Lowercased names seen so far: a set, so that a very wide table is not quadratic.
        let mut names = std::collections::HashSet::new();
        loop {
            let start = self.peek().start;
            let column = self.column_def()?;
            if !names.insert(column.name.to_lowercase()) {
                return Err(DdlError::invalid(
                    format!("column \"{}\" specified more than once", column.name),
                    start,
                    "42701",
                ));
            }
            columns.push(column);
            if !self.eat(&TokenKind::Comma) {
                break;
            }
        }
        self.expect(
            &TokenKind::RParen,
            "\",\" or \")\" after a column definition",
        )?;

        let mut partitioned_by = Vec::new();
        if self.eat_keyword("partitioned") {
            self.expect_keyword("by", "BY after PARTITIONED")?;
            partitioned_by.push(self.identifier("a partitioning column")?);
            // `, col` is another partitioning column unless it is `, name = value`.
            while self.peek().kind == TokenKind::Comma && self.peek_nth(2).kind != TokenKind::Eq {
                self.advance();
                if partitioned_by.len() == MAX_PARTITION_LEVELS {
                    return Err(DdlError::new(
                        format!("a table has at most {MAX_PARTITION_LEVELS} partitioning columns"),
                        self.peek().start,
                    ));
                }
                partitioned_by.push(self.identifier("a partitioning column")?);
            }
        }

        let mut options = Vec::new();
        while self.eat(&TokenKind::Comma) {
            self.option(&mut options)?;
        }
        Ok(DdlStatement::CreateTable {
            name,
            if_not_exists,
            columns,
            partitioned_by,
            options,
        })
    }
}
