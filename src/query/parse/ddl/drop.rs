//! `DROP DATABASE [IF EXISTS] path`, `DROP TABLE [IF EXISTS] name` and
//! `TRUNCATE [TABLE] name`.

use super::ast::DdlStatement;
use super::error::DdlError;
use super::parser::Parser;

impl Parser<'_> {
    /// The rest of a statement after `DROP`.
    pub(super) fn drop(&mut self) -> Result<DdlStatement, DdlError> {
        if self.eat_keyword("database") {
            let if_exists = self.if_exists()?;
            let path = self.database_path()?;
            return Ok(DdlStatement::DropDatabase { path, if_exists });
        }
        self.expect_keyword("table", "DATABASE or TABLE after DROP")?;
        let if_exists = self.if_exists()?;
        let name = self.table_name()?;
        Ok(DdlStatement::DropTable { name, if_exists })
    }

    /// The rest of a statement after `TRUNCATE`.
    pub(super) fn truncate(&mut self) -> Result<DdlStatement, DdlError> {
        self.eat_keyword("table");
        let name = self.table_name()?;
        Ok(DdlStatement::TruncateTable { name })
    }
}
