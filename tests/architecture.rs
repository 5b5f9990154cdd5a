//! The shape of `src/` (issue 11): data flows one way, so the modules of the crate form no
//! import cycle, and no module outside `src/rules/` names a rule, so a new detection is one file
//! in `src/rules/` plus its line in the registry.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The crate's top-level module a file belongs to (`src/rules/event.rs` → `rules`); binaries
/// and `lib.rs` are not modules of the graph.
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let relative = file.strip_prefix(src).ok()?;
    let first = relative.components().next()?.as_os_str().to_str()?;
    match first {
        "lib.rs" | "bin" => None,
        name => Some(name.trim_end_matches(".rs").to_owned()),
    }
}

/// Code without comments (doc links name modules without depending on them) and without its
/// unit tests.
fn code(text: &str) -> String {
    let text = text.split("#[cfg(test)]").next().unwrap_or("");
    text.lines()
        .map(|line| match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Top-level module → the top-level modules its code names with `crate::`.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let Some(module) = module_of(&src, &file) else {
            continue;
        };
        let text = code(&fs::read_to_string(&file).expect("read"));
        let uses = graph.entry(module.clone()).or_default();
        for (at, _) in text.match_indices("crate::") {
            let rest = &text[at + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            // `crate::{a, b}` groups and macros exported at the root are not modules.
            if !name.is_empty()
                && name != module
                && !["datadog_triage", "port_error"].contains(&name.as_str())
            {
                uses.insert(name);
            }
        }
    }
    graph
}

#[test]
fn the_modules_of_src_form_no_import_cycle() {
    let graph = graph();
    assert!(graph.len() >= 10, "{graph:?}");
    // Depth-first search for a back edge; the path names the cycle.
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) {
        if done.contains(node) {
            return;
        }
        if let Some(at) = path.iter().position(|n| n == node) {
            panic!("import cycle: {} → {node}", path[at..].join(" → "));
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            visit(next, graph, path, done);
        }
        path.pop();
        done.insert(node.to_owned());
    }
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        visit(node, &graph, &mut Vec::new(), &mut done);
    }
    // The leaves depend on nothing, and the stages flow one way.
    assert!(graph["model"].is_empty(), "{:?}", graph["model"]);
    assert!(graph["text"].is_empty(), "{:?}", graph["text"]);
    for (module, must_not_use) in [
        ("record", ["rules", "engine", "input", "deliver"]),
        ("rules", ["engine", "deliver", "config", "signal"]),
        ("state", ["rules", "engine", "deliver", "signal"]),
        ("engine", ["deliver", "scan", "lambda", "input"]),
    ] {
        for other in must_not_use {
            assert!(
                !graph[module].contains(other),
                "{module} uses {other}: {:?}",
                graph[module]
            );
        }
    }
}

#[test]
fn no_module_outside_src_rules_names_a_rule() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    rust_files(&root.join("crates/lambda/src"), &mut files);
    let rules = root.join("src/rules");
    // A rule's module name, its id, or its type would tie the code to that rule.
    let mut names: Vec<String> = Vec::new();
    for id in support::all_rules() {
        names.push(id.to_owned());
        names.push(id.trim_start_matches("ses-").replace('-', "_"));
    }
    for file in files.iter().filter(|f| !f.starts_with(&rules)) {
        let text = code(&fs::read_to_string(file).expect("read"));
        for name in &names {
            assert!(
                !text.contains(name.as_str()),
                "{} names the rule {name}",
                file.display()
            );
        }
    }
}
