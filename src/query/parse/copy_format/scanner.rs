//! Splitting the data into records and fields, in the text or the CSV format.

use super::byte_set::ByteSet;
use super::escape::{decode_escape, Unescaped};
use super::options::{CopyFormat, CopyOptions};

/// Where one field's value lies after splitting.
#[derive(Debug, Clone, Copy)]
pub(super) struct FieldSpan {
    pub(super) start: usize,
    pub(super) end: usize,
    /// The value was de-escaped into the scanner's scratch buffer rather than borrowed from the
    /// input.
    pub(super) in_scratch: bool,
    /// The field is NULL: its raw bytes equal the NULL string (and, in CSV, it had no quotes).
    pub(super) null: bool,
}

/// The outcome of scanning for one record.
pub(super) enum Scanned {
    /// A complete record: its line ends at `line_end` (terminator excluded), the next record
    /// starts at `next`.
    Record { line_end: usize, next: usize },
    /// The end-of-data marker.
    EndOfData,
    /// The input ends before the record does.
    Incomplete,
}

/// A malformed record (always `22P04`).
pub(super) struct ScanError {
    pub(super) message: &'static str,
    /// The context shows the line itself (PostgreSQL does once it has the whole line).
    pub(super) shows_line: bool,
}

impl ScanError {
    const fn new(message: &'static str) -> Self {
        Self {
            message,
            shows_line: false,
        }
    }
}

const LITERAL_CR: ScanError = ScanError::new("literal carriage return found in data");
const UNQUOTED_CR: ScanError = ScanError::new("unquoted carriage return found in data");
const MARKER_NOT_ALONE: ScanError = ScanError::new("end-of-copy marker is not alone on its line");
const UNTERMINATED: ScanError = ScanError {
    message: "unterminated CSV quoted field",
    shows_line: true,
};

/// Where a field's terminator was found.
enum FieldEnd {
    /// A delimiter; the next field starts at the given offset.
    Delimiter(usize),
    /// The end of the record.
    Record { line_end: usize, next: usize },
}

/// Splits records into fields for one format and set of options.
pub(super) struct Scanner {
    csv: bool,
    delimiter: u8,
    quote: u8,
    escape: u8,
    null: Vec<u8>,
    /// Bytes that end a run of ordinary bytes outside quotes.
    stop: ByteSet,
    /// Bytes that end a run of ordinary bytes inside a quoted CSV section.
    quoted_stop: ByteSet,
    /// The fields of the record scanned last.
    pub(super) fields: Vec<FieldSpan>,
    /// De-escaped values of the record scanned last.
    pub(super) scratch: Vec<u8>,
    /// Line feeds inside quoted CSV fields of the record scanned last: PostgreSQL counts them
    /// as lines.
    pub(super) quoted_newlines: u64,
    /// State of [`Self::find_record_end`] over a pending partial record.
    end_state: EndState,
}

/// Quote and escape state carried across chunks while looking for the end of a record.
#[derive(Debug, Default, Clone, Copy)]
struct EndState {
    in_quote: bool,
    last_was_escape: bool,
    after_backslash: bool,
}

impl Scanner {
    pub(super) fn new(options: &CopyOptions) -> Self {
        let csv = options.format == CopyFormat::Csv;
        let special = if csv { options.quote } else { b'\\' };
        let stop = ByteSet::new([options.delimiter, b'\n', b'\r', special]);
        let quoted_stop =
            ByteSet::new([options.quote, options.escape, options.quote, options.quote]);
        Self {
            csv,
            delimiter: options.delimiter,
            quote: options.quote,
            escape: options.escape,
            null: options.null.as_bytes().to_vec(),
            stop,
            quoted_stop,
            fields: Vec::new(),
            scratch: Vec::new(),
            quoted_newlines: 0,
            end_state: EndState::default(),
        }
    }

    /// Splits the record starting at `line_start` into `self.fields`. Unless `eof`, a record
    /// that the input does not complete is [`Scanned::Incomplete`] and nothing is consumed.
    pub(super) fn scan(
        &mut self,
        input: &[u8],
        line_start: usize,
        eof: bool,
    ) -> Result<Scanned, ScanError> {
        self.fields.clear();
        self.scratch.clear();
        self.quoted_newlines = 0;
        if self.csv {
            self.scan_csv(input, line_start, eof)
        } else {
            self.scan_text(input, line_start, eof)
        }
    }

    #[inline]
    fn push_field(&mut self, raw: &[u8], value: Unescaped, quoted: bool) {
        let (start, end, in_scratch) = value.finish(self.scratch.len());
        self.fields.push(FieldSpan {
            start,
            end,
            in_scratch,
            null: !quoted && raw == self.null.as_slice(),
        });
    }

