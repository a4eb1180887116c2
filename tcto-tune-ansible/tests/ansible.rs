//! End-to-end: the `tcto_tune` module run by a real ansible-core.
//!
//! `scripts/ansible-venv` installs ansible-core into a virtualenv when
//! missing; every command here runs from that venv, so nothing depends on
//! the machine's own Python. Each test runs `ansible` (ad-hoc) or
//! `ansible-playbook` with `-i localhost, -c local` inside a throwaway
//! network namespace (`unshare -n -p -f`): the module changes that
//! namespace's sysctls, never the host's, and the oracle is `sysctl`.
//! Results are read as JSON, whole, through the `tcto_results` callback in
//! `tests/callback/` (Ansible's own ad-hoc output drops `failed` and
//! `diff`), never scraped from Ansible's text.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::{json, Value};
use tcto_tune_tests::{require_root, Run, TempDir};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// The venv's bin directory, installed once per test process. Outside CI a
/// machine that cannot reach PyPI skips with the reason; under `CI=true`
/// that is a failure.
fn venv() -> Option<PathBuf> {
    static VENV: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let r = VENV.get_or_init(|| {
        let out = Command::new(workspace().join("scripts/ansible-venv"))
            .output()
            .map_err(|e| format!("cannot run scripts/ansible-venv: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "scripts/ansible-venv failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
    });
    match r {
        Ok(p) => Some(p.clone()),
        Err(why) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("{why}\nunder CI=true a skip is a failure")
        }
        Err(why) => {
            eprintln!("skipped: no ansible-core: {why}");
            None
        }
    }
}

/// One test's Ansible setup: a library dir holding the module and its
/// sidecar docs, a state dir, and a dir for results and Ansible's temp files.
struct Lab {
    venv: PathBuf,
    lib: TempDir,
    state: TempDir,
    out: TempDir,
}

impl Lab {
    fn new(test: &str) -> Option<Lab> {
        if !require_root(test) {
            return None;
        }
        let venv = venv()?;
        let lib = TempDir::new("ansible-lib");
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_tcto_tune"), lib.0.join("tcto_tune"))
            .unwrap();
        std::fs::copy(
            workspace().join("tcto-tune-ansible/library/tcto_tune.yml"),
            lib.0.join("tcto_tune.yml"),
        )
        .unwrap();
        let out = TempDir::new("ansible-out");
        std::fs::write(out.0.join("ansible.cfg"), "").unwrap();
        Some(Lab {
            venv,
            lib,
            state: TempDir::new("ansible-state"),
            out,
        })
    }

    fn env(&self) -> String {
        let out = self.out.path();
        let callbacks = workspace().join("tcto-tune-ansible/tests/callback");
        format!(
            "set -u\n\
             export PATH=\"{venv}:$PATH:/usr/sbin:/sbin\"\n\
             export ANSIBLE_CONFIG={out}/ansible.cfg ANSIBLE_HOME={out}/home\n\
             export ANSIBLE_LOCAL_TEMP={out}/tmp ANSIBLE_REMOTE_TMP={out}/rtmp\n\
             export ANSIBLE_LIBRARY={lib} ANSIBLE_NOCOLOR=1\n\
             export ANSIBLE_PYTHON_INTERPRETER={venv}/python\n\
             export ANSIBLE_CALLBACK_PLUGINS={callbacks} ANSIBLE_CALLBACKS_ENABLED=tcto_results\n\
             export ANSIBLE_LOAD_CALLBACK_PLUGINS=1\n",
            venv = self.venv.display(),
            lib = self.lib.path(),
            callbacks = callbacks.display(),
        )
    }

    /// Run `body` with `sh` in a fresh network namespace (loopback up).
    fn in_netns(&self, body: &str) -> Run {
        let full = format!("{}ip link set lo up\n{body}\n", self.env());
        Command::new("unshare")
            .args(["-n", "-p", "-f", "sh", "-c", &full])
            .output()
            .expect("unshare runs")
            .into()
    }

    /// A shell line running the module ad hoc with `args`; its results go
    /// to the JSON-lines file `name`.
    fn adhoc(&self, name: &str, args: &Value, flags: &str) -> String {
        let mut args = args.clone();
        if args.get("state_dir").is_none() {
            args["state_dir"] = json!(self.state.path());
        }
        let quoted = args.to_string().replace('\'', r"'\''");
        format!(
            "TCTO_RESULTS={out}/{name} ansible localhost -i localhost, -c local -m tcto_tune -a '{quoted}' {flags} >{out}/{name}.log 2>&1\n",
            out = self.out.path()
        )
    }

    /// A shell line running `playbook` (written to the out dir).
    fn playbook(&self, name: &str, playbook: &str, flags: &str) -> String {
        let path = self.out.0.join(format!("{name}.yml"));
        std::fs::write(&path, playbook).unwrap();
        format!(
            "TCTO_RESULTS={out}/{name} ansible-playbook -i localhost, -c local {} {flags} >{out}/{name}.log 2>&1\n",
            path.display(),
            out = self.out.path()
        )
    }

    /// The results a run wrote, one per task, and Ansible's output for
    /// failure messages.
    fn results(&self, name: &str) -> Vec<Value> {
        let log =
            std::fs::read_to_string(self.out.0.join(format!("{name}.log"))).unwrap_or_default();
        let text = std::fs::read_to_string(self.out.0.join(name))
            .unwrap_or_else(|e| panic!("no results from `{name}` ({e}); ansible said:\n{log}"));
        text.lines()
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect()
    }

    /// The one result of the run `name`, with its status.
    fn result(&self, name: &str) -> (String, Value) {
        let mut all = self.results(name);
        assert_eq!(all.len(), 1, "{all:?}");
        let one = all.remove(0);
        (
            one["status"].as_str().unwrap().to_owned(),
            one["result"].clone(),
        )
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.out.0.join(format!("{name}.log"))).unwrap_or_default()
    }
}

