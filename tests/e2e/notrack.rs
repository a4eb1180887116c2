//! NOTRACK rules against two real namespaces joined by a veth pair:
//! `nft list ruleset` is the oracle for the table, `/proc/net/nf_conntrack`
//! for what is tracked, real connects for what a stateful filter drops.

use tcto_tune_tests::notrack::Lab;
use tcto_tune_tests::{require_root, state_dir_env, TempDir};

const PROFILE: &str =
    "--profile trusted-notrack --set frontend=10.0.1.0/24 --set backend=10.0.2.0/24 --set port=8080";

const TABLE: &str = "table inet tcto_tune {
\tchain prerouting {
\t\ttype filter hook prerouting priority raw; policy accept;
\t\tip saddr 10.0.1.0/24 ip daddr 10.0.2.0/24 tcp dport 8080 notrack comment \"trusted-notrack\"
\t}

\tchain output {
\t\ttype filter hook output priority raw; policy accept;
\t\tip saddr 10.0.2.0/24 tcp sport 8080 ip daddr 10.0.1.0/24 notrack comment \"trusted-notrack\"
\t}
}
";

/// A table of someone else's that must survive untouched.
const OTHER: &str = "table inet other {
\tchain input {
\t\ttype filter hook input priority filter; policy accept;
\t\tct state new counter packets 0 bytes 0
\t}
}
";

/// `tcto(...)` that must succeed.
#[track_caller]
fn tcto_ok(lab: &Lab, state: &TempDir, args: &str) -> tcto_tune_tests::Run {
    let r = tcto(lab, state, args);
    assert_eq!(r.code, 0, "{r}");
    r
}

fn tcto(lab: &Lab, state: &TempDir, args: &str) -> tcto_tune_tests::Run {
    lab.backend
        .sh(&format!("{}tcto-tune {args}", state_dir_env(state)))
}

#[test]
fn apply_installs_exactly_the_table_and_rollback_restores_the_ruleset() {
    let Some((lab, state)) = Lab::for_test(
        "apply_installs_exactly_the_table_and_rollback_restores_the_ruleset",
        "nt-apply",
    ) else {
        return;
    };
    lab.load_ruleset(OTHER);
    let before = lab.ruleset();
    assert_eq!(before, OTHER);

    tcto_ok(&lab, &state, &format!("apply {PROFILE}"));
    assert_eq!(lab.ruleset(), format!("{OTHER}{TABLE}"));

    // Applying again changes nothing; the plan says it is in place.
    let r = tcto_ok(&lab, &state, &format!("apply {PROFILE}"));
    assert!(
        r.stdout.lines().any(|l| l.starts_with("nothing to do")),
        "{r}"
    );
    let r = tcto_ok(&lab, &state, &format!("plan --exit-code {PROFILE}"));
    assert!(r.stdout.contains("2 rules already in place"), "{r}");
    assert_eq!(lab.ruleset(), format!("{OTHER}{TABLE}"));

    tcto_ok(&lab, &state, "rollback");
    assert_eq!(lab.ruleset(), before);
}

