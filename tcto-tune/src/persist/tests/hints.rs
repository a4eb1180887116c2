//! Hints of the persist planner that name a removal: the removal they name
//! exists and does what the hint says (the CLI runs them as printed, e2e).

use super::*;
use std::collections::BTreeSet;

const A: &str = "/etc/tcto-tune/persisted.d/a.toml";
const B: &str = "/etc/tcto-tune/persisted.d/b.toml";

fn corrupt(f: &mut PersistFacts, path: &str) {
    f.entry_files
        .insert(host(path), Value::Bytes(b"garbage\n".to_vec()));
}

fn small() -> Profile {
    load_text(
        ProfileOrigin::File(PathBuf::from("/p/small.toml")),
        "[backlog]\nsomaxconn = 2048\n",
        &BTreeMap::new(),
    )
    .unwrap()
}

#[test]
fn two_unreadable_entries_never_block_each_others_removal() {
    let st = state(true);
    // high-conn persisted, then two entries broke.
    let mut f = after(
        &facts(loadable()),
        &persist(&high_conn(), &st, &facts(loadable())),
    );
    corrupt(&mut f, A);
    corrupt(&mut f, B);
    let p = plan_remove("a", &f, &opts(), true).unwrap();
    assert!(p.refusals().is_empty(), "{p}");
    // a's entry goes; nothing rendered from the entries changes (rendered
    // without b, sysctl.d would lose what b persists).
    assert_eq!(change_paths(&p), [A], "{p}");
    assert_eq!(p.changes[0].after, Value::Absent);
    let warn: Vec<_> = p
        .findings
        .iter()
        .filter(|w| w.code == entries::UNREADABLE)
        .collect();
    assert_eq!(warn.len(), 1, "{p}");
    assert_eq!(warn[0].severity, Severity::Warn);
    assert!(warn[0].message.contains(&host(B)), "{}", warn[0]);
    assert!(
        warn[0].message.contains("removes its entry only"),
        "{}",
        warn[0]
    );
    assert!(warn[0]
        .hint
        .as_deref()
        .unwrap()
        .contains("persisted profile `b`"));
    // After it, b's removal is an ordinary one: every file rendered again
    // from what is left (high-conn).
    let mut f2 = f.clone();
    f2.entry_files.remove(&host(A));
    let p = plan_remove("b", &f2, &opts(), true).unwrap();
    assert!(p.refusals().is_empty(), "{p}");
    assert_eq!(change_paths(&p), [B], "the rest already as rendered: {p}");
    // Persisting anything while one is unreadable still refuses.
    let p = persist(&high_conn(), &st, &f);
    assert!(
        p.refusals().iter().any(|r| r.code == entries::UNREADABLE),
        "{p}"
    );
}

#[test]
fn a_readable_entry_is_removed_alone_while_another_is_unreadable() {
    let st = state(true);
    let f = after(
        &facts(loadable()),
        &persist(&high_conn(), &st, &facts(loadable())),
    );
    let mut f = f;
    corrupt(&mut f, B);
    let p = plan_remove("high-conn", &f, &opts(), true).unwrap();
    assert!(p.refusals().is_empty(), "{p}");
    assert_eq!(
        change_paths(&p),
        ["/etc/tcto-tune/persisted.d/high-conn.toml"],
        "sysctl.d is left as it is: {p}"
    );
    // Without the broken one, the removal renders the files again.
    f.entry_files.remove(&host(B));
    let p = plan_remove("high-conn", &f, &opts(), true).unwrap();
    assert!(change_paths(&p).contains(&SYSCTL_D_PATH), "{p}");
}

#[test]
fn an_entry_named_like_anothers_file_is_not_taken_for_it() {
    // `a.toml.toml` is profile `a.toml`'s entry, not `a`'s.
    let mut f = facts(loadable());
    corrupt(&mut f, "/etc/tcto-tune/persisted.d/a.toml.toml");
    let e = plan_remove("a", &f, &opts(), true).unwrap_err();
    assert!(matches!(e, PersistError::NotPersisted { .. }), "{e}");
    corrupt(&mut f, A);
    let p = plan_remove("a", &f, &opts(), true).unwrap();
    assert_eq!(change_paths(&p), [A], "{p}");
    let p = plan_remove("a.toml", &f, &opts(), true).unwrap();
    assert_eq!(
        change_paths(&p),
        ["/etc/tcto-tune/persisted.d/a.toml.toml"],
        "{p}"
    );
}

