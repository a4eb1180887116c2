//! The persist planner from fixtures: which files, what is in them, which
//! findings. Snapshots show the files exactly as an admin would read them.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::*;
use crate::change::ChangeKind;
use crate::plan::Plan;
use crate::profile::Profile;
use crate::profile::{load, load_text, ProfileOrigin};
use crate::state::{SysctlReading, SystemState};

const ROOT: &str = "/img";

fn host(p: &str) -> String {
    host_path(ROOT, p)
}

fn state(initial: bool) -> SystemState {
    let mut s = SystemState {
        in_initial_netns: initial,
        mem_total_bytes: Some(16 << 30),
        ..Default::default()
    };
    let ct = |v: &str| {
        if initial {
            SysctlReading::rw(v)
        } else {
            SysctlReading::ro(v)
        }
    };
    for (k, r) in [
        ("net.core.somaxconn", SysctlReading::rw("1024")),
        ("net.ipv4.tcp_max_syn_backlog", SysctlReading::rw("16384")),
        (
            "net.core.netdev_max_backlog",
            if initial {
                SysctlReading::rw("1000")
            } else {
                SysctlReading::missing()
            },
        ),
        ("net.netfilter.nf_conntrack_buckets", ct("16384")),
        ("net.netfilter.nf_conntrack_max", ct("65536")),
        ("net.netfilter.nf_conntrack_count", SysctlReading::ro("12")),
        (
            "net.netfilter.nf_conntrack_tcp_timeout_established",
            SysctlReading::rw("432000"),
        ),
        (
            "net.netfilter.nf_conntrack_tcp_timeout_time_wait",
            SysctlReading::rw("120"),
        ),
        (
            "net.netfilter.nf_conntrack_tcp_timeout_close_wait",
            SysctlReading::rw("60"),
        ),
        ("net.ipv4.tcp_keepalive_time", SysctlReading::rw("7200")),
    ] {
        s.sysctls.insert(k.into(), r);
    }
    s
}

fn facts(module: ModuleState) -> PersistFacts {
    PersistFacts {
        root: ROOT.into(),
        existing: MANAGED_FILES
            .iter()
            .map(|f| (host(f), Value::Absent))
            .collect(),
        module,
        ..Default::default()
    }
}

fn loadable() -> ModuleState {
    ModuleState::Loadable {
        evidence: "test".into(),
    }
}

fn opts() -> PersistOptions {
    PersistOptions {
        exec: "/usr/local/bin/tcto-tune".into(),
        ..Default::default()
    }
}

fn persist(profile: &Profile, st: &SystemState, f: &PersistFacts) -> Plan {
    let runtime = crate::plan(profile, st);
    plan_persist(profile, &runtime, f, &opts())
}

fn high_conn() -> Profile {
    load("high-conn", &BTreeMap::new()).unwrap()
}