    fn scan_text(
        &mut self,
        input: &[u8],
        line_start: usize,
        eof: bool,
    ) -> Result<Scanned, ScanError> {
        let n = input.len();
        let mut i = line_start;
        loop {
            let field_start = i;
            let mut value = Unescaped::default();
            let mut segment = i;
            // `raw_end` is where the field's raw bytes end, for the NULL comparison.
            let (raw_end, field_end) = loop {
                i = self.stop.find(input, i);
                let Some(&c) = input.get(i) else {
                    if !eof {
                        return Ok(Scanned::Incomplete);
                    }
                    value.push_slice(input, &mut self.scratch, segment, n);
                    break (
                        n,
                        FieldEnd::Record {
                            line_end: n,
                            next: n,
                        },
                    );
                };
                if c == self.delimiter {
                    value.push_slice(input, &mut self.scratch, segment, i);
                    break (i, FieldEnd::Delimiter(i + 1));
                }
                match c {
                    b'\n' => {
                        value.push_slice(input, &mut self.scratch, segment, i);
                        break (
                            i,
                            FieldEnd::Record {
                                line_end: i,
                                next: i + 1,
                            },
                        );
                    }
                    b'\r' => {
                        let next = match input.get(i + 1) {
                            Some(b'\n') => i + 2,
                            Some(_) => return Err(LITERAL_CR),
                            None if !eof => return Ok(Scanned::Incomplete),
                            None => n,
                        };
                        value.push_slice(input, &mut self.scratch, segment, i);
                        break (i, FieldEnd::Record { line_end: i, next });
                    }
                    b'\\' => {
                        value.push_slice(input, &mut self.scratch, segment, i);
                        let Some(&letter) = input.get(i + 1) else {
                            if !eof {
                                return Ok(Scanned::Incomplete);
                            }
                            // PostgreSQL drops a backslash that ends the data.
                            break (
                                i,
                                FieldEnd::Record {
                                    line_end: n,
                                    next: n,
                                },
                            );
                        };
                        if letter == b'.' {
                            return Self::text_end_marker(input, line_start, i, eof);
                        }
                        let (byte, after) = decode_escape(input, i + 2, letter);
                        if after >= n && !eof {
                            // More octal or hex digits may follow in the next chunk.
                            return Ok(Scanned::Incomplete);
                        }
                        value.push_byte(input, &mut self.scratch, byte);
                        i = after;
                        segment = i;
                    }
                    // Only the bytes matched above stop the skip loop.
                    _ => i += 1,
                }
            };
            self.push_field(&input[field_start..raw_end], value, false);
            match field_end {
                FieldEnd::Delimiter(next) => i = next,
                FieldEnd::Record { line_end, next } => {
                    return Ok(Scanned::Record { line_end, next })
                }
            }
        }
    }

    /// `\.` at `at`: the end of the data if alone on its line, else an error (PostgreSQL 18).
    fn text_end_marker(
        input: &[u8],
        line_start: usize,
        at: usize,
        eof: bool,
    ) -> Result<Scanned, ScanError> {
        if at != line_start {
            return Err(MARKER_NOT_ALONE);
        }
        match (input.get(at + 2), input.get(at + 3)) {
            (Some(b'\n'), _) | (Some(b'\r'), Some(b'\n')) => Ok(Scanned::EndOfData),
            (None, _) | (Some(b'\r'), None) if !eof => Ok(Scanned::Incomplete),
            (Some(b'\r'), None) => Ok(Scanned::EndOfData),
            _ => Err(MARKER_NOT_ALONE),
        }
    }

    /// Whether the record at `line_start` is a CSV `\.` line; `None` if the input is too short
    /// to tell.
    fn csv_end_marker(input: &[u8], line_start: usize, eof: bool) -> Option<bool> {
        let rest = &input[line_start..];
        match rest {
            [b'\\', b'.', b'\n', ..] | [b'\\', b'.', b'\r', b'\n', ..] => Some(true),
            // The line may still turn out to be just the marker.
            [b'\\'] | [b'\\', b'.'] | [b'\\', b'.', b'\r'] if !eof => None,
            [b'\\', b'.'] | [b'\\', b'.', b'\r'] => Some(true),
            _ => Some(false),
        }
    }

