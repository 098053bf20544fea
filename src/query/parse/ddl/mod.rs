//! porpoise's DolphinDB-flavoured DDL: syntax tree, lexer and recursive-descent parser.
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
//! ALTER TABLE table ADD [COLUMN] column | DROP [COLUMN] name | RENAME [COLUMN] a TO b
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

use super::literal::{self, Literal, LiteralError};

/// At most this many partition levels (`CREATE DATABASE`) or partitioning columns
/// (`CREATE TABLE`), as in DolphinDB's composite partitioning.
pub const MAX_PARTITION_LEVELS: usize = 3;

/// The most elements the range vectors (`a..b`) of one statement may expand to, so that a
/// typo such as `1..1000000000` is an error rather than an allocation of gigabytes.
pub const MAX_RANGE_ELEMENTS: u64 = 1_000_000;

/// How deeply `[...]` vectors may nest; bounds the parser's recursion.
const MAX_NESTING: usize = 16;

/// Every database path starts with this.
const DFS_PREFIX: &str = "dfs://";

/// A DDL statement porpoise handles itself.
#[derive(Debug, Clone, PartialEq)]
pub enum DdlStatement {
    /// `CREATE DATABASE "dfs://x" PARTITIONED BY ...`.
    CreateDatabase {
        /// The path, including `dfs://`.
        path: String,
        if_not_exists: bool,
        /// One to three levels, outermost first.
        levels: Vec<PartitionSpec>,
        /// `engine='OLAP'`, `atomic='TRANS'`, ...: names as written, unvalidated.
        options: Vec<(String, Literal)>,
    },
    /// `CREATE TABLE name (...)`.
    CreateTable {
        name: TableName,
        if_not_exists: bool,
        /// At least one column; names are unique ignoring case.
        columns: Vec<ColumnDef>,
        /// The `PARTITIONED BY` columns (zero to three), not checked against `columns`.
        partitioned_by: Vec<String>,
        /// `sortColumns=`a`b`, `keepDuplicates=ALL`, ...: names as written, unvalidated.
        options: Vec<(String, Literal)>,
    },
    /// `DROP DATABASE "dfs://x"`.
    DropDatabase { path: String, if_exists: bool },
    /// `DROP TABLE name`.
    DropTable { name: TableName, if_exists: bool },
    /// `TRUNCATE [TABLE] name`.
    TruncateTable { name: TableName },
    /// `ALTER TABLE name ...`.
    AlterTable { name: TableName, op: AlterOp },
}

/// A table name, optionally qualified by its database path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableName {
    /// `Some("dfs://x")` when qualified, `None` for a bare `t`.
    pub db: Option<String>,
    /// The table name, in the case it was written.
    pub table: String,
}

/// One column of `CREATE TABLE` or `ALTER TABLE ... ADD COLUMN`.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnDef {
    /// The column name, in the case it was written.
    pub name: String,
    /// The type as written, its words joined by single spaces: `"SYMBOL"`,
    /// `"double precision"`, `"timestamp with time zone"`, `"DECIMAL64"`.
    pub type_name: String,
    /// The type's parenthesised integers: `numeric(10,2)` → `[10, 2]`, `varchar(20)` → `[20]`.
    pub type_args: Vec<i64>,
    /// Whether `NOT NULL` was given.
    pub not_null: bool,
    /// DolphinDB column options: `[comment="x", compress="delta"]`, names as written.
    pub options: Vec<(String, Literal)>,
}

/// What `ALTER TABLE` does.
#[derive(Debug, Clone, PartialEq)]
pub enum AlterOp {
    AddColumn(ColumnDef),
    DropColumn(String),
    RenameColumn { from: String, to: String },
}

/// One partition level of `CREATE DATABASE`, with its scheme fully expanded.
#[derive(Debug, Clone, PartialEq)]
pub enum PartitionSpec {
    /// `VALUE(scheme)`: one partition per value.
    Value(Vec<Literal>),
    /// `RANGE(scheme)`: partition boundaries (at least two, ordering not checked).
    Range(Vec<Literal>),
    /// `LIST(scheme)`: one partition per group of values.
    List(Vec<Vec<Literal>>),
    /// `HASH([TYPE, buckets])`, the type name as written.
    Hash { type_name: String, buckets: i64 },
}

/// A syntax error, with a lowercase PostgreSQL-style message and the byte offset into the
/// statement where it was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DdlError {
    pub message: String,
    /// Byte offset into the statement text (always at a char boundary).
    pub position: usize,
    /// The SQLSTATE: 42601 (syntax) unless the statement is well-formed but invalid.
    pub sqlstate: &'static str,
}

/// SQLSTATE of a well-formed but invalid partition scheme or table definition.
const INVALID_DEFINITION: &str = "42P16";

impl DdlError {
    fn new(message: impl Into<String>, position: usize) -> Self {
        DdlError {
            message: message.into(),
            position,
            sqlstate: "42601",
        }
    }

    /// A well-formed statement that defines something invalid.
    fn invalid(message: impl Into<String>, position: usize, sqlstate: &'static str) -> Self {
        DdlError {
            sqlstate,
            ..DdlError::new(message, position)
        }
    }
}

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
    let mut lexer = Lexer::new(sql);
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

// ---------------------------------------------------------------------------------------
// Lexer
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum TokenKind {
    /// An unquoted identifier or keyword, as written.
    Word(String),
    /// `"..."`, with `""` unescaped.
    QuotedIdent(String),
    /// `'...'`, with `''` unescaped.
    Str(String),
    /// A numeric or temporal literal; its text is read from the source by position.
    Number,
    /// `` `name ``.
    Symbol(String),
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Dot,
    DotDot,
    Semicolon,
    Eq,
    Minus,
    /// Any other character; always a syntax error, reported with what was expected there.
    Other,
    Eof,
}

#[derive(Debug, Clone, PartialEq)]
struct Token {
    kind: TokenKind,
    /// Byte range in the source; both ends are char boundaries.
    start: usize,
    end: usize,
}

impl Token {
    /// Whether this is the (case-insensitive) keyword `keyword`, given in lowercase.
    fn is_keyword(&self, keyword: &str) -> bool {
        matches!(&self.kind, TokenKind::Word(word) if word.eq_ignore_ascii_case(keyword))
    }
}

struct Lexer<'a> {
    sql: &'a str,
    /// Byte offset of the next unread char.
    pos: usize,
}

impl<'a> Lexer<'a> {
    fn new(sql: &'a str) -> Self {
        Lexer { sql, pos: 0 }
    }

    /// The unread input. `pos` only ever advances by whole chars, so the slice is valid.
    fn rest(&self) -> &'a str {
        self.sql.get(self.pos..).unwrap_or("")
    }

    /// Skips whitespace, `-- line` comments and (nested, as in PostgreSQL) `/* */` comments.
    fn skip_trivia(&mut self) -> Result<(), DdlError> {
        loop {
            let rest = self.rest();
            let trimmed = rest.trim_start();
            self.pos += rest.len() - trimmed.len();
            if trimmed.starts_with("--") {
                self.pos += trimmed.find('\n').unwrap_or(trimmed.len());
            } else if trimmed.starts_with("/*") {
                self.skip_block_comment()?;
            } else {
                return Ok(());
            }
        }
    }

    fn skip_block_comment(&mut self) -> Result<(), DdlError> {
        let start = self.pos;
        let mut depth = 0_usize;
        let mut chars = self.rest().char_indices().peekable();
        while let Some((offset, c)) = chars.next() {
            let next = chars.peek().map(|&(_, next)| next);
            if c == '/' && next == Some('*') {
                depth += 1;
                chars.next();
            } else if c == '*' && next == Some('/') {
                // Never below zero: the comment opened with `/*`, so depth >= 1 here.
                depth = depth.saturating_sub(1);
                chars.next();
                if depth == 0 {
                    self.pos = start + offset + 2;
                    return Ok(());
                }
            }
        }
        Err(DdlError::new("unterminated /* comment", start))
    }

    fn next_token(&mut self) -> Result<Token, DdlError> {
        self.skip_trivia()?;
        let start = self.pos;
        let rest = self.rest();
        let Some(c) = rest.chars().next() else {
            return Ok(Token {
                kind: TokenKind::Eof,
                start,
                end: start,
            });
        };
        let punctuation = match c {
            '(' => Some(TokenKind::LParen),
            ')' => Some(TokenKind::RParen),
            '[' => Some(TokenKind::LBracket),
            ']' => Some(TokenKind::RBracket),
            ',' => Some(TokenKind::Comma),
            ';' => Some(TokenKind::Semicolon),
            '=' => Some(TokenKind::Eq),
            '-' => Some(TokenKind::Minus),
            '.' if !rest.starts_with("..") => Some(TokenKind::Dot),
            _ => None,
        };
        let kind = if let Some(kind) = punctuation {
            self.pos += 1;
            kind
        } else if rest.starts_with("..") {
            self.pos += 2;
            TokenKind::DotDot
        } else if c == '\'' {
            TokenKind::Str(self.quoted('\'', "unterminated quoted string")?)
        } else if c == '"' {
            TokenKind::QuotedIdent(self.quoted('"', "unterminated quoted identifier")?)
        } else if c == '`' {
            TokenKind::Symbol(self.symbol()?)
        } else if c.is_ascii_digit() {
            self.pos += literal::numeric_token_len(rest);
            TokenKind::Number
        } else if c.is_alphabetic() || c == '_' {
            let len = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$'))
                .unwrap_or(rest.len());
            self.pos += len;
            TokenKind::Word(rest[..len].to_string())
        } else {
            self.pos += c.len_utf8();
            TokenKind::Other
        };
        Ok(Token {
            kind,
            start,
            end: self.pos,
        })
    }

    /// Reads a `quote`-delimited token at `pos`, where a doubled quote stands for one.
    fn quoted(&mut self, quote: char, unterminated: &str) -> Result<String, DdlError> {
        let start = self.pos;
        let mut value = String::new();
        // Skip the opening quote (one byte: both quote chars are ASCII).
        let mut chars = self.rest().char_indices().skip(1).peekable();
        while let Some((offset, c)) = chars.next() {
            if c != quote {
                value.push(c);
            } else if chars.peek().is_some_and(|&(_, next)| next == quote) {
                value.push(quote);
                chars.next();
            } else {
                self.pos = start + offset + 1;
                return Ok(value);
            }
        }
        Err(DdlError::new(unterminated, start))
    }

    /// Reads `` `name `` at `pos`. Names are letters, digits and `_` (`` `600519 `` is a
    /// valid stock symbol). `` `a`b `` lexes as two symbols; the parser makes the vector.
    fn symbol(&mut self) -> Result<String, DdlError> {
        let start = self.pos;
        let name_part = self.rest().get(1..).unwrap_or("");
        let len = name_part
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(name_part.len());
        if len == 0 {
            return Err(DdlError::new(
                "empty symbol literal: expected a name after `",
                start,
            ));
        }
        self.pos += 1 + len;
        Ok(name_part[..len].to_string())
    }
}

