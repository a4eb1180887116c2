//! `tcto-tune persist` under a temporary `--root`, inside throwaway network
//! namespaces; the written files checked with the system's own loaders
//! (`sysctl -p`, `systemd-analyze verify`).

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;

use tcto_tune_tests::{in_netns, require_root, TempDir};

mod sysctl_oracle;

/// Keys only the initial namespace can set (`sysctl -p` fails on them in
/// a child one): the loader test compares every other key.
const GLOBAL_KEYS: &[&str] = &[
    "net.netfilter.nf_conntrack_max",
    "net.netfilter.nf_conntrack_buckets",
    "net.core.netdev_max_backlog",
];

const NOTRACK_ARGS: &str =
    "--profile trusted-notrack --set frontend=10.0.1.0/24 --set backend=10.0.2.0/24 --set port=8080";

/// `tcto-tune` with its state dir and root inside `dir`.
fn tt(dir: &TempDir) -> String {
    format!("tcto-tune --state-dir {}/state", dir.path())
}

fn read(dir: &TempDir, path: &str) -> Vec<u8> {
    std::fs::read(format!("{}{path}", dir.path())).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn exists(dir: &TempDir, path: &str) -> bool {
    std::fs::symlink_metadata(format!("{}{path}", dir.path())).is_ok()
}

fn sysctl_lines(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && l.contains('='))
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap();
            (k.trim().to_owned(), v.trim().to_owned())
        })
        .collect()
}

const SYSCTL_D: &str = "/etc/sysctl.d/99-tcto-tune.conf";
const MODULES_LOAD: &str = "/etc/modules-load.d/99-tcto-tune.conf";
const MODPROBE: &str = "/etc/modprobe.d/99-tcto-tune.conf";
const UNIT: &str = "/etc/systemd/system/tcto-tune-restore.service";
const WANTS: &str = "/etc/systemd/system/multi-user.target.wants/tcto-tune-restore.service";
const PERSISTED: &str = "/etc/tcto-tune/persisted.d/trusted-notrack.toml";

#[test]
fn dry_run_prints_the_diff_of_each_file_and_writes_nothing() {
    if !require_root("dry_run_prints_the_diff_of_each_file_and_writes_nothing") {
        return;
    }
    let d = TempDir::new("persist-dry");
    let r = in_netns(&format!(
        "sysctl -qw net.core.somaxconn=1024\n{} persist --profile high-conn --root {} --dry-run",
        tt(&d),
        d.path()
    ));
    assert_eq!(r.code, 0, "{r}");
    assert!(
        r.stdout.contains(&format!("+++ b{}{SYSCTL_D}", d.path())),
        "{r}"
    );
    assert!(r.stdout.contains("+net.core.somaxconn = 4096"), "{r}");
    assert!(r.stdout.contains("--- /dev/null"), "{r}");
    let left: Vec<_> = std::fs::read_dir(&d.0).unwrap().collect();
    assert!(left.is_empty(), "dry-run wrote {left:?}");
}

#[test]
fn written_sysctl_file_is_accepted_by_the_real_loader() {
    if !require_root("written_sysctl_file_is_accepted_by_the_real_loader") {
        return;
    }
    let d = TempDir::new("persist-load");
    let file = format!("{}{SYSCTL_D}", d.path());
    // Persist from a namespace where the values are low, put them back to
    // something else, then let procps apply the file.
    let r = in_netns(&format!(
        "sysctl -qw net.core.somaxconn=1024 net.ipv4.tcp_max_syn_backlog=256\n\
         {tt} persist --profile high-conn --root {root} >/dev/null || exit 90\n\
         {tt} plan --profile high-conn --json > {root}/plan.json\n\
         sysctl -qw net.core.somaxconn=128 net.ipv4.tcp_max_syn_backlog=128 \
           net.netfilter.nf_conntrack_tcp_timeout_established=432000 \
           net.netfilter.nf_conntrack_tcp_timeout_time_wait=120 \
           net.netfilter.nf_conntrack_tcp_timeout_close_wait=61\n\
         sysctl -p {file} >/dev/null 2>{root}/errors\n\
         stat -c '%a' {file}\n\
         for k in $(grep -v '^#' {file} | cut -d= -f1); do echo \"$k = $(sysctl -n $k 2>/dev/null)\"; done",
        tt = tt(&d),
        root = d.path(),
    ));
    assert_eq!(r.code, 0, "{r}");
    let mut lines = r.stdout.lines();
    assert_eq!(lines.next(), Some("644"), "{r}");
    let live = sysctl_lines(&lines.collect::<Vec<_>>().join("\n"));
    let wanted = sysctl_lines(&String::from_utf8(read(&d, SYSCTL_D)).unwrap());
    assert_eq!(wanted.len(), 8, "{wanted:?}");
    for (k, v) in &wanted {
        if GLOBAL_KEYS.contains(&k.as_str()) {
            continue;
        }
        assert_eq!(live.get(k), Some(v), "{k} after sysctl -p\n{r}");
    }
    // The loader's only complaints are about the global keys.
    let errors = std::fs::read_to_string(format!("{}/errors", d.path())).unwrap();
    for line in errors.lines() {
        assert!(
            GLOBAL_KEYS
                .iter()
                .any(|k| line.contains(k) || line.contains(&k.replace('.', "/"))),
            "unexpected loader error: {line}"
        );
    }
    // And the file holds what the plan planned.
    let plan: serde_json::Value =
        serde_json::from_slice(&read(&d, "/plan.json")).expect("plan JSON");
    for c in plan["changes"].as_array().unwrap() {
        let key = c["key"].as_str().unwrap();
        assert_eq!(
            wanted.get(key).map(String::as_str),
            c["desired"].as_str(),
            "{key}"
        );
    }
    assert_eq!(wanted["net.core.somaxconn"], "4096");
}

