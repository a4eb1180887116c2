//! Hints `persist` prints that name a command: each is taken from the
//! output as printed and run (`eval`), in paths with spaces, and what it
//! did is checked on disk and with `rollback`.

use tcto_tune_tests::{in_netns, require_root, TempDir, CRASH_HINTS};

/// The shell lines that put every `` `tcto-tune ...` `` command printed on
/// a `hint:` line of `$1` into `$2`, one a line.
const HINT_CMDS: &str =
    "hint_cmds() { grep 'hint:' \"$1\" | grep -o '`tcto-tune [^`]*`' | tr -d '`' > \"$2\"; }\n";

#[test]
fn two_unreadable_entries_never_block_each_others_removal() {
    if !require_root("two_unreadable_entries_never_block_each_others_removal") {
        return;
    }
    let dir = TempDir::new("two-broken");
    let d = dir.path();
    let e = format!("{d}/r x/etc/tcto-tune/persisted.d");
    std::fs::create_dir_all(format!("{d}/r x")).unwrap();
    let tt = format!("tcto-tune --state-dir '{d}/s d'");
    let root = format!("--root '{d}/r x'");
    let r = in_netns(&format!(
        "{HINT_CMDS}\
         {tt} persist --profile trusted-notrack --set frontend=10.0.1.0/24 --set backend=10.0.2.0/24 --set port=8080 {root} >/dev/null || exit 90\n\
         echo garbage-a > '{e}/a.toml'; echo garbage-b > '{e}/b.toml'\n\
         cp '{e}/trusted-notrack.toml' {d}/kept\n\
         (cd '{d}/r x' && find etc -type f ! -path '*persisted.d*' | sort | xargs md5sum) > {d}/rendered\n\
         {tt} persist --list {root} > {d}/list 2>&1; echo list=$?\n\
         hint_cmds {d}/list {d}/cmds; cat {d}/cmds\n\
         head -1 {d}/cmds > {d}/first\n\
         . {d}/first > {d}/out 2>&1; echo first=$?; cat {d}/out\n\
         ls '{e}'\n\
         {tt} apply --persisted {root} --dry-run 2>&1; echo boot=$?\n\
         {tt} status {root} --exit-code >/dev/null 2>&1; echo status=$?\n\
         (cd '{d}/r x' && find etc -type f ! -path '*persisted.d*' | sort | xargs md5sum) | diff {d}/rendered - && echo rendered-unchanged\n\
         {tt} persist --list {root} > {d}/list2 2>&1\n\
         hint_cmds {d}/list2 {d}/cmds2\n\
         . {d}/cmds2 >/dev/null 2>&1; echo second=$?\n\
         ls '{e}'\n\
         {tt} apply --persisted {root} --dry-run >/dev/null 2>&1; echo boot=$?\n\
         cmp {d}/kept '{e}/trusted-notrack.toml' && echo entry-kept\n\
         {tt} rollback >/dev/null && {tt} rollback >/dev/null; echo rollback=$?\n\
         cat '{e}/a.toml' '{e}/b.toml'\n"
    ));
    let out = &r.stdout;
    assert!(out.contains("list=1"), "{r}");
    assert!(
        out.contains(&format!("{tt} persist --root '{d}/r x' --remove a\n")),
        "{r}"
    );
    assert!(out.contains("first=0"), "{r}");
    assert!(
        out.contains("warn [persist-entry-unreadable] cannot read the persisted entry")
            && out.contains("removing `a` removes its entry only"),
        "b is still reported: {r}"
    );
    assert!(out.contains("b.toml\ntrusted-notrack.toml\n"), "{r}");
    assert!(
        out.contains("boot=1") && out.contains(&format!("{e}/b.toml")),
        "boot still refuses, naming b: {r}"
    );
    assert!(out.contains("status=4"), "{r}");
    assert!(out.contains("rendered-unchanged"), "{r}");
    assert!(out.contains("second=0"), "{r}");
    assert!(out.contains("boot=0"), "{r}");
    assert!(out.contains("entry-kept"), "{r}");
    assert!(out.contains("rollback=0"), "{r}");
    assert!(
        out.trim_end().ends_with("garbage-a\ngarbage-b"),
        "rollback brings both back byte for byte: {r}"
    );
}

