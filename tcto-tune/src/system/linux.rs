//! Linux sysctls (read and written under /proc/sys, as the `sysctl` crate
//! did, in fewer system calls) and host facts from /proc.

use std::io::{self, Read as _, Write as _};

use super::{Host, Sysctls, SystemError};
use crate::names::SysctlName;

/// Sysctls of the network namespace this process runs in.
#[derive(Debug, Default, Clone, Copy)]
pub struct LinuxSysctls;

impl LinuxSysctls {
    /// A key's value, and `also` of its open file; `None` when the key
    /// does not exist.
    fn read_open<T>(
        &self,
        key: &SysctlName,
        also: impl FnOnce(&std::fs::File) -> T,
    ) -> Result<Option<(String, T)>, SystemError> {
        let read = std::fs::File::open(key.proc_path())
            // As the crate did: any failure to open is "not found".
            .map_err(|_| io::Error::from_raw_os_error(libc::ENOENT))
            .and_then(|f| Ok((read_value(&f)?, also(&f))));
        match read {
            Ok(v) => Ok(Some(v)),
            // Any failure to open reads as not found, and a directory opens
            // but does not read: tell a missing key (or a subtree) from an
            // unreadable one ourselves, on this slow path only.
            Err(e) => match std::fs::metadata(key.proc_path()) {
                Err(m) if m.kind() == io::ErrorKind::NotFound => Ok(None),
                Ok(m) if m.is_dir() => Ok(None),
                Err(m) => Err(SystemError::SysctlRead {
                    key: key.to_string(),
                    source: m,
                }),
                Ok(_) => Err(SystemError::SysctlRead {
                    key: key.to_string(),
                    source: e,
                }),
            },
        }
    }
}

impl Sysctls for LinuxSysctls {
    fn read(&self, key: &SysctlName) -> Result<Option<String>, SystemError> {
        Ok(self.read_open(key, |_| ())?.map(|(v, ())| v))
    }

    /// The mode comes from the file `read` opened (`fstat`), not from a
    /// second walk of its /proc/sys path as in [`Sysctls::writable`]: the
    /// same inode, 10 path lookups fewer per `plan` (issue 15).
    fn read_with_writable(&self, key: &SysctlName) -> Result<Option<(String, bool)>, SystemError> {
        use std::os::unix::fs::PermissionsExt;
        self.read_open(key, |f| {
            f.metadata()
                .is_ok_and(|m| m.permissions().mode() & 0o222 != 0)
        })
    }

    fn writable(&self, key: &SysctlName) -> bool {
        // The kernel marks a key read-only *here* (a global key inside a
        // child network namespace) by its mode. Whether this process may
        // write is a separate question (root or CAP_NET_ADMIN, checked
        // before apply), so an unprivileged `plan` still shows the changes.
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(key.proc_path()).is_ok_and(|m| m.permissions().mode() & 0o222 != 0)
    }

    fn write(&mut self, key: &SysctlName, value: &str) -> Result<(), SystemError> {
        self.write_read_back(key, value).map(|_| ())
    }

    fn write_read_back(
        &mut self,
        key: &SysctlName,
        value: &str,
    ) -> Result<Option<String>, SystemError> {
        let err = |source| SystemError::SysctlWrite {
            key: key.to_string(),
            value: value.to_owned(),
            source,
        };
        // The planner refuses these keys; this is the last line, for a plan
        // built or edited by hand: the only code that writes a sysctl never
        // writes one that makes the kernel run a program.
        if let Some(why) = crate::scope::runs_program(key.as_str(), value) {
            return Err(err(io::Error::new(io::ErrorKind::PermissionDenied, why)));
        }
        // The key must open for reading (as the `sysctl` crate required
        // before it wrote: a key that does not is "not found" and is not
        // written); that descriptor then reads the value back, since a
        // /proc/sys read asks the kernel for the value at that moment.
        let path = key.proc_path();
        // One descriptor that both writes and reads back from offset 0: one
        // /proc/sys path walk per write instead of two (issue 15). When it
        // does not open (a write-only or read-only key, no permission), the
        // two descriptors below tell those cases apart as before.
        if let Ok(mut both) = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
        {
            both.write_all(value.as_bytes()).map_err(err)?;
            return read_value(&both).map(Some).map_err(err);
        }
        let reader = std::fs::File::open(&path)
            .map_err(|_| err(io::Error::from_raw_os_error(libc::ENOENT)))?;
        let mut writer = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(|e| err(not_found_as_enoent(e)))?;
        writer.write_all(value.as_bytes()).map_err(err)?;
        drop(writer);
        read_value(&reader).map(Some).map_err(err)
    }
}

