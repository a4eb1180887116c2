//! The module's words for the library's actions: its own options, as a
//! task names them (`allow`, `app_backlog`, `state: rolled_back`...). An
//! action the module has no option for (a forced rollback, removing a
//! persisted profile) is named as the `tcto-tune` command that does it,
//! with the task's `state_dir` and `root` as flags, so that the command
//! acts on the task's journal and image, not the default ones.

use std::path::Path;

use tcto_tune::words::{Action, Neutral, Words, WordsRef};

use crate::args::{Args, DEFAULT_STATE_DIR};

/// The module's words for one task: the flags its commands carry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Module {
    /// `--state-dir DIR` when the task's `state_dir` is not the default.
    state_dir: Option<String>,
    /// `--root DIR` when the task set `root`.
    root: Option<String>,
    /// The task's `--profile`, `--set`, `--port`, `--app-backlog` and
    /// `--allow`, for an `apply` command (empty when not known).
    apply_args: String,
    /// The task is `state: persisted`: going ahead past a crash is its
    /// `persist` again (with its `exec`, ` --exec PATH`), not an `apply`.
    persist: Option<String>,
}

/// The words of a task with the default `state_dir` and no `root`.
pub static MODULE: Module = Module {
    state_dir: None,
    root: None,
    apply_args: String::new(),
    persist: None,
};

pub use tcto_tune::words::shell_word;

impl Module {
    /// The words of a task with this `state_dir` and `root`.
    pub fn for_paths(state_dir: &Path, root: Option<&Path>) -> Module {
        Module {
            state_dir: (state_dir != Path::new(DEFAULT_STATE_DIR))
                .then(|| shell_word(&state_dir.display().to_string())),
            root: root.map(|r| shell_word(&r.display().to_string())),
            apply_args: String::new(),
            persist: None,
        }
    }

    /// The words of `args`' task (its paths and, for `apply`, its profile
    /// and options).
    pub fn of_task(args: &Args) -> Module {
        let mut m = Module::for_paths(&args.state_dir, args.root.as_deref());
        let mut a = String::new();
        if let Some(p) = &args.profile {
            a.push_str(&format!(" --profile {}", shell_word(p)));
        }
        for (k, v) in &args.set {
            a.push_str(&format!(" --set {}", shell_word(&format!("{k}={v}"))));
        }
        for p in &args.ports {
            a.push_str(&format!(" --port {p}"));
        }
        for (p, b) in &args.app_backlog {
            a.push_str(&format!(" --app-backlog {p}={b}"));
        }
        for c in &args.allow {
            a.push_str(&format!(" --allow {}", shell_word(c)));
        }
        m.apply_args = a;
        if args.state == crate::args::State::Persisted {
            // Always the task's `exec`: the CLI's default is the binary
            // that runs, which would write another boot unit.
            m.persist = Some(format!(" --exec {}", shell_word(&args.exec)));
        }
        m
    }

    /// The words of `args`' task, as a static value the library's options
    /// can point at. One small value is leaked per call: the module runs
    /// one task per process.
    pub fn for_task(args: &Args) -> &'static Module {
        let m = Module::of_task(args);
        if m == MODULE {
            return &MODULE;
        }
        Box::leak(Box::new(m))
    }

    /// A `tcto-tune` command line: `tcto-tune [--state-dir DIR] SUB`, with
    /// `--root DIR` appended when `root` applies to it (persist).
    pub fn command(&self, sub: &str, with_root: bool) -> String {
        let mut s = "tcto-tune".to_owned();
        if let Some(d) = &self.state_dir {
            s.push_str(&format!(" --state-dir {d}"));
        }
        s.push(' ');
        s.push_str(sub);
        if let (true, Some(r)) = (with_root, &self.root) {
            s.push_str(&format!(" --root {r}"));
        }
        s
    }
}

/// The task's words for the library's options.
pub fn module_words(args: &Args) -> WordsRef {
    WordsRef(Module::for_task(args))
}

fn backlog(b: Option<i64>) -> String {
    b.map_or("N".to_owned(), |b| b.to_string())
}

