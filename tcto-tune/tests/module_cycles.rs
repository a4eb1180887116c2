//! No import cycles among the library's top-level modules.
//!
//! Reads every library source file reachable from `src/lib.rs` through
//! `mod` declarations (test-only modules and `#[cfg(test)]` items left
//! out), collects the `crate::` paths (and `super::` paths that climb to
//! the crate root) in code, comments and strings stripped, and builds the
//! graph "top-level module A refers to top-level module B". The test fails
//! naming a cycle if there is one.
//!
//! Names re-exported at the crate root (`crate::Plan`) count as a
//! reference to the module they come from (`plan`).
//!
//! Run with `--nocapture` to see the whole graph with the file and line of
//! each edge's first reference.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Edges left out of the graph: (from, to, why). An entry whose edge no
/// longer exists fails the test, so the list can only shrink. Empty: the
/// library has no cycle to excuse.
const ALLOWED: &[(&str, &str, &str)] = &[];

/// Modules the system backends must not depend on: they read and write the
/// host for the commands, not the other way round. (from, to, why) entries
/// of [`ALLOWED_SYSTEM`] are the ones still in flight.
const ABOVE_SYSTEM: &[&str] = &[
    "apply", "check", "diagnose", "journal", "kind", "persist", "plan", "probe", "profile",
    "verify",
];

/// Edges from `system` to [`ABOVE_SYSTEM`] that are excused. Empty: the
/// backends import nothing above them.
const ALLOWED_SYSTEM: &[(&str, &str)] = &[];

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Punct(char),
}

