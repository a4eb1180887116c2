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
//! - descriptor numbers are dense from 0 (the kernel hands out the lowest
//!   free one), so the links of 0, 1, 2, ... are read directly, without
//!   listing the directory, up to the first number that is not open;
//!   listing costs the kernel about a third of a link read per entry (it
//!   instantiates a /proc dentry for each);
//! - past that first gap, the rest is listed from there on, in small
//!   batches that grow (raw `getdents64`; a libc-sized 32 KiB batch lists
//!   ~1,300 descriptors even when a few are all that is needed);
//! - it stops as soon as every wanted inode has an owner (listeners are
//!   opened early, so their descriptors come first).
//!
//! Tried and left out: reading one process's links from several threads
//! (each with its own directory descriptor) made the scan use 15% more CPU
//! and was no faster on 2 CPUs; `fstatat` instead of `readlinkat` was no
//! cheaper; skipping processes whose uid differs from the socket's is
//! wrong (a daemon that binds as root and then drops privileges holds a
//! root-owned socket).

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::CStr;
use std::os::fd::{AsFd as _, BorrowedFd, OwnedFd};

use rustix::fs::{Mode, OFlags, RawDir, SeekFrom, CWD};

use super::Process;

/// First `getdents64` batch, bytes (about 40 entries for /proc/PID/fd).
const FIRST_BATCH: usize = 1024;
/// Largest batch, bytes (what glibc's readdir uses).
const MAX_BATCH: usize = 32 * 1024;

/// Open `path` (relative to `dir`, or absolute when `dir` is `None`) as a
/// directory.
fn open_dir(dir: Option<BorrowedFd<'_>>, path: &CStr) -> Option<OwnedFd> {
    let at = dir.unwrap_or(CWD);
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    rustix::fs::openat(at, path, flags, Mode::empty()).ok()
}

/// `readlinkat(dir, name)` into `buf`: the link's bytes, or the errno.
fn read_link_at<'b>(
    dir: BorrowedFd<'_>,
    name: &CStr,
    buf: &'b mut [u8; 64],
) -> Result<&'b [u8], i32> {
    let n = rustix::fs::readlinkat_raw(dir, name, &mut buf[..]).map_err(|e| e.raw_os_error())?;
    // A link filling the buffer may be truncated: not one we look for (and
    // not a socket link, which is at most 19 bytes).
    Ok(buf.get(..n).filter(|_| n < 64).unwrap_or_default())
}

/// The link of descriptor `fd` in the open /proc/PID/fd `dir`.
fn fd_link<'b>(dir: BorrowedFd<'_>, fd: u32, buf: &'b mut [u8; 64]) -> Result<&'b [u8], i32> {
    let mut name = [0u8; 12];
    let mut w = &mut name[..];
    std::io::Write::write_fmt(&mut w, format_args!("{fd}\0")).map_err(|_| libc::EINVAL)?;
    let name = CStr::from_bytes_until_nul(&name).map_err(|_| libc::EINVAL)?;
    read_link_at(dir, name, buf)
}

/// The inode of a `socket:[N]` link.
fn socket_inode(link: &[u8]) -> Option<u32> {
    let digits = link.strip_prefix(b"socket:[")?.strip_suffix(b"]")?;
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// The descriptor numbers listed in an open /proc/PID/fd, read in growing
/// `getdents64` batches.
struct FdList<'d> {
    dir: BorrowedFd<'d>,
    /// Its capacity is the batch size (rustix aligns the records in it).
    buf: Vec<u8>,
    done: bool,
}

impl<'d> FdList<'d> {
    /// List `dir` from descriptor `from` on (the kernel positions
    /// /proc/PID/fd at descriptor number + 2, after `.` and `..`).
    fn new(dir: BorrowedFd<'d>, from: u32) -> Self {
        let pos = rustix::fs::seek(dir, SeekFrom::Start(u64::from(from) + 2));
        FdList {
            dir,
            buf: Vec::with_capacity(FIRST_BATCH),
            // Could not position: list nothing rather than guess.
            done: pos.is_err(),
        }
    }

    /// The next batch of descriptor numbers into `out` (cleared first);
    /// false at the end of the directory or on an error (the process went
    /// away: nothing more to read).
    fn next_batch(&mut self, out: &mut Vec<u32>) -> bool {
        out.clear();
        if self.done {
            return false;
        }
        // One `getdents64` fills the buffer (the first `next`); its records
        // are read until it is used up (a further `next` would call the
        // kernel again, growing nothing).
        let mut dir = RawDir::new(self.dir, self.buf.spare_capacity_mut());
        let mut push = |name: &CStr| {
            // `.`, `..` (and anything else not a number) are skipped.
            if let Some(fd) = name.to_str().ok().and_then(|t| t.parse().ok()) {
                out.push(fd);
            }
        };
        match dir.next() {
            Some(Ok(entry)) => push(entry.file_name()),
            // The end of the directory, or the process went away.
            None | Some(Err(_)) => {
                self.done = true;
                return false;
            }
        }
        while !dir.is_buffer_empty() {
            match dir.next() {
                Some(Ok(entry)) => push(entry.file_name()),
                _ => break,
            }
        }
        if self.buf.capacity() < MAX_BATCH {
            // This batch was used up: the next one may well be too.
            self.buf.reserve_exact(self.buf.capacity() * 2);
        }
        true
    }
}

