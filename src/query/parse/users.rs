//! The grammar of the user statements: `CREATE USER`, `ALTER USER ... PASSWORD`, `DROP USER`
//! (also spelled with ROLE), and `GRANT`/`REVOKE` of per-database privileges, read with the
//! shared [`lexer`](super::lexer) into a [`UserStmt`]. Carrying them out is
//! [`crate::query::users`]'s business.
//!
//! ```text
//! GRANT privilege [, privilege]... ON target TO user [, user]...
//! REVOKE privilege [, privilege]... ON target FROM user [, user]... [CASCADE | RESTRICT]
//!     privilege := READ | WRITE | DDL | ALL [PRIVILEGES]
//!                | SELECT | INSERT | UPDATE | DELETE | TRUNCATE | CREATE      (PostgreSQL)
//!                | DB_READ | TABLE_READ | DB_WRITE | DB_INSERT | DB_UPDATE | DB_DELETE
//!                | TABLE_WRITE | DB_MANAGE | DBOBJ_CREATE | DBOBJ_DELETE     (DolphinDB)
//!     target := DATABASE db | SCHEMA db | ALL TABLES IN SCHEMA db | ALL DATABASES | db
//!     db := "dfs://x" | 'dfs://x' | "*"   (`*`: every database)
//! ```
//!
//! The PostgreSQL and DolphinDB names map onto porpoise's three privileges
//! ([`Privilege`]): reading names READ, changing rows names WRITE, creating or dropping
//! objects names DDL. Privileges are per database; there are none per table.

use std::collections::BTreeSet;

use super::lexer::{Grammar, LexError, Lexer, TokenKind};
use crate::controller::metadata::{Privilege, ALL_DATABASES};
use crate::query::QueryError;
use crate::sqlstate::SqlState;

/// A user statement, parsed.
#[derive(Debug, Clone, PartialEq)]
pub enum UserStmt {
    Create {
        name: String,
        password: Option<String>,
        superuser: bool,
    },
    AlterPassword {
        name: String,
        password: String,
    },
    Drop {
        names: Vec<String>,
        if_exists: bool,
    },
    /// `GRANT` (`grant: true`) or `REVOKE` of privileges on a database (or `*`).
    Grant {
        grant: bool,
        privileges: BTreeSet<Privilege>,
        db: String,
        users: Vec<String>,
    },
}

/// A token of a user statement.
#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Quoted(String),
    Str(String),
    Comma,
}

/// The tokens of a user statement (trailing `;` dropped), read up to the first one that is
/// not a word, a quoted name, a string or a comma: that is a syntax error at its first
/// character.
fn tokens(sql: &str) -> Result<Vec<Tok>, QueryError> {
    let statement = sql.trim().trim_end_matches(';');
    let mut lexer = Lexer::new(statement, Grammar::Users);
    let mut out = Vec::new();
    loop {
        let token = lexer.next_token().map_err(|error| match error {
            LexError::UnterminatedString { .. } | LexError::UnterminatedIdentifier { .. } => {
                QueryError::Syntax("unterminated quoted string".into())
            }
            other => QueryError::Syntax(other.to_string()),
        })?;
        out.push(match token.kind {
            TokenKind::Eof => return Ok(out),
            TokenKind::Word(word) => Tok::Word(word),
            TokenKind::QuotedIdent(name) => Tok::Quoted(name),
            TokenKind::Str(text) => Tok::Str(text),
            TokenKind::Comma => Tok::Comma,
            _ => {
                let c = statement[token.start..].chars().next().unwrap_or_default();
                return Err(QueryError::Syntax(format!(
                    "syntax error at or near \"{c}\""
                )));
            }
        });
    }
}

fn is_kw(t: Option<&Tok>, kw: &str) -> bool {
    matches!(t, Some(Tok::Word(w)) if w.eq_ignore_ascii_case(kw))
}

/// A role name: unquoted names are lowercased, as PostgreSQL does.
fn role_name(t: Option<&Tok>) -> Result<String, QueryError> {
    match t {
        Some(Tok::Word(w)) => Ok(w.to_lowercase()),
        Some(Tok::Quoted(q)) if !q.is_empty() => Ok(q.clone()),
        _ => Err(QueryError::Syntax(
            "syntax error: expected a user name".into(),
        )),
    }
}

