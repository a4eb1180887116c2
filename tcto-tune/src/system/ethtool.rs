//! NIC features through the `SIOCETHTOOL` ioctl: the only ioctl code in the
//! crate.
//!
//! Why the ioctl: the `ethtool` crate can only read features (and pulls in
//! tokio); the legacy ioctl reads and writes them synchronously with no new
//! dependency. Features are addressed by their kernel names, as `ethtool -k`
//! does: `ETHTOOL_GSSET_INFO` gives the number of features,
//! `ETHTOOL_GSTRINGS(ETH_SS_FEATURES)` their names (bit `i` is name `i`),
//! `ETHTOOL_GFEATURES` the available/requested/active/never-changed bit
//! masks, and `ETHTOOL_SFEATURES` changes the requested bits.
//!
//! libc has `SIOCETHTOOL` but none of the `ETHTOOL_*` commands or
//! structures, so they are defined here from `<linux/ethtool.h>` and their
//! sizes and offsets are unit-tested against the header.
//!
//! `ETHTOOL_SFEATURES` on a fixed feature succeeds with a positive flag
//! word instead of failing: callers must re-read (see
//! [`super::offloads::write_group`]).
// FFI: the SIOCETHTOOL ioctl and its C flexible-array requests, and
// if_nameindex/if_nametoindex/if_indextoname (docs/architecture.md).
#![allow(unsafe_code)]

use std::ffi::CStr;
use std::io;
use std::marker::PhantomData;
use std::mem::{align_of, size_of};
use std::os::fd::{AsRawFd, OwnedFd};

use super::offloads::{Offloads, SetReport};
use super::SystemError;
use crate::names::IfName;
use crate::state::{FeatureState, Features, IfScope, NicId};

/// `ETHTOOL_GPERMADDR`: get the permanent hardware address.
pub(crate) const ETHTOOL_GPERMADDR: u32 = 0x20;
/// `MAX_ADDR_LEN`: the longest hardware address a device can have.
pub(crate) const MAX_ADDR_LEN: usize = 32;
/// `ETHTOOL_GSTRINGS`: get a string set.
pub(crate) const ETHTOOL_GSTRINGS: u32 = 0x1b;
/// `ETHTOOL_GSSET_INFO`: get string set sizes.
pub(crate) const ETHTOOL_GSSET_INFO: u32 = 0x37;
/// `ETHTOOL_GFEATURES`: get device features.
pub(crate) const ETHTOOL_GFEATURES: u32 = 0x3a;
/// `ETHTOOL_SFEATURES`: change device features.
pub(crate) const ETHTOOL_SFEATURES: u32 = 0x3b;
/// `ETH_SS_FEATURES` of `enum ethtool_stringset`.
pub(crate) const ETH_SS_FEATURES: u32 = 4;
/// `ETH_GSTRING_LEN`: bytes per string, NUL-padded.
pub(crate) const ETH_GSTRING_LEN: usize = 32;
/// `ETHTOOL_F_UNSUPPORTED`: some `valid` bits were not changeable.
pub(crate) const ETHTOOL_F_UNSUPPORTED: i32 = 1 << 0;
/// `ETHTOOL_F_WISH`: recorded, but the device cannot do it now.
pub(crate) const ETHTOOL_F_WISH: i32 = 1 << 1;

/// `struct ethtool_sset_info` (followed by `__u32 data[]`).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub(crate) struct EthtoolSsetInfo {
    pub cmd: u32,
    pub reserved: u32,
    pub sset_mask: u64,
}

/// `struct ethtool_perm_addr` (followed by `__u8 data[]`).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub(crate) struct EthtoolPermAddr {
    pub cmd: u32,
    pub size: u32,
}

/// `struct ethtool_gstrings` (followed by `__u8 data[]`).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub(crate) struct EthtoolGstrings {
    pub cmd: u32,
    pub string_set: u32,
    pub len: u32,
}

