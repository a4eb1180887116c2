//! NIC offloads against a veth pair inside a private network namespace,
//! checked with `ethtool -k` (the operator's own tool) as the oracle.

use std::collections::BTreeMap;

use tcto_tune_tests::{in_netns, require_root, state_dir_env, Run, TempDir, VETH_AB};

/// Print the four group lines of `ethtool -k a`, between markers.
const ETHTOOL_K: &str = "echo '<<ethtool'; ethtool -k a | grep -E '^(tcp-segmentation-offload|generic-segmentation-offload|generic-receive-offload|large-receive-offload):'; echo 'ethtool>>'\n";

/// The user name and `ethtool -k` long name of each toggle.
const NAMES: [(&str, &str); 4] = [
    ("tso", "tcp-segmentation-offload"),
    ("gso", "generic-segmentation-offload"),
    ("gro", "generic-receive-offload"),
    ("lro", "large-receive-offload"),
];

/// Every `ethtool -k` block in the output, as toggle -> `on`/`off`
/// (with ` [fixed]` kept).
fn ethtool_blocks(r: &Run) -> Vec<BTreeMap<&'static str, String>> {
    r.stdout
        .split("<<ethtool\n")
        .skip(1)
        .map(|block| {
            let block = block.split("ethtool>>").next().unwrap();
            NAMES
                .iter()
                .map(|(user, long)| {
                    let line = block
                        .lines()
                        .find_map(|l| l.strip_prefix(&format!("{long}: ")))
                        .unwrap_or_else(|| panic!("no {long} line: {r}"));
                    (*user, line.to_owned())
                })
                .collect()
        })
        .collect()
}

