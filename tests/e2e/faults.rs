//! Every fault point of a representative plan, with the real kernel: a
//! plan that spans sysctls, the NOTRACK table and a NIC offload, with a
//! refused write, a write that reads back different, or a crash injected
//! at each step in turn (test-only fault points, feature
//! `fault-injection`). After the automatic rollback, or the user's
//! `rollback` after a crash, `sysctl`, `nft list ruleset` and `ethtool -k`
//! show exactly what they showed before.
//!
//! The same for a `rollback` SIGKILLed after each value it restores (of a
//! clean apply, and of an apply itself killed after each step): `history`
//! says `rollback interrupted`, and a second `rollback` completes it,
//! writing only what the first did not restore.

use tcto_tune_tests::{in_netns, on_host, require_root, TempDir};

/// Namespace setup and `snap`, the oracle: every value the plan touches,
/// read with the system's own tools.
const SETUP: &str = r#"ip link add name a type veth peer name b && ip link set a up && ip link set b up
sysctl -qw net.core.somaxconn=1024 net.netfilter.nf_conntrack_tcp_timeout_established=432000
snap() { sysctl -n net.core.somaxconn net.netfilter.nf_conntrack_tcp_timeout_established; nft list ruleset; ethtool -k a | grep -E '^(tcp-segmentation-offload|generic-receive-offload):'; }
"#;

const PROFILE: &str = "name = \"faults\"\n[backlog]\nsomaxconn = 3000\n[conntrack]\ntcp_timeout_established = 7440\n[[notrack]]\nfrom = \"10.0.1.0/24\"\nto = \"10.0.2.0/24\"\nport = 8080\n[[offload]]\niface = \"a\"\ntso = false\n";

#[test]
fn every_step_of_a_mixed_plan_survives_every_fault() {
    if !require_root("every_step_of_a_mixed_plan_survives_every_fault") {
        return;
    }
    let dir = TempDir::new("faults");
    let d = dir.path();
    std::fs::write(format!("{d}/p.toml"), PROFILE).unwrap();
    let script = format!(
        r#"{SETUP}snap > {d}/before
steps=$(tcto-tune --json plan --profile {d}/p.toml --allow offload-cpu-cost | grep -c '"target": {{')
echo "steps=$steps"
runs=0
for n in $(seq 1 "$steps"); do
  for kind in REFUSE READBACK CRASH; do
    st={d}/s-$kind-$n
    case $kind in
      REFUSE) TCTO_TUNE_FAULT_REFUSE_AT=$n tcto-tune --state-dir $st apply --profile {d}/p.toml --allow offload-cpu-cost >{d}/out 2>&1; rc=$?; want=1 ;;
      READBACK) TCTO_TUNE_FAULT_READBACK_AT=$n tcto-tune --state-dir $st apply --profile {d}/p.toml --allow offload-cpu-cost >{d}/out 2>&1; rc=$?; want=1 ;;
      CRASH) TCTO_TUNE_FAULT_CRASH_AFTER=$n tcto-tune --state-dir $st apply --profile {d}/p.toml --allow offload-cpu-cost >{d}/out 2>&1; rc=$?; want=137
             tcto-tune --state-dir $st rollback >>{d}/out 2>&1 || {{ echo "rollback failed $kind $n"; cat {d}/out; }} ;;
    esac
    [ "$rc" = "$want" ] || {{ echo "bad exit $rc for $kind at $n"; cat {d}/out; }}
    snap > {d}/after
    cmp -s {d}/before {d}/after || {{ echo "state differs after $kind at $n"; diff {d}/before {d}/after; cat {d}/out; }}
    runs=$((runs + 1))
  done
done
echo "runs=$runs"
"#
    );
    let r = in_netns(&script);
    assert_eq!(r.code, 0, "{r}");
    assert!(
        r.stdout.contains("steps=4"),
        "the plan spans 2 sysctls, the table and an offload: {r}"
    );
    assert!(r.stdout.contains("runs=12"), "{r}");
    assert!(
        !r.stdout.contains("differs")
            && !r.stdout.contains("bad exit")
            && !r.stdout.contains("rollback failed"),
        "{r}"
    );
    eprintln!("real-kernel fault points: 4 steps x 3 faults = 12, all restored");
}