#[test]
fn a_symlink_planted_at_the_target_is_refused_and_not_followed() {
    if !require_root("a_symlink_planted_at_the_target_is_refused_and_not_followed") {
        return;
    }
    let d = TempDir::new("persist-link");
    let victim = format!("{}/victim", d.path());
    std::fs::write(&victim, b"precious\n").unwrap();
    std::fs::create_dir_all(format!("{}/etc/sysctl.d", d.path())).unwrap();
    std::os::unix::fs::symlink(&victim, format!("{}{SYSCTL_D}", d.path())).unwrap();
    let r = in_netns(&format!(
        "{} persist --profile high-conn --root {}",
        tt(&d),
        d.path()
    ));
    assert_eq!(r.code, 3, "{r}");
    assert!(r.stdout.contains("[persist-target-symlink]"), "{r}");
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious\n");
    assert!(!exists(&d, MODULES_LOAD), "nothing may be written: {r}");
}

#[test]
fn a_failure_midway_restores_every_file_already_written() {
    if !require_root("a_failure_midway_restores_every_file_already_written") {
        return;
    }
    let d = TempDir::new("persist-midway");
    // An old sysctl.d file of ours, and a link where the third file goes:
    // allowing the finding lets the transaction reach the write, which the
    // backend refuses; the two files already written must be restored.
    let old = b"# old\nnet.core.somaxconn = 2048\n\xff".to_vec();
    std::fs::create_dir_all(format!("{}/etc/sysctl.d", d.path())).unwrap();
    std::fs::create_dir_all(format!("{}/etc/modprobe.d", d.path())).unwrap();
    std::fs::write(format!("{}{SYSCTL_D}", d.path()), &old).unwrap();
    let victim = format!("{}/victim", d.path());
    std::fs::write(&victim, b"precious\n").unwrap();
    std::os::unix::fs::symlink(&victim, format!("{}{MODPROBE}", d.path())).unwrap();
    let r = in_netns(&format!(
        "{} persist --profile high-conn --root {} --allow persist-target-symlink --allow persist-foreign-file",
        tt(&d),
        d.path()
    ));
    assert_eq!(r.code, 1, "{r}");
    assert!(r.stdout.contains("every change was reverted"), "{r}");
    assert!(r.stdout.contains("symbolic link"), "{r}");
    assert_eq!(read(&d, SYSCTL_D), old);
    assert!(!exists(&d, MODULES_LOAD), "{r}");
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious\n");
}

#[test]
fn a_later_99_zzz_conf_is_reported_as_the_winner_with_file_and_line() {
    if !require_root("a_later_99_zzz_conf_is_reported_as_the_winner_with_file_and_line") {
        return;
    }
    let d = TempDir::new("persist-zzz");
    std::fs::create_dir_all(format!("{}/etc/sysctl.d", d.path())).unwrap();
    let zzz = format!("{}/etc/sysctl.d/99-zzz.conf", d.path());
    std::fs::write(&zzz, "# local override\nnet.core.somaxconn = 1024\n").unwrap();
    let r = in_netns(&format!(
        "{} persist --profile high-conn --root {}",
        tt(&d),
        d.path()
    ));
    assert_eq!(r.code, 3, "{r}");
    assert!(
        r.stdout.contains(&format!(
            "refuse [persist-overridden-by] {zzz}:2 sets net.core.somaxconn = 1024"
        )),
        "{r}"
    );
    assert!(r.stderr.contains("--allow persist-overridden-by"), "{r}");
    assert!(!exists(&d, SYSCTL_D), "{r}");
    // With --allow it is a warning and the files are written.
    let r = in_netns(&format!(
        "{} persist --profile high-conn --root {} --allow persist-overridden-by",
        tt(&d),
        d.path()
    ));
    assert_eq!(r.code, 0, "{r}");
    assert!(
        r.stdout.contains("warn (allowed) [persist-overridden-by]"),
        "{r}"
    );
    assert!(exists(&d, SYSCTL_D));
}

