//! DolphinDB literal values and their written forms.
//!
//! This module owns [`Literal`], the value type the DDL parser ([`super::ddl`]) produces for
//! partition schemes and options, and everything needed to read and print DolphinDB's literal
//! syntax: integers and floats, `2023.01.08`-style temporal literals, PostgreSQL typed
//! literals such as `DATE '2023-01-08'`, and range vectors `a..b`. The dates and times inside
//! temporal literals are read by [`super::temporal`] (in its DolphinDB and SQL syntaxes); this
//! module decides which [`Literal`] variant a spelling is. Every function is total: nothing in
//! this module panics on any input.
//!
//! # Temporal literal forms
//!
//! | written                          | value                                        |
//! |----------------------------------|----------------------------------------------|
//! | `2023.01.08`                     | [`Literal::Date`]                            |
//! | `2023.01M`                       | [`Literal::Month`]                           |
//! | `09:30m`                         | [`Literal::Minute`]                          |
//! | `09:30:00`                       | [`Literal::Second`]                          |
//! | `09:30:00.5`, `09:30:00.000`     | [`Literal::Time`] (1 to 3 fractional digits) |
//! | `2023.01.08T09:30:00`            | [`Literal::DateTime`]                        |
//! | `2023.01.08T09:30:00.123`        | [`Literal::Timestamp`] (1 to 3 digits)       |
//! | `2023.01.08T09:30:00.123456789`  | [`Literal::NanoTimestamp`] (4 to 9 digits)   |
//!
//! The TIME/SECOND rule follows DolphinDB: a time of day *without* a fractional part is a
//! SECOND, one *with* a fractional part (1 to 3 digits, right-padded to milliseconds, so
//! `.5` is 500 ms) is a TIME. DolphinDB would read 4 to 9 digits as a NANOTIME, which porpoise
//! does not have, so that is an error. The SQL spelling `TIME '09:30:00'` is always a TIME,
//! because the type is named explicitly.

use std::fmt;

use super::temporal::{self, DateSyntax, TimeOfDay, TimeSyntax};

/// A literal value from a DDL statement: a partition scheme element or an option value.
///
/// Temporal values are stored in DolphinDB's own units so that they can be printed back
/// exactly as DolphinDB would print them (see [`fmt::Display`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    /// `NULL`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer such as `42` or `-5`.
    Int(i64),
    /// A number with a fraction or an exponent, such as `1.5` or `-2e3`.
    Float(f64),
    /// A quoted string: `'x'` (SQL) or `"x"` (DolphinDB).
    String(String),
    /// A DolphinDB symbol: `` `x ``.
    Symbol(String),
    /// Days since 1970-01-01: `2023.01.08` or `DATE '2023-01-08'`.
    Date(i32),
    /// Months since 0000-01, i.e. `year * 12 + (month - 1)`: `2023.01M`.
    Month(i32),
    /// Milliseconds since midnight: `09:30:00.000` or `TIME '09:30:00'`.
    Time(i64),
    /// Minutes since midnight: `09:30m`.
    Minute(i32),
    /// Seconds since midnight: `09:30:00`.
    Second(i32),
    /// Seconds since the Unix epoch: `2023.01.08T09:30:00`.
    DateTime(i64),
    /// Milliseconds since the Unix epoch: `2023.01.08T09:30:00.000` or `TIMESTAMP '...'`.
    Timestamp(i64),
    /// Nanoseconds since the Unix epoch: `2023.01.08T09:30:00.000000000`.
    NanoTimestamp(i64),
    /// A bare word such as `SYMBOL` or `ALL`, where the grammar allows one.
    Ident(String),
}

/// Why a literal could not be read. The message is lowercase and names the offending text;
/// the DDL parser attaches the position.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct LiteralError(pub String);

const SECONDS_PER_DAY: i64 = 86_400;
const MILLIS_PER_DAY: i64 = SECONDS_PER_DAY * 1_000;
const NANOS_PER_DAY: i64 = SECONDS_PER_DAY * 1_000_000_000;

impl Literal {
    /// The names held by an option value such as `sortColumns`: a symbol vector
    /// `` `a`b `` is stored as `String("a,b")` (see the DDL parser), a single `` `a `` as
    /// `Symbol("a")`, and a plain word or string works too. Returns `None` for other values.
    pub fn name_list(&self) -> Option<Vec<String>> {
        match self {
            Literal::Symbol(name) | Literal::Ident(name) => Some(vec![name.clone()]),
            Literal::String(names) => {
                Some(names.split(',').map(|n| n.trim().to_string()).collect())
            }
            _ => None,
        }
    }