fn password_of(t: Option<&Tok>) -> Result<String, QueryError> {
    match t {
        Some(Tok::Str(s)) => {
            if s.starts_with("SCRAM-SHA-256$") || s.starts_with("md5") && s.len() == 35 {
                return Err(QueryError::Unsupported(
                    "pre-hashed passwords; give the password in clear text (it is stored salted and hashed)".into(),
                ));
            }
            if s.is_empty() {
                return Err(QueryError::other(
                    SqlState::INVALID_PARAMETER_VALUE,
                    "password must not be empty",
                ));
            }
            Ok(s.clone())
        }
        Some(Tok::Word(w)) if w.eq_ignore_ascii_case("null") => Err(QueryError::other(
            SqlState::INVALID_PARAMETER_VALUE,
            "a user must have a password (SCRAM-SHA-256 authentication)",
        )),
        _ => Err(QueryError::Syntax(
            "syntax error: PASSWORD needs a string literal".into(),
        )),
    }
}

/// What a privilege name (any spelling) stands for; `None` if it is not one.
fn privileges_named(word: &str) -> Option<&'static [Privilege]> {
    Some(match word.to_ascii_uppercase().as_str() {
        "READ" | "SELECT" | "DB_READ" | "TABLE_READ" => &[Privilege::Read],
        "WRITE" | "INSERT" | "UPDATE" | "DELETE" | "TRUNCATE" | "DB_WRITE" | "DB_INSERT"
        | "DB_UPDATE" | "DB_DELETE" | "TABLE_WRITE" => &[Privilege::Write],
        "DDL" | "CREATE" | "DB_MANAGE" | "DBOBJ_CREATE" | "DBOBJ_DELETE" => &[Privilege::Ddl],
        "ALL" => &Privilege::ALL,
        _ => return None,
    })
}

/// A database name after `ON [DATABASE]`: a quoted path or `*`.
fn database_name(t: Option<&Tok>) -> Result<String, QueryError> {
    match t {
        Some(Tok::Quoted(q)) | Some(Tok::Str(q)) if !q.is_empty() => Ok(q.clone()),
        Some(Tok::Word(w)) => Err(QueryError::Syntax(format!(
            "syntax error at or near \"{w}\": name the database by its quoted path, e.g. \"dfs://db\""
        ))),
        _ => Err(QueryError::Syntax(
            "syntax error: expected a database, e.g. ON DATABASE \"dfs://db\"".into(),
        )),
    }
}

/// Parses `GRANT ... ON ... TO ...` / `REVOKE ... ON ... FROM ...` from its tokens.
fn parse_grant(toks: &[Tok], grant: bool) -> Result<UserStmt, QueryError> {
    let verb = if grant { "GRANT" } else { "REVOKE" };
    let mut i = 1;
    let mut privileges = BTreeSet::new();
    loop {
        let word = match toks.get(i) {
            Some(Tok::Word(w)) => w,
            Some(_) | None => {
                return Err(QueryError::Syntax(format!(
                    "syntax error in {verb}: expected a privilege (READ, WRITE, DDL or ALL)"
                )))
            }
        };
        if !grant && word.eq_ignore_ascii_case("grant") && is_kw(toks.get(i + 1), "option") {
            return Err(QueryError::Unsupported(
                "REVOKE GRANT OPTION FOR: only admins grant".into(),
            ));
        }
        let named = privileges_named(word)
            .ok_or_else(|| QueryError::Syntax(format!("unrecognized privilege type \"{word}\"")))?;
        privileges.extend(named.iter().copied());
        i += 1;
        if word.eq_ignore_ascii_case("all") && is_kw(toks.get(i), "privileges") {
            i += 1;
        }
        if toks.get(i) != Some(&Tok::Comma) {
            break;
        }
        i += 1;
    }
    if !is_kw(toks.get(i), "on") {
        return Err(QueryError::Syntax(format!(
            "syntax error in {verb}: expected ON after the privileges"
        )));
    }
    i += 1;
    let db = if is_kw(toks.get(i), "database") || is_kw(toks.get(i), "schema") {
        i += 1;
        database_name(toks.get(i))?
    } else if is_kw(toks.get(i), "all") && is_kw(toks.get(i + 1), "databases") {
        i += 1;
        ALL_DATABASES.to_string()
    } else if is_kw(toks.get(i), "all")
        && is_kw(toks.get(i + 1), "tables")
        && is_kw(toks.get(i + 2), "in")
        && is_kw(toks.get(i + 3), "schema")
    {
        i += 4;
        database_name(toks.get(i))?
    } else if is_kw(toks.get(i), "table") {
        return Err(QueryError::Unsupported(format!(
            "privileges on a table; {verb} them on its database: ON DATABASE \"dfs://db\""
        )));
    } else {
        database_name(toks.get(i))?
    };
    i += 1;
    let to = if grant { "to" } else { "from" };
    if !is_kw(toks.get(i), to) {
        return Err(QueryError::Syntax(format!(
            "syntax error in {verb}: expected {} after the database",
            to.to_ascii_uppercase()
        )));
    }
    let mut users = vec![role_name(toks.get(i + 1))?];
    i += 2;
    while toks.get(i) == Some(&Tok::Comma) {
        users.push(role_name(toks.get(i + 1))?);
        i += 2;
    }
    if is_kw(toks.get(i), "with") && is_kw(toks.get(i + 1), "grant") {
        return Err(QueryError::Unsupported(
            "WITH GRANT OPTION: only admins grant".into(),
        ));
    }
    // Nothing depends on a grant (there are no grant options), so both mean the same.
    if !grant && (is_kw(toks.get(i), "cascade") || is_kw(toks.get(i), "restrict")) {
        i += 1;
    }
    if i != toks.len() {
        return Err(QueryError::Syntax(format!("syntax error at end of {verb}")));
    }
    Ok(UserStmt::Grant {
        grant,
        privileges,
        db,
        users,
    })
}

