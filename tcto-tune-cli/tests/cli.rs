//! Smoke tests of the command line itself (no kernel state involved).
//! Having an integration test here also makes `cargo test --workspace`
//! build the `tcto-tune` binary that the end-to-end crate drives.

use std::process::Command;

fn tcto(args: &[&str]) -> (i32, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_tcto-tune"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    (
        o.status.code().unwrap(),
        String::from_utf8_lossy(&o.stdout).into(),
        String::from_utf8_lossy(&o.stderr).into(),
    )
}

#[test]
fn help_lists_every_subcommand() {
    let (code, out, _) = tcto(&["--help"]);
    assert_eq!(code, 0);
    for cmd in [
        "plan", "apply", "rollback", "history", "persist", "diagnose", "verify", "probe",
        "profiles",
    ] {
        assert!(out.contains(cmd), "{cmd} missing from help:\n{out}");
    }
}

#[test]
fn usage_errors_exit_2() {
    let (code, _, err) = tcto(&["plan"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--profile"), "{err}");
    let (code, _, err) = tcto(&["plan", "--profile", "high-conn", "--port", "0"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("1 to 65535"), "{err}");
    let (code, _, err) = tcto(&["plan", "--profile", "high-conn", "--allow", "no-such-code"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("known codes"), "{err}");
}

#[test]
fn profiles_list_names_every_builtin() {
    let (code, out, _) = tcto(&["profiles", "list"]);
    assert_eq!(code, 0);
    for name in [
        "high-conn",
        "conntrack-exhaustion",
        "backlog-overflow",
        "trusted-notrack",
        "offload-off",
        "client",
    ] {
        assert!(out.contains(name), "{name} missing:\n{out}");
    }
    // An unknown name is the caller's input at fault: a usage error (2).
    let (code, _, err) = tcto(&["profiles", "show", "nope"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("unknown profile `nope`") && err.contains("hint: built-in profiles"),
        "{err}"
    );
    // `show` takes only built-in names: a path gets the same hint, which
    // does not suggest giving a path.
    let (code, _, err) = tcto(&["profiles", "show", "./mine.toml"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("unknown profile `./mine.toml`")
            && err.contains("hint: built-in profiles: backlog-overflow,")
            && !err.contains("give a path"),
        "{err}"
    );
}

#[test]
fn unknown_variable_is_named_with_the_declared_ones() {
    let (code, _, err) = tcto(&[
        "plan",
        "-p",
        "offload-off",
        "--set",
        "iface=eth0",
        "--set",
        "ifcae=x",
    ]);
    assert_eq!(code, 2, "a wrong --set is a usage error: {err}");
    assert!(
        err.contains("unknown variable `ifcae`") && err.contains("declared variables: iface"),
        "{err}"
    );
}

/// Issue 17: one exit-code policy. Whatever flag carries the caller's
/// mistake (an unknown profile, a missing, unknown or bad `--set`, a
/// repeated flag), it is a usage error: exit 2.
#[test]
fn every_usage_mistake_exits_2() {
    let notrack = |front: &str, port: &str| {
        tcto(&[
            "plan",
            "-p",
            "trusted-notrack",
            "--set",
            &format!("frontend={front}"),
            "--set",
            "backend=10.0.2.0/24",
            "--set",
            &format!("port={port}"),
        ])
    };
    let (code, _, err) = tcto(&["plan", "-p", "nosuch"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = notrack("10.0.1.5", "8080");
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("`10.0.1.5/32`"),
        "a bare address gets its /32: {err}"
    );
    // The error names the variable; the hint names the flag that sets it.
    assert!(
        err.contains("(the value of variable `frontend`)\nhint: check `--set frontend=...`\n"),
        "{err}"
    );
    // A variable that makes a key invalid is the caller's input too.
    let (code, _, err) = tcto(&["plan", "-p", "rp-filter-loose", "--set", "iface=a/b"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("contains `/`") && err.contains("hint: check `--set iface=...`"),
        "{err}"
    );
    let (code, _, err) = tcto(&["plan", "-p", "high-conn", "--set", "x=1"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("hint: this profile declares no variables; drop the `--set`"),
        "{err}"
    );
    let (code, _, err) = notrack("10.0.1.0/24", "99999");
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = tcto(&["plan", "-p", "trusted-notrack"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("and also `frontend`, `port`")
            && err
                .contains("hint: pass `--set backend=VALUE --set frontend=VALUE --set port=VALUE`"),
        "every missing variable at once: {err}"
    );
    let (code, _, err) = tcto(&[
        "plan",
        "-p",
        "high-conn",
        "--app-backlog",
        "8080=10",
        "--app-backlog",
        "8080=20",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("`--app-backlog 8080=...` given twice"),
        "{err}"
    );
    // A broken profile *file* is not a usage error.
    let dir = std::env::temp_dir().join(format!("tcto-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad.toml");
    std::fs::write(&file, "name = \"x\"\n[backlog]\nsomaxconn = \"lots\"\n").unwrap();
    let (code, _, err) = tcto(&["plan", "-p", file.to_str().unwrap()]);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(code, 1, "{err}");
}

/// Issue 17: under `--json` an error is a JSON object on stdout, with the
/// same exit code as in text mode.
#[test]
fn json_errors_are_json_on_stdout() {
    for (args, exit, kind) in [
        (&["--json", "plan", "-p", "nosuch"][..], 2, "usage"),
        (&["plan", "--json", "--bogus"][..], 2, "usage"),
        (&["--json", "profiles", "show", "nope"][..], 2, "usage"),
    ] {
        let (code, out, err) = tcto(args);
        assert_eq!(code, exit, "{args:?}: {err}");
        let v: serde_json::Value =
            serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"));
        assert_eq!(v["schema"], 1, "{out}");
        assert_eq!(v["error"]["code"], kind, "{out}");
        assert!(
            v["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{out}"
        );
    }
}

/// Issue 17: `profiles show --resolved` prints the effective profile, which
/// loads again as a profile file.
#[test]
fn profiles_show_resolved_fills_variables() {
    let (code, out, err) = tcto(&[
        "profiles",
        "show",
        "trusted-notrack",
        "--resolved",
        "--set",
        "frontend=10.0.1.0/24",
        "--set",
        "backend=10.0.2.0/24",
        "--set",
        "port=8080",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("from = \"10.0.1.0/24\"")
            && out.contains("port = 8080")
            && !out.contains("${"),
        "{out}"
    );
    let dir = std::env::temp_dir().join(format!("tcto-cli-res-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("resolved.toml");
    std::fs::write(&file, &out).unwrap();
    let (code, again, err) = tcto(&["profiles", "show", file.to_str().unwrap(), "--resolved"]);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(code, 0, "{err}");
    assert_eq!(again, out);
    // A variable the profile needs is a usage error, as in `plan`.
    let (code, _, err) = tcto(&["profiles", "show", "trusted-notrack", "--resolved"]);
    assert_eq!(code, 2, "{err}");
    // `--set` without `--resolved` is refused by clap.
    let (code, _, _) = tcto(&["profiles", "show", "high-conn", "--set", "a=b"]);
    assert_eq!(code, 2);
}

/// Issue 17: `--state-dir` is offered only where it means something, and
/// still works before the subcommand.
#[test]
fn state_dir_only_where_it_means_something() {
    for cmd in ["plan", "diagnose", "probe", "profiles"] {
        let (code, out, _) = tcto(&[cmd, "--help"]);
        assert_eq!(code, 0);
        assert!(
            !out.contains("--state-dir"),
            "{cmd} --help offers --state-dir:\n{out}"
        );
    }
    for cmd in ["apply", "rollback", "persist", "history", "verify"] {
        let (code, out, _) = tcto(&[cmd, "--help"]);
        assert_eq!(code, 0);
        assert!(
            out.contains("--state-dir"),
            "{cmd} --help lacks --state-dir:\n{out}"
        );
    }
    // Before the subcommand it is accepted for any command, so one alias
    // (`tcto-tune --state-dir X`) serves them all.
    let (code, _, err) = tcto(&["--state-dir", "/tmp", "profiles", "list"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, _) = tcto(&["profiles", "list", "--state-dir", "/tmp"]);
    assert_eq!(code, 2, "not an option of `profiles list`");
    let dir = std::env::temp_dir().join(format!("tcto-cli-sd-{}", std::process::id()));
    let (code, out, err) = tcto(&["--state-dir", dir.to_str().unwrap(), "history"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(dir.to_str().unwrap()), "{out}");
}
