//! Every command's `--json` output, and an error under `--json`, checked
//! against its JSON Schema in docs/schema/ (issue 17). The commands run
//! for real inside a throwaway network namespace, with a listener, a
//! journaled apply and a rollback, so the documents are what a script sees.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;
use tcto_tune_tests::{in_netns, require_root, TempDir, LISTEN_8080};

/// docs/schema/NAME.json with `common.json`'s definitions and
/// `report.json` inlined, so the validator needs no resolver (nothing is
/// ever fetched).
fn schema(name: &str) -> Value {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/schema");
    let read = |f: &str| -> String {
        let text = std::fs::read_to_string(dir.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        serde_json::from_str::<Value>(&text).unwrap_or_else(|e| panic!("{f}: {e}"));
        text.replace("\"common.json#/$defs/", "\"#/$defs/")
            .replace("\"report.json\"", "\"#/$defs/report\"")
    };
    let mut s: Value = serde_json::from_str(&read(&format!("{name}.json"))).unwrap();
    let common: Value = serde_json::from_str(&read("common.json")).unwrap();
    let mut report: Value = serde_json::from_str(&read("report.json")).unwrap();
    report.as_object_mut().unwrap().remove("$schema");
    let defs = s
        .as_object_mut()
        .unwrap()
        .entry("$defs")
        .or_insert_with(|| Value::Object(Default::default()))
        .as_object_mut()
        .unwrap();
    for (k, v) in common["$defs"].as_object().unwrap() {
        defs.insert(k.clone(), v.clone());
    }
    defs.insert("report".into(), report);
    s
}

fn check(name: &str, doc: &str) {
    let instance: Value =
        serde_json::from_str(doc).unwrap_or_else(|e| panic!("{name}: not JSON ({e}):\n{doc}"));
    let schema = schema(name);
    let v = jsonschema::validator_for(&schema).unwrap_or_else(|e| panic!("{name}.json: {e}"));
    let errors: Vec<String> = v
        .iter_errors(&instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{name}: {errors:#?}\n{doc}");
}

/// Run each `label=command` in one namespace, each output into its own file.
fn outputs(commands: &[(&str, String)]) -> BTreeMap<String, String> {
    let d = TempDir::new("schema");
    let mut script = format!("export TCTO_TUNE_STATE_DIR={}/s\n{LISTEN_8080}", d.path());
    for (i, (label, cmd)) in commands.iter().enumerate() {
        script.push_str(&format!(
            "{{ {cmd}; }} > {}/{label}.json || {{ echo '{label} failed' >&2; exit {}; }}\n",
            d.path(),
            10 + i
        ));
    }
    let r = in_netns(&script);
    assert_eq!(r.code, 0, "{r}");
    commands
        .iter()
        .map(|(label, _)| {
            let text = std::fs::read_to_string(d.0.join(format!("{label}.json"))).unwrap();
            (label.to_string(), text)
        })
        .collect()
}

#[test]
fn every_json_output_matches_its_schema() {
    if !require_root("every_json_output_matches_its_schema") {
        return;
    }
    let cmds: Vec<(&str, String)> = vec![
        (
            "plan",
            "tcto-tune plan --json --profile high-conn --port 8080".into(),
        ),
        (
            "diagnose",
            "tcto-tune diagnose --json --interval 100ms".into(),
        ),
        (
            // rp_filter.clients: a local client, an unreachable one, IPv6.
            "diagnose-clients",
            "tcto-tune diagnose --json --interval 0s --client 127.0.0.1 --client 192.0.2.1 --client ::1".into(),
        ),
        (
            "verify",
            "tcto-tune verify --json --for 200ms --port 8080".into(),
        ),
        (
            "probe",
            "tcto-tune probe 127.0.0.1:8080 --count 3 --json".into(),
        ),
        ("profiles-list", "tcto-tune profiles list --json".into()),
        (
            "profiles-show",
            "tcto-tune profiles show high-conn --json".into(),
        ),
        (
            "apply",
            "tcto-tune apply --json --profile high-conn --allow key-host-wide".into(),
        ),
        ("history", "tcto-tune history --json".into()),
        ("status", "tcto-tune status --json".into()),
        ("rollback-dry", "tcto-tune rollback --json --dry-run".into()),
        ("rollback", "tcto-tune rollback --json".into()),
        ("rollback-nothing", "tcto-tune rollback --json".into()),
        (
            "persist",
            "mkdir -p $TCTO_TUNE_STATE_DIR.img && tcto-tune persist --json --dry-run --profile high-conn --root $TCTO_TUNE_STATE_DIR.img".into(),
        ),
        (
            "persist-list",
            "tcto-tune persist --json --list --root $TCTO_TUNE_STATE_DIR.img".into(),
        ),
        (
            "error-usage",
            "tcto-tune plan --json --profile nosuch; test $? -eq 2".into(),
        ),
        (
            "error-runtime",
            "tcto-tune plan --json --profile /nonexistent/p.toml; test $? -eq 1".into(),
        ),
        (
            // Last: a transaction killed after its first write blocks
            // whatever would come after it.
            "status-interrupted",
            "TCTO_TUNE_FAULT_CRASH_AFTER=1 tcto-tune apply --profile backlog-overflow >/dev/null 2>&1; tcto-tune status --json > $TCTO_TUNE_STATE_DIR.st && grep -q '\"interrupted\"' $TCTO_TUNE_STATE_DIR.st && cat $TCTO_TUNE_STATE_DIR.st".into(),
        ),
    ];
    let out = outputs(&cmds);
    for (label, doc) in &out {
        let name = match label.as_str() {
            "profiles-list" | "profiles-show" => "profiles",
            "rollback-dry" | "rollback-nothing" => "rollback",
            "persist-list" => "persist",
            "status-interrupted" => "status",
            "diagnose-clients" => "diagnose",
            l if l.starts_with("error") => "error",
            l => l,
        };
        check(name, doc);
    }
}