/// `struct ethtool_get_features_block`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct EthtoolGetFeaturesBlock {
    pub available: u32,
    pub requested: u32,
    pub active: u32,
    pub never_changed: u32,
}

/// `struct ethtool_gfeatures` (followed by the blocks).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub(crate) struct EthtoolGfeatures {
    pub cmd: u32,
    pub size: u32,
}

/// `struct ethtool_set_features_block`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct EthtoolSetFeaturesBlock {
    pub valid: u32,
    pub requested: u32,
}

/// `struct ethtool_sfeatures` (followed by the blocks).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub(crate) struct EthtoolSfeatures {
    pub cmd: u32,
    pub size: u32,
}

/// A header `H` followed by `n` items `T` (a C flexible array member) in a
/// zeroed, 8-byte-aligned buffer the kernel reads and writes.
struct Request<H, T> {
    buf: Vec<u64>,
    n: usize,
    _types: PhantomData<(H, T)>,
}

impl<H: Copy, T: Copy> Request<H, T> {
    fn new(header: H, n: usize) -> Self {
        assert!(align_of::<H>() <= 8 && align_of::<T>() <= 8);
        assert_eq!(
            size_of::<H>() % align_of::<T>(),
            0,
            "items would be misaligned"
        );
        let bytes = size_of::<H>() + n * size_of::<T>();
        let mut buf = vec![0u64; bytes.div_ceil(8)];
        // SAFETY: the buffer is 8-aligned (Vec<u64>), at least size_of::<H>()
        // bytes long, and H is a repr(C) struct of integers.
        unsafe { std::ptr::write(buf.as_mut_ptr().cast::<H>(), header) };
        Request {
            buf,
            n,
            _types: PhantomData,
        }
    }

    fn header(&self) -> H {
        // SAFETY: as in `new`; every bit pattern is a valid H.
        unsafe { std::ptr::read(self.buf.as_ptr().cast::<H>()) }
    }

    fn items(&self) -> &[T] {
        // SAFETY: the items start at size_of::<H>() (a multiple of T's
        // alignment, checked in `new`), n of them fit in the buffer, the
        // buffer is initialized (zeroed), and every bit pattern is a valid T.
        unsafe {
            std::slice::from_raw_parts(
                self.buf
                    .as_ptr()
                    .cast::<u8>()
                    .add(size_of::<H>())
                    .cast::<T>(),
                self.n,
            )
        }
    }

    fn items_mut(&mut self) -> &mut [T] {
        // SAFETY: as in `items`, and we hold the only reference.
        unsafe {
            std::slice::from_raw_parts_mut(
                self.buf
                    .as_mut_ptr()
                    .cast::<u8>()
                    .add(size_of::<H>())
                    .cast::<T>(),
                self.n,
            )
        }
    }

    fn data(&mut self) -> *mut libc::c_char {
        self.buf.as_mut_ptr().cast()
    }
}

/// A socket to issue `SIOCETHTOOL` on, for one interface.
struct Dev<'a> {
    fd: OwnedFd,
    iface: &'a IfName,
}

impl<'a> Dev<'a> {
    fn open(iface: &'a IfName) -> Result<Self, SystemError> {
        use rustix::net::{AddressFamily, SocketFlags, SocketType};
        // Any socket reaches dev_ioctl; AF_UNIX works where IPv4 is absent.
        let mut last = None;
        for family in [AddressFamily::INET, AddressFamily::UNIX] {
            match rustix::net::socket_with(family, SocketType::DGRAM, SocketFlags::CLOEXEC, None) {
                Ok(fd) => return Ok(Dev { fd, iface }),
                Err(e) => last = Some(e),
            }
        }
        Err(SystemError::Ethtool {
            iface: iface.to_string(),
            step: "open a socket",
            source: last.map_or_else(io::Error::last_os_error, io::Error::from),
        })
    }

