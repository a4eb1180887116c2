//! `tcto-tune status` (issue 17 item 7): the journaled and persisted
//! values against the live ones, in a network namespace, with `sysctl` as
//! the oracle and a reboot simulated by a bind-mounted boot id.

use tcto_tune_tests::{in_netns, require_root, TempDir, CRASH_HINTS};

const SEED: &str = "sysctl -qw net.core.somaxconn=1024 net.ipv4.tcp_max_syn_backlog=512\n";

#[test]
fn status_tells_in_effect_drifted_lost_and_persisted_not_active() {
    if !require_root("status_tells_in_effect_drifted_lost_and_persisted_not_active") {
        return;
    }
    let dir = TempDir::new("status");
    let d = dir.path();
    std::fs::create_dir_all(format!("{d}/img")).unwrap();
    let r = in_netns(&format!(
        "export TCTO_TUNE_STATE_DIR={d}/s\n{SEED}\
         tcto-tune status --exit-code; echo empty=$?\n\
         tcto-tune apply --profile backlog-overflow >/dev/null || exit 10\n\
         tcto-tune status --exit-code; echo clean=$?\n\
         sysctl -qw net.ipv4.tcp_max_syn_backlog=9999\n\
         tcto-tune status --exit-code; echo drift=$?\n\
         tcto-tune status --json > {d}/drift.json\n\
         echo 00000000-0000-4000-8000-000000000000 > {d}/boot_id\n\
         unshare -m sh -c 'mount --bind {d}/boot_id /proc/sys/kernel/random/boot_id && \
           sysctl -qw net.core.somaxconn=1024 && tcto-tune status; echo rebooted=$?'\n\
         tcto-tune persist --profile high-conn --root {d}/img --allow key-host-wide >/dev/null || exit 11\n\
         tcto-tune status --root {d}/img --exit-code; echo persisted=$?\n\
         echo '{{torn' > {d}/s/tx/000009.json\n\
         tcto-tune status --exit-code; echo torn=$?\n"
    ));
    let out = &r.stdout;
    assert!(out.contains("nothing applied or persisted\nempty=0"), "{r}");
    assert!(out.contains("all 2 value(s) in effect\nclean=0"), "{r}");
    assert!(
        out.lines().any(|l| l.starts_with("drifted")
            && l.contains("net.ipv4.tcp_max_syn_backlog")
            && l.contains("9999 (wanted 8192)")),
        "{r}"
    );
    assert!(out.contains("drift=4"), "--exit-code: 4 on drift: {r}");
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{d}/drift.json")).unwrap()).unwrap();
    assert_eq!(doc["schema"], 1);
    assert_eq!(doc["in_effect"], false);
    assert!(
        out.lines()
            .any(|l| l.starts_with("lost") && l.contains("net.core.somaxconn")),
        "after a reboot a runtime value not persisted is lost: {r}"
    );
    assert!(out.contains("rebooted=0"), "without --exit-code: 0: {r}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("persisted, not yet active")
                && l.contains("persisted high-conn")
                && l.contains("net.core.somaxconn")
                && l.contains("1024 (wanted 4096)")),
        "{r}"
    );
    assert!(out.contains("persisted=4"), "{r}");
    // A journal file that cannot be read is never vouched for.
    assert!(
        out.lines()
            .any(|l| l.starts_with("UNREADABLE") && l.contains("000009.json")),
        "{r}"
    );
    assert!(out.contains("torn=4"), "{r}");
}

#[test]
fn status_never_vouches_for_persisted_profiles_it_cannot_read() {
    if !require_root("status_never_vouches_for_persisted_profiles_it_cannot_read") {
        return;
    }
    let dir = TempDir::new("status-bad-entry");
    let d = dir.path();
    std::fs::create_dir_all(format!("{d}/img")).unwrap();
    std::fs::write(
        format!("{d}/web.toml"),
        "name = \"web\"\ndescription = \"t\"\n[backlog]\n\
         tcp_max_syn_backlog = { at_least = 8192, reason = \"r\" }\n",
    )
    .unwrap();
    let r = in_netns(&format!(
        "export TCTO_TUNE_STATE_DIR={d}/s\n{SEED}\
         tcto-tune persist --profile {d}/web.toml --root {d}/img >/dev/null || exit 10\n\
         echo garbage > {d}/img/etc/tcto-tune/persisted.d/bad.toml\n\
         sysctl -qw net.ipv4.tcp_max_syn_backlog=8192\n\
         tcto-tune status --exit-code --root {d}/img; echo status=$?\n\
         tcto-tune status --json --root {d}/img > {d}/s.json; echo json=$?\n\
         tcto-tune apply --persisted --root {d}/img >/dev/null 2>&1; echo boot=$?\n"
    ));
    let out = &r.stdout;
    assert!(out.contains("boot=1"), "the boot unit fails on it: {r}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("UNREADABLE") && l.contains("bad.toml")),
        "{r}"
    );
    assert!(!out.contains("value(s) in effect\nstatus"), "{r}");
    assert!(out.contains("status=4"), "{r}");
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{d}/s.json")).unwrap()).unwrap();
    assert_eq!(doc["in_effect"], false, "{doc}");
}