#[test]
fn a_rollback_killed_at_every_step_is_completed_by_the_next() {
    if !require_root("a_rollback_killed_at_every_step_is_completed_by_the_next") {
        return;
    }
    let dir = TempDir::new("undofaults");
    let d = dir.path();
    std::fs::write(format!("{d}/p.toml"), PROFILE).unwrap();
    // m = 0: a clean apply; m > 0: an apply SIGKILLed after m steps. Then
    // a rollback SIGKILLed after each of the values it restores in turn.
    let script = format!(
        r#"{SETUP}snap > {d}/before
runs=0
for m in 0 1 2 3 4; do
  top=$m; [ $m = 0 ] && top=4
  for k in $(seq 1 $top); do
    st={d}/s-$m-$k
    if [ $m = 0 ]; then
      tcto-tune --state-dir $st apply --profile {d}/p.toml --allow offload-cpu-cost >{d}/out 2>&1 || {{ echo "apply failed $m $k"; cat {d}/out; }}
    else
      TCTO_TUNE_FAULT_CRASH_AFTER=$m tcto-tune --state-dir $st apply --profile {d}/p.toml --allow offload-cpu-cost >{d}/out 2>&1
      [ $? = 137 ] || {{ echo "apply not killed $m $k"; cat {d}/out; }}
    fi
    TCTO_TUNE_FAULT_CRASH_UNDO_AFTER=$k tcto-tune --state-dir $st rollback >>{d}/out 2>&1
    rc=$?; [ $rc = 137 ] || {{ echo "rollback not killed ($rc) $m $k"; cat {d}/out; }}
    tcto-tune --state-dir $st history | grep -q 'rollback interrupted' || {{ echo "history hides it $m $k"; tcto-tune --state-dir $st history -v; }}
    tcto-tune --state-dir $st rollback >{d}/second 2>&1 || {{ echo "second rollback failed $m $k"; cat {d}/second; }}
    # The second run writes only what the first did not restore.
    already=$(grep -c '^already at' {d}/second)
    [ "$already" -ge "$k" ] || {{ echo "already-at $already < $k at $m $k"; cat {d}/second; }}
    grep -q '^reverted .* -> ' {d}/second && [ $((already + $(grep -c '^reverted' {d}/second))) -gt 4 ] && {{ echo "too many lines $m $k"; cat {d}/second; }}
    tcto-tune --state-dir $st history | grep -q 'undone' || {{ echo "not undone $m $k"; tcto-tune --state-dir $st history -v; }}
    tcto-tune --state-dir $st rollback >{d}/third 2>&1; echo "third=$?" >> {d}/thirds
    snap > {d}/after
    cmp -s {d}/before {d}/after || {{ echo "state differs after $m $k"; diff {d}/before {d}/after; cat {d}/out {d}/second; }}
    runs=$((runs + 1))
  done
done
echo "runs=$runs"
sort -u {d}/thirds
"#
    );
    let r = in_netns(&script);
    assert_eq!(r.code, 0, "{r}");
    // 4 (clean apply) + 1 + 2 + 3 + 4 (apply killed after m steps).
    assert!(r.stdout.contains("runs=14"), "{r}");
    for bad in [
        "failed",
        "not killed",
        "hides",
        "already-at",
        "too many",
        "not undone",
        "differs",
    ] {
        assert!(!r.stdout.contains(bad), "{bad}: {r}");
    }
    // Once undone there is nothing left to roll back (exit 0, the journal
    // exists).
    assert!(
        r.stdout.contains("third=0") && !r.stdout.contains("third=1"),
        "{r}"
    );
    eprintln!("real-kernel rollback fault points: 14 kills mid-rollback, all completed");
}

const BOOT_A: &str = "aaaaaaaa-0000-4000-8000-000000000001";
const BOOT_B: &str = "bbbbbbbb-0000-4000-8000-000000000002";

#[test]
fn a_reboot_unblocks_runtime_changes_but_not_files() {
    if !require_root("a_reboot_unblocks_runtime_changes_but_not_files") {
        return;
    }
    let dir = TempDir::new("reboot");
    let d = dir.path();
    // A reboot is simulated by a new boot id (the test build reads it from
    // TCTO_TUNE_BOOT_ID_FILE) and a fresh network namespace (runtime state
    // back to the kernel's defaults); files under --root survive it.
    let r = in_netns(&format!(
        r#"export TCTO_TUNE_BOOT_ID_FILE={d}/boot
echo {BOOT_A} > {d}/boot
export TCTO_TUNE_STATE_DIR={d}/rt
sysctl -qw net.core.somaxconn=1024
TCTO_TUNE_FAULT_CRASH_AFTER=1 tcto-tune apply --profile high-conn >/dev/null 2>&1; echo crash=$?
tcto-tune apply --profile high-conn >/dev/null 2>{d}/same; echo same-boot=$?
export TCTO_TUNE_STATE_DIR={d}/files
mkdir -p {d}/img
TCTO_TUNE_FAULT_CRASH_AFTER=1 tcto-tune persist --root {d}/img --profile high-conn >/dev/null 2>&1; echo persist-crash=$?
echo {BOOT_B} > {d}/boot
unshare -n sh -c '
ip link set lo up
export TCTO_TUNE_STATE_DIR={d}/rt
tcto-tune apply --profile high-conn; echo runtime-after-reboot=$?
tcto-tune history -v
export TCTO_TUNE_STATE_DIR={d}/files
tcto-tune apply --profile high-conn >/dev/null 2>{d}/files.err; echo files-after-reboot=$?
tcto-tune rollback; echo rollback=$?
test -e {d}/img/etc/sysctl.d/99-tcto-tune.conf && echo file-left
tcto-tune apply --profile high-conn >/dev/null; echo files-then=$?
'
cat {d}/same {d}/files.err"#
    ));
    let out = &r.stdout;
    assert!(
        out.contains("crash=137") && out.contains("persist-crash=137"),
        "{r}"
    );
    assert!(
        out.contains("same-boot=1"),
        "the same boot still blocks: {r}"
    );
    assert!(out.contains("runtime-after-reboot=0"), "{r}");
    assert!(
        out.contains("note: went ahead after transaction 000001, interrupted before the reboot"),
        "the apply says so: {r}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("000001") && l.contains("interrupted (before reboot)")),
        "history: {r}"
    );
    assert!(
        out.contains("note: interrupted before a reboot"),
        "the old record says so: {r}"
    );
    // A persisted file written before the reboot still blocks, names the
    // file, and rollback restores it.
    assert!(out.contains("files-after-reboot=1"), "{r}");
    assert!(
        out.contains("interrupted before the last reboot and may have written")
            && out.contains("img/etc/sysctl.d/99-tcto-tune.conf"),
        "{r}"
    );
    assert!(
        out.contains("rollback=0") && !out.contains("file-left"),
        "{r}"
    );
    assert!(out.contains("files-then=0"), "{r}");
}

