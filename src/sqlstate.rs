//! SQLSTATEs: the five-character PostgreSQL error codes every error of porpoise carries to the
//! client, and the one trait ([`ErrorCode`]) by which an error says its code and whether a
//! retry may get past it.
//!
//! This module is the bottom layer: every other module may import it, and it imports nothing
//! of porpoise.
//!
//! - [`SqlState`] is a `Copy` value over the code. It holds any well-formed code (five
//!   characters of `0-9A-Z`), not only those named here, so a code raised by another node
//!   (a newer build, a function of the functions crate) survives the network unchanged.
//!   Behaviour is decided by comparing with the named constants (or a code's [class]), never
//!   by comparing strings.
//! - [`ErrorCode`] is implemented by every error type that can reach a client. The pgwire edge
//!   (`frontend::error`) is the only place that turns one into a client error; the Flight
//!   transport (`rpc::RemoteError`) carries its code, message and retryability between nodes.
//!
//! Format: a `SqlState` is serialised as its five-character string (`"22012"`), the same JSON
//! a `String` field gave, so messages of the previous build and of this one read each other.
//!
//! [class]: SqlState::class

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A PostgreSQL SQLSTATE, e.g. `22012` (division_by_zero).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SqlState([u8; 5]);

/// Why a string is not a SQLSTATE.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a SQLSTATE (five characters of 0-9 and A-Z)")]
pub struct InvalidSqlState(pub String);

const fn is_code_byte(b: u8) -> bool {
    b.is_ascii_digit() || b.is_ascii_uppercase()
}

impl SqlState {
    /// The code `code`; a compile-time error (in a `const`) unless it is well-formed.
    const fn known(code: &str) -> SqlState {
        let b = code.as_bytes();
        assert!(b.len() == 5, "a SQLSTATE has five characters");
        let mut i = 0;
        while i < 5 {
            assert!(is_code_byte(b[i]), "a SQLSTATE is made of 0-9 and A-Z");
            i += 1;
        }
        SqlState([b[0], b[1], b[2], b[3], b[4]])
    }

    /// The code of an error type that keeps its code as a `&'static str` literal. A literal
    /// that is not a SQLSTATE (a bug caught in debug builds) reads as [`INTERNAL_ERROR`](Self::INTERNAL_ERROR).
    pub fn from_static(code: &'static str) -> SqlState {
        let parsed = code.parse();
        debug_assert!(parsed.is_ok(), "{code:?} is not a SQLSTATE");
        parsed.unwrap_or(SqlState::INTERNAL_ERROR)
    }

    /// The five characters.
    pub fn code(&self) -> &str {
        // Only ASCII bytes are ever stored (see `known` and `from_str`).
        std::str::from_utf8(&self.0).unwrap_or("XX000")
    }

    /// The class of the code: its first two characters followed by `000` (`08006` →
    /// `08000`, [`CONNECTION_EXCEPTION`](Self::CONNECTION_EXCEPTION)).
    pub fn class(&self) -> SqlState {
        SqlState([self.0[0], self.0[1], b'0', b'0', b'0'])
    }

    /// Whether this is the server's own failure (class XX, internal error, or 58, system
    /// error), which is logged with its details rather than only shown.
    pub fn is_internal(&self) -> bool {
        let class = self.class();
        class == SqlState::INTERNAL_ERROR || class == SqlState::SYSTEM_ERROR
    }
}