/// Parses `CREATE USER|ROLE`, `ALTER USER|ROLE ... PASSWORD`, `DROP USER|ROLE`, `GRANT` and
/// `REVOKE`; `Ok(None)` for any other statement.
pub fn parse(sql: &str) -> Result<Option<UserStmt>, QueryError> {
    let head: Vec<String> = sql
        .split_whitespace()
        .take(2)
        .map(|w| w.to_ascii_lowercase())
        .collect();
    if let Some(verb @ ("grant" | "revoke")) = head.first().map(String::as_str) {
        return parse_grant(&tokens(sql)?, verb == "grant").map(Some);
    }
    let [verb, object] = head.as_slice() else {
        return Ok(None);
    };
    if !matches!(verb.as_str(), "create" | "alter" | "drop")
        || !matches!(object.as_str(), "user" | "role")
    {
        return Ok(None);
    }
    let toks = tokens(sql)?;
    let mut i = 2;
    let stmt = match verb.as_str() {
        "create" => {
            let name = role_name(toks.get(i))?;
            i += 1;
            if is_kw(toks.get(i), "with") {
                i += 1;
            }
            let mut password = None;
            let mut superuser = false;
            while i < toks.len() {
                let Some(Tok::Word(w)) = toks.get(i) else {
                    return Err(QueryError::Syntax(
                        "syntax error in CREATE USER options".into(),
                    ));
                };
                match w.to_ascii_lowercase().as_str() {
                    "password" => {
                        password = Some(password_of(toks.get(i + 1))?);
                        i += 1;
                    }
                    "encrypted" => {}
                    "superuser" => superuser = true,
                    "nosuperuser" | "login" | "nologin" | "inherit" | "noinherit" | "createdb"
                    | "nocreatedb" | "createrole" | "nocreaterole" => {}
                    other => {
                        return Err(QueryError::Unsupported(format!(
                            "CREATE USER option {other}"
                        )))
                    }
                }
                i += 1;
            }
            UserStmt::Create {
                name,
                password,
                superuser,
            }
        }
        "alter" => {
            let name = role_name(toks.get(i))?;
            i += 1;
            if is_kw(toks.get(i), "with") {
                i += 1;
            }
            if is_kw(toks.get(i), "encrypted") {
                i += 1;
            }
            if !is_kw(toks.get(i), "password") || toks.len() != i + 2 {
                return Err(QueryError::Unsupported(
                    "ALTER USER supports only: ALTER USER name [WITH] PASSWORD '...'".into(),
                ));
            }
            UserStmt::AlterPassword {
                name,
                password: password_of(toks.get(i + 1))?,
            }
        }
        _ => {
            let if_exists = is_kw(toks.get(i), "if") && is_kw(toks.get(i + 1), "exists");
            if if_exists {
                i += 2;
            }
            let mut names = vec![role_name(toks.get(i))?];
            i += 1;
            while toks.get(i) == Some(&Tok::Comma) {
                names.push(role_name(toks.get(i + 1))?);
                i += 2;
            }
            if i != toks.len() {
                return Err(QueryError::Syntax(
                    "syntax error at end of DROP USER".into(),
                ));
            }
            UserStmt::Drop { names, if_exists }
        }
    };
    Ok(Some(stmt))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sqlstate::ErrorCode;

    #[test]
    fn parses_user_statements() {
        assert_eq!(
            parse("CREATE USER Bob WITH PASSWORD 'it''s'").unwrap(),
            Some(UserStmt::Create {
                name: "bob".into(),
                password: Some("it's".into()),
                superuser: false
            })
        );
        assert_eq!(
            parse("alter role \"Bob\" password 'x';").unwrap(),
            Some(UserStmt::AlterPassword {
                name: "Bob".into(),
                password: "x".into()
            })
        );
        assert_eq!(
            parse("drop user if exists a, b").unwrap(),
            Some(UserStmt::Drop {
                names: vec!["a".into(), "b".into()],
                if_exists: true
            })
        );
        assert_eq!(parse("select 1").unwrap(), None);
        assert!(parse("create user").is_err());
        assert!(parse("create user x password 'SCRAM-SHA-256$4096:abc'").is_err());
        assert!(parse("alter user x rename to y").is_err());
    }

    fn grant(grant: bool, privileges: &[Privilege], db: &str, users: &[&str]) -> Option<UserStmt> {
        Some(UserStmt::Grant {
            grant,
            privileges: privileges.iter().copied().collect(),
            db: db.into(),
            users: users.iter().map(|u| u.to_string()).collect(),
        })
    }

    #[test]
    fn parses_grant_and_revoke() {
        use Privilege::*;
        assert_eq!(
            parse(r#"GRANT READ ON DATABASE "dfs://x" TO alice"#).unwrap(),
            grant(true, &[Read], "dfs://x", &["alice"])
        );
        assert_eq!(
            parse(r#"grant select, insert, ddl on schema 'dfs://x' to Alice, "Bob";"#).unwrap(),
            grant(true, &[Read, Write, Ddl], "dfs://x", &["alice", "Bob"])
        );
        assert_eq!(
            parse(r#"revoke all privileges on all tables in schema "dfs://x" from alice cascade"#)
                .unwrap(),
            grant(false, &[Read, Write, Ddl], "dfs://x", &["alice"])
        );
        assert_eq!(
            parse("grant all on all databases to alice").unwrap(),
            grant(true, &[Read, Write, Ddl], "*", &["alice"])
        );
        assert_eq!(
            parse(r#"grant update, delete on "*" to alice"#).unwrap(),
            grant(true, &[Write], "*", &["alice"])
        );
        assert_eq!(
            parse(r#"grant create on database "*" to alice"#).unwrap(),
            grant(true, &[Ddl], "*", &["alice"])
        );
    }

    #[test]
    fn maps_every_privilege_name() {
        use Privilege::*;
        for (names, expected) in [
            (&["READ", "SELECT", "DB_READ", "TABLE_READ"][..], vec![Read]),
            (
                &[
                    "WRITE",
                    "INSERT",
                    "UPDATE",
                    "DELETE",
                    "TRUNCATE",
                    "DB_WRITE",
                    "DB_INSERT",
                    "DB_UPDATE",
                    "DB_DELETE",
                    "TABLE_WRITE",
                ][..],
                vec![Write],
            ),
            (
                &["DDL", "CREATE", "DB_MANAGE", "DBOBJ_CREATE", "DBOBJ_DELETE"][..],
                vec![Ddl],
            ),
            (&["ALL", "ALL PRIVILEGES"][..], vec![Read, Write, Ddl]),
        ] {
            for name in names {
                for spelling in [name.to_string(), name.to_lowercase()] {
                    let sql = format!(r#"grant {spelling} on database "dfs://x" to a"#);
                    assert_eq!(
                        parse(&sql).unwrap(),
                        grant(true, &expected, "dfs://x", &["a"]),
                        "{sql}"
                    );
                }
            }
        }
    }

    #[test]
    fn refuses_bad_grants() {
        let code = |sql: &str| parse(sql).unwrap_err().sqlstate().to_string();
        let e = parse(r#"grant fly on database "dfs://x" to a"#).unwrap_err();
        assert_eq!(e.sqlstate(), SqlState::SYNTAX_ERROR);
        assert!(e.to_string().contains("\"fly\""), "{e}");
        assert_eq!(code(r#"grant read database "dfs://x" to a"#), "42601");
        assert_eq!(code(r#"grant read on database "dfs://x" from a"#), "42601");
        assert_eq!(code(r#"revoke read on database "dfs://x" to a"#), "42601");
        assert_eq!(code(r#"grant read on database "dfs://x" to"#), "42601");
        assert_eq!(code(r#"grant read on database x to a"#), "42601");
        assert_eq!(
            code(r#"grant read on database "dfs://x" to a extra"#),
            "42601"
        );
        assert_eq!(code("grant on database \"dfs://x\" to a"), "42601");
        assert_eq!(code(r#"grant read on table "t" to a"#), "0A000");
        assert_eq!(
            code(r#"grant read on database "dfs://x" to a with grant option"#),
            "0A000"
        );
    }
}
