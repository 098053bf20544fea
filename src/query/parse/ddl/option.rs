//! `name = value` options of databases, tables and columns.

use super::error::DdlError;
use super::parser::Parser;
use crate::query::parse::lexer::TokenKind;
use crate::query::parse::literal::Literal;

impl Parser<'_> {
    /// `name = value`, appended to `options`; a repeated name (ignoring case) is an error.
    pub(super) fn option(&mut self, options: &mut Vec<(String, Literal)>) -> Result<(), DdlError> {
        let token = self.peek().clone();
        let TokenKind::Word(name) = token.kind else {
            return Err(self.unexpected("an option such as name = value"));
        };
        self.advance();
        self.expect(&TokenKind::Eq, &format!("\"=\" after option name {name}"))?;
        let value = self.option_value()?;
        if options
            .iter()
            .any(|(existing, _)| existing.eq_ignore_ascii_case(&name))
        {
            return Err(DdlError::new(
                format!("option {name} is specified more than once"),
                token.start,
            ));
        }
        options.push((name, value));
        Ok(())
    }

    /// An option value: any literal, a bare word (→ `Ident`), or a symbol vector
    /// `` `a`b `` (→ `String("a,b")`; a single `` `a `` stays `Symbol("a")`).
    pub(super) fn option_value(&mut self) -> Result<Literal, DdlError> {
        let mut symbols = Vec::new();
        while let TokenKind::Symbol(name) = &self.peek().kind {
            symbols.push(name.clone());
            self.advance();
        }
        match symbols.len() {
            0 => self.scalar(true),
            1 => Ok(Literal::Symbol(symbols.remove(0))),
            _ => Ok(Literal::String(symbols.join(","))),
        }
    }
}
