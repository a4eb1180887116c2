//! A journaled report or record in a front end's words.
//!
//! What the journal stores names no front end: a step's error states the
//! facts and keeps what the user can do about it as a typed
//! [`Remedy`]; the note of a transaction that went ahead after a crash
//! says so in the neutral words. [`TxReport::with_words`] and
//! [`TxRecord::with_words`] fold those into text in the reader's
//! [`Words`] (the CLI's `--force`, `tcto-tune rollback`), so its text and
//! JSON read as they always did. Records written before the typed remedy
//! carry the CLI's words in their text and no remedy: they are shown as
//! they are.

use super::TxReport;
use crate::journal::{Step, TxRecord};
use crate::system::NETNS_IDENTIFY;
use crate::words::{Action, Remedy, Words, NEUTRAL};

/// The note of a transaction that went ahead past an interrupted one, as
/// the journal stores it.
pub(super) fn forced_note(id: &str) -> String {
    format!(
        "went ahead after interrupted transaction {id} ({})",
        NEUTRAL.name(&Action::ForceAfterCrash)
    )
}

/// `note` in `words`: the neutral going-ahead note names the front end's
/// way to go ahead.
fn worded_note(note: &str, words: &dyn Words) -> String {
    let neutral = format!(" ({})", NEUTRAL.name(&Action::ForceAfterCrash));
    match note.strip_suffix(&neutral) {
        Some(head) if note.starts_with("went ahead after interrupted transaction ") => {
            format!("{head} ({})", words.name(&Action::ForceAfterCrash))
        }
        _ => note.to_owned(),
    }
}

/// The step's error with its remedy said in `words`.
fn worded_error(step: &Step, words: &dyn Words) -> Option<String> {
    let e = step.error.as_deref()?;
    Some(match &step.remedy {
        None | Some(Remedy::Unknown(_)) => e.to_owned(),
        Some(Remedy::ForceRestores) => format!(
            "{e} (use {} to restore `{}`)",
            words.name(&Action::Force),
            step.before.display()
        ),
        Some(Remedy::Forced) => format!("{}: {e}", words.name(&Action::Force)),
        Some(Remedy::RollbackInItsNamespace) => {
            let run = format!(
                "; run {} inside that namespace",
                words.name(&Action::Rollback)
            );
            match e.rfind(NETNS_IDENTIFY) {
                Some(i) => format!("{}{run}{}", &e[..i], &e[i..]),
                None => format!("{e}{run}"),
            }
        }
    })
}

/// Fold each step's remedy into its error; `failure`, which quotes a
/// step's error, is worded alike.
fn word_steps(steps: &mut [Step], mut failure: Option<&mut String>, words: &dyn Words) {
    for s in steps.iter_mut().filter(|s| s.remedy.is_some()) {
        let (Some(raw), Some(worded)) = (s.error.clone(), worded_error(s, words)) else {
            s.remedy = None;
            continue;
        };
        // The failure quotes the failing step with its target: two steps
        // with the same error text (the same drifted value) are told apart.
        let quoted = super::fail_text(&s.target, &raw);
        if let Some(f) = failure.as_deref_mut().filter(|f| f.contains(&quoted)) {
            *f = f.replacen(&quoted, &super::fail_text(&s.target, &worded), 1);
            failure = None;
        }
        s.error = Some(worded);
        s.remedy = None;
    }
}

impl TxReport {
    /// The report with what the user can do said in `words`: step errors,
    /// the failure and the notes. Its `Display` and JSON then name the
    /// front end's commands; the outcome line's commands are
    /// [`TxReport::worded`]'s.
    pub fn with_words(&self, words: &dyn Words) -> TxReport {
        let mut r = self.clone();
        word_steps(&mut r.steps, r.failure.as_mut(), words);
        r.notes = r.notes.iter().map(|n| worded_note(n, words)).collect();
        r
    }

    /// Whether a step still holds a typed remedy ([`TxReport::with_words`]
    /// has not run).
    pub(super) fn has_remedies(&self) -> bool {
        self.steps.iter().any(|s| s.remedy.is_some())
    }
}

impl TxRecord {
    /// The record with what the user can do said in `words` (as
    /// [`TxReport::with_words`]), for `history` and the like.
    pub fn with_words(&self, words: &dyn Words) -> TxRecord {
        let mut r = self.clone();
        word_steps(&mut r.steps, None, words);
        r.notes = r.notes.iter().map(|n| worded_note(n, words)).collect();
        r
    }
}