/// Named codes: PostgreSQL's condition names, for every code porpoise raises or decides on.
impl SqlState {
    /// Class 08: connection exception.
    pub const CONNECTION_EXCEPTION: SqlState = SqlState::known("08000");
    pub const CONNECTION_FAILURE: SqlState = SqlState::known("08006");
    /// porpoise's in-doubt commit: the controller did not answer a commit, which may or may
    /// not have happened.
    pub const TRANSACTION_RESOLUTION_UNKNOWN: SqlState = SqlState::known("08007");
    pub const PROTOCOL_VIOLATION: SqlState = SqlState::known("08P01");
    pub const FEATURE_NOT_SUPPORTED: SqlState = SqlState::known("0A000");
    /// Class 22: data exception.
    pub const DATA_EXCEPTION: SqlState = SqlState::known("22000");
    pub const NUMERIC_VALUE_OUT_OF_RANGE: SqlState = SqlState::known("22003");
    pub const INVALID_DATETIME_FORMAT: SqlState = SqlState::known("22007");
    pub const DATETIME_FIELD_OVERFLOW: SqlState = SqlState::known("22008");
    pub const INVALID_TIME_ZONE_DISPLACEMENT_VALUE: SqlState = SqlState::known("22009");
    pub const SUBSTRING_ERROR: SqlState = SqlState::known("22011");
    pub const DIVISION_BY_ZERO: SqlState = SqlState::known("22012");
    pub const INVALID_ARGUMENT_FOR_POWER_FUNCTION: SqlState = SqlState::known("2201F");
    pub const CHARACTER_NOT_IN_REPERTOIRE: SqlState = SqlState::known("22021");
    pub const INVALID_PARAMETER_VALUE: SqlState = SqlState::known("22023");
    pub const INVALID_TEXT_REPRESENTATION: SqlState = SqlState::known("22P02");
    pub const INVALID_BINARY_REPRESENTATION: SqlState = SqlState::known("22P03");
    pub const BAD_COPY_FILE_FORMAT: SqlState = SqlState::known("22P04");
    pub const NOT_NULL_VIOLATION: SqlState = SqlState::known("23502");
    pub const CHECK_VIOLATION: SqlState = SqlState::known("23514");
    pub const ACTIVE_SQL_TRANSACTION: SqlState = SqlState::known("25001");
    pub const READ_ONLY_SQL_TRANSACTION: SqlState = SqlState::known("25006");
    pub const NO_ACTIVE_SQL_TRANSACTION: SqlState = SqlState::known("25P01");
    pub const IN_FAILED_SQL_TRANSACTION: SqlState = SqlState::known("25P02");
    pub const INVALID_AUTHORIZATION_SPECIFICATION: SqlState = SqlState::known("28000");
    pub const INVALID_PASSWORD: SqlState = SqlState::known("28P01");
    pub const INVALID_CURSOR_NAME: SqlState = SqlState::known("34000");
    pub const DEPENDENT_OBJECTS_STILL_EXIST: SqlState = SqlState::known("2BP01");
    /// A database that does not exist (porpoise's databases are PostgreSQL's schemas).
    pub const INVALID_SCHEMA_NAME: SqlState = SqlState::known("3F000");
    pub const SERIALIZATION_FAILURE: SqlState = SqlState::known("40001");
    pub const SYNTAX_ERROR_OR_ACCESS_RULE_VIOLATION: SqlState = SqlState::known("42000");
    pub const INSUFFICIENT_PRIVILEGE: SqlState = SqlState::known("42501");
    pub const SYNTAX_ERROR: SqlState = SqlState::known("42601");
    pub const DUPLICATE_COLUMN: SqlState = SqlState::known("42701");
    pub const AMBIGUOUS_COLUMN: SqlState = SqlState::known("42702");
    pub const UNDEFINED_COLUMN: SqlState = SqlState::known("42703");
    pub const UNDEFINED_OBJECT: SqlState = SqlState::known("42704");
    pub const DUPLICATE_OBJECT: SqlState = SqlState::known("42710");
    pub const GROUPING_ERROR: SqlState = SqlState::known("42803");
    pub const DATATYPE_MISMATCH: SqlState = SqlState::known("42804");
    pub const WRONG_OBJECT_TYPE: SqlState = SqlState::known("42809");
    pub const UNDEFINED_FUNCTION: SqlState = SqlState::known("42883");
    pub const UNDEFINED_TABLE: SqlState = SqlState::known("42P01");
    pub const UNDEFINED_PARAMETER: SqlState = SqlState::known("42P02");
    pub const DUPLICATE_CURSOR: SqlState = SqlState::known("42P03");
    /// A database that already exists.
    pub const DUPLICATE_SCHEMA: SqlState = SqlState::known("42P06");
    pub const DUPLICATE_TABLE: SqlState = SqlState::known("42P07");
    pub const INVALID_TABLE_DEFINITION: SqlState = SqlState::known("42P16");
    pub const DISK_FULL: SqlState = SqlState::known("53100");
    pub const OUT_OF_MEMORY: SqlState = SqlState::known("53200");
    pub const TOO_MANY_CONNECTIONS: SqlState = SqlState::known("53300");
    pub const PROGRAM_LIMIT_EXCEEDED: SqlState = SqlState::known("54000");
    pub const STATEMENT_TOO_COMPLEX: SqlState = SqlState::known("54001");
    pub const OBJECT_NOT_IN_PREREQUISITE_STATE: SqlState = SqlState::known("55000");
    pub const OBJECT_IN_USE: SqlState = SqlState::known("55006");
    pub const CANT_CHANGE_RUNTIME_PARAM: SqlState = SqlState::known("55P02");
    pub const QUERY_CANCELED: SqlState = SqlState::known("57014");
    pub const ADMIN_SHUTDOWN: SqlState = SqlState::known("57P01");
    pub const CANNOT_CONNECT_NOW: SqlState = SqlState::known("57P03");
    /// Class 58: system error (errors external to the server).
    pub const SYSTEM_ERROR: SqlState = SqlState::known("58000");
    pub const IO_ERROR: SqlState = SqlState::known("58030");
    pub const UNDEFINED_FILE: SqlState = SqlState::known("58P01");
    pub const SNAPSHOT_TOO_OLD: SqlState = SqlState::known("72000");
    pub const CONFIG_FILE_ERROR: SqlState = SqlState::known("F0000");
    /// Class XX: internal error.
    pub const INTERNAL_ERROR: SqlState = SqlState::known("XX000");
    pub const DATA_CORRUPTED: SqlState = SqlState::known("XX001");