fn notrack_profile() -> Profile {
    let vars = [
        ("frontend", "10.0.1.0/24"),
        ("backend", "10.0.2.0/24"),
        ("port", "8080"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    load("trusted-notrack", &vars).unwrap()
}

fn content(p: &Plan, path: &str) -> String {
    let c = p
        .changes
        .iter()
        .find(|c| c.key() == host(path))
        .unwrap_or_else(|| panic!("no change for {path}: {p:#?}"));
    match &c.after {
        Value::Bytes(b) => String::from_utf8(b.clone()).unwrap(),
        other => panic!("{path}: {other:?}"),
    }
}

fn change_paths(p: &Plan) -> Vec<&str> {
    p.changes
        .iter()
        .map(|c| match &c.target {
            // A file change's key is its path.
            crate::Target::File { path } => path.strip_prefix(ROOT).unwrap(),
            other => panic!("not a file: {other}"),
        })
        .collect()
}

fn codes(p: &Plan) -> Vec<&str> {
    p.findings.iter().map(|f| f.code.as_str()).collect()
}

#[test]
fn high_conn_with_a_loadable_module_writes_three_files() {
    let p = persist(&high_conn(), &state(true), &facts(loadable()));
    assert_eq!(
        change_paths(&p),
        [
            SYSCTL_D_PATH,
            MODULES_LOAD_PATH,
            MODPROBE_PATH,
            "/etc/tcto-tune/persisted.d/high-conn.toml"
        ]
    );
    assert!(p.changes.iter().all(|c| c.before == Value::Absent));
    insta::assert_snapshot!(
        "high_conn_entry",
        content(&p, "/etc/tcto-tune/persisted.d/high-conn.toml")
    );
    insta::assert_snapshot!("high_conn_sysctl_d", content(&p, SYSCTL_D_PATH));
    insta::assert_snapshot!("high_conn_modules_load", content(&p, MODULES_LOAD_PATH));
    insta::assert_snapshot!("high_conn_modprobe", content(&p, MODPROBE_PATH));
    assert!(p.refusals().is_empty(), "{:?}", p.findings);
}

#[test]
fn built_in_conntrack_skips_the_module_files_and_says_so() {
    let p = persist(
        &high_conn(),
        &state(true),
        &facts(ModuleState::BuiltIn {
            evidence: "no initstate".into(),
        }),
    );
    assert_eq!(change_paths(&p)[0], SYSCTL_D_PATH);
    assert_eq!(change_paths(&p).len(), 2);
    let f = p
        .findings
        .iter()
        .find(|f| f.code == codes::BUILT_IN)
        .expect("built-in finding");
    assert_eq!(f.severity, Severity::Info);
    assert!(f
        .hint
        .as_deref()
        .unwrap()
        .contains("nf_conntrack.hashsize=65536"));
    let skipped: Vec<&str> = p.skipped.iter().map(|s| s.code.as_str()).collect();
    assert_eq!(skipped, [codes::BUILT_IN, codes::BUILT_IN]);
    // The buckets stay in sysctl.d: the only runtime way to size the hash.
    assert!(content(&p, SYSCTL_D_PATH).contains("net.netfilter.nf_conntrack_buckets = 65536"));
}

#[test]
fn unknown_module_state_writes_the_module_files() {
    let p = persist(&high_conn(), &state(true), &facts(ModuleState::Unknown));
    assert_eq!(
        change_paths(&p)[..3],
        [SYSCTL_D_PATH, MODULES_LOAD_PATH, MODPROBE_PATH]
    );
    assert!(!codes(&p).contains(&codes::BUILT_IN.as_str()));
}

#[test]
fn no_conntrack_key_no_module_files() {
    let p = persist(
        &load("backlog-overflow", &BTreeMap::new()).unwrap(),
        &state(true),
        &facts(loadable()),
    );
    assert_eq!(
        change_paths(&p),
        [
            SYSCTL_D_PATH,
            "/etc/tcto-tune/persisted.d/backlog-overflow.toml"
        ]
    );
    assert!(p.skipped.is_empty());
}

#[test]
fn keys_not_writable_in_a_child_namespace_are_still_persisted() {
    // In a child namespace the conntrack globals are read-only and
    // netdev_max_backlog is absent: skipped at runtime, set at boot.
    let p = persist(&high_conn(), &state(false), &facts(loadable()));
    let text = content(&p, SYSCTL_D_PATH);
    assert!(
        text.contains("net.netfilter.nf_conntrack_max = 262144"),
        "{text}"
    );
    assert!(
        text.contains("net.core.netdev_max_backlog = 16384"),
        "{text}"
    );
    // An at_least already exceeded persists the higher current value, so
    // boot never lowers it.
    assert!(
        text.contains("net.ipv4.tcp_max_syn_backlog = 16384"),
        "{text}"
    );
}

#[test]
fn removed_keys_are_not_persisted_and_refuse() {
    let profile = load_text(
        ProfileOrigin::File(PathBuf::from("/p/old.toml")),
        "[backlog]\nsomaxconn = 4096\n[sysctl]\n\"net.ipv4.tcp_tw_recycle\" = 1\n",
        &BTreeMap::new(),
    )
    .unwrap();
    let p = persist(&profile, &state(true), &facts(loadable()));
    let text = content(&p, SYSCTL_D_PATH);
    assert!(!text.contains("tcp_tw_recycle"), "{text}");
    assert!(text.contains("net.core.somaxconn = 4096"), "{text}");
    assert!(codes(&p).contains(&"removed-key"));
    assert!(!p.refusals().is_empty());
}

#[test]
fn runtime_findings_carry_over() {
    let mut profile = high_conn();
    profile.add_listener(8080, Some(511));
    let p = persist(&profile, &state(true), &facts(loadable()));
    assert!(
        p.refusals()
            .iter()
            .any(|f| f.code == "somaxconn-above-app-backlog"),
        "{:?}",
        p.findings
    );
}

#[test]
fn notrack_writes_the_plan_the_unit_and_its_link() {
    let profile = notrack_profile();
    let p = persist(&profile, &state(true), &facts(loadable()));
    let entry = "/etc/tcto-tune/persisted.d/trusted-notrack.toml";
    assert_eq!(change_paths(&p), [entry, UNIT_PATH, WANTS_PATH]);
    let toml = content(&p, entry);
    insta::assert_snapshot!("notrack_persisted_toml", toml);
    insta::assert_snapshot!("notrack_unit", content(&p, UNIT_PATH));
    let link = p
        .changes
        .iter()
        .find(|c| c.key() == host(WANTS_PATH))
        .unwrap();
    assert_eq!(link.after, Value::Symlink(UNIT_PATH.into()));
    // The saved plan loads back as the same NOTRACK flows.
    let back = load_text(
        ProfileOrigin::File(PathBuf::from(entry)),
        &toml,
        &BTreeMap::new(),
    )
    .unwrap();
    assert_eq!(back.notrack, profile.notrack);
    assert_eq!(back.name, "trusted-notrack");
    assert!(back.sysctl_targets().is_empty());
}

#[test]
fn offloads_make_the_unit_wait_for_their_interfaces() {
    let vars = [("iface".to_owned(), "veth-a".to_owned())]
        .into_iter()
        .collect();
    let profile = load("offload-off", &vars).unwrap();
    let p = persist(&profile, &state(true), &facts(loadable()));
    let unit = content(&p, UNIT_PATH);
    assert!(
        unit.contains("Wants=sys-subsystem-net-devices-veth\\x2da.device\nAfter=sys-subsystem-net-devices-veth\\x2da.device\n"),
        "{unit}"
    );
    let back = load_text(
        ProfileOrigin::File(PathBuf::from("/x/offload-off.toml")),
        &content(&p, "/etc/tcto-tune/persisted.d/offload-off.toml"),
        &BTreeMap::new(),
    )
    .unwrap();
    assert_eq!(back.offloads, profile.offloads);
}

/// Facts after `plan` was applied on top of `f`.
fn after(f: &PersistFacts, plan: &Plan) -> PersistFacts {
    let mut f = f.clone();
    for c in &plan.changes {
        if c.key().starts_with(&host(PERSISTED_PATH)) {
            if c.after == Value::Absent {
                f.entry_files.remove(&c.key());
            } else {
                f.entry_files.insert(c.key().clone(), c.after.clone());
            }
        } else {
            f.existing.insert(c.key().clone(), c.after.clone());
        }
    }
    f
}

#[test]
fn identical_files_are_unchanged_and_a_second_profile_keeps_the_first() {
    let st = state(true);
    let f = after(
        &facts(loadable()),
        &persist(&high_conn(), &st, &facts(loadable())),
    );
    let again = persist(&high_conn(), &st, &f);
    assert!(again.changes.is_empty(), "{:?}", again.changes);
    assert_eq!(again.unchanged.len(), 4);
    assert!(again.unchanged.iter().all(|u| u.kind == ChangeKind::File));
    // A second sysctl profile: its entry is added, sysctl.d holds both.
    let p = persist(
        &load("backlog-overflow", &BTreeMap::new()).unwrap(),
        &st,
        &f,
    );
    assert!(p.refusals().is_empty(), "{:?}", p.findings);
    let text = content(&p, SYSCTL_D_PATH);
    assert!(
        text.contains("# --- profile `backlog-overflow` ---"),
        "{text}"
    );
    assert!(text.contains("# --- profile `high-conn` ---"), "{text}");
    assert!(
        text.contains("net.netfilter.nf_conntrack_max = 262144"),
        "{text}"
    );
    assert!(change_paths(&p).contains(&"/etc/tcto-tune/persisted.d/backlog-overflow.toml"));
    assert!(!change_paths(&p).contains(&"/etc/tcto-tune/persisted.d/high-conn.toml"));
}

#[test]
fn notrack_and_offloads_compose_with_sysctls_and_remove_takes_one_out() {
    let st = state(true);
    let mut f = facts(loadable());
    for p in [high_conn(), notrack_profile()] {
        f = after(&f, &persist(&p, &st, &f));
    }
    let vars = [("iface".to_owned(), "eth0".to_owned())]
        .into_iter()
        .collect();
    let off = load("offload-off", &vars).unwrap();
    // The runtime plan on a host with eth0 warns offload-cpu-cost.
    let mut runtime = crate::plan(&off, &st);
    runtime
        .findings
        .retain(|f| f.code != "offload-unknown-interface");
    runtime.findings.push(Finding::new(
        crate::finding::FindingCode::OffloadCpuCost,
        Severity::Warn,
        "turning off `eth0 tso`",
    ));
    let p = plan_persist(&off, &runtime, &f, &opts());
    // offload-cpu-cost: a diagnostic step refuses unless allowed.
    assert!(
        p.refusals().iter().any(|r| r.code == "offload-cpu-cost"),
        "{p}"
    );
    let p = plan_persist(
        &off,
        &runtime,
        &f,
        &PersistOptions {
            allow: [
                "offload-cpu-cost".to_owned(),
                "offload-unknown-interface".to_owned(),
            ]
            .into_iter()
            .collect(),
            ..opts()
        },
    );
    assert!(p.refusals().is_empty(), "{p}");
    assert!(!change_paths(&p).contains(&"/etc/tcto-tune/persisted.d/trusted-notrack.toml"));
    let unit = content(&p, UNIT_PATH);
    assert!(
        unit.contains("sys-subsystem-net-devices-eth0.device"),
        "{unit}"
    );
    assert!(
        unit.contains("`high-conn`, `offload-off`, `trusted-notrack`"),
        "{unit}"
    );
    let f = after(&f, &p);
    let (list, bad) = persisted(&f, &crate::words::NEUTRAL);
    assert!(bad.is_empty());
    let names: Vec<&str> = list.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["high-conn", "offload-off", "trusted-notrack"]);
    // What the unit applies at boot: both restore parts, no sysctls.
    let boot = load_text(
        ProfileOrigin::File(PathBuf::from("/boot.toml")),
        &entries::boot_profile(&list),
        &BTreeMap::new(),
    )
    .unwrap();
    assert_eq!(boot.notrack, notrack_profile().notrack);
    assert_eq!(boot.offloads, off.offloads);
    assert!(boot.sysctl_targets().is_empty());
    assert!(boot.allow.contains("offload-cpu-cost"));
    // Remove one: only its entry goes; the unit stays for the other.
    let r = plan_remove("trusted-notrack", &f, &opts(), true).unwrap();
    let paths = change_paths(&r);
    assert!(
        paths.contains(&"/etc/tcto-tune/persisted.d/trusted-notrack.toml"),
        "{paths:?}"
    );
    assert!(!paths.contains(&WANTS_PATH), "{paths:?}");
    let gone = r
        .changes
        .iter()
        .find(|c| c.key().ends_with("trusted-notrack.toml"))
        .unwrap();
    assert_eq!(gone.after, Value::Absent);
    let f = after(&f, &r);
    let r = plan_remove("offload-off", &f, &opts(), true).unwrap();
    assert!(r
        .changes
        .iter()
        .any(|c| c.key() == host(WANTS_PATH) && c.after == Value::Absent));
    assert!(matches!(
        plan_remove("nope", &f, &opts(), true),
        Err(PersistError::NotPersisted { .. })
    ));
}

#[test]
fn two_entries_with_different_values_refuse_with_both_names() {
    let st = state(true);
    let f = after(
        &facts(loadable()),
        &persist(&high_conn(), &st, &facts(loadable())),
    );
    let other = load_text(
        ProfileOrigin::File(PathBuf::from("/p/small.toml")),
        "[backlog]\nsomaxconn = 2048\n",
        &BTreeMap::new(),
    )
    .unwrap();
    let p = persist(&other, &st, &f);
    let r: Vec<_> = p
        .refusals()
        .into_iter()
        .filter(|r| r.code == entries::CONFLICT)
        .collect();
    assert_eq!(r.len(), 1, "{p}");
    assert!(r[0].message.contains("`high-conn` and `small` both set net.core.somaxconn: `high-conn` to 4096, `small` to 2048"), "{}", r[0]);
    // Not even --allow makes it go through.
    let p = plan_persist(
        &other,
        &crate::plan(&other, &st),
        &f,
        &PersistOptions {
            allow: [entries::CONFLICT.to_string()].into_iter().collect(),
            ..opts()
        },
    );
    assert!(p.refusals().iter().any(|r| r.code == entries::CONFLICT));
}

#[test]
fn legacy_files_are_migrated_into_entries() {
    let st = state(true);
    let mut f = facts(loadable());
    let hc = high_conn();
    let sysctls = sysctl_d::entries(&hc, &crate::plan(&hc, &st));
    f.existing.insert(
        host(SYSCTL_D_PATH),
        Value::Bytes(sysctl_d::render("high-conn", &sysctls).into_bytes()),
    );
    f.existing.insert(
        host(LEGACY_PERSISTED_PATH),
        Value::Bytes(restore::render(&notrack_profile(), &BTreeSet::new()).into_bytes()),
    );
    let (list, bad) = persisted(&f, &crate::words::NEUTRAL);
    assert!(bad.is_empty(), "{bad:?}");
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].sysctls, sysctls);
    assert_eq!(list[1].notrack, restore::notrack(&notrack_profile()));
    let p = persist(
        &load("backlog-overflow", &BTreeMap::new()).unwrap(),
        &st,
        &f,
    );
    assert!(p.refusals().is_empty(), "{p}");
    let paths = change_paths(&p);
    for e in ["high-conn", "trusted-notrack", "backlog-overflow"] {
        assert!(
            paths.contains(&format!("/etc/tcto-tune/persisted.d/{e}.toml").as_str()),
            "{paths:?}"
        );
    }
    let legacy = p
        .changes
        .iter()
        .find(|c| c.key() == host(LEGACY_PERSISTED_PATH))
        .unwrap();
    assert_eq!(legacy.after, Value::Absent);
}

