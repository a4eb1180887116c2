//! Helpers for the end-to-end tests: find the binaries, run shell scripts
//! inside throwaway network namespaces, and skip (or, under CI, fail) when
//! not root.
//!
//! Every test that changes kernel state runs its commands inside
//! `unshare -n` (one private network namespace that dies with the script)
//! or inside `ip netns` namespaces owned by a [`Netns`] guard that deletes
//! them on drop. Nothing a test does reaches the host's own namespace.

pub mod notrack;

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

/// Path of a binary built by this workspace (`tcto-tune`, `tcto-lab`).
pub fn bin(name: &str) -> PathBuf {
    // target/debug/deps/e2e-HASH -> target/debug/NAME
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is not built: run the tests with `cargo test --workspace`",
        path.display()
    );
    path
}

/// Whether this process is root.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Returns false (and prints why) when a root-only test cannot run here.
/// Under `CI=true` a skip is a failure: CI must really run these tests.
pub fn require_root(test: &str) -> bool {
    if is_root()
        && Command::new("unshare")
            .arg("-n")
            .arg("true")
            .status()
            .is_ok_and(|s| s.success())
    {
        return true;
    }
    let why = format!("{test}: skipped: needs root and `unshare -n` (network namespaces)");
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{why}; under CI=true a skip is a failure");
    }
    eprintln!("{why}");
    false
}

