//! Bounds on what parsing one statement may cost: the work of the parse, and the depth of the
//! tree it builds.
//!
//! # Work
//!
//! sqlparser 0.62 (the version DataFusion 55 brings) parses some nestings in time exponential
//! in their depth: PostgreSQL's dialect allows `f(expr => value)`, so every function argument
//! is parsed once to look for the `=>` and again as a plain argument, and `CAST(CASE (...`
//! chains fall back and retry on top of that. A 130-byte `select abs(abs(...)))` 30 calls deep,
//! or 40 bytes of `CAST(CASE (`, keeps a core busy for hours and cannot be cancelled.
//!
//! [`check`] parses a statement once with [`BudgetedPostgreSql`], PostgreSQL's dialect plus a
//! count of the expressions the parser starts, and stops the parse once the count passes a
//! budget proportional to the statement's length: such a statement is refused with SQLSTATE
//! 54001 before the real parser sees it. The real parse starts the same expressions, so it is
//! bounded by the same budget. Ordinary statements start a few expressions per token and never
//! come near it.
//!
//! Fixed upstream in sqlparser 0.63 (`parse_function_args` parses an argument once); this
//! part can go when DataFusion brings that version.
//!
//! # Depth
//!
//! The parser builds `1 + 1 + ... + 1` or `a = 1 or a = 2 or ...` without recursing, as a tree
//! as deep as the chain is long, but cloning, planning and dropping that tree recurse (derived
//! `Clone` and `Drop` do, and so does DataFusion), and a few hundred levels overflow a 2 MiB
//! stack and abort the node. The runtimes give their threads [`THREAD_STACK_SIZE`] of stack,
//! enough for [`MAX_DEPTH`] levels, and before anything is parsed [`check`] bounds the depth
//! of the tree from the tokens: every level of an expression tree takes an operator, a keyword
//! or a bracket, so the operators and keywords between two commas at one bracket level, plus
//! the deepest bracket among them, bound the depth. A statement over [`MAX_DEPTH`] is refused
//! with 54001, as PostgreSQL refuses one that exceeds its stack depth; no tree is built for it.

use std::any::TypeId;
use std::cell::Cell;

use sqlparser::ast::Expr;
use sqlparser::dialect::{Dialect, PostgreSqlDialect, Precedence};
use sqlparser::keywords::Keyword;
use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer};

use super::QueryError;
use crate::sqlstate::SqlState;

/// Expressions a statement may start regardless of its length.
const BASE_BUDGET: u64 = 100_000;
/// Expressions it may start per token.
const BUDGET_PER_TOKEN: u64 = 16;

/// Statements nested at most this deep (brackets and `CASE`s, see [`nesting`]) are not
/// parsed against the budget: even re-parsed at every level, a parse of theirs starts at most
/// a few dozen expressions per token. This keeps the budgeted parse, which costs as much as
/// the real one, off the common path: a 1,000-row `INSERT ... VALUES` nests 1 or 2 deep.
const SHALLOW: usize = 3;

/// How deeply expressions may nest in a statement.
pub const MAX_DEPTH: usize = 1_000;

/// The stack of the runtime threads that parse, plan and run statements. DataFusion's planning
/// recurses once per level of an expression with frames of several KiB in a debug build, so
/// [`MAX_DEPTH`] levels need more than the 2 MiB a thread gets by default. Only the pages a
/// thread touches are backed by memory.
pub const THREAD_STACK_SIZE: usize = 16 << 20;

/// The budget of a statement of `tokens` tokens.
fn budget(tokens: usize) -> u64 {
    BASE_BUDGET.saturating_add(BUDGET_PER_TOKEN.saturating_mul(tokens as u64))
}

