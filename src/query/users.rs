//! Users: carrying out `CREATE USER`, `ALTER USER ... PASSWORD`, `DROP USER` and
//! `GRANT`/`REVOKE` (their grammar is [`super::parse::users`]), checking passwords, and the
//! `pg_roles` view for psql's `\du`.
//!
//! Of a password only its SCRAM-SHA-256 verifier is stored (salt, iteration count, StoredKey,
//! ServerKey: [`ScramSecret`]), never the password nor SaltedPassword. Only an admin may create or drop users, change another user's password, or
//! grant and revoke privileges.
//!
//! Privileges are porpoise's three ([`Privilege`]: READ, WRITE, DDL), per database.

use async_trait::async_trait;
use datafusion_pg_catalog::pg_catalog::context::{PgCatalogContextProvider, Role};
use pgwire::api::auth::sasl::scram::gen_salted_password;

use super::parse::users::UserStmt;
use super::{QueryError, Session};
use crate::controller::client::{ControllerClient, MetadataView};
use crate::controller::error::MetadataError;
use crate::controller::metadata::{Command, CommandResult, Privilege, UserMeta, ALL_DATABASES};
use crate::controller::secret::ScramSecret;
use crate::sqlstate::SqlState;
use std::sync::Arc;

/// The user created when a cluster starts for the first time, as in DolphinDB.
pub const DEFAULT_ADMIN: (&str, &str) = ("admin", "123456");

/// The command that creates [`DEFAULT_ADMIN`] unless it exists.
pub fn bootstrap_admin() -> Command {
    let (name, password) = DEFAULT_ADMIN;
    Command::CreateUser {
        user: new_user(name, password, true),
        if_not_exists: true,
    }
}

/// SCRAM iteration count for new passwords (PostgreSQL's default).
pub const SCRAM_ITERATIONS: u32 = 4096;

/// The verifier of `password` with a fresh salt.
pub fn new_secret(password: &str) -> ScramSecret {
    let salt: [u8; 16] = rand::random();
    let salted = gen_salted_password(password, &salt, SCRAM_ITERATIONS as usize);
    ScramSecret::from_salted_password(salt.to_vec(), SCRAM_ITERATIONS, &salted)
}

/// A user record with a freshly salted password.
pub fn new_user(name: &str, password: &str, is_admin: bool) -> UserMeta {
    UserMeta {
        name: name.to_string(),
        secret: new_secret(password),
        is_admin,
        privileges: Default::default(),
    }
}

/// Whether `password` is `user`'s. The one place a password is checked against what the
/// metadata stores (pgwire logins go through SCRAM instead): the HTTP pages' Basic
/// authentication and the default-password check at start use it.
pub fn verify_password(user: &UserMeta, password: &str) -> bool {
    let s = &user.secret;
    let salted = gen_salted_password(password, &s.salt, s.iterations as usize);
    ScramSecret::from_salted_password(s.salt.clone(), s.iterations, &salted) == *s
}

/// Whether `name` is an admin whose password is `password`.
pub fn verify_admin(metadata: &MetadataView, name: &str, password: &str) -> bool {
    metadata
        .user(name)
        .is_some_and(|u| u.is_admin && verify_password(u, password))
}

/// Whether `admin` still has [`DEFAULT_ADMIN`]'s password, as far as `metadata` tells: also
/// when there is no user yet, since the first start creates admin with it. A node bound to an
/// address other than loopback refuses to serve while this holds (`protectedMode`).
pub fn admin_has_default_password(metadata: &MetadataView) -> bool {
    let (name, password) = DEFAULT_ADMIN;
    match metadata.user(name) {
        Some(user) => verify_password(user, password),
        None => !metadata.has_users(),
    }
}

fn require_admin(session: &Session, what: &str) -> Result<(), QueryError> {
    let metadata = session.engine().controller().metadata();
    if metadata.user(session.user()).is_some_and(|u| u.is_admin) {
        Ok(())
    } else {
        Err(QueryError::other(
            SqlState::INSUFFICIENT_PRIVILEGE,
            format!("permission denied: only an admin can {what}"),
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
            require_admin(session, "manage users")?;
            let password = password.as_ref().ok_or_else(|| {
                QueryError::other(
                    SqlState::INVALID_PARAMETER_VALUE,
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
                require_admin(session, "manage users")?;
            }
            write(
                session,
                Command::AlterUserPassword {
                    name: name.clone(),
                    secret: new_secret(password),
                },
            )
            .await?;
            Ok("ALTER ROLE".into())
        }
        UserStmt::Drop { names, if_exists } => {
            require_admin(session, "manage users")?;
            for name in names {
                if name == session.user() {
                    return Err(QueryError::other(
                        SqlState::OBJECT_IN_USE,
                        "current user cannot be dropped",
                    ));
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
        UserStmt::Grant {
            grant,
            privileges,
            db,
            users,
        } => {
            require_admin(session, "grant or revoke privileges")?;
            // Refuse the whole statement before any of it is applied when a name is unknown
            // now; each user's change is its own command.
            let metadata = session.engine().controller().metadata();
            if db != ALL_DATABASES && metadata.database(db).is_none() {
                return Err(MetadataError::DatabaseNotFound(db.clone()).into());
            }
            if let Some(missing) = users.iter().find(|u| metadata.user(u).is_none()) {
                return Err(MetadataError::UserNotFound(missing.clone()).into());
            }
            for user in users {
                let (user, db, privileges) = (user.clone(), db.clone(), privileges.clone());
                let cmd = if *grant {
                    Command::Grant {
                        user,
                        db,
                        privileges,
                    }
                } else {
                    Command::Revoke {
                        user,
                        db,
                        privileges,
                    }
                };
                write(session, cmd).await?;
            }
            Ok(if *grant { "GRANT" } else { "REVOKE" }.into())
        }
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
        self.controller
            .metadata()
            .users()
            .map(|u| u.name.clone())
            .collect()
    }

    async fn role(&self, name: &str) -> Option<Role> {
        let metadata = self.controller.metadata();
        let u = metadata.user(name)?;
        Some(Role {
            name: u.name.clone(),
            is_superuser: u.is_admin,
            can_login: true,
            can_create_db: metadata
                .check_privilege(&u.name, ALL_DATABASES, Privilege::Ddl)
                .is_ok(),
            can_create_role: u.is_admin,
            can_create_user: u.is_admin,
            can_replication: u.is_admin,
            grants: Vec::new(),
            inherited_roles: Vec::new(),
        })
    }
}
