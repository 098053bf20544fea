//! Dates, times of day and timestamps read from text: the one place porpoise parses them.
//!
//! Three kinds of text carry temporal values, and each accepts its own spellings:
//!
//! | syntax                 | used by                                  | dates                                         | times of day                                        |
//! |------------------------|------------------------------------------|-----------------------------------------------|-----------------------------------------------------|
//! | [`DateSyntax::DOLPHINDB`], [`TimeSyntax::DOLPHINDB`] | DDL literals (`2023.01.08T09:30:00.5`) | `YYYY.M.D`                   | `H:MM:SS[.f]`, 1 to 9 fraction digits               |
//! | [`DateSyntax::SQL`]    | DDL typed literals (`DATE '2023-01-08'`) | `YYYY-M-D`                                    | as DolphinDB                                        |
//! | [`DateSyntax::POSTGRES`], [`TimeSyntax::POSTGRES`] | COPY data, PostgreSQL's input functions | `YYYY-M-D`, `YYYY.M.D` with a 4 to 7 digit year, `YYYYMMDD`, `epoch` | `H:MM[:SS[.f]]`, any fraction, `24:00:00` and a leap second `:60` |
//!
//! [`TimeSyntax::DOLPHINDB_MINUTE`] reads the `H:MM` of a DolphinDB minute literal (`09:30m`).
//! Month and day take one or two digits everywhere; there is no year zero in the PostgreSQL
//! syntax (the DDL's four-digit `0000` is year zero of the proleptic Gregorian calendar).
//!
//! The scanners ([`scan_date`], [`scan_time`], [`scan_offset`]) read a value at the start of
//! the text and say how many bytes it took, so callers can combine them; [`date`],
//! [`year_month`] and [`time`] require the whole text. The `postgres_*` functions are PostgreSQL's `date_in`,
//! `time_in` and `timestamp_in` for the spellings above, with the results in the units of an
//! Arrow column.

use crate::catalog::calendar::{days_from_civil, days_in_month};

/// Why text is not a temporal value; each variant is one PostgreSQL error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TemporalError {
    /// Not a spelling the syntax accepts (22007 / 22P02).
    #[error("invalid input syntax")]
    Syntax,
    /// A month, day, hour, minute or second outside its range (22008).
    #[error("date/time field value out of range")]
    FieldRange,
    /// A valid date beyond what the target type holds (22008).
    #[error("date out of range")]
    DateRange,
    /// A valid timestamp beyond what the target type holds (22008).
    #[error("timestamp out of range")]
    TimestampRange,
    /// A UTC offset beyond ±15:59 (22009).
    #[error("time zone displacement out of range")]
    TimeZoneRange,
}

/// How a date may be spelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateSyntax {
    /// The separators between year, month and day (the same one both times).
    separators: &'static [u8],
    /// The fewest and most digits of the year.
    year_digits: (usize, usize),
    /// `YYYYMMDD` without separators is accepted too.
    compact: bool,
    /// The first year there is.
    min_year: i64,
}

impl DateSyntax {
    /// DolphinDB's `2023.01.08`.
    pub const DOLPHINDB: DateSyntax = DateSyntax {
        separators: b".",
        year_digits: (4, 4),
        compact: false,
        min_year: 0,
    };

    /// The ISO `2023-01-08` of a typed literal such as `DATE '2023-01-08'`.
    pub const SQL: DateSyntax = DateSyntax {
        separators: b"-",
        year_digits: (4, 4),
        compact: false,
        min_year: 0,
    };

    /// What COPY accepts: ISO, DolphinDB's dots and `YYYYMMDD`, years 1 to 9999999.
    pub const POSTGRES: DateSyntax = DateSyntax {
        separators: b"-.",
        year_digits: (4, 7),
        compact: true,
        min_year: 1,
    };
}

/// Whether a time of day has seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seconds {
    Required,
    Optional,
    Forbidden,
}

/// How a time of day may be spelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeSyntax {
    seconds: Seconds,
    /// The most fraction digits after the seconds.
    max_fraction_digits: usize,
    /// `24:00:00` and a leap second `:60` are accepted (both with a zero fraction), as
    /// PostgreSQL accepts them.
    leap_second_and_midnight: bool,
}

