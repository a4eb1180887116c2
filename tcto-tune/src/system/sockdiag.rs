//! Listening TCP sockets through sock_diag (inet_diag) netlink: the same
//! source `ss -tln` uses. For a LISTEN socket the kernel reports the current
//! accept queue as rqueue and the effective backlog as wqueue.

use std::io;

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_sock_diag::constants::{AF_INET, AF_INET6, IPPROTO_TCP};
use netlink_packet_sock_diag::inet::{
    ExtensionFlags, InetRequest, InetResponse, SocketId, StateFlags,
};
use netlink_packet_sock_diag::SockDiagMessage;
use netlink_sys::protocols::NETLINK_SOCK_DIAG;
use netlink_sys::{Socket, SocketAddr};

use super::{Sockets, SystemError};
use crate::state::ListenSocket;

/// A half-open connection (a request socket in SYN-RECV): the server got
/// the SYN and answered with a SYN-ACK, the client's ACK has not come.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct SynRecv {
    /// The listener's address and port.
    pub local: std::net::SocketAddr,
    /// The client.
    pub remote: std::net::SocketAddr,
    /// SYN-ACKs retransmitted so far.
    pub retrans: u8,
}

fn listener(r: &InetResponse) -> ListenSocket {
    ListenSocket {
        addr: r.header.socket_id.source_address,
        port: r.header.socket_id.source_port,
        queue: r.header.recv_queue,
        backlog: r.header.send_queue,
        inode: r.header.inode,
    }
}

/// Lists listeners of this process's network namespace.
#[derive(Debug, Default, Clone, Copy)]
pub struct SockDiag;

fn nl(step: &'static str) -> impl Fn(io::Error) -> SystemError {
    move |source| SystemError::Netlink { step, source }
}

fn dump(
    family: u8,
    states: StateFlags,
    mut each: impl FnMut(&InetResponse),
) -> Result<(), SystemError> {
    let mut socket = Socket::new(NETLINK_SOCK_DIAG).map_err(nl("sock_diag open"))?;
    socket.bind_auto().map_err(nl("sock_diag bind"))?;
    socket
        .connect(&SocketAddr::new(0, 0))
        .map_err(nl("sock_diag connect"))?;
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    let mut packet = NetlinkMessage::new(
        header,
        SockDiagMessage::InetRequest(InetRequest {
            family,
            protocol: IPPROTO_TCP,
            extensions: ExtensionFlags::empty(),
            states,
            socket_id: if family == AF_INET {
                SocketId::new_v4()
            } else {
                SocketId::new_v6()
            },
        })
        .into(),
    );
    packet.finalize();
    let mut buf = vec![0; packet.buffer_len()];
    packet.serialize(&mut buf[..]);
    socket.send(&buf[..], 0).map_err(nl("sock_diag send"))?;

    let mut rx = vec![0u8; 1 << 16];
    loop {
        let size = socket
            .recv(&mut &mut rx[..], 0)
            .map_err(nl("sock_diag receive"))?;
        let mut offset = 0;
        while offset < size {
            let msg =
                <NetlinkMessage<SockDiagMessage>>::deserialize(&rx[offset..size]).map_err(|e| {
                    SystemError::Netlink {
                        step: "sock_diag decode",
                        source: io::Error::other(e.to_string()),
                    }
                })?;
            let len = msg.header.length as usize;
            match msg.payload {
                NetlinkPayload::InnerMessage(SockDiagMessage::InetResponse(r)) => each(&r),
                NetlinkPayload::Done(_) => return Ok(()),
                NetlinkPayload::Error(e) => {
                    let code = e.code.map_or(0, |c| -c.get());
                    return Err(SystemError::Netlink {
                        step: "sock_diag dump",
                        source: io::Error::from_raw_os_error(code),
                    });
                }
                _ => {}
            }
            if len == 0 {
                break;
            }
            offset += len;
        }
    }
}

impl Sockets for SockDiag {
    fn listeners(&self) -> Result<Vec<ListenSocket>, SystemError> {
        let mut out = Vec::new();
        dump(AF_INET, StateFlags::LISTEN, |r| out.push(listener(r)))?;
        // A host without IPv6 answers the v6 dump with an error: not fatal.
        let mut v6 = Vec::new();
        if dump(AF_INET6, StateFlags::LISTEN, |r| v6.push(listener(r))).is_ok() {
            out.extend(v6);
        }
        out.sort_by_key(|s| (s.port, s.addr));
        Ok(out)
    }

    fn syn_recv(&self) -> Result<Vec<SynRecv>, SystemError> {
        // Both families in one walk of the kernel's socket hash (see
        // `route::syn_recv_sockets`): half the cost of one dump per family.
        let mut out: Vec<SynRecv> = super::route::syn_recv_sockets()?
            .into_iter()
            .map(|(local, remote, retrans)| SynRecv {
                local,
                remote,
                retrans,
            })
            .collect();
        out.sort();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sees_a_listener_with_its_backlog() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let found = SockDiag.listeners().unwrap();
        let ours = found
            .iter()
            .find(|s| s.port == port)
            .expect("our listener is listed");
        // std listens with 128, clamped by somaxconn.
        assert!(ours.backlog > 0 && ours.backlog <= 128, "{ours:?}");
        assert_eq!(ours.queue, 0);
    }
}