#[test]
fn the_conflict_hint_names_only_a_removal_that_runs_and_does_something() {
    if !require_root("the_conflict_hint_names_only_a_removal_that_runs_and_does_something") {
        return;
    }
    let dir = TempDir::new("conflict-hint");
    let d = dir.path();
    std::fs::create_dir_all(format!("{d}/r x")).unwrap();
    std::fs::write(
        format!("{d}/small.toml"),
        "name = \"small\"\n[backlog]\nsomaxconn = 2048\n",
    )
    .unwrap();
    let tt = format!("tcto-tune --state-dir '{d}/s d'");
    let root = format!("--root '{d}/r x'");
    let r = in_netns(&format!(
        "{HINT_CMDS}\
         {tt} persist --profile high-conn {root} >/dev/null || exit 90\n\
         {tt} persist --profile {d}/small.toml {root} > {d}/out 2>&1; echo refused=$?\n\
         cat {d}/out\n\
         hint_cmds {d}/out {d}/cmds\n\
         echo \"cmds=$(wc -l < {d}/cmds)\"\n\
         while read -r c; do eval \"$c\" > {d}/ran 2>&1; echo ran=$?; cat {d}/ran; done < {d}/cmds\n\
         {tt} persist --profile {d}/small.toml {root} >/dev/null; echo again=$?\n\
         {tt} persist --list {root}\n"
    ));
    let out = &r.stdout;
    assert!(out.contains("refused=3"), "{r}");
    assert!(
        out.contains("cmds=1\n"),
        "only the removal of the persisted one: {r}"
    );
    assert!(
        out.contains("drop it with") || out.contains("to keep 2048: `tcto-tune"),
        "{r}"
    );
    assert!(!out.contains("--remove small"), "{r}");
    assert!(out.contains("then persist `small` again"), "{r}");
    assert!(out.contains("ran=0"), "{r}");
    assert!(!out.contains("nothing to do"), "{r}");
    assert!(out.contains("again=0"), "{r}");
    assert!(
        out.contains("\nsmall ") && !out.contains("\nhigh-conn "),
        "{r}"
    );
}

#[test]
fn a_linked_entry_hint_removes_the_link_never_its_target_and_rollback_restores_it() {
    if !require_root(
        "a_linked_entry_hint_removes_the_link_never_its_target_and_rollback_restores_it",
    ) {
        return;
    }
    let dir = TempDir::new("linked-entry");
    let d = dir.path();
    let e = format!("{d}/r x/etc/tcto-tune/persisted.d");
    std::fs::create_dir_all(&e).unwrap();
    std::fs::write(format!("{d}/target"), "precious\n").unwrap();
    let tt = format!("tcto-tune --state-dir '{d}/s d'");
    let root = format!("--root '{d}/r x'");
    // One link to a file outside the root, one climbing out of it with
    // `..`, one dangling.
    let r = in_netns(&format!(
        "{HINT_CMDS}\
         ln -s {d}/target '{e}/out.toml'\n\
         ln -s ../../../../target '{e}/up.toml'\n\
         ln -s /nonexistent '{e}/gone.toml'\n\
         for n in out up gone; do\n\
           {tt} persist --list {root} > {d}/list 2>&1\n\
           hint_cmds {d}/list {d}/cmds\n\
           grep -- \"--remove $n\\$\" {d}/cmds > {d}/cmd || exit 91\n\
           . {d}/cmd > {d}/ran 2>&1; echo \"$n=$?\"; cat {d}/ran\n\
           test -L \"{e}/$n.toml\" && echo \"$n still there\"\n\
         done\n\
         cat {d}/target\n\
         {tt} rollback >/dev/null; echo rollback=$?\n\
         readlink '{e}/gone.toml'\n\
         {tt} rollback --to 1 >/dev/null; echo rollback=$?\n\
         readlink '{e}/out.toml' '{e}/up.toml'\n\
         cat {d}/target\n"
    ));
    let out = &r.stdout;
    for n in ["out", "up", "gone"] {
        assert!(out.contains(&format!("{n}=0")), "{r}");
        assert!(!out.contains(&format!("{n} still there")), "{r}");
    }
    assert!(!out.contains("nothing to do"), "{r}");
    assert!(out.contains("rollback=0\n/nonexistent\nrollback=0"), "{r}");
    assert!(
        out.contains(&format!("{d}/target\n../../../../target\n")),
        "links restored as they were: {r}"
    );
    assert_eq!(
        out.matches("precious\n").count(),
        2,
        "target untouched: {r}"
    );
}

