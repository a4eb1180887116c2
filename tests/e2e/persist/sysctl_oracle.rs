//! The conflict scan against the real `systemd-sysctl`, one case per rule.
//!
//! Each case builds an image with sysctl.d files, asks `persist` whether
//! our `net.core.somaxconn = 4096` survives, then runs the real
//! `systemd-sysctl` over the same files and reads the value it leaves.
//! systemd-sysctl runs in its own network namespace (somaxconn is
//! per-namespace) and its own mount namespace, with tmpfs over every
//! sysctl.d directory, and `--prefix=/net/core/somaxconn` so that it can
//! write nothing else: the host's files and values are never touched.

use std::process::Command;

use tcto_tune_tests::{bin, require_root, Run, TempDir};

/// The value before systemd-sysctl runs; it stays when nothing sets it.
const SENTINEL: &str = "333";

/// (what the case shows, files as (in-image path, content; `@null` is a
/// link to /dev/null), the value systemd-sysctl leaves)
type Case = (
    &'static str,
    &'static [(&'static str, &'static str)],
    &'static str,
);

const CASES: &[Case] = &[
    (
        "a later file overrides",
        &[("/etc/sysctl.d/99-zzz.conf", "net.core.somaxconn = 1024\n")],
        "1024",
    ),
    (
        "a later file in slash form",
        &[("/etc/sysctl.d/99-zzz.conf", "net/core/somaxconn=1024\n")],
        "1024",
    ),
    (
        "an earlier file is replaced by ours",
        &[("/etc/sysctl.d/10-a.conf", "net.core.somaxconn = 1024\n")],
        "4096",
    ),
    (
        "a later negative line cancels ours",
        &[("/etc/sysctl.d/99-zzz.conf", "-net.core.somaxconn\n")],
        SENTINEL,
    ),
    (
        "an earlier negative line is replaced",
        &[("/etc/sysctl.d/10-a.conf", "-net.core.somaxconn\n")],
        "4096",
    ),
    (
        "a dash before an assignment only silences errors",
        &[("/etc/sysctl.d/99-zzz.conf", "-net.core.somaxconn = 1024\n")],
        "1024",
    ),
    (
        "a later glob never beats an explicit key",
        &[("/etc/sysctl.d/99-zzz.conf", "net.core.somax* = 128\n")],
        "4096",
    ),
    (
        "a later class glob never beats an explicit key",
        &[("/etc/sysctl.d/99-zzz.conf", "net.core.somaxcon[n] = 128\n")],
        "4096",
    ),
    (
        "a later line with our value",
        &[("/etc/sysctl.d/99-zzz.conf", "net.core.somaxconn = 4096\n")],
        "4096",
    ),
    (
        "a later override then our value again",
        &[
            ("/etc/sysctl.d/99-zzz.conf", "net.core.somaxconn = 1024\n"),
            ("/etc/sysctl.d/99-zzzz.conf", "net.core.somaxconn = 4096\n"),
        ],
        "4096",
    ),
    (
        "a negative line then our value again",
        &[
            ("/etc/sysctl.d/99-zzz.conf", "-net.core.somaxconn\n"),
            ("/etc/sysctl.d/99-zzzz.conf", "net.core.somaxconn = 4096\n"),
        ],
        "4096",
    ),
    (
        "/usr/lib shadowed by the same name in /etc",
        &[
            ("/etc/sysctl.d/99-zzz.conf", "# emptied\n"),
            (
                "/usr/lib/sysctl.d/99-zzz.conf",
                "net.core.somaxconn = 1024\n",
            ),
        ],
        "4096",
    ),
    (
        "/usr/lib masked by a link to /dev/null",
        &[
            ("/etc/sysctl.d/99-zzz.conf", "@null"),
            (
                "/usr/lib/sysctl.d/99-zzz.conf",
                "net.core.somaxconn = 1024\n",
            ),
        ],
        "4096",
    ),
    (
        "a later file in /run",
        &[("/run/sysctl.d/99-zzz.conf", "net.core.somaxconn = 1024\n")],
        "1024",
    ),
    (
        "a later file in /usr/local/lib",
        &[(
            "/usr/local/lib/sysctl.d/99-zzz.conf",
            "net.core.somaxconn = 1024\n",
        )],
        "1024",
    ),
];

