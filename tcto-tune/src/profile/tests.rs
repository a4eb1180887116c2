//! Profile loading: built-ins, errors with file/line/column, extends,
//! variables, and the values that must never reach a file or the kernel.

use std::collections::BTreeMap;

use super::*;
use crate::fix::{Intent, SysctlValue};
use crate::words::NEUTRAL;

fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn from_text(text: &str) -> Result<Profile, ProfileError> {
    load_text(
        ProfileOrigin::File("/p/mine.toml".into()),
        text,
        &BTreeMap::new(),
    )
}

fn err(text: &str) -> String {
    from_text(text).unwrap_err().to_string()
}

#[test]
fn every_builtin_loads_with_its_variables() {
    let needs = vars(&[
        ("frontend", "10.0.1.0/24"),
        ("backend", "10.0.2.0/24"),
        ("port", "8080"),
        ("iface", "eth0"),
    ]);
    for name in builtin_names() {
        let text = builtin(name).unwrap();
        let declared: BTreeMap<_, _> = needs
            .iter()
            .filter(|(k, _)| text.contains(&format!("{k} = {{")))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let p = load(name, &declared).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(p.name, name);
        assert!(!p.description.is_empty(), "{name} has no description");
        for t in p.sysctl_targets() {
            assert!(
                t.desired.reason.is_some(),
                "{name}: {} has no reason",
                t.key
            );
        }
    }
}

#[test]
fn values_and_intents() {
    let p = from_text("[conntrack]\nmax = { at_least = 262144, reason = \"r\" }\ntcp_timeout_established = 600\n[backlog]\nsomaxconn = { at_most = 100 }\n[sysctl]\n\"net.ipv4.tcp_rmem\" = \"4096 87380 6291456\"\n").unwrap();
    assert_eq!(p.name, "mine", "the file stem names an unnamed profile");
    let max = p.conntrack.max.unwrap();
    assert_eq!(
        (max.value, max.intent, max.reason.as_deref()),
        (262144, Intent::AtLeast, Some("r"))
    );
    assert_eq!(
        p.conntrack.tcp_timeout_established.unwrap().intent,
        Intent::Exact
    );
    assert_eq!(p.backlog.somaxconn.unwrap().intent, Intent::AtMost);
    assert_eq!(
        p.sysctl[0].desired.value,
        SysctlValue::Text("4096 87380 6291456".into())
    );
}

#[test]
fn unknown_keys_are_named_with_file_line_and_column() {
    let e = err("name = \"x\"\n\n[backlog]\nsomaxcon = 1\n");
    assert!(
        e.starts_with("/p/mine.toml:4:1: unknown field `somaxcon`"),
        "{e}"
    );
    let e = err("[conntrack]\nmax = { at_leest = 5 }\n");
    assert!(
        e.contains("/p/mine.toml:2:") && e.contains("unknown field `at_leest`"),
        "{e}"
    );
    let e = err("[backlogs]\n");
    assert!(e.contains("unknown field `backlogs`"), "{e}");
    let e = err("[[listener]]\nport = 8080\nbacklg = 5\n");
    assert!(e.contains(":3:") && e.contains("backlg"), "{e}");
}

#[test]
fn bad_values_are_located() {
    let e = err("[backlog]\nsomaxconn = \"lots\"\n");
    assert!(
        e.contains(":2:13:") && e.contains("must be an integer"),
        "{e}"
    );
    let e = err("[conntrack]\nmax = { at_least = 1, exact = 2 }\n");
    assert!(e.contains("only one of"), "{e}");
    let e = err("[sysctl]\n\"net/core/somaxconn\" = 1\n");
    assert!(e.contains(":2:1:") && e.contains("contains `/`"), "{e}");
    let e = err("[sysctl]\n\"net.core.somaxconn\" = 1\n");
    assert!(
        e.contains("[backlog] somaxconn"),
        "typed keys stay typed: {e}"
    );
    let e =
        err("[sysctl]\n\"net.ipv4.tcp_congestion_control\" = \"cubic\\nnet.core.somaxconn = 1\"\n");
    assert!(
        e.contains("newline or control character"),
        "no line injection into sysctl.d: {e}"
    );
    let e = err("[backlog]\nsomaxconn = { at_least = 5, reason = \"a\\nb\" }\n");
    assert!(e.contains("newline"), "{e}");
    let e = err("[[listener]]\nport = 70000\n");
    assert!(e.contains("1 to 65535"), "{e}");
    let e = err("[[notrack]]\nfrom = \"10.0.1.5/24\"\nto = \"10.0.2.0/24\"\nport = 80\n");
    assert!(e.contains(":2:") && e.contains("host bits set"), "{e}");
    let e = err("[[notrack]]\nfrom = \"10.0.1.0/24\"\nto = \"fd00::/64\"\nport = 80\n");
    assert!(e.contains("mix IPv4 and IPv6"), "{e}");
    let e = err("[[offload]]\niface = \"a/b\"\ntso = false\n");
    assert!(e.contains("invalid interface name"), "{e}");
    let e = err("[[offload]]\niface = \"eth0\"\n");
    assert!(e.contains("at least one of"), "{e}");
}

