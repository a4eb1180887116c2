//! Which process holds a socket: the scan of /proc/PID/fd behind
//! `diagnose`'s `process` field.
//!
//! The kernel has no reverse map from a socket to its holders, so (like
//! `ss -p`) this reads the `socket:[INODE]` link of every descriptor of the
//! candidate processes. On a busy host that is tens of thousands of
//! descriptors, and the kernel work per descriptor (a path lookup, a ptrace
//! permission check, the link text) is what a diagnosis spends most of its
//! time on. So the scan does as little per descriptor as it can:
//!
//! - one directory descriptor per process, opened relative to an open
//!   /proc, and each link read with `readlinkat` relative to it (no path
//!   building, no walk from `/`);
//! - descriptors are listed in small batches that grow (raw `getdents64`),
//!   because listing instantiates a /proc dentry for every entry returned:
//!   a libc-sized 32 KiB batch makes the kernel build ~1,300 of them even
//!   when the first 20 links are all that is needed;
//! - it stops as soon as every wanted inode has an owner (listeners are
//!   opened early, so their descriptors come first).

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::CStr;
use std::os::fd::{AsFd as _, AsRawFd as _, BorrowedFd, FromRawFd as _, OwnedFd};

use super::Process;

/// First `getdents64` batch, bytes (about 40 entries for /proc/PID/fd).
const FIRST_BATCH: usize = 1024;
/// Largest batch, bytes (what glibc's readdir uses).
const MAX_BATCH: usize = 32 * 1024;

