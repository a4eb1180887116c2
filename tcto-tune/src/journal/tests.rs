//! Journal tests: round trips, modes, unsafe dirs, corrupt files, the lock.

use std::os::unix::fs::PermissionsExt;

use super::*;
use crate::change::{ChangeKind, Target, Value};

struct Dir(PathBuf);
impl Dir {
    fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!("tcto-j-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        Dir(p)
    }
}
impl Drop for Dir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn record(id: &str) -> TxRecord {
    TxRecord {
        format: JOURNAL_FORMAT,
        id: id.into(),
        command: "apply".into(),
        profile: "high-conn".into(),
        started: now_rfc3339(),
        updated: now_rfc3339(),
        state: TxState::Open,
        steps: vec![Step {
            kind: ChangeKind::Sysctl,
            key: "net.core.somaxconn".into(),
            target: Target::Sysctl {
                key: "net.core.somaxconn".parse().unwrap(),
            },
            before: Value::Text("1024".into()),
            after: Value::Text("4096".into()),
            status: StepStatus::Pending,
            error: None,
            remedy: None,
            note: None,
        }],
        boot_id: None,
        notes: vec![],
    }
}

#[test]
fn records_round_trip_privately() {
    let d = Dir::new("rt");
    let j = Journal::open_or_create(&d.0).unwrap();
    assert_eq!(
        fs::metadata(&d.0).unwrap().permissions().mode() & 0o777,
        0o700
    );
    assert_eq!(j.next_id().unwrap(), "000001");
    j.write(&record("000001")).unwrap();
    assert_eq!(
        fs::metadata(d.0.join("tx/000001.json"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    assert_eq!(
        j.list().unwrap(),
        vec![record("000001")]
            .into_iter()
            .map(|mut r| {
                r.started = j.load("000001").unwrap().started;
                r.updated = r.started.clone();
                r
            })
            .collect::<Vec<_>>()
    );
    assert_eq!(j.next_id().unwrap(), "000002");
    assert!(
        !d.0.join("tx/.000001.json.tmp").exists(),
        "no temp file left behind"
    );
}

#[test]
fn a_torn_or_corrupt_file_is_named_never_guessed() {
    let d = Dir::new("corrupt");
    let j = Journal::open_or_create(&d.0).unwrap();
    let good = serde_json::to_string_pretty(&record("000001")).unwrap();
    fs::write(d.0.join("tx/000001.json"), &good[..good.len() / 2]).unwrap();
    let e = j.list().unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, JournalError::Corrupt { .. }), "{text}");
    assert!(
        text.contains("000001.json") && text.contains("line"),
        "{text}"
    );
    assert!(e
        .hint()
        .unwrap()
        .contains("nothing was rolled back or changed"));
    fs::write(
        d.0.join("tx/000001.json"),
        good.replace("\"format\": 2", "\"format\": 9"),
    )
    .unwrap();
    assert!(j
        .list()
        .unwrap_err()
        .to_string()
        .contains("unknown journal format 9"));
    fs::write(
        d.0.join("tx/000001.json"),
        good.replace("\"pending\"", "\"half-done\""),
    )
    .unwrap();
    assert!(matches!(
        j.list().unwrap_err(),
        JournalError::Corrupt { .. }
    ));
}

#[test]
fn unsafe_state_dirs_are_refused() {
    let d = Dir::new("unsafe");
    fs::create_dir_all(&d.0).unwrap();
    fs::set_permissions(&d.0, fs::Permissions::from_mode(0o777)).unwrap();
    let e = Journal::open_or_create(&d.0).unwrap_err();
    assert!(e.to_string().contains("writable by group or others"), "{e}");
    let link = d.0.with_extension("link");
    let _ = fs::remove_file(&link);
    fs::set_permissions(&d.0, fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::symlink(&d.0, &link).unwrap();
    let e = Journal::open_or_create(&link).unwrap_err();
    assert!(e.to_string().contains("symbolic link"), "{e}");
    fs::remove_file(&link).unwrap();
    let file = d.0.join("plain");
    fs::write(&file, "").unwrap();
    assert!(Journal::open_or_create(&file)
        .unwrap_err()
        .to_string()
        .contains("not a directory"));
}

#[test]
fn the_lock_is_exclusive_and_released_on_drop() {
    let d = Dir::new("lock");
    let j = Journal::open_or_create(&d.0).unwrap();
    let held = j.lock().unwrap();
    let e = j.lock().unwrap_err();
    assert!(
        e.to_string()
            .contains(&format!("pid {}", std::process::id())),
        "{e}"
    );
    drop(held);
    j.lock().unwrap();
}

/// `status` probes the lock without taking it: held is `Some(pid)`, free
/// (or never created) is `None`, and the probe never blocks a lock.
#[test]
fn the_lock_holder_is_probed_without_taking_the_lock() {
    let d = Dir::new("holder");
    let j = Journal::open_or_create(&d.0).unwrap();
    let _ = std::fs::remove_file(d.0.join("lock"));
    assert_eq!(j.lock_holder().unwrap(), None, "no lock file yet");
    let held = j.lock().unwrap();
    assert_eq!(
        j.lock_holder().unwrap(),
        Some(format!(" (pid {})", std::process::id()))
    );
    drop(held);
    assert_eq!(j.lock_holder().unwrap(), None);
    // A probe leaves nothing held.
    j.lock().unwrap();
}

#[test]
fn ids_are_validated_on_load() {
    let d = Dir::new("ids");
    let j = Journal::open_or_create(&d.0).unwrap();
    for bad in ["../../etc/passwd", "", "12a", "0000000000001"] {
        assert!(
            matches!(j.load(bad), Err(JournalError::UnknownTx { .. })),
            "{bad}"
        );
    }
    assert!(matches!(
        j.load("000042"),
        Err(JournalError::UnknownTx { .. })
    ));
}

#[test]
fn replace_rewrites_a_record_whole_and_newest_reads_only_the_last() {
    let d = Dir::new("replace");
    let j = Journal::open_or_create(&d.0).unwrap();
    assert_eq!(j.newest().unwrap(), None);
    for id in ["000001", "000002", "000003"] {
        j.write(&record(id)).unwrap();
    }
    let mut last = j.load("000003").unwrap();
    last.state = TxState::Applied;
    j.replace(&last).unwrap();
    assert_eq!(j.load("000003").unwrap().state, TxState::Applied);
    assert!(!d.0.join("tx/.000003.json.tmp").exists());
    // An older record that does not parse does not stop newest(): only
    // the newest can block (history and rollback still read them all).
    fs::write(d.0.join("tx/000001.json"), b"{").unwrap();
    assert_eq!(j.newest().unwrap().unwrap().id, "000003");
    assert!(matches!(j.list(), Err(JournalError::Corrupt { .. })));
    assert_eq!(j.next_id().unwrap(), "000004");
}

#[test]
fn newest_is_the_greatest_id_whatever_the_directory_order_or_width() {
    let d = Dir::new("newest");
    let j = Journal::open_or_create(&d.0).unwrap();
    // More names than one getdents buffer holds, written out of order, a
    // wider id past 999999, and names that are not records.
    let mut ids: Vec<String> = (1..=1500).map(|n| format!("{n:06}")).collect();
    ids.push("999999".into());
    ids.push("1000000".into());
    ids.swap(3, 700);
    for id in &ids {
        fs::write(d.0.join(format!("tx/{id}.json")), b"{").unwrap();
    }
    for other in [".1000001.json.tmp", "2000000.json.bak", "9999999", "x.json"] {
        fs::write(d.0.join("tx").join(other), b"").unwrap();
    }
    j.replace(&record("1000000")).unwrap();
    assert_eq!(j.newest().unwrap().unwrap().id, "1000000");
    assert_eq!(j.next_id().unwrap(), "1000001");
    let mut want = ids.clone();
    want.sort_by(|a, b| id_order(a, b));
    assert_eq!(j.ids().unwrap(), want);
}

#[test]
fn records_are_written_in_serde_jsons_pretty_layout() {
    let mut rec = record("000001");
    rec.steps.push(rec.steps[0].clone());
    rec.steps[1].error = Some("refused: \"x\"\n".into());
    rec.notes.push("a note".into());
    assert_eq!(
        pretty::to_vec(&rec).unwrap(),
        serde_json::to_vec_pretty(&rec).unwrap()
    );
}

#[test]
fn a_step_reads_in_the_direction_its_value_last_moved() {
    let mut step = record("000001").steps.remove(0);
    step.status = StepStatus::Applied;
    assert_eq!(step.transition(false), "1024 -> 4096");
    assert_eq!(step.transition(true), "4096 -> 1024", "a rollback's report");
    step.status = StepStatus::Reverted;
    assert_eq!(step.transition(false), "4096 -> 1024");
    step.status = StepStatus::RevertFailed;
    assert_eq!(step.transition(false), "4096 -> 1024");
    step.status = StepStatus::Unchanged;
    step.after = step.before.clone();
    assert_eq!(step.transition(false), "1024");
}

#[test]
fn a_format_1_record_without_a_boot_id_still_reads() {
    let d = Dir::new("v1");
    let j = Journal::open_or_create(&d.0).unwrap();
    let v1 = r#"{"format":1,"id":"000001","command":"apply","profile":"high-conn",
        "started":"2026-11-21T01:02:03Z","updated":"2026-11-21T01:02:03Z","state":"open",
        "steps":[{"kind":"sysctl","key":"net.core.somaxconn",
        "target":{"kind":"sysctl","key":"net.core.somaxconn"},
        "before":{"type":"text","value":"1024"},"after":{"type":"text","value":"4096"},
        "status":"pending","error":null}]}"#;
    fs::write(d.0.join("tx/000001.json"), v1).unwrap();
    let r = j.load("000001").unwrap();
    assert_eq!((r.format, r.boot_id.as_ref(), r.notes.len()), (1, None, 0));
    assert_eq!(r.label(Some("any")), "interrupted");
    assert!(!r.from_earlier_boot(Some("any")));
}

#[test]
fn scan_names_unreadable_files_and_keeps_the_rest() {
    let d = Dir::new("scan");
    let j = Journal::open_or_create(&d.0).unwrap();
    for id in ["000001", "000002", "000004"] {
        j.write(&record(id)).unwrap();
    }
    fs::write(d.0.join("tx/000002.json"), b"").unwrap();
    fs::create_dir(d.0.join("tx/000003.json")).unwrap();
    fs::write(d.0.join("tx/000005.json"), b"{\"format\": 1, \"id\"").unwrap();
    let scan = j.scan().unwrap();
    let ids = |v: Vec<&str>| v.into_iter().map(str::to_owned).collect::<Vec<_>>();
    assert_eq!(
        scan.records
            .iter()
            .map(|r| r.id.clone())
            .collect::<Vec<_>>(),
        ids(vec!["000001", "000004"])
    );
    assert_eq!(
        scan.unreadable
            .iter()
            .map(|u| u.id.clone())
            .collect::<Vec<_>>(),
        ids(vec!["000002", "000003", "000005"])
    );
    assert!(scan.unreadable[0].path.ends_with("tx/000002.json"));
    assert!(
        scan.unreadable[0].error.starts_with("corrupt at line 1"),
        "{:?}",
        scan.unreadable[0]
    );
    assert!(
        scan.unreadable[1].error.contains("directory"),
        "{:?}",
        scan.unreadable[1]
    );
    assert_eq!(scan.unreadable_from(Some("000004")).unwrap().id, "000005");
    assert_eq!(scan.unreadable_from(None).unwrap().id, "000005");
    fs::remove_file(d.0.join("tx/000005.json")).unwrap();
    let scan = j.scan().unwrap();
    assert_eq!(scan.unreadable_from(Some("000004")), None);
    assert_eq!(scan.unreadable_from(Some("000003")).unwrap().id, "000003");
    // Nothing was removed by reading.
    assert!(d.0.join("tx/000002.json").exists());
}

#[test]
fn only_the_last_component_of_a_state_dir_is_created() {
    let d = Dir::new("deep");
    fs::create_dir_all(&d.0).unwrap();
    let deep = d.0.join("nonexistent/deep/dir");
    let e = Journal::open_or_create(&deep).unwrap_err();
    assert!(
        matches!(&e, JournalError::MissingParent { parent, .. } if *parent == d.0.join("nonexistent/deep")),
        "{e}"
    );
    assert!(e.to_string().contains("nonexistent/deep`"), "{e}");
    assert!(e.hint().unwrap().contains("mkdir -p"), "{e:?}");
    assert!(!d.0.join("nonexistent").exists(), "nothing created");
    let last = d.0.join("state");
    Journal::open_or_create(&last).unwrap();
    assert_eq!(
        fs::metadata(&last).unwrap().permissions().mode() & 0o777,
        0o700
    );
    assert!(last.join("tx").is_dir());
}

/// Three records, written as `apply` writes them.
fn three(tag: &str) -> (Dir, Journal) {
    let d = Dir::new(tag);
    let j = Journal::open_or_create(&d.0).unwrap();
    for id in ["000001", "000002", "000003"] {
        j.write(&record(id)).unwrap();
    }
    (d, j)
}

#[test]
fn a_copy_with_leading_zeros_is_foreign_and_never_shadows_a_record() {
    let (d, j) = three("zeros");
    fs::copy(d.0.join("tx/000001.json"), d.0.join("tx/0000001.json")).unwrap();
    fs::copy(d.0.join("tx/000003.json"), d.0.join("tx/00000000003.json")).unwrap();
    // Ordered as numbers, the copies not listed: the next id is one past
    // the greatest record's, not the copy's.
    assert_eq!(j.ids().unwrap(), ["000001", "000002", "000003"]);
    assert_eq!(j.newest().unwrap().unwrap().id, "000003");
    assert_eq!(j.next_id().unwrap(), "000004");
    let scan = j.scan().unwrap();
    assert_eq!((scan.records.len(), scan.unreadable.len()), (3, 0));
    assert!(matches!(
        j.load("0000001"),
        Err(JournalError::UnknownTx { .. })
    ));
    assert!(d.0.join("tx/0000001.json").exists(), "never removed");
}

#[test]
fn a_record_whose_id_is_not_its_file_name_is_unreadable() {
    let (d, j) = three("mismatch");
    let path = d.0.join("tx/000003.json");
    let edited = fs::read_to_string(&path)
        .unwrap()
        .replace("\"000003\"", "\"abc\"");
    fs::write(&path, &edited).unwrap();
    let e = j.load("000003").unwrap_err();
    assert!(
        matches!(&e, JournalError::Corrupt { path: p, message, .. }
            if *p == path && message.contains("`abc`") && message.contains("`000003`")),
        "{e}"
    );
    assert!(e.hint().unwrap().contains(".broken"), "{e:?}");
    // The newest blocks (it could be an open transaction), and the next
    // id still comes from the file name, never from the edited field.
    assert!(matches!(j.newest(), Err(JournalError::Corrupt { .. })));
    assert_eq!(j.next_id().unwrap(), "000004");
    let scan = j.scan().unwrap();
    assert_eq!(scan.records.len(), 2);
    assert_eq!(scan.unreadable[0].id, "000003");
    assert!(scan.unreadable[0].error.contains("is not its file name"));
    // A copy of another record under a new name is the same.
    fs::copy(d.0.join("tx/000001.json"), d.0.join("tx/000005.json")).unwrap();
    assert!(matches!(
        j.load("000005"),
        Err(JournalError::Corrupt { .. })
    ));
    assert_eq!(j.next_id().unwrap(), "000006");
}

#[test]
fn a_new_record_never_replaces_an_existing_file() {
    let (d, j) = three("noreplace");
    let path = d.0.join("tx/000002.json");
    let before = fs::read(&path).unwrap();
    let mut other = record("000002");
    other.profile = "other".into();
    let e = j.write(&other).unwrap_err();
    assert!(
        matches!(&e, JournalError::Exists { path: p } if *p == path),
        "{e}"
    );
    assert!(e.to_string().contains("000002.json"), "{e}");
    assert!(e.hint().unwrap().contains("mv "), "{e:?}");
    assert_eq!(fs::read(&path).unwrap(), before, "left as it was");
    assert!(!d.0.join("tx/.000002.json.tmp").exists(), "no temp left");
    // A foreign file at the id is not replaced either.
    fs::write(d.0.join("tx/000004.json"), b"not ours").unwrap();
    assert!(matches!(
        j.write(&record("000004")),
        Err(JournalError::Exists { .. })
    ));
    assert_eq!(fs::read(d.0.join("tx/000004.json")).unwrap(), b"not ours");
    // Rewriting a record keeps the atomic replace.
    j.replace(&other).unwrap();
    assert_eq!(j.load("000002").unwrap().profile, "other");
    // And a record is never written under a name that is not an id.
    for id in ["0000005", "abc", "1000000000000", "../x"] {
        assert!(j.write(&record(id)).is_err(), "{id}");
    }
    assert!(!d.0.join("tx/0000005.json").exists());
}

#[test]
fn ids_stop_at_twelve_digits_and_longer_names_are_foreign() {
    let d = Dir::new("twelve");
    let j = Journal::open_or_create(&d.0).unwrap();
    j.write(&record("999999999998")).unwrap();
    assert_eq!(j.next_id().unwrap(), "999999999999");
    j.write(&record("999999999999")).unwrap();
    assert_eq!(j.load("999999999999").unwrap().id, "999999999999");
    let e = j.next_id().unwrap_err();
    assert!(
        matches!(&e, JournalError::IdsExhausted { path } if path.ends_with("tx/999999999999.json")),
        "{e}"
    );
    assert!(e.hint().unwrap().contains("mv "), "{e:?}");
    // Names past 12 digits, or zero-padded past 6, are not records: they
    // neither list nor block nor move the next id.
    let d2 = Dir::new("thirteen");
    let j2 = Journal::open_or_create(&d2.0).unwrap();
    j2.write(&record("000001")).unwrap();
    fs::write(d2.0.join("tx/1000000000000.json"), b"{").unwrap();
    fs::write(d2.0.join("tx/0000000000010.json"), b"{").unwrap();
    assert_eq!(j2.ids().unwrap(), ["000001"]);
    assert_eq!(j2.newest().unwrap().unwrap().id, "000001");
    assert_eq!(j2.next_id().unwrap(), "000002");
    let scan = j2.scan().unwrap();
    assert_eq!((scan.records.len(), scan.unreadable.len()), (1, 0));
    assert!(matches!(
        j2.load("1000000000000"),
        Err(JournalError::UnknownTx { .. })
    ));
}

#[test]
fn a_remedy_this_build_does_not_know_keeps_the_record_readable() {
    use crate::words::Remedy;
    let unknown = |json: &str| Remedy::Unknown(serde_json::from_str(json).unwrap());
    let text = String::from_utf8(pretty::to_vec(&record("000001")).unwrap()).unwrap();
    let with = |remedy: &str| {
        text.replace(
            "\"error\": null",
            &format!("\"error\": \"x\",\n      \"remedy\": {remedy}"),
        )
    };
    for (json, want) in [
        ("\"force-restores\"", Some(Remedy::ForceRestores)),
        ("\"forced\"", Some(Remedy::Forced)),
        (
            "\"rollback-in-its-namespace\"",
            Some(Remedy::RollbackInItsNamespace),
        ),
        (
            "\"ask-a-newer-version\"",
            Some(unknown("\"ask-a-newer-version\"")),
        ),
        (
            "{\"rollback-in\": {\"netns\": 5}}",
            Some(unknown("{\"rollback-in\": {\"netns\": 5}}")),
        ),
        ("7", Some(unknown("7"))),
        ("[1, \"forced\"]", Some(unknown("[1, \"forced\"]"))),
        ("true", Some(unknown("true"))),
        ("null", None),
    ] {
        let body = with(json);
        assert!(body.contains("remedy"), "{body}");
        let r = parse_record(Path::new("000001.json"), body.as_bytes())
            .unwrap_or_else(|e| panic!("{json}: {e}"));
        assert_eq!(r.steps[0].remedy, want, "{json}");
        // Written back, the remedy is the value it was, not a stand-in: a
        // rollback by this build never loses what a newer one wrote.
        let again = pretty::to_vec(&r).unwrap();
        let back = parse_record(Path::new("000001.json"), &again).unwrap();
        assert_eq!(back.steps[0].remedy, want, "{json}");
        let v: serde_json::Value = serde_json::from_slice(&again).unwrap();
        let want_json: serde_json::Value = serde_json::from_str(json).unwrap();
        assert_eq!(
            v["steps"][0].get("remedy").cloned().unwrap_or_default(),
            want_json,
            "{json}"
        );
    }
    // Still strict about the rest of the record.
    assert!(parse_record(Path::new("x"), with("7,").as_bytes()).is_err());
}

#[test]
fn a_dangling_link_at_a_record_name_is_named_not_called_missing() {
    let (d, j) = three("dangling");
    let path = d.0.join("tx/000004.json");
    std::os::unix::fs::symlink(d.0.join("nowhere"), &path).unwrap();
    let e = j.newest().unwrap_err();
    assert!(
        matches!(&e, JournalError::Io { path: p, .. } if *p == path),
        "{e}"
    );
    assert!(e.hint().unwrap().contains(".broken"), "{e:?}");
    let scan = j.scan().unwrap();
    assert_eq!(scan.unreadable[0].id, "000004");
    assert_eq!(j.next_id().unwrap(), "000005");
    assert!(matches!(
        j.load("000009"),
        Err(JournalError::UnknownTx { .. })
    ));
}

#[test]
fn an_unsafe_tx_directory_is_refused_by_every_open() {
    let d = Dir::new("unsafe-tx");
    let elsewhere = d.0.with_extension("elsewhere");
    let _ = fs::remove_dir_all(&elsewhere);
    fs::create_dir_all(&elsewhere).unwrap();
    fs::set_permissions(&elsewhere, fs::Permissions::from_mode(0o700)).unwrap();
    Journal::open_or_create(&d.0).unwrap();
    let tx = d.0.join("tx");
    fs::remove_dir(&tx).unwrap();
    let refused = |what: &str| {
        for e in [
            Journal::open_or_create(&d.0).unwrap_err(),
            Journal::open_existing(&d.0).unwrap_err(),
        ] {
            assert!(
                matches!(&e, JournalError::UnsafeTx { path, .. } if *path == tx),
                "{e}"
            );
            assert!(e.to_string().contains(what), "{e}");
            assert!(e.hint().unwrap().contains(&format!(
                "`mv {} {}.unsafe`",
                tx.display(),
                tx.display()
            )));
        }
    };
    // A link, even to a safe directory of ours, and a dangling one.
    std::os::unix::fs::symlink(&elsewhere, &tx).unwrap();
    refused(&format!(
        "it is a symbolic link (to `{}`), never followed",
        elsewhere.display()
    ));
    fs::remove_file(&tx).unwrap();
    std::os::unix::fs::symlink("/nonexistent", &tx).unwrap();
    refused("symbolic link (to `/nonexistent`)");
    fs::remove_file(&tx).unwrap();
    // A file, and a directory others can write.
    fs::write(&tx, "").unwrap();
    refused("it is not a directory");
    fs::remove_file(&tx).unwrap();
    fs::create_dir(&tx).unwrap();
    fs::set_permissions(&tx, fs::Permissions::from_mode(0o777)).unwrap();
    refused("writable by group or others");
    // Made safe again, it opens; nothing was written through the link.
    fs::set_permissions(&tx, fs::Permissions::from_mode(0o700)).unwrap();
    Journal::open_or_create(&d.0).unwrap();
    Journal::open_existing(&d.0).unwrap().unwrap();
    assert_eq!(fs::read_dir(&elsewhere).unwrap().count(), 0);
    fs::remove_dir_all(&elsewhere).unwrap();
}
