//! Column types: the DolphinDB and PostgreSQL names a user may write, and the Arrow type each
//! one is stored as.
//!
//! Where the two vocabularies use the same word for different things, DolphinDB wins, because
//! the DDL is DolphinDB's: `FLOAT` is 4 bytes, `CHAR` is a 1-byte integer, `TIMESTAMP` has
//! millisecond precision and `TIME` counts milliseconds. PostgreSQL users get their meaning with
//! the unambiguous spellings (`float8`, `double precision`, `char(n)`, `timestamp(6)`).

use std::fmt;

use arrow::datatypes::{DataType, TimeUnit};
use serde::{Deserialize, Serialize};

use crate::sqlstate::{ErrorCode, SqlState};

/// A column's logical type. Persisted in the controller's metadata (serde names are stable).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ColumnType {
    Bool,
    /// DolphinDB CHAR: a 1-byte integer.
    Char,
    Short,
    Int,
    Long,
    Float,
    Double,
    /// DolphinDB SYMBOL: a string drawn from a small set (stored as plain UTF-8).
    Symbol,
    String,
    Blob,
    Date,
    /// A month, stored as the date of its first day.
    Month,
    /// Milliseconds since midnight.
    Time,
    /// Minutes since midnight, stored as seconds since midnight.
    Minute,
    /// Seconds since midnight.
    Second,
    /// Seconds since the epoch.
    DateTime,
    /// Milliseconds since the epoch.
    Timestamp,
    /// Microseconds since the epoch (PostgreSQL `timestamp(6)`).
    TimestampMicros,
    /// Nanoseconds since the epoch.
    NanoTimestamp,
    /// Nanoseconds since midnight.
    NanoTime,
    Decimal {
        precision: u8,
        scale: i8,
    },
}

/// Why a type name could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TypeError {
    #[error("type \"{0}\" does not exist")]
    Unknown(String),
    #[error("type \"{0}\" is not supported")]
    Unsupported(String),
    #[error("invalid type modifier for \"{name}\": {reason}")]
    BadModifier { name: String, reason: String },
}

impl ErrorCode for TypeError {
    fn sqlstate(&self) -> SqlState {
        match self {
            TypeError::Unknown(_) => SqlState::UNDEFINED_OBJECT,
            TypeError::Unsupported(_) => SqlState::FEATURE_NOT_SUPPORTED,
            TypeError::BadModifier { .. } => SqlState::INVALID_PARAMETER_VALUE,
        }
    }

    fn retryable(&self) -> bool {
        false
    }
}

