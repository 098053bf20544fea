//! What a user may do in a database, as grants record it.

use serde::{Deserialize, Serialize};

/// The database name of grants that cover every database.
pub const ALL_DATABASES: &str = "*";

/// What a user may do in a database.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Privilege {
    /// Query its tables (`SELECT`, `loadTable`, the tables a join or subquery reads).
    Read,
    /// Change their rows: `INSERT`, `UPDATE`, `DELETE`, `COPY ... FROM`, `TRUNCATE`.
    Write,
    /// Change the schema: create, alter and drop its tables, drop the database. On `*` it
    /// also allows `CREATE DATABASE`.
    Ddl,
}

impl Privilege {
    /// Every privilege, in order.
    pub const ALL: [Privilege; 3] = [Privilege::Read, Privilege::Write, Privilege::Ddl];
}

impl std::fmt::Display for Privilege {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Privilege::Read => "READ",
            Privilege::Write => "WRITE",
            Privilege::Ddl => "DDL",
        })
    }
}