    /// Issue one ethtool command; returns the ioctl's (non-negative) result.
    fn ioctl(&self, step: &'static str, data: *mut libc::c_char) -> Result<i32, SystemError> {
        // SAFETY: ifreq is plain old data; all-zero is a valid value.
        let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
        // IfName guarantees 1..=15 bytes without NUL: the name stays terminated.
        for (d, s) in ifr.ifr_name.iter_mut().zip(self.iface.as_str().bytes()) {
            *d = s as libc::c_char;
        }
        ifr.ifr_ifru.ifru_data = data;
        // SAFETY: ifr is valid for the call; `data` points to a buffer sized
        // for the command by the caller (Request), alive during the call.
        let r = unsafe { libc::ioctl(self.fd.as_raw_fd(), libc::SIOCETHTOOL as _, &mut ifr) };
        if r < 0 {
            return Err(SystemError::Ethtool {
                iface: self.iface.to_string(),
                step,
                source: io::Error::last_os_error(),
            });
        }
        Ok(r)
    }

    /// The permanent hardware address, `None` when the device has none
    /// (all zeros, as on a veth: `ethtool -P` prints "not set").
    fn perm_addr(&self) -> Result<Option<String>, SystemError> {
        let mut req: Request<EthtoolPermAddr, u8> = Request::new(
            EthtoolPermAddr {
                cmd: ETHTOOL_GPERMADDR,
                size: MAX_ADDR_LEN as u32,
            },
            MAX_ADDR_LEN,
        );
        self.ioctl("GPERMADDR", req.data())?;
        let len = (req.header().size as usize).min(MAX_ADDR_LEN);
        Ok(mac_text(&req.items()[..len]))
    }

    /// The kernel's feature names, bit 0 first.
    fn feature_names(&self) -> Result<Vec<String>, SystemError> {
        let mut info: Request<EthtoolSsetInfo, u32> = Request::new(
            EthtoolSsetInfo {
                cmd: ETHTOOL_GSSET_INFO,
                reserved: 0,
                sset_mask: 1 << ETH_SS_FEATURES,
            },
            1,
        );
        self.ioctl("GSSET_INFO", info.data())?;
        if info.header().sset_mask & (1 << ETH_SS_FEATURES) == 0 {
            return Err(SystemError::Ethtool {
                iface: self.iface.to_string(),
                step: "GSSET_INFO",
                source: io::Error::other("the kernel has no feature string set"),
            });
        }
        // The kernel writes as many strings as it counts again in GSTRINGS,
        // not as many as `len` asks for; the feature count is a kernel
        // build constant (NETDEV_FEATURE_COUNT), so the two agree.
        let count = info.items()[0] as usize;
        let mut strings: Request<EthtoolGstrings, [u8; ETH_GSTRING_LEN]> = Request::new(
            EthtoolGstrings {
                cmd: ETHTOOL_GSTRINGS,
                string_set: ETH_SS_FEATURES,
                len: count as u32,
            },
            count,
        );
        self.ioctl("GSTRINGS(ETH_SS_FEATURES)", strings.data())?;
        let got = (strings.header().len as usize).min(count);
        Ok(strings.items()[..got]
            .iter()
            .map(|raw| {
                CStr::from_bytes_until_nul(raw)
                    .map(|c| c.to_string_lossy().into_owned())
                    .unwrap_or_else(|_| String::from_utf8_lossy(raw).into_owned())
            })
            .collect())
    }

