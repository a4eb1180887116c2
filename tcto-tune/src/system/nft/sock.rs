//! The netlink plumbing under nf_tables: a socket with room for large
//! batches, one request/reply exchange (a dump or a plain request), and
//! the send of a finalized batch with one ACK checked per message.
//!
//! Kept apart so that the rest of the module deals only in libnftnl objects
//! and our own data: this is the only file that sends or receives.

use std::io;
use std::os::fd::{AsRawFd as _, BorrowedFd};

use mnl::mnl_sys;
use nftnl::nftnl_sys::{self as sys, libc};

use super::SystemError;

const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;

fn err(step: impl Into<String>) -> impl FnOnce(io::Error) -> SystemError {
    let step = step.into();
    move |source| SystemError::Nftables { step, source }
}

/// A netlink socket for nf_tables with room for large batches.
struct Sock {
    socket: mnl::Socket,
    portid: u32,
}

impl Sock {
    fn open(step: &str, buffer: usize) -> Result<Self, SystemError> {
        let socket = mnl::Socket::new(mnl::Bus::Netfilter)
            .map_err(err(format!("open a netfilter netlink socket to {step}")))?;
        let sock = Sock {
            portid: socket.portid(),
            socket,
        };
        let size = buffer.clamp(1 << 18, 1 << 28);
        // Best effort: without CAP_NET_ADMIN the kernel refuses FORCE and
        // the default buffers stay (fine for small tables).
        let _ = rustix::net::sockopt::set_socket_send_buffer_size_force(sock.fd(), size);
        let _ = rustix::net::sockopt::set_socket_recv_buffer_size_force(sock.fd(), size);
        let _ = rustix::net::sockopt::set_socket_timeout(
            sock.fd(),
            rustix::net::sockopt::Timeout::Recv,
            Some(std::time::Duration::from_secs(10)),
        );
        Ok(sock)
    }

    /// The socket's descriptor, borrowed for as long as the socket is.
    fn fd(&self) -> BorrowedFd<'_> {
        // SAFETY: `mnl::Socket` owns this open descriptor and closes it only
        // when dropped, which the borrow of `self` rules out meanwhile.
        unsafe { BorrowedFd::borrow_raw(self.socket.as_raw_fd()) }
    }
}

/// A message buffer aligned to `nlmsghdr` (mnl requires it), left
/// uninitialised: the kernel or libnftnl writes it and only the bytes they
/// report writing are ever read. Zeroing a fresh 64 KiB send and 256 KiB
/// receive buffer for each of the ~20 exchanges of an apply (and 1 MiB of
/// ACK slots per batch) was 5% of its instructions, and faulted in pages
/// the replies never reach.
struct AlignedBuf(Vec<u64>);

impl AlignedBuf {
    fn new(bytes: usize) -> Self {
        AlignedBuf(Vec::with_capacity(bytes.div_ceil(8)))
    }

    /// Its size in bytes.
    fn len(&self) -> usize {
        self.0.capacity() * 8
    }

    /// Where writers put their bytes.
    fn as_mut_ptr(&mut self) -> *mut u8 {
        self.0.as_mut_ptr().cast()
    }

    /// `len` bytes from `at`.
    ///
    /// # Safety
    /// Those bytes must have been written (by the kernel or libnftnl)
    /// since the buffer was made, and lie inside it.
    unsafe fn written(&self, at: usize, len: usize) -> &[u8] {
        debug_assert!(at + len <= self.len());
        // SAFETY: inside the allocation and initialised, per the caller.
        unsafe { std::slice::from_raw_parts(self.0.as_ptr().cast::<u8>().add(at), len) }
    }

