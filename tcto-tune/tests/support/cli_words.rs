// The words of tcto-tune's command line: its commands and flags. One
// list for the two checks that the library names no CLI word (included by
// tests/cli_words.rs over the library's sources, and by src/words.rs's
// tests over the neutral words); a word added here is checked by both.

/// Words of the command line (a flag that is a prefix of another, `--for`,
/// is listed with its trailing space).
#[allow(dead_code)]
pub const CLI_WORDS: &[&str] = &[
    "tcto-tune rollback",
    "tcto-tune history",
    "tcto-tune persist",
    "tcto-tune apply",
    "tcto-tune plan",
    "--state-dir",
    "--allow",
    "--force",
    "--wait",
    "--app-backlog",
    "--persisted",
    "--remove",
    "--profile",
    "--set",
    "tcto-tune profiles",
    "tcto-tune diagnose",
    "tcto-tune verify",
    "tcto-tune probe",
    "--interval",
    "--for ",
    "--count",
    "--port",
    "--json",
    "--concurrency",
    "--timeout",
];