#[test]
fn a_second_profile_adds_its_flows_rollback_removes_only_them_and_replace_replaces() {
    let Some((lab, state)) = Lab::for_test(
        "a_second_profile_adds_its_flows_rollback_removes_only_them_and_replace_replaces",
        "nt-prior",
    ) else {
        return;
    };
    tcto_ok(&lab, &state, &format!("apply {PROFILE}"));
    assert_eq!(lab.ruleset(), TABLE);
    // The second profile: another flow, another port.
    let second = "--profile trusted-notrack --set frontend=10.0.3.0/24 --set backend=10.0.2.0/24 --set port=9090";
    let r = tcto(&lab, &state, &format!("plan {second}"));
    assert!(r.stdout.contains("2 rules -> 4 rules"), "{r}");
    assert!(!r.stdout.contains("-\t\tip saddr 10.0.1.0/24"), "{r}");
    assert!(
        r.stdout.contains("info [notrack-flows-kept] the table keeps 1 flow(s) that profile `trusted-notrack` applied before and this run does not name: 10.0.1.0/24 -> 10.0.2.0/24 port 8080"),
        "{r}"
    );
    tcto_ok(&lab, &state, &format!("apply {second}"));
    let both = lab.ruleset();
    assert!(
        both.contains("ip saddr 10.0.1.0/24 ip daddr 10.0.2.0/24 tcp dport 8080 notrack comment \"trusted-notrack\"")
            && both.contains("ip saddr 10.0.3.0/24 ip daddr 10.0.2.0/24 tcp dport 9090 notrack comment \"trusted-notrack\""),
        "{both}"
    );
    // The first flow is still untracked: real connects leave no entry.
    lab.listen(8080);
    // A rule that uses conntrack, so the namespace tracks at all.
    lab.load_ruleset(OTHER);
    assert_eq!(lab.connect(8080, 3, 2000), (3, 0));
    assert_eq!(
        tracked(&lab, 8080),
        0,
        "the first profile's flow stays untracked"
    );
    // Rollback of the second apply removes only its flow.
    tcto_ok(&lab, &state, "rollback");
    assert!(lab.ruleset().contains(TABLE), "{}", lab.ruleset());
    assert!(!lab.ruleset().contains("9090"));
    // Another profile (a file) adds its own tagged part.
    let other = format!("{}/other.toml", state.path());
    std::fs::write(
        &other,
        "name = \"other\"\n[[notrack]]\nfrom = \"10.0.4.0/24\"\nto = \"10.0.2.0/24\"\nport = 7070\n",
    )
    .unwrap();
    let r = tcto_ok(&lab, &state, &format!("apply --profile {other}"));
    assert!(
        r.stdout.contains("(table, 2 rules) -> (table, 4 rules)"),
        "{r}"
    );
    let listed = lab.ruleset();
    assert!(
        listed.contains("tcp dport 7070 notrack comment \"other\""),
        "{listed}"
    );
    assert!(
        listed.contains("tcp dport 8080 notrack comment \"trusted-notrack\""),
        "{listed}"
    );
    // --replace replaces trusted-notrack's flows only, in plan and apply.
    tcto_ok(&lab, &state, &format!("apply {second} --replace"));
    let listed = lab.ruleset();
    assert!(
        listed.contains("tcp dport 9090 notrack comment \"trusted-notrack\"")
            && !listed.contains("tcp dport 8080")
            && listed.contains("tcp dport 7070 notrack comment \"other\""),
        "{listed}"
    );
    // Rolled back one by one, newest first, down to nothing of ours.
    for _ in 0..3 {
        let r = tcto(&lab, &state, "rollback");
        assert_eq!(r.code, 0, "{r}");
    }
    assert!(!lab.ruleset().contains("tcto_tune"), "{}", lab.ruleset());
}

fn tracked(lab: &Lab, port: u16) -> usize {
    let r = lab.backend.sh("cat /proc/net/nf_conntrack");
    assert_eq!(r.code, 0, "{r}");
    r.stdout
        .lines()
        .filter(|l| l.contains(&format!("dport={port} ")))
        .count()
}

#[test]
fn notracked_flows_leave_no_conntrack_entries_while_others_are_tracked() {
    let Some((lab, state)) = Lab::for_test(
        "notracked_flows_leave_no_conntrack_entries_while_others_are_tracked",
        "nt-ct",
    ) else {
        return;
    };
    // A rule that uses conntrack, so the namespace tracks at all.
    lab.load_ruleset(OTHER);
    lab.listen(8080);
    lab.listen(9090);
    // Without the table the flow is tracked (so the check below can fail).
    assert_eq!(lab.connect(8080, 3, 2000), (3, 0));
    assert!(tracked(&lab, 8080) > 0, "the flow is tracked before apply");

    tcto_ok(&lab, &state, &format!("apply {PROFILE}"));
    let r = lab.backend.sh("conntrack -F 2>&1");
    assert_eq!(r.code, 0, "{r}");
    assert_eq!(lab.connect(8080, 20, 2000), (20, 0));
    assert_eq!(lab.connect(9090, 3, 2000), (3, 0));
    assert_eq!(tracked(&lab, 8080), 0, "the trusted flow is untracked");
    assert!(tracked(&lab, 9090) > 0, "another port is still tracked");
}