/// Code tokens with their line numbers: comments, strings, chars,
/// lifetimes and numbers are dropped.
fn lex(src: &str) -> Vec<(Tok, usize)> {
    let b: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let mut line = 1;
    let n = b.len();
    let skip_to = |i: usize, line: &mut usize, to: usize| {
        *line += b[i..to.min(n)].iter().filter(|&&c| c == '\n').count();
        to
    };
    while i < n {
        let c = b[i];
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c == '/' && i + 1 < n && b[i + 1] == '/' {
            while i < n && b[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && i + 1 < n && b[i + 1] == '*' {
            let mut depth = 0;
            let mut j = i;
            while j < n {
                if b[j] == '/' && j + 1 < n && b[j + 1] == '*' {
                    depth += 1;
                    j += 2;
                } else if b[j] == '*' && j + 1 < n && b[j + 1] == '/' {
                    depth -= 1;
                    j += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    j += 1;
                }
            }
            i = skip_to(i, &mut line, j);
        } else if (c == 'r' || c == 'b') && raw_string_start(&b, i).is_some() {
            let (hashes, body) = raw_string_start(&b, i).unwrap();
            let mut j = body;
            'raw: while j < n {
                if b[j] == '"' && (0..hashes).all(|k| j + 1 + k < n && b[j + 1 + k] == '#') {
                    j += 1 + hashes;
                    break 'raw;
                }
                j += 1;
            }
            i = skip_to(i, &mut line, j);
        } else if c == '"' || (c == 'b' && i + 1 < n && b[i + 1] == '"') {
            let mut j = if c == 'b' { i + 2 } else { i + 1 };
            while j < n && b[j] != '"' {
                if b[j] == '\\' {
                    j += 1;
                }
                j += 1;
            }
            i = skip_to(i, &mut line, j + 1);
        } else if c == '\'' || (c == 'b' && i + 1 < n && b[i + 1] == '\'') {
            let start = if c == 'b' { i + 1 } else { i };
            // A char literal ('x', '\n', '\u{..}') or a lifetime ('a).
            if start + 2 < n && b[start + 1] == '\\' {
                let mut j = start + 2;
                while j < n && b[j] != '\'' {
                    j += 1;
                }
                i = j + 1;
            } else if start + 2 < n && b[start + 2] == '\'' {
                i = start + 3;
            } else {
                let mut j = start + 1;
                while j < n && (b[j].is_alphanumeric() || b[j] == '_') {
                    j += 1;
                }
                i = j;
            }
        } else if c.is_ascii_digit() {
            while i < n && (b[i].is_alphanumeric() || b[i] == '_') {
                i += 1;
            }
        } else if c.is_alphabetic() || c == '_' {
            let mut j = i;
            while j < n && (b[j].is_alphanumeric() || b[j] == '_') {
                j += 1;
            }
            let word: String = b[i..j].iter().collect();
            let word = word.strip_prefix("r#").map(str::to_string).unwrap_or(word);
            out.push((Tok::Ident(word), line));
            i = j;
        } else {
            out.push((Tok::Punct(c), line));
            i += 1;
        }
    }
    out
}

/// `r"`, `r#"`, `br"`, `br#"`: the number of hashes and the body start.
fn raw_string_start(b: &[char], i: usize) -> Option<(usize, usize)> {
    let mut j = i;
    if b.get(j) == Some(&'b') {
        j += 1;
    }
    if b.get(j) != Some(&'r') {
        return None;
    }
    j += 1;
    let mut hashes = 0;
    while b.get(j) == Some(&'#') {
        hashes += 1;
        j += 1;
    }
    (b.get(j) == Some(&'"')).then_some((hashes, j + 1))
}

fn is_punct(t: Option<&(Tok, usize)>, c: char) -> bool {
    matches!(t, Some((Tok::Punct(p), _)) if *p == c)
}

fn ident(t: Option<&(Tok, usize)>) -> Option<&str> {
    match t {
        Some((Tok::Ident(s), _)) => Some(s),
        _ => None,
    }
}

fn is_path_sep(toks: &[(Tok, usize)], i: usize) -> bool {
    is_punct(toks.get(i), ':') && is_punct(toks.get(i + 1), ':')
}

/// Index just past the bracket group opening at `i`.
fn skip_group(toks: &[(Tok, usize)], i: usize) -> usize {
    let mut depth = 0i32;
    let mut j = i;
    while j < toks.len() {
        match &toks[j].0 {
            Tok::Punct('(' | '[' | '{') => depth += 1,
            Tok::Punct(')' | ']' | '}') => {
                depth -= 1;
                if depth == 0 {
                    return j + 1;
                }
            }
            _ => {}
        }
        j += 1;
    }
    j
}

/// Is the attribute `#[...]` at `i` a `cfg` that holds only under test?
fn is_test_cfg(toks: &[(Tok, usize)], i: usize, end: usize) -> bool {
    let words: Vec<&str> = toks[i..end].iter().filter_map(|t| ident(Some(t))).collect();
    words.first() == Some(&"cfg") && words.contains(&"test") && !words.contains(&"not")
}

/// Index just past the item starting at `i` (after its attributes).
fn skip_item(toks: &[(Tok, usize)], mut i: usize) -> usize {
    while is_punct(toks.get(i), '#') && is_punct(toks.get(i + 1), '[') {
        i = skip_group(toks, i + 1);
    }
    let mut depth = 0i32;
    while i < toks.len() {
        match &toks[i].0 {
            Tok::Punct('(' | '[') => depth += 1,
            Tok::Punct(')' | ']') => depth -= 1,
            Tok::Punct(';') if depth == 0 => return i + 1,
            Tok::Punct('{') if depth == 0 => return skip_group(toks, i),
            _ => {}
        }
        i += 1;
    }
    i
}

struct Reference {
    target: String,
    line: usize,
}

struct ModFile {
    /// The module path of the file (`["notrack", "scope"]`).
    path: Vec<String>,
    file: PathBuf,
}

/// Scans one file: its out-of-line `mod` declarations (not under test)
/// and the top-level names its paths reach.
fn scan(toks: &[(Tok, usize)], file_depth: usize) -> (Vec<String>, Vec<Reference>) {
    let mut mods = Vec::new();
    let mut refs = Vec::new();
    // Inline modules: the brace depth at which each one closes.
    let mut inline: Vec<i32> = Vec::new();
    let mut brace = 0i32;
    let mut i = 0;
    while i < toks.len() {
        if is_punct(toks.get(i), '#') && is_punct(toks.get(i + 1), '[') {
            let end = skip_group(toks, i + 1);
            if is_test_cfg(toks, i + 2, end) {
                i = skip_item(toks, i);
                continue;
            }
            i = end;
            continue;
        }
        match &toks[i].0 {
            Tok::Punct('{') => brace += 1,
            Tok::Punct('}') => {
                brace -= 1;
                if inline.last() == Some(&brace) {
                    inline.pop();
                }
            }
            Tok::Ident(w) if w == "mod" => {
                if let Some(name) = ident(toks.get(i + 1)) {
                    if is_punct(toks.get(i + 2), ';') && inline.is_empty() {
                        mods.push(name.to_string());
                    } else if is_punct(toks.get(i + 2), '{') {
                        inline.push(brace);
                    }
                }
            }
            Tok::Ident(w)
                if (w == "crate" || w == "super") && !(i >= 2 && is_path_sep(toks, i - 2)) =>
            {
                let line = toks[i].1;
                let mut j = i;
                let mut ups = 0;
                let is_crate = w == "crate";
                if is_crate {
                    j += 1;
                } else {
                    while ident(toks.get(j)) == Some("super") && is_path_sep(toks, j + 1) {
                        ups += 1;
                        j += 3;
                    }
                    j -= 2;
                }
                let depth = file_depth + inline.len();
                if (is_crate || ups == depth) && is_path_sep(toks, j) {
                    j += 2;
                    if let Some(name) = ident(toks.get(j)) {
                        refs.push(Reference {
                            target: name.to_string(),
                            line,
                        });
                    } else if is_punct(toks.get(j), '{') {
                        // `crate::{a, b::{c, d}, e}`: a, b and e.
                        let end = skip_group(toks, j);
                        let mut k = j + 1;
                        let mut level = 1;
                        let mut at_start = true;
                        while k < end {
                            match &toks[k].0 {
                                Tok::Punct('{') => level += 1,
                                Tok::Punct('}') => level -= 1,
                                Tok::Punct(',') if level == 1 => {
                                    at_start = true;
                                    k += 1;
                                    continue;
                                }
                                Tok::Ident(s) if level == 1 && at_start => {
                                    refs.push(Reference {
                                        target: s.clone(),
                                        line: toks[k].1,
                                    });
                                }
                                _ => {}
                            }
                            at_start = false;
                            k += 1;
                        }
                        i = end;
                        continue;
                    }
                }
            }
            _ => {}
        }
        i += 1;
    }
    (mods, refs)
}

fn mod_file(parent: &ModFile, name: &str) -> PathBuf {
    let f = &parent.file;
    let stem = f.file_stem().unwrap().to_str().unwrap();
    let dir = if stem == "mod" || stem == "lib" {
        f.parent().unwrap().to_path_buf()
    } else {
        f.parent().unwrap().join(stem)
    };
    let flat = dir.join(format!("{name}.rs"));
    if flat.exists() {
        flat
    } else {
        dir.join(name).join("mod.rs")
    }
}

/// Root re-exports: `pub use plan::{plan, Plan}` maps `Plan` to `plan`.
fn root_reexports(toks: &[(Tok, usize)]) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    let mut i = 0;
    while i + 1 < toks.len() {
        if ident(toks.get(i)) == Some("pub") && ident(toks.get(i + 1)) == Some("use") {
            let end = toks[i..]
                .iter()
                .position(|t| t.0 == Tok::Punct(';'))
                .unwrap()
                + i;
            let module = ident(toks.get(i + 2)).unwrap().to_string();
            // Every identifier after the module: the group's names and the
            // last segment are the exported ones, the rest are submodules.
            for name in toks[i + 3..end].iter().filter_map(|t| ident(Some(t))) {
                map.insert(name.to_string(), module.clone());
            }
            i = end;
        }
        i += 1;
    }
    map
}

