//! `apply`, `rollback` and `history` against real namespaces: values are
//! read back with `sysctl`, the host's own values are checked untouched.

use tcto_tune_tests::{in_netns, require_root, TempDir};

fn host(key: &str) -> String {
    std::fs::read_to_string(format!("/proc/sys/{}", key.replace('.', "/")))
        .unwrap()
        .trim()
        .to_owned()
}

const KEYS: &str = "net.core.somaxconn net.ipv4.tcp_max_syn_backlog net.netfilter.nf_conntrack_tcp_timeout_established net.netfilter.nf_conntrack_tcp_timeout_time_wait net.netfilter.nf_conntrack_tcp_timeout_close_wait";

/// Known starting values inside the namespace.
const SEED: &str = "sysctl -qw net.core.somaxconn=1024 net.ipv4.tcp_max_syn_backlog=512 net.netfilter.nf_conntrack_tcp_timeout_established=432000 net.netfilter.nf_conntrack_tcp_timeout_time_wait=120 net.netfilter.nf_conntrack_tcp_timeout_close_wait=60\n";

#[test]
fn apply_sets_the_namespace_and_rollback_restores_it_exactly() {
    if !require_root("apply_sets_the_namespace_and_rollback_restores_it_exactly") {
        return;
    }
    let state = TempDir::new("apply");
    let host_before: Vec<String> = KEYS.split(' ').map(host).collect();
    let r = in_netns(&format!(
        "export TCTO_TUNE_STATE_DIR={st}/s\n{SEED}sysctl -n {KEYS} | tr '\\n' ' '; echo\ntcto-tune apply --profile high-conn >&2 || exit 10\nsysctl -n {KEYS} | tr '\\n' ' '; echo\ntcto-tune apply --profile high-conn; echo rc=$?\ntcto-tune rollback >&2 || exit 11\nsysctl -n {KEYS} | tr '\\n' ' '; echo\ntcto-tune history\ntcto-tune history -v",
        st = state.path()
    ));
    assert_eq!(r.code, 0, "{r}");
    // The second apply repeats the plan's `skip` lines (netdev_max_backlog
    // and the conntrack table size are host-wide: skipped in a child
    // namespace) and says they are not in effect.
    assert!(
        r.stdout.contains("skip    net.core.netdev_max_backlog")
            && r.stdout
                .contains("NOT IN EFFECT: 3 key(s) of the profile skipped")
            && r.stdout
                .contains("net.netfilter.nf_conntrack_max [key-host-wide]"),
        "{r}"
    );
    let lines: Vec<&str> = r
        .stdout
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with("skip") && !l.starts_with("NOT IN EFFECT"))
        .collect();
    assert_eq!(lines[0].trim(), "1024 512 432000 120 60", "{r}");
    assert_eq!(lines[1].trim(), "4096 8192 7440 60 60", "{r}");
    assert!(lines[2].starts_with("nothing applied"), "{r}");
    assert_eq!(lines[3], "rc=0", "{r}");
    assert_eq!(lines[4].trim(), "1024 512 432000 120 60", "{r}");
    assert!(
        lines[6].contains("000001") && lines[6].contains("undone"),
        "{r}"
    );
    // history -v reads a reverted step back towards its prior value, as
    // the rollback printed it.
    assert!(
        r.stdout.lines().any(|l| l.contains("reverted")
            && l.contains("net.core.somaxconn")
            && l.trim_end().ends_with("4096 -> 1024")),
        "{r}"
    );
    let host_after: Vec<String> = KEYS.split(' ').map(host).collect();
    assert_eq!(
        host_before, host_after,
        "the host's own values must be untouched"
    );
    // Journal files are private.
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &str| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&format!("{}/s", state.path())), 0o700);
    assert_eq!(mode(&format!("{}/s/tx/000001.json", state.path())), 0o600);
}