const STATEFUL: &str = "table inet filter {
\tchain input {
\t\ttype filter hook input priority filter; policy drop;
\t\tct state established,related accept
\t\tct state new tcp dport 8080 accept
\t}
}
";

#[test]
fn a_stateful_filter_is_refused_forcing_it_times_out_and_rollback_mends_it() {
    let Some((lab, state)) = Lab::for_test(
        "a_stateful_filter_is_refused_forcing_it_times_out_and_rollback_mends_it",
        "nt-sf",
    ) else {
        return;
    };
    lab.load_ruleset(STATEFUL);
    let before = lab.ruleset();
    lab.listen(8080);
    assert_eq!(lab.connect(8080, 3, 2000), (3, 0));

    let r = tcto(&lab, &state, &format!("plan {PROFILE}"));
    assert_eq!(r.code, 3, "{r}");
    assert!(
        r.stdout.contains("refuse [notrack-breaks-stateful-filter]"),
        "{r}"
    );
    assert!(
        r.stdout
            .contains("nft insert rule inet filter input ct state untracked accept"),
        "{r}"
    );
    let r = tcto(&lab, &state, &format!("apply {PROFILE}"));
    assert_eq!(r.code, 3, "{r}");
    assert_eq!(lab.ruleset(), before, "a refused apply changes nothing");

    tcto_ok(
        &lab,
        &state,
        &format!("apply {PROFILE} --allow notrack-breaks-stateful-filter"),
    );
    assert_eq!(
        lab.connect(8080, 3, 500),
        (0, 3),
        "untracked SYNs are dropped"
    );

    tcto_ok(&lab, &state, "rollback");
    assert_eq!(lab.ruleset(), before);
    assert_eq!(lab.connect(8080, 3, 2000), (3, 0));

    // The mended filter passes the check, and the flow works untracked.
    let r = lab
        .backend
        .sh("nft insert rule inet filter input ct state untracked accept");
    assert_eq!(r.code, 0, "{r}");
    tcto_ok(&lab, &state, &format!("apply {PROFILE}"));
    assert_eq!(lab.connect(8080, 3, 2000), (3, 0));
}

#[test]
fn without_cap_net_admin_the_error_names_the_nftables_step() {
    if !require_root("without_cap_net_admin_the_error_names_the_nftables_step") {
        return;
    }
    let r = tcto_tune_tests::in_netns(&format!(
        "setpriv --reuid=65534 --regid=65534 --clear-groups tcto-tune plan {PROFILE}"
    ));
    assert_eq!(r.code, 1, "{r}");
    assert!(
        r.stderr.contains(
            "nftables: cannot read table inet tcto_tune (permission denied: needs root or CAP_NET_ADMIN)"
        ),
        "{r}"
    );
}

