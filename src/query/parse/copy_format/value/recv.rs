//! PostgreSQL's binary receive functions for the types COPY fills: a field of a binary COPY
//! stream (big-endian, in the type's send format) into the column's native value.

use super::{invalid_encoding, parse_decimal, Bad};

/// Days from 1970-01-01 (Arrow's epoch) to 2000-01-01 (PostgreSQL's).
const PG_EPOCH_DAYS: i32 = 10_957;
/// Microseconds from 1970-01-01 to 2000-01-01.
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;
/// Microseconds in a day: the largest `time` PostgreSQL sends (`24:00:00`).
const DAY_MICROS: i64 = 86_400_000_000;

/// The message of a value of the wrong size for its type.
fn incorrect() -> Bad {
    Bad::Other("22P03", "incorrect binary data format".into())
}

/// A value of exactly `N` bytes.
#[inline]
pub(in crate::query::parse::copy_format) fn fixed<const N: usize>(
    value: &[u8],
) -> Result<[u8; N], Bad> {
    value.try_into().map_err(|_| incorrect())
}

/// `text`/`varchar` (`textrecv`): UTF-8 without NUL bytes.
#[inline]
pub(in crate::query::parse::copy_format) fn text(value: &[u8]) -> Result<&str, Bad> {
    match invalid_encoding(value) {
        Some(message) => Err(Bad::Other("22021", message)),
        // `invalid_encoding` accepted it, so it is UTF-8.
        None => std::str::from_utf8(value).map_err(|_| Bad::Encoding),
    }
}

/// `date` (`date_recv`): days since 2000-01-01, as days since 1970-01-01.
pub(in crate::query::parse::copy_format) fn date(value: &[u8]) -> Result<i32, Bad> {
    let days = i32::from_be_bytes(fixed(value)?);
    if days == i32::MIN || days == i32::MAX {
        // -infinity and infinity
        return Err(Bad::DateRange);
    }
    days.checked_add(PG_EPOCH_DAYS).ok_or(Bad::DateRange)
}

/// `micros` in a unit of `digits` decimal digits per second (0, 3, 6, 9), rounded half up
/// like the text format.
fn from_micros(micros: i64, digits: u32) -> Option<i64> {
    match digits {
        0 => Some(micros.checked_add(500_000)?.div_euclid(1_000_000)),
        3 => Some(micros.checked_add(500)?.div_euclid(1_000)),
        6 => Some(micros),
        _ => micros.checked_mul(1_000),
    }
}

/// `timestamp` (`timestamp_recv`): microseconds since 2000-01-01, in the column's unit since
/// 1970-01-01.
pub(in crate::query::parse::copy_format) fn timestamp(
    value: &[u8],
    digits: u32,
) -> Result<i64, Bad> {
    let micros = i64::from_be_bytes(fixed(value)?);
    if micros == i64::MIN || micros == i64::MAX {
        return Err(Bad::TimestampRange);
    }
    micros
        .checked_add(PG_EPOCH_MICROS)
        .and_then(|m| from_micros(m, digits))
        .ok_or(Bad::TimestampRange)
}

/// `time` (`time_recv`): microseconds since midnight, in the column's unit.
pub(in crate::query::parse::copy_format) fn time(value: &[u8], digits: u32) -> Result<i64, Bad> {
    let micros = i64::from_be_bytes(fixed(value)?);
    if !(0..=DAY_MICROS).contains(&micros) {
        return Err(Bad::FieldRange);
    }
    let v = from_micros(micros, digits).ok_or(Bad::FieldRange)?;
    // 24:00:00 is a PostgreSQL time but not an Arrow one.
    if from_micros(DAY_MICROS, digits) == Some(v) {
        return Err(Bad::FieldRange);
    }
    Ok(v)
}

/// `numeric` (`numeric_recv`): base-10000 digits with a weight, a sign and a display scale,
/// rounded to the column's scale like the text format.
pub(in crate::query::parse::copy_format) fn numeric(
    value: &[u8],
    precision: u8,
    scale: i8,
) -> Result<i128, Bad> {
    let word = |i: usize| -> Result<u16, Bad> {
        value
            .get(i..i + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
            .ok_or_else(incorrect)
    };
    let ndigits = word(0)? as i16;
    let weight = word(2)? as i16 as i64;
    let sign = word(4)?;
    let dscale = word(6)? as i16;
    if ndigits < 0 || value.len() != 8 + 2 * ndigits as usize {
        return Err(incorrect());
    }
    if dscale < 0 {
        return Err(Bad::Other(
            "22P03",
            "invalid scale in external \"numeric\" value".into(),
        ));
    }
    let negative = match sign {
        0x0000 => false,
        0x4000 => true,
        0xC000 => return parse_decimal(b"NaN", precision, scale),
        0xD000 | 0xF000 => {
            return Err(Bad::Other(
                "0A000",
                "infinity cannot be stored in a Decimal128 column".into(),
            ))
        }
        _ => {
            return Err(Bad::Other(
                "22P03",
                "invalid sign in external \"numeric\" value".into(),
            ))
        }
    };
    if ndigits == 0 {
        return Ok(0);
    }
    // The digits as decimal text, then the text format's rounding and range checks. The text
    // is written once, into one buffer: this runs for every numeric value of the COPY.
    let digits = 4 * ndigits as usize;
    // Decimal digits before the point.
    let point = (weight + 1) * 4;
    let mut text = Vec::with_capacity(digits + point.unsigned_abs() as usize + 3);
    if negative {
        text.push(b'-');
    }
    if point <= 0 {
        text.extend_from_slice(b"0.");
        text.resize(text.len() + (-point) as usize, b'0');
    }
    let start = text.len();
    for i in 0..ndigits as usize {
        let d = word(8 + 2 * i)?;
        if d > 9999 {
            return Err(Bad::Other(
                "22P03",
                "invalid digit in external \"numeric\" value".into(),
            ));
        }
        text.extend_from_slice(&[
            b'0' + (d / 1000) as u8,
            b'0' + (d / 100 % 10) as u8,
            b'0' + (d / 10 % 10) as u8,
            b'0' + (d % 10) as u8,
        ]);
    }
    if point > 0 {
        let point = point as usize;
        if point >= digits {
            text.resize(text.len() + point - digits, b'0');
        } else {
            text.insert(start + point, b'.');
        }
    }
    parse_decimal(&text, precision, scale)
}