#[test]
fn after_an_interrupted_persist_both_hinted_commands_run_as_printed() {
    if !require_root("after_an_interrupted_persist_both_hinted_commands_run_as_printed") {
        return;
    }
    let dir = TempDir::new("persist-crash-hint");
    let d = dir.path();
    std::fs::create_dir_all(format!("{d}/r x")).unwrap();
    let tt = format!("tcto-tune --state-dir '{d}/s d'");
    let root = format!("--root '{d}/r x'");
    // Each way out the hint names, taken from the hint and run: the
    // rollback, then (after a second crash) going ahead.
    let r = in_netns(&format!(
        "{CRASH_HINTS}snap() {{ (cd '{d}/r x' && find . -type f | sort | xargs -r md5sum); }}\n\
         snap > {d}/before\n\
         crash 1 {tt} persist --profile high-conn {root}\n\
         {tt} persist --profile high-conn {root} --dry-run > /dev/null 2>{d}/err; echo dry=$?\n\
         take dry '[^`]*--force-after-crash' {d}/err; run_taken dryrun-exit --dry-run\n\
         crash_then_hint 1 rollback 'tcto-tune [^`]* rollback' {tt} persist --profile high-conn {root}\n\
         snap | diff {d}/before - && echo restored\n\
         crash_then_hint 1 force '[^`]*--force-after-crash' {tt} persist --profile high-conn {root}\n\
         {tt} history | sed -n 2,3p\n\
         test -f '{d}/r x/etc/tcto-tune/persisted.d/high-conn.toml' && echo persisted\n"
    ));
    let out = &r.stdout;
    // A dry run is blocked like the real run; its hint names the real
    // command (a dry run keeps nothing), which previews with `--dry-run`.
    assert!(out.contains("dry=1"), "{r}");
    assert!(
        out.contains(&format!(
            "dry={tt} persist --profile high-conn --root '{d}/r x' --force-after-crash\n"
        )),
        "{r}"
    );
    assert!(out.contains("dryrun-exit=0"), "{r}");
    assert_eq!(out.matches("refused=1").count(), 2, "{r}");
    assert!(
        out.contains(&format!("rollback={tt} rollback\n")),
        "the rollback carries the state dir: {r}"
    );
    assert!(
        out.contains(&format!(
            "force={tt} persist --profile high-conn --root '{d}/r x' --force-after-crash\n"
        )),
        "{r}"
    );
    assert_eq!(out.matches("ran=0").count(), 2, "{r}");
    assert!(out.contains("restored"), "{r}");
    assert!(out.contains("interrupted (abandoned)"), "{r}");
    assert!(out.contains("persisted"), "{r}");
}