/// Calls `each` with the inode of every socket the process whose
/// /proc/PID/fd is open as `dir` holds, in descriptor order, until it
/// returns false.
fn scan_process(dir: BorrowedFd<'_>, mut each: impl FnMut(u32) -> bool) {
    let mut buf = [0u8; 64];
    // The dense prefix, read without listing.
    let mut fd = 0u32;
    loop {
        match fd_link(dir, fd, &mut buf) {
            Ok(link) => {
                if let Some(inode) = socket_inode(link) {
                    if !each(inode) {
                        return;
                    }
                }
                fd += 1;
            }
            // The first gap (or the end): list the rest.
            Err(libc::ENOENT) => break,
            // Not ours to read (any more), or gone.
            Err(_) => return,
        }
    }
    let mut list = FdList::new(dir, fd);
    let mut fds = Vec::new();
    while list.next_batch(&mut fds) {
        for fd in &fds {
            let Some(inode) = fd_link(dir, *fd, &mut buf).ok().and_then(socket_inode) else {
                continue;
            };
            if !each(inode) {
                return;
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
    let ours = read_link_at(proc.as_fd(), c"thread-self/ns/net", &mut buf)
        .ok()
        .map(<[u8]>::to_vec);
    let Ok(pids) = std::fs::read_dir("/proc") else {
        return found;
    };
    for p in pids.flatten() {
        let Some(pid) = p.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let at = |rest: &str| std::ffi::CString::new(format!("{pid}{rest}")).expect("digits");
        if let Some(ours) = &ours {
            if read_link_at(proc.as_fd(), &at("/ns/net"), &mut buf).ok() != Some(ours.as_slice()) {
                continue;
            }
        }
        // Gone, or not ours to read: skip.
        let Some(fd_dir) = open_dir(Some(proc.as_fd()), &at("/fd")) else {
            continue;
        };
        let mut name: Option<String> = None;
        scan_process(fd_dir.as_fd(), |inode| {
            if inodes.contains(&inode) && !found.contains_key(&inode) {
                let name = name
                    .get_or_insert_with(|| {
                        std::fs::read_to_string(format!("/proc/{pid}/comm"))
                            .map(|c| c.trim_end().to_owned())
                            .unwrap_or_default()
                    })
                    .clone();
                found.insert(inode, Process { pid, name });
            }
            found.len() < inodes.len()
        });
        if found.len() == inodes.len() {
            break;
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
    fn lists_every_descriptor_across_growing_batches_and_from_a_number() {
        use std::os::fd::AsRawFd as _;
        // More descriptors than the first batch holds, so the listing has to
        // grow its buffer and keep going.
        let files: Vec<std::fs::File> = (0..300)
            .map(|_| std::fs::File::open("/proc/self/stat").unwrap())
            .collect();
        let dir = open_dir(None, c"/proc/self/fd").unwrap();
        let list_from = |from: u32| {
            let mut list = FdList::new(dir.as_fd(), from);
            let (mut got, mut batch, mut batches) = (BTreeSet::new(), vec![], 0);
            while list.next_batch(&mut batch) {
                got.extend(batch.iter().map(|fd| *fd as i32));
                batches += 1;
            }
            (got, batches)
        };
        let (all, batches) = list_from(0);
        assert!(batches > 1, "{batches}");
        for f in &files {
            assert!(all.contains(&f.as_raw_fd()), "{} missing", f.as_raw_fd());
        }
        assert!(all.contains(&0) && all.contains(&dir.as_raw_fd()));
        // From a number on: exactly the open descriptors at or above it.
        let mid = files[150].as_raw_fd();
        let (upper, _) = list_from(mid as u32);
        assert_eq!(upper.first(), Some(&mid));
        for f in &files {
            assert_eq!(upper.contains(&f.as_raw_fd()), f.as_raw_fd() >= mid);
        }
    }

    #[test]
    fn finds_a_socket_past_a_gap_in_the_descriptors() {
        use std::os::fd::AsRawFd as _;
        use std::os::unix::fs::MetadataExt as _;
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let inode = std::fs::metadata(format!("/proc/self/fd/{}", l.as_raw_fd()))
            .unwrap()
            .ino() as u32;
        // Move it far above the dense low descriptors (a test process has
        // a few dozen), so only the listing after the first gap sees it.
        const HIGH: i32 = 700;
        let high = rustix::io::fcntl_dupfd_cloexec(&l, HIGH).unwrap();
        assert_eq!(high.as_raw_fd(), HIGH);
        drop(l);
        let dir = open_dir(None, c"/proc/self/fd").unwrap();
        let mut seen = vec![];
        scan_process(dir.as_fd(), |i| {
            seen.push(i);
            true
        });
        drop(high);
        assert!(seen.contains(&inode), "{inode} not in {seen:?}");
        // Stopping when told to: the first socket only, of at least two.
        let _two = [0, 0].map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap());
        let mut first = vec![];
        let dir = open_dir(None, c"/proc/self/fd").unwrap();
        scan_process(dir.as_fd(), |i| {
            first.push(i);
            false
        });
        assert_eq!(first.len(), 1);
    }
}