    /// One datagram received into the buffer from `sock`, as mnl's
    /// `Socket::recv` does (same call, same errors) but without asking for
    /// an initialised slice.
    fn recv(&mut self, sock: &mnl::Socket) -> io::Result<&[u8]> {
        let (ptr, len) = (self.as_mut_ptr(), self.len());
        // SAFETY: ptr/len describe this buffer's allocation; the kernel
        // writes at most len bytes and returns how many.
        let n = unsafe { mnl_sys::mnl_socket_recvfrom(sock.as_raw_socket(), ptr.cast(), len) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the kernel wrote the first n bytes.
        Ok(unsafe { self.written(0, n as usize) })
    }
}

/// The header of a message mnl's iterator yielded (at least one header
/// long), decoded field by field.
fn header(msg: &[u8]) -> libc::nlmsghdr {
    let u32_at = |i: usize| u32::from_ne_bytes([msg[i], msg[i + 1], msg[i + 2], msg[i + 3]]);
    let u16_at = |i: usize| u16::from_ne_bytes([msg[i], msg[i + 1]]);
    libc::nlmsghdr {
        nlmsg_len: u32_at(0),
        nlmsg_type: u16_at(4),
        nlmsg_flags: u16_at(6),
        nlmsg_seq: u32_at(8),
        nlmsg_pid: u32_at(12),
    }
}

fn error_code(msg: &[u8]) -> i32 {
    let off = size_of::<libc::nlmsghdr>();
    if msg.len() < off + 4 {
        return -libc::EBADMSG;
    }
    i32::from_ne_bytes([msg[off], msg[off + 1], msg[off + 2], msg[off + 3]])
}

/// Send one request and hand every reply message to `each` until DONE (a
/// dump) or the ACK (a plain request).
pub(super) fn request(
    step: &str,
    msg_type: u16,
    family: u8,
    flags: u16,
    build: impl FnOnce(*mut libc::nlmsghdr),
    mut each: impl FnMut(&libc::nlmsghdr),
) -> Result<(), SystemError> {
    let sock = Sock::open(step, 0)?;
    let mut out = AlignedBuf::new(nftnl::nft_nlmsg_maxsize() as usize);
    let seq = 1u32;
    // SAFETY: the buffer holds nft_nlmsg_maxsize bytes, what libnftnl needs.
    let nlh = unsafe {
        sys::nftnl_nlmsg_build_hdr(
            out.as_mut_ptr().cast(),
            msg_type,
            u16::from(family),
            flags,
            seq,
        )
    };
    build(nlh);
    // SAFETY: nlh points into `out` and nlmsg_len counts the built message.
    let len = unsafe { (*nlh).nlmsg_len } as usize;
    // SAFETY: libnftnl wrote the header and payload, nlmsg_len bytes.
    let message = unsafe { out.written(0, len) };
    sock.socket
        .send(message)
        .map_err(err(format!("send the request to {step}")))?;
    let mut buf = AlignedBuf::new(1 << 18);
    loop {
        let got = buf
            .recv(&sock.socket)
            .map_err(err(format!("receive the reply to {step}")))?;
        for m in mnl::NlMessages::new(got) {
            let m = m.map_err(err(format!("parse the reply to {step}")))?;
            let h = header(m);
            if h.nlmsg_seq != seq || h.nlmsg_pid != sock.portid {
                continue;
            }
            match h.nlmsg_type {
                NLMSG_DONE => return Ok(()),
                NLMSG_ERROR => {
                    let code = error_code(m);
                    if code == 0 {
                        return Ok(());
                    }
                    return Err(SystemError::Nftables {
                        step: step.to_owned(),
                        source: io::Error::from_raw_os_error(-code),
                    });
                }
                _ => {
                    // SAFETY: an aligned, complete message from the kernel.
                    each(unsafe { &*m.as_ptr().cast::<libc::nlmsghdr>() });
                    if flags & libc::NLM_F_DUMP as u16 == 0 {
                        return Ok(());
                    }
                }
            }
        }
    }
}

pub(super) fn nft_type(t: i32) -> u16 {
    (NFNL_SUBSYS_NFTABLES << 8) | t as u16
}

/// Bytes per datagram slot when receiving ACKs (an error ACK carries the
/// refused message back: a rule is well under this).
const ACK_SLOT: usize = 16 << 10;
/// Datagrams per receive call: a 2,000-rule batch is ACKed in ~32 calls,
/// not 2,000.
const ACK_SLOTS: usize = 64;

/// Receive up to [`ACK_SLOTS`] datagrams in one `recvmmsg`, blocking (up
/// to SO_RCVTIMEO) for the first only; slot `i` starts at `i * ACK_SLOT`.
fn recv_many(fd: BorrowedFd<'_>, buf: &mut AlignedBuf) -> io::Result<Vec<usize>> {
    debug_assert!(buf.len() >= ACK_SLOT * ACK_SLOTS);
    let base = buf.as_mut_ptr();
    let mut iov: Vec<libc::iovec> = (0..ACK_SLOTS)
        .map(|i| libc::iovec {
            // Every slot lies inside `buf` (ACK_SLOT * ACK_SLOTS bytes).
            iov_base: base.wrapping_add(i * ACK_SLOT).cast(),
            iov_len: ACK_SLOT,
        })
        .collect();
    // SAFETY: mmsghdr is plain C data; zero is a valid empty header.
    let mut hdrs: Vec<libc::mmsghdr> = (0..ACK_SLOTS)
        .map(|_| unsafe { std::mem::zeroed() })
        .collect();
    for (h, v) in hdrs.iter_mut().zip(iov.iter_mut()) {
        h.msg_hdr.msg_iov = v;
        h.msg_hdr.msg_iovlen = 1;
    }
    // SAFETY: hdrs and iov outlive the call and describe valid buffers.
    let n = unsafe {
        libc::recvmmsg(
            fd.as_raw_fd(),
            hdrs.as_mut_ptr(),
            ACK_SLOTS as libc::c_uint,
            libc::MSG_WAITFORONE,
            std::ptr::null_mut(),
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let hdrs = &hdrs[..n as usize];
    if hdrs
        .iter()
        .any(|h| h.msg_hdr.msg_flags & libc::MSG_TRUNC != 0)
    {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "an ACK did not fit its receive slot",
        ));
    }
    Ok(hdrs.iter().map(|h| h.msg_len as usize).collect())
}

/// Send a finalized batch in one datagram and check one ACK per message;
/// `describe(i)` names our `i`th message for the error.
pub(super) fn send_batch(
    batch: &nftnl::FinalizedBatch,
    count: usize,
    describe: impl Fn(usize) -> String,
) -> Result<(), SystemError> {
    let mut data: Vec<u8> = Vec::new();
    for page in batch.iter() {
        data.extend_from_slice(page);
    }
    let seqs = batch.sequence_numbers();
    let total = seqs.len();
    let sock = Sock::open("write the table", data.len() * 2 + total * 2048 + (1 << 16))?;
    sock.socket
        .send(&data)
        .map_err(err("send the batch that writes the table"))?;
    // Sequence numbers cover the batch begin and end messages when the
    // kernel ACKs them, our messages otherwise.
    let first = seqs.start;
    let offset = usize::from(total == count + 2);
    let describe = |seq: u32| -> String {
        let i = seq.wrapping_sub(first) as usize;
        match i.checked_sub(offset) {
            Some(j) if j < count => describe(j),
            _ if i == 0 && offset == 1 => "begin the batch".into(),
            _ => "commit the batch".into(),
        }
    };
    let mut pending: std::collections::BTreeSet<u32> = seqs.clone().collect();
    let mut buf = AlignedBuf::new(ACK_SLOT * ACK_SLOTS);
    while !pending.is_empty() {
        let lens = recv_many(sock.fd(), &mut buf).map_err(err("receive the ACKs of the batch"))?;
        let buf = &buf;
        let msgs = lens.iter().enumerate().flat_map(|(i, len)| {
            // SAFETY: the kernel wrote `len` bytes (at most ACK_SLOT, or
            // recv_many failed on MSG_TRUNC) into slot i.
            mnl::NlMessages::new(unsafe { buf.written(i * ACK_SLOT, *len) })
        });
        for m in msgs {
            let m = m.map_err(err("parse the ACKs of the batch"))?;
            let h = header(m);
            if h.nlmsg_type != NLMSG_ERROR || h.nlmsg_pid != sock.portid {
                continue;
            }
            let code = error_code(m);
            if code != 0 {
                return Err(SystemError::Nftables {
                    step: describe(h.nlmsg_seq),
                    source: io::Error::from_raw_os_error(-code),
                });
            }
            pending.remove(&h.nlmsg_seq);
        }
    }
    Ok(())
}
