//! `tcto-tune plan` against real namespaces.

use tcto_tune_tests::{in_netns, on_host, require_root, LISTEN_8080};

#[test]
fn app_limited_listener_refuses_somaxconn_above_its_backlog() {
    if !require_root("app_limited_listener_refuses_somaxconn_above_its_backlog") {
        return;
    }
    let r = in_netns(&format!(
        "sysctl -qw net.core.somaxconn=1024\n{LISTEN_8080}ss -tln 'sport = :8080' | tail -1\ntcto-tune plan --profile high-conn --port 8080"
    ));
    assert_eq!(r.code, 3, "{r}");
    // ss agrees the app is the limit: Send-Q 511.
    assert!(
        r.stdout.lines().next().unwrap().split_whitespace().nth(2) == Some("511"),
        "{r}"
    );
    assert!(r.stdout.contains("somaxconn-above-app-backlog"), "{r}");
    assert!(r.stdout.contains("asks for a backlog of 511"), "{r}");
}

#[test]
fn declared_app_backlog_lets_somaxconn_rise() {
    if !require_root("declared_app_backlog_lets_somaxconn_rise") {
        return;
    }
    let r = in_netns(&format!(
        "sysctl -qw net.core.somaxconn=1024\n{LISTEN_8080}tcto-tune plan --profile high-conn --port 8080 --app-backlog 8080=8192"
    ));
    assert_eq!(r.code, 0, "{r}");
    assert!(
        r.stdout.contains("net.core.somaxconn") && r.stdout.contains("1024 -> 4096"),
        "{r}"
    );
    assert!(!r.stdout.contains("somaxconn-above-app-backlog"), "{r}");
}

#[test]
fn clamped_listener_warns_app_backlog_unknown() {
    if !require_root("clamped_listener_warns_app_backlog_unknown") {
        return;
    }
    let r = in_netns(&format!(
        "sysctl -qw net.core.somaxconn=128\n{LISTEN_8080}ss -tln 'sport = :8080' | tail -1\ntcto-tune plan --profile high-conn --port 8080"
    ));
    assert_eq!(r.code, 0, "{r}");
    assert!(
        r.stdout.lines().next().unwrap().split_whitespace().nth(2) == Some("128"),
        "{r}"
    );
    assert!(r.stdout.contains("app-backlog-unknown"), "{r}");
    assert!(r.stdout.contains("--app-backlog 8080=N"), "{r}");
    assert!(r.stdout.contains("listener-needs-restart"), "{r}");
}

#[test]
fn global_conntrack_keys_are_skipped_in_a_child_namespace() {
    if !require_root("global_conntrack_keys_are_skipped_in_a_child_namespace") {
        return;
    }
    let dir = tcto_tune_tests::TempDir::new("global");
    let path = format!("{}/big.toml", dir.path());
    // Above any default, so it is a change the namespace cannot make.
    std::fs::write(&path, "[conntrack]\nmax = { at_least = 2000000000 }\nbuckets = { at_least = 1048576 }\n[backlog]\nnetdev_max_backlog = 5000\nsomaxconn = 2000\n").unwrap();
    let r = in_netns(&format!("tcto-tune plan --profile {path} --json"));
    assert_eq!(r.code, 0, "{r}");
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).expect("valid JSON");
    assert_eq!(doc["initial_netns"], false, "{r}");
    let skipped = doc["skipped"].as_array().unwrap();
    let skip = |key: &str| {
        skipped
            .iter()
            .find(|s| s["key"] == key)
            .unwrap_or_else(|| panic!("{key} not skipped: {r}"))
    };
    // Global keys are host-wide: present (read-only) or absent here, each
    // is skipped as such before anything else is asked of it.
    for (key, why) in [
        ("net.netfilter.nf_conntrack_max", "change the host's value"),
        (
            "net.netfilter.nf_conntrack_buckets",
            "change the host's value",
        ),
        (
            "net.core.netdev_max_backlog",
            "absent in this child network namespace",
        ),
    ] {
        assert_eq!(skip(key)["code"], "key-host-wide", "{r}");
        assert!(skip(key)["why"].as_str().unwrap().contains(why), "{r}");
    }
    // Allowed as host-wide, the conntrack keys are still read-only here.
    let r = in_netns(&format!(
        "tcto-tune plan --profile {path} --allow key-host-wide --json"
    ));
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).expect("valid JSON");
    let ro = doc["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["key"] == "net.netfilter.nf_conntrack_max")
        .unwrap_or_else(|| panic!("{r}"));
    assert_eq!(ro["code"], "not-writable-here", "{r}");
    assert!(
        ro["why"]
            .as_str()
            .unwrap()
            .contains("only the initial network namespace"),
        "{r}"
    );
    // Per-namespace keys are still planned.
    assert!(
        doc["changes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["key"] == "net.core.somaxconn"),
        "{r}"
    );
}

#[test]
fn plan_json_has_the_documented_fields() {
    if !require_root("plan_json_has_the_documented_fields") {
        return;
    }
    let r =
        in_netns("sysctl -qw net.core.somaxconn=1024\ntcto-tune plan --profile high-conn --json");
    assert_eq!(r.code, 0, "{r}");
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).expect("valid JSON");
    assert_eq!(doc["schema"], 1);
    assert_eq!(doc["profile"], "high-conn");
    let change = doc["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["key"] == "net.core.somaxconn")
        .expect("somaxconn change");
    for field in ["kind", "key", "current", "desired", "reason"] {
        assert!(change.get(field).is_some(), "missing {field}: {change}");
    }
    assert_eq!(change["kind"], "sysctl");
    assert_eq!(change["current"], "1024");
    assert_eq!(change["desired"], "4096");
    assert!(doc["skipped"].is_array() && doc["findings"].is_array());
    assert!(doc["sysctl_d"]["diff"]
        .as_str()
        .unwrap()
        .contains("+net.core.somaxconn = 4096"));
}

#[test]
fn plan_diff_of_a_profile_without_sysctls_is_empty() {
    if !require_root("plan_diff_of_a_profile_without_sysctls_is_empty") {
        return;
    }
    // persist leaves sysctl.d alone for a NOTRACK-only profile, so the
    // diff must not show it writing a header-only file.
    let r = in_netns(
        "tcto-tune plan --profile trusted-notrack --set frontend=10.0.1.0/24 \
         --set backend=10.0.2.0/24 --set port=8080 --diff",
    );
    assert!(r.code == 0 || r.code == 3, "{r}");
    assert!(
        r.stdout
            .contains("99-tcto-tune.conf: `persist` would leave it as it is"),
        "{r}"
    );
    assert!(!r.stdout.contains("Written by tcto-tune"), "{r}");
    let r = in_netns(
        "tcto-tune plan --profile trusted-notrack --set frontend=10.0.1.0/24 \
         --set backend=10.0.2.0/24 --set port=8080 --json",
    );
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).expect("valid JSON");
    assert_eq!(doc["sysctl_d"]["diff"], "", "{r}");
}