/// `name=value` lines a script echoed.
fn field<'a>(run: &'a Run, name: &str) -> &'a str {
    run.stdout
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no `{name}=` in\n{run}"))
}

/// Every sysctl high-conn touches that a network namespace has, as
/// `sysctl` prints them: the oracle for "nothing changed" / "restored".
const SNAPSHOT: &str = "sysctl net.core.somaxconn net.ipv4.tcp_max_syn_backlog net.netfilter.nf_conntrack_tcp_timeout_established net.netfilter.nf_conntrack_tcp_timeout_time_wait net.netfilter.nf_conntrack_tcp_timeout_close_wait 2>/dev/null | tr '\\n' ';'";

#[test]
fn check_diff_shows_each_key_and_changes_nothing() {
    let Some(lab) = Lab::new("check_diff_shows_each_key_and_changes_nothing") else {
        return;
    };
    let run = lab.in_netns(&format!(
        "sysctl -qw net.core.somaxconn=1024\n\
         echo before=$({SNAPSHOT})\n{}echo after=$({SNAPSHOT})\n",
        lab.adhoc("check", &json!({"profile": "high-conn"}), "--check --diff")
    ));
    assert_eq!(field(&run, "before"), field(&run, "after"), "{run}");
    let (status, r) = lab.result("check");
    assert_eq!(status, "ok", "{r:#}\n{}", lab.log("check"));
    assert_eq!(r["changed"], true, "{r:#}");
    assert_eq!(r["transaction"], Value::Null, "{r:#}");
    let diff = r["diff"].as_array().expect("a diff list");
    let somaxconn = diff
        .iter()
        .find(|d| d["before_header"] == "sysctl net.core.somaxconn")
        .unwrap_or_else(|| panic!("no somaxconn in {diff:#?}"));
    assert_eq!(somaxconn["before"], "net.core.somaxconn = 1024\n");
    assert_eq!(somaxconn["after"], "net.core.somaxconn = 4096\n");
    // The plan is `tcto-tune plan --json`'s document.
    assert_eq!(r["plan"]["schema"], 1);
    assert_eq!(r["plan"]["profile"], "high-conn");
    assert!(r["plan"]["sysctl_d"]["path"].is_string(), "{r:#}");
    // No journal entry.
    let journal: Vec<_> = std::fs::read_dir(&lab.state.0)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(
        !journal
            .iter()
            .any(|n| n.to_string_lossy().ends_with(".json")),
        "{journal:?}"
    );
}

