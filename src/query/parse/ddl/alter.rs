//! `ALTER TABLE name ADD [COLUMN] column | DROP [COLUMN] name | DROP PARTITION 'p' [, ...] |
//! RENAME [COLUMN] a TO b | RENAME TO new_name`.

use super::ast::{AlterOp, DdlStatement};
use super::error::DdlError;
use super::parser::Parser;
use crate::query::parse::lexer::TokenKind;

impl Parser<'_> {
    pub(super) fn alter_table(&mut self) -> Result<DdlStatement, DdlError> {
        let name = self.table_name()?;
        let op = if self.eat_keyword("add") {
            self.eat_keyword("column");
            AlterOp::AddColumn(self.column_def()?)
        } else if self.eat_keyword("drop") {
            if self.eat_keyword("partition") {
                return Ok(DdlStatement::AlterTable {
                    name,
                    op: AlterOp::DropPartitions(self.partition_names()?),
                });
            }
            self.eat_keyword("column");
            AlterOp::DropColumn(self.identifier("a column name")?)
        } else if self.eat_keyword("rename") {
            if self.eat_keyword("to") {
                let to = self.identifier("the new table name")?;
                return Ok(DdlStatement::AlterTable {
                    name,
                    op: AlterOp::RenameTable { to },
                });
            }
            self.eat_keyword("column");
            let from = self.identifier("a column name")?;
            self.expect_keyword("to", "TO after the column name")?;
            let to = self.identifier("the new column name")?;
            AlterOp::RenameColumn { from, to }
        } else {
            return Err(self.unexpected("ADD, DROP or RENAME after the table name"));
        };
        Ok(DdlStatement::AlterTable { name, op })
    }

    /// `'p' [, 'p' ...]`, optionally in parentheses: partitions as the table's files name them
    /// (`checkClusterReplicationConsistency` shows them).
    fn partition_names(&mut self) -> Result<Vec<String>, DdlError> {
        let parenthesized = self.eat(&TokenKind::LParen);
        let mut names = Vec::new();
        loop {
            let token = self.advance();
            match &token.kind {
                TokenKind::Str(name) if !name.is_empty() => names.push(name.clone()),
                _ => return Err(self.syntax_error(&token, "a partition name in quotes")),
            }
            if !self.eat(&TokenKind::Comma) {
                break;
            }
        }
        if parenthesized {
            self.expect(&TokenKind::RParen, ") after the partition names")?;
        }
        Ok(names)
    }
}
