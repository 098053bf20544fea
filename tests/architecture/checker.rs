//! The checker behind this test binary: reads Rust sources as text, collects the crate paths
//! each file uses, and checks them against the layering rule written in `src/lib.rs` and
//! against import circles between files.
//!
//! What counts as an import of file `F` (module path `m`):
//! - every path of a `use` item that starts with `crate`, `super` or `self`, grouped trees
//!   (`use crate::{a, b::{c, d}}`) expanded, globs standing for their module;
//! - every `crate::…` or `super::…` path written anywhere else in the code (expressions,
//!   types, impls).
//!
//! `super` and `self` are resolved against the module the path is written in, inline modules
//! (`mod tests { use super::*; }`) included. A path then points at the longest module prefix
//! that is a file of the crate: `crate::storage::FileIndex` is an import of `src/storage/mod.rs`
//! (a re-export is not followed to the file that defines the item). Comments, doc links and
//! string literals are not imports; `$crate` in macros is skipped.
//!
//! Circles: the graph of files and their imports, without the edges from a module to its own
//! submodules (a parent declares and re-exports its children: that is structure, not a
//! dependency). Every strongly connected component of more than one file is a circle.

use std::collections::{BTreeMap, BTreeSet};

/// One source file: where it is (for messages, e.g. `src/query/copy.rs`) and its text.
pub struct Source {
    pub path: String,
    pub text: String,
}

/// The module path of a file of `src/`: `src/lib.rs` is the crate root (``), `src/a.rs` and
/// `src/a/mod.rs` are `a`, `src/a/b.rs` is `a::b`.
pub fn module_of(path: &str) -> Option<String> {
    let rel = path.strip_prefix("src/")?.strip_suffix(".rs")?;
    let mut parts: Vec<&str> = rel.split('/').collect();
    if parts.last() == Some(&"mod") || rel == "lib" {
        parts.pop();
    }
    Some(parts.join("::"))
}

/// Whether module path `prefix` is `path` or one of its ancestors (segment-wise; `` is the
/// ancestor of every path).
pub fn is_prefix(prefix: &str, path: &str) -> bool {
    prefix.is_empty()
        || path == prefix
        || (path.starts_with(prefix) && path[prefix.len()..].starts_with("::"))
}

/// The layering rule: layers from top to bottom, each a list of module paths (entries).
#[derive(Debug, PartialEq)]
pub struct Rule {
    pub layers: Vec<Vec<String>>,
}

/// The line of `src/lib.rs` after which the layers are listed, one `- ` bullet per layer.
pub const RULE_MARKER: &str = "Layers, top to bottom:";

impl Rule {
    /// Reads the rule from the `//!` docs of `lib.rs`: after the line holding
    /// [`RULE_MARKER`], one bullet per layer (``- `a`, `b::c`: why``, the why possibly going on
    /// over the next lines), up to the first empty line.
    pub fn parse(lib_rs: &str) -> Result<Rule, String> {
        let docs: Vec<&str> = lib_rs
            .lines()
            .filter_map(|l| l.trim_start().strip_prefix("//!"))
            .map(str::trim)
            .collect();
        let start = docs
            .iter()
            .position(|l| l.contains(RULE_MARKER))
            .ok_or_else(|| format!("no line with {RULE_MARKER:?} in the docs of lib.rs"))?;
        let mut layers = Vec::new();
        for line in docs[start + 1..].iter().skip_while(|l| l.is_empty()) {
            if line.is_empty() {
                break;
            }
            match line.strip_prefix("- ") {
                Some(bullet) => layers.push(parse_entries(bullet)?),
                // The why of the bullet above, going on.
                None if !layers.is_empty() => {}
                None => return Err(format!("a layer's line does not start with \"- \": {line}")),
            }
        }
        if layers.is_empty() {
            return Err(format!("no layers listed after {RULE_MARKER:?}"));
        }
        let mut seen = BTreeSet::new();
        for entry in layers.iter().flatten() {
            if !seen.insert(entry) {
                return Err(format!("`{entry}` is listed twice in the layering rule"));
            }
        }
        Ok(Rule { layers })
    }

