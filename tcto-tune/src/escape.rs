//! Control characters from the system, made visible before they reach a
//! terminal.
//!
//! tcto-tune runs as root and prints strings it did not write: process
//! names (any user can rename a process with `prctl(PR_SET_NAME)`),
//! interface names (the kernel refuses only `/`, `:` and whitespace),
//! nftables table, chain and set names and comments, lines of sysctl.d files
//! in an image, values read from `/proc/sys`, profile text. Printed raw, an
//! ESC in one of them is a terminal escape sequence: it can recolour or
//! hide lines of the admin's screen, rewrite the title, or worse on some
//! terminals. So, as `ps` and `ip` do, text output shows every control
//! character as a visible escape (`\x1b`, `\x07`, `\u{202e}`); JSON needs
//! nothing more, since serde_json escapes control characters by
//! construction.
//!
//! One function does it, [`escape_control`], applied where text is printed
//! (the `Display` impls, the plan renderer, the diagnose text printer, the
//! CLI's error printer), never to data: what is stored, compared or written
//! back to the kernel stays byte for byte what was read.

use std::borrow::Cow;

/// Whether `c` must not reach a terminal as is: C0 and C1 controls
/// (including ESC, BEL, CR, the 8-bit CSI U+009B) and DEL, and the Unicode
/// bidirectional overrides and isolates, which reorder what is displayed
/// around them.
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn push_escaped(out: &mut String, c: char) {
    use std::fmt::Write as _;
    match c {
        '\n' => out.push_str("\\n"),
        '\t' => out.push_str("\\t"),
        '\r' => out.push_str("\\r"),
        c if (c as u32) < 0x100 => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c => {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
    }
}

/// `text` with every control character shown as a visible escape (`\x1b`,
/// `\n`, `\u{202e}`). Borrowed, without copying, when there is none: the
/// common case.
pub fn escape_control(text: &str) -> Cow<'_, str> {
    escape_except(text, |_| false)
}

/// Like [`escape_control`], but keeps line breaks and tabs: for a
/// multi-line block laid out as lines (an nft table, which `nft` indents
/// with tabs, a diff, an error that spans lines), escaping everything else.
/// Neither moves the cursor anywhere a reader would not expect.
pub fn escape_lines(text: &str) -> Cow<'_, str> {
    escape_except(text, |c| c == '\n' || c == '\t')
}

fn escape_except(text: &str, keep: impl Fn(char) -> bool) -> Cow<'_, str> {
    let bad = |c: char| needs_escape(c) && !keep(c);
    if !text.chars().any(bad) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if bad(c) {
            push_escaped(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_a_terminal_would_act_on() {
        assert_eq!(escape_control("x\x1b[31mRED\x07"), "x\\x1b[31mRED\\x07");
        assert_eq!(escape_control("a\nb\tc\rd\x7f"), "a\\nb\\tc\\rd\\x7f");
        // The 8-bit CSI and a right-to-left override.
        assert_eq!(escape_control("a\u{9b}2Jb"), "a\\x9b2Jb");
        assert_eq!(escape_control("abc\u{202e}gpj.exe"), "abc\\u{202e}gpj.exe");
        assert_eq!(escape_lines("a\x1b\nb\x07\n"), "a\\x1b\nb\\x07\n");
        assert_eq!(escape_lines("\tchain x {\r"), "\tchain x {\\r");
    }

    #[test]
    fn leaves_ordinary_text_alone_without_copying() {
        for s in [
            "",
            "nginx",
            "eth0.100",
            "10.0.1.0/24 -> 10.0.2.0/24",
            "ünïcødé ✓",
            "a\\x1b",
        ] {
            assert!(matches!(escape_control(s), Cow::Borrowed(_)), "{s}");
            assert_eq!(escape_control(s), s);
        }
        assert!(matches!(escape_lines("a\nb\n"), Cow::Borrowed(_)));
    }

    #[test]
    fn no_control_character_survives() {
        let all: String = (0u32..0x2100).filter_map(char::from_u32).collect();
        let out = escape_control(&all);
        assert!(!out.chars().any(needs_escape));
        assert!(!out.contains('\x1b') && !out.contains('\x07'));
    }
}
