//! PostgreSQL's input functions for the types COPY fills, one file per type family: each
//! reads a field's bytes into the column's native value or says why it cannot ([`Bad`]).

mod boolean;
mod bytea;
mod float;
mod integer;
mod numeric;
pub(super) mod recv;
mod temporal;

pub(super) use boolean::parse_bool;
pub(super) use bytea::parse_bytea;
pub(super) use float::{parse_f32, parse_f64};
pub(super) use integer::parse_int;
pub(super) use numeric::parse_decimal;
pub(super) use temporal::{parse_date, parse_time, parse_timestamp};

/// Why a field is not a valid value of its column's type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Bad {
    /// `invalid input syntax for type T` (22P02).
    Syntax,
    /// `value "v" is out of range for type T`, for integers (22003).
    IntRange,
    /// `"v" is out of range for type T`, for floats (22003).
    FloatRange,
    /// `date/time field value out of range` (22008).
    FieldRange,
    /// `date out of range` (22008).
    DateRange,
    /// `timestamp out of range` (22008).
    TimestampRange,
    /// `time zone displacement out of range` (22009).
    TimeZoneRange,
    /// `numeric field overflow` (22003).
    NumericOverflow,
    /// Not valid UTF-8, or a NUL byte (22021).
    Encoding,
    /// Any other error, with its SQLSTATE and message.
    Other(&'static str, String),
}

/// PostgreSQL's `isspace` in the C locale.
#[inline]
fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

#[inline]
fn trim_space(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if !is_space(*first) {
            break;
        }
        s = rest;
    }
    while let [rest @ .., last] = s {
        if !is_space(*last) {
            break;
        }
        s = rest;
    }
    s
}

/// The message for bytes that are not UTF-8 text PostgreSQL accepts (which excludes NUL),
/// naming the offending bytes like `report_invalid_encoding`.
pub(super) fn invalid_encoding(value: &[u8]) -> Option<String> {
    let bad_at = match std::str::from_utf8(value) {
        Ok(_) => value.iter().position(|&b| b == 0)?,
        Err(error) => {
            let valid = error.valid_up_to();
            value[..valid].iter().position(|&b| b == 0).unwrap_or(valid)
        }
    };
    let len = match value[bad_at] {
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf7 => 4,
        _ => 1,
    };
    let bytes: Vec<String> = value[bad_at..(bad_at + len).min(value.len())]
        .iter()
        .map(|b| format!("0x{b:02x}"))
        .collect();
    Some(format!(
        "invalid byte sequence for encoding \"UTF8\": {}",
        bytes.join(" ")
    ))
}

/// A text value: valid UTF-8 without NUL bytes.
#[inline]
pub(super) fn text(value: &[u8]) -> Result<&str, Bad> {
    match std::str::from_utf8(value) {
        Ok(s) if !value.contains(&0) => Ok(s),
        _ => Err(Bad::Encoding),
    }
}
