//! Text-format backslash escapes, and [`Unescaped`], which builds a field's value from pieces
//! of the input without copying it unless it must.

/// Decodes the text-format escape `\<letter>` whose following bytes start at `i`; returns the
/// byte and the offset after the escape.
pub(super) fn decode_escape(input: &[u8], mut i: usize, letter: u8) -> (u8, usize) {
    let byte = match letter {
        b'b' => 0x08,
        b'f' => 0x0c,
        b'n' => b'\n',
        b'r' => b'\r',
        b't' => b'\t',
        b'v' => 0x0b,
        b'0'..=b'7' => {
            let mut value = u32::from(letter - b'0');
            for _ in 0..2 {
                match input.get(i) {
                    Some(&digit @ b'0'..=b'7') => {
                        value = value * 8 + u32::from(digit - b'0');
                        i += 1;
                    }
                    _ => break,
                }
            }
            // PostgreSQL keeps the low eight bits of `\777`.
            (value & 0xff) as u8
        }
        b'x' => match input.get(i).and_then(|&c| hex_value(c)) {
            Some(high) => {
                i += 1;
                match input.get(i).and_then(|&c| hex_value(c)) {
                    Some(low) => {
                        i += 1;
                        high * 16 + low
                    }
                    None => high,
                }
            }
            // `\x` without a hex digit is just `x`.
            None => b'x',
        },
        other => other,
    };
    (byte, i)
}

pub(super) fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Builds one field's value from pieces of the input: a single piece stays a borrowed range;
/// a second piece or a decoded byte moves the value into the scratch buffer.
#[derive(Default)]
pub(super) struct Unescaped {
    first: Option<(usize, usize)>,
    scratch_start: Option<usize>,
}

impl Unescaped {
    #[inline]
    pub(super) fn push_slice(
        &mut self,
        input: &[u8],
        scratch: &mut Vec<u8>,
        start: usize,
        end: usize,
    ) {
        if start >= end {
            return;
        }
        match (self.scratch_start, self.first) {
            (Some(_), _) => scratch.extend_from_slice(&input[start..end]),
            (None, None) => self.first = Some((start, end)),
            (None, Some((a, b))) => {
                self.scratch_start = Some(scratch.len());
                scratch.extend_from_slice(&input[a..b]);
                scratch.extend_from_slice(&input[start..end]);
            }
        }
    }

    pub(super) fn push_byte(&mut self, input: &[u8], scratch: &mut Vec<u8>, byte: u8) {
        if self.scratch_start.is_none() {
            self.scratch_start = Some(scratch.len());
            if let Some((a, b)) = self.first {
                scratch.extend_from_slice(&input[a..b]);
            }
        }
        scratch.push(byte);
    }

    /// `(start, end, in_scratch)` of the value; `scratch_len` is the scratch buffer's length.
    pub(super) fn finish(self, scratch_len: usize) -> (usize, usize, bool) {
        match (self.scratch_start, self.first) {
            (Some(start), _) => (start, scratch_len, true),
            (None, Some((start, end))) => (start, end, false),
            (None, None) => (0, 0, false),
        }
    }
}
