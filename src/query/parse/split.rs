//! Splits a query string into statements at top-level semicolons, respecting quotes
//! (`'..'`, `".."`, DolphinDB's `` ` `` symbols up to the next delimiter), dollar quoting and
//! comments, as the [`lexer`](super::lexer) measures them. Empty statements are dropped.
//!
//! Splitting never fails: an unterminated quote or comment runs to the end of the text, and
//! the parser of that statement reports it. A `/* */` comment ends at its first `*/` here.

use super::lexer::{block_comment_len, dollar_quote_len, line_comment_len, quoted_len};

/// The statements of `sql`, trimmed, without their terminating `;`.
pub fn statements(sql: &str) -> Vec<&str> {
    let bytes = sql.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    // Every slice `&sql[i..]` below starts at an ASCII byte, so at a char boundary.
    while i < bytes.len() {
        match bytes[i] {
            b'\'' | b'"' => i = quoted_len(&sql[i..]).map_or(bytes.len(), |len| i + len),
            b'-' if bytes.get(i + 1) == Some(&b'-') => i += line_comment_len(&sql[i..]),
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i = block_comment_len(&sql[i..], false).map_or(bytes.len(), |len| i + len);
            }
            b'$' => i += dollar_quote_len(&sql[i..]).unwrap_or(1),
            b';' => {
                push(&mut out, &sql[start..i]);
                i += 1;
                start = i;
            }
            _ => i += 1,
        }
    }
    if start < sql.len() {
        push(&mut out, &sql[start..]);
    }
    out
}

fn push<'a>(out: &mut Vec<&'a str>, s: &'a str) {
    if !is_blank(s) {
        out.push(s.trim());
    }
}

/// Whether a piece holds only whitespace and comments.
fn is_blank(s: &str) -> bool {
    let mut rest = s.trim_start();
    loop {
        if rest.is_empty() {
            return true;
        }
        if rest.starts_with("--") {
            rest = rest[line_comment_len(rest)..].trim_start();
        } else if rest.starts_with("/*") {
            rest = block_comment_len(rest, false).map_or("", |len| &rest[len..]);
            rest = rest.trim_start();
        } else {
            return false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::statements;

    #[test]
    fn splits_at_top_level_semicolons_only() {
        assert_eq!(
            statements("select 'a;b'; select \"x;\" -- c;\n; /* ; */ select $$;$$;"),
            vec![
                "select 'a;b'",
                "select \"x;\" -- c;",
                "/* ; */ select $$;$$"
            ]
        );
        assert!(statements(" ; -- nothing\n ;").is_empty());
        assert_eq!(statements("select 1"), vec!["select 1"]);
        assert_eq!(statements("select '"), vec!["select '"]);
    }

    #[test]
    fn unterminated_pieces_run_to_the_end() {
        assert_eq!(statements("select 1 /* a; b"), vec!["select 1 /* a; b"]);
        assert_eq!(statements("select $t$ a; b"), vec!["select $t$ a; b"]);
        assert_eq!(statements("select \"a; b"), vec!["select \"a; b"]);
        // A `$` that opens no dollar quote is an ordinary character.
        assert_eq!(
            statements("select $1; select 2"),
            vec!["select $1", "select 2"]
        );
    }

    #[test]
    fn a_block_comment_ends_at_its_first_close() {
        assert_eq!(
            statements("select 1 /* a /* b */ ; select 2 */"),
            vec!["select 1 /* a /* b */", "select 2 */"]
        );
        assert!(statements("/* a /* b */ ; -- c").is_empty());
    }
}
