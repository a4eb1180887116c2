//! Hostile and broken environments: the state dir on a full disk, a symlink,
//! world-writable. Each must fail before any change, with a clear message.

use tcto_tune_tests::{in_netns, require_root, TempDir};

const SEED: &str = "sysctl -qw net.core.somaxconn=1024\n";

#[test]
fn a_full_disk_under_the_state_dir_changes_nothing() {
    if !require_root("a_full_disk_under_the_state_dir_changes_nothing") {
        return;
    }
    let dir = TempDir::new("full");
    let mnt = dir.path();
    // A 64 KiB tmpfs in a private mount namespace, filled up.
    let r = in_netns(&format!(
        "{SEED}unshare -m sh -c 'mount -t tmpfs -o size=64k tmpfs {mnt} && mkdir -m 700 {mnt}/s && mkdir -m 700 {mnt}/s/tx && (dd if=/dev/zero of={mnt}/fill bs=4k 2>/dev/null; true) && tcto-tune apply --profile high-conn --state-dir {mnt}/s; echo rc=$?'\nsysctl -n net.core.somaxconn"
    ));
    assert!(r.stdout.contains("rc=1"), "{r}");
    assert!(
        r.stderr.contains("journal: cannot") && r.stderr.contains("No space left on device"),
        "{r}"
    );
    assert!(
        r.stdout.trim_end().ends_with("1024"),
        "nothing changed: {r}"
    );
}

#[test]
fn a_symlinked_or_world_writable_state_dir_is_refused() {
    if !require_root("a_symlinked_or_world_writable_state_dir_is_refused") {
        return;
    }
    let dir = TempDir::new("unsafe");
    let d = dir.path();
    let r = in_netns(&format!(
        "{SEED}mkdir -m 700 {d}/real && ln -s {d}/real {d}/link\ntcto-tune apply --profile high-conn --state-dir {d}/link; echo rc=$?\nmkdir -m 777 {d}/open\ntcto-tune apply --profile high-conn --state-dir {d}/open; echo rc=$?\nsysctl -n net.core.somaxconn"
    ));
    assert_eq!(r.stdout.matches("rc=1").count(), 2, "{r}");
    assert!(r.stderr.contains("is unsafe: it is a symbolic link"), "{r}");
    assert!(
        r.stderr
            .contains("is unsafe: it is writable by group or others"),
        "{r}"
    );
    assert!(r.stderr.contains("hint:"), "{r}");
    assert!(
        r.stdout.trim_end().ends_with("1024"),
        "nothing changed: {r}"
    );
}

#[test]
fn a_corrupt_journal_blocks_apply_and_rollback_without_guessing() {
    if !require_root("a_corrupt_journal_blocks_apply_and_rollback_without_guessing") {
        return;
    }
    let dir = TempDir::new("corrupt");
    let d = dir.path();
    let r = in_netns(&format!(
        "{SEED}export TCTO_TUNE_STATE_DIR={d}/s\ntcto-tune apply --profile backlog-overflow >/dev/null\nhead -c 100 {d}/s/tx/000001.json > {d}/t && mv {d}/t {d}/s/tx/000001.json\ntcto-tune rollback; echo rc=$?\ntcto-tune apply --profile high-conn; echo rc=$?\nsysctl -n net.core.somaxconn"
    ));
    assert_eq!(r.stdout.matches("rc=1").count(), 2, "{r}");
    assert!(
        r.stderr.contains("000001.json") && r.stderr.contains("is corrupt at line"),
        "{r}"
    );
    assert!(r.stderr.contains("nothing was rolled back"), "{r}");
    assert!(
        r.stdout.trim_end().ends_with("4096"),
        "the applied value stays; nothing guessed: {r}"
    );
}

#[test]
fn not_root_fails_before_any_change() {
    if !require_root("not_root_fails_before_any_change") {
        return;
    }
    let dir = TempDir::new("nonroot");
    let r = in_netns(&format!(
        "{SEED}chmod 755 {d}\nsetpriv --reuid=65534 --regid=65534 --clear-groups tcto-tune apply --profile high-conn --state-dir {d}/s; echo rc=$?\nsetpriv --reuid=65534 --regid=65534 --clear-groups tcto-tune apply --profile high-conn --dry-run >/dev/null; echo dry=$?\nsysctl -n net.core.somaxconn",
        d = dir.path()
    ));
    assert!(
        r.stdout.contains("rc=1") && r.stdout.contains("dry=0"),
        "{r}"
    );
    assert!(
        r.stderr
            .contains("needs root or CAP_NET_ADMIN; nothing was changed"),
        "{r}"
    );
    assert!(r.stdout.trim_end().ends_with("1024"), "{r}");
}

#[test]
fn an_unprivileged_plan_still_shows_the_pending_changes() {
    if !require_root("an_unprivileged_plan_still_shows_the_pending_changes") {
        return;
    }
    let r = in_netns(&format!(
        "{SEED}setpriv --reuid=65534 --regid=65534 --clear-groups tcto-tune plan --profile backlog-overflow --exit-code; echo rc=$?\nsetpriv --reuid=65534 --regid=65534 --clear-groups tcto-tune apply --profile backlog-overflow --dry-run; echo dry=$?"
    ));
    assert!(
        r.stdout.contains("1024 -> 4096") && r.stdout.contains("rc=4"),
        "{r}"
    );
    assert!(
        r.stdout.contains("would set  net.core.somaxconn") && r.stdout.contains("dry=0"),
        "{r}"
    );
}

#[test]
fn persisted_allowances_hold_at_boot() {
    if !require_root("persisted_allowances_hold_at_boot") {
        return;
    }
    let dir = TempDir::new("allowboot");
    let d = dir.path();
    let r = in_netns(&format!(
        "mkdir -p {d}/img\ntcto-tune --state-dir {d}/s persist --profile offload-off --set iface=lo --allow offload-on-loopback --allow offload-cpu-cost --root {d}/img >/dev/null; echo persist=$?\ngrep -A1 '^allow' {d}/img/etc/tcto-tune/persisted.d/offload-off.toml\ntcto-tune --state-dir {d}/s2 apply --persisted --root {d}/img --dry-run >/dev/null; echo boot=$?"
    ));
    assert!(r.stdout.contains("persist=0"), "{r}");
    assert!(
        r.stdout.contains("offload-on-loopback"),
        "the allowance is recorded: {r}"
    );
    assert!(r.stdout.contains("boot=0"), "and honoured at boot: {r}");
}