impl TimeSyntax {
    /// `H:MM:SS[.f]` with at most nine fraction digits (nanoseconds).
    pub const DOLPHINDB: TimeSyntax = TimeSyntax {
        seconds: Seconds::Required,
        max_fraction_digits: 9,
        leap_second_and_midnight: false,
    };

    /// `H:MM`, the body of a DolphinDB minute literal.
    pub const DOLPHINDB_MINUTE: TimeSyntax = TimeSyntax {
        seconds: Seconds::Forbidden,
        max_fraction_digits: 0,
        leap_second_and_midnight: false,
    };

    /// What COPY accepts: `H:MM[:SS[.fraction]]`, `24:00:00` and leap seconds.
    pub const POSTGRES: TimeSyntax = TimeSyntax {
        seconds: Seconds::Optional,
        max_fraction_digits: usize::MAX,
        leap_second_and_midnight: true,
    };
}

/// A time of day as written: whole seconds since midnight and the fraction's digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeOfDay<'a> {
    pub seconds: i64,
    /// The ASCII digits after the `.` (empty without a fraction).
    pub fraction: &'a [u8],
}

impl TimeOfDay<'_> {
    /// `00:00:00`.
    pub const MIDNIGHT: TimeOfDay<'static> = TimeOfDay {
        seconds: 0,
        fraction: &[],
    };

    /// The fraction as a count of 10^-`digits` seconds, rounded half up on the first digit
    /// dropped (`.5` is 500 for `digits` 3; `.0005` is 1).
    #[inline]
    pub fn fraction_in(&self, digits: u32) -> i64 {
        let digit = |k: usize| self.fraction.get(k).map_or(0, |&c| i64::from(c - b'0'));
        let digits = digits as usize;
        let truncated = (0..digits).fold(0, |acc, k| acc * 10 + digit(k));
        truncated + i64::from(digit(digits) >= 5)
    }
}

/// Reads up to `max` ASCII digits at `*i`: their value and how many there were.
#[inline]
fn read_digits(s: &[u8], i: &mut usize, max: usize) -> (i64, usize) {
    let start = *i;
    let mut value = 0;
    while *i - start < max {
        match s.get(*i) {
            Some(&c) if c.is_ascii_digit() => {
                value = value * 10 + i64::from(c - b'0');
                *i += 1;
            }
            _ => break,
        }
    }
    (value, *i - start)
}

/// A date at the start of `s` in `syntax`. Returns days since the Unix epoch and the bytes
/// read.
#[inline]
pub fn scan_date(s: &[u8], syntax: &DateSyntax) -> Result<(i64, usize), TemporalError> {
    let mut i = 0;
    let (min_year_digits, max_year_digits) = syntax.year_digits;
    let most = if syntax.compact {
        max_year_digits.max(8)
    } else {
        max_year_digits
    };
    let (leading, count) = read_digits(s, &mut i, most);
    let (year, month, day);
    if syntax.compact && count == 8 {
        (year, month, day) = (leading / 10_000, leading / 100 % 100, leading % 100);
    } else {
        if !(min_year_digits..=max_year_digits).contains(&count) {
            return Err(TemporalError::Syntax);
        }
        let separator = match s.get(i) {
            Some(&c) if syntax.separators.contains(&c) => c,
            _ => return Err(TemporalError::Syntax),
        };
        i += 1;
        let (m, month_digits) = read_digits(s, &mut i, 2);
        if month_digits == 0 || s.get(i) != Some(&separator) {
            return Err(TemporalError::Syntax);
        }
        i += 1;
        let (d, day_digits) = read_digits(s, &mut i, 2);
        if day_digits == 0 {
            return Err(TemporalError::Syntax);
        }
        (year, month, day) = (leading, m, d);
    }
    // Both below 100 here.
    let (month, day) = (month as u32, day as u32);
    // `days_in_month` is 0 for a month outside 1 to 12.
    if year < syntax.min_year || !(1..=days_in_month(year, month)).contains(&day) {
        return Err(TemporalError::FieldRange);
    }
    Ok((days_from_civil(year, month, day), i))
}

