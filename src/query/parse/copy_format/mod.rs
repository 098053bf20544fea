//! `COPY ... FROM STDIN` data: PostgreSQL's text and CSV formats parsed into Arrow batches
//! ([`CopyParser`]), and its binary format ([`BinaryParser`], described in `binary.rs`).
//!
//! This module owns the byte-level half of `COPY FROM`. The session hands [`CopyParser`] the
//! payload of every `CopyData` message exactly as the client chunked it (a chunk may end in the
//! middle of a line, a field, a quoted section or a multi-byte UTF-8 character); the parser
//! splits the stream into records and fields the way PostgreSQL's `copyfromparse.c` does,
//! converts every field with the input rules of the PostgreSQL type that corresponds to the
//! target Arrow column, and returns [`RecordBatch`]es of a fixed number of rows. It knows
//! nothing of the wire protocol, the catalog or storage.
//!
//! # PostgreSQL rules it follows
//!
//! * **Text format.** Fields are separated by the delimiter (default tab), records end at `\n`
//!   or `\r\n`. A field whose *raw* bytes equal the NULL string (default `\N`) is NULL. Backslash
//!   escapes are `\b \f \n \r \t \v`, `\ddd` (one to three octal digits), `\xh`/`\xhh` (one or
//!   two hex digits) and `\c` for any other byte `c` (so `\\` and `\<delimiter>`); a backslash
//!   followed by a line break makes the break part of the value. `\.` ends the data when it is
//!   alone on its line, anything after it is ignored, and anywhere else it is an error
//!   (PostgreSQL 18). A blank line is a record with one empty field.
//! * **CSV format.** RFC 4180 quoting with the configured quote (default `"`); inside quotes the
//!   escape character (default: the quote itself, i.e. doubled quotes) escapes a quote or
//!   itself; quoted sections may hold delimiters and line breaks and may appear anywhere in a
//!   field (`a"b,c"d` is `ab,cd`). Only an *unquoted* field equal to the NULL string (default
//!   empty) is NULL, so `""` is an empty string. A line holding only `\.` ends the data, as
//!   psql treats it. A quote still open at the end of the data is `unterminated CSV quoted
//!   field`.
//! * **Header.** With `header` the first record is skipped (PostgreSQL 15+ allows it in both
//!   formats). Line numbers in error contexts count from 1, the header included, one per
//!   record plus one per line feed inside quoted CSV fields, as PostgreSQL's `cur_lineno` does.
//! * **Fields and errors.** More fields than columns is `extra data after last expected column`
//!   and is detected before any conversion; fewer is `missing data for column "c"` once the
//!   conversion reaches that column (both `22P04`). Conversion errors use PostgreSQL's SQLSTATEs
//!   and wording (`22P02`, `22003`, `22008`, `22021`, ...) and its CONTEXT line,
//!   `COPY t, line 3, column c: "value"` (values longer than 100 bytes are cut and marked
//!   `...`). A NULL in a non-nullable column is reported (`23502`) only after the whole row
//!   converted, as PostgreSQL checks constraints after input conversion.
//! * **Values.** Integers follow PostgreSQL 16 (surrounding whitespace, `+`/`-`, `0x`/`0o`/`0b`
//!   prefixes, `_` between digits); floats accept `NaN`, `Infinity`, `-Infinity` and report
//!   overflow and underflow to zero as out of range; booleans accept the unique prefixes
//!   PostgreSQL accepts; `bytea` takes the hex (`\x0a0b`) and escape forms; numerics are rounded
//!   half away from zero to the column's scale.
//!   Dates, times and timestamps are read by [`super::temporal`] in its PostgreSQL syntax.
//!
//! # Where it deliberately differs
//!
//! * `\n` and `\r\n` line endings may be mixed (PostgreSQL fixes the style from the first line);
//!   a bare `\r` outside a quoted CSV field is still rejected.
//! * Dates and timestamps accept ISO forms plus DolphinDB's `2023.01.08`; PostgreSQL's many
//!   other spellings (month names, two-digit years, `BC`) are syntax errors.
//! * A UTC offset (`Z`, `+08`, `+05:30`, `-0800`) on a timestamp is applied: the stored value is
//!   UTC. PostgreSQL silently drops it for `timestamp without time zone`.
//! * Fractional seconds finer than the column's unit are **rounded half up** on the dropped
//!   digits (`09:30:00.5` into a seconds column is `09:30:01`), which is what PostgreSQL does
//!   for `timestamp(p)` after 2000-01-01. A time that rounds up to `24:00:00`, or is `24:00:00`,
//!   does not fit an Arrow time column and is `date/time field value out of range`.
//! * Arrow `Int8` reports itself as `smallint`, the type arrow-pg shows clients for it.
//!
//! # Performance
//!
//! A record is split in one pass: the bytes that matter (delimiter, line breaks, quote or
//! backslash) are searched for eight at a time with word-wide bit tricks. Fields are borrowed
//! from the input unless an escape or a quote forces a copy into a reusable scratch buffer, and
//! values go straight into typed column buffers (`Vec<T>` plus a validity bitmap that only
//! materialises once a NULL appears) through hand-written parsers with fast paths for the
//! common shapes: plain decimal integers, short plain decimal floats (exact by Clinger's
//! argument: an integer below 2^53 divided by a power of ten up to 10^22), and ISO timestamps.
//! Nothing allocates per field. Chunks are parsed in place; only the incomplete record at the
//! end of a chunk is copied, and a resumable scan finds where it ends, so a long record spread
//! over many chunks is parsed once.
//!
//! The per-value functions (a column's `append`, the value parsers in `value/` and the
//! temporal scanners they call) are `#[inline]`: they sit in other modules than their callers,
//! and a release build does not inline across modules on its own, which cost 17 % of the
//! parse time when this code was split into files. `cargo bench --bench copy_parser` measures it.

mod binary;
mod byte_set;
mod column;
mod error;
mod escape;
mod options;
mod parser;
mod scanner;
mod value;

pub use binary::{BinaryParser, SIGNATURE as BINARY_SIGNATURE};
pub use error::CopyError;
pub use options::{CopyFormat, CopyOptions};
pub use parser::CopyParser;

#[cfg(test)]
mod tests;
