//! A two-host lab for the NOTRACK tests: a frontend and a backend network
//! namespace joined by a veth pair, frontend 10.0.1.2/24, backend
//! 10.0.2.2/24, each with a route to the other's subnet. Both namespaces
//! (and every process in them) go away on drop.

use crate::{require_root, Netns, Run, TempDir};

/// Frontend address.
pub const FRONTEND: &str = "10.0.1.2";
/// Backend address.
pub const BACKEND: &str = "10.0.2.2";

/// Frontend and backend namespaces, joined.
pub struct Lab {
    /// The client side (10.0.1.2).
    pub frontend: Netns,
    /// The server side (10.0.2.2), where tcto-tune runs.
    pub backend: Netns,
}

fn ok(r: Run, what: &str) -> Run {
    assert_eq!(r.code, 0, "{what}: {r}");
    r
}

impl Lab {
    /// For root-only test `test`: the lab and a state dir, both tagged
    /// `tag`, or None when the test cannot run here ([`require_root`]).
    pub fn for_test(test: &str, tag: &str) -> Option<(Self, TempDir)> {
        require_root(test).then(|| (Lab::new(tag), TempDir::new(tag)))
    }

    /// Build the lab; panics (with the command output) if a step fails.
    pub fn new(tag: &str) -> Self {
        let frontend = Netns::new(&format!("{tag}-f"));
        let backend = Netns::new(&format!("{tag}-b"));
        frontend.veth_to(
            &backend,
            ("fe0", &format!("{FRONTEND}/24")),
            ("be0", &format!("{BACKEND}/24")),
        );
        ok(
            frontend.sh("ip route add 10.0.2.0/24 dev fe0"),
            "frontend route",
        );
        ok(
            backend.sh("ip route add 10.0.1.0/24 dev be0"),
            "backend route",
        );
        Lab { frontend, backend }
    }

    /// Start an accepting listener on the backend and wait until `ss` shows it.
    pub fn listen(&self, port: u16) {
        ok(
            self.backend.sh(&format!(
                "tcto-lab listen --port {port} --addr {BACKEND} --backlog 128 --accept >/dev/null 2>&1 &\n\
                 i=0; while ! ss -Htln 'sport = :{port}' | grep -q .; do i=$((i+1)); [ $i -gt 100 ] && exit 1; sleep 0.05; done"
            )),
            "listener",
        );
    }

    /// `(ok, failed)` of `count` connects from the frontend to the backend's `port`.
    pub fn connect(&self, port: u16, count: u32, timeout_ms: u32) -> (u32, u32) {
        let r = ok(
            self.frontend.sh(&format!(
                "tcto-lab connect --addr {BACKEND} --port {port} --count {count} --timeout-ms {timeout_ms}"
            )),
            "connect",
        );
        let line = r.stdout.trim();
        let num = |k: &str| -> u32 {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(k))
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("bad connect output: {r}"))
        };
        (num("ok="), num("failed="))
    }

    /// `nft -s list ruleset` on the backend: without counter values.
    pub fn ruleset_stateless(&self) -> String {
        ok(
            self.backend.sh("nft -s list ruleset"),
            "nft -s list ruleset",
        )
        .stdout
    }

    /// Load `ruleset` (nft syntax) on the backend with `nft -f`.
    pub fn load_ruleset(&self, ruleset: &str) {
        ok(
            self.backend.sh(&format!("nft -f - <<'EOF'\n{ruleset}EOF")),
            "nft -f",
        );
    }

    /// `nft list ruleset` on the backend.
    pub fn ruleset(&self) -> String {
        ok(self.backend.sh("nft list ruleset"), "nft list ruleset").stdout
    }
}