/// The date that is all of `s`, as days since the Unix epoch.
#[inline]
pub fn date(s: &[u8], syntax: &DateSyntax) -> Result<i64, TemporalError> {
    let (days, read) = scan_date(s, syntax)?;
    if read != s.len() {
        return Err(TemporalError::Syntax);
    }
    Ok(days)
}

/// The year and month that are all of `s` (`2023.01` in [`DateSyntax::DOLPHINDB`]), as
/// months since January of year zero.
pub fn year_month(s: &[u8], syntax: &DateSyntax) -> Result<i64, TemporalError> {
    let mut i = 0;
    let (year, year_digits) = read_digits(s, &mut i, syntax.year_digits.1);
    if year_digits < syntax.year_digits.0 {
        return Err(TemporalError::Syntax);
    }
    if !s.get(i).is_some_and(|c| syntax.separators.contains(c)) {
        return Err(TemporalError::Syntax);
    }
    i += 1;
    let (month, month_digits) = read_digits(s, &mut i, 2);
    if month_digits == 0 || i != s.len() {
        return Err(TemporalError::Syntax);
    }
    if year < syntax.min_year || !(1..=12).contains(&month) {
        return Err(TemporalError::FieldRange);
    }
    Ok(year * 12 + month - 1)
}

/// A time of day at the start of `s` in `syntax`, and the bytes read.
#[inline]
pub fn scan_time<'a>(
    s: &'a [u8],
    syntax: &TimeSyntax,
) -> Result<(TimeOfDay<'a>, usize), TemporalError> {
    let mut i = 0;
    let (hour, hour_digits) = read_digits(s, &mut i, 2);
    if hour_digits == 0 || s.get(i) != Some(&b':') {
        return Err(TemporalError::Syntax);
    }
    i += 1;
    let (minute, minute_digits) = read_digits(s, &mut i, 2);
    if minute_digits != 2 {
        return Err(TemporalError::Syntax);
    }
    let mut second = 0;
    let mut fraction: &[u8] = &[];
    let has_seconds = match syntax.seconds {
        Seconds::Required => true,
        Seconds::Optional => s.get(i) == Some(&b':'),
        Seconds::Forbidden => false,
    };
    if has_seconds {
        if s.get(i) != Some(&b':') {
            return Err(TemporalError::Syntax);
        }
        i += 1;
        let (sec, second_digits) = read_digits(s, &mut i, 2);
        if second_digits != 2 {
            return Err(TemporalError::Syntax);
        }
        second = sec;
        if syntax.max_fraction_digits > 0 && s.get(i) == Some(&b'.') {
            i += 1;
            let start = i;
            while s.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            if i == start || i - start > syntax.max_fraction_digits {
                return Err(TemporalError::Syntax);
            }
            fraction = &s[start..i];
        }
    }
    let valid = if syntax.leap_second_and_midnight {
        let fraction_zero = fraction.iter().all(|&c| c == b'0');
        minute <= 59
            && (second <= 59 || (second == 60 && fraction_zero))
            && (hour <= 23 || (hour == 24 && minute == 0 && second == 0 && fraction_zero))
    } else {
        hour <= 23 && minute <= 59 && second <= 59
    };
    if !valid {
        return Err(TemporalError::FieldRange);
    }
    let time = TimeOfDay {
        seconds: hour * 3600 + minute * 60 + second,
        fraction,
    };
    Ok((time, i))
}

/// The time of day that is all of `s`.
#[inline]
pub fn time<'a>(s: &'a [u8], syntax: &TimeSyntax) -> Result<TimeOfDay<'a>, TemporalError> {
    let (time, read) = scan_time(s, syntax)?;
    if read != s.len() {
        return Err(TemporalError::Syntax);
    }
    Ok(time)
}

