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

/// Run `script` in a private mount namespace (inside the test's network
/// namespace) where each of `keys` (paths below /proc/sys) is bind-mounted
/// read-only over itself: a write that should never happen fails there with
/// EROFS instead of changing the host, so a bug shows as a failed test, not
/// a changed machine. The mode bits stay 0644, so tcto-tune still sees the
/// keys as writable, exactly as in a container.
fn sandboxed(keys: &[&str], script: &str) -> String {
    let binds: String = keys
        .iter()
        .map(|k| format!("mount --bind {k} {k} && mount -o remount,bind,ro {k} || exit 9\n"))
        .collect();
    format!("unshare -m sh -c '\n{binds}{script}'")
}

fn host_sysctl(key: &str) -> String {
    let r = tcto_tune_tests::on_host(&format!("sysctl -n {key}"));
    assert_eq!(r.code, 0, "{r}");
    r.stdout.trim_end().to_owned()
}

#[test]
fn a_host_wide_key_is_not_written_from_a_child_namespace() {
    if !require_root("a_host_wide_key_is_not_written_from_a_child_namespace") {
        return;
    }
    let dir = TempDir::new("hostwide");
    let d = dir.path();
    let before = host_sysctl("vm.swappiness");
    let want = if before == "59" { 58 } else { 59 };
    std::fs::write(
        format!("{d}/p.toml"),
        format!("name = \"swap\"\n[sysctl]\n\"vm.swappiness\" = {want}\n\"net.ipv4.tcp_fin_timeout\" = 31\n"),
    )
    .unwrap();
    let r = in_netns(&sandboxed(
        &["/proc/sys/vm/swappiness"],
        &format!(
            "export TCTO_TUNE_STATE_DIR={d}/s\n\
             tcto-tune plan --profile {d}/p.toml; echo plan=$?\n\
             tcto-tune apply --profile {d}/p.toml; echo refused=$?\n\
             tcto-tune apply --profile {d}/p.toml --allow key-outside-scope; echo apply=$?\n\
             echo fin=$(sysctl -n net.ipv4.tcp_fin_timeout)\n\
             tcto-tune apply --profile {d}/p.toml --allow key-outside-scope --allow key-host-wide; echo forced=$?\n"
        ),
    ));
    assert_eq!(
        host_sysctl("vm.swappiness"),
        before,
        "the host's value: {r}"
    );
    assert!(
        r.stdout.contains("plan=3") && r.stdout.contains("refused=3"),
        "{r}"
    );
    assert!(
        r.stdout
            .contains("refuse [key-outside-scope] `vm.swappiness` is outside `net.`"),
        "{r}"
    );
    let skip = r
        .stdout
        .lines()
        .find(|l| l.starts_with("skip") && l.contains("vm.swappiness"))
        .unwrap_or_else(|| panic!("no skip line: {r}"));
    assert!(
        skip.contains("would change the host's value [key-host-wide]"),
        "{r}"
    );
    // Allowed outside `net.`, it is still skipped as host-wide; the
    // namespace's own key is applied.
    assert!(
        r.stdout.contains("apply=0") && r.stdout.contains("fin=31"),
        "{r}"
    );
    assert!(
        r.stdout.contains("set  net.ipv4.tcp_fin_timeout") && !r.stdout.contains("set  vm."),
        "{r}"
    );
    // The control: with both allowances tcto-tune does try, and the
    // read-only bind mount is what stops it, so the sandbox holds and the
    // skip above is what kept the host's value.
    assert!(r.stdout.contains("forced=1"), "{r}");
    assert!(r.stdout.contains("Read-only file system"), "{r}");
}