#[test]
fn flows_beyond_the_rule_limit_go_into_sets_and_stay_untracked() {
    let Some((lab, state)) = Lab::for_test(
        "flows_beyond_the_rule_limit_go_into_sets_and_stay_untracked",
        "nt-set",
    ) else {
        return;
    };
    // 40 flows (sets), the lab's own among them.
    let profile = format!("{}/many.toml", state.path());
    let mut toml = String::from("name = \"many\"\n");
    for i in 0..39 {
        toml.push_str(&format!(
            "[[notrack]]\nfrom = \"10.9.{i}.0/24\"\nto = \"10.0.2.0/24\"\nport = 8080\n"
        ));
    }
    toml.push_str("[[notrack]]\nfrom = \"10.0.1.0/24\"\nto = \"10.0.2.0/24\"\nport = 8080\n");
    std::fs::write(&profile, toml).unwrap();
    lab.load_ruleset(OTHER);
    lab.listen(8080);
    lab.listen(9090);

    let r = tcto_ok(&lab, &state, &format!("apply --profile {profile}"));
    assert!(r.stdout.contains("(table, 2 rules)"), "{r}");
    let listed = lab.ruleset();
    assert!(
        listed.contains("ip saddr . ip daddr . tcp dport @flows4-many notrack comment \"many\"")
            && listed.contains("10.0.1.0/24 . 10.0.2.0/24 . 8080")
            && listed.contains("10.9.38.0/24 . 10.0.2.0/24 . 8080"),
        "{listed}"
    );
    let r = tcto(&lab, &state, &format!("apply --profile {profile}"));
    assert!(
        r.stdout.lines().any(|l| l.starts_with("nothing to do")),
        "{r}"
    );

    let r = lab.backend.sh("conntrack -F 2>&1");
    assert_eq!(r.code, 0, "{r}");
    assert_eq!(lab.connect(8080, 10, 2000), (10, 0));
    assert_eq!(lab.connect(9090, 3, 2000), (3, 0));
    assert_eq!(tracked(&lab, 8080), 0, "the trusted flow is untracked");
    assert!(tracked(&lab, 9090) > 0, "another port is still tracked");

    // The other table's `ct state new counter` saw the 3 tracked
    // connections to 9090 and none of the 10 untracked ones to 8080.
    assert!(
        lab.ruleset()
            .contains("ct state new counter packets 3 bytes"),
        "{}",
        lab.ruleset()
    );

    tcto_ok(&lab, &state, "rollback");
    let after = lab.ruleset();
    assert!(
        !after.contains("tcto_tune") && after.starts_with("table inet other {"),
        "{after}"
    );
}

/// The nftables wiki's server ruleset: `ct state vmap { ... }`.
const STATEFUL_VMAP: &str = "table inet filter {\n\tchain input {\n\t\ttype filter hook input priority filter; policy drop;\n\t\tct state vmap { established : accept, related : accept, invalid : drop }\n\t\tct state new tcp dport 8080 accept\n\t}\n}\n";

#[test]
fn a_ct_state_verdict_map_is_recognised_as_stateful() {
    let Some((lab, state)) = Lab::for_test(
        "a_ct_state_verdict_map_is_recognised_as_stateful",
        "nt-vmap",
    ) else {
        return;
    };
    lab.load_ruleset(STATEFUL_VMAP);
    let r = tcto(&lab, &state, &format!("plan {PROFILE}"));
    assert_eq!(r.code, 3, "{r}");
    // The map's elements are read: untracked finds no element, the walk
    // goes on to the policy drop, and quotes the map as read.
    assert!(
        r.stdout
            .contains("refuse [notrack-breaks-stateful-filter] chain `inet filter input`"),
        "{r}"
    );
    assert!(
        r.stdout.contains("accepted by rule `ct state vmap { invalid : drop, established : accept, related : accept }`"),
        "{r}"
    );
    // And it is right: forced, the connects time out.
    lab.listen(8080);
    tcto_ok(
        &lab,
        &state,
        &format!("apply {PROFILE} --allow notrack-breaks-stateful-filter"),
    );
    assert_eq!(lab.connect(8080, 2, 500), (0, 2), "untracked SYNs dropped");
}

/// ufw's layout (iptables-nft, firewalld alike): the base chain only jumps,
/// the stateful accepts live in a regular chain.
const UFW: &str = "table inet filter {
	chain input {
		type filter hook input priority filter; policy drop;
		counter jump ufw-before-input
	}

	chain ufw-before-input {
		ct state established,related accept
		tcp dport 8080 ct state new accept
	}
}
";