#[test]
fn rollback_restores_previous_files_byte_for_byte_and_removes_new_ones() {
    if !require_root("rollback_restores_previous_files_byte_for_byte_and_removes_new_ones") {
        return;
    }
    let d = TempDir::new("persist-rollback");
    let old = b"# hand-made\r\nnet.core.somaxconn=2048\n\xfe\xff no newline".to_vec();
    std::fs::create_dir_all(format!("{}/etc/sysctl.d", d.path())).unwrap();
    std::fs::write(format!("{}{SYSCTL_D}", d.path()), &old).unwrap();
    let r = in_netns(&format!(
        "{tt} persist --profile high-conn --root {root} --allow persist-foreign-file >/dev/null || exit 90\n\
         stat -c '%a' {root}{SYSCTL_D} {root}{MODULES_LOAD} {root}{MODPROBE}\n\
         {tt} rollback || exit 91\n{tt} history",
        tt = tt(&d),
        root = d.path()
    ));
    assert_eq!(r.code, 0, "{r}");
    assert!(r.stdout.starts_with("644\n644\n644\n"), "{r}");
    assert!(r.stdout.contains("rolled back transaction"), "{r}");
    assert!(r.stdout.contains("persist"), "{r}");
    assert_eq!(read(&d, SYSCTL_D), old);
    assert!(!exists(&d, MODULES_LOAD), "{r}");
    assert!(!exists(&d, MODPROBE), "{r}");
}

#[test]
fn the_unit_passes_systemd_analyze_verify() {
    if !require_root("the_unit_passes_systemd_analyze_verify") {
        return;
    }
    let d = TempDir::new("persist-unit");
    // ExecStart is the tcto-tune binary under test (it exists, which
    // `verify` checks); the offload interface gives the device ordering.
    let r = in_netns(&format!(
        "{tt} persist {NOTRACK_ARGS} --root {root} >/dev/null || exit 90\n\
         systemd-analyze verify {root}{UNIT} || exit 91\n\
         readlink {root}{WANTS}",
        tt = tt(&d),
        root = d.path()
    ));
    assert_eq!(r.code, 0, "{r}");
    assert_eq!(r.stderr, "", "systemd-analyze warnings: {r}");
    assert_eq!(r.stdout.trim(), UNIT, "{r}");
    let mode = std::fs::metadata(format!("{}{UNIT}", d.path()))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o7777, 0o644);

    let d = TempDir::new("persist-unit-dev");
    let r = in_netns(&format!(
        "ip link add veth-x type veth peer name veth-y\n\
         {tt} persist --profile offload-off --set iface=veth-x --allow offload-cpu-cost --root {root} >/dev/null || exit 90\n\
         systemd-analyze verify {root}{UNIT} || exit 91\n\
         grep -c 'sys-subsystem-net-devices-veth\\\\x2dx.device' {root}{UNIT}",
        tt = tt(&d),
        root = d.path()
    ));
    assert_eq!(r.code, 0, "{r}");
    assert_eq!(r.stderr, "", "systemd-analyze warnings: {r}");
    assert_eq!(r.stdout.trim(), "2", "{r}");
}

#[test]
fn apply_persisted_reapplies_the_saved_plan_in_a_namespace() {
    if !require_root("apply_persisted_reapplies_the_saved_plan_in_a_namespace") {
        return;
    }
    let d = TempDir::new("persist-apply");
    let r = in_netns(&format!(
        "{tt} apply --persisted --root {root}; echo \"rc=$?\"\n\
         {tt} persist {NOTRACK_ARGS} --root {root} >/dev/null || exit 90\n\
         {tt} plan --json --profile {root}{PERSISTED} > {root}/plan.json || exit 91\n\
         {tt} --json apply --persisted --root {root} > {root}/apply.json || exit 92\n\
         nft list table inet tcto_tune 2>/dev/null || true",
        tt = tt(&d),
        root = d.path()
    ));
    assert_eq!(r.code, 0, "{r}");
    // Before persist there is nothing to apply.
    assert!(r.stdout.starts_with("rc=1\n"), "{r}");
    assert!(r.stderr.contains("nothing persisted"), "{r}");
    let plan: serde_json::Value = serde_json::from_slice(&read(&d, "/plan.json")).unwrap();
    assert_eq!(plan["profile"], "trusted-notrack");
    let report: serde_json::Value = serde_json::from_slice(&read(&d, "/apply.json")).unwrap();
    assert_eq!(report["profile"], "trusted-notrack", "{report}");
    let key = "10.0.1.0/24 -> 10.0.2.0/24 port 8080";
    let planned = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["kind"] == "notrack");
    if planned {
        // A build with the NOTRACK backend: the rule must be in the kernel.
        let nft = r.stdout.lines().skip(1).collect::<Vec<_>>().join("\n");
        assert!(
            nft.contains("10.0.1.0/24") && nft.contains("10.0.2.0/24") && nft.contains("8080"),
            "nft after apply --persisted:\n{nft}\n{r}"
        );
        assert_eq!(report["outcome"], "applied", "{report}");
    } else {
        // This build has no NOTRACK backend yet: the saved flow is planned
        // and reported as such, nothing is half-applied.
        let skipped = plan["skipped"].as_array().unwrap();
        assert!(
            skipped
                .iter()
                .any(|s| s["key"] == key && s["code"] == "not-supported-yet"),
            "{plan}"
        );
        assert_eq!(report["outcome"], "noop", "{report}");
    }
}