impl ColumnType {
    /// Resolves a type name as written in DDL (`SYMBOL`, `double precision`, `numeric`, ...)
    /// with its modifiers (`numeric(10,2)` → `[10, 2]`).
    pub fn from_name(name: &str, args: &[i64]) -> Result<Self, TypeError> {
        let lower = name.trim().to_ascii_lowercase();
        let words: Vec<&str> = lower.split_whitespace().collect();
        let key = words.join(" ");
        let no_args = |t: ColumnType| -> Result<ColumnType, TypeError> {
            if args.is_empty() {
                Ok(t)
            } else {
                Err(TypeError::BadModifier {
                    name: name.to_string(),
                    reason: "this type takes no modifier".into(),
                })
            }
        };
        let t = match key.as_str() {
            "bool" | "boolean" => no_args(ColumnType::Bool)?,
            "char" if args.is_empty() => ColumnType::Char,
            // PostgreSQL char(n) / varchar(n) / character varying(n): text with a length limit
            // that we do not enforce.
            "char" | "character" | "varchar" | "character varying" | "bpchar" => ColumnType::String,
            "short" | "int2" | "smallint" => no_args(ColumnType::Short)?,
            "int" | "int4" | "integer" => no_args(ColumnType::Int)?,
            "long" | "int8" | "bigint" => no_args(ColumnType::Long)?,
            // PostgreSQL's float(p): p binary digits, real up to 24, double precision up to 53
            // (SQLAlchemy and pandas write `FLOAT(53)`).
            "float" => match args {
                [] => ColumnType::Float,
                [p] if (1..=24).contains(p) => ColumnType::Float,
                [p] if (25..=53).contains(p) => ColumnType::Double,
                _ => {
                    return Err(TypeError::BadModifier {
                        name: name.to_string(),
                        reason: "precision must be between 1 and 53 bits".into(),
                    })
                }
            },
            "float4" | "real" => no_args(ColumnType::Float)?,
            "double" | "float8" | "double precision" => no_args(ColumnType::Double)?,
            "symbol" => no_args(ColumnType::Symbol)?,
            "string" | "text" => no_args(ColumnType::String)?,
            "blob" | "bytea" => no_args(ColumnType::Blob)?,
            "date" => no_args(ColumnType::Date)?,
            "month" => no_args(ColumnType::Month)?,
            "time" | "time without time zone" => match args {
                [] | [3] => ColumnType::Time,
                [0] => ColumnType::Second,
                [6] | [9] => ColumnType::NanoTime,
                _ => return Err(bad_precision(name)),
            },
            "minute" => no_args(ColumnType::Minute)?,
            "second" => no_args(ColumnType::Second)?,
            "datetime" => no_args(ColumnType::DateTime)?,
            "timestamp" | "timestamp without time zone" => match args {
                [] | [3] => ColumnType::Timestamp,
                [0] => ColumnType::DateTime,
                [6] => ColumnType::TimestampMicros,
                [9] => ColumnType::NanoTimestamp,
                _ => return Err(bad_precision(name)),
            },
            "nanotimestamp" => no_args(ColumnType::NanoTimestamp)?,
            "nanotime" => no_args(ColumnType::NanoTime)?,
            "decimal" | "numeric" => match args {
                [] => ColumnType::Decimal {
                    precision: 38,
                    scale: 10,
                },
                [p] => decimal(name, *p, 0)?,
                [p, s] => decimal(name, *p, *s)?,
                _ => return Err(bad_precision(name)),
            },
            "decimal32" => decimal_scaled(name, 9, args)?,
            "decimal64" => decimal_scaled(name, 18, args)?,
            "decimal128" => decimal_scaled(name, 38, args)?,
            "uuid"
            | "ipaddr"
            | "int128"
            | "datehour"
            | "complex"
            | "point"
            | "any"
            | "json"
            | "jsonb"
            | "timestamptz"
            | "timestamp with time zone"
            | "interval" => return Err(TypeError::Unsupported(name.to_string())),
            _ => return Err(TypeError::Unknown(name.to_string())),
        };
        Ok(t)
    }

    /// The Arrow type values of this column are stored and computed as.
    pub fn arrow_type(&self) -> DataType {
        match self {
            ColumnType::Bool => DataType::Boolean,
            ColumnType::Char => DataType::Int8,
            ColumnType::Short => DataType::Int16,
            ColumnType::Int => DataType::Int32,
            ColumnType::Long => DataType::Int64,
            ColumnType::Float => DataType::Float32,
            ColumnType::Double => DataType::Float64,
            ColumnType::Symbol | ColumnType::String => DataType::Utf8,
            ColumnType::Blob => DataType::Binary,
            ColumnType::Date | ColumnType::Month => DataType::Date32,
            ColumnType::Time => DataType::Time32(TimeUnit::Millisecond),
            ColumnType::Minute | ColumnType::Second => DataType::Time32(TimeUnit::Second),
            ColumnType::NanoTime => DataType::Time64(TimeUnit::Nanosecond),
            ColumnType::DateTime => DataType::Timestamp(TimeUnit::Second, None),
            ColumnType::Timestamp => DataType::Timestamp(TimeUnit::Millisecond, None),
            ColumnType::TimestampMicros => DataType::Timestamp(TimeUnit::Microsecond, None),
            ColumnType::NanoTimestamp => DataType::Timestamp(TimeUnit::Nanosecond, None),
            ColumnType::Decimal { precision, scale } => DataType::Decimal128(*precision, *scale),
        }
    }

    /// Whether DolphinDB allows this type as a VALUE/RANGE/LIST partition column
    /// (floating point is refused: "The data type DOUBLE can't be used for a partition column").
    pub fn can_partition(&self) -> bool {
        !matches!(
            self,
            ColumnType::Float
                | ColumnType::Double
                | ColumnType::Bool
                | ColumnType::Blob
                | ColumnType::Decimal { .. }
        )
    }

    /// DolphinDB's type id, as shown by `schema()`.
    pub fn dolphin_id(&self) -> i32 {
        match self {
            ColumnType::Bool => 1,
            ColumnType::Char => 2,
            ColumnType::Short => 3,
            ColumnType::Int => 4,
            ColumnType::Long => 5,
            ColumnType::Date => 6,
            ColumnType::Month => 7,
            ColumnType::Time => 8,
            ColumnType::Minute => 9,
            ColumnType::Second => 10,
            ColumnType::DateTime => 11,
            ColumnType::Timestamp | ColumnType::TimestampMicros => 12,
            ColumnType::NanoTime => 13,
            ColumnType::NanoTimestamp => 14,
            ColumnType::Float => 15,
            ColumnType::Double => 16,
            ColumnType::Symbol => 17,
            ColumnType::String => 18,
            ColumnType::Blob => 32,
            ColumnType::Decimal { .. } => 39,
        }
    }
}

