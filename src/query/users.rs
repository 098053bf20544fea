//! Users: `CREATE USER`, `ALTER USER ... PASSWORD`, `DROP USER` (also spelled with ROLE), and
//! their `pg_roles` view for psql's `\du`.
//!
//! Passwords are stored as SCRAM-SHA-256 needs them (salt, iteration count, salted password),
//! never in clear. Only an admin may create or drop users or change another user's password.

use async_trait::async_trait;
use datafusion_pg_catalog::pg_catalog::context::{PgCatalogContextProvider, Role};
use pgwire::api::auth::sasl::scram::gen_salted_password;
use sqlparser::ast::{Expr, ObjectType, Password, RoleOption, Statement, Value};

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
    }
}

fn password_text(p: &Password) -> Result<String, QueryError> {
    match p {
        Password::Password(Expr::Value(v)) => match &v.value {
            Value::SingleQuotedString(s) => {
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
            _ => Err(QueryError::other("22023", "password must be a string literal")),
        },
        Password::NullPassword => Err(QueryError::other(
            "22023",
            "a user must have a password (SCRAM-SHA-256 authentication)",
        )),
        Password::Password(_) => Err(QueryError::other("22023", "password must be a string literal")),
    }
}

fn require_admin(session: &Session) -> Result<(), QueryError> {
    let metadata = session.engine().controller().metadata();
    if metadata.users.get(session.user()).is_some_and(|u| u.is_admin) {
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

fn options_of(options: &[RoleOption]) -> (Option<&Password>, Option<bool>) {
    let mut password = None;
    let mut superuser = None;
    for o in options {
        match o {
            RoleOption::Password(p) => password = Some(p),
            RoleOption::SuperUser(b) => superuser = Some(*b),
            _ => {}
        }
    }
    (password, superuser)
}

/// Runs a user statement; returns its command tag.
pub async fn execute(session: &Session, stmt: &Statement) -> Result<String, QueryError> {
    match stmt {
        Statement::CreateRole(c) => {
            require_admin(session)?;
            let password = c.password.as_ref().ok_or_else(|| {
                QueryError::other("22023", "CREATE USER needs a password: CREATE USER name WITH PASSWORD '...'")
            })?;
            let password = password_text(password)?;
            for name in &c.names {
                let user = new_user(&name.to_string().trim_matches('"').to_string(), &password, c.superuser == Some(true));
                write(
                    session,
                    Command::CreateUser {
                        user,
                        if_not_exists: c.if_not_exists,
                    },
                )
                .await?;
            }
            Ok("CREATE ROLE".into())
        }
        Statement::AlterRole { name, operation } => {
            let sqlparser::ast::AlterRoleOperation::WithOptions { options } = operation else {
                return Err(QueryError::Unsupported("this ALTER USER form".into()));
            };
            let (password, superuser) = options_of(options);
            if superuser.is_some() {
                return Err(QueryError::Unsupported("changing SUPERUSER of an existing user".into()));
            }
            let Some(password) = password else {
                return Err(QueryError::Unsupported("ALTER USER without PASSWORD".into()));
            };
            if name.value != session.user() {
                require_admin(session)?;
            }
            let user = new_user(&name.value, &password_text(password)?, false);
            write(
                session,
                Command::AlterUserPassword {
                    name: name.value.clone(),
                    salt: user.salt,
                    iterations: user.iterations,
                    salted_password: user.salted_password,
                },
            )
            .await?;
            Ok("ALTER ROLE".into())
        }
        Statement::Drop {
            object_type: ObjectType::Role | ObjectType::User,
            if_exists,
            names,
            ..
        } => {
            require_admin(session)?;
            for name in names {
                let name = name.to_string().trim_matches('"').to_string();
                if name == session.user() {
                    return Err(QueryError::other("55006", "current user cannot be dropped"));
                }
                write(
                    session,
                    Command::DropUser {
                        name,
                        if_exists: *if_exists,
                    },
                )
                .await?;
            }
            Ok("DROP ROLE".into())
        }
        other => Err(QueryError::Unsupported(format!("statement {other}"))),
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