// ---------------------------------------------------------------------------------------
// Parser
// ---------------------------------------------------------------------------------------

/// An element of a partition scheme before flattening: LIST needs to know which values
/// were grouped together, VALUE and RANGE just concatenate.
enum SchemeItem {
    /// A scalar, a juxtaposed vector (`` `A`B ``, `0 5 10`) or an expanded range `a..b`.
    Vector(Vec<Literal>),
    /// A bracketed vector `[...]`.
    Bracketed(Vec<SchemeItem>),
}

impl SchemeItem {
    fn flatten_into(self, out: &mut Vec<Literal>) {
        match self {
            SchemeItem::Vector(values) => out.extend(values),
            SchemeItem::Bracketed(items) => {
                for item in items {
                    item.flatten_into(out);
                }
            }
        }
    }

    fn flatten(self) -> Vec<Literal> {
        let mut out = Vec::new();
        self.flatten_into(&mut out);
        out
    }
}

fn flatten_all(items: Vec<SchemeItem>) -> Vec<Literal> {
    let mut out = Vec::new();
    for item in items {
        item.flatten_into(&mut out);
    }
    out
}

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

struct Parser<'a> {
    sql: &'a str,
    /// Every token except the final `Eof`, which is kept apart so `peek` never runs out.
    tokens: Vec<Token>,
    eof: Token,
    pos: usize,
    /// Elements produced by range vectors so far, against [`MAX_RANGE_ELEMENTS`].
    range_elements: u64,
}

impl<'a> Parser<'a> {
    fn new(sql: &'a str) -> Result<Self, DdlError> {
        let mut lexer = Lexer::new(sql);
        let mut tokens = Vec::new();
        loop {
            let token = lexer.next_token()?;
            if token.kind == TokenKind::Eof {
                return Ok(Parser {
                    sql,
                    tokens,
                    eof: token,
                    pos: 0,
                    range_elements: 0,
                });
            }
            tokens.push(token);
        }
    }

    // ----- token access ---------------------------------------------------------------

    fn peek(&self) -> &Token {
        self.peek_nth(0)
    }

    fn peek_nth(&self, n: usize) -> &Token {
        self.tokens.get(self.pos + n).unwrap_or(&self.eof)
    }

    fn advance(&mut self) -> Token {
        let token = self.peek().clone();
        if self.pos < self.tokens.len() {
            self.pos += 1;
        }
        token
    }

