//! `real` and `double precision` input.

use super::{trim_space, Bad};

/// `[-]digits[.digits]` with at most 19 characters after the sign: the sign, the digits as one
/// integer and the number of fraction digits.
#[inline]
fn plain_decimal(value: &[u8]) -> Option<(bool, u64, usize)> {
    let (negative, body) = match value {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, value),
    };
    if body.is_empty() || body.len() > 19 {
        return None;
    }
    let mut mantissa = 0u64;
    let mut point = None;
    for (k, &c) in body.iter().enumerate() {
        match c {
            b'0'..=b'9' => mantissa = mantissa * 10 + u64::from(c - b'0'),
            b'.' if point.is_none() => point = Some(k),
            _ => return None,
        }
    }
    let fraction_digits = point.map_or(0, |p| body.len() - p - 1);
    // "." alone has no digits.
    if body.len() == usize::from(point.is_some()) {
        return None;
    }
    Some((negative, mantissa, fraction_digits))
}

const POW10_F64: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];
const POW10_F32: [f32; 11] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10];

/// PostgreSQL's `float8in`.
#[inline]
pub fn parse_f64(value: &[u8]) -> Result<f64, Bad> {
    // Clinger's fast path: an integer mantissa below 2^53 and a power of ten up to 10^22 are
    // both exact doubles, so one correctly rounded division gives the correctly rounded value.
    if let Some((negative, mantissa, fraction_digits)) = plain_decimal(value) {
        if mantissa <= 1 << 53 {
            let v = mantissa as f64 / POW10_F64[fraction_digits];
            return Ok(if negative { -v } else { v });
        }
    }
    let s = std::str::from_utf8(trim_space(value)).map_err(|_| Bad::Syntax)?;
    let v: f64 = s.parse().map_err(|_| Bad::Syntax)?;
    check_float_range(s, v.is_infinite(), v == 0.0)?;
    Ok(v)
}

/// PostgreSQL's `float4in`.
#[inline]
pub fn parse_f32(value: &[u8]) -> Result<f32, Bad> {
    // The same fast path with single-precision limits (2^24, 10^10).
    if let Some((negative, mantissa, fraction_digits)) = plain_decimal(value) {
        if mantissa <= 1 << 24 && fraction_digits < POW10_F32.len() {
            let v = mantissa as f32 / POW10_F32[fraction_digits];
            return Ok(if negative { -v } else { v });
        }
    }
    let s = std::str::from_utf8(trim_space(value)).map_err(|_| Bad::Syntax)?;
    let v: f32 = s.parse().map_err(|_| Bad::Syntax)?;
    check_float_range(s, v.is_infinite(), v == 0.0)?;
    Ok(v)
}

/// A number that overflowed to infinity or underflowed to zero is out of range; the literals
/// `Infinity` and `0` are not.
fn check_float_range(s: &str, infinite: bool, zero: bool) -> Result<(), Bad> {
    if infinite && s.bytes().any(|c| c.is_ascii_digit()) {
        return Err(Bad::FloatRange);
    }
    let mantissa = s.split(['e', 'E']).next().unwrap_or_default();
    if zero && mantissa.bytes().any(|c| matches!(c, b'1'..=b'9')) {
        return Err(Bad::FloatRange);
    }
    Ok(())
}