    /// The integer a range vector counts with, for the variants that have one.
    fn ordinal(&self) -> Option<i64> {
        match self {
            Literal::Int(v)
            | Literal::Time(v)
            | Literal::DateTime(v)
            | Literal::Timestamp(v)
            | Literal::NanoTimestamp(v) => Some(*v),
            Literal::Date(v) | Literal::Month(v) | Literal::Minute(v) | Literal::Second(v) => {
                Some(i64::from(*v))
            }
            _ => None,
        }
    }

    /// A literal of the same variant as `self` holding `value`; the inverse of `ordinal`.
    fn with_ordinal(&self, value: i64) -> Option<Literal> {
        let narrow = || i32::try_from(value).ok();
        match self {
            Literal::Int(_) => Some(Literal::Int(value)),
            Literal::Time(_) => Some(Literal::Time(value)),
            Literal::DateTime(_) => Some(Literal::DateTime(value)),
            Literal::Timestamp(_) => Some(Literal::Timestamp(value)),
            Literal::NanoTimestamp(_) => Some(Literal::NanoTimestamp(value)),
            Literal::Date(_) => narrow().map(Literal::Date),
            Literal::Month(_) => narrow().map(Literal::Month),
            Literal::Minute(_) => narrow().map(Literal::Minute),
            Literal::Second(_) => narrow().map(Literal::Second),
            _ => None,
        }
    }
}

/// Prints the literal in DolphinDB syntax, so that error messages quote values the way the
/// user wrote them (`2023.01.08`, `09:30m`, `` `IBM ``, `'text'`).
impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Literal::Null => f.write_str("NULL"),
            Literal::Bool(b) => write!(f, "{b}"),
            Literal::Int(v) => write!(f, "{v}"),
            // `{:?}` keeps the ".0" of whole floats, so 1.0 does not print like the int 1.
            Literal::Float(v) => write!(f, "{v:?}"),
            Literal::String(s) => write!(f, "'{}'", s.replace('\'', "''")),
            Literal::Symbol(s) => write!(f, "`{s}"),
            Literal::Ident(s) => f.write_str(s),
            Literal::Date(days) => write_date(f, i64::from(*days)),
            Literal::Month(months) => {
                let months = i64::from(*months);
                write!(
                    f,
                    "{:04}.{:02}M",
                    months.div_euclid(12),
                    months.rem_euclid(12) + 1
                )
            }
            Literal::Minute(minutes) => {
                let minutes = i64::from(*minutes);
                write!(
                    f,
                    "{:02}:{:02}m",
                    minutes.div_euclid(60),
                    minutes.rem_euclid(60)
                )
            }
            Literal::Second(seconds) => write_hms(f, i64::from(*seconds)),
            Literal::Time(ms) => {
                write_hms(f, ms.div_euclid(1_000))?;
                write!(f, ".{:03}", ms.rem_euclid(1_000))
            }
            Literal::DateTime(seconds) => {
                write_date(f, seconds.div_euclid(SECONDS_PER_DAY))?;
                f.write_str("T")?;
                write_hms(f, seconds.rem_euclid(SECONDS_PER_DAY))
            }
            Literal::Timestamp(ms) => {
                write_date(f, ms.div_euclid(MILLIS_PER_DAY))?;
                let in_day = ms.rem_euclid(MILLIS_PER_DAY);
                f.write_str("T")?;
                write_hms(f, in_day / 1_000)?;
                write!(f, ".{:03}", in_day % 1_000)
            }
            Literal::NanoTimestamp(ns) => {
                write_date(f, ns.div_euclid(NANOS_PER_DAY))?;
                let in_day = ns.rem_euclid(NANOS_PER_DAY);
                f.write_str("T")?;
                write_hms(f, in_day / 1_000_000_000)?;
                write!(f, ".{:09}", in_day % 1_000_000_000)
            }
        }
    }
}

/// Writes `days` since the epoch as `yyyy.MM.dd`.
fn write_date(f: &mut fmt::Formatter<'_>, days: i64) -> fmt::Result {
    let (year, month, day) = civil_from_days(days);
    write!(f, "{year:04}.{month:02}.{day:02}")
}