#[test]
fn a_key_that_runs_a_program_is_refused_even_with_allow() {
    if !require_root("a_key_that_runs_a_program_is_refused_even_with_allow") {
        return;
    }
    let dir = TempDir::new("corepat");
    let d = dir.path();
    let before = host_sysctl("kernel.core_pattern");
    std::fs::write(
        format!("{d}/evil.toml"),
        "name = \"evil\"\n[sysctl]\n\"kernel.core_pattern\" = \"|/tmp/evil %p\"\n",
    )
    .unwrap();
    // The same through a variable filled with --set.
    std::fs::write(
        format!("{d}/var.toml"),
        "name = \"var\"\n[variables]\npattern = { description = \"x\" }\n[sysctl]\n\"kernel.core_pattern\" = \"${pattern}\"\n",
    )
    .unwrap();
    std::fs::write(
        format!("{d}/allow.toml"),
        "name = \"allow\"\nallow = [\"key-runs-program\"]\n[sysctl]\n\"kernel.modprobe\" = \"/tmp/evil\"\n",
    )
    .unwrap();
    // A persisted entry edited by hand: persist would render its sysctls
    // into sysctl.d and the boot unit reads it, so both must refuse it.
    std::fs::create_dir_all(format!("{d}/img/etc/tcto-tune/persisted.d")).unwrap();
    std::fs::write(
        format!("{d}/img/etc/tcto-tune/persisted.d/evil.toml"),
        "name = \"evil\"\nallow = [\"key-outside-scope\", \"key-host-wide\"]\norder = [\"kernel.core_pattern\"]\n\
         [sysctl.\"kernel.core_pattern\"]\nexact = \"|/tmp/evil %p\"\n\
         [[notrack]]\nfrom = \"10.0.1.0/24\"\nto = \"10.0.2.0/24\"\nport = 8080\n",
    )
    .unwrap();
    let all = "--allow key-outside-scope --allow key-host-wide --allow not-writable-here --allow unknown-sysctl";
    let r = in_netns(&sandboxed(
        &["/proc/sys/kernel/core_pattern"],
        &format!(
            "export TCTO_TUNE_STATE_DIR={d}/s\n\
             tcto-tune plan --profile {d}/evil.toml {all}; echo plan=$?\n\
             tcto-tune apply --profile {d}/evil.toml {all}; echo apply=$?\n\
             tcto-tune apply --profile {d}/evil.toml {all} --dry-run >/dev/null; echo dry=$?\n\
             tcto-tune apply --profile {d}/var.toml --set \"pattern=|/tmp/evil %p\" {all} >/dev/null; echo set=$?\n\
             tcto-tune apply --profile {d}/evil.toml --allow key-runs-program; echo flag=$?\n\
             tcto-tune plan --profile {d}/allow.toml; echo listed=$?\n\
             tcto-tune apply --persisted --root {d}/img 2>&1 >/dev/null; echo persisted=$?\n\
             tcto-tune persist --profile {d}/evil.toml --root {d}/img {all} >/dev/null; echo persist=$?\n\
             tcto-tune persist --profile high-conn --root {d}/img --allow key-host-wide >/dev/null 2>&1; echo other=$?\n\
             ls {d}/img/etc; ls {d}/s/tx 2>/dev/null | wc -l | sed s/^/records=/\n"
        ),
    ));
    assert_eq!(host_sysctl("kernel.core_pattern"), before, "{r}");
    for (what, rc) in [
        ("plan", 3),
        ("apply", 3),
        ("dry", 3),
        ("set", 3),
        ("flag", 2),
        ("listed", 1),
        ("persist", 3),
        // Persisting another profile would re-render sysctl.d from every
        // entry, the hand-edited one too: refused, naming it.
        ("other", 3),
    ] {
        assert!(r.stdout.contains(&format!("{what}={rc}\n")), "{what}: {r}");
    }
    assert!(
        r.stdout
            .contains("refuse [key-runs-program] `kernel.core_pattern = |/tmp/evil %p` would make the kernel run a program"),
        "{r}"
    );
    assert!(!r.stdout.contains("(allowed)"), "{r}");
    assert!(
        r.stderr.contains("`key-runs-program` can never be allowed"),
        "{r}"
    );
    assert!(
        r.stderr
            .contains("`key-runs-program` in `allow` can never be allowed"),
        "{r}"
    );
    // The refusal's hint never suggests an `--allow` that cannot work.
    assert!(
        r.stderr.contains(
            "hint: the findings say why; `key-runs-program` can never be allowed: remove the key from the profile"
        ),
        "{r}"
    );
    assert!(!r.stderr.contains("pass `--allow key-runs-program`"), "{r}");
    // The boot path: `apply --persisted` is refused by the same check.
    let persisted = r
        .stdout
        .lines()
        .find(|l| l.starts_with("persisted="))
        .unwrap();
    // The boot path refuses the hand-edited entry, naming it (exit 1, as
    // for any unreadable entry), before any change.
    assert_eq!(persisted, "persisted=1", "{r}");
    assert!(
        r.stdout.contains("persisted.d/evil.toml") && r.stdout.contains("is never persisted"),
        "{r}"
    );
    assert!(
        r.stdout.contains("records=0"),
        "no transaction was even started: {r}"
    );
    assert!(!r.stdout.contains("sysctl.d"), "persist wrote nothing: {r}");
    assert_eq!(host_sysctl("kernel.core_pattern"), before, "{r}");
}