type Graph = BTreeMap<String, BTreeMap<String, String>>;

fn graph() -> Graph {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let lib = ModFile {
        path: vec![],
        file: src.join("lib.rs"),
    };
    let lib_toks = lex(&std::fs::read_to_string(&lib.file).unwrap());
    let (top, _) = scan(&lib_toks, 0);
    let reexports = root_reexports(&lib_toks);
    let mut graph: Graph = top.iter().map(|m| (m.clone(), BTreeMap::new())).collect();
    let mut queue: Vec<ModFile> = top
        .iter()
        .map(|m| ModFile {
            path: vec![m.clone()],
            file: mod_file(&lib, m),
        })
        .collect();
    while let Some(m) = queue.pop() {
        let text = std::fs::read_to_string(&m.file)
            .unwrap_or_else(|e| panic!("{}: {e}", m.file.display()));
        let toks = lex(&text);
        let (mods, refs) = scan(&toks, m.path.len());
        let from = &m.path[0];
        for r in refs {
            let to = if top.contains(&r.target) {
                r.target
            } else if let Some(module) = reexports.get(&r.target) {
                module.clone()
            } else {
                continue;
            };
            if &to != from {
                let rel = m.file.strip_prefix(&src).unwrap().display().to_string();
                graph
                    .get_mut(from)
                    .unwrap()
                    .entry(to)
                    .or_insert_with(|| format!("src/{rel}:{}", r.line));
            }
        }
        for name in mods {
            let mut path = m.path.clone();
            path.push(name.clone());
            let file = mod_file(&m, &name);
            queue.push(ModFile { path, file });
        }
    }
    graph
}

