//! The conntrack table through ctnetlink (NETLINK_NETFILTER), streamed:
//! what `conntrack -L` reads, without the binary and without
//! /proc/net/nf_conntrack (which needs CONFIG_NF_CONNTRACK_PROCFS and text
//! parsing). Each entry is handed to the caller as it is decoded; nothing
//! but the receive buffer is held, so a table of millions costs no more
//! memory than one of ten. The decoding is pure, in
//! [`crate::observed::parse_ct_entry`]; this file only talks to the kernel.
// FFI: getifaddrs and its sockaddr list (docs/architecture.md).
#![allow(unsafe_code)]

use std::net::IpAddr;

use super::nldump::{dump, Steps};
use super::SystemError;
use crate::observed::{parse_ct_entry, CtEntry};

const NETLINK_NETFILTER: isize = 12;
/// `NFNL_SUBSYS_CTNETLINK << 8 | IPCTNL_MSG_CT_GET`.
const CT_GET: u16 = (1 << 8) | 1;

/// Dump every conntrack entry of this network namespace (IPv4 and IPv6),
/// calling `each` on each.
pub fn dump_conntrack(mut each: impl FnMut(&CtEntry)) -> Result<(), SystemError> {
    let steps = Steps {
        open: "ctnetlink open",
        bind: "ctnetlink bind",
        connect: "ctnetlink connect",
        send: "ctnetlink send",
        receive: "ctnetlink receive",
        dump: "ctnetlink dump",
    };
    // After the header: nfgenmsg (AF_UNSPEC: every family, version 0,
    // res_id 0).
    let mut on_entry = |payload: &[u8]| {
        if let Some(e) = parse_ct_entry(payload) {
            each(&e);
        }
        true
    };
    dump(
        NETLINK_NETFILTER,
        &steps,
        CT_GET,
        &[0u8; 4],
        1 << 17,
        &mut on_entry,
    )
}

/// This namespace's interface addresses with their prefix length
/// (`getifaddrs`), e.g. `10.0.2.1/24`.
pub fn local_subnets() -> Vec<(IpAddr, u8)> {
    let mut out = Vec::new();
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `head` with a list freed by freeifaddrs
    // below; each node's pointers are valid until then.
    unsafe {
        if libc::getifaddrs(&mut head) != 0 {
            return out;
        }
        let mut p = head;
        while !p.is_null() {
            let ifa = &*p;
            if let (Some(a), Some(m)) = (sockaddr_ip(ifa.ifa_addr), sockaddr_ip(ifa.ifa_netmask)) {
                let bits = match m {
                    IpAddr::V4(v) => u32::from(v).count_ones(),
                    IpAddr::V6(v) => u128::from(v).count_ones(),
                };
                out.push((a, bits as u8));
            }
            p = ifa.ifa_next;
        }
        libc::freeifaddrs(head);
    }
    out
}

/// # Safety
/// `sa` is null or points to a valid sockaddr of its family's size.
unsafe fn sockaddr_ip(sa: *const libc::sockaddr) -> Option<IpAddr> {
    if sa.is_null() {
        return None;
    }
    // SAFETY: the family says which struct it is.
    unsafe {
        match i32::from((*sa).sa_family) {
            libc::AF_INET => {
                let s = &*(sa as *const libc::sockaddr_in);
                Some(IpAddr::V4(std::net::Ipv4Addr::from(u32::from_be(
                    s.sin_addr.s_addr,
                ))))
            }
            libc::AF_INET6 => {
                let s = &*(sa as *const libc::sockaddr_in6);
                Some(IpAddr::V6(std::net::Ipv6Addr::from(s.sin6_addr.s6_addr)))
            }
            _ => None,
        }
    }
}
