//! The one lexer of the statements porpoise reads itself: DDL ([`super::ddl`]), user
//! statements ([`super::users`]), and the quoting and comment rules by which
//! [`super::split`] finds where a statement ends.
//!
//! [`Lexer`] turns a statement into [`Token`]s that remember their byte range, so a parser can
//! quote the text it rejects and say where. What counts as a word, a literal or a comment
//! depends on the [`Grammar`]. The quoting rules are the same everywhere: `'...'` is a string
//! and `"..."` a quoted identifier, each with its quote doubled inside; the functions
//! [`quoted_len`], [`line_comment_len`], [`block_comment_len`] and [`dollar_quote_len`] measure
//! one such piece of text for callers that only need to skip it.
//!
//! Nothing here panics on any input, and every position is a char boundary.

use super::literal;

/// What the words, literals and comments of a statement family look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grammar {
    /// DDL: DolphinDB numeric and temporal literals (a token that starts with a digit,
    /// see [`literal::numeric_token_len`]), `` `symbols ``, `-- line` comments and nested
    /// `/* */` comments.
    Ddl,
    /// `CREATE USER`, `GRANT` and friends: a word may start with a digit; there are no
    /// literals, symbols or comments, so `-`, `/` and `` ` `` are tokens of their own.
    Users,
}

/// One token kind; strings, identifiers and symbols carry their value, everything else is
/// read from the source through the token's range.
#[derive(Debug, Clone, PartialEq)]
pub enum TokenKind {
    /// An unquoted identifier or keyword, as written.
    Word(String),
    /// `"..."`, with `""` unescaped.
    QuotedIdent(String),
    /// `'...'`, with `''` unescaped.
    Str(String),
    /// A numeric or temporal literal; its text is read from the source by position.
    Number,
    /// `` `name ``.
    Symbol(String),
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Dot,
    DotDot,
    Semicolon,
    Eq,
    Minus,
    /// Any other character; always a syntax error, reported with what was expected there.
    Other,
    Eof,
}

/// A token and where it is in the statement.
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub kind: TokenKind,
    /// Byte range in the source; both ends are char boundaries.
    pub start: usize,
    pub end: usize,
}

impl Token {
    /// Whether this is the (case-insensitive) keyword `keyword`, given in lowercase.
    pub fn is_keyword(&self, keyword: &str) -> bool {
        matches!(&self.kind, TokenKind::Word(word) if word.eq_ignore_ascii_case(keyword))
    }
}

/// Text the lexer cannot read, with the byte offset where the offending token starts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LexError {
    #[error("unterminated quoted string")]
    UnterminatedString { position: usize },
    #[error("unterminated quoted identifier")]
    UnterminatedIdentifier { position: usize },
    #[error("unterminated /* comment")]
    UnterminatedComment { position: usize },
    #[error("empty symbol literal: expected a name after `")]
    EmptySymbol { position: usize },
}

impl LexError {
    /// Byte offset into the statement (a char boundary).
    pub fn position(&self) -> usize {
        match self {
            LexError::UnterminatedString { position }
            | LexError::UnterminatedIdentifier { position }
            | LexError::UnterminatedComment { position }
            | LexError::EmptySymbol { position } => *position,
        }
    }
}

/// Reads the tokens of one statement, front to back.
pub struct Lexer<'a> {
    sql: &'a str,
    grammar: Grammar,
    /// Byte offset of the next unread char.
    pos: usize,
}

impl<'a> Lexer<'a> {
    pub fn new(sql: &'a str, grammar: Grammar) -> Self {
        Lexer {
            sql,
            grammar,
            pos: 0,
        }
    }

    /// Every token of the statement, and the final [`TokenKind::Eof`] apart.
    pub fn tokenize(mut self) -> Result<(Vec<Token>, Token), LexError> {
        let mut tokens = Vec::new();
        loop {
            let token = self.next_token()?;
            if token.kind == TokenKind::Eof {
                return Ok((tokens, token));
            }
            tokens.push(token);
        }
    }