#[test]
fn a_corrupt_entry_refuses_naming_it_and_can_be_removed() {
    let st = state(true);
    let mut f = facts(loadable());
    let bad = host("/etc/tcto-tune/persisted.d/broken.toml");
    f.entry_files.insert(
        bad.clone(),
        Value::Bytes(b"name = \"broken\"\n[sysctl\n".to_vec()),
    );
    let p = persist(&high_conn(), &st, &f);
    let r = p.refusals();
    assert!(
        r.iter()
            .any(|r| r.code == entries::UNREADABLE && r.message.contains(&bad)),
        "{p}"
    );
    assert!(!change_paths(&p).contains(&"/etc/tcto-tune/persisted.d/broken.toml"));
    let r = plan_remove("broken", &f, &opts(), true).unwrap();
    assert!(r.refusals().is_empty(), "{r}");
    assert_eq!(change_paths(&r), ["/etc/tcto-tune/persisted.d/broken.toml"]);
}

#[test]
fn a_symlink_at_a_target_refuses() {
    let mut f = facts(loadable());
    f.existing
        .insert(host(SYSCTL_D_PATH), Value::Symlink("/etc/shadow".into()));
    let p = persist(&high_conn(), &state(true), &f);
    let r = p.refusals();
    assert_eq!(r.len(), 1, "{:?}", p.findings);
    assert_eq!(r[0].code, codes::TARGET_SYMLINK);
    assert!(r[0].message.contains("/etc/shadow"));
    // Without the link: no such finding (the other tests), and a link
    // where we want a link is fine.
    let mut f = facts(loadable());
    f.existing
        .insert(host(WANTS_PATH), Value::Symlink("/old/unit".into()));
    let p = persist(&notrack_profile(), &state(true), &f);
    assert!(p.refusals().is_empty(), "{:?}", p.findings);
}

