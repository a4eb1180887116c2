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
    j.write(&record("1000000")).unwrap();
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
