//! The library's errors and hints state facts; the words of a user
//! interface (`tcto-tune rollback`, `--state-dir`, `--allow`...) are the
//! CLI's and the Ansible module's to add. This test reads the string
//! literals of the library's non-test sources and fails on a CLI word that
//! is not in [`ALLOWED`].
//!
//! [`ALLOWED`] says why each remaining one is there: documented facts
//! only (the files tcto-tune writes, the code table's meanings, the lock
//! holder's program name). Hints name actions through `words::Words`. An
//! entry that no longer matches fails the test, so the list can only
//! shrink.

use std::collections::BTreeSet;
use std::path::Path;

include!("support/cli_words.rs");

/// (file under `src/`, word, why it may stay).
#[rustfmt::skip]
const ALLOWED: &[(&str, &str, &str)] = &[
    // Documented facts: the files tcto-tune writes name the command that
    // reads them back.
    ("persist_facts.rs", "tcto-tune apply", "the packaged unit's ExecStart line, compared byte for byte"),
    ("persist_facts.rs", "--persisted", "the packaged unit's ExecStart line, compared byte for byte"),
    ("persist/unit.rs", "tcto-tune persist", "the generated unit's header comment says which command enables it"),
    ("persist/unit.rs", "tcto-tune apply", "the generated unit's ExecStart and its description in a finding"),
    ("persist/unit.rs", "--persisted", "the generated unit's ExecStart and its description in a finding"),
    ("persist/sysctl_d.rs", "tcto-tune persist", "the generated sysctl.d file's header says how to change it"),
    ("persist/sysctl_d.rs", "--profile", "the generated sysctl.d file's header says how to change it"),
    ("persist/sysctl_d.rs", "--remove", "the generated sysctl.d file's header says how to change it"),
    ("persist/entries.rs", "tcto-tune persist", "the persisted profile's comment says what saved it"),
    ("persist/entries.rs", "--profile", "the persisted profile's comment says what saved it"),
    ("journal/error.rs", "tcto-tune apply", "the lock holder is another tcto-tune process: the program, not a command to type"),
    ("finding.rs", "--allow", "the code table's documented meanings (docs/ tables are generated from them)"),
    ("finding.rs", "--force", "the code table's documented meanings (docs/ tables are generated from them)"),
    ("finding.rs", "--app-backlog", "the code table's documented meanings (docs/ tables are generated from them)"),
];

/// The string literals of `src` (comments skipped), each with its line.
fn literals(src: &str) -> Vec<(usize, String)> {
    let b = src.as_bytes();
    let (mut i, mut line, mut out) = (0, 1, Vec::new());
    while i < b.len() {
        match b[i] {
            b'\n' => {
                line += 1;
                i += 1;
            }
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'\'' if b.get(i + 2) == Some(&b'\'') || b.get(i + 1) == Some(&b'\\') => {
                // A char literal ('"' included); a lifetime has no closing quote.
                let end = src[i + 1..].find('\'').map_or(b.len(), |e| i + 2 + e);
                i = end;
            }
            b'r' if matches!(b.get(i + 1), Some(b'"') | Some(b'#')) => {
                let hashes = b[i + 1..].iter().take_while(|&&c| c == b'#').count();
                let open = i + 1 + hashes;
                if b.get(open) != Some(&b'"') {
                    i += 1;
                    continue;
                }
                let close = format!("\"{}", "#".repeat(hashes));
                let end = src[open + 1..]
                    .find(&close)
                    .map_or(b.len(), |e| open + 1 + e);
                let text = &src[open + 1..end];
                out.push((line, text.to_owned()));
                line += text.matches('\n').count();
                i = end + close.len();
            }
            b'"' => {
                let mut j = i + 1;
                while j < b.len() && b[j] != b'"' {
                    j += if b[j] == b'\\' { 2 } else { 1 };
                }
                let text = &src[i + 1..j.min(b.len())];
                out.push((line, text.to_owned()));
                line += text.matches('\n').count();
                i = j + 1;
            }
            _ => i += 1,
        }
    }
    out
}

/// The library's non-test sources under `dir`, by path relative to `src/`.
fn sources(src: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if p.is_dir() {
            if name != "fixtures" && name != "snapshots" {
                sources(src, &p, out);
            }
        } else if name.ends_with(".rs")
            && name != "tests.rs"
            && !name.starts_with("tests_")
            && name != "fixtures.rs"
        {
            let text = std::fs::read_to_string(&p).unwrap();
            // An inline test module ends the file's code.
            let code = text
                .split("#[cfg(test)]\nmod tests {")
                .next()
                .unwrap()
                .to_owned();
            let rel = p.strip_prefix(src).unwrap().to_string_lossy().into_owned();
            out.push((rel, code));
        }
    }
}

#[test]
fn library_strings_name_no_cli_words() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &src, &mut files);
    let mut bad = Vec::new();
    let mut used = BTreeSet::new();
    for (file, code) in &files {
        for (line, text) in literals(code) {
            for word in CLI_WORDS {
                if !text.contains(word) {
                    continue;
                }
                if let Some(a) = ALLOWED.iter().find(|a| a.0 == file && a.1 == *word) {
                    used.insert((a.0, a.1));
                } else {
                    bad.push(format!("src/{file}:{line}: `{word}` in {text:?}"));
                }
            }
        }
    }
    let stale: Vec<_> = ALLOWED
        .iter()
        .filter(|a| !used.contains(&(a.0, a.1)))
        .map(|a| format!("{} / {}", a.0, a.1))
        .collect();
    assert!(
        bad.is_empty(),
        "CLI words in library strings (state the fact, let the CLI word it):\n{}",
        bad.join("\n")
    );
    assert!(
        stale.is_empty(),
        "allow-list entries that no longer match:\n{}",
        stale.join("\n")
    );
}
