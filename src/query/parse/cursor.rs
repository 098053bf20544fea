//! The grammar of PostgreSQL's SQL-level cursors, read with the shared
//! [`lexer`](super::lexer) into a [`CursorStmt`]; [`crate::query::cursor`] carries them out.
//!
//! ```text
//! DECLARE name [BINARY] [ASENSITIVE | INSENSITIVE] [[NO] SCROLL]
//!     CURSOR [{WITH | WITHOUT} HOLD] FOR query
//! FETCH [direction] [FROM | IN] name
//! MOVE [direction] [FROM | IN] name
//!     direction := NEXT | count | ALL | FORWARD | FORWARD count | FORWARD ALL
//! CLOSE {name | ALL}
//! ```
//!
//! Cursors only move forward: the backward directions (`PRIOR`, `FIRST`, `LAST`, `ABSOLUTE`,
//! `RELATIVE`, `BACKWARD`, a negative count) are refused with PostgreSQL's error for a
//! `NO SCROLL` cursor. A name is folded to lower case unless quoted.

use super::lexer::{Grammar, Lexer, Token, TokenKind};
use crate::query::QueryError;
use crate::sqlstate::SqlState;

/// How many rows a FETCH or MOVE takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    Rows(u64),
    All,
}

/// A cursor statement, parsed.
#[derive(Debug, Clone, PartialEq)]
pub enum CursorStmt {
    Declare {
        name: String,
        binary: bool,
        hold: bool,
        /// The query's text.
        query: String,
    },
    /// `FETCH` (rows sent) or `MOVE` (`move_only`: rows skipped, only counted).
    Fetch {
        name: String,
        count: Count,
        move_only: bool,
    },
    /// `CLOSE name`, or `CLOSE ALL` (`None`).
    Close { name: Option<String> },
}

impl CursorStmt {
    /// The cursor a statement names (none for `CLOSE ALL`).
    pub fn name(&self) -> Option<&str> {
        match self {
            CursorStmt::Declare { name, .. } | CursorStmt::Fetch { name, .. } => Some(name),
            CursorStmt::Close { name } => name.as_deref(),
        }
    }
}

fn syntax(message: impl Into<String>) -> QueryError {
    QueryError::other(SqlState::SYNTAX_ERROR, message)
}

struct Reader<'a> {
    sql: &'a str,
    lexer: Lexer<'a>,
    peeked: Option<Token>,
}

impl<'a> Reader<'a> {
    fn next(&mut self) -> Result<Token, QueryError> {
        if let Some(t) = self.peeked.take() {
            return Ok(t);
        }
        self.lexer
            .next_token()
            .map_err(|e| syntax(format!("syntax error: {e}")))
    }

    fn peek(&mut self) -> Result<&Token, QueryError> {
        if self.peeked.is_none() {
            let t = self.next()?;
            self.peeked = Some(t);
        }
        Ok(self.peeked.as_ref().expect("just peeked"))
    }

    /// Consumes the keyword if it is next.
    fn eat(&mut self, keyword: &str) -> Result<bool, QueryError> {
        if self.peek()?.is_keyword(keyword) {
            self.peeked = None;
            return Ok(true);
        }
        Ok(false)
    }

    fn expect(&mut self, keyword: &str) -> Result<(), QueryError> {
        if self.eat(keyword)? {
            return Ok(());
        }
        let t = self.next()?;
        Err(syntax(format!(
            "syntax error at or near \"{}\": expected {}",
            self.text(&t),
            keyword.to_uppercase()
        )))
    }

    fn text(&self, t: &Token) -> &'a str {
        self.sql.get(t.start..t.end).unwrap_or("")
    }

    fn name(&mut self) -> Result<String, QueryError> {
        let t = self.next()?;
        match t.kind {
            TokenKind::Word(w) => Ok(w.to_lowercase()),
            TokenKind::QuotedIdent(q) => Ok(q),
            _ => Err(syntax(format!(
                "syntax error at or near \"{}\": expected a cursor name",
                self.text(&t)
            ))),
        }
    }

    fn end(&mut self) -> Result<(), QueryError> {
        let t = self.next()?;
        match t.kind {
            TokenKind::Eof | TokenKind::Semicolon => Ok(()),
            _ => Err(syntax(format!(
                "syntax error at or near \"{}\"",
                self.text(&t)
            ))),
        }
    }
}

/// Parses `sql` if it is a cursor statement (`DECLARE`, `FETCH`, `MOVE`, `CLOSE`); `None` for
/// any other statement.
pub fn parse(sql: &str) -> Result<Option<CursorStmt>, QueryError> {
    let mut r = Reader {
        sql,
        lexer: Lexer::new(sql, Grammar::Ddl),
        peeked: None,
    };
    let Ok(first) = r.next() else {
        return Ok(None);
    };
    let keyword = match &first.kind {
        TokenKind::Word(w) => w.to_ascii_lowercase(),
        _ => return Ok(None),
    };
    let stmt = match keyword.as_str() {
        "declare" => declare(&mut r)?,
        "fetch" => fetch(&mut r, false)?,
        "move" => fetch(&mut r, true)?,
        "close" => {
            let name = if r.eat("all")? { None } else { Some(r.name()?) };
            r.end()?;
            CursorStmt::Close { name }
        }
        _ => return Ok(None),
    };
    Ok(Some(stmt))
}