fn not_found_as_enoent(e: io::Error) -> io::Error {
    if e.kind() == io::ErrorKind::NotFound {
        io::Error::from_raw_os_error(libc::ENOENT)
    } else {
        e
    }
}

/// The value of an open /proc/sys file, trimmed (what the `sysctl` crate
/// returned), in as few `read`s as the value needs: no `statx` or `lseek`
/// for a size hint, which a /proc file does not have, and no second `read`
/// to see the end: a /proc/sys read returns the whole value when the
/// buffer holds it, so a short read is the end (issue 15: 20 system calls
/// of an `apply`). A value that fills the buffer is read on.
///
/// It reads from offset 0 whatever the descriptor's position (`pread`), so
/// the descriptor that just wrote the value reads it back.
fn read_value(f: &std::fs::File) -> io::Result<String> {
    use std::os::unix::fs::FileExt as _;
    let mut text = Vec::new();
    let mut chunk = [0u8; 512];
    loop {
        match f.read_at(&mut chunk, text.len() as u64) {
            Ok(0) => break,
            Ok(n) => {
                text.extend_from_slice(&chunk[..n]);
                if n < chunk.len() {
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let text = String::from_utf8(text).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            "stream did not contain valid UTF-8",
        )
    })?;
    Ok(text.trim().to_owned())
}

/// Whether this process may change network settings: effective uid 0 or
/// CAP_NET_ADMIN (bit 12) in `CapEff` of /proc/self/status.
pub fn has_net_admin() -> bool {
    if rustix::process::geteuid().is_root() {
        return true;
    }
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let hex = s
                .lines()
                .find_map(|l| l.strip_prefix("CapEff:"))?
                .trim()
                .to_owned();
            u64::from_str_radix(&hex, 16).ok()
        })
        .is_some_and(|caps| caps & (1 << 12) != 0)
}

/// Host facts from /proc.
#[derive(Debug, Default, Clone, Copy)]
pub struct LinuxHost;

impl Host for LinuxHost {
    fn mem_total_bytes(&self) -> Result<Option<u64>, SystemError> {
        let path = "/proc/meminfo";
        let err = |source| SystemError::Proc {
            path: path.into(),
            source,
        };
        let mut f = std::fs::File::open(path).map_err(err)?;
        // `MemTotal` is the first line: one `read` of the file's start
        // instead of the whole file in growing reads (issue 15: 8 system
        // calls); the rest is read only when that line is not there.
        let mut head = [0u8; 256];
        let n = loop {
            match f.read(&mut head) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(err(e)),
            }
        };
        if let Some(end) = head[..n].iter().position(|&b| b == b'\n') {
            let first = std::str::from_utf8(&head[..end]).ok();
            if let Some(total) = first.and_then(parse_meminfo_total) {
                return Ok(Some(total));
            }
        }
        let mut text = head[..n].to_vec();
        f.read_to_end(&mut text).map_err(err)?;
        let text = String::from_utf8(text).map_err(|_| {
            err(io::Error::new(
                io::ErrorKind::InvalidData,
                "stream did not contain valid UTF-8",
            ))
        })?;
        Ok(parse_meminfo_total(&text))
    }

    fn in_initial_netns(&self) -> Result<bool, SystemError> {
        let path = "/proc/thread-self/ns/net";
        let ours = std::fs::read_link(path).map_err(|source| SystemError::Proc {
            path: path.into(),
            source,
        })?;
        Ok(is_initial_netns_link(&ours.to_string_lossy()))
    }
}

/// The initial network namespace has a fixed nsfs inode number since Linux
/// 5.8 (`PROC_NET_INIT_INO`). Comparing with pid 1's namespace instead is
/// unreliable: pid 1 may be unreadable (containers, hardened hosts) or not
/// in the initial namespace at all.
const PROC_NET_INIT_INO: u64 = 0xEFFF_FFF9;