#[test]
fn escape_sequences_in_a_process_name_never_reach_the_terminal() {
    if !require_root("escape_sequences_in_a_process_name_never_reach_the_terminal") {
        return;
    }
    // A process renames itself (prctl(PR_SET_NAME), no privilege needed)
    // to an ESC sequence plus BEL and listens; root runs diagnose.
    let r = in_netns(
        "tcto-lab listen --port 8080 --backlog 16 --comm \"$(printf 'x\\033[31mRED\\007')\" > /tmp/.lab-$$ 2>&1 &\n\
         for i in $(seq 50); do grep -q ready /tmp/.lab-$$ 2>/dev/null && break; sleep 0.05; done\n\
         rm -f /tmp/.lab-$$\n\
         cat /proc/[0-9]*/comm 2>/dev/null | grep -a RED | od -c | head -1\n\
         ip link add \"$(printf 'v\\033[2Jx')\" type veth peer name vpeer || echo no-veth\n\
         echo ---\n\
         tcto-tune diagnose --interval 0s --port 8080\n\
         tcto-tune plan --profile offload-off --set iface=eth9\n\
         echo ---\n\
         tcto-tune diagnose --interval 0s --port 8080 --json",
    );
    assert_eq!(r.code, 0, "{r}");
    let mut parts = r.stdout.split("---\n");
    let (comm, text, json) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    // The oracle: the kernel really holds the escape in the name.
    assert!(comm.contains("033") && comm.contains("\\a"), "{r}");
    assert!(!text.contains('\x1b') && !text.contains('\x07'), "{r:?}");
    assert!(
        text.contains("x\\x1b[31mRED\\x07"),
        "shown escaped, as ps and ip do: {r}"
    );
    // An interface name may hold ESC too (the kernel refuses only `/`, `:`
    // and whitespace): in the interface list, and in the hint that names
    // the interfaces this namespace has.
    assert!(!r.stdout.contains("no-veth"), "{r}");
    assert!(text.contains("  v\\x1b[2Jx: rx_dropped"), "{r}");
    assert!(
        text.contains("offload-unknown-interface") && text.contains("v\\x1b[2Jx"),
        "{r}"
    );
    // JSON escapes control characters by construction.
    assert!(!json.contains('\x1b') && !json.contains('\x07'), "{r:?}");
    let doc: serde_json::Value = serde_json::from_str(json).expect("JSON");
    let names: Vec<&str> = doc["listeners"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l["process"]["name"].as_str())
        .collect();
    assert_eq!(names, vec!["x\x1b[31mRED\x07"], "{r}");
}

