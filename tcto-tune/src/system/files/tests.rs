use std::os::unix::fs::PermissionsExt;

use super::*;

/// A temporary directory removed on drop.
struct Tmp(PathBuf);

impl Tmp {
    fn new(tag: &str) -> Self {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "tcto-files-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        fs::create_dir_all(&p).unwrap();
        Tmp(p)
    }
}

impl Drop for Tmp {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

#[test]
fn writes_atomically_with_mode_0644_creating_parents() {
    let t = Tmp::new("write");
    let path = t.0.join("etc/sysctl.d/99-x.conf");
    write_file(&path, &Value::Bytes(b"a = 1\n".to_vec())).unwrap();
    assert_eq!(fs::read(&path).unwrap(), b"a = 1\n");
    let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o644);
    // No temporary file left behind.
    assert_eq!(entries(path.parent().unwrap()), ["99-x.conf"]);
    // Replacing keeps the mode exact even when the old file had another.
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    write_file(&path, &Value::Bytes(b"a = 2\n".to_vec())).unwrap();
    assert_eq!(read_file(&path).unwrap(), Value::Bytes(b"a = 2\n".to_vec()));
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o7777,
        0o644
    );
}

#[test]
fn a_symlink_at_the_target_is_refused_and_its_target_untouched() {
    let t = Tmp::new("link");
    let victim = t.0.join("victim");
    fs::write(&victim, b"precious\n").unwrap();
    let path = t.0.join("99-tcto-tune.conf");
    std::os::unix::fs::symlink(&victim, &path).unwrap();
    let e = write_file(&path, &Value::Bytes(b"x\n".to_vec())).unwrap_err();
    assert!(matches!(e, SystemError::FileIsSymlink { .. }), "{e}");
    assert_eq!(e.errno(), Some(libc::ELOOP));
    assert_eq!(fs::read(&victim).unwrap(), b"precious\n");
    assert!(fs::symlink_metadata(&path)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(
        read_file(&path).unwrap(),
        Value::Symlink(victim.display().to_string())
    );
    // No temporary file left behind.
    assert_eq!(entries(&t.0), ["99-tcto-tune.conf", "victim"]);
}

#[test]
fn absent_removes_and_is_idempotent() {
    let t = Tmp::new("absent");
    let path = t.0.join("f");
    fs::write(&path, b"x").unwrap();
    write_file(&path, &Value::Absent).unwrap();
    assert_eq!(read_file(&path).unwrap(), Value::Absent);
    write_file(&path, &Value::Absent).unwrap();
}

#[test]
fn symlinks_are_written_and_replaced() {
    let t = Tmp::new("wants");
    let path = t.0.join("multi-user.target.wants/x.service");
    write_file(
        &path,
        &Value::Symlink("/etc/systemd/system/x.service".into()),
    )
    .unwrap();
    assert_eq!(
        fs::read_link(&path).unwrap(),
        Path::new("/etc/systemd/system/x.service")
    );
    write_file(&path, &Value::Symlink("/elsewhere".into())).unwrap();
    assert_eq!(
        read_file(&path).unwrap(),
        Value::Symlink("/elsewhere".into())
    );
    write_file(&path, &Value::Absent).unwrap();
    assert_eq!(entries(path.parent().unwrap()), Vec::<String>::new());
}

#[test]
fn directories_and_relative_paths_are_errors() {
    let t = Tmp::new("dir");
    let e = write_file(&t.0, &Value::Bytes(vec![])).unwrap_err();
    assert_eq!(e.errno(), Some(libc::EISDIR), "{e}");
    assert!(read_file(&t.0).is_err());
    assert!(write_file(Path::new("rel/x"), &Value::Absent).is_err());
    assert!(write_file(&t.0.join("x"), &Value::Text("1".into())).is_err());
}

#[test]
fn a_missing_root_is_an_error_not_created() {
    let t = Tmp::new("root");
    let missing = t.0.join("nope");
    let e = read_persist_facts(&missing).unwrap_err();
    assert_eq!(e.errno(), Some(libc::ENOENT), "{e}");
    assert!(!missing.exists());
    let file = t.0.join("file");
    fs::write(&file, b"").unwrap();
    assert_eq!(
        read_persist_facts(&file).unwrap_err().errno(),
        Some(libc::ENOTDIR)
    );
}

#[test]
fn facts_list_sysctl_files_links_and_image_modules() {
    let t = Tmp::new("facts");
    let r = &t.0;
    fs::create_dir_all(r.join("etc/sysctl.d")).unwrap();
    fs::create_dir_all(r.join("usr/lib/sysctl.d")).unwrap();
    fs::create_dir_all(r.join("lib/modules/6.1.0-x")).unwrap();
    fs::write(r.join("etc/sysctl.conf"), "net.core.somaxconn=1\n").unwrap();
    std::os::unix::fs::symlink("../sysctl.conf", r.join("etc/sysctl.d/99-sysctl.conf")).unwrap();
    std::os::unix::fs::symlink("/dev/null", r.join("etc/sysctl.d/50-masked.conf")).unwrap();
    fs::write(r.join("etc/sysctl.d/README"), "not a conf").unwrap();
    fs::write(r.join("usr/lib/sysctl.d/50-masked.conf"), "x=1\n").unwrap();
    fs::write(
        r.join("lib/modules/6.1.0-x/modules.dep"),
        "kernel/net/netfilter/nf_conntrack.ko: kernel/lib/libcrc32c.ko\n",
    )
    .unwrap();
    fs::create_dir_all(r.join("etc/tuned")).unwrap();
    fs::write(
        r.join("etc/tuned/active_profile"),
        "throughput-performance\n",
    )
    .unwrap();

    let f = read_persist_facts(r).unwrap();
    let names: Vec<(&str, &str, bool, bool)> = f
        .sysctl_sources
        .iter()
        .map(|s| (s.dir.as_str(), s.name.as_str(), s.masked, s.is_sysctl_conf))
        .collect();
    assert_eq!(
        names,
        [
            ("/etc/sysctl.d", "50-masked.conf", true, false),
            ("/etc/sysctl.d", "99-sysctl.conf", false, true),
            ("/usr/lib/sysctl.d", "50-masked.conf", false, false),
            ("/etc", "sysctl.conf", false, true),
        ]
    );
    assert_eq!(f.sysctl_sources[1].text, "net.core.somaxconn=1\n");
    assert!(
        matches!(f.module, ModuleState::Loadable { .. }),
        "{:?}",
        f.module
    );
    assert_eq!(f.managers.len(), 1);
    assert_eq!(f.managers[0].name, "TuneD");
    assert_eq!(f.existing.len(), MANAGED_FILES.len());
    assert!(f.existing.values().all(|v| *v == Value::Absent));

    fs::write(
        r.join("lib/modules/6.1.0-x/modules.builtin"),
        "kernel/net/netfilter/nf_conntrack.ko\n",
    )
    .unwrap();
    let f = read_persist_facts(r).unwrap();
    assert!(
        matches!(f.module, ModuleState::BuiltIn { .. }),
        "{:?}",
        f.module
    );
}

#[test]
fn an_image_without_kernel_modules_is_unknown() {
    let t = Tmp::new("nomod");
    assert_eq!(
        read_persist_facts(&t.0).unwrap().module,
        ModuleState::Unknown
    );
}

#[test]
fn the_packaged_unit_is_recognised_by_its_exec_start_only() {
    use crate::persist::unit::render_packaged;
    let t = Tmp::new("packaged");
    let r = &t.0;
    assert!(!read_persist_facts(r).unwrap().packaged_unit);
    // Merged /usr: /lib is a relative link to usr/lib, as on Debian 12.
    fs::create_dir_all(r.join("usr/lib/systemd/system")).unwrap();
    std::os::unix::fs::symlink("usr/lib", r.join("lib")).unwrap();
    let unit = r.join("usr/lib/systemd/system/tcto-tune-restore.service");
    // A unit of that name that runs something else is not the package's.
    fs::write(
        &unit,
        "[Service]\nExecStart=/opt/x/tcto-tune apply --persisted\n",
    )
    .unwrap();
    assert!(!read_persist_facts(r).unwrap().packaged_unit);
    fs::write(&unit, render_packaged()).unwrap();
    assert!(read_persist_facts(r).unwrap().packaged_unit);
}

#[test]
fn a_killed_writers_temporary_file_is_swept_one_in_use_is_not() {
    let t = Tmp::new("sweep");
    let target = t.0.join("99-tcto-tune.conf");
    let stale = t.0.join(".99-tcto-tune.conf.tcto-tune-4242.tmp");
    let busy = t.0.join(".99-tcto-tune.conf.tcto-tune-4243.tmp");
    let other = t.0.join(".99-tcto-tune.conf.someone-else.tmp");
    for p in [&stale, &busy, &other] {
        fs::write(p, b"x").unwrap();
    }
    let held = fs::File::open(&busy).unwrap();
    assert!(rustix::fs::flock(&held, rustix::fs::FlockOperation::LockExclusive).is_ok());
    assert_eq!(read_target(&target).unwrap(), Value::Absent);
    assert!(!stale.exists(), "stale temp swept");
    assert!(busy.exists(), "a temp file still locked by a writer stays");
    assert!(other.exists(), "names not of our form are never touched");
    // The read-only reader used by dry runs sweeps nothing.
    drop(held);
    assert_eq!(read_file(&target).unwrap(), Value::Absent);
    assert!(busy.exists());
}
