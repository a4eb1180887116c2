//! The hint after an interrupted transaction names the command that goes
//! ahead past it; for a dry run that is the real command (a dry run keeps
//! nothing), with every flag the user gave. Each command is taken from the
//! hint as printed and run (`eval`), with a state dir path holding a space.

use tcto_tune_tests::{in_netns, require_root, TempDir, CRASH_HINTS};

/// The `take` pattern of the command that goes ahead past the crash.
const KEEP: &str = "'[^`]*--force-after-crash'";

#[test]
fn a_blocked_dry_run_hints_the_real_command_with_the_users_flags() {
    if !require_root("a_blocked_dry_run_hints_the_real_command_with_the_users_flags") {
        return;
    }
    let dir = TempDir::new("dry-crash-hint");
    let d = dir.path();
    std::fs::create_dir_all(format!("{d}/r x")).unwrap();
    // The state dir from the environment: the hint must give it as a flag.
    let flags = "--profile rp-filter-loose --set iface=lo --allow key-host-wide";
    let r = in_netns(&format!(
        "{CRASH_HINTS}export TCTO_TUNE_STATE_DIR='{d}/s d'\n\
         crash 1 tcto-tune apply {flags}\n\
         tcto-tune apply {flags} --dry-run >/dev/null 2>{d}/err; echo dry=$?\n\
         cat {d}/err\n\
         take cmd {KEEP} {d}/err; run_taken preview --dry-run\n\
         tcto-tune history | grep -c abandoned\n\
         run_taken kept\n\
         sysctl -n net.ipv4.conf.lo.rp_filter\n\
         tcto-tune apply {flags} >/dev/null; echo unblocked=$?\n\
         crash 1 tcto-tune persist {flags} --root '{d}/r x'\n\
         tcto-tune persist {flags} --root '{d}/r x' --dry-run >/dev/null 2>{d}/err; echo pdry=$?\n\
         take pcmd {KEEP} {d}/err; run_taken ppreview --dry-run; run_taken pkept\n\
         echo abandoned=$(tcto-tune history | grep -c abandoned)\n\
         grep -l rp_filter '{d}/r x/etc/sysctl.d/'*\n"
    ));
    let out = &r.stdout;
    let tt = format!("tcto-tune --state-dir '{d}/s d'");
    assert!(out.contains("dry=1"), "blocked like the real run: {r}");
    // The real command, the user's flags and no `--dry-run`; the preview
    // is said, not given as the way to keep them.
    assert!(
        out.contains(&format!("\ncmd={tt} apply {flags} --force-after-crash\n")),
        "{r}"
    );
    assert!(
        out.contains("to keep them (a dry run keeps nothing; add `--dry-run` to preview it)"),
        "{r}"
    );
    assert!(
        out.contains("preview=0\n0\n"),
        "the preview keeps nothing: {r}"
    );
    assert!(out.contains("kept=0"), "{r}");
    assert!(out.contains("\n2\nunblocked=0"), "what it set is kept: {r}");
    // `persist --dry-run`: the same, with its `--root`.
    assert!(out.contains("pdry=1"), "{r}");
    assert!(
        out.contains(&format!(
            "\npcmd={tt} persist {flags} --root '{d}/r x' --force-after-crash\n"
        )),
        "{r}"
    );
    assert!(out.contains("ppreview=0"), "{r}");
    assert!(out.contains("pkept=0"), "{r}");
    assert!(out.contains("abandoned=2"), "both went ahead: {r}");
    assert!(
        out.contains(&format!("{d}/r x/etc/sysctl.d/")),
        "persisted: {r}"
    );
}
