//! The transaction ids in `tx/`, read from the directory's raw entries.
//!
//! `apply` needs only the newest id, and the history grows by one file per
//! transaction, so this reads the names with `getdents64` into one buffer
//! (rustix's [`RawDir`]) and hands each to the caller as bytes: no
//! allocation per file, no sort. (Through `std::fs::read_dir` every entry
//! cost three allocations and the sort a comparison per pair: a quarter of
//! an `apply` at 400 earlier transactions.)

use std::path::Path;

use rustix::fs::{Mode, OFlags, RawDir};

/// Call `f` with the id of every `NNN.json` name in `dir` (ASCII digits
/// only, at least one), in directory order. A missing `dir` has no ids.
pub(super) fn each_id(dir: &Path, mut f: impl FnMut(&[u8])) -> std::io::Result<()> {
    let fd = match rustix::fs::open(
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(e) if e == rustix::io::Errno::NOENT => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    // Large enough for any one entry (names are at most 255 bytes), and for
    // a few hundred ids per system call.
    let mut buf = Vec::with_capacity(16 * 1024);
    let mut entries = RawDir::new(fd, buf.spare_capacity_mut());
    while let Some(entry) = entries.next() {
        if let Some(id) = id_of(entry?.file_name().to_bytes()) {
            f(id);
        }
    }
    Ok(())
}

/// The id of a journal file's name: `NNN.json` with only ASCII digits
/// before the suffix.
fn id_of(name: &[u8]) -> Option<&[u8]> {
    let id = name.strip_suffix(b".json")?;
    (!id.is_empty() && id.iter().all(u8::is_ascii_digit)).then_some(id)
}

/// An id from [`each_id`] as a string (ASCII digits, so no check needed).
pub(super) fn id_string(id: &[u8]) -> String {
    id.iter().map(|&b| char::from(b)).collect()
}

#[cfg(test)]
mod tests {
    use super::id_of;

    #[test]
    fn only_digit_names_with_the_suffix_are_ids() {
        assert_eq!(id_of(b"000001.json"), Some(&b"000001"[..]));
        assert_eq!(id_of(b"1234567.json"), Some(&b"1234567"[..]));
        for name in [
            &b".json"[..],
            b"00001.json.tmp",
            b".000001.json.tmp",
            b"00a001.json",
            b"000001.JSON",
            b"000001",
            b".",
            b"..",
            b"\xff1.json",
            b"+1.json",
        ] {
            assert_eq!(id_of(name), None, "{}", name.escape_ascii());
        }
    }
}
