//! Route lookups through rtnetlink (`RTM_GETROUTE`), for `diagnose`'s
//! reverse-path evidence: the kernel itself answers which interface the
//! route back to a client leaves through, and whether a packet from that
//! client arriving on a given interface would be routed at all. The second
//! question is `ip route get LOCAL from CLIENT iif IFACE`: the kernel runs
//! its input route lookup, `fib_validate_source` (the reverse-path filter)
//! included, and refuses with an error when the check fails (`EINVAL` on
//! 6.x kernels, `EXDEV` on some older ones). Nothing is changed: a lookup
//! is a read, and it does not count in `IPReversePathFilter` (only a real
//! packet does); with `log_martians` on, the kernel may log a refused one
//! as a "martian source".
//!
//! Also here: the peers of established connections to given local ports
//! (sock_diag), the clients `diagnose` looks the routes up for. Messages
//! are encoded and decoded by hand (a few fixed fields and attributes:
//! no route crate is needed); the decoding is pure and unit-tested.

use std::collections::BTreeSet;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use netlink_sys::protocols::{NETLINK_ROUTE, NETLINK_SOCK_DIAG};
use netlink_sys::{Socket, SocketAddr as NlAddr};

use super::nldump::{dump, Steps};
use super::SystemError;

const RTM_NEWROUTE: u16 = 24;
const RTM_GETROUTE: u16 = 26;
const NLMSG_ERROR: u16 = 2;
const RTA_DST: u16 = 1;
const RTA_SRC: u16 = 2;
const RTA_IIF: u16 = 3;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RTA_PREFSRC: u16 = 7;
const SOCK_DIAG_BY_FAMILY: u16 = 20;
/// The original inet_diag request (`struct inet_diag_req`): the kernel
/// answers it for both families in one walk of the socket hash.
const TCPDIAG_GETSOCK: u16 = 18;
const TCP_ESTABLISHED: u32 = 1;
const TCP_SYN_RECV: u32 = 3;
const TCP_LISTEN: u32 = 10;

/// A route lookup to ask the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteQuery {
    /// The output route to this address (`ip route get ADDR`).
    To(IpAddr),
    /// The input route of a packet from `src` to the local `dst` arriving
    /// on interface `iif` (`ip route get DST from SRC iif IIF`): refused
    /// when the reverse-path check fails.
    Input {
        /// The packet's source (the client).
        src: IpAddr,
        /// A local address (the packet's destination).
        dst: IpAddr,
        /// The interface index it arrives on.
        iif: u32,
    },
}

/// The kernel's answer to a [`RouteQuery`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteReply {
    /// Route type (`RTN_UNICAST` 1, `RTN_LOCAL` 2...).
    pub kind: u8,
    /// Output interface index.
    pub oif: Option<u32>,
    /// Next hop.
    pub gateway: Option<IpAddr>,
    /// The source address the kernel would use.
    pub prefsrc: Option<IpAddr>,
}

/// Route lookups and the peers they are asked for.
pub trait Routes {
    /// Ask each query in turn; an `Err` holds the errno the kernel refused
    /// it with. The outer error is a failure to talk to the kernel at all.
    fn lookup(&self, queries: &[RouteQuery]) -> Result<Vec<Result<RouteReply, i32>>, SystemError>;
    /// Peers of established TCP connections whose local port is in
    /// `ports`, with the local address, at most `limit` distinct peers
    /// (the dump stops there).
    fn established_peers(
        &self,
        ports: &BTreeSet<u16>,
        limit: usize,
    ) -> Result<Vec<(IpAddr, IpAddr)>, SystemError>;
}

/// Routes of this network namespace, through rtnetlink.
#[derive(Debug, Default, Clone, Copy)]
pub struct Rtnetlink;

/// Routes of a simulated host: each query answered from a table, the rest
/// unreachable (`ENETUNREACH`).
#[derive(Debug, Default, Clone)]
pub struct SimRoutes {
    /// Queries and their answers.
    pub answers: Vec<(RouteQuery, Result<RouteReply, i32>)>,
    /// Established peers (peer, local address, local port).
    pub peers: Vec<(IpAddr, IpAddr, u16)>,
}

impl Routes for SimRoutes {
    fn lookup(&self, queries: &[RouteQuery]) -> Result<Vec<Result<RouteReply, i32>>, SystemError> {
        Ok(queries
            .iter()
            .map(|q| {
                self.answers
                    .iter()
                    .find(|(k, _)| k == q)
                    .map_or(Err(libc::ENETUNREACH), |(_, a)| a.clone())
            })
            .collect())
    }