#[test]
fn a_missing_root_is_an_error_and_is_not_created() {
    let d = TempDir::new("persist-noroot");
    let missing = format!("{}/image", d.path());
    let r = tcto_tune_tests::on_host(&format!(
        "{} persist --profile high-conn --root {missing} --dry-run",
        tt(&d)
    ));
    assert_eq!(r.code, 1, "{r}");
    assert!(r.stderr.contains(&missing), "{r}");
    assert!(r.stderr.contains("never created"), "{r}");
    assert!(!std::path::Path::new(&missing).exists());
    // A file in its place is not to be "mkdir -p"-ed.
    let file = format!("{}/file", d.path());
    std::fs::write(&file, "").unwrap();
    let r = tcto_tune_tests::on_host(&format!(
        "{} persist --profile high-conn --root {file} --dry-run",
        tt(&d)
    ));
    assert_eq!(r.code, 1, "{r}");
    assert!(r.stderr.contains("must be a directory"), "{r}");
    assert!(!r.stderr.contains("mkdir"), "{r}");
}

#[test]
fn json_dry_run_has_diffs_readable_contents_and_warns_about_kube_proxy() {
    if !require_root("json_dry_run_has_diffs_readable_contents_and_warns_about_kube_proxy") {
        return;
    }
    let d = TempDir::new("persist-json");
    std::fs::create_dir_all(format!("{}/usr/bin", d.path())).unwrap();
    std::fs::write(format!("{}/usr/bin/kube-proxy", d.path()), b"").unwrap();
    let r = in_netns(&format!(
        "{} --json persist --profile high-conn --root {} --dry-run",
        tt(&d),
        d.path()
    ));
    assert_eq!(r.code, 0, "{r}");
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).expect("JSON");
    assert_eq!(doc["dry_run"], true);
    assert_eq!(doc["profile"], "high-conn");
    // The transaction ran against the simulated host: its dry-run report.
    assert_eq!(doc["report"]["dry_run"], true, "{}", r.stdout);
    assert_eq!(doc["report"]["outcome"], "would_apply");
    assert_eq!(doc["report"]["command"], "persist");
    assert!(doc["report"]["id"].is_null());
    let file = format!("{}{SYSCTL_D}", d.path());
    let change = doc["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["key"] == file.as_str())
        .expect("sysctl.d change");
    assert_eq!(change["kind"], "file");
    assert_eq!(change["before"]["type"], "absent");
    assert!(change["after"]["value"]
        .as_str()
        .unwrap()
        .contains("net.core.somaxconn = "));
    assert!(doc["diffs"]
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x["path"] == file.as_str() && x["diff"].as_str().unwrap().contains("+++ b")));
    let warn = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "persist-runtime-manager")
        .expect("kube-proxy warning");
    assert_eq!(warn["severity"], "warn");
    assert!(warn["message"].as_str().unwrap().contains("kube-proxy"));
    assert!(!std::path::Path::new(&file).exists());
}

#[test]
fn apply_persisted_reapplies_saved_offloads_checked_with_ethtool() {
    if !require_root("apply_persisted_reapplies_saved_offloads_checked_with_ethtool") {
        return;
    }
    let d = TempDir::new("persist-offload");
    // Persist "tso and gro off" for a veth, turn them back on (a reboot),
    // then let `apply --persisted` restore them; ethtool is the oracle.
    let r = in_netns(&format!(
        "ip link add veth-p type veth peer name veth-q || exit 89\n\
         ethtool -K veth-p tso on gro on 2>/dev/null\n\
         {tt} persist --profile offload-off --set iface=veth-p --allow offload-cpu-cost --root {root} >/dev/null || exit 90\n\
         grep -qF sys-subsystem-net-devices-veth\\\\x2dp.device {root}{UNIT} || exit 91\n\
         ethtool -k veth-p | grep -E '^(tcp-segmentation-offload|generic-receive-offload):'\n\
         {tt} apply --persisted --root {root} >/dev/null || exit 92\n\
         ethtool -k veth-p | grep -E '^(tcp-segmentation-offload|generic-receive-offload):'",
        tt = tt(&d),
        root = d.path()
    ));
    assert_eq!(r.code, 0, "{r}");
    assert_eq!(
        r.stdout,
        "tcp-segmentation-offload: on\ngeneric-receive-offload: on\n\
         tcp-segmentation-offload: off\ngeneric-receive-offload: off\n",
        "{r}"
    );
}

