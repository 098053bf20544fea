//! The layering rule of `src/lib.rs` as a test: every file of `src/` imports only from its own
//! layer entry or lower layers, and no files import each other in a circle. The rule is read
//! from `src/lib.rs` itself (the bullets after "Layers, top to bottom:"), so the docs and the
//! check cannot drift apart. How imports are found: [`checker`].
//!
//! What breaks the rule today and stays for now is listed below with its reason; an exception
//! that nothing needs any more fails the test, so the lists only shrink.

mod checker;

use std::path::{Path, PathBuf};

use checker::{check, CircleException, ImportException, Rule, Source};

/// Imports the rule forbids that stay for now.
const IMPORT_EXCEPTIONS: &[ImportException] = &[];

/// Import circles between files that stay for now.
const CIRCLE_EXCEPTIONS: &[CircleException] = &[];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("read a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every file of the library: `src/**/*.rs` but `src/main.rs`, the binary, whose `crate` is
/// itself and which may use every layer.
fn library_sources(root: &Path) -> Vec<Source> {
    let mut paths = Vec::new();
    rust_files(&root.join("src"), &mut paths);
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let rel = p.strip_prefix(root).expect("a file under the root");
            let path = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{path}: {e}"));
            Source { path, text }
        })
        .filter(|s| s.path != "src/main.rs")
        .collect()
}

#[test]
fn the_source_tree_keeps_the_layering_rule_of_lib_rs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let lib = std::fs::read_to_string(root.join("src/lib.rs")).expect("read src/lib.rs");
    let rule = Rule::parse(&lib).unwrap_or_else(|e| panic!("src/lib.rs: {e}"));
    let sources = library_sources(root);
    assert!(
        sources.len() > 50,
        "found only {} files under src/",
        sources.len()
    );
    let report = check(&sources, &rule, IMPORT_EXCEPTIONS, CIRCLE_EXCEPTIONS);
    for allowed in &report.allowed {
        eprintln!("allowed for now: {allowed}");
    }
    assert!(
        report.violations.is_empty(),
        "the layering rule of src/lib.rs is broken:\n{}",
        report.violations.join("\n")
    );
}

/// The second crate of the workspace stays free of the server: it may not depend on it.
#[test]
fn the_functions_crate_does_not_depend_on_the_server() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifest =
        std::fs::read_to_string(root.join("functions/Cargo.toml")).expect("read its manifest");
    let names_the_server = |line: &str| {
        let key = line.split(['=', '.']).next().unwrap_or("").trim();
        key == "porpoise" || line.replace(' ', "").contains("package=\"porpoise\"")
    };
    let found: Vec<&str> = manifest.lines().filter(|l| names_the_server(l)).collect();
    assert!(
        found.is_empty(),
        "functions/Cargo.toml depends on the server: {found:?}"
    );
}
