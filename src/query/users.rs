//! Users: `CREATE USER`, `ALTER USER ... PASSWORD`, `DROP USER` (also spelled with ROLE), and
//! their `pg_roles` view for psql's `\du`.
//!
//! Passwords are stored as SCRAM-SHA-256 needs them (salt, iteration count, salted password),
//! never in clear. Only an admin may create or drop users or change another user's password.

use async_trait::async_trait;
use datafusion_pg_catalog::pg_catalog::context::{PgCatalogContextProvider, Role};
use pgwire::api::auth::sasl::scram::gen_salted_password;

use super::{QueryError, Session};
use crate::controller::client::ControllerClient;
use crate::controller::metadata::{Command, CommandResult, UserMeta};
use std::sync::Arc;

/// SCRAM iteration count for new passwords (PostgreSQL's default).
pub const SCRAM_ITERATIONS: u32 = 4096;

/// A user record with a freshly salted password.
pub fn new_user(name: &str, password: &str, is_admin: bool) -> UserMeta {
    let salt: [u8; 16] = rand::random();
    UserMeta {
        name: name.to_string(),
        salted_password: gen_salted_password(password, &salt, SCRAM_ITERATIONS as usize),
        salt: salt.to_vec(),
        iterations: SCRAM_ITERATIONS,
        is_admin,
        privileges: Default::default(),
    }
}

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
}

/// A token of a user statement.
#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Quoted(String),
    Str(String),
    Comma,
}

fn tokens(sql: &str) -> Result<Vec<Tok>, QueryError> {
    let mut out = Vec::new();
    let mut chars = sql.trim().trim_end_matches(';').chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == ',' {
            chars.next();
            out.push(Tok::Comma);
        } else if c == '\'' || c == '"' {
            chars.next();
            let mut text = String::new();
            loop {
                match chars.next() {
                    Some(q) if q == c => {
                        if chars.peek() == Some(&c) {
                            chars.next();
                            text.push(c);
                        } else {
                            break;
                        }
                    }
                    Some(other) => text.push(other),
                    None => return Err(QueryError::Syntax("unterminated quoted string".into())),
                }
            }
            out.push(if c == '"' {
                Tok::Quoted(text)
            } else {
                Tok::Str(text)
            });
        } else if c.is_alphanumeric() || c == '_' {
            let mut word = String::new();
            while let Some(&c) = chars.peek() {
                if c.is_alphanumeric() || c == '_' || c == '$' {
                    word.push(c);
                    chars.next();
                } else {
                    break;
                }
            }
            out.push(Tok::Word(word));
        } else {
            return Err(QueryError::Syntax(format!(
                "syntax error at or near \"{c}\""
            )));
        }
    }
    Ok(out)
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
                return Err(QueryError::other("22023", "password must not be empty"));
            }
            Ok(s.clone())
        }
        Some(Tok::Word(w)) if w.eq_ignore_ascii_case("null") => Err(QueryError::other(
            "22023",
            "a user must have a password (SCRAM-SHA-256 authentication)",
        )),
        _ => Err(QueryError::Syntax(
            "syntax error: PASSWORD needs a string literal".into(),
        )),
    }
}

/// Parses `CREATE USER|ROLE`, `ALTER USER|ROLE ... PASSWORD` and `DROP USER|ROLE`;
/// `Ok(None)` for any other statement.
pub fn parse(sql: &str) -> Result<Option<UserStmt>, QueryError> {
    let head: Vec<String> = sql
        .split_whitespace()
        .take(2)
        .map(|w| w.to_ascii_lowercase())
        .collect();
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

fn require_admin(session: &Session) -> Result<(), QueryError> {
    let metadata = session.engine().controller().metadata();
    if metadata
        .users
        .get(session.user())
        .is_some_and(|u| u.is_admin)
    {
        Ok(())
    } else {
        Err(QueryError::other(
            "42501",
            "permission denied: only an admin can manage users",
        ))
    }
}

async fn write(session: &Session, cmd: Command) -> Result<(), QueryError> {
    match session.engine().controller().write(cmd).await? {
        CommandResult::Err(e) => Err(e.into()),
        _ => Ok(()),
    }
}

/// Runs a user statement; returns its command tag.
pub async fn execute(session: &Session, stmt: &UserStmt) -> Result<String, QueryError> {
    match stmt {
        UserStmt::Create {
            name,
            password,
            superuser,
        } => {
            require_admin(session)?;
            let password = password.as_ref().ok_or_else(|| {
                QueryError::other(
                    "22023",
                    "CREATE USER needs a password: CREATE USER name WITH PASSWORD '...'",
                )
            })?;
            let user = new_user(name, password, *superuser);
            write(
                session,
                Command::CreateUser {
                    user,
                    if_not_exists: false,
                },
            )
            .await?;
            Ok("CREATE ROLE".into())
        }
        UserStmt::AlterPassword { name, password } => {
            if name != session.user() {
                require_admin(session)?;
            }
            let user = new_user(name, password, false);
            write(
                session,
                Command::AlterUserPassword {
                    name: name.clone(),
                    salt: user.salt,
                    iterations: user.iterations,
                    salted_password: user.salted_password,
                },
            )
            .await?;
            Ok("ALTER ROLE".into())
        }
        UserStmt::Drop { names, if_exists } => {
            require_admin(session)?;
            for name in names {
                if name == session.user() {
                    return Err(QueryError::other("55006", "current user cannot be dropped"));
                }
                write(
                    session,
                    Command::DropUser {
                        name: name.clone(),
                        if_exists: *if_exists,
                    },
                )
                .await?;
            }
            Ok("DROP ROLE".into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}

/// `pg_roles` for psql's `\du`, from the controller's users.
#[derive(Clone)]
pub struct Roles {
    controller: Arc<dyn ControllerClient>,
}

impl Roles {
    pub fn new(controller: Arc<dyn ControllerClient>) -> Self {
        Roles { controller }
    }
}

impl std::fmt::Debug for Roles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Roles")
    }
}

#[async_trait]
impl PgCatalogContextProvider for Roles {
    async fn roles(&self) -> Vec<String> {
        self.controller.metadata().users.keys().cloned().collect()
    }

    async fn role(&self, name: &str) -> Option<Role> {
        let metadata = self.controller.metadata();
        let u = metadata.users.get(name)?;
        Some(Role {
            name: u.name.clone(),
            is_superuser: u.is_admin,
            can_login: true,
            can_create_db: u.is_admin,
            can_create_role: u.is_admin,
            can_create_user: u.is_admin,
            can_replication: u.is_admin,
            grants: Vec::new(),
            inherited_roles: Vec::new(),
        })
    }
}
