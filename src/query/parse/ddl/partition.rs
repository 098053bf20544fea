//! Partition schemes: `VALUE(...)`, `RANGE(...)`, `LIST(...)` and `HASH([TYPE, n])`, with
//! vectors, ranges `a..b` and nested `[...]` groups.

use super::ast::PartitionSpec;
use super::error::{DdlError, INVALID_DEFINITION};
use super::parser::Parser;
use super::MAX_RANGE_ELEMENTS;
use crate::query::parse::lexer::TokenKind;
use crate::query::parse::literal::{self, Literal, LiteralError};

/// How deeply `[...]` vectors may nest; bounds the parser's recursion.
pub(super) const MAX_NESTING: usize = 16;

/// An element of a partition scheme before flattening: LIST needs to know which values
/// were grouped together, VALUE and RANGE just concatenate.
pub(super) enum SchemeItem {
    /// A scalar, a juxtaposed vector (`` `A`B ``, `0 5 10`) or an expanded range `a..b`.
    Vector(Vec<Literal>),
    /// A bracketed vector `[...]`.
    Bracketed(Vec<SchemeItem>),
}

impl SchemeItem {
    pub(super) fn flatten_into(self, out: &mut Vec<Literal>) {
        match self {
            SchemeItem::Vector(values) => out.extend(values),
            SchemeItem::Bracketed(items) => {
                for item in items {
                    item.flatten_into(out);
                }
            }
        }
    }

    pub(super) fn flatten(self) -> Vec<Literal> {
        let mut out = Vec::new();
        self.flatten_into(&mut out);
        out
    }
}

fn flatten_all(items: Vec<SchemeItem>) -> Vec<Literal> {
    let mut out = Vec::new();
    for item in items {
        item.flatten_into(&mut out);
    }
    out
}