#[test]
fn a_foreign_file_at_our_path_refuses_unless_allowed_and_rollback_restores_it() {
    if !require_root("a_foreign_file_at_our_path_refuses_unless_allowed_and_rollback_restores_it") {
        return;
    }
    let d = TempDir::new("persist-foreign");
    std::fs::create_dir_all(format!("{}/etc/sysctl.d", d.path())).unwrap();
    std::fs::create_dir_all(format!("{}/etc/modprobe.d", d.path())).unwrap();
    let admin = b"net.ipv4.tcp_fin_timeout = 30\n".to_vec();
    let floppy = b"blacklist floppy\n".to_vec();
    std::fs::write(format!("{}{SYSCTL_D}", d.path()), &admin).unwrap();
    std::fs::write(format!("{}{MODPROBE}", d.path()), &floppy).unwrap();
    let r = in_netns(&format!(
        "{} persist --profile high-conn --root {}",
        tt(&d),
        d.path()
    ));
    assert_eq!(r.code, 3, "{r}");
    for f in [SYSCTL_D, MODPROBE] {
        assert!(
            r.stdout.contains(&format!(
                "refuse [persist-foreign-file] {}{f} exists and was not written by tcto-tune",
                d.path()
            )),
            "{f}: {r}"
        );
    }
    assert!(r.stderr.contains("--allow persist-foreign-file"), "{r}");
    assert_eq!(read(&d, SYSCTL_D), admin);
    assert_eq!(read(&d, MODPROBE), floppy);
    // Allowed: replaced, and the prior content is journaled.
    let r = in_netns(&format!(
        "{tt} persist --profile high-conn --root {root} --allow persist-foreign-file || exit 90\n\
         grep -c 'Written by tcto-tune' {root}{SYSCTL_D} {root}{MODPROBE} || exit 91\n\
         {tt} rollback",
        tt = tt(&d),
        root = d.path()
    ));
    assert_eq!(r.code, 0, "{r}");
    assert!(
        r.stdout.contains("warn (allowed) [persist-foreign-file]"),
        "{r}"
    );
    assert_eq!(read(&d, SYSCTL_D), admin);
    assert_eq!(read(&d, MODPROBE), floppy);
}

#[test]
fn root_links_are_taken_inside_the_image_and_links_leaving_it_are_refused() {
    if !require_root("root_links_are_taken_inside_the_image_and_links_leaving_it_are_refused") {
        return;
    }
    let d = TempDir::new("persist-escape");
    let img = format!("{}/img", d.path());
    let outside = format!("{}/outside", d.path());
    std::fs::create_dir_all(format!("{outside}/sysctl.d")).unwrap();
    std::fs::create_dir_all(&img).unwrap();
    // 1. `IMG/etc -> OUTSIDE` (absolute): inside the image that is
    //    IMG/OUTSIDE; nothing may land in the real OUTSIDE.
    std::os::unix::fs::symlink(&outside, format!("{img}/etc")).unwrap();
    let r = in_netns(&format!(
        "{} persist --profile high-conn --root {img}",
        tt(&d)
    ));
    assert_eq!(r.code, 0, "{r}");
    assert!(
        std::fs::read_dir(format!("{outside}/sysctl.d"))
            .unwrap()
            .next()
            .is_none(),
        "wrote outside the image: {r}"
    );
    let inside = format!("{img}{outside}/sysctl.d/99-tcto-tune.conf");
    assert!(std::fs::metadata(&inside).is_ok(), "{inside}: {r}");
    assert!(r.stdout.contains(&inside), "{r}");
    std::fs::remove_file(format!("{img}/etc")).unwrap();

    // 2. A relative link that climbs above the root: refused, named, exit 3.
    std::fs::create_dir_all(format!("{img}/etc")).unwrap();
    let link = format!("{img}/etc/sysctl.d");
    std::os::unix::fs::symlink("../../../../../../../../..{outside}/sysctl.d", &link).unwrap();
    let r = in_netns(&format!(
        "{} persist --profile high-conn --root {img} --allow persist-root-escape",
        tt(&d)
    ));
    assert_eq!(r.code, 3, "{r}");
    assert!(
        r.stdout.contains(&format!(
            "refuse [persist-root-escape] /etc/sysctl.d leads out of the root directory: `{link}` is a symbolic link"
        )),
        "{r}"
    );
    std::fs::remove_file(&link).unwrap();

    // 3. The crafted image, `etc/sysctl.d -> /etc/sysctl.d`: inside
    //    the image a link to itself, a loop; an error, never the host's file.
    std::os::unix::fs::symlink("/etc/sysctl.d", &link).unwrap();
    let r = in_netns(&format!(
        "{} persist --profile high-conn --root {img}",
        tt(&d)
    ));
    assert_eq!(r.code, 1, "{r}");
    assert!(
        r.stderr.contains("too many levels of symbolic links"),
        "{r}"
    );
    assert!(r.stderr.contains(&link), "{r}");
}

