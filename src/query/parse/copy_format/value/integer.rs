//! `smallint`, `integer` and `bigint` input.

use super::super::escape::hex_value;
use super::{is_space, Bad};

/// An integer type COPY can fill.
pub trait PgInt: TryFrom<i64> + Copy {
    const MIN: i64;
    const MAX: i64;
}

impl PgInt for i8 {
    const MIN: i64 = i8::MIN as i64;
    const MAX: i64 = i8::MAX as i64;
}

impl PgInt for i16 {
    const MIN: i64 = i16::MIN as i64;
    const MAX: i64 = i16::MAX as i64;
}

impl PgInt for i32 {
    const MIN: i64 = i32::MIN as i64;
    const MAX: i64 = i32::MAX as i64;
}

impl PgInt for i64 {
    const MIN: i64 = i64::MIN;
    const MAX: i64 = i64::MAX;
}

/// PostgreSQL 16's `pg_strtoint*`.
#[inline]
pub fn parse_int<T: PgInt>(value: &[u8]) -> Result<T, Bad> {
    // Fast path, as in PostgreSQL: an optional minus and up to 18 decimal digits.
    let (negative, digits) = match value {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, value),
    };
    let mut magnitude: i64 = 0;
    let mut fast = !digits.is_empty() && digits.len() <= 18;
    if fast {
        for &c in digits {
            let digit = c.wrapping_sub(b'0');
            if digit > 9 {
                fast = false;
                break;
            }
            magnitude = magnitude * 10 + i64::from(digit);
        }
    }
    let parsed = if !fast {
        parse_int_slow(value, T::MIN, T::MAX)?
    } else if negative {
        -magnitude
    } else {
        magnitude
    };
    if !(T::MIN..=T::MAX).contains(&parsed) {
        return Err(Bad::IntRange);
    }
    T::try_from(parsed).map_err(|_| Bad::IntRange)
}

/// The general integer syntax: whitespace, sign, `0x`/`0o`/`0b`, underscores between digits.
/// Overflow is reported as soon as it happens, as PostgreSQL does.
fn parse_int_slow(value: &[u8], min: i64, max: i64) -> Result<i64, Bad> {
    let limit = min.unsigned_abs();
    let mut i = 0;
    while value.get(i).is_some_and(|&c| is_space(c)) {
        i += 1;
    }
    let negative = match value.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let radix: u64 = match (value.get(i), value.get(i + 1).map(u8::to_ascii_lowercase)) {
        (Some(b'0'), Some(b'x')) => 16,
        (Some(b'0'), Some(b'o')) => 8,
        (Some(b'0'), Some(b'b')) => 2,
        _ => 10,
    };
    if radix != 10 {
        i += 2;
    }
    let digit = |c: u8| hex_value(c).map(u64::from).filter(|&d| d < radix);
    let first_digit = i;
    let mut magnitude: u64 = 0;
    while let Some(&c) = value.get(i) {
        if let Some(d) = digit(c) {
            if magnitude > limit / radix {
                return Err(Bad::IntRange);
            }
            magnitude = magnitude * radix + d;
            i += 1;
        } else if c == b'_' {
            // An underscore must separate digits (after a prefix it may come first).
            if radix == 10 && i == first_digit {
                return Err(Bad::Syntax);
            }
            i += 1;
            if value.get(i).and_then(|&c| digit(c)).is_none() {
                return Err(Bad::Syntax);
            }
        } else {
            break;
        }
    }
    if i == first_digit {
        return Err(Bad::Syntax);
    }
    while value.get(i).is_some_and(|&c| is_space(c)) {
        i += 1;
    }
    if i != value.len() {
        return Err(Bad::Syntax);
    }
    let signed = if negative {
        -i128::from(magnitude)
    } else {
        i128::from(magnitude)
    };
    i64::try_from(signed)
        .ok()
        .filter(|v| (min..=max).contains(v))
        .ok_or(Bad::IntRange)
}