#[test]
fn hints_naming_a_path_with_a_space_run_as_printed() {
    if !require_root("hints_naming_a_path_with_a_space_run_as_printed") {
        return;
    }
    let dir = TempDir::new("spaced-paths");
    let d = dir.path();
    let img = format!("{d}/i m");
    let tt = format!("tcto-tune --state-dir '{d}/s d'");
    // Each hint's command in backticks is taken as printed and run.
    let r = in_netns(&format!(
        "{CRASH_HINTS}\
         {tt} persist --profile high-conn --root '{img}' --dry-run >/dev/null 2>{d}/err; echo missing-root=$?\n\
         take cmd 'mkdir -p ' {d}/err; run_taken ran\n\
         tcto-tune --state-dir '{d}/p q/s' persist --profile high-conn --root '{img}' >/dev/null 2>{d}/err; echo missing-parent=$?\n\
         take cmd 'mkdir -p ' {d}/err; run_taken ran\n\
         tcto-tune --state-dir '{d}/p q/s' persist --profile high-conn --root '{img}' >/dev/null; echo persisted=$?\n\
         rm '{img}/etc/sysctl.d/99-tcto-tune.conf'; ln -s /etc/shadow '{img}/etc/sysctl.d/99-tcto-tune.conf'\n\
         {tt} persist --profile high-conn --root '{img}' > {d}/out 2>&1; echo link=$?\n\
         take cmd 'rm ' {d}/out; run_taken ran\n\
         printf 'net.core.somaxconn = 1\\n' > '{img}/etc/sysctl.d/99-tcto-tune.conf'\n\
         {tt} persist --profile high-conn --root '{img}' > {d}/out 2>&1; echo foreign=$?\n\
         take cmd 'cat ' {d}/out; run_taken ran\n\
         {tt} persist --profile high-conn --root '{img}' --allow persist-foreign-file >/dev/null; echo replaced=$?\n\
         test -L /etc/shadow || echo shadow-not-a-link\n"
    ));
    let out = &r.stdout;
    assert!(out.contains("missing-root=1"), "{r}");
    assert!(out.contains(&format!("cmd=mkdir -p '{img}'\n")), "{r}");
    assert!(out.contains("missing-parent=1"), "{r}");
    assert!(out.contains(&format!("cmd=mkdir -p '{d}/p q'\n")), "{r}");
    assert!(out.contains("persisted=0"), "{r}");
    assert!(out.contains("link=3"), "{r}");
    assert!(
        out.contains(&format!("cmd=rm '{img}/etc/sysctl.d/99-tcto-tune.conf'\n")),
        "{r}"
    );
    assert!(out.contains("foreign=3"), "{r}");
    assert!(
        out.contains(&format!("cmd=cat '{img}/etc/sysctl.d/99-tcto-tune.conf'\n")),
        "{r}"
    );
    assert_eq!(out.matches("ran=0").count(), 4, "{r}");
    assert!(out.contains("replaced=0"), "{r}");
}

#[test]
fn a_directory_or_fifo_among_the_entries_is_reported_and_its_hint_runs() {
    if !require_root("a_directory_or_fifo_among_the_entries_is_reported_and_its_hint_runs") {
        return;
    }
    let dir = TempDir::new("dir-entry");
    let d = dir.path();
    let e = format!("{d}/r x/etc/tcto-tune/persisted.d");
    std::fs::create_dir_all(format!("{e}/x.toml")).unwrap();
    let tt = format!("tcto-tune --state-dir '{d}/s d'");
    let root = format!("--root '{d}/r x'");
    // Before: every persist command failed on them ("cannot read ...: not a
    // regular file", no hint), and a FIFO could block the read.
    let r = in_netns(&format!(
        "mkfifo '{e}/f.toml'\n\
         timeout 10 {tt} persist --list {root} > {d}/list 2>&1; echo list=$?\n\
         cat {d}/list\n\
         timeout 10 {tt} status {root} >/dev/null 2>&1; echo status=$?\n\
         timeout 10 {tt} persist --remove x {root} 2>{d}/err; echo remove=$?\n\
         grep '^hint:' {d}/err | grep -c '`mv '\n\
         grep 'hint:' {d}/list | grep -o '`mv [^`]*`' | tr -d '`' > {d}/cmds\n\
         while read -r c; do eval \"$c\"; echo moved=$?; done < {d}/cmds\n\
         timeout 10 {tt} persist --list {root}; echo list=$?\n\
         timeout 10 {tt} persist --profile high-conn {root} >/dev/null; echo persist=$?\n\
         ls -A '{e}'\n"
    ));
    let out = &r.stdout;
    assert!(out.contains("list=1"), "{r}");
    assert!(
        out.contains(&format!(
            "cannot read the persisted entry {e}/x.toml: a directory, not a regular file"
        )) && out.contains(&format!("{e}/f.toml: a FIFO, not a regular file")),
        "{r}"
    );
    assert!(out.contains("status=0"), "{r}");
    assert!(out.contains("remove=1\n1\n"), "{r}");
    assert_eq!(out.matches("moved=0").count(), 2, "{r}");
    assert!(out.contains("nothing persisted"), "{r}");
    assert!(out.contains("list=0") && out.contains("persist=0"), "{r}");
    assert!(
        out.trim_end()
            .ends_with("f.toml.aside\nhigh-conn.toml\nx.toml.aside"),
        "{r}"
    );
}