/// The result of a script.
#[derive(Debug)]
pub struct Run {
    /// Exit code of the script (its last command unless it exits itself).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

fn env_prelude() -> String {
    format!(
        "set -u\nexport PATH=\"{}:{}:$PATH\"\nexport NO_COLOR=1\n",
        bin("tcto-tune").parent().unwrap().display(),
        "/usr/sbin:/sbin"
    )
}

/// Run `script` with `sh` inside a fresh network namespace, loopback up,
/// with `tcto-tune` and `tcto-lab` on PATH. The script also gets its own
/// PID namespace (`unshare -n -p -f`) with `sh` as its init, so every
/// background process it starts is killed when it ends, and the network
/// namespace goes with them.
pub fn in_netns(script: &str) -> Run {
    let full = format!("{}ip link set lo up\n{script}\n", env_prelude());
    Command::new("unshare")
        .args(["-n", "-p", "-f", "sh", "-c", &full])
        .output()
        .expect("unshare runs")
        .into()
}

/// Run `script` with `sh` in the host namespace (for tests that change no
/// kernel state, or that manage `ip netns` namespaces themselves).
pub fn on_host(script: &str) -> Run {
    let full = format!("{}{script}\n", env_prelude());
    Command::new("sh")
        .args(["-c", &full])
        .output()
        .expect("sh runs")
        .into()
}

/// Script lines that make a veth pair `a`/`b` in the script's namespace
/// (`name`: `ip link add a ...` would parse `a` as `address`), or exit 20.
pub const VETH_AB: &str = "ip link add name a type veth peer name b || exit 20\n";
/// A second pair, `c`/`d`, or exit 20.
pub const VETH_CD: &str = "ip link add name c type veth peer name d || exit 20\n";

/// Script lines that start `tcto-lab listen` on port 8080 (backlog 511) in
/// the background and wait (at most 2.5 s) until it is ready.
pub const LISTEN_8080: &str = "tcto-lab listen --port 8080 --backlog 511 > /tmp/.lab-$$ 2>&1 &\nfor i in $(seq 50); do grep -q ready /tmp/.lab-$$ 2>/dev/null && break; sleep 0.05; done\nrm -f /tmp/.lab-$$\n";

/// Shell functions for the tests that crash a transaction and run the
/// command a hint (or a `status` row) prints about it, as printed. Put
/// them at the start of a script:
///
/// - `crash N CMD...`: run CMD (a `tcto-tune apply` or `persist`) with
///   the process SIGKILLed right after its Nth change
///   (`TCTO_TUNE_FAULT_CRASH_AFTER`, a test build's fault point); its
///   output is dropped.
/// - `crash_undo N CMD...`: the same for a `rollback`, after the Nth value
///   it restored (`TCTO_TUNE_FAULT_CRASH_UNDO_AFTER`).
/// - `take TAG PATTERN FILE`: put into `$cmd` the first command in
///   backticks in FILE that starts with PATTERN (a `grep` pattern),
///   backticks stripped, and print `TAG=$cmd`.
/// - `run_taken TAG [WORDS...]`: run `$cmd` (with WORDS added) as printed,
///   through `eval`, without `TCTO_TUNE_STATE_DIR` (a printed command
///   must carry the state dir itself); print `TAG=` and its exit code.
/// - `crash_then_hint N TAG PATTERN CMD...`: `crash N CMD...`, then CMD
///   again (refused by the interrupted transaction: prints `refused=` and
///   its exit code, then its stderr), then `take TAG PATTERN` from that
///   stderr and `run_taken ran`.
///
/// Their own variables start with `_`; `$cmd` is the one they set for the
/// script.
pub const CRASH_HINTS: &str = r#"crash() { _n=$1; shift; TCTO_TUNE_FAULT_CRASH_AFTER=$_n "$@" >/dev/null 2>&1; }
crash_undo() { _n=$1; shift; TCTO_TUNE_FAULT_CRASH_UNDO_AFTER=$_n "$@" >/dev/null 2>&1; }
take() { cmd=$(grep -o "\`$2[^\`]*\`" "$3" | head -1 | tr -d '`'); echo "$1=$cmd"; }
run_taken() { _tag=$1; shift; (unset TCTO_TUNE_STATE_DIR; eval "$cmd $*" >/dev/null 2>&1); echo "$_tag=$?"; }
crash_then_hint() {
  _n=$1; _t=$2; _p=$3; shift 3
  crash "$_n" "$@"
  _err=$(mktemp); "$@" >/dev/null 2>"$_err"; echo "refused=$?"; cat "$_err"
  take "$_t" "$_p" "$_err"; rm -f "$_err"
  run_taken ran
}
"#;

/// The script line that points `tcto-tune` at a state dir under `st`.
pub fn state_dir_env(st: &TempDir) -> String {
    format!("export TCTO_TUNE_STATE_DIR={}/s\n", st.path())
}

/// A unique temporary directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// Create one.
    pub fn new(tag: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "tcto-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    /// The path as a string for scripts.
    pub fn path(&self) -> String {
        self.0.display().to_string()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// An `ip netns` namespace deleted on drop, for multi-host scenarios.
pub struct Netns(pub String);

impl Netns {
    /// Create `tcto-<tag>-<pid>-<n>` with loopback up.
    pub fn new(tag: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "tcto-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        let ok = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "ip netns add {name} failed");
        let ns = Netns(name);
        ns.sh("ip link set lo up");
        ns
    }
    /// Join this namespace to `peer` with a veth pair, both ends up: `here`
    /// is `(name, address/prefix)` of this end, `there` of the end moved
    /// into `peer`. Panics (with the command output) if a step fails.
    pub fn veth_to(&self, peer: &Netns, here: (&str, &str), there: (&str, &str)) {
        let ((a, a_addr), (b, b_addr)) = (here, there);
        let r = self.sh(&format!(
            "ip link add {a} type veth peer name {b} && ip link set {b} netns {} && ip addr add {a_addr} dev {a} && ip link set {a} up",
            peer.0
        ));
        assert_eq!(r.code, 0, "{r}");
        let r = peer.sh(&format!(
            "ip addr add {b_addr} dev {b} && ip link set {b} up"
        ));
        assert_eq!(r.code, 0, "{r}");
    }

    /// Run `script` with `sh` inside this namespace.
    pub fn sh(&self, script: &str) -> Run {
        let full = format!("{}{script}\n", env_prelude());
        Command::new("ip")
            .args(["netns", "exec", &self.0, "sh", "-c", &full])
            .output()
            .expect("ip netns exec")
            .into()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "pids", &self.0])
            .output()
            .map(|o| {
                for pid in String::from_utf8_lossy(&o.stdout).split_whitespace() {
                    let _ = Command::new("kill").arg("-9").arg(pid).status();
                }
            });
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}