#[test]
fn rollback_never_writes_through_a_link_planted_after_persist() {
    if !require_root("rollback_never_writes_through_a_link_planted_after_persist") {
        return;
    }
    let d = TempDir::new("persist-escape-rb");
    let img = format!("{}/img", d.path());
    let outside = format!("{}/outside", d.path());
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(format!("{outside}/99-tcto-tune.conf"), "host's own\n").unwrap();
    std::fs::create_dir_all(&img).unwrap();
    let r = in_netns(&format!(
        "{tt} persist --profile high-conn --root {img} >/dev/null || exit 90\n\
         mv {img}/etc/sysctl.d {img}/etc/sysctl.d.moved\n\
         ln -s {outside} {img}/etc/sysctl.d\n\
         {tt} rollback",
        tt = tt(&d)
    ));
    assert_ne!(r.code, 0, "{r}");
    assert!(r.code != 90, "{r}");
    assert!(
        (r.stdout.clone() + &r.stderr).contains("persist-root-escape"),
        "{r}"
    );
    assert_eq!(
        std::fs::read_to_string(format!("{outside}/99-tcto-tune.conf")).unwrap(),
        "host's own\n"
    );
}

const ENTRIES: &str = "/etc/tcto-tune/persisted.d";

#[test]
fn a_second_persisted_profile_keeps_the_first_and_boot_applies_both() {
    if !require_root("a_second_persisted_profile_keeps_the_first_and_boot_applies_both") {
        return;
    }
    let d = TempDir::new("persist-compose");
    // The scenario: trusted-notrack persisted, then offload-off.
    let r = in_netns(&format!(
        "ip link add veth-c type veth peer name veth-d || exit 89\n\
         {tt} persist {NOTRACK_ARGS} --root {root} >/dev/null || exit 90\n\
         {tt} persist --profile offload-off --set iface=veth-c --root {root}; echo cpu=$?\n\
         {tt} persist --profile offload-off --set iface=veth-c --allow offload-cpu-cost --root {root} >/dev/null || exit 91\n\
         {tt} persist --list --root {root} || exit 92\n\
         {tt} --json apply --persisted --root {root} > {root}/boot.json || exit 93\n\
         ethtool -k veth-c | grep -E '^tcp-segmentation-offload:'\n\
         nft list table inet tcto_tune 2>/dev/null | grep -c 8080",
        tt = tt(&d),
        root = d.path()
    ));
    assert_eq!(r.code, 0, "{r}");
    // The diagnostic-only warning needs --allow to be persisted.
    assert!(r.stdout.contains("cpu=3"), "{r}");
    assert!(
        r.stdout.contains("refuse [offload-cpu-cost]")
            && r.stdout.contains("persisting it makes it permanent"),
        "{r}"
    );
    for name in ["trusted-notrack", "offload-off"] {
        assert!(exists(&d, &format!("{ENTRIES}/{name}.toml")), "{name}: {r}");
        assert!(
            r.stdout
                .lines()
                .any(|l| l.starts_with(name) && l.contains(&format!("{ENTRIES}/{name}.toml"))),
            "--list shows {name}: {r}"
        );
    }
    assert!(r.stdout.contains("tcp-segmentation-offload: off"), "{r}");
    let boot: serde_json::Value = serde_json::from_slice(&read(&d, "/boot.json")).unwrap();
    assert_eq!(boot["profile"], "offload-off+trusted-notrack", "{boot}");
    assert_eq!(boot["outcome"], "applied", "{boot}");
    // Both NOTRACK directions of the flow are in the kernel.
    assert_eq!(r.stdout.trim_end().lines().last(), Some("2"), "{r}");
    let unit = String::from_utf8(read(&d, UNIT)).unwrap();
    assert!(unit.contains("`offload-off`, `trusted-notrack`"), "{unit}");
    assert!(unit.contains("veth\\x2dc.device"), "{unit}");
}