#[test]
fn playbook_applies_then_reports_no_change() {
    let Some(lab) = Lab::new("playbook_applies_then_reports_no_change") else {
        return;
    };
    let play = format!(
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - name: tune\n      tcto_tune:\n        profile: high-conn\n        state_dir: {}\n",
        lab.state.path()
    );
    let run = lab.in_netns(&format!(
        "sysctl -qw net.core.somaxconn=1024\n{}echo somaxconn=$(sysctl -n net.core.somaxconn)\n{}",
        lab.playbook("first", &play, ""),
        lab.playbook("second", &play, "--diff"),
    ));
    assert_eq!(field(&run, "somaxconn"), "4096", "{run}");
    let (status, first) = lab.result("first");
    assert_eq!(status, "ok", "{first:#}\n{}", lab.log("first"));
    assert_eq!(first["changed"], true, "{first:#}");
    assert_eq!(first["transaction"], "000001", "{first:#}");
    let (status, second) = lab.result("second");
    assert_eq!(status, "ok", "{second:#}");
    assert_eq!(second["changed"], false, "{second:#}");
    assert_eq!(second["diff"], json!([]), "{second:#}");
    assert_eq!(second["transaction"], Value::Null, "{second:#}");
}

#[test]
fn refusing_plan_fails_with_its_code_and_changes_nothing() {
    let Some(lab) = Lab::new("refusing_plan_fails_with_its_code_and_changes_nothing") else {
        return;
    };
    // An application that asks for a backlog of 511 on 8080, below the
    // somaxconn high-conn wants.
    let listener = format!(
        "{}/python -c 'import socket,sys,time\ns=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\ns.bind((\"127.0.0.1\", 8080)); s.listen(511)\nprint(\"ready\", flush=True); time.sleep(600)' > {out}/listener 2>&1 &\n\
         for i in $(seq 100); do grep -q ready {out}/listener 2>/dev/null && break; sleep 0.05; done\n",
        lab.venv.display(),
        out = lab.out.path()
    );
    let run = lab.in_netns(&format!(
        "sysctl -qw net.core.somaxconn=1024\n{listener}echo before=$({SNAPSHOT})\n{}echo after=$({SNAPSHOT})\n{}",
        lab.adhoc("refused", &json!({"profile": "high-conn", "ports": [8080]}), ""),
        lab.adhoc(
            "declared",
            &json!({"profile": "high-conn", "app_backlog": {"8080": 8192}}),
            "--check"
        ),
    ));
    assert_eq!(field(&run, "before"), field(&run, "after"), "{run}");
    let (status, r) = lab.result("refused");
    assert_eq!(status, "failed", "{r:#}");
    assert_eq!(r["changed"], false, "{r:#}");
    let msg = r["msg"].as_str().unwrap();
    assert!(msg.contains("somaxconn-above-app-backlog"), "{msg}");
    assert!(msg.contains("hint:"), "{msg}");
    // The hint names the module's option, not the CLI's flag.
    assert!(
        msg.contains("then run the task with `app_backlog: {8080: "),
        "{msg}"
    );
    assert!(!msg.contains("--app-backlog"), "{msg}");
    // Declaring the application's raised backlog lets it through, with the
    // restart warning Ansible shows as a warning.
    let (status, r) = lab.result("declared");
    assert_eq!(status, "ok", "{r:#}\n{}", lab.log("declared"));
    assert_eq!(r["changed"], true, "{r:#}");
    assert!(
        lab.log("declared")
            .contains("[WARNING]: [listener-needs-restart]"),
        "{}",
        lab.log("declared")
    );
}

#[test]
fn rolled_back_restores_every_value() {
    let Some(lab) = Lab::new("rolled_back_restores_every_value") else {
        return;
    };
    let run = lab.in_netns(&format!(
        "sysctl -qw net.core.somaxconn=1024\necho before=$({SNAPSHOT})\n{}echo applied=$({SNAPSHOT})\n{}{}echo after=$({SNAPSHOT})\n{}",
        lab.adhoc("apply", &json!({"profile": "high-conn"}), ""),
        lab.adhoc("check", &json!({"state": "rolled_back"}), "--check --diff"),
        lab.adhoc("rollback", &json!({"state": "rolled_back"}), "--diff"),
        lab.adhoc("again", &json!({"state": "rolled_back"}), ""),
    ));
    assert_ne!(field(&run, "before"), field(&run, "applied"), "{run}");
    assert_eq!(field(&run, "before"), field(&run, "after"), "{run}");
    let (_, applied) = lab.result("apply");
    assert_eq!(applied["transaction"], "000001", "{applied:#}");
    let (status, check) = lab.result("check");
    let (status2, r) = lab.result("rollback");
    assert_eq!((status.as_str(), status2.as_str()), ("ok", "ok"), "{r:#}");
    assert_eq!(r["changed"], true, "{r:#}");
    assert_eq!(r["undone"], json!(["000001"]), "{r:#}");
    // Check mode reports the same changes and diff, and made none (the
    // real rollback after it still had all of them to do).
    assert_eq!(check["changed"], true, "{check:#}");
    assert_eq!(check["diff"], r["diff"], "{check:#}");
    let somaxconn = r["diff"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["before_header"] == "sysctl net.core.somaxconn")
        .cloned()
        .unwrap_or_else(|| panic!("{r:#}"));
    assert_eq!(somaxconn["before"], "net.core.somaxconn = 4096\n");
    assert_eq!(somaxconn["after"], "net.core.somaxconn = 1024\n");
    let (_, again) = lab.result("again");
    assert_eq!(again["changed"], false, "{again:#}");
}