#[test]
fn a_refused_persisted_file_says_where_its_allowances_live() {
    if !require_root("a_refused_persisted_file_says_where_its_allowances_live") {
        return;
    }
    let dir = TempDir::new("persistallow");
    let d = dir.path();
    std::fs::create_dir_all(format!("{d}/img")).unwrap();
    let args = "--profile trusted-notrack --set frontend=10.0.1.0/24 --set backend=10.0.2.0/24 --set port=8080";
    // At boot a stateful filter (policy drop, only `ct state established`
    // accepted) would drop the untracked flow: `apply --persisted` refuses.
    // It takes no `--allow`: the hint must not offer one there, and
    // following it (persisting again with `--allow`) must work as printed.
    let r = in_netns(&format!(
        "tcto-tune --state-dir {d}/s persist {args} --root {d}/img >/dev/null; echo persist=$?\n\
         nft add table inet filter\n\
         nft add chain inet filter input '{{ type filter hook input priority 0; policy drop; }}'\n\
         nft add rule inet filter input ct state established,related accept\n\
         tcto-tune --state-dir {d}/s apply --persisted --root {d}/img --dry-run; echo rc=$?\n\
         tcto-tune --state-dir {d}/s persist {args} --allow notrack-breaks-stateful-filter --root {d}/img >/dev/null; echo again=$?\n\
         tcto-tune --state-dir {d}/s apply --persisted --root {d}/img --dry-run >/dev/null; echo rc=$?"
    ));
    assert!(
        r.stdout.contains("persist=0\n")
            && r.stdout.contains("rc=3\n")
            && r.stdout.contains("again=0\n")
            && r.stdout.ends_with("rc=0\n"),
        "{r}"
    );
    assert!(
        r.stderr
            .contains("persist the profile again with `--allow notrack-breaks-stateful-filter`")
            && r.stderr
                .contains(&format!("{d}/img/etc/tcto-tune/persisted.d")),
        "{r}"
    );
    assert!(!r.stderr.contains("apply --persisted --allow"), "{r}");
}

#[test]
fn a_stray_copy_of_a_record_never_makes_apply_overwrite_another() {
    if !require_root("a_stray_copy_of_a_record_never_makes_apply_overwrite_another") {
        return;
    }
    let dir = TempDir::new("stray");
    let d = dir.path();
    let k = "net.ipv4.tcp_max_syn_backlog";
    // Three transactions, each from a different prior value; then a copy
    // of the first under a zero-padded name, which used to sort as the
    // newest and make the fourth apply take id 000002 and rename over it.
    let r = in_netns(&format!(
        "export TCTO_TUNE_STATE_DIR={d}/s\n\
         for i in 1 2 3; do sysctl -qw {k}=$((1000+i)); tcto-tune apply --profile backlog-overflow >/dev/null || echo apply$i=failed; done\n\
         cp {d}/s/tx/000001.json {d}/s/tx/0000001.json\n\
         md5sum {d}/s/tx/00000[123].json > {d}/before\n\
         sysctl -qw {k}=1500\n\
         tcto-tune apply --profile backlog-overflow >/dev/null; echo apply4=$?\n\
         md5sum -c --quiet {d}/before && echo earlier=identical\n\
         ls {d}/s/tx | tr '\\n' ' '; echo\n\
         tcto-tune rollback >/dev/null; echo undo4=$(sysctl -n {k})\n\
         for i in 3 2 1; do tcto-tune rollback --force >/dev/null; echo undo$i=$(sysctl -n {k}); done"
    ));
    assert!(!r.stdout.contains("failed"), "{r}");
    assert!(r.stdout.contains("apply4=0"), "{r}");
    assert!(r.stdout.contains("earlier=identical"), "{r}");
    assert!(
        r.stdout
            .contains("0000001.json 000001.json 000002.json 000003.json 000004.json"),
        "the new record is 000004, the copy left alone: {r}"
    );
    for (undo, prior) in [("4", "1500"), ("3", "1003"), ("2", "1002"), ("1", "1001")] {
        assert!(
            r.stdout.contains(&format!("undo{undo}={prior}\n")),
            "rollback of {undo} restores {prior}: {r}"
        );
    }
}