    /// The unread input. `pos` only ever advances by whole chars, so the slice is valid.
    fn rest(&self) -> &'a str {
        self.sql.get(self.pos..).unwrap_or("")
    }

    /// Skips whitespace and, in DDL, `-- line` comments and (nested, as in PostgreSQL)
    /// `/* */` comments.
    fn skip_trivia(&mut self) -> Result<(), LexError> {
        loop {
            let rest = self.rest();
            let trimmed = rest.trim_start();
            self.pos += rest.len() - trimmed.len();
            if self.grammar == Grammar::Users {
                return Ok(());
            }
            if trimmed.starts_with("--") {
                self.pos += line_comment_len(trimmed);
            } else if trimmed.starts_with("/*") {
                let position = self.pos;
                self.pos += block_comment_len(trimmed, true)
                    .ok_or(LexError::UnterminatedComment { position })?;
            } else {
                return Ok(());
            }
        }
    }

    /// The next token; [`TokenKind::Eof`] (again and again) at the end.
    pub fn next_token(&mut self) -> Result<Token, LexError> {
        self.skip_trivia()?;
        let start = self.pos;
        let rest = self.rest();
        let Some(c) = rest.chars().next() else {
            return Ok(Token {
                kind: TokenKind::Eof,
                start,
                end: start,
            });
        };
        let punctuation = match c {
            '(' => Some(TokenKind::LParen),
            ')' => Some(TokenKind::RParen),
            '[' => Some(TokenKind::LBracket),
            ']' => Some(TokenKind::RBracket),
            ',' => Some(TokenKind::Comma),
            ';' => Some(TokenKind::Semicolon),
            '=' => Some(TokenKind::Eq),
            '-' => Some(TokenKind::Minus),
            '.' if !rest.starts_with("..") => Some(TokenKind::Dot),
            _ => None,
        };
        let ddl = self.grammar == Grammar::Ddl;
        let starts_word = if ddl {
            c.is_alphabetic() || c == '_'
        } else {
            c.is_alphanumeric() || c == '_'
        };
        let kind = if let Some(kind) = punctuation {
            self.pos += 1;
            kind
        } else if rest.starts_with("..") {
            self.pos += 2;
            TokenKind::DotDot
        } else if c == '\'' {
            let value = self.quoted(LexError::UnterminatedString { position: start })?;
            TokenKind::Str(value)
        } else if c == '"' {
            let value = self.quoted(LexError::UnterminatedIdentifier { position: start })?;
            TokenKind::QuotedIdent(value)
        } else if c == '`' && ddl {
            TokenKind::Symbol(self.symbol()?)
        } else if c.is_ascii_digit() && ddl {
            self.pos += literal::numeric_token_len(rest);
            TokenKind::Number
        } else if starts_word {
            let len = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$'))
                .unwrap_or(rest.len());
            self.pos += len;
            TokenKind::Word(rest[..len].to_string())
        } else {
            self.pos += c.len_utf8();
            TokenKind::Other
        };
        Ok(Token {
            kind,
            start,
            end: self.pos,
        })
    }

    /// Reads the quoted token at `pos` (see [`quoted_len`]); `unterminated` if it never ends.
    fn quoted(&mut self, unterminated: LexError) -> Result<String, LexError> {
        let rest = self.rest();
        let len = quoted_len(rest).ok_or(unterminated)?;
        self.pos += len;
        Ok(unquote(rest, len))
    }

    /// Reads `` `name `` at `pos`. Names are letters, digits and `_` (`` `600519 `` is a
    /// valid stock symbol). `` `a`b `` lexes as two symbols; the parser makes the vector.
    fn symbol(&mut self) -> Result<String, LexError> {
        let start = self.pos;
        let name_part = self.rest().get(1..).unwrap_or("");
        let len = name_part
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(name_part.len());
        if len == 0 {
            return Err(LexError::EmptySymbol { position: start });
        }
        self.pos += 1 + len;
        Ok(name_part[..len].to_string())
    }
}

/// The length of the `'...'` or `"..."` at the start of `rest` (whose first char is the
/// quote), closing quote included; a doubled quote inside stands for one. `None` if the
/// quote is never closed.
pub fn quoted_len(rest: &str) -> Option<usize> {
    let bytes = rest.as_bytes();
    let quote = *bytes.first()?;
    let mut i = 1;
    while i < bytes.len() {
        if bytes[i] == quote {
            if bytes.get(i + 1) == Some(&quote) {
                i += 2;
                continue;
            }
            return Some(i + 1);
        }
        i += 1;
    }
    None
}

/// The value of the quoted text `rest[..len]` measured by [`quoted_len`]: without its quotes,
/// doubled quotes made single.
fn unquote(rest: &str, len: usize) -> String {
    let quote = &rest[..1];
    let body = &rest[1..len - 1];
    body.replace(&quote.repeat(2), quote)
}

/// The length of the `-- comment` at the start of `rest`, up to (not including) the line
/// feed that ends it.
pub fn line_comment_len(rest: &str) -> usize {
    rest.find('\n').unwrap_or(rest.len())
}