    fn established_peers(
        &self,
        ports: &BTreeSet<u16>,
        limit: usize,
    ) -> Result<Vec<(IpAddr, IpAddr)>, SystemError> {
        let mut seen = BTreeSet::new();
        Ok(self
            .peers
            .iter()
            .filter(|(_, _, p)| ports.contains(p))
            .filter(|(peer, _, _)| seen.insert(*peer))
            .take(limit)
            .map(|(peer, local, _)| (*peer, *local))
            .collect())
    }
}

fn nl(step: &'static str) -> impl Fn(io::Error) -> SystemError {
    move |source| SystemError::Netlink { step, source }
}

fn push_attr(buf: &mut Vec<u8>, kind: u16, payload: &[u8]) {
    let len = 4 + payload.len();
    buf.extend((len as u16).to_ne_bytes());
    buf.extend(kind.to_ne_bytes());
    buf.extend(payload);
    buf.resize((buf.len() + 3) & !3, 0);
}

fn octets(a: IpAddr) -> Vec<u8> {
    match a {
        IpAddr::V4(v) => v.octets().to_vec(),
        IpAddr::V6(v) => v.octets().to_vec(),
    }
}

fn family(a: IpAddr) -> u8 {
    match a {
        IpAddr::V4(_) => libc::AF_INET as u8,
        IpAddr::V6(_) => libc::AF_INET6 as u8,
    }
}

