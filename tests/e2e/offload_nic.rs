//! NIC identity and truthful group readings, against real veth pairs in a
//! private network namespace, with `ethtool -k` as the oracle: rollback
//! follows a renamed NIC and leaves the device now holding its old name
//! alone; a deleted NIC closes its steps as `gone`, before rollback and
//! mid-transaction; `tso` is on only when every changeable member is.
//!
//! Note for scripts: iproute2 parses a bare `a` as `address`; write
//! `ip link set dev a name aold` and `ip link del dev a`.

use tcto_tune_tests::{in_netns, require_root, state_dir_env, Run, TempDir, VETH_AB, VETH_CD};

/// `ethtool -k IFACE`, whole, between markers named `tag`.
fn ethtool_k(iface: &str, tag: &str) -> String {
    format!("echo '<<{tag}'; ethtool -k {iface}; echo '{tag}>>'\n")
}

/// The block printed by [`ethtool_k`] under `tag`, without its first line
/// (`Features for NAME:`, which differs after a rename).
fn block<'a>(r: &'a Run, tag: &str) -> &'a str {
    let start = format!("<<{tag}\n");
    let from = r
        .stdout
        .find(&start)
        .unwrap_or_else(|| panic!("no block {tag}: {r}"));
    let rest = &r.stdout[from + start.len()..];
    let b = &rest[..rest
        .find(&format!("{tag}>>"))
        .unwrap_or_else(|| panic!("{r}"))];
    b.split_once('\n').map_or(b, |(_, body)| body)
}

/// The value `ethtool -k` prints for `name` (a group line or a feature).
fn feature<'a>(block: &'a str, name: &str) -> &'a str {
    block
        .lines()
        .find_map(|l| l.trim().strip_prefix(&format!("{name}: ")))
        .unwrap_or_else(|| panic!("no {name} in\n{block}"))
}

#[test]
fn rollback_follows_a_renamed_nic_and_leaves_the_new_holder_of_its_name_alone() {
    if !require_root("rollback_follows_a_renamed_nic_and_leaves_the_new_holder_of_its_name_alone") {
        return;
    }
    let st = TempDir::new("offload-rename");
    // `b` starts with tso off, so that a rollback acting on the name `a`
    // (now `b`'s) would turn it on.
    let r = in_netns(&format!(
        "{env}{VETH_AB}{VETH_CD}ethtool -K b tso off >/dev/null || exit 21\n{a0}{b0}\
         tcto-tune apply --profile offload-off --set iface=a; echo apply=$?\n\
         ip link set dev a name aold || exit 22\nip link set dev b name a || exit 23\n\
         tcto-tune rollback; echo rollback=$?\n{a1}{b1}tcto-tune history -v --json > {st}/h.json\n",
        env = state_dir_env(&st),
        a0 = ethtool_k("a", "a0"),
        b0 = ethtool_k("b", "b0"),
        a1 = ethtool_k("aold", "a1"),
        b1 = ethtool_k("a", "b1"),
        st = st.path(),
    ));
    assert!(r.stdout.contains("apply=0"), "{r}");
    assert!(r.stdout.contains("rollback=0"), "{r}");
    assert_eq!(
        block(&r, "a1"),
        block(&r, "a0"),
        "the changed NIC, now `aold`, is restored: {r}"
    );
    assert_eq!(
        block(&r, "b1"),
        block(&r, "b0"),
        "the NIC now named `a` is untouched: {r}"
    );
    assert_eq!(
        feature(block(&r, "b1"), "tcp-segmentation-offload"),
        "off",
        "{r}"
    );
    assert!(r.stdout.contains("reverted  aold tso  off -> on"), "{r}");
    assert!(
        r.stdout.contains(
            "is now named `aold`; acting on it there; the `a` here now is another device"
        ),
        "the rename is said: {r}"
    );
    let h = std::fs::read_to_string(format!("{}/h.json", st.path())).unwrap();
    assert!(
        h.contains("\"ifindex\""),
        "the journal records the ifindex: {h}"
    );
}