    /// The feature blocks; their number is what SFEATURES must be given.
    fn blocks(&self, count: usize) -> Result<Vec<EthtoolGetFeaturesBlock>, SystemError> {
        let mut words = count.div_ceil(32);
        // The kernel reports its own word count in `size` and copies at most
        // as many blocks as we offered: ask again if it has more.
        for _ in 0..2 {
            let mut req: Request<EthtoolGfeatures, EthtoolGetFeaturesBlock> = Request::new(
                EthtoolGfeatures {
                    cmd: ETHTOOL_GFEATURES,
                    size: words as u32,
                },
                words,
            );
            self.ioctl("GFEATURES", req.data())?;
            let size = req.header().size as usize;
            if size <= words {
                return Ok(req.items()[..size].to_vec());
            }
            words = size;
        }
        Err(SystemError::Ethtool {
            iface: self.iface.to_string(),
            step: "GFEATURES",
            source: io::Error::other("the kernel's feature word count kept changing"),
        })
    }
}

fn bit(
    words: &[EthtoolGetFeaturesBlock],
    i: usize,
    f: fn(&EthtoolGetFeaturesBlock) -> u32,
) -> bool {
    words
        .get(i / 32)
        .is_some_and(|b| f(b) & (1 << (i % 32)) != 0)
}

/// Decode names and blocks into [`Features`], as `ethtool -k` reads them:
/// fixed when not available (not in `hw_features`) or never changeable.
pub(crate) fn decode(names: &[String], blocks: &[EthtoolGetFeaturesBlock]) -> Features {
    names
        .iter()
        .enumerate()
        .filter(|(_, n)| !n.is_empty())
        .map(|(i, n)| {
            let on = bit(blocks, i, |b| b.active);
            let fixed = !bit(blocks, i, |b| b.available) || bit(blocks, i, |b| b.never_changed);
            let state = FeatureState {
                on,
                fixed,
                // ethtool's `[requested on]`: only a changeable feature
                // carries a request of its own.
                wish: !fixed && bit(blocks, i, |b| b.requested) != on,
            };
            (n.clone(), state)
        })
        .collect()
}

/// A hardware address as `ip link` prints it; `None` when empty or all zeros.
pub(crate) fn mac_text(bytes: &[u8]) -> Option<String> {
    if bytes.iter().all(|b| *b == 0) {
        return None;
    }
    Some(
        bytes
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(":"),
    )
}

/// Encode feature writes into SFEATURES blocks (`words` of them).
pub(crate) fn encode(
    names: &[String],
    writes: &[(String, bool)],
    words: usize,
) -> Result<Vec<EthtoolSetFeaturesBlock>, String> {
    let mut blocks = vec![EthtoolSetFeaturesBlock::default(); words];
    for (name, on) in writes {
        let i = names
            .iter()
            .position(|n| n == name)
            .ok_or_else(|| format!("the kernel has no feature `{name}`"))?;
        let b = blocks
            .get_mut(i / 32)
            .ok_or_else(|| format!("feature `{name}` is outside the kernel's feature words"))?;
        b.valid |= 1 << (i % 32);
        if *on {
            b.requested |= 1 << (i % 32);
        }
    }
    Ok(blocks)
}

/// NIC features of the network namespace this process runs in.
#[derive(Debug, Default, Clone, Copy)]
pub struct LinuxOffloads;

impl Offloads for LinuxOffloads {
    fn interfaces(&self) -> Result<Vec<String>, SystemError> {
        // SAFETY: if_nameindex has no preconditions; the list is freed below.
        let list = unsafe { libc::if_nameindex() };
        if list.is_null() {
            return Err(SystemError::Ethtool {
                iface: "*".into(),
                step: "list interfaces (if_nameindex)",
                source: io::Error::last_os_error(),
            });
        }
        let mut out = Vec::new();
        // SAFETY: the list ends with an all-zero entry; each name is a
        // NUL-terminated string owned by the list until if_freenameindex.
        unsafe {
            let mut p = list;
            while (*p).if_index != 0 && !(*p).if_name.is_null() {
                out.push(CStr::from_ptr((*p).if_name).to_string_lossy().into_owned());
                p = p.add(1);
            }
            libc::if_freenameindex(list);
        }
        Ok(out)
    }

