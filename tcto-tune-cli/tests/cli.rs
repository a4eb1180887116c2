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
    let (code, _, err) = tcto(&["profiles", "show", "nope"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("unknown profile `nope`") && err.contains("hint: built-in profiles"),
        "{err}"
    );
    // `show` takes only built-in names: a path gets the same hint, which
    // does not suggest giving a path.
    let (code, _, err) = tcto(&["profiles", "show", "./mine.toml"]);
    assert_eq!(code, 1);
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
