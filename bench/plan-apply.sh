#!/usr/bin/env bash
# Benchmarks for `plan` (issue 2) and `apply` (issue 3), whole process.
#   plan:  `tcto-tune plan --profile high-conn` on this host (reads only).
#   apply: `tcto-tune apply --profile high-conn` inside a throwaway network
#          namespace vs one `sysctl -w` of the same keys, each run from the
#          same starting values, journal fsync included.
# Needs root (for the namespace) and hyperfine. Prints hyperfine tables and
# writes JSON next to this script's output dir.
set -euo pipefail
source "$(dirname "$0")/common.sh"

KEYS="net.core.somaxconn net.ipv4.tcp_max_syn_backlog net.core.netdev_max_backlog net.netfilter.nf_conntrack_buckets net.netfilter.nf_conntrack_max net.netfilter.nf_conntrack_tcp_timeout_established net.netfilter.nf_conntrack_tcp_timeout_time_wait net.netfilter.nf_conntrack_tcp_timeout_close_wait"
echo "== plan --profile high-conn vs sysctl reading the same keys (host, read-only)"
hyperfine -N --warmup 10 --runs 200 --export-json "$OUT/plan.json" \
  -n "tcto-tune plan" "$BIN plan --profile high-conn" \
  -n "sysctl -n (same keys)" "sysctl -n $KEYS" \
  -n "sysctl -a" "sysctl -a"
echo "peak RSS KiB: tcto-tune plan $(peak $BIN plan --profile high-conn), sysctl -n $(peak sysctl -n $KEYS), sysctl -a $(peak sysctl -a)" | tee "$OUT/plan-mem.txt"

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
$SEED
echo "peak RSS KiB: tcto-tune apply $(peak env TCTO_TUNE_STATE_DIR=$ST/m $BIN apply --profile high-conn), sysctl -w $(peak sysctl -qw net.core.somaxconn=4096)" | tee "$OUT/apply-mem.txt"
rm -rf "$ST"
INNER
python3 - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
plan = {r["command"]: r for r in json.load(open(f"{out}/plan.json"))["results"]}
apply = {r["command"]: r for r in json.load(open(f"{out}/apply.json"))["results"]}
t, s = apply["tcto-tune apply"]["median"], apply["sysctl -w"]["median"]
p, n, a = (plan[k]["median"] for k in ("tcto-tune plan", "sysctl -n (same keys)", "sysctl -a"))
print(f"plan median {p*1e3:.2f} ms, sysctl -n same keys {n*1e3:.2f} ms ({p/n:.2f}x), sysctl -a {a*1e3:.2f} ms ({p/a:.2f}x)")
print(f"apply median {t*1e3:.2f} ms, sysctl -w median {s*1e3:.2f} ms, ratio {t/s:.2f}x")
PY