fn declare(r: &mut Reader) -> Result<CursorStmt, QueryError> {
    let name = r.name()?;
    let mut binary = false;
    loop {
        if r.eat("binary")? {
            binary = true;
        } else if r.eat("asensitive")? || r.eat("insensitive")? || r.eat("scroll")? {
        } else if r.eat("no")? {
            r.expect("scroll")?;
        } else {
            break;
        }
    }
    r.expect("cursor")?;
    let mut hold = false;
    if r.eat("with")? {
        r.expect("hold")?;
        hold = true;
    } else if r.eat("without")? {
        r.expect("hold")?;
    }
    r.expect("for")?;
    // The query is the rest of the text, after FOR.
    let start = match r.peek()? {
        t if t.kind == TokenKind::Eof => return Err(syntax("syntax error at end of input")),
        t => t.start,
    };
    Ok(CursorStmt::Declare {
        name,
        binary,
        hold,
        query: r.sql[start..].trim().to_owned(),
    })
}

fn backward() -> QueryError {
    QueryError::other(
        SqlState::OBJECT_NOT_IN_PREREQUISITE_STATE,
        "cursor can only scan forward",
    )
}

fn fetch(r: &mut Reader, move_only: bool) -> Result<CursorStmt, QueryError> {
    let count = |r: &mut Reader| -> Result<Option<Count>, QueryError> {
        if r.eat("all")? {
            return Ok(Some(Count::All));
        }
        if matches!(r.peek()?.kind, TokenKind::Minus) {
            return Err(backward());
        }
        if r.peek()?.kind == TokenKind::Number {
            let t = r.next()?;
            let text = r.text(&t);
            let n = text
                .parse::<u64>()
                .map_err(|_| syntax(format!("syntax error at or near \"{text}\"")))?;
            return Ok(Some(Count::Rows(n)));
        }
        Ok(None)
    };
    let mut n = Count::Rows(1);
    if r.eat("next")? {
    } else if r.eat("forward")? {
        if let Some(c) = count(r)? {
            n = c;
        }
    } else if ["prior", "first", "last", "absolute", "relative", "backward"]
        .iter()
        .any(|k| r.peek().is_ok_and(|t| t.is_keyword(k)))
    {
        return Err(backward());
    } else if let Some(c) = count(r)? {
        n = c;
    }
    if !r.eat("from")? {
        r.eat("in")?;
    }
    let name = r.name()?;
    r.end()?;
    Ok(CursorStmt::Fetch {
        name,
        count: n,
        move_only,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(sql: &str) -> CursorStmt {
        parse(sql).unwrap().expect("a cursor statement")
    }

    #[test]
    fn the_forms_drivers_send() {
        assert_eq!(
            p(r#"DECLARE "c1" NO SCROLL CURSOR WITHOUT HOLD FOR select 1"#),
            CursorStmt::Declare {
                name: "c1".into(),
                binary: false,
                hold: false,
                query: "select 1".into()
            }
        );
        assert_eq!(
            p("declare C binary cursor with hold for select * from t where x = 'for'"),
            CursorStmt::Declare {
                name: "c".into(),
                binary: true,
                hold: true,
                query: "select * from t where x = 'for'".into()
            }
        );
        let fetch = |count, move_only| CursorStmt::Fetch {
            name: "c".into(),
            count,
            move_only,
        };
        assert_eq!(
            p(r#"FETCH FORWARD 100 FROM "c""#),
            fetch(Count::Rows(100), false)
        );
        assert_eq!(p("fetch c"), fetch(Count::Rows(1), false));
        assert_eq!(p("fetch next in c"), fetch(Count::Rows(1), false));
        assert_eq!(p("fetch all from c"), fetch(Count::All, false));
        assert_eq!(p("fetch forward all c"), fetch(Count::All, false));
        assert_eq!(p("move 5 in c"), fetch(Count::Rows(5), true));
        assert_eq!(
            p("close c"),
            CursorStmt::Close {
                name: Some("c".into())
            }
        );
        assert_eq!(p("CLOSE ALL"), CursorStmt::Close { name: None });
        assert!(parse("select 1").unwrap().is_none());
        assert!(parse("closed").unwrap().is_none());
    }

    #[test]
    fn backward_and_broken_forms_are_refused() {
        for sql in ["fetch prior from c", "fetch -1 from c", "move backward 2 c"] {
            let e = parse(sql).unwrap_err();
            assert_eq!(
                crate::sqlstate::ErrorCode::sqlstate(&e),
                SqlState::OBJECT_NOT_IN_PREREQUISITE_STATE,
                "{sql}"
            );
        }
        for sql in [
            "declare c for select 1",
            "fetch 2 from",
            "close",
            "declare c cursor for",
        ] {
            let e = parse(sql).unwrap_err();
            assert_eq!(
                crate::sqlstate::ErrorCode::sqlstate(&e),
                SqlState::SYNTAX_ERROR,
                "{sql}"
            );
        }
    }
}