#[test]
fn unknown_profile_key_names_file_line_and_key() {
    let dir = tcto_tune_tests::TempDir::new("badkey");
    let path = format!("{}/mine.toml", dir.path());
    std::fs::write(
        &path,
        "name = \"mine\"\n\n[backlog]\nsomaxconn = 4096\nsomaxcon = 1\n",
    )
    .unwrap();
    let r = on_host(&format!("tcto-tune plan --profile {path}"));
    assert_eq!(r.code, 1, "{r}");
    assert!(r.stderr.contains(&format!("{path}:5:1")), "{r}");
    assert!(r.stderr.contains("unknown field `somaxcon`"), "{r}");
    assert!(r.stderr.contains("hint:"), "{r}");
}

#[test]
fn exit_code_flag_reports_pending_changes() {
    if !require_root("exit_code_flag_reports_pending_changes") {
        return;
    }
    let r = in_netns("sysctl -qw net.core.somaxconn=1024\ntcto-tune plan --profile backlog-overflow --exit-code >/dev/null; echo $?\nsysctl -qw net.core.somaxconn=4096 net.ipv4.tcp_max_syn_backlog=8192\ntcto-tune plan --profile backlog-overflow --exit-code >/dev/null; echo $?");
    assert_eq!(r.stdout, "4\n0\n", "{r}");
}

#[test]
fn probe_on_a_fast_loopback_never_recommends_less_than_one_lost_syn() {
    if !require_root("probe_on_a_fast_loopback_never_recommends_less_than_one_lost_syn") {
        return;
    }
    // Loopback handshakes take microseconds: 3 x the p99 is 1 ms, which
    // would turn every lost SYN (retransmitted after 1 s) into a failure.
    let r = in_netns(&format!(
        "{LISTEN_8080}tcto-tune probe 127.0.0.1:8080 --count 20 --concurrency 2 --json\ntcto-tune probe 127.0.0.1:8080 --count 20 --concurrency 2"
    ));
    let json: serde_json::Value =
        serde_json::from_str(r.stdout.split("\nprobe ").next().unwrap()).expect("JSON report");
    let p99 = json["handshake_ms"]["p99"].as_f64().unwrap();
    let ms = json["recommended_connect_timeout_ms"].as_u64().unwrap();
    assert!(p99 < 100.0, "loopback is fast: {r}");
    assert!(ms as f64 >= 1500.0 + p99, "{ms} ms for p99 {p99}: {r}");
    assert!(
        r.stdout
            .contains("so that one lost SYN does not fail the connect")
            && r.stdout.contains("retransmits it only after 1000 ms"),
        "the text says why: {r}"
    );
}