#[test]
fn remove_of_a_linked_entry_removes_the_link_itself() {
    let mut f = facts(loadable());
    f.entry_files
        .insert(host(A), Value::Symlink("/etc/shadow".into()));
    let p = persist(&high_conn(), &state(true), &f);
    let r = p.refusals();
    assert!(
        r.iter().any(|r| r.code == entries::UNREADABLE
            && r.hint.as_deref().unwrap().contains("persisted profile `a`")),
        "{p}"
    );
    let p = plan_remove("a", &f, &opts(), true).unwrap();
    assert!(p.refusals().is_empty(), "{p}");
    assert_eq!(change_paths(&p), [A], "{p}");
    let c = &p.changes[0];
    // The link is journaled as a link (rollback puts it back) and removed.
    assert_eq!(c.before, Value::Symlink("/etc/shadow".into()));
    assert_eq!(c.after, Value::Absent);
    // With another entry unreadable too.
    corrupt(&mut f, B);
    let p = plan_remove("a", &f, &opts(), true).unwrap();
    assert_eq!(change_paths(&p), [A], "{p}");
    assert_eq!(p.changes[0].before, Value::Symlink("/etc/shadow".into()));
    // A link at another entry is never removed by a removal.
    let p = plan_remove("b", &f, &opts(), true).unwrap();
    assert_eq!(change_paths(&p), [B], "{p}");
}

#[test]
fn a_conflict_while_persisting_names_only_the_removal_that_exists() {
    let st = state(true);
    let f = after(
        &facts(loadable()),
        &persist(&high_conn(), &st, &facts(loadable())),
    );
    let p = persist(&small(), &st, &f);
    let c: Vec<_> = p
        .refusals()
        .into_iter()
        .filter(|r| r.code == entries::CONFLICT)
        .collect();
    assert_eq!(c.len(), 1, "{p}");
    let hint = c[0].hint.as_deref().unwrap();
    assert!(
        hint.contains(
            "to keep 2048: remove the persisted profile `high-conn`, then persist `small` again"
        ),
        "{hint}"
    );
    assert!(!hint.contains("profile `small`"), "{hint}");
    assert!(hint.contains("persist `small` again"), "{hint}");
    assert!(
        hint.contains("to keep 4096: set net.core.somaxconn to 4096 in `small`"),
        "{hint}"
    );
    // Between two persisted entries (status, `apply --persisted`): either.
    let both = persisted(&f, &crate::words::NEUTRAL).0;
    let mut other =
        Persisted::from_profile(&small(), &crate::plan(&small(), &st), &BTreeSet::new());
    other.name = "small".into();
    let mut list = both.clone();
    list.push(other);
    let c = entries::conflicts(&list, &crate::words::NEUTRAL);
    let hint = c[0].hint.as_deref().unwrap();
    assert!(
        hint.contains("`high-conn`") && hint.contains("`small`"),
        "{hint}"
    );
}

#[test]
fn a_directory_at_an_entrys_name_is_never_removed_and_its_hint_moves_it_out() {
    let mut f = facts(loadable());
    f.entry_files
        .insert(host(A), Value::Text("a directory".into()));
    let p = persist(&high_conn(), &state(true), &f);
    let r: Vec<_> = p
        .refusals()
        .into_iter()
        .filter(|r| r.code == entries::UNREADABLE)
        .collect();
    assert_eq!(r.len(), 1, "{p}");
    assert!(
        r[0].message.contains("a directory, not a regular file"),
        "{}",
        r[0]
    );
    let hint = r[0].hint.as_deref().unwrap();
    assert!(
        hint.contains(&format!("`mv {} {}.aside`", host(A), host(A))),
        "{hint}"
    );
    assert!(
        !hint.contains("persisted profile"),
        "no removal named: {hint}"
    );
    // `--remove a` says what it is rather than planning a removal the
    // file backend would refuse half-way.
    let e = plan_remove("a", &f, &opts(), true).unwrap_err();
    assert!(matches!(e, PersistError::NotAFile { .. }), "{e}");
    assert!(e.hint().unwrap().contains("`mv "), "{e}");
    // Removing another entry leaves it where it is.
    corrupt(&mut f, B);
    let p = plan_remove("b", &f, &opts(), true).unwrap();
    assert_eq!(change_paths(&p), [B], "{p}");
}