/// Writes seconds since midnight as `HH:mm:ss` (wrapping values outside one day).
fn write_hms(f: &mut fmt::Formatter<'_>, seconds: i64) -> fmt::Result {
    let seconds = seconds.rem_euclid(SECONDS_PER_DAY);
    write!(
        f,
        "{:02}:{:02}:{:02}",
        seconds / 3_600,
        seconds / 60 % 60,
        seconds % 60
    )
}

pub use crate::catalog::calendar::{civil_from_days, days_from_civil, days_in_month, is_leap_year};

// ---------------------------------------------------------------------------------------
// Lexing and parsing DolphinDB literals
// ---------------------------------------------------------------------------------------

/// The length in bytes of the numeric or temporal literal at the start of `rest`, which
/// the lexer calls when it sees a digit. A DolphinDB literal is a run of ASCII letters,
/// digits, `_`, `:` and `.` (`2023.01.08T09:30:00.123`, `09:30m`, `1.5e-3`), but it stops
/// before `..` so that `1..10` lexes as `1`, `..`, `10`. A sign belongs to the literal only
/// as an exponent sign (`1e-5`). The run is classified by [`parse_numeric_literal`].
pub fn numeric_token_len(rest: &str) -> usize {
    let bytes = rest.as_bytes();
    let mut len = 0;
    while let Some(&byte) = bytes.get(len) {
        let belongs = match byte {
            b'.' => bytes.get(len + 1) != Some(&b'.'),
            b'+' | b'-' => {
                // `1e-5`, `2.5E+3`: the sign directly follows an `e` that follows a mantissa.
                len >= 2
                    && matches!(bytes[len - 1], b'e' | b'E')
                    && bytes[..len - 1]
                        .iter()
                        .all(|b| b.is_ascii_digit() || *b == b'.')
            }
            b':' | b'_' => true,
            _ => byte.is_ascii_alphanumeric(),
        };
        if !belongs {
            break;
        }
        len += 1;
    }
    len
}

/// Reads a numeric or temporal literal as lexed by [`numeric_token_len`]; `negative` says
/// whether a `-` preceded it. Only integers and floats may be negative.
///
/// The shape decides the type: `T` → DATETIME/TIMESTAMP/NANOTIMESTAMP, a trailing `M` →
/// MONTH, a trailing `m` → MINUTE, `:` → SECOND or TIME, two dots → DATE, digits only →
/// INT, anything else must be a float. See the module docs for the TIME/SECOND rule.
pub fn parse_numeric_literal(text: &str, negative: bool) -> Result<Literal, LiteralError> {
    let temporal = if text.contains('T') {
        Some(parse_datetime(text))
    } else if let Some(body) = text.strip_suffix('M') {
        Some(parse_month(body).ok_or_else(|| invalid("month", text)))
    } else if let Some(body) = text.strip_suffix('m') {
        Some(parse_minute(body).ok_or_else(|| invalid("minute", text)))
    } else if text.contains(':') {
        Some(parse_time_of_day_literal(text))
    } else if text.matches('.').count() == 2 {
        Some(
            parse_date(text, &DateSyntax::DOLPHINDB)
                .map(Literal::Date)
                .ok_or_else(|| invalid("date", text)),
        )
    } else {
        None
    };
    if let Some(literal) = temporal {
        let literal = literal?;
        if negative {
            return Err(LiteralError(format!("a minus sign cannot precede {text}")));
        }
        return Ok(literal);
    }

    let signed = if negative {
        format!("-{text}")
    } else {
        text.to_string()
    };
    if text.bytes().all(|b| b.is_ascii_digit()) {
        return signed
            .parse::<i64>()
            .map(Literal::Int)
            .map_err(|_| LiteralError(format!("integer literal {signed} is out of range")));
    }
    // Only digits, one optional `.` and an optional exponent reach f64's parser, so words
    // like `inf` or `1_000` are rejected with a message naming the text.
    let looks_like_float = text
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'));
    match signed.parse::<f64>() {
        Ok(value) if looks_like_float && value.is_finite() => Ok(Literal::Float(value)),
        Ok(_) if looks_like_float => Err(LiteralError(format!(
            "numeric literal {signed} is out of range"
        ))),
        _ => Err(invalid("numeric", text)),
    }
}

/// `invalid date literal 2023.02.30` and friends.
fn invalid(kind: &str, text: &str) -> LiteralError {
    LiteralError(format!("invalid {kind} literal {text}"))
}