impl Parser<'_> {
    /// `VALUE(...)`, `RANGE(...)`, `LIST(...)` or `HASH([TYPE, n])`.
    pub(super) fn partition_level(&mut self) -> Result<PartitionSpec, DdlError> {
        let token = self.advance();
        let TokenKind::Word(word) = &token.kind else {
            return Err(self.syntax_error(&token, "a partition type (VALUE, RANGE, LIST or HASH)"));
        };
        let kind = word.to_ascii_uppercase();
        if !matches!(kind.as_str(), "VALUE" | "RANGE" | "LIST" | "HASH") {
            return Err(DdlError::new(
                format!("unknown partition type {word}: expected VALUE, RANGE, LIST or HASH"),
                token.start,
            ));
        }
        self.expect(&TokenKind::LParen, &format!("\"(\" after {kind}"))?;
        let spec = if kind == "HASH" {
            self.hash_scheme()?
        } else {
            let items = self.scheme_items(0)?;
            let empty = |what: &str| {
                DdlError::invalid(
                    format!("{kind} partition scheme {what}"),
                    token.start,
                    INVALID_DEFINITION,
                )
            };
            match kind.as_str() {
                "VALUE" => {
                    let values = flatten_all(items);
                    if values.is_empty() {
                        return Err(empty("is empty"));
                    }
                    PartitionSpec::Value(values)
                }
                "RANGE" => {
                    let bounds = flatten_all(items);
                    if bounds.len() < 2 {
                        return Err(empty("needs at least 2 boundaries"));
                    }
                    PartitionSpec::Range(bounds)
                }
                _ => {
                    let groups = list_groups(items);
                    if groups.is_empty() {
                        return Err(empty("is empty"));
                    }
                    if groups.iter().any(Vec::is_empty) {
                        return Err(empty("has an empty partition"));
                    }
                    PartitionSpec::List(groups)
                }
            }
        };
        self.expect(&TokenKind::RParen, &format!("\")\" to close {kind}(...)"))?;
        Ok(spec)
    }

    /// `[TYPE, n]` inside `HASH(...)`.
    pub(super) fn hash_scheme(&mut self) -> Result<PartitionSpec, DdlError> {
        let shape_error = |parser: &Self| {
            DdlError::new(
                "HASH expects [TYPE, buckets], e.g. HASH([SYMBOL, 40])",
                parser.peek().start,
            )
        };
        if !self.eat(&TokenKind::LBracket) {
            return Err(shape_error(self));
        }
        let TokenKind::Word(type_name) = self.peek().kind.clone() else {
            return Err(shape_error(self));
        };
        self.advance();
        if !self.eat(&TokenKind::Comma)
            || !matches!(self.peek().kind, TokenKind::Number | TokenKind::Minus)
        {
            return Err(shape_error(self));
        }
        let start = self.peek().start;
        let buckets = match self.scalar(false)? {
            Literal::Int(buckets) if buckets > 0 => buckets,
            other => {
                return Err(DdlError::invalid(
                    format!("HASH bucket count must be a positive integer, got {other}"),
                    start,
                    INVALID_DEFINITION,
                ))
            }
        };
        if !self.eat(&TokenKind::RBracket) {
            return Err(shape_error(self));
        }
        Ok(PartitionSpec::Hash { type_name, buckets })
    }

    /// Comma-separated scheme items up to (not including) `)` or `]`.
    pub(super) fn scheme_items(&mut self, depth: usize) -> Result<Vec<SchemeItem>, DdlError> {
        let mut items = Vec::new();
        if matches!(self.peek().kind, TokenKind::RParen | TokenKind::RBracket) {
            return Ok(items);
        }
        loop {
            items.push(self.scheme_item(depth)?);
            if !self.eat(&TokenKind::Comma) {
                return Ok(items);
            }
        }
    }

    /// `[...]`, a range `a..b`, or one or more juxtaposed scalars (`0 5 10`, `` `A`B ``).
    pub(super) fn scheme_item(&mut self, depth: usize) -> Result<SchemeItem, DdlError> {
        let start = self.peek().start;
        if self.eat(&TokenKind::LBracket) {
            if depth >= MAX_NESTING {
                return Err(DdlError::new("vectors are nested too deeply", start));
            }
            let items = self.scheme_items(depth + 1)?;
            self.expect(&TokenKind::RBracket, "\",\" or \"]\" in the vector")?;
            return Ok(SchemeItem::Bracketed(items));
        }
        let first = self.scalar(false)?;
        if self.eat(&TokenKind::DotDot) {
            let last = self.scalar(false)?;
            return self
                .expand_range(&first, &last, start)
                .map(SchemeItem::Vector);
        }
        let mut values = vec![first];
        while self.starts_scalar() {
            values.push(self.scalar(false)?);
        }
        Ok(SchemeItem::Vector(values))
    }

    /// Expands `first..last`, charging the statement's range budget.
    pub(super) fn expand_range(
        &mut self,
        first: &Literal,
        last: &Literal,
        position: usize,
    ) -> Result<Vec<Literal>, DdlError> {
        let scheme_error =
            |e: LiteralError| DdlError::new(format!("partition scheme {e}"), position);
        let len = literal::range_len(first, last).map_err(scheme_error)?;
        if len > MAX_RANGE_ELEMENTS {
            return Err(DdlError::new(
                format!(
                    "partition scheme range {first}..{last} has {len} elements; \
                     at most {MAX_RANGE_ELEMENTS} are allowed"
                ),
                position,
            ));
        }
        if self.range_elements + len > MAX_RANGE_ELEMENTS {
            return Err(DdlError::new(
                format!(
                    "partition scheme ranges expand to more than {MAX_RANGE_ELEMENTS} elements"
                ),
                position,
            ));
        }
        self.range_elements += len;
        // MAX_RANGE_ELEMENTS is far below usize::MAX on every supported platform.
        let max_len = usize::try_from(MAX_RANGE_ELEMENTS).unwrap_or(usize::MAX);
        literal::expand_range(first, last, max_len).map_err(scheme_error)
    }
}

/// The groups of a LIST scheme. With one argument that is a bracketed vector, each of its
/// items is a group (`` LIST([`A`B, `C]) ``, `LIST([[1,2],[3]])`); with one unbracketed
/// argument each value is a group (`` LIST(`A`B) ``); with several arguments each argument
/// is a group (`LIST(['a','b'], ['c'])`).
fn list_groups(mut items: Vec<SchemeItem>) -> Vec<Vec<Literal>> {
    if items.len() == 1 {
        match items.remove(0) {
            SchemeItem::Bracketed(inner) => inner.into_iter().map(SchemeItem::flatten).collect(),
            SchemeItem::Vector(values) => values.into_iter().map(|value| vec![value]).collect(),
        }
    } else {
        items.into_iter().map(SchemeItem::flatten).collect()
    }
}