#[test]
fn rollback_of_a_deleted_nic_closes_its_step_as_gone_and_completes_the_rest() {
    if !require_root("rollback_of_a_deleted_nic_closes_its_step_as_gone_and_completes_the_rest") {
        return;
    }
    let st = TempDir::new("offload-gone");
    let profile = format!("{}/two.toml", st.path());
    std::fs::write(
        &profile,
        "name = \"two\"\n[backlog]\nsomaxconn = 3000\n[[offload]]\niface = \"a\"\ntso = false\n[[offload]]\niface = \"c\"\ngro = true\n",
    )
    .unwrap();
    for force in ["", " --force"] {
        let r = in_netns(&format!(
            "{env}{VETH_AB}{VETH_CD}sysctl -qw net.core.somaxconn=1024\n{c0}\
             tcto-tune apply --profile {profile}; echo apply=$?\n\
             ip link del dev a || exit 22\n\
             ip link add name a type veth peer name b || exit 23\nethtool -K a tso off >/dev/null\n\
             tcto-tune rollback{force}; echo rollback=$?\n\
             sysctl -n net.core.somaxconn\n{c1}ethtool -k a | grep ^tcp-segmentation-offload\n\
             tcto-tune rollback; echo again=$?\ntcto-tune history\n",
            env = state_dir_env(&st),
            c0 = ethtool_k("c", "c0"),
            c1 = ethtool_k("c", "c1"),
        ));
        assert!(r.stdout.contains("apply=0"), "{r}");
        assert!(r.stdout.contains("rollback=0"), "{force}: {r}");
        assert!(r.stdout.contains("gone      a tso"), "{r}");
        assert!(r.stdout.contains("interface `a` (ifindex "), "{r}");
        assert!(
            r.stdout.contains("the `a` here now is another device"),
            "a new `a` is named, not reverted: {r}"
        );
        assert!(
            r.stdout.contains("tcp-segmentation-offload: off"),
            "the new `a` keeps its tso off: {r}"
        );
        assert!(
            !r.stdout.contains("drifted") && !r.stdout.contains("No such device"),
            "{r}"
        );
        assert!(
            r.stdout.lines().any(|l| l == "1024"),
            "somaxconn restored: {r}"
        );
        assert_eq!(
            block(&r, "c1"),
            block(&r, "c0"),
            "the other NIC restored: {r}"
        );
        assert!(
            r.stdout.contains("nothing to roll back") && r.stdout.contains("again=0"),
            "the record is closed: {r}"
        );
        assert!(r.stdout.contains(" undone "), "{r}");
        let _ = std::fs::remove_dir_all(format!("{}/s", st.path()));
    }
}

