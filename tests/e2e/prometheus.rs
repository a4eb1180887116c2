//! `diagnose --prometheus FILE` beside a real node_exporter (issue 17):
//! the file goes into node_exporter's textfile directory, and a scrape
//! must gather with no error (no metric that node_exporter's own
//! collectors already export) and show tcto-tune's own `tcto_` metrics;
//! `promtool check metrics` must accept the file.
//!
//! Both oracles come from Debian (`scripts/prometheus-tools` installs them
//! when missing). Everything here only reads the host: `diagnose` changes
//! nothing, and node_exporter listens on a free loopback port.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tcto_tune_tests::{on_host, require_root, TempDir};

fn install_tools() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/prometheus-tools");
    let ok = Command::new("bash")
        .arg(script)
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "scripts/prometheus-tools failed: node_exporter and promtool are needed"
    );
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// GET /metrics over plain HTTP/1.0 (no client library or curl needed).
fn scrape(port: u16) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    body.contains("200 OK").then_some(body)
}

struct Exporter(std::process::Child);

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn prometheus_file_scrapes_cleanly_beside_node_exporter() {
    if !require_root("prometheus_file_scrapes_cleanly_beside_node_exporter") {
        return;
    }
    install_tools();
    let d = TempDir::new("prom");
    let tf = d.0.join("textfile");
    std::fs::create_dir(&tf).unwrap();
    let file = tf.join("tcto.prom");
    let r = on_host(&format!(
        "tcto-tune diagnose --interval 0s --prometheus {f} || exit 10\n\
         ls -A {tf}\n\
         promtool check metrics < {f} || exit 11",
        f = file.display(),
        tf = tf.display()
    ));
    assert_eq!(r.code, 0, "{r}");
    // The temp file was renamed into place: only the one file is there.
    assert_eq!(r.stdout.trim(), "tcto.prom", "{r}");
    let text = std::fs::read_to_string(&file).unwrap();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        assert!(line.starts_with("tcto_"), "a metric outside tcto_: {line}");
    }

    let port = free_port();
    let log = d.0.join("node_exporter.log");
    let exporter = Exporter(
        Command::new("prometheus-node-exporter")
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg(format!("--collector.textfile.directory={}", tf.display()))
            .arg("--no-collector.systemd")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("prometheus-node-exporter runs"),
    );
    let start = Instant::now();
    let body = loop {
        if let Some(b) = scrape(port) {
            break b;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "node_exporter did not answer"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    // A second scrape: node_exporter logs gathering errors per scrape.
    let body2 = scrape(port).expect("second scrape");
    drop(exporter);
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(
        !log.contains("error gathering metrics") && !log.contains("was collected before"),
        "node_exporter reported duplicate or broken metrics:\n{log}"
    );
    assert!(body.contains("\nnode_textfile_scrape_error 0"), "{body}");
    assert!(
        body2.contains("\ntcto_"),
        "no tcto_ metric in the scrape:\n{body2}"
    );
    // node_exporter's own collectors still export what we no longer do.
    assert!(
        body.contains("\nnode_netstat_TcpExt_ListenOverflows"),
        "{body}"
    );
}