#[test]
fn kube_proxy_or_tuned_warns_only_when_sysctls_are_persisted() {
    let mut f = facts(loadable());
    f.managers.push(Manager {
        name: "kube-proxy".into(),
        evidence: "/usr/bin/kube-proxy".into(),
    });
    let p = persist(&high_conn(), &state(true), &f);
    let w: Vec<_> = p
        .findings
        .iter()
        .filter(|x| x.code == codes::RUNTIME_MANAGER)
        .collect();
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].severity, Severity::Warn);
    assert!(w[0].message.contains("kube-proxy"));
    let p = persist(&notrack_profile(), &state(true), &f);
    assert!(!codes(&p).contains(&codes::RUNTIME_MANAGER.as_str()));
    let p = persist(&high_conn(), &state(true), &facts(loadable()));
    assert!(!codes(&p).contains(&codes::RUNTIME_MANAGER.as_str()));
}

#[test]
fn conflicting_file_refuses_through_the_planner() {
    let mut f = facts(loadable());
    f.sysctl_sources.push(SysctlSource {
        dir: "/etc/sysctl.d".into(),
        name: "99-zzz.conf".into(),
        path: host("/etc/sysctl.d/99-zzz.conf"),
        text: "net.core.somaxconn = 1024\n".into(),
        masked: false,
        is_sysctl_conf: false,
    });
    let p = persist(&high_conn(), &state(true), &f);
    let r = p.refusals();
    assert_eq!(r.len(), 1);
    assert!(
        r[0].message.starts_with("/img/etc/sysctl.d/99-zzz.conf:1 "),
        "{}",
        r[0]
    );
    let allowed = plan_persist(
        &high_conn(),
        &crate::plan(&high_conn(), &state(true)),
        &f,
        &PersistOptions {
            allow: [codes::OVERRIDDEN.to_string()].into_iter().collect(),
            ..opts()
        },
    );
    assert!(allowed.refusals().is_empty());
    // The same code in the profile's own `allow = [...]` counts as well.
    let mut profile = high_conn();
    profile.allow.insert(codes::OVERRIDDEN.to_string());
    let by_profile = persist(&profile, &state(true), &f);
    assert!(by_profile.refusals().is_empty(), "{by_profile}");
    assert!(codes(&by_profile).contains(&codes::OVERRIDDEN.as_str()));
}

