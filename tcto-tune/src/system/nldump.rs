//! One netlink dump: send an `NLM_F_DUMP` request and walk the replies,
//! message by message, until `NLMSG_DONE`. Shared by the conntrack dump
//! (ctnetlink) and the socket dumps (sock_diag), which differ only in the
//! protocol, the request and what they do with each message.

use std::io;

use netlink_sys::{Socket, SocketAddr};

use super::SystemError;

const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;

/// The names of a dump's steps in its errors (`ctnetlink receive`...).
pub(super) struct Steps {
    pub open: &'static str,
    pub bind: &'static str,
    pub connect: &'static str,
    pub send: &'static str,
    pub receive: &'static str,
    pub dump: &'static str,
}

fn nl(step: &'static str) -> impl Fn(io::Error) -> SystemError {
    move |source| SystemError::Netlink { step, source }
}

/// Dump `kind` with `body` over a `protocol` socket, receiving into a
/// `rx_size` buffer, and call `each` on each message's payload (after its
/// 16-byte header); `each` returning `false` ends the walk early.
pub(super) fn dump(
    protocol: isize,
    steps: &Steps,
    kind: u16,
    body: &[u8],
    rx_size: usize,
    each: &mut dyn FnMut(&[u8]) -> bool,
) -> Result<(), SystemError> {
    let mut socket = Socket::new(protocol).map_err(nl(steps.open))?;
    socket.bind_auto().map_err(nl(steps.bind))?;
    socket
        .connect(&SocketAddr::new(0, 0))
        .map_err(nl(steps.connect))?;
    let mut req = Vec::with_capacity(16 + body.len());
    req.extend(((16 + body.len()) as u32).to_ne_bytes());
    req.extend(kind.to_ne_bytes());
    req.extend((libc::NLM_F_REQUEST as u16 | libc::NLM_F_DUMP as u16).to_ne_bytes());
    req.extend(1u32.to_ne_bytes());
    req.extend(0u32.to_ne_bytes());
    req.extend(body);
    socket.send(&req, 0).map_err(nl(steps.send))?;
    // Received into the spare capacity, never zeroed (zeroing 64 KiB was
    // 4 % of an `apply`): netlink-sys sets the length to the bytes the
    // kernel wrote, and only those are read.
    let mut rx: Vec<u8> = Vec::with_capacity(rx_size);
    loop {
        rx.clear();
        let got = socket.recv(&mut rx, 0).map_err(nl(steps.receive))?;
        if got == 0 {
            return Ok(());
        }
        let size = rx.len();
        let mut off = 0;
        while off + 16 <= size {
            let h = &rx[off..size];
            let len = u32::from_ne_bytes([h[0], h[1], h[2], h[3]]) as usize;
            let t = u16::from_ne_bytes([h[4], h[5]]);
            if len < 16 || len > h.len() {
                break;
            }
            match t {
                NLMSG_DONE => return Ok(()),
                NLMSG_ERROR => {
                    let code = h
                        .get(16..20)
                        .map_or(0, |c| i32::from_ne_bytes([c[0], c[1], c[2], c[3]]));
                    if code != 0 {
                        return Err(SystemError::Netlink {
                            step: steps.dump,
                            source: io::Error::from_raw_os_error(-code),
                        });
                    }
                }
                _ => {
                    if !each(&h[16..len]) {
                        return Ok(());
                    }
                }
            }
            off += (len + 3) & !3;
        }
    }
}
