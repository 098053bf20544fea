//! porpoise's DolphinDB-flavoured DDL: syntax tree and recursive-descent parser over the shared
//! [`lexer`](super::lexer).
//!
//! This module owns the statements porpoise parses itself instead of handing them to
//! sqlparser: `CREATE DATABASE`, `CREATE TABLE`, `DROP DATABASE`, `DROP TABLE`,
//! `TRUNCATE [TABLE]` and `ALTER TABLE`. [`parse_ddl`] decides from the leading keywords
//! whether a statement is one of these; anything else is `Ok(None)` and goes to
//! sqlparser/DataFusion.
//!
//! The grammar mixes PostgreSQL (quoted identifiers, `NOT NULL`, `numeric(10,2)`,
//! `DATE '2023-01-01'`) with DolphinDB (`"dfs://db"` paths, `VALUE(2023.01.01..2023.12.31)`
//! schemes, `` `a`b `` symbol vectors, `[comment="x"]` column options):
//!
//! ```text
//! CREATE DATABASE [IF NOT EXISTS] path PARTITIONED BY level [, level [, level]] [, name = value]...
//!     level := VALUE(scheme) | RANGE(scheme) | LIST(scheme) | HASH([TYPE, buckets])
//! CREATE TABLE [IF NOT EXISTS] table ( column [, column]... )
//!     [PARTITIONED BY col [, col [, col]]] [, name = value]...
//!     column := name TYPE [NOT NULL | NULL] [ [name = value, ...] ]
//! DROP DATABASE [IF EXISTS] path
//! DROP TABLE [IF EXISTS] table
//! TRUNCATE [TABLE] table
//! ALTER TABLE table ADD [COLUMN] column | DROP [COLUMN] name | DROP PARTITION 'p' [, ...] |
//!     RENAME [COLUMN] a TO b
//!     table := "dfs://db"."t" | 'dfs://db'.'t' | "dfs://db".t | loadTable('dfs://db', 't') | t | "T"
//! ```
//!
//! The parser only checks syntax. Type names, option names and values, and whether the
//! partitioning columns exist are kept as written for the caller (the DDL planner) to
//! validate. Identifiers keep the case they were written in, quoted or not, because
//! DolphinDB users write mixed-case column names such as `SecurityID` unquoted; keywords are
//! case-insensitive.
//!
//! Option values: a single symbol `` `a `` is [`Literal::Symbol`]; a symbol vector
//! `` `a`b `` has no `Literal` variant, so it is stored as [`Literal::String`] holding the
//! comma-joined names (`"a,b"`), which [`Literal::name_list`] splits again. A bare word such
//! as `keepDuplicates=ALL` is [`Literal::Ident`].
//!
//! One file per part of the grammar: `ast` holds the syntax tree, `parser` the token cursor
//! and the statement dispatch, and `database`, `table`, `alter`, `drop`, `names`, `column`,
//! `option`, `partition` and `scalar` the rules their names say.

mod alter;
mod ast;
mod column;
mod database;
mod drop;
mod error;
mod names;
mod option;
mod parser;
mod partition;
mod scalar;
mod table;

pub use ast::{AlterOp, ColumnDef, DdlStatement, PartitionSpec, TableName};
pub use error::DdlError;

use super::lexer::{Grammar, Lexer};
use parser::Parser;

/// At most this many partition levels (`CREATE DATABASE`) or partitioning columns
/// (`CREATE TABLE`), as in DolphinDB's composite partitioning.
pub const MAX_PARTITION_LEVELS: usize = 3;

/// The most elements the range vectors (`a..b`) of one statement may expand to, so that a
/// typo such as `1..1000000000` is an error rather than an allocation of gigabytes.
pub const MAX_RANGE_ELEMENTS: u64 = 1_000_000;

/// Parses `sql` if it is one of porpoise's own DDL statements.
///
/// Returns `Ok(None)` when the leading keywords are not `CREATE DATABASE`, `CREATE TABLE`,
/// `DROP DATABASE`, `DROP TABLE`, `TRUNCATE` or `ALTER TABLE`, so the caller can hand the
/// statement to sqlparser; `Err` when they are but the rest does not parse. One statement,
/// optionally followed by `;`; comments and whitespace are allowed anywhere.
pub fn parse_ddl(sql: &str) -> Result<Option<DdlStatement>, DdlError> {
    if !is_own_statement(sql) {
        return Ok(None);
    }
    let mut parser = Parser::new(sql)?;
    let statement = parser.statement()?;
    parser.end_of_statement()?;
    Ok(Some(statement))
}

/// Whether the leading keywords make `sql` one of ours. Lexing errors here mean "not ours":
/// a statement that is not DDL must reach sqlparser even if it does not lex our way.
fn is_own_statement(sql: &str) -> bool {
    let mut lexer = Lexer::new(sql, Grammar::Ddl);
    let Ok(first) = lexer.next_token() else {
        return false;
    };
    let second_is = |lexer: &mut Lexer, keywords: &[&str]| {
        lexer
            .next_token()
            .is_ok_and(|token| keywords.iter().any(|kw| token.is_keyword(kw)))
    };
    if first.is_keyword("truncate") {
        true
    } else if first.is_keyword("create") || first.is_keyword("drop") {
        second_is(&mut lexer, &["database", "table"])
    } else if first.is_keyword("alter") {
        second_is(&mut lexer, &["table"])
    } else {
        false
    }
}

#[cfg(test)]
mod tests;