#[test]
fn diff_of_a_replaced_file() {
    let mut f = facts(loadable());
    f.existing.insert(
        host(MODULES_LOAD_PATH),
        Value::Bytes(b"# old\nnf_conntrack\n".to_vec()),
    );
    let p = persist(&high_conn(), &state(true), &f);
    let c = p
        .changes
        .iter()
        .find(|c| c.key() == host(MODULES_LOAD_PATH))
        .unwrap();
    insta::assert_snapshot!("diff_modules_load", diff(c));
}

#[test]
fn exec_paths_are_checked() {
    assert!(check_exec("/usr/local/bin/tcto-tune").is_ok());
    assert!(check_exec("tcto-tune").is_err());
    assert!(check_exec("/usr/bin/a\"b").is_err());
    assert!(check_exec("/usr/bin/a\nb").is_err());
}

#[test]
fn the_packaged_binary_enables_the_packaged_unit_and_drops_a_stale_copy() {
    let profile = notrack_profile();
    let runtime = crate::plan(&profile, &state(true));
    let packaged = PersistOptions {
        exec: unit::PACKAGED_EXEC.into(),
        ..Default::default()
    };
    let mut f = facts(loadable());
    f.packaged_unit = true;
    // A unit an earlier build-tree persist wrote would shadow the package's.
    f.existing.insert(
        host(UNIT_PATH),
        Value::Bytes(unit::render("old", "/src/target/release/tcto-tune", &[]).into_bytes()),
    );
    let p = plan_persist(&profile, &runtime, &f, &packaged);
    let entry = format!("{PERSISTED_PATH}/{}.toml", profile.name);
    assert_eq!(change_paths(&p), [entry.as_str(), UNIT_PATH, WANTS_PATH]);
    let after = |path: &str| {
        let c = p.changes.iter().find(|c| c.key() == host(path)).unwrap();
        c.after.clone()
    };
    assert_eq!(after(UNIT_PATH), Value::Absent);
    assert_eq!(
        after(WANTS_PATH),
        Value::Symlink(unit::PACKAGED_UNIT_PATH.into())
    );
    assert!(!codes(&p).contains(&unit::codes::UNIT_OWN_PATH.as_str()));
    // The same binary without the package's unit in the root writes its own.
    f.packaged_unit = false;
    let p = plan_persist(&profile, &runtime, &f, &packaged);
    assert!(content(&p, UNIT_PATH).contains("ExecStart=\"/usr/bin/tcto-tune\" apply --persisted"));
    assert!(!codes(&p).contains(&unit::codes::UNIT_OWN_PATH.as_str()));
    // Another binary writes its own and is warned.
    let p = persist(&profile, &state(true), &f);
    assert!(
        codes(&p).contains(&unit::codes::UNIT_OWN_PATH.as_str()),
        "{:?}",
        codes(&p)
    );
}

