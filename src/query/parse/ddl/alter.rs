//! `ALTER TABLE name ADD [COLUMN] column | DROP [COLUMN] name | RENAME [COLUMN] a TO b |
//! RENAME TO new_name`.

use super::ast::{AlterOp, DdlStatement};
use super::error::DdlError;
use super::parser::Parser;

impl Parser<'_> {
    pub(super) fn alter_table(&mut self) -> Result<DdlStatement, DdlError> {
        let name = self.table_name()?;
        let op = if self.eat_keyword("add") {
            self.eat_keyword("column");
            AlterOp::AddColumn(self.column_def()?)
        } else if self.eat_keyword("drop") {
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
}