#[test]
fn plan_shows_the_features_ethtool_shows() {
    if !require_root("plan_shows_the_features_ethtool_shows") {
        return;
    }
    let st = TempDir::new("offload-plan");
    let profile = format!("{}/all.toml", st.path());
    std::fs::write(
        &profile,
        "name = \"all\"\n[[offload]]\niface = \"a\"\ntso = false\ngso = false\ngro = true\nlro = false\n",
    )
    .unwrap();
    // Vary the starting state so that a plan showing defaults would fail.
    let r = in_netns(&format!(
        "{VETH_AB}ethtool -K a gso off || exit 21\n{ETHTOOL_K}tcto-tune plan --profile {profile} --json > {st}/plan.json; echo rc=$?\n",
        st = st.path()
    ));
    assert!(r.stdout.contains("rc=0"), "{r}");
    let oracle = &ethtool_blocks(&r)[0];
    assert_eq!(oracle["gso"], "off", "the seed took: {r}");
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{}/plan.json", st.path())).unwrap())
            .unwrap();
    let mut shown = BTreeMap::new();
    for c in doc["changes"].as_array().unwrap() {
        shown.insert(
            c["key"].as_str().unwrap().to_owned(),
            c["current"].as_str().unwrap().to_owned(),
        );
    }
    for u in doc["unchanged"].as_array().unwrap() {
        shown.insert(
            u["key"].as_str().unwrap().to_owned(),
            u["current"].as_str().unwrap().to_owned(),
        );
    }
    assert_eq!(shown.len(), 4, "{doc:#}");
    for (user, _) in NAMES {
        let ours = &shown[&format!("a {user}")];
        let theirs = oracle[user].trim_end_matches(" [fixed]");
        assert_eq!(ours, theirs, "{user}: plan vs ethtool -k\n{r}");
    }
    // tso on -> off and gro off -> on are changes; gso and lro already off.
    let changed: Vec<_> = doc["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["key"].as_str().unwrap())
        .collect();
    assert_eq!(changed, vec!["a tso", "a gro"], "{doc:#}");
}

#[test]
fn plan_text_for_the_builtin_profile() {
    if !require_root("plan_text_for_the_builtin_profile") {
        return;
    }
    let r = in_netns(&format!(
        "{VETH_AB}tcto-tune plan --profile offload-off --set iface=a"
    ));
    assert_eq!(r.code, 0, "{r}");
    assert!(r.stdout.contains("change  a tso  on -> off"), "{r}");
    assert!(r.stdout.contains("ok      a gro  off (wanted off)"), "{r}");
    assert!(r.stdout.contains("warn [offload-cpu-cost]"), "{r}");
}

#[test]
fn unknown_interface_exits_3_and_lists_the_interfaces() {
    if !require_root("unknown_interface_exits_3_and_lists_the_interfaces") {
        return;
    }
    let r = in_netns(&format!(
        "{VETH_AB}tcto-tune plan --profile offload-off --set iface=eth0"
    ));
    assert_eq!(r.code, 3, "{r}");
    assert!(
        r.stdout
            .contains("refuse [offload-unknown-interface] interface `eth0` does not exist"),
        "{r}"
    );
    let hint = r
        .stdout
        .lines()
        .find(|l| l.contains("hint: interfaces here:"))
        .unwrap_or_else(|| panic!("{r}"));
    for iface in ["lo", "a", "b"] {
        assert!(
            hint.split([' ', ',', ';']).any(|w| w == iface),
            "{iface}: {r}"
        );
    }
}

#[test]
fn an_invalid_interface_name_is_refused_before_any_ioctl() {
    if !require_root("an_invalid_interface_name_is_refused_before_any_ioctl") {
        return;
    }
    let r = in_netns("tcto-tune plan --profile offload-off --set iface=a/b");
    // A bad `--set` value is a usage error (issue 17).
    assert_eq!(r.code, 2, "{r}");
    assert!(r.stderr.contains("invalid interface name `a/b`"), "{r}");
}

#[test]
fn a_fixed_feature_is_refused() {
    if !require_root("a_fixed_feature_is_refused") {
        return;
    }
    let st = TempDir::new("offload-fixed");
    let profile = format!("{}/lro.toml", st.path());
    std::fs::write(
        &profile,
        "name = \"lro\"\n[[offload]]\niface = \"a\"\nlro = true\n",
    )
    .unwrap();
    let r = in_netns(&format!(
        "{VETH_AB}{ETHTOOL_K}tcto-tune plan --profile {profile}"
    ));
    assert_eq!(r.code, 3, "{r}");
    assert_eq!(ethtool_blocks(&r)[0]["lro"], "off [fixed]", "{r}");
    assert!(
        r.stdout
            .contains("refuse [offload-fixed] `a lro` cannot be turned on"),
        "{r}"
    );
}

#[test]
fn apply_changes_features_as_ethtool_shows_and_rollback_restores_them() {
    if !require_root("apply_changes_features_as_ethtool_shows_and_rollback_restores_them") {
        return;
    }
    let st = TempDir::new("offload-apply");
    let profile = format!("{}/tso-gro.toml", st.path());
    std::fs::write(
        &profile,
        "name = \"tso-gro\"\n[[offload]]\niface = \"a\"\ntso = false\ngro = true\n",
    )
    .unwrap();
    let r = in_netns(&format!(
        "{env}{VETH_AB}{ETHTOOL_K}tcto-tune apply --profile {profile}; echo apply=$?\n{ETHTOOL_K}ethtool -k a | grep -c -E '^\ttx-tcp.*segmentation: off'\ntcto-tune apply --profile {profile}; echo again=$?\ntcto-tune rollback; echo rollback=$?\n{ETHTOOL_K}",
        env = state_dir_env(&st)
    ));
    assert_eq!(r.code, 0, "{r}");
    let blocks = ethtool_blocks(&r);
    assert_eq!(blocks.len(), 3, "{r}");
    let (before, applied, restored) = (&blocks[0], &blocks[1], &blocks[2]);
    assert_eq!(
        (before["tso"].as_str(), before["gro"].as_str()),
        ("on", "off"),
        "{r}"
    );
    assert!(r.stdout.contains("apply=0"), "{r}");
    assert_eq!(
        (applied["tso"].as_str(), applied["gro"].as_str()),
        ("off", "on"),
        "{r}"
    );
    assert_eq!(
        (&applied["gso"], &applied["lro"]),
        (&before["gso"], &before["lro"])
    );
    // Every tx-tcp*-segmentation member went off (5 on kernel 6.18, 4 before).
    let members: u32 = r
        .stdout
        .lines()
        .find_map(|l| l.trim().parse().ok())
        .unwrap_or(0);
    assert!(members >= 4, "{r}");
    assert!(
        r.stdout.contains("nothing to do") && r.stdout.contains("again=0"),
        "applying again is a no-op: {r}"
    );
    assert!(r.stdout.contains("rollback=0"), "{r}");
    assert_eq!(restored, before, "rollback restores every group: {r}");
}

#[test]
fn a_failing_offload_step_rolls_back_the_sysctl_too() {
    if !require_root("a_failing_offload_step_rolls_back_the_sysctl_too") {
        return;
    }
    let st = TempDir::new("offload-fault");
    let profile = format!("{}/combined.toml", st.path());
    // somaxconn is written first; then lro on, which the veth driver fixes
    // off: SFEATURES "succeeds", the read-back shows it did not take.
    std::fs::write(
        &profile,
        "name = \"combined\"\n[backlog]\nsomaxconn = 3000\n[[offload]]\niface = \"a\"\ntso = false\nlro = true\n",
    )
    .unwrap();
    let r = in_netns(&format!(
        "{env}{VETH_AB}sysctl -qw net.core.somaxconn=1024\n{ETHTOOL_K}tcto-tune apply --profile {profile} --allow offload-fixed; echo rc=$?\nsysctl -n net.core.somaxconn\n{ETHTOOL_K}tcto-tune history",
        env = state_dir_env(&st)
    ));
    assert!(r.stdout.contains("rc=1"), "{r}");
    assert!(
        r.stdout.contains("`a lro` is still not on") && r.stdout.contains("fixes rx-lro"),
        "{r}"
    );
    assert!(
        r.stdout.lines().any(|l| l == "1024"),
        "somaxconn restored: {r}"
    );
    let blocks = ethtool_blocks(&r);
    assert_eq!(blocks[0], blocks[1], "offloads restored: {r}");
    assert!(r.stdout.contains("rolled back"), "{r}");
}

#[test]
fn changing_loopback_offloads_is_refused() {
    if !require_root("changing_loopback_offloads_is_refused") {
        return;
    }
    let r = in_netns("tcto-tune plan --profile offload-off --set iface=lo");
    assert_eq!(r.code, 3, "{r}");
    assert!(r.stdout.contains("refuse [offload-on-loopback]"), "{r}");
}