fn bits(a: IpAddr) -> u8 {
    match a {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

/// The `RTM_GETROUTE` request for `q` with sequence number `seq`.
pub fn encode_query(q: &RouteQuery, seq: u32) -> Vec<u8> {
    let (dst, src, iif) = match q {
        RouteQuery::To(a) => (*a, None, None),
        RouteQuery::Input { src, dst, iif } => (*dst, Some(*src), Some(*iif)),
    };
    let mut b = Vec::with_capacity(64);
    b.extend([0u8; 4]); // length, set below
    b.extend(RTM_GETROUTE.to_ne_bytes());
    b.extend((libc::NLM_F_REQUEST as u16).to_ne_bytes());
    b.extend(seq.to_ne_bytes());
    b.extend(0u32.to_ne_bytes());
    // rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type, flags.
    b.extend([family(dst), bits(dst), src.map_or(0, bits), 0, 0, 0, 0, 0]);
    b.extend(0u32.to_ne_bytes());
    push_attr(&mut b, RTA_DST, &octets(dst));
    if let Some(s) = src {
        push_attr(&mut b, RTA_SRC, &octets(s));
    }
    if let Some(i) = iif {
        push_attr(&mut b, RTA_IIF, &i.to_ne_bytes());
    }
    let len = b.len() as u32;
    b[..4].copy_from_slice(&len.to_ne_bytes());
    b
}

fn addr(d: &[u8]) -> Option<IpAddr> {
    if let Ok(v) = <[u8; 4]>::try_from(d) {
        Some(IpAddr::V4(Ipv4Addr::from(v)))
    } else {
        <[u8; 16]>::try_from(d)
            .ok()
            .map(|v| IpAddr::V6(Ipv6Addr::from(v)))
    }
}

/// Decode one netlink message answering a route query: `Some(Ok)` for an
/// `RTM_NEWROUTE`, `Some(Err(errno))` for an error, `None` for anything
/// else (or a truncated message). `msg` starts at the `nlmsghdr`.
pub fn decode_reply(msg: &[u8]) -> Option<Result<RouteReply, i32>> {
    let len = u32::from_ne_bytes(msg.get(0..4)?.try_into().ok()?) as usize;
    let kind = u16::from_ne_bytes(msg.get(4..6)?.try_into().ok()?);
    let msg = msg.get(..len)?;
    match kind {
        NLMSG_ERROR => {
            let code = i32::from_ne_bytes(msg.get(16..20)?.try_into().ok()?);
            Some(Err(-code))
        }
        RTM_NEWROUTE => {
            let rtm = msg.get(16..28)?;
            let mut r = RouteReply {
                kind: rtm[7],
                ..Default::default()
            };
            let mut a = &msg[28..];
            while a.len() >= 4 {
                let alen = u16::from_ne_bytes([a[0], a[1]]) as usize;
                let akind = u16::from_ne_bytes([a[2], a[3]]) & 0x3fff;
                if alen < 4 || alen > a.len() {
                    break;
                }
                let p = &a[4..alen];
                match akind {
                    RTA_OIF => r.oif = p.try_into().ok().map(u32::from_ne_bytes),
                    RTA_GATEWAY => r.gateway = addr(p),
                    RTA_PREFSRC => r.prefsrc = addr(p),
                    _ => {}
                }
                let next = (alen + 3) & !3;
                a = a.get(next..).unwrap_or(&[]);
            }
            Some(Ok(r))
        }
        _ => None,
    }
}

impl Routes for Rtnetlink {
    fn lookup(&self, queries: &[RouteQuery]) -> Result<Vec<Result<RouteReply, i32>>, SystemError> {
        if queries.is_empty() {
            return Ok(vec![]);
        }
        let mut socket = Socket::new(NETLINK_ROUTE).map_err(nl("rtnetlink open"))?;
        socket.bind_auto().map_err(nl("rtnetlink bind"))?;
        socket
            .connect(&NlAddr::new(0, 0))
            .map_err(nl("rtnetlink connect"))?;
        let mut rx = vec![0u8; 8192];
        let mut out = Vec::with_capacity(queries.len());
        for (i, q) in queries.iter().enumerate() {
            let seq = i as u32 + 1;
            socket
                .send(&encode_query(q, seq), 0)
                .map_err(nl("rtnetlink send"))?;
            // One answer per request (no dump, no ACK asked): skip anything
            // with another sequence number.
            let answer = loop {
                let size = socket
                    .recv(&mut &mut rx[..], 0)
                    .map_err(nl("rtnetlink receive"))?;
                if size < 16 {
                    return Err(SystemError::Netlink {
                        step: "rtnetlink decode",
                        source: io::Error::other("short message"),
                    });
                }
                let got = u32::from_ne_bytes([rx[8], rx[9], rx[10], rx[11]]);
                if got != seq {
                    continue;
                }
                match decode_reply(&rx[..size]) {
                    Some(a) => break a,
                    None => {
                        return Err(SystemError::Netlink {
                            step: "rtnetlink decode",
                            source: io::Error::other("unexpected answer to RTM_GETROUTE"),
                        })
                    }
                }
            };
            out.push(answer);
        }
        Ok(out)
    }

    fn established_peers(
        &self,
        ports: &BTreeSet<u16>,
        limit: usize,
    ) -> Result<Vec<(IpAddr, IpAddr)>, SystemError> {
        let mut out = Vec::new();
        let mut seen = BTreeSet::new();
        if ports.is_empty() || limit == 0 {
            return Ok(out);
        }
        tcp_dump(1 << TCP_ESTABLISHED, &mut |p| {
            if let Some((local, peer)) = decode_diag(p) {
                if ports.contains(&local.port()) && seen.insert(peer.ip()) {
                    out.push((peer.ip(), local.ip()));
                }
            }
            out.len() < limit
        })?;
        Ok(out)
    }
}

/// Decode one `inet_diag_msg` (after the `nlmsghdr`): local and remote.
pub fn decode_diag(payload: &[u8]) -> Option<(SocketAddr, SocketAddr)> {
    // family, state, timer, retrans, then inet_diag_sockid: sport, dport
    // (big endian), src[16], dst[16], if, cookie[2].
    let fam = *payload.first()?;
    let sport = u16::from_be_bytes(payload.get(4..6)?.try_into().ok()?);
    let dport = u16::from_be_bytes(payload.get(6..8)?.try_into().ok()?);
    let src = payload.get(8..24)?;
    let dst = payload.get(24..40)?;
    let ip = |b: &[u8]| -> Option<IpAddr> {
        if fam == libc::AF_INET as u8 {
            Some(IpAddr::V4(Ipv4Addr::from(
                <[u8; 4]>::try_from(&b[..4]).ok()?,
            )))
        } else if fam == libc::AF_INET6 as u8 {
            Some(IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(b).ok()?)))
        } else {
            None
        }
    };
    Some((
        SocketAddr::new(ip(src)?, sport),
        SocketAddr::new(ip(dst)?, dport),
    ))
}