/// Whether a `/proc/*/ns/net` link text (`net:[4026531833]`) names the
/// initial network namespace.
pub fn is_initial_netns_link(link: &str) -> bool {
    link.strip_prefix("net:[")
        .and_then(|r| r.strip_suffix(']'))
        .and_then(|n| n.parse::<u64>().ok())
        == Some(PROC_NET_INIT_INO)
}

/// `MemTotal` in bytes from the text of /proc/meminfo.
pub fn parse_meminfo_total(text: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix("MemTotal:")?;
        let kib: u64 = rest.trim().trim_end_matches("kB").trim().parse().ok()?;
        kib.checked_mul(1024)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initial_netns_by_inode() {
        assert!(is_initial_netns_link("net:[4026531833]"));
        assert!(!is_initial_netns_link("net:[4026532178]"));
        assert!(!is_initial_netns_link("garbage"));
    }

    #[test]
    fn mem_total_is_meminfo_s_first_line() {
        let text = std::fs::read_to_string("/proc/meminfo").unwrap();
        assert_eq!(
            LinuxHost.mem_total_bytes().unwrap(),
            parse_meminfo_total(&text)
        );
        assert!(parse_meminfo_total(&text).is_some());
    }

    /// A value read in one short `read` or over several full ones is the
    /// same text (a regular file stands in for a long /proc/sys value).
    #[test]
    fn read_value_reads_values_of_any_length() {
        let dir = std::env::temp_dir().join(format!("tcto-read-value-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for len in [0, 1, 511, 512, 513, 1024, 1500] {
            let text: String = (0..len).map(|i| (b'a' + (i % 26) as u8) as char).collect();
            let path = dir.join(len.to_string());
            std::fs::write(&path, format!("{text}\n")).unwrap();
            let f = std::fs::File::open(&path).unwrap();
            assert_eq!(read_value(&f).unwrap(), text, "{len} bytes");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn meminfo() {
        let t = "MemTotal:       24568300 kB\nMemFree:        2345 kB\n";
        assert_eq!(parse_meminfo_total(t), Some(24568300 * 1024));
        assert_eq!(parse_meminfo_total("garbage"), None);
    }

    #[test]
    fn reads_a_real_key_and_reports_missing_ones() {
        let s = LinuxSysctls;
        let v = s
            .read(&SysctlName::new("net.core.somaxconn").unwrap())
            .unwrap();
        assert!(v.unwrap().parse::<u32>().is_ok());
        assert_eq!(
            s.read(&SysctlName::new("net.core.no_such_key").unwrap())
                .unwrap(),
            None
        );
        assert_eq!(s.read(&SysctlName::new("net.core").unwrap()).unwrap(), None);
    }

    /// One open file answers both: the same value and mode as `read` and
    /// `writable` ask separately (a writable key, a read-only one, a
    /// missing one, a subtree).
    #[test]
    fn read_with_writable_is_read_and_writable() {
        let s = LinuxSysctls;
        let mut read_only = 0;
        for k in [
            "net.core.somaxconn",
            "kernel.ostype",
            "kernel.random.boot_id",
            "net.core.no_such_key",
            "net.core",
        ] {
            let key = SysctlName::new(k).unwrap();
            let both = s.read_with_writable(&key).unwrap();
            let apart = s.read(&key).unwrap().map(|v| (v, s.writable(&key)));
            assert_eq!(both, apart, "{k}");
            read_only += usize::from(both.is_some_and(|(_, w)| !w));
        }
        assert!(read_only >= 2, "boot_id and ostype are read-only");
    }

    #[test]
    fn never_writes_a_key_that_runs_a_program() {
        // Refused before any system call: safe to run anywhere.
        let e = LinuxSysctls
            .write(
                &SysctlName::new("kernel.core_pattern").unwrap(),
                "|/tmp/evil %p",
            )
            .unwrap_err();
        assert_eq!(e.errno(), None);
        let SystemError::SysctlWrite { source, .. } = &e else {
            panic!("{e:?}")
        };
        assert_eq!(source.kind(), io::ErrorKind::PermissionDenied);
        assert!(source.to_string().contains("run that program as root"));
    }
}