/// The length of the `/* comment */` at the start of `rest`, `*/` included; `None` if it is
/// never closed. With `nested`, `/*` inside opens a comment that needs its own `*/`, as in
/// PostgreSQL; without, the first `*/` ends it.
pub fn block_comment_len(rest: &str, nested: bool) -> Option<usize> {
    let bytes = rest.as_bytes();
    // The opening `/*`.
    let mut depth = 1_usize;
    let mut i = 2;
    while i + 1 < bytes.len() {
        match (bytes[i], bytes[i + 1]) {
            (b'/', b'*') if nested => {
                depth += 1;
                i += 2;
            }
            (b'*', b'/') => {
                depth -= 1;
                i += 2;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => i += 1,
        }
    }
    None
}

/// The length of the `$tag$ ... $tag$` at the start of `rest` (whose first char is `$`),
/// closing tag included, or all of `rest` if the tag is never repeated. `None` if the `$`
/// does not open a dollar quote: the tag (letters, digits and `_`) must be followed by `$`.
pub fn dollar_quote_len(rest: &str) -> Option<usize> {
    let bytes = rest.as_bytes();
    let tag_end = 1 + bytes
        .get(1..)?
        .iter()
        .position(|b| !(b.is_ascii_alphanumeric() || *b == b'_'))?;
    if bytes[tag_end] != b'$' {
        return None;
    }
    let tag = &rest[..=tag_end];
    let body = &rest[tag_end + 1..];
    Some(match body.find(tag) {
        Some(p) => tag_end + 1 + p + tag.len(),
        None => rest.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(sql: &str, grammar: Grammar) -> Vec<TokenKind> {
        let (tokens, _) = Lexer::new(sql, grammar).tokenize().unwrap();
        tokens.into_iter().map(|token| token.kind).collect()
    }

    fn word(text: &str) -> TokenKind {
        TokenKind::Word(text.into())
    }

    #[test]
    fn the_grammars_differ_in_literals_symbols_and_comments() {
        let sql = "a 1x `s -- c\n/* d */";
        assert_eq!(
            kinds(sql, Grammar::Ddl),
            [word("a"), TokenKind::Number, TokenKind::Symbol("s".into())]
        );
        assert_eq!(
            kinds(sql, Grammar::Users),
            [
                word("a"),
                word("1x"),
                TokenKind::Other,
                word("s"),
                TokenKind::Minus,
                TokenKind::Minus,
                word("c"),
                TokenKind::Other,
                TokenKind::Other,
                word("d"),
                TokenKind::Other,
                TokenKind::Other,
            ]
        );
    }

    #[test]
    fn quotes_are_doubled_inside() {
        assert_eq!(
            kinds(r#"'it''s' "a""b" '' "#, Grammar::Users),
            [
                TokenKind::Str("it's".into()),
                TokenKind::QuotedIdent("a\"b".into()),
                TokenKind::Str(String::new()),
            ]
        );
        assert_eq!(quoted_len("'a''b' c"), Some(6));
        assert_eq!(quoted_len("'a''"), None);
        assert_eq!(quoted_len("\"é\"x"), Some(4));
    }

    #[test]
    fn errors_say_where_the_token_starts() {
        let error = |sql| Lexer::new(sql, Grammar::Ddl).tokenize().unwrap_err();
        assert_eq!(error("a 'b"), LexError::UnterminatedString { position: 2 });
        assert_eq!(
            error("a \"b"),
            LexError::UnterminatedIdentifier { position: 2 }
        );
        assert_eq!(
            error("a /* /* */"),
            LexError::UnterminatedComment { position: 2 }
        );
        assert_eq!(error("a ` b"), LexError::EmptySymbol { position: 2 });
        assert_eq!(
            error("a ` b").to_string(),
            "empty symbol literal: expected a name after `"
        );
    }

    #[test]
    fn comments_and_dollar_quotes() {
        assert_eq!(line_comment_len("-- a\nb"), 4);
        assert_eq!(line_comment_len("-- a"), 4);
        assert_eq!(block_comment_len("/* a /* b */ c */ d", true), Some(17));
        assert_eq!(block_comment_len("/* a /* b */ c */ d", false), Some(12));
        assert_eq!(block_comment_len("/*/", true), None);
        assert_eq!(block_comment_len("/**/", false), Some(4));
        assert_eq!(dollar_quote_len("$$a;b$$;"), Some(7));
        assert_eq!(dollar_quote_len("$t$a$$b$t$ c"), Some(10));
        assert_eq!(dollar_quote_len("$t$never"), Some(8));
        assert_eq!(dollar_quote_len("$1;"), None);
        assert_eq!(dollar_quote_len("$"), None);
        assert_eq!(dollar_quote_len("$abc"), None);
    }
}