#[test]
fn a_tx_directory_that_is_a_link_or_not_ours_is_refused_and_the_hint_runs() {
    if !require_root("a_tx_directory_that_is_a_link_or_not_ours_is_refused_and_the_hint_runs") {
        return;
    }
    let dir = TempDir::new("unsafe-tx");
    let d = dir.path();
    let tt = format!("tcto-tune --state-dir '{d}/s d'");
    // The journal's records moved elsewhere and `tx` made a link to them;
    // then `tx` owned by someone else; then writable by others. Each time
    // every command refuses before any change, and the hint's `mv` runs.
    let r = in_netns(&format!(
        "{SEED}{tt} apply --profile backlog-overflow >/dev/null || exit 90\n\
         mv '{d}/s d/tx' {d}/else && ln -s {d}/else '{d}/s d/tx'\n\
         for how in link owner mode; do\n\
           if [ $how = owner ]; then mkdir -m 700 '{d}/s d/tx' && chown 4242 '{d}/s d/tx'; fi\n\
           if [ $how = mode ]; then mkdir -m 700 '{d}/s d/tx' && chmod 777 '{d}/s d/tx'; fi\n\
           {tt} apply --profile high-conn 2>{d}/err; echo \"$how apply=$?\"\n\
           {tt} history >/dev/null 2>&1; echo \"$how history=$?\"\n\
           {tt} rollback >/dev/null 2>&1; echo \"$how rollback=$?\"\n\
           cat {d}/err\n\
           cmd=$(grep '^hint:' {d}/err | grep -o '`mv [^`]*`' | tr -d '`')\n\
           echo \"cmd=$cmd\"; eval \"$cmd\"; echo \"$how moved=$?\"\n\
         done\n\
         {tt} apply --profile high-conn >/dev/null; echo again=$?\n\
         {tt} history | wc -l\n\
         ls {d}/else | wc -l\n\
         ls -d '{d}/s d'/tx.unsafe*\n"
    ));
    let out = &r.stdout;
    for how in ["link", "owner", "mode"] {
        for cmd in ["apply", "history", "rollback"] {
            assert!(out.contains(&format!("{how} {cmd}=1")), "{how} {cmd}: {r}");
        }
        assert!(out.contains(&format!("{how} moved=0")), "{r}");
    }
    assert!(
        out.contains(&format!(
            "journal directory `{d}/s d/tx` is unsafe: it is a symbolic link (to `{d}/else`), never followed"
        )),
        "{r}"
    );
    assert!(out.contains("it is owned by uid 4242"), "{r}");
    assert!(out.contains("writable by group or others"), "{r}");
    // Each `mv` took a free name: never into the link moved aside before.
    for suffix in ["", ".2", ".3"] {
        assert!(
            out.contains(&format!(
                "cmd=mv '{d}/s d/tx' '{d}/s d/tx.unsafe{suffix}'\n"
            )),
            "{suffix}: {r}"
        );
    }
    assert!(
        out.contains("again=0\n2\n1\n"),
        "a new journal of one record; nothing written through the link: {r}"
    );
    assert!(out.contains(&format!("{d}/s d/tx.unsafe.3\n")), "{r}");
}