#[test]
fn a_name_that_is_no_file_name_refuses_and_plans_no_entry() {
    let profile = load_text(
        ProfileOrigin::File(PathBuf::from("/p/x.toml")),
        "name = \"../../evil\"\n[backlog]\nsomaxconn = 2048\n",
        &BTreeMap::new(),
    )
    .unwrap();
    let p = persist(&profile, &state(true), &facts(loadable()));
    assert!(
        p.refusals().iter().any(|r| r.code == codes::BAD_NAME),
        "{p}"
    );
    assert!(
        p.changes.iter().all(|c| !c.key().contains("..")),
        "{:?}",
        change_paths(&p)
    );
    let allowed = plan_persist(
        &profile,
        &crate::plan(&profile, &state(true)),
        &facts(loadable()),
        &PersistOptions {
            allow: [codes::BAD_NAME.to_string()].into_iter().collect(),
            ..opts()
        },
    );
    assert!(allowed.refusals().iter().any(|r| r.code == codes::BAD_NAME));
}

#[test]
fn a_profile_named_like_a_file_has_its_own_entry_next_to_the_other() {
    let st = state(true);
    let named = |name: &str| {
        let mut p = load("backlog-overflow", &BTreeMap::new()).unwrap();
        p.name = name.into();
        p
    };
    let f = after(
        &facts(loadable()),
        &persist(&named("web"), &st, &facts(loadable())),
    );
    // `web.toml` is a valid name: its entry is `web.toml.toml`, and `web`'s
    // entry is neither replaced nor removed.
    let p = persist(&named("web.toml"), &st, &f);
    assert!(p.refusals().is_empty(), "{p}");
    let paths = change_paths(&p);
    assert!(
        paths.contains(&"/etc/tcto-tune/persisted.d/web.toml.toml"),
        "{paths:?}"
    );
    assert!(
        !paths.contains(&"/etc/tcto-tune/persisted.d/web.toml"),
        "{paths:?}"
    );
    let f = after(&f, &p);
    let names: Vec<String> = persisted(&f, &crate::words::NEUTRAL)
        .0
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(names, ["web", "web.toml"]);
    assert!(persisted(&f, &crate::words::NEUTRAL).1.is_empty());
    // Removing one removes its own file only.
    let r = plan_remove("web.toml", &f, &opts(), true).unwrap();
    assert!(r.refusals().is_empty(), "{r}");
    let paths = change_paths(&r);
    assert!(
        paths.contains(&"/etc/tcto-tune/persisted.d/web.toml.toml"),
        "{paths:?}"
    );
    assert!(
        !paths.contains(&"/etc/tcto-tune/persisted.d/web.toml"),
        "{paths:?}"
    );
}

mod hints;
