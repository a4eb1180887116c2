//! TCP connects for `probe`: the only place a probe touches the network.
//!
//! A trait so the probe's scheduling, classification and statistics are
//! tested without a network, and so nothing but this code opens sockets.

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// How one connect ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The handshake completed.
    Established,
    /// The peer answered with RST: nothing listens there.
    Refused,
    /// No answer before the timeout: SYNs (or SYN-ACKs) were dropped.
    TimedOut,
    /// An ICMP unreachable, or no route.
    Unreachable,
    /// Anything else, with its errno (0 when unknown).
    Error(i32),
}

/// One connect attempt's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt {
    /// How it ended.
    pub outcome: Outcome,
    /// Time from the call to its end (the handshake time when established).
    pub elapsed: Duration,
}

/// Makes one TCP connect. Implementations must be usable from many threads.
pub trait Connector: Sync {
    /// Connect to `addr`, giving up after `timeout`, then close.
    fn connect(&self, addr: SocketAddr, timeout: Duration) -> Attempt;
}

/// Real connects through the kernel (non-blocking connect + poll).
#[derive(Debug, Default, Clone, Copy)]
pub struct TcpConnector;

/// Resolve `host:port` through the system resolver; the first address.
pub fn resolve(host_port: &str) -> io::Result<Option<SocketAddr>> {
    use std::net::ToSocketAddrs as _;
    Ok(host_port.to_socket_addrs()?.next())
}

/// Classify a connect error the way an operator reads it.
pub fn classify(e: &io::Error) -> Outcome {
    match e.raw_os_error() {
        Some(libc::ECONNREFUSED) => Outcome::Refused,
        Some(libc::ETIMEDOUT) => Outcome::TimedOut,
        Some(libc::EHOSTUNREACH | libc::ENETUNREACH | libc::EHOSTDOWN | libc::ENETDOWN) => {
            Outcome::Unreachable
        }
        Some(errno) => Outcome::Error(errno),
        // std reports its own poll timeout without an errno.
        None if e.kind() == io::ErrorKind::TimedOut => Outcome::TimedOut,
        None => Outcome::Error(0),
    }
}

impl Connector for TcpConnector {
    fn connect(&self, addr: SocketAddr, timeout: Duration) -> Attempt {
        let start = Instant::now();
        let outcome = match TcpStream::connect_timeout(&addr, timeout) {
            Ok(stream) => {
                drop(stream);
                Outcome::Established
            }
            Err(e) => classify(&e),
        };
        let elapsed = start.elapsed();
        Attempt { outcome, elapsed }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_map_to_outcomes() {
        let e = |n| io::Error::from_raw_os_error(n);
        assert_eq!(classify(&e(libc::ECONNREFUSED)), Outcome::Refused);
        assert_eq!(classify(&e(libc::ETIMEDOUT)), Outcome::TimedOut);
        assert_eq!(classify(&e(libc::EHOSTUNREACH)), Outcome::Unreachable);
        assert_eq!(classify(&e(libc::ENETUNREACH)), Outcome::Unreachable);
        assert_eq!(classify(&e(libc::EACCES)), Outcome::Error(libc::EACCES));
        let t = io::Error::new(io::ErrorKind::TimedOut, "connection timed out");
        assert_eq!(classify(&t), Outcome::TimedOut);
    }

    #[test]
    fn loopback_established_and_refused() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let a = TcpConnector.connect(addr, Duration::from_secs(2));
        assert_eq!(a.outcome, Outcome::Established);
        drop(l);
        let a = TcpConnector.connect(addr, Duration::from_secs(2));
        assert_eq!(a.outcome, Outcome::Refused);
    }
}