    /// The entry a module belongs to: the longest listed path that prefixes it, with its
    /// layer (0 is the top).
    pub fn entry(&self, module: &str) -> Option<(usize, &str)> {
        self.layers
            .iter()
            .enumerate()
            .flat_map(|(layer, entries)| entries.iter().map(move |e| (layer, e.as_str())))
            .filter(|(_, e)| is_prefix(e, module))
            .max_by_key(|(_, e)| e.len())
    }
}

/// ``- `a`, `b::c`: comment`` without the `- `: the backquoted module paths.
fn parse_entries(bullet: &str) -> Result<Vec<String>, String> {
    let bad = || format!("layer line {bullet:?} is not of the form `a`, `b::c`: comment");
    let mut rest = bullet;
    let mut entries = Vec::new();
    loop {
        let inner = rest.strip_prefix('`').ok_or_else(bad)?;
        let end = inner.find('`').ok_or_else(bad)?;
        let path = &inner[..end];
        let valid = path.split("::").all(|seg| {
            !seg.is_empty() && seg.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        });
        if !valid {
            return Err(bad());
        }
        entries.push(path.to_string());
        rest = &inner[end + 1..];
        match rest.strip_prefix(", ") {
            Some(r) => rest = r,
            None if rest.is_empty() || rest.starts_with(':') => return Ok(entries),
            None => return Err(bad()),
        }
    }
}

/// An import the rule forbids that stays for now.
pub struct ImportException {
    /// Importing files: those whose module path has this prefix.
    pub from: &'static str,
    /// Imported modules: those whose path has this prefix.
    pub to: &'static str,
    pub reason: &'static str,
}

/// An import circle that stays for now: any circle among (a subset of) these files.
pub struct CircleException {
    pub files: &'static [&'static str],
    pub reason: &'static str,
}

/// One use of a crate path in a file.
#[derive(Clone, Debug, PartialEq)]
pub struct Import {
    pub line: usize,
    /// The path as written, groups expanded (`super::tls::TlsError`).
    pub written: String,
    /// The module it points at (`rpc::tls`).
    pub module: String,
}

/// What a check found.
#[derive(Debug, Default)]
pub struct Report {
    /// Breaks of the rule, each naming its file, line and rule.
    pub violations: Vec<String>,
    /// Breaks allowed by an exception, and why.
    pub allowed: Vec<String>,
}