#[test]
fn remove_drops_one_entry_conflicts_name_both_and_rollback_restores() {
    if !require_root("remove_drops_one_entry_conflicts_name_both_and_rollback_restores") {
        return;
    }
    let d = TempDir::new("persist-remove");
    let small = format!("{}/small.toml", d.path());
    std::fs::write(&small, "name = \"small\"\n[backlog]\nsomaxconn = 2048\n").unwrap();
    let r = in_netns(&format!(
        "sysctl -qw net.core.somaxconn=1024\n\
         {tt} persist --profile high-conn --root {root} >/dev/null || exit 90\n\
         {tt} persist {NOTRACK_ARGS} --root {root} >/dev/null || exit 91\n\
         {tt} persist --profile {small} --root {root}; echo conflict=$?\n\
         {tt} persist --remove nope --root {root}; echo nope=$?\n\
         {tt} persist --remove high-conn --root {root} || exit 92\n\
         {tt} persist --list --root {root}",
        tt = tt(&d),
        root = d.path()
    ));
    assert_eq!(r.code, 0, "{r}");
    assert!(r.stdout.contains("conflict=3"), "{r}");
    assert!(
        r.stdout.contains("refuse [persist-entries-conflict] persisted profiles `high-conn` and `small` both set net.core.somaxconn: `high-conn` to 4096, `small` to 2048"),
        "{r}"
    );
    assert!(r.stdout.contains("nope=1"), "{r}");
    assert!(
        r.stderr
            .contains("no persisted profile `nope`; persisted: high-conn, trusted-notrack"),
        "{r}"
    );
    assert!(
        r.stderr.contains(&format!(
            "tcto-tune --state-dir {}/state persist --list --root {}",
            d.path(),
            d.path()
        )),
        "the hint carries the flags: {r}"
    );
    // high-conn is gone, trusted-notrack stays (and so does its unit).
    assert!(!exists(&d, SYSCTL_D), "{r}");
    assert!(!exists(&d, MODULES_LOAD), "{r}");
    assert!(!exists(&d, &format!("{ENTRIES}/high-conn.toml")), "{r}");
    assert!(
        exists(&d, &format!("{ENTRIES}/trusted-notrack.toml")),
        "{r}"
    );
    assert!(exists(&d, UNIT) && exists(&d, WANTS), "{r}");
    assert!(
        !r.stdout.lines().any(|l| l.starts_with("high-conn ")),
        "{r}"
    );
    // Rollback of the removal brings high-conn back byte for byte.
    let r = in_netns(&format!("{} rollback", tt(&d)));
    assert_eq!(r.code, 0, "{r}");
    assert!(exists(&d, &format!("{ENTRIES}/high-conn.toml")), "{r}");
    let text = String::from_utf8(read(&d, SYSCTL_D)).unwrap();
    assert!(text.contains("net.core.somaxconn = 4096"), "{text}");
}

#[test]
fn the_single_persisted_toml_of_earlier_versions_is_read_and_migrated() {
    if !require_root("the_single_persisted_toml_of_earlier_versions_is_read_and_migrated") {
        return;
    }
    let d = TempDir::new("persist-legacy");
    std::fs::create_dir_all(format!("{}/etc/tcto-tune", d.path())).unwrap();
    std::fs::create_dir_all(format!("{}/etc/sysctl.d", d.path())).unwrap();
    // What the earlier version wrote for trusted-notrack and high-conn.
    std::fs::write(
        format!("{}/etc/tcto-tune/persisted.toml", d.path()),
        "# Written by tcto-tune from profile `trusted-notrack`. Do not edit by hand:\n\
         # re-run `tcto-tune persist --profile trusted-notrack` instead.\n\n\
         name = \"trusted-notrack\"\ndescription = \"old\"\n\n\
         [[notrack]]\nfrom = \"10.0.1.0/24\"\nto = \"10.0.2.0/24\"\nport = 8080\n",
    )
    .unwrap();
    std::fs::write(
        format!("{}{SYSCTL_D}", d.path()),
        "# Written by tcto-tune from profile `high-conn`. Do not edit by hand:\n\
         # re-run `tcto-tune persist --profile high-conn` instead.\n\n\
         # accept-queue headroom\nnet.core.somaxconn = 4096\n",
    )
    .unwrap();
    let r = in_netns(&format!(
        "{tt} persist --list --root {root}\n\
         {tt} apply --persisted --root {root} --dry-run >/dev/null || exit 90\n\
         {tt} persist --profile backlog-overflow --root {root} >/dev/null || exit 91\n\
         ls {root}{ENTRIES}",
        tt = tt(&d),
        root = d.path()
    ));
    assert_eq!(r.code, 0, "{r}");
    assert!(
        r.stdout
            .contains("(earlier format, migrated by the next persist)"),
        "{r}"
    );
    assert_eq!(
        r.stdout.lines().rev().take(3).collect::<Vec<_>>(),
        [
            "trusted-notrack.toml",
            "high-conn.toml",
            "backlog-overflow.toml"
        ],
        "{r}"
    );
    assert!(!exists(&d, "/etc/tcto-tune/persisted.toml"), "{r}");
    let entry = String::from_utf8(read(&d, &format!("{ENTRIES}/high-conn.toml"))).unwrap();
    assert!(
        entry.contains("exact = 4096") && entry.contains("accept-queue headroom"),
        "{entry}"
    );
}

