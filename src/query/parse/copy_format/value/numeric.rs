//! `numeric` input into a `Decimal128` column.

use super::{trim_space, Bad};

/// PostgreSQL's `numeric_in` into a `Decimal128(precision, scale)`: the value scaled by
/// 10^scale, rounded half away from zero; more than `precision - scale` integer digits is
/// `numeric field overflow`.
pub fn parse_decimal(value: &[u8], precision: u8, scale: i8) -> Result<i128, Bad> {
    let s = trim_space(value);
    let (negative, body) = match s {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        _ => (false, s),
    };
    if body.eq_ignore_ascii_case(b"nan") {
        return Err(Bad::Other(
            "0A000",
            "NaN cannot be stored in a Decimal128 column".into(),
        ));
    }
    if body.eq_ignore_ascii_case(b"infinity") || body.eq_ignore_ascii_case(b"inf") {
        return Err(Bad::NumericOverflow);
    }
    let mut i = 0;
    let digits_from = |i: &mut usize| {
        let start = *i;
        while body.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        start..*i
    };
    let integer = digits_from(&mut i);
    let fraction = match body.get(i) {
        Some(b'.') => {
            i += 1;
            digits_from(&mut i)
        }
        _ => i..i,
    };
    if integer.is_empty() && fraction.is_empty() {
        return Err(Bad::Syntax);
    }
    let mut exponent: i64 = 0;
    if matches!(body.get(i), Some(b'e' | b'E')) {
        i += 1;
        let exponent_negative = match body.get(i) {
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
        let digits = digits_from(&mut i);
        if digits.is_empty() {
            return Err(Bad::Syntax);
        }
        for &c in &body[digits] {
            // Saturate: anything this large over- or underflows every Decimal128 anyway.
            exponent = (exponent * 10 + i64::from(c - b'0')).min(1_000_000_000);
        }
        if exponent_negative {
            exponent = -exponent;
        }
    }
    if i != body.len() {
        return Err(Bad::Syntax);
    }

    // All mantissa digits as one sequence D; the value is D * 10^(exponent - fraction digits),
    // and the stored integer is that times 10^scale, rounded.
    let digit_at = |k: usize| -> i128 {
        let c = if k < integer.len() {
            body[integer.start + k]
        } else {
            body[fraction.start + k - integer.len()]
        };
        i128::from(c - b'0')
    };
    let total = integer.len() + fraction.len();
    let first = (0..total).find(|&k| digit_at(k) != 0);
    let Some(first) = first else {
        return Ok(0);
    };
    let significant = (total - first) as i64;
    let shift = exponent - fraction.len() as i64 + i64::from(scale);
    // Digits of the scaled value before rounding; it is at least 10^(kept - 1).
    let kept = significant + shift;
    if kept > i64::from(precision) {
        return Err(Bad::NumericOverflow);
    }
    let mut scaled: i128 = 0;
    if shift >= 0 {
        for k in first..total {
            scaled = scaled * 10 + digit_at(k);
        }
        // `kept <= precision <= 38`, so this neither overflows nor loops long.
        for _ in 0..shift {
            scaled *= 10;
        }
    } else {
        // `kept < significant` here. When it is negative even the first dropped digit lies
        // left of the mantissa's first digit, so it is a zero.
        let dropped = match usize::try_from(kept) {
            Ok(kept) => {
                for k in first..first + kept {
                    scaled = scaled * 10 + digit_at(k);
                }
                digit_at(first + kept)
            }
            Err(_) => 0,
        };
        // Round half away from zero: the magnitude rounds up on a first dropped digit >= 5.
        if dropped >= 5 {
            scaled += 1;
        }
    }
    if scaled >= 10_i128.pow(u32::from(precision)) {
        return Err(Bad::NumericOverflow);
    }
    Ok(if negative { -scaled } else { scaled })
}