    fn scan_csv(
        &mut self,
        input: &[u8],
        line_start: usize,
        eof: bool,
    ) -> Result<Scanned, ScanError> {
        match Self::csv_end_marker(input, line_start, eof) {
            None => return Ok(Scanned::Incomplete),
            Some(true) => return Ok(Scanned::EndOfData),
            Some(false) => {}
        }
        let n = input.len();
        let mut i = line_start;
        loop {
            let field_start = i;
            let mut value = Unescaped::default();
            let mut segment = i;
            let mut quoted = false;
            let (raw_end, field_end) = loop {
                i = self.stop.find(input, i);
                let Some(&c) = input.get(i) else {
                    if !eof {
                        return Ok(Scanned::Incomplete);
                    }
                    value.push_slice(input, &mut self.scratch, segment, n);
                    break (
                        n,
                        FieldEnd::Record {
                            line_end: n,
                            next: n,
                        },
                    );
                };
                if c == self.delimiter {
                    value.push_slice(input, &mut self.scratch, segment, i);
                    break (i, FieldEnd::Delimiter(i + 1));
                }
                if c == self.quote {
                    value.push_slice(input, &mut self.scratch, segment, i);
                    quoted = true;
                    i = self.scan_quoted(input, i + 1, eof, &mut value)?;
                    if i == usize::MAX {
                        return Ok(Scanned::Incomplete);
                    }
                    segment = i;
                    continue;
                }
                match c {
                    b'\n' => {
                        value.push_slice(input, &mut self.scratch, segment, i);
                        break (
                            i,
                            FieldEnd::Record {
                                line_end: i,
                                next: i + 1,
                            },
                        );
                    }
                    b'\r' => {
                        let next = match input.get(i + 1) {
                            Some(b'\n') => i + 2,
                            Some(_) => return Err(UNQUOTED_CR),
                            None if !eof => return Ok(Scanned::Incomplete),
                            None => n,
                        };
                        value.push_slice(input, &mut self.scratch, segment, i);
                        break (i, FieldEnd::Record { line_end: i, next });
                    }
                    // Only the bytes matched above stop the skip loop.
                    _ => i += 1,
                }
            };
            self.push_field(&input[field_start..raw_end], value, quoted);
            match field_end {
                FieldEnd::Delimiter(next) => i = next,
                FieldEnd::Record { line_end, next } => {
                    return Ok(Scanned::Record { line_end, next })
                }
            }
        }
    }

    /// Reads a quoted CSV section whose content starts at `i`; returns the offset just past
    /// the closing quote, or `usize::MAX` if the input ends first (and more may come).
    fn scan_quoted(
        &mut self,
        input: &[u8],
        mut i: usize,
        eof: bool,
        value: &mut Unescaped,
    ) -> Result<usize, ScanError> {
        let n = input.len();
        let content_start = i;
        let count_newlines = |end: usize| {
            let newlines = input[content_start..end].iter().filter(|&&c| c == b'\n');
            newlines.count() as u64
        };
        let mut segment = i;
        loop {
            i = self.quoted_stop.find(input, i);
            let Some(&c) = input.get(i) else {
                if eof {
                    self.quoted_newlines += count_newlines(n);
                    return Err(UNTERMINATED);
                }
                return Ok(usize::MAX);
            };
            if c == self.escape {
                match input.get(i + 1) {
                    Some(&next) if next == self.escape || next == self.quote => {
                        // Keep the escaped byte, drop the escape.
                        value.push_slice(input, &mut self.scratch, segment, i);
                        segment = i + 1;
                        i += 2;
                        continue;
                    }
                    None if !eof => return Ok(usize::MAX),
                    // An escape before anything else is an ordinary byte (or, when it is the
                    // quote too, the closing quote).
                    _ => {}
                }
            }
            if c == self.quote {
                value.push_slice(input, &mut self.scratch, segment, i);
                self.quoted_newlines += count_newlines(i);
                return Ok(i + 1);
            }
            i += 1;
        }
    }

    /// Looks for the first line break in `data` that can end the pending partial record,
    /// carrying quote and backslash state across calls. It only decides when re-parsing the
    /// pending record is worthwhile: parsing itself finds the real record ends.
    pub(super) fn find_record_end(&mut self, data: &[u8]) -> Option<usize> {
        let state = &mut self.end_state;
        for (i, &c) in data.iter().enumerate() {
            if self.csv {
                if self.quote == self.escape {
                    state.in_quote ^= c == self.quote;
                } else {
                    // PostgreSQL's CopyReadLineText: an escape counts only inside quotes and
                    // only when it is not itself escaped.
                    if state.in_quote && c == self.escape {
                        state.last_was_escape = !state.last_was_escape;
                    }
                    if c == self.quote && !state.last_was_escape {
                        state.in_quote = !state.in_quote;
                    }
                    if c != self.escape {
                        state.last_was_escape = false;
                    }
                }
                if c == b'\n' && !state.in_quote {
                    return Some(i);
                }
            } else if state.after_backslash {
                state.after_backslash = false;
            } else if c == b'\\' {
                state.after_backslash = true;
            } else if c == b'\n' {
                return Some(i);
            }
        }
        None
    }

    /// Brings the record-end state up to date with bytes already in the pending record.
    pub(super) fn track_record_end(&mut self, data: &[u8]) {
        let mut rest = data;
        while let Some(end) = self.find_record_end(rest) {
            rest = &rest[end + 1..];
        }
    }

    pub(super) fn reset_record_end(&mut self) {
        self.end_state = EndState::default();
    }
}