#[test]
fn persisted_with_root_writes_the_files_the_diff_shows() {
    let Some(lab) = Lab::new("persisted_with_root_writes_the_files_the_diff_shows") else {
        return;
    };
    let root = TempDir::new("ansible-root");
    let args = json!({"profile": "high-conn", "state": "persisted", "root": root.path()});
    lab.in_netns(&format!(
        "{}{}{}",
        lab.adhoc("check", &args, "--check --diff"),
        lab.adhoc("persist", &args, "--diff"),
        lab.adhoc("again", &args, "--diff"),
    ));
    let (status, check) = lab.result("check");
    assert_eq!(status, "ok", "{check:#}\n{}", lab.log("check"));
    let (status, r) = lab.result("persist");
    assert_eq!(status, "ok", "{r:#}\n{}", lab.log("persist"));
    assert_eq!(r["changed"], true, "{r:#}");
    assert_eq!(check["diff"], r["diff"], "check mode differs:\n{check:#}");
    let conf = format!("{}/etc/sysctl.d/99-tcto-tune.conf", root.path());
    let entry = r["diff"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["after_header"] == conf.as_str())
        .cloned()
        .unwrap_or_else(|| panic!("no {conf} in {r:#}"));
    assert_eq!(entry["before"], "");
    let written = std::fs::read_to_string(&conf).unwrap();
    assert_eq!(entry["after"], written.as_str());
    assert!(written.contains("net.core.somaxconn = 4096"), "{written}");
    // Every file the diff names was written as shown.
    for d in r["diff"].as_array().unwrap() {
        let path = d["after_header"].as_str().unwrap();
        if let Ok(text) = std::fs::read_to_string(path) {
            assert_eq!(d["after"], text.as_str(), "{path}");
        }
    }
    let (_, again) = lab.result("again");
    assert_eq!(again["changed"], false, "{again:#}");
}

#[test]
fn unknown_option_and_bad_set_value_fail_clearly() {
    let Some(lab) = Lab::new("unknown_option_and_bad_set_value_fail_clearly") else {
        return;
    };
    lab.in_netns(&format!(
        "{}{}",
        lab.adhoc("unknown", &json!({"profile": "high-conn", "profle": "x"}), ""),
        lab.adhoc(
            "badset",
            &json!({"profile": "trusted-notrack", "set": {"frontend": "10.0.1.0/33", "backend": "10.0.2.0/24", "port": 8080}}),
            "--check"
        ),
    ));
    let (status, r) = lab.result("unknown");
    assert_eq!(status, "failed", "{r:#}");
    let msg = r["msg"].as_str().unwrap();
    assert!(
        msg.starts_with("Unsupported parameters for (tcto_tune) module: profle."),
        "{msg}"
    );
    let (status, r) = lab.result("badset");
    assert_eq!(status, "failed", "{r:#}");
    let msg = r["msg"].as_str().unwrap();
    assert!(
        msg.starts_with("cannot load profile `trusted-notrack`"),
        "{msg}"
    );
    assert!(msg.contains("10.0.1.0/33"), "{msg}");
}

