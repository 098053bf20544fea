//! `numeric` values on the wire, exact to the 38 digits of a DECIMAL128 (and beyond, for
//! DECIMAL256): arrow-pg goes through `rust_decimal`, whose 96-bit mantissa holds 28 digits.
//!
//! A decimal column (or a list of decimals, as `array_agg` makes) is rewritten before arrow-pg
//! sees it: into its text form (a list of texts) for text-format columns, and into PostgreSQL's
//! binary `numeric` (or `numeric[]`) form carried as bytes for binary-format ones. The
//! RowDescription keeps the column's real type, and arrow-pg sends text and bytes as they are.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BinaryArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::error::ArrowError;

/// PostgreSQL's type OID of `numeric`, the element type of a binary `numeric[]`.
const NUMERIC_OID: u32 = 1700;

/// PostgreSQL's binary `numeric` sign words.
const NUMERIC_POS: u16 = 0x0000;
const NUMERIC_NEG: u16 = 0x4000;

/// `col` ready for arrow-pg when it is a decimal column or a list of decimals, `None` for
/// every other type. Both are cast to text once (arrow prints decimals exactly); binary-format
/// columns then carry each text's `numeric` (or each list's `numeric[]`) bytes.
pub fn wire_decimals(col: &ArrayRef, text: bool) -> Result<Option<ArrayRef>, ArrowError> {
    let is_decimal =
        |t: &DataType| matches!(t, DataType::Decimal128(..) | DataType::Decimal256(..));
    let texts = match col.data_type() {
        t if is_decimal(t) => arrow::compute::cast(col, &DataType::Utf8)?,
        DataType::List(item) if is_decimal(item.data_type()) => {
            let item = Field::new_list_field(DataType::Utf8, true);
            arrow::compute::cast(col, &DataType::List(Arc::new(item)))?
        }
        _ => return Ok(None),
    };
    if text {
        // arrow-pg sends a string as it is, and a list of strings as `{1.5,NULL,2}`.
        return Ok(Some(texts));
    }
    let bytes: BinaryArray = match texts.data_type() {
        DataType::Utf8 => texts
            .as_string::<i32>()
            .iter()
            .map(|v| v.map(numeric_binary))
            .collect(),
        _ => {
            let lists = texts.as_list::<i32>();
            (0..lists.len())
                .map(|i| {
                    (!lists.is_null(i)).then(|| {
                        let elements: Vec<Option<Vec<u8>>> = lists
                            .value(i)
                            .as_string::<i32>()
                            .iter()
                            .map(|v| v.map(numeric_binary))
                            .collect();
                        array_binary(NUMERIC_OID, &elements)
                    })
                })
                .collect()
        }
    };
    Ok(Some(Arc::new(bytes)))
}

/// `schema` as arrow-pg can describe it: a DECIMAL256 (a literal or result beyond 38 digits) is
/// `numeric` on the wire like a DECIMAL128, and its values are sent by [`wire_decimals`].
pub fn wire_schema(schema: &Schema) -> Schema {
    let as_128 = |t: &DataType| match t {
        DataType::Decimal256(..) => Some(DataType::Decimal128(38, 0)),
        DataType::List(item) if matches!(item.data_type(), DataType::Decimal256(..)) => {
            Some(DataType::List(Arc::new(Field::new_list_field(
                DataType::Decimal128(38, 0),
                true,
            ))))
        }
        _ => None,
    };
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| match as_128(f.data_type()) {
            Some(t) => f.as_ref().clone().with_data_type(t),
            None => f.as_ref().clone(),
        })
        .collect();
    Schema::new_with_metadata(fields, schema.metadata().clone())
}

/// A one-dimensional array in PostgreSQL's binary form (`array_send`): dimensions, a has-nulls
/// flag, the element type, then each element as a length and its bytes (-1 for NULL).
fn array_binary(element_oid: u32, elements: &[Option<Vec<u8>>]) -> Vec<u8> {
    let mut out = Vec::new();
    let dims: i32 = if elements.is_empty() { 0 } else { 1 };
    out.extend_from_slice(&dims.to_be_bytes());
    let has_nulls = i32::from(elements.iter().any(Option::is_none));
    out.extend_from_slice(&has_nulls.to_be_bytes());
    out.extend_from_slice(&element_oid.to_be_bytes());
    if dims == 1 {
        out.extend_from_slice(&(elements.len() as i32).to_be_bytes());
        // Lower bound.
        out.extend_from_slice(&1i32.to_be_bytes());
    }
    for e in elements {
        match e {
            Some(bytes) => {
                out.extend_from_slice(&(bytes.len() as i32).to_be_bytes());
                out.extend_from_slice(bytes);
            }
            None => out.extend_from_slice(&(-1i32).to_be_bytes()),
        }
    }
    out
}

