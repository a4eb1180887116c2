//! Listening TCP sockets through sock_diag (inet_diag) netlink: the same
//! source `ss -tln` uses. For a LISTEN socket the kernel reports the current
//! accept queue as rqueue and the effective backlog as wqueue.

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

/// Lists listeners of this process's network namespace.
#[derive(Debug, Default, Clone, Copy)]
pub struct SockDiag;

impl Sockets for SockDiag {
    fn listeners(&self) -> Result<Vec<ListenSocket>, SystemError> {
        // Both families in one walk of the kernel's listening hash (see
        // `route::listen_sockets`); where that request is refused, one
        // dump per family, the v6 one allowed to fail (a host without
        // IPv6).
        let mut out = super::route::listen_sockets()?;
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