    /// Every named code.
    pub const ALL: &'static [SqlState] = &[
        SqlState::CONNECTION_EXCEPTION,
        SqlState::CONNECTION_FAILURE,
        SqlState::TRANSACTION_RESOLUTION_UNKNOWN,
        SqlState::PROTOCOL_VIOLATION,
        SqlState::FEATURE_NOT_SUPPORTED,
        SqlState::DATA_EXCEPTION,
        SqlState::NUMERIC_VALUE_OUT_OF_RANGE,
        SqlState::INVALID_DATETIME_FORMAT,
        SqlState::DATETIME_FIELD_OVERFLOW,
        SqlState::INVALID_TIME_ZONE_DISPLACEMENT_VALUE,
        SqlState::SUBSTRING_ERROR,
        SqlState::DIVISION_BY_ZERO,
        SqlState::INVALID_ARGUMENT_FOR_POWER_FUNCTION,
        SqlState::CHARACTER_NOT_IN_REPERTOIRE,
        SqlState::INVALID_PARAMETER_VALUE,
        SqlState::INVALID_TEXT_REPRESENTATION,
        SqlState::INVALID_BINARY_REPRESENTATION,
        SqlState::BAD_COPY_FILE_FORMAT,
        SqlState::NOT_NULL_VIOLATION,
        SqlState::CHECK_VIOLATION,
        SqlState::READ_ONLY_SQL_TRANSACTION,
        SqlState::ACTIVE_SQL_TRANSACTION,
        SqlState::IN_FAILED_SQL_TRANSACTION,
        SqlState::NO_ACTIVE_SQL_TRANSACTION,
        SqlState::INVALID_AUTHORIZATION_SPECIFICATION,
        SqlState::INVALID_PASSWORD,
        SqlState::INVALID_CURSOR_NAME,
        SqlState::DEPENDENT_OBJECTS_STILL_EXIST,
        SqlState::INVALID_SCHEMA_NAME,
        SqlState::SERIALIZATION_FAILURE,
        SqlState::SYNTAX_ERROR_OR_ACCESS_RULE_VIOLATION,
        SqlState::INSUFFICIENT_PRIVILEGE,
        SqlState::SYNTAX_ERROR,
        SqlState::DUPLICATE_COLUMN,
        SqlState::AMBIGUOUS_COLUMN,
        SqlState::UNDEFINED_COLUMN,
        SqlState::UNDEFINED_OBJECT,
        SqlState::DUPLICATE_OBJECT,
        SqlState::GROUPING_ERROR,
        SqlState::DATATYPE_MISMATCH,
        SqlState::WRONG_OBJECT_TYPE,
        SqlState::UNDEFINED_FUNCTION,
        SqlState::UNDEFINED_TABLE,
        SqlState::UNDEFINED_PARAMETER,
        SqlState::DUPLICATE_CURSOR,
        SqlState::DUPLICATE_SCHEMA,
        SqlState::DUPLICATE_TABLE,
        SqlState::INVALID_TABLE_DEFINITION,
        SqlState::DISK_FULL,
        SqlState::OUT_OF_MEMORY,
        SqlState::TOO_MANY_CONNECTIONS,
        SqlState::PROGRAM_LIMIT_EXCEEDED,
        SqlState::STATEMENT_TOO_COMPLEX,
        SqlState::OBJECT_NOT_IN_PREREQUISITE_STATE,
        SqlState::OBJECT_IN_USE,
        SqlState::CANT_CHANGE_RUNTIME_PARAM,
        SqlState::QUERY_CANCELED,
        SqlState::ADMIN_SHUTDOWN,
        SqlState::CANNOT_CONNECT_NOW,
        SqlState::SYSTEM_ERROR,
        SqlState::IO_ERROR,
        SqlState::UNDEFINED_FILE,
        SqlState::SNAPSHOT_TOO_OLD,
        SqlState::CONFIG_FILE_ERROR,
        SqlState::INTERNAL_ERROR,
        SqlState::DATA_CORRUPTED,
    ];
}