#[test]
fn a_write_the_kernel_refuses_rolls_back_every_change() {
    if !require_root("a_write_the_kernel_refuses_rolls_back_every_change") {
        return;
    }
    let state = TempDir::new("fault");
    let profile = format!("{}/fault.toml", state.path());
    // somaxconn first, then the global nf_conntrack_max: read-only (EACCES)
    // inside a child namespace, so the second write fails for real.
    std::fs::write(
        &profile,
        "name = \"fault\"\n[backlog]\nsomaxconn = 3000\n[conntrack]\nmax = 300001\n",
    )
    .unwrap();
    let st = state.path();
    let r = in_netns(&format!(
        "export TCTO_TUNE_STATE_DIR={st}/s\n{SEED}tcto-tune apply --profile {profile} --allow key-host-wide --allow not-writable-here; echo rc=$?\nsysctl -n net.core.somaxconn\ntcto-tune history"
    ));
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert!(
        r.stdout.contains("FAILED") && r.stdout.contains("nf_conntrack_max"),
        "{r}"
    );
    assert!(r.stdout.contains("Permission denied"), "{r}");
    assert!(
        r.stdout.contains("reverted") && r.stdout.contains("system is as it was before"),
        "{r}"
    );
    assert!(lines.contains(&"rc=1"), "{r}");
    assert!(lines.contains(&"1024"), "somaxconn restored: {r}");
    assert!(r.stdout.contains("rolled back"), "history: {r}");
    assert_eq!(
        host("net.netfilter.nf_conntrack_max"),
        host("net.netfilter.nf_conntrack_max")
    );
}

#[test]
fn a_crash_mid_apply_blocks_apply_until_rollback() {
    if !require_root("a_crash_mid_apply_blocks_apply_until_rollback") {
        return;
    }
    let state = TempDir::new("crash");
    let r = in_netns(&format!(
        "export TCTO_TUNE_STATE_DIR={st}\n{SEED}TCTO_TUNE_FAULT_CRASH_AFTER=2 tcto-tune apply --profile high-conn >/dev/null 2>&1; echo crash=$?\nsysctl -n net.core.somaxconn net.ipv4.tcp_max_syn_backlog | tr '\\n' ' '; echo\ntcto-tune apply --profile high-conn; echo rc=$?\ntcto-tune history -v\nhint=$(tcto-tune apply --profile high-conn 2>&1 | sed -n 's/^hint: run `\\([^`]*\\)`.*/\\1/p')\necho \"hint=$hint\"\nenv -u TCTO_TUNE_STATE_DIR $hint >/dev/null; echo rollback=$?\nsysctl -n {KEYS} | tr '\\n' ' '; echo\ntcto-tune apply --profile high-conn >/dev/null; echo again=$?",
        st = state.path()
    ));
    let out = &r.stdout;
    assert!(out.contains("crash=137"), "the fault point SIGKILLs: {r}");
    // The hint names the user's state dir, and runs as printed without
    // the environment that chose it.
    assert!(
        out.contains(&format!(
            "hint=tcto-tune --state-dir {} rollback",
            state.path()
        )),
        "{r}"
    );
    // history -v says what the record knows: two steps written, the third
    // in flight when the process was killed, the last never reached.
    let written = |key: &str, status: &str| {
        out.lines()
            .any(|l| l.trim_start().starts_with(status) && l.contains(&format!(" {key} ")))
    };
    assert!(written("net.core.somaxconn", "written"), "{r}");
    assert!(written("net.ipv4.tcp_max_syn_backlog", "written"), "{r}");
    assert!(
        written(
            "net.netfilter.nf_conntrack_tcp_timeout_established",
            "in flight"
        ) && written(
            "net.netfilter.nf_conntrack_tcp_timeout_time_wait",
            "pending"
        ),
        "{r}"
    );
    assert!(
        out.contains("4096 8192"),
        "two changes made before the crash: {r}"
    );
    assert!(out.contains("rc=1"), "{r}");
    assert!(
        r.stderr.contains("interrupted")
            && r.stderr.contains(&format!(
                "`tcto-tune --state-dir {} rollback`",
                state.path()
            )),
        "{r}"
    );
    assert!(out.contains("interrupted"), "history marks it: {r}");
    assert!(out.contains("rollback=0"), "{r}");
    assert!(
        out.contains("1024 512 432000 120 60"),
        "prior values restored: {r}"
    );
    assert!(
        out.contains("again=0"),
        "apply works again after rollback: {r}"
    );
}