#[test]
fn commands_named_in_findings_and_rows_carry_the_state_dir() {
    if !require_root("commands_named_in_findings_and_rows_carry_the_state_dir") {
        return;
    }
    let dir = TempDir::new("status-flags");
    let d = dir.path();
    let r = in_netns(&format!(
        "{CRASH_HINTS}{SEED}ip link add v0 type veth peer name v1\n\
         tcto-tune --state-dir '{d}/s d' apply --profile offload-off --set iface=v0 2>&1\n\
         echo '{{torn' > '{d}/s d/tx/000009.json'\n\
         tcto-tune --state-dir '{d}/s d' status | tee {d}/st\n\
         take cmd 'tcto-tune [^`]*history' {d}/st; run_taken history\n"
    ));
    let out = &r.stdout;
    let sd = format!("`tcto-tune --state-dir '{d}/s d' rollback`");
    assert!(
        out.lines()
            .any(|l| l.contains("diagnostic step") && l.contains(&sd)),
        "the offload-off finding names rollback with the state dir: {r}"
    );
    assert!(
        out.contains(&format!("cmd=tcto-tune --state-dir '{d}/s d' history")),
        "{r}"
    );
    assert!(out.contains("history=0"), "{r}");
}

/// A transaction killed mid-way (and a rollback killed mid-way) leaves
/// values status must not leave out: each is `interrupted` (exit 4) until
/// `rollback` finishes it (`in progress` while a process holds the lock);
/// gone past with `--force-after-crash`, what it kept is checked like an
/// applied value.
#[test]
fn status_reports_interrupted_and_kept_transactions() {
    if !require_root("status_reports_interrupted_and_kept_transactions") {
        return;
    }
    let dir = TempDir::new("status-crash");
    let d = dir.path();
    let r = in_netns(&format!(
        "{CRASH_HINTS}export TCTO_TUNE_STATE_DIR={d}/s\n{SEED}\
         crash 1 tcto-tune apply --profile backlog-overflow\n\
         tcto-tune status --exit-code; echo crashed=$?\n\
         flock {d}/s/lock sh -c 'tcto-tune status --exit-code; echo running=$?'\n\
         tcto-tune apply --profile backlog-overflow --force-after-crash >/dev/null || exit 10\n\
         tcto-tune status --exit-code; echo kept=$?\n\
         crash_undo 1 tcto-tune rollback\n\
         tcto-tune status --exit-code; echo undoing=$?\n\
         tcto-tune status > {d}/st; take cmd 'tcto-tune [^`]*rollback' {d}/st; run_taken rolled\n\
         tcto-tune status --exit-code; echo after=$?\n\
         sysctl -n net.core.somaxconn\n"
    ));
    let out = &r.stdout;
    // The first value was written, then the process died.
    assert!(
        out.lines().any(|l| l.starts_with("interrupted")
            && l.contains("transaction 000001")
            && l.contains("net.core.somaxconn")),
        "{r}"
    );
    // The command it names carries the state dir, and runs as printed.
    assert!(
        out.contains(&format!(
            "000001 was interrupted: `tcto-tune --state-dir {d}/s rollback` restores"
        )),
        "{r}"
    );
    assert!(out.contains("crashed=4"), "{r}");
    // The same record while a process holds the state-dir lock: running,
    // not interrupted (and not vouched for).
    assert!(
        out.lines().any(|l| l.starts_with("in progress")
            && l.contains("transaction 000001")
            && l.contains("net.core.somaxconn")),
        "{r}"
    );
    assert!(out.contains("running=4"), "{r}");
    // Gone past: 000001 is abandoned (what it set is kept and checked),
    // 000002 applied the rest.
    assert!(out.contains("all 2 value(s) in effect\nkept=0"), "{r}");
    // The rollback of 000002 killed after its first restore.
    assert!(
        out.contains("the rollback of 000002 was interrupted"),
        "{r}"
    );
    assert!(out.contains("undoing=4"), "{r}");
    assert!(out.contains("rolled=0"), "{r}");
    assert!(
        out.contains("all 1 value(s) in effect\nafter=0\n4096\n"),
        "{r}"
    );
}