#[test]
fn ansible_doc_renders_the_sidecar() {
    let Some(lab) = Lab::new("ansible_doc_renders_the_sidecar") else {
        return;
    };
    let run = lab.in_netns("ansible-doc -t module tcto_tune --json\n");
    assert_eq!(run.code, 0, "{run}");
    let doc: Value = serde_json::from_str(&run.stdout).expect("ansible-doc --json");
    let doc = &doc["tcto_tune"]["doc"];
    let mut options: Vec<&str> = doc["options"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    options.sort_unstable();
    // Exactly the options the module accepts.
    let mut accepted = vec![
        "allow",
        "app_backlog",
        "exec",
        "ports",
        "profile",
        "root",
        "set",
        "state",
        "state_dir",
        "to",
    ];
    accepted.sort_unstable();
    assert_eq!(options, accepted);
    assert_eq!(doc["attributes"]["check_mode"]["support"], "full");
    assert_eq!(doc["attributes"]["diff_mode"]["support"], "full");
    let text = lab.in_netns("ansible-doc -t module tcto_tune\n");
    assert_eq!(text.code, 0, "{text}");
    assert!(text.stdout.contains("EXAMPLES"), "{text}");
}

#[test]
fn rollout_playbook_rolls_back_when_verify_fails_and_persists_when_it_passes() {
    let Some(lab) =
        Lab::new("rollout_playbook_rolls_back_when_verify_fails_and_persists_when_it_passes")
    else {
        return;
    };
    // The example playbook runs `tcto-tune verify` on each host.
    let cli = tcto_tune_tests::bin("tcto-tune");
    let root = TempDir::new("ansible-rollout-root");
    let play = std::fs::read_to_string(workspace().join("tcto-tune-ansible/rollout.yml")).unwrap();
    let vars = |verify_for: &str| {
        format!(
            "-e target_hosts=localhost -e verify_for={verify_for} -e state_dir={} -e persist_root={}",
            lab.state.path(),
            root.path()
        )
    };
    let run = lab.in_netns(&format!(
        "export PATH=\"{}:$PATH\"\nsysctl -qw net.core.somaxconn=1024\necho before=$({SNAPSHOT})\n{}echo rescued=$({SNAPSHOT})\n{}echo rolled_out=$(sysctl -n net.core.somaxconn)\n",
        cli.parent().unwrap().display(),
        // `--for 0s` is refused by verify: the rescue path.
        lab.playbook("bad", &play, &vars("0s")),
        lab.playbook("good", &play, &vars("1s")),
    ));
    assert_eq!(
        field(&run, "before"),
        field(&run, "rescued"),
        "{run}\n{}",
        lab.log("bad")
    );
    assert_eq!(
        field(&run, "rolled_out"),
        "4096",
        "{run}\n{}",
        lab.log("good")
    );
    let bad = lab.results("bad");
    let status = |all: &[Value], task: &str| {
        all.iter()
            .find(|r| r["task"] == task)
            .map(|r| r["status"].as_str().unwrap().to_owned())
            .unwrap_or_else(|| panic!("no task `{task}` in {all:#?}"))
    };
    assert_eq!(status(&bad, "Apply high-conn"), "ok");
    assert_eq!(status(&bad, "Roll back what this run changed"), "ok");
    assert_eq!(status(&bad, "Stop the rollout"), "failed");
    let good = lab.results("good");
    assert_eq!(status(&good, "Make it survive a reboot"), "ok");
    assert!(good.iter().all(|r| r["status"] == "ok"), "{good:#?}");
    assert!(
        std::path::Path::new(&format!("{}/etc/sysctl.d/99-tcto-tune.conf", root.path())).exists()
    );
}

#[test]
fn notrack_diff_is_the_table_nft_lists() {
    let Some(lab) = Lab::new("notrack_diff_is_the_table_nft_lists") else {
        return;
    };
    let args = json!({
        "profile": "trusted-notrack",
        "set": {"frontend": "10.0.1.0/24", "backend": "10.0.2.0/24", "port": 8080},
    });
    let nft = format!("{}/nft", lab.out.path());
    let run = lab.in_netns(&format!(
        "{}nft list table inet tcto_tune > {nft}\n{}echo left=$(nft list tables | grep -c tcto_tune)\n",
        lab.adhoc("apply", &args, "--diff"),
        lab.adhoc("rollback", &json!({"state": "rolled_back"}), "--diff"),
    ));
    let (status, r) = lab.result("apply");
    assert_eq!(status, "ok", "{r:#}\n{}", lab.log("apply"));
    let diff = r["diff"].as_array().unwrap();
    assert_eq!(diff.len(), 1, "{r:#}");
    assert_eq!(diff[0]["before_header"], "notrack inet tcto_tune");
    assert_eq!(diff[0]["before"], "");
    let words = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let listed = std::fs::read_to_string(&nft).unwrap();
    assert_eq!(
        words(diff[0]["after"].as_str().unwrap()),
        words(&listed),
        "{run}"
    );
    let (_, back) = lab.result("rollback");
    assert_eq!(back["diff"][0]["after"], "", "{back:#}");
    assert_eq!(field(&run, "left"), "0", "{run}");
}