impl FromStr for SqlState {
    type Err = InvalidSqlState;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.as_bytes() {
            &[a, b, c, d, e] if [a, b, c, d, e].into_iter().all(is_code_byte) => {
                Ok(SqlState([a, b, c, d, e]))
            }
            _ => Err(InvalidSqlState(s.to_string())),
        }
    }
}

impl fmt::Display for SqlState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl fmt::Debug for SqlState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SqlState({})", self.code())
    }
}

impl Serialize for SqlState {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.code())
    }
}

/// Reads the five-character string. A string that is not a SQLSTATE reads as
/// [`SqlState::INTERNAL_ERROR`] instead of failing the whole message: an error reported by
/// another node must not turn into an error about decoding it.
impl<'de> Deserialize<'de> for SqlState {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Ok(s.parse().unwrap_or(SqlState::INTERNAL_ERROR))
    }
}

/// An error that can reach a client: its SQLSTATE, whether a retry may get past it, and the
/// message the client sees.
pub trait ErrorCode: std::error::Error {
    /// The PostgreSQL SQLSTATE of this error.
    fn sqlstate(&self) -> SqlState;

    /// Whether the same statement (or call) may succeed if simply repeated, possibly on
    /// another node or once a controller leader is elected. An error whose outcome is unknown
    /// (an in-doubt commit) is not: repeating it could apply it twice.
    fn retryable(&self) -> bool;

    /// The message for the client: the error's text, without wrappers that only say which
    /// layer passed it on.
    fn client_message(&self) -> String {
        self.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_parse_display_and_serialise_as_their_five_characters() {
        for code in SqlState::ALL {
            assert_eq!(code.code().parse::<SqlState>(), Ok(*code));
            assert_eq!(code.to_string(), code.code());
            let json = serde_json::to_string(code).unwrap();
            assert_eq!(json, format!("\"{code}\""));
            assert_eq!(serde_json::from_str::<SqlState>(&json).unwrap(), *code);
        }
        let mut sorted = SqlState::ALL.to_vec();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), SqlState::ALL.len(), "a code is named twice");
    }

    #[test]
    fn any_well_formed_code_is_kept_and_malformed_ones_refused() {
        // Not named here, still carried unchanged.
        let other: SqlState = "HV000".parse().unwrap();
        assert_eq!(other.code(), "HV000");
        for bad in ["", "2201", "220123", "2201f", "22 12", "22é1"] {
            assert!(bad.parse::<SqlState>().is_err(), "{bad:?}");
        }
        // On the wire a malformed code reads as an internal error, not as a decoding failure.
        assert_eq!(
            serde_json::from_str::<SqlState>("\"oops\"").unwrap(),
            SqlState::INTERNAL_ERROR
        );
    }

    #[test]
    fn classes_group_codes() {
        assert_eq!(
            SqlState::CONNECTION_FAILURE.class(),
            SqlState::CONNECTION_EXCEPTION
        );
        assert_eq!(
            SqlState::TRANSACTION_RESOLUTION_UNKNOWN.class(),
            SqlState::CONNECTION_EXCEPTION
        );
        assert!(SqlState::DATA_CORRUPTED.is_internal());
        assert!(SqlState::IO_ERROR.is_internal());
        assert!(!SqlState::DIVISION_BY_ZERO.is_internal());
    }
}