/// Open `path` (relative to `dir`, or absolute when `dir` is `None`) as a
/// directory.
fn open_dir(dir: Option<BorrowedFd<'_>>, path: &CStr) -> Option<OwnedFd> {
    let at = dir.map_or(libc::AT_FDCWD, |d| d.as_raw_fd());
    // SAFETY: path is NUL-terminated; the returned descriptor, when valid,
    // is owned by nobody else.
    let fd = unsafe {
        libc::openat(
            at,
            path.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    // SAFETY: fd was just opened and is not owned elsewhere.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `readlinkat(dir, name)` into `buf`; the link's bytes.
fn read_link_at<'b>(dir: BorrowedFd<'_>, name: &CStr, buf: &'b mut [u8; 64]) -> Option<&'b [u8]> {
    // SAFETY: dir is an open directory, name NUL-terminated, and buf valid
    // for buf.len() bytes; readlinkat writes at most that many.
    let n = unsafe {
        libc::readlinkat(
            dir.as_raw_fd(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    let n = usize::try_from(n).ok()?;
    // A link filling the buffer may be truncated: not one we look for.
    (n < buf.len()).then(|| &buf[..n])
}

/// The inode of a `socket:[N]` link.
fn socket_inode(link: &[u8]) -> Option<u32> {
    let digits = link.strip_prefix(b"socket:[")?.strip_suffix(b"]")?;
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// The entries of an open directory, read in growing `getdents64` batches.
struct Entries {
    dir: OwnedFd,
    /// u64 for the alignment of `struct linux_dirent64`.
    buf: Vec<u64>,
    /// Bytes of `buf` filled by the last call, and the read position.
    len: usize,
    pos: usize,
    done: bool,
}

impl Entries {
    fn new(dir: OwnedFd) -> Self {
        Entries {
            dir,
            buf: vec![0; FIRST_BATCH / 8],
            len: 0,
            pos: 0,
            done: false,
        }
    }

    fn bytes(&self) -> &[u8] {
        // SAFETY: a u64 slice viewed as bytes: same memory, byte alignment.
        unsafe { std::slice::from_raw_parts(self.buf.as_ptr().cast(), self.buf.len() * 8) }
    }

    /// The next entry's name (without `.` and `..`) with the directory it
    /// is in, or `None` at the end or on an error (the process went away:
    /// nothing more to read).
    fn next_name(&mut self) -> Option<(BorrowedFd<'_>, &CStr)> {
        let (start, end) = loop {
            if self.pos >= self.len {
                if self.done || !self.fill() {
                    return None;
                }
                continue;
            }
            // struct linux_dirent64 { u64 d_ino; s64 d_off; u16 d_reclen;
            // u8 d_type; char d_name[]; }
            let at = self.pos;
            let rec = &self.bytes()[at..self.len];
            let reclen = rec
                .get(16..18)
                .map_or(0, |r| usize::from(u16::from_ne_bytes([r[0], r[1]])));
            if reclen < 20 || reclen > rec.len() {
                self.done = true;
                self.len = 0;
                return None;
            }
            let nul = rec[19..reclen].iter().position(|b| *b == 0);
            let wanted = nul.filter(|n| !matches!(&rec[19..19 + n], b"." | b".."));
            self.pos += reclen;
            if let Some(nul) = wanted {
                break (at + 19, at + 19 + nul + 1);
            }
        };
        let name = CStr::from_bytes_with_nul(&self.bytes()[start..end]).ok()?;
        Some((self.dir.as_fd(), name))
    }

    /// Read the next batch; false at the end of the directory or on error.
    fn fill(&mut self) -> bool {
        if self.len > 0 && self.buf.len() * 8 < MAX_BATCH {
            // The last batch was used up: the next one may well be too.
            let grown = (self.buf.len() * 2).min(MAX_BATCH / 8);
            self.buf.resize(grown, 0);
        }
        // SAFETY: the buffer is valid for its length in bytes; the kernel
        // writes whole linux_dirent64 records into it.
        let n = unsafe {
            libc::syscall(
                libc::SYS_getdents64,
                self.dir.as_raw_fd(),
                self.buf.as_mut_ptr(),
                self.buf.len() * 8,
            )
        };
        self.pos = 0;
        match usize::try_from(n) {
            Ok(n) if n > 0 => {
                self.len = n;
                true
            }
            _ => {
                self.len = 0;
                self.done = true;
                false
            }
        }
    }
}

/// The processes (in our network namespace) holding these socket inodes,
/// where readable (other users' processes need root).
pub(super) fn socket_owners(inodes: &BTreeSet<u32>) -> BTreeMap<u32, Process> {
    let mut found = BTreeMap::new();
    if inodes.is_empty() {
        return found;
    }
    let Some(proc) = open_dir(None, c"/proc") else {
        return found;
    };
    let mut buf = [0u8; 64];
    // Only processes in our network namespace are searched: sockets almost
    // always live in their owner's namespace, and skipping the rest keeps
    // the scan short on a busy host.
    let ours = read_link_at(proc.as_fd(), c"thread-self/ns/net", &mut buf).map(<[u8]>::to_vec);
    let Ok(pids) = std::fs::read_dir("/proc") else {
        return found;
    };
    let mut path = Vec::with_capacity(32);
    for p in pids.flatten() {
        let Some(pid) = p.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let mut at = |rest: &str| -> std::ffi::CString {
            path.clear();
            path.extend_from_slice(pid.to_string().as_bytes());
            path.extend_from_slice(rest.as_bytes());
            std::ffi::CString::new(path.as_slice()).expect("digits and a fixed suffix")
        };
        if let Some(ours) = &ours {
            if read_link_at(proc.as_fd(), &at("/ns/net"), &mut buf) != Some(ours.as_slice()) {
                continue;
            }
        }
        // Gone, or not ours to read: skip.
        let Some(fd_dir) = open_dir(Some(proc.as_fd()), &at("/fd")) else {
            continue;
        };
        let mut entries = Entries::new(fd_dir);
        let mut name: Option<String> = None;
        while let Some((dir, fd)) = entries.next_name() {
            let Some(inode) = read_link_at(dir, fd, &mut buf).and_then(socket_inode) else {
                continue;
            };
            if inodes.contains(&inode) && !found.contains_key(&inode) {
                let name = name
                    .get_or_insert_with(|| {
                        std::fs::read_to_string(format!("/proc/{pid}/comm"))
                            .map(|c| c.trim_end().to_owned())
                            .unwrap_or_default()
                    })
                    .clone();
                found.insert(inode, Process { pid, name });
                if found.len() == inodes.len() {
                    return found;
                }
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_links_parse() {
        assert_eq!(socket_inode(b"socket:[629710]"), Some(629710));
        assert_eq!(socket_inode(b"pipe:[629710]"), None);
        assert_eq!(socket_inode(b"socket:[]"), None);
        assert_eq!(socket_inode(b"/dev/null"), None);
    }

    #[test]
    fn lists_every_descriptor_across_growing_batches() {
        use std::os::fd::AsRawFd as _;
        // More descriptors than the first batch holds, so the listing has to
        // grow its buffer and keep going.
        let files: Vec<std::fs::File> = (0..300)
            .map(|_| std::fs::File::open("/proc/self/stat").unwrap())
            .collect();
        let mut entries = Entries::new(open_dir(None, c"/proc/self/fd").unwrap());
        let mut got = BTreeSet::new();
        while let Some((_, n)) = entries.next_name() {
            got.insert(n.to_str().unwrap().parse::<i32>().unwrap());
        }
        for f in &files {
            assert!(got.contains(&f.as_raw_fd()), "{} missing", f.as_raw_fd());
        }
        assert!(got.contains(&0) && got.contains(&entries.dir.as_raw_fd()));
    }
}