/// A date in `syntax` → days since the epoch, or `None` if malformed or not a real calendar
/// date.
fn parse_date(text: &str, syntax: &DateSyntax) -> Option<i32> {
    let days = temporal::date(text.as_bytes(), syntax).ok()?;
    // Four-digit years are always within i32 days.
    i32::try_from(days).ok()
}

/// `yyyy.MM` (without the `M`) → months since 0000-01.
fn parse_month(text: &str) -> Option<Literal> {
    let months = temporal::year_month(text.as_bytes(), &DateSyntax::DOLPHINDB).ok()?;
    i32::try_from(months).ok().map(Literal::Month)
}

/// `HH:mm` (without the `m`) → minutes since midnight.
fn parse_minute(text: &str) -> Option<Literal> {
    let time = temporal::time(text.as_bytes(), &TimeSyntax::DOLPHINDB_MINUTE).ok()?;
    i32::try_from(time.seconds / 60).ok().map(Literal::Minute)
}

/// `H:mm:ss[.f…]` with 0 to 9 fractional digits.
fn parse_time_of_day(text: &str) -> Option<TimeOfDay<'_>> {
    temporal::time(text.as_bytes(), &TimeSyntax::DOLPHINDB).ok()
}

/// Milliseconds since midnight of a time with at most three fractional digits.
fn millis(time: &TimeOfDay) -> i64 {
    time.seconds * 1_000 + time.fraction_in(3)
}

/// `09:30:00` → SECOND, `09:30:00.000` → TIME (see the module docs for the rule).
fn parse_time_of_day_literal(text: &str) -> Result<Literal, LiteralError> {
    let time = parse_time_of_day(text).ok_or_else(|| invalid("time", text))?;
    match time.fraction.len() {
        0 => i32::try_from(time.seconds)
            .map(Literal::Second)
            .map_err(|_| invalid("second", text)),
        1..=3 => Ok(Literal::Time(millis(&time))),
        _ => Err(LiteralError(format!(
            "nanotime literals are not supported: {text} (use at most 3 fractional digits)"
        ))),
    }
}

/// Combines a date and a time of day into DATETIME, TIMESTAMP or NANOTIMESTAMP depending on
/// the number of fractional digits (0, 1 to 3, 4 to 9). `text` is quoted in errors.
fn combine_date_time(days: i32, time: &TimeOfDay, text: &str) -> Result<Literal, LiteralError> {
    let days = i64::from(days);
    match time.fraction.len() {
        0 => Ok(Literal::DateTime(days * SECONDS_PER_DAY + time.seconds)),
        1..=3 => Ok(Literal::Timestamp(days * MILLIS_PER_DAY + millis(time))),
        _ => days
            .checked_mul(NANOS_PER_DAY)
            .and_then(|ns| ns.checked_add(time.seconds * 1_000_000_000 + time.fraction_in(9)))
            .map(Literal::NanoTimestamp)
            .ok_or_else(|| LiteralError(format!("nanotimestamp literal {text} is out of range"))),
    }
}

/// `2023.01.08T09:30:00[.f…]`.
fn parse_datetime(text: &str) -> Result<Literal, LiteralError> {
    let (date, time) = text
        .split_once('T')
        .ok_or_else(|| invalid("datetime", text))?;
    let days = parse_date(date, &DateSyntax::DOLPHINDB).ok_or_else(|| invalid("date", text))?;
    let time = parse_time_of_day(time).ok_or_else(|| invalid("datetime", text))?;
    combine_date_time(days, &time, text)
}

/// The PostgreSQL error for a typed literal whose string does not parse.
fn invalid_sql(type_name: &str, value: &str) -> LiteralError {
    LiteralError(format!(
        "invalid input syntax for type {type_name}: \"{value}\""
    ))
}

/// The string of `DATE 'yyyy-MM-dd'` → [`Literal::Date`].
pub fn parse_sql_date(value: &str) -> Result<Literal, LiteralError> {
    parse_date(value.trim(), &DateSyntax::SQL)
        .map(Literal::Date)
        .ok_or_else(|| invalid_sql("date", value))
}

/// The string of `TIME 'HH:mm:ss[.fff]'` → [`Literal::Time`] (always TIME, never SECOND).
pub fn parse_sql_time(value: &str) -> Result<Literal, LiteralError> {
    match parse_time_of_day(value.trim()) {
        Some(time) if time.fraction.len() <= 3 => Ok(Literal::Time(millis(&time))),
        _ => Err(invalid_sql("time", value)),
    }
}