#[test]
fn a_ufw_style_jump_is_followed_refused_and_the_mended_path_connects_untracked() {
    let Some((lab, state)) = Lab::for_test(
        "a_ufw_style_jump_is_followed_refused_and_the_mended_path_connects_untracked",
        "nt-ufw",
    ) else {
        return;
    };
    lab.load_ruleset(UFW);
    let before = lab.ruleset_stateless();
    lab.listen(8080);
    assert_eq!(lab.connect(8080, 3, 2000), (3, 0), "tracked, it works");

    let r = tcto(&lab, &state, &format!("apply {PROFILE}"));
    assert_eq!(r.code, 3, "{r}");
    assert!(
        r.stdout.contains("refuse [notrack-breaks-stateful-filter]"),
        "{r}"
    );
    assert!(
        r.stdout.contains("through input -> ufw-before-input")
            && r.stdout.contains(
                "accepted by rule `ct state established,related accept` (chain ufw-before-input)"
            ),
        "{r}"
    );
    assert_eq!(
        lab.ruleset_stateless(),
        before,
        "a refused apply changes nothing"
    );

    // The finding is right: forced, the connects time out.
    tcto_ok(
        &lab,
        &state,
        &format!("apply {PROFILE} --allow notrack-breaks-stateful-filter"),
    );
    assert_eq!(lab.connect(8080, 3, 500), (0, 3), "untracked SYNs dropped");
    tcto_ok(&lab, &state, "rollback");
    assert_eq!(lab.ruleset_stateless(), before);

    // Mended with the hint's own command, the apply passes and the flow
    // connects through the NOTRACKed path.
    let r = lab
        .backend
        .sh("nft insert rule inet filter input ct state untracked accept");
    assert_eq!(r.code, 0, "{r}");
    tcto_ok(&lab, &state, &format!("apply {PROFILE}"));
    let r = lab.backend.sh("conntrack -F 2>&1");
    assert_eq!(r.code, 0, "{r}");
    assert_eq!(lab.connect(8080, 5, 2000), (5, 0));
    assert_eq!(tracked(&lab, 8080), 0, "the connects went untracked");
}

/// A `type route hook output` chain with policy drop that passes replies
/// only as established, reached by goto.
const ROUTE_OUT: &str = "table ip mangle {
	chain out {
		type route hook output priority mangle; policy drop;
		goto replies
	}

	chain replies {
		ct state established accept
	}
}
";

#[test]
fn a_route_output_chain_with_policy_drop_is_refused() {
    let Some((lab, state)) = Lab::for_test(
        "a_route_output_chain_with_policy_drop_is_refused",
        "nt-route",
    ) else {
        return;
    };
    lab.load_ruleset(ROUTE_OUT);
    lab.listen(8080);
    assert_eq!(lab.connect(8080, 2, 2000), (2, 0), "tracked, it works");
    let r = tcto(&lab, &state, &format!("plan {PROFILE}"));
    assert_eq!(r.code, 3, "{r}");
    assert!(
        r.stdout.contains(
            "chain `ip mangle out` (hook output, policy drop) would drop the untracked replies"
        ),
        "{r}"
    );
    assert!(
        r.stdout
            .contains("accepted by rule `ct state established accept` (chain replies)"),
        "{r}"
    );
    // It is right: forced, the replies are dropped.
    tcto_ok(
        &lab,
        &state,
        &format!("apply {PROFILE} --allow notrack-breaks-stateful-filter"),
    );
    assert_eq!(
        lab.connect(8080, 2, 500),
        (0, 2),
        "untracked replies dropped"
    );
}