/// A UTC offset at the start of `s`: `Z`, `±H[H]`, `±HH:MM` or `±HHMM`. Returns seconds east of
/// UTC and the bytes read.
#[inline]
pub fn scan_offset(s: &[u8]) -> Result<(i64, usize), TemporalError> {
    let sign = match s.first() {
        Some(b'Z' | b'z') => return Ok((0, 1)),
        Some(b'+') => 1,
        Some(b'-') => -1,
        _ => return Err(TemporalError::Syntax),
    };
    let mut i = 1;
    let (hours, hour_digits) = read_digits(s, &mut i, 2);
    if hour_digits == 0 {
        return Err(TemporalError::Syntax);
    }
    if s.get(i) == Some(&b':') {
        i += 1;
    }
    let (minutes, minute_digits) = read_digits(s, &mut i, 2);
    if !matches!(minute_digits, 0 | 2) || (minute_digits == 0 && s.get(i - 1) == Some(&b':')) {
        return Err(TemporalError::Syntax);
    }
    if hours > 15 || minutes > 59 {
        return Err(TemporalError::TimeZoneRange);
    }
    Ok((sign * (hours * 3600 + minutes * 60), i))
}

/// PostgreSQL's `date_in` for [`DateSyntax::POSTGRES`] (and `epoch`): days since the Unix
/// epoch.
#[inline]
pub fn postgres_date(s: &[u8]) -> Result<i32, TemporalError> {
    if s.eq_ignore_ascii_case(b"epoch") {
        return Ok(0);
    }
    let days = date(s, &DateSyntax::POSTGRES)?;
    i32::try_from(days).map_err(|_| TemporalError::DateRange)
}

/// PostgreSQL's `timestamp_in` for a date in [`DateSyntax::POSTGRES`], optionally followed by
/// `T` or a space, a time of day in [`TimeSyntax::POSTGRES`] and a UTC offset (or `epoch`):
/// a count of 10^-`digits` seconds since the Unix epoch, UTC. The fraction is rounded half up
/// to the unit.
#[inline]
pub fn postgres_timestamp(s: &[u8], digits: u32) -> Result<i64, TemporalError> {
    if s.eq_ignore_ascii_case(b"epoch") {
        return Ok(0);
    }
    let (days, mut i) = scan_date(s, &DateSyntax::POSTGRES)?;
    let mut time = TimeOfDay::MIDNIGHT;
    let mut offset = 0;
    if let Some(&separator) = s.get(i) {
        if !matches!(separator, b' ' | b'T' | b't') {
            return Err(TemporalError::Syntax);
        }
        i += 1;
        let (time_of_day, read) = scan_time(&s[i..], &TimeSyntax::POSTGRES)?;
        time = time_of_day;
        i += read;
        while s.get(i) == Some(&b' ') {
            i += 1;
        }
        if i < s.len() {
            let (east, read) = scan_offset(&s[i..])?;
            offset = east;
            i += read;
        }
    }
    if i != s.len() {
        return Err(TemporalError::Syntax);
    }
    let unit = 10_i64.pow(digits);
    (days * 86_400 + time.seconds - offset)
        .checked_mul(unit)
        .and_then(|v| v.checked_add(time.fraction_in(digits)))
        .ok_or(TemporalError::TimestampRange)
}