/// Listening TCP sockets, IPv4 and IPv6, in the kernel's order.
///
/// The kernel lists them by walking its whole listening hash (every
/// bucket; a child namespace shares the host's): one walk answers both
/// families here, where one dump per family walked it twice.
pub(super) fn listen_sockets() -> Result<Vec<crate::state::ListenSocket>, SystemError> {
    let mut out = Vec::new();
    tcp_dump(1 << TCP_LISTEN, &mut |p| {
        // After inet_diag_sockid (bytes 4..52): expires, rqueue, wqueue,
        // uid, inode (native endian).
        let word = |at: usize| {
            p.get(at..at + 4)
                .and_then(|b| b.try_into().ok())
                .map(u32::from_ne_bytes)
        };
        if let (Some((local, _)), Some(queue), Some(backlog), Some(inode)) =
            (decode_diag(p), word(56), word(60), word(68))
        {
            out.push(crate::state::ListenSocket {
                addr: local.ip(),
                port: local.port(),
                queue,
                backlog,
                inode,
            });
        }
        true
    })?;
    Ok(out)
}

/// Half-open (SYN-RECV) request sockets, IPv4 and IPv6, as (local,
/// remote, SYN-ACK retransmits).
///
/// The kernel finds them by walking its whole established-socket hash
/// (every bucket, full or empty; a child namespace shares the host's), which
/// costs the same whether there are none or thousands: the larger part of a
/// plain `diagnose` on a big host. One walk answers both families here,
/// not one per family.
pub(super) fn syn_recv_sockets() -> Result<Vec<(SocketAddr, SocketAddr, u8)>, SystemError> {
    let mut out = Vec::new();
    tcp_dump(1 << TCP_SYN_RECV, &mut |p| {
        if let Some((local, remote)) = decode_diag(p) {
            // idiag_timer 1 (retransmit) with idiag_retrans: what the
            // sock_diag crate reads as `Timer::Retransmit`.
            let retrans = if p.get(2) == Some(&1) { p[3] } else { 0 };
            out.push((local, remote, retrans));
        }
        true
    })?;
    Ok(out)
}

/// Dump TCP sockets in `states` (a bit per TCP state) of both families in
/// one walk, calling `each` with each `inet_diag_msg` until it returns
/// false (then the socket is closed, which ends the dump in the kernel).
/// The original `TCPDIAG_GETSOCK` request asks for both families at once
/// (the kernel treats it as `AF_UNSPEC`); where it is refused, one
/// `SOCK_DIAG_BY_FAMILY` dump per family does the same in two walks.
fn tcp_dump(states: u32, each: &mut dyn FnMut(&[u8]) -> bool) -> Result<(), SystemError> {
    // struct inet_diag_req: family, src_len, dst_len, ext, a zeroed
    // inet_diag_sockid (48 bytes), states, dbs.
    let mut req = Vec::with_capacity(16 + 60);
    req.extend([0u8, 0, 0, 0]);
    req.extend([0u8; 48]);
    req.extend(states.to_ne_bytes());
    req.extend(0u32.to_ne_bytes());
    match dump_one(TCPDIAG_GETSOCK, &req, each) {
        Ok(()) => Ok(()),
        Err(_) => {
            for fam in [libc::AF_INET as u8, libc::AF_INET6 as u8] {
                // inet_diag_req_v2: family, protocol, ext, pad, states,
                // then a zeroed inet_diag_sockid.
                let mut req = vec![fam, libc::IPPROTO_TCP as u8, 0, 0];
                req.extend(states.to_ne_bytes());
                req.extend([0u8; 48]);
                let r = dump_one(SOCK_DIAG_BY_FAMILY, &req, each);
                // A host without IPv6 refuses the v6 dump: not fatal.
                if fam == libc::AF_INET as u8 {
                    r?;
                }
            }
            Ok(())
        }
    }
}