/// 35 flows (set mode, also once one is merged away): 33 apart, plus
/// `10.0.0.0/15 -> 10.0.0.0/24` and `10.1.0.0/16 -> TO` on one port.
fn overlap_profile(state: &TempDir, to: &str) -> String {
    let path = format!("{}/overlap.toml", state.path());
    let mut toml = String::from("name = \"overlap\"\n");
    for i in 0..33 {
        toml.push_str(&format!(
            "[[notrack]]\nfrom = \"10.9.{i}.0/24\"\nto = \"10.0.2.0/24\"\nport = 8080\n"
        ));
    }
    toml.push_str("[[notrack]]\nfrom = \"10.0.0.0/15\"\nto = \"10.0.0.0/24\"\nport = 8080\n");
    toml.push_str(&format!(
        "[[notrack]]\nfrom = \"10.1.0.0/16\"\nto = \"{to}\"\nport = 8080\n"
    ));
    std::fs::write(&path, toml).unwrap();
    path
}

#[test]
fn overlapping_flows_are_merged_or_refused_and_the_dry_run_agrees_with_the_kernel() {
    let Some((lab, state)) = Lab::for_test(
        "overlapping_flows_are_merged_or_refused_and_the_dry_run_agrees_with_the_kernel",
        "nt-ovl",
    ) else {
        return;
    };
    // Held: 10.1.0.0/16 -> 10.0.0.0/24 lies inside the /15 flow.
    let held = overlap_profile(&state, "10.0.0.0/24");
    let r = tcto_ok(&lab, &state, &format!("plan --profile {held}"));
    assert!(
        r.stdout.contains("info [notrack-flows-overlap] flow 10.1.0.0/16 -> 10.0.0.0/24 port 8080 lies inside flow 10.0.0.0/15 -> 10.0.0.0/24 port 8080"),
        "{r}"
    );
    tcto_ok(&lab, &state, &format!("apply --dry-run --profile {held}"));
    tcto_ok(&lab, &state, &format!("apply --profile {held}"));
    let listed = lab.ruleset();
    assert!(
        listed.contains("10.0.0.0/15 . 10.0.0.0/24 . 8080") && !listed.contains("10.1.0.0/16"),
        "{listed}"
    );
    tcto_ok(&lab, &state, "rollback");

    // Crossing: 10.1.0.0/16 -> 10.0.0.0/22 holds the /24 the other names.
    let crossing = overlap_profile(&state, "10.0.0.0/22");
    let r = tcto(&lab, &state, &format!("plan --profile {crossing}"));
    assert_eq!(r.code, 3, "{r}");
    assert!(
        r.stdout.contains("refuse [notrack-flows-overlap] flows 10.0.0.0/15 -> 10.0.0.0/24 port 8080 and 10.1.0.0/16 -> 10.0.0.0/22 port 8080 overlap"),
        "{r}"
    );
    // Allowed anyway, the dry run fails as the kernel does.
    let allow = "--allow notrack-flows-overlap";
    let dry = tcto(
        &lab,
        &state,
        &format!("apply --dry-run --profile {crossing} {allow}"),
    );
    let real = tcto(&lab, &state, &format!("apply --profile {crossing} {allow}"));
    for r in [&dry, &real] {
        assert_eq!(r.code, 1, "{r}");
        let all = format!("{}{}", r.stdout, r.stderr);
        assert!(
            all.contains("cannot add elements to set flows4") && all.contains("File exists"),
            "{r}"
        );
    }
    assert!(!lab.ruleset().contains("tcto_tune"), "nothing half-applied");
}

