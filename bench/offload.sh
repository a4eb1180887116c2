#!/usr/bin/env bash
# Time reading NIC offloads: `tcto-tune plan` (GSSET_INFO + GSTRINGS +
# GFEATURES per interface, plus the rest of read_state) against the oracle
# `ethtool -k`, and one apply + rollback cycle, on a veth pair inside a
# throwaway network namespace (the host's own interfaces are never touched).
# Needs root, hyperfine, ethtool, python3; builds the release binary if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="$PWD/target/release/tcto-tune"
[ -x "$bin" ] || cargo build --release -q -p tcto-tune-cli
state="$(mktemp -d)"
trap 'rm -rf "$state"' EXIT
export bin state
unshare -n bash -c '
set -euo pipefail
ip link set lo up
ip link add name a type veth peer name b
export TCTO_TUNE_STATE_DIR="$state/s" NO_COLOR=1
hyperfine -N --warmup 20 --runs 300 --export-json "$state/read.json" \
  "ethtool -k a" \
  "$bin plan --profile offload-off --set iface=a"
hyperfine -N --warmup 5 --runs 100 --export-json "$state/cycle.json" \
  "sh -c \"$bin apply --profile offload-off --set iface=a >/dev/null && $bin rollback >/dev/null\"" \
  "sh -c \"ethtool -K a tso off gro off && ethtool -K a tso on\""
'
# Medians, and each group's ratio to its first command.
python3 - "$state/read.json" "$state/cycle.json" <<'PY'
import json, os, sys
for path in sys.argv[1:]:
    rs = json.load(open(path))["results"]
    base = rs[0]["median"]
    for r in rs:
        cmd = r["command"].replace(os.environ["bin"], "tcto-tune")
        print(f"{r['median']*1000:8.2f} ms median  x{r['median']/base:5.2f}  {cmd}")
PY
