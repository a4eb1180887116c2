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
        _ => {
            eprintln!("usage: tcto-lab listen --port P [--backlog N] [--addr A] [--accept]\n       tcto-lab connect --addr A --port P [--count N] [--timeout-ms T]");
            std::process::exit(2);
        }
    }
}
