//! `bytea` input, in the hex and the escape forms.

use super::super::escape::hex_value;
use super::Bad;

/// PostgreSQL's `byteain`: `\x` followed by hex pairs (whitespace allowed between pairs), or
/// the escape form where `\\` is a backslash and `\ooo` an octal byte.
pub fn parse_bytea(value: &[u8], out: &mut Vec<u8>) -> Result<(), Bad> {
    out.clear();
    if let Some(hex) = value.strip_prefix(b"\\x") {
        let invalid_digit = |at: usize| {
            let len = match hex[at] {
                0xc0..=0xdf => 2,
                0xe0..=0xef => 3,
                0xf0..=0xf7 => 4,
                _ => 1,
            };
            let shown = String::from_utf8_lossy(&hex[at..(at + len).min(hex.len())]).into_owned();
            Bad::Other("22023", format!("invalid hexadecimal digit: \"{shown}\""))
        };
        let mut i = 0;
        while i < hex.len() {
            if matches!(hex[i], b' ' | b'\n' | b'\t' | b'\r') {
                i += 1;
                continue;
            }
            let high = hex_value(hex[i]).ok_or_else(|| invalid_digit(i))?;
            let Some(&low) = hex.get(i + 1) else {
                return Err(Bad::Other(
                    "22023",
                    "invalid hexadecimal data: odd number of digits".into(),
                ));
            };
            let low = hex_value(low).ok_or_else(|| invalid_digit(i + 1))?;
            out.push(high << 4 | low);
            i += 2;
        }
        return Ok(());
    }
    let mut i = 0;
    while i < value.len() {
        match value[i..] {
            [b'\\', b'\\', ..] => {
                out.push(b'\\');
                i += 2;
            }
            [b'\\', a @ b'0'..=b'3', b @ b'0'..=b'7', c @ b'0'..=b'7', ..] => {
                out.push((a - b'0') << 6 | (b - b'0') << 3 | (c - b'0'));
                i += 4;
            }
            [b'\\', ..] => {
                // PostgreSQL's message for bytea does not repeat the value.
                return Err(Bad::Other(
                    "22P02",
                    "invalid input syntax for type bytea".into(),
                ));
            }
            [c, ..] => {
                out.push(c);
                i += 1;
            }
            [] => break,
        }
    }
    Ok(())
}