#[test]
fn a_foreign_rule_is_named_and_rollback_force_restores_our_table() {
    let Some((lab, state)) = Lab::for_test(
        "a_foreign_rule_is_named_and_rollback_force_restores_our_table",
        "nt-foreign",
    ) else {
        return;
    };
    lab.load_ruleset(OTHER);
    let before = lab.ruleset();
    tcto_ok(&lab, &state, &format!("apply {PROFILE}"));
    // Someone adds a rule to our table by hand.
    let r = lab
        .backend
        .sh("nft add rule inet tcto_tune prerouting tcp dport 22 accept");
    assert_eq!(r.code, 0, "{r}");

    // plan names it, with the command that removes it, and plans nothing.
    let r = tcto(&lab, &state, &format!("plan {PROFILE}"));
    assert_eq!(r.code, 3, "{r}");
    assert!(
        r.stdout.contains("refuse [notrack-foreign-content] table inet tcto_tune holds content tcto-tune did not write: rule `tcp dport 22 accept` in chain prerouting (handle "),
        "{r}"
    );
    assert!(
        r.stdout
            .contains("`nft delete rule inet tcto_tune prerouting handle "),
        "{r}"
    );

    // rollback names it and leaves it; --force restores our journaled
    // state, removing it, and says so.
    let r = tcto(&lab, &state, "rollback");
    assert_eq!(r.code, 1, "{r}");
    assert!(
        r.stdout
            .contains("not ours: rule `tcp dport 22 accept` in chain prerouting (handle ")
            && r.stdout.contains("use --force to restore `(absent)`"),
        "{r}"
    );
    assert!(!r.stdout.contains("cannot read it"), "{r}");
    assert!(lab.ruleset().contains("tcp dport 22 accept"));
    let r = tcto_ok(&lab, &state, "rollback --force");
    assert!(
        r.stdout.contains("reverted")
            && r.stdout.contains("--force: replaced `(table, 2 rules; not ours: rule `tcp dport 22 accept` in chain prerouting"),
        "{r}"
    );
    assert_eq!(lab.ruleset(), before);
}

#[test]
fn the_removal_command_the_finding_prints_runs_as_printed() {
    let Some((lab, state)) = Lab::for_test(
        "the_removal_command_the_finding_prints_runs_as_printed",
        "nt-fhint",
    ) else {
        return;
    };
    tcto_ok(&lab, &state, &format!("apply {PROFILE}"));
    let r = lab
        .backend
        .sh("nft add rule inet tcto_tune output tcp sport 22 accept");
    assert_eq!(r.code, 0, "{r}");
    let r = tcto(&lab, &state, &format!("plan {PROFILE}"));
    assert_eq!(r.code, 3, "{r}");
    let cmd = r
        .stdout
        .split('`')
        .find(|s| s.starts_with("nft delete rule inet tcto_tune output handle "))
        .unwrap_or_else(|| panic!("no removal command in {r}"))
        .to_owned();
    let r = lab.backend.sh(&cmd);
    assert_eq!(r.code, 0, "{r}");
    tcto_ok(&lab, &state, &format!("plan --exit-code {PROFILE}"));
    assert_eq!(lab.ruleset(), TABLE);
}

/// A `hook prerouting` filter chain (after conntrack) with policy drop,
/// whose stateful accept sits behind a goto to a chain ending in `drop`.
const PREROUTING_GOTO: &str = "table ip pre {
\tchain pre {
\t\ttype filter hook prerouting priority filter; policy drop;
\t\tgoto gate
\t}

\tchain gate {
\t\tct state established,related accept
\t\ttcp dport 8080 ct state new accept
\t\tdrop
\t}
}
";

#[test]
fn a_prerouting_chain_with_a_goto_to_a_drop_is_refused_and_right() {
    let Some((lab, state)) = Lab::for_test(
        "a_prerouting_chain_with_a_goto_to_a_drop_is_refused_and_right",
        "nt-pre",
    ) else {
        return;
    };
    lab.load_ruleset(PREROUTING_GOTO);
    lab.listen(8080);
    assert_eq!(lab.connect(8080, 2, 2000), (2, 0), "tracked, it works");
    let r = tcto(&lab, &state, &format!("plan {PROFILE}"));
    assert_eq!(r.code, 3, "{r}");
    assert!(
        r.stdout.contains(
            "chain `ip pre pre` (hook prerouting, policy drop) would drop the untracked requests"
        ) && r
            .stdout
            .contains("they end at rule `drop` (chain gate) (through pre -> gate)"),
        "{r}"
    );
    tcto_ok(
        &lab,
        &state,
        &format!("apply {PROFILE} --allow notrack-breaks-stateful-filter"),
    );
    assert_eq!(lab.connect(8080, 2, 500), (0, 2), "untracked SYNs dropped");
    // Mended as the hint says, it connects untracked.
    tcto_ok(&lab, &state, "rollback");
    let r = lab
        .backend
        .sh("nft insert rule ip pre pre ct state untracked accept");
    assert_eq!(r.code, 0, "{r}");
    tcto_ok(&lab, &state, &format!("apply {PROFILE}"));
    assert_eq!(lab.connect(8080, 2, 2000), (2, 0));
}

