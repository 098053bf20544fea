//! The options of `COPY FROM` that decide how the data is read, with PostgreSQL's defaults
//! and the checks PostgreSQL makes on them.

use super::error::CopyError;

/// The formats of COPY data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyFormat {
    /// PostgreSQL's default `text` format: delimiter-separated fields, backslash escapes.
    Text,
    /// `FORMAT csv`: RFC 4180 quoting.
    Csv,
    /// `FORMAT binary`: PostgreSQL's binary COPY format, read by
    /// [`super::BinaryParser`] rather than [`super::CopyParser`].
    Binary,
}

/// The options of a `COPY FROM` statement that affect how the data is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyOptions {
    /// Text or CSV.
    pub format: CopyFormat,
    /// The field separator: `b'\t'` for text, `b','` for CSV by default.
    pub delimiter: u8,
    /// The raw field content that means NULL: `\N` for text, the empty string for CSV.
    pub null: String,
    /// Skip the first record.
    pub header: bool,
    /// CSV only: the quote character, `b'"'` by default.
    pub quote: u8,
    /// CSV only: the character that escapes a quote inside a quoted field; the quote itself
    /// (so quotes are doubled) by default.
    pub escape: u8,
}

impl CopyOptions {
    /// PostgreSQL's defaults for `FORMAT text`.
    pub fn text() -> Self {
        Self {
            format: CopyFormat::Text,
            delimiter: b'\t',
            null: "\\N".to_owned(),
            header: false,
            quote: b'"',
            escape: b'"',
        }
    }

    /// PostgreSQL's defaults for `FORMAT csv`.
    pub fn csv() -> Self {
        Self {
            format: CopyFormat::Csv,
            delimiter: b',',
            null: String::new(),
            header: false,
            quote: b'"',
            escape: b'"',
        }
    }

    /// PostgreSQL's defaults for `FORMAT binary` (which has none of the textual options).
    pub fn binary() -> Self {
        Self {
            format: CopyFormat::Binary,
            ..Self::text()
        }
    }

    /// The checks PostgreSQL's `ProcessCopyOptions` makes on the textual options.
    pub fn validate(&self) -> Result<(), CopyError> {
        let invalid = |message: String| Err(CopyError::new("22023", message, None));
        for (byte, what) in [
            (self.delimiter, "delimiter"),
            (self.quote, "quote"),
            (self.escape, "escape"),
        ] {
            if !byte.is_ascii() {
                return Err(CopyError::new(
                    "0A000",
                    format!("COPY {what} must be a single one-byte character"),
                    None,
                ));
            }
        }
        if self.format == CopyFormat::Binary {
            return Ok(());
        }
        let null = self.null.as_bytes();
        if matches!(self.delimiter, b'\n' | b'\r') {
            return invalid("COPY delimiter cannot be newline or carriage return".into());
        }
        if null.contains(&b'\n') || null.contains(&b'\r') {
            return invalid(
                "COPY null representation cannot use newline or carriage return".into(),
            );
        }
        match self.format {
            CopyFormat::Text => {
                // These would be read as (part of) a backslash escape instead.
                if b"\\.abcdefghijklmnopqrstuvwxyz0123456789".contains(&self.delimiter) {
                    return invalid(format!(
                        "COPY delimiter cannot be \"{}\"",
                        char::from(self.delimiter)
                    ));
                }
            }
            CopyFormat::Binary => {}
            CopyFormat::Csv => {
                if self.quote == self.delimiter {
                    return invalid("COPY delimiter and quote must be different".into());
                }
                if null.contains(&self.quote) {
                    return invalid(
                        "CSV quote character must not appear in the NULL specification".into(),
                    );
                }
            }
        }
        if null.contains(&self.delimiter) {
            return invalid(
                "COPY delimiter character must not appear in the NULL specification".into(),
            );
        }
        Ok(())
    }
}

impl Default for CopyOptions {
    fn default() -> Self {
        Self::text()
    }
}
