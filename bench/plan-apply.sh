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
# Each run starts from the same values (--prepare). Rows:
#   first apply       the state dir does not exist yet (created, 0700, fsynced)
#   apply             the usual case: a state dir holding 100 earlier transactions
#   apply (tmpfs)     the same with the state dir on tmpfs, where fsync
#                     costs nothing: what is left is not the disk
#   apply --dry-run   the same process without the journal and kernel writes
#   sysctl -w         the peer: writes, no record of the prior values
#   save+sync+sysctl -w  the peer with the write-ahead discipline a careful
#                     runbook follows: prior values saved and fsynced first
unshare -n bash -s "$BIN" "$OUT" "${RUNS:-100}" <<'INNER'
set -euo pipefail
BIN=$1 OUT=$2 RUNS=$3
ST=$(mktemp -d /tmp/tcto-bench-XXXX)
SHM=$(mktemp -d /dev/shm/tcto-bench-XXXX)
trap 'rm -rf "$ST" "$SHM"' EXIT
KEYS="net.core.somaxconn net.ipv4.tcp_max_syn_backlog net.netfilter.nf_conntrack_tcp_timeout_established net.netfilter.nf_conntrack_tcp_timeout_time_wait net.netfilter.nf_conntrack_tcp_timeout_close_wait"
SEED="sysctl -qw net.core.somaxconn=1024 net.ipv4.tcp_max_syn_backlog=512 net.netfilter.nf_conntrack_tcp_timeout_established=432000 net.netfilter.nf_conntrack_tcp_timeout_time_wait=120 net.netfilter.nf_conntrack_tcp_timeout_close_wait=30"
WRITE="sysctl -qw net.core.somaxconn=4096 net.ipv4.tcp_max_syn_backlog=8192 net.netfilter.nf_conntrack_tcp_timeout_established=7440 net.netfilter.nf_conntrack_tcp_timeout_time_wait=60 net.netfilter.nf_conntrack_tcp_timeout_close_wait=60"
for _ in $(seq 100); do
  $SEED; env TCTO_TUNE_STATE_DIR=$ST/h "$BIN" apply --profile high-conn >/dev/null
  $SEED; env TCTO_TUNE_STATE_DIR=$SHM/h "$BIN" apply --profile high-conn >/dev/null
done
$SEED
cat >"$ST/saved.sh" <<EOS
sysctl -n $KEYS >$ST/prior.new && sync $ST/prior.new && mv $ST/prior.new $ST/prior && sync $ST && $WRITE
EOS
hyperfine -N --warmup 5 --runs "$RUNS" --export-json "$OUT/apply.json" \
  --prepare "sh -c 'rm -rf $ST/s; $SEED'" \
  -n "tcto-tune first apply" "env TCTO_TUNE_STATE_DIR=$ST/s $BIN apply --profile high-conn" \
  -n "tcto-tune apply" "env TCTO_TUNE_STATE_DIR=$ST/h $BIN apply --profile high-conn" \
  -n "tcto-tune apply (tmpfs)" "env TCTO_TUNE_STATE_DIR=$SHM/h $BIN apply --profile high-conn" \
  -n "tcto-tune apply --dry-run" "env TCTO_TUNE_STATE_DIR=$ST/h $BIN apply --dry-run --profile high-conn" \
  -n "sysctl -w" "$WRITE" \
  -n "save+sync+sysctl -w" "sh $ST/saved.sh"
# The rows above start tcto-tune through `env` (each row has its own state
# dir), a second exec that `sysctl -w` does not pay. The tmpfs row again,
# with the variable set for the whole hyperfine run instead, next to its
# peer and to the wrapper alone:
TCTO_TUNE_STATE_DIR=$SHM/h hyperfine -N --warmup 5 --runs "$RUNS" --export-json "$OUT/apply-tmpfs.json" \
  --prepare "sh -c '$SEED'" \
  -n "tcto-tune apply (tmpfs)" "$BIN apply --profile high-conn" \
  -n "tcto-tune apply (tmpfs, via env)" "env TCTO_TUNE_STATE_DIR=$SHM/h $BIN apply --profile high-conn" \
  -n "env true (the wrapper alone)" "env TCTO_TUNE_STATE_DIR=$SHM/h true" \
  -n "sysctl -w" "$WRITE"
$SEED
strace -f -c -w -e trace=fsync,fdatasync -o "$ST/fsync.txt" env TCTO_TUNE_STATE_DIR=$ST/h "$BIN" apply --profile high-conn >/dev/null
awk '$NF ~ /fsync/ {printf "fsync calls in one apply: %d, %.2f ms (strace -w)\n", $4, $2*1000}' "$ST/fsync.txt" | tee "$OUT/apply-fsync.txt"
$SEED
echo "peak RSS KiB: tcto-tune apply $(peak env TCTO_TUNE_STATE_DIR=$ST/h $BIN apply --profile high-conn), sysctl -w $(peak $WRITE)" | tee "$OUT/apply-mem.txt"
$SEED
INNER
python3 - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
plan = {r["command"]: r for r in json.load(open(f"{out}/plan.json"))["results"]}
apply = {r["command"]: r for r in json.load(open(f"{out}/apply.json"))["results"]}
p, n, a = (plan[k]["median"] for k in ("tcto-tune plan", "sysctl -n (same keys)", "sysctl -a"))
print(f"plan median {p*1e3:.2f} ms, sysctl -n same keys {n*1e3:.2f} ms ({p/n:.2f}x), sysctl -a {a*1e3:.2f} ms ({p/a:.2f}x)")
base, saved = apply["sysctl -w"]["median"], apply["save+sync+sysctl -w"]["median"]
print("| command | median ms | ratio to sysctl -w | ratio to save+sync+sysctl -w |")
print("|---|---:|---:|---:|")
for name, r in apply.items():
    m = r["median"]
    print(f"| {name} | {m*1e3:.2f} | {m/base:.2f} | {m/saved:.2f} |")
tmpfs = json.load(open(f"{out}/apply-tmpfs.json"))["results"]
base = next(r["median"] for r in tmpfs if r["command"] == "sysctl -w")
print("without the env wrapper, state dir on tmpfs (one hyperfine run):")
print("| command | median ms | min ms | max ms | ratio to sysctl -w |")
print("|---|---:|---:|---:|---:|")
for r in tmpfs:
    print(f"| {r['command']} | {r['median']*1e3:.2f} | {r['min']*1e3:.2f} | {r['max']*1e3:.2f} | {r['median']/base:.2f} |")
PY