/// A cycle through `start`, if there is one (shortest by BFS).
fn cycle_through(graph: &Graph, start: &str) -> Option<Vec<String>> {
    let mut prev: BTreeMap<&str, &str> = BTreeMap::new();
    let mut frontier = vec![start];
    let mut seen = BTreeSet::new();
    while !frontier.is_empty() {
        let mut next = Vec::new();
        for node in frontier {
            for to in graph[node].keys() {
                if to == start {
                    let mut path = vec![start.to_string()];
                    let mut at = node;
                    while at != start {
                        path.push(at.to_string());
                        at = prev[at];
                    }
                    path.push(start.to_string());
                    path.reverse();
                    return Some(path);
                }
                if seen.insert(to.as_str()) {
                    prev.insert(to, node);
                    next.push(to.as_str());
                }
            }
        }
        frontier = next;
    }
    None
}

#[test]
fn system_depends_on_no_command_module() {
    let graph = graph();
    let bad: Vec<String> = graph["system"]
        .iter()
        .filter(|(to, _)| ABOVE_SYSTEM.contains(&to.as_str()))
        .filter(|(to, _)| !ALLOWED_SYSTEM.contains(&("system", to.as_str())))
        .map(|(to, at)| format!("system -> {to} ({at})"))
        .collect();
    assert!(
        bad.is_empty(),
        "system imports a module above it:\n{}",
        bad.join("\n")
    );
    for (from, to) in ALLOWED_SYSTEM {
        assert!(
            graph[*from].contains_key(*to),
            "allowed edge {from} -> {to} is gone: take it off ALLOWED_SYSTEM"
        );
    }
}

#[test]
fn library_modules_have_no_import_cycle() {
    let mut graph = graph();
    for (from, edges) in &graph {
        for (to, at) in edges {
            println!("{from} -> {to}  ({at})");
        }
    }
    for (from, to, why) in ALLOWED {
        let removed = graph.get_mut(*from).and_then(|e| e.remove(*to));
        assert!(
            removed.is_some(),
            "allowed edge {from} -> {to} ({why}) is gone: take it off ALLOWED"
        );
    }
    let mut cycles = Vec::new();
    let mut seen = BTreeSet::new();
    for node in graph.keys() {
        if let Some(c) = cycle_through(&graph, node) {
            // The same cycle found from each of its nodes: name it once.
            let mut members = c[1..].to_vec();
            members.sort();
            if !seen.insert(members) {
                continue;
            }
            let steps: Vec<String> = c
                .windows(2)
                .map(|w| format!("{} -> {} ({})", w[0], w[1], graph[&w[0]][&w[1]]))
                .collect();
            cycles.push(format!(
                "cycle {}:\n    {}",
                c.join(" -> "),
                steps.join("\n    ")
            ));
        }
    }
    assert!(
        cycles.is_empty(),
        "import cycles among library modules:\n{}",
        cycles.join("\n")
    );
}