/// The string of `TIMESTAMP 'yyyy-MM-dd[( |T)HH:mm:ss[.f…]]'` → [`Literal::Timestamp`], or
/// [`Literal::NanoTimestamp`] with 4 to 9 fractional digits. A date alone means midnight.
pub fn parse_sql_timestamp(value: &str) -> Result<Literal, LiteralError> {
    let trimmed = value.trim();
    let (date, time) = match trimmed.split_once([' ', 'T']) {
        Some((date, time)) => (date, Some(time.trim_start())),
        None => (trimmed, None),
    };
    let days = parse_date(date, &DateSyntax::SQL).ok_or_else(|| invalid_sql("timestamp", value))?;
    let time = match time {
        Some(time) => parse_time_of_day(time).ok_or_else(|| invalid_sql("timestamp", value))?,
        None => TimeOfDay::MIDNIGHT,
    };
    match combine_date_time(days, &time, value)? {
        // Typed as TIMESTAMP, so whole seconds are still milliseconds.
        Literal::DateTime(seconds) => Ok(Literal::Timestamp(seconds * 1_000)),
        other => Ok(other),
    }
}

// ---------------------------------------------------------------------------------------
// Range vectors
// ---------------------------------------------------------------------------------------

/// The endpoints of `start..end` as integers, checking that they form a range: both the
/// same integer or temporal type, and `end` not before `start`.
fn range_bounds(start: &Literal, end: &Literal) -> Result<(i64, i64), LiteralError> {
    let (Some(first), Some(last)) = (start.ordinal(), end.ordinal()) else {
        return Err(LiteralError(format!(
            "range {start}..{end} needs integer or temporal endpoints"
        )));
    };
    if std::mem::discriminant(start) != std::mem::discriminant(end) {
        return Err(LiteralError(format!(
            "range {start}..{end} has endpoints of different types"
        )));
    }
    if last < first {
        return Err(LiteralError(format!("range {start}..{end} is empty")));
    }
    Ok((first, last))
}

/// The number of elements of the range vector `start..end` (both ends inclusive, step one
/// unit of the type). Both ends must be the same integer or temporal type and `end` must not
/// be before `start`.
pub fn range_len(start: &Literal, end: &Literal) -> Result<u64, LiteralError> {
    let (first, last) = range_bounds(start, end)?;
    let len = i128::from(last) - i128::from(first) + 1;
    u64::try_from(len).map_err(|_| LiteralError(format!("range {start}..{end} is too long")))
}