/// Refuses (54001) a statement whose tree could nest deeper than [`MAX_DEPTH`], or whose parse
/// would start more expressions than its budget. Statements that do not tokenize or parse
/// pass: the real parser reports their error.
pub fn check(sql: &str) -> Result<(), QueryError> {
    let dialect = BudgetedPostgreSql::default();
    let Ok(tokens) = Tokenizer::new(&dialect, sql).tokenize_with_location() else {
        return Ok(());
    };
    let depth = depth_bound(tokens.iter().map(|t| &t.token));
    if depth > MAX_DEPTH {
        return Err(QueryError::other(
            SqlState::STATEMENT_TOO_COMPLEX,
            format!(
                "statement too complex: expressions may nest {depth} deep, more than {MAX_DEPTH} \
                 (a long chain of operators? use IN (...) for long lists)"
            ),
        ));
    }
    if nesting(tokens.iter().map(|t| &t.token)) > SHALLOW
        && expressions_started(&dialect, tokens) > dialect.budget.get()
    {
        return Err(QueryError::other(
            SqlState::STATEMENT_TOO_COMPLEX,
            "statement too complex: function calls or CASE/CAST expressions are nested too deeply",
        ));
    }
    Ok(())
}

/// Brackets and `CASE`s open at once, at most: the parse work per token can grow exponentially
/// in this, and only in this (each level may be parsed a few times over).
fn nesting<'a>(tokens: impl Iterator<Item = &'a Token>) -> usize {
    let (mut open, mut most) = (0usize, 0);
    for token in tokens {
        match token {
            Token::LParen | Token::LBracket | Token::LBrace => open += 1,
            Token::Word(w) if w.keyword == Keyword::CASE && w.quote_style.is_none() => open += 1,
            Token::RParen | Token::RBracket | Token::RBrace => open = open.saturating_sub(1),
            Token::Word(w) if w.keyword == Keyword::END && w.quote_style.is_none() => {
                open = open.saturating_sub(1)
            }
            _ => {}
        }
        most = most.max(open);
    }
    most
}

/// An upper bound of the nesting depth of the tree `tokens` parse into: per bracket level, the
/// operators and keywords since the last comma plus the deepest bracket among them.
fn depth_bound<'a>(tokens: impl Iterator<Item = &'a Token>) -> usize {
    /// One open bracket.
    #[derive(Default)]
    struct Level {
        /// Operators and keywords since the last comma.
        ops: usize,
        /// The deepest bracket closed since the last comma.
        inner: usize,
        /// The deepest comma-separated part so far.
        deepest: usize,
    }
    impl Level {
        fn part(&self) -> usize {
            self.ops + self.inner
        }
    }
    let mut levels = vec![Level::default()];
    let mut bound = 0;
    for token in tokens {
        match token {
            Token::LParen | Token::LBracket | Token::LBrace => levels.push(Level::default()),
            Token::RParen | Token::RBracket | Token::RBrace if levels.len() > 1 => {
                let closed = levels.pop().unwrap_or_default();
                let depth = closed.deepest.max(closed.part()) + 1;
                if let Some(top) = levels.last_mut() {
                    top.inner = top.inner.max(depth);
                }
            }
            Token::Comma | Token::SemiColon => {
                if let Some(top) = levels.last_mut() {
                    top.deepest = top.deepest.max(top.part());
                    top.ops = 0;
                    top.inner = 0;
                }
            }
            t if is_operand(t) => {}
            _ => {
                if let Some(top) = levels.last_mut() {
                    top.ops += 1;
                }
            }
        }
        if let Some(top) = levels.last() {
            bound = bound.max(top.part());
        }
    }
    // Brackets left open still count.
    while let Some(closed) = levels.pop() {
        let depth = closed.deepest.max(closed.part()) + levels.len();
        bound = bound.max(depth);
    }
    bound
}

/// Tokens that are operands (names and literals), not operators or keywords.
fn is_operand(token: &Token) -> bool {
    match token {
        Token::Whitespace(_) | Token::EOF => true,
        Token::Word(w) => w.keyword == Keyword::NoKeyword || w.quote_style.is_some(),
        Token::Number(..)
        | Token::Char(_)
        | Token::SingleQuotedString(_)
        | Token::DoubleQuotedString(_)
        | Token::DollarQuotedString(_)
        | Token::NationalStringLiteral(_)
        | Token::EscapedStringLiteral(_)
        | Token::UnicodeStringLiteral(_)
        | Token::HexStringLiteral(_)
        | Token::Placeholder(_) => true,
        _ => false,
    }
}

