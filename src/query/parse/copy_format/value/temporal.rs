//! `date`, `time` and `timestamp` input.

use crate::catalog::calendar::{days_from_civil, is_leap_year};

use super::{trim_space, Bad};

/// Reads up to `max` ASCII digits at `*i`: their value and how many there were.
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

/// A date at the start of `s`: `YYYY-MM-DD`, `YYYY.MM.DD` (DolphinDB) or `YYYYMMDD`, with a 4
/// to 7 digit year. Returns days since the Unix epoch and the bytes read.
fn parse_date_prefix(s: &[u8]) -> Result<(i64, usize), Bad> {
    let mut i = 0;
    let (year, month, day);
    let (leading, count) = read_digits(s, &mut i, 8);
    if count == 8 {
        (year, month, day) = (leading / 10_000, leading / 100 % 100, leading % 100);
    } else {
        if count < 4 {
            return Err(Bad::Syntax);
        }
        let separator = match s.get(i) {
            Some(&c @ (b'-' | b'.')) => c,
            _ => return Err(Bad::Syntax),
        };
        i += 1;
        let (m, month_digits) = read_digits(s, &mut i, 2);
        if month_digits == 0 || s.get(i) != Some(&separator) {
            return Err(Bad::Syntax);
        }
        i += 1;
        let (d, day_digits) = read_digits(s, &mut i, 2);
        if day_digits == 0 {
            return Err(Bad::Syntax);
        }
        (year, month, day) = (leading, m, d);
    }
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap_year(year) => 29,
        2 => 28,
        _ => return Err(Bad::FieldRange),
    };
    // There is no year zero.
    if year < 1 || !(1..=days_in_month).contains(&day) {
        return Err(Bad::FieldRange);
    }
    Ok((days_from_civil(year, month as u32, day as u32), i))
}

/// A time of day at the start of `s`: `H[H]:MM[:SS[.fraction]]`. Returns the whole seconds, the
/// fraction digits and the bytes read. `24:00:00` and a leap second `:60` are accepted as
/// PostgreSQL accepts them.
fn parse_time_prefix(s: &[u8]) -> Result<(i64, &[u8], usize), Bad> {
    let mut i = 0;
    let (hour, hour_digits) = read_digits(s, &mut i, 2);
    if hour_digits == 0 || s.get(i) != Some(&b':') {
        return Err(Bad::Syntax);
    }
    i += 1;
    let (minute, minute_digits) = read_digits(s, &mut i, 2);
    if minute_digits != 2 {
        return Err(Bad::Syntax);
    }
    let mut second = 0;
    let mut fraction: &[u8] = &[];
    if s.get(i) == Some(&b':') {
        i += 1;
        let (sec, second_digits) = read_digits(s, &mut i, 2);
        if second_digits != 2 {
            return Err(Bad::Syntax);
        }
        second = sec;
        if s.get(i) == Some(&b'.') {
            i += 1;
            let start = i;
            while s.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            if i == start {
                return Err(Bad::Syntax);
            }
            fraction = &s[start..i];
        }
    }
    let fraction_zero = fraction.iter().all(|&c| c == b'0');
    let valid = minute <= 59
        && (second <= 59 || (second == 60 && fraction_zero))
        && (hour <= 23 || (hour == 24 && minute == 0 && second == 0 && fraction_zero));
    if !valid {
        return Err(Bad::FieldRange);
    }
    Ok((hour * 3600 + minute * 60 + second, fraction, i))
}

/// A UTC offset at the start of `s`: `Z`, `±H[H]`, `±HH:MM` or `±HHMM`. Returns seconds east of
/// UTC and the bytes read.
fn parse_offset(s: &[u8]) -> Result<(i64, usize), Bad> {
    let sign = match s.first() {
        Some(b'Z' | b'z') => return Ok((0, 1)),
        Some(b'+') => 1,
        Some(b'-') => -1,
        _ => return Err(Bad::Syntax),
    };
    let mut i = 1;
    let (hours, hour_digits) = read_digits(s, &mut i, 2);
    if hour_digits == 0 {
        return Err(Bad::Syntax);
    }
    if s.get(i) == Some(&b':') {
        i += 1;
    }
    let (minutes, minute_digits) = read_digits(s, &mut i, 2);
    if !matches!(minute_digits, 0 | 2) || (minute_digits == 0 && s.get(i - 1) == Some(&b':')) {
        return Err(Bad::Syntax);
    }
    if hours > 15 || minutes > 59 {
        return Err(Bad::TimeZoneRange);
    }
    Ok((sign * (hours * 3600 + minutes * 60), i))
}

/// The first `digits` fraction digits as an integer, rounded half up on the next digit.
fn scale_fraction(fraction: &[u8], digits: u32) -> i64 {
    let digit = |k: usize| fraction.get(k).map_or(0, |&c| i64::from(c - b'0'));
    let digits = digits as usize;
    let truncated = (0..digits).fold(0, |acc, k| acc * 10 + digit(k));
    truncated + i64::from(digit(digits) >= 5)
}

/// A date, as days since the Unix epoch.
pub fn parse_date(value: &[u8]) -> Result<i32, Bad> {
    let s = trim_space(value);
    if s.eq_ignore_ascii_case(b"epoch") {
        return Ok(0);
    }
    let (days, read) = parse_date_prefix(s)?;
    if read != s.len() {
        return Err(Bad::Syntax);
    }
    i32::try_from(days).map_err(|_| Bad::DateRange)
}

/// A timestamp as a count of 10^-`digits` seconds since the Unix epoch, UTC.
pub fn parse_timestamp(value: &[u8], digits: u32) -> Result<i64, Bad> {
    let s = trim_space(value);
    if s.eq_ignore_ascii_case(b"epoch") {
        return Ok(0);
    }
    let (days, mut i) = parse_date_prefix(s)?;
    let mut seconds = 0;
    let mut fraction: &[u8] = &[];
    let mut offset = 0;
    if let Some(&separator) = s.get(i) {
        if !matches!(separator, b' ' | b'T' | b't') {
            return Err(Bad::Syntax);
        }
        i += 1;
        let (time, time_fraction, read) = parse_time_prefix(&s[i..])?;
        (seconds, fraction) = (time, time_fraction);
        i += read;
        while s.get(i) == Some(&b' ') {
            i += 1;
        }
        if i < s.len() {
            let (east, read) = parse_offset(&s[i..])?;
            offset = east;
            i += read;
        }
    }
    if i != s.len() {
        return Err(Bad::Syntax);
    }
    let unit = 10_i64.pow(digits);
    (days * 86_400 + seconds - offset)
        .checked_mul(unit)
        .and_then(|v| v.checked_add(scale_fraction(fraction, digits)))
        .ok_or(Bad::TimestampRange)
}

/// A time of day as a count of 10^-`digits` seconds since midnight.
pub fn parse_time(value: &[u8], digits: u32) -> Result<i64, Bad> {
    let s = trim_space(value);
    let (seconds, fraction, read) = parse_time_prefix(s)?;
    if read != s.len() {
        return Err(Bad::Syntax);
    }
    let unit = 10_i64.pow(digits);
    let time = seconds * unit + scale_fraction(fraction, digits);
    // Arrow times stop short of midnight, so 24:00:00 has no representation.
    if time >= 86_400 * unit {
        return Err(Bad::FieldRange);
    }
    Ok(time)
}