#[test]
fn variables_fill_templates_and_are_checked() {
    let text = "[variables]\nport = { description = \"p\" }\nb = { description = \"backlog\", default = \"511\" }\n[[listener]]\nport = \"${port}\"\nbacklog = \"${b}\"\n";
    let origin = || ProfileOrigin::File("/p/v.toml".into());
    let p = load_text(origin(), text, &vars(&[("port", "8080")])).unwrap();
    assert_eq!(
        (p.listeners[0].port, p.listeners[0].backlog),
        (8080, Some(511))
    );
    let e = load_text(origin(), text, &BTreeMap::new()).unwrap_err();
    assert!(
        matches!(e, ProfileError::MissingVariable { ref name, .. } if name == "port"),
        "{e}"
    );
    assert_eq!(e.hint(&NEUTRAL).unwrap(), "set the variables `port=VALUE`");
    let e = load_text(origin(), text, &vars(&[("port", "1"), ("prot", "2")])).unwrap_err();
    assert!(e.to_string().contains("unknown variable `prot`"), "{e}");
    let e = load_text(origin(), text, &vars(&[("port", "80\n[backlog]")])).unwrap_err();
    assert!(e.to_string().contains("newline"), "{e}");
    let e = err("[[listener]]\nport = \"${nope}\"\n");
    assert!(e.contains(":2:8:") && e.contains("does not declare"), "{e}");
}