/// A removal made while another entry was unreadable left the rendered
/// files as they were (they still persist the removed profile's sysctls).
/// Once the unreadable one is gone by hand (a FIFO moved out, a file
/// fixed), the warning's hint names the same removal again, and it
/// renders the files without the profile instead of saying "no persisted
/// profile" (which left sysctl.d persisting it with no way but a persist).
#[test]
fn a_removal_left_unrendered_by_an_unreadable_entry_is_finished_by_running_it_again() {
    let (_, f2) = high_conn_and_keep_persisted();
    assert!(sysctl_d_text(&f2).contains("tcp_tw_reuse"));
    let mut f3 = f2.clone();
    corrupt(&mut f3, B);
    let p = plan_remove("keep", &f3, &opts(), true).unwrap();
    assert_eq!(
        change_paths(&p),
        ["/etc/tcto-tune/persisted.d/keep.toml"],
        "{p}"
    );
    let hint = p.findings[0].hint.as_deref().unwrap();
    assert!(
        hint.ends_with(
            "; once it is fixed or gone, a removal of the persisted profile `keep` again renders them without `keep`"
        ),
        "{hint}"
    );
    // b is moved out by hand: every entry reads again, but sysctl.d still
    // persists keep's sysctl.
    let mut f4 = after(&f3, &p);
    f4.entry_files.remove(&host(B));
    assert!(sysctl_d_text(&f4).contains("tcp_tw_reuse"));
    let p = plan_remove("keep", &f4, &opts(), true).expect("the removal finishes");
    assert!(p.refusals().is_empty(), "{p}");
    assert!(change_paths(&p).contains(&SYSCTL_D_PATH), "{p}");
    let f5 = after(&f4, &p);
    assert!(!sysctl_d_text(&f5).contains("tcp_tw_reuse"));
    assert!(sysctl_d_text(&f5).contains("somaxconn"));
    // Then it is done: the same removal again, and a name no file names,
    // are "not persisted" as before.
    for name in ["keep", "nosuch"] {
        assert!(
            matches!(
                plan_remove(name, &f5, &opts(), true),
                Err(PersistError::NotPersisted { .. })
            ),
            "{name}"
        );
    }
}

/// `high-conn`, then `keep` (`small_other`), persisted one after the
/// other: the host state and the facts after both.
fn high_conn_and_keep_persisted() -> (SystemState, PersistFacts) {
    let mut st = state(true);
    st.sysctls
        .insert("net.ipv4.tcp_tw_reuse".into(), SysctlReading::rw("2"));
    let f0 = facts(loadable());
    let f1 = after(&f0, &persist(&high_conn(), &st, &f0));
    let f2 = after(&f1, &persist(&small_other(), &st, &f1));
    (st, f2)
}

fn small_other() -> Profile {
    load_text(
        ProfileOrigin::File(PathBuf::from("/p/keep.toml")),
        "[client]\ntcp_tw_reuse = { exact = 1, reason = \"r\" }\n",
        &BTreeMap::new(),
    )
    .unwrap()
}

fn sysctl_d_text(f: &PersistFacts) -> String {
    match &f.existing[&host(SYSCTL_D_PATH)] {
        Value::Bytes(b) => String::from_utf8(b.clone()).unwrap(),
        other => panic!("{other:?}"),
    }
}

/// `plan --diff` (`sysctl_d_diff`) is the diff of what persist writes: the
/// same diff as from the file before to the file after persist's plan, or
/// none when persist refuses. While an entry cannot be read, persist
/// refuses and writes nothing (it never drops that entry's lines); the
/// diff used to show them removed. What it says instead is the entry.
#[test]
fn the_sysctl_d_diff_is_what_persist_writes_while_an_entry_is_unreadable() {
    let (st, f2) = high_conn_and_keep_persisted();
    let profile = load("backlog-overflow", &BTreeMap::new()).unwrap();
    let runtime = crate::plan(&profile, &st);
    for broken in [false, true] {
        let mut f = f2.clone();
        if broken {
            corrupt(&mut f, "/etc/tcto-tune/persisted.d/keep.toml");
        }
        let plan = plan_persist(&profile, &runtime, &f, &opts());
        let written = if plan.refusals().is_empty() {
            after(&f, &plan)
        } else {
            f.clone()
        };
        let (before, now) = (sysctl_d_text(&f), sysctl_d_text(&written));
        let want = if before == now {
            String::new()
        } else {
            sysctl_d::unified_diff(SYSCTL_D_PATH, Some(&before), Some(&now))
        };
        let diff = sysctl_d_diff(&profile, &runtime, &f);
        assert_eq!(diff, want, "broken: {broken}\n{plan}");
        let unreadable = unreadable_entries(&f);
        if broken {
            assert!(diff.is_empty(), "persist refuses: {plan}");
            assert!(now.contains("net.ipv4.tcp_tw_reuse = 1"), "{now}");
            assert_eq!(unreadable.len(), 1, "{unreadable:?}");
            assert!(unreadable[0].contains(&host("/etc/tcto-tune/persisted.d/keep.toml")));
            assert!(
                plan.refusals().iter().any(|r| r.message == unreadable[0]),
                "the same words as persist's refusal: {plan}"
            );
        } else {
            assert!(
                diff.contains("+# --- profile `backlog-overflow` ---"),
                "{diff}"
            );
            assert!(unreadable.is_empty(), "{unreadable:?}");
        }
    }
}