/// libnftnl and libmnl load when nftables is first used, not at start
/// (issue 15): a sysctl-only plan never maps them, a NOTRACK plan loads
/// them with dlopen and works. The oracle is the dynamic loader's own
/// trace (`LD_DEBUG=files`).
#[test]
fn libnftnl_loads_only_when_nftables_is_used() {
    if !require_root("libnftnl_loads_only_when_nftables_is_used") {
        return;
    }
    let r = tcto_tune_tests::in_netns(&format!(
        "LD_DEBUG=files tcto-tune plan --profile high-conn 2>&1 >/dev/null | grep -E 'libnftnl|libmnl'\n\
         echo sysctl-only-done\n\
         LD_DEBUG=files tcto-tune plan {PROFILE} 2>&1 >/dev/null | grep -E 'file=(libnftnl|libmnl)' | sed 's/^ *[0-9]*:[[:space:]]*//'\n\
         tcto-tune plan {PROFILE}"
    ));
    assert_eq!(r.code, 0, "{r}");
    let (sysctl_only, notrack) = r.stdout.split_once("sysctl-only-done\n").unwrap();
    assert_eq!(
        sysctl_only, "",
        "a sysctl-only plan loaded nftables' libraries:\n{r}"
    );
    assert!(
        notrack.contains("file=libnftnl.so.11 [0];  dynamically loaded by")
            && notrack.contains("file=libmnl.so.0 [0];  needed by"),
        "{r}"
    );
    assert!(
        notrack.contains("notrack inet tcto_tune as planned:"),
        "{r}"
    );
}

/// On a host without libnftnl (here: a private mount namespace with
/// /dev/null bound over the library), every sysctl command still runs and
/// an nftables one fails with one line naming the library and its
/// package. A binary linked to libnftnl did not start there at all.
#[test]
fn without_libnftnl_sysctl_commands_run_and_nftables_ones_name_the_library() {
    if !require_root("without_libnftnl_sysctl_commands_run_and_nftables_ones_name_the_library") {
        return;
    }
    let st = TempDir::new("no-nftnl");
    let r = tcto_tune_tests::in_netns(&format!(
        "lib=$(readlink -f \"$(ldconfig -p | awk '/libnftnl\\.so\\.11 /{{print $NF; exit}}')\")\n\
         [ -f \"$lib\" ] || {{ echo no libnftnl found; exit 20; }}\n\
         {state}\
         unshare -m sh -c '\n\
           mount --bind /dev/null \"$1\" || exit 21\n\
           tcto-tune plan --profile high-conn >/dev/null; echo plan=$?\n\
           tcto-tune apply --profile high-conn >/dev/null; echo apply=$?\n\
           tcto-tune rollback >/dev/null; echo rollback=$?\n\
           tcto-tune plan {PROFILE}; echo notrack=$?\n\
         ' sh \"$lib\"",
        state = state_dir_env(&st),
    ));
    assert_eq!(r.code, 0, "{r}");
    for line in ["plan=0", "apply=0", "rollback=0", "notrack=1"] {
        assert!(r.stdout.lines().any(|l| l == line), "{line}: {r}");
    }
    assert!(
        r.stderr.contains(
            "error: cannot read the system state: nftables: cannot load libnftnl.so.11: "
        ) && r
            .stderr
            .contains("(on Debian: apt-get install libnftnl11 libmnl0)"),
        "{r}"
    );
}