/// Checks `sources` (every file of `src/` but the binary's `main.rs`) against `rule`.
pub fn check(
    sources: &[Source],
    rule: &Rule,
    import_exceptions: &[ImportException],
    circle_exceptions: &[CircleException],
) -> Report {
    let mut report = Report::default();
    let files: BTreeMap<String, &Source> = sources
        .iter()
        .filter_map(|s| module_of(&s.path).map(|m| (m, s)))
        .collect();
    let modules: BTreeSet<&str> = files.keys().map(String::as_str).collect();

    for entry in rule.layers.iter().flatten() {
        if !modules.contains(entry.as_str()) {
            report.violations.push(format!(
                "src/lib.rs: the layering rule lists `{entry}`, which is no module of the crate"
            ));
        }
    }

    let imports: BTreeMap<&str, Vec<Import>> = files
        .iter()
        .map(|(m, s)| (m.as_str(), imports(m, &s.text, &modules)))
        .collect();
    let mut used_exceptions = vec![false; import_exceptions.len()];
    let mut graph: BTreeMap<&str, Vec<(&str, &Import)>> = BTreeMap::new();
    for (module, source) in &files {
        let from = module.as_str();
        graph.entry(from).or_default();
        let own = rule.entry(from);
        if own.is_none() && !from.is_empty() {
            report.violations.push(format!(
                "{}: module `{from}` is in no layer of the rule in src/lib.rs",
                source.path
            ));
        }
        for import in &imports[from] {
            let to = import.module.as_str();
            if to == from {
                continue;
            }
            if !is_prefix(from, to) {
                graph.entry(from).or_default().push((to, import));
            }
            // The crate root holds only helpers every layer may use (and declares the
            // modules); files in no layer were reported above.
            let (Some((own_layer, own_entry)), false) = (own, to.is_empty()) else {
                continue;
            };
            let Some((layer, entry)) = rule.entry(to) else {
                report.violations.push(format!(
                    "{}:{}: `{}` imports module `{to}`, which is in no layer of the rule",
                    source.path, import.line, import.written
                ));
                continue;
            };
            if entry == own_entry || layer > own_layer {
                continue;
            }
            let what = format!(
                "{}:{}: `{}`: layering rule: `{own_entry}` (layer {}) may import only from \
                 itself and lower layers, and `{entry}` is on layer {}",
                source.path,
                import.line,
                import.written,
                own_layer + 1,
                layer + 1
            );
            match import_exceptions
                .iter()
                .position(|e| is_prefix(e.from, from) && is_prefix(e.to, to))
            {
                Some(i) => {
                    used_exceptions[i] = true;
                    report.allowed.push(format!(
                        "{what} (exception: {})",
                        import_exceptions[i].reason
                    ));
                }
                None => report.violations.push(what),
            }
        }
    }
    for (e, used) in import_exceptions.iter().zip(used_exceptions) {
        if !used {
            report.violations.push(format!(
                "the exception for imports from `{}` of `{}` is no longer needed: remove it",
                e.from, e.to
            ));
        }
    }

    let path_of = |m: &str| files[m].path.clone();
    let mut used_circles = vec![false; circle_exceptions.len()];
    for component in strongly_connected(&graph) {
        if component.len() < 2 {
            continue;
        }
        let members: BTreeSet<&str> = component.iter().copied().collect();
        let mut what = format!(
            "import circle among {}:",
            component
                .iter()
                .map(|m| path_of(m))
                .collect::<Vec<_>>()
                .join(", ")
        );
        // One line per pair of files: the first import, and how many more there are.
        for from in &component {
            let mut pairs: BTreeMap<&str, (&Import, usize)> = BTreeMap::new();
            for (to, import) in &graph[from] {
                if members.contains(to) {
                    pairs.entry(to).or_insert((import, 0)).1 += 1;
                }
            }
            for (to, (import, count)) in pairs {
                let more = match count - 1 {
                    0 => String::new(),
                    n => format!(" and {n} more"),
                };
                what.push_str(&format!(
                    "\n    {}:{} imports `{}`{more} ({})",
                    path_of(from),
                    import.line,
                    import.written,
                    path_of(to)
                ));
            }
        }
        let paths: Vec<String> = component.iter().map(|m| path_of(m)).collect();
        match circle_exceptions
            .iter()
            .position(|e| paths.iter().all(|p| e.files.contains(&p.as_str())))
        {
            Some(i) => {
                used_circles[i] = true;
                report.allowed.push(format!(
                    "{what}\n  (exception: {})",
                    circle_exceptions[i].reason
                ));
            }
            None => report
                .violations
                .push(format!("{what}\n  (rule: no import circles between files)")),
        }
    }
    for (e, used) in circle_exceptions.iter().zip(used_circles) {
        if !used {
            report.violations.push(format!(
                "the exception for an import circle among {} is no longer needed: remove it",
                e.files.join(", ")
            ));
        }
    }
    report
}

/// Tarjan's algorithm: the strongly connected components of `graph`.
fn strongly_connected<'a>(graph: &BTreeMap<&'a str, Vec<(&'a str, &Import)>>) -> Vec<Vec<&'a str>> {
    struct State<'a> {
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        out: Vec<Vec<&'a str>>,
    }
    fn visit<'a>(
        v: &'a str,
        graph: &BTreeMap<&'a str, Vec<(&'a str, &Import)>>,
        s: &mut State<'a>,
    ) {
        let i = s.index.len();
        s.index.insert(v, i);
        s.low.insert(v, i);
        s.stack.push(v);
        s.on_stack.insert(v);
        for (w, _) in graph.get(v).into_iter().flatten() {
            if !s.index.contains_key(w) {
                visit(w, graph, s);
                let low = s.low[v].min(s.low[w]);
                s.low.insert(v, low);
            } else if s.on_stack.contains(w) {
                let low = s.low[v].min(s.index[w]);
                s.low.insert(v, low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.push(w);
                if w == v {
                    break;
                }
            }
            component.sort_unstable();
            s.out.push(component);
        }
    }
    let mut s = State {
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !s.index.contains_key(v) {
            visit(v, graph, &mut s);
        }
    }
    s.out
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    PathSep,
    Open,
    Close,
    Comma,
    Semi,
    Star,
    Dollar,
    Other,
}