/// The plan's sysctl.d diff reads the file as persist does: a symbolic
/// link there (here to a file holding a secret) is shown as the link, never
/// followed, as root and as an unprivileged user, in text and JSON. (It
/// used to print the target's content: `/etc/shadow` into a CI log.)
#[test]
fn the_plan_diff_never_follows_a_link_at_the_sysctl_d_file() {
    if !require_root("the_plan_diff_never_follows_a_link_at_the_sysctl_d_file") {
        return;
    }
    let st = TempDir::new("diff-link");
    let secret = format!("{}/secret", st.path());
    std::fs::write(&secret, "TOP-SECRET-LINE\n").unwrap();
    let r = in_netns(&format!(
        "unshare -m sh -c 'mount -t tmpfs none /etc/sysctl.d && ln -s {secret} /etc/sysctl.d/99-tcto-tune.conf && \
         tcto-tune plan --profile high-conn --diff; tcto-tune plan --profile high-conn --json; \
         setpriv --reuid=65534 --regid=65534 --clear-groups tcto-tune plan --profile high-conn --diff'"
    ));
    assert!(!r.stdout.contains("TOP-SECRET"), "{r}");
    assert_eq!(
        r.stdout
            .matches(&format!("-symbolic link to {secret}"))
            .count(),
        3,
        "{r}"
    );
}

/// A FIFO (or a directory) at the sysctl.d file makes persist's facts
/// unreadable; the plan's diff then never opens it (a FIFO's read blocks
/// for ever: `plan --diff` and `plan --json` used to hang there).
#[test]
fn the_plan_diff_never_opens_a_fifo_at_the_sysctl_d_file() {
    if !require_root("the_plan_diff_never_opens_a_fifo_at_the_sysctl_d_file") {
        return;
    }
    let r = in_netns(
        "unshare -m sh -c 'mount -t tmpfs none /etc/sysctl.d && mkfifo /etc/sysctl.d/99-tcto-tune.conf && \
         timeout 20 tcto-tune plan --profile high-conn --diff; echo diff=$?; \
         timeout 20 tcto-tune plan --profile high-conn --json; echo json=$?'",
    );
    assert!(r.stdout.contains("diff=0"), "{r}");
    assert!(r.stdout.contains("json=0"), "{r}");
    assert_eq!(r.stdout.matches("-not a regular file").count(), 2, "{r}");
}

/// The `mv` a torn or unreadable record's hint prints runs as printed with
/// a space in the state dir, and moves the record to a name nothing is at:
/// an earlier `.broken` file is never replaced, never moved into. (The
/// hints used to print the path unquoted, and always `NAME.broken`.)
#[test]
fn a_broken_records_mv_hint_runs_as_printed_and_keeps_an_earlier_one() {
    if !require_root("a_broken_records_mv_hint_runs_as_printed_and_keeps_an_earlier_one") {
        return;
    }
    let dir = TempDir::new("broken-mv");
    let s = format!("{}/s d", dir.path());
    let r = in_netns(&format!(
        "S='{s}'; mkdir -m 700 \"$S\"\n\
         run() {{ out=$(tcto-tune --state-dir \"$S\" \"$@\" 2>&1); echo \"$out\"; \
           cmd=$(echo \"$out\" | grep -o '(`mv [^`]*`)' | sed 's/^(`//; s/`)$//'); \
           [ -n \"$cmd\" ] && eval \"$cmd\"; echo mv=$?; }}\n\
         tcto-tune --state-dir \"$S\" apply --profile client >/dev/null || exit 10\n\
         echo earlier > \"$S/tx/000002.json.broken\"\n\
         echo '{{torn' > \"$S/tx/000002.json\"\n\
         run rollback\n\
         mkdir \"$S/tx/000002.json\"\n\
         run apply --profile high-conn\n\
         tcto-tune --state-dir \"$S\" rollback >/dev/null; echo rolled=$?\n\
         cat \"$S/tx/000002.json.broken\"; cat \"$S/tx/000002.json.broken.2\"; \
         [ -d \"$S/tx/000002.json.broken.3\" ] && echo dir-aside\n"
    ));
    let out = &r.stdout;
    assert_eq!(out.matches("mv=0").count(), 2, "{r}");
    assert!(out.contains("rolled=0"), "{r}");
    assert!(out.contains("earlier\n{torn\ndir-aside"), "{r}");
}