#[test]
fn the_app_backlog_hint_runs_as_printed() {
    if !require_root("the_app_backlog_hint_runs_as_printed") {
        return;
    }
    let r = in_netns(&format!(
        "sysctl -qw net.core.somaxconn=1024\n{LISTEN_8080}tcto-tune plan --profile high-conn --port 8080 >/tmp/.plan-$$; echo rc=$?\ncat /tmp/.plan-$$\nflag=$(sed -n 's/.*then pass `\\(--app-backlog [0-9]*=[0-9]*\\)`$/\\1/p' /tmp/.plan-$$)\nrm -f /tmp/.plan-$$\necho \"flag=$flag\"\ntcto-tune plan --profile high-conn --port 8080 $flag >/dev/null; echo again=$?"
    ));
    assert!(r.stdout.contains("rc=3"), "{r}");
    assert!(r.stdout.contains("flag=--app-backlog 8080=4096\n"), "{r}");
    assert!(
        r.stdout.contains("again=0"),
        "following the hint passes: {r}"
    );
}

/// `plan --diff` and `plan --json` show what `persist` then writes: the
/// printed diff, applied with `patch` to the sysctl.d file before, gives
/// the file after persist (the oracle is the file on disk). While a
/// persisted entry cannot be read, persist refuses and writes nothing, so
/// there is no diff and the entry is named (the diff used to show that
/// entry's lines removed). /etc is an overlay in a private mount
/// namespace: the host's /etc is never written.
#[test]
fn plan_diff_is_what_persist_writes_while_an_entry_is_unreadable() {
    if !require_root("plan_diff_is_what_persist_writes_while_an_entry_is_unreadable") {
        return;
    }
    let dir = tcto_tune_tests::TempDir::new("diff-oracle");
    let d = dir.path();
    let entry = "/etc/tcto-tune/persisted.d/syn-flood.toml";
    let file = "/etc/sysctl.d/99-tcto-tune.conf";
    std::fs::write(
        format!("{d}/inner.sh"),
        format!(
            "mkdir {d}/up {d}/work\n\
             mount -t overlay overlay -o lowerdir=/etc,upperdir={d}/up,workdir={d}/work /etc || exit 20\n\
             export TCTO_TUNE_STATE_DIR='{d}/s d'\n\
             tcto-tune persist --profile high-conn >/dev/null || exit 21\n\
             tcto-tune persist --profile syn-flood >/dev/null || exit 22\n\
             check() {{\n\
               cp {file} {d}/before\n\
               tcto-tune plan --profile client --json > {d}/plan.json\n\
               jq -j .sysctl_d.diff {d}/plan.json > {d}/diff\n\
               echo \"$1-unreadable=$(jq -c '.sysctl_d.unreadable // []' {d}/plan.json)\"\n\
               tcto-tune plan --profile client --diff > {d}/text; cat {d}/text\n\
               tcto-tune persist --profile client >/dev/null 2>&1; echo \"$1-persist=$?\"\n\
               cp {d}/before {d}/patched\n\
               if [ -s {d}/diff ]; then patch -s {d}/patched {d}/diff || echo \"$1-patch-failed\"; fi\n\
               cmp {d}/patched {file} && echo \"$1-diff-is-what-persist-wrote\"\n\
             }}\n\
             cp {entry} {d}/entry\n\
             echo garbage > {entry}\n\
             check broken\n\
             cp {d}/entry {entry}\n\
             check readable\n\
             grep -c '^net.ipv4.tcp_syncookies = 1$' {file}\n"
        ),
    )
    .unwrap();
    let r = in_netns(&format!("unshare -m sh {d}/inner.sh"));
    let out = &r.stdout;
    assert_eq!(r.code, 0, "{r}");
    // Unreadable: persist refuses (3) and leaves the file as it was; the
    // plan says so and removes nothing.
    assert!(out.contains("broken-persist=3"), "{r}");
    assert!(out.contains("broken-diff-is-what-persist-wrote"), "{r}");
    assert!(
        out.contains(&format!(
            "{file}: `persist` would refuse and leave it as it is: a persisted entry cannot be read\n  cannot read the persisted entry {entry}: "
        )),
        "{r}"
    );
    assert!(
        out.contains(&format!(
            "broken-unreadable=[\"cannot read the persisted entry {entry}: "
        )),
        "{r}"
    );
    assert!(!out.contains("-net.ipv4.tcp_syncookies"), "{r}");
    // Readable again: persist writes, and the diff is exactly that.
    assert!(out.contains("readable-unreadable=[]"), "{r}");
    assert!(out.contains("readable-persist=0"), "{r}");
    assert!(out.contains("readable-diff-is-what-persist-wrote"), "{r}");
    assert!(
        out.contains(&format!("{file} as `persist` would write it:")),
        "{r}"
    );
    assert!(
        out.trim_end().ends_with("\n1"),
        "syn-flood's line kept: {r}"
    );
}