#[test]
fn force_after_crash_proceeds_and_keeps_the_record() {
    if !require_root("force_after_crash_proceeds_and_keeps_the_record") {
        return;
    }
    let state = TempDir::new("force");
    let r = in_netns(&format!(
        "export TCTO_TUNE_STATE_DIR={st}\n{SEED}TCTO_TUNE_FAULT_CRASH_AFTER=1 tcto-tune apply --profile high-conn >/dev/null 2>&1\ntcto-tune apply --profile high-conn --force-after-crash >/dev/null; echo rc=$?\ntcto-tune history",
        st = state.path()
    ));
    assert!(r.stdout.contains("rc=0"), "{r}");
    assert!(r.stdout.contains("interrupted (abandoned)"), "{r}");
}

#[test]
fn a_second_apply_while_one_runs_fails_at_once() {
    if !require_root("a_second_apply_while_one_runs_fails_at_once") {
        return;
    }
    let state = TempDir::new("lock");
    // Hold the lock the way a running apply does (flock on STATE/lock).
    let r = in_netns(&format!(
        "export TCTO_TUNE_STATE_DIR={st}\n{SEED}tcto-tune history >/dev/null\nmkdir -p {st} && chmod 700 {st}\nflock {st}/lock sleep 3 &\nsleep 0.3\ntcto-tune apply --profile high-conn; echo rc=$?\nsysctl -n net.core.somaxconn\ntcto-tune rollback; echo rb=$?",
        st = state.path()
    ));
    assert!(
        r.stdout.contains("rc=1") && r.stdout.contains("rb=1"),
        "{r}"
    );
    assert!(
        r.stderr
            .contains("another tcto-tune apply or rollback is running"),
        "{r}"
    );
    assert!(r.stdout.contains("1024"), "nothing changed: {r}");
}

#[test]
fn two_racing_applies_never_interleave() {
    if !require_root("two_racing_applies_never_interleave") {
        return;
    }
    let state = TempDir::new("race");
    let r = in_netns(&format!(
        "export TCTO_TUNE_STATE_DIR={st}\n{SEED}tcto-tune history >/dev/null\n(tcto-tune apply --profile high-conn >/dev/null 2>{st}/a.err; echo a=$? > {st}/a) &\n(tcto-tune apply --profile high-conn >/dev/null 2>{st}/b.err; echo b=$? > {st}/b) &\nwait\ncat {st}/a {st}/b {st}/a.err {st}/b.err\nsysctl -n {KEYS} | tr '\\n' ' '; echo\nls {st}/tx",
        st = state.path()
    ));
    // Either one won the lock and the other failed at once with the lock
    // message, or they ran one after the other (the second had nothing to
    // do). Never two transactions with changes.
    let out = &r.stdout;
    assert!(out.contains("4096 8192 7440 60 60"), "{r}");
    let failures = out.matches("=1").count();
    if failures == 1 {
        assert!(
            out.contains("another tcto-tune apply or rollback is running"),
            "{r}"
        );
    } else {
        assert!(out.contains("a=0") && out.contains("b=0"), "{r}");
    }
    assert_eq!(
        out.matches(".json").count(),
        1,
        "exactly one journaled transaction: {r}"
    );
}

