#!/usr/bin/env bash
# Benchmarks for `plan` (issue 2) and `apply` (issue 3), whole process.
#   plan:  `tcto-tune plan --profile high-conn` on this host (reads only).
#   apply: `tcto-tune apply --profile high-conn` inside a throwaway network
#          namespace vs one `sysctl -w` of the same keys, each run from the
#          same starting values, journal fsync included.
# Needs root (for the namespace) and hyperfine. Prints hyperfine tables and
# writes JSON next to this script's output dir.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v hyperfine >/dev/null || { apt-get update -qq && apt-get install -y -qq hyperfine >/dev/null; }
cargo build -q --release -p tcto-tune-cli
BIN=$PWD/target/release/tcto-tune
OUT=${OUT:-$PWD/target/bench}
mkdir -p "$OUT"

echo "== plan --profile high-conn (host, read-only)"
hyperfine -N --warmup 10 --runs 200 --export-json "$OUT/plan.json" "$BIN plan --profile high-conn"

echo "== apply high-conn vs sysctl -w, in a network namespace"
unshare -n bash -s "$BIN" "$OUT" <<'INNER'
set -euo pipefail
BIN=$1 OUT=$2
ST=$(mktemp -d /tmp/tcto-bench-XXXX)
SEED="sysctl -qw net.core.somaxconn=1024 net.ipv4.tcp_max_syn_backlog=512 net.netfilter.nf_conntrack_tcp_timeout_established=432000 net.netfilter.nf_conntrack_tcp_timeout_time_wait=120 net.netfilter.nf_conntrack_tcp_timeout_close_wait=30"
hyperfine -N --warmup 5 --runs 100 --export-json "$OUT/apply.json" \
  --prepare "sh -c 'rm -rf $ST/s; $SEED'" \
  -n "tcto-tune apply" "env TCTO_TUNE_STATE_DIR=$ST/s $BIN apply --profile high-conn" \
  -n "sysctl -w" "sysctl -qw net.core.somaxconn=4096 net.ipv4.tcp_max_syn_backlog=8192 net.netfilter.nf_conntrack_tcp_timeout_established=7440 net.netfilter.nf_conntrack_tcp_timeout_time_wait=60 net.netfilter.nf_conntrack_tcp_timeout_close_wait=60"
rm -rf "$ST"
INNER
python3 - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
plan = json.load(open(f"{out}/plan.json"))["results"][0]
apply = {r["command"]: r for r in json.load(open(f"{out}/apply.json"))["results"]}
t, s = apply["tcto-tune apply"]["median"], apply["sysctl -w"]["median"]
print(f"plan median {plan['median']*1e3:.2f} ms")
print(f"apply median {t*1e3:.2f} ms, sysctl -w median {s*1e3:.2f} ms, ratio {t/s:.2f}x")
PY