/// PostgreSQL's `time_in` for [`TimeSyntax::POSTGRES`], into an Arrow time: a count of
/// 10^-`digits` seconds since midnight. The fraction is rounded half up to the unit; a time
/// that is (or rounds to) `24:00:00` has no Arrow representation and is out of range.
#[inline]
pub fn postgres_time(s: &[u8], digits: u32) -> Result<i64, TemporalError> {
    let time = time(s, &TimeSyntax::POSTGRES)?;
    let unit = 10_i64.pow(digits);
    let value = time.seconds * unit + time.fraction_in(digits);
    if value >= 86_400 * unit {
        return Err(TemporalError::FieldRange);
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOLPHINDB: DateSyntax = DateSyntax::DOLPHINDB;
    const SQL: DateSyntax = DateSyntax::SQL;
    const POSTGRES: DateSyntax = DateSyntax::POSTGRES;
    use TemporalError::{FieldRange, Syntax};

    #[test]
    fn each_date_syntax_takes_its_own_spellings() {
        let day = Ok(19_365);
        assert_eq!(date(b"2023.01.08", &DOLPHINDB), day);
        assert_eq!(date(b"2023.1.8", &DOLPHINDB), day);
        assert_eq!(date(b"2023-01-08", &DOLPHINDB), Err(Syntax));
        assert_eq!(date(b"20230108", &DOLPHINDB), Err(Syntax));
        assert_eq!(date(b"2023-01-08", &SQL), day);
        assert_eq!(date(b"2023.01.08", &SQL), Err(Syntax));
        assert_eq!(date(b"2023-01-08", &POSTGRES), day);
        assert_eq!(date(b"2023.1.8", &POSTGRES), day);
        assert_eq!(date(b"20230108", &POSTGRES), day);
        assert_eq!(date(b"2023-01.08", &POSTGRES), Err(Syntax));
        assert_eq!(date(b"12023.01.08", &DOLPHINDB), Err(Syntax));
        assert_eq!(date(b"12023-01-08", &POSTGRES), Ok(3_671_790));
        assert_eq!(date(b"023-01-08", &POSTGRES), Err(Syntax));
        assert_eq!(date(b"2023-001-08", &POSTGRES), Err(Syntax));
        assert_eq!(date(b"2023-01-08 ", &POSTGRES), Err(Syntax));
    }

    #[test]
    fn calendar_checks() {
        for syntax in [DOLPHINDB, POSTGRES] {
            let separator = char::from(syntax.separators[0]);
            let check = |text: &str| {
                date(
                    text.replace('.', &separator.to_string()).as_bytes(),
                    &syntax,
                )
            };
            assert_eq!(check("2024.02.29"), Ok(19_782));
            assert_eq!(check("2023.02.29"), Err(FieldRange));
            assert_eq!(check("2023.13.01"), Err(FieldRange));
            assert_eq!(check("2023.00.01"), Err(FieldRange));
            assert_eq!(check("2023.01.00"), Err(FieldRange));
            assert_eq!(check("2023.04.31"), Err(FieldRange));
        }
        // Year zero exists in DolphinDB's calendar, not in PostgreSQL's.
        assert_eq!(date(b"0000.01.01", &DOLPHINDB), Ok(-719_528));
        assert_eq!(date(b"0000-01-01", &POSTGRES), Err(FieldRange));
        assert_eq!(postgres_date(b"EPOCH"), Ok(0));
        assert_eq!(
            postgres_date(b"9999999-12-31"),
            Err(TemporalError::DateRange)
        );
    }

    #[test]
    fn year_months() {
        assert_eq!(year_month(b"2023.01", &DOLPHINDB), Ok(2023 * 12));
        assert_eq!(year_month(b"2023.12", &DOLPHINDB), Ok(2023 * 12 + 11));
        assert_eq!(year_month(b"2023.13", &DOLPHINDB), Err(FieldRange));
        assert_eq!(year_month(b"2023", &DOLPHINDB), Err(Syntax));
        assert_eq!(year_month(b"2023.01.08", &DOLPHINDB), Err(Syntax));
        assert_eq!(year_month(b"202.01", &DOLPHINDB), Err(Syntax));
    }

    #[test]
    fn each_time_syntax_takes_its_own_spellings() {
        let dolphindb = |s: &'static str| {
            time(s.as_bytes(), &TimeSyntax::DOLPHINDB).map(|t| (t.seconds, t.fraction))
        };
        let minute = |s: &str| time(s.as_bytes(), &TimeSyntax::DOLPHINDB_MINUTE).map(|t| t.seconds);
        let postgres = |s: &'static str| {
            time(s.as_bytes(), &TimeSyntax::POSTGRES).map(|t| (t.seconds, t.fraction))
        };
        assert_eq!(dolphindb("9:30:00"), Ok((34_200, &b""[..])));
        assert_eq!(dolphindb("09:30:00.5"), Ok((34_200, &b"5"[..])));
        assert_eq!(
            dolphindb("09:30:00.123456789"),
            Ok((34_200, &b"123456789"[..]))
        );
        assert_eq!(dolphindb("09:30:00.1234567890"), Err(Syntax));
        assert_eq!(dolphindb("09:30"), Err(Syntax));
        assert_eq!(dolphindb("09:30:00."), Err(Syntax));
        assert_eq!(dolphindb("24:00:00"), Err(FieldRange));
        assert_eq!(dolphindb("23:59:60"), Err(FieldRange));
        assert_eq!(minute("09:30"), Ok(34_200));
        assert_eq!(minute("09:30:00"), Err(Syntax));
        assert_eq!(minute("09:5"), Err(Syntax));
        assert_eq!(minute("24:00"), Err(FieldRange));
        assert_eq!(postgres("09:30"), Ok((34_200, &b""[..])));
        assert_eq!(
            postgres("09:30:00.1234567890"),
            Ok((34_200, &b"1234567890"[..]))
        );
        assert_eq!(postgres("24:00:00"), Ok((86_400, &b""[..])));
        assert_eq!(postgres("24:00:00.1"), Err(FieldRange));
        assert_eq!(postgres("23:59:60"), Ok((86_400, &b""[..])));
        assert_eq!(postgres("23:59:60.5"), Err(FieldRange));
        assert_eq!(postgres("9:3"), Err(Syntax));
    }

    #[test]
    fn fractions_round_half_up_to_the_unit() {
        let at = |fraction: &'static [u8]| TimeOfDay {
            seconds: 0,
            fraction,
        };
        assert_eq!(at(b"5").fraction_in(3), 500);
        assert_eq!(at(b"5").fraction_in(0), 1);
        assert_eq!(at(b"4999").fraction_in(0), 0);
        assert_eq!(at(b"0005").fraction_in(3), 1);
        assert_eq!(at(b"123456789").fraction_in(9), 123_456_789);
        assert_eq!(TimeOfDay::MIDNIGHT.fraction_in(6), 0);
    }

    #[test]
    fn postgres_timestamps_and_offsets() {
        let at_930 = 19_365 * 86_400 + 34_200;
        assert_eq!(postgres_timestamp(b"2023-01-08 09:30:00", 0), Ok(at_930));
        assert_eq!(
            postgres_timestamp(b"2023.01.08T09:30:00.5", 3),
            Ok(at_930 * 1_000 + 500)
        );
        assert_eq!(
            postgres_timestamp(b"2023-01-08 09:30:00+08", 0),
            Ok(at_930 - 8 * 3_600)
        );
        assert_eq!(
            postgres_timestamp(b"2023-01-08t09:30 -05:30", 0),
            Ok(at_930 + 19_800)
        );
        assert_eq!(postgres_timestamp(b"2023-01-08", 0), Ok(19_365 * 86_400));
        assert_eq!(postgres_timestamp(b"epoch", 9), Ok(0));
        assert_eq!(postgres_timestamp(b"2023-01-08_09:30", 0), Err(Syntax));
        assert_eq!(
            postgres_timestamp(b"2023-01-08 09:30+16", 0),
            Err(TemporalError::TimeZoneRange)
        );
        assert_eq!(
            postgres_timestamp(b"9999999-01-01", 9),
            Err(TemporalError::TimestampRange)
        );
        assert_eq!(scan_offset(b"Z"), Ok((0, 1)));
        assert_eq!(scan_offset(b"-0800"), Ok((-28_800, 5)));
        assert_eq!(scan_offset(b"+05:"), Err(Syntax));
        assert_eq!(scan_offset(b"+05:3"), Err(Syntax));
    }

    #[test]
    fn postgres_times_fit_an_arrow_time() {
        assert_eq!(postgres_time(b"09:30:00.5", 0), Ok(34_201));
        assert_eq!(postgres_time(b"23:59:59.9999", 3), Err(FieldRange));
        assert_eq!(postgres_time(b"24:00:00", 6), Err(FieldRange));
        assert_eq!(postgres_time(b"09:30", 9), Ok(34_200_000_000_000));
    }
}