#[test]
fn a_corrupt_entry_refuses_persist_and_boot_naming_it_and_remove_clears_it() {
    if !require_root("a_corrupt_entry_refuses_persist_and_boot_naming_it_and_remove_clears_it") {
        return;
    }
    let d = TempDir::new("persist-corrupt");
    let broken = format!("{}{ENTRIES}/broken.toml", d.path());
    let r = in_netns(&format!(
        "{tt} persist {NOTRACK_ARGS} --root {root} >/dev/null || exit 90\n\
         printf 'name = \"broken\"\\n[[notrack]\\n' > {broken}\n\
         {tt} persist --profile backlog-overflow --root {root} > {root}/out; echo persist=$?\n\
         cat {root}/out\n\
         {tt} apply --persisted --root {root} --dry-run; echo boot=$?\n\
         hint=$(sed -n 's/.*drop it with `\\(.*\\)`.*/\\1/p' {root}/out)\n\
         echo \"running the hint: $hint\"\n\
         $hint >/dev/null || exit 91\n\
         {tt} apply --persisted --root {root} --dry-run >/dev/null; echo boot=$?",
        tt = tt(&d),
        root = d.path()
    ));
    assert_eq!(r.code, 0, "{r}");
    assert!(r.stdout.contains("persist=3"), "{r}");
    assert!(
        r.stdout.contains(&format!(
            "refuse [persist-entry-unreadable] cannot read the persisted entry {broken}"
        )),
        "{r}"
    );
    assert!(r.stdout.contains("boot=1\n"), "{r}");
    assert!(
        r.stderr
            .contains(&format!("cannot read the persisted entry {broken}")),
        "{r}"
    );
    assert!(
        r.stdout.contains(&format!(
            "running the hint: tcto-tune --state-dir {}/state persist --root {} --remove broken",
            d.path(),
            d.path()
        )),
        "{r}"
    );
    assert!(r.stdout.trim_end().ends_with("boot=0"), "{r}");
    assert!(!exists(&d, &format!("{ENTRIES}/broken.toml")));
}

#[test]
fn a_persist_killed_midway_is_rolled_back_to_the_entries_before_it() {
    if !require_root("a_persist_killed_midway_is_rolled_back_to_the_entries_before_it") {
        return;
    }
    let d = TempDir::new("persist-kill");
    // SIGKILL a second persist at random points; whatever it left, a
    // rollback brings back exactly the first persist's files.
    let r = in_netns(&format!(
        "{tt} persist {NOTRACK_ARGS} --root {root} >/dev/null || exit 90\n\
         snap() {{ (cd {root} && find etc -type f | sort | xargs md5sum; find etc -type l -printf '%p -> %l\\n' | sort); }}\n\
         snap > {root}/before\n\
         for delay in 0.002 0.005 0.008 0.01 0.012 0.014 0.016 0.02 0.03 0.05; do\n\
           n0=$({tt} history | wc -l)\n\
           {tt} persist --profile high-conn --root {root} >/dev/null 2>&1 & pid=$!\n\
           sleep $delay; kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null\n\
           {tt} history | sed -n 2p >> {root}/states\n\
           if [ $({tt} history | wc -l) -gt $n0 ]; then\n\
             {tt} rollback >/dev/null || exit 91\n\
           fi\n\
           snap > {root}/after\n\
           diff {root}/before {root}/after || exit 93\n\
         done\n\
         cat {root}/states\n\
         echo ok",
        tt = tt(&d),
        root = d.path()
    ));
    assert_eq!(r.code, 0, "{r}");
    assert!(r.stdout.ends_with("ok\n"), "{r}");
}

#[test]
fn unreadable_entry_hints_run_as_printed_with_spaces_and_dashes() {
    if !require_root("unreadable_entry_hints_run_as_printed_with_spaces_and_dashes") {
        return;
    }
    let dir = TempDir::new("quoted");
    let d = dir.path();
    std::fs::create_dir_all(format!("{d}/r x/etc/tcto-tune/persisted.d")).unwrap();
    // An unreadable entry named like a flag, then one with a space.
    let r = in_netns(&format!(
        "for n in -x 'a b'; do\n\
         echo garbage > \"{d}/r x/etc/tcto-tune/persisted.d/$n.toml\"\n\
         tcto-tune --state-dir '{d}/s d' persist --list --root '{d}/r x' > {d}/out 2>&1\n\
         cmd=$(grep 'hint:' {d}/out | head -1 | grep -o '`tcto-tune [^`]*`' | tr -d '`')\n\
         echo \"cmd=$cmd\"\n\
         eval \"$cmd\" >/dev/null 2>&1; echo removed=$?\n\
         done\n\
         ls '{d}/r x/etc/tcto-tune/persisted.d' | wc -l\n"
    ));
    let out = &r.stdout;
    assert!(out.contains("--remove=-x"), "{r}");
    assert!(out.contains("--remove 'a b'"), "{r}");
    assert!(out.contains("--root '"), "{r}");
    assert_eq!(out.matches("removed=0").count(), 2, "{r}");
    assert!(out.trim_end().ends_with('0'), "both files removed: {r}");
}