#[test]
fn dry_run_prints_what_apply_does_and_writes_nothing() {
    if !require_root("dry_run_prints_what_apply_does_and_writes_nothing") {
        return;
    }
    let state = TempDir::new("dry");
    let r = in_netns(&format!(
        "export TCTO_TUNE_STATE_DIR={st}/s\n{SEED}tcto-tune apply --profile high-conn --dry-run > {st}/dry\nsysctl -n {KEYS} | tr '\\n' ' '; echo\ntest -e {st}/s && echo journal-created\ntcto-tune apply --profile high-conn > {st}/real\ncat {st}/dry; echo ---; cat {st}/real",
        st = state.path()
    ));
    assert_eq!(r.code, 0, "{r}");
    let (first, rest) = r.stdout.split_once('\n').unwrap();
    assert_eq!(
        first.trim(),
        "1024 512 432000 120 60",
        "dry-run wrote nothing: {r}"
    );
    assert!(!r.stdout.contains("journal-created"), "{r}");
    let (dry, real) = rest.split_once("---\n").unwrap();
    let body = |s: &str| {
        s.lines()
            .filter(|l| !l.starts_with("applied") && !l.starts_with("would apply"))
            .map(|l| {
                l.replacen("would set", "set", 1)
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(body(dry), body(real), "{r}");
    assert!(dry.contains("would apply 4 change(s)"), "{r}");
}

#[test]
fn apply_json_reports_each_change() {
    if !require_root("apply_json_reports_each_change") {
        return;
    }
    let state = TempDir::new("json");
    let r = in_netns(&format!(
        "export TCTO_TUNE_STATE_DIR={st}\n{SEED}tcto-tune apply --profile backlog-overflow --json",
        st = state.path()
    ));
    assert_eq!(r.code, 0, "{r}");
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).expect("JSON");
    assert_eq!(doc["id"], "000001");
    assert_eq!(doc["outcome"], "applied");
    let step = &doc["steps"][0];
    assert_eq!(step["key"], "net.core.somaxconn");
    assert_eq!(step["before"]["value"], "1024");
    assert_eq!(step["after"]["value"], "4096");
    assert_eq!(step["status"], "applied");
}

#[test]
fn one_unreadable_journal_file_is_named_and_blocks_only_what_it_could_hide() {
    if !require_root("one_unreadable_journal_file_is_named_and_blocks_only_what_it_could_hide") {
        return;
    }
    let state = TempDir::new("unreadable");
    let st = state.path();
    let r = in_netns(&format!(
        r#"export TCTO_TUNE_STATE_DIR={st}/s
{SEED}tcto-tune apply --profile backlog-overflow >/dev/null
tcto-tune apply --profile high-conn >/dev/null
: > {st}/s/tx/000002.json
echo '--- newest empty'
tcto-tune history; echo history=$?
tcto-tune history --json > {st}/h.json; echo json=$?
tcto-tune apply --profile high-conn; echo apply=$?
tcto-tune rollback; echo rollback=$?
echo '--- moved aside as the hint says'
hint=$(tcto-tune rollback 2>&1 | sed -n 's/.*(`\(mv [^`]*\)`).*/\1/p')
echo "hint: $hint"
$hint; echo mv=$?
ls {st}/s/tx
tcto-tune rollback; echo rollback2=$?
sysctl -n net.core.somaxconn
echo '--- older corrupt'
tcto-tune apply --profile high-conn >/dev/null; echo apply3=$?
echo '{{' > {st}/s/tx/000001.json
tcto-tune rollback >/dev/null; echo rollback3=$?
tcto-tune history | grep -c UNREADABLE
"#
    ));
    let out = &r.stdout;
    let (newest, rest) = out.split_once("--- moved aside").unwrap();
    assert!(
        newest.contains("000001") && newest.contains("UNREADABLE") && newest.contains("history=0"),
        "history lists the readable record and names the other: {r}"
    );
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{st}/h.json")).unwrap()).unwrap();
    assert_eq!(doc["schema"], 1, "{doc}");
    assert_eq!(doc["transactions"][0]["status"], "unreadable", "{doc}");
    assert_eq!(doc["transactions"][1]["status"], "applied", "{doc}");
    assert!(
        newest.contains("apply=1") && newest.contains("rollback=1"),
        "{r}"
    );
    assert!(
        r.stderr.contains("000002.json` is corrupt")
            && r.stderr.contains("000002.json` cannot be read"),
        "both name the file: {r}"
    );
    assert!(
        rest.contains("mv=0") && rest.contains("000002.json.broken"),
        "{r}"
    );
    assert!(rest.contains("rollback2=0"), "{r}");
    assert!(rest.contains("\n1024\n"), "000001 undone: {r}");
    // An unreadable file older than what rollback undoes does not stop it.
    assert!(
        rest.contains("apply3=0") && rest.contains("rollback3=0"),
        "{r}"
    );
    assert!(
        std::path::Path::new(&format!("{st}/s/tx/000001.json")).exists(),
        "nothing deleted"
    );
}

#[test]
fn a_typo_in_the_state_dir_creates_nothing_and_rollback_says_so() {
    if !require_root("a_typo_in_the_state_dir_creates_nothing_and_rollback_says_so") {
        return;
    }
    let state = TempDir::new("typo");
    let st = state.path();
    let r = in_netns(&format!(
        r#"{SEED}tcto-tune --state-dir {st}/nonexistent/deep/dir apply --profile high-conn; echo apply=$?
test -e {st}/nonexistent && echo created
sysctl -n net.core.somaxconn
tcto-tune --state-dir {st}/nonexistent/deep/dir rollback; echo rollback=$?
tcto-tune --state-dir {st}/last apply --profile high-conn >/dev/null; echo last=$?
stat -c %a {st}/last
tcto-tune --state-dir {st}/empty history >/dev/null; mkdir -m 700 {st}/empty
tcto-tune --state-dir {st}/empty rollback; echo empty=$?
"#
    ));
    let out = &r.stdout;
    assert!(out.contains("apply=1") && !out.contains("created"), "{r}");
    assert!(out.contains("\n1024\n"), "nothing applied: {r}");
    assert!(
        r.stderr.contains(&format!(
            "cannot create state dir `{st}/nonexistent/deep/dir`: its parent `{st}/nonexistent/deep` does not exist"
        )),
        "{r}"
    );
    assert!(out.contains("rollback=1"), "{r}");
    assert!(
        r.stderr
            .contains("does not exist, so there is nothing it could roll back"),
        "{r}"
    );
    assert!(out.contains("last=0") && out.contains("\n700\n"), "{r}");
    assert!(
        out.contains("empty=1") && r.stderr.contains("holds no transaction"),
        "{r}"
    );
}

#[test]
fn apply_shows_what_plan_skipped_and_says_the_fix_is_not_in_effect() {
    if !require_root("apply_shows_what_plan_skipped_and_says_the_fix_is_not_in_effect") {
        return;
    }
    let state = TempDir::new("skips");
    let st = state.path();
    // In a child namespace nf_conntrack_max (the fix itself) is global:
    // plan skips raising it (above the host's value); apply must say so.
    let want: u64 = host("net.netfilter.nf_conntrack_max")
        .parse::<u64>()
        .unwrap()
        + 1;
    std::fs::write(
        format!("{st}/ct.toml"),
        format!("name = \"ct\"\n[conntrack]\nmax = {{ at_least = {want} }}\ntcp_timeout_time_wait = {{ exact = 30 }}\n"),
    )
    .unwrap();
    let r = in_netns(&format!(
        r#"export TCTO_TUNE_STATE_DIR={st}/s
{SEED}tcto-tune plan --profile {st}/ct.toml | grep '^skip' > {st}/plan.skips
tcto-tune apply --profile {st}/ct.toml > {st}/apply.txt; echo apply=$?
tcto-tune rollback >/dev/null
tcto-tune apply --profile {st}/ct.toml --json > {st}/apply.json; echo json=$?
cat {st}/apply.txt"#
    ));
    let out = &r.stdout;
    assert!(out.contains("apply=0") && out.contains("json=0"), "{r}");
    let plan_skips = std::fs::read_to_string(format!("{st}/plan.skips")).unwrap();
    assert!(plan_skips.contains("nf_conntrack_max"), "{plan_skips}");
    let text = std::fs::read_to_string(format!("{st}/apply.txt")).unwrap();
    for line in plan_skips.lines() {
        let words = |l: &str| l.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(
            text.lines().any(|l| words(l) == words(line)),
            "apply repeats plan's `{line}`: {text}"
        );
    }
    let first_step = text.find("\nset ").unwrap();
    assert!(
        text.find("skip").unwrap() < first_step,
        "before the steps: {text}"
    );
    assert!(
        text.contains("NOT IN EFFECT")
            && text.contains("net.netfilter.nf_conntrack_max [key-host-wide]"),
        "{text}"
    );
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{st}/apply.json")).unwrap())
            .unwrap();
    let skipped = doc["skipped"].as_array().expect("JSON carries the skips");
    assert!(
        skipped
            .iter()
            .any(|s| s["key"] == "net.netfilter.nf_conntrack_max"),
        "{doc}"
    );
}

/// Issue 17 item 8: `rollback --dry-run` says what rollback would revert,
/// drift included, through the simulated host: nothing written, nothing
/// journaled, and the real rollback afterwards still has everything to do.
#[test]
fn rollback_dry_run_shows_what_would_be_reverted_and_changes_nothing() {
    if !require_root("rollback_dry_run_shows_what_would_be_reverted_and_changes_nothing") {
        return;
    }
    let dir = TempDir::new("rb-dry");
    let st = dir.path();
    let r = in_netns(&format!(
        "export TCTO_TUNE_STATE_DIR={st}/s\n{SEED}\
         tcto-tune apply --profile high-conn --allow key-host-wide >/dev/null || exit 10\n\
         sysctl -qw net.ipv4.tcp_max_syn_backlog=9999\n\
         cp -r {st}/s/tx {st}/before\n\
         tcto-tune rollback --dry-run; echo dry=$?\n\
         sysctl -n net.core.somaxconn net.ipv4.tcp_max_syn_backlog | tr '\\n' ' '; echo\n\
         diff -r {st}/before {st}/s/tx && echo journal-untouched\n\
         tcto-tune rollback --dry-run --force | tail -1\n\
         tcto-tune rollback >/dev/null; echo real=$?\n\
         sysctl -n net.core.somaxconn"
    ));
    let out = &r.stdout;
    assert!(
        out.lines().any(|l| l.starts_with("would revert")
            && l.contains("net.core.somaxconn")
            && l.trim_end().ends_with("4096 -> 1024")),
        "{r}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("drifted") && l.contains("net.ipv4.tcp_max_syn_backlog")),
        "{r}"
    );
    assert!(out.contains("nothing was written"), "{r}");
    // Drift makes the real rollback fail (exit 1): the dry run says so too.
    assert!(out.contains("dry=1"), "{r}");
    assert!(out.contains("4096 9999 \n"), "values untouched: {r}");
    assert!(out.contains("journal-untouched"), "{r}");
    assert!(out.contains("real=1") || out.contains("real=0"), "{r}");
}

/// Issue 17 item 9: `--wait` waits for the state-dir lock (a provisioning
/// run overlapping a cron'd one), naming the holder; without it a held lock
/// fails at once, and a wait that runs out fails the same way.
#[test]
fn wait_waits_for_the_lock_and_names_its_holder() {
    if !require_root("wait_waits_for_the_lock_and_names_its_holder") {
        return;
    }
    let dir = TempDir::new("wait");
    let st = dir.path();
    let r = in_netns(&format!(
        "export TCTO_TUNE_STATE_DIR={st}/s\n{SEED}\
         tcto-tune history >/dev/null\n\
         mkdir -p {st}/s && printf '4242\\n' > {st}/s/lock\n\
         flock {st}/s/lock sleep 2 &\n\
         sleep 0.3\n\
         tcto-tune apply --profile backlog-overflow >/dev/null 2>{st}/now; echo now=$?\n\
         tcto-tune apply --profile backlog-overflow --wait 200ms >/dev/null 2>{st}/short; echo short=$?\n\
         tcto-tune apply --profile backlog-overflow --wait 20s >/dev/null 2>{st}/long; echo long=$?\n\
         tcto-tune rollback --wait 5s >/dev/null; echo rollback=$?\n\
         cat {st}/now {st}/short {st}/long"
    ));
    let out = &r.stdout;
    assert!(out.contains("now=1") && out.contains("short=1"), "{r}");
    assert!(out.contains("long=0") && out.contains("rollback=0"), "{r}");
    assert!(
        out.contains("waiting for the state-dir lock held by another tcto-tune (pid 4242)"),
        "{r}"
    );
    assert!(
        out.contains("is running (pid 4242)") && out.contains("--wait DURATION"),
        "the failures name the holder and the flag: {r}"
    );
}

/// Issue 17 item 6: a dry run that would fail says so and that nothing
/// would change, instead of "reverted ... (transaction -)".
#[test]
fn a_failing_dry_run_says_would_fail_not_reverted() {
    if !require_root("a_failing_dry_run_says_would_fail_not_reverted") {
        return;
    }
    let dir = TempDir::new("dryfail");
    let st = dir.path();
    let r = in_netns(&format!(
        "export TCTO_TUNE_STATE_DIR={st}/s\n{SEED}\
         tcto-tune apply --dry-run --profile high-conn --allow key-host-wide --allow key-missing; echo rc=$?\n\
         ls {st}/s/tx 2>/dev/null | wc -l"
    ));
    let out = &r.stdout;
    assert!(
        out.contains("would FAIL   net.core.netdev_max_backlog"),
        "{r}"
    );
    assert!(
        out.contains("\nwould fail: sysctl net.core.netdev_max_backlog"),
        "{r}"
    );
    assert!(out.contains("\nnothing would change"), "{r}");
    assert!(
        !out.contains("reverted") && !out.contains("transaction -"),
        "{r}"
    );
    assert!(out.contains("rc=1\n0\n"), "no journal record: {r}");
}

#[test]
fn the_interrupted_hint_is_a_whole_command_that_runs_as_printed() {
    if !require_root("the_interrupted_hint_is_a_whole_command_that_runs_as_printed") {
        return;
    }
    let dir = TempDir::new("crashhint");
    let d = dir.path();
    // A state dir with a space, given as a flag: the printed command must
    // carry it, quoted, with the profile.
    let r = in_netns(&format!(
        "{SEED}TCTO_TUNE_FAULT_CRASH_AFTER=1 tcto-tune --state-dir '{d}/s d' apply --profile high-conn >/dev/null 2>&1\n\
         tcto-tune --state-dir '{d}/s d' apply --profile high-conn 2>{d}/err; echo refused=$?\n\
         cat {d}/err\n\
         cmd=$(grep '^hint:' {d}/err | grep -o '`[^`]*--force-after-crash`' | tr -d '`')\n\
         echo \"cmd=$cmd\"\n\
         eval \"$cmd\" >/dev/null; echo forced=$?\n"
    ));
    let out = &r.stdout;
    assert!(out.contains("refused=1"), "{r}");
    assert!(
        out.contains("cmd=tcto-tune --state-dir '"),
        "a whole command with the state dir: {r}"
    );
    assert!(
        out.contains("--profile high-conn --force-after-crash"),
        "{r}"
    );
    assert!(out.contains("forced=0"), "{r}");
}

#[test]
fn apply_over_an_unreadable_transaction_file_hints_a_move_that_runs() {
    if !require_root("apply_over_an_unreadable_transaction_file_hints_a_move_that_runs") {
        return;
    }
    let dir = TempDir::new("txdir");
    let d = dir.path();
    let r = in_netns(&format!(
        "{SEED}tcto-tune --state-dir '{d}/s d' apply --profile high-conn >/dev/null || exit 10\n\
         mkdir '{d}/s d/tx/000002.json'\n\
         tcto-tune --state-dir '{d}/s d' apply --profile backlog-overflow 2>{d}/err; echo refused=$?\n\
         cat {d}/err\n\
         cmd=$(grep '^hint:' {d}/err | grep -o '`mv [^`]*`' | tr -d '`')\n\
         echo \"cmd=$cmd\"\n\
         eval \"$cmd\"; echo moved=$?\n\
         tcto-tune --state-dir '{d}/s d' apply --profile backlog-overflow >/dev/null; echo again=$?\n"
    ));
    let out = &r.stdout;
    assert!(out.contains("refused=1"), "{r}");
    assert!(out.contains("cmd=mv '"), "{r}");
    assert!(out.contains("moved=0"), "{r}");
    assert!(out.contains("again=0"), "{r}");
}
