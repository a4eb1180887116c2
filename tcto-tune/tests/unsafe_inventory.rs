//! The unsafe-code inventory in docs/architecture.md cannot go stale: its
//! table must list every Rust source file of the workspace in which the word
//! `unsafe` occurs, with the number of lines holding it (`grep -c unsafe`)
//! and of `unsafe` blocks, functions and impls, as the source has them now
//! (this file itself aside).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// This test, which spells the word out to count it.
const THIS_FILE: &str = "tcto-tune/tests/unsafe_inventory.rs";

/// Lines holding `unsafe` and `unsafe` blocks/fns/impls of one file.
fn counts(text: &str) -> (usize, usize) {
    let lines = text.lines().filter(|l| l.contains("unsafe")).count();
    let blocks = ["unsafe {", "unsafe fn", "unsafe impl"]
        .iter()
        .map(|p| text.matches(p).count())
        .sum();
    (lines, blocks)
}

/// Every `.rs` file under `dir` (build output and hidden dirs skipped), by
/// its path relative to `root`.
fn sources(root: &Path, dir: &Path, out: &mut BTreeMap<String, (usize, usize)>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if p.is_dir() {
            if name != "target" && !name.starts_with('.') {
                sources(root, &p, out);
            }
        } else if name.ends_with(".rs") && !p.ends_with(THIS_FILE) {
            let c = counts(&std::fs::read_to_string(&p).unwrap());
            if c.0 > 0 {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                out.insert(rel, c);
            }
        }
    }
}

/// The table's rows: `| `FILE` | LINES | BLOCKS | why |`.
fn table(doc: &str) -> BTreeMap<String, (usize, usize)> {
    let section = doc
        .split("## Unsafe code")
        .nth(1)
        .expect("docs/architecture.md has a `## Unsafe code` section");
    let section = section.split("\n## ").next().unwrap_or_default();
    section
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let file = cells[1].trim_matches('`').to_owned();
            let n = |i: usize| {
                cells[i]
                    .parse()
                    .unwrap_or_else(|_| panic!("row `{l}`: `{}` is not a count", cells[i]))
            };
            (file, (n(2), n(3)))
        })
        .collect()
}

#[test]
fn the_unsafe_table_matches_the_source() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let doc = std::fs::read_to_string(root.join("docs/architecture.md")).unwrap();
    let listed = table(&doc);
    let mut found = BTreeMap::new();
    sources(root, root, &mut found);
    assert!(found.contains_key("tcto-tune/src/lib.rs"), "{found:?}");
    let mut wrong = Vec::new();
    for (file, (lines, blocks)) in &found {
        match listed.get(file) {
            None => wrong.push(format!(
                "`{file}` ({lines} lines, {blocks} blocks) is not in the table"
            )),
            Some(row) if row != &(*lines, *blocks) => wrong.push(format!(
                "`{file}`: the table says {row:?} (lines, blocks), the source has ({lines}, {blocks})"
            )),
            Some(_) => {}
        }
    }
    for file in listed.keys().filter(|f| !found.contains_key(*f)) {
        wrong.push(format!("`{file}` is in the table but has no `unsafe`"));
    }
    assert!(
        wrong.is_empty(),
        "docs/architecture.md's unsafe table is stale:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn counting_is_grep_c_for_lines() {
    let text = "#![deny(unsafe_code)]\nlet a = unsafe { f() }; unsafe { g() }\nunsafe fn h() {}\n";
    assert_eq!(counts(text), (3, 3));
}
