//! `tcto-lab`: tiny network actors for the end-to-end tests.
//!
//! `tcto-lab listen --port P --backlog N [--addr A] [--accept]`: listen with
//! exactly backlog N (std's TcpListener always uses 128), print `ready` and
//! hold the socket until killed; without `--accept` it never accepts, so
//! the accept queue fills like a stuck server's.
//!
//! `tcto-lab connect --addr A --port P [--count N] [--timeout-ms T]`: make
//! N TCP connections one after the other, each given T ms to complete, and
//! print `ok=X failed=Y` (exit 0 either way: the caller judges).
//!
//! `tcto-lab fill --listeners N --base-port P --connections M [--addr A]`:
//! N idle listeners on ports P+1..=P+N and M established loopback
//! connections to a listener on P that accepts them (2 x M established
//! sockets), held until killed: the benchmark's busy namespace.

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
        _ => {
            eprintln!("usage: tcto-lab listen --port P [--backlog N] [--addr A] [--accept]\n       tcto-lab connect --addr A --port P [--count N] [--timeout-ms T]\n       tcto-lab fill --listeners N --base-port P --connections M [--addr A]");
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

fn fill(args: &[String]) {
    let num = |name: &str| -> u32 {
        arg(args, name)
            .unwrap_or_else(|| panic!("{name} is required"))
            .parse()
            .unwrap_or_else(|_| panic!("{name} takes a number"))
    };
    let listeners = num("--listeners");
    let base = num("--base-port");
    let connections = num("--connections");
    assert!(
        listeners <= 5_000 && connections <= 50_000 && base + listeners <= 65_535,
        "bounded: at most 5000 listeners and 50000 connections"
    );
    let ip: std::net::IpAddr = arg(args, "--addr")
        .unwrap_or_else(|| "127.0.0.1".into())
        .parse()
        .expect("addr");
    let need = u64::from(listeners) + 2 * u64::from(connections) + 64;
    let lim = libc::rlimit {
        rlim_cur: need,
        rlim_max: need,
    };
    // SAFETY: lim is a valid rlimit; raising the limit needs root.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
        panic!(
            "setrlimit(NOFILE, {need}): {}",
            std::io::Error::last_os_error()
        );
    }
    let server_addr = SocketAddr::new(ip, base as u16);
    let server = listen_on(server_addr, 4096);
    let idle: Vec<_> = (1..=listeners)
        .map(|i| listen_on(SocketAddr::new(ip, (base + i) as u16), 128))
        .collect();
    let accepted = std::thread::spawn(move || {
        let mut held = Vec::with_capacity(connections as usize);
        while held.len() < connections as usize {
            held.push(server.accept().expect("accept").0);
        }
        held
    });
    let clients: Vec<_> = (0..connections)
        .map(|_| std::net::TcpStream::connect(server_addr).expect("connect"))
        .collect();
    let held = accepted.join().expect("acceptor");
    println!("ready");
    std::io::stdout().flush().ok();
    loop {
        std::thread::sleep(Duration::from_secs(3600));
        // Keep everything open until killed.
        let _ = (&idle, &clients, &held);
    }
}