impl Words for Module {
    fn instruct(&self, action: &Action) -> String {
        match action {
            Action::Allow(code) => format!("add `{code}` to the task's `allow` list"),
            Action::AllowAny => "add the code to the task's `allow` list".into(),
            Action::AppBacklog { .. }
            | Action::Rollback
            | Action::SetVariable { .. }
            | Action::SetVariables(_) => {
                format!("run the task with {}", self.name(action))
            }
            Action::DropVariables => format!("drop {}", self.name(action)),
            // A plan is a check-mode run: without it the task would apply.
            Action::Plan(_) => format!(
                "run the task in check mode (`check_mode: true`) with {}",
                plan_options(action)
            ),
            Action::Force
            | Action::ForceAfterCrash
            | Action::PersistRemove { .. }
            | Action::Diagnose { .. }
            | Action::Verify { .. }
            | Action::Probe { .. }
            | Action::ShowProfile { .. }
            | Action::ShowEveryListener => format!("run {}", self.name(action)),
            other => Neutral.instruct(other),
        }
    }
    fn name(&self, action: &Action) -> String {
        match action {
            Action::Allow(code) => format!("`allow: [{code}]`"),
            Action::AllowAny => "`allow` entry".into(),
            Action::AppBacklog { port, backlog: b } => {
                format!("`app_backlog: {{{port}: {}}}`", backlog(*b))
            }
            Action::Rollback => "`state: rolled_back`".into(),
            // No option of the module does these: the command line does.
            Action::Force => format!("`{}`", self.command("rollback --force", false)),
            Action::ForceAfterCrash => match &self.persist {
                Some(exec) => {
                    let persist = format!("persist{}{exec} --force-after-crash", self.apply_args);
                    format!("`{}`", self.command(&persist, true))
                }
                None => {
                    let apply = format!("apply{} --force-after-crash", self.apply_args);
                    format!("`{}`", self.command(&apply, false))
                }
            },
            Action::PersistRemove { name } => format!(
                "`{}`",
                self.command(&format!("persist --remove {}", shell_word(name)), true)
            ),
            // Not the module's: run on the host (or a client) by hand.
            Action::Diagnose { interval: None } => "`tcto-tune diagnose`".into(),
            Action::Diagnose { interval: Some(i) } => {
                format!("`tcto-tune diagnose --interval {}`", shell_word(i))
            }
            Action::Verify { duration } => {
                format!("`tcto-tune verify --for {}`", shell_word(duration))
            }
            Action::Probe { target, count } => {
                format!("`tcto-tune probe {} --count {count}`", shell_word(target))
            }
            Action::SetVariable { name, value } => format!("`set: {{{name}: {value}}}`"),
            Action::SetVariables(names) => {
                let sets: Vec<String> = names.iter().map(|n| format!("{n}: VALUE")).collect();
                format!("`set: {{{}}}`", sets.join(", "))
            }
            Action::DropVariables => "the task's `set` option".into(),
            Action::ShowEveryListener => "`tcto-tune diagnose --json`".into(),
            // No option of the module shows a profile: run on the host.
            Action::ShowProfile { name } => {
                format!("`tcto-tune profiles show {}`", shell_word(name))
            }
            Action::Plan(_) => format!(
                "a check-mode run (`check_mode: true`) with {}",
                plan_options(action)
            ),
            other => Neutral.name(other),
        }
    }
}

