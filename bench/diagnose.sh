#!/usr/bin/env bash
# Benchmark `tcto-tune diagnose` against what an operator would run by hand
# (`ss -tln` plus `conntrack -S`), in one run, in a throwaway network
# namespace holding 1,000 listening sockets and 20,000 established sockets
# (10,000 loopback connections, both ends), all tracked by conntrack.
#
# Needs root, nftables, conntrack, iproute2 and hyperfine. Changes nothing
# outside its own namespace; the namespace and its processes die with it.
#
#   bench/diagnose.sh            # prints the hyperfine table
#   RUNS=50 bench/diagnose.sh
set -euo pipefail
source "$(dirname "$0")/common.sh"
cargo build --release -q -p tcto-tune-tests
BIN="$PWD/target/release"
JSON="$OUT/diagnose.json"
export BIN JSON RUNS="${RUNS:-30}"

unshare -n -p -f bash -c '
set -euo pipefail
ip link set lo up
nft add table inet bench
nft add chain inet bench out "{ type filter hook output priority 0; }"
nft add rule inet bench out ct state new counter
sysctl -qw net.core.somaxconn=4096
ready() { # wait (at most 60 s) for a lab process to print ready
  for _ in $(seq 600); do grep -q ready "$1" && return 0; sleep 0.1; done
  cat "$1"; exit 1
}
srv=$(mktemp); cli=$(mktemp)
"$BIN/tcto-lab" fill --listeners 1000 --base-port 20000 --accept 10000 >"$srv" 2>&1 &
ready "$srv"
"$BIN/tcto-lab" hold --to 127.0.0.1:20000 --connections 10000 >"$cli" 2>&1 &
ready "$cli"
rm -f "$srv" "$cli"
echo "listening: $(ss -Htln | wc -l)  established: $(ss -Htn state established | wc -l)  conntrack entries: $(conntrack -C)"
hyperfine --style basic --warmup 3 --runs "$RUNS" --export-json "$JSON" \
  -n "tcto-tune diagnose" "$BIN/tcto-tune diagnose --interval 0s >/dev/null" \
  -n "tcto-tune diagnose --json" "$BIN/tcto-tune diagnose --interval 0s --json >/dev/null" \
  -n "ss -tln + conntrack -S" "ss -tln >/dev/null; conntrack -S >/dev/null" \
  -n "ss -tlnp + conntrack -S" "ss -tlnp >/dev/null; conntrack -S >/dev/null"
echo "peak RSS KiB: tcto-tune diagnose $(peak "$BIN/tcto-tune" diagnose --interval 0s), --json $(peak "$BIN/tcto-tune" diagnose --interval 0s --json), ss -tln $(peak ss -tln), conntrack -S $(peak conntrack -S)"
'
median_table "$JSON" 2 "ss -tln + conntrack -S"

# Who fills the conntrack table: the ctnetlink dump and its streamed
# aggregation (`diagnose --conntrack-top`) against `conntrack -L | wc -l`
# on the same table, at 1,000 and at 100,000 entries (loopback connections
# held open, each one tracked entry), with the peak RSS of each size: the
# aggregation keeps groups, not entries, so RSS must not grow with the
# table (target: under 10 MiB growth from 1,000 to 100,000). Then the
# overhead of `--trace 1s` over the same diagnosis without it.
JSON_CT="$OUT/diagnose-conntrack.json"
export JSON_CT
unshare -n -p -f bash -c '
set -euo pipefail
ip link set lo up
nft add table inet bench
nft add chain inet bench out "{ type filter hook output priority 0; }"
nft add rule inet bench out ct state new counter
ready() { for _ in $(seq 1200); do grep -q ready "$1" && return 0; sleep 0.1; done; cat "$1"; exit 1; }
hold() { # $1 connections to port $2
  s=$(mktemp); c=$(mktemp)
  "$BIN/tcto-lab" fill --listeners 0 --base-port "$2" --accept "$1" >"$s" 2>&1 &
  ready "$s"
  "$BIN/tcto-lab" hold --to "127.0.0.1:$2" --connections "$1" >"$c" 2>&1 &
  ready "$c"
  rm -f "$s" "$c"
}
hold 1000 30000
small=$(peak "$BIN/tcto-tune" diagnose --interval 0s --conntrack-top --json)
echo "entries: $(conntrack -C); peak RSS KiB at this size: tcto-tune diagnose --conntrack-top $small"
# 10,000 a process at most (the descriptor limit).
for i in $(seq 0 9); do hold 9900 $((31000 + i)); done
big=$(peak "$BIN/tcto-tune" diagnose --interval 0s --conntrack-top --json)
echo "entries: $(conntrack -C); peak RSS KiB at this size: tcto-tune diagnose --conntrack-top $big (growth $((big - small)) KiB); conntrack -L $(peak conntrack -L)"
"$BIN/tcto-tune" diagnose --interval 0s --conntrack-top --json | python3 -c "import json,sys; g=json.load(sys.stdin)[\"conntrack\"][\"groups\"]; print(\"dumped\", g[\"entries\"], \"in\", g[\"groups_total\"], \"groups\")"
# --prometheus looks up no socket owners (the listeners of this lab own
# 100,000 descriptors, and text output would time the owner scan), so the
# difference between the two diagnose runs is the dump and its grouping.
hyperfine --style basic --warmup 2 --runs "${RUNS:-10}" --export-json "$JSON_CT" \
  -n "conntrack -L | wc -l" "conntrack -L 2>/dev/null | wc -l >/dev/null" \
  -n "tcto-tune diagnose --conntrack-top --prometheus" "$BIN/tcto-tune diagnose --interval 0s --conntrack-top --prometheus >/dev/null" \
  -n "tcto-tune diagnose --prometheus (no dump)" "$BIN/tcto-tune diagnose --interval 0s --prometheus >/dev/null" \
  -n "tcto-tune diagnose --prometheus --trace 1s" "$BIN/tcto-tune diagnose --interval 0s --prometheus --trace 1s >/dev/null"
'
median_table "$JSON_CT" 0 "conntrack -L | wc -l"