/// What status says about an interrupted record matches what the commands
/// do: a rollback killed mid-way blocks nothing, so once a newer
/// transaction was applied the command that completes it is `rollback
/// --to ID` (run as printed: `rollback` alone would undo the newer one); a
/// `rollback --to` reverting an older record while status runs is `in
/// progress`, not interrupted, and an older interrupted rollback beside
/// a running one is not; a transaction or rollback interrupted before a
/// reboot that touched only sysctls blocks nothing and is not reported.
#[test]
fn status_of_interrupted_records_matches_what_blocks_and_what_completes_them() {
    if !require_root("status_of_interrupted_records_matches_what_blocks_and_what_completes_them") {
        return;
    }
    let dir = TempDir::new("status-undoing");
    let d = dir.path();
    let r = in_netns(&format!(
        "{CRASH_HINTS}export TCTO_TUNE_STATE_DIR={d}/s\n{SEED}\
         tcto-tune apply --profile backlog-overflow >/dev/null || exit 10\n\
         crash_undo 1 tcto-tune rollback\n\
         tcto-tune apply --profile client >/dev/null || exit 11\n\
         tcto-tune status | tee {d}/st\n\
         take cmd 'tcto-tune [^`]*rollback' {d}/st; run_taken rolled\n\
         tcto-tune history | awk 'NR>1 {{print $1, $4}}'\n\
         sysctl -n net.core.somaxconn\n\
         ip link add tv0 type veth peer name tv1 && ip link set tv0 up && ip link set tv1 up || exit 12\n\
         tcto-tune apply --profile offload-off --set iface=tv0 --allow offload-cpu-cost >/dev/null || exit 13\n\
         tcto-tune apply --profile backlog-overflow >/dev/null || exit 14\n\
         TCTO_TUNE_FAULT_PAUSE_BEFORE_OFFLOAD_WRITE=1:{d}/pause tcto-tune rollback --to 3 >/dev/null 2>&1 &\n\
         i=0; while [ ! -e {d}/pause ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done\n\
         tcto-tune status | grep 'transaction 000003' | sed 's/^/paused: /'\n\
         rm -f {d}/pause; wait; echo waited=$?\n\
         tcto-tune apply --profile backlog-overflow >/dev/null || exit 15\n\
         crash_undo 1 tcto-tune rollback\n\
         tcto-tune apply --profile offload-off --set iface=tv0 --allow offload-cpu-cost >/dev/null || exit 16\n\
         TCTO_TUNE_FAULT_PAUSE_BEFORE_OFFLOAD_WRITE=1:{d}/pause tcto-tune rollback >/dev/null 2>&1 &\n\
         i=0; while [ ! -e {d}/pause ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done\n\
         tcto-tune status | grep 'transaction 00000[56]' | sed 's/^/paused2: /'\n\
         rm -f {d}/pause; wait; echo waited2=$?\n\
         crash 1 tcto-tune apply --profile backlog-overflow\n\
         echo 00000000-0000-4000-8000-000000000000 > {d}/boot_id\n\
         unshare -m sh -c 'mount --bind {d}/boot_id /proc/sys/kernel/random/boot_id && \
           sysctl -qw net.core.somaxconn=1024 && tcto-tune status --exit-code; echo rebooted=$?'\n"
    ));
    let out = &r.stdout;
    // 000001's rollback was killed, then 000002 applied: the command that
    // completes 000001 is `rollback --to`, and it runs as printed.
    assert!(
        out.contains(&format!(
            "the rollback of 000001 was interrupted, and newer transactions were applied since: `tcto-tune --state-dir {d}/s rollback --to 000001` undoes them and completes it"
        )),
        "{r}"
    );
    assert!(out.contains("rolled=0"), "{r}");
    assert!(out.contains("000002 undone\n000001 undone\n1024\n"), "{r}");
    // A `rollback --to 3` paused in the undo of 000003 (after undoing
    // 000004): the process runs, so 000003 is in progress.
    assert!(out.contains("paused: in progress"), "{r}");
    assert!(!out.contains("paused: interrupted"), "{r}");
    assert!(out.contains("waited=0"), "{r}");
    // A rollback of 000006 paused while 000005's rollback was killed
    // earlier: 000006 is the one in progress, 000005 is interrupted.
    assert!(
        out.lines()
            .any(|l| l.starts_with("paused2: interrupted  transaction 000005")),
        "{r}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("paused2: in progress  transaction 000006")),
        "{r}"
    );
    assert!(
        !out.contains("paused2: in progress  transaction 000005"),
        "{r}"
    );
    assert!(out.contains("waited2=0"), "{r}");
    // Interrupted before the reboot, sysctls only (a transaction, 000007,
    // and a rollback, 000005's): the reboot reset what they wrote and they
    // block nothing, so status has nothing interrupted to report.
    assert!(out.contains("rebooted=0"), "{r}");
}

/// A FIFO left at `STATE_DIR/lock` (a corrupt state dir) never hangs
/// `status`, which a fleet runs from cron: the lock is probed without
/// blocking, and only when a record may be being written. It used to wait
/// for ever for a writer, with or without an interrupted record.
#[test]
fn a_fifo_at_the_lock_never_hangs_status() {
    if !require_root("a_fifo_at_the_lock_never_hangs_status") {
        return;
    }
    let dir = TempDir::new("status-fifo-lock");
    let d = dir.path();
    let r = in_netns(&format!(
        "{CRASH_HINTS}export TCTO_TUNE_STATE_DIR={d}/s\n{SEED}\
         tcto-tune apply --profile backlog-overflow >/dev/null || exit 10\n\
         rm {d}/s/lock && mkfifo -m 600 {d}/s/lock || exit 11\n\
         timeout 20 tcto-tune status --exit-code >/dev/null; echo applied=$?\n\
         crash 1 tcto-tune apply --profile client\n\
         timeout 20 tcto-tune status | grep -c '^interrupted'; echo crashed=$?\n"
    ));
    let out = &r.stdout;
    assert!(out.contains("applied=0"), "{r}");
    assert!(out.contains("1\ncrashed=0"), "{r}");
}