fn dump_one(
    kind: u16,
    body: &[u8],
    each: &mut dyn FnMut(&[u8]) -> bool,
) -> Result<(), SystemError> {
    let steps = Steps {
        open: "sock_diag open",
        bind: "sock_diag bind",
        connect: "sock_diag connect",
        send: "sock_diag send",
        receive: "sock_diag receive",
        dump: "sock_diag dump",
    };
    dump(NETLINK_SOCK_DIAG, &steps, kind, body, 1 << 16, each)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(kind: u16, body: &[u8]) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend(((16 + body.len()) as u32).to_ne_bytes());
        m.extend(kind.to_ne_bytes());
        m.extend(0u16.to_ne_bytes());
        m.extend(1u32.to_ne_bytes());
        m.extend(0u32.to_ne_bytes());
        m.extend(body);
        m
    }

    #[test]
    fn encodes_an_input_query_as_ip_route_get_does() {
        let q = RouteQuery::Input {
            src: "10.0.1.2".parse().unwrap(),
            dst: "10.0.1.1".parse().unwrap(),
            iif: 7,
        };
        let b = encode_query(&q, 5);
        // 16 + 12 + three 8-byte attributes, as strace shows for iproute2.
        assert_eq!(b.len(), 52);
        assert_eq!(u32::from_ne_bytes(b[0..4].try_into().unwrap()), 52);
        assert_eq!(
            u16::from_ne_bytes(b[4..6].try_into().unwrap()),
            RTM_GETROUTE
        );
        assert_eq!(&b[16..19], &[libc::AF_INET as u8, 32, 32]);
        assert_eq!(&b[28..36], &[8, 0, 1, 0, 10, 0, 1, 1]);
        assert_eq!(&b[36..44], &[8, 0, 2, 0, 10, 0, 1, 2]);
        assert_eq!(&b[44..48], &[8, 0, 3, 0]);
        assert_eq!(u32::from_ne_bytes(b[48..52].try_into().unwrap()), 7);
        let v6 = encode_query(&RouteQuery::To("2001:db8::5".parse().unwrap()), 1);
        assert_eq!(v6.len(), 16 + 12 + 20);
        assert_eq!(&v6[16..19], &[libc::AF_INET6 as u8, 128, 0]);
    }

    #[test]
    fn decodes_a_route_and_an_error() {
        let mut body = vec![libc::AF_INET as u8, 32, 0, 0, 254, 0, 0, 1];
        body.extend(0u32.to_ne_bytes());
        let mut attrs = Vec::new();
        push_attr(&mut attrs, RTA_OIF, &3u32.to_ne_bytes());
        push_attr(&mut attrs, RTA_GATEWAY, &[10, 0, 2, 2]);
        push_attr(&mut attrs, RTA_PREFSRC, &[10, 0, 2, 1]);
        push_attr(&mut attrs, 15, &254u32.to_ne_bytes());
        body.extend(attrs);
        let r = decode_reply(&reply(RTM_NEWROUTE, &body)).unwrap().unwrap();
        assert_eq!(r.kind, 1);
        assert_eq!(r.oif, Some(3));
        assert_eq!(r.gateway, Some("10.0.2.2".parse().unwrap()));
        assert_eq!(r.prefsrc, Some("10.0.2.1".parse().unwrap()));
        let e = decode_reply(&reply(NLMSG_ERROR, &(-libc::EINVAL).to_ne_bytes())).unwrap();
        assert_eq!(e, Err(libc::EINVAL));
        // Truncated or foreign: nothing, never a panic.
        let full = reply(RTM_NEWROUTE, &body);
        for n in 0..full.len() {
            let _ = decode_reply(&full[..n]);
        }
        assert_eq!(decode_reply(&reply(16, &[0; 16])), None);
    }

    #[test]
    fn decodes_an_inet_diag_message() {
        let mut p = vec![libc::AF_INET as u8, 1, 0, 0];
        p.extend(8080u16.to_be_bytes());
        p.extend(40000u16.to_be_bytes());
        let mut src = [0u8; 16];
        src[..4].copy_from_slice(&[10, 0, 1, 1]);
        let mut dst = [0u8; 16];
        dst[..4].copy_from_slice(&[10, 0, 1, 2]);
        p.extend(src);
        p.extend(dst);
        let (l, r) = decode_diag(&p).unwrap();
        assert_eq!(l, "10.0.1.1:8080".parse().unwrap());
        assert_eq!(r, "10.0.1.2:40000".parse().unwrap());
        assert_eq!(decode_diag(&p[..30]), None);
    }

    /// One walk for both families finds a half-open connection to our own
    /// listener (a SYN that no one ACKs is not needed: a full accept queue
    /// is not either; an established pair is enough to see the dump work).
    #[test]
    fn the_one_walk_dump_sees_established_peers_of_both_families() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let _c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let peers = Rtnetlink
            .established_peers(&BTreeSet::from([port]), 16)
            .unwrap();
        assert!(
            peers
                .iter()
                .any(|(p, _)| *p == IpAddr::V4(Ipv4Addr::LOCALHOST)),
            "{peers:?}"
        );
        assert!(syn_recv_sockets().is_ok());
    }

    /// Loopback in this process's namespace: the route to 127.0.0.1 is local.
    #[test]
    fn the_kernel_answers_a_route_to_loopback() {
        let r = Rtnetlink
            .lookup(&[RouteQuery::To(IpAddr::V4(Ipv4Addr::LOCALHOST))])
            .unwrap();
        let a = r[0].as_ref().unwrap();
        assert_eq!(a.kind, 2, "RTN_LOCAL: {a:?}");
        assert_eq!(a.oif, Some(1), "lo: {a:?}");
    }
}