#[test]
fn a_nic_deleted_mid_transaction_fails_it_and_everything_else_rolls_back() {
    if !require_root("a_nic_deleted_mid_transaction_fails_it_and_everything_else_rolls_back") {
        return;
    }
    let st = TempDir::new("offload-mid");
    let profile = format!("{}/mid.toml", st.path());
    // Steps: somaxconn, c gro, a tso, a gro. `a` is deleted after `a tso`
    // was written and read back, before `a gro` (the 3rd offload write).
    std::fs::write(
        &profile,
        "name = \"mid\"\n[backlog]\nsomaxconn = 3000\n[[offload]]\niface = \"c\"\ngro = true\n[[offload]]\niface = \"a\"\ntso = false\ngro = true\n",
    )
    .unwrap();
    let pause = format!("{}/paused", st.path());
    let r = in_netns(&format!(
        "{env}{VETH_AB}{VETH_CD}sysctl -qw net.core.somaxconn=1024\n{c0}\
         TCTO_TUNE_FAULT_PAUSE_BEFORE_OFFLOAD_WRITE=3:{pause} tcto-tune apply --profile {profile} > {st}/out 2>&1 &\n\
         pid=$!\n\
         i=0; while [ ! -e {pause} ] && [ $i -lt 500 ]; do sleep 0.02; i=$((i+1)); done\n\
         [ -e {pause} ] && echo paused\n\
         ethtool -k a | grep '^tcp-segmentation-offload'\n\
         ip link del dev a || exit 22\nrm -f {pause}\n\
         wait $pid; echo apply=$?\ncat {st}/out\n\
         sysctl -n net.core.somaxconn\n{c1}tcto-tune history\n\
         tcto-tune apply --profile offload-off --set iface=c; echo next=$?\n",
        env = state_dir_env(&st),
        c0 = ethtool_k("c", "c0"),
        c1 = ethtool_k("c", "c1"),
        st = st.path(),
    ));
    assert!(r.stdout.contains("paused"), "{r}");
    assert!(
        r.stdout.contains("tcp-segmentation-offload: off"),
        "a tso was applied before the deletion: {r}"
    );
    assert!(r.stdout.contains("apply=1"), "{r}");
    assert!(
        r.stdout
            .contains("failed: offload a gro: interface `a` (ifindex "),
        "{r}"
    );
    assert!(r.stdout.contains("gone      a tso"), "{r}");
    assert!(r.stdout.contains("gone      a gro"), "{r}");
    assert!(r.stdout.contains("reverted  c gro"), "{r}");
    assert!(r.stdout.contains("every change was reverted"), "{r}");
    assert!(!r.stdout.contains("NOT RESTORED"), "{r}");
    assert!(
        r.stdout.lines().any(|l| l == "1024"),
        "somaxconn restored: {r}"
    );
    assert_eq!(block(&r, "c1"), block(&r, "c0"), "{r}");
    assert!(r.stdout.contains("rolled back"), "{r}");
    // Nothing blocks the next transaction.
    assert!(r.stdout.contains("next=0"), "{r}");
}

#[test]
fn tso_with_sg_off_is_never_ok_on_is_refused_and_rolls_back_whole() {
    if !require_root("tso_with_sg_off_is_never_ok_on_is_refused_and_rolls_back_whole") {
        return;
    }
    let st = TempDir::new("offload-sg");
    let on = format!("{}/on.toml", st.path());
    std::fs::write(
        &on,
        "name = \"on\"\n[[offload]]\niface = \"a\"\ntso = true\n",
    )
    .unwrap();
    let combined = format!("{}/combined.toml", st.path());
    std::fs::write(
        &combined,
        "name = \"combined\"\n[backlog]\nsomaxconn = 3000\n[[offload]]\niface = \"a\"\ntso = true\n",
    )
    .unwrap();
    // 1. sg off with tso requested on: ethtool's group line may say on
    //    (a member outside IPv4/IPv6 TSO stays on) while IPv4 TSO is off.
    // 2. sg off and tso off: apply with --allow writes tso on, the kernel
    //    keeps it off, and everything rolls back to the very same state.
    let r = in_netns(&format!(
        "{env}{VETH_AB}{VETH_CD}sysctl -qw net.core.somaxconn=1024\nethtool -K a sg off >/dev/null || exit 21\n{k1}\
         tcto-tune plan --profile {on}; echo plan=$?\n\
         ethtool -K a tso off >/dev/null || exit 21\n{k2}\
         tcto-tune apply --profile {combined} --allow offload-dependency-off; echo apply=$?\n{k3}\
         sysctl -n net.core.somaxconn\n",
        env = state_dir_env(&st),
        k1 = ethtool_k("a", "k1"),
        k2 = ethtool_k("a", "k2"),
        k3 = ethtool_k("a", "k3"),
    ));
    let k1 = block(&r, "k1");
    assert_eq!(
        feature(k1, "tx-tcp-segmentation"),
        "off [requested on]",
        "{r}"
    );
    assert!(!r.stdout.contains("ok      a tso"), "IPv4 TSO is off: {r}");
    assert!(r.stdout.contains("change  a tso"), "{r}");
    assert!(r.stdout.contains("plan=3"), "{r}");
    assert!(
        r.stdout
            .contains("refuse [offload-dependency-off] `a tso` cannot turn on while `sg` is off"),
        "{r}"
    );
    assert!(
        r.stdout
            .contains("hint: turn it on first: `ethtool -K a sg on`"),
        "{r}"
    );
    assert!(r.stdout.contains("apply=1"), "{r}");
    assert!(
        r.stdout
            .contains("`a tso` is still not on after setting it: `sg` is off"),
        "{r}"
    );
    assert!(r.stdout.contains("every change was reverted"), "{r}");
    assert_eq!(
        block(&r, "k3"),
        block(&r, "k2"),
        "ethtool -k as before, requests included: {r}"
    );
    assert!(
        r.stdout.lines().any(|l| l == "1024"),
        "somaxconn restored: {r}"
    );
}