struct Token {
    tok: Tok,
    line: usize,
}

/// Splits Rust source into the tokens paths are made of, dropping comments and literals.
fn lex(text: &str) -> Vec<Token> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut line = 1;
    let mut i = 0;
    // Skips a quoted literal starting at `i` (on the opening quote), honouring escapes.
    let skip_quoted = |i: &mut usize, line: &mut usize, quote: char| {
        *i += 1;
        while *i < chars.len() && chars[*i] != quote {
            if chars[*i] == '\\' {
                *i += 1;
            }
            if chars.get(*i) == Some(&'\n') {
                *line += 1;
            }
            *i += 1;
        }
        *i += 1;
    };
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        match c {
            '\n' => {
                line += 1;
                i += 1;
            }
            c if c.is_whitespace() => i += 1,
            '/' if next == Some('/') => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '/' if next == Some('*') => {
                let mut depth = 0;
                while i < chars.len() {
                    if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                        depth += 1;
                        i += 2;
                    } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        if chars[i] == '\n' {
                            line += 1;
                        }
                        i += 1;
                    }
                }
            }
            '"' => skip_quoted(&mut i, &mut line, '"'),
            '\'' => {
                if next == Some('\\') || chars.get(i + 2) == Some(&'\'') {
                    skip_quoted(&mut i, &mut line, '\'');
                } else {
                    // A lifetime or label: the name that follows is lexed as an identifier.
                    i += 1;
                }
            }
            c if c.is_alphabetic() || c == '_' => {
                let start = i;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                let after = chars.get(i).copied();
                let raw_string_prefix = matches!(word.as_str(), "r" | "br" | "cr");
                if raw_string_prefix && matches!(after, Some('"') | Some('#')) {
                    let mut hashes = 0;
                    while chars.get(i) == Some(&'#') {
                        hashes += 1;
                        i += 1;
                    }
                    if chars.get(i) != Some(&'"') {
                        // `r#ident`: a raw identifier.
                        let start = i;
                        while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                            i += 1;
                        }
                        let name: String = chars[start..i].iter().collect();
                        out.push(Token {
                            tok: Tok::Ident(name),
                            line,
                        });
                        continue;
                    }
                    i += 1;
                    loop {
                        match chars.get(i) {
                            None => break,
                            Some('"') if (1..=hashes).all(|k| chars.get(i + k) == Some(&'#')) => {
                                i += 1 + hashes;
                                break;
                            }
                            Some('\n') => line += 1,
                            Some(_) => {}
                        }
                        i += 1;
                    }
                } else if matches!(word.as_str(), "b" | "c") && after == Some('"') {
                    skip_quoted(&mut i, &mut line, '"');
                } else if word == "b" && after == Some('\'') {
                    skip_quoted(&mut i, &mut line, '\'');
                } else {
                    out.push(Token {
                        tok: Tok::Ident(word),
                        line,
                    });
                }
            }
            _ => {
                let tok = match c {
                    ':' if next == Some(':') => {
                        i += 1;
                        Tok::PathSep
                    }
                    '{' => Tok::Open,
                    '}' => Tok::Close,
                    ',' => Tok::Comma,
                    ';' => Tok::Semi,
                    '*' => Tok::Star,
                    '$' => Tok::Dollar,
                    _ => Tok::Other,
                };
                out.push(Token { tok, line });
                i += 1;
            }
        }
    }
    out
}

fn ident(tokens: &[Token], i: usize) -> Option<&str> {
    match tokens.get(i).map(|t| &t.tok) {
        Some(Tok::Ident(s)) => Some(s),
        _ => None,
    }
}

fn is(tokens: &[Token], i: usize, tok: &Tok) -> bool {
    tokens.get(i).map(|t| &t.tok) == Some(tok)
}