/// How many expressions parsing `tokens` starts, counting at most one past the budget.
fn expressions_started(dialect: &BudgetedPostgreSql, tokens: Vec<TokenWithSpan>) -> u64 {
    let words = tokens
        .iter()
        .filter(|t| !matches!(t.token, Token::Whitespace(_)))
        .count();
    dialect.budget.set(budget(words));
    let _ = Parser::new(dialect)
        .with_tokens_with_locations(tokens)
        .parse_statements();
    dialect.started.get()
}

/// PostgreSQL's dialect, counting the expressions the parser starts and failing every one past
/// the budget. Past the budget the parse fails fast: the parser never backtracks over a
/// recursion-limit error, which is the error it gets.
#[derive(Debug, Default)]
pub struct BudgetedPostgreSql {
    started: Cell<u64>,
    budget: Cell<u64>,
}

/// Boolean dialect options, as PostgreSQL's dialect sets them.
macro_rules! postgres_options {
    ($($option:ident),* $(,)?) => {
        $(
            fn $option(&self) -> bool {
                PostgreSqlDialect {}.$option()
            }
        )*
    };
}

impl Dialect for BudgetedPostgreSql {
    /// The parser asks `dialect.is::<PostgreSqlDialect>()` in places; answer as PostgreSQL.
    fn dialect(&self) -> TypeId {
        TypeId::of::<PostgreSqlDialect>()
    }

    fn parse_prefix(&self, _parser: &mut Parser) -> Option<Result<Expr, ParserError>> {
        let started = self.started.get() + 1;
        self.started.set(started);
        if started > self.budget.get() {
            // PostgreSQL's dialect has no prefix parser of its own: `None` is its answer.
            return Some(Err(ParserError::RecursionLimitExceeded));
        }
        None
    }

    fn identifier_quote_style(&self, identifier: &str) -> Option<char> {
        PostgreSqlDialect {}.identifier_quote_style(identifier)
    }

    fn is_delimited_identifier_start(&self, ch: char) -> bool {
        PostgreSqlDialect {}.is_delimited_identifier_start(ch)
    }

    fn is_identifier_start(&self, ch: char) -> bool {
        PostgreSqlDialect {}.is_identifier_start(ch)
    }

    fn is_identifier_part(&self, ch: char) -> bool {
        PostgreSqlDialect {}.is_identifier_part(ch)
    }

    fn is_reserved_for_identifier(&self, kw: Keyword) -> bool {
        PostgreSqlDialect {}.is_reserved_for_identifier(kw)
    }

    fn is_custom_operator_part(&self, ch: char) -> bool {
        PostgreSqlDialect {}.is_custom_operator_part(ch)
    }

    fn get_next_precedence(&self, parser: &Parser) -> Option<Result<u8, ParserError>> {
        PostgreSqlDialect {}.get_next_precedence(parser)
    }

    fn prec_value(&self, prec: Precedence) -> u8 {
        PostgreSqlDialect {}.prec_value(prec)
    }