/// A decimal's text (`-123.4500`, as arrow prints it) in PostgreSQL's binary `numeric` form
/// (`numeric_send`): the digit count, the weight of the first base-10000 digit, the sign, the
/// display scale, then the base-10000 digits without leading or trailing zero digits.
pub fn numeric_binary(text: &str) -> Vec<u8> {
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (int_part, frac_part) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let int_part = int_part.trim_start_matches('0');
    let dscale = frac_part.len() as u16;
    // Whole base-10000 groups: the integer part padded on the left, the fraction on the right.
    let int_pad = (4 - int_part.len() % 4) % 4;
    let frac_pad = (4 - frac_part.len() % 4) % 4;
    let digits_text = format!(
        "{}{int_part}{frac_part}{}",
        "0".repeat(int_pad),
        "0".repeat(frac_pad)
    );
    let mut digits: Vec<i16> = digits_text
        .as_bytes()
        .chunks(4)
        .map(|group| group.iter().fold(0i16, |n, d| n * 10 + i16::from(d - b'0')))
        .collect();
    let mut weight = ((int_part.len() + int_pad) / 4) as i16 - 1;
    let leading = digits.iter().take_while(|d| **d == 0).count();
    digits.drain(..leading);
    weight -= leading as i16;
    while digits.last() == Some(&0) {
        digits.pop();
    }
    let (sign, weight) = if digits.is_empty() {
        (NUMERIC_POS, 0)
    } else if negative {
        (NUMERIC_NEG, weight)
    } else {
        (NUMERIC_POS, weight)
    };
    let mut out = Vec::with_capacity(8 + 2 * digits.len());
    out.extend_from_slice(&(digits.len() as i16).to_be_bytes());
    out.extend_from_slice(&weight.to_be_bytes());
    out.extend_from_slice(&sign.to_be_bytes());
    out.extend_from_slice(&dscale.to_be_bytes());
    for d in digits {
        out.extend_from_slice(&d.to_be_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `numeric_binary`'s header and digits as numbers.
    fn parts(text: &str) -> (i16, i16, u16, u16, Vec<i16>) {
        let b = numeric_binary(text);
        let word = |i: usize| [b[2 * i], b[2 * i + 1]];
        let n = i16::from_be_bytes(word(0));
        let digits = (0..n as usize)
            .map(|i| i16::from_be_bytes(word(4 + i)))
            .collect();
        (
            n,
            i16::from_be_bytes(word(1)),
            u16::from_be_bytes(word(2)),
            u16::from_be_bytes(word(3)),
            digits,
        )
    }

    #[test]
    fn numerics_encode_as_postgres_sends_them() {
        // Values checked against PostgreSQL's numeric_send.
        assert_eq!(parts("1.5"), (2, 0, NUMERIC_POS, 1, vec![1, 5000]));
        assert_eq!(parts("-12.50"), (2, 0, NUMERIC_NEG, 2, vec![12, 5000]));
        assert_eq!(parts("0.0001"), (1, -1, NUMERIC_POS, 4, vec![1]));
        assert_eq!(parts("100000000"), (1, 2, NUMERIC_POS, 0, vec![1]));
        assert_eq!(parts("0"), (0, 0, NUMERIC_POS, 0, vec![]));
        assert_eq!(parts("-0.00"), (0, 0, NUMERIC_POS, 2, vec![]));
        assert_eq!(
            parts("99999999999999999999999999999999999999"),
            (
                10,
                9,
                NUMERIC_POS,
                0,
                vec![99, 9999, 9999, 9999, 9999, 9999, 9999, 9999, 9999, 9999]
            )
        );
        assert_eq!(
            parts("12345.678901"),
            (4, 1, NUMERIC_POS, 6, vec![1, 2345, 6789, 100])
        );
    }

    #[test]
    fn arrays_encode_as_postgres_sends_them() {
        let empty = array_binary(NUMERIC_OID, &[]);
        assert_eq!(empty, [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 6, 164]);
        let one_null = array_binary(NUMERIC_OID, &[None]);
        assert_eq!(
            one_null,
            [0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 6, 164, 0, 0, 0, 1, 0, 0, 0, 1, 255, 255, 255, 255]
        );
    }
}