impl fmt::Display for ColumnType {
    /// The DolphinDB spelling, used by `schema()` and error messages.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            ColumnType::Bool => "BOOL",
            ColumnType::Char => "CHAR",
            ColumnType::Short => "SHORT",
            ColumnType::Int => "INT",
            ColumnType::Long => "LONG",
            ColumnType::Float => "FLOAT",
            ColumnType::Double => "DOUBLE",
            ColumnType::Symbol => "SYMBOL",
            ColumnType::String => "STRING",
            ColumnType::Blob => "BLOB",
            ColumnType::Date => "DATE",
            ColumnType::Month => "MONTH",
            ColumnType::Time => "TIME",
            ColumnType::Minute => "MINUTE",
            ColumnType::Second => "SECOND",
            ColumnType::DateTime => "DATETIME",
            ColumnType::Timestamp => "TIMESTAMP",
            ColumnType::TimestampMicros => "TIMESTAMP(6)",
            ColumnType::NanoTimestamp => "NANOTIMESTAMP",
            ColumnType::NanoTime => "NANOTIME",
            ColumnType::Decimal { precision, scale } => {
                return write!(f, "DECIMAL({precision},{scale})")
            }
        };
        f.write_str(s)
    }
}

fn bad_precision(name: &str) -> TypeError {
    TypeError::BadModifier {
        name: name.to_string(),
        reason: "unsupported precision".into(),
    }
}

fn decimal(name: &str, p: i64, s: i64) -> Result<ColumnType, TypeError> {
    if !(1..=38).contains(&p) || s < 0 || s > p {
        return Err(TypeError::BadModifier {
            name: name.to_string(),
            reason: format!("precision {p} must be in 1..38 and scale {s} in 0..precision"),
        });
    }
    Ok(ColumnType::Decimal {
        precision: p as u8,
        scale: s as i8,
    })
}

/// DolphinDB's DECIMAL32(S)/DECIMAL64(S)/DECIMAL128(S): fixed precision, the argument is the scale.
fn decimal_scaled(name: &str, precision: i64, args: &[i64]) -> Result<ColumnType, TypeError> {
    match args {
        [s] => decimal(name, precision, *s),
        _ => Err(TypeError::BadModifier {
            name: name.to_string(),
            reason: "expects one argument, the scale".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dolphin_and_postgres_names_resolve() {
        let cases: &[(&str, &[i64], ColumnType)] = &[
            ("SYMBOL", &[], ColumnType::Symbol),
            ("DATETIME", &[], ColumnType::DateTime),
            ("DOUBLE", &[], ColumnType::Double),
            ("double precision", &[], ColumnType::Double),
            ("float8", &[], ColumnType::Double),
            ("FLOAT", &[], ColumnType::Float),
            ("FLOAT", &[53], ColumnType::Double),
            ("float", &[24], ColumnType::Float),
            ("int4", &[], ColumnType::Int),
            ("text", &[], ColumnType::String),
            ("varchar", &[20], ColumnType::String),
            ("timestamp", &[], ColumnType::Timestamp),
            ("timestamp", &[6], ColumnType::TimestampMicros),
            (
                "numeric",
                &[10, 2],
                ColumnType::Decimal {
                    precision: 10,
                    scale: 2,
                },
            ),
            (
                "DECIMAL32",
                &[4],
                ColumnType::Decimal {
                    precision: 9,
                    scale: 4,
                },
            ),
        ];
        for (name, args, want) in cases {
            assert_eq!(
                ColumnType::from_name(name, args).as_ref(),
                Ok(want),
                "{name}"
            );
        }
    }

    #[test]
    fn bad_names_are_errors() {
        assert!(matches!(
            ColumnType::from_name("wibble", &[]),
            Err(TypeError::Unknown(_))
        ));
        assert!(matches!(
            ColumnType::from_name("uuid", &[]),
            Err(TypeError::Unsupported(_))
        ));
        assert!(ColumnType::from_name("numeric", &[50, 2]).is_err());
        assert!(ColumnType::from_name("int", &[3]).is_err());
    }
}