    postgres_options!(
        supports_unicode_string_literal,
        supports_filter_during_aggregation,
        supports_group_by_expr,
        allow_extract_custom,
        allow_extract_single_quotes,
        supports_create_index_with_clause,
        supports_explain_with_utility_options,
        supports_listen_notify,
        supports_factorial_operator,
        supports_bitwise_shift_operators,
        supports_comment_on,
        supports_load_extension,
        supports_named_fn_args_with_colon_operator,
        supports_named_fn_args_with_expr_name,
        supports_empty_projections,
        supports_nested_comments,
        supports_string_escape_constant,
        supports_numeric_literal_underscores,
        supports_array_typedef_with_brackets,
        supports_geometric_types,
        supports_set_names,
        supports_alter_column_type_using,
        supports_notnull_operator,
        supports_interval_options,
        supports_insert_table_alias,
        supports_create_table_like_parenthesized,
        supports_select_wildcard_with_alias,
        supports_comma_separated_trim,
        supports_xml_expressions,
        supports_comment_optimizer_hint,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sqlstate::ErrorCode;

    fn nested_calls(depth: usize) -> String {
        format!("select {}1{}", "abs(".repeat(depth), ")".repeat(depth))
    }

    #[test]
    fn parses_like_postgresql() {
        for sql in [
            "select a::int, b ->> 'x', c @> d, e || f from t where g !~ 'x' limit 1",
            "select count(*) filter (where a > 1), extract('day' from now()), 5!",
            "select $$dollar$$, E'\\n', U&'\\0041', 1_000 from \"dfs://x\".\"t\"",
        ] {
            let dialect = BudgetedPostgreSql::default();
            dialect.budget.set(u64::MAX);
            let ours = Parser::parse_sql(&dialect, sql).unwrap();
            let theirs = Parser::parse_sql(&PostgreSqlDialect {}, sql).unwrap();
            assert_eq!(ours, theirs, "{sql}");
        }
    }

    #[test]
    fn ordinary_statements_stay_far_below_the_budget() {
        let long_insert = format!(
            "insert into t values {}",
            vec!["(1, 'a', abs(-2.5), cast('2023-01-01' as date))"; 2000].join(", ")
        );
        for sql in [
            nested_calls(10).as_str(),
            "select a, sum(b) from t where c in (select d from u where e = 1) group by a",
            long_insert.as_str(),
        ] {
            let dialect = BudgetedPostgreSql::default();
            let tokens = Tokenizer::new(&dialect, sql)
                .tokenize_with_location()
                .unwrap();
            let started = expressions_started(&dialect, tokens);
            let budget = dialect.budget.get();
            assert!(started * 10 < budget, "{started} of {budget}: {sql:.80}");
            assert!(check(sql).is_ok());
        }
    }

    #[test]
    fn exponential_nestings_are_refused_quickly() {
        let cast_case = format!("select {}1{}", "CAST(CASE (".repeat(40), ")".repeat(120));
        for sql in [nested_calls(40), cast_case] {
            // Unchecked, either would keep this test busy for hours.
            let e = check(&sql).unwrap_err();
            assert_eq!(e.sqlstate(), SqlState::STATEMENT_TOO_COMPLEX);
        }
    }

    fn bound(sql: &str) -> usize {
        let tokens = Tokenizer::new(&PostgreSqlDialect {}, sql)
            .tokenize()
            .unwrap();
        depth_bound(tokens.iter())
    }

    #[test]
    fn nesting_counts_brackets_and_cases() {
        let nesting = |sql: &str| {
            let tokens = Tokenizer::new(&PostgreSqlDialect {}, sql)
                .tokenize()
                .unwrap();
            super::nesting(tokens.iter())
        };
        assert_eq!(nesting("insert into t values (1, 'a'), (2, abs(-1))"), 2);
        assert_eq!(
            nesting("select case when (a) then 1 end, \"end\" from t"),
            2
        );
        assert_eq!(nesting(&nested_calls(4)), 4);
        assert_eq!(nesting("select ))) (("), 2);
    }

    #[test]
    fn depth_bound_follows_chains_and_brackets() {
        assert_eq!(bound("select a, b from t"), 1);
        assert_eq!(bound("select 1 + 1 + 1"), 3);
        // `select` + the bracket, one deeper than the two `+` in it.
        assert_eq!(bound("select f(1 + 1 + 1), 2"), 4);
        assert_eq!(bound("insert into t values (1, 'a'), (2, 'b')"), 4);
        assert_eq!(bound("select ((1"), 2);
    }

    #[test]
    fn deep_chains_are_refused_before_they_are_parsed() {
        let at_limit = format!("select 1{}", " + 1".repeat(MAX_DEPTH - 1));
        assert!(check(&at_limit).is_ok());
        let long_list = format!("select 1 where 1 in ({})", vec!["1"; 100_000].join(", "));
        assert!(check(&long_list).is_ok());
        // Far deeper than a recursive drop survives on a 2 MiB stack, and unfinished.
        let deep = format!("select 1{} )", " + 1".repeat(300_000));
        let e = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || check(&deep).unwrap_err())
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(e.sqlstate(), SqlState::STATEMENT_TOO_COMPLEX);
    }
}
