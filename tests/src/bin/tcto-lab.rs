//! `tcto-lab`: tiny network actors for the end-to-end tests.
//!
//! `tcto-lab listen --port P --backlog N [--addr A] [--accept] [--comm NAME]`:
//! listen with exactly backlog N (std's TcpListener always uses 128), print
//! `ready` and hold the socket until killed; without `--accept` it never
//! accepts, so the accept queue fills like a stuck server's. `--comm` renames
//! the process with `prctl(PR_SET_NAME)` first, as any unprivileged user can
//! (the hostile process name of the terminal-escape test).
//!
//! `tcto-lab connect --addr A --port P [--count N] [--timeout-ms T]`: make
//! N TCP connections one after the other, each given T ms to complete, and
//! print `ok=X failed=Y` (exit 0 either way: the caller judges).
//!
//! `tcto-lab fill --listeners N --base-port P --accept M [--addr A]`: N idle
//! listeners on ports P+1..=P+N and a listener on P that accepts and keeps
//! M connections; `tcto-lab hold --to A:P --connections M` opens and keeps
//! them (two processes, so each stays under the descriptor limit): the
//! benchmark's busy namespace.

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("listen") => {
            if let Some(name) = arg(&args, "--comm") {
                let c = std::ffi::CString::new(name).expect("no NUL in --comm");
                // SAFETY: PR_SET_NAME reads a NUL-terminated string of which
                // the kernel keeps the first 15 bytes; `c` outlives the call.
                let rc = unsafe { libc::prctl(libc::PR_SET_NAME, c.as_ptr()) };
                assert_eq!(rc, 0, "prctl(PR_SET_NAME)");
            }
            let port: u16 = arg(&args, "--port").expect("--port").parse().expect("port");
            let backlog: i32 = arg(&args, "--backlog")
                .unwrap_or_else(|| "128".into())
                .parse()
                .expect("backlog");
            let addr: std::net::IpAddr = arg(&args, "--addr")
                .unwrap_or_else(|| "0.0.0.0".into())
                .parse()
                .expect("addr");
            let addr = SocketAddr::new(addr, port);
            let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))
                .expect("socket");
            s.set_reuse_address(true).expect("reuseaddr");
            s.bind(&addr.into()).expect("bind");
            s.listen(backlog).expect("listen");
            println!("ready");
            std::io::stdout().flush().ok();
            if args.iter().any(|a| a == "--accept") {
                let l: std::net::TcpListener = s.into();
                for c in l.incoming() {
                    drop(c);
                }
            } else {
                loop {
                    std::thread::sleep(Duration::from_secs(3600));
                }
            }
        }
        Some("connect") => {
            let port: u16 = arg(&args, "--port").expect("--port").parse().expect("port");
            let addr: std::net::IpAddr =
                arg(&args, "--addr").expect("--addr").parse().expect("addr");
            let count: u32 = arg(&args, "--count")
                .unwrap_or_else(|| "1".into())
                .parse()
                .expect("count");
            let timeout: u64 = arg(&args, "--timeout-ms")
                .unwrap_or_else(|| "1000".into())
                .parse()
                .expect("timeout");
            let to = SocketAddr::new(addr, port);
            let (mut ok, mut failed) = (0, 0);
            for _ in 0..count.min(10_000) {
                match std::net::TcpStream::connect_timeout(&to, Duration::from_millis(timeout)) {
                    Ok(_) => ok += 1,
                    Err(_) => failed += 1,
                }
            }
            println!("ok={ok} failed={failed}");
        }
        Some("fill") => fill(&args),
        Some("hold") => hold(&args),
        _ => {
            eprintln!("usage: tcto-lab listen --port P [--backlog N] [--addr A] [--accept]\n       tcto-lab connect --addr A --port P [--count N] [--timeout-ms T]\n       tcto-lab fill --listeners N --base-port P --accept M [--addr A]\n       tcto-lab hold --to A:P --connections M");
            std::process::exit(2);
        }
    }
}

fn listen_on(addr: SocketAddr, backlog: i32) -> std::net::TcpListener {
    let s =
        Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP)).expect("socket");
    s.set_reuse_address(true).expect("reuseaddr");
    s.bind(&addr.into())
        .unwrap_or_else(|e| panic!("bind {addr}: {e}"));
    s.listen(backlog).expect("listen");
    s.into()
}

fn num(args: &[String], name: &str) -> u32 {
    arg(args, name)
        .unwrap_or_else(|| panic!("{name} is required"))
        .parse()
        .unwrap_or_else(|_| panic!("{name} takes a number"))
}

/// Make room for `need` descriptors: the soft limit up to the hard one, and
/// the hard one too where permitted.
fn raise_nofile(need: u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: lim is a valid rlimit for the kernel to fill.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    if lim.rlim_cur >= need {
        return;
    }
    lim.rlim_cur = need;
    lim.rlim_max = lim.rlim_max.max(need);
    // SAFETY: lim is a valid rlimit.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
        panic!(
            "need {need} file descriptors: {}; split the work over more processes",
            std::io::Error::last_os_error()
        );
    }
}

fn ip_arg(args: &[String]) -> std::net::IpAddr {
    arg(args, "--addr")
        .unwrap_or_else(|| "127.0.0.1".into())
        .parse()
        .expect("addr")
}

fn hold_forever<T>(held: T) -> ! {
    println!("ready");
    std::io::stdout().flush().ok();
    loop {
        std::thread::sleep(Duration::from_secs(3600));
        let _ = &held;
    }
}

/// `fill --listeners N --base-port P --accept M [--addr A]`: an accepting
/// listener on P that keeps the M connections it accepts, and N idle
/// listeners on P+1..=P+N.
fn fill(args: &[String]) {
    let listeners = num(args, "--listeners");
    let base = num(args, "--base-port");
    let accept = num(args, "--accept");
    assert!(
        listeners <= 5_000 && accept <= 50_000 && base >= 1 && base + listeners <= 65_535,
        "bounded: at most 5000 listeners and 50000 connections, ports below 65536"
    );
    let ip = ip_arg(args);
    raise_nofile(u64::from(listeners) + u64::from(accept) + 64);
    let server = listen_on(SocketAddr::new(ip, base as u16), 4096);
    let idle: Vec<_> = (1..=listeners)
        .map(|i| listen_on(SocketAddr::new(ip, (base + i) as u16), 128))
        .collect();
    std::thread::spawn(move || {
        let mut held = Vec::with_capacity(accept as usize);
        while held.len() < accept as usize {
            match server.accept() {
                Ok((c, _)) => held.push(c),
                Err(e) => panic!("accept: {e}"),
            }
        }
        loop {
            std::thread::sleep(Duration::from_secs(3600));
            let _ = &held;
        }
    });
    hold_forever(idle)
}

/// `hold --to A:P --connections M`: open M connections and keep them.
fn hold(args: &[String]) {
    let to: SocketAddr = arg(args, "--to").expect("--to").parse().expect("A:P");
    let connections = num(args, "--connections");
    assert!(connections <= 50_000, "bounded: at most 50000 connections");
    raise_nofile(u64::from(connections) + 64);
    let clients: Vec<_> = (0..connections)
        .map(|i| {
            std::net::TcpStream::connect_timeout(&to, Duration::from_secs(5))
                .unwrap_or_else(|e| panic!("connect {i} to {to}: {e}"))
        })
        .collect();
    hold_forever(clients)
}
