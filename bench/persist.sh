#!/usr/bin/env bash
# Benchmark for `persist` (issue 6), whole process, inside a throwaway
# network namespace (persist reads the namespace's sysctls) and a temporary
# --root, so the host's /etc is never touched.
#   dry-run: `persist --profile high-conn --root R --dry-run` (plan, conflict
#            scan, diffs; nothing written)
#   persist: `persist --profile high-conn --root R` (4 files written
#            atomically with fsync + journal fsync: the 3 boot files and the
#            profile's entry in persisted.d), from an empty root each run
#   baseline: `install -D -m 0644` of the same 4 files then `sync -f` (what a
#            hand-written provisioning step would do, without journal)
# Needs root (for the namespace) and hyperfine.
set -euo pipefail
source "$(dirname "$0")/common.sh"

unshare -n bash -s "$BIN" "$OUT" <<'INNER'
set -euo pipefail
BIN=$1 OUT=$2
W=$(mktemp -d /tmp/tcto-bench-persist-XXXX)
trap 'rm -rf "$W"' EXIT
mkdir -p "$W/root" "$W/ref"
sysctl -qw net.core.somaxconn=1024
# Reference copies of the four files for the baseline.
$BIN --state-dir "$W/s0" persist --profile high-conn --root "$W/ref" >/dev/null
hyperfine -N --warmup 5 --runs 100 --export-json "$OUT/persist.json" \
  --prepare "sh -c 'rm -rf $W/root/etc $W/s $W/b; mkdir -p $W/b'" \
  -n "persist --dry-run" "$BIN --state-dir $W/s persist --profile high-conn --root $W/root --dry-run" \
  -n "persist" "$BIN --state-dir $W/s persist --profile high-conn --root $W/root" \
  -n "install + sync" "sh -c 'for f in sysctl.d/99-tcto-tune.conf modules-load.d/99-tcto-tune.conf modprobe.d/99-tcto-tune.conf tcto-tune/persisted.d/high-conn.toml; do install -D -m 0644 $W/ref/etc/\$f $W/b/etc/\$f; done; sync -f $W/b'"
INNER
python3 - "$OUT" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(f"{sys.argv[1]}/persist.json"))["results"]}
d, p, b = (r[k]["median"] for k in ("persist --dry-run", "persist", "install + sync"))
print(f"persist --dry-run median {d*1e3:.2f} ms; persist median {p*1e3:.2f} ms; install+sync median {b*1e3:.2f} ms; persist/baseline {p/b:.2f}x")
PY