fn setup(img: &TempDir, files: &[(&str, &str)]) {
    for (path, content) in files {
        let host = format!("{}{path}", img.path());
        std::fs::create_dir_all(std::path::Path::new(&host).parent().unwrap()).unwrap();
        if *content == "@null" {
            std::os::unix::fs::symlink("/dev/null", &host).unwrap();
        } else {
            std::fs::write(&host, content).unwrap();
        }
    }
}

/// Persist's verdict (dry run) and the real systemd-sysctl's result.
fn run_case(img: &TempDir) -> Run {
    let tt = format!(
        "{} --state-dir {}/state",
        bin("tcto-tune").display(),
        img.path()
    );
    let root = img.path();
    let script = format!(
        "set -u\nexport NO_COLOR=1 PATH=/usr/sbin:/sbin:$PATH\n\
         sysctl -qw net.core.somaxconn={SENTINEL} || exit 90\n\
         {tt} persist --profile high-conn --root {root} --dry-run > {root}/verdict 2>&1\n\
         echo \"verdict=$?\"\n\
         {tt} persist --profile high-conn --root {root} --allow persist-overridden-by >/dev/null 2>&1 || exit 91\n\
         for d in /etc/sysctl.d /run /usr/lib/sysctl.d /usr/local/lib; do mount -t tmpfs tcto-test \"$d\" || exit 92; done\n\
         mkdir -p /run/sysctl.d /usr/local/lib/sysctl.d\n\
         for d in /etc/sysctl.d /run/sysctl.d /usr/lib/sysctl.d /usr/local/lib/sysctl.d; do\n\
           [ -d {root}$d ] && cp -a {root}$d/. $d/\n\
         done\n\
         /lib/systemd/systemd-sysctl --prefix=/net/core/somaxconn 2>/dev/null\n\
         echo \"boot=$(sysctl -n net.core.somaxconn)\"\n"
    );
    Command::new("unshare")
        .args(["-n", "-m", "-p", "-f", "sh", "-c", &script])
        .output()
        .expect("unshare runs")
        .into()
}

#[test]
fn the_conflict_scan_agrees_with_the_real_systemd_sysctl_for_every_rule() {
    if !require_root("the_conflict_scan_agrees_with_the_real_systemd_sysctl_for_every_rule") {
        return;
    }
    for (what, files, expected) in CASES {
        let img = TempDir::new("persist-oracle");
        setup(&img, files);
        let r = run_case(&img);
        let verdict =
            std::fs::read_to_string(format!("{}/verdict", img.path())).unwrap_or_default();
        let boot = r
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix("boot="))
            .unwrap_or_else(|| panic!("{what}: no result\n{r}"));
        assert_eq!(
            boot, *expected,
            "{what}: systemd-sysctl itself\n{r}\n{verdict}"
        );
        let refused = r.stdout.contains("verdict=3");
        assert_eq!(
            refused,
            boot != "4096",
            "{what}: persist refused={refused}, but systemd-sysctl leaves {boot}\n{r}\n{verdict}"
        );
        if refused {
            let said = if boot == SENTINEL {
                "at the kernel's default".to_owned()
            } else {
                format!("would be {boot}, not 4096")
            };
            assert!(
                verdict.contains("[persist-overridden-by]") && verdict.contains(&said),
                "{what}: {said}\n{verdict}"
            );
        } else {
            assert!(r.stdout.contains("verdict=0"), "{what}\n{r}\n{verdict}");
        }
    }
}