/// A plan's options as a task sets them: `profile:`, `set:`, `ports:`.
fn plan_options(action: &Action) -> String {
    match action {
        Action::Plan(c) => {
            let mut parts = vec![format!("`profile: {}`", c.profile)];
            if !c.sets.is_empty() {
                let sets: Vec<_> = c.sets.iter().map(|(k, v)| format!("{k}: {v}")).collect();
                parts.push(format!("`set: {{{}}}`", sets.join(", ")));
            }
            if !c.ports.is_empty() {
                let ports: Vec<_> = c.ports.iter().map(u16::to_string).collect();
                parts.push(format!("`ports: [{}]`", ports.join(", ")));
            }
            parts.join(", ")
        }
        other => Neutral.name(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::OPTIONS;
    use tcto_tune::words::every_action;

    /// Ansible's own task keywords a hint may name.
    const TASK_KEYWORDS: &[&str] = &["check_mode", "become", "retries", "until", "register"];

    /// The options of the argument spec ansible-doc reads (library/tcto_tune.yml).
    fn spec_options() -> Vec<String> {
        let doc = include_str!("../library/tcto_tune.yml");
        let opts = doc
            .split("\n  options:\n")
            .nth(1)
            .expect("the spec has options");
        opts.lines()
            .take_while(|l| l.is_empty() || l.starts_with("    "))
            .filter(|l| l.len() > 4 && !l[4..].starts_with(' ') && l.ends_with(':'))
            .map(|l| l.trim().trim_end_matches(':').to_owned())
            .collect()
    }

    fn task_words() -> Module {
        Module::for_paths(Path::new("/srv/my state"), Some(Path::new("/img")))
    }

    #[test]
    fn the_spec_s_options_are_the_parser_s() {
        let mut spec = spec_options();
        spec.sort();
        assert_eq!(spec, OPTIONS);
    }

    /// Every quoted word names one of the module's options (a `state`
    /// with one of its values) or an Ansible task keyword, or is a
    /// `tcto-tune` command for what no option does, carrying the task's
    /// `state_dir` (and `root` for persist).
    #[test]
    fn module_words_name_only_real_options() {
        let spec = spec_options();
        for words in [MODULE.clone(), task_words()] {
            for a in every_action() {
                for text in [words.instruct(&a), words.name(&a)] {
                    let quoted: Vec<&str> = text.split('`').skip(1).step_by(2).collect();
                    assert!(!quoted.is_empty(), "{a:?}: {text}");
                    for q in quoted {
                        if q.starts_with("tcto-tune ") {
                            let journaled = ["rollback", "apply", "persist", "history"]
                                .iter()
                                .any(|c| q.contains(&format!(" {c}")));
                            if words != MODULE && journaled {
                                assert!(
                                    q.starts_with("tcto-tune --state-dir '/srv/my state' "),
                                    "{q}"
                                );
                                if q.contains(" persist ") {
                                    assert!(q.ends_with(" --root /img"), "{q}");
                                }
                            }
                            continue;
                        }
                        let option = q.split(':').next().unwrap();
                        if TASK_KEYWORDS.contains(&option) {
                            continue;
                        }
                        if spec.iter().any(|o| o == option) {
                            if option == "state" {
                                let value = q.split(": ").nth(1).unwrap();
                                assert!(
                                    ["applied", "persisted", "rolled_back"].contains(&value),
                                    "{a:?}: {q}"
                                );
                            }
                            continue;
                        }
                        // A finding code, as in `allow: [CODE]`'s instruction.
                        assert!(
                            q.parse::<tcto_tune::FindingCode>().is_ok(),
                            "{a:?}: `{q}` is no option of the module: {text}"
                        );
                        assert!(text.contains("`allow`"), "{a:?}: {text}");
                    }
                }
            }
        }
    }

    #[test]
    fn commands_carry_the_task_s_state_dir_and_root() {
        let w = task_words();
        assert_eq!(
            w.name(&Action::Force),
            "`tcto-tune --state-dir '/srv/my state' rollback --force`"
        );
        assert_eq!(
            w.instruct(&Action::PersistRemove { name: "bad".into() }),
            "run `tcto-tune --state-dir '/srv/my state' persist --remove bad --root /img`"
        );
        // The default state_dir and no root: the bare command.
        let d = Module::for_paths(Path::new(DEFAULT_STATE_DIR), None);
        assert_eq!(d, MODULE);
        assert_eq!(d.name(&Action::Force), "`tcto-tune rollback --force`");
        // A name that needs quoting is quoted.
        assert_eq!(
            d.name(&Action::PersistRemove { name: "a b".into() }),
            "`tcto-tune persist --remove 'a b'`"
        );
    }

    #[test]
    fn a_plan_is_worded_as_a_check_mode_run() {
        let a = Action::Plan(
            tcto_tune::words::PlanCommand::new("trusted-notrack")
                .set("frontend", "CIDR")
                .ports(&[80]),
        );
        assert_eq!(
            MODULE.instruct(&a),
            "run the task in check mode (`check_mode: true`) with `profile: trusted-notrack`, `set: {frontend: CIDR}`, `ports: [80]`"
        );
        assert!(MODULE.name(&a).contains("`check_mode: true`"));
    }

    #[test]
    fn module_words_say_what_the_cli_says_in_the_module_s_terms() {
        let allow = Action::Allow(tcto_tune::FindingCode::KeyOutsideScope);
        assert_eq!(
            MODULE.instruct(&allow),
            "add `key-outside-scope` to the task's `allow` list"
        );
        assert_eq!(
            MODULE.instruct(&Action::Rollback),
            "run the task with `state: rolled_back`"
        );
        assert_eq!(
            MODULE.name(&Action::AppBacklog {
                port: 8080,
                backlog: None
            }),
            "`app_backlog: {8080: N}`"
        );
    }
}
