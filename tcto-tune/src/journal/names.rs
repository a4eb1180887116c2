//! The transaction ids in `tx/`, read from the directory's raw entries.
//!
//! `apply` needs only the newest id, and the history grows by one file per
//! transaction, so this reads the names with `getdents64` into one buffer
//! (rustix's [`RawDir`]) and hands each to the caller as bytes: no
//! allocation per file, no sort. (Through `std::fs::read_dir` every entry
//! cost three allocations and the sort a comparison per pair: a quarter of
//! an `apply` at 400 earlier transactions.)
//!
//! One id rule serves listing, loading and the next id ([`parse_id`]): an
//! id is the canonical `{:06}` rendering of a number of at most 12 digits.
//! Any other name (`0000001.json`, a 13-digit one, `1.json`) is not one of
//! our records: it is ignored as foreign, so a stray copy can neither shadow
//! a record nor make the next id collide with one, and an over-long name
//! never blocks.

use std::path::Path;

use rustix::fs::{Mode, OFlags, RawDir};

/// The greatest id: ids have at most 12 digits.
pub(crate) const MAX_ID: u64 = 999_999_999_999;

/// The number of a canonical id: ASCII digits, 6 to 12 of them, and what
/// `format!("{n:06}")` gives for its number (no leading zero beyond the
/// padding). Anything else is `None`.
pub(crate) fn parse_id(id: &[u8]) -> Option<u64> {
    if !(6..=12).contains(&id.len())
        || !id.iter().all(u8::is_ascii_digit)
        || (id.len() > 6 && id[0] == b'0')
    {
        return None;
    }
    id.iter()
        .try_fold(0u64, |n, &b| Some(n * 10 + u64::from(b - b'0')))
}

/// The canonical name of id `n` (see [`parse_id`]).
pub(crate) fn id_string(n: u64) -> String {
    format!("{n:06}")
}

/// Call `f` with the number of every `NNNNNN.json` name in `dir` whose id
/// is canonical ([`parse_id`]), in directory order. A missing `dir` has no
/// ids.
pub(super) fn each_id(dir: &Path, mut f: impl FnMut(u64)) -> std::io::Result<()> {
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

/// The id of a journal file's name: `NNNNNN.json` with a canonical id.
fn id_of(name: &[u8]) -> Option<u64> {
    parse_id(name.strip_suffix(b".json")?)
}

#[cfg(test)]
mod tests {
    use super::{id_of, id_string, parse_id, MAX_ID};

    #[test]
    fn only_canonical_digit_names_with_the_suffix_are_ids() {
        assert_eq!(id_of(b"000001.json"), Some(1));
        assert_eq!(id_of(b"000000.json"), Some(0));
        assert_eq!(id_of(b"1234567.json"), Some(1_234_567));
        assert_eq!(id_of(b"999999999999.json"), Some(MAX_ID));
        for name in [
            // Leading zeros beyond the padding: a copy, not a record.
            &b"0000001.json"[..],
            b"0000000000010.json",
            // Past 12 digits, or short of the padding.
            b"1000000000000.json",
            b"1.json",
            b"00001.json",
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

    #[test]
    fn every_id_reads_back_as_its_own_name() {
        for n in [0, 1, 999_999, 1_000_000, 123_456_789_012, MAX_ID] {
            assert_eq!(parse_id(id_string(n).as_bytes()), Some(n), "{n}");
        }
        assert_eq!(parse_id(id_string(MAX_ID + 1).as_bytes()), None);
    }
}