/// Expands the range vector `start..end` into its elements, refusing ranges longer than
/// `max_len` elements (so that a typo such as `1..1000000000` cannot exhaust memory).
pub fn expand_range(
    start: &Literal,
    end: &Literal,
    max_len: usize,
) -> Result<Vec<Literal>, LiteralError> {
    let len = range_len(start, end)?;
    if usize::try_from(len).map_or(true, |len| len > max_len) {
        return Err(LiteralError(format!(
            "range {start}..{end} has {len} elements, more than the limit of {max_len}"
        )));
    }
    let (first, last) = range_bounds(start, end)?;
    (first..=last)
        .map(|value| start.with_ordinal(value))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| LiteralError(format!("range {start}..{end} is out of range")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(text: &str) -> Literal {
        parse_numeric_literal(text, false).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn lit_err(text: &str) -> String {
        match parse_numeric_literal(text, false) {
            Ok(value) => panic!("{text} parsed as {value:?}"),
            Err(e) => e.0,
        }
    }

    #[test]
    fn civil_round_trip() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
        assert_eq!(days_from_civil(0, 1, 1), -719_528);
        for days in (-800_000..3_000_000).step_by(997) {
            let (y, m, d) = civil_from_days(days);
            assert!((1..=12).contains(&m) && d >= 1 && d <= days_in_month(y, m));
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
        }
        assert_eq!(civil_from_days(19_365), (2023, 1, 8));
    }

    #[test]
    fn leap_years_and_month_lengths() {
        assert!(is_leap_year(2000) && is_leap_year(2024) && !is_leap_year(1900));
        assert_eq!(days_in_month(2023, 2), 28);
        assert_eq!(days_in_month(2024, 2), 29);
        assert_eq!(days_in_month(2023, 4), 30);
        assert_eq!(days_in_month(2023, 13), 0);
        assert_eq!(days_in_month(2023, 0), 0);
    }

    #[test]
    fn integers_and_floats() {
        assert_eq!(lit("0"), Literal::Int(0));
        assert_eq!(lit("42"), Literal::Int(42));
        assert_eq!(parse_numeric_literal("5", true), Ok(Literal::Int(-5)));
        assert_eq!(
            parse_numeric_literal("9223372036854775808", true),
            Ok(Literal::Int(i64::MIN))
        );
        assert_eq!(lit("1.5"), Literal::Float(1.5));
        assert_eq!(lit("1."), Literal::Float(1.0));
        assert_eq!(lit("2e3"), Literal::Float(2000.0));
        assert_eq!(lit("1.5e-3"), Literal::Float(0.0015));
        assert_eq!(parse_numeric_literal("2.5", true), Ok(Literal::Float(-2.5)));
    }

    #[test]
    fn bad_numbers() {
        assert_eq!(
            lit_err("9223372036854775808"),
            "integer literal 9223372036854775808 is out of range"
        );
        assert_eq!(lit_err("12abc"), "invalid numeric literal 12abc");
        assert_eq!(lit_err("1_000"), "invalid numeric literal 1_000");
        assert_eq!(lit_err("0x10"), "invalid numeric literal 0x10");
        assert_eq!(lit_err("1e999"), "numeric literal 1e999 is out of range");
        assert_eq!(
            parse_numeric_literal("2023.01.01", true),
            Err(LiteralError(
                "a minus sign cannot precede 2023.01.01".into()
            ))
        );
    }

    #[test]
    fn dates_and_months() {
        assert_eq!(lit("1970.01.01"), Literal::Date(0));
        assert_eq!(lit("2023.01.08"), Literal::Date(19_365));
        assert_eq!(lit("2024.02.29"), Literal::Date(19_782));
        assert_eq!(lit("2023.1.8"), Literal::Date(19_365));
        assert_eq!(lit("2023.01M"), Literal::Month(2023 * 12));
        assert_eq!(lit("2023.12M"), Literal::Month(2023 * 12 + 11));
        assert_eq!(lit("0000.01M"), Literal::Month(0));
    }

    #[test]
    fn invalid_dates() {
        assert_eq!(lit_err("2023.02.30"), "invalid date literal 2023.02.30");
        assert_eq!(lit_err("2023.02.29"), "invalid date literal 2023.02.29");
        assert_eq!(lit_err("2023.13.01"), "invalid date literal 2023.13.01");
        assert_eq!(lit_err("2023.00.01"), "invalid date literal 2023.00.01");
        assert_eq!(lit_err("2023.01.00"), "invalid date literal 2023.01.00");
        assert_eq!(lit_err("23.01.01"), "invalid date literal 23.01.01");
        assert_eq!(lit_err("2023.001.01"), "invalid date literal 2023.001.01");
        assert_eq!(lit_err("2023.13M"), "invalid month literal 2023.13M");
        assert_eq!(lit_err("2023.00M"), "invalid month literal 2023.00M");
        assert_eq!(lit_err("2023M"), "invalid month literal 2023M");
    }

    #[test]
    fn times_of_day() {
        assert_eq!(lit("09:30m"), Literal::Minute(570));
        assert_eq!(lit("23:59m"), Literal::Minute(1_439));
        assert_eq!(lit("09:30:00"), Literal::Second(34_200));
        assert_eq!(lit("13:30:10"), Literal::Second(48_610));
        assert_eq!(lit("9:30:00"), Literal::Second(34_200));
        assert_eq!(lit("09:30:00.000"), Literal::Time(34_200_000));
        assert_eq!(lit("13:30:10.008"), Literal::Time(48_610_008));
        assert_eq!(lit("13:30:10.5"), Literal::Time(48_610_500));
    }

    #[test]
    fn invalid_times() {
        assert_eq!(lit_err("24:00:00"), "invalid time literal 24:00:00");
        assert_eq!(lit_err("09:60:00"), "invalid time literal 09:60:00");
        assert_eq!(lit_err("09:30:60"), "invalid time literal 09:30:60");
        assert_eq!(lit_err("09:30"), "invalid time literal 09:30");
        assert_eq!(lit_err("09:30:00:00"), "invalid time literal 09:30:00:00");
        assert_eq!(lit_err("09:30:00."), "invalid time literal 09:30:00.");
        assert_eq!(lit_err("24:00m"), "invalid minute literal 24:00m");
        assert_eq!(lit_err("09:5m"), "invalid minute literal 09:5m");
        assert_eq!(
            lit_err("09:30:00.123456"),
            "nanotime literals are not supported: 09:30:00.123456 (use at most 3 fractional digits)"
        );
    }

    #[test]
    fn datetimes() {
        let day = 19_365_i64;
        let at_930 = day * 86_400 + 34_200;
        assert_eq!(lit("2023.01.08T09:30:00"), Literal::DateTime(at_930));
        assert_eq!(
            lit("2023.01.08T09:30:00.123"),
            Literal::Timestamp(at_930 * 1_000 + 123)
        );
        assert_eq!(
            lit("2023.01.08T09:30:00.1"),
            Literal::Timestamp(at_930 * 1_000 + 100)
        );
        assert_eq!(
            lit("2023.01.08T09:30:00.000000001"),
            Literal::NanoTimestamp(at_930 * 1_000_000_000 + 1)
        );
        assert_eq!(
            lit("2023.01.08T09:30:00.1234"),
            Literal::NanoTimestamp(at_930 * 1_000_000_000 + 123_400_000)
        );
        assert_eq!(lit("1969.12.31T23:59:59"), Literal::DateTime(-1));
    }

    #[test]
    fn invalid_datetimes() {
        assert_eq!(
            lit_err("2023.02.30T00:00:00"),
            "invalid date literal 2023.02.30T00:00:00"
        );
        assert_eq!(
            lit_err("2023.01.08T25:00:00"),
            "invalid datetime literal 2023.01.08T25:00:00"
        );
        assert_eq!(
            lit_err("2023.01.08T"),
            "invalid datetime literal 2023.01.08T"
        );
        assert_eq!(
            lit_err("2023.01.08T09:30:00.1234567890"),
            "invalid datetime literal 2023.01.08T09:30:00.1234567890"
        );
        assert_eq!(
            lit_err("9999.01.01T00:00:00.000000000"),
            "nanotimestamp literal 9999.01.01T00:00:00.000000000 is out of range"
        );
    }

    #[test]
    fn sql_typed_literals() {
        assert_eq!(parse_sql_date("2023-01-08"), Ok(Literal::Date(19_365)));
        assert_eq!(parse_sql_date(" 2023-01-08 "), Ok(Literal::Date(19_365)));
        assert_eq!(
            parse_sql_date("2023-02-30"),
            Err(LiteralError(
                "invalid input syntax for type date: \"2023-02-30\"".into()
            ))
        );
        assert!(parse_sql_date("2023.01.08").is_err());
        assert_eq!(parse_sql_time("09:30:00"), Ok(Literal::Time(34_200_000)));
        assert_eq!(parse_sql_time("09:30:00.25"), Ok(Literal::Time(34_200_250)));
        assert!(parse_sql_time("09:30:00.2500").is_err());
        assert!(parse_sql_time("9:3").is_err());
        let at_930 = 19_365_i64 * 86_400 + 34_200;
        assert_eq!(
            parse_sql_timestamp("2023-01-08 09:30:00"),
            Ok(Literal::Timestamp(at_930 * 1_000))
        );
        assert_eq!(
            parse_sql_timestamp("2023-01-08T09:30:00.5"),
            Ok(Literal::Timestamp(at_930 * 1_000 + 500))
        );
        assert_eq!(
            parse_sql_timestamp("2023-01-08 09:30:00.000001"),
            Ok(Literal::NanoTimestamp(at_930 * 1_000_000_000 + 1_000))
        );
        assert_eq!(
            parse_sql_timestamp("2023-01-08"),
            Ok(Literal::Timestamp(19_365 * 86_400_000))
        );
        assert!(parse_sql_timestamp("2023-01-08 9").is_err());
        assert!(parse_sql_timestamp("").is_err());
    }

    #[test]
    fn token_lengths() {
        assert_eq!(numeric_token_len("1..10"), 1);
        assert_eq!(numeric_token_len("2023.01.01..2023.12.31"), 10);
        assert_eq!(numeric_token_len("2023.01M..2023.12M"), 8);
        assert_eq!(numeric_token_len("2023.01.08T09:30:00.123,"), 23);
        assert_eq!(numeric_token_len("09:30m)"), 6);
        assert_eq!(numeric_token_len("1e-5 "), 4);
        assert_eq!(numeric_token_len("1.5E+3]"), 6);
        assert_eq!(numeric_token_len("1-2"), 1);
        assert_eq!(numeric_token_len("2023.01.08-1"), 10);
        assert_eq!(numeric_token_len("12é"), 2);
        assert_eq!(numeric_token_len(""), 0);
    }

    #[test]
    fn display_round_trips() {
        for text in [
            "42",
            "2023.01.08",
            "1969.12.31",
            "2023.01M",
            "09:30m",
            "09:30:00",
            "09:30:00.008",
            "2023.01.08T09:30:00",
            "1969.12.31T23:59:59",
            "2023.01.08T09:30:00.123",
            "2023.01.08T09:30:00.123456789",
        ] {
            assert_eq!(lit(text).to_string(), text);
        }
        assert_eq!(Literal::Float(1.0).to_string(), "1.0");
        assert_eq!(Literal::String("it's".into()).to_string(), "'it''s'");
        assert_eq!(Literal::Symbol("IBM".into()).to_string(), "`IBM");
        assert_eq!(Literal::Null.to_string(), "NULL");
        assert_eq!(Literal::Bool(true).to_string(), "true");
        assert_eq!(Literal::Ident("ALL".into()).to_string(), "ALL");
    }

    #[test]
    fn display_never_panics_on_extreme_values() {
        for v in [i64::MIN, i64::MAX, 0, -1] {
            for literal in [
                Literal::Time(v),
                Literal::DateTime(v),
                Literal::Timestamp(v),
                Literal::NanoTimestamp(v),
            ] {
                let _ = literal.to_string();
            }
        }
        for v in [i32::MIN, i32::MAX] {
            for literal in [
                Literal::Date(v),
                Literal::Month(v),
                Literal::Minute(v),
                Literal::Second(v),
            ] {
                let _ = literal.to_string();
            }
        }
    }

    #[test]
    fn ranges() {
        let days = expand_range(&lit("2023.01.01"), &lit("2023.12.31"), 1_000).unwrap();
        assert_eq!(days.len(), 365);
        assert_eq!(days[0], lit("2023.01.01"));
        assert_eq!(days[364], lit("2023.12.31"));
        let months = expand_range(&lit("2000.01M"), &lit("2016.12M"), 1_000).unwrap();
        assert_eq!(months.len(), 204);
        assert_eq!(months[203], lit("2016.12M"));
        assert_eq!(
            expand_range(&Literal::Int(0), &Literal::Int(4), 10).unwrap(),
            (0..=4).map(Literal::Int).collect::<Vec<_>>()
        );
        assert_eq!(
            expand_range(&Literal::Int(3), &Literal::Int(3), 1)
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            range_len(&Literal::Int(i64::MIN), &Literal::Int(i64::MAX)),
            Err(LiteralError(
                "range -9223372036854775808..9223372036854775807 is too long".into()
            ))
        );
        assert_eq!(
            range_len(&Literal::Int(i64::MIN), &Literal::Int(i64::MAX - 1)),
            Ok(u64::MAX)
        );
    }

    #[test]
    fn bad_ranges() {
        let message = |a: Literal, b: Literal| expand_range(&a, &b, 100).unwrap_err().0;
        assert_eq!(
            message(Literal::Int(1), Literal::Int(0)),
            "range 1..0 is empty"
        );
        assert_eq!(
            message(Literal::Int(1), lit("2023.01.01")),
            "range 1..2023.01.01 has endpoints of different types"
        );
        assert_eq!(
            message(Literal::Float(1.0), Literal::Float(2.0)),
            "range 1.0..2.0 needs integer or temporal endpoints"
        );
        assert_eq!(
            message(Literal::Int(1), Literal::Int(101)),
            "range 1..101 has 101 elements, more than the limit of 100"
        );
        assert!(expand_range(&Literal::Int(i64::MIN), &Literal::Int(i64::MAX), 100).is_err());
    }

    #[test]
    fn name_lists() {
        assert_eq!(
            Literal::Symbol("a".into()).name_list(),
            Some(vec!["a".to_string()])
        );
        assert_eq!(
            Literal::String("a, b".into()).name_list(),
            Some(vec!["a".to_string(), "b".to_string()])
        );
        assert_eq!(
            Literal::Ident("ALL".into()).name_list(),
            Some(vec!["ALL".to_string()])
        );
        assert_eq!(Literal::Int(1).name_list(), None);
    }
}
