//! Which boot a record was written in.
//!
//! A transaction interrupted before a reboot left runtime state (sysctls,
//! the NOTRACK table, offloads) that the reboot reset, but files that
//! survive it. To tell the two apart the journal stamps every record with
//! the kernel's random per-boot id, `/proc/sys/kernel/random/boot_id`.
//! Where it cannot be read (no procfs), records carry none and are treated
//! as from this boot: the cautious reading.

use std::path::{Path, PathBuf};

/// Where the kernel publishes the boot id.
pub const BOOT_ID_PATH: &str = "/proc/sys/kernel/random/boot_id";

/// The boot id read from `path`: its first line, trimmed; `None` when it
/// cannot be read or does not look like one (a UUID's hex and dashes).
pub fn read_boot_id(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let id = text.lines().next()?.trim();
    let valid =
        !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
    valid.then(|| id.to_owned())
}

/// The path the current boot id is read from: [`BOOT_ID_PATH`], or in a
/// test build (feature `fault-injection`) `TCTO_TUNE_BOOT_ID_FILE`, so the
/// end-to-end tests can simulate a reboot.
pub fn boot_id_path() -> PathBuf {
    #[cfg(feature = "fault-injection")]
    if let Some(p) = std::env::var_os("TCTO_TUNE_BOOT_ID_FILE") {
        return PathBuf::from(p);
    }
    PathBuf::from(BOOT_ID_PATH)
}

/// The current boot id.
pub fn current_boot_id() -> Option<String> {
    read_boot_id(&boot_id_path())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_kernels_id_and_rejects_junk() {
        let live = read_boot_id(Path::new(BOOT_ID_PATH));
        if Path::new(BOOT_ID_PATH).exists() {
            let id = live.expect("the kernel's boot id parses");
            assert_eq!(id.len(), 36, "{id}");
        }
        let dir = std::env::temp_dir().join(format!("tcto-boot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("id");
        std::fs::write(&f, "0b9a7c36-5c1f-4a2e-9d5e-3f1e2d3c4b5a\n").unwrap();
        assert_eq!(
            read_boot_id(&f).as_deref(),
            Some("0b9a7c36-5c1f-4a2e-9d5e-3f1e2d3c4b5a")
        );
        std::fs::write(&f, "../../etc\n").unwrap();
        assert_eq!(read_boot_id(&f), None);
        std::fs::write(&f, "").unwrap();
        assert_eq!(read_boot_id(&f), None);
        assert_eq!(read_boot_id(&dir.join("missing")), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