#[test]
fn the_hint_of_offload_dependency_off_runs_and_then_tso_turns_on() {
    if !require_root("the_hint_of_offload_dependency_off_runs_and_then_tso_turns_on") {
        return;
    }
    let st = TempDir::new("offload-sg-hint");
    let on = format!("{}/on.toml", st.path());
    std::fs::write(
        &on,
        "name = \"on\"\n[[offload]]\niface = \"a\"\ntso = true\n",
    )
    .unwrap();
    let r = in_netns(&format!(
        "{env}{VETH_AB}{VETH_CD}ethtool -K a sg off tso off >/dev/null || exit 21\n\
         tcto-tune plan --profile {on} > {st}/plan.txt; echo plan=$?\n\
         hint=$(sed -n 's/.*hint: turn it on first: `\\(ethtool[^`]*\\)`.*/\\1/p' {st}/plan.txt)\n\
         echo \"hint=$hint\"; $hint >/dev/null; echo hint_rc=$?\n\
         tcto-tune apply --profile {on}; echo apply=$?\n{k}",
        env = state_dir_env(&st),
        st = st.path(),
        k = ethtool_k("a", "k"),
    ));
    assert!(r.stdout.contains("plan=3"), "{r}");
    assert!(r.stdout.contains("hint=ethtool -K a sg on"), "{r}");
    assert!(r.stdout.contains("hint_rc=0"), "{r}");
    assert!(r.stdout.contains("apply=0"), "{r}");
    let k = block(&r, "k");
    for f in ["tx-tcp-segmentation", "tx-tcp6-segmentation"] {
        assert_eq!(feature(k, f), "on", "{f}: {r}");
    }
}

#[test]
fn rollback_from_another_namespace_touches_nothing_and_a_reboot_leaves_nothing_to_restore() {
    if !require_root(
        "rollback_from_another_namespace_touches_nothing_and_a_reboot_leaves_nothing_to_restore",
    ) {
        return;
    }
    let st = TempDir::new("offload-scope");
    // The same state dir seen from a second namespace that also has an `a`
    // (same name, same ifindex numbering): its `a` must not be touched.
    // Then a simulated reboot (another boot id, bind-mounted in a private
    // mount namespace): offload changes do not survive one.
    let r = in_netns(&format!(
        "{env}{VETH_AB}\
         tcto-tune apply --profile offload-off --set iface=a; echo apply=$?\n\
         unshare -n sh -c 'ip link add name a type veth peer name b; ethtool -K a tso off; \
           tcto-tune rollback; echo other=$?; ethtool -k a | grep ^tcp-segmentation-offload'\n\
         echo fake-boot-id > {st}/boot_id\n\
         unshare -m sh -c 'mount --bind {st}/boot_id /proc/sys/kernel/random/boot_id && tcto-tune rollback; echo rebooted=$?'\n\
         tcto-tune rollback; echo again=$?\n",
        env = state_dir_env(&st),
        st = st.path(),
    ));
    assert!(r.stdout.contains("apply=0"), "{r}");
    assert!(r.stdout.contains("other=1"), "{r}");
    assert!(r.stdout.contains("NOT RESTORED"), "{r}");
    assert!(r.stdout.contains("rollback` inside that namespace"), "{r}");
    assert!(
        r.stdout.contains("tcp-segmentation-offload: off"),
        "the other namespace's `a` was left as it was: {r}"
    );
    assert!(r.stdout.contains("rebooted=0"), "{r}");
    assert!(r.stdout.contains("before the last reboot"), "{r}");
    assert!(
        r.stdout.contains("nothing to roll back") && r.stdout.contains("again=0"),
        "{r}"
    );
}
