//! `boolean` input.

use super::{trim_space, Bad};

/// PostgreSQL's `boolin`: `t`, `true`, `yes`, `on`, `1` and their opposites, any case, any
/// unique prefix, surrounded by optional whitespace.
pub fn parse_bool(value: &[u8]) -> Result<bool, Bad> {
    let s = trim_space(value);
    let prefix_of = |word: &[u8]| s.len() <= word.len() && word[..s.len()].eq_ignore_ascii_case(s);
    let parsed = match s.first().map(u8::to_ascii_lowercase) {
        Some(b't') if prefix_of(b"true") => Some(true),
        Some(b'f') if prefix_of(b"false") => Some(false),
        Some(b'y') if prefix_of(b"yes") => Some(true),
        Some(b'n') if prefix_of(b"no") => Some(false),
        // A lone `o` could be either.
        Some(b'o') if s.len() >= 2 && prefix_of(b"on") => Some(true),
        Some(b'o') if s.len() >= 2 && prefix_of(b"off") => Some(false),
        Some(b'1') if s.len() == 1 => Some(true),
        Some(b'0') if s.len() == 1 => Some(false),
        _ => None,
    };
    parsed.ok_or(Bad::Syntax)
}