/// The crate paths file `module` uses, resolved to the modules (of `modules`) they point at.
pub fn imports(module: &str, text: &str, modules: &BTreeSet<&str>) -> Vec<Import> {
    let tokens = lex(text);
    let file_module: Vec<String> = if module.is_empty() {
        Vec::new()
    } else {
        module.split("::").map(str::to_string).collect()
    };
    // Inline modules open at this point, with the brace depth inside each.
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0;
    let mut pending_mod: Option<String> = None;
    let mut raw: Vec<(usize, Vec<String>, Vec<String>)> = Vec::new();
    let current = |inline: &[(String, usize)]| -> Vec<String> {
        let mut m = file_module.clone();
        m.extend(inline.iter().map(|(name, _)| name.clone()));
        m
    };
    let mut i = 0;
    while i < tokens.len() {
        match &tokens[i].tok {
            Tok::Open => {
                depth += 1;
                if let Some(name) = pending_mod.take() {
                    inline.push((name, depth));
                }
            }
            Tok::Close => {
                if inline.last().is_some_and(|(_, d)| *d == depth) {
                    inline.pop();
                }
                depth = depth.saturating_sub(1);
            }
            Tok::Ident(w) if w == "mod" => {
                if let Some(name) = ident(&tokens, i + 1) {
                    if is(&tokens, i + 2, &Tok::Open) {
                        pending_mod = Some(name.to_string());
                    }
                }
            }
            Tok::Ident(w) if w == "use" => {
                let line = tokens[i].line;
                let mut paths = Vec::new();
                i += 1;
                use_tree(&tokens, &mut i, Vec::new(), &mut paths);
                for p in paths {
                    raw.push((line, current(&inline), p));
                }
                continue;
            }
            Tok::Ident(w)
                if (w == "crate" || w == "super")
                    && is(&tokens, i + 1, &Tok::PathSep)
                    && !(i > 0
                        && (is(&tokens, i - 1, &Tok::Dollar)
                            || is(&tokens, i - 1, &Tok::PathSep))) =>
            {
                let line = tokens[i].line;
                let mut path = vec![w.clone()];
                i += 1;
                while is(&tokens, i, &Tok::PathSep) {
                    match ident(&tokens, i + 1) {
                        Some(seg) => {
                            path.push(seg.to_string());
                            i += 2;
                        }
                        None => break,
                    }
                }
                raw.push((line, current(&inline), path));
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    raw.into_iter()
        .filter_map(|(line, at, path)| {
            let abs = resolve(&at, &path)?;
            let target = (0..=abs.len())
                .rev()
                .map(|n| abs[..n].join("::"))
                .find(|m| modules.contains(m.as_str()))?;
            Some(Import {
                line,
                written: path.join("::"),
                module: target,
            })
        })
        .collect()
}

/// Parses a use tree at `*i` (after `use` or inside a group), appending the full paths it
/// names to `out`; leaves `*i` after the tree (on `,`, `}` or past `;`).
fn use_tree(tokens: &[Token], i: &mut usize, prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
    let mut path = prefix;
    loop {
        match tokens.get(*i).map(|t| &t.tok) {
            Some(Tok::PathSep) => *i += 1,
            Some(Tok::Ident(s)) if s == "as" => {
                *i += 2;
                break;
            }
            Some(Tok::Ident(s)) => {
                // `{self, …}` names the group's own prefix.
                if s != "self" || path.is_empty() {
                    path.push(s.clone());
                }
                *i += 1;
            }
            Some(Tok::Star) => {
                *i += 1;
                break;
            }
            Some(Tok::Open) => {
                *i += 1;
                while *i < tokens.len() && !is(tokens, *i, &Tok::Close) {
                    use_tree(tokens, i, path.clone(), out);
                    if is(tokens, *i, &Tok::Comma) {
                        *i += 1;
                    }
                }
                *i += 1;
                if is(tokens, *i, &Tok::Semi) {
                    *i += 1;
                }
                return;
            }
            _ => break,
        }
    }
    out.push(path);
    if is(tokens, *i, &Tok::Semi) {
        *i += 1;
    }
}

/// The absolute module path (from the crate root) of `path` written in module `at`, if it is a
/// path into this crate.
fn resolve(at: &[String], path: &[String]) -> Option<Vec<String>> {
    let (first, rest) = path.split_first()?;
    match first.as_str() {
        "crate" => Some(rest.to_vec()),
        "self" => Some(at.iter().chain(rest).cloned().collect()),
        "super" => {
            let mut base = at.to_vec();
            base.pop()?;
            let mut rest = rest;
            while rest.first().map(String::as_str) == Some("super") {
                base.pop()?;
                rest = &rest[1..];
            }
            base.extend(rest.iter().cloned());
            Some(base)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(path: &str, text: &str) -> Source {
        Source {
            path: path.to_string(),
            text: text.to_string(),
        }
    }

    const LIB: &str = "//! Layers, top to bottom:\n\
                       //!\n\
                       //! - `front`: talks to users\n\
                       //! - `engine`\n\
                       //! - `engine::low`, `side`: a why that goes on\n\
                       //!   over a second line\n\
                       //! - `base`\n\
                       //!\n\
                       //! More docs.\n\
                       pub mod base;\n";

    fn modules(names: &[&'static str]) -> BTreeSet<&'static str> {
        names.iter().copied().collect()
    }

    #[test]
    fn the_rule_is_read_from_the_bullets_after_the_marker() {
        let rule = Rule::parse(LIB).unwrap();
        assert_eq!(
            rule.layers,
            vec![
                vec!["front".to_string()],
                vec!["engine".to_string()],
                vec!["engine::low".to_string(), "side".to_string()],
                vec!["base".to_string()],
            ]
        );
        assert_eq!(rule.entry("engine::low::deep"), Some((2, "engine::low")));
        assert_eq!(rule.entry("engine::lower"), Some((1, "engine")));
        assert_eq!(rule.entry("other"), None);
        assert!(Rule::parse("//! Layers, top to bottom:\n//! - front\n").is_err());
        assert!(Rule::parse("//! Layers, top to bottom:\n//! - `a`\n//! - `a`\n").is_err());
        assert!(Rule::parse("//! no rule here\n").is_err());
    }

    #[test]
    fn grouped_relative_and_inline_paths_are_resolved_to_files() {
        let text = r##"
            use std::sync::Arc;
            use crate::{base::{self, util::Helper}, engine::low as l};
            use super::sibling::*;
            // use crate::front::Commented;
            /* use crate::front::Block; /* nested */ */
            const S: &str = "crate::front::InAString";
            const R: &str = r#"crate::front::Raw"#;
            const C: char = '{';
            fn f<'a>(x: &'a str) -> crate::base::Thing { crate::lock(&x); $crate::front::m() }
            mod tests {
                use super::*;
                use super::super::sibling::X;
            }
        "##;
        let mods = modules(&[
            "",
            "base",
            "base::util",
            "engine",
            "engine::low",
            "engine::me",
            "engine::sibling",
        ]);
        let found: Vec<(usize, String, String)> = imports("engine::me", text, &mods)
            .into_iter()
            .map(|i| (i.line, i.written, i.module))
            .collect();
        let expect = |line: usize, written: &str, module: &str| {
            (line, written.to_string(), module.to_string())
        };
        assert_eq!(
            found,
            vec![
                expect(3, "crate::base", "base"),
                expect(3, "crate::base::util::Helper", "base::util"),
                expect(3, "crate::engine::low", "engine::low"),
                expect(4, "super::sibling", "engine::sibling"),
                expect(10, "crate::base::Thing", "base"),
                expect(10, "crate::lock", ""),
                // `super` inside `mod tests` is the file's own module.
                expect(12, "super", "engine::me"),
                expect(13, "super::super::sibling::X", "engine::sibling"),
            ]
        );
    }

    fn sources() -> Vec<Source> {
        vec![
            src("src/lib.rs", LIB),
            src("src/front.rs", "use crate::engine::Engine;\n"),
            src(
                "src/engine/mod.rs",
                "pub mod low;\nuse low::X;\nuse crate::base::B;\n",
            ),
            src("src/engine/low.rs", "use super::super::base::B;\n"),
            src("src/side.rs", "pub struct S;\n"),
            src("src/base.rs", "pub fn b() {}\n"),
        ]
    }

    #[test]
    fn a_clean_tree_passes() {
        let rule = Rule::parse(LIB).unwrap();
        let report = check(&sources(), &rule, &[], &[]);
        assert_eq!(report.violations, Vec::<String>::new());
    }

    #[test]
    fn an_upward_import_is_reported_with_file_line_and_rule() {
        let rule = Rule::parse(LIB).unwrap();
        let mut tree = sources();
        tree[4]
            .text
            .push_str("fn f() -> crate::engine::Engine { todo!() }\n");
        let report = check(&tree, &rule, &[], &[]);
        assert_eq!(report.violations.len(), 1, "{:?}", report.violations);
        let v = &report.violations[0];
        assert!(
            v.starts_with("src/side.rs:2: `crate::engine::Engine`"),
            "{v}"
        );
        assert!(v.contains("layering rule: `side` (layer 3)"), "{v}");
        assert!(v.contains("`engine` is on layer 2"), "{v}");

        // An exception lets it pass, and is reported; once unused it must go.
        let allow = [ImportException {
            from: "side",
            to: "engine",
            reason: "planted",
        }];
        let report = check(&tree, &rule, &allow, &[]);
        assert_eq!(report.violations, Vec::<String>::new());
        assert_eq!(report.allowed.len(), 1);
        let report = check(&sources(), &rule, &allow, &[]);
        assert_eq!(report.violations.len(), 1);
        assert!(report.violations[0].contains("no longer needed"));
    }

    #[test]
    fn entries_of_one_layer_may_not_import_each_other() {
        let rule = Rule::parse(LIB).unwrap();
        let mut tree = sources();
        // `side` and `engine::low` are separate entries on the same layer.
        tree[4].text.push_str("use crate::engine::low::X;\n");
        let report = check(&tree, &rule, &[], &[]);
        assert_eq!(report.violations.len(), 1, "{:?}", report.violations);
        let v = &report.violations[0];
        assert!(
            v.starts_with("src/side.rs:2: `crate::engine::low::X`"),
            "{v}"
        );
        assert!(v.contains("`engine::low` is on layer 3"), "{v}");
    }

    #[test]
    fn a_circle_between_files_is_reported_with_its_imports() {
        let rule = Rule::parse(LIB).unwrap();
        let mut tree = sources();
        tree.push(src(
            "src/engine/low/a.rs",
            "use super::b::B;\npub struct A;\n",
        ));
        tree.push(src(
            "src/engine/low/b.rs",
            "pub struct B;\nfn f(_: crate::engine::low::a::A) {}\n",
        ));
        let report = check(&tree, &rule, &[], &[]);
        assert_eq!(report.violations.len(), 1, "{:?}", report.violations);
        let v = &report.violations[0];
        assert!(
            v.starts_with("import circle among src/engine/low/a.rs, src/engine/low/b.rs:"),
            "{v}"
        );
        assert!(
            v.contains("src/engine/low/a.rs:1 imports `super::b::B`"),
            "{v}"
        );
        assert!(v.contains("src/engine/low/b.rs:2 imports"), "{v}");
        assert!(v.contains("no import circles"), "{v}");

        let allow = [CircleException {
            files: &["src/engine/low/a.rs", "src/engine/low/b.rs"],
            reason: "planted",
        }];
        let report = check(&tree, &rule, &[], &allow);
        assert_eq!(report.violations, Vec::<String>::new());
        assert_eq!(report.allowed.len(), 1);
    }

    #[test]
    fn a_module_outside_every_layer_or_a_rule_entry_without_a_module_is_reported() {
        let rule = Rule::parse(&LIB.replace("`base`", "`base`, `gone`")).unwrap();
        let mut tree = sources();
        tree.push(src("src/stray.rs", "use crate::base::B;\n"));
        let report = check(&tree, &rule, &[], &[]);
        assert_eq!(report.violations.len(), 2, "{:?}", report.violations);
        assert!(report.violations[0].contains("lists `gone`"));
        assert!(report.violations[1].starts_with("src/stray.rs: module `stray` is in no layer"));
    }
}