#[test]
fn a_reboot_seen_through_the_kernels_boot_id() {
    if !require_root("a_reboot_seen_through_the_kernels_boot_id") {
        return;
    }
    let dir = TempDir::new("bootid");
    let d = dir.path();
    // No test hook: the real /proc/sys/kernel/random/boot_id, with another
    // id bind-mounted over it in a private mount namespace.
    std::fs::write(format!("{d}/fake"), format!("{BOOT_B}\n")).unwrap();
    std::fs::write(
        format!("{d}/script.sh"),
        format!(
            r#"set -u
unset TCTO_TUNE_BOOT_ID_FILE
export TCTO_TUNE_STATE_DIR={d}/s
ip link set lo up
sysctl -qw net.core.somaxconn=1024
TCTO_TUNE_FAULT_CRASH_AFTER=1 tcto-tune apply --profile high-conn >/dev/null 2>&1; echo crash=$?
grep -q "$(cat /proc/sys/kernel/random/boot_id)" {d}/s/tx/000001.json && echo stamped
tcto-tune apply --profile high-conn >/dev/null 2>&1; echo same-boot=$?
mount --bind {d}/fake /proc/sys/kernel/random/boot_id || echo no-bind
unshare -n sh -c 'ip link set lo up; tcto-tune apply --profile high-conn >/dev/null; echo after=$?; tcto-tune history'
"#
        ),
    )
    .unwrap();
    let r = on_host(&format!("unshare -m -n sh {d}/script.sh"));
    let out = &r.stdout;
    assert!(!out.contains("no-bind"), "{r}");
    assert!(out.contains("crash=137") && out.contains("stamped"), "{r}");
    assert!(out.contains("same-boot=1"), "{r}");
    assert!(out.contains("after=0"), "{r}");
    assert!(out.contains("interrupted (before reboot)"), "{r}");
}

#[test]
fn apply_persisted_at_boot_runs_after_a_crash_in_the_previous_boot() {
    if !require_root("apply_persisted_at_boot_runs_after_a_crash_in_the_previous_boot") {
        return;
    }
    let dir = TempDir::new("bootunit");
    let d = dir.path();
    // What tcto-tune-restore.service runs at boot, after the same command
    // was SIGKILLed in the previous boot.
    let r = in_netns(&format!(
        r#"export TCTO_TUNE_BOOT_ID_FILE={d}/boot TCTO_TUNE_STATE_DIR={d}/s
echo {BOOT_A} > {d}/boot
mkdir -p {d}/img
tcto-tune persist --root {d}/img --profile trusted-notrack --set frontend=10.0.1.0/24 --set backend=10.0.2.0/24 --set port=8080 >/dev/null; echo persist=$?
TCTO_TUNE_FAULT_CRASH_AFTER=1 tcto-tune apply --persisted --root {d}/img >/dev/null 2>&1; echo crash=$?
tcto-tune apply --persisted --root {d}/img >/dev/null 2>&1; echo same-boot=$?
echo {BOOT_B} > {d}/boot
unshare -n sh -c 'tcto-tune apply --persisted --root {d}/img; echo boot=$?; nft list table inet tcto_tune | grep -c notrack; tcto-tune history'"#
    ));
    let out = &r.stdout;
    assert!(
        out.contains("persist=0") && out.contains("crash=137"),
        "{r}"
    );
    assert!(out.contains("same-boot=1"), "{r}");
    assert!(out.contains("boot=0"), "the boot unit runs: {r}");
    assert!(
        out.contains("note: went ahead after transaction 000002, interrupted before the reboot"),
        "{r}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("000002") && l.contains("interrupted (before reboot)")),
        "{r}"
    );
}