    fn text(&self, token: &Token) -> &'a str {
        self.sql.get(token.start..token.end).unwrap_or("")
    }

    fn is_keyword(&self, keyword: &str) -> bool {
        self.peek().is_keyword(keyword)
    }

    fn eat_keyword(&mut self, keyword: &str) -> bool {
        let found = self.is_keyword(keyword);
        if found {
            self.advance();
        }
        found
    }

    fn expect_keyword(&mut self, keyword: &str, expected: &str) -> Result<(), DdlError> {
        if self.eat_keyword(keyword) {
            Ok(())
        } else {
            Err(self.unexpected(expected))
        }
    }

    fn eat(&mut self, kind: &TokenKind) -> bool {
        let found = &self.peek().kind == kind;
        if found {
            self.advance();
        }
        found
    }

    fn expect(&mut self, kind: &TokenKind, expected: &str) -> Result<(), DdlError> {
        if self.eat(kind) {
            Ok(())
        } else {
            Err(self.unexpected(expected))
        }
    }

    // ----- errors ---------------------------------------------------------------------

    /// `syntax error at or near "x": expected ...`, positioned at `token`.
    fn syntax_error(&self, token: &Token, expected: &str) -> DdlError {
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
    fn unexpected(&self, expected: &str) -> DdlError {
        self.syntax_error(self.peek(), expected)
    }

    // ----- statements -----------------------------------------------------------------

    fn statement(&mut self) -> Result<DdlStatement, DdlError> {
        if self.eat_keyword("create") {
            if self.eat_keyword("database") {
                return self.create_database();
            }
            self.expect_keyword("table", "DATABASE or TABLE after CREATE")?;
            return self.create_table();
        }
        if self.eat_keyword("drop") {
            if self.eat_keyword("database") {
                let if_exists = self.if_exists()?;
                let path = self.database_path()?;
                return Ok(DdlStatement::DropDatabase { path, if_exists });
            }
            self.expect_keyword("table", "DATABASE or TABLE after DROP")?;
            let if_exists = self.if_exists()?;
            let name = self.table_name()?;
            return Ok(DdlStatement::DropTable { name, if_exists });
        }
        if self.eat_keyword("truncate") {
            self.eat_keyword("table");
            let name = self.table_name()?;
            return Ok(DdlStatement::TruncateTable { name });
        }
        self.expect_keyword("alter", "CREATE, DROP, TRUNCATE or ALTER")?;
        self.expect_keyword("table", "TABLE after ALTER")?;
        self.alter_table()
    }

    /// After the statement: any number of `;`, then the end of the input.
    fn end_of_statement(&mut self) -> Result<(), DdlError> {
        while self.eat(&TokenKind::Semicolon) {}
        if self.peek().kind == TokenKind::Eof {
            Ok(())
        } else {
            Err(self.unexpected("end of statement"))
        }
    }

    /// `[IF NOT EXISTS]`. `IF` alone is left for the name (a table may be called `if`).
    fn if_not_exists(&mut self) -> Result<bool, DdlError> {
        if !(self.is_keyword("if") && self.peek_nth(1).is_keyword("not")) {
            return Ok(false);
        }
        self.advance();
        self.advance();
        self.expect_keyword("exists", "EXISTS after IF NOT")?;
        Ok(true)
    }

    /// `[IF EXISTS]`.
    fn if_exists(&mut self) -> Result<bool, DdlError> {
        let found = self.is_keyword("if") && self.peek_nth(1).is_keyword("exists");
        if found {
            self.advance();
            self.advance();
        }
        Ok(found)
    }

    fn create_database(&mut self) -> Result<DdlStatement, DdlError> {
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

    fn create_table(&mut self) -> Result<DdlStatement, DdlError> {
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

    fn alter_table(&mut self) -> Result<DdlStatement, DdlError> {
        let name = self.table_name()?;
        let op = if self.eat_keyword("add") {
            self.eat_keyword("column");
            AlterOp::AddColumn(self.column_def()?)
        } else if self.eat_keyword("drop") {
            self.eat_keyword("column");
            AlterOp::DropColumn(self.identifier("a column name")?)
        } else if self.eat_keyword("rename") {
            if self.is_keyword("to") {
                return Err(DdlError::new(
                    "renaming a table is not supported; only RENAME [COLUMN] a TO b",
                    self.peek().start,
                ));
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

    // ----- names ----------------------------------------------------------------------

    /// A column name (or other identifier): an unquoted word or a `"quoted"` one.
    fn identifier(&mut self, what: &str) -> Result<String, DdlError> {
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
    fn database_path(&mut self) -> Result<String, DdlError> {
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
    fn table_name(&mut self) -> Result<TableName, DdlError> {
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
    fn table_part(&mut self) -> Result<String, DdlError> {
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

    // ----- columns --------------------------------------------------------------------

    /// `name TYPE [NOT NULL | NULL] [[option = value, ...]]`; the last two in either order.
    fn column_def(&mut self) -> Result<ColumnDef, DdlError> {
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
    fn column_type(&mut self, column: &str) -> Result<(String, Vec<i64>), DdlError> {
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
    fn type_args(&mut self) -> Result<Vec<i64>, DdlError> {
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
    fn column_options(&mut self) -> Result<Vec<(String, Literal)>, DdlError> {
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

    // ----- options --------------------------------------------------------------------

    /// `name = value`, appended to `options`; a repeated name (ignoring case) is an error.
    fn option(&mut self, options: &mut Vec<(String, Literal)>) -> Result<(), DdlError> {
        let token = self.peek().clone();
        let TokenKind::Word(name) = token.kind else {
            return Err(self.unexpected("an option such as name = value"));
        };
        self.advance();
        self.expect(&TokenKind::Eq, &format!("\"=\" after option name {name}"))?;
        let value = self.option_value()?;
        if options
            .iter()
            .any(|(existing, _)| existing.eq_ignore_ascii_case(&name))
        {
            return Err(DdlError::new(
                format!("option {name} is specified more than once"),
                token.start,
            ));
        }
        options.push((name, value));
        Ok(())
    }

    /// An option value: any literal, a bare word (→ `Ident`), or a symbol vector
    /// `` `a`b `` (→ `String("a,b")`; a single `` `a `` stays `Symbol("a")`).
    fn option_value(&mut self) -> Result<Literal, DdlError> {
        let mut symbols = Vec::new();
        while let TokenKind::Symbol(name) = &self.peek().kind {
            symbols.push(name.clone());
            self.advance();
        }
        match symbols.len() {
            0 => self.scalar(true),
            1 => Ok(Literal::Symbol(symbols.remove(0))),
            _ => Ok(Literal::String(symbols.join(","))),
        }
    }

    // ----- partition schemes ----------------------------------------------------------

    /// `VALUE(...)`, `RANGE(...)`, `LIST(...)` or `HASH([TYPE, n])`.
    fn partition_level(&mut self) -> Result<PartitionSpec, DdlError> {
        let token = self.advance();
        let TokenKind::Word(word) = &token.kind else {
            return Err(self.syntax_error(&token, "a partition type (VALUE, RANGE, LIST or HASH)"));
        };
        let kind = word.to_ascii_uppercase();
        if !matches!(kind.as_str(), "VALUE" | "RANGE" | "LIST" | "HASH") {
            return Err(DdlError::new(
                format!("unknown partition type {word}: expected VALUE, RANGE, LIST or HASH"),
                token.start,
            ));
        }
        self.expect(&TokenKind::LParen, &format!("\"(\" after {kind}"))?;
        let spec = if kind == "HASH" {
            self.hash_scheme()?
        } else {
            let items = self.scheme_items(0)?;
            let empty = |what: &str| {
                DdlError::invalid(
                    format!("{kind} partition scheme {what}"),
                    token.start,
                    INVALID_DEFINITION,
                )
            };
            match kind.as_str() {
                "VALUE" => {
                    let values = flatten_all(items);
                    if values.is_empty() {
                        return Err(empty("is empty"));
                    }
                    PartitionSpec::Value(values)
                }
                "RANGE" => {
                    let bounds = flatten_all(items);
                    if bounds.len() < 2 {
                        return Err(empty("needs at least 2 boundaries"));
                    }
                    PartitionSpec::Range(bounds)
                }
                _ => {
                    let groups = list_groups(items);
                    if groups.is_empty() {
                        return Err(empty("is empty"));
                    }
                    if groups.iter().any(Vec::is_empty) {
                        return Err(empty("has an empty partition"));
                    }
                    PartitionSpec::List(groups)
                }
            }
        };
        self.expect(&TokenKind::RParen, &format!("\")\" to close {kind}(...)"))?;
        Ok(spec)
    }

    /// `[TYPE, n]` inside `HASH(...)`.
    fn hash_scheme(&mut self) -> Result<PartitionSpec, DdlError> {
        let shape_error = |parser: &Self| {
            DdlError::new(
                "HASH expects [TYPE, buckets], e.g. HASH([SYMBOL, 40])",
                parser.peek().start,
            )
        };
        if !self.eat(&TokenKind::LBracket) {
            return Err(shape_error(self));
        }
        let TokenKind::Word(type_name) = self.peek().kind.clone() else {
            return Err(shape_error(self));
        };
        self.advance();
        if !self.eat(&TokenKind::Comma)
            || !matches!(self.peek().kind, TokenKind::Number | TokenKind::Minus)
        {
            return Err(shape_error(self));
        }
        let start = self.peek().start;
        let buckets = match self.scalar(false)? {
            Literal::Int(buckets) if buckets > 0 => buckets,
            other => {
                return Err(DdlError::invalid(
                    format!("HASH bucket count must be a positive integer, got {other}"),
                    start,
                    INVALID_DEFINITION,
                ))
            }
        };
        if !self.eat(&TokenKind::RBracket) {
            return Err(shape_error(self));
        }
        Ok(PartitionSpec::Hash { type_name, buckets })
    }

    /// Comma-separated scheme items up to (not including) `)` or `]`.
    fn scheme_items(&mut self, depth: usize) -> Result<Vec<SchemeItem>, DdlError> {
        let mut items = Vec::new();
        if matches!(self.peek().kind, TokenKind::RParen | TokenKind::RBracket) {
            return Ok(items);
        }
        loop {
            items.push(self.scheme_item(depth)?);
            if !self.eat(&TokenKind::Comma) {
                return Ok(items);
            }
        }
    }

    /// `[...]`, a range `a..b`, or one or more juxtaposed scalars (`0 5 10`, `` `A`B ``).
    fn scheme_item(&mut self, depth: usize) -> Result<SchemeItem, DdlError> {
        let start = self.peek().start;
        if self.eat(&TokenKind::LBracket) {
            if depth >= MAX_NESTING {
                return Err(DdlError::new("vectors are nested too deeply", start));
            }
            let items = self.scheme_items(depth + 1)?;
            self.expect(&TokenKind::RBracket, "\",\" or \"]\" in the vector")?;
            return Ok(SchemeItem::Bracketed(items));
        }
        let first = self.scalar(false)?;
        if self.eat(&TokenKind::DotDot) {
            let last = self.scalar(false)?;
            return self
                .expand_range(&first, &last, start)
                .map(SchemeItem::Vector);
        }
        let mut values = vec![first];
        while self.starts_scalar() {
            values.push(self.scalar(false)?);
        }
        Ok(SchemeItem::Vector(values))
    }

    /// Expands `first..last`, charging the statement's range budget.
    fn expand_range(
        &mut self,
        first: &Literal,
        last: &Literal,
        position: usize,
    ) -> Result<Vec<Literal>, DdlError> {
        let scheme_error =
            |e: LiteralError| DdlError::new(format!("partition scheme {e}"), position);
        let len = literal::range_len(first, last).map_err(scheme_error)?;
        if len > MAX_RANGE_ELEMENTS {
            return Err(DdlError::new(
                format!(
                    "partition scheme range {first}..{last} has {len} elements; \
                     at most {MAX_RANGE_ELEMENTS} are allowed"
                ),
                position,
            ));
        }
        if self.range_elements + len > MAX_RANGE_ELEMENTS {
            return Err(DdlError::new(
                format!(
                    "partition scheme ranges expand to more than {MAX_RANGE_ELEMENTS} elements"
                ),
                position,
            ));
        }
        self.range_elements += len;
        // MAX_RANGE_ELEMENTS is far below usize::MAX on every supported platform.
        let max_len = usize::try_from(MAX_RANGE_ELEMENTS).unwrap_or(usize::MAX);
        literal::expand_range(first, last, max_len).map_err(scheme_error)
    }

    // ----- literals -------------------------------------------------------------------

    /// Whether the next token starts a scalar, i.e. continues a juxtaposed vector.
    fn starts_scalar(&self) -> bool {
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
    fn scalar(&mut self, allow_ident: bool) -> Result<Literal, DdlError> {
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

/// The error for `INT[]`, `INT[10]` and `INT ARRAY` column types.
fn array_error(position: usize) -> DdlError {
    DdlError::new("array column types are not supported", position)
}

/// Checks that a database path starts with `dfs://` and names a database.
fn check_database_path(path: String, position: usize) -> Result<String, DdlError> {
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

/// The groups of a LIST scheme. With one argument that is a bracketed vector, each of its
/// items is a group (`` LIST([`A`B, `C]) ``, `LIST([[1,2],[3]])`); with one unbracketed
/// argument each value is a group (`` LIST(`A`B) ``); with several arguments each argument
/// is a group (`LIST(['a','b'], ['c'])`).
fn list_groups(mut items: Vec<SchemeItem>) -> Vec<Vec<Literal>> {
    if items.len() == 1 {
        match items.remove(0) {
            SchemeItem::Bracketed(inner) => inner.into_iter().map(SchemeItem::flatten).collect(),
            SchemeItem::Vector(values) => values.into_iter().map(|value| vec![value]).collect(),
        }
    } else {
        items.into_iter().map(SchemeItem::flatten).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::parse::literal::parse_numeric_literal;

    /// Parses a statement that must be ours and valid.
    fn parse(sql: &str) -> DdlStatement {
        match parse_ddl(sql) {
            Ok(Some(statement)) => statement,
            Ok(None) => panic!("not recognised as DDL: {sql}"),
            Err(e) => panic!("{sql}\n  error at {}: {}", e.position, e.message),
        }
    }

    /// Parses a statement that must be ours and invalid.
    fn error(sql: &str) -> DdlError {
        match parse_ddl(sql) {
            Err(e) => e,
            Ok(result) => panic!("{sql} should not parse, got {result:?}"),
        }
    }

    fn message(sql: &str) -> String {
        error(sql).message
    }

    /// A DolphinDB literal, e.g. `lit("2023.01.01")`.
    fn lit(text: &str) -> Literal {
        parse_numeric_literal(text, false).unwrap()
    }

    fn ints(values: &[i64]) -> Vec<Literal> {
        values.iter().copied().map(Literal::Int).collect()
    }

    fn syms(names: &[&str]) -> Vec<Literal> {
        names
            .iter()
            .map(|n| Literal::Symbol(n.to_string()))
            .collect()
    }

    fn strs(values: &[&str]) -> Vec<Literal> {
        values
            .iter()
            .map(|v| Literal::String(v.to_string()))
            .collect()
    }

    /// The partition levels of a `CREATE DATABASE`.
    fn levels(sql: &str) -> Vec<PartitionSpec> {
        match parse(sql) {
            DdlStatement::CreateDatabase { levels, .. } => levels,
            other => panic!("not CREATE DATABASE: {other:?}"),
        }
    }

    /// The single level of `create database "dfs://x" partitioned by {level}`.
    fn level(level_sql: &str) -> PartitionSpec {
        let mut levels = levels(&format!(
            "create database \"dfs://x\" partitioned by {level_sql}"
        ));
        assert_eq!(levels.len(), 1);
        levels.remove(0)
    }

    fn level_error(level_sql: &str) -> String {
        message(&format!(
            "create database \"dfs://x\" partitioned by {level_sql}"
        ))
    }

    fn values(level_sql: &str) -> Vec<Literal> {
        match level(level_sql) {
            PartitionSpec::Value(values) => values,
            other => panic!("not VALUE: {other:?}"),
        }
    }

    fn columns(sql: &str) -> Vec<ColumnDef> {
        match parse(sql) {
            DdlStatement::CreateTable { columns, .. } => columns,
            other => panic!("not CREATE TABLE: {other:?}"),
        }
    }

    /// The only column of `create table t ({column_sql})`.
    fn column(column_sql: &str) -> ColumnDef {
        let mut columns = columns(&format!("create table t ({column_sql})"));
        assert_eq!(columns.len(), 1);
        columns.remove(0)
    }

    fn table_name(name_sql: &str) -> TableName {
        match parse(&format!("drop table {name_sql}")) {
            DdlStatement::DropTable { name, .. } => name,
            other => panic!("not DROP TABLE: {other:?}"),
        }
    }

    fn qualified(db: &str, table: &str) -> TableName {
        TableName {
            db: Some(db.to_string()),
            table: table.to_string(),
        }
    }

    fn bare(table: &str) -> TableName {
        TableName {
            db: None,
            table: table.to_string(),
        }
    }

    fn col(name: &str, type_name: &str) -> ColumnDef {
        ColumnDef {
            name: name.to_string(),
            type_name: type_name.to_string(),
            type_args: vec![],
            not_null: false,
            options: vec![],
        }
    }

    fn opt(name: &str, value: Literal) -> (String, Literal) {
        (name.to_string(), value)
    }

    fn string(value: &str) -> Literal {
        Literal::String(value.to_string())
    }

    /// Every valid statement of the tests below that the no-panic test truncates.
    const VALID: &[&str] = &[
        "create database \"dfs://testDB\" partitioned by VALUE(2023.01.01..2023.01.31)",
        "CREATE DATABASE IF NOT EXISTS 'dfs://m' PARTITIONED BY VALUE(2000.01M..2000.12M), engine='OLAP'",
        "create database \"dfs://r\" partitioned by RANGE(0 5 10), HASH([SYMBOL, 40]), atomic='TRANS'",
        "create database \"dfs://l\" partitioned by LIST([`IBM`ORCL`MSFT, `GOOG`FB]), chunkGranularity=\"TABLE\"",
        "create database \"dfs://l\" partitioned by LIST([[1,2],[3]]), VALUE([2023.01.01, 2023.02.01]), HASH([INT, 2])",
        "create database \"dfs://v\" partitioned by VALUE(`A `B), LIST(['a','b'], ['c']); -- done",
        "/* lead */ create database \"dfs://v\" partitioned by VALUE(DATE '2023-01-01', '2023-01-02', -5, 1.5e3, true, null)",
        "create database \"dfs://t\" partitioned by VALUE(09:30m 10:00m 09:30:00 09:30:00.000 2023.01.08T09:30:00 2023.01.08T09:30:00.123 2023.01.08T09:30:00.123456789)",
        "create table \"dfs://db\".\"pt\" (SecurityID SYMBOL, DateTime DATETIME [comment=\"time\", compress=\"delta\"], Price DOUBLE NOT NULL) partitioned by DateTime, SecurityID, sortColumns=`SecurityID`DateTime, keepDuplicates=ALL",
        "create table if not exists t (a double precision, b timestamp(3) with time zone, c numeric(10,2) not null, d character varying(20) null, \"Quoted \"\" Col\" DECIMAL32(4));",
        "create table loadTable('dfs://db', 't') (名字 STRING [comment='名'], x INT), sortColumns=`x",
        "drop database if exists \"dfs://x\"",
        "drop table 'dfs://db'.'t'",
        "drop table if exists \"dfs://db\".t",
        "truncate table loadTable(\"dfs://db\", \"t\")",
        "truncate T",
        "alter table \"dfs://db\".\"t\" add column c DECIMAL64(2) NOT NULL [comment=\"c\"]",
        "alter table t drop column c",
        "alter table t rename column a to b",
        "alter table t rename a to \"B\"",
    ];

    #[test]
    fn all_sample_statements_parse() {
        for sql in VALID {
            parse(sql);
        }
    }

    // ----- which statements are ours ------------------------------------------------

    #[test]
    fn other_statements_are_not_ours() {
        for sql in [
            "",
            "   ",
            ";",
            "-- just a comment",
            "/* just a comment */",
            "/* unterminated",
            "select 1",
            "SELECT * FROM t",
            "insert into t values (1)",
            "update t set a = 1",
            "delete from t",
            "create view v as select 1",
            "create user bob",
            "create index i on t (a)",
            "create temporary table t (a int)",
            "create schema s",
            "create",
            "drop",
            "alter",
            "drop view v",
            "drop user bob",
            "alter user bob with password 'x'",
            "alter database \"dfs://x\" set x = 1",
            "select 'unterminated",
            "create 'unterminated",
            "\"unterminated",
            "show tables",
            "databases",
            "table t",
        ] {
            assert_eq!(parse_ddl(sql), Ok(None), "{sql}");
        }
    }

    #[test]
    fn leading_keywords_make_statements_ours() {
        for sql in [
            "create database",
            "CREATE TABLE",
            "Drop Database",
            "drop table",
            "truncate",
            "TRUNCATE TABLE",
            "alter table",
            "/* c */ create -- c\n table",
            "create table t as select 1",
        ] {
            assert!(parse_ddl(sql).is_err(), "{sql}");
        }
    }

    // ----- CREATE DATABASE ----------------------------------------------------------

    #[test]
    fn create_database_full() {
        assert_eq!(
            parse(
                "create database if not exists \"dfs://testDB\" partitioned by \
                 VALUE(2023.01.01..2023.12.31), HASH([SYMBOL, 40]), \
                 engine='TSDB', atomic='TRANS', chunkGranularity='TABLE'"
            ),
            DdlStatement::CreateDatabase {
                path: "dfs://testDB".into(),
                if_not_exists: true,
                levels: vec![
                    PartitionSpec::Value(
                        literal::expand_range(&lit("2023.01.01"), &lit("2023.12.31"), 400).unwrap()
                    ),
                    PartitionSpec::Hash {
                        type_name: "SYMBOL".into(),
                        buckets: 40
                    },
                ],
                options: vec![
                    opt("engine", string("TSDB")),
                    opt("atomic", string("TRANS")),
                    opt("chunkGranularity", string("TABLE")),
                ],
            }
        );
    }

    #[test]
    fn create_database_minimal_and_case_insensitive() {
        assert_eq!(
            parse("CREATE DATABASE 'dfs://x' PARTITIONED BY value(1 2)"),
            DdlStatement::CreateDatabase {
                path: "dfs://x".into(),
                if_not_exists: false,
                levels: vec![PartitionSpec::Value(ints(&[1, 2]))],
                options: vec![],
            }
        );
        assert_eq!(
            level("Hash([int, 2])"),
            PartitionSpec::Hash {
                type_name: "int".into(),
                buckets: 2
            }
        );
        assert_eq!(level("rAnGe(0 5)"), PartitionSpec::Range(ints(&[0, 5])));
    }

    #[test]
    fn database_path_quoting() {
        let path = |sql: &str| match parse(sql) {
            DdlStatement::CreateDatabase { path, .. } => path,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            path("create database \"dfs://a\"\"b\" partitioned by VALUE(1)"),
            "dfs://a\"b"
        );
        assert_eq!(
            path("create database 'dfs://it''s' partitioned by VALUE(1)"),
            "dfs://it's"
        );
        assert_eq!(
            path("create database \"dfs://Mixed/Case\" partitioned by VALUE(1)"),
            "dfs://Mixed/Case"
        );
    }

    #[test]
    fn date_range_expands_to_every_day() {
        let days = values("VALUE(2023.01.01..2023.12.31)");
        assert_eq!(days.len(), 365);
        assert_eq!(days[0], lit("2023.01.01"));
        assert_eq!(days[58], lit("2023.02.28"));
        assert_eq!(days[59], lit("2023.03.01"));
        assert_eq!(days[364], lit("2023.12.31"));
        assert_eq!(values("VALUE(2024.01.01..2024.12.31)").len(), 366);
    }

    #[test]
    fn month_and_int_ranges() {
        let months = values("VALUE(2000.01M..2016.12M)");
        assert_eq!(months.len(), 204);
        assert_eq!(months[0], Literal::Month(2000 * 12));
        assert_eq!(months[203], Literal::Month(2016 * 12 + 11));
        assert_eq!(values("VALUE(2023.01M..2023.12M)").len(), 12);
        assert_eq!(
            values("VALUE(1..10)"),
            ints(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
        );
        assert_eq!(values("VALUE(0..4)"), ints(&[0, 1, 2, 3, 4]));
        assert_eq!(values("VALUE(-2..1)"), ints(&[-2, -1, 0, 1]));
        assert_eq!(values("VALUE(3..3)"), ints(&[3]));
        assert_eq!(
            values("VALUE(09:30m..09:32m)"),
            vec![lit("09:30m"), lit("09:31m"), lit("09:32m")]
        );
        assert_eq!(
            level("RANGE(0..4)"),
            PartitionSpec::Range(ints(&[0, 1, 2, 3, 4]))
        );
    }

    #[test]
    fn space_separated_vectors() {
        assert_eq!(
            level("RANGE(0 5 10)"),
            PartitionSpec::Range(ints(&[0, 5, 10]))
        );
        assert_eq!(
            level("RANGE(2023.01.01 2023.06.01 2024.01.01)"),
            PartitionSpec::Range(vec![
                lit("2023.01.01"),
                lit("2023.06.01"),
                lit("2024.01.01")
            ])
        );
        assert_eq!(values("VALUE(0 -5 10)"), ints(&[0, -5, 10]));
        assert_eq!(
            values("VALUE(1.5 2.5)"),
            vec![Literal::Float(1.5), Literal::Float(2.5)]
        );
    }

    #[test]
    fn bracketed_vectors() {
        assert_eq!(values("VALUE([0, 5, 10])"), ints(&[0, 5, 10]));
        assert_eq!(
            values("VALUE([2023.01.01, 2023.02.01])"),
            vec![lit("2023.01.01"), lit("2023.02.01")]
        );
        assert_eq!(values("VALUE(['A', 'B'])"), strs(&["A", "B"]));
        assert_eq!(values("VALUE([\"A\",\"B\"])"), strs(&["A", "B"]));
        assert_eq!(values("VALUE([1..3])"), ints(&[1, 2, 3]));
        assert_eq!(
            level("RANGE([0, 5, 10])"),
            PartitionSpec::Range(ints(&[0, 5, 10]))
        );
    }

    #[test]
    fn symbol_vectors() {
        assert_eq!(values("VALUE(`A`B`C)"), syms(&["A", "B", "C"]));
        assert_eq!(values("VALUE(`A `B)"), syms(&["A", "B"]));
        assert_eq!(values("VALUE(`600519`000001)"), syms(&["600519", "000001"]));
        assert_eq!(values("VALUE(`IBM)"), syms(&["IBM"]));
        assert_eq!(values("VALUE([`A, `B])"), syms(&["A", "B"]));
    }

    #[test]
    fn sql_literals_in_schemes() {
        assert_eq!(values("VALUE('2023-01-01')"), strs(&["2023-01-01"]));
        assert_eq!(values("VALUE(DATE '2023-01-01')"), vec![lit("2023.01.01")]);
        assert_eq!(
            values("VALUE(date '2023-01-01' DATE '2023-01-02')"),
            vec![lit("2023.01.01"), lit("2023.01.02")]
        );
        assert_eq!(
            values("VALUE(TIME '09:30:00')"),
            vec![Literal::Time(34_200_000)]
        );
        assert_eq!(
            values("VALUE(TIMESTAMP '2023-01-08 09:30:00.123')"),
            vec![lit("2023.01.08T09:30:00.123")]
        );
        assert_eq!(values("VALUE(1, 2, 3)"), ints(&[1, 2, 3]));
        assert_eq!(values("VALUE('a','b')"), strs(&["a", "b"]));
        assert_eq!(values("VALUE(-5)"), ints(&[-5]));
        assert_eq!(values("VALUE(- 5)"), ints(&[-5]));
        assert_eq!(values("VALUE(-1.5)"), vec![Literal::Float(-1.5)]);
        assert_eq!(
            values("VALUE(true, FALSE, NULL)"),
            vec![Literal::Bool(true), Literal::Bool(false), Literal::Null]
        );
        assert_eq!(values("VALUE('it''s')"), strs(&["it's"]));
        assert_eq!(values("VALUE('')"), strs(&[""]));
        assert_eq!(values("VALUE(1..2, 5)"), ints(&[1, 2, 5]));
    }

    #[test]
    fn temporal_literals_in_schemes() {
        assert_eq!(
            values("VALUE(09:30m 09:30:00 09:30:00.000 2023.01M)"),
            vec![
                Literal::Minute(570),
                Literal::Second(34_200),
                Literal::Time(34_200_000),
                Literal::Month(2023 * 12),
            ]
        );
        let datetime = 19_365 * 86_400 + 34_200;
        assert_eq!(
            values("VALUE(2023.01.08T09:30:00, 2023.01.08T09:30:00.123, 2023.01.08T09:30:00.123456789)"),
            vec![
                Literal::DateTime(datetime),
                Literal::Timestamp(datetime * 1_000 + 123),
                Literal::NanoTimestamp(datetime * 1_000_000_000 + 123_456_789),
            ]
        );
    }

    #[test]
    fn list_schemes() {
        let list = |sql: &str| match level(sql) {
            PartitionSpec::List(groups) => groups,
            other => panic!("not LIST: {other:?}"),
        };
        assert_eq!(
            list("LIST([`IBM`ORCL`MSFT, `GOOG`FB])"),
            vec![syms(&["IBM", "ORCL", "MSFT"]), syms(&["GOOG", "FB"])]
        );
        assert_eq!(list("LIST([[1,2],[3]])"), vec![ints(&[1, 2]), ints(&[3])]);
        assert_eq!(
            list("LIST(['a','b'], ['c'])"),
            vec![strs(&["a", "b"]), strs(&["c"])]
        );
        assert_eq!(
            list("list(`A`B, `C)"),
            vec![syms(&["A", "B"]), syms(&["C"])]
        );
        assert_eq!(list("LIST(`A`B)"), vec![syms(&["A"]), syms(&["B"])]);
        assert_eq!(list("LIST([1, 2])"), vec![ints(&[1]), ints(&[2])]);
        assert_eq!(list("LIST('a', 'b')"), vec![strs(&["a"]), strs(&["b"])]);
        assert_eq!(
            list("LIST([[1, [2]], [3]])"),
            vec![ints(&[1, 2]), ints(&[3])]
        );
    }

    #[test]
    fn hash_schemes() {
        assert_eq!(
            level("HASH([SYMBOL, 40])"),
            PartitionSpec::Hash {
                type_name: "SYMBOL".into(),
                buckets: 40
            }
        );
        assert_eq!(
            level("HASH([INT, 2])"),
            PartitionSpec::Hash {
                type_name: "INT".into(),
                buckets: 2
            }
        );
        assert_eq!(
            level("hash( [ Int , 1 ] )"),
            PartitionSpec::Hash {
                type_name: "Int".into(),
                buckets: 1
            }
        );
    }

    #[test]
    fn up_to_three_levels() {
        assert_eq!(
            levels(
                "create database \"dfs://x\" partitioned by VALUE(1), RANGE(0 5), HASH([INT, 2])"
            ),
            vec![
                PartitionSpec::Value(ints(&[1])),
                PartitionSpec::Range(ints(&[0, 5])),
                PartitionSpec::Hash {
                    type_name: "INT".into(),
                    buckets: 2
                },
            ]
        );
        let sql =
            "create database \"dfs://x\" partitioned by VALUE(1), VALUE(2), VALUE(3), VALUE(4)";
        let e = error(sql);
        assert_eq!(e.message, "a database has at most 3 partition levels");
        assert_eq!(&sql[e.position..], "VALUE(4)");
    }

    #[test]
    fn database_options() {
        let options = |sql: &str| match parse(&format!(
            "create database \"dfs://x\" partitioned by VALUE(1){sql}"
        )) {
            DdlStatement::CreateDatabase { options, .. } => options,
            other => panic!("{other:?}"),
        };
        assert_eq!(options(""), vec![]);
        assert_eq!(
            options(", engine='OLAP'"),
            vec![opt("engine", string("OLAP"))]
        );
        assert_eq!(
            options(", engine=\"OLAP\""),
            vec![opt("engine", string("OLAP"))]
        );
        assert_eq!(
            options(", Engine = TSDB"),
            vec![opt("Engine", Literal::Ident("TSDB".into()))]
        );
        assert_eq!(
            options(", n=-3, f=1.5, b=true"),
            vec![
                opt("n", Literal::Int(-3)),
                opt("f", Literal::Float(1.5)),
                opt("b", Literal::Bool(true)),
            ]
        );
        // A name that is also a partition type is still an option when followed by `=`.
        assert_eq!(options(", value=1"), vec![opt("value", Literal::Int(1))]);
    }

    #[test]
    fn comments_semicolons_and_whitespace() {
        let expected = levels("create database \"dfs://x\" partitioned by VALUE(1 2)");
        for sql in [
            "  create database \"dfs://x\" partitioned by VALUE(1 2) ;  ",
            "create database \"dfs://x\" partitioned by VALUE(1 2);;",
            "-- leading\ncreate /* inline */ database \"dfs://x\"\npartitioned\tby VALUE(1 /* one */ 2) -- trailing",
            "/* outer /* nested */ still comment */ create database \"dfs://x\" partitioned by VALUE(1 2)",
            "create database \"dfs://x\" partitioned by VALUE(1 2) -- comment without newline",
        ] {
            assert_eq!(levels(sql), expected, "{sql}");
        }
    }

    #[test]
    fn create_database_errors() {
        let e = error("create database \"x\" partitioned by VALUE(1)");
        assert_eq!(e.message, "database path must start with dfs://, got \"x\"");
        assert_eq!(e.position, 16);
        assert_eq!(
            message("create database 'DFS://x' partitioned by VALUE(1)"),
            "database path must start with dfs://, got \"DFS://x\""
        );
        assert_eq!(
            message("create database \"dfs://\" partitioned by VALUE(1)"),
            "database path dfs:// has no database name"
        );
        assert_eq!(
            message("create database testdb"),
            "syntax error at or near \"testdb\": expected a quoted database path such as \"dfs://db\""
        );
        assert_eq!(
            message("create database \"dfs://x\""),
            "syntax error at end of input: expected PARTITIONED BY after the database path"
        );
        assert_eq!(
            message("create database \"dfs://x\" partitioned VALUE(1)"),
            "syntax error at or near \"VALUE\": expected BY after PARTITIONED"
        );
        assert_eq!(
            message("create database if not \"dfs://x\" partitioned by VALUE(1)"),
            "syntax error at or near \"\"dfs://x\"\": expected EXISTS after IF NOT"
        );
        assert_eq!(
            message("create database \"dfs://x\" partitioned by VALUE(1), engine 'OLAP'"),
            "syntax error at or near \"'OLAP'\": expected \"=\" after option name engine"
        );
        assert_eq!(
            message(
                "create database \"dfs://x\" partitioned by VALUE(1), engine='OLAP', ENGINE='TSDB'"
            ),
            "option ENGINE is specified more than once"
        );
        assert_eq!(
            message("create database \"dfs://x\" partitioned by VALUE(1), engine='OLAP', HASH([INT, 2])"),
            "syntax error at or near \"(\": expected \"=\" after option name HASH"
        );
        assert_eq!(
            message("create database \"dfs://x\" partitioned by VALUE(1), 'OLAP'"),
            "syntax error at or near \"'OLAP'\": expected an option such as name = value"
        );
        assert_eq!(
            message("create database \"dfs://x\" partitioned by VALUE(1), engine="),
            "syntax error at end of input: expected a literal"
        );
        assert_eq!(
            message("create database \"dfs://x\" partitioned by VALUE(1) engine='OLAP'"),
            "syntax error at or near \"engine\": expected end of statement"
        );
        assert_eq!(
            message("create database \"dfs://x\" partitioned by VALUE(1); drop table t"),
            "syntax error at or near \"drop\": expected end of statement"
        );
    }

    #[test]
    fn partition_level_errors() {
        assert_eq!(
            level_error("VALUE 1"),
            "syntax error at or near \"1\": expected \"(\" after VALUE"
        );
        assert_eq!(
            level_error("value"),
            "syntax error at end of input: expected \"(\" after VALUE"
        );
        assert_eq!(
            level_error("COMPO(1)"),
            "unknown partition type COMPO: expected VALUE, RANGE, LIST or HASH"
        );
        assert_eq!(
            level_error("(1)"),
            "syntax error at or near \"(\": expected a partition type (VALUE, RANGE, LIST or HASH)"
        );
        assert_eq!(
            level_error(""),
            "syntax error at end of input: expected a partition type (VALUE, RANGE, LIST or HASH)"
        );
        assert_eq!(level_error("VALUE()"), "VALUE partition scheme is empty");
        assert_eq!(level_error("VALUE([])"), "VALUE partition scheme is empty");
        assert_eq!(
            level_error("RANGE(1)"),
            "RANGE partition scheme needs at least 2 boundaries"
        );
        assert_eq!(level_error("LIST()"), "LIST partition scheme is empty");
        assert_eq!(level_error("LIST([])"), "LIST partition scheme is empty");
        assert_eq!(
            level_error("LIST([[1], []])"),
            "LIST partition scheme has an empty partition"
        );
        assert_eq!(
            level_error("VALUE(1"),
            "syntax error at end of input: expected \")\" to close VALUE(...)"
        );
        assert_eq!(
            level_error("VALUE(1 2"),
            "syntax error at end of input: expected \")\" to close VALUE(...)"
        );
        assert_eq!(
            level_error("VALUE(1,)"),
            "syntax error at or near \")\": expected a literal"
        );
        assert_eq!(
            level_error("VALUE(abc)"),
            "syntax error at or near \"abc\": expected a literal"
        );
        assert_eq!(
            level_error("VALUE(@)"),
            "syntax error at or near \"@\": expected a literal"
        );
        assert_eq!(
            level_error("VALUE([1, 2)"),
            "syntax error at or near \")\": expected \",\" or \"]\" in the vector"
        );
        assert_eq!(
            level_error("VALUE(1..)"),
            "syntax error at or near \")\": expected a literal"
        );
        assert_eq!(
            level_error("VALUE(1..3 5)"),
            "syntax error at or near \"5\": expected \")\" to close VALUE(...)"
        );
        assert_eq!(
            level_error("VALUE(- x)"),
            "syntax error at or near \"x\": expected a number after \"-\""
        );
        assert_eq!(
            level_error("VALUE(`)"),
            "empty symbol literal: expected a name after `"
        );
        assert_eq!(
            level_error("VALUE(-2023.01.01)"),
            "a minus sign cannot precede 2023.01.01"
        );
    }

    #[test]
    fn literal_errors_carry_positions() {
        let sql = "create database \"dfs://x\" partitioned by VALUE(2023.01.01 2023.02.30)";
        let e = error(sql);
        assert_eq!(e.message, "invalid date literal 2023.02.30");
        assert_eq!(&sql[e.position..], "2023.02.30)");
        assert_eq!(
            level_error("VALUE(2023.13M)"),
            "invalid month literal 2023.13M"
        );
        assert_eq!(
            level_error("VALUE(25:00:00)"),
            "invalid time literal 25:00:00"
        );
        assert_eq!(level_error("VALUE(12abc)"), "invalid numeric literal 12abc");
        assert_eq!(
            level_error("VALUE(99999999999999999999)"),
            "integer literal 99999999999999999999 is out of range"
        );
        let sql = "create database \"dfs://x\" partitioned by VALUE(DATE '2023-02-30')";
        let e = error(sql);
        assert_eq!(
            e.message,
            "invalid input syntax for type date: \"2023-02-30\""
        );
        assert_eq!(&sql[e.position..], "'2023-02-30')");
        assert_eq!(
            level_error("VALUE(TIME 'noon')"),
            "invalid input syntax for type time: \"noon\""
        );
        assert_eq!(
            level_error("VALUE(TIMESTAMP 'x')"),
            "invalid input syntax for type timestamp: \"x\""
        );
    }

    #[test]
    fn range_errors() {
        let sql = "create database \"dfs://x\" partitioned by VALUE(1..0)";
        let e = error(sql);
        assert_eq!(e.message, "partition scheme range 1..0 is empty");
        assert_eq!(&sql[e.position..], "1..0)");
        assert_eq!(
            level_error("VALUE(2023.12.31..2023.01.01)"),
            "partition scheme range 2023.12.31..2023.01.01 is empty"
        );
        assert_eq!(
            level_error("VALUE(1..2023.01.01)"),
            "partition scheme range 1..2023.01.01 has endpoints of different types"
        );
        assert_eq!(
            level_error("VALUE(1.0..2.0)"),
            "partition scheme range 1.0..2.0 needs integer or temporal endpoints"
        );
        assert_eq!(
            level_error("VALUE('a'..'c')"),
            "partition scheme range 'a'..'c' needs integer or temporal endpoints"
        );
        assert_eq!(
            level_error("VALUE(1..1000001)"),
            "partition scheme range 1..1000001 has 1000001 elements; at most 1000000 are allowed"
        );
        assert_eq!(
            level_error("VALUE(0..9223372036854775807)"),
            "partition scheme range 0..9223372036854775807 has 9223372036854775808 elements; at most 1000000 are allowed"
        );
        assert_eq!(
            level_error("VALUE(1..600000, 1..600000)"),
            "partition scheme ranges expand to more than 1000000 elements"
        );
        // The budget is per statement, not per level.
        assert_eq!(
            message(
                "create database \"dfs://x\" partitioned by VALUE(1..600000), RANGE(1..600000)"
            ),
            "partition scheme ranges expand to more than 1000000 elements"
        );
    }

    #[test]
    fn largest_range_is_accepted() {
        assert_eq!(values("VALUE(1..1000000)").len(), 1_000_000);
    }

    #[test]
    fn hash_errors() {
        let shape = "HASH expects [TYPE, buckets], e.g. HASH([SYMBOL, 40])";
        for scheme in [
            "HASH()",
            "HASH(SYMBOL, 40)",
            "HASH([SYMBOL])",
            "HASH([40, SYMBOL])",
            "HASH([SYMBOL, 40, 2])",
            "HASH([SYMBOL, `a])",
            "HASH([SYMBOL 40])",
            "HASH([SYMBOL, 40)",
        ] {
            assert_eq!(level_error(scheme), shape, "{scheme}");
        }
        assert_eq!(
            level_error("HASH([INT, 0])"),
            "HASH bucket count must be a positive integer, got 0"
        );
        assert_eq!(
            level_error("HASH([INT, -3])"),
            "HASH bucket count must be a positive integer, got -3"
        );
        assert_eq!(
            level_error("HASH([INT, 2.5])"),
            "HASH bucket count must be a positive integer, got 2.5"
        );
        assert_eq!(
            level_error("HASH([INT, 2]"),
            "syntax error at end of input: expected \")\" to close HASH(...)"
        );
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = format!("VALUE({}1{})", "[".repeat(200), "]".repeat(200));
        assert_eq!(level_error(&deep), "vectors are nested too deeply");
        let ok = format!(
            "VALUE({}1{})",
            "[".repeat(MAX_NESTING),
            "]".repeat(MAX_NESTING)
        );
        assert_eq!(values(&ok), ints(&[1]));
    }

    #[test]
    fn lexer_errors() {
        let e = error("create database \"dfs://x partitioned by VALUE(1)");
        assert_eq!(e.message, "unterminated quoted identifier");
        assert_eq!(e.position, 16);
        assert_eq!(
            message("create database 'dfs://x"),
            "unterminated quoted string"
        );
        let e = error("create database \"dfs://x\" /* partitioned by VALUE(1)");
        assert_eq!(e.message, "unterminated /* comment");
        assert_eq!(e.position, 26);
        assert_eq!(
            message("create database \"dfs://x\" /* /* */ partitioned by VALUE(1)"),
            "unterminated /* comment"
        );
    }

    // ----- CREATE TABLE -------------------------------------------------------------

    #[test]
    fn create_table_dolphindb_style() {
        assert_eq!(
            parse(
                "create table \"dfs://db\".\"pt\" (\n\
                     SecurityID SYMBOL,\n\
                     DateTime DATETIME [comment=\"time\", compress=\"delta\"],\n\
                     Price DOUBLE NOT NULL,\n\
                     Qty INT\n\
                 ) partitioned by DateTime, SecurityID, sortColumns=`SecurityID`DateTime, keepDuplicates=ALL"
            ),
            DdlStatement::CreateTable {
                name: qualified("dfs://db", "pt"),
                if_not_exists: false,
                columns: vec![
                    col("SecurityID", "SYMBOL"),
                    ColumnDef {
                        options: vec![opt("comment", string("time")), opt("compress", string("delta"))],
                        ..col("DateTime", "DATETIME")
                    },
                    ColumnDef { not_null: true, ..col("Price", "DOUBLE") },
                    col("Qty", "INT"),
                ],
                partitioned_by: vec!["DateTime".into(), "SecurityID".into()],
                options: vec![
                    opt("sortColumns", string("SecurityID,DateTime")),
                    opt("keepDuplicates", Literal::Ident("ALL".into())),
                ],
            }
        );
    }

    #[test]
    fn create_table_postgres_style() {
        assert_eq!(
            parse("CREATE TABLE IF NOT EXISTS t (id int NOT NULL, name varchar(20))"),
            DdlStatement::CreateTable {
                name: bare("t"),
                if_not_exists: true,
                columns: vec![
                    ColumnDef {
                        not_null: true,
                        ..col("id", "int")
                    },
                    ColumnDef {
                        type_args: vec![20],
                        ..col("name", "varchar")
                    },
                ],
                partitioned_by: vec![],
                options: vec![],
            }
        );
    }

    #[test]
    fn column_types() {
        let typed = |sql: &str| {
            let c = column(sql);
            (c.type_name, c.type_args)
        };
        assert_eq!(typed("a SYMBOL"), ("SYMBOL".into(), vec![]));
        assert_eq!(
            typed("a double precision"),
            ("double precision".into(), vec![])
        );
        assert_eq!(
            typed("a timestamp  without\ttime zone"),
            ("timestamp without time zone".into(), vec![])
        );
        assert_eq!(
            typed("a character varying(20)"),
            ("character varying".into(), vec![20])
        );
        assert_eq!(typed("a numeric(10,2)"), ("numeric".into(), vec![10, 2]));
        assert_eq!(
            typed("a numeric ( 10 , -2 )"),
            ("numeric".into(), vec![10, -2])
        );
        assert_eq!(typed("a DECIMAL32(4)"), ("DECIMAL32".into(), vec![4]));
        assert_eq!(typed("a DECIMAL64"), ("DECIMAL64".into(), vec![]));
        assert_eq!(
            typed("a timestamp(3) with time zone"),
            ("timestamp with time zone".into(), vec![3])
        );
        assert_eq!(typed("a timestamp"), ("timestamp".into(), vec![]));
        // Column names that are also type or temporal keywords.
        assert_eq!(column("date DATE").name, "date");
        assert_eq!(column("time TIME").name, "time");
    }

    #[test]
    fn column_nullability_and_options() {
        assert!(column("a int not null").not_null);
        assert!(column("a int NOT NULL").not_null);
        assert!(!column("a int null").not_null);
        assert!(!column("a int").not_null);
        let c = column("a INT [compress=\"delta\"] NOT NULL");
        assert!(c.not_null);
        assert_eq!(c.options, vec![opt("compress", string("delta"))]);
        let c = column("a INT NOT NULL [comment='it''s', compress=`delta, level=3]");
        assert!(c.not_null);
        assert_eq!(
            c.options,
            vec![
                opt("comment", string("it's")),
                opt("compress", Literal::Symbol("delta".into())),
                opt("level", Literal::Int(3)),
            ]
        );
    }

    #[test]
    fn identifiers_keep_their_case() {
        let cols = columns("create table MyTable (SecurityID SYMBOL, \"Quoted Name\" INT, \"a\"\"b\" INT, lower int)");
        let names: Vec<_> = cols.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["SecurityID", "Quoted Name", "a\"b", "lower"]);
        assert_eq!(table_name("MyTable"), bare("MyTable"));
        assert_eq!(table_name("\"T\""), bare("T"));
        assert_eq!(table_name("t"), bare("t"));
    }

    #[test]
    fn unicode_identifiers() {
        let cols = columns("create table 表 (名字 STRING, \"列 一\" INT, _x$1 INT)");
        let names: Vec<_> = cols.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["名字", "列 一", "_x$1"]);
        let e = error("create table 表 (名字 INT[])");
        assert_eq!(e.message, "array column types are not supported");
        assert_eq!(&"create table 表 (名字 INT[])"[e.position..], "[])");
    }

    #[test]
    fn table_options() {
        let options = |tail: &str| match parse(&format!("create table t (a INT, b INT){tail}")) {
            DdlStatement::CreateTable {
                options,
                partitioned_by,
                ..
            } => (partitioned_by, options),
            other => panic!("{other:?}"),
        };
        assert_eq!(options(""), (vec![], vec![]));
        assert_eq!(
            options(", sortColumns=`a"),
            (
                vec![],
                vec![opt("sortColumns", Literal::Symbol("a".into()))]
            )
        );
        assert_eq!(
            options(", sortColumns=`a`b"),
            (vec![], vec![opt("sortColumns", string("a,b"))])
        );
        assert_eq!(
            options(", sortColumns=`a `b"),
            (vec![], vec![opt("sortColumns", string("a,b"))])
        );
        assert_eq!(
            options(", sortColumns='a,b'"),
            (vec![], vec![opt("sortColumns", string("a,b"))])
        );
        assert_eq!(
            options(" partitioned by a, sortColumns=`b, keepDuplicates=ALL"),
            (
                vec!["a".to_string()],
                vec![
                    opt("sortColumns", Literal::Symbol("b".into())),
                    opt("keepDuplicates", Literal::Ident("ALL".into()))
                ]
            )
        );
        assert_eq!(
            options(" PARTITIONED BY a, \"b\""),
            (vec!["a".to_string(), "b".to_string()], vec![])
        );
        // Partitioning columns are not checked against the column list here.
        assert_eq!(
            options(" partitioned by zzz"),
            (vec!["zzz".to_string()], vec![])
        );
        assert_eq!(
            options(" partitioned by a, b, a"),
            (
                vec!["a".to_string(), "b".to_string(), "a".to_string()],
                vec![]
            )
        );
    }

    #[test]
    fn create_table_names() {
        let name = |sql: &str| match parse(&format!("create table {sql} (a INT)")) {
            DdlStatement::CreateTable { name, .. } => name,
            other => panic!("{other:?}"),
        };
        assert_eq!(name("\"dfs://db\".\"t\""), qualified("dfs://db", "t"));
        assert_eq!(name("'dfs://db'.'t'"), qualified("dfs://db", "t"));
        assert_eq!(name("\"dfs://db\".t"), qualified("dfs://db", "t"));
        assert_eq!(
            name("loadTable('dfs://db', 't')"),
            qualified("dfs://db", "t")
        );
        assert_eq!(
            name("loadtable(\"dfs://db\", \"T\")"),
            qualified("dfs://db", "T")
        );
        assert_eq!(name("t"), bare("t"));
        assert_eq!(name("\"T\""), bare("T"));
        assert_eq!(name("if"), bare("if"));
    }

    #[test]
    fn create_table_errors() {
        let e = error("create table t ()");
        assert_eq!(e.message, "a table needs at least one column");
        assert_eq!(e.position, 16);
        let e = error("create table t (a int, b int, A double)");
        assert_eq!(e.message, "column \"A\" specified more than once");
        assert_eq!(e.position, 30);
        assert_eq!(
            message("create table t (\"x\" int, \"X\" int)"),
            "column \"X\" specified more than once"
        );
        assert_eq!(
            message("create table t (a int"),
            "syntax error at end of input: expected \",\" or \")\" after a column definition"
        );
        assert_eq!(
            message("create table t (a int,)"),
            "syntax error at or near \")\": expected a column name"
        );
        assert_eq!(
            message("create table t (a)"),
            "syntax error at or near \")\": expected a type for column \"a\""
        );
        assert_eq!(
            message("create table t (a, b int)"),
            "syntax error at or near \",\": expected a type for column \"a\""
        );
        assert_eq!(
            message("create table t a int"),
            "syntax error at or near \"a\": expected \"(\" to start the column list"
        );
        assert_eq!(
            message("create table t as select 1"),
            "syntax error at or near \"as\": expected \"(\" to start the column list"
        );
        assert_eq!(
            message("create table t (a int) partitioned a"),
            "syntax error at or near \"a\": expected BY after PARTITIONED"
        );
        assert_eq!(
            message("create table t (a int) partitioned by"),
            "syntax error at end of input: expected a partitioning column"
        );
        assert_eq!(
            message("create table t (a int) partitioned by a,"),
            "syntax error at end of input: expected a partitioning column"
        );
        assert_eq!(
            message("create table t (a int) partitioned by a, b, c, d"),
            "a table has at most 3 partitioning columns"
        );
        assert_eq!(
            message("create table t (a int) sortColumns=`a"),
            "syntax error at or near \"sortColumns\": expected end of statement"
        );
        assert_eq!(
            message("create table t (a int), 5"),
            "syntax error at or near \"5\": expected an option such as name = value"
        );
        assert_eq!(
            message("create table t (a int), x=1, X=2"),
            "option X is specified more than once"
        );
        assert_eq!(
            message("create table t (a int), x=`"),
            "empty symbol literal: expected a name after `"
        );
    }

    #[test]
    fn column_errors() {
        assert_eq!(
            message("create table t (a INT[])"),
            "array column types are not supported"
        );
        assert_eq!(
            message("create table t (a INT[10])"),
            "array column types are not supported"
        );
        assert_eq!(
            message("create table t (a int array)"),
            "array column types are not supported"
        );
        assert_eq!(
            message("create table t (a numeric(10,2)[])"),
            "array column types are not supported"
        );
        assert_eq!(
            message("create table t (a int default 5)"),
            "column constraint default is not supported"
        );
        assert_eq!(
            message("create table t (a int primary key)"),
            "column constraint primary is not supported"
        );
        assert_eq!(
            message("create table t (a int REFERENCES u)"),
            "column constraint REFERENCES is not supported"
        );
        assert_eq!(
            message("create table t (a int, primary key (a))"),
            "table constraints such as primary are not supported"
        );
        assert_eq!(
            message("create table t (a int, CONSTRAINT c CHECK (a > 0))"),
            "table constraints such as CONSTRAINT are not supported"
        );
        assert_eq!(
            message("create table t (a int not)"),
            "syntax error at or near \")\": expected NULL after NOT"
        );
        assert_eq!(
            message("create table t (a int not null null)"),
            "conflicting or redundant NULL / NOT NULL declarations for column \"a\""
        );
        assert_eq!(
            message("create table t (a int [x=1] [y=2])"),
            "column \"a\" has more than one option list"
        );
        assert_eq!(
            message("create table t (a varchar(x))"),
            "syntax error at or near \"x\": expected an integer type modifier"
        );
        assert_eq!(
            message("create table t (a varchar())"),
            "syntax error at or near \")\": expected an integer type modifier"
        );
        assert_eq!(
            message("create table t (a numeric(1.5))"),
            "type modifiers must be integers, got 1.5"
        );
        assert_eq!(
            message("create table t (a numeric(1 2))"),
            "syntax error at or near \"2\": expected \",\" or \")\" in the type modifiers"
        );
        assert_eq!(
            message("create table t (a int [compress])"),
            "syntax error at or near \"]\": expected \"=\" after option name compress"
        );
        assert_eq!(
            message("create table t (a int [])"),
            "array column types are not supported"
        );
        assert_eq!(
            message("create table t (a int [,])"),
            "syntax error at or near \",\": expected an option such as name = value"
        );
        assert_eq!(
            message("create table t (a int [x=1 y=2])"),
            "syntax error at or near \"y\": expected \",\" or \"]\" in the column options"
        );
        assert_eq!(
            message("create table t (a int [x=1, X=2])"),
            "option X is specified more than once"
        );
        assert_eq!(
            message("create table t (\"\" int)"),
            "zero-length delimited identifier"
        );
        assert_eq!(
            message("create table t (a int, 5 int)"),
            "syntax error at or near \"5\": expected a column name"
        );
    }

    #[test]
    fn table_name_errors() {
        let e = error("create table 'dfs://db' (a int)");
        assert_eq!(e.message, "syntax error at or near \"(\": expected \".\" and a table name after the database path");
        assert_eq!(
            message("create table \"dfs://db\""),
            "syntax error at end of input: expected \".\" and a table name after the database path"
        );
        assert_eq!(
            message("create table 't' (a int)"),
            "syntax error at or near \"'t'\": expected a table name"
        );
        assert_eq!(
            message("create table db.t (a int)"),
            "syntax error at or near \"db\": expected a quoted database path such as \"dfs://db\" before \".\""
        );
        assert_eq!(
            message("create table \"x\".t (a int)"),
            "database path must start with dfs://, got \"x\""
        );
        assert_eq!(
            message("create table \"\" (a int)"),
            "zero-length delimited identifier"
        );
        assert_eq!(
            message("create table \"dfs://db\".\"\" (a int)"),
            "zero-length delimited identifier"
        );
        assert_eq!(
            message("create table \"dfs://db\". (a int)"),
            "syntax error at or near \"(\": expected a table name"
        );
        assert_eq!(
            message("create table (a int)"),
            "syntax error at or near \"(\": expected a table name"
        );
        assert_eq!(
            message("create table loadTable('dfs://db' 't') (a int)"),
            "syntax error at or near \"'t'\": expected \",\" after the database path in loadTable"
        );
        assert_eq!(
            message("create table loadTable('dfs://db', 't' (a int)"),
            "syntax error at or near \"(\": expected \")\" to close loadTable"
        );
        assert_eq!(
            message("create table loadTable('db', 't') (a int)"),
            "database path must start with dfs://, got \"db\""
        );
        assert_eq!(
            message("create table loadTable(x, 't') (a int)"),
            "syntax error at or near \"x\": expected a quoted database path such as \"dfs://db\""
        );
    }

    // ----- DROP / TRUNCATE / ALTER --------------------------------------------------

    #[test]
    fn drop_database() {
        assert_eq!(
            parse("drop database \"dfs://x\""),
            DdlStatement::DropDatabase {
                path: "dfs://x".into(),
                if_exists: false
            }
        );
        assert_eq!(
            parse("DROP DATABASE IF EXISTS 'dfs://x';"),
            DdlStatement::DropDatabase {
                path: "dfs://x".into(),
                if_exists: true
            }
        );
        assert_eq!(
            message("drop database"),
            "syntax error at end of input: expected a quoted database path such as \"dfs://db\""
        );
        assert_eq!(
            message("drop database \"x\""),
            "database path must start with dfs://, got \"x\""
        );
        assert_eq!(
            message("drop database \"dfs://x\" cascade"),
            "syntax error at or near \"cascade\": expected end of statement"
        );
        assert_eq!(
            message("drop database if \"dfs://x\""),
            "syntax error at or near \"if\": expected a quoted database path such as \"dfs://db\""
        );
    }

    #[test]
    fn drop_table() {
        assert_eq!(
            parse("drop table t"),
            DdlStatement::DropTable {
                name: bare("t"),
                if_exists: false
            }
        );
        assert_eq!(
            parse("DROP TABLE IF EXISTS \"dfs://db\".\"t\""),
            DdlStatement::DropTable {
                name: qualified("dfs://db", "t"),
                if_exists: true
            }
        );
        assert_eq!(table_name("'dfs://db'.'t'"), qualified("dfs://db", "t"));
        assert_eq!(table_name("\"dfs://db\".t"), qualified("dfs://db", "t"));
        assert_eq!(
            table_name("loadTable('dfs://db', 't')"),
            qualified("dfs://db", "t")
        );
        assert_eq!(
            table_name("LOADTABLE(\"dfs://db\", \"t\")"),
            qualified("dfs://db", "t")
        );
        assert_eq!(table_name("loadTable"), bare("loadTable"));
        assert_eq!(table_name("if"), bare("if"));
        assert_eq!(
            parse("drop table if exists if"),
            DdlStatement::DropTable {
                name: bare("if"),
                if_exists: true
            }
        );
        assert_eq!(
            message("drop table"),
            "syntax error at end of input: expected a table name"
        );
        assert_eq!(
            message("drop table a, b"),
            "syntax error at or near \",\": expected end of statement"
        );
    }

    #[test]
    fn truncate_table() {
        for (sql, name) in [
            ("truncate t", bare("t")),
            ("TRUNCATE TABLE t;", bare("t")),
            (
                "truncate table \"dfs://db\".\"t\"",
                qualified("dfs://db", "t"),
            ),
            (
                "truncate loadTable('dfs://db', 't')",
                qualified("dfs://db", "t"),
            ),
            (
                "truncate table loadTable(\"dfs://db\", \"t\")",
                qualified("dfs://db", "t"),
            ),
        ] {
            assert_eq!(parse(sql), DdlStatement::TruncateTable { name }, "{sql}");
        }
        assert_eq!(
            message("truncate"),
            "syntax error at end of input: expected a table name"
        );
        assert_eq!(
            message("truncate table"),
            "syntax error at end of input: expected a table name"
        );
    }

    #[test]
    fn alter_table() {
        let alter = |sql: &str| match parse(sql) {
            DdlStatement::AlterTable { name, op } => (name, op),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            alter("alter table \"dfs://db\".\"t\" add column c DOUBLE"),
            (
                qualified("dfs://db", "t"),
                AlterOp::AddColumn(col("c", "DOUBLE"))
            )
        );
        assert_eq!(
            alter("ALTER TABLE t ADD Price DECIMAL64(2) NOT NULL [comment=\"p\"]"),
            (
                bare("t"),
                AlterOp::AddColumn(ColumnDef {
                    type_args: vec![2],
                    not_null: true,
                    options: vec![opt("comment", string("p"))],
                    ..col("Price", "DECIMAL64")
                })
            )
        );
        assert_eq!(
            alter("alter table t drop column c"),
            (bare("t"), AlterOp::DropColumn("c".into()))
        );
        assert_eq!(
            alter("alter table loadTable('dfs://db', 't') drop \"C\""),
            (qualified("dfs://db", "t"), AlterOp::DropColumn("C".into()))
        );
        assert_eq!(
            alter("alter table t rename column a to b"),
            (
                bare("t"),
                AlterOp::RenameColumn {
                    from: "a".into(),
                    to: "b".into()
                }
            )
        );
        assert_eq!(
            alter("alter table t RENAME A TO \"B\""),
            (
                bare("t"),
                AlterOp::RenameColumn {
                    from: "A".into(),
                    to: "B".into()
                }
            )
        );
    }

    #[test]
    fn alter_table_errors() {
        assert_eq!(
            message("alter table t"),
            "syntax error at end of input: expected ADD, DROP or RENAME after the table name"
        );
        assert_eq!(
            message("alter table t modify a int"),
            "syntax error at or near \"modify\": expected ADD, DROP or RENAME after the table name"
        );
        assert_eq!(
            message("alter table t rename to u"),
            "renaming a table is not supported; only RENAME [COLUMN] a TO b"
        );
        assert_eq!(
            message("alter table t rename a b"),
            "syntax error at or near \"b\": expected TO after the column name"
        );
        assert_eq!(
            message("alter table t rename a to"),
            "syntax error at end of input: expected the new column name"
        );
        assert_eq!(
            message("alter table t add column"),
            "syntax error at end of input: expected a column name"
        );
        assert_eq!(
            message("alter table t add column a"),
            "syntax error at end of input: expected a type for column \"a\""
        );
        assert_eq!(
            message("alter table t add column a int[]"),
            "array column types are not supported"
        );
        assert_eq!(
            message("alter table t drop column"),
            "syntax error at end of input: expected a column name"
        );
        assert_eq!(
            message("alter table t drop column a, b"),
            "syntax error at or near \",\": expected end of statement"
        );
    }

    // ----- errors in general ----------------------------------------------------------

    #[test]
    fn error_type_behaves() {
        let e = error("drop table");
        assert_eq!(e.to_string(), e.message);
        let boxed: Box<dyn std::error::Error> = Box::new(e);
        assert!(boxed.to_string().starts_with("syntax error"));
    }

    #[test]
    fn long_tokens_are_shortened_in_messages() {
        let long = "x".repeat(100);
        let e = message(&format!("drop table t {long}"));
        assert_eq!(
            e,
            format!(
                "syntax error at or near \"{}...\": expected end of statement",
                "x".repeat(40)
            )
        );
        let e = message(&format!("drop table t {}", "é".repeat(100)));
        assert_eq!(
            e,
            format!(
                "syntax error at or near \"{}...\": expected end of statement",
                "é".repeat(40)
            )
        );
    }

    /// Parses `sql` (which must not panic) and checks the invariants a caller relies on.
    fn check_no_panic(sql: &str) {
        if let Err(e) = parse_ddl(sql) {
            assert!(!e.message.is_empty(), "{sql:?}");
            assert!(
                e.position <= sql.len(),
                "{sql:?}: position {} past end",
                e.position
            );
            assert!(
                sql.is_char_boundary(e.position),
                "{sql:?}: position {} not a char boundary",
                e.position
            );
        }
    }

    #[test]
    fn truncated_statements_never_panic() {
        for sql in VALID {
            for (end, _) in sql.char_indices() {
                check_no_panic(&sql[..end]);
            }
            // And the tail of each, which usually starts mid-token.
            for (start, _) in sql.char_indices() {
                check_no_panic(&sql[start..]);
            }
        }
    }

    /// A small xorshift generator: deterministic, dependency-free.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    #[test]
    fn random_garbage_never_panics() {
        const PREFIXES: &[&str] = &[
            "",
            "create database \"dfs://x\" partitioned by ",
            "create database \"dfs://x\" partitioned by VALUE(",
            "create database \"dfs://x\" partitioned by LIST(",
            "create database \"dfs://x\" partitioned by HASH(",
            "create table t (",
            "create table t (a ",
            "create table \"dfs://db\".",
            "drop table ",
            "truncate ",
            "alter table t ",
        ];
        const PIECES: &[&str] = &[
            "create",
            "database",
            "table",
            "drop",
            "alter",
            "truncate",
            "add",
            "rename",
            "to",
            "column",
            "if",
            "not",
            "exists",
            "null",
            "partitioned",
            "by",
            "VALUE",
            "RANGE",
            "LIST",
            "HASH",
            "loadTable",
            "SYMBOL",
            "int",
            "double",
            "precision",
            "array",
            "default",
            "primary",
            "DATE",
            "TIME",
            "TIMESTAMP",
            "true",
            "\"dfs://x\"",
            "'dfs://y'",
            "\"t\"",
            "'s'",
            "\"",
            "'",
            "`",
            "`A`B",
            "(",
            ")",
            "[",
            "]",
            ",",
            ".",
            "..",
            "...",
            "-",
            "=",
            ";",
            "1",
            "-5",
            "0",
            "1.5",
            "1e-5",
            "1e",
            "2023.01.01",
            "2023.02.30",
            "2023.01M",
            "09:30m",
            "09:30:00",
            "09:30:00.000",
            "2023.01.08T09:30:00.123456789",
            "9999999999999999999999",
            "é",
            "名",
            "\u{1F600}",
            "\u{0301}",
            "/*",
            "*/",
            "--",
            "\n",
            " ",
            "\t",
            "@",
            "$",
            "\\",
            "\0",
        ];
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        for _ in 0..20_000 {
            let mut sql = PREFIXES[rng.below(PREFIXES.len())].to_string();
            for _ in 0..rng.below(12) {
                sql.push_str(PIECES[rng.below(PIECES.len())]);
                if rng.below(2) == 0 {
                    sql.push(' ');
                }
            }
            check_no_panic(&sql);
        }
        // Arbitrary characters, including multi-byte ones.
        for _ in 0..5_000 {
            let sql: String = (0..rng.below(40))
                .filter_map(|_| {
                    let code = if rng.below(2) == 0 {
                        rng.below(128)
                    } else {
                        rng.below(0x11_0000)
                    };
                    char::from_u32(u32::try_from(code).unwrap_or(0))
                })
                .collect();
            check_no_panic(&sql);
            check_no_panic(&format!("create table t ({sql}"));
            check_no_panic(&format!(
                "create database \"dfs://x\" partitioned by VALUE({sql}"
            ));
        }
    }

    /// Finding duplicate column names was quadratic: 17,000 columns took 6 s to parse.
    #[test]
    fn a_very_wide_table_parses_and_its_duplicate_column_is_found() {
        let columns: Vec<String> = (0..50_000).map(|i| format!("c{i} INT")).collect();
        let sql = format!("create table \"dfs://x\".\"t\"({})", columns.join(", "));
        // Quadratic, this took about a minute; the speed itself is not asserted here.
        let DdlStatement::CreateTable { columns, .. } = parse(&sql) else {
            panic!("not a CREATE TABLE");
        };
        assert_eq!(columns.len(), 50_000);
        let duplicate = sql.replace(")", ", C49999 LONG)");
        assert_eq!(error(&duplicate).sqlstate, "42701");
    }
}