#[test]
fn extends_merges_child_over_parent() {
    let dir = std::env::temp_dir().join(format!("tcto-ext-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("base.toml"),
        "extends = \"client\"\n[backlog]\nsomaxconn = 1000\ntcp_max_syn_backlog = 2000\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("child.toml"),
        "extends = \"base.toml\"\n[backlog]\nsomaxconn = 3000\n",
    )
    .unwrap();
    let p = load(dir.join("child.toml").to_str().unwrap(), &BTreeMap::new()).unwrap();
    assert_eq!(p.backlog.somaxconn.unwrap().value, 3000);
    assert_eq!(p.backlog.tcp_max_syn_backlog.unwrap().value, 2000);
    assert!(
        p.client.tcp_tw_reuse.is_some(),
        "inherited from the built-in"
    );
    std::fs::write(dir.join("a.toml"), "extends = \"b.toml\"\n").unwrap();
    std::fs::write(dir.join("b.toml"), "extends = \"a.toml\"\n").unwrap();
    let e = load(dir.join("a.toml").to_str().unwrap(), &BTreeMap::new()).unwrap_err();
    assert!(matches!(e, ProfileError::Cycle { .. }), "{e}");
    assert!(e.to_string().contains("a -> b -> a"), "{e}");
    std::fs::write(dir.join("self.toml"), "extends = \"self.toml\"\n").unwrap();
    assert!(matches!(
        load(dir.join("self.toml").to_str().unwrap(), &BTreeMap::new()),
        Err(ProfileError::Cycle { .. })
    ));
    for i in 0..12 {
        std::fs::write(
            dir.join(format!("d{i}.toml")),
            format!("extends = \"d{}.toml\"\n", i + 1),
        )
        .unwrap();
    }
    std::fs::write(dir.join("d12.toml"), "").unwrap();
    let e = load(dir.join("d0.toml").to_str().unwrap(), &BTreeMap::new()).unwrap_err();
    assert!(matches!(e, ProfileError::TooDeep { .. }), "{e}");
    let e = err("extends = \"nonesuch\"\n");
    assert!(
        e.contains(":1:11:") && e.contains("unknown profile `nonesuch`"),
        "{e}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn unknown_and_oversized_profiles() {
    let e = load("no-such-profile", &BTreeMap::new()).unwrap_err();
    assert!(e.hint(&NEUTRAL).unwrap().contains("high-conn"));
    let path = std::env::temp_dir().join(format!("tcto-huge-{}.toml", std::process::id()));
    std::fs::write(&path, "#".repeat(2 << 20)).unwrap();
    let e = load(path.to_str().unwrap(), &BTreeMap::new()).unwrap_err();
    assert!(matches!(e, ProfileError::TooLarge { .. }), "{e}");
    std::fs::remove_file(path).unwrap();
}

#[test]
fn only_regular_files_are_read() {
    for path in ["/dev/zero", "/dev/null", "/proc/self"] {
        let e = load(path, &BTreeMap::new()).unwrap_err();
        assert!(e.to_string().contains(path), "{e}");
        assert!(
            std::error::Error::source(&e)
                .unwrap()
                .to_string()
                .contains("not a regular file"),
            "{path}: {e}"
        );
    }
}

#[test]
fn allow_lists_are_validated_and_inherited() {
    let p = from_text("allow = [\"offload-on-loopback\"]\n").unwrap();
    assert!(p.allow.contains("offload-on-loopback"));
    let e = err("allow = [\"no-such-code\"]\n");
    assert!(
        e.contains(":1:10:") && e.contains("unknown code `no-such-code`"),
        "{e}"
    );
}

#[test]
fn a_bad_set_value_names_its_variable() {
    let e = load(
        "trusted-notrack",
        &vars(&[
            ("frontend", "10.0.1.5/24"),
            ("backend", "10.0.2.0/24"),
            ("port", "8080"),
        ]),
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("host bits set") && e.to_string().contains("variable `frontend`"),
        "{e}"
    );
}

#[test]
fn a_scalar_of_the_wrong_type_is_reported_where_it_is() {
    // Integers and strings are accepted; everything else gets the same
    // message (serde's for an untagged enum) at the value's position.
    for (value, col) in [
        ("true", 8),
        ("1.5", 8),
        ("[1]", 8),
        ("{ a = 1 }", 8),
        ("1979-05-27", 8),
    ] {
        let text = format!("[[notrack]]\nport = {value}\n");
        let e = err(&text);
        assert!(
            e.contains(&format!("/p/mine.toml:2:{col}"))
                && e.contains("data did not match any variant of untagged enum Scalar"),
            "{value}: {e}"
        );
    }
    let p = from_text(
        "[[notrack]]\nfrom = \"10.0.1.0/24\"\nto = \"10.0.2.0/24\"\nport = 8080\n[[listener]]\nport = \"9090\"\n",
    )
    .unwrap();
    assert_eq!(p.notrack[0].port, Some(8080));
    assert_eq!(p.listeners[0].port, 9090);
}

/// Issue 17: a number too large for any sysctl is said in words, not as
/// serde's "invalid type: integer ... as i128".
#[test]
fn an_integer_too_large_for_any_sysctl_says_so() {
    for text in [
        "[backlog]\nsomaxconn = 99999999999999999999\n",
        "[sysctl]\n\"net.core.somaxconn\" = 99999999999999999999\n",
        "[backlog]\nsomaxconn = { at_least = 99999999999999999999 }\n",
    ] {
        let e = err(text);
        assert!(
            e.contains("integer `99999999999999999999` is too large for any sysctl")
                && !e.contains("i128"),
            "{e}"
        );
    }
}

/// Issue 17: the spelling hint shows a built-in that has the section the
/// typo is in, not always `high-conn` (which has no `[[offload]]`).
#[test]
fn unknown_field_hint_names_a_builtin_with_that_section() {
    let hint = |text: &str| from_text(text).unwrap_err().hint(&NEUTRAL).unwrap();
    assert!(hint("[[offload]]\niface = \"eth0\"\ntsoo = false\n").contains("profile `offload-off`"));
    assert!(hint("[[notrack]]\nfrom = \"10.0.0.0/8\"\nprot = 1\n")
        .contains("profile `trusted-notrack`"));
    assert!(hint("[client]\ntw_reuse = 1\n").contains("profile `client`"));
}

/// Issue 17: a bad value that came from `--set` is the caller's input
/// (usage), a bad value written in the file is not.
#[test]
fn a_bad_set_value_is_a_usage_error_and_a_bad_file_value_is_not() {
    let e = load(
        "trusted-notrack",
        &vars(&[
            ("frontend", "10.0.1.5"),
            ("backend", "10.0.2.0/24"),
            ("port", "80"),
        ]),
    )
    .unwrap_err();
    assert!(e.is_usage(), "{e}");
    // The error names the variable; the hint says how to give it another
    // value, in the caller's words.
    assert!(
        e.to_string().contains("(the value of variable `frontend`)"),
        "{e}"
    );
    assert_eq!(
        e.hint(&NEUTRAL).as_deref(),
        Some("check the variable `frontend=...`")
    );
    let e = from_text("[[notrack]]\nfrom = \"10.0.1.5\"\n").unwrap_err();
    assert_eq!(
        e.hint(&NEUTRAL),
        None,
        "the file is at fault, no variable to set"
    );
    assert!(!e.is_usage(), "{e}");
    assert!(e.to_string().contains("`10.0.1.5/32`"), "{e}");
}

#[test]
fn a_name_or_description_with_a_newline_is_refused() {
    // `name` goes into the header line of the persisted sysctl.d file: a
    // newline would inject `kernel.core_pattern = |...` as a line of its own.
    let e = err("name = \"x\\nkernel.core_pattern = |/tmp/evil\"\n[backlog]\nsomaxconn = 4096\n");
    assert!(
        e.starts_with("/p/mine.toml:1:1: `name` contains a newline or control character"),
        "{e}"
    );
    let e = err("name = \"ok\"\ndescription = \"d\\u001b[31m\"\n");
    assert!(
        e.starts_with("/p/mine.toml:2:1: `description` contains a newline"),
        "{e}"
    );
    // The default name is the file's: a file name can hold a newline too.
    let e = load_text(
        ProfileOrigin::File("/p/x\nkernel.modprobe = y.toml".into()),
        "[backlog]\nsomaxconn = 4096\n",
        &BTreeMap::new(),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("the default name is the file's name"), "{e}");
    assert!(from_text("name = \"fine name\"\ndescription = \"ünïcødé ok\"\n").is_ok());
}

/// A bad value that came from a variable's default (in the file) is the
/// file's error (exit 1, no hint to `--set` it), key or value alike; the
/// same value given by the caller is the caller's (a usage error).
#[test]
fn a_bad_default_is_the_files_fault_and_a_bad_given_value_the_callers() {
    let origin = || ProfileOrigin::File("/p/d.toml".into());
    let key = "[variables]\nk = { description = \"key\", default = \"net.core.so me\" }\n[sysctl]\n\"${k}\" = { exact = 1, reason = \"r\" }\n";
    let value = "[variables]\nf = { description = \"subnet\", default = \"10.0.0.1\" }\n[[notrack]]\nfrom = \"${f}\"\nto = \"10.0.0.0/8\"\nport = 80\nreason = \"r\"\n";
    for (text, var, bad) in [(key, "k", "net.core.so me"), (value, "f", "10.0.0.1")] {
        let e = load_text(origin(), text, &BTreeMap::new()).unwrap_err();
        assert!(!e.is_usage(), "{e}");
        assert_eq!(e.hint(&NEUTRAL), None, "{e}");
        assert!(
            e.to_string()
                .contains(&format!("(the value of variable `{var}`)")),
            "{e}"
        );
        let e = load_text(origin(), text, &vars(&[(var, bad)])).unwrap_err();
        assert!(e.is_usage(), "{e}");
        assert_eq!(
            e.hint(&NEUTRAL),
            Some(format!("check the variable `{var}=...`")),
            "{e}"
        );
    }
}