    fn features(&self, iface: &IfName) -> Result<Option<Features>, SystemError> {
        let dev = Dev::open(iface)?;
        let names = match dev.feature_names() {
            Err(e) if e.errno() == Some(libc::ENODEV) => return Ok(None),
            other => other?,
        };
        let blocks = dev.blocks(names.len())?;
        Ok(Some(decode(&names, &blocks)))
    }

    fn set(&mut self, iface: &IfName, writes: &[(String, bool)]) -> Result<SetReport, SystemError> {
        let dev = Dev::open(iface)?;
        let names = dev.feature_names()?;
        let words = dev.blocks(names.len())?.len();
        let blocks = encode(&names, writes, words).map_err(|why| SystemError::Ethtool {
            iface: iface.to_string(),
            step: "SFEATURES",
            source: io::Error::new(io::ErrorKind::InvalidInput, why),
        })?;
        let mut req: Request<EthtoolSfeatures, EthtoolSetFeaturesBlock> = Request::new(
            EthtoolSfeatures {
                cmd: ETHTOOL_SFEATURES,
                size: words as u32,
            },
            words,
        );
        req.items_mut().copy_from_slice(&blocks);
        let flags = dev.ioctl("SFEATURES", req.data())?;
        Ok(SetReport {
            unsupported: flags & ETHTOOL_F_UNSUPPORTED != 0,
            wish: flags & ETHTOOL_F_WISH != 0,
        })
    }

    fn device(&self, iface: &IfName) -> Result<Option<NicId>, SystemError> {
        let c = std::ffi::CString::new(iface.as_str()).expect("IfName has no NUL");
        // SAFETY: c is a NUL-terminated string alive for the call.
        let ifindex = unsafe { libc::if_nametoindex(c.as_ptr()) };
        if ifindex == 0 {
            let e = io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::ENODEV | libc::ENXIO) => Ok(None),
                _ => Err(SystemError::Ethtool {
                    iface: iface.to_string(),
                    step: "find the interface index (if_nametoindex)",
                    source: e,
                }),
            };
        }
        // The permanent address is a second identity "where there is one":
        // a device that cannot report it is identified by ifindex alone.
        let perm_addr = match Dev::open(iface)?.perm_addr() {
            Ok(a) => a,
            Err(e) if e.errno() == Some(libc::ENODEV) => return Ok(None),
            Err(_) => None,
        };
        Ok(Some(NicId {
            ifindex,
            perm_addr,
            scope: self.scope()?,
        }))
    }

    fn scope(&self) -> Result<Option<IfScope>, SystemError> {
        use std::os::unix::fs::MetadataExt;
        // The namespace of this thread (a thread can unshare its own).
        let Ok(ns) = std::fs::metadata("/proc/thread-self/ns/net") else {
            return Ok(None);
        };
        let Ok(boot) = std::fs::read_to_string("/proc/sys/kernel/random/boot_id") else {
            return Ok(None);
        };
        Ok(Some(IfScope {
            boot_id: boot.trim().to_owned(),
            netns: ns.ino(),
        }))
    }

    fn name_of(&self, ifindex: u32) -> Result<Option<String>, SystemError> {
        let mut buf = [0 as libc::c_char; libc::IF_NAMESIZE];
        // SAFETY: buf holds IF_NAMESIZE bytes, as if_indextoname requires.
        let p = unsafe { libc::if_indextoname(ifindex, buf.as_mut_ptr()) };
        if p.is_null() {
            let e = io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::ENODEV | libc::ENXIO) => Ok(None),
                _ => Err(SystemError::Ethtool {
                    iface: format!("ifindex {ifindex}"),
                    step: "find the interface name (if_indextoname)",
                    source: e,
                }),
            };
        }
        // SAFETY: on success the name is NUL-terminated within buf.
        let name = unsafe { CStr::from_ptr(buf.as_ptr()) };
        Ok(Some(name.to_string_lossy().into_owned()))
    }
}

#[cfg(test)]
mod tests;
