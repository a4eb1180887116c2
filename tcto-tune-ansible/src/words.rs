//! The module's words for the library's actions: its own options, as a
//! task names them (`allow`, `app_backlog`, `state: rolled_back`...). An
//! action the module has no option for (a forced rollback, removing a
//! persisted profile) is named as the `tcto-tune` command that does it,
//! as the module's other hints do.

use tcto_tune::words::{Action, Neutral, Words, WordsRef};

/// The module's words.
#[derive(Debug, Clone, Copy)]
pub struct Module;

/// The module's words, as the library's options carry them.
pub static MODULE: Module = Module;

/// [`MODULE`] for the library's options.
pub fn module_words() -> WordsRef {
    WordsRef(&MODULE)
}

fn backlog(b: Option<i64>) -> String {
    b.map_or("N".to_owned(), |b| b.to_string())
}

impl Words for Module {
    fn instruct(&self, action: &Action) -> String {
        match action {
            Action::Allow(code) => format!("add `{code}` to the task's `allow` list"),
            Action::AllowAny => "add the code to the task's `allow` list".into(),
            Action::AppBacklog { .. } | Action::Rollback | Action::Plan(_) => {
                format!("run the task with {}", self.name(action))
            }
            Action::Force | Action::ForceAfterCrash | Action::PersistRemove { .. } => {
                format!("run {}", self.name(action))
            }
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
            Action::Force => "`tcto-tune rollback --force`".into(),
            Action::ForceAfterCrash => "`tcto-tune apply --force-after-crash`".into(),
            Action::PersistRemove { name } => format!("`tcto-tune persist --remove {name}`"),
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::OPTIONS;
    use tcto_tune::words::every_action;

    /// Every quoted word names one of the module's options (a `state`
    /// with one of its values), or is a `tcto-tune` command for what no
    /// option does.
    #[test]
    fn module_words_name_only_real_options() {
        for a in every_action() {
            for text in [MODULE.instruct(&a), MODULE.name(&a)] {
                let quoted: Vec<&str> = text.split('`').skip(1).step_by(2).collect();
                assert!(!quoted.is_empty(), "{a:?}: {text}");
                for q in quoted {
                    if q.starts_with("tcto-tune ") {
                        continue;
                    }
                    let option = q.split(':').next().unwrap();
                    if OPTIONS.contains(&option) {
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
